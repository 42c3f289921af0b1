#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors
#
# Runs the NVMe benchmark (vm_nvme_bench.sh) in a QEMU guest through test/vm/run and
# prints its table; the guest's logs and JSON stay in the run's out/ (--keep).
#
#   test/bench/nvme/run.sh [-s SECS] [-r ROUNDS] [--ioeventfd] [test/vm/run options...]
#
# -s: each run's length (default 5), -r: rounds (default 3), --ioeventfd: QEMU's
# nvme device with ioeventfd=on (for every contender alike). The build is
# $SLUICE_BUILD_DIR, else <repo>/build (as test/vm/run). Not a test: not run by ctest.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
secs=5
rounds=3
extra=()

while (($#)); do
	case $1 in
	-s)
		secs=$2
		shift 2
		;;
	-r)
		rounds=$2
		shift 2
		;;
	--ioeventfd)
		extra+=(--qemu-arg "-global nvme.ioeventfd=on")
		shift
		;;
	-h | --help)
		sed -n '5,12p' "$0"
		exit 0
		;;
	*)
		extra+=("$1")
		shift
		;;
	esac
done
[[ $secs =~ ^[1-9][0-9]*$ && $rounds =~ ^[1-9][0-9]*$ ]] || {
	echo "run.sh: -s and -r take positive integers" >&2
	exit 2
}

# Each round is 12 runs of secs plus their start-up (sluice-nvme-perf brings up DPDK,
# about 10 s under TCG), and two rebinds.
timeout=$((120 + rounds * (12 * (secs + 12) + 20)))
exec "$repo/test/vm/run" --timeout "$timeout" \
	--append "nvme_bench.secs=$secs nvme_bench.rounds=$rounds" \
	"${extra[@]}" "$here/vm_nvme_bench.sh"
