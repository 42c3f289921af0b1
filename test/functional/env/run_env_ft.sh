#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors

# Run one env functional test with enough hugepages, then check it left nothing behind.
# Usage: run_env_ft.sh [--cleanup] <MiB of hugepages needed> <test binary> [args...]
# An argument "SHM_ID" is replaced by a shm id unique to this run. With --cleanup the
# test is expected to leave its hugepage files, and 'contrib/setup.sh cleanup' to
# remove them once it has exited.

set -euo pipefail

expect_cleanup=no
if [[ ${1:-} == --cleanup ]]; then
	expect_cleanup=yes
	shift
fi
need_mib=$1
shift
src=${SLUICE_SOURCE_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)}
shm_id=$((100000 + $$))
prefix=sluice$shm_id

skip() {
	echo "SKIP: $*"
	exit 77
}

leftovers() {
	local f
	for f in /dev/hugepages/"$prefix"map_* /var/run/dpdk/"$prefix"; do
		[[ -e $f ]] && echo "$f"
	done
	return 0
}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	rm -f /dev/hugepages/"$prefix"map_*
	rm -rf /var/run/dpdk/"$prefix"
}

[[ $EUID -eq 0 ]] || skip "needs root (reserves hugepages, reads physical addresses)"
kb=$(awk '/^Hugepagesize:/ { print $2 }' /proc/meminfo)
[[ -n $kb ]] || skip "the kernel has no hugepage support"
sysdir=/sys/kernel/mm/hugepages/hugepages-${kb}kB
need=$(((need_mib * 1024 + kb - 1) / kb))
free=$(cat "$sysdir/free_hugepages")
if ((free < need)) || ! grep -qw hugetlbfs /proc/mounts; then
	# Grow the reservation by what is missing; never shrink what others may use.
	total=$(cat "$sysdir/nr_hugepages")
	want=$((total + (free < need ? need - free : 0)))
	SKIP_PCI=yes NRHUGE=$want "$src/contrib/setup.sh" config ||
		skip "contrib/setup.sh could not reserve $need_mib MiB of hugepages"
	free=$(cat "$sysdir/free_hugepages")
	((free >= need)) || skip "only $free free hugepages of ${kb} kB, $need needed"
fi

args=()
for a in "$@"; do
	args+=("${a/#SHM_ID/$shm_id}")
done
trap cleanup EXIT
rc=0
if [[ $expect_cleanup == yes ]]; then
	SLUICE_FT_KEEP_FILES=1 "${args[@]}" || rc=$?
	if ((rc == 0)); then
		left=$(leftovers)
		[[ -n $left ]] || { echo "FAIL: expected hugepage files to be kept" && exit 1; }
		echo "kept: $(echo "$left" | tr '\n' ' ')"
		"$src/contrib/setup.sh" cleanup
	fi
else
	"${args[@]}" || rc=$?
fi
if ((rc == 0)) && [[ -n $(leftovers) ]]; then
	echo "FAIL: files left behind: $(leftovers | tr '\n' ' ')"
	rc=1
fi
exit "$rc"
