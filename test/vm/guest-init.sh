#!/bin/busybox sh
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors
#
# /init of the VM tier's initramfs (busybox only). It loads the modules that
# reach the host (virtio-pci, 9p, overlay), mounts the host's root read-only
# over 9p under a tmpfs overlay, mounts the run's writable output directory,
# chroots into the result and runs guest-runner.sh with bash. Whatever happens,
# it prints "SLUICE-VM-RESULT: <rc>" on the console and powers the guest off.
#
# Keep this file small and generic: its hash keys the initramfs cache. All
# per-run logic lives in guest-runner.sh, read from the host at run time.
# shellcheck shell=sh

/bin/busybox mount -t devtmpfs devtmpfs /dev
exec 0<>/dev/console 1>&0 2>&0
/bin/busybox --install -s /bin
export PATH=/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo "SLUICE-VM-BOOT: init"

finish()
{
	echo "SLUICE-VM-RESULT: $1"
	sync
	poweroff -f
	sleep 30
}

die()
{
	echo "sluice-vm init: $*"
	finish 125
}

runner=
work=
read -r cmdline </proc/cmdline
for arg in $cmdline; do
	case "$arg" in
	sluice_vm.runner=*) runner=${arg#sluice_vm.runner=} ;;
	sluice_vm.work=*) work=${arg#sluice_vm.work=} ;;
	esac
done
if [ -z "$runner" ] || [ -z "$work" ]; then
	die "sluice_vm.runner= or sluice_vm.work= missing from the kernel command line"
fi

while read -r mod; do
	insmod "/modules/$mod" || die "insmod $mod failed"
done </modules.order

mkdir -p /lower /upper /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose \
	hostroot /lower || die "cannot mount the host root over 9p"
mount -t tmpfs -o mode=0755 upper /upper || die "cannot mount the overlay's tmpfs"
mkdir -p /upper/data /upper/work
mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work \
	overlay /newroot || die "cannot mount the overlay"

mkdir -p "/newroot$work/out"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=none \
	sluiceout "/newroot$work/out" || die "cannot mount the output directory"
mount -t proc proc /newroot/proc || die "cannot mount /proc"
mount -t sysfs sysfs /newroot/sys || die "cannot mount /sys"
mount -t devtmpfs devtmpfs /newroot/dev || die "cannot mount /dev"

chroot /newroot /bin/bash "$runner" "$work"
finish $?
