#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors

# sluice-bdevperf against null and malloc bdevs (256 MiB, 4 KiB blocks), 4 KiB random
# reads and writes at queue depth 32 on one core: the setup of SPDK's published
# bdevperf figures, printed beside them with the ratio. Not run by ctest: run by hand
# and record the figures in test/bench/README.md.
#
# Two measures, because a shared machine makes wall-clock IOPS noise:
# - IOPS and ns/IO from the wall clock, and IOPS per CPU second (the I/O done over
#   the user+system time the process got, start-up included): the second one does not
#   drop when other processes take the core away, so note the load average beside it.
# - BENCH_INSNS=1: instructions per I/O under callgrind (valgrind), from two runs of a
#   fixed number of I/O (--io-count) so that start-up cancels out. Independent of load;
#   valgrind counts a `rep movsb/stosb` byte by byte, so a 4 KiB memset shows as ~4100.
#
# null runs twice: as created by default (reads zero-filled: what the exports need)
# and with "zero_reads": false, which leaves read buffers alone as SPDK's null bdev does.
# Env: SLUICE_BUILD_DIR or BDEVPERF=path; BENCH_TIME seconds per run (default 10);
# BENCH_CORE (default 0x1); BENCH_FLAGS extra flags (e.g. "--busy-poll").

set -eu

build=${SLUICE_BUILD_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/build}
bdevperf=${BDEVPERF:-$build/drivers/bdev/tools/sluice-bdevperf}
secs=${BENCH_TIME:-10}
core=${BENCH_CORE:-0x1}
[[ -x $bdevperf ]] || { echo "sluice-bdevperf not found at $bdevperf" >&2; exit 1; }
if [[ ${BENCH_INSNS:-0} == 1 ]] && ! command -v valgrind >/dev/null; then
	echo "BENCH_INSNS=1 needs valgrind (apt-get install valgrind)" >&2
	exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# SPDK's figures for the same runs (SPDK bdevperf v25.09, 1 core, this machine kind): IOPS.
declare -A spdk=(
	[null/randread]=13900000 [null/randwrite]=13900000
	[null_nozero/randread]=13900000 [null_nozero/randwrite]=13900000
	[malloc/randread]=2150000 [malloc/randwrite]=1510000
)

conf() {
	printf '{"subsystems":[{"subsystem":"bdev","config":[{"method":"%s","params":%s}]}]}\n' \
		"$1" "$2"
}
conf bdev_null_create '{"name":"Null0","num_blocks":65536,"block_size":4096}' >"$work/null.json"
conf bdev_null_create '{"name":"Null0","num_blocks":65536,"block_size":4096,"zero_reads":false}' \
	>"$work/null_nozero.json"
conf bdev_malloc_create '{"name":"Malloc0","num_blocks":65536,"block_size":4096}' \
	>"$work/malloc.json"

# run <bdev> <workload> [flags]: one sluice-bdevperf run.
run() {
	local bdev=$1 w=$2
	shift 2
	# shellcheck disable=SC2086
	"$bdevperf" --no-huge -s 1024 -m "$core" -c "$work/$bdev.json" -q 32 -o 4096 -w "$w" \
		-S 0 "$@" ${BENCH_FLAGS:-}
}

# insns <bdev> <workload>: instructions per I/O (difference of two fixed-count runs).
insns() {
	local n n1=10000 n2=50000
	local -A total
	for n in $n1 $n2; do
		valgrind --tool=callgrind --callgrind-out-file="$work/cg.$n" \
			"$bdevperf" --no-huge -s 1024 -m "$core" -c "$work/$1.json" -q 32 -o 4096 \
			-w "$2" -t 600 -S 0 --io-count "$n" >"$work/vg.log" 2>&1 ||
			{ cat "$work/vg.log" >&2; exit 1; }
		total[n$n]=$(awk '/^summary:/ { print $2 }' "$work/cg.$n")
	done
	awk -v a="${total[n$n1]}" -v b="${total[n$n2]}" -v n=$((n2 - n1)) \
		'BEGIN { printf "%.0f", (b - a) / n }'
}

echo "load: $(cut -d' ' -f1-3 /proc/loadavg); $secs s per run on core mask $core"
printf '%-24s %12s %8s %14s %12s %8s' "run" "IOPS" "ns/IO" "IOPS/CPU-s" "SPDK IOPS" "ratio"
[[ ${BENCH_INSNS:-0} == 1 ]] && printf ' %10s' "insns/IO"
printf '\n'
for bdev in null null_nozero malloc; do
	for w in randread randwrite; do
		# bash's time: user and system seconds of the run, without /usr/bin/time.
		TIMEFORMAT='%U %S'
		{ time run "$bdev" "$w" -t "$secs" --json-output "$work/out.json" >"$work/log" 2>&1; } \
			2>"$work/cpu" || { cat "$work/log"; exit 1; }
		iops=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total"]["iops"])' \
			"$work/out.json")
		ref=${spdk[$bdev/$w]}
		runtime=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total"]["runtime"])' \
			"$work/out.json")
		read -r user sys <"$work/cpu"
		awk -v n="$bdev/$w" -v i="$iops" -v r="$ref" -v t="$runtime" -v u="$user" -v s="$sys" \
			'BEGIN { printf "%-24s %12.0f %8.1f %14.0f %12d %8.2f", n, i, 1e9 / i,
				 i * t / (u + s), r, i / r }'
		[[ ${BENCH_INSNS:-0} == 1 ]] && printf ' %10s' "$(insns "$bdev" "$w")"
		printf '\n'
	done
done
