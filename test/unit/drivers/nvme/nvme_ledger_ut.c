/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * The ledger on a fake controller. Two controller objects in one process stand for two
 * processes sharing a controller (each has its own slot, command IDs and queues); a
 * process is made "dead" by giving its slot the pid of a child that has exited, or a
 * live pid with another start time (pid reuse). The robust lock is tested with a
 * forked child that dies holding it.
 */

#include <signal.h>
#include <sys/wait.h>

#include "nvme_mock.h"

static struct mock_ctrlr g_m;

/* A pid that belonged to a process that has exited. */
static int
dead_pid(void)
{
	pid_t pid = fork();

	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	return pid;
}

static struct sl_nvme_ctrlr *
join(void)
{
	struct sl_nvme_ctrlr *b = mock_ctrlr_construct(&g_m, NULL);

	CU_ASSERT_EQUAL(b->state, NVME_CTRLR_STATE_ATTACH_SHARED);
	CU_ASSERT_EQUAL_FATAL(nvme_ctrlr_init_sync(b), 0);
	return b;
}

/* Forget a "dead" process's objects: its queue memory went to the reaper. */
static void
forget(struct sl_nvme_ctrlr *b, struct sl_nvme_qpair **q, int nq)
{
	int i;

	for (i = 0; i < nq; i++) {
		free(q[i]->reqs);
		free(q[i]);
	}
	TAILQ_INIT(&b->io_qpairs);
	b->shared = NULL;
	nvme_ctrlr_destruct(b);
}

static void
setup_shared(void)
{
	mock_ctrlr_setup(&g_m);
	g_shm_id = 1;
}

static void
test_join_and_park(void)
{
	struct sl_nvme_ctrlr *a, *b;
	struct io_status st = {0};
	struct sl_nvme_ledger_info info;
	void *buf = sl_dma_zmalloc(4096, 4096, NULL);

	setup_shared();
	a = mock_ctrlr_attach(&g_m, NULL);
	CU_ASSERT(a->shm);
	CU_ASSERT(a->shared->slots[a->slot].primary);
	CU_ASSERT_EQUAL(atomic_load(&a->shared->init_state), NVME_SHARED_READY);
	b = join();
	CU_ASSERT_NOT_EQUAL(a->slot, b->slot);
	CU_ASSERT_PTR_EQUAL(a->shared, b->shared);
	CU_ASSERT_FALSE(b->shared->slots[b->slot].primary);
	/* The joiner identified the namespaces into its own memory, sent no AERs. */
	CU_ASSERT(sl_nvme_ctrlr_is_active_ns(b, 1));
	CU_ASSERT(sl_nvme_ctrlr_is_active_ns(b, 3));
	CU_ASSERT_EQUAL(b->num_aers, 0);
	CU_ASSERT_PTR_NOT_EQUAL(a->nsdata, b->nsdata);

	/* b's command, completed on a's poll: parked for b, not called back there. */
	CU_ASSERT_EQUAL(
		sl_nvme_ctrlr_cmd_identify(b, SL_NVME_CNS_CTRLR, 0, 0, buf, 4096, io_cpl, &st), 0);
	CU_ASSERT_EQUAL(b->shared->slots[b->slot].admin_outstanding, 1);
	sl_nvme_ctrlr_process_admin_completions(a);
	CU_ASSERT_EQUAL(st.done, 0);
	CU_ASSERT_EQUAL(
		b->shared->slots[b->slot].parked_tail - b->shared->slots[b->slot].parked_head, 1);
	sl_nvme_ctrlr_process_admin_completions(b);
	CU_ASSERT_EQUAL(st.done, 1);
	CU_ASSERT_EQUAL(st.errors, 0);
	CU_ASSERT_EQUAL(b->shared->admin.inflight, (uint32_t)a->num_aers);
	CU_ASSERT_EQUAL(memcmp(buf, &g_m.cdata, 64), 0);

	CU_ASSERT_EQUAL(sl_nvme_ctrlr_get_ledger(a, &info), 0);
	CU_ASSERT_EQUAL(info.num_procs, 2);
	CU_ASSERT(info.shared);
	CU_ASSERT(info.procs[0].primary && info.procs[0].self);
	CU_ASSERT(!info.procs[1].primary && !info.procs[1].self);
	CU_ASSERT_EQUAL(info.procs[1].pid, getpid());

	sl_nvme_detach(b);
	/* a is still there: the controller was not shut down. */
	CU_ASSERT_EQUAL(g_m.regs[SL_NVME_REG_CC / 4] & (3u << 14), 0);
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_get_ledger(a, &info), 0);
	CU_ASSERT_EQUAL(info.num_procs, 1);
	sl_nvme_detach(a);
	CU_ASSERT_PTR_NULL(g_shm[0].addr);
	sl_dma_free(buf);
	g_shm_id = -1;
}

static void
test_reap_dead_process(void)
{
	struct sl_nvme_ctrlr *a, *b;
	struct sl_nvme_qpair *qa, *qb[2];
	struct sl_nvme_ledger_info info;
	uint16_t qid0, qid1;

	setup_shared();
	a = mock_ctrlr_attach(&g_m, NULL);
	qa = sl_nvme_ctrlr_alloc_io_qpair(a, NULL);
	b = join();
	qb[0] = sl_nvme_ctrlr_alloc_io_qpair(b, NULL);
	qb[1] = sl_nvme_ctrlr_alloc_io_qpair(b, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qa);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qb[0]);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qb[1]);
	qid0 = qb[0]->id;
	qid1 = qb[1]->id;
	CU_ASSERT(g_m.q[qid0].created && g_m.q[qid1].created);
	CU_ASSERT_EQUAL(nvme_ledger_qids_in_use(a), 3);

	/* b dies (its pid is a gone child's). */
	b->shared->slots[b->slot].pid = dead_pid();
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_reap(a), 1);
	CU_ASSERT_FALSE(g_m.q[qid0].created);
	CU_ASSERT_FALSE(g_m.q[qid1].created);
	CU_ASSERT(g_m.q[qa->id].created);
	CU_ASSERT_EQUAL(g_m.opc_count[1][SL_NVME_OPC_DELETE_IO_SQ], 2);
	CU_ASSERT_EQUAL(g_m.opc_count[1][SL_NVME_OPC_DELETE_IO_CQ], 2);
	CU_ASSERT_EQUAL(nvme_ledger_qids_in_use(a), 1);
	CU_ASSERT_EQUAL(a->shared->slots[b->slot].state, NVME_SLOT_FREE);
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_get_ledger(a, &info), 0);
	CU_ASSERT_EQUAL(info.num_procs, 1);
	CU_ASSERT_EQUAL(info.reaped, 1);
	/* Nothing more to reap. */
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_reap(a), 0);
	forget(b, qb, 2);

	sl_nvme_ctrlr_free_io_qpair(qa);
	sl_nvme_detach(a);
	g_shm_id = -1;
}

static void
test_pid_reuse(void)
{
	struct sl_nvme_ctrlr *a, *b;
	struct sl_nvme_qpair *qb;

	setup_shared();
	a = mock_ctrlr_attach(&g_m, NULL);
	b = join();
	qb = sl_nvme_ctrlr_alloc_io_qpair(b, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qb);
	CU_ASSERT(sl_env_proc_alive(getpid(), b->shared->slots[b->slot].start_time));
	/* Same pid, another start time: the pid now names a process that never attached. */
	b->shared->slots[b->slot].start_time++;
	CU_ASSERT_FALSE(sl_env_proc_alive(getpid(), b->shared->slots[b->slot].start_time));
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_reap(a), 1);
	CU_ASSERT_FALSE(g_m.q[qb->id].created);
	CU_ASSERT_EQUAL(nvme_ledger_qids_in_use(a), 0);
	forget(b, &qb, 1);

	/* The test hook forges such an entry; one from another pid namespace is left be. */
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_forge_ledger_entry(a, getpid(), 1, 2), 0);
	CU_ASSERT_EQUAL(nvme_ledger_qids_in_use(a), 2);
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_reap(a), 1);
	CU_ASSERT_EQUAL(nvme_ledger_qids_in_use(a), 0);
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_forge_ledger_entry(a, dead_pid(), 1, 1), 0);
	a->shared->slots[(a->slot + 1) % NVME_LEDGER_SLOTS].pidns ^= 1;
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_reap(a), 0);
	CU_ASSERT_EQUAL(nvme_ledger_qids_in_use(a), 1);
	a->shared->slots[(a->slot + 1) % NVME_LEDGER_SLOTS].pidns ^= 1;
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_reap(a), 1);
	sl_nvme_detach(a);
	g_shm_id = -1;
}

/* A reaped process's admin command completes later: dropped, its slot freed then. */
static void
test_dead_admin_command_dropped(void)
{
	struct sl_nvme_ctrlr *a, *b;
	struct io_status st = {0};
	int slot;

	setup_shared();
	a = mock_ctrlr_attach(&g_m, NULL);
	b = join();
	slot = b->slot;
	/* An AER is a command the controller holds: b's stays outstanding. */
	CU_ASSERT_EQUAL(nvme_ctrlr_submit_aer(b), 0);
	CU_ASSERT_EQUAL(b->shared->slots[slot].admin_outstanding, 1);
	b->shared->slots[slot].pid = dead_pid();
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_reap(a), 1);
	CU_ASSERT_EQUAL(a->shared->slots[slot].state, NVME_SLOT_DRAINING);
	forget(b, NULL, 0);
	/* Its completion arrives: dropped (no callback: b's memory is gone), slot free. */
	mock_fire_aer(&g_m, 0x00010102);
	sl_nvme_ctrlr_process_admin_completions(a);
	CU_ASSERT_EQUAL(a->shared->slots[slot].state, NVME_SLOT_FREE);
	CU_ASSERT_EQUAL(a->shared->admin.inflight, (uint32_t)a->num_aers);
	CU_ASSERT_EQUAL(st.done, 0);
	sl_nvme_detach(a);
	g_shm_id = -1;
}

/* The primary dies: a survivor takes the role and its asynchronous events. */
static void
test_primary_death(void)
{
	struct sl_nvme_ctrlr *a, *b;
	struct sl_nvme_qpair *qa, *qb;
	uint32_t aers_before;

	setup_shared();
	a = mock_ctrlr_attach(&g_m, NULL);
	qa = sl_nvme_ctrlr_alloc_io_qpair(a, NULL);
	b = join();
	qb = sl_nvme_ctrlr_alloc_io_qpair(b, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qa);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qb);
	aers_before = g_m.opc_count[1][SL_NVME_OPC_ASYNC_EVENT_REQUEST];
	a->shared->slots[a->slot].pid = dead_pid();
	b->next_reap = 0;
	sl_nvme_ctrlr_process_admin_completions(b);
	CU_ASSERT(b->shared->slots[b->slot].primary);
	CU_ASSERT_FALSE(g_m.q[qa->id].created);
	CU_ASSERT(g_m.q[qb->id].created);
	CU_ASSERT(b->num_aers > 0);
	CU_ASSERT(g_m.opc_count[1][SL_NVME_OPC_ASYNC_EVENT_REQUEST] > aers_before);
	/* b's I/O goes on. */
	{
		struct io_status st = {0};
		void *buf = sl_dma_zmalloc(4096, 4096, NULL);
		struct sl_nvme_ns *ns = sl_nvme_ctrlr_get_ns(b, 1);

		CU_ASSERT_EQUAL(sl_nvme_ns_cmd_read(ns, qb, buf, 0, 1, io_cpl, &st, 0), 0);
		sl_nvme_qpair_process_completions(qb, 0);
		CU_ASSERT_EQUAL(st.done, 1);
		CU_ASSERT_EQUAL(st.errors, 0);
		sl_dma_free(buf);
	}
	forget(a, &qa, 1);
	sl_nvme_ctrlr_free_io_qpair(qb);
	sl_nvme_detach(b);
	g_shm_id = -1;
}

/* 50 processes that each take queues and die: the pool never runs dry. */
static void
test_kill_cycles(void)
{
	struct sl_nvme_ctrlr *a, *b;
	struct sl_nvme_qpair *q[3];
	int cycle, i, dead = dead_pid();

	setup_shared();
	a = mock_ctrlr_attach(&g_m, NULL);
	for (cycle = 0; cycle < 50; cycle++) {
		b = join();
		for (i = 0; i < 3; i++) {
			q[i] = sl_nvme_ctrlr_alloc_io_qpair(b, NULL);
			CU_ASSERT_PTR_NOT_NULL_FATAL(q[i]);
		}
		b->shared->slots[b->slot].pid = dead;
		CU_ASSERT_EQUAL(sl_nvme_ctrlr_reap(a), 1);
		CU_ASSERT_EQUAL(nvme_ledger_qids_in_use(a), 0);
		forget(b, q, 3);
	}
	CU_ASSERT_EQUAL(a->shared->reaped, 50);
	sl_nvme_detach(a);
	g_shm_id = -1;
}

/*
 * A process dies holding the lock, having put an admin command in the SQ and moved the
 * tail without ringing the doorbell: the next taker rings it, the completion (for a
 * slot nobody holds) is dropped, and the lock works on.
 */
static void
test_lock_owner_dead(void)
{
	struct sl_nvme_ctrlr *a;
	struct nvme_admin_shared *adm;
	struct sl_nvme_cmd cmd = {.opc = SL_NVME_OPC_GET_FEATURES, .cdw10 = 7};
	struct sl_nvme_cpl cpl;
	uint32_t gf_before;
	pid_t pid;
	int status;

	setup_shared();
	a = mock_ctrlr_attach(&g_m, NULL);
	adm = &a->shared->admin;
	gf_before = g_m.opc_count[1][SL_NVME_OPC_GET_FEATURES];
	/* The child's SQ entry (the ring is not shared memory in this mock: write it here). */
	cmd.cid = 9 * NVME_ADMIN_CIDS_PER_SLOT + 3;
	adm->sq[adm->sq_tail] = cmd;
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		pthread_mutex_lock(&a->shared->lock);
		adm->sq_tail = (uint16_t)((adm->sq_tail + 1) % adm->num_entries);
		adm->inflight++;
		_exit(0);
	}
	waitpid(pid, &status, 0);
	CU_ASSERT(WIFEXITED(status));
	CU_ASSERT_NOT_EQUAL(adm->sq_tail, adm->last_sq_tail);
	sl_nvme_ctrlr_process_admin_completions(a);
	CU_ASSERT_EQUAL(a->shared->lock_recoveries, 1);
	CU_ASSERT_EQUAL(adm->sq_tail, adm->last_sq_tail);
	CU_ASSERT_EQUAL(g_m.opc_count[1][SL_NVME_OPC_GET_FEATURES], gf_before + 1);
	CU_ASSERT_EQUAL(adm->inflight, (uint32_t)a->num_aers);
	/* The lock is consistent again: admin commands work. */
	cmd = (struct sl_nvme_cmd){.opc = SL_NVME_OPC_GET_FEATURES, .cdw10 = 7};
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_cmd_admin_sync(a, &cmd, NULL, 0, &cpl), 0);
	sl_nvme_detach(a);
	g_shm_id = -1;
}

/* A joiner finds the controller not as the shared state says: it refuses while
 * others hold the controller, and resets it once they are gone. */
static void
test_inconsistent_state(void)
{
	struct sl_nvme_ctrlr *a, *b, *c;
	uint64_t resets;

	setup_shared();
	a = mock_ctrlr_attach(&g_m, NULL);
	/* Someone moved the admin queue behind the ledger's back. */
	g_m.regs[SL_NVME_REG_ASQ / 4] ^= 0x1000;
	b = mock_ctrlr_construct(&g_m, NULL);
	CU_ASSERT_EQUAL(nvme_ctrlr_init_sync(b), -EBUSY);
	nvme_ctrlr_destruct(b);
	CU_ASSERT_EQUAL(g_m.regs[SL_NVME_REG_CC / 4] & 1, 1);
	/* a dies: the next joiner resets the controller and becomes its primary. */
	a->shared->slots[a->slot].pid = dead_pid();
	resets = g_m.opc_count[1][SL_NVME_OPC_IDENTIFY];
	c = mock_ctrlr_construct(&g_m, NULL);
	CU_ASSERT_EQUAL(nvme_ctrlr_init_sync(c), 0);
	CU_ASSERT(c->shared->slots[c->slot].primary);
	CU_ASSERT(g_m.opc_count[1][SL_NVME_OPC_IDENTIFY] > resets);
	CU_ASSERT_EQUAL(c->num_aers, 4);
	forget(a, NULL, 0);
	sl_nvme_detach(c);
	g_shm_id = -1;
}

/* A second connect in one process takes a reference. */
static void
test_private_mode_single_slot(void)
{
	struct sl_nvme_ctrlr *a;
	struct sl_nvme_ledger_info info;

	mock_ctrlr_setup(&g_m);
	a = mock_ctrlr_attach(&g_m, NULL);
	CU_ASSERT_FALSE(a->shm);
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_get_ledger(a, &info), 0);
	CU_ASSERT_FALSE(info.shared);
	CU_ASSERT_EQUAL(info.num_procs, 1);
	CU_ASSERT_EQUAL(info.procs[0].refs, 1);
	CU_ASSERT_EQUAL(info.queues_total, MOCK_MAX_QUEUES - 1);
	sl_nvme_detach(a);
}

int
main(void)
{
	static const struct mock_test tests[] = {
		{"join a controller, parked admin completions", test_join_and_park},
		{"reap a dead process's queues", test_reap_dead_process},
		{"pid reuse is not liveness", test_pid_reuse},
		{"a dead process's admin command is dropped", test_dead_admin_command_dropped},
		{"primary death: a survivor adopts", test_primary_death},
		{"50 kill cycles", test_kill_cycles},
		{"lock owner dead: state recovered", test_lock_owner_dead},
		{"inconsistent state: refused, then reset", test_inconsistent_state},
		{"private controller: one slot", test_private_mode_single_slot},
	};

	signal(SIGPIPE, SIG_IGN);
	return mock_run_suite("nvme_ledger", tests, SL_COUNTOF(tests));
}
