#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors
#
# vm: --nvme 1 --ns 128M --img-dir /dev/shm --mem 2G --cpus 1 --timeout 900
#
# One vCPU: under TCG the device is emulated by QEMU's own threads, and on a 2-core
# host a second vCPU (idle for the kernel path, spinning for a polled driver) takes
# the core those threads need. Every contender runs in the same one-vCPU guest.
#
# The VM-tier benchmark of the NVMe driver: in one guest, on one emulated controller,
# 4 KiB randread and randwrite at QD 1 and 32 through
#   sluice   sluice-nvme-perf, the polled userspace driver (vfio-pci)
#   io_uring fio, ioengine=io_uring, on the kernel's nvme driver
#   libaio   fio, ioengine=libaio, on the kernel's nvme driver
# in rounds (kernel contenders, then sluice, then again), printing the median IOPS,
# Sluice's ratio to each, and the CPU time per I/O of the whole guest (from
# /proc/stat: interrupts and kernel threads count for the kernel too).
# Run through test/bench/nvme/run.sh. Kernel command-line knobs (run.sh sets them):
# nvme_bench.secs=N (each run, default 5), nvme_bench.rounds=N (default 3).
# TCG makes the guest slow for everyone alike: read the ratios, not the IOPS.

set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../../vm/scenarios/lib.sh
source "$SLUICE_VM_LIB"

vm_require_cmd fio jq
perf=$(vm_sluice_bin sluice-nvme-perf)
bdf=$(vm_nvme_bdfs | head -n1)
[[ -n $bdf ]] || vm_fail "no emulated NVMe controller"
out=$SLUICE_VM_OUT
secs=5
rounds=3
for arg in $(</proc/cmdline); do
	case $arg in
	nvme_bench.secs=*) secs=${arg#*=} ;;
	nvme_bench.rounds=*) rounds=${arg#*=} ;;
	esac
done
workloads=(randread-1 randread-32 randwrite-1 randwrite-32)
contenders=(sluice io_uring libaio)
# iops[contender-workload] and cpu[...]: space-separated values, one per round.
declare -A iops cpu

# The guest's CPU use, sampled every 0.25 s by a background loop of bash builtins
# only (a fork under TCG costs more than the sampling): "epoch busy_jiffies" lines.
samples=/tmp/cpu-samples
sampler()
{
	local never=/tmp/sampler-never line
	local -a f

	mkfifo "$never"
	exec 9<>"$never"
	while :; do
		read -r line </proc/stat
		read -ra f <<<"$line"
		echo "$EPOCHREALTIME $((f[1] + f[2] + f[3] + f[6] + f[7] + f[8]))" >>"$samples"
		read -rt 0.25 -u 9 line || true
	done
}

# Sum of decimals, printed in full (awk's print would say 1.79568e+09 for an epoch).
fsum()
{
	awk 'BEGIN { for (i = 1; i < ARGC; i++) s += ARGV[i]; printf "%.3f", s }' "$@"
}

# Average CPUs busy in the guest between two epochs: busy_cpus START END
busy_cpus()
{
	awk -v a="$1" -v b="$2" -v hz="$(getconf CLK_TCK)" '
		$1 >= a && $1 <= b { if (!n++) { t0 = $1; j0 = $2 } t1 = $1; j1 = $2 }
		END { printf "%.3f", (n > 1 && t1 > t0) ? (j1 - j0) / hz / (t1 - t0) : 0 }' "$samples"
}

# Records one run: record NAME IOPS BUSY_CPUS
# CPU per I/O = the guest's busy CPU time over the run / I/Os.
record()
{
	local name=$1 v=$2 busy=$3 us

	us=$(awk -v b="$busy" -v v="$v" 'BEGIN { printf "%.1f", (v > 0) ? b * 1e6 / v : 0 }')
	iops[$name]+="$v "
	cpu[$name]+="$us "
	printf '  %-9s %-13s %10.0f IOPS %6.2f CPUs busy %9s us CPU/IO\n' "${name%%-*}" \
		"${name#*-}" "$v" "$busy" "$us"
}

# One fio process per engine and round, the four workloads as jobs one after the
# other (stonewall): fio starts slowly under TCG. Each job's window is found from the
# end of the run (timestamp_ms) backwards by the jobs' runtimes; a margin of 0.3 s
# at either end leaves the gaps between jobs out.
run_fio()
{
	local engine=$1 dev=$2 json args=() w i end start rt

	json=$out/fio-$engine-round$3.json
	for w in "${workloads[@]}"; do
		args+=(--name="$w" --rw="${w%-*}" --iodepth="${w#*-}" --stonewall)
	done
	fio --filename="$dev" --ioengine="$engine" --direct=1 --bs=4k --runtime="$secs" \
		--time_based --norandommap --randrepeat=0 --output-format=json "${args[@]}" \
		>"$json" || vm_fail "fio $engine failed"
	end=$(jq '.timestamp_ms / 1000' "$json")
	for ((i = ${#workloads[@]} - 1; i >= 0; i--)); do
		rt=$(jq ".jobs[$i].job_runtime / 1000" "$json")
		start=$(fsum "$end" "-$rt")
		record "$engine-${workloads[$i]}" \
			"$(jq ".jobs[$i].read.iops + .jobs[$i].write.iops" "$json")" \
			"$(busy_cpus "$(fsum "$start" 0.3)" "$(fsum "$end" -0.3)")"
		end=$start
	done
}

run_sluice()
{
	local rw=$1 qd=$2 f t0 line v

	f=$out/perf-$rw-$qd-round$3.txt
	t0=
	# Its I/O phase starts when it says "Initialization complete" (flushed).
	while IFS= read -r line; do
		echo "$line" >>"$f"
		[[ $line == "Initialization complete"* ]] && t0=$EPOCHREALTIME
	done < <("$perf" -q "$qd" -o 4096 -w "$rw" -t "$secs" -c 0x1 \
		-r "trtype:PCIe traddr:$bdf ns:1" --transport-stats 2>&1)
	v=$(awk '/^Total / { print $3 }' "$f" | tail -n1)
	[[ -n $t0 && -n $v ]] || vm_fail "sluice-nvme-perf $rw QD $qd did not run (see $f)"
	record "sluice-$rw-$qd" "$v" "$(busy_cpus "$(fsum "$t0" 0.3)" "$(fsum "$t0" "$secs" -0.3)")"
}

median()
{
	tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print 0 } else if (NR % 2) { print v[(NR + 1) / 2] }
		else { print (v[NR / 2] + v[NR / 2 + 1]) / 2 } }'
}

sampler &
sampler_pid=$!
trap 'kill "$sampler_pid" 2>/dev/null || true' EXIT

vm_step "kernel driver: precondition the namespace (written once, no holes)"
ctrl=$(vm_bind_nvme "$bdf")
mapfile -t nss < <(vm_nvme_namespaces "$ctrl")
dev=${nss[0]}
dd if=/dev/zero of="$dev" bs=1M oflag=direct status=none 2>/dev/null || true
vm_hugepages 256

for ((r = 1; r <= rounds; r++)); do
	vm_step "round $r/$rounds: fio on the kernel driver"
	[[ $(vm_pci_driver "$bdf") == nvme ]] || ctrl=$(vm_bind_nvme "$bdf")
	mapfile -t nss < <(vm_nvme_namespaces "$ctrl")
	dev=${nss[0]}
	for e in io_uring libaio; do
		run_fio "$e" "$dev" "$r"
	done
	vm_step "round $r/$rounds: sluice-nvme-perf through vfio-pci"
	vm_bind_vfio "$bdf" >/dev/null
	for w in "${workloads[@]}"; do
		run_sluice "${w%-*}" "${w#*-}" "$r"
	done
done

vm_step "results: median of $rounds rounds of ${secs}s, 4 KiB, same boot (TCG: read the ratios)"
{
	printf '| workload | QD | sluice IOPS | io_uring IOPS | libaio IOPS | sluice / io_uring | sluice / libaio | CPU us/IO sluice | io_uring | libaio |\n'
	printf '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n'
	for w in "${workloads[@]}"; do
		declare -A m=()
		for c in "${contenders[@]}"; do
			m[$c]=$(median <<<"${iops[$c-$w]}")
			m[$c-cpu]=$(median <<<"${cpu[$c-$w]}")
		done
		awk -v w="${w%-*}" -v q="${w#*-}" -v s="${m[sluice]}" -v u="${m[io_uring]}" \
			-v a="${m[libaio]}" -v cs="${m[sluice-cpu]}" -v cu="${m[io_uring-cpu]}" \
			-v ca="${m[libaio-cpu]}" 'BEGIN {
			printf "| %s | %d | %.0f | %.0f | %.0f | %.2fx | %.2fx | %.1f | %.1f | %.1f |\n",
				w, q, s, u, a, (u > 0) ? s / u : 0, (a > 0) ? s / a : 0, cs, cu, ca }'
	done
} | tee "$out/results.md"
for c in "${contenders[@]}"; do
	for w in "${workloads[@]}"; do
		echo "$c $w iops: ${iops[$c-$w]}cpu_us: ${cpu[$c-$w]}"
	done
done | tee "$out/rounds.txt"

vm_step "done"
