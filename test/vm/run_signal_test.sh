#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors
#
# test/vm/run, ended by a signal, leaves nothing behind: QEMU stopped by its pid
# and reaped, the work directory, the --img-dir directory and a half-built
# initramfs removed, and the exit status is 128 + the signal. Three runs of a
# scenario that only sleeps, each with its own TMPDIR:
#
#   HUP   while the initramfs is built (a private, empty cache), before QEMU;
#   TERM  as soon as QEMU has written its pidfile (the firmware is starting);
#   INT   once the scenario runs in the guest, or after BOOT_WAIT seconds of
#         boot (a loaded 2-core TCG host may take longer to boot).
#
#   run_signal_test.sh [build-dir]        (about 15-45 s)
#
# Like the rest of the VM tier it does not skip: without QEMU or a kernel, run
# fails, and so does this test.
set -uo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-${SLUICE_BUILD_DIR:-$src/build}}
run=$src/test/vm/run
BOOT_WAIT=30	# seconds to wait for the guest's scenario before sending INT
STOP_WAIT=15	# run's own bounds: QEMU gets 5 s after TERM, 5 s after KILL

# Outside /tmp: the guest gets a fresh /tmp, and reads the scenario over 9p.
tmp=$(mktemp -d /var/tmp/sluice-run-signal-test.XXXXXX) || exit 1
run_pid=
fails=0

on_exit()
{
	if [[ -n $run_pid ]] && kill -0 "$run_pid" 2>/dev/null; then
		kill -KILL "$run_pid" 2>/dev/null	# its QEMU dies through pdeathsig
		wait "$run_pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap on_exit EXIT

fail()
{
	echo "FAIL: $*"
	fails=$((fails + 1))
}

cat >"$tmp/sleep.sh" <<'EOF'
#!/bin/bash
# vm: --timeout 180
echo "SIGNAL-TEST: the scenario runs"
sleep 600
EOF

# Waits up to $1 seconds for "$2 ..." to succeed, while run lives; 0 if it did.
poll()
{
	local deadline=$((SECONDS + $1))

	shift
	while ((SECONDS < deadline)) && kill -0 "$run_pid" 2>/dev/null; do
		"$@" && return 0
		sleep 0.05
	done
	"$@"
}

exists() { compgen -G "$1" >/dev/null; }

# The pid of a process whose command line names $tmp/work, if any (QEMU's names
# its pidfile and console there; run's own does not).
leftover_pid()
{
	local f

	for f in /proc/[0-9]*/cmdline; do
		if grep -qsF "$tmp/work/" "$f"; then
			f=${f#/proc/}
			echo "${f%/cmdline}"
			return 0
		fi
	done
	return 1
}

# start CASE [VAR=VALUE...]: starts run in the background, with the signals a
# shell's background job would otherwise ignore (INT) back to their defaults.
start()
{
	local name=$1

	shift
	mkdir -p "$tmp/work" "$tmp/img" "$tmp/logs"
	env --default-signal=HUP,INT,TERM TMPDIR="$tmp/work" SLUICE_VM_LOG_DIR="$tmp/logs" "$@" \
		"$run" --build-dir "$build" --nvme 1 --ns 16M --img-dir "$tmp/img" "$tmp/sleep.sh" \
		>"$tmp/$name.log" 2>&1 &
	run_pid=$!
	T0=$SECONDS
}

# finish CASE SIG QEMU_PID: after SIG was sent, run must exit 128 + SIG within
# STOP_WAIT seconds, with QEMU gone and no directory of its left.
finish()
{
	local name=$1 sig=$2 qpid=$3 rc=0 want left deadline=$((SECONDS + STOP_WAIT)) ms

	want=$((128 + $(kill -l "$sig")))
	while kill -0 "$run_pid" 2>/dev/null && ((SECONDS < deadline)); do
		sleep 0.05
	done
	if kill -0 "$run_pid" 2>/dev/null; then
		fail "$name: run (pid $run_pid) still there ${STOP_WAIT}s after SIG$sig"
		kill -KILL "$run_pid" 2>/dev/null
	fi
	wait "$run_pid" || rc=$?
	ms=$(((${EPOCHREALTIME/[.,]/} - ${T_SIG/[.,]/}) / 1000))
	run_pid=
	((rc == want)) || fail "$name: run exited $rc after SIG$sig, not $want"
	if [[ -n $qpid && -d /proc/$qpid ]] &&
		grep -qsF "$tmp/work/" "/proc/$qpid/cmdline"; then
		fail "$name: QEMU (pid $qpid) outlived run"
	fi
	if left=$(leftover_pid); then
		fail "$name: pid $left still runs with $tmp/work in its command line"
	fi
	left=$(find "$tmp/work" "$tmp/img" -mindepth 1 -maxdepth 1 2>/dev/null)
	[[ -z $left ]] || fail "$name: left behind: $left"
	left=$(find "$tmp/cache" -mindepth 1 -maxdepth 1 -name 'build.*' 2>/dev/null)
	[[ -z $left ]] || fail "$name: half-built initramfs left behind: $left"
	echo "$name: run exited $rc ${ms} ms after SIG$sig; its output:"
	sed 's/^/    /' "$tmp/$name.log"
}

qemu_pid()
{
	local f

	for f in "$tmp"/work/sluice-vm-sleep.*/qemu.pid; do
		[[ -s $f ]] && cat "$f" && return 0
	done
	return 1
}

# HUP while the initramfs is built: an empty cache of its own.
mkdir -p "$tmp/cache"
start hup SLUICE_VM_CACHE="$tmp/cache"
if poll 10 exists "$tmp/cache/build.*"; then
	phase="while the initramfs was built"
else
	phase="after the initramfs was built (the build was not seen)"
fi
T_SIG=$EPOCHREALTIME
kill -HUP "$run_pid"
echo "hup: SIGHUP sent $phase"
finish hup HUP ""
rm -rf "$tmp/cache"

# TERM as soon as QEMU runs.
start term
poll 30 qemu_pid >/dev/null || fail "term: QEMU did not write its pidfile within 30s"
qpid=$(qemu_pid)
T_SIG=$EPOCHREALTIME
kill -TERM "$run_pid"
echo "term: SIGTERM sent $((SECONDS - T0))s after the start, QEMU pid ${qpid:-?}"
finish term TERM "$qpid"

# INT while the scenario runs (or, on a slow host, while the guest boots).
start int
poll 30 qemu_pid >/dev/null || fail "int: QEMU did not write its pidfile within 30s"
qpid=$(qemu_pid)
if poll "$BOOT_WAIT" grep -qs "SIGNAL-TEST: the scenario runs" "$tmp"/work/sluice-vm-sleep.*/console.log; then
	phase="while the scenario ran"
else
	phase="while the guest booted (no scenario after ${BOOT_WAIT}s)"
fi
T_SIG=$EPOCHREALTIME
kill -INT "$run_pid"
echo "int: SIGINT sent $phase, $((SECONDS - T0))s after the start, QEMU pid ${qpid:-?}"
finish int INT "$qpid"

if ((fails)); then
	echo "run_signal_test: $fails failures"
	exit 1
fi
echo "run_signal_test: PASS"
