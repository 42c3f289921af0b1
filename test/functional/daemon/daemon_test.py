#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors
"""Functional test of sluiced and sluicectl.

Starts sluiced (--no-huge, private RPC socket in a temp dir) from a JSON config,
creates and deletes each kind of bdev with sluicectl, restarts from save_config's
output and finds the same bdevs, drives bad requests and checks each gets the right
JSON-RPC error while the daemon stays up, checks --wait-for-rpc, bad configs, SIGTERM
and idle CPU. Speaks JSON-RPC exactly as SPDK's rpc.py does (request without a
trailing newline; read until the bytes parse as JSON).

Usage: daemon_test.py [BUILD_DIR]   (or SLUICE_BUILD_DIR in the environment)
Prints "N passed, N failed" last; exit 0 only if nothing failed.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import shutil
import tempfile
import time
import traceback

BUILD = (sys.argv[1] if len(sys.argv) > 1 else
         os.environ.get("SLUICE_BUILD_DIR",
                        os.path.join(os.path.dirname(__file__), "../../../build")))
SLUICED = os.path.join(BUILD, "exporter", "sluiced")
SLUICECTL = os.path.join(BUILD, "exporter", "sluicectl")

passed = 0
failed = 0
skipped = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")
    return cond


def skip(name, why):
    global skipped
    skipped += 1
    print(f"skip {name}: {why}")


class RpcError(Exception):
    def __init__(self, code, message):
        super().__init__(f"error {code}: {message}")
        self.code = code
        self.message = message


class Client:
    """A JSON-RPC client with rpc.py's wire behaviour."""

    def __init__(self, path, timeout=10.0):
        self.path = path
        self.timeout = timeout
        self.next_id = 1

    def raw(self, data, close_early=False):
        """Send bytes; return the parsed response (None if the server closed)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        s.sendall(data)
        if close_early:
            s.close()
            return None
        buf = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return json.loads(buf) if buf else None
                buf += chunk
                try:
                    return json.loads(buf)
                except ValueError:
                    continue
        finally:
            s.close()

    def call(self, method, params=None):
        req = {"jsonrpc": "2.0", "method": method, "id": self.next_id}
        self.next_id += 1
        if params is not None:
            req["params"] = params
        # rpc.py: json.dumps(req) with no newline, then read until json.loads works.
        resp = self.raw(json.dumps(req).encode())
        if resp is None:
            raise RuntimeError(f"{method}: connection closed without an answer")
        if resp.get("id") != req["id"]:
            raise RuntimeError(f"{method}: answer has id {resp.get('id')}")
        if "error" in resp:
            raise RpcError(resp["error"]["code"], resp["error"].get("message"))
        return resp["result"]

    def error_code(self, method, params=None):
        try:
            self.call(method, params)
        except RpcError as e:
            return e.code
        return None


class Daemon:
    def __init__(self, tmp, name, config=None, extra=()):
        self.sock = os.path.join(tmp, f"{name}.sock")
        self.pidfile = os.path.join(tmp, f"{name}.pid")
        self.logpath = os.path.join(tmp, f"{name}.log")
        args = [SLUICED, "--no-huge", "-s", "256", "-r", self.sock, "--pid-file", self.pidfile]
        if config:
            args += ["-c", config]
        args += list(extra)
        self.log = open(self.logpath, "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        self.rpc = Client(self.sock)

    def wait_ready(self, timeout=20.0, state_method="spdk_get_version"):
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                return False
            if os.path.exists(self.sock):
                try:
                    self.rpc.call(state_method)
                    return True
                except (OSError, RuntimeError, RpcError):
                    pass
            time.sleep(0.05)
        return False

    def alive(self):
        if self.proc.poll() is not None:
            return False
        try:
            return self.rpc.call("spdk_get_version")["version"].startswith("Sluice")
        except Exception:
            return False

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        return rc

    def output(self):
        with open(self.logpath) as f:
            return f.read()


def ctl(sock, *args, stdin=None):
    p = subprocess.run([SLUICECTL, "-s", sock] + [str(a) for a in args], input=stdin,
                       capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def bdev_map(rpc):
    return {b["name"]: b for b in rpc.call("bdev_get_bdevs")}


def has_method(rpc, name):
    return name in rpc.call("rpc_get_methods")


# ---- Scenarios ---------------------------------------------------------------------

def test_basics(d, tmp):
    rpc = d.rpc
    mode = os.stat(d.sock).st_mode & 0o777
    check("RPC socket mode 0600", mode == 0o600, oct(mode))
    v = rpc.call("sluice_get_version")
    check("sluice_get_version", v == {"version": "Sluice v0.1.0",
                                      "fields": {"major": 0, "minor": 1, "patch": 0,
                                                 "suffix": ""}}, v)
    check("spdk_get_version", rpc.call("spdk_get_version")["version"] == "Sluice v0.1.0")
    methods = rpc.call("rpc_get_methods")
    check("rpc_get_methods lists framework methods",
          all(m in methods for m in ["framework_get_reactors", "save_config",
                                     "thread_get_stats", "log_set_flag"]))
    check("rpc_get_methods hides aliases", "kill_instance" not in methods)
    check("rpc_get_methods include_aliases",
          "kill_instance" in rpc.call("rpc_get_methods", {"include_aliases": True}))
    current = rpc.call("rpc_get_methods", {"current": True})
    check("rpc_get_methods current omits start-up-only methods",
          "framework_start_init" not in current and "bdev_get_bdevs" in current)
    r = rpc.call("framework_get_reactors")
    check("framework_get_reactors shape",
          r["reactors"] and "lcore" in r["reactors"][0] and "tick_rate" in r
          and any(t["name"] == "app_thread" for t in r["reactors"][0]["lw_threads"]), r)
    t = rpc.call("thread_get_stats")
    check("thread_get_stats shape", t["threads"] and {"name", "id", "busy", "idle"}
          <= set(t["threads"][0]), t)
    subs = rpc.call("framework_get_subsystems")
    check("framework_get_subsystems has bdev",
          any(s["subsystem"] == "bdev" for s in subs), subs)
    check("framework_wait_init at runtime", rpc.call("framework_wait_init") is True)
    check("log_set_print_level/get", rpc.call("log_set_print_level", {"level": "INFO"})
          and rpc.call("log_get_print_level") == "INFO")
    rpc.call("log_set_print_level", {"level": "NOTICE"})
    check("log_set_level/get", rpc.call("log_set_level", {"level": "debug"})
          and rpc.call("log_get_level") == "DEBUG")
    flags = rpc.call("log_get_flags")
    if flags:
        flag = sorted(flags)[0]
        rpc.call("log_set_flag", {"flag": flag})
        on = rpc.call("log_get_flags")[flag]
        rpc.call("log_clear_flag", {"flag": flag})
        check("log_set_flag/clear_flag", on is True and
              rpc.call("log_get_flags")[flag] is False)
    else:
        skip("log_set_flag/clear_flag", "no log flags registered")


def test_ctl(d, tmp):
    s = d.sock
    rc, out, err = ctl(s, "spdk_get_version")
    check("sluicectl spdk_get_version", rc == 0 and out.strip() == "Sluice v0.1.0", out + err)
    rc, out, err = ctl(s, "--json", "sluice_get_version")
    check("sluicectl --json", rc == 0 and json.loads(out)["fields"]["minor"] == 1, out)
    rc, out, err = ctl(s, "-r", '{"method": "spdk_get_version"}')
    check("sluicectl raw mode", rc == 0 and json.loads(out)["result"]["version"].startswith(
        "Sluice"), out + err)
    rc, out, err = ctl(s, "-r", "-", stdin='{"jsonrpc":"2.0","id":7,"method":"nope"}')
    check("sluicectl raw stdin, error exit 1",
          rc == 1 and json.loads(out)["error"]["code"] == -32601, out + err)
    rc, out, err = ctl(s, "no_such_method", "--x", "1")
    check("sluicectl unknown method: exit 1 and message",
          rc == 1 and err.startswith("error -32601:"), f"{rc} {err}")
    rc, out, err = ctl(s, "bdev_malloc_create", "64")
    check("sluicectl missing positional: exit 2", rc == 2 and "block_size" in err,
          f"{rc} {err}")
    rc, out, err = ctl(s, "bdev_malloc_create", "-b", "X", "64", "abc")
    check("sluicectl bad integer: exit 2", rc == 2 and "abc" in err, f"{rc} {err}")
    rc, out, err = ctl(os.path.join(tmp, "nothing.sock"), "spdk_get_version")
    check("sluicectl no daemon: exit 3 names socket",
          rc == 3 and "nothing.sock" in err and "is sluiced running?" in err, err)
    rc, out, err = ctl(s, "bdev_malloc_create", "--help")
    check("sluicectl per-method help", rc == 0 and "--block-size" in out and "-b" in out, out)
    rc, out, err = ctl(s, "framework_get_reactors")
    check("sluicectl reactors table", rc == 0 and "LCORE" in out and "app_thread" in out, out)
    rc, out, err = ctl(s, "rpc_get_methods", "--current")
    check("sluicectl generic flag param", rc == 0 and "framework_start_init" not in out
          and "save_config" in out, out)
    rc, out, err = ctl(s, "-t", "5", "log_get_flags")
    check("sluicectl log_get_flags table", rc == 0 and out.startswith("FLAG"), out + err)


def test_bdevs(d, tmp):
    rpc, s = d.rpc, d.sock
    initial = bdev_map(rpc)
    check("config bdevs present", {"Malloc0", "Null0"} <= set(initial), sorted(initial))
    check("config bdev geometry", initial.get("Malloc0", {}).get("num_blocks") == 32768 and
          initial.get("Malloc0", {}).get("block_size") == 512, initial.get("Malloc0"))

    rc, out, err = ctl(s, "bdev_malloc_create", "-b", "Malloc1", "64", "512")
    check("sluicectl bdev_malloc_create (rpc.py shorthand)",
          rc == 0 and out.strip() == "Malloc1", f"{rc} {out} {err}")
    b = rpc.call("bdev_get_bdevs", {"name": "Malloc1"})
    check("Malloc1 is 64 MiB of 512 B blocks",
          len(b) == 1 and b[0]["num_blocks"] == 131072 and b[0]["block_size"] == 512, b)
    rc, out, err = ctl(s, "bdev_null_create", "Null1", "16", "4096")
    check("sluicectl bdev_null_create", rc == 0 and out.strip() == "Null1", f"{rc} {out} {err}")
    rc, out, err = ctl(s, "bdev_get_bdevs")
    check("sluicectl bdev_get_bdevs table",
          rc == 0 and out.startswith("NAME") and "Malloc1" in out and "Null1" in out, out)
    rc, out, err = ctl(s, "bdev_get_bdevs", "-b", "Null1", "--json")
    check("sluicectl bdev_get_bdevs -b --json",
          rc == 0 and json.loads(out)[0]["num_blocks"] == 4096, out + err)

    path = os.path.join(tmp, "file.img")
    with open(path, "wb") as f:
        f.truncate(16 << 20)
    for kind in ("aio", "uring"):
        if not has_method(rpc, f"bdev_{kind}_create"):
            skip(f"{kind} bdev", f"bdev_{kind}_create not built")
            continue
        name = kind.capitalize() + "0"
        rc, out, err = ctl(s, f"bdev_{kind}_create", path, name, 512)
        check(f"sluicectl bdev_{kind}_create", rc == 0 and name in bdev_map(rpc),
              f"{rc} {out} {err}")
        rc, out, err = ctl(s, f"bdev_{kind}_delete", name)
        check(f"sluicectl bdev_{kind}_delete", rc == 0 and name not in bdev_map(rpc),
              f"{rc} {out} {err}")
        # One of each kind stays, for the restart from save_config.
        keep = os.path.join(tmp, f"{kind}-keep.img")
        with open(keep, "wb") as f:
            f.truncate(8 << 20)
        rc, out, err = ctl(s, f"bdev_{kind}_create", keep, f"{kind.capitalize()}Keep", 4096)
        check(f"sluicectl bdev_{kind}_create with 4096-byte blocks", rc == 0 and
              bdev_map(rpc).get(f"{kind.capitalize()}Keep", {}).get("block_size") == 4096,
              f"{rc} {out} {err}")

    # rpc.py-style client-side load_config.
    cfgpath = os.path.join(tmp, "load.json")
    with open(cfgpath, "w") as f:
        json.dump({"subsystems": [{"subsystem": "bdev", "config": [
            {"method": "bdev_malloc_create",
             "params": {"name": "Loaded0", "num_blocks": 64, "block_size": 512}}]}]}, f)
    rc, out, err = ctl(s, "load_config", "-j", cfgpath)
    check("sluicectl load_config", rc == 0 and "Loaded0" in bdev_map(rpc), f"{rc} {err}")
    rc, out, err = ctl(s, "load_config", "-j", cfgpath)
    check("sluicectl load_config again: duplicate reported, exit 1",
          rc == 1 and "bdev_malloc_create" in err and "error -17" in err, f"{rc} {err}")
    ctl(s, "bdev_malloc_delete", "Loaded0")

    # A deleted bdev is gone, and asking for it is an error with exit 1.
    rc, out, err = ctl(s, "bdev_malloc_create", "-b", "Tmp", "1", "512")
    rc2, out2, err2 = ctl(s, "bdev_malloc_delete", "Tmp")
    rc3, out3, err3 = ctl(s, "bdev_get_bdevs", "-b", "Tmp")
    check("sluicectl bdev_malloc_delete", rc == 0 and rc2 == 0 and rc3 == 1 and
          err3.startswith("error "), f"{rc}/{rc2}/{rc3} {err2} {err3}")
    rc, out, err = ctl(s, "bdev_null_create", "TmpN", "1", "512")
    rc2, out2, err2 = ctl(s, "bdev_null_delete", "TmpN")
    check("sluicectl bdev_null_delete", rc == 0 and rc2 == 0 and "TmpN" not in bdev_map(rpc),
          f"{rc}/{rc2} {err} {err2}")
    rc, out, err = ctl(s, "bdev_malloc_delete", "Malloc9")
    check("sluicectl delete of a missing bdev: exit 1, error message",
          rc == 1 and err.startswith("error -") and "Malloc9" in err, f"{rc} {err}")


def test_bad_requests(d, tmp):
    rpc = d.rpc

    def expect(name, code, method, params=None):
        try:
            got = rpc.error_code(method, params)
        except Exception as e:  # the daemon must answer, not drop the connection
            got = f"exception {e}"
        ok = got in code if isinstance(code, tuple) else got == code
        check(f"{name} -> {code}", ok and d.alive(), f"got {got}")

    resp = rpc.raw(b'{"jsonrpc": "2.0", "method": ]')
    check("malformed JSON -> -32700", resp is not None and
          resp.get("error", {}).get("code") == -32700 and d.alive(), resp)
    resp = rpc.raw(b'{"jsonrpc": "2.0", "id": 5}')
    check("request without method -> -32600", resp is not None and
          resp.get("error", {}).get("code") == -32600 and d.alive(), resp)
    resp = rpc.raw(b'{"jsonrpc": "2.0", "id": 6, "method": 42}')
    check("method not a string -> -32600", resp is not None and
          resp.get("error", {}).get("code") == -32600 and d.alive(), resp)
    expect("unknown method", -32601, "bdev_frobnicate", {"name": "x"})
    expect("framework_start_init at runtime (wrong state)", -1, "framework_start_init")
    expect("wrong type", -32602, "bdev_malloc_create",
           {"name": "T1", "num_blocks": "many", "block_size": 512})
    expect("wrong type (string param)", -32602, "bdev_get_bdevs", {"name": 5})
    expect("missing params", -32602, "bdev_malloc_create", {"name": "T2"})
    expect("no params at all", -32602, "bdev_malloc_create")
    expect("unknown param", -32602, "bdev_malloc_create",
           {"name": "T3", "num_blocks": 8, "block_size": 512, "colour": "blue"})
    expect("duplicate name", -17, "bdev_malloc_create",
           {"name": "Malloc0", "num_blocks": 8, "block_size": 512})
    expect("duplicate name across modules", -17, "bdev_null_create",
           {"name": "Malloc0", "num_blocks": 8, "block_size": 512})
    expect("zero size", (-22, -32602), "bdev_malloc_create",
           {"name": "Z", "num_blocks": 0, "block_size": 512})
    expect("bad block size", (-22, -32602), "bdev_malloc_create",
           {"name": "Z", "num_blocks": 8, "block_size": 513})
    expect("huge size", (-12, -22, -32602), "bdev_malloc_create",
           {"name": "H", "num_blocks": 1 << 50, "block_size": 4096})
    expect("negative size", (-22, -32602), "bdev_null_create",
           {"name": "Neg", "num_blocks": -1, "block_size": 512})
    check("failed creates left nothing behind",
          not ({"T1", "T2", "T3", "Z", "H", "Neg"} & set(bdev_map(rpc))))
    if has_method(rpc, "bdev_aio_create"):
        expect("aio: file that does not exist", -2, "bdev_aio_create",
               {"filename": os.path.join(tmp, "missing.img"), "name": "Nope"})
    else:
        skip("file that does not exist", "bdev_aio_create not built")
    expect("framework_get_config unknown subsystem", -32602, "framework_get_config",
           {"name": "nope"})
    expect("log_set_flag unknown flag", -32602, "log_set_flag", {"flag": "no_such_flag"})
    expect("log_set_level bad level", -32602, "log_set_level", {"level": "LOUD"})
    expect("spdk_kill_instance bad signal", -32602, "spdk_kill_instance",
           {"sig_name": "SIGFOO"})
    expect("params on a method without any", -32602, "save_config", {"x": 1})

    # Clients that go away mid-request, or right after a full one.
    rpc.raw(b'{"jsonrpc": "2.0", "method": "bdev_get_bd', close_early=True)
    rpc.raw(b'{"jsonrpc": "2.0", "method": "bdev_get_bdevs", "id": 9}', close_early=True)
    for _ in range(20):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(d.sock)
        s.close()
    check("clients disconnecting mid-request: daemon stays up", d.alive())

    # Two requests in one write (pipelined) are both answered, in order.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(d.sock)
    s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"spdk_get_version"}'
              b'{"jsonrpc":"2.0","id":2,"method":"log_get_level"}')
    dec, buf, got = json.JSONDecoder(), "", []
    while len(got) < 2:
        chunk = s.recv(65536).decode()
        if not chunk:
            break
        buf += chunk
        while buf.strip():
            try:
                obj, end = dec.raw_decode(buf.lstrip())
            except ValueError:
                break
            got.append(obj)
            buf = buf.lstrip()[end:]
    s.close()
    check("pipelined requests answered in order", [g.get("id") for g in got] == [1, 2], got)


def test_rpcpy_save_config(d):
    """rpc.py's save_config: framework_get_subsystems, then framework_get_config each."""
    rpc = d.rpc
    built = {"subsystems": [
        {"subsystem": s["subsystem"],
         "config": rpc.call("framework_get_config", {"name": s["subsystem"]})}
        for s in rpc.call("framework_get_subsystems")]}
    check("rpc.py-style save_config equals save_config", built == rpc.call("save_config"))


def test_restart_from_saved(d, tmp):
    before = bdev_map(d.rpc)
    saved = d.rpc.call("save_config")
    path = os.path.join(tmp, "saved.json")
    with open(path, "w") as f:
        json.dump(saved, f, indent=2)
    rc = d.stop()
    check("SIGTERM: exit 0", rc == 0, f"rc={rc}\n{d.output()[-2000:]}")
    check("SIGTERM: socket and pid file removed",
          not os.path.exists(d.sock) and not os.path.exists(d.pidfile))
    check("SIGTERM: orderly shutdown logged", "shutting down" in d.output())

    d2 = Daemon(tmp, "restarted", config=path)
    if not check("restart from save_config output", d2.wait_ready(), d2.output()[-2000:]):
        d2.stop()
        return
    after = bdev_map(d2.rpc)
    keys = ("block_size", "num_blocks", "uuid", "product_name")
    check("save_config holds every kind of bdev",
          {"Malloc0", "Null0"} <= set(before) and
          all(f"{k}Keep" in before for k in ("Aio", "Uring")
              if has_method(d2.rpc, f"bdev_{k.lower()}_create")), sorted(before))
    check("same bdevs after restart", sorted(before) == sorted(after),
          f"{sorted(before)} vs {sorted(after)}")
    check("same geometry and uuids after restart",
          all({k: before[n].get(k) for k in keys} == {k: after[n].get(k) for k in keys}
              for n in before if n in after))
    check("save_config is stable across restart", d2.rpc.call("save_config") == saved)
    test_idle_cpu(d2)
    d2.rpc.call("spdk_kill_instance", {"sig_name": "SIGTERM"})
    try:
        rc = d2.proc.wait(20)
    except subprocess.TimeoutExpired:
        rc = d2.stop(signal.SIGKILL)
    check("spdk_kill_instance SIGTERM: clean exit", rc == 0 and not os.path.exists(d2.sock),
          f"rc={rc}")


def test_idle_cpu(d):
    def ticks():
        with open(f"/proc/{d.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    hz = os.sysconf("SC_CLK_TCK")
    time.sleep(0.5)
    t0, w0 = ticks(), time.time()
    time.sleep(2.0)
    cpu = (ticks() - t0) / hz / (time.time() - w0)
    check(f"idle daemon uses little CPU ({cpu * 100:.1f}% of a core)", cpu < 0.10)


def test_wait_for_rpc(tmp, config):
    d = Daemon(tmp, "waiting", config=config, extra=["--wait-for-rpc"])
    if not check("--wait-for-rpc: RPC server up", d.wait_ready(), d.output()[-2000:]):
        d.stop()
        return
    rpc = d.rpc
    check("--wait-for-rpc: runtime methods refused (-1)",
          rpc.error_code("bdev_get_bdevs") == -1)
    check("--wait-for-rpc: current methods include framework_start_init",
          "framework_start_init" in rpc.call("rpc_get_methods", {"current": True}))
    check("--wait-for-rpc: framework_start_init", rpc.call("framework_start_init") is True)
    check("--wait-for-rpc: config applied after init", "Malloc0" in bdev_map(rpc))
    check("--wait-for-rpc: second framework_start_init refused (-1)",
          rpc.error_code("framework_start_init") == -1)
    check("--wait-for-rpc: SIGINT exit 0", d.stop(signal.SIGINT) == 0)


def run_expect_fail(tmp, name, config_text, needles):
    path = os.path.join(tmp, f"{name}.json")
    with open(path, "w") as f:
        f.write(config_text)
    p = subprocess.run([SLUICED, "--no-huge", "-r", os.path.join(tmp, f"{name}.sock"),
                        "-c", path], capture_output=True, text=True, timeout=60)
    out = p.stdout + p.stderr
    check(f"bad config '{name}': exit 1 with a clear error",
          p.returncode == 1 and all(n in out for n in needles),
          f"rc={p.returncode}\n{out[-1500:]}")


def test_bad_configs(tmp):
    bdev = lambda entries: json.dumps({"subsystems": [{"subsystem": "bdev",
                                                        "config": entries}]})
    run_expect_fail(tmp, "unknown_method", bdev([{"method": "bdev_frobnicate"}]),
                    ["subsystem 'bdev'", "bdev_frobnicate"])
    run_expect_fail(tmp, "bad_params", bdev([{"method": "bdev_malloc_create",
                                              "params": {"name": "M", "num_blocks": "x",
                                                         "block_size": 512}}]),
                    ["subsystem 'bdev'", "bdev_malloc_create", "error -32602"])
    run_expect_fail(tmp, "duplicate", bdev([
        {"method": "bdev_malloc_create", "params": {"name": "M", "num_blocks": 8,
                                                    "block_size": 512}},
        {"method": "bdev_null_create", "params": {"name": "M", "num_blocks": 8,
                                                  "block_size": 512}}]),
        ["subsystem 'bdev'", "bdev_null_create", "error -17"])
    run_expect_fail(tmp, "malformed", '{"subsystems": [', ["line 1"])
    run_expect_fail(tmp, "unknown_subsystem",
                    json.dumps({"subsystems": [{"subsystem": "vhost_blk", "config": [
                        {"method": "vhost_create_blk_controller", "params": {}}]}]}),
                    ["vhost_blk", "vhost_create_blk_controller", "not supported"])
    p = subprocess.run([SLUICED, "--no-huge", "-c", os.path.join(tmp, "absent.json")],
                       capture_output=True, text=True, timeout=60)
    check("config file that does not exist: exit 1", p.returncode == 1 and
          "absent.json" in p.stderr, p.stderr[-800:])
    p = subprocess.run([SLUICED, "--bogus"], capture_output=True, text=True, timeout=30)
    check("unknown flag: exit 2", p.returncode == 2, p.stderr)
    p = subprocess.run([SLUICED, "--version"], capture_output=True, text=True, timeout=30)
    check("--version", p.returncode == 0 and p.stdout.strip() == "Sluice v0.1.0", p.stdout)


def test_spdk_config(tmp):
    """A config as SPDK's save_config writes it loads, with warnings for the extras."""
    cfg = {"subsystems": [
        {"subsystem": "keyring", "config": []},
        {"subsystem": "iobuf", "config": [{"method": "iobuf_set_options",
                                           "params": {"small_pool_count": 8192}}]},
        {"subsystem": "sock", "config": [
            {"method": "sock_set_default_impl", "params": {"impl_name": "posix"}},
            {"method": "sock_impl_set_options", "params": {"impl_name": "posix"}}]},
        {"subsystem": "vmd", "config": []},
        {"subsystem": "accel", "config": [{"method": "accel_set_options",
                                           "params": {"small_cache_size": 128}}]},
        {"subsystem": "bdev", "config": [
            {"method": "bdev_set_options", "params": {"bdev_io_pool_size": 65535}},
            {"method": "bdev_nvme_set_options", "params": {"action_on_timeout": "none"}},
            {"method": "bdev_malloc_create", "params": {"name": "SpdkM", "num_blocks": 2048,
                                                        "block_size": 512}},
            {"method": "bdev_wait_for_examine"}]},
        {"subsystem": "scheduler", "config": [{"method": "framework_set_scheduler",
                                               "params": {"name": "static"}}]}]}
    path = os.path.join(tmp, "spdk.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    d = Daemon(tmp, "spdkcfg", config=path)
    ok = d.wait_ready()
    check("SPDK save_config output loads", ok and "SpdkM" in bdev_map(d.rpc),
          d.output()[-1500:])
    if ok:
        check("SPDK-only entries were warned about", "iobuf_set_options" in d.output())
    check("SPDK config daemon: SIGTERM exit 0", d.stop() == 0)


def test_example_config(tmp):
    src = os.environ.get("SLUICE_SOURCE_DIR",
                         os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../.."))
    path = os.path.join(src, "contrib", "config", "malloc.json")
    if not os.path.exists(path):
        skip("contrib/config/malloc.json", "not found")
        return
    d = Daemon(tmp, "example", config=path)
    ok = d.wait_ready()
    check("contrib/config/malloc.json loads",
          ok and {"Malloc0", "Malloc1", "Null0"} <= set(bdev_map(d.rpc)), d.output()[-1500:])
    check("example config daemon: SIGTERM exit 0", d.stop() == 0)


def test_hugepages_missing(tmp):
    with open("/proc/meminfo") as f:
        meminfo = dict(line.split(":", 1) for line in f)
    if int(meminfo.get("HugePages_Total", "0").split()[0]) != 0:
        skip("missing hugepages", "this machine has hugepages reserved")
        return
    p = subprocess.run([SLUICED, "-r", os.path.join(tmp, "huge.sock")], capture_output=True,
                       text=True, timeout=60)
    check("no hugepages: exit 1 with a clear error",
          p.returncode == 1 and "huge" in (p.stdout + p.stderr).lower(),
          f"rc={p.returncode} {p.stderr[-800:]}")


def main():
    if not os.path.exists(SLUICED) or not os.path.exists(SLUICECTL):
        print(f"sluiced/sluicectl not built in {BUILD}")
        return 77
    tmp = tempfile.mkdtemp(prefix="sluice-daemon-")
    config = os.path.join(tmp, "start.json")
    with open(config, "w") as f:
        json.dump({"subsystems": [{"subsystem": "bdev", "config": [
            {"method": "bdev_malloc_create", "params": {"name": "Malloc0",
                                                        "num_blocks": 32768,
                                                        "block_size": 512}},
            {"method": "bdev_null_create", "params": {"name": "Null0", "num_blocks": 65536,
                                                      "block_size": 512}}]}]}, f)
    d = Daemon(tmp, "main", config=config)
    try:
        if not check("sluiced starts from a JSON config", d.wait_ready(),
                     d.output()[-3000:]):
            d.stop()
        else:
            for t in (test_basics, test_ctl, test_bdevs, test_bad_requests):
                try:
                    t(d, tmp)
                except Exception:
                    check(f"{t.__name__} ran to the end", False, traceback.format_exc())
            check("daemon still up after all of it", d.alive())
            test_rpcpy_save_config(d)
            test_restart_from_saved(d, tmp)
        for t, args in ((test_wait_for_rpc, (tmp, config)), (test_bad_configs, (tmp,)),
                        (test_spdk_config, (tmp,)), (test_example_config, (tmp,)),
                        (test_hugepages_missing, (tmp,))):
            try:
                t(*args)
            except Exception:
                check(f"{t.__name__} ran to the end", False, traceback.format_exc())
    finally:
        if d.proc.poll() is None:
            d.stop(signal.SIGKILL)
    sanitizer = [n for n in os.listdir(tmp) if n.endswith(".log") and
                 "Sanitizer" in open(os.path.join(tmp, n), errors="replace").read()]
    check("no sanitizer reports in daemon logs", not sanitizer, sanitizer)
    if failed == 0 and not os.environ.get("SLUICE_KEEP_TMP"):
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"logs kept in {tmp}")
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
