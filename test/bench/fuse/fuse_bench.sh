#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors

# FUSE exports side by side, in one run: fio 4 KiB random reads and writes at QD 32
# (libaio, direct) and with 2 psync jobs, against
#   sluice  sluiced's fuse_start_disk of a malloc bdev,
#   qsd     qemu-storage-daemon's FUSE export of a raw file on /dev/shm,
#   nbdfuse nbdfuse over nbdkit's memory plugin,
# each a 512 MiB file written through once before the runs. Prints IOPS and the ratio
# of Sluice to the best peer. Not run by ctest: run as root on a quiet machine (check
# `uptime`) and record the table in test/bench/README.md.
#
# Env: SLUICE_BUILD_DIR; BENCH_TIME seconds per run (default 10); BENCH_CORE sluiced's
# core mask (default 0x1); BENCH_FLAGS extra sluiced flags ("--busy-poll");
# BENCH_PEERS (default "sluice qsd nbdfuse"); BENCH_SIZE_MB (default 512).
#
# The helpers are local (fuse_bench_*): when the shared harness of test/bench/lib
# lands, they are what it replaces.

set -eu

src=$(cd "$(dirname "$0")/../../.." && pwd)
build=${SLUICE_BUILD_DIR:-$src/build}
secs=${BENCH_TIME:-10}
core=${BENCH_CORE:-0x1}
peers=${BENCH_PEERS:-sluice qsd nbdfuse}
size_mb=${BENCH_SIZE_MB:-512}
sluiced=$build/exporter/sluiced
ctl="$build/exporter/sluicectl"

[ "$(id -u)" -eq 0 ] || { echo "fuse_bench: needs root (mount)" >&2; exit 1; }
[ -x "$sluiced" ] || { echo "fuse_bench: $sluiced not built" >&2; exit 1; }

work=$(mktemp -d /tmp/sluice-fuse-bench.XXXXXX)
shm=/dev/shm/sluice-fuse-bench.$$
pids=()

fuse_bench_cleanup() {
	local p m
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	sleep 0.5
	awk -v w="$work" 'index($2, w) == 1 { print $2 }' /proc/self/mounts |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
	for p in "${pids[@]}"; do
		kill -9 "$p" 2>/dev/null || true
	done
	rm -rf "$work" "$shm"
}
trap fuse_bench_cleanup EXIT

# fuse_bench_wait <what> <command...>: poll until the command succeeds (10 s).
fuse_bench_wait() {
	local what=$1
	shift
	for _ in $(seq 100); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "fuse_bench: $what did not come up" >&2
	return 1
}

fuse_bench_mounted() { awk -v p="$1" '$2 == p { f = 1 } END { exit !f }' /proc/self/mounts; }

# Each start function sets file, the path to run fio on.
start_sluice() {
	local sock=$work/sluice.sock
	# shellcheck disable=SC2086
	"$sluiced" --no-huge -s $((size_mb + 512)) -m "$core" -r "$sock" ${BENCH_FLAGS:-} \
		>"$work/sluiced.log" 2>&1 &
	pids+=($!)
	fuse_bench_wait sluiced "$ctl" -s "$sock" rpc_get_methods
	"$ctl" -s "$sock" bdev_malloc_create -b Malloc0 "$size_mb" 4096 >/dev/null
	touch "$work/sluice.img"
	"$ctl" -s "$sock" fuse_start_disk --bdev-name Malloc0 --path "$work/sluice.img" >/dev/null
	file=$work/sluice.img
}

start_qsd() {
	truncate -s "${size_mb}M" "$shm"
	touch "$work/qsd.img"
	qemu-storage-daemon \
		--blockdev "driver=file,node-name=file0,filename=$shm,cache.direct=off" \
		--blockdev driver=raw,node-name=disk0,file=file0 \
		--export "type=fuse,id=exp0,node-name=disk0,mountpoint=$work/qsd.img,writable=on" \
		>"$work/qsd.log" 2>&1 &
	pids+=($!)
	fuse_bench_wait qemu-storage-daemon fuse_bench_mounted "$work/qsd.img"
	file=$work/qsd.img
}

start_nbdfuse() {
	mkdir -p "$work/nbdfuse"
	nbdfuse "$work/nbdfuse/disk" [ nbdkit memory "${size_mb}M" ] >"$work/nbdfuse.log" 2>&1 &
	pids+=($!)
	fuse_bench_wait nbdfuse fuse_bench_mounted "$work/nbdfuse"
	file=$work/nbdfuse/disk
}

# fuse_bench_fio <file> <rw> <engine>: prints the IOPS.
fuse_bench_fio() {
	local file=$1 rw=$2 engine=$3 opts
	if [ "$engine" = libaio ]; then
		opts="--ioengine=libaio --iodepth=32 --numjobs=1"
	else
		opts="--ioengine=psync --numjobs=2"
	fi
	# shellcheck disable=SC2086
	fio --name=bench --filename="$file" --rw="$rw" --bs=4k --direct=1 $opts \
		--size="${size_mb}M" --time_based --runtime="$secs" --ramp_time=2 \
		--group_reporting --output-format=json --output="$work/fio.json" \
		>"$work/fio.log" 2>&1 || { cat "$work/fio.log" >&2; return 1; }
	python3 -c 'import json,sys
j = json.load(open(sys.argv[1]))["jobs"][0]
print(int(j["read"]["iops"] + j["write"]["iops"]))' "$work/fio.json"
}

workloads="randread/libaio randwrite/libaio randread/psync randwrite/psync"
declare -A iops
echo "load: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; $secs s per run;" \
	"sluiced -m $core ${BENCH_FLAGS:-}"
for peer in $peers; do
	start_"$peer"
	dd if=/dev/urandom of="$file" bs=1M count="$size_mb" oflag=direct conv=notrunc \
		status=none 2>/dev/null ||
		dd if=/dev/urandom of="$file" bs=1M count="$size_mb" conv=notrunc,fsync status=none
	for w in $workloads; do
		iops[$peer/$w]=$(fuse_bench_fio "$file" "${w%/*}" "${w#*/}")
	done
	kill "${pids[-1]}" 2>/dev/null || true
	wait "${pids[-1]}" 2>/dev/null || true
	fuse_bench_mounted "$file" && umount -l "$file"
	fuse_bench_mounted "$(dirname "$file")" && umount -l "$(dirname "$file")"
done

printf '%-24s' "4 KiB, IOPS"
for peer in $peers; do printf '%10s' "$peer"; done
printf '%12s\n' "sluice/best"
for w in $workloads; do
	case $w in
	*/libaio) label="${w%/*} QD32 libaio" ;;
	*) label="${w%/*} 2 psync jobs" ;;
	esac
	printf '%-24s' "$label"
	best=0
	for peer in $peers; do
		printf '%10s' "${iops[$peer/$w]}"
		[ "$peer" != sluice ] && [ "${iops[$peer/$w]}" -gt "$best" ] && best=${iops[$peer/$w]}
	done
	if [ -n "${iops[sluice/$w]:-}" ] && [ "$best" -gt 0 ]; then
		awk -v s="${iops[sluice/$w]}" -v b="$best" 'BEGIN { printf "%12.2f\n", s / b }'
	else
		echo
	fi
done
