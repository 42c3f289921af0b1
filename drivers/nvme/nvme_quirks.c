/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/* Controller quirks keyed on PCI IDs: behaviour the spec allows or devices get wrong
 * that the driver must work around. */

#include "nvme_internal.h"

#define NVME_PCI_ANY 0xffff

struct nvme_quirk {
	uint16_t vendor_id;
	uint16_t device_id;
	uint16_t subvendor_id;
	uint16_t subdevice_id;
	uint64_t flags;
};

static const struct nvme_quirk g_nvme_quirks[] = {
	/* QEMU's emulated NVMe: only aligned 32-bit register reads are accepted. */
	{0x1b36, 0x0010, NVME_PCI_ANY, NVME_PCI_ANY, NVME_QUIRK_MMIO_32BIT_ONLY},
	/* Intel DC P3x00: CSTS.RDY may read stale right after CC.EN changes. */
	{0x8086, 0x0953, NVME_PCI_ANY, NVME_PCI_ANY,
	 NVME_QUIRK_DELAY_BEFORE_CHK_RDY | NVME_QUIRK_READ_ZERO_AFTER_DEALLOC},
	{0x8086, 0x0a53, NVME_PCI_ANY, NVME_PCI_ANY,
	 NVME_QUIRK_DELAY_BEFORE_CHK_RDY | NVME_QUIRK_READ_ZERO_AFTER_DEALLOC},
	{0x8086, 0x0a54, NVME_PCI_ANY, NVME_PCI_ANY,
	 NVME_QUIRK_DELAY_BEFORE_CHK_RDY | NVME_QUIRK_READ_ZERO_AFTER_DEALLOC},
	/* Samsung PM1725/PM1725a: CSTS.RDY may read stale right after CC.EN changes. */
	{0x144d, 0xa821, NVME_PCI_ANY, NVME_PCI_ANY, NVME_QUIRK_DELAY_BEFORE_CHK_RDY},
	{0x144d, 0xa822, NVME_PCI_ANY, NVME_PCI_ANY, NVME_QUIRK_DELAY_BEFORE_CHK_RDY},
	/* VMware's emulated NVMe (1.0): no Identify CNS 02h. */
	{0x15ad, 0x07f0, NVME_PCI_ANY, NVME_PCI_ANY, NVME_QUIRK_IDENTIFY_CNS},
};

static bool
nvme_quirk_id_match(uint16_t want, uint16_t have)
{
	return want == NVME_PCI_ANY || want == have;
}

uint64_t
nvme_quirks_get(const struct sl_pci_id *id)
{
	size_t i;

	for (i = 0; i < SL_COUNTOF(g_nvme_quirks); i++) {
		const struct nvme_quirk *q = &g_nvme_quirks[i];

		if (nvme_quirk_id_match(q->vendor_id, id->vendor_id) &&
		    nvme_quirk_id_match(q->device_id, id->device_id) &&
		    nvme_quirk_id_match(q->subvendor_id, id->subvendor_id) &&
		    nvme_quirk_id_match(q->subdevice_id, id->subdevice_id)) {
			return q->flags;
		}
	}
	return 0;
}

const char *
nvme_quirk_str(uint64_t quirk)
{
	switch (quirk) {
	case NVME_QUIRK_DELAY_BEFORE_CHK_RDY:
		return "delay-before-check-ready";
	case NVME_QUIRK_MMIO_32BIT_ONLY:
		return "mmio-32bit-only";
	case NVME_QUIRK_READ_ZERO_AFTER_DEALLOC:
		return "read-zero-after-deallocate";
	case NVME_QUIRK_NO_SGL_FOR_IO:
		return "no-sgl-for-io";
	case NVME_QUIRK_IDENTIFY_CNS:
		return "no-identify-cns-2";
	case NVME_QUIRK_NO_DEALLOCATE:
		return "no-deallocate";
	case NVME_QUIRK_SHST_COMPLETE:
		return "shst-complete";
	default:
		return "unknown";
	}
}
