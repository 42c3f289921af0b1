#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors
#
# vm: --nvme 1 --ns 64M,16M --mem 2G --timeout 420
#
# Data written through the kernel driver reads back identical through Sluice's
# driver after rebinding to vfio-pci, and the reverse; hello-world runs; and
# sluice-nvme-perf runs 4 KiB random reads and writes at QD 1 and 32 next to fio on
# the kernel driver (io_uring) in the same boot, printing the ratios.

set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$SLUICE_VM_LIB"

vm_require_cmd fio
hello=$(vm_sluice_bin sluice-nvme-hello-world)
perf=$(vm_sluice_bin sluice-nvme-perf)
bdf=$(vm_nvme_bdfs | head -n1)
trid="trtype:PCIe traddr:$bdf"
out=$SLUICE_VM_OUT
secs=${SLUICE_NVME_PERF_SECS:-5}
declare -A kernel_iops sluice_iops

vm_step "kernel driver: write pattern A to namespace 1 and fio baselines"
ctrl=$(vm_bind_nvme "$bdf")
mapfile -t nss < <(vm_nvme_namespaces "$ctrl")
dd if=/dev/urandom of=/tmp/a.bin bs=1M count=4 status=none
dd if=/tmp/a.bin of="${nss[0]}" bs=1M oflag=direct status=none
sum_a=$(vm_checksum /tmp/a.bin)
for rw in randread randwrite; do
	for qd in 1 32; do
		fio --name=k --filename="${nss[0]}" --ioengine=io_uring --direct=1 --rw=$rw \
			--bs=4k --iodepth=$qd --runtime="$secs" --time_based --offset=8M \
			--size=48M --output-format=json >"$out/fio-$rw-$qd.json" ||
			vm_fail "fio $rw QD $qd failed"
		kernel_iops[$rw-$qd]=$(jq '.jobs[0].read.iops + .jobs[0].write.iops' "$out/fio-$rw-$qd.json")
		echo "fio io_uring $rw QD $qd: ${kernel_iops[$rw-$qd]} IOPS"
	done
done
# fio wrote from 8 MiB on: pattern A (first 4 MiB) is intact.

vm_step "vfio-pci: Sluice reads pattern A back"
vm_bind_vfio "$bdf" >/dev/null
vm_hugepages 256
"$hello" -r "$trid" -n 1 --read /tmp/a-sluice.bin --size $((4 << 20)) --lba 0
[[ $(vm_checksum /tmp/a-sluice.bin) == "$sum_a" ]] || vm_fail "Sluice read differs from what the kernel wrote"

vm_step "hello world"
"$hello" -r "$trid" | tee "$out/hello.txt"
grep -qx "Hello world!" "$out/hello.txt" || vm_fail "hello world did not read back its greeting"

vm_step "Sluice writes pattern B to namespace 2"
dd if=/dev/urandom of=/tmp/b.bin bs=1M count=2 status=none
sum_b=$(vm_checksum /tmp/b.bin)
"$hello" -r "$trid" -n 2 --write /tmp/b.bin --lba 0

vm_step "sluice-nvme-perf, namespace 1 past 8 MiB is scratch"
for rw in randread randwrite; do
	for qd in 1 32; do
		"$perf" -q $qd -o 4096 -w $rw -t "$secs" -c 0x1 -r "$trid ns:1" | tee "$out/perf-$rw-$qd.txt"
		sluice_iops[$rw-$qd]=$(awk '/^Total/ { print $3 }' "$out/perf-$rw-$qd.txt")
		[[ -n ${sluice_iops[$rw-$qd]} ]] || vm_fail "no Total line from sluice-nvme-perf"
		awk -v v="${sluice_iops[$rw-$qd]}" 'BEGIN { exit !(v > 0) }' || vm_fail "perf did no I/O"
	done
done

vm_step "kernel driver: pattern B is there, pattern A was overwritten only past 8 MiB"
ctrl=$(vm_bind_nvme "$bdf")
mapfile -t nss < <(vm_nvme_namespaces "$ctrl")
[[ $(vm_checksum "${nss[1]}" $((2 << 20))) == "$sum_b" ]] || vm_fail "the kernel reads other data than Sluice wrote"

vm_step "results (4 KiB, same boot; TCG: compare ratios only)"
for rw in randread randwrite; do
	for qd in 1 32; do
		awk -v w="$rw" -v q="$qd" -v s="${sluice_iops[$rw-$qd]}" -v k="${kernel_iops[$rw-$qd]}" \
			'BEGIN { printf "%-9s QD %2d: sluice-nvme-perf %10.0f IOPS, fio io_uring %10.0f IOPS, ratio %.2fx\n", w, q, s, k, s / k }'
	done
done | tee "$out/results.txt"

vm_step "done"
