/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * The ledger: several processes on one controller, and the cleanup after dead ones.
 *
 * Processes with the same shm id find a controller's shared state in a memzone named
 * after its PCI address. Each takes a slot: pid, start time (so a reused pid is not
 * mistaken for the process that held the slot), references, primary or not, its admin
 * commands in flight and the completions others reaped for it. I/O queue IDs are
 * records owned by a slot, holding the DMA memory of their queues.
 *
 * The admin queue is one pair of rings shared by all: each process submits its own
 * commands (command IDs partitioned by slot), and whoever polls the CQ takes each
 * completion to its owner: its own are completed, a live process's are parked in its
 * slot, a dead one's dropped. The queue positions are written through to shared memory
 * at every change, so that a process that dies holding the lock leaves them exact.
 *
 * Reaping (on connect, detach, and at most every SL_NVME_REAP_INTERVAL_MS from
 * sl_nvme_ctrlr_process_admin_completions): a slot whose process is gone (no such pid,
 * a zombie, or a pid that now belongs to a process with another start time) has its I/O
 * queues deleted on the controller, their IDs and memory returned, its parked
 * completions dropped, and if it was the primary the reaper takes that role (and the
 * asynchronous event requests with it).
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sluice/env.h"
#include "nvme_internal.h"

/* How long a process waits for another to finish initialising the controller. */
#define NVME_LEDGER_INIT_WAIT_MS 60000u

static uint64_t g_self_start_time;
static int g_self_pid;
static uint64_t g_self_pidns;

static void nvme_ledger_self(void);

/* Whether the process of a slot lives, as far as this process can tell. */
static bool
nvme_ledger_slot_alive(const struct nvme_ledger_slot *slot)
{
	nvme_ledger_self();
	if (slot->pidns != g_self_pidns && slot->pidns != 0 && g_self_pidns != 0) {
		return true;
	}
	return sl_env_proc_alive(slot->pid, slot->start_time);
}

static void
nvme_ledger_self(void)
{
	struct stat st;

	if (g_self_pid != getpid()) {
		g_self_pid = getpid();
		g_self_start_time = sl_env_proc_start_time(g_self_pid);
		g_self_pidns = stat("/proc/self/ns/pid", &st) == 0 ? (uint64_t)st.st_ino : 0;
	}
}

static int
nvme_ledger_mutex_init(pthread_mutex_t *lock)
{
	pthread_mutexattr_t attr;
	int rc;

	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	rc = pthread_mutex_init(lock, &attr);
	pthread_mutexattr_destroy(&attr);
	return -rc;
}

/* Fill a fresh shared state. */
static int
nvme_ledger_init_shared(struct nvme_ctrlr_shared *s, const struct sl_nvme_transport_id *trid,
			const struct sl_nvme_ctrlr_opts *opts)
{
	int rc;

	rc = nvme_ledger_mutex_init(&s->lock);
	if (rc != 0) {
		return rc;
	}
	s->trid = *trid;
	if (opts != NULL) {
		s->opts = *opts;
	} else {
		sl_nvme_ctrlr_get_default_opts(&s->opts);
	}
	s->page_size = NVME_HOST_PAGE_SIZE;
	s->dbbuf_db = sl_dma_zmalloc(NVME_HOST_PAGE_SIZE, NVME_HOST_PAGE_SIZE, &s->dbbuf_db_iova);
	s->dbbuf_ei = sl_dma_zmalloc(NVME_HOST_PAGE_SIZE, NVME_HOST_PAGE_SIZE, &s->dbbuf_ei_iova);
	if (s->dbbuf_db == NULL || s->dbbuf_ei == NULL) {
		return -ENOMEM;
	}
	atomic_store(&s->init_state, NVME_SHARED_INITIALISING);
	atomic_thread_fence(memory_order_release);
	s->magic = NVME_SHM_MAGIC;
	return 0;
}

void
nvme_ledger_free_shared(struct sl_nvme_ctrlr *ctrlr)
{
	struct nvme_ctrlr_shared *s = ctrlr->shared;

	sl_dma_free(s->dbbuf_db);
	sl_dma_free(s->dbbuf_ei);
	sl_dma_free(s->admin.sq);
	sl_dma_free(s->admin.cq);
	pthread_mutex_destroy(&s->lock);
	if (ctrlr->shm) {
		s->magic = 0;
		sl_shm_free(ctrlr->shm_name);
	} else {
		sl_dma_free(s);
	}
	ctrlr->shared = NULL;
}

/* Find or create the shared state. \return it (created set if new) or NULL. */
static struct nvme_ctrlr_shared *
nvme_ledger_get_shared(struct sl_nvme_ctrlr *ctrlr, const struct sl_nvme_transport_id *trid,
		       bool *created)
{
	struct nvme_ctrlr_shared *s;
	size_t len = 0;
	uint32_t waited_ms = 0;

	*created = false;
	if (sl_env_shm_id() < 0) {
		*created = true;
		return sl_dma_zmalloc(sizeof(*s), NVME_HOST_PAGE_SIZE, NULL);
	}
	ctrlr->shm = true;
	if (strlen(trid->traddr) > sizeof(ctrlr->shm_name) - sizeof("sl_nvme_")) {
		SL_ERRLOG("traddr '%s' is too long to name shared memory after\n", trid->traddr);
		errno = ENAMETOOLONG;
		return NULL;
	}
	snprintf(ctrlr->shm_name, sizeof(ctrlr->shm_name), "sl_nvme_%.23s", trid->traddr);
	s = sl_shm_lookup(ctrlr->shm_name, &len);
	if (s == NULL) {
		s = sl_shm_reserve(ctrlr->shm_name, sizeof(*s), NVME_HOST_PAGE_SIZE);
		if (s != NULL) {
			*created = true;
			return s;
		}
		if (errno != EEXIST) {
			return NULL;
		}
		s = sl_shm_lookup(ctrlr->shm_name, &len);
		if (s == NULL) {
			return NULL;
		}
	}
	if (len < sizeof(*s)) {
		SL_ERRLOG("%s: shared controller state '%s' is %zu bytes, expected %zu: a process "
			  "of another Sluice version shares this shm id\n",
			  trid->traddr, ctrlr->shm_name, len, sizeof(*s));
		errno = EPROTO;
		return NULL;
	}
	/* Its creator fills it right after reserving it. */
	while (s->magic != NVME_SHM_MAGIC) {
		if (waited_ms++ > 1000) {
			SL_ERRLOG("%s: shared controller state '%s' was never filled in\n",
				  trid->traddr, ctrlr->shm_name);
			errno = EPROTO;
			return NULL;
		}
		usleep(1000);
	}
	atomic_thread_fence(memory_order_acquire);
	return s;
}

static int
nvme_ledger_claim_slot(struct sl_nvme_ctrlr *ctrlr, bool primary)
{
	struct nvme_ctrlr_shared *s = ctrlr->shared;
	struct nvme_ledger_slot *slot;
	int i;

	for (i = 0; i < NVME_LEDGER_SLOTS; i++) {
		slot = &s->slots[i];
		if (slot->state != NVME_SLOT_FREE) {
			continue;
		}
		memset(slot, 0, sizeof(*slot));
		slot->pid = g_self_pid;
		slot->start_time = g_self_start_time;
		slot->refs = 1;
		slot->primary = primary;
		slot->vfio_fd = -1;
		slot->pidns = g_self_pidns;
		slot->state = NVME_SLOT_ACTIVE;
		ctrlr->slot = i;
		return 0;
	}
	SL_ERRLOG("%s: all %u ledger slots are taken: too many processes on this controller\n",
		  s->trid.traddr, NVME_LEDGER_SLOTS);
	return -EBUSY;
}

/* \return the slot that is initialising the controller, or -1. */
static int
nvme_ledger_initialiser(const struct nvme_ctrlr_shared *s)
{
	int i;

	for (i = 0; i < NVME_LEDGER_SLOTS; i++) {
		if (s->slots[i].state == NVME_SLOT_ACTIVE && s->slots[i].primary) {
			return i;
		}
	}
	return -1;
}

int
nvme_ledger_attach(struct sl_nvme_ctrlr *ctrlr, const struct sl_nvme_transport_id *trid,
		   const struct sl_nvme_ctrlr_opts *opts, bool *primary)
{
	struct nvme_ctrlr_shared *s;
	uint32_t waited_ms = 0;
	bool created;
	int init, rc;

	nvme_ledger_self();
	s = nvme_ledger_get_shared(ctrlr, trid, &created);
	if (s == NULL) {
		return errno ? -errno : -ENOMEM;
	}
	ctrlr->shared = s;
	if (created) {
		rc = nvme_ledger_init_shared(s, trid, opts);
		if (rc != 0) {
			nvme_ledger_free_shared(ctrlr);
			return rc;
		}
	}
	for (;;) {
		nvme_ctrlr_lock(ctrlr);
		if (atomic_load(&s->init_state) != NVME_SHARED_INITIALISING || created) {
			break;
		}
		/* Someone else is initialising: wait for it, unless it died doing so. */
		init = nvme_ledger_initialiser(s);
		if (init < 0 || !nvme_ledger_slot_alive(&s->slots[init])) {
			SL_WARNLOG("%s: the process that was initialising the controller is gone: "
				   "initialising it again\n",
				   trid->traddr);
			if (init >= 0) {
				s->slots[init].state = NVME_SLOT_FREE;
			}
			created = true;
			break;
		}
		nvme_ctrlr_unlock(ctrlr);
		if (waited_ms++ > NVME_LEDGER_INIT_WAIT_MS) {
			SL_ERRLOG("%s: process %d has been initialising the controller for %u s\n",
				  trid->traddr, s->slots[init].pid,
				  NVME_LEDGER_INIT_WAIT_MS / 1000);
			ctrlr->shared = NULL;
			return -ETIMEDOUT;
		}
		usleep(1000);
	}
	/* The controller is initialised (READY) by someone: attach to it. A FAILED one is
	 * initialised again. */
	*primary = created || atomic_load(&s->init_state) == NVME_SHARED_FAILED;
	if (*primary) {
		atomic_store(&s->init_state, NVME_SHARED_INITIALISING);
	}
	rc = nvme_ledger_claim_slot(ctrlr, *primary);
	nvme_ctrlr_unlock(ctrlr);
	if (rc != 0) {
		ctrlr->shared = NULL;
		return rc;
	}
	return 0;
}

/* The primary leaves (or was reaped): the role goes to the first live process, which
 * takes up the asynchronous event requests on its next admin poll. */
static void
nvme_ledger_hand_over_primary(struct sl_nvme_ctrlr *ctrlr, int from)
{
	struct nvme_ctrlr_shared *s = ctrlr->shared;
	int i;

	s->slots[from].primary = false;
	for (i = 0; i < NVME_LEDGER_SLOTS; i++) {
		if (i != from && s->slots[i].state == NVME_SLOT_ACTIVE &&
		    nvme_ledger_slot_alive(&s->slots[i])) {
			s->slots[i].primary = true;
			SL_NOTICELOG("%s: process %d takes over as the controller's primary from "
				     "%d\n",
				     s->trid.traddr, s->slots[i].pid, s->slots[from].pid);
			return;
		}
	}
}

bool
nvme_ledger_others_alive(struct sl_nvme_ctrlr *ctrlr)
{
	const struct nvme_ctrlr_shared *s = ctrlr->shared;
	int i;

	for (i = 0; i < NVME_LEDGER_SLOTS; i++) {
		if (i != ctrlr->slot && s->slots[i].state == NVME_SLOT_ACTIVE &&
		    nvme_ledger_slot_alive(&s->slots[i])) {
			return true;
		}
	}
	return false;
}

bool
nvme_ledger_detach(struct sl_nvme_ctrlr *ctrlr)
{
	struct nvme_ctrlr_shared *s = ctrlr->shared;
	struct nvme_ledger_slot *slot;
	bool others;
	uint32_t q;

	if (s == NULL) {
		return false;
	}
	nvme_ctrlr_lock(ctrlr);
	slot = &s->slots[ctrlr->slot];
	if (slot->pid == g_self_pid && slot->state == NVME_SLOT_ACTIVE) {
		slot->parked_head = slot->parked_tail = 0;
		slot->refs = 0;
		slot->state = slot->admin_outstanding ? NVME_SLOT_DRAINING : NVME_SLOT_FREE;
		if (slot->primary) {
			nvme_ledger_hand_over_primary(ctrlr, ctrlr->slot);
		}
	}
	for (q = 1; q <= NVME_MAX_IO_QUEUES; q++) {
		if (s->qids[q].owner == ctrlr->slot + 1) {
			s->qids[q].owner = 0;
		}
	}
	others = nvme_ledger_others_alive(ctrlr);
	nvme_ctrlr_unlock(ctrlr);
	return others;
}

/* Called with the lock, once per outermost acquisition: load the admin positions. */
void
nvme_ledger_sync_in(struct sl_nvme_ctrlr *ctrlr)
{
	struct sl_nvme_qpair *q = ctrlr->adminq;
	const struct nvme_admin_shared *a;

	if (q == NULL || q->admin_sh == NULL) {
		return;
	}
	a = q->admin_sh;
	q->sq_tail = a->sq_tail;
	q->last_sq_tail = a->last_sq_tail;
	q->cq_head = a->cq_head;
	q->phase = a->phase;
}

void
nvme_ledger_admin_reset(struct sl_nvme_qpair *qpair)
{
	struct nvme_admin_shared *a = qpair->admin_sh;
	struct nvme_ctrlr_shared *s = qpair->ctrlr->shared;
	int i;

	a->sq_tail = a->last_sq_tail = a->cq_head = 0;
	a->phase = 1;
	a->inflight = 0;
	/* Every admin command on the old queue is gone, whoever submitted it. */
	for (i = 0; i < NVME_LEDGER_SLOTS; i++) {
		s->slots[i].admin_outstanding = 0;
		s->slots[i].parked_head = s->slots[i].parked_tail = 0;
		if (s->slots[i].state == NVME_SLOT_DRAINING) {
			s->slots[i].state = NVME_SLOT_FREE;
		}
	}
}

void
nvme_ledger_admin_placed(struct sl_nvme_qpair *qpair)
{
	/* The entry is in the SQ before its tail moves (a recovering process rings it). */
	atomic_thread_fence(memory_order_release);
	qpair->admin_sh->sq_tail = qpair->sq_tail;
	qpair->admin_sh->inflight++;
	qpair->ledger_slot->admin_outstanding++;
}

struct nvme_tracker *
nvme_ledger_admin_cqe(struct sl_nvme_qpair *qpair, const struct sl_nvme_cpl *cpl)
{
	struct nvme_ctrlr_shared *s = qpair->ctrlr->shared;
	struct nvme_admin_shared *a = qpair->admin_sh;
	uint32_t owner = cpl->cid / NVME_ADMIN_CIDS_PER_SLOT;
	struct nvme_tracker *tr = NULL;
	struct nvme_ledger_slot *slot;

	if (owner >= NVME_LEDGER_SLOTS) {
		SL_ERRLOG("%s: admin completion for cid %u, which no process can own\n",
			  s->trid.traddr, cpl->cid);
		goto done;
	}
	slot = &s->slots[owner];
	if (slot->admin_outstanding > 0) {
		slot->admin_outstanding--;
	}
	if (a->inflight > 0) {
		a->inflight--;
	}
	if (slot == qpair->ledger_slot) {
		tr = nvme_qpair_find_tracker(qpair, cpl->cid);
		if (tr == NULL) {
			SL_ERRLOG("%s: admin completion for unknown cid %u\n", s->trid.traddr,
				  cpl->cid);
		}
	} else if (slot->state == NVME_SLOT_ACTIVE) {
		/* For a live process: park it. Its slot can have no more outstanding than
		 * the ring holds. */
		slot->parked[slot->parked_tail % NVME_ADMIN_CIDS_PER_SLOT] = *cpl;
		slot->parked_tail++;
	} else if (slot->state == NVME_SLOT_DRAINING && slot->admin_outstanding == 0) {
		/* The last command of a reaped process: its slot can be reused. */
		slot->state = NVME_SLOT_FREE;
	}
done:
	/* Consumed: only now does the head move (a holder dying before this leaves the
	 * entry to be seen again, which the owner's tracker check makes harmless). */
	a->cq_head = qpair->cq_head;
	a->phase = qpair->phase;
	return tr;
}

void
nvme_ledger_admin_drain_parked(struct sl_nvme_qpair *qpair)
{
	struct nvme_ledger_slot *slot = qpair->ledger_slot;
	struct sl_nvme_cpl cpl;
	struct nvme_tracker *tr;

	while (slot->parked_head != slot->parked_tail) {
		cpl = slot->parked[slot->parked_head % NVME_ADMIN_CIDS_PER_SLOT];
		slot->parked_head++;
		tr = nvme_qpair_find_tracker(qpair, cpl.cid);
		if (tr != NULL) {
			nvme_qpair_complete_parked(qpair, tr, &cpl);
		}
	}
}

/*
 * The lock's previous holder died holding it (EOWNERDEAD). What it may have left half
 * done, and how each is made whole again:
 * - an admin command written to the SQ and counted in sq_tail but not rung: ring it
 *   (its completion goes to its owner, or is dropped if that was the dead process);
 * - a CQ entry consumed but cq_head not yet moved: seen again by the next poll, and
 *   dropped or completed by its owner's tracker check;
 * - a slot claimed or freed, a queue ID taken or returned: single stores, so either
 *   done or not; slots of dead processes are reaped as usual;
 * - counters of outstanding admin commands: recomputed from nothing would be wrong, so
 *   they are bounded: inflight is at most the SQ's capacity.
 */
void
nvme_ledger_recover(struct sl_nvme_ctrlr *ctrlr)
{
	struct nvme_ctrlr_shared *s = ctrlr->shared;
	struct nvme_admin_shared *a = &s->admin;

	s->lock_recoveries++;
	SL_WARNLOG("%s: a process died holding the controller lock: recovering its state\n",
		   s->trid.traddr);
	if (a->sq != NULL && a->num_entries != 0) {
		if (a->sq_tail >= a->num_entries) {
			a->sq_tail = a->last_sq_tail;
		}
		if (a->inflight >= a->num_entries) {
			a->inflight = a->num_entries - 1u;
		}
		if (a->sq_tail != a->last_sq_tail && ctrlr->bar != NULL) {
			uint32_t stride = 4u << s->cap.bits.dstrd;

			SL_NOTICELOG(
				"%s: ringing admin SQ doorbell %u -> %u left by the dead holder\n",
				s->trid.traddr, a->last_sq_tail, a->sq_tail);
			atomic_thread_fence(memory_order_release);
			nvme_ctrlr_set_reg4(ctrlr, SL_NVME_REG_DBS + 0 * stride, a->sq_tail);
			a->last_sq_tail = a->sq_tail;
		}
	}
}

/* This process has no vfio container (it joined after the primary died): use the
 * device through a live process's fd. */
struct sl_pci_device *
nvme_ledger_borrow_device(struct sl_nvme_ctrlr *ctrlr, const struct sl_pci_addr *addr)
{
	struct nvme_ctrlr_shared *s = ctrlr->shared;
	struct sl_pci_device *dev = NULL;
	int i;

	nvme_ctrlr_lock(ctrlr);
	for (i = 0; i < NVME_LEDGER_SLOTS && dev == NULL; i++) {
		const struct nvme_ledger_slot *slot = &s->slots[i];

		if (i == ctrlr->slot || slot->state != NVME_SLOT_ACTIVE || slot->vfio_fd < 0 ||
		    !nvme_ledger_slot_alive(slot)) {
			continue;
		}
		dev = sl_pci_device_attach_borrowed(addr, slot->pid, slot->vfio_fd);
	}
	nvme_ctrlr_unlock(ctrlr);
	if (dev == NULL) {
		SL_ERRLOG("%s: no vfio container in this process (its primary is gone) and no "
			  "live process of the controller to take the device from\n",
			  s->trid.traddr);
		errno = ENODEV;
	}
	return dev;
}

/* --- Queue IDs -------------------------------------------------------------------------- */

int
nvme_ctrlr_alloc_qid(struct sl_nvme_ctrlr *ctrlr)
{
	struct nvme_ctrlr_shared *s = ctrlr->shared;
	uint32_t qid;

	for (qid = 1; qid <= s->num_io_queues && qid <= NVME_MAX_IO_QUEUES; qid++) {
		if (s->qids[qid].owner == 0) {
			memset(&s->qids[qid], 0, sizeof(s->qids[qid]));
			s->qids[qid].owner = (uint8_t)(ctrlr->slot + 1);
			return (int)qid;
		}
	}
	return -EBUSY;
}

void
nvme_ctrlr_free_qid(struct sl_nvme_ctrlr *ctrlr, uint16_t qid)
{
	struct nvme_qid_rec *rec;

	if (qid == 0 || qid > NVME_MAX_IO_QUEUES) {
		return;
	}
	rec = &ctrlr->shared->qids[qid];
	if (rec->owner == ctrlr->slot + 1) {
		rec->sq = rec->cq = rec->tr = NULL;
		rec->owner = 0;
	}
}

void
nvme_ledger_qid_set_memory(struct sl_nvme_ctrlr *ctrlr, uint16_t qid, void *sq, void *cq, void *tr)
{
	struct nvme_qid_rec *rec = &ctrlr->shared->qids[qid];

	rec->sq = sq;
	rec->cq = cq;
	rec->tr = tr;
}

uint32_t
nvme_ledger_qids_in_use(const struct sl_nvme_ctrlr *ctrlr)
{
	uint32_t q, n = 0;

	for (q = 1; q <= NVME_MAX_IO_QUEUES; q++) {
		n += ctrlr->shared->qids[q].owner != 0;
	}
	return n;
}

/* --- Reaping ---------------------------------------------------------------------------- */

static void
nvme_ledger_reap_slot(struct sl_nvme_ctrlr *ctrlr, int idx)
{
	struct nvme_ctrlr_shared *s = ctrlr->shared;
	struct nvme_ledger_slot *slot = &s->slots[idx];
	bool failed = (nvme_ctrlr_flags(ctrlr) & NVME_CTRLR_FAILED) != 0;
	char qids[256] = "";
	size_t off = 0;
	uint32_t nq = 0, nleak = 0, parked;
	uint32_t q;
	int rc;

	parked = slot->parked_tail - slot->parked_head;
	for (q = 1; q <= NVME_MAX_IO_QUEUES; q++) {
		struct nvme_qid_rec *rec = &s->qids[q];

		if (rec->owner != idx + 1) {
			continue;
		}
		/* 5.6/5.7: the SQ, then its CQ. Until Delete CQ completes the controller may
		 * still write into the dead process's memory: free it only after. */
		rc = failed ? -ENXIO
			    : nvme_ctrlr_delete_queue(ctrlr, SL_NVME_OPC_DELETE_IO_SQ, (uint16_t)q,
						      true);
		if (rc == 0) {
			rc = nvme_ctrlr_delete_queue(ctrlr, SL_NVME_OPC_DELETE_IO_CQ, (uint16_t)q,
						     true);
		}
		if (rc == 0 || failed) {
			sl_dma_free(rec->sq);
			sl_dma_free(rec->cq);
			sl_dma_free(rec->tr);
		} else {
			nleak++;
			SL_ERRLOG("%s: cannot delete I/O queue %u of dead process %d: %s; its "
				  "memory is left allocated\n",
				  s->trid.traddr, q, slot->pid, strerror(-rc));
		}
		rec->sq = rec->cq = rec->tr = NULL;
		rec->owner = 0;
		nq++;
		if (off < sizeof(qids) - 8) {
			off += (size_t)snprintf(qids + off, sizeof(qids) - off, "%s%u",
						off ? "," : "", q);
		}
	}
	SL_NOTICELOG("%s: reaped dead process %d (started at tick %" PRIu64 "%s): %u I/O "
		     "queue%s deleted%s%s%s, %u admin command%s in flight dropped, %u parked "
		     "completion%s dropped, %u reference%s released\n",
		     s->trid.traddr, slot->pid, slot->start_time, slot->primary ? ", primary" : "",
		     nq, nq == 1 ? "" : "s", nq ? " (" : "", qids, nq ? ")" : "",
		     slot->admin_outstanding, slot->admin_outstanding == 1 ? "" : "s", parked,
		     parked == 1 ? "" : "s", slot->refs, slot->refs == 1 ? "" : "s");
	if (nleak != 0) {
		SL_WARNLOG("%s: %u queue%s of process %d could not be deleted\n", s->trid.traddr,
			   nleak, nleak == 1 ? "" : "s", slot->pid);
	}
	slot->parked_head = slot->parked_tail = 0;
	slot->refs = 0;
	slot->state = slot->admin_outstanding ? NVME_SLOT_DRAINING : NVME_SLOT_FREE;
	s->reaped++;
	if (slot->primary) {
		nvme_ledger_hand_over_primary(ctrlr, idx);
	}
}

int
nvme_ledger_reap(struct sl_nvme_ctrlr *ctrlr)
{
	struct nvme_ctrlr_shared *s = ctrlr->shared;
	int i, n = 0;

	if (s == NULL || ctrlr->adminq == NULL) {
		return 0;
	}
	nvme_ctrlr_lock(ctrlr);
	ctrlr->next_reap = sl_get_ticks() + SL_NVME_REAP_INTERVAL_MS * sl_get_ticks_hz() / 1000;
	for (i = 0; i < NVME_LEDGER_SLOTS; i++) {
		struct nvme_ledger_slot *slot = &s->slots[i];

		if (i == ctrlr->slot || slot->state != NVME_SLOT_ACTIVE ||
		    nvme_ledger_slot_alive(slot)) {
			continue;
		}
		nvme_ledger_reap_slot(ctrlr, i);
		n++;
	}
	nvme_ctrlr_unlock(ctrlr);
	return n;
}

/* --- Public ------------------------------------------------------------------------------ */

int
sl_nvme_ctrlr_reap(struct sl_nvme_ctrlr *ctrlr)
{
	return nvme_ledger_reap(ctrlr);
}

int
sl_nvme_ctrlr_get_ledger(struct sl_nvme_ctrlr *ctrlr, struct sl_nvme_ledger_info *info)
{
	struct nvme_ctrlr_shared *s = ctrlr->shared;
	uint32_t q;
	int i;

	memset(info, 0, sizeof(*info));
	nvme_ledger_reap(ctrlr);
	nvme_ctrlr_lock(ctrlr);
	for (i = 0; i < NVME_LEDGER_SLOTS; i++) {
		const struct nvme_ledger_slot *slot = &s->slots[i];
		struct sl_nvme_ledger_proc *p;

		if (slot->state != NVME_SLOT_ACTIVE) {
			continue;
		}
		p = &info->procs[info->num_procs++];
		p->pid = slot->pid;
		p->start_time = slot->start_time;
		p->primary = slot->primary;
		p->self = i == ctrlr->slot;
		p->refs = slot->refs;
		p->admin_outstanding = slot->admin_outstanding;
		for (q = 1; q <= NVME_MAX_IO_QUEUES; q++) {
			if (s->qids[q].owner == i + 1 && p->num_qids < SL_COUNTOF(p->qids)) {
				p->qids[p->num_qids++] = (uint16_t)q;
			}
		}
	}
	info->queues_in_use = nvme_ledger_qids_in_use(ctrlr);
	info->queues_total = s->num_io_queues;
	info->reaped = s->reaped;
	info->lock_recoveries = s->lock_recoveries;
	info->shared = ctrlr->shm;
	nvme_ctrlr_unlock(ctrlr);
	return 0;
}

int
sl_nvme_ctrlr_forge_ledger_entry(struct sl_nvme_ctrlr *ctrlr, int pid, uint64_t start_time,
				 uint32_t num_qids)
{
	struct nvme_ctrlr_shared *s = ctrlr->shared;
	int mine = ctrlr->slot, rc, qid;
	uint32_t i;

	nvme_ctrlr_lock(ctrlr);
	rc = nvme_ledger_claim_slot(ctrlr, false);
	if (rc == 0) {
		s->slots[ctrlr->slot].pid = pid;
		s->slots[ctrlr->slot].start_time = start_time;
		for (i = 0; i < num_qids; i++) {
			qid = nvme_ctrlr_alloc_qid(ctrlr);
			if (qid < 0) {
				rc = qid;
				break;
			}
		}
		SL_NOTICELOG("%s: forged ledger entry %d: pid %d, start time %" PRIu64
			     ", %u queue IDs\n",
			     s->trid.traddr, ctrlr->slot, pid, start_time, i);
	}
	ctrlr->slot = mine;
	nvme_ctrlr_unlock(ctrlr);
	return rc;
}

void
sl_nvme_ctrlr_hold_lock(struct sl_nvme_ctrlr *ctrlr, uint32_t ms)
{
	nvme_ctrlr_lock(ctrlr);
	usleep((useconds_t)ms * 1000);
	nvme_ctrlr_unlock(ctrlr);
}
