/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/* Queue pairs: phase-bit wrap, software queueing, batch limits, doorbell batching,
 * and the NVM commands end to end against the mock. */

#include "nvme_mock.h"

static struct mock_ctrlr g_m;
static bool g_no_dbbuf;

static struct sl_nvme_qpair *
qpair_setup(struct sl_nvme_ctrlr **ctrlr, uint32_t entries, uint32_t reqs)
{
	struct sl_nvme_io_qpair_opts qopts;
	struct sl_nvme_qpair *qpair;

	mock_ctrlr_setup(&g_m);
	if (g_no_dbbuf) {
		g_m.cdata.oacs = 0;
	}
	*ctrlr = mock_ctrlr_attach(&g_m, NULL);
	sl_nvme_ctrlr_get_default_io_qpair_opts(*ctrlr, &qopts);
	qopts.io_queue_size = entries;
	qopts.io_queue_requests = reqs;
	qpair = sl_nvme_ctrlr_alloc_io_qpair(*ctrlr, &qopts);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qpair);
	return qpair;
}

static uint32_t
count_writes(uint32_t offset, uint32_t from)
{
	uint32_t i, n = 0;

	for (i = from; i < g_m.num_writes; i++) {
		n += g_m.writes[i].offset == offset;
	}
	return n;
}

static void
test_phase_wrap(void)
{
	struct sl_nvme_ctrlr *ctrlr;
	struct sl_nvme_qpair *qpair = qpair_setup(&ctrlr, 8, 0);
	struct sl_nvme_ns *ns = sl_nvme_ctrlr_get_ns(ctrlr, 1);
	uint8_t *buf = sl_dma_zmalloc(8 * 512, 4096, NULL);
	struct io_status st = {0};
	uint32_t round, i, total = 0;
	uint8_t phase_flips = 0, last_phase = qpair->phase;
	uint32_t base = g_m.completions;

	CU_ASSERT_EQUAL(qpair->num_entries, 8);
	for (round = 0; round < 300; round++) {
		uint32_t batch = 1 + round % 7;

		for (i = 0; i < batch; i++) {
			memset(buf + i * 512, (int)(round + i), 512);
			CU_ASSERT_EQUAL_FATAL(sl_nvme_ns_cmd_write(ns, qpair, buf + i * 512,
								   round % 64 + i, 1, io_cpl, &st,
								   0),
					      0);
		}
		total += batch;
		while (st.done < (int)total) {
			CU_ASSERT_FATAL(sl_nvme_qpair_process_completions(qpair, 0) >= 0);
		}
		for (i = 0; i < batch; i++) {
			CU_ASSERT_EQUAL(g_m.disk[0][(round % 64 + i) * 512], (uint8_t)(round + i));
		}
		phase_flips += qpair->phase != last_phase;
		last_phase = qpair->phase;
	}
	CU_ASSERT_EQUAL(st.errors, 0);
	CU_ASSERT_EQUAL(g_m.completions - base, total);
	CU_ASSERT(phase_flips > 100);
	CU_ASSERT_EQUAL(sl_nvme_qpair_get_num_outstanding(qpair), 0);
	sl_dma_free(buf);
	sl_nvme_ctrlr_free_io_qpair(qpair);
	sl_nvme_detach(ctrlr);
}

static int g_order[32];
static int g_norder;

static void
order_cpl(void *cb_arg, const struct sl_nvme_cpl *cpl)
{
	CU_ASSERT_FALSE(sl_nvme_cpl_is_error(cpl));
	g_order[g_norder++] = (int)(intptr_t)cb_arg;
}

static void
test_software_queueing(void)
{
	struct sl_nvme_ctrlr *ctrlr;
	struct sl_nvme_qpair *qpair = qpair_setup(&ctrlr, 4, 12);
	struct sl_nvme_ns *ns = sl_nvme_ctrlr_get_ns(ctrlr, 1);
	uint8_t *buf = sl_dma_zmalloc(4096, 4096, NULL);
	int i;

	g_norder = 0;
	g_m.hold_io = true;
	for (i = 0; i < 12; i++) {
		CU_ASSERT_EQUAL(sl_nvme_ns_cmd_read(ns, qpair, buf, (uint64_t)i, 1, order_cpl,
						    (void *)(intptr_t)i, 0),
				0);
	}
	/* 3 on the controller (4 entries), 9 waiting; no request left. */
	CU_ASSERT_EQUAL(sl_nvme_ns_cmd_read(ns, qpair, buf, 0, 1, order_cpl, NULL, 0), -ENOMEM);
	CU_ASSERT_EQUAL(sl_nvme_qpair_process_completions(qpair, 0), 0);
	CU_ASSERT_EQUAL(g_m.num_held, 3);
	CU_ASSERT_EQUAL(qpair->num_queued, 9);
	CU_ASSERT_EQUAL(sl_nvme_qpair_get_num_outstanding(qpair), 12);
	/* Completions free entries; queued requests follow in order. */
	mock_release_held(&g_m);
	while (g_norder < 12) {
		CU_ASSERT_FATAL(sl_nvme_qpair_process_completions(qpair, 0) >= 0);
	}
	for (i = 0; i < 12; i++) {
		CU_ASSERT_EQUAL(g_order[i], i);
	}
	CU_ASSERT_EQUAL(sl_nvme_qpair_get_num_outstanding(qpair), 0);
	sl_dma_free(buf);
	sl_nvme_ctrlr_free_io_qpair(qpair);
	sl_nvme_detach(ctrlr);
}

static void
test_batch_limit_and_doorbells(void)
{
	struct sl_nvme_ctrlr *ctrlr;
	struct sl_nvme_qpair *qpair;
	struct sl_nvme_ns *ns;
	uint8_t *buf = sl_dma_zmalloc(4096, 4096, NULL);
	struct io_status st = {0};
	struct sl_nvme_qpair_stats stats;
	uint32_t from;

	/* Registers only here: shadow doorbells are tested on their own. */
	g_no_dbbuf = true;
	qpair = qpair_setup(&ctrlr, 32, 0);
	g_no_dbbuf = false;
	ns = sl_nvme_ctrlr_get_ns(ctrlr, 1);
	from = g_m.num_writes;
	int i;

	for (i = 0; i < 5; i++) {
		CU_ASSERT_EQUAL(sl_nvme_ns_cmd_read(ns, qpair, buf, 0, 1, io_cpl, &st, 0), 0);
	}
	/* Deferred: nothing rung yet; then one SQ doorbell for all five. */
	CU_ASSERT_EQUAL(count_writes(qpair->sq_tdbl, from), 0);
	CU_ASSERT_EQUAL(sl_nvme_qpair_process_completions(qpair, 2), 2);
	CU_ASSERT_EQUAL(count_writes(qpair->sq_tdbl, from), 1);
	CU_ASSERT_EQUAL(count_writes(qpair->cq_hdbl, from), 1);
	CU_ASSERT_EQUAL(sl_nvme_qpair_process_completions(qpair, 2), 2);
	CU_ASSERT_EQUAL(sl_nvme_qpair_process_completions(qpair, 2), 1);
	CU_ASSERT_EQUAL(sl_nvme_qpair_process_completions(qpair, 2), 0);
	CU_ASSERT_EQUAL(count_writes(qpair->sq_tdbl, from), 1);
	CU_ASSERT_EQUAL(count_writes(qpair->cq_hdbl, from), 3);
	CU_ASSERT_EQUAL(st.done, 5);
	sl_nvme_qpair_get_stats(qpair, &stats);
	CU_ASSERT_EQUAL(stats.polls, 4);
	CU_ASSERT_EQUAL(stats.idle_polls, 1);
	CU_ASSERT_EQUAL(stats.completions, 5);
	CU_ASSERT_EQUAL(stats.submitted_requests, 5);
	CU_ASSERT_EQUAL(stats.sq_mmio_doorbell_updates, 1);
	CU_ASSERT_EQUAL(stats.cq_mmio_doorbell_updates, 3);
	CU_ASSERT_EQUAL(stats.sq_shadow_doorbell_updates + stats.cq_shadow_doorbell_updates, 0);
	sl_dma_free(buf);
	sl_nvme_ctrlr_free_io_qpair(qpair);
	sl_nvme_detach(ctrlr);
}

static void
test_nvm_commands(void)
{
	struct sl_nvme_ctrlr *ctrlr;
	struct sl_nvme_qpair *qpair = qpair_setup(&ctrlr, 16, 0);
	struct sl_nvme_ns *ns = sl_nvme_ctrlr_get_ns(ctrlr, 3);
	uint8_t *buf = sl_dma_zmalloc(8192, 4096, NULL);
	struct io_status st = {0};
	struct sl_nvme_dsm_range ranges[2] = {
		{.length = 8, .starting_lba = 16},
		{.length = 4, .starting_lba = 100},
	};
	struct sl_nvme_cmd raw = {.opc = SL_NVME_OPC_READ, .nsid = 3, .cdw10 = 0, .cdw12 = 0};

	memset(buf, 0xab, 4096);
	CU_ASSERT_EQUAL(
		sl_nvme_ns_cmd_write(ns, qpair, buf, 10, 8, io_cpl, &st, SL_NVME_IO_FLAGS_FUA), 0);
	CU_ASSERT_EQUAL(sl_nvme_ns_cmd_compare(ns, qpair, buf, 10, 8, io_cpl, &st, 0), 0);
	CU_ASSERT_EQUAL(sl_nvme_ns_cmd_flush(ns, qpair, io_cpl, &st), 0);
	sl_nvme_qpair_process_completions(qpair, 0);
	CU_ASSERT_EQUAL(st.done, 3);
	CU_ASSERT_EQUAL(st.errors, 0);
	CU_ASSERT_EQUAL(g_m.disk[1][10 * 512], 0xab);
	/* A mismatch is a media error: compare failure. */
	buf[100] ^= 1;
	CU_ASSERT_EQUAL(sl_nvme_ns_cmd_compare(ns, qpair, buf, 10, 8, io_cpl, &st, 0), 0);
	sl_nvme_qpair_process_completions(qpair, 0);
	CU_ASSERT_EQUAL(st.last.status.sct, SL_NVME_SCT_MEDIA_ERROR);
	CU_ASSERT_EQUAL(st.last.status.sc, SL_NVME_SC_COMPARE_FAILURE);
	/* Write zeroes, dataset management, raw passthrough. */
	CU_ASSERT_EQUAL(sl_nvme_ns_cmd_write_zeroes(ns, qpair, 12, 2, io_cpl, &st,
						    SL_NVME_IO_FLAGS_DEALLOCATE),
			0);
	CU_ASSERT_EQUAL(sl_nvme_ns_cmd_dataset_management(ns, qpair, SL_NVME_DSM_ATTR_DEALLOCATE,
							  ranges, 2, io_cpl, &st),
			0);
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_cmd_io_raw(ctrlr, qpair, &raw, buf + 4096, 512, io_cpl, &st),
			0);
	sl_nvme_qpair_process_completions(qpair, 0);
	CU_ASSERT_EQUAL(st.done, 7);
	CU_ASSERT_EQUAL(g_m.disk[1][12 * 512], 0);
	CU_ASSERT_EQUAL(g_m.disk[1][14 * 512], 0xab);
	CU_ASSERT_EQUAL(g_m.last_dsm_n, 2);
	CU_ASSERT_EQUAL(g_m.last_dsm[1].starting_lba, 100);
	CU_ASSERT_EQUAL(g_m.last_dsm[1].length, 4);
	/* Bad arguments are refused before anything is queued. */
	CU_ASSERT_EQUAL(sl_nvme_ns_cmd_read(ns, qpair, buf, MOCK_NS_SECTORS - 1, 2, io_cpl, &st, 0),
			-EINVAL);
	CU_ASSERT_EQUAL(sl_nvme_ns_cmd_read(ns, qpair, buf, 0, 0, io_cpl, &st, 0), -EINVAL);
	CU_ASSERT_EQUAL(sl_nvme_ns_cmd_read(ns, qpair, buf, 0, 1, io_cpl, &st, 1), -EINVAL);
	CU_ASSERT_EQUAL(sl_nvme_ns_cmd_read(ns, qpair, buf, 0, 1025, io_cpl, &st, 0), -EINVAL);
	CU_ASSERT_EQUAL(sl_nvme_ns_cmd_dataset_management(ns, qpair, 0, ranges, 0, io_cpl, &st),
			-EINVAL);
	CU_ASSERT_EQUAL(sl_nvme_qpair_get_num_outstanding(qpair), 0);
	sl_dma_free(buf);
	sl_nvme_ctrlr_free_io_qpair(qpair);
	sl_nvme_detach(ctrlr);
}

/* A DSM range's length is 32 bits: deallocating a whole namespace of more than 65536
 * blocks (mkfs's discard of a 128 MiB disk) is one range, not bound by the 16-bit NLB
 * of read/write/write zeroes. */
static void
test_dsm_large_ranges(void)
{
	/* 2^33 blocks of 512 bytes: 4 TiB, so that a UINT32_MAX range fits. */
	const uint64_t nsze = 1ull << 33;
	struct sl_nvme_io_qpair_opts qopts;
	struct sl_nvme_ctrlr *ctrlr;
	struct sl_nvme_qpair *qpair;
	struct sl_nvme_ns *ns;
	struct io_status st = {0};
	struct sl_nvme_dsm_range whole = {.length = 262144, .starting_lba = 0};
	struct sl_nvme_dsm_range ranges[2] = {
		{.length = UINT32_MAX, .starting_lba = 0},
		{.length = 1, .starting_lba = nsze - 1},
	};
	struct sl_nvme_dsm_range past_end = {.length = 2, .starting_lba = nsze - 1};

	mock_ctrlr_setup(&g_m);
	g_m.nsdata[0].nsze = nsze;
	g_m.nsdata[0].ncap = nsze;
	ctrlr = mock_ctrlr_attach(&g_m, NULL);
	sl_nvme_ctrlr_get_default_io_qpair_opts(ctrlr, &qopts);
	qopts.io_queue_size = 16;
	qpair = sl_nvme_ctrlr_alloc_io_qpair(ctrlr, &qopts);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qpair);
	ns = sl_nvme_ctrlr_get_ns(ctrlr, 1);
	CU_ASSERT_EQUAL_FATAL(sl_nvme_ns_get_num_sectors(ns), nsze);

	CU_ASSERT_EQUAL(sl_nvme_ns_cmd_dataset_management(ns, qpair, SL_NVME_DSM_ATTR_DEALLOCATE,
							  &whole, 1, io_cpl, &st),
			0);
	sl_nvme_qpair_process_completions(qpair, 0);
	CU_ASSERT_EQUAL(st.done, 1);
	CU_ASSERT_EQUAL(g_m.last_dsm_n, 1);
	CU_ASSERT_EQUAL(g_m.last_dsm[0].length, 262144);
	CU_ASSERT_EQUAL(sl_nvme_ns_cmd_dataset_management(ns, qpair, SL_NVME_DSM_ATTR_DEALLOCATE,
							  ranges, 2, io_cpl, &st),
			0);
	sl_nvme_qpair_process_completions(qpair, 0);
	CU_ASSERT_EQUAL(st.done, 2);
	CU_ASSERT_EQUAL(st.errors, 0);
	CU_ASSERT_EQUAL(g_m.last_dsm_n, 2);
	CU_ASSERT_EQUAL(g_m.last_dsm[0].length, UINT32_MAX);
	CU_ASSERT_EQUAL(g_m.last_dsm[1].starting_lba, nsze - 1);
	/* Still bounded by the namespace. */
	CU_ASSERT_EQUAL(sl_nvme_ns_cmd_dataset_management(ns, qpair, SL_NVME_DSM_ATTR_DEALLOCATE,
							  &past_end, 1, io_cpl, &st),
			-EINVAL);
	/* Write zeroes keeps the 16-bit NLB: 65536 blocks at most (the bdev's
	 * max_write_zeroes_blocks). */
	CU_ASSERT_EQUAL(sl_nvme_ns_cmd_write_zeroes(ns, qpair, 0, 65536, io_cpl, &st, 0), 0);
	sl_nvme_qpair_process_completions(qpair, 0);
	CU_ASSERT_EQUAL(st.done, 3);
	CU_ASSERT_EQUAL(g_m.last_wz_nlb, 65536);
	CU_ASSERT_EQUAL(sl_nvme_ns_cmd_write_zeroes(ns, qpair, 0, 65537, io_cpl, &st, 0), -EINVAL);
	CU_ASSERT_EQUAL(st.errors, 0);
	CU_ASSERT_EQUAL(sl_nvme_qpair_get_num_outstanding(qpair), 0);
	sl_nvme_ctrlr_free_io_qpair(qpair);
	sl_nvme_detach(ctrlr);
}

/* Shadow doorbells: values go to memory; the register only when the event index says. */
static void
test_shadow_doorbells(void)
{
	struct sl_nvme_ctrlr *ctrlr;
	struct sl_nvme_qpair *qpair = qpair_setup(&ctrlr, 32, 0);
	struct sl_nvme_ns *ns = sl_nvme_ctrlr_get_ns(ctrlr, 1);
	uint8_t *buf = sl_dma_zmalloc(4096, 4096, NULL);
	struct io_status st = {0};
	struct sl_nvme_qpair_stats stats;
	uint32_t mmio;

	CU_ASSERT_PTR_NOT_NULL_FATAL(qpair->sq_shadow);
	CU_ASSERT_PTR_NULL(ctrlr->adminq->sq_shadow);
	/* The controller caught up (event index = old tail): one register write. */
	mmio = g_m.mmio_doorbells;
	CU_ASSERT_EQUAL(sl_nvme_ns_cmd_read(ns, qpair, buf, 0, 1, io_cpl, &st, 0), 0);
	sl_nvme_qpair_process_completions(qpair, 0);
	CU_ASSERT_EQUAL(st.done, 1);
	CU_ASSERT_EQUAL(g_m.dbbuf_db[2], 1);
	CU_ASSERT_EQUAL(g_m.dbbuf_db[3], 1);
	/* SQ, and CQ: its event index 0 lies in [0, 1). */
	CU_ASSERT_EQUAL(g_m.mmio_doorbells - mmio, 2);
	/* The controller is still busy (event index behind the old tail): no MMIO. */
	g_m.dbbuf_ei[2] = 0;
	mmio = g_m.mmio_doorbells;
	CU_ASSERT_EQUAL(sl_nvme_ns_cmd_read(ns, qpair, buf, 1, 1, io_cpl, &st, 0), 0);
	CU_ASSERT_EQUAL(sl_nvme_qpair_process_completions(qpair, 0), 0);
	CU_ASSERT_EQUAL(g_m.mmio_doorbells, mmio);
	CU_ASSERT_EQUAL(g_m.dbbuf_db[2], 2);
	/* It polls the shadow on its own and finds the command. */
	mock_sq_doorbell(&g_m, 1, (uint16_t)g_m.dbbuf_db[2]);
	CU_ASSERT_EQUAL(sl_nvme_qpair_process_completions(qpair, 0), 1);
	CU_ASSERT_EQUAL(st.done, 2);
	CU_ASSERT_EQUAL(st.errors, 0);
	sl_nvme_qpair_get_stats(qpair, &stats);
	CU_ASSERT_EQUAL(stats.sq_mmio_doorbell_updates, 1);
	CU_ASSERT_EQUAL(stats.sq_shadow_doorbell_updates, 1);
	CU_ASSERT_EQUAL(stats.cq_mmio_doorbell_updates + stats.cq_shadow_doorbell_updates, 2);
	/* The rule itself: ring when the event index lies in [old, new). */
	CU_ASSERT(nvme_dbbuf_need_event(5, 6, 5));
	CU_ASSERT(nvme_dbbuf_need_event(5, 9, 3));
	CU_ASSERT(!nvme_dbbuf_need_event(2, 9, 5));
	CU_ASSERT(!nvme_dbbuf_need_event(9, 9, 5));
	CU_ASSERT(nvme_dbbuf_need_event(65535, 1, 65534));
	sl_dma_free(buf);
	sl_nvme_ctrlr_free_io_qpair(qpair);
	sl_nvme_detach(ctrlr);
}

/* Data buffers that translate to themselves are looked up once per range; buffers
 * that translate elsewhere (IOVA = PA) every time. */
static uint32_t g_xlate_calls;
static uint64_t g_xlate_offset;

static uint64_t
counting_vtophys(struct sl_nvme_ctrlr *ctrlr, const void *vaddr, uint64_t *size)
{
	g_xlate_calls++;
	if (size != NULL) {
		*size = SL_MIN(*size, 1u << 20);
	}
	return (uint64_t)(uintptr_t)vaddr + g_xlate_offset;
}

static void
test_iova_cache(void)
{
	struct nvme_reg_ops ops = g_mock_reg_ops;
	struct sl_nvme_ctrlr *ctrlr;
	struct sl_nvme_qpair *qpair = qpair_setup(&ctrlr, 32, 0);
	uint8_t *buf = sl_dma_zmalloc(3 * 4096, 4096, NULL);
	struct nvme_tracker *tr = &qpair->tr[0];
	struct nvme_request req = {0};
	struct iovec iov = {.iov_base = buf + 4096, .iov_len = 4096};

	ops.vtophys = counting_vtophys;
	ctrlr->reg_ops = &ops;
	tr->req = &req;
	g_xlate_calls = 0;
	g_xlate_offset = 0;
	CU_ASSERT_EQUAL(nvme_pcie_build_prps(ctrlr, &qpair->iova_cache, tr, &iov, 1, 4096), 0);
	CU_ASSERT_EQUAL(req.cmd.dptr.prp.prp1, (uintptr_t)(buf + 4096));
	/* A miss: the range, and its 2 MiB-aligned start. */
	CU_ASSERT(g_xlate_calls >= 1 && g_xlate_calls <= 2);
	g_xlate_calls = 0;
	iov.iov_base = buf;
	CU_ASSERT_EQUAL(nvme_pcie_build_prps(ctrlr, &qpair->iova_cache, tr, &iov, 1, 4096), 0);
	iov.iov_base = buf + 8192;
	CU_ASSERT_EQUAL(nvme_pcie_build_prps(ctrlr, &qpair->iova_cache, tr, &iov, 1, 4096), 0);
	CU_ASSERT_EQUAL(req.cmd.dptr.prp.prp1, (uintptr_t)(buf + 8192));
	CU_ASSERT_EQUAL(g_xlate_calls, 0);
	/* Not identity: never cached. */
	qpair->iova_cache.start = qpair->iova_cache.end = 0;
	g_xlate_offset = 1ull << 40;
	CU_ASSERT_EQUAL(nvme_pcie_build_prps(ctrlr, &qpair->iova_cache, tr, &iov, 1, 4096), 0);
	CU_ASSERT_EQUAL(nvme_pcie_build_prps(ctrlr, &qpair->iova_cache, tr, &iov, 1, 4096), 0);
	CU_ASSERT_EQUAL(req.cmd.dptr.prp.prp1, (uintptr_t)(buf + 8192) + g_xlate_offset);
	CU_ASSERT_EQUAL(g_xlate_calls, 2);
	CU_ASSERT_EQUAL(qpair->iova_cache.end, 0);
	g_xlate_offset = 0;
	tr->req = NULL;
	ctrlr->reg_ops = &g_mock_reg_ops;
	sl_dma_free(buf);
	sl_nvme_ctrlr_free_io_qpair(qpair);
	sl_nvme_detach(ctrlr);
}

/* A command submitted long after the last poll is not timed out by the first check:
 * no clock is read at submission, the first check starts its clock. */
static void
test_timeout_never_early(void)
{
	struct sl_nvme_ctrlr_opts opts;
	struct sl_nvme_ctrlr *ctrlr;
	struct sl_nvme_qpair *qpair;
	struct sl_nvme_ns *ns;
	uint8_t *buf = sl_dma_zmalloc(4096, 4096, NULL);
	struct io_status st = {0};
	uint32_t i;

	sl_nvme_ctrlr_get_default_opts(&opts);
	opts.io_timeout_us = 1000;
	mock_ctrlr_setup(&g_m);
	ctrlr = mock_ctrlr_attach(&g_m, &opts);
	qpair = sl_nvme_ctrlr_alloc_io_qpair(ctrlr, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qpair);
	ns = sl_nvme_ctrlr_get_ns(ctrlr, 1);
	g_m.hold_io = true;
	g_m.abort_works = true;
	g_ticks += 5000000;
	CU_ASSERT_EQUAL(sl_nvme_ns_cmd_read(ns, qpair, buf, 0, 1, io_cpl, &st, 0), 0);
	for (i = 0; i < 4 * NVME_TIMEOUT_CHECK_POLLS; i++) {
		sl_nvme_qpair_process_completions(qpair, 0);
	}
	CU_ASSERT_EQUAL(g_m.opc_count[1][SL_NVME_OPC_ABORT], 0);
	/* Past the timeout and a check interval: now it fires. */
	g_ticks += 20000;
	for (i = 0; i < NVME_TIMEOUT_CHECK_POLLS; i++) {
		sl_nvme_qpair_process_completions(qpair, 0);
	}
	CU_ASSERT_EQUAL(g_m.opc_count[1][SL_NVME_OPC_ABORT], 1);
	sl_nvme_ctrlr_process_admin_completions(ctrlr);
	sl_nvme_qpair_process_completions(qpair, 0);
	CU_ASSERT_EQUAL(st.done, 1);
	sl_dma_free(buf);
	sl_nvme_ctrlr_free_io_qpair(qpair);
	sl_nvme_detach(ctrlr);
}

int
main(void)
{
	static const struct mock_test tests[] = {
		{"phase-bit wrap", test_phase_wrap},
		{"software queueing when the SQ is full", test_software_queueing},
		{"batch limit and doorbell batching", test_batch_limit_and_doorbells},
		{"NVM commands", test_nvm_commands},
		{"DSM ranges past 65536 blocks", test_dsm_large_ranges},
		{"shadow doorbells", test_shadow_doorbells},
		{"IOVA == VA cache", test_iova_cache},
		{"timeouts never fire early", test_timeout_never_early},
	};

	return mock_run_suite("nvme_qpair", tests, SL_COUNTOF(tests));
}
