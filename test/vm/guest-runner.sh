#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors
#
# Runs inside the guest, chrooted into the host's root (read-only 9p under a
# tmpfs overlay), called by guest-init.sh as: guest-runner.sh <work dir>.
# It finishes the guest's mounts, loads the run's environment from
# <work dir>/env (written by test/vm/run), runs the scenario under a timeout,
# writes its exit status to <work dir>/out/rc (the writable 9p share the host
# reads) and exits with it. With --debug it opens a shell on the console when
# the scenario fails (with --shell, always).

set -uo pipefail

work=$1
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
umask 022

note()
{
	echo "sluice-vm: $*"
}

# Mounts a filesystem on a fresh directory unless something is mounted there.
vm_mount()
{
	local type=$1 opts=$2 dir=$3

	mkdir -p "$dir"
	mountpoint -q "$dir" && return 0
	mount -t "$type" -o "$opts" "$type" "$dir" || note "cannot mount $type on $dir"
}

setup_mounts()
{
	local p under_tmp=

	# devtmpfs has none of these links; bash's <(...) needs /dev/fd.
	ln -sfn /proc/self/fd /dev/fd
	ln -sfn /proc/self/fd/0 /dev/stdin
	ln -sfn /proc/self/fd/1 /dev/stdout
	ln -sfn /proc/self/fd/2 /dev/stderr
	vm_mount devpts gid=5,mode=620,ptmxmode=666 /dev/pts
	vm_mount tmpfs mode=1777 /dev/shm
	vm_mount mqueue rw /dev/mqueue
	vm_mount hugetlbfs mode=1770 /dev/hugepages
	# The host's /run holds its own sockets and DPDK runtime files: hide them.
	vm_mount tmpfs mode=0755 /run
	# A fresh /tmp hides the host's, unless something this run needs lives there
	# (the overlay already keeps the guest's writes to /tmp in guest memory).
	for p in "$SLUICE_REPO" "$SLUICE_BUILD_DIR" "$work" "$SLUICE_VM_SCENARIO"; do
		case "$p" in /tmp/*) under_tmp=$p ;; esac
	done
	if [[ -n $under_tmp ]]; then
		note "$under_tmp is under /tmp: /tmp stays the host's (overlaid), not a fresh tmpfs"
	else
		vm_mount tmpfs mode=1777 /tmp
	fi
	modprobe configfs 2>/dev/null
	vm_mount configfs rw /sys/kernel/config
	vm_mount debugfs rw /sys/kernel/debug
	hostname sluice-vm
}

debug_shell()
{
	local rcfile=/run/sluice-vm-debugrc

	cat >"$rcfile" <<EOF
source /etc/bash.bashrc 2>/dev/null
source $(printf %q "$SLUICE_VM_LIB")
cd $(printf %q "$SLUICE_REPO")
PS1='[sluice-vm \w]# '
echo "sluice-vm: scenario $(printf %q "$SLUICE_VM_NAME") exited with $1; exit this shell to power off."
echo "sluice-vm: its log is \$SLUICE_VM_OUT/scenario.log; lib.sh is loaded (vm_* helpers)."
EOF
	echo "SLUICE-VM-DEBUG-SHELL"
	if [[ ${SLUICE_VM_TTY_SIZE:-} =~ ^([0-9]+)\ ([0-9]+)$ ]]; then
		stty -F /dev/ttyS0 rows "${BASH_REMATCH[1]}" cols "${BASH_REMATCH[2]}"
	fi
	setsid -c -w bash --rcfile "$rcfile" -i </dev/ttyS0 >/dev/ttyS0 2>&1
}

main()
{
	local rc up budget

	# shellcheck source=/dev/null
	source "$work/env" || return 125
	export TERM=${SLUICE_VM_TERM:-linux}
	setup_mounts
	echo "SLUICE-VM-BOOT: runner"
	note "kernel $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ { print int($2 / 1024) }' /proc/meminfo) MiB"

	# The host kills the guest at SLUICE_VM_TIMEOUT seconds after starting it;
	# stop the scenario before that, so that it can report the timeout itself.
	up=$(cut -d. -f1 /proc/uptime)
	budget=$((SLUICE_VM_TIMEOUT - up - 20))
	((budget >= 10)) || budget=10
	note "running $SLUICE_VM_SCENARIO (timeout ${budget}s)"
	cd "$SLUICE_REPO" || return 125
	timeout -k 10 "$budget" bash "$SLUICE_VM_SCENARIO" 2>&1 | tee "$SLUICE_VM_OUT/scenario.log"
	rc=${PIPESTATUS[0]}
	((rc == 124)) && note "scenario timed out after ${budget}s"
	echo "$rc" >"$SLUICE_VM_OUT/rc"
	sync
	note "scenario $SLUICE_VM_NAME exited with $rc"
	if [[ $SLUICE_VM_SHELL == 1 ]] || { [[ $SLUICE_VM_DEBUG == 1 ]] && ((rc != 0)); }; then
		debug_shell "$rc"
	fi
	return "$rc"
}

main
