#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors
"""Functional test of the network NBD server, with clients nobody here wrote.

Starts sluiced (--no-huge, private RPC socket, NBD on a Unix socket and on
127.0.0.1 with a free port) exporting malloc bdevs, then: nbdinfo (every capability
and the base:allocation context), nbdcopy round trips of random data compared with
cmp (one and four connections), qemu-img convert/compare, qemu-io, fio's nbd engine
with verify=crc32c over four connections, libnbd (what nbdsh runs) for each command
including block status and every error case, raw-socket handshakes (malformed,
STARTTLS, oversized option, unknown export), a client that half-closes, the RPCs
(get_exports with connections, remove_export under a client, save_config,
stop/start, the handshake limit), the printed URIs of a socket path and an export
name that need percent-encoding, and SIGTERM with clients.

Usage: nbd_test.py [BUILD_DIR]   (or SLUICE_BUILD_DIR)
Prints "N passed, N failed" last; exit 0 if nothing failed, 77 if a tool is missing.
"""

import errno
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

try:
    import nbd
except ImportError:
    print("skip: the libnbd Python binding (python3-libnbd) is not installed")
    sys.exit(77)

BUILD = (sys.argv[1] if len(sys.argv) > 1 else
         os.environ.get("SLUICE_BUILD_DIR",
                        os.path.join(os.path.dirname(__file__), "../../../build")))
SLUICED = os.path.join(BUILD, "exporter", "sluiced")
TOOLS = ["nbdinfo", "nbdcopy", "nbdsh", "qemu-img", "qemu-io", "fio", "cmp"]

MIB = 1 << 20
DISK_SIZE = 64 * MIB
DISK4K_SIZE = 8 * MIB
MAX_PAYLOAD = 32 * MIB

NBD_EPERM, NBD_EIO, NBD_EINVAL, NBD_ENOSPC, NBD_EOVERFLOW = 1, 5, 22, 28, 75
ENOTSUP = 95

passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")
    return cond


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Rpc:
    """Minimal JSON-RPC client (rpc.py's framing)."""

    def __init__(self, path):
        self.path = path
        self.id = 0

    def call(self, method, params=None):
        self.id += 1
        req = {"jsonrpc": "2.0", "method": method, "id": self.id}
        if params is not None:
            req["params"] = params
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(30)
        s.connect(self.path)
        s.sendall(json.dumps(req).encode())
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            try:
                resp = json.loads(buf)
                break
            except ValueError:
                continue
        s.close()
        if "error" in resp:
            raise RuntimeError(f"{method}: {resp['error']}")
        return resp["result"]

    def fails(self, method, params=None):
        return self.error(method, params) is not None

    def error(self, method, params=None):
        """The error of a call that fails, as text; None if it succeeds."""
        try:
            self.call(method, params)
        except RuntimeError as e:
            return str(e)
        return None


class Env:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="sluice-nbd-")
        self.port = free_port()
        self.sock = os.path.join(self.tmp, "nbd.sock")
        self.rpc_path = os.path.join(self.tmp, "rpc.sock")
        self.proc = None
        self.rpc = Rpc(self.rpc_path)

    def unix_uri(self, name="disk"):
        return f"nbd+unix:///{name}?socket={self.sock}"

    def tcp_uri(self, name="disk"):
        return f"nbd://127.0.0.1:{self.port}/{name}"

    def config(self):
        return {"subsystems": [
            {"subsystem": "bdev", "config": [
                {"method": "bdev_malloc_create",
                 "params": {"name": "Malloc0", "num_blocks": DISK_SIZE // 512,
                            "block_size": 512}},
                {"method": "bdev_malloc_create",
                 "params": {"name": "Malloc1", "num_blocks": DISK4K_SIZE // 4096,
                            "block_size": 4096}}]},
            {"subsystem": "nbd", "config": [
                {"method": "nbd_server_start",
                 "params": {"host": "127.0.0.1", "port": self.port,
                            "unix_path": self.sock}},
                {"method": "nbd_server_add_export",
                 "params": {"name": "disk", "bdev_name": "Malloc0",
                            "description": "test disk"}},
                {"method": "nbd_server_add_export",
                 "params": {"name": "ro", "bdev_name": "Malloc0", "read_only": True}},
                {"method": "nbd_server_add_export",
                 "params": {"name": "disk4k", "bdev_name": "Malloc1"}}]}]}

    def start(self, config=None):
        path = os.path.join(self.tmp, "config.json")
        with open(path, "w") as f:
            json.dump(config or self.config(), f)
        self.log = open(os.path.join(self.tmp, "sluiced.log"), "a")
        self.proc = subprocess.Popen([SLUICED, "--no-huge", "-s", "512", "-r", self.rpc_path,
                                      "-c", path], stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(200):
            if os.path.exists(self.sock) and os.path.exists(self.rpc_path):
                try:
                    self.rpc.call("nbd_server_get_exports")
                    return True
                except (OSError, RuntimeError):
                    pass
            if self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def stop(self):
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        return rc


def connect(uri, strict=True, meta=True, structured=True, handshake_flags=None):
    h = nbd.NBD()
    h.set_full_info(True)
    if not strict:
        h.set_strict_mode(0)
    if meta:
        h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
    h.set_request_structured_replies(structured)
    if handshake_flags is not None:
        h.set_handshake_flags(handshake_flags)
    h.connect_uri(uri)
    return h


def nbd_errno(fn):
    """Run fn; return the errno of the NBD error it raised, or 0."""
    try:
        fn()
    except nbd.Error as e:
        # The binding gives the errno as its name ("EINVAL").
        return getattr(errno, e.errno, -1) if isinstance(e.errno, str) else e.errno
    return 0


# ---- nbdinfo --------------------------------------------------------------------

def test_nbdinfo(env):
    r = run(["nbdinfo", "--json", env.unix_uri()])
    info = json.loads(r.stdout) if r.returncode == 0 else {}
    check("nbdinfo --json", r.returncode == 0, r.stderr)
    exp = info.get("exports", [{}])[0]
    check("nbdinfo: fixed newstyle + structured",
          info.get("protocol") == "newstyle-fixed" and info.get("structured") is True, info)
    caps = ["can_cache", "can_df", "can_fast_zero", "can_flush", "can_fua", "can_multi_conn",
            "can_trim", "can_zero"]
    check("nbdinfo: every capability", all(exp.get(c) is True for c in caps),
          {c: exp.get(c) for c in caps})
    check("nbdinfo: writable, size", exp.get("is_read_only") is False and
          exp.get("export-size") == DISK_SIZE, exp)
    check("nbdinfo: block sizes", exp.get("block_size_minimum") == 512 and
          exp.get("block_size_preferred") == 4096 and
          exp.get("block_size_maximum") == MAX_PAYLOAD, exp)
    check("nbdinfo: description (NBD_INFO_DESCRIPTION)", exp.get("description") == "test disk",
          exp)
    check("nbdinfo: base:allocation context", exp.get("contexts") == ["base:allocation"], exp)

    r = run(["nbdinfo", "--json", env.tcp_uri("ro")])
    exp = json.loads(r.stdout)["exports"][0] if r.returncode == 0 else {}
    check("nbdinfo: read-only export hides write commands",
          exp.get("is_read_only") is True and exp.get("can_trim") is False and
          exp.get("can_zero") is False and exp.get("can_fua") is False, exp)

    r = run(["nbdinfo", "--json", env.unix_uri("disk4k")])
    exp = json.loads(r.stdout)["exports"][0] if r.returncode == 0 else {}
    check("nbdinfo: 4 KiB bdev has minimum block 4096", exp.get("block_size_minimum") == 4096,
          exp)

    r = run(["nbdinfo", "--list", "--json", env.tcp_uri("")])
    names = sorted(e.get("export-name") for e in json.loads(r.stdout).get("exports", [])) \
        if r.returncode == 0 else []
    check("nbdinfo --list (NBD_OPT_LIST)", names == ["disk", "disk4k", "ro"], names)

    r = run(["nbdinfo", "--size", env.tcp_uri("nosuch")])
    check("nbdinfo: unknown export refused (NBD_REP_ERR_UNKNOWN)", r.returncode != 0 and
          "unknown" in r.stderr.lower() or "export" in r.stderr.lower(), r.stderr)

    r = run(["nbdinfo", "--map", env.unix_uri()])
    total = 0
    ok = r.returncode == 0
    for line in r.stdout.splitlines():
        f = line.split()
        if int(f[0]) != total:
            ok = False
        total += int(f[1])
    check("nbdinfo --map covers the export", ok and total == DISK_SIZE, r.stdout + r.stderr)


# ---- Copies, qemu, fio ------------------------------------------------------------

def test_nbdcopy(env):
    src = os.path.join(env.tmp, "rand.img")
    back = os.path.join(env.tmp, "back.img")
    with open(src, "wb") as f:
        f.write(os.urandom(DISK_SIZE))
    for conns, up, down in ((1, env.tcp_uri(), env.unix_uri()),
                            (4, env.unix_uri(), env.tcp_uri())):
        if os.path.exists(back):
            os.unlink(back)
        r1 = run(["nbdcopy", f"--connections={conns}", src, up])
        r2 = run(["nbdcopy", f"--connections={conns}", down, back])
        r3 = run(["cmp", src, back])
        check(f"nbdcopy round trip, {conns} connection(s), cmp",
              r1.returncode == 0 and r2.returncode == 0 and r3.returncode == 0,
              r1.stderr + r2.stderr + r3.stdout)


def test_qemu(env):
    src = os.path.join(env.tmp, "qemu.img")
    with open(src, "wb") as f:
        f.write(os.urandom(16 * MIB))
    r = run(["qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", src, env.tcp_uri()])
    check("qemu-img convert to NBD", r.returncode == 0, r.stderr)
    r = run(["qemu-img", "compare", "-f", "raw", "-F", "raw", src,
             env.unix_uri("ro")])
    # compare's second image is bigger: it checks the rest reads as zeroes, and it is
    # random data from test_nbdcopy, so compare only the prefix via a size-limited copy.
    part = os.path.join(env.tmp, "qemu-back.img")
    r = run(["qemu-img", "convert", "-f", "raw", "-O", "raw", env.unix_uri("ro"), part])
    os.truncate(part, 16 * MIB)
    r2 = run(["qemu-img", "compare", "-f", "raw", "-F", "raw", src, part])
    check("qemu-img convert from NBD + compare", r.returncode == 0 and r2.returncode == 0,
          r.stderr + r2.stdout + r2.stderr)

    cmds = ["write -P 0xab 0 64k", "read -P 0xab 0 64k", "write -z 64k 64k",
            "read -P 0 64k 64k", "discard 128k 64k", "read -P 0 128k 64k",
            "write -f -P 0xcd 1M 4k", "read -P 0xcd 1M 4k", "flush",
            "aio_write -P 0x11 2M 128k", "aio_flush", "read -P 0x11 2M 128k"]
    args = ["qemu-io", "-f", "raw"]
    for c in cmds:
        args += ["-c", c]
    r = run(args + [env.unix_uri()])
    bad = [l for l in r.stdout.splitlines() if "fail" in l.lower() or "pattern" in l.lower()]
    check("qemu-io write/read/zero/discard/FUA/flush/aio", r.returncode == 0 and not bad and
          "Pattern verification failed" not in r.stdout, r.stdout + r.stderr)


def test_fio(env):
    if run(["fio", "--enghelp=nbd"]).returncode != 0:
        check("fio nbd engine present", False, "fio has no nbd engine")
        return
    r = run(["fio", "--name=verify", "--ioengine=nbd", f"--uri={env.unix_uri()}",
             "--rw=randwrite", "--bs=4k", "--iodepth=16", "--numjobs=4", "--size=4M",
             "--offset_increment=4M", "--verify=crc32c", "--do_verify=1",
             "--verify_fatal=1", "--group_reporting", "--output-format=json"])
    ok = r.returncode == 0
    errs = -1
    if ok:
        out = json.loads(r.stdout[r.stdout.index("{"):])
        errs = sum(j.get("error", 0) for j in out["jobs"])
    check("fio nbd engine, 4 connections, verify=crc32c", ok and errs == 0,
          r.stdout[-2000:] + r.stderr[-2000:])


# ---- libnbd, command by command (what nbdsh scripts run) ---------------------------

def test_commands(env):
    h = connect(env.unix_uri())
    check("structured replies negotiated", h.get_structured_replies_negotiated())
    check("base:allocation negotiated", h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION))
    data = os.urandom(128 * 1024)
    h.pwrite(data, 1 * MIB)
    check("pwrite/pread round trip", h.pread(len(data), 1 * MIB) == data)
    h.pwrite(data[:4096], 3 * MIB, nbd.CMD_FLAG_FUA)
    check("pwrite with FUA", h.pread(4096, 3 * MIB) == data[:4096])
    h.flush()
    check("flush", True)
    h.trim(64 * 1024, 1 * MIB)
    check("trim then read zeroes (malloc)", h.pread(64 * 1024, 1 * MIB) == bytes(64 * 1024))
    h.zero(64 * 1024, 1 * MIB + 64 * 1024, nbd.CMD_FLAG_NO_HOLE)
    check("write zeroes (NO_HOLE)", h.pread(64 * 1024, 1 * MIB + 64 * 1024) ==
          bytes(64 * 1024))
    e = nbd_errno(lambda: h.zero(4096, 5 * MIB, nbd.CMD_FLAG_FAST_ZERO))
    check("write zeroes FAST_ZERO: done or ENOTSUP", e in (0, ENOTSUP), e)
    h.trim(4096, 6 * MIB, nbd.CMD_FLAG_FUA)
    h.zero(4096, 6 * MIB, nbd.CMD_FLAG_FUA)
    check("trim and zero with FUA", True)
    h.cache(1 * MIB, 0)
    check("cache", True)

    extents = []

    def cb(metacontext, offset, entries, err):
        extents.append((metacontext, offset, list(entries)))
        return 0
    h.block_status(4 * MIB, 0, cb)
    ents = extents[0][2] if extents else []
    lens = ents[0::2]
    check("block status: base:allocation extents within the range",
          extents and extents[0][0] == nbd.CONTEXT_BASE_ALLOCATION and sum(lens) <= 4 * MIB and
          all(x > 0 for x in lens) and all(f & ~3 == 0 for f in ents[1::2]), extents)
    extents.clear()
    h.block_status(4 * MIB, 0, cb, nbd.CMD_FLAG_REQ_ONE)
    check("block status with REQ_ONE: one extent", extents and len(extents[0][2]) == 2,
          extents)
    # Never-written space of a fresh malloc bdev is reported as a hole that reads as zero.
    h4 = connect(env.unix_uri("disk4k"))
    extents.clear()
    h4.block_status(64 * 1024, DISK4K_SIZE - 64 * 1024, cb)
    check("block status: unwritten space is hole+zero",
          extents and extents[0][2][1] == nbd.STATE_HOLE | nbd.STATE_ZERO, extents)
    h4.shutdown()
    # Reads are one data chunk (NBD_REPLY_TYPE_OFFSET_DATA): DF is accepted.
    chunks = []

    def chunk(buf, offset, status, err):
        chunks.append((offset, len(buf), status))
        return 0
    h.pread_structured(64 * 1024, 0, chunk, nbd.CMD_FLAG_DF)
    check("structured read with DF: one data chunk",
          chunks == [(0, 64 * 1024, nbd.READ_DATA)], chunks)

    # Several requests in flight on one connection, answered out of order or not.
    cookies = [h.aio_pwrite(bytes([i]) * 4096, i * 4096) for i in range(64)]
    for c in cookies:
        while not h.aio_command_completed(c):
            h.poll(-1)
    bufs = [nbd.Buffer(4096) for _ in range(64)]
    cookies = [h.aio_pread(bufs[i], i * 4096) for i in range(64)]
    for c in cookies:
        while not h.aio_command_completed(c):
            h.poll(-1)
    check("64 reads and writes in flight", all(bufs[i].to_bytearray() == bytes([i]) * 4096
                                               for i in range(64)))
    # One request larger than a slot buffer, one at the maximum.
    big = os.urandom(MAX_PAYLOAD)
    h.pwrite(big, 0)
    check("32 MiB write and read (maximum block size)", h.pread(MAX_PAYLOAD, 0) == big)
    h.shutdown()
    check("disconnect (NBD_CMD_DISC)", True)


def test_errors(env):
    h = connect(env.unix_uri(), strict=False)
    good = lambda: h.pread(4096, 0) is not None
    cases = [
        ("read past the end: EINVAL", lambda: h.pread(4096, DISK_SIZE), NBD_EINVAL),
        ("write past the end: ENOSPC", lambda: h.pwrite(bytes(4096), DISK_SIZE - 512),
         NBD_ENOSPC),
        ("trim past the end: EINVAL", lambda: h.trim(4096, DISK_SIZE), NBD_EINVAL),
        ("zero past the end: ENOSPC", lambda: h.zero(4096, DISK_SIZE), NBD_ENOSPC),
        ("block status past the end: EINVAL",
         lambda: h.block_status(4096, DISK_SIZE, lambda *a: 0), NBD_EINVAL),
        ("unaligned read: EINVAL", lambda: h.pread(100, 1), NBD_EINVAL),
        ("unaligned write (payload drained): EINVAL", lambda: h.pwrite(bytes(1000), 7),
         NBD_EINVAL),
        ("zero-length read: EINVAL", lambda: h.pread(0, 0), NBD_EINVAL),
        ("oversized read: EOVERFLOW", lambda: h.pread(MAX_PAYLOAD + 4096, 0), NBD_EOVERFLOW),
        ("oversized write (payload drained): EOVERFLOW",
         lambda: h.pwrite(bytes(MAX_PAYLOAD + 4096), 0), NBD_EOVERFLOW),
        ("flag not valid for the command: EINVAL",
         lambda: h.pread(4096, 0, nbd.CMD_FLAG_REQ_ONE), NBD_EINVAL),
        ("NO_HOLE on a write: EINVAL",
         lambda: h.pwrite(bytes(4096), 0, nbd.CMD_FLAG_NO_HOLE), NBD_EINVAL),
    ]
    for name, fn, want in cases:
        got = nbd_errno(fn)
        check(name, got == want and good(), f"got {got}, want {want}")
    h.shutdown()

    h = connect(env.unix_uri(), strict=False, meta=False)
    got = nbd_errno(lambda: h.block_status(4096, 0, lambda *a: 0))
    check("block status without a context: EINVAL", got == NBD_EINVAL, got)
    h.shutdown()

    h = connect(env.unix_uri("ro"), strict=False)
    for name, fn in (("write", lambda: h.pwrite(bytes(4096), 0)),
                     ("trim", lambda: h.trim(4096, 0)),
                     ("zero", lambda: h.zero(4096, 0))):
        got = nbd_errno(fn)
        check(f"{name} on a read-only export: EPERM", got == NBD_EPERM and good(), got)
    h.shutdown()

    # Simple replies (no structured replies): data and errors still right.
    h = connect(env.tcp_uri(), strict=False, meta=False, structured=False)
    check("simple replies: structured not negotiated",
          not h.get_structured_replies_negotiated())
    h.pwrite(b"\x5a" * 4096, 8 * MIB)
    check("simple replies: read", h.pread(4096, 8 * MIB) == b"\x5a" * 4096)
    got = nbd_errno(lambda: h.pread(4096, DISK_SIZE))
    check("simple replies: read error without payload", got == NBD_EINVAL and
          h.pread(4096, 8 * MIB) == b"\x5a" * 4096, got)
    h.shutdown()

    # Plain (not fixed) newstyle: NBD_OPT_EXPORT_NAME, no options.
    h = connect(env.tcp_uri(), meta=False, structured=False, handshake_flags=0)
    check("non-fixed newstyle client (NBD_OPT_EXPORT_NAME)", h.pread(4096, 8 * MIB) ==
          b"\x5a" * 4096)
    h.shutdown()


def test_multi_conn(env):
    h1 = connect(env.tcp_uri())
    h2 = connect(env.unix_uri())
    data = os.urandom(65536)
    h1.pwrite(data, 10 * MIB)
    h2.flush()
    check("multi-conn: write on one connection, flush and read on another",
          h2.can_multi_conn() and h2.pread(65536, 10 * MIB) == data)
    exports = env.rpc.call("nbd_server_get_exports", {"name": "disk"})
    conns = exports[0]["connections"] if exports else []
    check("nbd_server_get_exports lists the connections",
          len(conns) == 2 and any(c["peer"].startswith("127.0.0.1:") for c in conns) and
          any(c["peer"] == "unix" for c in conns) and
          all(c["structured_replies"] and c["base_allocation"] for c in conns), conns)
    check("nbd_server_get_exports: URIs",
          exports and env.tcp_uri() in exports[0]["uris"] and
          env.unix_uri() in exports[0]["uris"], exports)
    h1.shutdown()
    h2.shutdown()


# ---- Raw handshakes -----------------------------------------------------------------

OPTS_MAGIC = 0x49484156454F5054
REP_MAGIC = 0x3e889045565a9


def raw_open(env, flags=3):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(env.sock)
    hello = recv_all(s, 18)
    s.sendall(struct.pack(">I", flags))
    return s, hello


def recv_all(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def raw_option(s, opt, data=b""):
    s.sendall(struct.pack(">QII", OPTS_MAGIC, opt, len(data)) + data)


def raw_reply(s):
    hdr = recv_all(s, 20)
    if len(hdr) < 20:
        return None
    magic, opt, typ, length = struct.unpack(">QIII", hdr)
    return magic, opt, typ, recv_all(s, length)


def is_closed(s):
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, socket.timeout):
        return True


def closed_within(s, secs):
    """Whether the server closes s (what it sent first is read) within secs."""
    s.settimeout(secs)
    try:
        while s.recv(4096):
            pass
    except ConnectionResetError:
        pass
    except socket.timeout:
        return False
    return True


def test_handshake(env):
    s, hello = raw_open(env)
    check("hello: NBDMAGIC, IHAVEOPT, FIXED_NEWSTYLE|NO_ZEROES",
          hello == struct.pack(">QQH", 0x4e42444d41474943, OPTS_MAGIC, 3), hello)
    raw_option(s, 5)  # STARTTLS
    r = raw_reply(s)
    check("STARTTLS: NBD_REP_ERR_UNSUP", r and r[0] == REP_MAGIC and r[2] == (1 << 31) + 1, r)
    raw_option(s, 99)
    r = raw_reply(s)
    check("unknown option: NBD_REP_ERR_UNSUP", r and r[2] == (1 << 31) + 1, r)
    raw_option(s, 3, b"x")  # LIST with data
    r = raw_reply(s)
    check("NBD_OPT_LIST with data: NBD_REP_ERR_INVALID", r and r[2] == (1 << 31) + 3, r)
    raw_option(s, 7, struct.pack(">I", 100) + b"disk")  # GO, name length overruns
    r = raw_reply(s)
    check("GO with a bad name length: NBD_REP_ERR_INVALID", r and r[2] == (1 << 31) + 3, r)
    raw_option(s, 10, struct.pack(">I", 4) + b"disk" + struct.pack(">I", 0))  # SET_META
    r = raw_reply(s)
    check("SET_META_CONTEXT before structured replies: ERR_INVALID",
          r and r[2] == (1 << 31) + 3, r)
    raw_option(s, 6, b"\0" * 70000)  # longer than the server takes
    r = raw_reply(s)
    check("oversized option: NBD_REP_ERR_TOO_BIG, data skipped", r and r[2] == (1 << 31) + 9, r)
    raw_option(s, 8)  # STRUCTURED_REPLY
    r = raw_reply(s)
    check("STRUCTURED_REPLY: ACK", r and r[2] == 1, r)
    q = b"base:"
    raw_option(s, 9, struct.pack(">I", 4) + b"disk" + struct.pack(">I", 1) +
               struct.pack(">I", len(q)) + q)  # LIST_META_CONTEXT "base:"
    r1, r2 = raw_reply(s), raw_reply(s)
    check("LIST_META_CONTEXT base: -> base:allocation, ACK",
          r1 and r1[2] == 4 and r1[3][4:] == b"base:allocation" and r2 and r2[2] == 1,
          (r1, r2))
    raw_option(s, 2)  # ABORT
    r = raw_reply(s)
    check("ABORT: ACK then close", r and r[2] == 1 and is_closed(s), r)
    s.close()

    for name, flags, send in (
            ("unknown client flags close the connection", 0x80, b""),
            ("bad option magic closes the connection", 3, b"\1" * 16),
            ("unknown export with NBD_OPT_EXPORT_NAME closes the connection", 3,
             struct.pack(">QII", OPTS_MAGIC, 1, 5) + b"nosuch")):
        s, _ = raw_open(env, flags)
        s.sendall(send)
        check(name, is_closed(s))
        s.close()

    # A client that vanishes mid-option, and garbage: the server carries on.
    s, _ = raw_open(env)
    s.sendall(struct.pack(">QII", OPTS_MAGIC, 7, 1000) + b"abc")
    s.close()
    s = socket.socket(socket.AF_UNIX)
    s.connect(env.sock)
    s.sendall(os.urandom(4096))
    s.close()
    h = connect(env.unix_uri())
    check("server unaffected by bad handshakes", h.get_size() == DISK_SIZE)
    h.shutdown()

    # Requests pipelined right behind NBD_OPT_GO, and a bad request magic.
    s, _ = raw_open(env)
    go = struct.pack(">I", 4) + b"disk" + struct.pack(">H", 0)
    req = struct.pack(">IHHQQI", 0x25609513, 0, 0, 0x1234, 0, 512)
    raw_option(s, 7, go)
    s.sendall(req)
    replies = []
    while True:
        r = raw_reply(s)
        replies.append(r)
        if r is None or r[2] == 1 or r[2] & (1 << 31):
            break
    simple = recv_all(s, 16 + 512)
    check("GO then a pipelined READ (simple reply)",
          replies[-1] and replies[-1][2] == 1 and
          simple[:16] == struct.pack(">IIQ", 0x67446698, 0, 0x1234), simple[:16])
    s.sendall(struct.pack(">IHHQQI", 0xdeadbeef, 0, 0, 1, 0, 512))
    check("bad request magic closes the connection", is_closed(s))
    s.close()

    # A client that half-closes (TCP FIN) right after its requests still gets every
    # reply, then EOF.
    s = socket.create_connection(("127.0.0.1", env.port), timeout=10)
    recv_all(s, 18)
    s.sendall(struct.pack(">I", 3))
    raw_option(s, 7, go)
    while True:
        r = raw_reply(s)
        if r is None or r[2] == 1 or r[2] & (1 << 31):
            break
    n = 16
    s.sendall(b"".join(struct.pack(">IHHQQI", 0x25609513, 0, 0, i, i * 4096, 4096)
                       for i in range(n)))
    s.shutdown(socket.SHUT_WR)
    cookies = set()
    for _ in range(n):
        hdr = recv_all(s, 16)
        if len(hdr) < 16:
            break
        magic, err, cookie = struct.unpack(">IIQ", hdr)
        if magic == 0x67446698 and err == 0 and len(recv_all(s, 4096)) == 4096:
            cookies.add(cookie)
    check("half-close after the requests: every reply, then EOF",
          r and r[2] == 1 and cookies == set(range(n)) and is_closed(s), sorted(cookies))
    s.close()


# ---- RPCs and life cycle ------------------------------------------------------------

def test_rpc(env):
    rpc = env.rpc
    check("add_export of a missing bdev fails",
          rpc.fails("nbd_server_add_export", {"name": "x", "bdev_name": "nosuch"}))
    check("add_export with a taken name fails",
          rpc.fails("nbd_server_add_export", {"name": "disk", "bdev_name": "Malloc1"}))
    # Network exports share their bdev (like NBD multi-conn); kernel devices claim it.
    check("second writable export of the same bdev is allowed",
          not rpc.fails("nbd_server_add_export", {"name": "disk2", "bdev_name": "Malloc0"}))
    check("and removed again",
          not rpc.fails("nbd_server_remove_export", {"name": "disk2"}))
    check("nbd_server_start twice fails", rpc.fails("nbd_server_start", {}))
    check("bad port refused", rpc.fails("nbd_server_start", {"port": 70000}))
    for bad in (-1, 3601, 10 ** 12):
        err = rpc.error("nbd_server_start", {"handshake_limit": bad})
        check(f"handshake_limit {bad} refused, naming the param and the value",
              err is not None and "'handshake_limit'" in err and f"got {bad}" in err, err)
    check("remove_export of a missing export fails",
          rpc.fails("nbd_server_remove_export", {"name": "nosuch"}))
    cfg = rpc.call("save_config")
    nbd_cfg = [s for s in cfg["subsystems"] if s["subsystem"] == "nbd"]
    methods = [c["method"] for c in nbd_cfg[0]["config"]] if nbd_cfg else []
    check("save_config: nbd_server_start + 3 exports",
          methods == ["nbd_server_start"] + ["nbd_server_add_export"] * 3, methods)
    start = nbd_cfg[0]["config"][0]["params"] if nbd_cfg else {}
    check("save_config: listen addresses", start.get("port") == env.port and
          start.get("unix_path") == env.sock and start.get("host") == "127.0.0.1", start)
    check("save_config: the default handshake limit", start.get("handshake_limit") == 10, start)

    # Remove an export under a client: the client is disconnected, the export goes.
    h = connect(env.unix_uri("disk4k"))
    h.pwrite(bytes(4096), 0)
    rpc.call("nbd_server_remove_export", {"name": "disk4k"})
    gone = nbd_errno(lambda: h.pread(4096, 0)) != 0
    check("remove_export disconnects its clients", gone)
    names = [e["name"] for e in rpc.call("nbd_server_get_exports")]
    check("removed export is gone", "disk4k" not in names, names)
    rpc.call("nbd_server_add_export", {"name": "disk4k", "bdev_name": "Malloc1",
                                       "description": "again"})
    h = connect(env.unix_uri("disk4k"))
    check("export added again", h.get_export_description() == "again")
    h.shutdown()

    # Stop the server with a client connected, then start it again on new addresses.
    h = connect(env.tcp_uri())
    rpc.call("nbd_server_stop")
    check("server stop disconnects clients", nbd_errno(lambda: h.pread(4096, 0)) != 0)
    check("server stop removes the Unix socket", not os.path.exists(env.sock))
    env.port = free_port()
    rpc.call("nbd_server_start", {"port": env.port, "unix_path": env.sock,
                                  "handshake_limit": 1})
    # Clients that stall in the handshake are cut off after the limit (1 s; the bound
    # below only guards against a hang); one that negotiates meanwhile is served.
    silent = socket.socket(socket.AF_UNIX)
    silent.connect(env.sock)
    half, _ = raw_open(env)
    half.sendall(struct.pack(">QII", OPTS_MAGIC, 7, 100) + b"\0\0")
    h = connect(env.tcp_uri())
    check("server restarts; exports kept", h.get_size() == DISK_SIZE)
    check("handshake limit: a silent client is disconnected", closed_within(silent, 30))
    check("handshake limit: a client stalled mid-option is disconnected",
          closed_within(half, 30))
    check("handshake limit: a client that negotiated is still served",
          len(h.pread(4096, 0)) == 4096)
    silent.close()
    half.close()
    h.shutdown()
    cfg = rpc.call("save_config")
    start = [c["params"] for s in cfg["subsystems"] if s["subsystem"] == "nbd"
             for c in s["config"] if c["method"] == "nbd_server_start"]
    check("save_config: the handshake limit given", start and
          start[0].get("handshake_limit") == 1, start)


def test_uri_encoding(env):
    """A socket path and an export name with characters a URI cannot hold as they are:
    the URIs nbd_server_get_exports prints are percent-encoded, and clients take them."""
    rpc = env.rpc
    odd = os.path.join(env.tmp, "sock dir &?#%=+\u00e9")
    os.mkdir(odd)
    path = os.path.join(odd, "nbd.sock")
    name = "my disk&?#%\u00e9"
    rpc.call("nbd_server_stop")
    env.port = free_port()
    rpc.call("nbd_server_start", {"host": "127.0.0.1", "port": env.port, "unix_path": path})
    rpc.call("nbd_server_add_export", {"name": name, "bdev_name": "Malloc1"})
    exports = rpc.call("nbd_server_get_exports", {"name": name})
    uris = exports[0]["uris"] if exports else []
    unix = [u for u in uris if u.startswith("nbd+unix:")]
    tcp = [u for u in uris if u.startswith("nbd:")]
    # Python's quote() escapes all but RFC 3986's unreserved set and 'safe'.
    want = ("nbd+unix:///my%20disk%26%3F%23%25%C3%A9?socket=" +
            urllib.parse.quote(path, safe="/"))
    check("URI of a Unix path with a space, &?#%=+ and non-ASCII is percent-encoded",
          unix == [want], f"{unix} != {want}")
    for uri in unix + tcp:
        r = run(["nbdinfo", "--size", uri])
        check(f"nbdinfo accepts {uri}", r.returncode == 0 and
              r.stdout.strip() == str(DISK4K_SIZE), r.stdout + r.stderr)
    rpc.call("nbd_server_remove_export", {"name": name})
    rpc.call("nbd_server_stop")
    env.port = free_port()
    rpc.call("nbd_server_start", {"host": "127.0.0.1", "port": env.port,
                                  "unix_path": env.sock})


def test_sigterm(env):
    hs = [connect(env.unix_uri()) for _ in range(3)]
    hs[0].pwrite(bytes(4096), 0)
    rc = env.stop()
    check("SIGTERM with clients connected: clean exit", rc == 0, rc)


def main():
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing or not os.path.exists(SLUICED):
        print(f"skip: missing {missing or SLUICED}")
        return 77
    env = Env()
    if not env.start():
        print("FAIL sluiced did not start; log:")
        print(open(os.path.join(env.tmp, "sluiced.log")).read())
        return 1
    tests = [test_nbdinfo, test_nbdcopy, test_qemu, test_fio, test_commands, test_errors,
             test_multi_conn, test_handshake, test_rpc, test_uri_encoding, test_sigterm]
    for t in tests:
        try:
            t(env)
        except Exception:
            check(t.__name__, False, traceback.format_exc())
        if env.proc is not None and env.proc.poll() is not None:
            check("sluiced still running after " + t.__name__, False)
            break
    env.stop()
    if failed:
        print(open(os.path.join(env.tmp, "sluiced.log")).read()[-4000:])
    else:
        shutil.rmtree(env.tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
