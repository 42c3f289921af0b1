#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors
#
# Install what Sluice needs from Debian 12 packages, only what is missing.
#   contrib/pkgdep.sh            build and run-time dependencies
#   contrib/pkgdep.sh --test     plus the test tiers' tools (clients, peers, fuzzing)
#   contrib/pkgdep.sh --vm       plus the VM tier (QEMU, Debian kernel, busybox)
#   contrib/pkgdep.sh --all      everything
set -euo pipefail

build=(build-essential cmake pkg-config git
	libdpdk-dev libjansson-dev libisal-dev libnl-genl-3-dev libfuse3-dev fuse3
	libibverbs-dev librdmacm-dev liburing-dev libaio-dev libcunit1-dev uuid-dev python3)
test=(clang libclang-rt-14-dev clang-format shellcheck fio nbdkit libnbd-bin python3-libnbd
	file nbd-client qemu-utils qemu-block-extra qemu-system-common e2fsprogs util-linux gnuplot-nox procps kmod)
vm=(qemu-system-x86 linux-image-amd64 busybox-static nvme-cli rdma-core ibverbs-utils
	nbdkit qemu-utils pciutils iproute2 jq util-linux xz-utils zstd cpio)

want=("${build[@]}")
for arg in "$@"; do
	case "$arg" in
	--test) want+=("${test[@]}") ;;
	--vm) want+=("${vm[@]}") ;;
	--all) want+=("${test[@]}" "${vm[@]}") ;;
	-h | --help)
		sed -n '5,9p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "pkgdep.sh: unknown option '$arg' (see --help)" >&2
		exit 2
		;;
	esac
done

missing=()
for p in "${want[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "pkgdep: all ${#want[@]} packages present"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "pkgdep: missing packages: ${missing[*]}" >&2
	echo "pkgdep: run as root (or: sudo apt-get install ${missing[*]})" >&2
	exit 1
fi
echo "pkgdep: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
