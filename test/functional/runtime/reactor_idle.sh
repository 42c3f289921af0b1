#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors

# An idle adaptive reactor must use under 5% of a core over 10 s; a busy-polling one
# must spin (over 80% of a core over 2 s, and never sleep). CPU is process user+sys
# time over wall time; for the busy run, over the time it could run (wall time minus
# run-queue waits, run_pct), so that neighbours on a small shared machine that take
# the core from it do not make a spinning reactor look idle. The busy run is not
# pinned either, for the same reason.
set -eu

bin=${1:-${SLUICE_BUILD_DIR:-build}/test/functional/runtime/reactor_idle}
[ -x "$bin" ] || { echo "reactor_idle not built: $bin"; exit 1; }

field() { # field <name> <line>
	echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

# pct_ok <value> <op> <limit>: floating-point comparison through awk.
pct_ok() {
	awk -v v="$1" -v l="$3" "BEGIN { exit !(v $2 l) }"
}

out=$("$bin" -t 10)
echo "$out"
cpu=$(field cpu_pct "$out")
ticks=$(field ticks "$out")
if ! pct_ok "$cpu" "<" 5; then
	echo "FAIL: idle adaptive reactor used ${cpu}% of a core (limit 5%)"
	exit 1
fi
# The 10 ms timer kept firing while the reactor slept (about 1000 runs).
if [ "$ticks" -lt 500 ]; then
	echo "FAIL: the 10 ms timed poller ran only $ticks times in 10 s"
	exit 1
fi

tries=0
while :; do
	out=$("$bin" -b -n -t 2)
	echo "$out"
	cpu=$(field run_pct "$out")
	sleeps=$(field sleeps "$out")
	if [ "$sleeps" -ne 0 ]; then
		echo "FAIL: a busy-polling reactor slept $sleeps times"
		exit 1
	fi
	pct_ok "$cpu" ">" 80 && break
	tries=$((tries + 1))
	if [ $tries -ge 3 ]; then
		echo "FAIL: busy-polling reactor used only ${cpu}% of a core (want > 80%)"
		exit 1
	fi
	echo "busy-poll run got ${cpu}% (machine loaded?); retrying"
done
echo "PASS"
