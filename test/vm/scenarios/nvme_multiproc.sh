#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors
#
# vm: --nvme 1 --ns 256M --mem 3G --cpus 2 --timeout 900
#
# Several processes on one NVMe controller (shm id 1), and the ledger cleaning up
# after the ones that die (issue 8), on QEMU's NVMe (64 I/O queues):
#  a. sluiced (the primary) exports Nvme0n1 as /dev/nbd0 with fio verify on one
#     range, three sluice-nvme-perf --verify secondaries on their own ranges; one is
#     killed with -9 mid-I/O: within 2 s the ledger no longer lists it and its queues
#     are back; fio and the other two finish without an error.
#  b. 50 secondaries holding 8 qpairs each are started and killed (SIGKILL, SIGSEGV,
#     SIGINT in turn): the controller never runs out of queues, the last one runs.
#  c. a process killed while it holds the controller lock: the next one recovers it.
#  d. pid reuse: an entry forged for a live pid with another start time is reaped.
#  e. the primary killed with -9 while two secondaries verify: they finish clean;
#     a new sluiced with the same id and config adopts the controller.
#
# Namespace layout (512-byte blocks; 256 MiB = 524288 blocks): fio on /dev/nbd0
# bytes 0-32 MiB (blocks 0-65535); the secondaries 16 MiB each from block 131072.

set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$SLUICE_VM_LIB"

vm_require_cmd fio jq
sluiced=$(vm_sluice_bin sluiced)
ctl=$(vm_sluice_bin sluicectl)
perf=$(vm_sluice_bin sluice-nvme-perf)
identify=$(vm_sluice_bin sluice-nvme-identify)
bdf=$(vm_nvme_bdfs | head -n1)
[[ -n $bdf ]] || vm_fail "no emulated NVMe controller"
trid="trtype:PCIe traddr:$bdf"
out=$SLUICE_VM_OUT
sock=/tmp/sluice.sock
cfg=/tmp/sluice-mp.json
shm=1
range_a=131072:32768
range_b=163840:32768
range_c=196608:32768
range_cycle=229376:32768
cycles=${SLUICE_MP_CYCLES:-50}
sluiced_pid=
last_pid=
declare -A perf_pids=()

# No core files from the SIGSEGV cycles.
ulimit -c 0

# Ends, by pid, what this script started and is still running.
cleanup()
{
	local p

	for p in $(jobs -p); do
		kill -9 "$p" 2>/dev/null || true
	done
}
trap cleanup EXIT

rpc()
{
	"$ctl" -s "$sock" -t 30 "$@"
}

# The ledger of Nvme0 as sluiced sees it, one line of JSON.
ledger()
{
	rpc -j bdev_nvme_get_controllers --name Nvme0 | jq -c '.[0].ctrlrs[0].ledger'
}

start_sluiced()
{
	"$sluiced" -i "$shm" -m 0x1 -s 256 -r "$sock" -c "$cfg" >>"$out/sluiced.log" 2>&1 &
	sluiced_pid=$!
}

# Starts a perf secondary in the background (its pid in last_pid), output to
# $out/perf-NAME.txt: start_perf NAME PERF_ARGS...
start_perf()
{
	local name=$1

	shift
	# A non-interactive shell starts background jobs with SIGINT ignored: give it back.
	env --default-signal=INT "$perf" -i "$shm" -c 0x2 -o 4096 -r "$trid" "$@" \
		>"$out/perf-$name.txt" 2>&1 &
	last_pid=$!
}

# Waits until a perf has its qpairs and is doing I/O: wait_running NAME PID [SECS=60]
wait_running()
{
	local name=$1 p=$2 timeout=${3:-60} i

	for ((i = 0; i < timeout * 10; i++)); do
		grep -q 'Launching workers' "$out/perf-$name.txt" && return 0
		if ! kill -0 "$p" 2>/dev/null; then
			cat "$out/perf-$name.txt"
			vm_fail "perf $name (pid $p) exited before it started I/O"
		fi
		sleep 0.1
	done
	cat "$out/perf-$name.txt"
	vm_fail "perf $name (pid $p) did not start I/O within ${timeout}s"
}

# Starts perf --verify secondaries at QD 8 for SECS seconds, all of them before
# waiting for any (a start under TCG is slow), then waits until each does I/O;
# their pids in perf_pids[NAME]: start_verifiers SECS NAME,WORKLOAD,LBA-RANGE...
start_verifiers()
{
	local secs=$1 spec name rw range

	shift
	for spec; do
		IFS=, read -r name rw range <<<"$spec"
		start_perf "$name" -q 8 -w "$rw" -t "$secs" --verify --lba-range "$range"
		perf_pids[$name]=$last_pid
	done
	for spec; do
		name=${spec%%,*}
		wait_running "$name" "${perf_pids[$name]}"
	done
}

# Waits for a perf --verify and checks it verified clean: wait_verified NAME PID
wait_verified()
{
	local name=$1 p=$2 rc=0

	wait "$p" || rc=$?
	grep -E '^verify: ' "$out/perf-$name.txt" || true
	if ((rc != 0)) || ! grep -Eq '^verify: [1-9][0-9]* blocks checked, 0 mismatches, 0 I/O errors$' \
		"$out/perf-$name.txt"; then
		tail -n 30 "$out/perf-$name.txt"
		vm_fail "perf $name (pid $p) exited with $rc or did not verify clean"
	fi
}

# True when the ledger JSON in $1 lists pid $2.
ledger_has_pid()
{
	jq -e --argjson p "$2" 'any(.processes[]; .pid == $p)' <<<"$1" >/dev/null
}

check_dmesg()
{
	if dmesg | grep -E 'nbd.*I/O error|blk_update_request|Buffer I/O error' >"$out/dmesg-errors.txt"; then
		cat "$out/dmesg-errors.txt"
		vm_fail "the kernel logged I/O errors ($1)"
	fi
}

vm_step "bind $bdf to vfio-pci, hugepages, nbd"
vm_bind_vfio "$bdf" >/dev/null
vm_hugepages 768
vm_modprobe nbd
vm_wait_for /dev/nbd0 10
cat >"$cfg" <<EOF
{"subsystems": [
 {"subsystem": "bdev", "config": [
  {"method": "bdev_nvme_attach_controller",
   "params": {"name": "Nvme0", "trtype": "PCIe", "traddr": "$bdf"}}]},
 {"subsystem": "nbd", "config": [
  {"method": "nbd_start_disk",
   "params": {"bdev_name": "Nvme0n1", "nbd_device": "/dev/nbd0"}}]}]}
EOF

# ---- a ------------------------------------------------------------------------------
vm_step "a. sluiced -i $shm: Nvme0n1 on /dev/nbd0; the ledger has it alone, as primary"
start_sluiced
vm_wait_until 120 rpc framework_wait_init >/dev/null 2>&1
kill -0 "$sluiced_pid" || vm_fail "sluiced exited at start (see sluiced.log)"
rpc bdev_nvme_get_controllers | tee "$out/controllers-start.txt"
l=$(ledger)
echo "$l" >"$out/ledger-start.json"
jq -e --argjson p "$sluiced_pid" '.shared and .queues_total >= 1 and ([.processes[] | select(.pid == $p and .primary and .self)] | length == 1)' \
	<<<"$l" >/dev/null || vm_fail "sluiced is not the ledger's primary: $l"
[[ $(blockdev --getsize64 /dev/nbd0) == $((256 << 20)) ]] || vm_fail "/dev/nbd0 has the wrong size"

vm_step "a. fio verify on /dev/nbd0 (0-32 MiB), three perf --verify secondaries"
start_verifiers 45 a,randwrite,"$range_a" b,randwrite,"$range_b" c,randwrite,"$range_c"
pa=${perf_pids[a]} pb=${perf_pids[b]} pc=${perf_pids[c]}
# fio after the secondaries, whose start under TCG is slow and varies with the load.
fio --name=nbd --filename=/dev/nbd0 --ioengine=libaio --direct=1 --rw=randwrite --bs=4k \
	--iodepth=16 --offset=0 --size=32M --loops=1000 --runtime=30 --verify=crc32c \
	--verify_backlog=1024 --verify_fatal=1 --output="$out/fio.txt" &
fio_pid=$!
sleep 3
l=$(ledger)
echo "$l" >"$out/ledger-before-kill.json"
for p in "$sluiced_pid" "$pa" "$pb" "$pc"; do
	ledger_has_pid "$l" "$p" || vm_fail "pid $p is not in the ledger: $l"
done
before=$(jq '.queues_in_use' <<<"$l")
victim_qids=$(jq -c --argjson p "$pb" '.processes[] | select(.pid == $p) | .qids' <<<"$l")
victim_n=$(jq length <<<"$victim_qids")
((victim_n >= 1)) || vm_fail "the victim (pid $pb) holds no queue: $l"
echo "queues in use $before; perf b (pid $pb) holds $victim_qids"

vm_step "a. kill -9 perf b mid-I/O: within 2 s it is gone from the ledger, its queues back"
kill -0 "$fio_pid" 2>/dev/null || vm_fail "fio ended before the kill (see fio.txt)"
t_kill=$EPOCHREALTIME
kill_wall=$(date '+%s.%N')
kill -9 "$pb"
wait "$pb" 2>/dev/null || true
# The kernel's teardown of the process (its hugepage and vfio mappings) is slow under
# TCG and not the ledger's doing: the 2 s run from the moment the process is gone.
t0=$EPOCHREALTIME
exit_s=$(awk -v a="$t0" -v b="$t_kill" 'BEGIN { printf "%.2f", a - b }')
reaped=
while awk -v a="$EPOCHREALTIME" -v b="$t0" 'BEGIN { exit !(a - b < 10.0) }'; do
	l=$(ledger)
	# Others may finish and detach meanwhile: the victim's own queue IDs must be free.
	if ! ledger_has_pid "$l" "$pb" &&
		jq -e --argjson q "$victim_qids" '[.processes[].qids[]] | any(. as $x | $q | index($x)) | not' \
			<<<"$l" >/dev/null; then
		reaped=$(awk -v a="$EPOCHREALTIME" -v b="$t0" 'BEGIN { printf "%.2f", a - b }')
		break
	fi
	sleep 0.1
done
echo "$l" >"$out/ledger-after-kill.json"
[[ -n $reaped ]] ||
	vm_fail "10 s after kill -9, pid $pb is still in the ledger or its queues $victim_qids are not free ($before in use before): $l"
echo "$l"
# When it was reaped, by the reaper's own log (any live process may be the one; the
# RPCs above are slow under TCG load).
reap_line=$(cat "$out/sluiced.log" "$out"/perf-*.txt | grep -aE "reaped dead process $pb " | head -n 1)
echo "$reap_line"
[[ -n $reap_line ]] || vm_fail "no process logged reaping pid $pb"
reap_wall=$(date -d "$(sed -E 's/^\[([^]]*)\].*/\1/' <<<"$reap_line")" '+%s.%N')
reap_s=$(awk -v a="$reap_wall" -v b="$kill_wall" 'BEGIN { printf "%.2f", a - b }')
echo "kill -9 -> process gone: ${exit_s}s; kill -9 -> reaped (reaper's log): ${reap_s}s; seen reaped over RPC after ${reaped}s"
awk -v r="$reap_s" 'BEGIN { exit !(r <= 2.0) }' ||
	vm_fail "pid $pb was reaped ${reap_s}s after kill -9 (limit 2 s)"
rpc bdev_nvme_get_controllers

vm_step "a. fio and the other two secondaries finish without an error"
wait_verified a "$pa"
wait_verified c "$pc"
wait "$fio_pid" || { tail -n 40 "$out/fio.txt"; vm_fail "fio verify on /dev/nbd0 failed"; }
grep -E 'err=|verify' "$out/fio.txt" | head -n 3 || true
check_dmesg "part a"

# ---- b ------------------------------------------------------------------------------
vm_step "b. $cycles secondaries with 8 qpairs each, killed with SIGKILL, SIGSEGV, SIGINT in turn"
l=$(ledger)
reaped0=$(jq '.reaped' <<<"$l")
base_in_use=$(jq '.queues_in_use' <<<"$l")
sigs=(KILL SEGV INT)
crashed=0
for ((i = 0; i < cycles; i++)); do
	sig=${sigs[i % 3]}
	start_perf cycle -q 4 -P 8 -w randread -t 120 --lba-range "$range_cycle"
	p=$last_pid
	wait_running cycle "$p"
	sleep 0.2
	kill "-$sig" "$p"
	rc=0
	wait "$p" 2>/dev/null || rc=$?
	# A perf that handles SIGINT may end cleanly; by any other signal it must have died.
	if [[ $sig != INT ]] || ((rc != 0)); then
		((rc > 128)) || vm_fail "cycle $i: perf (pid $p) was not killed by SIG$sig (exit $rc)"
		crashed=$((crashed + 1))
	fi
	cp "$out/perf-cycle.txt" "$out/perf-cycle-last.txt"
	if ((i % 10 == 9)); then
		echo "cycle $((i + 1)): $(ledger)"
	fi
done

vm_step "b. the last secondary still gets its 8 qpairs, and nothing is left held"
start_perf final -q 4 -P 8 -w randwrite -t 2 --verify --lba-range "$range_cycle"
wait_verified final "$last_pid"
l=$(ledger)
echo "$l" >"$out/ledger-after-cycles.json"
echo "$l"
jq -e --argjson n "$base_in_use" --argjson r "$((reaped0 + crashed))" \
	'.queues_in_use == $n and (.processes | length) == 1 and .reaped >= $r' <<<"$l" >/dev/null ||
	vm_fail "after the cycles the ledger should hold sluiced alone with $base_in_use queues, and $((reaped0 + crashed)) reaped: $l"

# ---- c ------------------------------------------------------------------------------
vm_step "c. kill -9 a process holding the controller lock; the next one recovers it"
"$identify" -i "$shm" -r "$trid" --hold-lock 60000 >"$out/hold-lock.txt" 2>&1 &
hp=$!
vm_wait_until 60 grep -q 'holding the lock' "$out/hold-lock.txt"
sleep 0.5
kill -9 "$hp"
wait "$hp" 2>/dev/null || true
timeout 60 "$identify" -i "$shm" -r "$trid" --ledger >"$out/ledger-identify.json" 2>"$out/identify.err" || {
	cat "$out/ledger-identify.json" "$out/identify.err"
	vm_fail "identify --ledger after the lock holder died failed (or hung)"
}
cat "$out/ledger-identify.json"
jq -e '.[0].lock_recoveries >= 1' "$out/ledger-identify.json" >/dev/null ||
	vm_fail "lock_recoveries is not >= 1 after the lock holder was killed"
jq -e --argjson p "$hp" 'all(.[0].processes[]; .pid != $p)' "$out/ledger-identify.json" >/dev/null ||
	vm_fail "the killed lock holder (pid $hp) is still in the ledger"
ledger_has_pid "$(ledger)" "$sluiced_pid" || vm_fail "sluiced lost its ledger entry"

# ---- d ------------------------------------------------------------------------------
vm_step "d. pid reuse: a forged entry whose pid now names another process is reaped"
# This shell is alive, but did not start at tick 1: its pid stands for a reused one.
l=$(ledger)
reaped0=$(jq '.reaped' <<<"$l")
in_use0=$(jq '.queues_in_use' <<<"$l")
"$identify" -i "$shm" -r "$trid" --forge-entry "$$:1:3" >"$out/forge.txt" 2>&1 ||
	{ cat "$out/forge.txt"; vm_fail "identify --forge-entry failed"; }
reaped=
for ((i = 0; i < 20; i++)); do
	l=$(ledger)
	if (($(jq '.reaped' <<<"$l") == reaped0 + 1)) && ! ledger_has_pid "$l" "$$"; then
		reaped=1
		break
	fi
	sleep 0.1
done
echo "$l"
[[ -n $reaped ]] || vm_fail "the forged entry for pid $$ (start time 1) was not reaped: $l"
(($(jq '.queues_in_use' <<<"$l") == in_use0)) || vm_fail "the forged entry's queue IDs are not back: $l"
grep -E 'forged|reaped dead process' "$out/forge.txt" "$out/sluiced.log" | tail -n 2 || true
kill -0 $$ || vm_fail "unreachable"

# ---- e (last: what it finds is recorded, and a failure ends the scenario here) -------
vm_step "e. kill -9 the primary while two secondaries verify"
rpc nbd_stop_disk --nbd-device /dev/nbd0 >/dev/null
start_verifiers 60 ea,randwrite,"$range_a" eb,write,"$range_c"
pea=${perf_pids[ea]} peb=${perf_pids[eb]}
sleep 2
kill -9 "$sluiced_pid"
wait "$sluiced_pid" 2>/dev/null || true
echo "sluiced (pid $sluiced_pid) killed"
# A survivor reaps it and takes the primary role.
new_primary=
for ((i = 0; i < 100; i++)); do
	if "$identify" -i "$shm" -r "$trid" --ledger >"$out/ledger-orphans.json" 2>"$out/identify-e.err"; then
		new_primary=$(jq -r --argjson a "$pea" --argjson b "$peb" \
			'.[0].processes[] | select(.primary and (.pid == $a or .pid == $b)) | .pid' \
			"$out/ledger-orphans.json")
		[[ -n $new_primary ]] && break
	fi
	sleep 0.2
done
cat "$out/ledger-orphans.json"
[[ -n $new_primary ]] || vm_fail "no secondary took over as primary after sluiced died"
echo "secondary $new_primary took over as the controller's primary"

vm_step "e. a new sluiced -i $shm with the same config while they run: it joins and adopts"
kill -0 "$pea" && kill -0 "$peb" || vm_fail "a secondary ended before the new sluiced started"
start_sluiced
up=
for ((i = 0; i < 1200; i++)); do
	kill -0 "$sluiced_pid" 2>/dev/null || break
	rpc framework_wait_init >/dev/null 2>&1 && { up=1; break; }
	sleep 0.1
done
if [[ -z $up ]] || ! kill -0 "$sluiced_pid" 2>/dev/null; then
	tail -n 60 "$out/sluiced.log"
	vm_fail "the new sluiced did not come up with the controller (its log above)"
fi
grep -E 'is gone but|vfio device of process|cannot join|resetting' "$out/sluiced.log" | tail -n 5 || true
grep -q 'joining their memory as a secondary' "$out/sluiced.log" ||
	vm_fail "the new sluiced did not join the running secondaries"
rpc bdev_nvme_get_controllers | tee "$out/controllers-adopted.txt"
l=$(ledger)
echo "$l" >"$out/ledger-adopted.json"
jq -e --argjson p "$sluiced_pid" --argjson a "$pea" --argjson b "$peb" \
	'([.processes[] | select(.pid == $p and .self)] | length == 1) and any(.processes[]; .pid == $a) and any(.processes[]; .pid == $b)' \
	<<<"$l" >/dev/null || vm_fail "the ledger should hold the new sluiced and both secondaries: $l"
dd if=/dev/nbd0 of=/dev/null bs=1M count=4 iflag=direct status=none || vm_fail "/dev/nbd0 does not read after the restart"
wait_verified ea "$pea"
wait_verified eb "$peb"
# The secondaries are gone: the new sluiced holds the controller alone, as primary.
for ((i = 0; i < 50; i++)); do
	l=$(ledger)
	jq -e --argjson p "$sluiced_pid" '(.processes | length) == 1 and .processes[0].pid == $p and .processes[0].primary' \
		<<<"$l" >/dev/null && break
	sleep 0.2
done
echo "$l"
jq -e --argjson p "$sluiced_pid" '(.processes | length) == 1 and .processes[0].primary' <<<"$l" >/dev/null ||
	vm_fail "after the secondaries left, the new sluiced should be the primary: $l"
start_perf after -q 8 -w randwrite -t 2 --verify --lba-range "$range_b"
wait_verified after "$last_pid"
kill -TERM "$sluiced_pid"
wait "$sluiced_pid" || vm_fail "the new sluiced exited with an error on SIGTERM"
sluiced_pid=
check_dmesg "part e"
vm_step "done"
