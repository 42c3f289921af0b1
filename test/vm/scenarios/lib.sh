# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors
#
# Helpers for VM scenarios, sourced in the guest:
#	source "$SLUICE_VM_LIB"
# Every helper either does its job or fails the scenario with a message that
# says what was missing: the VM tier never skips.
# shellcheck shell=bash

# Environment the runner exports (see test/vm/README.md):
: "${SLUICE_REPO:?not in a sluice VM guest}"
: "${SLUICE_BUILD_DIR:?}" "${SLUICE_VM_OUT:?}"

vm_t0=${vm_t0:-$EPOCHREALTIME}

# Fails the scenario: vm_fail MESSAGE...
vm_fail()
{
	echo "sluice-vm: FAIL: $*" >&2
	exit 1
}

# Prints a step header with the time since the scenario started: vm_step TITLE...
vm_step()
{
	printf '== [%6.1fs] %s\n' "$(awk -v a="$EPOCHREALTIME" -v b="$vm_t0" 'BEGIN { print a - b }')" "$*"
}

# Fails unless every named command exists: vm_require_cmd CMD...
vm_require_cmd()
{
	local c

	for c in "$@"; do
		command -v "$c" >/dev/null || vm_fail "command '$c' is not installed on the host (test/vm/run installs the guest tools)"
	done
}

# Loads kernel modules: vm_modprobe MODULE...
vm_modprobe()
{
	local m

	for m in "$@"; do
		modprobe "$m" || vm_fail "modprobe $m failed (kernel $(uname -r))"
	done
}

# Waits for a path to exist: vm_wait_for PATH [TIMEOUT_SECS=30]
vm_wait_for()
{
	local path=$1 timeout=${2:-30} i

	for ((i = 0; i < timeout * 10; i++)); do
		[[ -e $path ]] && return 0
		sleep 0.1
	done
	vm_fail "$path did not appear within ${timeout}s"
}

# Waits for a command to succeed: vm_wait_until TIMEOUT_SECS CMD [ARG...]
vm_wait_until()
{
	local timeout=$1 i

	shift
	for ((i = 0; i < timeout * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	vm_fail "'$*' did not succeed within ${timeout}s"
}

# Reserves 2 MiB hugepages and checks that all of them came: vm_hugepages COUNT
vm_hugepages()
{
	local n=$1 f=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages got

	echo "$n" >"$f" || vm_fail "cannot write $f"
	got=$(<"$f")
	[[ $got == "$n" ]] || vm_fail "asked for $n hugepages, got $got (give the guest more --mem)"
	mountpoint -q /dev/hugepages || vm_fail "hugetlbfs is not mounted on /dev/hugepages"
}

# Mounts configfs (the runner already does) and prints its path: vm_configfs
vm_configfs()
{
	if ! mountpoint -q /sys/kernel/config; then
		vm_modprobe configfs
		mount -t configfs configfs /sys/kernel/config || vm_fail "cannot mount configfs"
	fi
	echo /sys/kernel/config
}

# Lists the PCI addresses of QEMU's emulated NVMe controllers (1b36:0010), in
# bus order, one a line: vm_nvme_bdfs
vm_nvme_bdfs()
{
	local d

	for d in /sys/bus/pci/devices/*; do
		[[ $(<"$d/vendor") == 0x1b36 && $(<"$d/device") == 0x0010 ]] && basename "$d"
	done
	return 0
}

# Prints the driver a PCI function is bound to, or nothing: vm_pci_driver BDF
vm_pci_driver()
{
	local link=/sys/bus/pci/devices/$1/driver

	[[ -e $link ]] && basename "$(readlink -f "$link")"
	return 0
}

# Binds a PCI function to DRIVER (unbinding it first): vm_pci_bind BDF DRIVER
vm_pci_bind()
{
	local bdf=$1 drv=$2 dev=/sys/bus/pci/devices/$1 cur

	[[ -e $dev ]] || vm_fail "no PCI function $bdf"
	cur=$(vm_pci_driver "$bdf")
	[[ $cur == "$drv" ]] && return 0
	echo "$drv" >"$dev/driver_override" || vm_fail "cannot set driver_override of $bdf"
	if [[ -n $cur ]]; then
		echo "$bdf" >"$dev/driver/unbind" || vm_fail "cannot unbind $bdf from $cur"
	fi
	echo "$bdf" >/sys/bus/pci/drivers_probe || vm_fail "drivers_probe of $bdf failed"
	cur=$(vm_pci_driver "$bdf")
	[[ $cur == "$drv" ]] || vm_fail "$bdf is bound to '${cur:-nothing}', not $drv"
}

# Binds a PCI function to vfio-pci and prints its IOMMU group, once
# /dev/vfio/<group> exists: vm_bind_vfio BDF
vm_bind_vfio()
{
	local bdf=$1 group

	[[ -e /sys/bus/pci/devices/$bdf/iommu_group ]] ||
		vm_fail "$bdf has no IOMMU group (is the guest booted with intel-iommu?)"
	vm_modprobe vfio-pci
	vm_pci_bind "$bdf" vfio-pci
	group=$(basename "$(readlink -f "/sys/bus/pci/devices/$bdf/iommu_group")")
	vm_wait_for "/dev/vfio/$group" 10
	echo "$group"
}

# Binds an NVMe controller to the kernel's nvme driver and prints its name
# (nvme0, ...) once it is live and the block devices of all its namespaces
# exist: vm_bind_nvme BDF
vm_bind_nvme()
{
	local bdf=$1 dev=/sys/bus/pci/devices/$1 ctrl='' want i

	vm_modprobe nvme
	vm_pci_bind "$bdf" nvme
	for ((i = 0; i < 300; i++)); do
		ctrl=$(find "$dev/nvme" -mindepth 1 -maxdepth 1 -name 'nvme*' -printf '%f\n' 2>/dev/null | head -n1)
		[[ -n $ctrl ]] && break
		sleep 0.1
	done
	[[ -n $ctrl ]] || vm_fail "$bdf is bound to nvme but no controller appeared"
	vm_wait_until 30 vm_nvme_live "$ctrl"
	vm_require_cmd nvme
	want=$(nvme list-ns "/dev/$ctrl" | grep -c ':0x') || true
	vm_wait_until 30 vm_nvme_has_ns "$ctrl" "$want"
	echo "$ctrl"
}

# True once a kernel NVMe controller is live: vm_nvme_live CTRL
vm_nvme_live()
{
	[[ $(cat "/sys/class/nvme/$1/state" 2>/dev/null) == live ]]
}

# True once CTRL has COUNT namespace block devices: vm_nvme_has_ns CTRL COUNT
vm_nvme_has_ns()
{
	local n=0 b

	for b in $(vm_nvme_namespaces "$1"); do
		[[ -b $b ]] && n=$((n + 1))
	done
	((n == $2))
}

# Prints the block devices (/dev/nvmeXnY) of a kernel NVMe controller's
# namespaces, one a line, by namespace ID: vm_nvme_namespaces CTRL
vm_nvme_namespaces()
{
	local ctrl=$1 s e

	# Debian's kernel has NVMe multipath: the block device is the subsystem's
	# head (nvme<subsys>n<nsid>); the controller only holds hidden paths.
	for s in /sys/class/nvme-subsystem/* "/sys/class/nvme/$ctrl"; do
		[[ -e $s/$ctrl || $s == "/sys/class/nvme/$ctrl" ]] || continue
		for e in "$s"/nvme*; do
			e=${e##*/}
			[[ $e =~ ^nvme[0-9]+n[0-9]+$ ]] && echo "/dev/$e"
		done
	done | sort -t n -k3,3n -u
}

# Gives a PCI function back to no driver: vm_pci_unbind BDF
vm_pci_unbind()
{
	local bdf=$1 dev=/sys/bus/pci/devices/$1

	echo >"$dev/driver_override"
	[[ -e $dev/driver ]] && { echo "$bdf" >"$dev/driver/unbind" || vm_fail "cannot unbind $bdf"; }
	return 0
}

# Prints the SHA-256 of a file or block device, or of its first BYTES bytes;
# block devices are read with O_DIRECT, past the page cache:
# vm_checksum PATH [BYTES]
vm_checksum()
{
	local path=$1 bytes=${2:-} args=()

	[[ -e $path ]] || vm_fail "vm_checksum: no $path"
	[[ -b $path ]] && args+=(iflag=direct)
	[[ -n $bytes ]] && args+=(iflag=count_bytes "count=$bytes")
	dd if="$path" bs=1M status=none "${args[@]}" | sha256sum | cut -d' ' -f1
	[[ ${PIPESTATUS[0]} == 0 ]] || vm_fail "vm_checksum: cannot read $path"
}

# Prints the path of a Sluice binary in the build directory, or fails:
# vm_sluice_bin NAME
vm_sluice_bin()
{
	local name=$1 d p

	for d in exporter tools drivers/nvme/tools drivers/bdev/tools test/bench bin .; do
		p=$SLUICE_BUILD_DIR/$d/$name
		[[ -f $p && -x $p ]] && { echo "$p"; return 0; }
	done
	p=$(find "$SLUICE_BUILD_DIR" -maxdepth 4 -type f -name "$name" -perm -u+x -print -quit 2>/dev/null)
	[[ -n $p ]] && { echo "$p"; return 0; }
	vm_fail "no Sluice binary '$name' under $SLUICE_BUILD_DIR (build the project first, or pass --build-dir)"
}
