/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/* Namespaces: their Identify data, and the NVM command set I/O commands. */

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "nvme_internal.h"

void
nvme_ns_construct(struct sl_nvme_ns *ns, struct sl_nvme_ctrlr *ctrlr, uint32_t nsid)
{
	memset(ns, 0, sizeof(*ns));
	ns->ctrlr = ctrlr;
	ns->id = nsid;
	ns->nsdata = &ctrlr->nsdata[nsid - 1];
}

void
nvme_ns_update(struct sl_nvme_ns *ns)
{
	const struct sl_nvme_ns_data *d = ns->nsdata;
	const struct sl_nvme_lbaf *lbaf = &d->lbaf[d->flbas & 0xf];

	ns->sector_size = 1u << lbaf->lbads;
	ns->md_size = lbaf->ms;
	/* FLBAS bit 4: metadata travels at the end of each LBA (extended LBA). */
	ns->extended_lba_size = ns->sector_size + ((d->flbas & 0x10) ? ns->md_size : 0);
	ns->num_sectors = d->nsze;
	memcpy(ns->nguid, d->nguid, sizeof(ns->nguid));
	memcpy(ns->eui64, d->eui64, sizeof(ns->eui64));
	ns->csi = 0;
}

/* Walk the namespace identification descriptor list (5.15.2.3). */
void
nvme_ns_parse_id_descs(struct sl_nvme_ns *ns, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t off = 0;

	ns->has_uuid = false;
	/* Byte access: a 1-byte CSI descriptor leaves the next one at an odd offset. */
	while (off + sizeof(struct sl_nvme_ns_id_desc) <= len) {
		uint8_t nidt = p[off];
		uint8_t nidl = p[off + 1];
		const uint8_t *nid = p + off + sizeof(struct sl_nvme_ns_id_desc);

		if (nidt == 0 || off + sizeof(struct sl_nvme_ns_id_desc) + nidl > len) {
			break;
		}
		switch (nidt) {
		case SL_NVME_NIDT_EUI64:
			if (nidl == sizeof(ns->eui64)) {
				memcpy(ns->eui64, nid, sizeof(ns->eui64));
			}
			break;
		case SL_NVME_NIDT_NGUID:
			if (nidl == sizeof(ns->nguid)) {
				memcpy(ns->nguid, nid, sizeof(ns->nguid));
			}
			break;
		case SL_NVME_NIDT_UUID:
			if (nidl == sizeof(ns->uuid)) {
				memcpy(ns->uuid, nid, sizeof(ns->uuid));
				ns->has_uuid = true;
			}
			break;
		case SL_NVME_NIDT_CSI:
			if (nidl == 1) {
				ns->csi = nid[0];
			}
			break;
		default:
			break;
		}
		off += sizeof(struct sl_nvme_ns_id_desc) + nidl;
	}
}

uint32_t
sl_nvme_ns_get_id(const struct sl_nvme_ns *ns)
{
	return ns->id;
}

bool
sl_nvme_ns_is_active(const struct sl_nvme_ns *ns)
{
	return ns->active;
}

const struct sl_nvme_ns_data *
sl_nvme_ns_get_data(const struct sl_nvme_ns *ns)
{
	return ns->nsdata;
}

struct sl_nvme_ctrlr *
sl_nvme_ns_get_ctrlr(const struct sl_nvme_ns *ns)
{
	return ns->ctrlr;
}

uint32_t
sl_nvme_ns_get_sector_size(const struct sl_nvme_ns *ns)
{
	return ns->sector_size;
}

uint32_t
sl_nvme_ns_get_md_size(const struct sl_nvme_ns *ns)
{
	return ns->md_size;
}

uint64_t
sl_nvme_ns_get_num_sectors(const struct sl_nvme_ns *ns)
{
	return ns->num_sectors;
}

uint64_t
sl_nvme_ns_get_size(const struct sl_nvme_ns *ns)
{
	return ns->num_sectors * ns->sector_size;
}

uint32_t
sl_nvme_ns_get_max_io_xfer_size(const struct sl_nvme_ns *ns)
{
	return ns->ctrlr->shared->max_xfer_size;
}

static bool
nvme_is_zero(const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (p[i] != 0) {
			return false;
		}
	}
	return true;
}

const uint8_t *
sl_nvme_ns_get_nguid(const struct sl_nvme_ns *ns)
{
	return nvme_is_zero(ns->nguid, sizeof(ns->nguid)) ? NULL : ns->nguid;
}

const uint8_t *
sl_nvme_ns_get_eui64(const struct sl_nvme_ns *ns)
{
	return nvme_is_zero(ns->eui64, sizeof(ns->eui64)) ? NULL : ns->eui64;
}

const uint8_t *
sl_nvme_ns_get_uuid(const struct sl_nvme_ns *ns)
{
	return ns->has_uuid ? ns->uuid : NULL;
}

uint8_t
sl_nvme_ns_get_csi(const struct sl_nvme_ns *ns)
{
	return ns->csi;
}

/* --- I/O ------------------------------------------------------------------------------ */

/* Read, write, compare and write zeroes carry NLB in 16 bits, 0's based (NVM 3.3). */
#define NVME_NS_MAX_NLB 65536u

/* The blocks exist. A DSM range (32-bit count, 1's based) needs no more than this. */
static int
nvme_ns_check_lbas(const struct sl_nvme_ns *ns, uint64_t lba, uint32_t lba_count)
{
	if (sl_unlikely(lba_count == 0 || lba >= ns->num_sectors ||
			lba_count > ns->num_sectors - lba)) {
		return -EINVAL;
	}
	return 0;
}

/* The blocks exist and fit one command's NLB field. */
static int
nvme_ns_check_range(const struct sl_nvme_ns *ns, uint64_t lba, uint32_t lba_count)
{
	if (sl_unlikely(lba_count > NVME_NS_MAX_NLB)) {
		return -EINVAL;
	}
	return nvme_ns_check_lbas(ns, lba, lba_count);
}

static struct nvme_request *
nvme_ns_alloc_rw(struct sl_nvme_ns *ns, struct sl_nvme_qpair *qpair, uint8_t opc, uint64_t lba,
		 uint32_t lba_count, uint32_t io_flags, sl_nvme_cmd_cb cb_fn, void *cb_arg)
{
	struct nvme_request *req = nvme_qpair_alloc_request(qpair);

	if (sl_unlikely(req == NULL)) {
		return NULL;
	}
	req->cmd.opc = opc;
	req->cmd.nsid = ns->id;
	req->cmd.cdw10 = (uint32_t)lba;
	req->cmd.cdw11 = (uint32_t)(lba >> 32);
	req->cmd.cdw12 = (lba_count - 1) | io_flags;
	req->cb_fn = cb_fn;
	req->cb_arg = cb_arg;
	return req;
}

static int
nvme_ns_submit_rw(struct sl_nvme_ns *ns, struct sl_nvme_qpair *qpair, uint8_t opc,
		  uint8_t payload_type, const void *payload, int count, uint64_t lba,
		  uint32_t lba_count, sl_nvme_cmd_cb cb_fn, void *cb_arg, uint32_t io_flags)
{
	struct nvme_request *req;
	uint64_t size = (uint64_t)lba_count * ns->extended_lba_size;

	assert(qpair->ctrlr == ns->ctrlr && !qpair->is_admin);
	if (sl_unlikely(nvme_ns_check_range(ns, lba, lba_count) != 0 ||
			(io_flags & ~(SL_NVME_IO_FLAGS_FUA | SL_NVME_IO_FLAGS_LIMITED_RETRY)) ||
			size > ns->ctrlr->shared->max_xfer_size)) {
		return -EINVAL;
	}
	req = nvme_ns_alloc_rw(ns, qpair, opc, lba, lba_count, io_flags, cb_fn, cb_arg);
	if (sl_unlikely(req == NULL)) {
		return -ENOMEM;
	}
	req->payload_type = payload_type;
	req->payload.buf = (void *)(uintptr_t)payload;
	req->payload_count = (uint16_t)count;
	req->payload_size = (uint32_t)size;
	return nvme_qpair_submit_request(qpair, req);
}

int
sl_nvme_ns_cmd_read(struct sl_nvme_ns *ns, struct sl_nvme_qpair *qpair, void *buf, uint64_t lba,
		    uint32_t lba_count, sl_nvme_cmd_cb cb_fn, void *cb_arg, uint32_t io_flags)
{
	return nvme_ns_submit_rw(ns, qpair, SL_NVME_OPC_READ, NVME_PAYLOAD_CONTIG, buf, 1, lba,
				 lba_count, cb_fn, cb_arg, io_flags);
}

int
sl_nvme_ns_cmd_write(struct sl_nvme_ns *ns, struct sl_nvme_qpair *qpair, void *buf, uint64_t lba,
		     uint32_t lba_count, sl_nvme_cmd_cb cb_fn, void *cb_arg, uint32_t io_flags)
{
	return nvme_ns_submit_rw(ns, qpair, SL_NVME_OPC_WRITE, NVME_PAYLOAD_CONTIG, buf, 1, lba,
				 lba_count, cb_fn, cb_arg, io_flags);
}

int
sl_nvme_ns_cmd_compare(struct sl_nvme_ns *ns, struct sl_nvme_qpair *qpair, void *buf, uint64_t lba,
		       uint32_t lba_count, sl_nvme_cmd_cb cb_fn, void *cb_arg, uint32_t io_flags)
{
	return nvme_ns_submit_rw(ns, qpair, SL_NVME_OPC_COMPARE, NVME_PAYLOAD_CONTIG, buf, 1, lba,
				 lba_count, cb_fn, cb_arg, io_flags);
}

int
sl_nvme_ns_cmd_readv(struct sl_nvme_ns *ns, struct sl_nvme_qpair *qpair, const struct iovec *iov,
		     int iovcnt, uint64_t lba, uint32_t lba_count, sl_nvme_cmd_cb cb_fn,
		     void *cb_arg, uint32_t io_flags)
{
	if (iovcnt <= 0 || iovcnt > UINT16_MAX) {
		return -EINVAL;
	}
	return nvme_ns_submit_rw(ns, qpair, SL_NVME_OPC_READ, NVME_PAYLOAD_IOV, iov, iovcnt, lba,
				 lba_count, cb_fn, cb_arg, io_flags);
}

int
sl_nvme_ns_cmd_writev(struct sl_nvme_ns *ns, struct sl_nvme_qpair *qpair, const struct iovec *iov,
		      int iovcnt, uint64_t lba, uint32_t lba_count, sl_nvme_cmd_cb cb_fn,
		      void *cb_arg, uint32_t io_flags)
{
	if (iovcnt <= 0 || iovcnt > UINT16_MAX) {
		return -EINVAL;
	}
	return nvme_ns_submit_rw(ns, qpair, SL_NVME_OPC_WRITE, NVME_PAYLOAD_IOV, iov, iovcnt, lba,
				 lba_count, cb_fn, cb_arg, io_flags);
}

int
sl_nvme_ns_cmd_write_zeroes(struct sl_nvme_ns *ns, struct sl_nvme_qpair *qpair, uint64_t lba,
			    uint32_t lba_count, sl_nvme_cmd_cb cb_fn, void *cb_arg,
			    uint32_t io_flags)
{
	struct nvme_request *req;

	if (nvme_ns_check_range(ns, lba, lba_count) != 0 ||
	    (io_flags & ~(SL_NVME_IO_FLAGS_FUA | SL_NVME_IO_FLAGS_LIMITED_RETRY |
			  SL_NVME_IO_FLAGS_DEALLOCATE))) {
		return -EINVAL;
	}
	req = nvme_ns_alloc_rw(ns, qpair, SL_NVME_OPC_WRITE_ZEROES, lba, lba_count, io_flags, cb_fn,
			       cb_arg);
	if (req == NULL) {
		return -ENOMEM;
	}
	return nvme_qpair_submit_request(qpair, req);
}

int
sl_nvme_ns_cmd_flush(struct sl_nvme_ns *ns, struct sl_nvme_qpair *qpair, sl_nvme_cmd_cb cb_fn,
		     void *cb_arg)
{
	struct nvme_request *req = nvme_qpair_alloc_request(qpair);

	if (req == NULL) {
		return -ENOMEM;
	}
	req->cmd.opc = SL_NVME_OPC_FLUSH;
	req->cmd.nsid = ns->id;
	req->cb_fn = cb_fn;
	req->cb_arg = cb_arg;
	return nvme_qpair_submit_request(qpair, req);
}

int
sl_nvme_ns_cmd_dataset_management(struct sl_nvme_ns *ns, struct sl_nvme_qpair *qpair,
				  uint32_t attributes, const struct sl_nvme_dsm_range *ranges,
				  uint16_t num_ranges, sl_nvme_cmd_cb cb_fn, void *cb_arg)
{
	struct nvme_request *req;
	uint16_t i;

	if (ranges == NULL || num_ranges == 0 || num_ranges > SL_NVME_DSM_MAX_RANGES) {
		return -EINVAL;
	}
	for (i = 0; i < num_ranges; i++) {
		/* Not nvme_ns_check_range: a range is not limited to a command's NLB. */
		if (ranges[i].length != 0 &&
		    nvme_ns_check_lbas(ns, ranges[i].starting_lba, ranges[i].length) != 0) {
			return -EINVAL;
		}
	}
	req = nvme_qpair_alloc_request(qpair);
	if (req == NULL) {
		return -ENOMEM;
	}
	req->cmd.opc = SL_NVME_OPC_DATASET_MANAGEMENT;
	req->cmd.nsid = ns->id;
	req->cmd.cdw10 = num_ranges - 1u; /* 0's based (NVM 3.2.3) */
	req->cmd.cdw11 = attributes;
	req->payload_type = NVME_PAYLOAD_DSM;
	req->payload.ranges = ranges;
	req->payload_count = num_ranges;
	req->payload_size = num_ranges * (uint32_t)sizeof(*ranges);
	req->cb_fn = cb_fn;
	req->cb_arg = cb_arg;
	return nvme_qpair_submit_request(qpair, req);
}

int
sl_nvme_ctrlr_cmd_io_raw(struct sl_nvme_ctrlr *ctrlr, struct sl_nvme_qpair *qpair,
			 const struct sl_nvme_cmd *cmd, void *buf, uint32_t len,
			 sl_nvme_cmd_cb cb_fn, void *cb_arg)
{
	struct nvme_request *req;

	assert(qpair->ctrlr == ctrlr && !qpair->is_admin);
	if (len > ctrlr->shared->max_xfer_size) {
		return -EINVAL;
	}
	req = nvme_qpair_alloc_request(qpair);
	if (req == NULL) {
		return -ENOMEM;
	}
	req->cmd = *cmd;
	if (buf != NULL && len != 0) {
		req->payload_type = NVME_PAYLOAD_CONTIG;
		req->payload.buf = buf;
		req->payload_size = len;
	}
	req->cb_fn = cb_fn;
	req->cb_arg = cb_arg;
	return nvme_qpair_submit_request(qpair, req);
}
