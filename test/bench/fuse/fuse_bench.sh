#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors

# Kept for the old command line: the benchmark is fuse_bench.py (on the shared harness
# of test/bench/lib). SLUICE_BUILD_DIR picks the build; BENCH_TIME (seconds per run)
# and BENCH_FLAGS=--busy-poll still work; other arguments are passed through.
exec python3 "$(dirname "$0")/fuse_bench.py" ${BENCH_TIME:+--runtime "$BENCH_TIME"} \
	${BENCH_FLAGS:+$BENCH_FLAGS} "$@"
