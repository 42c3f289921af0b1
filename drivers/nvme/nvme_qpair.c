/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/* Queue pairs: submission, completion by polling, trackers, software queueing,
 * timeouts, and re-creation after a controller reset. A qpair is touched only by its
 * owner thread (the admin queue: under the controller lock), so none of this locks. */

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/env.h"
#include "nvme_internal.h"

/* Timeouts are checked at most this often (ticks = hz / divisor). */
#define NVME_TIMEOUT_CHECK_DIVISOR 100

static uint32_t
nvme_qpair_doorbell(const struct sl_nvme_ctrlr *ctrlr, uint16_t qid, bool cq)
{
	uint32_t stride = 4u << ctrlr->shared->cap.bits.dstrd;

	return SL_NVME_REG_DBS + (2u * qid + (cq ? 1u : 0u)) * stride;
}

static int
nvme_qpair_alloc_trackers(struct sl_nvme_qpair *qpair)
{
	uint32_t n = qpair->num_trackers;
	uint32_t i;

	qpair->tr = sl_dma_zmalloc((size_t)n * NVME_TRACKER_SIZE, NVME_TRACKER_SIZE, NULL);
	if (qpair->tr == NULL) {
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		struct nvme_tracker *tr = &qpair->tr[i];

		tr->cid = (uint16_t)(qpair->cid_base + i);
		tr->list_iova = qpair->ctrlr->reg_ops->vtophys(qpair->ctrlr, &tr->u, NULL);
		if (tr->list_iova == SL_IOVA_INVALID) {
			SL_ERRLOG("tracker memory has no IOVA\n");
			return -EFAULT;
		}
		TAILQ_INSERT_TAIL(&qpair->free_tr, tr, link);
	}
	return 0;
}

static int
nvme_qpair_alloc_requests(struct sl_nvme_qpair *qpair, uint32_t num_reqs)
{
	uint32_t i;

	qpair->reqs = calloc(num_reqs, sizeof(*qpair->reqs));
	if (qpair->reqs == NULL) {
		return -ENOMEM;
	}
	qpair->num_reqs = num_reqs;
	for (i = 0; i < num_reqs; i++) {
		STAILQ_INSERT_TAIL(&qpair->free_req, &qpair->reqs[i], link);
	}
	return 0;
}

struct sl_nvme_qpair *
nvme_qpair_construct(struct sl_nvme_ctrlr *ctrlr, uint16_t id, uint32_t num_entries,
		     uint32_t num_reqs)
{
	struct nvme_ctrlr_shared *s = ctrlr->shared;
	struct sl_nvme_qpair *qpair;
	uint64_t hz = sl_get_ticks_hz();

	assert(num_entries >= 2 && num_entries <= 4096);
	qpair = calloc(1, sizeof(*qpair));
	if (qpair == NULL) {
		return NULL;
	}
	qpair->ctrlr = ctrlr;
	qpair->id = id;
	qpair->is_admin = id == 0;
	qpair->num_entries = (uint16_t)num_entries;
	qpair->sq_tdbl = nvme_qpair_doorbell(ctrlr, id, false);
	qpair->cq_hdbl = nvme_qpair_doorbell(ctrlr, id, true);
	TAILQ_INIT(&qpair->free_tr);
	TAILQ_INIT(&qpair->outstanding_tr);
	STAILQ_INIT(&qpair->free_req);
	STAILQ_INIT(&qpair->queued_req);
	atomic_init(&qpair->state, NVME_QPAIR_DISCONNECTED);
	qpair->num_trackers = (uint16_t)(num_entries - 1u);
	if (qpair->is_admin) {
		qpair->timeout_ticks = (uint64_t)s->opts.admin_timeout_ms * hz / 1000;
		qpair->num_trackers =
			(uint16_t)SL_MIN(qpair->num_trackers, NVME_ADMIN_CIDS_PER_SLOT - 1u);
		qpair->cid_base = (uint16_t)(ctrlr->slot * NVME_ADMIN_CIDS_PER_SLOT);
		qpair->admin_sh = &s->admin;
		qpair->ledger_slot = &s->slots[ctrlr->slot];
	} else {
		qpair->timeout_ticks = s->opts.io_timeout_us * hz / 1000000;
	}
	if (qpair->is_admin && s->admin.sq != NULL) {
		/* Another process of the controller made the admin queue: share it. */
		qpair->num_entries = s->admin.num_entries;
		qpair->sq = s->admin.sq;
		qpair->cq = s->admin.cq;
		qpair->sq_iova = s->admin.sq_iova;
		qpair->cq_iova = s->admin.cq_iova;
	} else {
		qpair->sq = sl_dma_zmalloc(num_entries * sizeof(struct sl_nvme_cmd), s->page_size,
					   &qpair->sq_iova);
		qpair->cq = sl_dma_zmalloc(num_entries * sizeof(struct sl_nvme_cpl), s->page_size,
					   &qpair->cq_iova);
		if (qpair->is_admin && qpair->sq != NULL && qpair->cq != NULL) {
			s->admin.sq = qpair->sq;
			s->admin.cq = qpair->cq;
			s->admin.sq_iova = qpair->sq_iova;
			s->admin.cq_iova = qpair->cq_iova;
			s->admin.num_entries = (uint16_t)num_entries;
			nvme_qpair_reset_queues(qpair);
		}
	}
	if (qpair->sq == NULL || qpair->cq == NULL || nvme_qpair_alloc_trackers(qpair) != 0 ||
	    nvme_qpair_alloc_requests(qpair, num_reqs) != 0) {
		SL_ERRLOG("%s: out of memory for qpair %u (%u entries)\n", s->trid.traddr, id,
			  num_entries);
		nvme_qpair_destruct(qpair);
		return NULL;
	}
	if (qpair->is_admin) {
		nvme_ledger_sync_in(ctrlr);
	} else {
		nvme_qpair_reset_queues(qpair);
	}
	nvme_qpair_set_shadow_doorbells(qpair);
	return qpair;
}

void
nvme_qpair_destruct(struct sl_nvme_qpair *qpair)
{
	if (qpair == NULL) {
		return;
	}
	/* The admin queue's rings are the controller's (freed with shared). */
	if (!qpair->is_admin) {
		sl_dma_free(qpair->sq);
		sl_dma_free(qpair->cq);
	}
	sl_dma_free(qpair->tr);
	free(qpair->reqs);
	free(qpair);
}

/* Empty the queues as a freshly created pair: the controller starts at head 0 with
 * phase 1 (4.6.1.1), so stale entries must not carry a matching phase. */
void
nvme_qpair_reset_queues(struct sl_nvme_qpair *qpair)
{
	qpair->sq_tail = 0;
	qpair->last_sq_tail = 0;
	qpair->cq_head = 0;
	qpair->phase = 1;
	memset(qpair->sq, 0, qpair->num_entries * sizeof(struct sl_nvme_cmd));
	memset(qpair->cq, 0, qpair->num_entries * sizeof(struct sl_nvme_cpl));
	if (qpair->admin_sh != NULL) {
		nvme_ledger_admin_reset(qpair);
	}
}

struct nvme_request *
nvme_qpair_alloc_request(struct sl_nvme_qpair *qpair)
{
	struct nvme_request *req = STAILQ_FIRST(&qpair->free_req);

	if (sl_unlikely(req == NULL)) {
		return NULL;
	}
	STAILQ_REMOVE_HEAD(&qpair->free_req, link);
	memset(&req->cmd, 0, sizeof(req->cmd));
	req->payload_type = NVME_PAYLOAD_NONE;
	req->payload_size = 0;
	req->payload_count = 0;
	req->internal = false;
	return req;
}

static void
nvme_qpair_free_request(struct sl_nvme_qpair *qpair, struct nvme_request *req)
{
	STAILQ_INSERT_HEAD(&qpair->free_req, req, link);
}

void
nvme_qpair_set_shadow_doorbells(struct sl_nvme_qpair *qpair)
{
	struct sl_nvme_ctrlr *ctrlr = qpair->ctrlr;
	uint32_t sq_idx = (qpair->sq_tdbl - SL_NVME_REG_DBS) / 4;
	uint32_t cq_idx = (qpair->cq_hdbl - SL_NVME_REG_DBS) / 4;

	/* As Linux and QEMU do, the admin queue keeps to its registers. */
	if (!ctrlr->dbbuf_enabled || qpair->is_admin || cq_idx >= NVME_HOST_PAGE_SIZE / 4) {
		qpair->sq_shadow = qpair->sq_eventidx = NULL;
		qpair->cq_shadow = qpair->cq_eventidx = NULL;
		return;
	}
	qpair->sq_shadow = &ctrlr->dbbuf_db[sq_idx];
	qpair->sq_eventidx = &ctrlr->dbbuf_ei[sq_idx];
	qpair->cq_shadow = &ctrlr->dbbuf_db[cq_idx];
	qpair->cq_eventidx = &ctrlr->dbbuf_ei[cq_idx];
}

/* Whether the controller asked to be told of a move from old to new_idx: its event
 * index lies in [old, new_idx) (the virtio-style rule of Doorbell Buffer Config). */
static inline bool
nvme_dbbuf_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old);
}

/* Write a doorbell: to its shadow, and to the register only when needed.
 * \return whether the register was written. */
static inline bool
nvme_qpair_doorbell_write(struct sl_nvme_qpair *qpair, uint32_t reg, volatile uint32_t *shadow,
			  volatile uint32_t *eventidx, uint16_t value, uint16_t old)
{
	if (shadow != NULL) {
		*shadow = value;
		/* The shadow store must be visible before the event index is read. */
		atomic_thread_fence(memory_order_seq_cst);
		if (!nvme_dbbuf_need_event((uint16_t)*eventidx, value, old)) {
			return false;
		}
	}
	qpair->ctrlr->reg_ops->write4(qpair->ctrlr, reg, value);
	return true;
}

void
nvme_qpair_ring_sq_doorbell(struct sl_nvme_qpair *qpair)
{
	if (qpair->sq_tail == qpair->last_sq_tail) {
		return;
	}
	/* The SQ entries must be in memory before the controller learns of them. */
	atomic_thread_fence(memory_order_release);
	if (nvme_qpair_doorbell_write(qpair, qpair->sq_tdbl, qpair->sq_shadow, qpair->sq_eventidx,
				      qpair->sq_tail, qpair->last_sq_tail)) {
		qpair->stats.sq_mmio_doorbell_updates++;
	} else {
		qpair->stats.sq_shadow_doorbell_updates++;
	}
	qpair->last_sq_tail = qpair->sq_tail;
	if (qpair->admin_sh != NULL) {
		qpair->admin_sh->last_sq_tail = qpair->sq_tail;
	}
}

static void
nvme_qpair_ring_cq_doorbell(struct sl_nvme_qpair *qpair, uint16_t old_head)
{
	if (nvme_qpair_doorbell_write(qpair, qpair->cq_hdbl, qpair->cq_shadow, qpair->cq_eventidx,
				      qpair->cq_head, old_head)) {
		qpair->stats.cq_mmio_doorbell_updates++;
	} else {
		qpair->stats.cq_shadow_doorbell_updates++;
	}
}

static void
nvme_qpair_place(struct sl_nvme_qpair *qpair, struct nvme_tracker *tr)
{
	qpair->sq[qpair->sq_tail] = tr->req->cmd;
	if (++qpair->sq_tail == qpair->num_entries) {
		qpair->sq_tail = 0;
	}
	/* No clock read per command: the next timeout check stamps it (see there). */
	tr->submit_tick = 0;
	tr->timed_out = 0;
	TAILQ_INSERT_TAIL(&qpair->outstanding_tr, tr, link);
	qpair->num_tr_busy++;
	if (qpair->admin_sh != NULL) {
		nvme_ledger_admin_placed(qpair);
	}
}

/* Put a request on the controller. \return 0 or -EINVAL (payload cannot be described;
 * the tracker is back on the free list, the request untouched). */
static int
nvme_qpair_submit_tracker(struct sl_nvme_qpair *qpair, struct nvme_request *req)
{
	struct nvme_tracker *tr = TAILQ_FIRST(&qpair->free_tr);
	int rc;

	TAILQ_REMOVE(&qpair->free_tr, tr, link);
	tr->req = req;
	req->cmd.cid = tr->cid;
	rc = nvme_pcie_build_payload(qpair, tr);
	if (sl_unlikely(rc != 0)) {
		tr->req = NULL;
		TAILQ_INSERT_HEAD(&qpair->free_tr, tr, link);
		return rc;
	}
	nvme_qpair_place(qpair, tr);
	qpair->stats.submitted_requests++;
	if (!qpair->delay_sq_doorbell) {
		nvme_qpair_ring_sq_doorbell(qpair);
	}
	return 0;
}

static void
nvme_qpair_complete_request(struct sl_nvme_qpair *qpair, struct nvme_request *req,
			    const struct sl_nvme_cpl *cpl)
{
	sl_nvme_cmd_cb cb_fn = req->cb_fn;
	void *cb_arg = req->cb_arg;

	if (sl_unlikely(sl_nvme_cpl_is_error(cpl)) && !req->internal) {
		nvme_qpair_log_error(qpair, &req->cmd, cpl);
	}
	/* Free first: the callback may submit again and find the request. */
	nvme_qpair_free_request(qpair, req);
	if (cb_fn != NULL) {
		cb_fn(cb_arg, cpl);
	}
}

static void
nvme_qpair_fail_request(struct sl_nvme_qpair *qpair, struct nvme_request *req, uint8_t sct,
			uint8_t sc, bool dnr)
{
	struct sl_nvme_cpl cpl = {
		.sqid = qpair->id,
		.cid = req->cmd.cid,
		.status = {.sct = sct, .sc = sc, .dnr = dnr},
	};

	nvme_qpair_complete_request(qpair, req, &cpl);
}

/* The admin SQ is shared: other processes' commands take room in it too. */
static inline bool
nvme_qpair_admin_sq_full(const struct sl_nvme_qpair *qpair)
{
	return qpair->admin_sh != NULL && qpair->admin_sh->inflight + 1u >= qpair->num_entries;
}

/* Move queued requests onto free trackers, in order. */
static void
nvme_qpair_submit_queued(struct sl_nvme_qpair *qpair)
{
	struct nvme_request *req;

	while ((req = STAILQ_FIRST(&qpair->queued_req)) != NULL && !TAILQ_EMPTY(&qpair->free_tr) &&
	       !nvme_qpair_admin_sq_full(qpair) &&
	       atomic_load_explicit(&qpair->state, memory_order_relaxed) == NVME_QPAIR_ENABLED) {
		STAILQ_REMOVE_HEAD(&qpair->queued_req, link);
		qpair->num_queued--;
		if (nvme_qpair_submit_tracker(qpair, req) != 0) {
			nvme_qpair_fail_request(qpair, req, SL_NVME_SCT_GENERIC,
						SL_NVME_SC_INVALID_FIELD, true);
		}
	}
}

int
nvme_qpair_submit_request(struct sl_nvme_qpair *qpair, struct nvme_request *req)
{
	int state = atomic_load_explicit(&qpair->state, memory_order_acquire);
	int rc;

	if (sl_unlikely(state == NVME_QPAIR_FAILED)) {
		nvme_qpair_free_request(qpair, req);
		return -ENXIO;
	}
	/* Queue in software when the SQ is full, behind others already queued, or while
	 * the queues are being re-created after a reset. */
	if (sl_unlikely(state != NVME_QPAIR_ENABLED || TAILQ_EMPTY(&qpair->free_tr) ||
			!STAILQ_EMPTY(&qpair->queued_req) || nvme_qpair_admin_sq_full(qpair))) {
		STAILQ_INSERT_TAIL(&qpair->queued_req, req, link);
		qpair->num_queued++;
		qpair->stats.queued_requests++;
		return 0;
	}
	rc = nvme_qpair_submit_tracker(qpair, req);
	if (sl_unlikely(rc != 0)) {
		nvme_qpair_free_request(qpair, req);
	}
	return rc;
}

static void
nvme_qpair_release_tracker(struct sl_nvme_qpair *qpair, struct nvme_tracker *tr)
{
	TAILQ_REMOVE(&qpair->outstanding_tr, tr, link);
	tr->req = NULL;
	TAILQ_INSERT_HEAD(&qpair->free_tr, tr, link);
	qpair->num_tr_busy--;
}

static void
nvme_qpair_complete_tracker(struct sl_nvme_qpair *qpair, struct nvme_tracker *tr,
			    const struct sl_nvme_cpl *cpl)
{
	struct nvme_request *req = tr->req;

	nvme_qpair_release_tracker(qpair, tr);
	nvme_qpair_complete_request(qpair, req, cpl);
	if (!STAILQ_EMPTY(&qpair->queued_req)) {
		nvme_qpair_submit_queued(qpair);
	}
}

void
nvme_qpair_complete_parked(struct sl_nvme_qpair *qpair, struct nvme_tracker *tr,
			   const struct sl_nvme_cpl *cpl)
{
	nvme_qpair_complete_tracker(qpair, tr, cpl);
}

struct nvme_tracker *
nvme_qpair_find_tracker(struct sl_nvme_qpair *qpair, uint16_t cid)
{
	uint16_t idx = (uint16_t)(cid - qpair->cid_base);

	if (idx >= qpair->num_trackers || qpair->tr[idx].req == NULL) {
		return NULL;
	}
	return &qpair->tr[idx];
}

void
nvme_qpair_fail_all(struct sl_nvme_qpair *qpair, uint8_t sct, uint8_t sc, bool dnr,
		    bool outstanding_only)
{
	struct nvme_tracker *tr;
	struct nvme_request *req;

	while ((tr = TAILQ_FIRST(&qpair->outstanding_tr)) != NULL) {
		req = tr->req;
		nvme_qpair_release_tracker(qpair, tr);
		nvme_qpair_fail_request(qpair, req, sct, sc, dnr);
	}
	while (!outstanding_only && (req = STAILQ_FIRST(&qpair->queued_req)) != NULL) {
		STAILQ_REMOVE_HEAD(&qpair->queued_req, link);
		qpair->num_queued--;
		nvme_qpair_fail_request(qpair, req, sct, sc, dnr);
	}
}

/* Drop internal requests (AERs) without their callbacks: a reset ends them. */
void
nvme_qpair_drop_internal(struct sl_nvme_qpair *qpair)
{
	struct nvme_tracker *tr, *tmp;

	TAILQ_FOREACH_SAFE (tr, &qpair->outstanding_tr, link, tmp) {
		struct nvme_request *req = tr->req;

		if (req->internal) {
			nvme_qpair_release_tracker(qpair, tr);
			nvme_qpair_free_request(qpair, req);
		}
	}
}

static void
nvme_qpair_abort_cpl(void *cb_arg, const struct sl_nvme_cpl *cpl)
{
	struct sl_nvme_ctrlr *ctrlr = cb_arg;

	/* Bit 0 of dword 0 clear: the command was aborted (5.1). Otherwise the next expiry
	 * of the same command resets the controller. */
	if (sl_nvme_cpl_is_error(cpl) || (cpl->cdw0 & 1u)) {
		SL_WARNLOG("%s: abort did not take effect (cdw0 %x)\n", ctrlr->shared->trid.traddr,
			   cpl->cdw0);
	}
}

static void
nvme_qpair_handle_timeout(struct sl_nvme_qpair *qpair, struct nvme_tracker *tr, uint64_t now)
{
	struct sl_nvme_ctrlr *ctrlr = qpair->ctrlr;
	enum sl_nvme_timeout_action action = ctrlr->shared->opts.timeout_action;
	char str[128];

	sl_nvme_cmd_fmt(str, sizeof(str), qpair->is_admin, qpair->id, &tr->req->cmd);
	SL_WARNLOG("%s: command timed out%s: %s\n", ctrlr->shared->trid.traddr,
		   tr->timed_out ? " again after abort" : "", str);
	tr->submit_tick = now;
	if (action == SL_NVME_TIMEOUT_ACTION_NONE) {
		return;
	}
	if (action == SL_NVME_TIMEOUT_ACTION_ABORT && !tr->timed_out && !qpair->is_admin) {
		tr->timed_out = 1;
		if (sl_nvme_ctrlr_cmd_abort(ctrlr, qpair, tr->cid, nvme_qpair_abort_cpl, ctrlr) ==
		    0) {
			return;
		}
	}
	nvme_ctrlr_request_reset(ctrlr, "command timeout");
}

/*
 * Timeouts without a clock read per command (where the ticks come from clock_gettime
 * over an emulated HPET, reading them per I/O halves the IOPS). A command is stamped
 * by the first check that finds it outstanding, so its age is at least now minus its
 * stamp, and at most that plus one check interval: a timeout fires between
 * timeout_ticks and timeout_ticks + NVME_TIMEOUT_CHECK_DIVISOR^-1 s after submission,
 * never early. I/O qpairs read the clock once every NVME_TIMEOUT_CHECK_POLLS polls.
 */
static void
nvme_qpair_check_timeouts(struct sl_nvme_qpair *qpair)
{
	struct nvme_tracker *tr, *tmp;
	uint64_t now;

	if (!qpair->is_admin && ++qpair->polls_since_check < NVME_TIMEOUT_CHECK_POLLS) {
		return;
	}
	qpair->polls_since_check = 0;
	now = sl_get_ticks();
	if (now < qpair->next_timeout_check) {
		return;
	}
	qpair->next_timeout_check = now + sl_get_ticks_hz() / NVME_TIMEOUT_CHECK_DIVISOR;
	if (nvme_ctrlr_flags(qpair->ctrlr) & (NVME_CTRLR_RESETTING | NVME_CTRLR_RESET_REQUESTED)) {
		return;
	}
	TAILQ_FOREACH_SAFE (tr, &qpair->outstanding_tr, link, tmp) {
		if (tr->req->internal) {
			continue;
		}
		if (tr->submit_tick == 0) {
			tr->submit_tick = now;
		} else if (now - tr->submit_tick >= qpair->timeout_ticks) {
			nvme_qpair_handle_timeout(qpair, tr, now);
		}
	}
}

/* Resubmit or fail what was outstanding when the controller was reset. */
static void
nvme_qpair_recover_outstanding(struct sl_nvme_qpair *qpair)
{
	TAILQ_HEAD(, nvme_tracker) old = TAILQ_HEAD_INITIALIZER(old);
	struct nvme_tracker *tr;
	struct nvme_request *req;
	bool resubmit = qpair->ctrlr->shared->opts.reset_policy == SL_NVME_RESET_RESUBMIT;

	TAILQ_CONCAT(&old, &qpair->outstanding_tr, link);
	qpair->num_tr_busy = 0;
	while ((tr = TAILQ_FIRST(&old)) != NULL) {
		TAILQ_REMOVE(&old, tr, link);
		if (resubmit) {
			/* Same tracker, CID and data pointer: only the SQ slot is new. */
			nvme_qpair_place(qpair, tr);
			continue;
		}
		req = tr->req;
		tr->req = NULL;
		TAILQ_INSERT_HEAD(&qpair->free_tr, tr, link);
		nvme_qpair_fail_request(qpair, req, SL_NVME_SCT_GENERIC,
					SL_NVME_SC_ABORTED_SQ_DELETION, false);
	}
	nvme_qpair_ring_sq_doorbell(qpair);
}

static int32_t
nvme_qpair_reconnect(struct sl_nvme_qpair *qpair)
{
	int rc;

	nvme_qpair_reset_queues(qpair);
	nvme_qpair_set_shadow_doorbells(qpair);
	rc = nvme_ctrlr_create_io_queues(qpair->ctrlr, qpair);
	if (rc != 0) {
		return nvme_ctrlr_flags(qpair->ctrlr) & NVME_CTRLR_FAILED ? -ENXIO : 0;
	}
	SL_NOTICELOG("%s: qpair %u re-created, %u commands %s\n", qpair->ctrlr->shared->trid.traddr,
		     qpair->id, qpair->num_tr_busy,
		     qpair->ctrlr->shared->opts.reset_policy == SL_NVME_RESET_RESUBMIT
			     ? "resubmitted"
			     : "failed");
	nvme_qpair_recover_outstanding(qpair);
	nvme_qpair_submit_queued(qpair);
	return 0;
}

/* The slow path of process_completions. \return 1 if the qpair is usable now, 0 if it
 * must wait (reset in progress), -ENXIO if it failed. */
static int32_t
nvme_qpair_check_state(struct sl_nvme_qpair *qpair)
{
	int state = atomic_load_explicit(&qpair->state, memory_order_acquire);
	uint32_t flags = nvme_ctrlr_flags(qpair->ctrlr);
	int32_t rc;

	if (state == NVME_QPAIR_FAILED || (flags & NVME_CTRLR_FAILED)) {
		atomic_store(&qpair->state, NVME_QPAIR_FAILED);
		nvme_qpair_fail_all(qpair, SL_NVME_SCT_GENERIC, SL_NVME_SC_ABORTED_SQ_DELETION,
				    true, false);
		return -ENXIO;
	}
	if (state == NVME_QPAIR_ENABLED) {
		return 1;
	}
	if (qpair->is_admin || (flags & NVME_CTRLR_RESETTING)) {
		return 0;
	}
	rc = nvme_qpair_reconnect(qpair);
	if (rc != 0) {
		return rc;
	}
	return atomic_load(&qpair->state) == NVME_QPAIR_ENABLED ? 1 : 0;
}

int32_t
nvme_qpair_process_completions(struct sl_nvme_qpair *qpair, uint32_t max)
{
	struct sl_nvme_cpl *cpl;
	struct nvme_tracker *tr;
	uint16_t old_head;
	uint32_t n = 0;
	int32_t rc;

	if (sl_unlikely(atomic_load_explicit(&qpair->state, memory_order_relaxed) !=
			NVME_QPAIR_ENABLED)) {
		rc = nvme_qpair_check_state(qpair);
		if (rc <= 0) {
			return rc;
		}
	}
	if (sl_unlikely(qpair->in_completion)) {
		return 0;
	}
	qpair->in_completion = true;
	if (qpair->admin_sh != NULL) {
		nvme_ledger_admin_drain_parked(qpair);
		if (!STAILQ_EMPTY(&qpair->queued_req)) {
			nvme_qpair_submit_queued(qpair);
		}
	}
	old_head = qpair->cq_head;
	if (max == 0 || max > qpair->num_entries - 1u) {
		max = qpair->num_entries - 1u;
	}
	nvme_qpair_ring_sq_doorbell(qpair);
	while (n < max) {
		cpl = &qpair->cq[qpair->cq_head];
		if (cpl->status.p != qpair->phase) {
			break;
		}
		/* Read the rest of the entry only after seeing its phase bit flip. */
		atomic_thread_fence(memory_order_acquire);
		if (++qpair->cq_head == qpair->num_entries) {
			qpair->cq_head = 0;
			qpair->phase ^= 1;
		}
		n++;
		if (qpair->admin_sh != NULL) {
			/* Another process's completion is parked for it (or dropped). */
			tr = nvme_ledger_admin_cqe(qpair, cpl);
			if (tr == NULL) {
				continue;
			}
		} else {
			tr = nvme_qpair_find_tracker(qpair, cpl->cid);
		}
		if (sl_unlikely(tr == NULL)) {
			SL_ERRLOG("%s: qpair %u: completion for unknown cid %u\n",
				  qpair->ctrlr->shared->trid.traddr, qpair->id, cpl->cid);
			continue;
		}
		nvme_qpair_complete_tracker(qpair, tr, cpl);
	}
	qpair->stats.polls++;
	if (n > 0) {
		qpair->stats.completions += n;
		nvme_qpair_ring_cq_doorbell(qpair, old_head);
	} else {
		qpair->stats.idle_polls++;
	}
	if (qpair->timeout_ticks != 0 && qpair->num_tr_busy != 0) {
		nvme_qpair_check_timeouts(qpair);
	}
	/* Callbacks may have submitted more: let the controller see it now. */
	nvme_qpair_ring_sq_doorbell(qpair);
	qpair->in_completion = false;
	return (int32_t)n;
}

int32_t
sl_nvme_qpair_process_completions(struct sl_nvme_qpair *qpair, uint32_t max_completions)
{
	return nvme_qpair_process_completions(qpair, max_completions);
}

uint16_t
sl_nvme_qpair_get_id(const struct sl_nvme_qpair *qpair)
{
	return qpair->id;
}

void
sl_nvme_qpair_get_stats(const struct sl_nvme_qpair *qpair, struct sl_nvme_qpair_stats *stats)
{
	*stats = qpair->stats;
}

uint32_t
sl_nvme_qpair_get_num_outstanding(const struct sl_nvme_qpair *qpair)
{
	return qpair->num_tr_busy + qpair->num_queued;
}
