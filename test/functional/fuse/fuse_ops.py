#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors
"""File-level checks of a FUSE export that shell tools cannot make.

  fuse_ops.py random <file> <reference> [ops]   random pwrite/punch/zero-range on both
  fuse_ops.py seek <file> <block_size>          SEEK_DATA/SEEK_HOLE around punched holes
  fuse_ops.py rmw <file> <block_size> [procs]   concurrent unaligned writes sharing blocks
  fuse_ops.py edges <file>                      short reads/writes at the end, ENOSPC, EPERM,
                                                fallocate mode 0 in and past the file

Exit status 0 when the check holds; the reason is printed otherwise.
"""
import ctypes
import errno
import multiprocessing
import os
import random
import sys

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_COLLAPSE_RANGE = 0x08
FALLOC_FL_ZERO_RANGE = 0x10

_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]


def fallocate(fd, mode, offset, length):
    if _libc.fallocate(fd, mode, offset, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def cmd_random(path, ref, nops=300):
    rng = random.Random(1234)
    fd = os.open(path, os.O_RDWR)
    rfd = os.open(ref, os.O_RDWR)
    size = os.fstat(fd).st_size
    for _ in range(int(nops)):
        kind = rng.random()
        off = rng.randrange(0, size - 1)
        length = min(rng.choice([1, 7, 511, 512, 513, 4095, 4096, 4097, 10000, 70000]),
                     size - off)
        if kind < 0.7:
            data = rng.randbytes(length)
            if os.pwrite(fd, data, off) != length:
                print(f"short write at {off}+{length}")
                return 1
            os.pwrite(rfd, data, off)
        else:
            mode = (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE if kind < 0.85
                    else FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE)
            fallocate(fd, mode, off, length)
            fallocate(rfd, mode, off, length)
    os.fsync(fd)
    pos = 0
    while pos < size:
        n = min(1 << 20, size - pos)
        a, b = os.pread(fd, n, pos), os.pread(rfd, n, pos)
        if a != b:
            first = next(i for i in range(n) if a[i] != b[i])
            print(f"content differs at byte {pos + first}")
            return 1
        pos += n
    return 0


def cmd_seek(path, bs):
    bs = int(bs)
    fd = os.open(path, os.O_RDWR)
    size = os.fstat(fd).st_size
    os.pwrite(fd, b"\xaa" * (4 * bs), 0)
    # Data [0, 4bs), hole [4bs, 68bs), data after (written below).
    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4 * bs, 64 * bs)
    os.pwrite(fd, b"\xbb" * bs, 68 * bs)
    if os.pread(fd, 64 * bs, 4 * bs) != bytes(64 * bs):
        print("punched range does not read as zeroes")
        return 1
    checks = [
        (os.SEEK_HOLE, 0, 4 * bs),
        (os.SEEK_DATA, 4 * bs, 68 * bs),
        (os.SEEK_DATA, 0, 0),
        (os.SEEK_HOLE, 5 * bs, 5 * bs),
    ]
    for whence, off, want in checks:
        got = os.lseek(fd, off, whence)
        if got != want:
            name = "SEEK_HOLE" if whence == os.SEEK_HOLE else "SEEK_DATA"
            print(f"{name} from {off}: {got}, expected {want}")
            return 1
    try:
        os.lseek(fd, size, os.SEEK_DATA)
        print("SEEK_DATA at the end did not fail")
        return 1
    except OSError as e:
        if e.errno != errno.ENXIO:
            print(f"SEEK_DATA at the end: {e}, expected ENXIO")
            return 1
    return 0


def _rmw_worker(path, bs, proc, nprocs, rounds, nblocks):
    fd = os.open(path, os.O_RDWR)
    seg = bs // nprocs
    for r in range(rounds):
        data = bytes([(proc * 31 + r) & 0xFF]) * seg
        for blk in range(nblocks):
            os.pwrite(fd, data, blk * bs + proc * seg)
    os.close(fd)


def cmd_rmw(path, bs, nprocs=4):
    """Each process owns one slice of every block: lost updates show as wrong slices."""
    bs, nprocs, rounds, nblocks = int(bs), int(nprocs), 8, 64
    procs = [multiprocessing.Process(target=_rmw_worker,
                                     args=(path, bs, p, nprocs, rounds, nblocks))
             for p in range(nprocs)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            print("a writer failed")
            return 1
    fd = os.open(path, os.O_RDONLY)
    seg = bs // nprocs
    for blk in range(nblocks):
        block = os.pread(fd, bs, blk * bs)
        for p in range(nprocs):
            want = bytes([(p * 31 + rounds - 1) & 0xFF]) * seg
            if block[p * seg:(p + 1) * seg] != want:
                print(f"block {blk}: slice of writer {p} lost")
                return 1
    return 0


def cmd_edges(path):
    fd = os.open(path, os.O_RDWR)
    size = os.fstat(fd).st_size
    if os.pread(fd, 4096, size) != b"":
        print("read at the end is not empty")
        return 1
    if len(os.pread(fd, 4096, size - 100)) != 100:
        print("read across the end is not short")
        return 1
    if os.pwrite(fd, b"z" * 4096, size - 100) != 100:
        print("write across the end is not short")
        return 1
    # Plain allocation inside the file: the blocks exist, it succeeds and changes no
    # data. Past the end the file would have to grow: ENOSPC, as a write there.
    os.pwrite(fd, b"\xa7" * 8192, 4096)
    before = os.pread(fd, 16384, 0)
    try:
        fallocate(fd, 0, 100, 10000)
        os.posix_fallocate(fd, 0, size)
        fallocate(fd, FALLOC_FL_KEEP_SIZE, size - 4096, 8192)
    except OSError as e:
        print(f"fallocate mode 0 inside the file: {e}")
        return 1
    if os.pread(fd, 16384, 0) != before:
        print("fallocate mode 0 changed the data")
        return 1
    for what, fn, want in [
        ("write past the end", lambda: os.pwrite(fd, b"z", size), errno.ENOSPC),
        ("truncate", lambda: os.ftruncate(fd, size // 2), errno.EPERM),
        ("growth", lambda: os.ftruncate(fd, size * 2), errno.EPERM),
        ("fallocate mode 0 across the end", lambda: fallocate(fd, 0, size - 4096, 8192),
         errno.ENOSPC),
        ("posix_fallocate past the end", lambda: os.posix_fallocate(fd, size, 4096),
         errno.ENOSPC),
        ("fallocate COLLAPSE_RANGE", lambda: fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, 4096),
         errno.EOPNOTSUPP),
    ]:
        try:
            fn()
            print(f"{what} did not fail")
            return 1
        except OSError as e:
            if e.errno != want:
                print(f"{what}: {e}, expected {errno.errorcode[want]}")
                return 1
    if os.fstat(fd).st_size != size:
        print("size changed")
        return 1
    return 0


def main():
    cmds = {"random": cmd_random, "seek": cmd_seek, "rmw": cmd_rmw, "edges": cmd_edges}
    if len(sys.argv) < 3 or sys.argv[1] not in cmds:
        print(__doc__)
        return 2
    return cmds[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
