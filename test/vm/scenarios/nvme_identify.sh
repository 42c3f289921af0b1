#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors
#
# vm: --nvme 1 --ns 64M,16M --mem 2G --timeout 300
#
# sluice-nvme-identify, through vfio-pci, agrees with the kernel's `nvme id-ctrl` and
# `nvme id-ns` on the same controller and its two namespaces.

set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$SLUICE_VM_LIB"

vm_require_cmd nvme jq
identify=$(vm_sluice_bin sluice-nvme-identify)
bdf=$(vm_nvme_bdfs | head -n1)
[[ -n $bdf ]] || vm_fail "no emulated NVMe controller"
out=$SLUICE_VM_OUT

vm_step "the kernel's view of $bdf"
ctrl=$(vm_bind_nvme "$bdf")
nvme id-ctrl "/dev/$ctrl" -o json >"$out/kernel-id-ctrl.json"
mapfile -t nss < <(vm_nvme_namespaces "$ctrl")
((${#nss[@]} == 2)) || vm_fail "$ctrl has ${#nss[@]} namespaces, not 2"
for i in 0 1; do
	nvme id-ns "${nss[$i]}" -o json >"$out/kernel-id-ns$((i + 1)).json"
done

vm_step "bind $bdf to vfio-pci"
vm_bind_vfio "$bdf" >/dev/null
vm_hugepages 256

vm_step "sluice-nvme-identify (readable)"
"$identify" -r "trtype:PCIe traddr:$bdf" | tee "$out/sluice-identify.txt"
grep -q "Model Number: *QEMU NVMe Ctrl" "$out/sluice-identify.txt" || vm_fail "no model number"
grep -q "Namespace ID:2" "$out/sluice-identify.txt" || vm_fail "namespace 2 missing"

vm_step "sluice-nvme-identify --json"
"$identify" -r "trtype:PCIe traddr:$bdf" --json >"$out/sluice-identify.json"
jq -e 'length == 1' "$out/sluice-identify.json" >/dev/null || vm_fail "expected one controller"

# Compare field by field in one jq run (each jq start costs a second under TCG);
# strings trimmed, hex IDs lower case.
compare()
{
	local what=$1 kernel=$2 sluice=$3 keys=$4 diffs line

	diffs=$(jq -rn --slurpfile k "$kernel" --slurpfile s "$out/sluice-identify.json" \
		--arg keys "$keys" '
		def norm: if type == "string" then ascii_downcase | gsub("^\\s+|\\s+$"; "") else . end;
		($s[0] | '"$sluice"') as $sv | $k[0] as $kv |
		[$keys | splits("\\s+") | select(length > 0)] as $names |
		$names[] | select(($kv[.] | norm) != ($sv[.] | norm)) |
		"\(.) differs: kernel \($kv[.] | norm), sluice \($sv[.] | norm)"')
	if [[ -n $diffs ]]; then
		while IFS= read -r line; do
			echo "$what: $line"
		done <<<"$diffs"
		vm_fail "$what: sluice-nvme-identify disagrees with nvme-cli"
	fi
	echo "$what: $(wc -w <<<"$keys") fields agree"
}

ctrl_keys="vid ssvid sn mn fr rab ieee cmic mdts cntlid ver rtd3r rtd3e oaes ctratt
	cntrltype oacs acl aerl frmw lpa elpe npss avscc apsta wctemp cctemp mtfa hmpre
	hmmin rpmbs edstt dsto fwug kas hctma mntmt mxtmt sanicap anatt anacap anagrpmax
	nanagrpid pels sqes cqes maxcmd nn oncs fuses fna vwc awun awupf nwpc acwu sgls mnan
	subnqn"
ns_keys="nsze ncap nuse nsfeat nlbaf flbas mc dpc dps nmic rescap fpi dlfeat nawun nawupf
	nacwu nabsn nabo nabspf noiob npwg npwa npdg npda nows anagrpid nsattr nvmsetid
	endgid nguid eui64"
vm_step "compare with nvme-cli"
compare "id-ctrl" "$out/kernel-id-ctrl.json" '.[0]' "$ctrl_keys"
for i in 1 2; do
	compare "id-ns $i" "$out/kernel-id-ns$i.json" ".[0].namespaces[$((i - 1))]" "$ns_keys"
	k=$(jq -c '[.lbafs[] | {ms, ds, rp}]' "$out/kernel-id-ns$i.json")
	s=$(jq -c ".[0].namespaces[$((i - 1))] | [.lbafs[] | {ms, ds, rp}]" "$out/sluice-identify.json")
	[[ $k == "$s" ]] || vm_fail "id-ns $i: LBA formats differ: kernel $k, sluice $s"
done

vm_step "done"
