/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * The NVMe driver under test, compiled into the test binary, with the env boundary
 * mocked (DMA memory = heap at iova == va, ticks advanced by hand, PCI absent) and a
 * mock controller behind the register ops: it watches CC.EN and sets CSTS.RDY,
 * consumes SQ entries on doorbell writes and posts CQ entries with phase bits, and
 * serves Identify, queue creation, features, aborts and reads/writes against a RAM
 * disk by walking the PRPs and SGLs the driver built.
 */
#ifndef NVME_MOCK_H
#define NVME_MOCK_H

#include <CUnit/Basic.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "nvme_ctrlr.c"
#include "nvme_ledger.c"
#include "nvme_ns.c"
#include "nvme_pcie.c"
#include "nvme_qpair.c"
#include "nvme_quirks.c"
#include "nvme_status.c"
#include "nvme_transport_id.c"

/* --- env mocks --------------------------------------------------------------------- */

static uint64_t g_ticks = 1;
static bool g_log_quiet = true;

uint64_t
sl_get_ticks(void)
{
	return g_ticks;
}

uint64_t
sl_get_ticks_hz(void)
{
	return 1000000; /* 1 tick = 1 us */
}

void *
sl_dma_zmalloc(size_t size, size_t align, uint64_t *iova)
{
	void *p;

	align = align < 64 ? 64 : align;
	p = aligned_alloc(align, SL_ALIGN_UP(size, align));
	if (p != NULL) {
		memset(p, 0, SL_ALIGN_UP(size, align));
		if (iova != NULL) {
			*iova = (uint64_t)(uintptr_t)p;
		}
	}
	return p;
}

void *
sl_dma_malloc(size_t size, size_t align, uint64_t *iova)
{
	return sl_dma_zmalloc(size, align, iova);
}

void
sl_dma_free(void *buf)
{
	free(buf);
}

/* Shared memory: one region per name, MAP_SHARED so a forked child writes what the
 * parent sees (the robust-lock tests). g_shm_id < 0: processes are private. */
static int g_shm_id = -1;
static struct {
	char name[32];
	void *addr;
	size_t len;
} g_shm[4];

int
sl_env_shm_id(void)
{
	return g_shm_id;
}

void *
sl_shm_lookup(const char *name, size_t *len)
{
	size_t i;

	for (i = 0; i < SL_COUNTOF(g_shm); i++) {
		if (g_shm[i].addr != NULL && strcmp(g_shm[i].name, name) == 0) {
			*len = g_shm[i].len;
			return g_shm[i].addr;
		}
	}
	errno = ENOENT;
	return NULL;
}

void *
sl_shm_reserve(const char *name, size_t len, size_t align)
{
	size_t i;

	for (i = 0; i < SL_COUNTOF(g_shm); i++) {
		if (g_shm[i].addr == NULL) {
			g_shm[i].addr = mmap(NULL, len, PROT_READ | PROT_WRITE,
					     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
			snprintf(g_shm[i].name, sizeof(g_shm[i].name), "%s", name);
			g_shm[i].len = len;
			return g_shm[i].addr;
		}
	}
	errno = ENOMEM;
	return NULL;
}

int
sl_shm_free(const char *name)
{
	size_t i;

	for (i = 0; i < SL_COUNTOF(g_shm); i++) {
		if (g_shm[i].addr != NULL && strcmp(g_shm[i].name, name) == 0) {
			munmap(g_shm[i].addr, g_shm[i].len);
			g_shm[i].addr = NULL;
			return 0;
		}
	}
	return -ENOENT;
}

uint64_t
sl_vtophys(const void *vaddr, uint64_t *size)
{
	return (uint64_t)(uintptr_t)vaddr;
}

void
sl_log_register_flag(struct sl_log_flag *flag)
{
}

void
sl_vlog(enum sl_log_level level, const char *file, int line, const char *func, const char *fmt,
	va_list ap)
{
	if (!g_log_quiet) {
		vfprintf(stderr, fmt, ap);
	}
}

void
sl_log(enum sl_log_level level, const char *file, int line, const char *func, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sl_vlog(level, file, line, func, fmt, ap);
	va_end(ap);
}

int
sl_pci_addr_parse(struct sl_pci_addr *addr, const char *str)
{
	unsigned int d = 0, b, s, f;
	char tail;

	if (sscanf(str, "%x:%x:%x.%x%c", &d, &b, &s, &f, &tail) == 4 ||
	    (d = 0, sscanf(str, "%x:%x.%x%c", &b, &s, &f, &tail) == 3)) {
		if (b > 0xff || s > 0x1f || f > 7) {
			return -EINVAL;
		}
		*addr = (struct sl_pci_addr){.domain = d, .bus = b, .dev = s, .func = f};
		return 0;
	}
	return -EINVAL;
}

int
sl_pci_addr_fmt(char *buf, size_t len, const struct sl_pci_addr *addr)
{
	int n = snprintf(buf, len, "%04x:%02x:%02x.%x", addr->domain, addr->bus, addr->dev,
			 addr->func);

	return (size_t)n < len ? 0 : -ENOSPC;
}

int
sl_pci_enumerate(uint32_t class_id, uint32_t class_mask, sl_pci_enum_cb cb, void *ctx)
{
	return 0;
}

int
sl_pci_get_info(const struct sl_pci_addr *addr, struct sl_pci_info *info)
{
	return -ENOENT;
}

struct sl_pci_device *
sl_pci_device_attach(const struct sl_pci_addr *addr)
{
	errno = ENODEV;
	return NULL;
}

void
sl_pci_device_detach(struct sl_pci_device *dev)
{
}

bool
sl_pci_vfio_available(void)
{
	return true;
}

struct sl_pci_device *
sl_pci_device_attach_borrowed(const struct sl_pci_addr *addr, int pid, int fd)
{
	errno = ENODEV;
	return NULL;
}

int
sl_pci_device_get_fd(const struct sl_pci_device *dev)
{
	return -1;
}

const struct sl_pci_info *
sl_pci_device_get_info(const struct sl_pci_device *dev)
{
	return NULL;
}

void *
sl_pci_device_map_bar(struct sl_pci_device *dev, uint32_t bar, uint64_t *phys, uint64_t *size)
{
	return NULL;
}

int
sl_pci_device_unmap_bar(struct sl_pci_device *dev, uint32_t bar, void *addr)
{
	return 0;
}

int
sl_pci_device_enable_bus_master(struct sl_pci_device *dev)
{
	return 0;
}

/* --- the mock controller ------------------------------------------------------------ */

#define MOCK_MAX_QUEUES 8
#define MOCK_SECTOR     512
#define MOCK_NS_SECTORS 2048
#define MOCK_MAX_WRITES 4096
#define MOCK_MAX_HELD   64

struct mock_queue {
	bool created;
	uint64_t sq;
	uint64_t cq;
	uint16_t size;
	uint16_t sq_head;
	uint16_t cq_tail;
	uint16_t cq_head; /* from the host's doorbell */
	uint8_t phase;
};

struct mock_reg_write {
	uint32_t offset;
	uint32_t value;
};

struct mock_held {
	uint16_t qid;
	struct sl_nvme_cmd cmd;
};

struct mock_ctrlr {
	uint32_t regs[0x1000 / 4];
	int rdy_delay; /* CSTS reads before RDY follows EN */
	int rdy_countdown;
	bool ignore_en;   /* never become ready (timeouts) */
	bool page_split;  /* vtophys: one page at a time */
	bool hold_io;     /* keep I/O commands without completing them */
	bool abort_works; /* Abort completes the held command */
	bool removed;     /* every register reads all ones */
	struct mock_queue q[MOCK_MAX_QUEUES];
	struct mock_reg_write writes[MOCK_MAX_WRITES];
	uint32_t num_writes;
	uint32_t opc_count[2][256]; /* [admin?][opc] */
	uint32_t aers_held;
	uint16_t aer_cid[16];
	struct mock_held held[MOCK_MAX_HELD];
	uint32_t num_held;
	struct sl_nvme_ctrlr_data cdata;
	struct sl_nvme_ns_data nsdata[2];
	uint8_t disk[2][MOCK_NS_SECTORS * MOCK_SECTOR];
	struct sl_nvme_dsm_range last_dsm[4];
	uint32_t last_dsm_n;
	uint32_t last_wz_nlb;
	uint32_t last_psdt;
	uint32_t completions;
	uint32_t *dbbuf_db; /* shadow doorbells, once configured */
	uint32_t *dbbuf_ei;
	uint32_t mmio_doorbells;
};

static void
mock_ctrlr_setup(struct mock_ctrlr *m)
{
	union sl_nvme_cap_register cap = {.raw = 0};
	int i;

	memset(m, 0, sizeof(*m));
	cap.bits.mqes = 2047;
	cap.bits.cqr = 1;
	cap.bits.to = 20;
	cap.bits.css = SL_NVME_CAP_CSS_NVM;
	cap.bits.mpsmax = 4;
	m->regs[SL_NVME_REG_CAP / 4] = (uint32_t)cap.raw;
	m->regs[SL_NVME_REG_CAP / 4 + 1] = (uint32_t)(cap.raw >> 32);
	m->regs[SL_NVME_REG_VS / 4] = SL_NVME_VERSION(1, 4, 0);
	m->rdy_delay = 2;
	m->cdata.vid = 0x1b36;
	m->cdata.ssvid = 0x1af4;
	memcpy(m->cdata.sn, "MOCK0001            ", 20);
	memcpy(m->cdata.mn, "Sluice Mock Ctrl                        ", 40);
	memcpy(m->cdata.fr, "1.0     ", 8);
	m->cdata.mdts = 7;
	m->cdata.cntlid = 1;
	m->cdata.ver = SL_NVME_VERSION(1, 4, 0);
	m->cdata.oaes = SL_NVME_OAES_NS_ATTR;
	m->cdata.oacs = SL_NVME_OACS_DB_BUF_CONFIG;
	m->cdata.aerl = 3;
	m->cdata.acl = 3;
	m->cdata.sqes = 0x66;
	m->cdata.cqes = 0x44;
	m->cdata.nn = 4; /* namespaces 1 and 3 active */
	m->cdata.oncs = SL_NVME_ONCS_COMPARE | SL_NVME_ONCS_DSM | SL_NVME_ONCS_WRITE_ZEROES;
	m->cdata.sgls = 1;
	for (i = 0; i < 2; i++) {
		m->nsdata[i].nsze = MOCK_NS_SECTORS;
		m->nsdata[i].ncap = MOCK_NS_SECTORS;
		m->nsdata[i].nuse = MOCK_NS_SECTORS;
		m->nsdata[i].nlbaf = 0;
		m->nsdata[i].lbaf[0].lbads = 9;
		m->nsdata[i].nguid[0] = 0xa0 + i;
		m->nsdata[i].nguid[15] = 0x01;
	}
}

static struct mock_ctrlr *
mock_of(struct sl_nvme_ctrlr *ctrlr)
{
	return ctrlr->reg_ctx;
}

/* Move bytes between host memory and a buffer of the mock, as the device would. */
static void
mock_dma(void *host_iova, void *dev, size_t len, bool to_host)
{
	if (to_host) {
		memcpy(host_iova, dev, len);
	} else {
		memcpy(dev, host_iova, len);
	}
}

/* Walk a PRP pair (4.3). \return bytes moved, or -1 on a malformed list. */
static long
mock_prp_xfer(const struct sl_nvme_cmd *cmd, uint8_t *dev, size_t len, bool to_host)
{
	const uint64_t page = 4096;
	uint64_t prp1 = cmd->dptr.prp.prp1;
	size_t first = SL_MIN(len, page - (prp1 & (page - 1)));
	size_t done = 0;
	const uint64_t *list;
	size_t idx = 0;

	CU_ASSERT_EQUAL(prp1 & 3, 0);
	mock_dma((void *)(uintptr_t)prp1, dev, first, to_host);
	done = first;
	if (done == len) {
		return (long)done;
	}
	if (len - done <= page) {
		CU_ASSERT_EQUAL(cmd->dptr.prp.prp2 & (page - 1), 0);
		mock_dma((void *)(uintptr_t)cmd->dptr.prp.prp2, dev + done, len - done, to_host);
		return (long)len;
	}
	list = (const uint64_t *)(uintptr_t)cmd->dptr.prp.prp2;
	while (done < len) {
		size_t n = SL_MIN(page, len - done);

		if ((list[idx] & (page - 1)) != 0) {
			return -1;
		}
		mock_dma((void *)(uintptr_t)list[idx], dev + done, n, to_host);
		done += n;
		idx++;
	}
	return (long)done;
}

/* Walk SGL1 (4.4): a data block, or a last segment of data blocks. */
static long
mock_sgl_xfer(const struct sl_nvme_cmd *cmd, uint8_t *dev, size_t len, bool to_host)
{
	const struct sl_nvme_sgl_desc *d = &cmd->dptr.sgl1;
	const struct sl_nvme_sgl_desc *list = d;
	uint32_t n = 1;
	uint32_t i;
	size_t done = 0;

	if (d->type == SL_NVME_SGL_TYPE_LAST_SEGMENT) {
		CU_ASSERT_EQUAL(d->length % 16, 0);
		list = (const struct sl_nvme_sgl_desc *)(uintptr_t)d->address;
		n = d->length / 16;
	}
	for (i = 0; i < n && done < len; i++) {
		size_t chunk = SL_MIN(list[i].length, len - done);

		if (list[i].type != SL_NVME_SGL_TYPE_DATA_BLOCK) {
			return -1;
		}
		mock_dma((void *)(uintptr_t)list[i].address, dev + done, chunk, to_host);
		done += chunk;
	}
	return (long)done;
}

static long
mock_xfer(struct mock_ctrlr *m, const struct sl_nvme_cmd *cmd, uint8_t *dev, size_t len,
	  bool to_host)
{
	m->last_psdt = cmd->psdt;
	if (cmd->psdt == SL_NVME_PSDT_PRP) {
		return mock_prp_xfer(cmd, dev, len, to_host);
	}
	return mock_sgl_xfer(cmd, dev, len, to_host);
}

static void
mock_post(struct mock_ctrlr *m, uint16_t qid, uint16_t cid, uint32_t cdw0, uint8_t sct, uint8_t sc)
{
	struct mock_queue *q = &m->q[qid];
	struct sl_nvme_cpl *cq = (struct sl_nvme_cpl *)(uintptr_t)q->cq;
	struct sl_nvme_cpl cpl = {
		.cdw0 = cdw0,
		.sqhd = q->sq_head,
		.sqid = qid,
		.cid = cid,
		.status = {.p = q->phase, .sc = sc, .sct = sct},
	};

	if (qid != 0 && m->dbbuf_db != NULL) {
		q->cq_head = (uint16_t)m->dbbuf_db[2 * qid + 1];
	}
	/* The host must have freed the slot: a full CQ would be a driver bug. */
	CU_ASSERT_NOT_EQUAL((uint16_t)((q->cq_tail + 1) % q->size), q->cq_head);
	cq[q->cq_tail] = cpl;
	if (++q->cq_tail == q->size) {
		q->cq_tail = 0;
		q->phase ^= 1;
	}
	m->completions++;
}

static void
mock_identify(struct mock_ctrlr *m, const struct sl_nvme_cmd *cmd, uint8_t *buf)
{
	uint8_t cns = cmd->cdw10 & 0xff;
	uint32_t *list = (uint32_t *)buf;
	static const uint32_t active[] = {1, 3};
	uint32_t i, n = 0;

	memset(buf, 0, 4096);
	switch (cns) {
	case SL_NVME_CNS_CTRLR:
		memcpy(buf, &m->cdata, 4096);
		break;
	case SL_NVME_CNS_NS:
		if (cmd->nsid == 1 || cmd->nsid == 3) {
			memcpy(buf, &m->nsdata[cmd->nsid == 3], 4096);
		}
		break;
	case SL_NVME_CNS_ACTIVE_NS_LIST:
		for (i = 0; i < SL_COUNTOF(active); i++) {
			if (active[i] > cmd->nsid) {
				list[n++] = active[i];
			}
		}
		break;
	case SL_NVME_CNS_NS_ID_DESCRIPTOR_LIST:
		buf[0] = SL_NVME_NIDT_UUID;
		buf[1] = 16;
		buf[4] = 0x55;
		buf[19] = (uint8_t)cmd->nsid;
		buf[20] = SL_NVME_NIDT_CSI;
		buf[21] = 1;
		buf[24] = 0;
		break;
	}
}

static void
mock_admin(struct mock_ctrlr *m, const struct sl_nvme_cmd *cmd)
{
	uint8_t buf[4096];
	uint32_t cdw0 = 0;
	uint8_t sct = 0, sc = 0;
	uint16_t qid = cmd->cdw10 & 0xffff;
	uint32_t i;

	switch (cmd->opc) {
	case SL_NVME_OPC_IDENTIFY:
		mock_identify(m, cmd, buf);
		mock_xfer(m, cmd, buf, 4096, true);
		break;
	case SL_NVME_OPC_SET_FEATURES:
		if ((cmd->cdw10 & 0xff) == SL_NVME_FEAT_NUMBER_OF_QUEUES) {
			cdw0 = ((MOCK_MAX_QUEUES - 2u) << 16) | (MOCK_MAX_QUEUES - 2u);
		}
		break;
	case SL_NVME_OPC_ASYNC_EVENT_REQUEST:
		CU_ASSERT(m->aers_held < 16);
		m->aer_cid[m->aers_held++] = cmd->cid;
		return;
	case SL_NVME_OPC_CREATE_IO_CQ:
		CU_ASSERT(qid > 0 && qid < MOCK_MAX_QUEUES);
		m->q[qid] = (struct mock_queue){.created = true,
						.cq = cmd->dptr.prp.prp1,
						.size = (uint16_t)((cmd->cdw10 >> 16) + 1),
						.phase = 1};
		break;
	case SL_NVME_OPC_CREATE_IO_SQ:
		CU_ASSERT(m->q[qid].created);
		CU_ASSERT_EQUAL(cmd->cdw11 >> 16, qid);
		m->q[qid].sq = cmd->dptr.prp.prp1;
		break;
	case SL_NVME_OPC_DELETE_IO_CQ:
		m->q[qid].created = false;
		break;
	case SL_NVME_OPC_ABORT:
		cdw0 = 1;
		for (i = 0; i < m->num_held && m->abort_works; i++) {
			if (m->held[i].qid == qid && m->held[i].cmd.cid == cmd->cdw10 >> 16) {
				mock_post(m, qid, m->held[i].cmd.cid, 0, SL_NVME_SCT_GENERIC,
					  SL_NVME_SC_ABORTED_BY_REQUEST);
				m->held[i] = m->held[--m->num_held];
				cdw0 = 0;
				break;
			}
		}
		break;
	case SL_NVME_OPC_DOORBELL_BUFFER_CONFIG:
		CU_ASSERT_EQUAL(cmd->dptr.prp.prp1 & 4095, 0);
		CU_ASSERT_EQUAL(cmd->dptr.prp.prp2 & 4095, 0);
		m->dbbuf_db = (uint32_t *)(uintptr_t)cmd->dptr.prp.prp1;
		m->dbbuf_ei = (uint32_t *)(uintptr_t)cmd->dptr.prp.prp2;
		break;
	case SL_NVME_OPC_GET_LOG_PAGE:
		memset(buf, 0, sizeof(buf));
		mock_xfer(m, cmd, buf, ((cmd->cdw10 >> 16) + 1) * 4, true);
		break;
	default:
		break;
	}
	mock_post(m, 0, cmd->cid, cdw0, sct, sc);
}

static void
mock_io(struct mock_ctrlr *m, uint16_t qid, const struct sl_nvme_cmd *cmd)
{
	uint64_t lba = cmd->cdw10 | ((uint64_t)cmd->cdw11 << 32);
	uint32_t nlb = (cmd->cdw12 & 0xffff) + 1;
	uint8_t *disk = m->disk[cmd->nsid == 3];
	uint8_t sc = 0, sct = 0;
	uint8_t tmp[64 * 1024];
	long n = 0;

	if (m->hold_io && m->num_held < MOCK_MAX_HELD) {
		m->held[m->num_held++] = (struct mock_held){.qid = qid, .cmd = *cmd};
		return;
	}
	switch (cmd->opc) {
	case SL_NVME_OPC_READ:
	case SL_NVME_OPC_WRITE:
		if (lba + nlb > MOCK_NS_SECTORS) {
			sc = SL_NVME_SC_LBA_OUT_OF_RANGE;
			break;
		}
		n = mock_xfer(m, cmd, disk + lba * MOCK_SECTOR, nlb * MOCK_SECTOR,
			      cmd->opc == SL_NVME_OPC_READ);
		if (n != (long)nlb * MOCK_SECTOR) {
			sc = SL_NVME_SC_DATA_TRANSFER_ERROR;
		}
		break;
	case SL_NVME_OPC_COMPARE:
		n = mock_xfer(m, cmd, tmp, nlb * MOCK_SECTOR, false);
		if (memcmp(tmp, disk + lba * MOCK_SECTOR, nlb * MOCK_SECTOR) != 0) {
			sct = SL_NVME_SCT_MEDIA_ERROR;
			sc = SL_NVME_SC_COMPARE_FAILURE;
		}
		break;
	case SL_NVME_OPC_WRITE_ZEROES:
		/* A test may grow nsze past the backing disk: zero only what exists. */
		if (lba < MOCK_NS_SECTORS) {
			memset(disk + lba * MOCK_SECTOR, 0,
			       SL_MIN((uint64_t)nlb, MOCK_NS_SECTORS - lba) * MOCK_SECTOR);
		}
		m->last_wz_nlb = nlb;
		break;
	case SL_NVME_OPC_DATASET_MANAGEMENT:
		m->last_dsm_n = (cmd->cdw10 & 0xff) + 1;
		memcpy(m->last_dsm, (void *)(uintptr_t)cmd->dptr.prp.prp1,
		       SL_MIN(m->last_dsm_n, 4u) * sizeof(struct sl_nvme_dsm_range));
		break;
	default:
		break;
	}
	mock_post(m, qid, cmd->cid, 0, sct, sc);
}

static void
mock_sq_doorbell(struct mock_ctrlr *m, uint16_t qid, uint16_t tail)
{
	struct mock_queue *q = &m->q[qid];
	const struct sl_nvme_cmd *sq = (const struct sl_nvme_cmd *)(uintptr_t)q->sq;

	CU_ASSERT(qid == 0 || q->created);
	if (qid != 0 && m->dbbuf_db != NULL) {
		/* Like QEMU: the shadow holds the tail; the register write is a wake-up. */
		CU_ASSERT_EQUAL(m->dbbuf_db[2 * qid], tail);
		tail = (uint16_t)m->dbbuf_db[2 * qid];
	}
	CU_ASSERT(tail < q->size);
	while (q->sq_head != tail) {
		struct sl_nvme_cmd cmd = sq[q->sq_head];

		if (++q->sq_head == q->size) {
			q->sq_head = 0;
		}
		m->opc_count[qid == 0][cmd.opc]++;
		if (qid == 0) {
			mock_admin(m, &cmd);
		} else {
			mock_io(m, qid, &cmd);
		}
	}
	if (qid != 0 && m->dbbuf_ei != NULL) {
		m->dbbuf_ei[2 * qid] = tail;
	}
}

/* Complete the commands held by hold_io, in order. */
__attribute__((unused)) static void
mock_release_held(struct mock_ctrlr *m)
{
	struct mock_held held[MOCK_MAX_HELD];
	uint32_t n = m->num_held;
	uint32_t i;

	memcpy(held, m->held, sizeof(held));
	m->num_held = 0;
	m->hold_io = false;
	for (i = 0; i < n; i++) {
		mock_io(m, held[i].qid, &held[i].cmd);
	}
}

/* Complete one held AER with the given dword 0. */
__attribute__((unused)) static void
mock_fire_aer(struct mock_ctrlr *m, uint32_t cdw0)
{
	CU_ASSERT_FATAL(m->aers_held > 0);
	mock_post(m, 0, m->aer_cid[--m->aers_held], cdw0, 0, 0);
}

static void
mock_enable(struct mock_ctrlr *m)
{
	uint32_t aqa = m->regs[SL_NVME_REG_AQA / 4];
	struct mock_queue *q = &m->q[0];

	memset(m->q, 0, sizeof(m->q));
	q->created = true;
	q->size = (uint16_t)((aqa & 0xfff) + 1);
	q->sq = m->regs[SL_NVME_REG_ASQ / 4] | ((uint64_t)m->regs[SL_NVME_REG_ASQ / 4 + 1] << 32);
	q->cq = m->regs[SL_NVME_REG_ACQ / 4] | ((uint64_t)m->regs[SL_NVME_REG_ACQ / 4 + 1] << 32);
	q->phase = 1;
	m->aers_held = 0;
	m->num_held = 0;
	m->dbbuf_db = NULL;
	m->dbbuf_ei = NULL;
}

static void
mock_write4(struct sl_nvme_ctrlr *ctrlr, uint32_t offset, uint32_t value)
{
	struct mock_ctrlr *m = mock_of(ctrlr);
	union sl_nvme_cc_register cc = {.raw = value};
	uint32_t idx;

	if (m->num_writes < MOCK_MAX_WRITES) {
		m->writes[m->num_writes++] = (struct mock_reg_write){offset, value};
	}
	if (offset >= SL_NVME_REG_DBS) {
		idx = (offset - SL_NVME_REG_DBS) / 4;
		m->mmio_doorbells++;
		if (idx & 1) {
			m->q[idx / 2].cq_head = (uint16_t)value;
		} else {
			mock_sq_doorbell(m, (uint16_t)(idx / 2), (uint16_t)value);
		}
		return;
	}
	if (offset == SL_NVME_REG_CC) {
		union sl_nvme_cc_register old = {.raw = m->regs[SL_NVME_REG_CC / 4]};

		m->regs[offset / 4] = value;
		/* Like QEMU: CC.EN does not take without the entry sizes. */
		if (cc.bits.en && !old.bits.en && cc.bits.iosqes == 6 && cc.bits.iocqes == 4) {
			mock_enable(m);
		}
		if (!cc.bits.en && old.bits.en) {
			/* A controller reset clears a fatal status. */
			m->regs[SL_NVME_REG_CSTS / 4] &= ~2u;
		}
		if (cc.bits.shn != 0) {
			m->regs[SL_NVME_REG_CSTS / 4] |= SL_NVME_SHST_COMPLETE << 2;
		}
		m->rdy_countdown = m->rdy_delay;
		return;
	}
	m->regs[offset / 4] = value;
}

static uint32_t
mock_read4(struct sl_nvme_ctrlr *ctrlr, uint32_t offset)
{
	struct mock_ctrlr *m = mock_of(ctrlr);
	union sl_nvme_cc_register cc = {.raw = m->regs[SL_NVME_REG_CC / 4]};
	uint32_t *csts = &m->regs[SL_NVME_REG_CSTS / 4];
	bool want = cc.bits.en && cc.bits.iosqes == 6 && cc.bits.iocqes == 4 && !m->ignore_en;

	CU_ASSERT_EQUAL(offset & 3, 0);
	if (m->removed) {
		return UINT32_MAX;
	}
	if (offset == SL_NVME_REG_CSTS && (*csts & 1) != want && m->rdy_countdown-- <= 0) {
		*csts = (*csts & ~1u) | want;
	}
	return m->regs[offset / 4];
}

static uint64_t
mock_vtophys(struct sl_nvme_ctrlr *ctrlr, const void *vaddr, uint64_t *size)
{
	struct mock_ctrlr *m = mock_of(ctrlr);
	uint64_t va = (uint64_t)(uintptr_t)vaddr;

	if (size != NULL && m->page_split) {
		*size = SL_MIN(*size, 4096 - (va & 4095));
	}
	return va;
}

static const struct nvme_reg_ops g_mock_reg_ops = {
	.read4 = mock_read4,
	.write4 = mock_write4,
	.vtophys = mock_vtophys,
};

static struct sl_nvme_ctrlr *
mock_ctrlr_construct(struct mock_ctrlr *m, const struct sl_nvme_ctrlr_opts *opts)
{
	struct sl_nvme_transport_id trid;
	struct sl_nvme_ctrlr *ctrlr;

	sl_nvme_transport_id_parse(&trid, "trtype:PCIe traddr:0000:00:04.0");
	ctrlr = nvme_ctrlr_construct(&trid, opts, &g_mock_reg_ops, m);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ctrlr);
	ctrlr->shared->pci_id.vendor_id = 0x1b36;
	ctrlr->shared->pci_id.device_id = 0x0010;
	return ctrlr;
}

/* A controller initialised against the mock. */
static struct sl_nvme_ctrlr *
mock_ctrlr_attach(struct mock_ctrlr *m, const struct sl_nvme_ctrlr_opts *opts)
{
	struct sl_nvme_ctrlr *ctrlr = mock_ctrlr_construct(m, opts);

	CU_ASSERT_EQUAL_FATAL(nvme_ctrlr_init_sync(ctrlr), 0);
	return ctrlr;
}

struct io_status {
	int done;
	int errors;
	struct sl_nvme_cpl last;
};

static void
io_cpl(void *cb_arg, const struct sl_nvme_cpl *cpl)
{
	struct io_status *st = cb_arg;

	st->done++;
	st->errors += sl_nvme_cpl_is_error(cpl);
	st->last = *cpl;
}

/* Run a test suite: CU_basic, summary, exit status. */
struct mock_test {
	const char *name;
	void (*fn)(void);
};

static int
mock_run_suite(const char *name, const struct mock_test *tests, size_t n)
{
	CU_pSuite suite;
	unsigned int failures;
	size_t i;

	g_log_quiet = getenv("SLUICE_UT_VERBOSE") == NULL;
	if (CU_initialize_registry() != CUE_SUCCESS) {
		return 1;
	}
	suite = CU_add_suite(name, NULL, NULL);
	for (i = 0; i < n; i++) {
		CU_add_test(suite, tests[i].name, tests[i].fn);
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}

#endif /* NVME_MOCK_H */
