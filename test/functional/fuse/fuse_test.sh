#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors
#
# The FUSE export end to end: sluiced (--no-huge, private RPC socket) exports RAM
# disks as files; fio verify (libaio direct, psync x4), unaligned dd and random
# write/punch/zero-range against a reference file, SEEK_DATA/SEEK_HOLE, concurrent
# read-modify-writes, end-of-file semantics, losetup + mkfs.ext4 + mount + copy +
# fsck, a directory mount, save_config and reload, stop with I/O in flight, and
# kill -9 then restart (the stale mount is cleaned).
#
#   fuse_test.sh [build-dir]        (root; exit 77 when /dev/fuse is missing)
set -u

src=$(cd "$(dirname "$0")/../../.." && pwd)
build=${1:-${SLUICE_BUILD_DIR:-$src/build}}
here=$src/test/functional/fuse
sluiced=$build/exporter/sluiced
ctl_bin=$build/exporter/sluicectl

skip() {
	echo "SKIP: $*"
	exit 77
}
[ "$(id -u)" -eq 0 ] || skip "needs root (mount)"
[ -c /dev/fuse ] || skip "no /dev/fuse"
if [ ! -x "$sluiced" ] || [ ! -x "$ctl_bin" ]; then
	echo "not built: $sluiced"
	exit 1
fi
command -v fio >/dev/null || skip "fio missing"

work=$(mktemp -d /tmp/sluice-fuse-test.XXXXXX)
sock=$work/rpc.sock
pid=
loopdev=
pass=0
fail=0
mask=0x1
[ "$(nproc)" -ge 2 ] && mask=0x3

ctl() { "$ctl_bin" -s "$sock" -t 30 "$@"; }

cleanup() {
	local m
	[ -n "$loopdev" ] && { umount "$work/ext4" 2>/dev/null; losetup -d "$loopdev" 2>/dev/null; }
	[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	# Whatever is still mounted under the work directory (a failed test).
	awk -v w="$work" 'index($2, w) == 1 { print $2 }' /proc/self/mounts |
		while read -r m; do umount -l "$m" 2>/dev/null; done
	# Keep the logs of a failed run (or of any run with SLUICE_KEEP_LOGS set).
	if [ "$fail" -ne 0 ] || [ -n "${SLUICE_KEEP_LOGS:-}" ]; then
		mkdir -p "$work.logs" && cp "$work"/*.log "$work"/*.json "$work"/disks.* "$work.logs/" 2>/dev/null
		echo "logs: $work.logs"
	fi
	rm -rf "$work"
}
trap cleanup EXIT

start_daemon() { # start_daemon [extra args]
	"$sluiced" --no-huge -s 1024 -m $mask -r "$sock" "$@" >>"$work/sluiced.log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do
		# The socket answers before a -c config is applied: wait for that too.
		ctl rpc_get_methods >/dev/null 2>&1 && ctl framework_wait_init >/dev/null && return 0
		sleep 0.1
	done
	echo "sluiced did not come up"; tail -20 "$work/sluiced.log"
	return 1
}

stop_daemon() {
	kill "$pid" && wait "$pid"
	local rc=$?
	pid=
	return $rc
}

run() { # run <name> <command...>: one test case
	local name=$1
	shift
	echo "--- $name" >>"$work/tests.log"
	if "$@" >>"$work/tests.log" 2>&1; then
		pass=$((pass + 1))
		echo "ok   $name"
	else
		fail=$((fail + 1))
		echo "FAIL $name"
		tail -15 "$work/tests.log" | sed 's/^/     /'
	fi
}

mounted() { awk -v p="$1" '$2 == p { f = 1 } END { exit !f }' /proc/self/mounts; }

disk=$work/disk          # Malloc0: 128 MiB, 4 KiB blocks
ref=$work/ref

t_start() {
	ctl bdev_malloc_create -b Malloc0 128 4096 &&
		ctl bdev_malloc_create -b Malloc1 64 512 &&
		touch "$disk" &&
		ctl fuse_start_disk --bdev-name Malloc0 --path "$disk" &&
		mounted "$disk" &&
		[ "$(stat -c %s "$disk")" -eq $((128 << 20)) ]
}

t_fio_libaio() {
	fio --name=libaio --filename="$disk" --ioengine=libaio --direct=1 --iodepth=32 \
		--rw=randwrite --bs=4k --size=64M --verify=crc32c --verify_fatal=1 \
		--output="$work/fio.log" && ! grep -q "err=[^ 0]" "$work/fio.log"
}

t_fio_psync() {
	fio --name=psync --filename="$disk" --ioengine=psync --direct=1 --numjobs=4 \
		--rw=randwrite --bsrange=512-64k --size=16M --offset_increment=16M \
		--verify=md5 --verify_fatal=1 --group_reporting --output="$work/fio.log" &&
		! grep -q "err=[^ 0]" "$work/fio.log"
}

t_dd_unaligned() {
	head -c $((128 << 20)) /dev/zero >"$ref" &&
		dd if="$ref" of="$disk" bs=1M conv=notrunc status=none &&
		head -c 3000000 /dev/urandom >"$work/data" &&
		for f in "$disk" "$ref"; do
			dd if="$work/data" of="$f" bs=1000 seek=4099 conv=notrunc status=none &&
				dd if="$work/data" of="$f" bs=777 seek=100003 count=555 conv=notrunc \
					status=none || return 1
		done &&
		cmp "$disk" "$ref"
}

t_random_ops() { python3 "$here/fuse_ops.py" random "$disk" "$ref" 400; }
t_seek() { python3 "$here/fuse_ops.py" seek "$disk" 4096; }
t_rmw() { python3 "$here/fuse_ops.py" rmw "$disk" 4096 4; }
t_edges() {
	local size
	size=$(stat -c %s "$disk") &&
		python3 "$here/fuse_ops.py" edges "$disk" &&
		fallocate -l "$size" "$disk" &&
		! fallocate -l "$((size + 4096))" "$disk" 2>/dev/null &&
		[ "$(stat -c %s "$disk")" -eq "$size" ]
}

t_punch_zero() {
	dd if=/dev/urandom of="$disk" bs=1M count=4 conv=notrunc status=none &&
		fallocate -p -o 1048576 -l 2097152 "$disk" &&
		cmp -n 2097152 <(dd if="$disk" bs=1M skip=1 count=2 status=none) /dev/zero
}

t_ext4() {
	if ! command -v mkfs.ext4 >/dev/null || ! command -v losetup >/dev/null; then
		echo "no mkfs.ext4/losetup: skipped"
		return 0
	fi
	loopdev=$(losetup -f --show "$disk") || { echo "no loop device: skipped"; return 0; }
	mkdir -p "$work/ext4" &&
		mkfs.ext4 -q -F "$loopdev" &&
		mount "$loopdev" "$work/ext4" &&
		cp -a "$src/include" "$src/env" "$work/ext4/" &&
		sync &&
		umount "$work/ext4" &&
		mount "$loopdev" "$work/ext4" &&
		diff -r "$src/include" "$work/ext4/include" &&
		diff -r "$src/env" "$work/ext4/env" &&
		umount "$work/ext4" &&
		fsck.ext4 -n -f "$loopdev" &&
		losetup -d "$loopdev" && loopdev=
}

t_dir_mount() {
	local d=$work/dir
	mkdir -p "$d" &&
		ctl fuse_mount --path "$d" --mode 0644 &&
		ctl fuse_add_export --bdev-name Malloc1 &&
		ctl fuse_add_export --bdev-name Malloc1 --name ro1 --read-only true &&
		[ "$(cd "$d" && echo *)" = "Malloc1 ro1" ] &&
		[ "$(stat -c %s "$d/Malloc1")" -eq $((64 << 20)) ] &&
		dd if=/dev/urandom of="$d/Malloc1" bs=512 count=100 conv=notrunc status=none &&
		cmp -n 51200 "$d/Malloc1" "$d/ro1" &&
		! (echo x >"$d/ro1") 2>/dev/null &&
		ctl fuse_get_disks | grep -q '"path": "'"$d"'/ro1"' &&
		ctl fuse_remove_export --name ro1 &&
		[ ! -e "$d/ro1" ]
}

t_owner_allow_other() {
	local f=$work/owned
	command -v setpriv >/dev/null || { echo "no setpriv: skipped"; return 0; }
	chmod 755 "$work" # mktemp made it 0700: let the other user reach the file
	ctl bdev_malloc_create -b Malloc2 16 512 &&
		ctl fuse_start_disk --bdev-name Malloc2 --path "$f" --uid 65534 --gid 65534 \
			--mode 0640 --allow-other true &&
		[ "$(stat -c '%u %g %a' "$f")" = "65534 65534 640" ] &&
		setpriv --reuid=65534 --regid=65534 --clear-groups \
			dd if=/dev/zero of="$f" bs=4k count=4 conv=notrunc status=none &&
		ctl fuse_stop_disk --path "$f" &&
		ctl fuse_start_disk --bdev-name Malloc2 --path "$f" --read-only true &&
		! setpriv --reuid=65534 --regid=65534 --clear-groups head -c 1 "$f" 2>/dev/null &&
		! (echo x >"$f") 2>/dev/null &&
		ctl fuse_stop_disk --path "$f" && [ ! -e "$f" ] && ctl bdev_malloc_delete Malloc2
}

t_config_roundtrip() {
	ctl save_config >"$work/config.json" &&
		grep -q fuse_start_disk "$work/config.json" &&
		grep -q fuse_add_export "$work/config.json" &&
		ctl fuse_get_disks >"$work/disks.before" &&
		stop_daemon && ! mounted "$disk" && ! mounted "$work/dir" &&
		start_daemon -c "$work/config.json" &&
		ctl fuse_get_disks >"$work/disks.after" &&
		diff "$work/disks.before" "$work/disks.after" &&
		mounted "$disk" && [ -e "$work/dir/Malloc1" ]
}

t_stop_inflight() {
	local fio_pid rc
	fio --name=busy --filename="$disk" --ioengine=libaio --direct=1 --iodepth=32 \
		--rw=randrw --bs=4k --size=64M --runtime=60 --time_based \
		--output="$work/fio-busy.log" &
	fio_pid=$!
	sleep 2
	timeout 20 "$ctl_bin" -s "$sock" fuse_stop_disk --path "$disk" || {
		kill "$fio_pid"
		return 1
	}
	# fio's I/O now fails (ENOTCONN) instead of hanging: it exits well before 60 s.
	for _ in $(seq 100); do
		kill -0 "$fio_pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$fio_pid" 2>/dev/null; then
		echo "fio still running after the stop"
		kill -9 "$fio_pid"
		return 1
	fi
	wait "$fio_pid"
	rc=$?
	echo "fio exited with $rc after the stop"
	! mounted "$disk" && ctl --json bdev_get_bdevs -b Malloc0 | tr -d " \n" | grep -q "\"claimed\":false"
}

t_kill_restart() {
	local err
	ctl fuse_start_disk --bdev-name Malloc0 --path "$disk" && mounted "$disk" &&
		kill -9 "$pid" && wait "$pid" 2>/dev/null
	pid=
	err=$(stat "$disk" 2>&1)
	echo "after kill -9: $err"
	echo "$err" | grep -q "Transport endpoint is not connected" || return 1
	# The stale mount must be gone once a daemon starts. Any sluiced starting cleans
	# every dead fuse.sluice mount: when another test's daemon starts at the same
	# time (ctest -j), it may be the one that says so in its log.
	start_daemon && ! mounted "$disk" && stat "$disk" >/dev/null || return 1
	grep -q "left by a daemon that died" "$work/sluiced.log" ||
		echo "(the stale mount was cleaned by another sluiced)"
}

if start_daemon; then
	run "fuse_start_disk over a file" t_start
	run "fio verify, libaio direct QD32" t_fio_libaio
	run "fio verify, psync x4 jobs, 512-64k" t_fio_psync
	run "unaligned dd vs reference file" t_dd_unaligned
	run "random write/punch/zero-range vs reference" t_random_ops
	run "punch hole reads zeroes" t_punch_zero
	run "SEEK_DATA/SEEK_HOLE" t_seek
	run "concurrent read-modify-writes" t_rmw
	run "end of file: short I/O, ENOSPC, EPERM, fallocate" t_edges
	run "losetup + mkfs.ext4 + copy + fsck" t_ext4
	run "directory mount and exports" t_dir_mount
	run "uid/gid/mode, allow_other, read-only" t_owner_allow_other
	run "save_config and reload" t_config_roundtrip
	run "stop with I/O in flight" t_stop_inflight
	run "kill -9 and restart" t_kill_restart
	[ -n "$pid" ] && { run "orderly shutdown" stop_daemon; }
else
	fail=$((fail + 1))
fi
# A sanitizer build (SLUICE_SANITIZE) reports into the daemon's log.
t_clean_log() { ! grep -E "AddressSanitizer|LeakSanitizer|runtime error" "$work/sluiced.log"; }
run "no sanitizer report in the daemon log" t_clean_log
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
