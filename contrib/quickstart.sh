#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors
#
# From a fresh Debian 12 machine to a running Sluice: install what is missing, build,
# and run sluiced on an embedded default config (a RAM disk), printing what to do next.
#
#   contrib/quickstart.sh [--size MiB] [--socket PATH] [--no-run]
#
# Stop it with Ctrl+C: sluiced shuts down in order.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=${SLUICE_BUILD_DIR:-$src/build}
size_mb=256 sock=/var/tmp/sluice.sock run=1
while [ $# -gt 0 ]; do
	case "$1" in
	--size) size_mb=$2; shift ;;
	--socket) sock=$2; shift ;;
	--no-run) run=0 ;;
	-h | --help) sed -n '5,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "quickstart.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done

"$src/contrib/pkgdep.sh"
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)"
[ $run -eq 1 ] || exit 0

# A RAM disk needs no DMA memory: run without hugepages so this works anywhere.
workdir=$(mktemp -d /tmp/sluice-quickstart.XXXXXX)
config=$workdir/sluice.json
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
    }
  ]
}
JSON

ctl="$build/exporter/sluicectl -s $sock"
cat <<MSG

Sluice is starting with a ${size_mb} MiB RAM disk "Malloc0" (config: $config).
RPC socket: $sock

Next steps, in another terminal:
  $ctl bdev_get_bdevs                   # the RAM disk
  $ctl bdev_malloc_create -b Malloc1 64 512
  $ctl save_config > my.json            # restart later with: sluiced -c my.json
  $ctl framework_get_reactors
SPDK's rpc.py works too: rpc.py -s $sock bdev_get_bdevs

Ctrl+C stops sluiced.
MSG
exec "$build/exporter/sluiced" --no-huge -r "$sock" -c "$config"
