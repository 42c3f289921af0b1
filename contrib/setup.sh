#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors

# Prepare a host for Sluice: reserve hugepages, mount hugetlbfs, and bind NVMe and
# I/OAT functions to vfio-pci (the counterpart of SPDK's scripts/setup.sh).
# Every command is idempotent.

set -euo pipefail

readonly SYSFS_PCI=/sys/bus/pci/devices
readonly HUGE_MNT=/dev/hugepages
readonly DPDK_RUNDIR=/var/run/dpdk
readonly NVME_CLASS=0x010802
readonly IOAT_CLASS=0x088000
readonly VFIO_DRIVER=vfio-pci

HUGEMEM=${HUGEMEM:-2048}
NRHUGE=${NRHUGE:-}
PCI_ALLOWED=${PCI_ALLOWED:-}
PCI_BLOCKED=${PCI_BLOCKED:-}
SKIP_PCI=${SKIP_PCI:-no}

usage() {
	cat <<EOF
Usage: $(basename "$0") [config|reset|status|cleanup|help]

  config   (default) Reserve hugepages, mount hugetlbfs at $HUGE_MNT if none is
           mounted, load vfio-pci and bind NVMe (class 0108) and Intel I/OAT
           functions to it. A function whose block devices are mounted, used as
           swap, or held by another device (dm, md) is skipped, with the reason.
  reset    Return the functions bound by 'config' to their kernel drivers.
  status   Hugepages per NUMA node, and NVMe/I/OAT functions with their driver
           and block devices.
  cleanup  Remove hugepage files and DPDK runtime directories left by Sluice
           processes that are gone (only "sluice*" names; nothing still mapped or
           open by any process is touched).
  help     This text.

Environment:
  HUGEMEM       MiB of hugepages to reserve (default 2048).
  NRHUGE        Number of hugepages (overrides HUGEMEM).
  PCI_ALLOWED   Space-separated BDFs ("0000:00:04.0 0000:00:05.0"): only these.
  PCI_BLOCKED   Space-separated BDFs never touched.
  SKIP_PCI      "yes": hugepages only, leave every device alone (tests do this).
EOF
}

die() {
	echo "setup.sh: $*" >&2
	exit 1
}

need_root() {
	[[ $EUID -eq 0 ]] || die "'$1' must run as root (sudo $0 $1)"
}

# --- PCI helpers ---------------------------------------------------------------

pci_attr() {
	local val
	val=$(cat "$SYSFS_PCI/$1/$2" 2>/dev/null) || val=""
	echo "$val"
}

pci_driver() {
	local link
	link=$(readlink "$SYSFS_PCI/$1/driver" 2>/dev/null) || link=""
	echo "${link##*/}"
}

# Intel I/OAT (CBDMA) device IDs, as in SPDK's pci_ids.h.
is_ioat_id() {
	case "$1" in
	0x0e2[0-9a-f] | 0x2f2[0-9a-f] | 0x6f2[0-9a-f] | 0x3c2[0-9a-f] | 0x371[0-9] | \
		0x6f5[0-3] | 0x2021 | 0x0b00 | 0x0c50 | 0x0c51 | 0x0c52 | 0x0c53)
		return 0
		;;
	esac
	return 1
}

# Prints "nvme" or "ioat" for a function Sluice drives, nothing otherwise.
pci_type() {
	local class vendor device
	class=$(pci_attr "$1" class)
	if [[ $class == "$NVME_CLASS" ]]; then
		echo nvme
		return
	fi
	vendor=$(pci_attr "$1" vendor)
	device=$(pci_attr "$1" device)
	if [[ $class == "$IOAT_CLASS" && $vendor == 0x8086 ]] && is_ioat_id "$device"; then
		echo ioat
	fi
}

# in_list <item> <space-separated list>
in_list() {
	local item=$1 x
	for x in $2; do
		[[ $x == "$item" ]] && return 0
	done
	return 1
}

# The NVMe/I/OAT functions selected by PCI_ALLOWED / PCI_BLOCKED, one BDF a line.
candidates() {
	local dev bdf
	for dev in "$SYSFS_PCI"/*; do
		[[ -e $dev ]] || continue
		bdf=${dev##*/}
		[[ -n $(pci_type "$bdf") ]] || continue
		if [[ -n $PCI_ALLOWED ]] && ! in_list "$bdf" "$PCI_ALLOWED"; then
			continue
		fi
		if in_list "$bdf" "$PCI_BLOCKED"; then
			continue
		fi
		echo "$bdf"
	done
}

# Block devices (disks) whose sysfs path runs through the function. With NVMe
# multipath (Debian's default) the disk nvmeXnY hangs off a virtual subsystem device;
# its paths, listed in <disk>/multipath/, lead to the controllers.
pci_block_devs() {
	local b p path
	for b in /sys/block/*; do
		[[ -e $b ]] || continue
		path=$(readlink -f "$b")
		if [[ $path == */"$1"/* ]]; then
			echo "${b##*/}"
			continue
		fi
		for p in "$b"/multipath/*; do
			[[ -e $p ]] || continue
			path=$(readlink -f "$p")
			if [[ $path == */"$1"/* ]]; then
				echo "${b##*/}"
				break
			fi
		done
	done
	return 0
}

# Why a disk (or one of its partitions) must not be taken away; empty if free.
blockdev_in_use() {
	local disk=$1 part name holders mnt devno
	for part in "/sys/block/$disk" "/sys/block/$disk/$disk"*; do
		[[ -e $part ]] || continue
		name=${part##*/}
		# By device number: /proc/mounts may name the device by any path.
		devno=$(cat "$part/dev" 2>/dev/null) || devno=""
		mnt=$(awk -v d="$devno" '$3 == d { print $5; exit }' /proc/self/mountinfo)
		if [[ -n $mnt ]]; then
			echo "/dev/$name is mounted on $mnt"
			return
		fi
		if awk -v d="/dev/$name" '$1 == d { found = 1 } END { exit !found }' /proc/swaps; then
			echo "/dev/$name is in use as swap"
			return
		fi
		holders=$(ls "$part/holders" 2>/dev/null || true)
		if [[ -n $holders ]]; then
			echo "/dev/$name is held by $(echo "$holders" | tr '\n' ' ')"
			return
		fi
	done
}

pci_in_use() {
	local disk why
	for disk in $(pci_block_devs "$1"); do
		why=$(blockdev_in_use "$disk")
		if [[ -n $why ]]; then
			echo "$why"
			return
		fi
	done
}

# Bind through driver_override so the ID tables of drivers do not matter (Linux 3.16+).
pci_bind() {
	local bdf=$1 drv=$2 cur
	cur=$(pci_driver "$bdf")
	[[ $cur == "$drv" ]] && return 0
	echo "$drv" >"$SYSFS_PCI/$bdf/driver_override"
	if [[ -n $cur ]]; then
		echo "$bdf" >"$SYSFS_PCI/$bdf/driver/unbind"
	fi
	echo "$bdf" >/sys/bus/pci/drivers_probe 2>/dev/null || true
	[[ $(pci_driver "$bdf") == "$drv" ]]
}

# --- config ----------------------------------------------------------------------

hugepage_kb() {
	awk '/^Hugepagesize:/ { print $2 }' /proc/meminfo
}

setup_hugepages() {
	local kb nr sysdir got
	kb=$(hugepage_kb)
	[[ -n $kb ]] || die "the kernel has no hugepage support (no Hugepagesize in /proc/meminfo)"
	if [[ -n $NRHUGE ]]; then
		nr=$NRHUGE
	else
		nr=$(((HUGEMEM * 1024 + kb - 1) / kb))
	fi
	sysdir=/sys/kernel/mm/hugepages/hugepages-${kb}kB
	echo "$nr" >"$sysdir/nr_hugepages" || die "cannot reserve hugepages in $sysdir"
	got=$(cat "$sysdir/nr_hugepages")
	if ((got < nr)); then
		echo "warning: only $got of $nr hugepages of ${kb} kB could be reserved (memory" \
			"fragmented? try again early after boot, or a smaller HUGEMEM)" >&2
		((got > 0)) || die "no hugepages could be reserved"
	fi
	echo "hugepages: $got x ${kb} kB ($((got * kb / 1024)) MiB)"
	if ! awk '$3 == "hugetlbfs" { found = 1 } END { exit !found }' /proc/mounts; then
		mkdir -p "$HUGE_MNT"
		mount -t hugetlbfs nodev "$HUGE_MNT" || die "cannot mount hugetlbfs on $HUGE_MNT"
		echo "hugetlbfs mounted on $HUGE_MNT"
	fi
}

# Without an IOMMU, vfio-pci only binds in vfio's no-IOMMU mode.
setup_vfio() {
	local groups
	if ! modprobe -q "$VFIO_DRIVER" 2>/dev/null && [[ ! -d /sys/bus/pci/drivers/$VFIO_DRIVER ]]; then
		return 1
	fi
	groups=$(ls /sys/kernel/iommu_groups 2>/dev/null || true)
	if [[ -z $groups && -w /sys/module/vfio/parameters/enable_unsafe_noiommu_mode ]]; then
		echo 1 >/sys/module/vfio/parameters/enable_unsafe_noiommu_mode
		echo "no IOMMU: vfio runs in no-IOMMU mode (devices can DMA anywhere in memory)"
	fi
	return 0
}

cmd_config() {
	local bdfs bdf why vfio=1 failed=0
	need_root config
	setup_hugepages
	[[ $SKIP_PCI == yes ]] && return 0
	mapfile -t bdfs < <(candidates)
	if ((${#bdfs[@]} == 0)); then
		echo "no NVMe or I/OAT functions found: nothing to bind"
		return 0
	fi
	setup_vfio || vfio=0
	for bdf in "${bdfs[@]}"; do
		if [[ $(pci_driver "$bdf") == "$VFIO_DRIVER" ]]; then
			echo "$bdf ($(pci_type "$bdf")): already bound to $VFIO_DRIVER"
			continue
		fi
		why=$(pci_in_use "$bdf")
		if [[ -n $why ]]; then
			echo "$bdf ($(pci_type "$bdf")): skipped, $why"
			continue
		fi
		if ((vfio == 0)); then
			echo "$bdf ($(pci_type "$bdf")): not bound, $VFIO_DRIVER is not available" \
				"on this kernel (no module)" >&2
			failed=1
			continue
		fi
		if pci_bind "$bdf" "$VFIO_DRIVER"; then
			echo "$bdf ($(pci_type "$bdf")): $VFIO_DRIVER"
		else
			echo "$bdf ($(pci_type "$bdf")): binding to $VFIO_DRIVER failed (no IOMMU" \
				"group? see dmesg)" >&2
			failed=1
		fi
	done
	return "$failed"
}

# --- reset -----------------------------------------------------------------------

cmd_reset() {
	local bdf cur
	need_root reset
	for bdf in $(candidates); do
		cur=$(pci_driver "$bdf")
		[[ $(pci_attr "$bdf" driver_override) == "$VFIO_DRIVER" || $cur == "$VFIO_DRIVER" ]] ||
			continue
		# A newline clears the override; then the kernel picks the driver by ID.
		echo >"$SYSFS_PCI/$bdf/driver_override"
		if [[ -n $cur ]]; then
			echo "$bdf" >"$SYSFS_PCI/$bdf/driver/unbind"
		fi
		echo "$bdf" >/sys/bus/pci/drivers_probe 2>/dev/null || true
		cur=$(pci_driver "$bdf")
		echo "$bdf ($(pci_type "$bdf")): ${cur:-no driver}"
	done
}

# --- status ----------------------------------------------------------------------

cmd_status() {
	local node dir bdf nodes=() type
	echo "Hugepages"
	printf '%-8s %-10s %8s %8s\n' node size total free
	for dir in /sys/devices/system/node/node*/hugepages/hugepages-*; do
		[[ -e $dir ]] || continue
		node=${dir#/sys/devices/system/node/}
		node=${node%%/*}
		nodes+=("$node")
		printf '%-8s %-10s %8s %8s\n' "$node" "${dir##*hugepages-}" \
			"$(cat "$dir/nr_hugepages")" "$(cat "$dir/free_hugepages")"
	done
	if ((${#nodes[@]} == 0)); then
		for dir in /sys/kernel/mm/hugepages/hugepages-*; do
			printf '%-8s %-10s %8s %8s\n' - "${dir##*hugepages-}" \
				"$(cat "$dir/nr_hugepages")" "$(cat "$dir/free_hugepages")"
		done
	fi
	awk '$3 == "hugetlbfs" { print "hugetlbfs: " $2 }' /proc/mounts
	echo
	echo "Devices"
	printf '%-6s %-14s %-6s %-6s %-5s %-12s %s\n' type BDF vendor device numa driver \
		"block devices"
	for bdf in $(PCI_ALLOWED="" PCI_BLOCKED="" candidates); do
		type=$(pci_type "$bdf")
		printf '%-6s %-14s %-6s %-6s %-5s %-12s %s\n' "$type" "$bdf" \
			"$(pci_attr "$bdf" vendor)" "$(pci_attr "$bdf" device)" \
			"$(pci_attr "$bdf" numa_node)" "$(pci_driver "$bdf")" \
			"$(pci_block_devs "$bdf" | tr '\n' ' ')"
	done
	if [[ -z $(PCI_ALLOWED="" PCI_BLOCKED="" candidates) ]]; then
		echo "(no NVMe or I/OAT functions)"
	fi
	if [[ ! -d /sys/bus/pci/drivers/$VFIO_DRIVER ]]; then
		if modinfo "$VFIO_DRIVER" >/dev/null 2>&1; then
			echo "($VFIO_DRIVER is not loaded)"
		else
			echo "($VFIO_DRIVER is not available on this kernel)"
		fi
	fi
}

# --- cleanup ---------------------------------------------------------------------

# Every file some process maps or holds open: hugepage files are both, DPDK's runtime
# config files are mapped, and its mp_socket is listed in /proc/net/unix.
files_in_use() {
	local f
	awk '$6 ~ /^\// { print $6 }' /proc/[0-9]*/maps 2>/dev/null || true
	for f in /proc/[0-9]*/fd/*; do
		readlink "$f" 2>/dev/null || true
	done
	awk 'NR > 1 && $8 ~ /^\// { print $8 }' /proc/net/unix 2>/dev/null || true
}

cmd_cleanup() {
	local used mnt f dir name pid busy removed=0
	need_root cleanup
	used=$(files_in_use | sort -u)
	while read -r mnt; do
		for f in "$mnt"/sluice*map_*; do
			[[ -e $f ]] || continue
			if ! grep -qxF "$(readlink -f "$f")" <<<"$used"; then
				rm -f "$f"
				removed=$((removed + 1))
			fi
		done
	done < <(awk '$3 == "hugetlbfs" { print $2 }' /proc/mounts)
	for dir in "$DPDK_RUNDIR"/sluice*; do
		[[ -d $dir ]] || continue
		name=${dir##*/}
		busy=0
		if [[ $name =~ ^sluice_pid([0-9]+)$ ]]; then
			pid=${BASH_REMATCH[1]}
			[[ -d /proc/$pid ]] && busy=1
		else
			for f in "$dir"/*; do
				[[ -e $f ]] || continue
				# The kernel reports canonical paths (/var/run is /run).
				if grep -qxF "$(readlink -f "$f")" <<<"$used"; then
					busy=1
					break
				fi
			done
		fi
		if ((busy == 0)); then
			rm -rf -- "$dir"
			removed=$((removed + 1))
		fi
	done
	echo "cleanup: removed $removed stale hugepage file(s) and runtime dir(s)"
}

case "${1:-config}" in
config) cmd_config ;;
reset) cmd_reset ;;
status) cmd_status ;;
cleanup) cmd_cleanup ;;
help | -h | --help) usage ;;
*)
	usage >&2
	exit 1
	;;
esac
