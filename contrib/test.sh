#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors
#
# Build Sluice and run every test tier; the last line is "N passed, N failed".
#
#   contrib/test.sh [--quick] [--no-vm] [--no-asan] [--no-fuzz] [--tier unit|functional|fuzz|vm]
#
# Tiers, in order: unit (gcc, -Werror), unit under ASan+UBSan, functional (root:
# hugepages, daemons on loopback), fuzz (clang libFuzzer, bounded time), vm (QEMU).
# Needs root for package installs, hugepages and the VM tier.
set -uo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=${SLUICE_BUILD_DIR:-$src/build}
jobs=$(nproc)
run_vm=1 run_asan=1 run_fuzz=1 only=""
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) run_vm=0 run_fuzz=0 ;;
	--no-vm) run_vm=0 ;;
	--no-asan) run_asan=0 ;;
	--no-fuzz) run_fuzz=0 ;;
	--tier) only=$2; shift ;;
	-h | --help) sed -n '5,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "test.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done
want() { [ -z "$only" ] || [ "$only" = "$1" ]; }

log() { printf '\n==== %s ====\n' "$*"; }
die() { echo "test.sh: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

passed=0 failed=0 skipped=0 failures=()

# Run ctest in a build dir for one label and fold its counts into the totals.
run_ctest() { # <name> <builddir> <label> [ctest args...]
	local name=$1 dir=$2 label=$3 out rc
	shift 3
	log "$name"
	out=$(mktemp)
	(cd "$dir" && ctest -L "^$label\$" --output-on-failure --no-tests=error "$@") 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	local total fail skip
	total=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$out" | tail -n1)
	fail=$(sed -n 's/.*, \([0-9]*\) tests failed out of.*/\1/p' "$out" | tail -n1)
	skip=$(grep -c '\*\*\*Skipped\|Not Run' "$out" || true)
	if [ -z "$total" ]; then
		failed=$((failed + 1)); failures+=("$name: ctest did not run (rc=$rc)")
	else
		passed=$((passed + total - fail - skip)); failed=$((failed + fail))
		skipped=$((skipped + skip))
		[ "$fail" -eq 0 ] || failures+=("$name: $fail failed")
		[ "$rc" -eq 0 ] || [ "$fail" -ne 0 ] || { failed=$((failed + 1)); failures+=("$name: rc=$rc"); }
	fi
	rm -f "$out"
}

configure_build() { # <dir> [cmake args...]
	local dir=$1
	shift
	cmake -S "$src" -B "$dir" -DSLUICE_WERROR=ON "$@" >/dev/null &&
		cmake --build "$dir" -j "$jobs"
}

log "dependencies"
if [ "$(id -u)" -eq 0 ]; then
	pkgargs=(--test)
	[ $run_vm -eq 1 ] && pkgargs+=(--vm)
	"$src/contrib/pkgdep.sh" "${pkgargs[@]}" || die "installing packages failed"
else
	echo "not root: skipping package installation"
fi

log "build (gcc, -Werror)"
configure_build "$build" -DSLUICE_VM_TESTS=ON || die "build failed"

if want unit; then
	run_ctest "unit" "$build" unit -j "$jobs"
fi
if want unit && [ $run_asan -eq 1 ]; then
	log "build (ASan+UBSan)"
	if configure_build "$build-asan" -DSLUICE_SANITIZE=ON; then
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
			run_ctest "unit (ASan+UBSan)" "$build-asan" unit -j "$jobs" -E "^unit.format$"
	else
		failed=$((failed + 1)); failures+=("ASan build failed")
	fi
fi
if want functional; then
	if [ "$(id -u)" -eq 0 ]; then
		"$src/contrib/setup.sh" hugepages >/dev/null 2>&1 || echo "setup.sh could not reserve hugepages"
	fi
	run_ctest "functional" "$build" functional
fi
if want fuzz && [ $run_fuzz -eq 1 ]; then
	log "build (clang, libFuzzer)"
	if CC=clang configure_build "$build-fuzz" -DSLUICE_FUZZ=ON -DSLUICE_TESTS=OFF; then
		run_ctest "fuzz" "$build-fuzz" fuzz
	else
		failed=$((failed + 1)); failures+=("fuzz build failed")
	fi
fi
if want vm && [ $run_vm -eq 1 ]; then
	# Packages and the initramfs first, so they do not count against a test's time.
	"$src/test/vm/run" --setup || { failed=$((failed + 1)); failures+=("vm setup failed"); }
	run_ctest "vm" "$build" vm
fi

log "summary"
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
