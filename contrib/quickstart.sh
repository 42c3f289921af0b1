#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors
#
# From a fresh Debian 12 machine to a running Sluice: install what is missing, build,
# and run sluiced on an embedded default config: a RAM disk exported over NBD (TCP
# 127.0.0.1:10809 and a Unix socket) and, where FUSE is available, as a regular file.
# It prints what to do next.
#
#   contrib/quickstart.sh [--size MiB] [--socket PATH] [--port N] [--no-run]
#
# Stop it with Ctrl+C: sluiced shuts down in order.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=${SLUICE_BUILD_DIR:-$src/build}
size_mb=256 sock=/var/tmp/sluice.sock port=10809 run=1
while [ $# -gt 0 ]; do
	case "$1" in
	--size) size_mb=$2; shift ;;
	--socket) sock=$2; shift ;;
	--port) port=$2; shift ;;
	--no-run) run=0 ;;
	-h | --help) sed -n '5,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "quickstart.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done

"$src/contrib/pkgdep.sh"
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)"
[ $run -eq 1 ] || exit 0

# A RAM disk needs no DMA memory: run without hugepages so this works anywhere.
# mktemp names hold only letters and digits, so the nbd+unix URI printed below needs
# no percent-encoding (nbd_server_get_exports gives the encoded URIs of any path).
workdir=$(mktemp -d /tmp/sluice-quickstart.XXXXXX)
config=$workdir/sluice.json
nbd_sock=$workdir/nbd.sock
fuse_img=$workdir/Malloc0.img
fuse_json=""
if [ "$(id -u)" -eq 0 ] && [ -c /dev/fuse ]; then
	fuse_json=',
    {
      "subsystem": "fuse",
      "config": [
        { "method": "fuse_start_disk", "params": { "bdev_name": "Malloc0", "path": "'"$fuse_img"'" } }
      ]
    }'
fi
cat >"$config" <<JSON
{
  "subsystems": [
    {
      "subsystem": "bdev",
      "config": [
        {
          "method": "bdev_malloc_create",
          "params": { "name": "Malloc0", "num_blocks": $((size_mb * 2048)), "block_size": 512 }
        }
      ]
    },
    {
      "subsystem": "nbd",
      "config": [
        { "method": "nbd_server_start",
          "params": { "host": "127.0.0.1", "port": $port, "unix_path": "$nbd_sock" } },
        { "method": "nbd_server_add_export", "params": { "name": "Malloc0", "bdev_name": "Malloc0" } }
      ]
    }${fuse_json}
  ]
}
JSON

ctl="$build/exporter/sluicectl -s $sock"
uri="nbd://127.0.0.1:$port/Malloc0"
cat <<MSG

Sluice is starting with a ${size_mb} MiB RAM disk "Malloc0" (config: $config).
RPC socket:  $sock
NBD export:  $uri
             nbd+unix:///Malloc0?socket=$nbd_sock
$([ -n "$fuse_json" ] && echo "FUSE file:   $fuse_img  (the RAM disk as a regular file)")

Next steps, in another terminal:
  nbdinfo $uri                                   # size, capabilities, block status
  fio --name=t --ioengine=nbd --uri=$uri --rw=randread --bs=4k --iodepth=32 --runtime=10 --time_based
  qemu-img convert -O raw some.img $uri          # write an image into the RAM disk
$([ -n "$fuse_json" ] && echo "  losetup -f --show $fuse_img && mkfs.ext4 /dev/loopN   # a filesystem on the FUSE file")
  $ctl bdev_get_bdevs
  $ctl nbd_server_get_exports
  $ctl save_config > my.json                  # restart later with: sluiced -c my.json
On a kernel with the nbd module: $ctl nbd_start_disk Malloc0   (gives /dev/nbdX)
SPDK's rpc.py works too: rpc.py -s $sock bdev_get_bdevs

Ctrl+C stops sluiced.
MSG
exec "$build/exporter/sluiced" --no-huge -s $((size_mb + 256)) -r "$sock" -c "$config"
