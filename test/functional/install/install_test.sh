#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors
#
# `cmake --install` into a staging dir, then build and run a program against the
# installed headers, libraries and pkg-config file alone.
set -euo pipefail
build=${1:?usage: install_test.sh BUILD_DIR}
src=$(cd "$(dirname "$0")/../../.." && pwd)
stage=$(mktemp -d /tmp/sluice-install.XXXXXX)
trap 'rm -rf "$stage"' EXIT
passed=0 failed=0
check() { # <name> <cmd...>
	local name=$1
	shift
	if "$@"; then passed=$((passed + 1)); echo "ok: $name"; else failed=$((failed + 1)); echo "FAIL: $name"; fi
}

check "cmake --install" cmake --install "$build" --prefix "$stage/usr" >/dev/null
check "headers installed" test -f "$stage/usr/include/sluice/bdev.h"
check "sluiced installed" test -x "$stage/usr/bin/sluiced"
pcdir=$(dirname "$(find "$stage" -name sluice.pc | head -n1)")
check "pkg-config file installed" test -f "$pcdir/sluice.pc"
# The .pc names the real prefix; point it at the staging dir.
sed -i "s|^prefix=.*|prefix=$stage/usr|" "$pcdir/sluice.pc"
export PKG_CONFIG_PATH=$pcdir
# shellcheck disable=SC2046
check "build against the installed kit" \
	cc -o "$stage/app_demo" "$src/test/functional/install/app_demo.c" \
	$(pkg-config --cflags --libs sluice)
check "run it" "$stage/app_demo" "$src/contrib/config/malloc.json" Malloc0
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
