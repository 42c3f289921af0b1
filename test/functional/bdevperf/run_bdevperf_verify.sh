#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors

# sluice-bdevperf verify (write a stamped pattern, read it back, compare) for ~3 s on
# each of: malloc, null (reads must be zeroes), aio on a disk file, aio on tmpfs (O_DIRECT
# or the buffered fallback), and uring. No hugepages needed (--no-huge).
# Env: SLUICE_BUILD_DIR (set by ctest) or BDEVPERF=path; VERIFY_TIME (default 3).
# Prints one line per case and "N passed, N failed[, N skipped]"; exit 1 on a failure.

set -u

build=${SLUICE_BUILD_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/build}
bdevperf=${BDEVPERF:-$build/drivers/bdev/tools/sluice-bdevperf}
secs=${VERIFY_TIME:-3}
if [[ ! -x $bdevperf ]]; then
	echo "sluice-bdevperf not found at $bdevperf: skipped"
	exit 77
fi

work=$(mktemp -d /var/tmp/sluice_bdevperf_ft.XXXXXX)
shm=""
if [[ -d /dev/shm && $(stat -f -c %T /dev/shm 2>/dev/null) == tmpfs ]]; then
	shm=$(mktemp -d /dev/shm/sluice_bdevperf_ft.XXXXXX)
fi
cleanup() {
	rm -rf "$work"
	[[ -n $shm ]] && rm -rf "$shm"
}
trap cleanup EXIT

passed=0
failed=0
skipped=0

# config <method> <params-json>: a one-bdev JSON config file; prints its path.
config() {
	local f="$work/$1.json"
	printf '{"subsystems":[{"subsystem":"bdev","config":[{"method":"%s","params":%s}]}]}\n' \
		"$1" "$2" >"$f"
	echo "$f"
}

# run <case> <config> [extra flags]: verify for $secs s; pass when it exits 0 with a
# Total row of non-zero IOPS and no failures.
run() {
	local name=$1 cfg=$2 log="$work/$1.log"
	shift 2
	if "$bdevperf" --no-huge -s 256 -m 0x1 -c "$cfg" -q 16 -o 4096 -w verify -t "$secs" \
		-S 0 "$@" >"$log" 2>&1 &&
		awk '$1 == "Total" { ok = ($3 + 0 > 0 && $5 + 0 == 0) } END { exit !ok }' "$log"; then
		echo "PASS $name: $(awk '$1 == "Total" { print $3 " IOPS" }' "$log")"
		passed=$((passed + 1))
	else
		echo "FAIL $name (log follows)"
		sed 's/^/    /' "$log"
		failed=$((failed + 1))
	fi
}

skip() {
	echo "SKIP $1: $2"
	skipped=$((skipped + 1))
}

run malloc "$(config bdev_malloc_create '{"name":"Malloc0","num_blocks":16384,"block_size":4096}')"
run null "$(config bdev_null_create '{"name":"Null0","num_blocks":16384,"block_size":512}')"

truncate -s 64M "$work/aio.img"
run aio "$(config bdev_aio_create "{\"name\":\"AIO0\",\"filename\":\"$work/aio.img\",\"block_size\":512}")"

if [[ -n $shm ]]; then
	truncate -s 32M "$shm/aio.img"
	cfg=$(config bdev_aio_create "{\"name\":\"AIO1\",\"filename\":\"$shm/aio.img\",\"block_size\":4096}")
	run aio_tmpfs "$cfg"
else
	skip aio_tmpfs "no tmpfs at /dev/shm"
fi

if [[ $(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo 0) != 0 ]]; then
	skip uring "io_uring is disabled (kernel.io_uring_disabled)"
else
	truncate -s 64M "$work/uring.img"
	run uring "$(config bdev_uring_create "{\"name\":\"Uring0\",\"filename\":\"$work/uring.img\",\"block_size\":4096}")"
fi

echo "$passed passed, $failed failed, $skipped skipped"
[[ $failed -eq 0 ]]
