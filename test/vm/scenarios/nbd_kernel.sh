#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors
#
# vm: --mem 2G --cpus 2 --timeout 560
#
# The kernel NBD export (nbd_start_disk): ext4 on /dev/nbd0 holds a copied tree
# across a remount; fio verifies with libaio and direct I/O; the ioctl interface
# works too; and with the filesystem mounted and fio writing, sluiced is killed with
# -9 and restarted with the same config: the device is re-bound (NBD_CMD_RECONFIGURE),
# fio finishes without an error and its data verifies, the kernel logs no I/O error,
# and a bdev with another identity is refused the device meanwhile.

set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$SLUICE_VM_LIB"

vm_require_cmd fio mkfs.ext4 fsck.ext4 jq sha256sum
sluiced=$(vm_sluice_bin sluiced)
ctl=$(vm_sluice_bin sluicectl)
out=$SLUICE_VM_OUT
sock=/tmp/sluice.sock
img=/tmp/disk0.img
mnt=/mnt/nbd0
uuid=6d1c1a52-7c9e-4d62-9a7e-0a5e1ce00001
pid=

rpc()
{
	"$ctl" -s "$sock" "$@"
}

# Starts sluiced on both CPUs with a config and waits until it has applied it.
start_sluiced()
{
	"$sluiced" -m 0x3 --no-huge -s 512 -r "$sock" -c "$1" >>"$out/sluiced.log" 2>&1 &
	pid=$!
	vm_wait_until 120 rpc framework_wait_init >/dev/null 2>&1
	kill -0 "$pid" || vm_fail "sluiced exited at start (see sluiced.log)"
}

stop_sluiced()
{
	kill -TERM "$pid"
	wait "$pid" || vm_fail "sluiced exited with an error on SIGTERM"
	pid=
}

# The kernel logged no I/O error on an nbd device, nor an ext4 error.
check_dmesg()
{
	# "Dead connection, failed to find a fallback" is expected while sluiced is
	# down: the kernel then holds the I/O for the re-bind.
	if dmesg | grep -E 'I/O error|EXT4-fs error|Aborting journal' >"$out/dmesg-errors.txt"; then
		cat "$out/dmesg-errors.txt"
		vm_fail "the kernel logged I/O errors ($1)"
	fi
}

# Checksums of the files under DIR/SUBDIR...: tree_sums DIR SUBDIR...
tree_sums()
{
	local dir=$1

	shift
	(cd "$dir" && find "$@" -type f -print0 | sort -z | xargs -0 sha256sum)
}

write_config()
{
	cat >"$1" <<EOF
{"subsystems": [
 {"subsystem": "bdev", "config": [
  {"method": "bdev_aio_create",
   "params": {"name": "Disk0", "filename": "$img", "block_size": 4096, "uuid": "$2"}}]},
 {"subsystem": "nbd", "config": [
  {"method": "nbd_start_disk",
   "params": {"bdev_name": "Disk0", "nbd_device": "/dev/nbd0", "timeout": 10,
              "dead_timeout": 180}}]}]}
EOF
}

trap '[[ -n $pid ]] && kill -9 $pid 2>/dev/null; true' EXIT

vm_step "load nbd, start sluiced with an aio bdev exported as /dev/nbd0"
vm_modprobe nbd ext4
vm_wait_for /dev/nbd0 10
truncate -s 512M "$img"
write_config /tmp/sluice.json "$uuid"
start_sluiced /tmp/sluice.json
rpc -j nbd_get_disks | tee "$out/disks.json"
[[ $(jq -r '.[0].nbd_device' "$out/disks.json") == /dev/nbd0 ]] || vm_fail "nbd_get_disks has no /dev/nbd0"
[[ $(jq -r '.[0].interface' "$out/disks.json") == netlink ]] || vm_fail "not connected through netlink"
[[ $(cat /sys/block/nbd0/backend) == "sluice:Disk0:$uuid" ]] ||
	vm_fail "backend of nbd0 is '$(cat /sys/block/nbd0/backend)'"
[[ $(blockdev --getsize64 /dev/nbd0) == $((512 << 20)) ]] || vm_fail "/dev/nbd0 has the wrong size"
[[ $(blockdev --getss /dev/nbd0) == 4096 ]] || vm_fail "/dev/nbd0 block size is not the bdev's"
rpc -j save_config >"$out/saved.json"
jq -e '[.subsystems[].config[]? | select(.method == "nbd_start_disk")
	| .params | select(.nbd_device == "/dev/nbd0" and .bdev_name == "Disk0")] | length == 1' \
	"$out/saved.json" >/dev/null || vm_fail "save_config lacks nbd_start_disk for /dev/nbd0"

vm_step "nbd_start_disk without a device picks a free one and returns it"
truncate -s 64M /tmp/disk1.img
rpc bdev_aio_create --name Disk1 --filename /tmp/disk1.img --block-size 512 >/dev/null
dev1=$(rpc nbd_start_disk --bdev-name Disk1)
[[ $dev1 =~ ^/dev/nbd[1-9][0-9]*$ ]] || vm_fail "nbd_start_disk returned '$dev1'"
[[ $(blockdev --getss "$dev1") == 512 ]] || vm_fail "$dev1 block size is not 512"
if rpc nbd_start_disk --bdev-name Disk1 >/dev/null 2>&1; then
	vm_fail "the same bdev was exported twice"
fi

vm_step "ioctl interface: $dev1 again through NBD_SET_SOCK/NBD_DO_IT"
rpc nbd_stop_disk --nbd-device "$dev1" >/dev/null
dev1=$(rpc nbd_start_disk --bdev-name Disk1 --use-ioctl true)
rpc -j nbd_get_disks --nbd-device "$dev1" | jq -e '.[0].interface == "ioctl"' >/dev/null ||
	vm_fail "$dev1 is not on the ioctl interface"
dd if=/dev/urandom of=/tmp/pat.bin bs=1M count=8 status=none
dd if=/tmp/pat.bin of="$dev1" bs=1M oflag=direct status=none
[[ $(vm_checksum "$dev1" $((8 << 20))) == $(vm_checksum /tmp/pat.bin) ]] || vm_fail "ioctl device reads back other data"
rpc nbd_stop_disk --nbd-device "$dev1" >/dev/null
rpc bdev_aio_delete --name Disk1 >/dev/null

vm_step "ext4: mkfs, mount, copy a tree, sync, remount, compare"
mkfs.ext4 -q -F /dev/nbd0
mkdir -p "$mnt"
mount /dev/nbd0 "$mnt"
cp -a "$SLUICE_REPO/include" "$SLUICE_REPO/env" "$SLUICE_REPO/drivers" "$mnt/"
tree_sums "$SLUICE_REPO" include env drivers >/tmp/src.sums
sync
umount "$mnt"
echo 3 >/proc/sys/vm/drop_caches
mount /dev/nbd0 "$mnt"
tree_sums "$mnt" include env drivers >/tmp/nbd.sums
diff -q /tmp/src.sums /tmp/nbd.sums >/dev/null || vm_fail "the tree copied to ext4 on /dev/nbd0 differs"
echo "$(wc -l </tmp/src.sums) files verified"
umount "$mnt"

vm_step "fio verify on /dev/nbd0, libaio + O_DIRECT (4 KiB at QD 32, then 4 KiB-1 MiB)"
fio --name=v4k --filename=/dev/nbd0 --ioengine=libaio --direct=1 --rw=randwrite --bs=4k \
	--iodepth=32 --size=64M --verify=crc32c --verify_fatal=1 --output="$out/fio-v4k.txt" ||
	vm_fail "fio verify 4k failed"
fio --name=vmix --filename=/dev/nbd0 --ioengine=libaio --direct=1 --rw=randwrite \
	--bsrange=4k-1m --iodepth=16 --offset=128M --size=128M --verify=crc32c --verify_fatal=1 \
	--output="$out/fio-vmix.txt" || vm_fail "fio verify 4k-1m failed"
check_dmesg "fio verify"

vm_step "kill -9 with ext4 mounted and fio writing; restart with the same config"
mkfs.ext4 -q -F /dev/nbd0
mount /dev/nbd0 "$mnt"
cp -a "$SLUICE_REPO/include" "$mnt/"
tree_sums "$mnt" include >/tmp/before.sums
sync
fio --name=kill --directory="$mnt" --ioengine=libaio --direct=1 --rw=randwrite --bs=4k \
	--iodepth=16 --size=32M --verify=crc32c --verify_fatal=1 --do_verify=1 \
	--output="$out/fio-kill.txt" &
fio_pid=$!
sleep 4
kill -0 "$fio_pid" || vm_fail "fio ended before the kill: make it longer"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
pid=
echo "sluiced killed; fio still running: $(kill -0 $fio_pid && echo yes)"
sleep 2

vm_step "a bdev with another identity cannot take /dev/nbd0"
write_config /tmp/wrong.json 6d1c1a52-7c9e-4d62-9a7e-0a5e1ce0ffff
jq 'del(.subsystems[1])' /tmp/wrong.json >/tmp/wrong-bdev.json
start_sluiced /tmp/wrong-bdev.json
if rpc nbd_start_disk --bdev-name Disk0 --nbd-device /dev/nbd0 >"$out/wrong.txt" 2>&1; then
	vm_fail "a bdev with another UUID was bound to /dev/nbd0"
fi
cat "$out/wrong.txt"
rpc nbd_start_disk --bdev-name Disk0 >"$out/wrong-any.txt" 2>&1 || true
[[ $(cat "$out/wrong-any.txt") != /dev/nbd0 ]] || vm_fail "another bdev was re-bound to /dev/nbd0"
stop_sluiced

vm_step "restart with the right config: re-bind"
start_sluiced /tmp/sluice.json
rpc -j nbd_get_disks | tee "$out/disks-rebound.json"
jq -e '.[] | select(.nbd_device == "/dev/nbd0") | .rebound' "$out/disks-rebound.json" >/dev/null ||
	vm_fail "/dev/nbd0 was not re-bound"
wait "$fio_pid" || vm_fail "fio failed across the restart (see fio-kill.txt)"
grep -E 'err=|verify' "$out/fio-kill.txt" | head -5
tree_sums "$mnt" include >/tmp/after.sums
diff -q /tmp/before.sums /tmp/after.sums >/dev/null || vm_fail "files written before the kill differ"
check_dmesg "restart"
umount "$mnt"
fsck.ext4 -n -f /dev/nbd0 >"$out/fsck.txt" 2>&1 || { cat "$out/fsck.txt"; vm_fail "fsck found errors"; }

vm_step "orderly stop disconnects"
stop_sluiced
if grep PR_SET_IO_FLUSHER "$out/sluiced.log"; then
	vm_fail "the reactors could not be marked PR_SET_IO_FLUSHER"
fi
[[ ! -e /sys/block/nbd0/pid ]] || vm_fail "/dev/nbd0 is still configured after sluiced stopped"
grep -E 're-bound|replaced|stopped' "$out/sluiced.log" || true
vm_step "done"
