#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors
"""NBD server benchmark: sluiced (malloc bdev) against nbdkit (memory plugin) and
qemu-storage-daemon (a raw file on /dev/shm), one after another in the same run, all
on a Unix socket, with fio's nbd engine (libnbd) as the client.

Each server is pinned to one core (--server-cpu) and fio to another (--fio-cpu).
Workloads: 4 KiB randread and randwrite at QD 32 on 1 and 4 connections, 128 KiB
sequential read and write, and the cost runs: 4 KiB randread and randwrite at a fixed
100K IOPS (fio --rate_iops), where the server's CPU per I/O is measured from
/proc/<pid>/stat (utime+stime of all its threads) over the run, with its kernel share
(stime) beside it.

Prints the table with IOPS and Sluice / best peer, and writes results.json,
results.md and results.png (gnuplot) to --outdir.

Usage: nbd_bench.py [--build DIR] [--runtime S] [--quick] [--rounds N] [--only TEXT]
                    [--servers sluice,nbdkit,qsd[,trivial][,sluice-null]]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import benchlib  # noqa: E402

MIB = 1 << 20


def nbd_ready(uri):
    def ready():
        r = subprocess.run(["nbdinfo", "--size", uri], capture_output=True, timeout=10)
        return r.returncode == 0
    return ready


def sluice_server(args, tmp, bdev="malloc"):
    name = "sluice" if bdev == "malloc" else f"sluice-{bdev}"
    sock = os.path.join(tmp, f"{name}.sock")
    cfg = {"subsystems": [
        {"subsystem": "bdev", "config": [
            {"method": f"bdev_{bdev}_create",
             "params": {"name": "Malloc0", "num_blocks": args.size * MIB // 512,
                        "block_size": 512}}]},
        {"subsystem": "nbd", "config": [
            {"method": "nbd_server_start", "params": {"unix_path": sock}},
            {"method": "nbd_server_add_export",
             "params": {"name": "disk", "bdev_name": "Malloc0"}}]}]}
    path = os.path.join(tmp, f"{name}.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    sluiced = os.path.join(args.build, "exporter", "sluiced")
    cmd = [sluiced, "--no-huge", "-s", str(args.size + 512), "-m", f"[{args.server_cpu}]",
           "-r", os.path.join(tmp, f"{name}-rpc.sock"), "-c", path]
    if args.busy_poll:
        cmd.append("--busy-poll")
    uri = f"nbd+unix:///disk?socket={sock}"
    return benchlib.Server(name, cmd, nbd_ready(uri), cpus=args.server_cpu,
                           log=os.path.join(tmp, f"{name}.log")), uri


def sluice_null_server(args, tmp):
    """A reference row: sluiced serving a null bdev, which stores nothing. What is left
    of its CPU per I/O is the NBD path and the kernel's socket work: the floor under
    the malloc row."""
    return sluice_server(args, tmp, bdev="null")


def nbdkit_server(args, tmp):
    sock = os.path.join(tmp, "nbdkit.sock")
    cmd = ["nbdkit", "-f", "-U", sock, "-e", "disk", "memory", f"size={args.size}M"]
    uri = f"nbd+unix:///disk?socket={sock}"
    return benchlib.Server("nbdkit", cmd, nbd_ready(uri), cpus=args.server_cpu,
                           log=os.path.join(tmp, "nbdkit.log")), uri


def qsd_server(args, tmp):
    sock = os.path.join(tmp, "qsd.sock")
    img = f"/dev/shm/sluice-bench-{os.getpid()}.raw"

    def setup():
        with open(img, "wb") as f:
            f.truncate(args.size * MIB)

    def cleanup():
        if os.path.exists(img):
            os.unlink(img)
    # aio=io_uring by default: here it served 4 KiB reads at 68K IOPS against 48K with
    # the thread pool. An iothread for the export would be its other lever, but the
    # 7.2 of Debian 12 aborts (nbd_blockdev_client_closed) when a client of an export
    # on an iothread disconnects.
    cmd = ["qemu-storage-daemon",
           "--blockdev", f"driver=file,node-name=file0,filename={img},cache.direct=off,"
           f"aio={args.qsd_aio}",
           "--blockdev", "driver=raw,node-name=disk0,file=file0",
           "--nbd-server", f"addr.type=unix,addr.path={sock}",
           "--export", "type=nbd,id=exp0,node-name=disk0,name=disk,writable=on"]
    uri = f"nbd+unix:///disk?socket={sock}"
    return benchlib.Server("qemu-storage-daemon", cmd, nbd_ready(uri), cpus=args.server_cpu,
                           setup=setup, cleanup=cleanup,
                           log=os.path.join(tmp, "qsd.log")), uri


def trivial_server(args, tmp):
    """The reference row: test/bench/nbd/nbd_trivial.c, one blocking thread."""
    sock = os.path.join(tmp, "trivial.sock")
    cmd = [os.path.join(args.build, "test", "bench", "nbd", "nbd_trivial"), sock,
           str(args.size)]
    uri = f"nbd+unix:///?socket={sock}"
    return benchlib.Server("trivial", cmd, nbd_ready(uri), cpus=args.server_cpu,
                           log=os.path.join(tmp, "trivial.log")), uri


trivial_server.single_connection = True


def workloads(args):
    """(name, kind, fio args) for each run."""
    # No ramp_time: the server's CPU is read over the whole fio run, so every I/O of
    # the run must count (the fill before the runs is the warm-up).
    rt = [f"--runtime={args.runtime}", "--time_based"]
    w = []
    for rw in ("randread", "randwrite"):
        w.append((f"4k {rw} QD32 1 conn", "throughput",
                  [f"--rw={rw}", "--bs=4k", "--iodepth=32", "--numjobs=1"] + rt))
    for rw in ("randread", "randwrite"):
        w.append((f"4k {rw} QD32 4 conns", "throughput",
                  [f"--rw={rw}", "--bs=4k", "--iodepth=32", "--numjobs=4"] + rt))
    for rw in ("read", "write"):
        w.append((f"128k {rw} QD8 1 conn", "throughput",
                  [f"--rw={rw}", "--bs=128k", "--iodepth=8", "--numjobs=1"] + rt))
    for rw in ("randread", "randwrite"):
        w.append((f"4k {rw} QD32 at {args.rate // 1000}K IOPS", "cost",
                  [f"--rw={rw}", "--bs=4k", "--iodepth=32", "--numjobs=1",
                   f"--rate_iops={args.rate}"] + rt))
    return w


def run_server(report, make, args, tmp, wl):
    server, uri = make(args, tmp)
    name = server.name
    common = ["--name=bench", "--ioengine=nbd", f"--uri={uri}", f"--size={args.size}M",
              "--group_reporting"]
    try:
        server.start()
    except RuntimeError as e:
        report.fail(name, "start", e, count=len(wl))
        return
    try:
        # Fill the device so that reads hit allocated memory on every server.
        benchlib.fio(common + ["--rw=write", "--bs=1M", "--iodepth=4"], cpus=args.fio_cpu)
        for wname, kind, fargs in wl:
            if getattr(make, "single_connection", False) and "--numjobs=1" not in fargs:
                print(f"{name:>20}  {wname:<32} skipped: serves one connection at a time")
                continue
            try:
                m = benchlib.measure(server, common + fargs, fio_cpus=args.fio_cpu)
            except RuntimeError as e:
                report.fail(name, wname, e)
                continue
            report.add(wname, name, m, kind)
            print(f"{name:>20}  {wname:<32} {m['iops']:>10,.0f} IOPS  "
                  f"server CPU {m['server_cpu_pct']:5.1f} %  "
                  f"{m['server_cpu_us_per_io']:6.2f} µs/IO "
                  f"({m['server_sys_us_per_io']:.2f} in the kernel)", flush=True)
    except RuntimeError as e:
        report.fail(name, "filling the device", e, count=len(wl))
    finally:
        server.stop()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", default=os.environ.get(
        "SLUICE_BUILD_DIR", os.path.join(here, "..", "..", "..", "build")))
    p.add_argument("--runtime", type=int, default=10, help="seconds per workload")
    p.add_argument("--quick", action="store_true", help="3 s per workload")
    p.add_argument("--size", type=int, default=512, help="device size in MiB")
    p.add_argument("--rate", type=int, default=100000, help="IOPS of the cost runs")
    p.add_argument("--servers", default="sluice,nbdkit,qsd",
                   help="any of sluice, nbdkit, qsd and the reference rows, never "
                   "taken as the best peer: trivial (a blocking server that only "
                   "copies) and sluice-null (sluiced on a null bdev, which stores "
                   "nothing)")
    p.add_argument("--rounds", type=int, default=1,
                   help="run every server this many times, in turn, and report medians")
    p.add_argument("--only", default=None,
                   help="run only the workloads whose name contains this text")
    p.add_argument("--qsd-aio", default="io_uring", choices=("threads", "io_uring"),
                   help="qemu-storage-daemon's aio= for its file (io_uring: its faster "
                   "one here; native needs cache.direct=on, which tmpfs refuses)")
    p.add_argument("--server-cpu", default="0")
    p.add_argument("--fio-cpu", default="1")
    p.add_argument("--busy-poll", action="store_true", help="sluiced --busy-poll")
    p.add_argument("--outdir", default=None)
    args = p.parse_args()
    if args.rounds < 1:
        p.error(f"--rounds must be at least 1, got {args.rounds}")
    if args.quick:
        args.runtime = 3
    args.build = os.path.abspath(args.build)
    for tool in ("fio", "nbdinfo"):
        if shutil.which(tool) is None:
            print(f"nbd_bench: {tool} is missing")
            return 77
    outdir = args.outdir or os.path.join(args.build, "bench", "nbd",
                                         time.strftime("%Y%m%d-%H%M%S"))
    report = benchlib.Report("NBD servers, fio nbd engine over a Unix socket", outdir,
                             references=("trivial", "sluice-null"))
    report.command = " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:])
    makers = {"sluice": sluice_server, "nbdkit": nbdkit_server, "qsd": qsd_server,
              "trivial": trivial_server, "sluice-null": sluice_null_server}
    wl = [w for w in workloads(args) if args.only is None or args.only in w[0]]
    servers = args.servers.split(",")
    for s in servers:
        if s not in makers:
            print(f"nbd_bench: unknown server {s}")
            return 2
    with tempfile.TemporaryDirectory(prefix="sluice-bench-") as tmp:
        for rtmp in benchlib.rounds(args.rounds, tmp):
            for s in servers:
                run_server(report, makers[s], args, rtmp, wl)
    print()
    print(report.markdown())
    paths = report.write()
    print("\nwritten: " + ", ".join(p for p in paths if p))
    if report.failures:
        print(f"nbd_bench: {len(report.failures)} run(s) failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
