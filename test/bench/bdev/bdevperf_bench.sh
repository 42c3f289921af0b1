#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors

# sluice-bdevperf against null and malloc bdevs (256 MiB, 4 KiB blocks), 4 KiB random
# reads and writes at queue depth 32 on one core: the setup of SPDK's published
# bdevperf figures, printed beside them with the ratio. Not run by ctest: run by hand on
# a quiet machine (check `uptime`) and record the figures in test/bench/README.md.
# Env: SLUICE_BUILD_DIR or BDEVPERF=path; BENCH_TIME seconds per run (default 10);
# BENCH_CORE (default 0x1); BENCH_FLAGS extra flags (e.g. "--busy-poll").

set -eu

build=${SLUICE_BUILD_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/build}
bdevperf=${BDEVPERF:-$build/drivers/bdev/tools/sluice-bdevperf}
secs=${BENCH_TIME:-10}
core=${BENCH_CORE:-0x1}
[[ -x $bdevperf ]] || { echo "sluice-bdevperf not found at $bdevperf" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# SPDK's figures for the same runs (SPDK bdevperf, 1 core): IOPS.
declare -A spdk=(
	[null/randread]=13900000 [null/randwrite]=13900000
	[malloc/randread]=2150000 [malloc/randwrite]=1510000
)

printf '{"subsystems":[{"subsystem":"bdev","config":[{"method":"bdev_null_create","params":{"name":"Null0","num_blocks":65536,"block_size":4096}}]}]}\n' >"$work/null.json"
printf '{"subsystems":[{"subsystem":"bdev","config":[{"method":"bdev_malloc_create","params":{"name":"Malloc0","num_blocks":65536,"block_size":4096}}]}]}\n' >"$work/malloc.json"

echo "load: $(cut -d' ' -f1-3 /proc/loadavg); $secs s per run on core mask $core"
printf '%-18s %12s %10s %14s %8s\n' "run" "IOPS" "ns/IO" "SPDK IOPS" "ratio"
for bdev in null malloc; do
	for w in randread randwrite; do
		# shellcheck disable=SC2086
		"$bdevperf" --no-huge -s 1024 -m "$core" -c "$work/$bdev.json" -q 32 -o 4096 \
			-w "$w" -t "$secs" -S 0 --json-output "$work/out.json" ${BENCH_FLAGS:-} \
			>"$work/log" 2>&1 || { cat "$work/log"; exit 1; }
		iops=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total"]["iops"])' "$work/out.json")
		ref=${spdk[$bdev/$w]}
		awk -v n="$bdev/$w" -v i="$iops" -v r="$ref" \
			'BEGIN { printf "%-18s %12.0f %10.1f %14d %8.2f\n", n, i, 1e9 / i, r, i / r }'
	done
done
