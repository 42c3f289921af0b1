#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors
"""FUSE export benchmark: Sluice (sluiced's fuse_start_disk of a malloc bdev) against
qemu-storage-daemon's FUSE export (a raw file on /dev/shm) and nbdfuse over nbdkit's
memory plugin, one after another in the same run.

Each export is a --size MiB file, written through once before its runs (so reads hit
allocated memory everywhere), then fio does 4 KiB random reads and writes with
--direct=1: QD 32 with one libaio job, and 2 psync jobs (QD 1 each). Every server is
pinned to --server-cpu (sluiced's reactor mask too; nbdkit inherits nbdfuse's), fio to
--fio-cpu; "none" leaves either unpinned. The server's CPU over each run is read from
/proc (for nbdfuse, with its nbdkit child).

Prints IOPS per run and the table with Sluice / best peer, and writes results.json,
results.md and results.png (gnuplot) to --outdir. Needs root (mounts).

Usage: fuse_bench.py [--build DIR] [--runtime S] [--quick] [--servers sluice,qsd,nbdfuse]
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import benchlib  # noqa: E402

MIB = 1 << 20


def mounted(path):
    """True when path is a mount point (FUSE exports mount on a file or a directory)."""
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == path for line in f)


def unmount_under(tmp):
    """Lazily unmount whatever is still mounted under tmp, deepest first: a server that
    died leaves its mount behind ("Transport endpoint is not connected")."""
    with open("/proc/self/mounts") as f:
        points = [line.split()[1] for line in f]
    for m in sorted((p for p in points if p.startswith(tmp + "/")), reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)


def touch(path):
    open(path, "a").close()


def sluice_server(args, tmp):
    path = os.path.join(tmp, "sluice.img")
    cfg = {"subsystems": [
        {"subsystem": "bdev", "config": [
            {"method": "bdev_malloc_create",
             "params": {"name": "Malloc0", "num_blocks": args.size * MIB // 4096,
                        "block_size": 4096}}]},
        {"subsystem": "fuse", "config": [
            {"method": "fuse_start_disk",
             "params": {"bdev_name": "Malloc0", "path": path}}]}]}
    cfg_path = os.path.join(tmp, "sluice.json")
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    sluiced = os.path.join(args.build, "exporter", "sluiced")
    mask = f"[{args.server_cpu}]" if args.server_cpu else "0x1"
    cmd = [sluiced, "--no-huge", "-s", str(args.size + 512), "-m", mask,
           "-r", os.path.join(tmp, "rpc.sock"), "-c", cfg_path]
    if args.busy_poll:
        cmd.append("--busy-poll")
    return benchlib.Server("sluice", cmd, lambda: mounted(path), cpus=args.server_cpu,
                           setup=lambda: touch(path),
                           log=os.path.join(tmp, "sluice.log")), path


def qsd_server(args, tmp):
    path = os.path.join(tmp, "qsd.img")
    img = f"/dev/shm/sluice-fuse-bench-{os.getpid()}.raw"

    def setup():
        touch(path)
        with open(img, "wb") as f:
            f.truncate(args.size * MIB)

    def cleanup():
        if os.path.exists(img):
            os.unlink(img)
    cmd = ["qemu-storage-daemon",
           "--blockdev", f"driver=file,node-name=file0,filename={img},cache.direct=off",
           "--blockdev", "driver=raw,node-name=disk0,file=file0",
           "--export", f"type=fuse,id=exp0,node-name=disk0,mountpoint={path},writable=on"]
    return benchlib.Server("qsd", cmd, lambda: mounted(path), cpus=args.server_cpu,
                           setup=setup, cleanup=cleanup,
                           log=os.path.join(tmp, "qsd.log")), path


def nbdfuse_server(args, tmp):
    mnt = os.path.join(tmp, "nbdfuse")
    # nbdkit -s (on a socketpair) is nbdfuse's child, pinned with it by inheritance.
    cmd = ["nbdfuse", os.path.join(mnt, "disk"), "[", "nbdkit", "memory",
           f"{args.size}M", "]"]
    return benchlib.Server("nbdfuse", cmd, lambda: mounted(mnt), cpus=args.server_cpu,
                           setup=lambda: os.makedirs(mnt, exist_ok=True),
                           log=os.path.join(tmp, "nbdfuse.log"),
                           with_children=True), os.path.join(mnt, "disk")


def workloads(args):
    """(name, fio args) for each run."""
    # No ramp_time: the server's CPU is read over the whole fio run (the fill before
    # the runs is the warm-up).
    rt = [f"--runtime={args.runtime}", "--time_based"]
    w = []
    for rw in ("randread", "randwrite"):
        w.append((f"4k {rw} QD32 libaio",
                  [f"--rw={rw}", "--ioengine=libaio", "--iodepth=32", "--numjobs=1"] + rt))
    for rw in ("randread", "randwrite"):
        w.append((f"4k {rw} 2 psync jobs",
                  [f"--rw={rw}", "--ioengine=psync", "--numjobs=2"] + rt))
    return w


def fill(common, fio_cpu):
    """Write the whole file once; buffered with fsync where O_DIRECT is refused."""
    base = common + ["--rw=write", "--bs=1M", "--ioengine=psync"]
    try:
        benchlib.fio(base + ["--direct=1"], cpus=fio_cpu)
    except RuntimeError:
        benchlib.fio(base + ["--direct=0", "--end_fsync=1"], cpus=fio_cpu)


def run_server(report, started, make, args, tmp, wl):
    server, path = make(args, tmp)
    name = server.name
    common = ["--name=bench", f"--filename={path}", f"--size={args.size}M", "--bs=4k",
              "--direct=1", "--group_reporting"]
    started.append(server)
    try:
        server.start()
    except RuntimeError as e:
        report.fail(name, "start", f"{e} (log: {server.log})", count=len(wl))
        unmount_under(tmp)
        return
    try:
        fill(common, args.fio_cpu)
        for wname, fargs in wl:
            try:
                m = benchlib.measure(server, common + fargs, fio_cpus=args.fio_cpu)
            except RuntimeError as e:
                report.fail(name, wname, e)
                continue
            report.add(wname, name, m)
            print(f"{name:>8}  {wname:<26} {m['iops']:>10,.0f} IOPS  "
                  f"server CPU {m['server_cpu_pct']:5.1f} %  "
                  f"{m['server_cpu_us_per_io']:6.2f} µs/IO "
                  f"({m['server_sys_us_per_io']:.2f} in the kernel)", flush=True)
    except RuntimeError as e:
        report.fail(name, "fill", e, count=len(wl))
    finally:
        server.stop()
        unmount_under(tmp)


def on_signal(signum, _frame):
    # Turn SIGTERM/SIGHUP into an exception so that the finally blocks stop the
    # servers by pid and unmount.
    raise SystemExit(128 + signum)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", default=os.environ.get(
        "SLUICE_BUILD_DIR", os.path.join(here, "..", "..", "..", "build")))
    p.add_argument("--runtime", type=int, default=10, help="seconds per workload")
    p.add_argument("--quick", action="store_true", help="3 s per workload")
    p.add_argument("--size", type=int, default=512, help="file size in MiB")
    p.add_argument("--servers", default="sluice,qsd,nbdfuse")
    p.add_argument("--rounds", type=int, default=1,
                   help="run every server this many times, in turn, and report medians")
    p.add_argument("--only", default=None,
                   help="run only the workloads whose name contains this text")
    p.add_argument("--server-cpu", default="0", help='core of every server, or "none"')
    p.add_argument("--fio-cpu", default="1", help='cores of fio, or "none"')
    p.add_argument("--busy-poll", action="store_true", help="sluiced --busy-poll")
    p.add_argument("--outdir", "--out", default=None,
                   help="default <build>/bench/fuse/<date>")
    args = p.parse_args()
    if args.rounds < 1:
        p.error(f"--rounds must be at least 1, got {args.rounds}")
    if args.quick:
        args.runtime = 3
    args.server_cpu = None if args.server_cpu == "none" else args.server_cpu
    args.fio_cpu = None if args.fio_cpu == "none" else args.fio_cpu
    args.build = os.path.abspath(args.build)
    if os.geteuid() != 0:
        print("fuse_bench: needs root (mounts)")
        return 77
    for tool in ("fio", "umount"):
        if shutil.which(tool) is None:
            print(f"fuse_bench: {tool} is missing")
            return 77
    makers = {"sluice": sluice_server, "qsd": qsd_server, "nbdfuse": nbdfuse_server}
    tools = {"sluice": os.path.join(args.build, "exporter", "sluiced"),
             "qsd": "qemu-storage-daemon", "nbdfuse": "nbdfuse"}
    servers = args.servers.split(",")
    for s in servers:
        if s not in makers:
            print(f"fuse_bench: unknown server {s}")
            return 2
    outdir = args.outdir or os.path.join(args.build, "bench", "fuse",
                                         time.strftime("%Y%m%d-%H%M%S"))
    report = benchlib.Report("FUSE exports, fio 4 KiB direct I/O on the exported file",
                             outdir)
    report.command = " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:])
    wl = [w for w in workloads(args) if args.only is None or args.only in w[0]]
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    started = []
    with tempfile.TemporaryDirectory(prefix="sluice-fuse-bench-") as tmp:
        try:
            for rtmp in benchlib.rounds(args.rounds, tmp):
                for s in servers:
                    if shutil.which(tools[s]) is None:
                        print(f"{s}: {tools[s]} is missing, skipped")
                        continue
                    run_server(report, started, makers[s], args, rtmp, wl)
        finally:
            # Normally done already; this is for an interrupted run.
            for server in started:
                server.stop()
            unmount_under(tmp)
    if not report.rows:
        print("fuse_bench: no results")
        return 1
    print()
    print(report.markdown())
    paths = report.write()
    print("\nwritten: " + ", ".join(p for p in paths if p))
    if report.failures:
        print(f"fuse_bench: {len(report.failures)} run(s) failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
