#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors
#
# The house checks that need no build: every C file is clang-formatted and every
# shell script is shellcheck-clean. Prints "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
passed=0 failed=0
if git rev-parse --git-dir >/dev/null 2>&1; then
	mapfile -t cfiles < <(git ls-files '*.c' '*.h')
	mapfile -t shfiles < <(git ls-files '*.sh' contrib/ test/vm/run .ci/run |
		sort -u | while read -r f; do
			[ -f "$f" ] && head -n1 "$f" | grep -q 'bash' && echo "$f"
		done)
else
	mapfile -t cfiles < <(find . -path ./build\* -prune -o \( -name '*.c' -o -name '*.h' \) -print)
	mapfile -t shfiles < <(find . -path ./build\* -prune -o -name '*.sh' -print)
fi
for f in "${cfiles[@]}"; do
	if clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1)); echo "not clang-formatted: $f (run clang-format -i $f)"
	fi
done
if command -v shellcheck >/dev/null; then
	for f in "${shfiles[@]}"; do
		if shellcheck -x -P SCRIPTDIR -S warning "$f" >/dev/null 2>&1; then
			passed=$((passed + 1))
		else
			failed=$((failed + 1)); echo "shellcheck: $f"; shellcheck -x -P SCRIPTDIR -S warning "$f" | head -20
		fi
	done
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
