#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors
#
# vm: --nvme 1 --ns 64M,16M --mem 2G --timeout 300
#
# Smoke: the guest boots Debian's kernel; nbd and vfio-pci load; the emulated
# NVMe works with the kernel driver, binds to vfio-pci and back, and keeps its
# data; hugepages are reserved; a Sluice binary runs in the guest.

set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$SLUICE_VM_LIB"

vm_step "guest kernel $(uname -r), $(nproc) CPUs"
[[ -d /lib/modules/$(uname -r) ]] || vm_fail "no modules for the guest kernel $(uname -r)"

vm_step "modules: nbd, vfio-pci"
vm_modprobe nbd vfio-pci
vm_wait_for /dev/nbd0 10
vm_wait_for /dev/vfio/vfio 10

vm_step "emulated NVMe"
mapfile -t bdfs < <(vm_nvme_bdfs)
((${#bdfs[@]} == SLUICE_VM_NVME)) || vm_fail "expected $SLUICE_VM_NVME NVMe controllers, found ${#bdfs[@]}"
bdf=${bdfs[0]}
ctrl=$(vm_bind_nvme "$bdf")
serial=$(tr -d ' ' <"/sys/class/nvme/$ctrl/serial")
[[ $serial == "${SLUICE_VM_SERIAL}0" ]] || vm_fail "$ctrl has serial '$serial', not ${SLUICE_VM_SERIAL}0"
mapfile -t nss < <(vm_nvme_namespaces "$ctrl")
((${#nss[@]} == 2)) || vm_fail "$ctrl has ${#nss[@]} namespaces, not 2: ${nss[*]}"
size=$(blockdev --getsize64 "${nss[1]}")
((size == 16 << 20)) || vm_fail "${nss[1]} is $size bytes, not 16 MiB"
echo "$bdf is $ctrl, serial $serial, namespaces ${nss[*]}"

vm_step "write a pattern through the kernel driver"
dd if=/dev/urandom of=/tmp/pattern bs=1M count=4 status=none
dd if=/tmp/pattern of="${nss[0]}" bs=1M oflag=direct status=none
sum=$(vm_checksum /tmp/pattern)
[[ $(vm_checksum "${nss[0]}" $((4 << 20))) == "$sum" ]] || vm_fail "read-back of ${nss[0]} differs"

vm_step "bind $bdf to vfio-pci"
group=$(vm_bind_vfio "$bdf")
[[ -c /dev/vfio/$group ]] || vm_fail "/dev/vfio/$group is not a character device"
[[ ! -e /sys/class/nvme/$ctrl ]] || vm_fail "$ctrl still exists with $bdf on vfio-pci"
echo "$bdf is in IOMMU group $group"

vm_step "bind $bdf back to nvme; the data is still there"
ctrl=$(vm_bind_nvme "$bdf")
mapfile -t nss < <(vm_nvme_namespaces "$ctrl")
[[ $(vm_checksum "${nss[0]}" $((4 << 20))) == "$sum" ]] || vm_fail "${nss[0]} lost its data across the rebinding"

vm_step "hugepages"
vm_hugepages 64
grep -E '^HugePages_(Total|Free)' /proc/meminfo

vm_step "a Sluice binary runs in the guest"
sluiced=$(vm_sluice_bin sluiced)
"$sluiced" --version || vm_fail "$sluiced --version exited with $?"

vm_step "done"
