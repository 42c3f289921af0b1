#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors
#
# vm: --mem 3G --cpus 2 --timeout 580
#
# The VM-tier benchmark of the kernel NBD export: the same fio job (4 KiB randread
# and randwrite, QD 32, libaio, O_DIRECT) on three /dev/nbdX devices in one guest,
# each backed by a file of its own in the guest's tmpfs:
#   /dev/nbd0  sluiced (aio bdev, nbd_start_disk; one connection per reactor)
#   /dev/nbd1  qemu-nbd --connect
#   /dev/nbd2  nbdkit (file plugin) + nbd-client, over a Unix socket
# It prints IOPS and the ratio of sluiced to the best peer; the goal is 1.5x.
# Run: test/vm/run --build-dir BUILD test/bench/nbd/vm_nbd_kernel_bench.sh
# (SLUICE_NBD_BENCH_SECS sets each run's length, default 10.)
# TCG makes the guest slow for everyone alike: read the ratios, not the IOPS.

set -euo pipefail
# shellcheck source=../../vm/scenarios/lib.sh
source "$SLUICE_VM_LIB"

vm_require_cmd fio qemu-nbd nbdkit nbd-client jq
sluiced=$(vm_sluice_bin sluiced)
ctl=$(vm_sluice_bin sluicectl)
out=$SLUICE_VM_OUT
secs=${SLUICE_NBD_BENCH_SECS:-10}
size=256M
sock=/tmp/sluice.sock
pids=()
declare -A iops

cleanup()
{
	nbd-client -d /dev/nbd2 >/dev/null 2>&1 || true
	qemu-nbd -d /dev/nbd1 >/dev/null 2>&1 || true
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
}
trap cleanup EXIT

run_fio()
{
	local dev=$1 rw=$2 name=$3

	fio --name="$name-$rw" --filename="$dev" --ioengine=libaio --direct=1 --rw="$rw" \
		--bs=4k --iodepth=32 --runtime="$secs" --time_based --ramp_time=2 \
		--size="$size" --norandommap --randrepeat=0 --output-format=json \
		>"$out/fio-$name-$rw.json" || vm_fail "fio $rw on $dev ($name) failed"
	iops[$name-$rw]=$(jq '.jobs[0].read.iops + .jobs[0].write.iops' "$out/fio-$name-$rw.json")
	printf '%-8s %-9s %10.0f IOPS\n' "$name" "$rw" "${iops[$name-$rw]}"
}

vm_step "backing files, nbd module"
vm_modprobe nbd
vm_wait_for /dev/nbd2 10
for i in 0 1 2; do
	# Written through once, so no party reads holes.
	dd if=/dev/zero of=/tmp/bench$i.img bs=1M count=256 status=none
done

vm_step "sluiced: aio bdev on /tmp/bench0.img as /dev/nbd0"
"$sluiced" -m "${SLUICE_NBD_BENCH_MASK:-0x1}" --no-huge -s 512 -r "$sock" >"$out/sluiced.log" 2>&1 &
pids+=($!)
vm_wait_until 120 "$ctl" -s "$sock" framework_wait_init >/dev/null 2>&1
"$ctl" -s "$sock" bdev_aio_create --name B0 --filename /tmp/bench0.img --block-size 4096 >/dev/null
"$ctl" -s "$sock" nbd_start_disk --bdev-name B0 --nbd-device /dev/nbd0 >/dev/null

vm_step "qemu-nbd --connect /dev/nbd1"
# qemu-nbd --connect keeps its socket in /var/lock (/run/lock: the guest's /run is new).
mkdir -p "$(readlink -f /var/lock)"
qemu-nbd --fork --connect=/dev/nbd1 -f raw /tmp/bench1.img
vm_wait_until 30 test "$(blockdev --getsize64 /dev/nbd1 2>/dev/null)" = $((256 << 20))

vm_step "nbdkit file + nbd-client /dev/nbd2"
nbdkit --foreground -U /tmp/nbdkit.sock file /tmp/bench2.img >"$out/nbdkit.log" 2>&1 &
pids+=($!)
vm_wait_for /tmp/nbdkit.sock 30
nbd-client -u /tmp/nbdkit.sock /dev/nbd2 -b 4096 -N "" >"$out/nbd-client.log" 2>&1 ||
	nbd-client -u /tmp/nbdkit.sock /dev/nbd2 -b 4096 >>"$out/nbd-client.log" 2>&1 ||
	{ cat "$out/nbd-client.log"; vm_fail "nbd-client could not connect to nbdkit"; }
vm_wait_until 30 test "$(blockdev --getsize64 /dev/nbd2 2>/dev/null)" = $((256 << 20))

vm_step "fio: 4 KiB, QD 32, ${secs}s each"
for rw in randread randwrite; do
	run_fio /dev/nbd0 "$rw" sluiced
	run_fio /dev/nbd1 "$rw" qemu-nbd
	run_fio /dev/nbd2 "$rw" nbdkit
done
# How much of its runs sluiced's reactors spent hot (polling without sleeping).
"$ctl" -j -s "$sock" framework_get_reactors |
	jq -r '.tick_rate as $hz | .reactors[] | "sluiced reactor \(.lcore): hot \(.hot_periods) times, \(.hot / $hz * 1000 | floor) ms in all"'

vm_step "results (same guest; TCG: compare ratios only)"
{
	printf '| %-9s | %10s | %10s | %10s | %13s |\n' workload sluiced qemu-nbd nbdkit "vs best peer"
	printf '|%s|%s|%s|%s|%s|\n' ----------- ------------ ------------ ------------ ---------------
	for rw in randread randwrite; do
		awk -v w="$rw" -v s="${iops[sluiced-$rw]}" -v q="${iops[qemu-nbd-$rw]}" \
			-v n="${iops[nbdkit-$rw]}" 'BEGIN {
				best = q > n ? q : n
				printf "| %-9s | %10.0f | %10.0f | %10.0f | %12.2fx |\n", w, s, q, n, s / best
			}'
	done
} | tee "$out/results.md"
vm_step "done"
