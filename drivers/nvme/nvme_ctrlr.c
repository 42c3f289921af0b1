/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/* The controller: initialisation as a state machine (base spec 7.6.1), reset,
 * health checks, asynchronous events, the admin command API, queue IDs. */

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/env.h"
#include "nvme_internal.h"

SL_LOG_REGISTER_COMPONENT(nvme)

#define NVME_DEFAULT_ADMIN_TIMEOUT_MS 30000u
#define NVME_DEFAULT_IO_TIMEOUT_US    (30ull * 1000 * 1000)
#define NVME_SHUTDOWN_TIMEOUT_MS      10000u

/* --- Registers ----------------------------------------------------------------------- */

uint32_t
nvme_ctrlr_get_reg4(struct sl_nvme_ctrlr *ctrlr, uint32_t offset)
{
	return ctrlr->reg_ops->read4(ctrlr, offset);
}

void
nvme_ctrlr_set_reg4(struct sl_nvme_ctrlr *ctrlr, uint32_t offset, uint32_t value)
{
	ctrlr->reg_ops->write4(ctrlr, offset, value);
}

/* 64-bit registers as two 32-bit accesses, low half first (QEMU: no 64-bit MMIO). */
uint64_t
nvme_ctrlr_get_reg8(struct sl_nvme_ctrlr *ctrlr, uint32_t offset)
{
	uint64_t lo = ctrlr->reg_ops->read4(ctrlr, offset);
	uint64_t hi = ctrlr->reg_ops->read4(ctrlr, offset + 4);

	return lo | (hi << 32);
}

void
nvme_ctrlr_set_reg8(struct sl_nvme_ctrlr *ctrlr, uint32_t offset, uint64_t value)
{
	ctrlr->reg_ops->write4(ctrlr, offset, (uint32_t)value);
	ctrlr->reg_ops->write4(ctrlr, offset + 4, (uint32_t)(value >> 32));
}

static union sl_nvme_csts_register
nvme_ctrlr_get_csts(struct sl_nvme_ctrlr *ctrlr)
{
	union sl_nvme_csts_register csts = {.raw = nvme_ctrlr_get_reg4(ctrlr, SL_NVME_REG_CSTS)};

	return csts;
}

static union sl_nvme_cc_register
nvme_ctrlr_get_cc(struct sl_nvme_ctrlr *ctrlr)
{
	union sl_nvme_cc_register cc = {.raw = nvme_ctrlr_get_reg4(ctrlr, SL_NVME_REG_CC)};

	return cc;
}

/*
 * The controller lock lives in shared memory and is robust: a process that dies
 * holding it hands the next taker EOWNERDEAD, and the state it protects is repaired
 * (nvme_ledger_recover) before the lock is marked consistent again.
 */
void
nvme_ctrlr_lock(struct sl_nvme_ctrlr *ctrlr)
{
	int rc = pthread_mutex_lock(&ctrlr->shared->lock);

	if (sl_unlikely(rc == EOWNERDEAD)) {
		nvme_ledger_recover(ctrlr);
		pthread_mutex_consistent(&ctrlr->shared->lock);
	} else if (sl_unlikely(rc != 0)) {
		/* ENOTRECOVERABLE: only if a recovery itself died; nothing safe is left. */
		SL_ERRLOG("%s: controller lock: %s\n", ctrlr->shared->trid.traddr, strerror(rc));
		abort();
	}
	if (ctrlr->lock_depth++ == 0) {
		nvme_ledger_sync_in(ctrlr);
	}
}

void
nvme_ctrlr_unlock(struct sl_nvme_ctrlr *ctrlr)
{
	ctrlr->lock_depth--;
	pthread_mutex_unlock(&ctrlr->shared->lock);
}

static void
nvme_ctrlr_set_flag(struct sl_nvme_ctrlr *ctrlr, uint32_t flag)
{
	atomic_fetch_or(&ctrlr->shared->flags, flag);
}

static void
nvme_ctrlr_clear_flag(struct sl_nvme_ctrlr *ctrlr, uint32_t flag)
{
	atomic_fetch_and(&ctrlr->shared->flags, ~flag);
}

/* --- Options, construction ------------------------------------------------------------ */

void
sl_nvme_ctrlr_get_default_opts(struct sl_nvme_ctrlr_opts *opts)
{
	*opts = (struct sl_nvme_ctrlr_opts){
		.num_io_queues = 64,
		.io_queue_size = NVME_DEFAULT_IO_QUEUE_SIZE,
		.io_queue_requests = NVME_DEFAULT_IO_REQUESTS,
		.admin_queue_size = NVME_ADMIN_QUEUE_SIZE,
		.use_sgl = true,
		.delay_sq_doorbell = true,
		.aer_count = NVME_MAX_AERS,
		.admin_timeout_ms = NVME_DEFAULT_ADMIN_TIMEOUT_MS,
		.io_timeout_us = NVME_DEFAULT_IO_TIMEOUT_US,
		.timeout_action = SL_NVME_TIMEOUT_ACTION_ABORT,
		.reset_policy = SL_NVME_RESET_RESUBMIT,
		.health_check_ms = 100,
		.use_shadow_doorbell = true,
	};
}

/*
 * A controller object of this process: its shared state is new (this process is the
 * controller's primary and initialises it from NVME_CTRLR_STATE_INIT) or found (it
 * joins from NVME_CTRLR_STATE_ATTACH_SHARED).
 */
struct sl_nvme_ctrlr *
nvme_ctrlr_construct(const struct sl_nvme_transport_id *trid, const struct sl_nvme_ctrlr_opts *opts,
		     const struct nvme_reg_ops *ops, void *reg_ctx)
{
	struct sl_nvme_ctrlr *ctrlr = calloc(1, sizeof(*ctrlr));
	bool primary = false;
	int rc;

	if (ctrlr == NULL) {
		return NULL;
	}
	TAILQ_INIT(&ctrlr->io_qpairs);
	ctrlr->reg_ops = ops;
	ctrlr->reg_ctx = reg_ctx;
	ctrlr->refs = 1;
	ctrlr->ns_list_buf = sl_dma_zmalloc(NVME_HOST_PAGE_SIZE, NVME_HOST_PAGE_SIZE, NULL);
	ctrlr->id_desc_buf = sl_dma_zmalloc(NVME_HOST_PAGE_SIZE, NVME_HOST_PAGE_SIZE, NULL);
	ctrlr->aer_log_buf = sl_dma_zmalloc(NVME_HOST_PAGE_SIZE, NVME_HOST_PAGE_SIZE, NULL);
	if (ctrlr->ns_list_buf == NULL || ctrlr->id_desc_buf == NULL ||
	    ctrlr->aer_log_buf == NULL) {
		nvme_ctrlr_destruct(ctrlr);
		errno = ENOMEM;
		return NULL;
	}
	rc = nvme_ledger_attach(ctrlr, trid, opts, &primary);
	if (rc != 0) {
		nvme_ctrlr_destruct(ctrlr);
		errno = -rc;
		return NULL;
	}
	ctrlr->dbbuf_db = ctrlr->shared->dbbuf_db;
	ctrlr->dbbuf_ei = ctrlr->shared->dbbuf_ei;
	ctrlr->dbbuf_db_iova = ctrlr->shared->dbbuf_db_iova;
	ctrlr->dbbuf_ei_iova = ctrlr->shared->dbbuf_ei_iova;
	ctrlr->seen_reset_gen = atomic_load(&ctrlr->shared->reset_gen);
	ctrlr->state = primary ? NVME_CTRLR_STATE_INIT : NVME_CTRLR_STATE_ATTACH_SHARED;
	return ctrlr;
}

void
nvme_ctrlr_destruct(struct sl_nvme_ctrlr *ctrlr)
{
	bool others = false;

	if (ctrlr == NULL) {
		return;
	}
	if (ctrlr->shared != NULL) {
		others = nvme_ledger_detach(ctrlr);
		if (!others && ctrlr->state != NVME_CTRLR_STATE_READY &&
		    atomic_load(&ctrlr->shared->init_state) == NVME_SHARED_INITIALISING) {
			atomic_store(&ctrlr->shared->init_state, NVME_SHARED_FAILED);
		}
	}
	nvme_qpair_destruct(ctrlr->adminq);
	nvme_pcie_ctrlr_detach(ctrlr);
	free(ctrlr->ns);
	free(ctrlr->active_ns);
	sl_dma_free(ctrlr->nsdata);
	sl_dma_free(ctrlr->ns_list_buf);
	sl_dma_free(ctrlr->id_desc_buf);
	sl_dma_free(ctrlr->aer_log_buf);
	if (ctrlr->shared != NULL && !others) {
		/* The last process out frees what all shared. */
		nvme_ledger_free_shared(ctrlr);
	}
	free(ctrlr);
}

/* --- The init state machine ------------------------------------------------------------ */

const char *
nvme_ctrlr_state_str(enum nvme_ctrlr_state state)
{
	static const char *const names[] = {
		[NVME_CTRLR_STATE_INIT] = "init",
		[NVME_CTRLR_STATE_ATTACH_SHARED] = "attach to the shared controller",
		[NVME_CTRLR_STATE_DISABLE_WAIT_FOR_READY_1] = "disable and wait for CSTS.RDY = 1",
		[NVME_CTRLR_STATE_DISABLE] = "disable (CC.EN = 0)",
		[NVME_CTRLR_STATE_DISABLE_WAIT_FOR_READY_0] = "wait for CSTS.RDY = 0",
		[NVME_CTRLR_STATE_ENABLE_ADMIN_QUEUE] = "set up the admin queue",
		[NVME_CTRLR_STATE_ENABLE] = "enable (CC.EN = 1)",
		[NVME_CTRLR_STATE_ENABLE_WAIT_FOR_READY_1] = "wait for CSTS.RDY = 1",
		[NVME_CTRLR_STATE_IDENTIFY] = "identify controller",
		[NVME_CTRLR_STATE_WAIT_FOR_IDENTIFY] = "wait for identify controller",
		[NVME_CTRLR_STATE_SET_NUM_QUEUES] = "set number of queues",
		[NVME_CTRLR_STATE_WAIT_FOR_SET_NUM_QUEUES] = "wait for set number of queues",
		[NVME_CTRLR_STATE_DBBUF_CONFIG] = "doorbell buffer config",
		[NVME_CTRLR_STATE_WAIT_FOR_DBBUF_CONFIG] = "wait for doorbell buffer config",
		[NVME_CTRLR_STATE_IDENTIFY_ACTIVE_NS] = "identify active namespaces",
		[NVME_CTRLR_STATE_WAIT_FOR_IDENTIFY_ACTIVE_NS] = "wait for active namespaces",
		[NVME_CTRLR_STATE_IDENTIFY_NS] = "identify namespace",
		[NVME_CTRLR_STATE_WAIT_FOR_IDENTIFY_NS] = "wait for identify namespace",
		[NVME_CTRLR_STATE_IDENTIFY_ID_DESCS] = "identify namespace descriptors",
		[NVME_CTRLR_STATE_WAIT_FOR_IDENTIFY_ID_DESCS] = "wait for namespace descriptors",
		[NVME_CTRLR_STATE_CONFIGURE_AER] = "configure asynchronous events",
		[NVME_CTRLR_STATE_WAIT_FOR_CONFIGURE_AER] = "wait for asynchronous event config",
		[NVME_CTRLR_STATE_SUBMIT_AERS] = "submit asynchronous event requests",
		[NVME_CTRLR_STATE_READY] = "ready",
		[NVME_CTRLR_STATE_ERROR] = "error",
	};

	return (size_t)state < SL_COUNTOF(names) ? names[state] : "unknown";
}

static uint64_t
nvme_ctrlr_ready_timeout_ms(const struct sl_nvme_ctrlr *ctrlr)
{
	/* CAP.TO is in 500 ms units; give at least a second. */
	return SL_MAX(1000ull, 500ull * ctrlr->shared->cap.bits.to);
}

static void
nvme_ctrlr_set_state(struct sl_nvme_ctrlr *ctrlr, enum nvme_ctrlr_state state, uint64_t timeout_ms)
{
	SL_DEBUGLOG(nvme, "%s: %s -> %s\n", ctrlr->shared->trid.traddr,
		    nvme_ctrlr_state_str(ctrlr->state), nvme_ctrlr_state_str(state));
	ctrlr->state = state;
	ctrlr->state_deadline =
		timeout_ms ? sl_get_ticks() + timeout_ms * sl_get_ticks_hz() / 1000 : 0;
}

static int
nvme_ctrlr_init_fail(struct sl_nvme_ctrlr *ctrlr, int rc, const char *why)
{
	SL_ERRLOG("%s: initialisation failed in state '%s': %s\n", ctrlr->shared->trid.traddr,
		  nvme_ctrlr_state_str(ctrlr->state), why);
	ctrlr->state = NVME_CTRLR_STATE_ERROR;
	return rc;
}

static void
nvme_ctrlr_init_cmd_cpl(void *cb_arg, const struct sl_nvme_cpl *cpl)
{
	struct sl_nvme_ctrlr *ctrlr = cb_arg;

	ctrlr->init_cmd_done = true;
	ctrlr->init_cmd_failed = sl_nvme_cpl_is_error(cpl);
	ctrlr->init_cdw0 = cpl->cdw0;
}

static int
nvme_ctrlr_init_submit(struct sl_nvme_ctrlr *ctrlr, const struct sl_nvme_cmd *cmd, void *buf,
		       uint32_t len, enum nvme_ctrlr_state wait_state)
{
	int rc;

	ctrlr->init_cmd_done = false;
	ctrlr->init_cmd_failed = false;
	rc = nvme_ctrlr_submit_admin(ctrlr, cmd, buf, len, nvme_ctrlr_init_cmd_cpl, ctrlr, true);
	if (rc != 0) {
		return nvme_ctrlr_init_fail(ctrlr, rc, "cannot submit an admin command");
	}
	nvme_ctrlr_set_state(ctrlr, wait_state, ctrlr->shared->opts.admin_timeout_ms);
	return 0;
}

static void
nvme_ctrlr_identify_cmd(struct sl_nvme_cmd *cmd, uint8_t cns, uint16_t cntid, uint32_t nsid)
{
	memset(cmd, 0, sizeof(*cmd));
	cmd->opc = SL_NVME_OPC_IDENTIFY;
	cmd->nsid = nsid;
	cmd->cdw10 = cns | ((uint32_t)cntid << 16);
}

static int
nvme_ctrlr_read_cap(struct sl_nvme_ctrlr *ctrlr)
{
	struct nvme_ctrlr_shared *s = ctrlr->shared;
	uint32_t admin_entries;

	s->cap.raw = nvme_ctrlr_get_reg8(ctrlr, SL_NVME_REG_CAP);
	s->vs.raw = nvme_ctrlr_get_reg4(ctrlr, SL_NVME_REG_VS);
	if (s->cap.raw == UINT64_MAX || s->vs.raw == UINT32_MAX) {
		nvme_ctrlr_set_flag(ctrlr, NVME_CTRLR_REMOVED | NVME_CTRLR_FAILED);
		return nvme_ctrlr_init_fail(ctrlr, -ENODEV, "registers read all ones (removed?)");
	}
	s->page_size = SL_MAX(NVME_HOST_PAGE_SIZE, 1u << (12 + s->cap.bits.mpsmin));
	s->quirks = nvme_quirks_get(&s->pci_id);
	if (ctrlr->adminq != NULL) {
		return 0;
	}
	admin_entries = SL_MIN(SL_MAX(s->opts.admin_queue_size, 2u), s->cap.bits.mqes + 1u);
	ctrlr->adminq =
		nvme_qpair_construct(ctrlr, 0, SL_MIN(admin_entries, 4096u), NVME_ADMIN_REQUESTS);
	if (ctrlr->adminq == NULL) {
		return nvme_ctrlr_init_fail(ctrlr, -ENOMEM, "no memory for the admin queue");
	}
	return 0;
}

static int
nvme_ctrlr_state_init(struct sl_nvme_ctrlr *ctrlr)
{
	union sl_nvme_cc_register cc;
	union sl_nvme_csts_register csts;
	int rc;

	rc = nvme_ctrlr_read_cap(ctrlr);
	if (rc != 0) {
		return rc;
	}
	cc = nvme_ctrlr_get_cc(ctrlr);
	csts = nvme_ctrlr_get_csts(ctrlr);
	/* 3.1.5: clearing CC.EN while CSTS.RDY is still 0 after setting it is undefined,
	 * so an enabling controller is first waited for. */
	if (cc.bits.en) {
		nvme_ctrlr_set_state(ctrlr,
				     csts.bits.rdy ? NVME_CTRLR_STATE_DISABLE
						   : NVME_CTRLR_STATE_DISABLE_WAIT_FOR_READY_1,
				     nvme_ctrlr_ready_timeout_ms(ctrlr));
	} else {
		nvme_ctrlr_set_state(ctrlr,
				     csts.bits.rdy ? NVME_CTRLR_STATE_DISABLE_WAIT_FOR_READY_0
						   : NVME_CTRLR_STATE_ENABLE_ADMIN_QUEUE,
				     nvme_ctrlr_ready_timeout_ms(ctrlr));
	}
	return 0;
}

static int
nvme_ctrlr_state_disable(struct sl_nvme_ctrlr *ctrlr)
{
	union sl_nvme_cc_register cc = nvme_ctrlr_get_cc(ctrlr);

	cc.bits.en = 0;
	nvme_ctrlr_set_reg4(ctrlr, SL_NVME_REG_CC, cc.raw);
	if (ctrlr->shared->quirks & NVME_QUIRK_DELAY_BEFORE_CHK_RDY) {
		usleep(2500);
	}
	nvme_ctrlr_set_state(ctrlr, NVME_CTRLR_STATE_DISABLE_WAIT_FOR_READY_0,
			     nvme_ctrlr_ready_timeout_ms(ctrlr));
	return 0;
}

static int
nvme_ctrlr_state_admin_queue(struct sl_nvme_ctrlr *ctrlr)
{
	struct sl_nvme_qpair *adminq = ctrlr->adminq;
	union sl_nvme_aqa_register aqa = {.raw = 0};

	nvme_qpair_reset_queues(adminq);
	aqa.bits.asqs = adminq->num_entries - 1u;
	aqa.bits.acqs = adminq->num_entries - 1u;
	nvme_ctrlr_set_reg4(ctrlr, SL_NVME_REG_AQA, aqa.raw);
	nvme_ctrlr_set_reg8(ctrlr, SL_NVME_REG_ASQ, adminq->sq_iova);
	nvme_ctrlr_set_reg8(ctrlr, SL_NVME_REG_ACQ, adminq->cq_iova);
	nvme_ctrlr_set_state(ctrlr, NVME_CTRLR_STATE_ENABLE, 0);
	return 0;
}

static int
nvme_ctrlr_state_enable(struct sl_nvme_ctrlr *ctrlr)
{
	union sl_nvme_cc_register cc = {.raw = 0};
	uint32_t page_shift = (uint32_t)__builtin_ctz(ctrlr->shared->page_size);

	if (page_shift - 12 > ctrlr->shared->cap.bits.mpsmax) {
		return nvme_ctrlr_init_fail(ctrlr, -ENOTSUP, "no memory page size in common");
	}
	/* 3.1.5 and 7.6.1: NVM command set, round robin, entry sizes 64 and 16 bytes (QEMU
	 * refuses CC.EN without IOSQES/IOCQES). */
	cc.bits.en = 1;
	cc.bits.css = 0;
	cc.bits.mps = page_shift - 12;
	cc.bits.ams = 0;
	cc.bits.shn = SL_NVME_SHN_NONE;
	cc.bits.iosqes = 6;
	cc.bits.iocqes = 4;
	nvme_ctrlr_set_reg4(ctrlr, SL_NVME_REG_CC, cc.raw);
	if (ctrlr->shared->quirks & NVME_QUIRK_DELAY_BEFORE_CHK_RDY) {
		usleep(2500);
	}
	nvme_ctrlr_set_state(ctrlr, NVME_CTRLR_STATE_ENABLE_WAIT_FOR_READY_1,
			     nvme_ctrlr_ready_timeout_ms(ctrlr));
	return 0;
}

static int
nvme_ctrlr_wait_ready(struct sl_nvme_ctrlr *ctrlr, unsigned int want)
{
	union sl_nvme_csts_register csts = nvme_ctrlr_get_csts(ctrlr);

	if (csts.raw == UINT32_MAX) {
		nvme_ctrlr_set_flag(ctrlr, NVME_CTRLR_REMOVED | NVME_CTRLR_FAILED);
		return nvme_ctrlr_init_fail(ctrlr, -ENODEV, "CSTS reads all ones (removed?)");
	}
	if (want == 1 && csts.bits.cfs &&
	    ctrlr->state == NVME_CTRLR_STATE_ENABLE_WAIT_FOR_READY_1) {
		return nvme_ctrlr_init_fail(ctrlr, -EIO, "controller fatal status (CSTS.CFS)");
	}
	if (csts.bits.rdy == want) {
		return 1;
	}
	/* A controller in fatal status may never set RDY: disable it at once. */
	if (ctrlr->state == NVME_CTRLR_STATE_DISABLE_WAIT_FOR_READY_1 && csts.bits.cfs) {
		return 1;
	}
	if (ctrlr->state_deadline != 0 && sl_get_ticks() > ctrlr->state_deadline) {
		return nvme_ctrlr_init_fail(ctrlr, -ETIMEDOUT, "CSTS.RDY did not change in time");
	}
	return 0;
}

static int
nvme_ctrlr_state_identify(struct sl_nvme_ctrlr *ctrlr)
{
	struct sl_nvme_cmd cmd;

	nvme_ctrlr_identify_cmd(&cmd, SL_NVME_CNS_CTRLR, 0, 0);
	return nvme_ctrlr_init_submit(ctrlr, &cmd, ctrlr->id_desc_buf, NVME_HOST_PAGE_SIZE,
				      NVME_CTRLR_STATE_WAIT_FOR_IDENTIFY);
}

static int
nvme_ctrlr_alloc_ns(struct sl_nvme_ctrlr *ctrlr)
{
	uint32_t nn = ctrlr->shared->num_ns;
	uint32_t i;

	if (ctrlr->ns != NULL || nn == 0) {
		return 0;
	}
	ctrlr->ns = calloc(nn, sizeof(*ctrlr->ns));
	ctrlr->active_ns = calloc(nn, sizeof(*ctrlr->active_ns));
	ctrlr->nsdata =
		sl_dma_zmalloc((size_t)nn * sizeof(*ctrlr->nsdata), NVME_HOST_PAGE_SIZE, NULL);
	if (ctrlr->ns == NULL || ctrlr->active_ns == NULL || ctrlr->nsdata == NULL) {
		return -ENOMEM;
	}
	ctrlr->active_ns_cap = nn;
	for (i = 0; i < nn; i++) {
		nvme_ns_construct(&ctrlr->ns[i], ctrlr, i + 1);
	}
	return 0;
}

static int
nvme_ctrlr_identify_done(struct sl_nvme_ctrlr *ctrlr)
{
	struct nvme_ctrlr_shared *s = ctrlr->shared;
	uint64_t max_xfer;
	uint32_t nn;

	memcpy(&s->cdata, ctrlr->id_desc_buf, sizeof(s->cdata));
	/* MDTS is in units of CAP.MPSMIN; the tracker's PRP list bounds it too. */
	max_xfer = (uint64_t)NVME_MAX_PRP_LIST_ENTRIES * s->page_size;
	if (s->cdata.mdts != 0) {
		max_xfer = SL_MIN(max_xfer, (1ull << s->cdata.mdts) << (12 + s->cap.bits.mpsmin));
	}
	s->max_xfer_size = (uint32_t)max_xfer;
	nn = s->cdata.nn;
	if (s->num_ns != 0 && nn > s->num_ns) {
		SL_WARNLOG("%s: NN grew from %u to %u; namespaces above %u are ignored\n",
			   s->trid.traddr, s->num_ns, nn, s->num_ns);
	} else if (s->num_ns == 0) {
		s->num_ns = nn;
	}
	if (nvme_ctrlr_alloc_ns(ctrlr) != 0) {
		return nvme_ctrlr_init_fail(ctrlr, -ENOMEM, "no memory for namespaces");
	}
	nvme_ctrlr_set_state(ctrlr, NVME_CTRLR_STATE_SET_NUM_QUEUES, 0);
	return 0;
}

static int
nvme_ctrlr_state_set_num_queues(struct sl_nvme_ctrlr *ctrlr)
{
	uint32_t n = SL_MIN(SL_MAX(ctrlr->shared->opts.num_io_queues, 1u), NVME_MAX_IO_QUEUES);
	struct sl_nvme_cmd cmd = {
		.opc = SL_NVME_OPC_SET_FEATURES,
		.cdw10 = SL_NVME_FEAT_NUMBER_OF_QUEUES,
		/* 0's based counts of SQs (15:0) and CQs (31:16), 5.21.1.7 */
		.cdw11 = (n - 1) | ((n - 1) << 16),
	};

	return nvme_ctrlr_init_submit(ctrlr, &cmd, NULL, 0,
				      NVME_CTRLR_STATE_WAIT_FOR_SET_NUM_QUEUES);
}

static int
nvme_ctrlr_set_num_queues_done(struct sl_nvme_ctrlr *ctrlr)
{
	struct nvme_ctrlr_shared *s = ctrlr->shared;
	uint32_t want = SL_MIN(SL_MAX(s->opts.num_io_queues, 1u), NVME_MAX_IO_QUEUES);
	uint32_t nsqa = (ctrlr->init_cdw0 & 0xffff) + 1;
	uint32_t ncqa = (ctrlr->init_cdw0 >> 16) + 1;

	if (ctrlr->init_cmd_failed) {
		return nvme_ctrlr_init_fail(ctrlr, -EIO, "Set Features Number of Queues failed");
	}
	s->num_io_queues = SL_MIN(want, SL_MIN(nsqa, ncqa));
	nvme_ctrlr_set_state(ctrlr, NVME_CTRLR_STATE_DBBUF_CONFIG, 0);
	ctrlr->init_ns_list_start = 0;
	ctrlr->num_active_ns = 0;
	return 0;
}

/* Shadow doorbells (Doorbell Buffer Config, 5.7 in 1.4): before any I/O queue exists,
 * since the controller reads queue positions from the pages from then on. */
static int
nvme_ctrlr_state_dbbuf_config(struct sl_nvme_ctrlr *ctrlr)
{
	struct sl_nvme_cmd cmd = {
		.opc = SL_NVME_OPC_DOORBELL_BUFFER_CONFIG,
		.dptr.prp.prp1 = ctrlr->dbbuf_db_iova,
		.dptr.prp.prp2 = ctrlr->dbbuf_ei_iova,
	};

	ctrlr->dbbuf_enabled = false;
	if (!ctrlr->shared->opts.use_shadow_doorbell ||
	    !(ctrlr->shared->cdata.oacs & SL_NVME_OACS_DB_BUF_CONFIG) ||
	    ctrlr->dbbuf_db_iova == SL_IOVA_INVALID || ctrlr->dbbuf_ei_iova == SL_IOVA_INVALID) {
		nvme_ctrlr_set_state(ctrlr, NVME_CTRLR_STATE_IDENTIFY_ACTIVE_NS, 0);
		return 0;
	}
	memset(ctrlr->dbbuf_db, 0, NVME_HOST_PAGE_SIZE);
	memset(ctrlr->dbbuf_ei, 0, NVME_HOST_PAGE_SIZE);
	return nvme_ctrlr_init_submit(ctrlr, &cmd, NULL, 0, NVME_CTRLR_STATE_WAIT_FOR_DBBUF_CONFIG);
}

static int
nvme_ctrlr_dbbuf_config_done(struct sl_nvme_ctrlr *ctrlr)
{
	/* Optional: without it, every doorbell is a register write. */
	ctrlr->dbbuf_enabled = !ctrlr->init_cmd_failed;
	ctrlr->shared->dbbuf_enabled = ctrlr->dbbuf_enabled;
	if (ctrlr->init_cmd_failed) {
		SL_NOTICELOG("%s: Doorbell Buffer Config failed; using doorbell registers\n",
			     ctrlr->shared->trid.traddr);
	}
	nvme_ctrlr_set_state(ctrlr, NVME_CTRLR_STATE_IDENTIFY_ACTIVE_NS, 0);
	return 0;
}

static bool
nvme_ctrlr_has_ns_list(const struct sl_nvme_ctrlr *ctrlr)
{
	return ctrlr->shared->vs.raw >= SL_NVME_VERSION(1, 1, 0) &&
	       !(ctrlr->shared->quirks & NVME_QUIRK_IDENTIFY_CNS);
}

static int
nvme_ctrlr_state_identify_active_ns(struct sl_nvme_ctrlr *ctrlr)
{
	struct nvme_ctrlr_shared *s = ctrlr->shared;
	struct sl_nvme_cmd cmd;
	uint32_t i;

	if (!nvme_ctrlr_has_ns_list(ctrlr)) {
		/* Before 1.1 every namespace up to NN is taken to be active. */
		for (i = 0; i < s->num_ns; i++) {
			ctrlr->active_ns[i] = i + 1;
		}
		ctrlr->num_active_ns = s->num_ns;
		ctrlr->init_ns_idx = 0;
		nvme_ctrlr_set_state(ctrlr, NVME_CTRLR_STATE_IDENTIFY_NS, 0);
		return 0;
	}
	nvme_ctrlr_identify_cmd(&cmd, SL_NVME_CNS_ACTIVE_NS_LIST, 0, ctrlr->init_ns_list_start);
	return nvme_ctrlr_init_submit(ctrlr, &cmd, ctrlr->ns_list_buf, NVME_HOST_PAGE_SIZE,
				      NVME_CTRLR_STATE_WAIT_FOR_IDENTIFY_ACTIVE_NS);
}

static int
nvme_ctrlr_identify_active_ns_done(struct sl_nvme_ctrlr *ctrlr)
{
	struct nvme_ctrlr_shared *s = ctrlr->shared;
	uint32_t i;
	uint32_t nsid = 0;

	if (ctrlr->init_cmd_failed) {
		return nvme_ctrlr_init_fail(ctrlr, -EIO, "Identify active namespace list failed");
	}
	for (i = 0; i < SL_NVME_NS_LIST_ENTRIES; i++) {
		nsid = ctrlr->ns_list_buf[i];
		if (nsid == 0) {
			break;
		}
		if (nsid > s->num_ns || ctrlr->num_active_ns >= ctrlr->active_ns_cap) {
			SL_WARNLOG("%s: active namespace %u is above NN %u\n", s->trid.traddr, nsid,
				   s->num_ns);
			continue;
		}
		ctrlr->active_ns[ctrlr->num_active_ns++] = nsid;
	}
	/* A full page: the list goes on after its last ID (5.15.2, CNS 02h). */
	if (i == SL_NVME_NS_LIST_ENTRIES && nsid < s->num_ns) {
		ctrlr->init_ns_list_start = nsid;
		nvme_ctrlr_set_state(ctrlr, NVME_CTRLR_STATE_IDENTIFY_ACTIVE_NS, 0);
		return 0;
	}
	ctrlr->init_ns_idx = 0;
	nvme_ctrlr_set_state(ctrlr, NVME_CTRLR_STATE_IDENTIFY_NS, 0);
	return 0;
}

static void
nvme_ctrlr_mark_active_ns(struct sl_nvme_ctrlr *ctrlr)
{
	uint32_t i;

	for (i = 0; i < ctrlr->shared->num_ns; i++) {
		ctrlr->ns[i].active = false;
	}
	for (i = 0; i < ctrlr->num_active_ns; i++) {
		ctrlr->ns[ctrlr->active_ns[i] - 1].active = true;
	}
}

static int
nvme_ctrlr_state_identify_ns(struct sl_nvme_ctrlr *ctrlr)
{
	struct sl_nvme_cmd cmd;
	uint32_t nsid;

	if (ctrlr->init_ns_idx >= ctrlr->num_active_ns) {
		nvme_ctrlr_mark_active_ns(ctrlr);
		nvme_ctrlr_set_state(ctrlr,
				     ctrlr->aer_log_buf && ctrlr->num_aers == 0
					     ? NVME_CTRLR_STATE_CONFIGURE_AER
					     : NVME_CTRLR_STATE_READY,
				     0);
		return 0;
	}
	nsid = ctrlr->active_ns[ctrlr->init_ns_idx];
	nvme_ctrlr_identify_cmd(&cmd, SL_NVME_CNS_NS, 0, nsid);
	return nvme_ctrlr_init_submit(ctrlr, &cmd, &ctrlr->nsdata[nsid - 1],
				      sizeof(struct sl_nvme_ns_data),
				      NVME_CTRLR_STATE_WAIT_FOR_IDENTIFY_NS);
}

static int
nvme_ctrlr_identify_ns_done(struct sl_nvme_ctrlr *ctrlr)
{
	uint32_t nsid = ctrlr->active_ns[ctrlr->init_ns_idx];

	if (ctrlr->init_cmd_failed) {
		return nvme_ctrlr_init_fail(ctrlr, -EIO, "Identify Namespace failed");
	}
	nvme_ns_update(&ctrlr->ns[nsid - 1]);
	if (ctrlr->shared->vs.raw >= SL_NVME_VERSION(1, 3, 0)) {
		nvme_ctrlr_set_state(ctrlr, NVME_CTRLR_STATE_IDENTIFY_ID_DESCS, 0);
	} else {
		ctrlr->init_ns_idx++;
		nvme_ctrlr_set_state(ctrlr, NVME_CTRLR_STATE_IDENTIFY_NS, 0);
	}
	return 0;
}

static int
nvme_ctrlr_state_identify_id_descs(struct sl_nvme_ctrlr *ctrlr)
{
	struct sl_nvme_cmd cmd;

	memset(ctrlr->id_desc_buf, 0, NVME_HOST_PAGE_SIZE);
	nvme_ctrlr_identify_cmd(&cmd, SL_NVME_CNS_NS_ID_DESCRIPTOR_LIST, 0,
				ctrlr->active_ns[ctrlr->init_ns_idx]);
	return nvme_ctrlr_init_submit(ctrlr, &cmd, ctrlr->id_desc_buf, NVME_HOST_PAGE_SIZE,
				      NVME_CTRLR_STATE_WAIT_FOR_IDENTIFY_ID_DESCS);
}

static int
nvme_ctrlr_identify_id_descs_done(struct sl_nvme_ctrlr *ctrlr)
{
	uint32_t nsid = ctrlr->active_ns[ctrlr->init_ns_idx];

	/* Optional before 1.3 and sometimes missing after: not fatal. */
	if (!ctrlr->init_cmd_failed) {
		nvme_ns_parse_id_descs(&ctrlr->ns[nsid - 1], ctrlr->id_desc_buf,
				       NVME_HOST_PAGE_SIZE);
	}
	ctrlr->init_ns_idx++;
	nvme_ctrlr_set_state(ctrlr, NVME_CTRLR_STATE_IDENTIFY_NS, 0);
	return 0;
}

static bool
nvme_ctrlr_is_primary(const struct sl_nvme_ctrlr *ctrlr)
{
	return ctrlr->shared->slots[ctrlr->slot].primary;
}

/* The controller is usable: tell the processes waiting to join it. */
static int
nvme_ctrlr_init_ready(struct sl_nvme_ctrlr *ctrlr)
{
	nvme_ctrlr_set_state(ctrlr, NVME_CTRLR_STATE_READY, 0);
	ctrlr->was_primary = nvme_ctrlr_is_primary(ctrlr);
	if (nvme_ctrlr_is_primary(ctrlr)) {
		atomic_store(&ctrlr->shared->init_state, NVME_SHARED_READY);
	}
	return 0;
}

/*
 * Whether the controller is as the shared state says (a joiner adopts it only then):
 * enabled and ready, no fatal status, and its admin queue registers pointing at the
 * shared admin queue. \return NULL, or what is wrong.
 */
static const char *
nvme_ctrlr_adopt_check(struct sl_nvme_ctrlr *ctrlr, char *buf, size_t len)
{
	const struct nvme_admin_shared *a = &ctrlr->shared->admin;
	union sl_nvme_csts_register csts = nvme_ctrlr_get_csts(ctrlr);
	union sl_nvme_cc_register cc = nvme_ctrlr_get_cc(ctrlr);
	union sl_nvme_aqa_register aqa = {.raw = nvme_ctrlr_get_reg4(ctrlr, SL_NVME_REG_AQA)};
	uint64_t asq = nvme_ctrlr_get_reg8(ctrlr, SL_NVME_REG_ASQ);
	uint64_t acq = nvme_ctrlr_get_reg8(ctrlr, SL_NVME_REG_ACQ);

	if (csts.raw == UINT32_MAX) {
		snprintf(buf, len, "its registers read all ones");
	} else if (atomic_load(&ctrlr->shared->init_state) != NVME_SHARED_READY) {
		snprintf(buf, len, "its initialisation never finished");
	} else if (!cc.bits.en || !csts.bits.rdy) {
		snprintf(buf, len, "it is not enabled (CC.EN %u, CSTS.RDY %u)", cc.bits.en,
			 csts.bits.rdy);
	} else if (csts.bits.cfs) {
		snprintf(buf, len, "it reports a fatal status (CSTS.CFS)");
	} else if (a->sq == NULL || asq != a->sq_iova || acq != a->cq_iova ||
		   aqa.bits.asqs + 1u != a->num_entries) {
		snprintf(buf, len,
			 "its admin queue (ASQ 0x%llx ACQ 0x%llx, %u entries) is not the shared "
			 "one (0x%llx, 0x%llx, %u)",
			 (unsigned long long)asq, (unsigned long long)acq, aqa.bits.asqs + 1u,
			 (unsigned long long)a->sq_iova, (unsigned long long)a->cq_iova,
			 a->num_entries);
	} else {
		return NULL;
	}
	return buf;
}

/* A process joining a controller that another initialised: the admin queue, the
 * namespaces (into its own memory) and the shadow doorbells are all it needs. */
static int
nvme_ctrlr_state_attach_shared(struct sl_nvme_ctrlr *ctrlr)
{
	struct nvme_ctrlr_shared *s = ctrlr->shared;
	const char *why;
	char buf[160];
	int rc;

	why = nvme_ctrlr_adopt_check(ctrlr, buf, sizeof(buf));
	if (why != NULL) {
		nvme_ctrlr_lock(ctrlr);
		if (nvme_ledger_others_alive(ctrlr)) {
			nvme_ctrlr_unlock(ctrlr);
			SL_ERRLOG("%s: cannot join the controller: %s; it will be reset by the "
				  "first process to connect after every other has detached (see "
				  "the ledger)\n",
				  s->trid.traddr, why);
			return nvme_ctrlr_init_fail(ctrlr, -EBUSY, "inconsistent shared state");
		}
		SL_WARNLOG("%s: the shared state cannot be adopted: %s; no other process holds "
			   "the controller: resetting it\n",
			   s->trid.traddr, why);
		s->slots[ctrlr->slot].primary = true;
		atomic_store(&s->init_state, NVME_SHARED_INITIALISING);
		nvme_ctrlr_unlock(ctrlr);
		nvme_ctrlr_set_state(ctrlr, NVME_CTRLR_STATE_INIT, 0);
		return 0;
	}
	if (ctrlr->adminq == NULL) {
		ctrlr->adminq =
			nvme_qpair_construct(ctrlr, 0, s->admin.num_entries, NVME_ADMIN_REQUESTS);
		if (ctrlr->adminq == NULL) {
			return nvme_ctrlr_init_fail(ctrlr, -ENOMEM,
						    "no memory for the admin queue");
		}
	}
	atomic_store(&ctrlr->adminq->state, NVME_QPAIR_ENABLED);
	rc = nvme_ctrlr_alloc_ns(ctrlr);
	if (rc != 0) {
		return nvme_ctrlr_init_fail(ctrlr, rc, "no memory for namespaces");
	}
	ctrlr->dbbuf_enabled = s->dbbuf_enabled;
	ctrlr->init_ns_list_start = 0;
	nvme_ctrlr_set_state(ctrlr, NVME_CTRLR_STATE_IDENTIFY_ACTIVE_NS, 0);
	return 0;
}

static int
nvme_ctrlr_state_configure_aer(struct sl_nvme_ctrlr *ctrlr)
{
	uint32_t oaes = ctrlr->shared->cdata.oaes;
	struct sl_nvme_cmd cmd = {
		.opc = SL_NVME_OPC_SET_FEATURES,
		.cdw10 = SL_NVME_FEAT_ASYNC_EVENT_CONFIGURATION,
		.cdw11 = SL_NVME_AER_CFG_SMART_MASK,
	};

	/* Asynchronous events are the primary's to take. */
	if (!nvme_ctrlr_is_primary(ctrlr)) {
		return nvme_ctrlr_init_ready(ctrlr);
	}
	if (oaes & SL_NVME_OAES_NS_ATTR) {
		cmd.cdw11 |= SL_NVME_AER_CFG_NS_ATTR;
	}
	if (oaes & SL_NVME_OAES_FW_ACTIVATION) {
		cmd.cdw11 |= SL_NVME_AER_CFG_FW_ACTIVATION;
	}
	return nvme_ctrlr_init_submit(ctrlr, &cmd, NULL, 0,
				      NVME_CTRLR_STATE_WAIT_FOR_CONFIGURE_AER);
}

static int nvme_ctrlr_submit_aer(struct sl_nvme_ctrlr *ctrlr);

/* Up to the asynchronous event requests the options and the controller allow. */
static void
nvme_ctrlr_submit_aers(struct sl_nvme_ctrlr *ctrlr)
{
	uint32_t n = SL_MIN(ctrlr->shared->opts.aer_count, ctrlr->shared->cdata.aerl + 1u);

	n = SL_MIN(n, NVME_MAX_AERS);
	while (ctrlr->num_aers < n) {
		if (nvme_ctrlr_submit_aer(ctrlr) != 0) {
			break;
		}
	}
}

static int
nvme_ctrlr_state_submit_aers(struct sl_nvme_ctrlr *ctrlr)
{
	nvme_ctrlr_submit_aers(ctrlr);
	return nvme_ctrlr_init_ready(ctrlr);
}

/* A WAIT_FOR_* state: poll the admin queue; run the step's handler once done. */
static int
nvme_ctrlr_state_wait_cmd(struct sl_nvme_ctrlr *ctrlr, int (*done)(struct sl_nvme_ctrlr *))
{
	nvme_qpair_process_completions(ctrlr->adminq, 0);
	if (ctrlr->init_cmd_done) {
		return done(ctrlr);
	}
	if (ctrlr->state_deadline != 0 && sl_get_ticks() > ctrlr->state_deadline) {
		return nvme_ctrlr_init_fail(ctrlr, -ETIMEDOUT, "admin command timed out");
	}
	return 0;
}

static int
nvme_ctrlr_configure_aer_done(struct sl_nvme_ctrlr *ctrlr)
{
	if (ctrlr->init_cmd_failed) {
		SL_WARNLOG("%s: Set Features Asynchronous Event Configuration failed\n",
			   ctrlr->shared->trid.traddr);
	}
	nvme_ctrlr_set_state(ctrlr, NVME_CTRLR_STATE_SUBMIT_AERS, 0);
	return 0;
}

static int
nvme_ctrlr_state_wait_ready(struct sl_nvme_ctrlr *ctrlr, unsigned int want,
			    enum nvme_ctrlr_state next, uint64_t timeout_ms)
{
	int rc = nvme_ctrlr_wait_ready(ctrlr, want);

	if (rc <= 0) {
		return rc;
	}
	if (next == NVME_CTRLR_STATE_IDENTIFY) {
		atomic_store(&ctrlr->adminq->state, NVME_QPAIR_ENABLED);
	}
	nvme_ctrlr_set_state(ctrlr, next, timeout_ms);
	return 0;
}

int
nvme_ctrlr_process_init(struct sl_nvme_ctrlr *ctrlr)
{
	switch (ctrlr->state) {
	case NVME_CTRLR_STATE_INIT:
		return nvme_ctrlr_state_init(ctrlr);
	case NVME_CTRLR_STATE_ATTACH_SHARED:
		return nvme_ctrlr_state_attach_shared(ctrlr);
	case NVME_CTRLR_STATE_DISABLE_WAIT_FOR_READY_1:
		return nvme_ctrlr_state_wait_ready(ctrlr, 1, NVME_CTRLR_STATE_DISABLE, 0);
	case NVME_CTRLR_STATE_DISABLE:
		return nvme_ctrlr_state_disable(ctrlr);
	case NVME_CTRLR_STATE_DISABLE_WAIT_FOR_READY_0:
		return nvme_ctrlr_state_wait_ready(ctrlr, 0, NVME_CTRLR_STATE_ENABLE_ADMIN_QUEUE,
						   0);
	case NVME_CTRLR_STATE_ENABLE_ADMIN_QUEUE:
		return nvme_ctrlr_state_admin_queue(ctrlr);
	case NVME_CTRLR_STATE_ENABLE:
		return nvme_ctrlr_state_enable(ctrlr);
	case NVME_CTRLR_STATE_ENABLE_WAIT_FOR_READY_1:
		return nvme_ctrlr_state_wait_ready(ctrlr, 1, NVME_CTRLR_STATE_IDENTIFY, 0);
	case NVME_CTRLR_STATE_IDENTIFY:
		return nvme_ctrlr_state_identify(ctrlr);
	case NVME_CTRLR_STATE_WAIT_FOR_IDENTIFY:
		return nvme_ctrlr_state_wait_cmd(ctrlr, nvme_ctrlr_identify_done);
	case NVME_CTRLR_STATE_SET_NUM_QUEUES:
		return nvme_ctrlr_state_set_num_queues(ctrlr);
	case NVME_CTRLR_STATE_WAIT_FOR_SET_NUM_QUEUES:
		return nvme_ctrlr_state_wait_cmd(ctrlr, nvme_ctrlr_set_num_queues_done);
	case NVME_CTRLR_STATE_DBBUF_CONFIG:
		return nvme_ctrlr_state_dbbuf_config(ctrlr);
	case NVME_CTRLR_STATE_WAIT_FOR_DBBUF_CONFIG:
		return nvme_ctrlr_state_wait_cmd(ctrlr, nvme_ctrlr_dbbuf_config_done);
	case NVME_CTRLR_STATE_IDENTIFY_ACTIVE_NS:
		return nvme_ctrlr_state_identify_active_ns(ctrlr);
	case NVME_CTRLR_STATE_WAIT_FOR_IDENTIFY_ACTIVE_NS:
		return nvme_ctrlr_state_wait_cmd(ctrlr, nvme_ctrlr_identify_active_ns_done);
	case NVME_CTRLR_STATE_IDENTIFY_NS:
		return nvme_ctrlr_state_identify_ns(ctrlr);
	case NVME_CTRLR_STATE_WAIT_FOR_IDENTIFY_NS:
		return nvme_ctrlr_state_wait_cmd(ctrlr, nvme_ctrlr_identify_ns_done);
	case NVME_CTRLR_STATE_IDENTIFY_ID_DESCS:
		return nvme_ctrlr_state_identify_id_descs(ctrlr);
	case NVME_CTRLR_STATE_WAIT_FOR_IDENTIFY_ID_DESCS:
		return nvme_ctrlr_state_wait_cmd(ctrlr, nvme_ctrlr_identify_id_descs_done);
	case NVME_CTRLR_STATE_CONFIGURE_AER:
		return nvme_ctrlr_state_configure_aer(ctrlr);
	case NVME_CTRLR_STATE_WAIT_FOR_CONFIGURE_AER:
		return nvme_ctrlr_state_wait_cmd(ctrlr, nvme_ctrlr_configure_aer_done);
	case NVME_CTRLR_STATE_SUBMIT_AERS:
		return nvme_ctrlr_state_submit_aers(ctrlr);
	case NVME_CTRLR_STATE_READY:
		return 0;
	case NVME_CTRLR_STATE_ERROR:
	default:
		return -EIO;
	}
}

int
nvme_ctrlr_init_sync(struct sl_nvme_ctrlr *ctrlr)
{
	enum nvme_ctrlr_state prev;
	int rc;

	while (ctrlr->state != NVME_CTRLR_STATE_READY) {
		prev = ctrlr->state;
		rc = nvme_ctrlr_process_init(ctrlr);
		if (rc != 0) {
			return rc;
		}
		if (ctrlr->state == prev) {
			usleep(10);
		}
	}
	return 0;
}

/* --- Admin submission ------------------------------------------------------------------- */

int
nvme_ctrlr_submit_admin(struct sl_nvme_ctrlr *ctrlr, const struct sl_nvme_cmd *cmd, void *buf,
			uint32_t len, sl_nvme_cmd_cb cb_fn, void *cb_arg, bool internal)
{
	struct nvme_request *req;
	int rc;

	nvme_ctrlr_lock(ctrlr);
	if (nvme_ctrlr_flags(ctrlr) & NVME_CTRLR_FAILED || ctrlr->adminq == NULL) {
		nvme_ctrlr_unlock(ctrlr);
		return -ENXIO;
	}
	req = nvme_qpair_alloc_request(ctrlr->adminq);
	if (req == NULL) {
		nvme_ctrlr_unlock(ctrlr);
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
	req->internal = internal;
	rc = nvme_qpair_submit_request(ctrlr->adminq, req);
	nvme_ctrlr_unlock(ctrlr);
	return rc;
}

int
sl_nvme_ctrlr_cmd_admin_raw(struct sl_nvme_ctrlr *ctrlr, const struct sl_nvme_cmd *cmd, void *buf,
			    uint32_t len, sl_nvme_cmd_cb cb_fn, void *cb_arg)
{
	return nvme_ctrlr_submit_admin(ctrlr, cmd, buf, len, cb_fn, cb_arg, false);
}

int
sl_nvme_ctrlr_cmd_identify(struct sl_nvme_ctrlr *ctrlr, uint8_t cns, uint16_t cntid, uint32_t nsid,
			   void *buf, uint32_t len, sl_nvme_cmd_cb cb_fn, void *cb_arg)
{
	struct sl_nvme_cmd cmd;

	nvme_ctrlr_identify_cmd(&cmd, cns, cntid, nsid);
	return sl_nvme_ctrlr_cmd_admin_raw(ctrlr, &cmd, buf, len, cb_fn, cb_arg);
}

int
sl_nvme_ctrlr_cmd_get_log_page(struct sl_nvme_ctrlr *ctrlr, uint8_t lid, uint32_t nsid, void *buf,
			       uint32_t len, uint64_t offset, sl_nvme_cmd_cb cb_fn, void *cb_arg)
{
	uint32_t numd = len / 4 - 1; /* 0's based dwords (5.14) */
	struct sl_nvme_cmd cmd = {
		.opc = SL_NVME_OPC_GET_LOG_PAGE,
		.nsid = nsid,
		.cdw10 = lid | ((numd & 0xffff) << 16),
		.cdw11 = numd >> 16,
		.cdw12 = (uint32_t)offset,
		.cdw13 = (uint32_t)(offset >> 32),
	};

	if (len < 4 || (len & 3) || (offset & 3)) {
		return -EINVAL;
	}
	return sl_nvme_ctrlr_cmd_admin_raw(ctrlr, &cmd, buf, len, cb_fn, cb_arg);
}

int
sl_nvme_ctrlr_cmd_get_feature(struct sl_nvme_ctrlr *ctrlr, uint8_t fid, uint8_t sel, uint32_t cdw11,
			      void *buf, uint32_t len, sl_nvme_cmd_cb cb_fn, void *cb_arg)
{
	struct sl_nvme_cmd cmd = {
		.opc = SL_NVME_OPC_GET_FEATURES,
		.cdw10 = fid | ((uint32_t)(sel & 0x7) << 8),
		.cdw11 = cdw11,
	};

	return sl_nvme_ctrlr_cmd_admin_raw(ctrlr, &cmd, buf, len, cb_fn, cb_arg);
}

int
sl_nvme_ctrlr_cmd_set_feature(struct sl_nvme_ctrlr *ctrlr, uint8_t fid, uint32_t cdw11,
			      uint32_t cdw12, void *buf, uint32_t len, sl_nvme_cmd_cb cb_fn,
			      void *cb_arg)
{
	struct sl_nvme_cmd cmd = {
		.opc = SL_NVME_OPC_SET_FEATURES,
		.cdw10 = fid,
		.cdw11 = cdw11,
		.cdw12 = cdw12,
	};

	return sl_nvme_ctrlr_cmd_admin_raw(ctrlr, &cmd, buf, len, cb_fn, cb_arg);
}

int
sl_nvme_ctrlr_cmd_abort(struct sl_nvme_ctrlr *ctrlr, struct sl_nvme_qpair *qpair, uint16_t cid,
			sl_nvme_cmd_cb cb_fn, void *cb_arg)
{
	struct sl_nvme_cmd cmd = {
		.opc = SL_NVME_OPC_ABORT,
		.cdw10 = (qpair ? qpair->id : 0u) | ((uint32_t)cid << 16),
	};

	return nvme_ctrlr_submit_admin(ctrlr, &cmd, NULL, 0, cb_fn, cb_arg, true);
}

struct nvme_sync_status {
	bool done;
	struct sl_nvme_cpl cpl;
};

static void
nvme_sync_cpl(void *cb_arg, const struct sl_nvme_cpl *cpl)
{
	struct nvme_sync_status *st = cb_arg;

	st->cpl = *cpl;
	st->done = true;
}

int
sl_nvme_ctrlr_cmd_admin_sync(struct sl_nvme_ctrlr *ctrlr, const struct sl_nvme_cmd *cmd, void *buf,
			     uint32_t len, struct sl_nvme_cpl *cpl)
{
	struct nvme_sync_status st = {.done = false};
	uint32_t timeout_ms = ctrlr->shared->opts.admin_timeout_ms;
	uint64_t deadline;
	bool timed_out = false;
	int rc;

	nvme_ctrlr_lock(ctrlr);
	rc = nvme_ctrlr_submit_admin(ctrlr, cmd, buf, len, nvme_sync_cpl, &st, false);
	if (rc != 0) {
		nvme_ctrlr_unlock(ctrlr);
		return rc;
	}
	deadline = sl_get_ticks() +
		   (uint64_t)(timeout_ms ? timeout_ms : NVME_DEFAULT_ADMIN_TIMEOUT_MS) *
			   sl_get_ticks_hz() / 1000;
	while (!st.done) {
		if (nvme_qpair_process_completions(ctrlr->adminq, 0) < 0) {
			break;
		}
		if (!st.done && !timed_out && sl_get_ticks() > deadline) {
			/* The request points at this frame: a reset completes it before we go. */
			timed_out = true;
			SL_ERRLOG("%s: %s timed out; resetting the controller\n",
				  ctrlr->shared->trid.traddr, sl_nvme_opcode_str(true, cmd->opc));
			sl_nvme_ctrlr_reset(ctrlr);
		}
	}
	nvme_ctrlr_unlock(ctrlr);
	if (cpl != NULL) {
		*cpl = st.cpl;
	}
	if (!st.done) {
		return -ENXIO;
	}
	if (timed_out) {
		return -ETIMEDOUT;
	}
	return sl_nvme_cpl_is_error(&st.cpl) ? -EIO : 0;
}

/* --- I/O queue creation -------------------------------------------------------------------- */

int
nvme_ctrlr_delete_queue(struct sl_nvme_ctrlr *ctrlr, uint8_t opc, uint16_t qid, bool missing_ok)
{
	struct sl_nvme_cmd cmd = {.opc = opc, .cdw10 = qid};
	struct sl_nvme_cpl cpl;
	int rc;

	rc = sl_nvme_ctrlr_cmd_admin_sync(ctrlr, &cmd, NULL, 0, &cpl);
	/* Never created, or gone with a reset (QEMU answers Delete CQ of a missing queue
	 * with Completion Queue Invalid). */
	if (missing_ok && rc == -EIO && cpl.status.sct == SL_NVME_SCT_COMMAND_SPECIFIC &&
	    (cpl.status.sc == SL_NVME_SC_INVALID_QUEUE_IDENTIFIER ||
	     (opc == SL_NVME_OPC_DELETE_IO_CQ &&
	      cpl.status.sc == SL_NVME_SC_COMPLETION_QUEUE_INVALID))) {
		return 0;
	}
	return rc;
}

int
nvme_ctrlr_create_io_queues(struct sl_nvme_ctrlr *ctrlr, struct sl_nvme_qpair *qpair)
{
	uint32_t qsize = qpair->num_entries - 1u;
	struct sl_nvme_cmd cq = {
		.opc = SL_NVME_OPC_CREATE_IO_CQ,
		.dptr.prp.prp1 = qpair->cq_iova,
		.cdw10 = qpair->id | (qsize << 16),
		.cdw11 = 1, /* physically contiguous, interrupts disabled (5.3) */
	};
	struct sl_nvme_cmd sq = {
		.opc = SL_NVME_OPC_CREATE_IO_SQ,
		.dptr.prp.prp1 = qpair->sq_iova,
		.cdw10 = qpair->id | (qsize << 16),
		.cdw11 = 1 | ((uint32_t)qpair->id << 16), /* contiguous, CQID (5.4) */
	};
	uint64_t gen;
	int rc;

	/* The shadow doorbells of a queue ID that another queue used before (a reaped
	 * process's, say) still hold its positions: a controller reading them would take
	 * the stale tail for new entries, and a stale event index suppresses our MMIO
	 * wake-ups. Start them at zero like the queue. */
	if (qpair->sq_shadow != NULL) {
		*qpair->sq_shadow = 0;
		*qpair->sq_eventidx = 0;
		*qpair->cq_shadow = 0;
		*qpair->cq_eventidx = 0;
		atomic_thread_fence(memory_order_seq_cst);
	}
	nvme_ctrlr_lock(ctrlr);
	gen = atomic_load(&ctrlr->shared->reset_gen);
	rc = sl_nvme_ctrlr_cmd_admin_sync(ctrlr, &cq, NULL, 0, NULL);
	if (rc == 0) {
		rc = sl_nvme_ctrlr_cmd_admin_sync(ctrlr, &sq, NULL, 0, NULL);
		if (rc != 0) {
			nvme_ctrlr_delete_queue(ctrlr, SL_NVME_OPC_DELETE_IO_CQ, qpair->id, false);
		}
	}
	/* A reset in between (by a timeout in the sync wait) leaves the qpair disconnected
	 * for its owner to try again. */
	if (rc == 0 && gen == atomic_load(&ctrlr->shared->reset_gen)) {
		qpair->reset_gen = gen;
		atomic_store(&qpair->state, NVME_QPAIR_ENABLED);
	} else if (rc != 0) {
		SL_ERRLOG("%s: cannot create I/O queue %u: %s\n", ctrlr->shared->trid.traddr,
			  qpair->id, strerror(-rc));
	}
	nvme_ctrlr_unlock(ctrlr);
	return rc;
}

void
sl_nvme_ctrlr_get_default_io_qpair_opts(const struct sl_nvme_ctrlr *ctrlr,
					struct sl_nvme_io_qpair_opts *opts)
{
	opts->io_queue_size = ctrlr->shared->opts.io_queue_size;
	opts->io_queue_requests = ctrlr->shared->opts.io_queue_requests;
	opts->delay_sq_doorbell = ctrlr->shared->opts.delay_sq_doorbell;
}

struct sl_nvme_qpair *
sl_nvme_ctrlr_alloc_io_qpair(struct sl_nvme_ctrlr *ctrlr, const struct sl_nvme_io_qpair_opts *opts)
{
	struct sl_nvme_io_qpair_opts o;
	struct sl_nvme_qpair *qpair;
	uint32_t entries;
	int qid;
	int rc;

	sl_nvme_ctrlr_get_default_io_qpair_opts(ctrlr, &o);
	if (opts != NULL) {
		o.io_queue_size = opts->io_queue_size ? opts->io_queue_size : o.io_queue_size;
		o.io_queue_requests =
			opts->io_queue_requests ? opts->io_queue_requests : o.io_queue_requests;
		o.delay_sq_doorbell = opts->delay_sq_doorbell;
	}
	entries = SL_MIN(SL_MAX(o.io_queue_size, 2u), ctrlr->shared->cap.bits.mqes + 1u);
	entries = SL_MIN(entries, 4096u);
	nvme_ctrlr_lock(ctrlr);
	if (nvme_ctrlr_flags(ctrlr) & NVME_CTRLR_FAILED) {
		nvme_ctrlr_unlock(ctrlr);
		errno = ENXIO;
		return NULL;
	}
	qid = nvme_ctrlr_alloc_qid(ctrlr);
	if (qid < 0) {
		nvme_ctrlr_unlock(ctrlr);
		SL_ERRLOG("%s: all %u I/O queues are in use\n", ctrlr->shared->trid.traddr,
			  ctrlr->shared->num_io_queues);
		errno = EBUSY;
		return NULL;
	}
	qpair = nvme_qpair_construct(ctrlr, (uint16_t)qid, entries,
				     SL_MAX(o.io_queue_requests, entries - 1u));
	if (qpair == NULL) {
		nvme_ctrlr_free_qid(ctrlr, (uint16_t)qid);
		nvme_ctrlr_unlock(ctrlr);
		errno = ENOMEM;
		return NULL;
	}
	qpair->delay_sq_doorbell = o.delay_sq_doorbell;
	/* Should this process die, a reaper deletes the queues and frees this memory. */
	nvme_ledger_qid_set_memory(ctrlr, (uint16_t)qid, qpair->sq, qpair->cq, qpair->tr);
	TAILQ_INSERT_TAIL(&ctrlr->io_qpairs, qpair, link);
	rc = nvme_ctrlr_create_io_queues(ctrlr, qpair);
	if (rc != 0) {
		TAILQ_REMOVE(&ctrlr->io_qpairs, qpair, link);
		nvme_ctrlr_free_qid(ctrlr, (uint16_t)qid);
		nvme_qpair_destruct(qpair);
		nvme_ctrlr_unlock(ctrlr);
		errno = -rc == ENXIO ? ENXIO : EIO;
		return NULL;
	}
	nvme_ctrlr_unlock(ctrlr);
	return qpair;
}

int
sl_nvme_ctrlr_free_io_qpair(struct sl_nvme_qpair *qpair)
{
	struct sl_nvme_ctrlr *ctrlr;
	int rc = 0;

	if (qpair == NULL) {
		return 0;
	}
	ctrlr = qpair->ctrlr;
	nvme_ctrlr_lock(ctrlr);
	/* 5.6, 5.7: the SQ first; once Delete CQ completes, the controller writes no more
	 * completions into our memory, and what was outstanding can be failed here. */
	if (atomic_load(&qpair->state) == NVME_QPAIR_ENABLED &&
	    !(nvme_ctrlr_flags(ctrlr) & NVME_CTRLR_FAILED)) {
		rc = nvme_ctrlr_delete_queue(ctrlr, SL_NVME_OPC_DELETE_IO_SQ, qpair->id, false);
		if (rc == 0) {
			rc = nvme_ctrlr_delete_queue(ctrlr, SL_NVME_OPC_DELETE_IO_CQ, qpair->id,
						     false);
		}
	}
	TAILQ_REMOVE(&ctrlr->io_qpairs, qpair, link);
	nvme_ctrlr_free_qid(ctrlr, qpair->id);
	nvme_ctrlr_unlock(ctrlr);
	nvme_qpair_fail_all(qpair, SL_NVME_SCT_GENERIC, SL_NVME_SC_ABORTED_SQ_DELETION, true,
			    false);
	nvme_qpair_destruct(qpair);
	return rc;
}

/* --- Asynchronous events ----------------------------------------------------------------- */

static void
nvme_ctrlr_aer_log_cpl(void *cb_arg, const struct sl_nvme_cpl *cpl)
{
	/* Reading the log page re-arms the event type (5.2.1); its content went to the user
	 * callback's reader, if any. */
}

static void
nvme_ctrlr_aer_cpl(void *cb_arg, const struct sl_nvme_cpl *cpl)
{
	struct sl_nvme_ctrlr *ctrlr = cb_arg;
	union sl_nvme_async_event_completion event = {.raw = cpl->cdw0};
	uint32_t log_len;

	ctrlr->num_aers--;
	if (sl_nvme_cpl_is_error(cpl)) {
		if (cpl->status.sct == SL_NVME_SCT_COMMAND_SPECIFIC &&
		    cpl->status.sc == SL_NVME_SC_ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED) {
			/* A primary that left (or died) still has its requests on the controller;
			 * events complete those, and are then dropped. */
			if (ctrlr->num_aers == 0) {
				SL_NOTICELOG(
					"%s: the controller still holds the asynchronous event "
					"requests of a previous primary\n",
					ctrlr->shared->trid.traddr);
			}
			return;
		}
		if (cpl->status.sc != SL_NVME_SC_ABORTED_SQ_DELETION) {
			SL_WARNLOG("%s: asynchronous event request failed: %s\n",
				   ctrlr->shared->trid.traddr,
				   sl_nvme_status_str(cpl->status.sct, cpl->status.sc));
		}
		return;
	}
	SL_NOTICELOG("%s: asynchronous event type %u info %u log page %02x\n",
		     ctrlr->shared->trid.traddr, event.bits.async_event_type,
		     event.bits.async_event_info, event.bits.log_page_identifier);
	if (event.bits.async_event_type == SL_NVME_ASYNC_EVENT_TYPE_NOTICE &&
	    event.bits.async_event_info == SL_NVME_ASYNC_EVENT_NS_ATTR_CHANGED) {
		nvme_ctrlr_set_flag(ctrlr, NVME_CTRLR_NS_CHANGED);
	}
	if (ctrlr->aer_cb != NULL) {
		ctrlr->aer_cb(ctrlr->aer_arg, cpl);
	}
	log_len = event.bits.log_page_identifier == SL_NVME_LOG_CHANGED_NS_LIST
			  ? NVME_HOST_PAGE_SIZE
			  : (uint32_t)sizeof(struct sl_nvme_health_information_page);
	sl_nvme_ctrlr_cmd_get_log_page(ctrlr, event.bits.log_page_identifier, UINT32_MAX,
				       ctrlr->aer_log_buf, log_len, 0, nvme_ctrlr_aer_log_cpl,
				       ctrlr);
	nvme_ctrlr_submit_aer(ctrlr);
}

static int
nvme_ctrlr_submit_aer(struct sl_nvme_ctrlr *ctrlr)
{
	struct sl_nvme_cmd cmd = {.opc = SL_NVME_OPC_ASYNC_EVENT_REQUEST};
	int rc;

	rc = nvme_ctrlr_submit_admin(ctrlr, &cmd, NULL, 0, nvme_ctrlr_aer_cpl, ctrlr, true);
	if (rc == 0) {
		ctrlr->num_aers++;
	}
	return rc;
}

void
sl_nvme_ctrlr_register_aer_callback(struct sl_nvme_ctrlr *ctrlr, sl_nvme_aer_cb cb_fn, void *cb_arg)
{
	nvme_ctrlr_lock(ctrlr);
	ctrlr->aer_cb = cb_fn;
	ctrlr->aer_arg = cb_arg;
	nvme_ctrlr_unlock(ctrlr);
}

void
sl_nvme_ctrlr_register_remove_callback(struct sl_nvme_ctrlr *ctrlr, sl_nvme_remove_cb cb_fn,
				       void *cb_arg)
{
	nvme_ctrlr_lock(ctrlr);
	ctrlr->remove_cb = cb_fn;
	ctrlr->remove_arg = cb_arg;
	nvme_ctrlr_unlock(ctrlr);
}

/* Re-read the namespace list and data after a Namespace Attribute Changed event. */
static void
nvme_ctrlr_refresh_ns(struct sl_nvme_ctrlr *ctrlr)
{
	int rc;

	nvme_ctrlr_clear_flag(ctrlr, NVME_CTRLR_NS_CHANGED);
	ctrlr->init_ns_list_start = 0;
	ctrlr->num_active_ns = 0;
	nvme_ctrlr_set_state(ctrlr, NVME_CTRLR_STATE_IDENTIFY_ACTIVE_NS, 0);
	rc = nvme_ctrlr_init_sync(ctrlr);
	if (rc != 0) {
		SL_ERRLOG("%s: cannot refresh the namespaces: %s\n", ctrlr->shared->trid.traddr,
			  strerror(-rc));
		ctrlr->state = NVME_CTRLR_STATE_READY;
	}
}

/* --- Faults: failure, removal, reset ------------------------------------------------------ */

bool
nvme_ctrlr_check_present(struct sl_nvme_ctrlr *ctrlr)
{
	if (nvme_ctrlr_flags(ctrlr) & NVME_CTRLR_REMOVED) {
		return false;
	}
	if (nvme_ctrlr_get_reg4(ctrlr, SL_NVME_REG_CSTS) != UINT32_MAX) {
		return true;
	}
	SL_ERRLOG("%s: registers read all ones: the controller is gone\n",
		  ctrlr->shared->trid.traddr);
	nvme_ctrlr_set_flag(ctrlr, NVME_CTRLR_REMOVED);
	sl_nvme_ctrlr_fail(ctrlr);
	return false;
}

void
sl_nvme_ctrlr_fail(struct sl_nvme_ctrlr *ctrlr)
{
	struct sl_nvme_qpair *qpair;

	nvme_ctrlr_lock(ctrlr);
	nvme_ctrlr_set_flag(ctrlr, NVME_CTRLR_FAILED);
	TAILQ_FOREACH (qpair, &ctrlr->io_qpairs, link) {
		atomic_store(&qpair->state, NVME_QPAIR_FAILED);
	}
	if (ctrlr->adminq != NULL) {
		atomic_store(&ctrlr->adminq->state, NVME_QPAIR_FAILED);
		nvme_qpair_drop_internal(ctrlr->adminq);
		ctrlr->num_aers = 0;
		nvme_qpair_fail_all(ctrlr->adminq, SL_NVME_SCT_GENERIC,
				    SL_NVME_SC_ABORTED_SQ_DELETION, true, false);
	}
	if (ctrlr->remove_cb != NULL && !ctrlr->remove_notified) {
		ctrlr->remove_notified = true;
		ctrlr->remove_cb(ctrlr->remove_arg, ctrlr);
	}
	nvme_ctrlr_unlock(ctrlr);
}

void
nvme_ctrlr_request_reset(struct sl_nvme_ctrlr *ctrlr, const char *why)
{
	uint32_t old = atomic_fetch_or(&ctrlr->shared->flags, NVME_CTRLR_RESET_REQUESTED);

	if (!(old & NVME_CTRLR_RESET_REQUESTED)) {
		SL_WARNLOG("%s: reset requested: %s\n", ctrlr->shared->trid.traddr, why);
	}
}

static void
nvme_ctrlr_disconnect_qpairs(struct sl_nvme_ctrlr *ctrlr)
{
	struct sl_nvme_qpair *qpair;

	TAILQ_FOREACH (qpair, &ctrlr->io_qpairs, link) {
		if (atomic_load(&qpair->state) == NVME_QPAIR_ENABLED) {
			atomic_store(&qpair->state, NVME_QPAIR_DISCONNECTED);
		}
	}
	atomic_store(&ctrlr->adminq->state, NVME_QPAIR_DISCONNECTED);
	nvme_qpair_drop_internal(ctrlr->adminq);
	ctrlr->num_aers = 0;
	/* Admin commands are not replayed: their callers see a retryable error. */
	nvme_qpair_fail_all(ctrlr->adminq, SL_NVME_SCT_GENERIC, SL_NVME_SC_ABORTED_SQ_DELETION,
			    false, false);
}

int
sl_nvme_ctrlr_reset(struct sl_nvme_ctrlr *ctrlr)
{
	int rc;

	nvme_ctrlr_lock(ctrlr);
	if (nvme_ctrlr_flags(ctrlr) & (NVME_CTRLR_FAILED | NVME_CTRLR_RESETTING)) {
		nvme_ctrlr_unlock(ctrlr);
		return nvme_ctrlr_flags(ctrlr) & NVME_CTRLR_FAILED ? -ENXIO : -EBUSY;
	}
	SL_NOTICELOG("%s: resetting the controller\n", ctrlr->shared->trid.traddr);
	nvme_ctrlr_set_flag(ctrlr, NVME_CTRLR_RESETTING);
	nvme_ctrlr_clear_flag(ctrlr, NVME_CTRLR_RESET_REQUESTED);
	atomic_fetch_add(&ctrlr->shared->reset_gen, 1);
	nvme_ctrlr_disconnect_qpairs(ctrlr);
	if (!nvme_ctrlr_check_present(ctrlr)) {
		nvme_ctrlr_clear_flag(ctrlr, NVME_CTRLR_RESETTING);
		nvme_ctrlr_unlock(ctrlr);
		return -ENXIO;
	}
	nvme_ctrlr_set_state(ctrlr, NVME_CTRLR_STATE_INIT, 0);
	rc = nvme_ctrlr_init_sync(ctrlr);
	ctrlr->seen_reset_gen = atomic_load(&ctrlr->shared->reset_gen);
	nvme_ctrlr_clear_flag(ctrlr, NVME_CTRLR_RESETTING);
	if (rc != 0) {
		SL_ERRLOG("%s: reset failed: %s; the controller is failed\n",
			  ctrlr->shared->trid.traddr, strerror(-rc));
		sl_nvme_ctrlr_fail(ctrlr);
	} else {
		SL_NOTICELOG("%s: reset done\n", ctrlr->shared->trid.traddr);
	}
	nvme_ctrlr_unlock(ctrlr);
	return rc;
}

static void
nvme_ctrlr_health_check(struct sl_nvme_ctrlr *ctrlr)
{
	uint64_t now = sl_get_ticks();
	union sl_nvme_csts_register csts;

	if (ctrlr->shared->opts.health_check_ms == 0 || now < ctrlr->next_health_check) {
		return;
	}
	ctrlr->next_health_check =
		now + (uint64_t)ctrlr->shared->opts.health_check_ms * sl_get_ticks_hz() / 1000;
	csts = nvme_ctrlr_get_csts(ctrlr);
	if (csts.raw == UINT32_MAX) {
		nvme_ctrlr_check_present(ctrlr);
	} else if (csts.bits.cfs) {
		nvme_ctrlr_request_reset(ctrlr, "controller fatal status (CSTS.CFS)");
	}
}

/*
 * Another process reset the controller: every queue of ours is gone from it, and so
 * are our admin commands. The I/O qpairs re-create their queues on their next poll.
 */
static void
nvme_ctrlr_check_foreign_reset(struct sl_nvme_ctrlr *ctrlr)
{
	uint64_t gen = atomic_load(&ctrlr->shared->reset_gen);

	if (gen == ctrlr->seen_reset_gen ||
	    (nvme_ctrlr_flags(ctrlr) & (NVME_CTRLR_RESETTING | NVME_CTRLR_FAILED))) {
		return;
	}
	ctrlr->seen_reset_gen = gen;
	SL_NOTICELOG("%s: the controller was reset by another process: re-creating our "
		     "queues\n",
		     ctrlr->shared->trid.traddr);
	nvme_ctrlr_disconnect_qpairs(ctrlr);
	atomic_store(&ctrlr->adminq->state, NVME_QPAIR_ENABLED);
	if (nvme_ctrlr_is_primary(ctrlr)) {
		ctrlr->adopted = true;
	}
}

/* Reap dead processes every SL_NVME_REAP_INTERVAL_MS; take up the AERs if this
 * process became the primary. */
static void
nvme_ctrlr_ledger_poll(struct sl_nvme_ctrlr *ctrlr)
{
	nvme_ctrlr_check_foreign_reset(ctrlr);
	if (sl_get_ticks() >= ctrlr->next_reap) {
		nvme_ledger_reap(ctrlr);
	}
	/* Became the primary (the old one left or was reaped): its AERs are ours now. */
	if (nvme_ctrlr_is_primary(ctrlr) && !ctrlr->was_primary) {
		ctrlr->adopted = true;
	}
	ctrlr->was_primary = nvme_ctrlr_is_primary(ctrlr);
	if (ctrlr->adopted && ctrlr->state == NVME_CTRLR_STATE_READY) {
		ctrlr->adopted = false;
		nvme_ctrlr_submit_aers(ctrlr);
	}
}

int32_t
sl_nvme_ctrlr_process_admin_completions(struct sl_nvme_ctrlr *ctrlr)
{
	int32_t n;

	nvme_ctrlr_lock(ctrlr);
	if (nvme_ctrlr_flags(ctrlr) & NVME_CTRLR_FAILED) {
		nvme_ctrlr_unlock(ctrlr);
		return -ENXIO;
	}
	n = nvme_qpair_process_completions(ctrlr->adminq, 0);
	nvme_ctrlr_ledger_poll(ctrlr);
	nvme_ctrlr_health_check(ctrlr);
	if (nvme_ctrlr_flags(ctrlr) & NVME_CTRLR_RESET_REQUESTED) {
		sl_nvme_ctrlr_reset(ctrlr);
	}
	if ((nvme_ctrlr_flags(ctrlr) & NVME_CTRLR_NS_CHANGED) &&
	    ctrlr->state == NVME_CTRLR_STATE_READY) {
		nvme_ctrlr_refresh_ns(ctrlr);
	}
	if (nvme_ctrlr_flags(ctrlr) & NVME_CTRLR_FAILED) {
		n = -ENXIO;
	}
	nvme_ctrlr_unlock(ctrlr);
	return n;
}

/* --- Getters ----------------------------------------------------------------------------- */

const struct sl_nvme_ctrlr_data *
sl_nvme_ctrlr_get_data(const struct sl_nvme_ctrlr *ctrlr)
{
	return &ctrlr->shared->cdata;
}

const struct sl_nvme_transport_id *
sl_nvme_ctrlr_get_transport_id(const struct sl_nvme_ctrlr *ctrlr)
{
	return &ctrlr->shared->trid;
}

union sl_nvme_cap_register
sl_nvme_ctrlr_get_regs_cap(const struct sl_nvme_ctrlr *ctrlr)
{
	return ctrlr->shared->cap;
}

union sl_nvme_vs_register
sl_nvme_ctrlr_get_regs_vs(const struct sl_nvme_ctrlr *ctrlr)
{
	return ctrlr->shared->vs;
}

union sl_nvme_csts_register
sl_nvme_ctrlr_get_regs_csts(struct sl_nvme_ctrlr *ctrlr)
{
	return nvme_ctrlr_get_csts(ctrlr);
}

const struct sl_pci_id *
sl_nvme_ctrlr_get_pci_id(const struct sl_nvme_ctrlr *ctrlr)
{
	return &ctrlr->shared->pci_id;
}

uint32_t
sl_nvme_ctrlr_get_max_xfer_size(const struct sl_nvme_ctrlr *ctrlr)
{
	return ctrlr->shared->max_xfer_size;
}

uint32_t
sl_nvme_ctrlr_get_num_io_queues(const struct sl_nvme_ctrlr *ctrlr)
{
	return ctrlr->shared->num_io_queues;
}

bool
sl_nvme_ctrlr_sgl_supported(const struct sl_nvme_ctrlr *ctrlr)
{
	return (ctrlr->shared->cdata.sgls & SL_NVME_SGLS_SUPPORTED_MASK) != 0 &&
	       !(ctrlr->shared->quirks & NVME_QUIRK_NO_SGL_FOR_IO);
}

bool
sl_nvme_ctrlr_is_failed(const struct sl_nvme_ctrlr *ctrlr)
{
	return (nvme_ctrlr_flags(ctrlr) & NVME_CTRLR_FAILED) != 0;
}

bool
sl_nvme_ctrlr_is_removed(const struct sl_nvme_ctrlr *ctrlr)
{
	return (nvme_ctrlr_flags(ctrlr) & NVME_CTRLR_REMOVED) != 0;
}

uint64_t
sl_nvme_ctrlr_get_reset_count(const struct sl_nvme_ctrlr *ctrlr)
{
	return atomic_load(&ctrlr->shared->reset_gen);
}

uint32_t
sl_nvme_ctrlr_get_num_ns(const struct sl_nvme_ctrlr *ctrlr)
{
	return ctrlr->shared->num_ns;
}

uint32_t
sl_nvme_ctrlr_get_first_active_ns(const struct sl_nvme_ctrlr *ctrlr)
{
	return ctrlr->num_active_ns ? ctrlr->active_ns[0] : 0;
}

uint32_t
sl_nvme_ctrlr_get_next_active_ns(const struct sl_nvme_ctrlr *ctrlr, uint32_t prev)
{
	uint32_t i;

	for (i = 0; i < ctrlr->num_active_ns; i++) {
		if (ctrlr->active_ns[i] > prev) {
			return ctrlr->active_ns[i];
		}
	}
	return 0;
}

bool
sl_nvme_ctrlr_is_active_ns(const struct sl_nvme_ctrlr *ctrlr, uint32_t nsid)
{
	return nsid != 0 && nsid <= ctrlr->shared->num_ns && ctrlr->ns[nsid - 1].active;
}

struct sl_nvme_ns *
sl_nvme_ctrlr_get_ns(struct sl_nvme_ctrlr *ctrlr, uint32_t nsid)
{
	if (nsid == 0 || nsid > ctrlr->shared->num_ns) {
		return NULL;
	}
	return &ctrlr->ns[nsid - 1];
}

/* --- Connect, detach ---------------------------------------------------------------------- */

/* Controllers this process has connected: a second connect to one takes a reference
 * (one ledger slot and one command ID range per process and controller). */
static TAILQ_HEAD(, sl_nvme_ctrlr) g_nvme_ctrlrs = TAILQ_HEAD_INITIALIZER(g_nvme_ctrlrs);
static pthread_mutex_t g_nvme_ctrlrs_lock = PTHREAD_MUTEX_INITIALIZER;

void
nvme_ctrlr_register(struct sl_nvme_ctrlr *ctrlr)
{
	pthread_mutex_lock(&g_nvme_ctrlrs_lock);
	TAILQ_INSERT_TAIL(&g_nvme_ctrlrs, ctrlr, registry_link);
	ctrlr->registered = true;
	pthread_mutex_unlock(&g_nvme_ctrlrs_lock);
	nvme_ledger_reap(ctrlr);
}

static void
nvme_ctrlr_unregister(struct sl_nvme_ctrlr *ctrlr)
{
	pthread_mutex_lock(&g_nvme_ctrlrs_lock);
	if (ctrlr->registered) {
		TAILQ_REMOVE(&g_nvme_ctrlrs, ctrlr, registry_link);
		ctrlr->registered = false;
	}
	pthread_mutex_unlock(&g_nvme_ctrlrs_lock);
}

static struct sl_nvme_ctrlr *
nvme_ctrlr_find_registered(const struct sl_nvme_transport_id *trid)
{
	struct sl_nvme_ctrlr *ctrlr;

	pthread_mutex_lock(&g_nvme_ctrlrs_lock);
	TAILQ_FOREACH (ctrlr, &g_nvme_ctrlrs, registry_link) {
		if (sl_nvme_transport_id_compare(&ctrlr->shared->trid, trid) == 0) {
			ctrlr->refs++;
			nvme_ctrlr_lock(ctrlr);
			ctrlr->shared->slots[ctrlr->slot].refs = ctrlr->refs;
			nvme_ctrlr_unlock(ctrlr);
			break;
		}
	}
	pthread_mutex_unlock(&g_nvme_ctrlrs_lock);
	return ctrlr;
}

struct sl_nvme_ctrlr *
sl_nvme_connect(const struct sl_nvme_transport_id *trid, const struct sl_nvme_ctrlr_opts *opts)
{
	struct sl_nvme_ctrlr *ctrlr;
	int rc;

	if (trid->trtype != SL_NVME_TRANSPORT_PCIE) {
		errno = ENOTSUP;
		return NULL;
	}
	ctrlr = nvme_ctrlr_find_registered(trid);
	if (ctrlr != NULL) {
		return ctrlr;
	}
	ctrlr = nvme_ctrlr_construct(trid, opts, &g_nvme_pcie_reg_ops, NULL);
	if (ctrlr == NULL) {
		return NULL;
	}
	rc = nvme_pcie_ctrlr_attach(ctrlr);
	if (rc == 0) {
		rc = nvme_ctrlr_init_sync(ctrlr);
	}
	if (rc != 0) {
		nvme_ctrlr_destruct(ctrlr);
		errno = -rc;
		return NULL;
	}
	nvme_ctrlr_register(ctrlr);
	return ctrlr;
}

/* Normal shutdown (7.6.2): CC.SHN = 01b, then wait for CSTS.SHST = 10b. */
static int
nvme_ctrlr_shutdown(struct sl_nvme_ctrlr *ctrlr)
{
	union sl_nvme_cc_register cc = nvme_ctrlr_get_cc(ctrlr);
	uint32_t rtd3e_ms = ctrlr->shared->cdata.rtd3e / 1000;
	uint64_t timeout_ms = SL_MAX((uint64_t)NVME_SHUTDOWN_TIMEOUT_MS, rtd3e_ms);
	uint64_t deadline = sl_get_ticks() + timeout_ms * sl_get_ticks_hz() / 1000;
	union sl_nvme_csts_register csts;

	if (!cc.bits.en) {
		return 0;
	}
	cc.bits.shn = SL_NVME_SHN_NORMAL;
	nvme_ctrlr_set_reg4(ctrlr, SL_NVME_REG_CC, cc.raw);
	do {
		csts = nvme_ctrlr_get_csts(ctrlr);
		if (csts.raw == UINT32_MAX) {
			return -ENXIO;
		}
		if (csts.bits.shst == SL_NVME_SHST_COMPLETE) {
			return 0;
		}
		usleep(100);
	} while (sl_get_ticks() < deadline);
	SL_WARNLOG("%s: shutdown did not complete in %llu ms\n", ctrlr->shared->trid.traddr,
		   (unsigned long long)timeout_ms);
	return -ETIMEDOUT;
}

int
sl_nvme_detach(struct sl_nvme_ctrlr *ctrlr)
{
	struct sl_nvme_qpair *qpair;
	int rc = 0;

	if (ctrlr == NULL) {
		return 0;
	}
	pthread_mutex_lock(&g_nvme_ctrlrs_lock);
	if (ctrlr->refs > 1) {
		ctrlr->refs--;
		pthread_mutex_unlock(&g_nvme_ctrlrs_lock);
		nvme_ctrlr_lock(ctrlr);
		ctrlr->shared->slots[ctrlr->slot].refs = ctrlr->refs;
		nvme_ctrlr_unlock(ctrlr);
		return 0;
	}
	pthread_mutex_unlock(&g_nvme_ctrlrs_lock);
	nvme_ctrlr_unregister(ctrlr);
	while ((qpair = TAILQ_FIRST(&ctrlr->io_qpairs)) != NULL) {
		SL_WARNLOG("%s: detach frees I/O qpair %u still allocated\n",
			   ctrlr->shared->trid.traddr, qpair->id);
		sl_nvme_ctrlr_free_io_qpair(qpair);
	}
	nvme_ctrlr_lock(ctrlr);
	if (ctrlr->adminq != NULL) {
		nvme_qpair_drop_internal(ctrlr->adminq);
		ctrlr->num_aers = 0;
		nvme_qpair_fail_all(ctrlr->adminq, SL_NVME_SCT_GENERIC,
				    SL_NVME_SC_ABORTED_SQ_DELETION, true, false);
	}
	/* Others still use the controller: leave it running for them. */
	if (!(nvme_ctrlr_flags(ctrlr) & NVME_CTRLR_REMOVED) &&
	    ctrlr->state != NVME_CTRLR_STATE_INIT && !nvme_ledger_others_alive(ctrlr)) {
		rc = nvme_ctrlr_shutdown(ctrlr);
	}
	nvme_ctrlr_unlock(ctrlr);
	nvme_ctrlr_destruct(ctrlr);
	return rc;
}
