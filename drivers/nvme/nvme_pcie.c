/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/* The PCIe transport: BAR0 access through vfio, doorbells, and the data pointers of
 * commands (PRP lists and SGLs, base spec 4.3 and 4.4). */

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/env.h"
#include "nvme_internal.h"

/*
 * Every register access is one aligned 32-bit load or store: QEMU's NVMe (and some
 * hardware behind PCIe switches) rejects 64-bit or narrower accesses, so CAP, ASQ and
 * ACQ are accessed as two halves by nvme_ctrlr_get_reg8()/set_reg8().
 */
static uint32_t
nvme_pcie_mmio_read4(struct sl_nvme_ctrlr *ctrlr, uint32_t offset)
{
	return *(volatile const uint32_t *)(ctrlr->bar + offset);
}

static void
nvme_pcie_mmio_write4(struct sl_nvme_ctrlr *ctrlr, uint32_t offset, uint32_t value)
{
	*(volatile uint32_t *)(ctrlr->bar + offset) = value;
}

static uint64_t
nvme_pcie_vtophys(struct sl_nvme_ctrlr *ctrlr, const void *vaddr, uint64_t *size)
{
	return sl_vtophys(vaddr, size);
}

const struct nvme_reg_ops g_nvme_pcie_reg_ops = {
	.read4 = nvme_pcie_mmio_read4,
	.write4 = nvme_pcie_mmio_write4,
	.vtophys = nvme_pcie_vtophys,
};

int
nvme_pcie_ctrlr_attach(struct sl_nvme_ctrlr *ctrlr)
{
	const struct sl_pci_info *info;
	struct sl_pci_addr addr;
	uint64_t phys = 0;
	uint64_t size = 0;
	void *bar;
	int rc;

	if (sl_pci_addr_parse(&addr, ctrlr->shared->trid.traddr) != 0) {
		SL_ERRLOG("traddr '%s' is not a PCI address\n", ctrlr->shared->trid.traddr);
		return -EINVAL;
	}
	if (ctrlr->state == NVME_CTRLR_STATE_ATTACH_SHARED && !sl_pci_vfio_available()) {
		ctrlr->pdev = nvme_ledger_borrow_device(ctrlr, &addr);
	} else {
		ctrlr->pdev = sl_pci_device_attach(&addr);
	}
	if (ctrlr->pdev == NULL) {
		rc = -errno;
		SL_ERRLOG("%s: cannot attach the PCI function: %s\n", ctrlr->shared->trid.traddr,
			  strerror(-rc));
		return rc ? rc : -ENODEV;
	}
	nvme_ctrlr_lock(ctrlr);
	ctrlr->shared->slots[ctrlr->slot].vfio_fd = sl_pci_device_get_fd(ctrlr->pdev);
	nvme_ctrlr_unlock(ctrlr);
	info = sl_pci_device_get_info(ctrlr->pdev);
	ctrlr->shared->pci_id = info->id;
	bar = sl_pci_device_map_bar(ctrlr->pdev, 0, &phys, &size);
	if (bar == NULL) {
		rc = errno ? -errno : -ENXIO;
		SL_ERRLOG("%s: cannot map BAR0: %s\n", ctrlr->shared->trid.traddr, strerror(-rc));
		return rc;
	}
	ctrlr->bar = bar;
	ctrlr->bar_size = size;
	if (size < SL_NVME_REG_DBS + 8) {
		SL_ERRLOG("%s: BAR0 is only %llu bytes\n", ctrlr->shared->trid.traddr,
			  (unsigned long long)size);
		return -ENXIO;
	}
	rc = sl_pci_device_enable_bus_master(ctrlr->pdev);
	if (rc != 0) {
		SL_ERRLOG("%s: cannot enable bus mastering: %s\n", ctrlr->shared->trid.traddr,
			  strerror(-rc));
	}
	return rc;
}

void
nvme_pcie_ctrlr_detach(struct sl_nvme_ctrlr *ctrlr)
{
	if (ctrlr->pdev == NULL) {
		return;
	}
	if (ctrlr->bar != NULL) {
		sl_pci_device_unmap_bar(ctrlr->pdev, 0, (void *)(uintptr_t)ctrlr->bar);
		ctrlr->bar = NULL;
	}
	sl_pci_device_detach(ctrlr->pdev);
	ctrlr->pdev = NULL;
}

/* Translations asked for on a cache miss reach this far ahead, so that the buffers of
 * one pool hit after the first; the walk over memsegs happens on misses only. */
#define NVME_IOVA_CACHE_SPAN (64ull << 20)
/* The smallest hugepage: the aligned start of one lies in the same page. */
#define NVME_IOVA_CACHE_ALIGN (2ull << 20)

/* Translate va, through the identity cache when it covers va (see nvme_iova_cache).
 * \param contig in: bytes wanted; out: bytes IOVA-contiguous from va, at most wanted. */
static uint64_t
nvme_pcie_translate(struct sl_nvme_ctrlr *ctrlr, struct nvme_iova_cache *cache, const void *vaddr,
		    uint64_t *contig)
{
	uintptr_t va = (uintptr_t)vaddr;
	uintptr_t base = va & ~(uintptr_t)(NVME_IOVA_CACHE_ALIGN - 1);
	uint64_t want = *contig;
	uint64_t got = SL_MAX(want, NVME_IOVA_CACHE_SPAN);
	uint64_t iova;

	if (cache == NULL) {
		return ctrlr->reg_ops->vtophys(ctrlr, vaddr, contig);
	}
	if (sl_likely(va >= cache->start && va < cache->end)) {
		*contig = SL_MIN(want, cache->end - va);
		return va;
	}
	iova = ctrlr->reg_ops->vtophys(ctrlr, vaddr, &got);
	if (iova == SL_IOVA_INVALID) {
		*contig = 0;
		return iova;
	}
	if (iova == va) {
		cache->start = va;
		cache->end = va + got;
		if (base != va &&
		    ctrlr->reg_ops->vtophys(ctrlr, (const void *)base, NULL) == base) {
			cache->start = base;
		}
	}
	*contig = SL_MIN(want, got);
	return iova;
}

/* One PRP entry. Only the first may start inside a page (dword aligned); every entry
 * but the last must run to the end of its page (4.3). */
struct nvme_prp_builder {
	struct nvme_tracker *tr;
	struct sl_nvme_cmd *cmd;
	uint64_t page_mask;
	uint32_t nprps;
	uint64_t last_end;
};

static int
nvme_prp_add(struct nvme_prp_builder *b, uint64_t iova, uint32_t len)
{
	if (b->nprps == 0) {
		if (iova & 0x3) {
			SL_ERRLOG("PRP: first element 0x%llx is not dword aligned\n",
				  (unsigned long long)iova);
			return -EINVAL;
		}
		b->cmd->dptr.prp.prp1 = iova;
	} else {
		if ((b->last_end & b->page_mask) != 0 || (iova & b->page_mask) != 0) {
			SL_ERRLOG("PRP: element 0x%llx follows one ending at 0x%llx, not page "
				  "aligned (use SGLs or aligned iovecs)\n",
				  (unsigned long long)iova, (unsigned long long)b->last_end);
			return -EINVAL;
		}
		if (b->nprps - 1 >= NVME_MAX_PRP_LIST_ENTRIES) {
			SL_ERRLOG("PRP: more than %u pages\n", NVME_MAX_PRP_LIST_ENTRIES + 1);
			return -EINVAL;
		}
		b->tr->u.prp[b->nprps - 1] = iova;
	}
	b->nprps++;
	b->last_end = iova + len;
	return 0;
}

/* Add one IOVA-contiguous run, page by page. */
static int
nvme_prp_add_run(struct nvme_prp_builder *b, uint64_t iova, uint64_t len)
{
	uint64_t page = b->page_mask + 1;
	uint64_t chunk;
	int rc;

	while (len > 0) {
		chunk = SL_MIN(len, page - (iova & b->page_mask));
		rc = nvme_prp_add(b, iova, (uint32_t)chunk);
		if (rc != 0) {
			return rc;
		}
		iova += chunk;
		len -= chunk;
	}
	return 0;
}

int
nvme_pcie_build_prps(struct sl_nvme_ctrlr *ctrlr, struct nvme_iova_cache *cache,
		     struct nvme_tracker *tr, const struct iovec *iov, int iovcnt, uint32_t len)
{
	struct nvme_prp_builder b = {
		.tr = tr,
		.cmd = &tr->req->cmd,
		.page_mask = ctrlr->shared->page_size - 1,
	};
	uint64_t remaining = len;
	int i;
	int rc;

	for (i = 0; i < iovcnt && remaining > 0; i++) {
		const uint8_t *va = iov[i].iov_base;
		uint64_t seg = SL_MIN(iov[i].iov_len, remaining);

		remaining -= seg;
		while (seg > 0) {
			uint64_t contig = seg;
			uint64_t iova = nvme_pcie_translate(ctrlr, cache, va, &contig);

			if (iova == SL_IOVA_INVALID) {
				SL_ERRLOG("PRP: buffer %p is not DMA memory\n", (const void *)va);
				return -EINVAL;
			}
			contig = SL_MIN(contig, seg);
			rc = nvme_prp_add_run(&b, iova, contig);
			if (rc != 0) {
				return rc;
			}
			va += contig;
			seg -= contig;
		}
	}
	if (remaining > 0 || b.nprps == 0) {
		SL_ERRLOG("PRP: iovecs hold less than the %u bytes of the command\n", len);
		return -EINVAL;
	}
	b.cmd->psdt = SL_NVME_PSDT_PRP;
	if (b.nprps == 1) {
		b.cmd->dptr.prp.prp2 = 0;
	} else if (b.nprps == 2) {
		b.cmd->dptr.prp.prp2 = tr->u.prp[0];
	} else {
		b.cmd->dptr.prp.prp2 = tr->list_iova;
	}
	return 0;
}

static int
nvme_sgl_add(struct nvme_tracker *tr, uint32_t *n, uint64_t iova, uint64_t len)
{
	struct sl_nvme_sgl_desc *prev = *n ? &tr->u.sgl[*n - 1] : NULL;

	/* Merge with the previous descriptor when the IOVAs continue it. */
	if (prev != NULL && prev->address + prev->length == iova &&
	    (uint64_t)prev->length + len <= UINT32_MAX) {
		prev->length += (uint32_t)len;
		return 0;
	}
	if (*n >= NVME_MAX_SGL_DESCRIPTORS) {
		SL_ERRLOG("SGL: more than %u descriptors\n", NVME_MAX_SGL_DESCRIPTORS);
		return -EINVAL;
	}
	tr->u.sgl[*n] = (struct sl_nvme_sgl_desc){
		.address = iova,
		.length = (uint32_t)len,
		.type = SL_NVME_SGL_TYPE_DATA_BLOCK,
		.subtype = SL_NVME_SGL_SUBTYPE_ADDRESS,
	};
	(*n)++;
	return 0;
}

int
nvme_pcie_build_sgl(struct sl_nvme_ctrlr *ctrlr, struct nvme_iova_cache *cache,
		    struct nvme_tracker *tr, const struct iovec *iov, int iovcnt, uint32_t len)
{
	struct sl_nvme_cmd *cmd = &tr->req->cmd;
	uint64_t remaining = len;
	uint32_t n = 0;
	int i;
	int rc;

	for (i = 0; i < iovcnt && remaining > 0; i++) {
		const uint8_t *va = iov[i].iov_base;
		uint64_t seg = SL_MIN(iov[i].iov_len, remaining);

		remaining -= seg;
		while (seg > 0) {
			uint64_t contig = seg;
			uint64_t iova = nvme_pcie_translate(ctrlr, cache, va, &contig);

			if (iova == SL_IOVA_INVALID) {
				SL_ERRLOG("SGL: buffer %p is not DMA memory\n", (const void *)va);
				return -EINVAL;
			}
			contig = SL_MIN(contig, seg);
			rc = nvme_sgl_add(tr, &n, iova, contig);
			if (rc != 0) {
				return rc;
			}
			va += contig;
			seg -= contig;
		}
	}
	if (remaining > 0 || n == 0) {
		SL_ERRLOG("SGL: iovecs hold less than the %u bytes of the command\n", len);
		return -EINVAL;
	}
	/* PSDT 01b: SGL1 is in the command; MPTR (no metadata here) is a plain address. */
	cmd->psdt = SL_NVME_PSDT_SGL_MPTR_CONTIG;
	if (n == 1) {
		cmd->dptr.sgl1 = tr->u.sgl[0];
		return 0;
	}
	/* More than one: SGL1 points at a last segment holding all data blocks (4.4). */
	cmd->dptr.sgl1 = (struct sl_nvme_sgl_desc){
		.address = tr->list_iova,
		.length = n * (uint32_t)sizeof(struct sl_nvme_sgl_desc),
		.type = SL_NVME_SGL_TYPE_LAST_SEGMENT,
		.subtype = SL_NVME_SGL_SUBTYPE_ADDRESS,
	};
	return 0;
}

static bool
nvme_pcie_use_sgl(const struct sl_nvme_qpair *qpair)
{
	const struct nvme_ctrlr_shared *s = qpair->ctrlr->shared;

	return !qpair->is_admin && s->opts.use_sgl &&
	       (s->cdata.sgls & SL_NVME_SGLS_SUPPORTED_MASK) != 0 &&
	       !(s->quirks & NVME_QUIRK_NO_SGL_FOR_IO);
}

int
nvme_pcie_build_payload(struct sl_nvme_qpair *qpair, struct nvme_tracker *tr)
{
	struct nvme_request *req = tr->req;
	struct iovec iov;

	switch (req->payload_type) {
	case NVME_PAYLOAD_NONE:
		/* The command carries its own data pointer (queue creation, passthrough). */
		return 0;
	case NVME_PAYLOAD_CONTIG:
		iov.iov_base = req->payload.buf;
		iov.iov_len = req->payload_size;
		return nvme_pcie_build_prps(qpair->ctrlr, &qpair->iova_cache, tr, &iov, 1,
					    req->payload_size);
	case NVME_PAYLOAD_IOV:
		if (nvme_pcie_use_sgl(qpair)) {
			return nvme_pcie_build_sgl(qpair->ctrlr, &qpair->iova_cache, tr,
						   req->payload.iov, req->payload_count,
						   req->payload_size);
		}
		return nvme_pcie_build_prps(qpair->ctrlr, &qpair->iova_cache, tr, req->payload.iov,
					    req->payload_count, req->payload_size);
	case NVME_PAYLOAD_DSM:
		/* The ranges go in the tracker: 2 KiB aligned, so within one page. */
		memcpy(tr->u.dsm, req->payload.ranges,
		       req->payload_count * sizeof(struct sl_nvme_dsm_range));
		req->cmd.psdt = SL_NVME_PSDT_PRP;
		req->cmd.dptr.prp.prp1 = tr->list_iova;
		req->cmd.dptr.prp.prp2 = 0;
		return 0;
	default:
		return -EINVAL;
	}
}

/* --- Probe ------------------------------------------------------------------------------ */

struct nvme_probe_list {
	struct sl_nvme_transport_id *trids;
	size_t count;
	size_t cap;
};

static int
nvme_probe_list_add(struct nvme_probe_list *list, const struct sl_pci_addr *addr)
{
	struct sl_nvme_transport_id *trid;

	if (list->count == list->cap) {
		size_t cap = list->cap ? list->cap * 2 : 8;
		void *p = realloc(list->trids, cap * sizeof(*list->trids));

		if (p == NULL) {
			return -ENOMEM;
		}
		list->trids = p;
		list->cap = cap;
	}
	trid = &list->trids[list->count++];
	memset(trid, 0, sizeof(*trid));
	trid->trtype = SL_NVME_TRANSPORT_PCIE;
	return sl_pci_addr_fmt(trid->traddr, sizeof(trid->traddr), addr);
}

static int
nvme_probe_enum_cb(const struct sl_pci_info *info, void *ctx)
{
	/* Only functions given to vfio-pci are ours to take. */
	if (strcmp(info->driver, "vfio-pci") != 0) {
		SL_DEBUGLOG(nvme, "skipping NVMe function bound to '%s'\n", info->driver);
		return 0;
	}
	return nvme_probe_list_add(ctx, &info->addr);
}

static int
nvme_probe_collect(const struct sl_nvme_transport_id *trid, struct nvme_probe_list *list)
{
	struct sl_pci_addr addr;
	struct sl_pci_info info;

	if (trid == NULL || trid->traddr[0] == '\0') {
		return sl_pci_enumerate(SL_NVME_PCI_CLASS, 0xffffff, nvme_probe_enum_cb, list);
	}
	if (trid->trtype != SL_NVME_TRANSPORT_PCIE) {
		SL_ERRLOG("transport %s is not supported yet\n",
			  sl_nvme_transport_type_str(trid->trtype));
		return -ENOTSUP;
	}
	if (sl_pci_addr_parse(&addr, trid->traddr) != 0 || sl_pci_get_info(&addr, &info) != 0) {
		SL_ERRLOG("no PCI function %s\n", trid->traddr);
		return -ENODEV;
	}
	if (info.id.class_id != SL_NVME_PCI_CLASS) {
		SL_ERRLOG("PCI function %s is class %06x, not NVMe (%06x)\n", trid->traddr,
			  info.id.class_id, SL_NVME_PCI_CLASS);
		return -ENODEV;
	}
	return nvme_probe_list_add(list, &addr);
}

struct nvme_probe_ctx {
	TAILQ_HEAD(, sl_nvme_ctrlr) pending;
	void *cb_ctx;
	sl_nvme_attach_cb attach_cb;
	int rc;
};

static void
nvme_probe_start(struct nvme_probe_ctx *ctx, const struct sl_nvme_transport_id *trid,
		 const struct sl_nvme_ctrlr_opts *opts)
{
	struct sl_nvme_ctrlr *ctrlr;
	int rc;

	ctrlr = nvme_ctrlr_construct(trid, opts, &g_nvme_pcie_reg_ops, NULL);
	if (ctrlr == NULL) {
		ctx->rc = ctx->rc ? ctx->rc : -ENOMEM;
		return;
	}
	rc = nvme_pcie_ctrlr_attach(ctrlr);
	if (rc != 0) {
		nvme_ctrlr_destruct(ctrlr);
		ctx->rc = ctx->rc ? ctx->rc : rc;
		return;
	}
	TAILQ_INSERT_TAIL(&ctx->pending, ctrlr, link);
}

/* Initialise all picked controllers side by side: each waits on its own registers. */
static void
nvme_probe_run(struct nvme_probe_ctx *ctx)
{
	struct sl_nvme_ctrlr *ctrlr, *tmp;
	int rc;

	while (!TAILQ_EMPTY(&ctx->pending)) {
		TAILQ_FOREACH_SAFE (ctrlr, &ctx->pending, link, tmp) {
			rc = nvme_ctrlr_process_init(ctrlr);
			if (rc == 0 && ctrlr->state != NVME_CTRLR_STATE_READY) {
				continue;
			}
			TAILQ_REMOVE(&ctx->pending, ctrlr, link);
			if (rc != 0) {
				ctx->rc = ctx->rc ? ctx->rc : rc;
				nvme_ctrlr_destruct(ctrlr);
				continue;
			}
			nvme_ctrlr_register(ctrlr);
			if (ctx->attach_cb != NULL) {
				ctx->attach_cb(ctx->cb_ctx, &ctrlr->shared->trid, ctrlr,
					       &ctrlr->shared->opts);
			}
		}
		usleep(10);
	}
}

int
sl_nvme_probe(const struct sl_nvme_transport_id *trid, void *cb_ctx, sl_nvme_probe_cb probe_cb,
	      sl_nvme_attach_cb attach_cb)
{
	struct nvme_probe_list list = {.trids = NULL};
	struct nvme_probe_ctx ctx = {.cb_ctx = cb_ctx, .attach_cb = attach_cb, .rc = 0};
	struct sl_nvme_ctrlr_opts opts;
	size_t i;
	int rc;

	TAILQ_INIT(&ctx.pending);
	rc = nvme_probe_collect(trid, &list);
	if (rc < 0) {
		free(list.trids);
		return rc;
	}
	for (i = 0; i < list.count; i++) {
		sl_nvme_ctrlr_get_default_opts(&opts);
		if (probe_cb != NULL && !probe_cb(cb_ctx, &list.trids[i], &opts)) {
			continue;
		}
		nvme_probe_start(&ctx, &list.trids[i], &opts);
	}
	free(list.trids);
	nvme_probe_run(&ctx);
	return ctx.rc;
}
