/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/* Controller: the init sequence, timeouts, aborts, resets, faults, status decoding,
 * transport IDs. */

#include "nvme_mock.h"

static struct mock_ctrlr g_m;

static void
test_init_sequence(void)
{
	static const enum nvme_ctrlr_state expect[] = {
		NVME_CTRLR_STATE_INIT,
		NVME_CTRLR_STATE_DISABLE,
		NVME_CTRLR_STATE_DISABLE_WAIT_FOR_READY_0,
		NVME_CTRLR_STATE_ENABLE_ADMIN_QUEUE,
		NVME_CTRLR_STATE_ENABLE,
		NVME_CTRLR_STATE_ENABLE_WAIT_FOR_READY_1,
		NVME_CTRLR_STATE_IDENTIFY,
		NVME_CTRLR_STATE_WAIT_FOR_IDENTIFY,
		NVME_CTRLR_STATE_SET_NUM_QUEUES,
		NVME_CTRLR_STATE_WAIT_FOR_SET_NUM_QUEUES,
		NVME_CTRLR_STATE_DBBUF_CONFIG,
		NVME_CTRLR_STATE_WAIT_FOR_DBBUF_CONFIG,
		NVME_CTRLR_STATE_IDENTIFY_ACTIVE_NS,
		NVME_CTRLR_STATE_WAIT_FOR_IDENTIFY_ACTIVE_NS,
		NVME_CTRLR_STATE_IDENTIFY_NS,
		NVME_CTRLR_STATE_WAIT_FOR_IDENTIFY_NS,
		NVME_CTRLR_STATE_IDENTIFY_ID_DESCS,
		NVME_CTRLR_STATE_WAIT_FOR_IDENTIFY_ID_DESCS,
		NVME_CTRLR_STATE_IDENTIFY_NS,
		NVME_CTRLR_STATE_WAIT_FOR_IDENTIFY_NS,
		NVME_CTRLR_STATE_IDENTIFY_ID_DESCS,
		NVME_CTRLR_STATE_WAIT_FOR_IDENTIFY_ID_DESCS,
		NVME_CTRLR_STATE_IDENTIFY_NS,
		NVME_CTRLR_STATE_CONFIGURE_AER,
		NVME_CTRLR_STATE_WAIT_FOR_CONFIGURE_AER,
		NVME_CTRLR_STATE_SUBMIT_AERS,
		NVME_CTRLR_STATE_READY,
	};
	enum nvme_ctrlr_state seen[64];
	size_t nseen = 0, i;
	struct sl_nvme_ctrlr *ctrlr;
	union sl_nvme_cc_register cc;
	struct sl_nvme_ns *ns;
	int guard;

	mock_ctrlr_setup(&g_m);
	/* Found enabled (a previous owner): the driver must disable it first. */
	g_m.regs[SL_NVME_REG_CC / 4] = 0x00460001;
	g_m.regs[SL_NVME_REG_CSTS / 4] = 1;
	ctrlr = mock_ctrlr_construct(&g_m, NULL);
	seen[nseen++] = ctrlr->state;
	for (guard = 0; guard < 1000 && ctrlr->state != NVME_CTRLR_STATE_READY; guard++) {
		CU_ASSERT_EQUAL_FATAL(nvme_ctrlr_process_init(ctrlr), 0);
		if (ctrlr->state != seen[nseen - 1] && nseen < SL_COUNTOF(seen)) {
			seen[nseen++] = ctrlr->state;
		}
	}
	CU_ASSERT_EQUAL_FATAL(nseen, SL_COUNTOF(expect));
	for (i = 0; i < nseen; i++) {
		CU_ASSERT_EQUAL(seen[i], expect[i]);
	}

	/* Register writes: disable, admin queue, enable with the CC fields, doorbells. */
	CU_ASSERT_EQUAL(g_m.writes[0].offset, SL_NVME_REG_CC);
	CU_ASSERT_EQUAL(g_m.writes[0].value & 1, 0);
	CU_ASSERT_EQUAL(g_m.writes[1].offset, SL_NVME_REG_AQA);
	CU_ASSERT_EQUAL(g_m.writes[1].value,
			((NVME_ADMIN_QUEUE_SIZE - 1) << 16) | (NVME_ADMIN_QUEUE_SIZE - 1));
	CU_ASSERT_EQUAL(g_m.writes[2].offset, SL_NVME_REG_ASQ);
	CU_ASSERT_EQUAL(g_m.writes[3].offset, SL_NVME_REG_ASQ + 4);
	CU_ASSERT_EQUAL(g_m.writes[4].offset, SL_NVME_REG_ACQ);
	CU_ASSERT_EQUAL(g_m.writes[5].offset, SL_NVME_REG_ACQ + 4);
	CU_ASSERT_EQUAL(g_m.writes[2].value, (uint32_t)ctrlr->adminq->sq_iova);
	CU_ASSERT_EQUAL(g_m.writes[6].offset, SL_NVME_REG_CC);
	cc.raw = g_m.writes[6].value;
	CU_ASSERT_EQUAL(cc.bits.en, 1);
	CU_ASSERT_EQUAL(cc.bits.iosqes, 6);
	CU_ASSERT_EQUAL(cc.bits.iocqes, 4);
	CU_ASSERT_EQUAL(cc.bits.mps, 0);
	CU_ASSERT_EQUAL(cc.bits.css, 0);
	CU_ASSERT_EQUAL(cc.bits.shn, 0);
	CU_ASSERT_EQUAL(g_m.writes[7].offset, SL_NVME_REG_DBS);

	/* What the admin commands brought back. */
	CU_ASSERT(memcmp(sl_nvme_ctrlr_get_data(ctrlr)->mn, "Sluice Mock Ctrl", 16) == 0);
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_get_num_io_queues(ctrlr), MOCK_MAX_QUEUES - 1);
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_get_max_xfer_size(ctrlr), 128 * 4096);
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_get_num_ns(ctrlr), 4);
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_get_first_active_ns(ctrlr), 1);
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_get_next_active_ns(ctrlr, 1), 3);
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_get_next_active_ns(ctrlr, 3), 0);
	CU_ASSERT(!sl_nvme_ctrlr_is_active_ns(ctrlr, 2));
	ns = sl_nvme_ctrlr_get_ns(ctrlr, 3);
	CU_ASSERT_EQUAL(sl_nvme_ns_get_sector_size(ns), 512);
	CU_ASSERT_EQUAL(sl_nvme_ns_get_num_sectors(ns), MOCK_NS_SECTORS);
	CU_ASSERT_PTR_NOT_NULL(sl_nvme_ns_get_uuid(ns));
	CU_ASSERT_EQUAL(sl_nvme_ns_get_uuid(ns)[15], 3);
	CU_ASSERT_EQUAL(sl_nvme_ns_get_nguid(ns)[0], 0xa1);
	CU_ASSERT_EQUAL(g_m.opc_count[1][SL_NVME_OPC_SET_FEATURES], 2);
	CU_ASSERT_EQUAL(g_m.aers_held, 4);
	CU_ASSERT_EQUAL(ctrlr->shared->quirks, NVME_QUIRK_MMIO_32BIT_ONLY);
	CU_ASSERT(ctrlr->dbbuf_enabled);
	CU_ASSERT_PTR_NOT_NULL(g_m.dbbuf_db);

	CU_ASSERT_EQUAL(sl_nvme_detach(ctrlr), 0);
	CU_ASSERT_EQUAL((g_m.regs[SL_NVME_REG_CC / 4] >> 14) & 3, SL_NVME_SHN_NORMAL);
}

static void
test_init_ready_timeout(void)
{
	struct sl_nvme_ctrlr *ctrlr;
	int rc = 0, i;

	mock_ctrlr_setup(&g_m);
	g_m.ignore_en = true;
	ctrlr = mock_ctrlr_construct(&g_m, NULL);
	for (i = 0; i < 100 && rc == 0; i++) {
		rc = nvme_ctrlr_process_init(ctrlr);
		g_ticks += 1000000;
	}
	CU_ASSERT_EQUAL(rc, -ETIMEDOUT);
	CU_ASSERT_EQUAL(ctrlr->state, NVME_CTRLR_STATE_ERROR);
	nvme_ctrlr_destruct(ctrlr);
}

static void
test_init_removed(void)
{
	struct sl_nvme_ctrlr *ctrlr;

	mock_ctrlr_setup(&g_m);
	g_m.removed = true;
	ctrlr = mock_ctrlr_construct(&g_m, NULL);
	CU_ASSERT_EQUAL(nvme_ctrlr_init_sync(ctrlr), -ENODEV);
	CU_ASSERT(sl_nvme_ctrlr_is_removed(ctrlr));
	nvme_ctrlr_destruct(ctrlr);
}

static void *g_buf;

static struct sl_nvme_qpair *
setup_io(struct sl_nvme_ctrlr **ctrlr, const struct sl_nvme_ctrlr_opts *opts)
{
	struct sl_nvme_qpair *qpair;

	mock_ctrlr_setup(&g_m);
	*ctrlr = mock_ctrlr_attach(&g_m, opts);
	qpair = sl_nvme_ctrlr_alloc_io_qpair(*ctrlr, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qpair);
	CU_ASSERT_EQUAL(sl_nvme_qpair_get_id(qpair), 1);
	if (g_buf == NULL) {
		g_buf = sl_dma_zmalloc(16 * 4096, 4096, NULL);
	}
	return qpair;
}

static void
reset_with_policy(enum sl_nvme_reset_policy policy)
{
	struct sl_nvme_ctrlr_opts opts;
	struct sl_nvme_ctrlr *ctrlr;
	struct sl_nvme_qpair *qpair;
	struct sl_nvme_ns *ns;
	struct io_status st = {0};
	uint32_t creates;
	int i;

	sl_nvme_ctrlr_get_default_opts(&opts);
	opts.reset_policy = policy;
	qpair = setup_io(&ctrlr, &opts);
	ns = sl_nvme_ctrlr_get_ns(ctrlr, 1);
	memset(g_buf, 0x5a, 4096);
	memset(g_m.disk[0], 0x5a, 4096);
	g_m.hold_io = true;
	for (i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(
			sl_nvme_ns_cmd_read(ns, qpair, g_buf, (uint64_t)i, 1, io_cpl, &st, 0), 0);
	}
	CU_ASSERT_EQUAL(sl_nvme_qpair_process_completions(qpair, 0), 0);
	CU_ASSERT_EQUAL(g_m.num_held, 3);
	creates = g_m.opc_count[1][SL_NVME_OPC_CREATE_IO_SQ];

	/* The controller forgets everything on reset; the qpair comes back on its next poll. */
	g_m.hold_io = false;
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_reset(ctrlr), 0);
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_get_reset_count(ctrlr), 1);
	CU_ASSERT_EQUAL(atomic_load(&qpair->state), NVME_QPAIR_DISCONNECTED);
	CU_ASSERT_EQUAL(g_m.aers_held, 4);
	CU_ASSERT_EQUAL(st.done, 0);
	sl_nvme_qpair_process_completions(qpair, 0);
	sl_nvme_qpair_process_completions(qpair, 0);
	CU_ASSERT_EQUAL(g_m.opc_count[1][SL_NVME_OPC_CREATE_IO_SQ], creates + 1);
	CU_ASSERT_EQUAL(atomic_load(&qpair->state), NVME_QPAIR_ENABLED);
	CU_ASSERT_EQUAL(st.done, 3);
	if (policy == SL_NVME_RESET_RESUBMIT) {
		CU_ASSERT_EQUAL(st.errors, 0);
		CU_ASSERT_EQUAL(g_m.opc_count[0][SL_NVME_OPC_READ], 6);
	} else {
		CU_ASSERT_EQUAL(st.errors, 3);
		CU_ASSERT_EQUAL(st.last.status.sc, SL_NVME_SC_ABORTED_SQ_DELETION);
		CU_ASSERT_EQUAL(g_m.opc_count[0][SL_NVME_OPC_READ], 3);
	}
	/* And it still works. */
	CU_ASSERT_EQUAL(sl_nvme_ns_cmd_read(ns, qpair, g_buf, 0, 8, io_cpl, &st, 0), 0);
	sl_nvme_qpair_process_completions(qpair, 0);
	CU_ASSERT_EQUAL(st.done, 4);
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_free_io_qpair(qpair), 0);
	sl_nvme_detach(ctrlr);
}

static void
test_reset_resubmit(void)
{
	reset_with_policy(SL_NVME_RESET_RESUBMIT);
}

static void
test_reset_fail(void)
{
	reset_with_policy(SL_NVME_RESET_FAIL);
}

/* Poll as often as it takes for an I/O qpair to read the clock and check timeouts. */
static void
poll_for_timeouts(struct sl_nvme_qpair *qpair)
{
	uint32_t i;

	for (i = 0; i < NVME_TIMEOUT_CHECK_POLLS; i++) {
		sl_nvme_qpair_process_completions(qpair, 0);
	}
}

static void
test_timeout_abort(void)
{
	struct sl_nvme_ctrlr_opts opts;
	struct sl_nvme_ctrlr *ctrlr;
	struct sl_nvme_qpair *qpair;
	struct io_status st = {0};

	sl_nvme_ctrlr_get_default_opts(&opts);
	opts.io_timeout_us = 1000;
	qpair = setup_io(&ctrlr, &opts);
	g_m.hold_io = true;
	g_m.abort_works = true;
	CU_ASSERT_EQUAL(sl_nvme_ns_cmd_write(sl_nvme_ctrlr_get_ns(ctrlr, 1), qpair, g_buf, 0, 1,
					     io_cpl, &st, 0),
			0);
	/* The first check stamps the command, the next ones measure from there. */
	poll_for_timeouts(qpair);
	g_ticks += 500;
	poll_for_timeouts(qpair);
	CU_ASSERT_EQUAL(g_m.opc_count[1][SL_NVME_OPC_ABORT], 0);
	g_ticks += 20000;
	poll_for_timeouts(qpair);
	CU_ASSERT_EQUAL(g_m.opc_count[1][SL_NVME_OPC_ABORT], 1);
	sl_nvme_ctrlr_process_admin_completions(ctrlr);
	sl_nvme_qpair_process_completions(qpair, 0);
	CU_ASSERT_EQUAL(st.done, 1);
	CU_ASSERT_EQUAL(st.last.status.sc, SL_NVME_SC_ABORTED_BY_REQUEST);
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_get_reset_count(ctrlr), 0);
	sl_nvme_ctrlr_free_io_qpair(qpair);
	sl_nvme_detach(ctrlr);
}

static void
test_timeout_abort_then_reset(void)
{
	struct sl_nvme_ctrlr_opts opts;
	struct sl_nvme_ctrlr *ctrlr;
	struct sl_nvme_qpair *qpair;
	struct io_status st = {0};

	sl_nvme_ctrlr_get_default_opts(&opts);
	opts.io_timeout_us = 1000;
	qpair = setup_io(&ctrlr, &opts);
	g_m.hold_io = true;
	CU_ASSERT_EQUAL(sl_nvme_ns_cmd_read(sl_nvme_ctrlr_get_ns(ctrlr, 1), qpair, g_buf, 7, 2,
					    io_cpl, &st, 0),
			0);
	poll_for_timeouts(qpair);
	g_ticks += 20000;
	poll_for_timeouts(qpair);
	CU_ASSERT_EQUAL(g_m.opc_count[1][SL_NVME_OPC_ABORT], 1);
	sl_nvme_ctrlr_process_admin_completions(ctrlr);
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_get_reset_count(ctrlr), 0);
	/* The abort did nothing: the second expiry resets, and the read is resubmitted. */
	g_ticks += 20000;
	poll_for_timeouts(qpair);
	CU_ASSERT(nvme_ctrlr_flags(ctrlr) & NVME_CTRLR_RESET_REQUESTED);
	g_m.hold_io = false;
	sl_nvme_ctrlr_process_admin_completions(ctrlr);
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_get_reset_count(ctrlr), 1);
	sl_nvme_qpair_process_completions(qpair, 0);
	sl_nvme_qpair_process_completions(qpair, 0);
	CU_ASSERT_EQUAL(st.done, 1);
	CU_ASSERT_EQUAL(st.errors, 0);
	sl_nvme_ctrlr_free_io_qpair(qpair);
	sl_nvme_detach(ctrlr);
}

static void
test_fatal_status_resets(void)
{
	struct sl_nvme_ctrlr *ctrlr;

	mock_ctrlr_setup(&g_m);
	ctrlr = mock_ctrlr_attach(&g_m, NULL);
	g_m.regs[SL_NVME_REG_CSTS / 4] |= 2; /* CFS */
	g_ticks += 1000000;
	sl_nvme_ctrlr_process_admin_completions(ctrlr);
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_get_reset_count(ctrlr), 1);
	CU_ASSERT(!sl_nvme_ctrlr_is_failed(ctrlr));
	CU_ASSERT_EQUAL(g_m.regs[SL_NVME_REG_CSTS / 4] & 3, 1);
	sl_nvme_detach(ctrlr);
}

static int g_removed;

static void
remove_cb(void *cb_arg, struct sl_nvme_ctrlr *ctrlr)
{
	g_removed++;
}

static void
test_surprise_removal(void)
{
	struct sl_nvme_ctrlr *ctrlr;
	struct sl_nvme_qpair *qpair;
	struct io_status st = {0};

	qpair = setup_io(&ctrlr, NULL);
	sl_nvme_ctrlr_register_remove_callback(ctrlr, remove_cb, NULL);
	g_m.hold_io = true;
	CU_ASSERT_EQUAL(sl_nvme_ns_cmd_read(sl_nvme_ctrlr_get_ns(ctrlr, 1), qpair, g_buf, 0, 1,
					    io_cpl, &st, 0),
			0);
	sl_nvme_qpair_process_completions(qpair, 0);
	g_m.removed = true;
	g_ticks += 1000000;
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_process_admin_completions(ctrlr), -ENXIO);
	CU_ASSERT(sl_nvme_ctrlr_is_removed(ctrlr));
	CU_ASSERT_EQUAL(g_removed, 1);
	CU_ASSERT_EQUAL(sl_nvme_qpair_process_completions(qpair, 0), -ENXIO);
	CU_ASSERT_EQUAL(st.done, 1);
	CU_ASSERT_EQUAL(st.last.status.sc, SL_NVME_SC_ABORTED_SQ_DELETION);
	CU_ASSERT_EQUAL(sl_nvme_ns_cmd_read(sl_nvme_ctrlr_get_ns(ctrlr, 1), qpair, g_buf, 0, 1,
					    io_cpl, &st, 0),
			-ENXIO);
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_reset(ctrlr), -ENXIO);
	sl_nvme_ctrlr_free_io_qpair(qpair);
	sl_nvme_detach(ctrlr);
}

static int g_aers;

static void
aer_cb(void *cb_arg, const struct sl_nvme_cpl *cpl)
{
	g_aers++;
}

static void
test_aer_ns_change(void)
{
	struct sl_nvme_ctrlr *ctrlr;
	union sl_nvme_async_event_completion ev = {.raw = 0};
	uint32_t identifies;

	mock_ctrlr_setup(&g_m);
	ctrlr = mock_ctrlr_attach(&g_m, NULL);
	sl_nvme_ctrlr_register_aer_callback(ctrlr, aer_cb, NULL);
	identifies = g_m.opc_count[1][SL_NVME_OPC_IDENTIFY];
	ev.bits.async_event_type = SL_NVME_ASYNC_EVENT_TYPE_NOTICE;
	ev.bits.async_event_info = SL_NVME_ASYNC_EVENT_NS_ATTR_CHANGED;
	ev.bits.log_page_identifier = SL_NVME_LOG_CHANGED_NS_LIST;
	mock_fire_aer(&g_m, ev.raw);
	sl_nvme_ctrlr_process_admin_completions(ctrlr);
	CU_ASSERT_EQUAL(g_aers, 1);
	CU_ASSERT_EQUAL(g_m.opc_count[1][SL_NVME_OPC_GET_LOG_PAGE], 1);
	/* Re-armed, and the namespaces re-read. */
	CU_ASSERT_EQUAL(g_m.aers_held, 4);
	CU_ASSERT(g_m.opc_count[1][SL_NVME_OPC_IDENTIFY] > identifies);
	CU_ASSERT(sl_nvme_ctrlr_is_active_ns(ctrlr, 3));
	sl_nvme_detach(ctrlr);
}

static void
test_admin_api(void)
{
	struct sl_nvme_ctrlr *ctrlr;
	struct io_status st = {0};
	uint8_t *buf = sl_dma_zmalloc(8192, 4096, NULL);
	struct sl_nvme_cmd cmd = {.opc = SL_NVME_OPC_GET_FEATURES, .cdw10 = 7};
	struct sl_nvme_cpl cpl;

	mock_ctrlr_setup(&g_m);
	ctrlr = mock_ctrlr_attach(&g_m, NULL);
	CU_ASSERT_EQUAL(
		sl_nvme_ctrlr_cmd_identify(ctrlr, SL_NVME_CNS_CTRLR, 0, 0, buf, 4096, io_cpl, &st),
		0);
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_cmd_get_log_page(ctrlr, SL_NVME_LOG_HEALTH_INFORMATION,
						       UINT32_MAX, buf + 4096, 512, 0, io_cpl, &st),
			0);
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_cmd_get_log_page(ctrlr, 1, 0, buf, 3, 0, io_cpl, &st),
			-EINVAL);
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_cmd_set_feature(ctrlr, SL_NVME_FEAT_ARBITRATION, 0, 0, NULL,
						      0, io_cpl, &st),
			0);
	while (st.done < 3) {
		sl_nvme_ctrlr_process_admin_completions(ctrlr);
	}
	CU_ASSERT_EQUAL(st.errors, 0);
	CU_ASSERT(memcmp(((struct sl_nvme_ctrlr_data *)buf)->sn, "MOCK0001", 8) == 0);
	CU_ASSERT_EQUAL(sl_nvme_ctrlr_cmd_admin_sync(ctrlr, &cmd, NULL, 0, &cpl), 0);
	CU_ASSERT_EQUAL(g_m.opc_count[1][SL_NVME_OPC_GET_FEATURES], 1);
	sl_dma_free(buf);
	sl_nvme_detach(ctrlr);
}

static void
test_status_strings(void)
{
	struct sl_nvme_cpl cpl = {
		.sqid = 1,
		.cid = 5,
		.status = {.sct = SL_NVME_SCT_GENERIC, .sc = SL_NVME_SC_INVALID_FIELD, .dnr = 1},
	};
	struct sl_nvme_cmd cmd = {
		.opc = SL_NVME_OPC_READ, .cid = 5, .nsid = 1, .cdw10 = 8, .cdw12 = 7};
	char buf[160];

	CU_ASSERT_STRING_EQUAL(sl_nvme_status_str(0, 0), "SUCCESS");
	CU_ASSERT_STRING_EQUAL(sl_nvme_status_str(0, 2), "INVALID FIELD");
	CU_ASSERT_STRING_EQUAL(sl_nvme_status_str(0, 0x80), "LBA OUT OF RANGE");
	CU_ASSERT_STRING_EQUAL(sl_nvme_status_str(1, 1), "INVALID QUEUE IDENTIFIER");
	CU_ASSERT_STRING_EQUAL(sl_nvme_status_str(2, 0x85), "COMPARE FAILURE");
	CU_ASSERT_STRING_EQUAL(sl_nvme_status_str(2, 0x81), "UNRECOVERED READ ERROR");
	CU_ASSERT_STRING_EQUAL(sl_nvme_status_str(3, 0x71), "ABORTED BY HOST");
	CU_ASSERT_STRING_EQUAL(sl_nvme_status_str(0, 0x7f), "UNKNOWN");
	CU_ASSERT_STRING_EQUAL(sl_nvme_status_str(7, 1), "VENDOR SPECIFIC");
	CU_ASSERT_STRING_EQUAL(sl_nvme_sct_str(2), "MEDIA ERROR");
	CU_ASSERT_STRING_EQUAL(sl_nvme_opcode_str(true, SL_NVME_OPC_IDENTIFY), "IDENTIFY");
	CU_ASSERT_STRING_EQUAL(sl_nvme_opcode_str(false, SL_NVME_OPC_DATASET_MANAGEMENT),
			       "DATASET MANAGEMENT");
	CU_ASSERT_STRING_EQUAL(sl_nvme_opcode_str(true, 0xc1), "VENDOR SPECIFIC");
	sl_nvme_cpl_fmt(buf, sizeof(buf), &cpl);
	CU_ASSERT_STRING_EQUAL(buf,
			       "INVALID FIELD (00/02) qid:1 cid:5 cdw0:0 sqhd:0000 p:0 m:0 dnr:1");
	sl_nvme_cmd_fmt(buf, sizeof(buf), false, 1, &cmd);
	CU_ASSERT_STRING_EQUAL(buf, "READ sqid:1 cid:5 nsid:1 lba:8 len:8");
}

static void
test_transport_id(void)
{
	struct sl_nvme_transport_id a, b;
	char buf[512];

	CU_ASSERT_EQUAL(sl_nvme_transport_id_parse(&a, "trtype:PCIe traddr:0000:00:04.0"), 0);
	CU_ASSERT_EQUAL(a.trtype, SL_NVME_TRANSPORT_PCIE);
	CU_ASSERT_STRING_EQUAL(a.traddr, "0000:00:04.0");
	CU_ASSERT_EQUAL(sl_nvme_transport_id_parse(&b, "  traddr=00:04.0\ttrtype=pcie "), 0);
	CU_ASSERT_STRING_EQUAL(b.traddr, "0000:00:04.0");
	CU_ASSERT_EQUAL(sl_nvme_transport_id_compare(&a, &b), 0);
	CU_ASSERT_EQUAL(sl_nvme_transport_id_fmt(buf, sizeof(buf), &a), 0);
	CU_ASSERT_STRING_EQUAL(buf, "trtype:PCIe traddr:0000:00:04.0");
	CU_ASSERT_EQUAL(sl_nvme_transport_id_fmt(buf, 10, &a), -ENOSPC);
	CU_ASSERT_EQUAL(sl_nvme_transport_id_parse(&b, "trtype:PCIe traddr:0000:00:05.0"), 0);
	CU_ASSERT(sl_nvme_transport_id_compare(&a, &b) < 0);
	CU_ASSERT_EQUAL(
		sl_nvme_transport_id_parse(&b, "trtype:TCP adrfam:ipv4 traddr:127.0.0.1 "
					       "trsvcid:4420 subnqn:nqn.2016-06.io.spdk:cnode1"),
		0);
	CU_ASSERT_STRING_EQUAL(b.trsvcid, "4420");
	CU_ASSERT_STRING_EQUAL(b.subnqn, "nqn.2016-06.io.spdk:cnode1");
	CU_ASSERT_EQUAL(sl_nvme_transport_id_parse(&b, "trtype:PCIe traddr:zz"), -EINVAL);
	CU_ASSERT_EQUAL(sl_nvme_transport_id_parse(&b, "trtype:FC traddr:0000:00:04.0"), -EINVAL);
	CU_ASSERT_EQUAL(sl_nvme_transport_id_parse(&b, "color:blue"), -EINVAL);
	CU_ASSERT_EQUAL(sl_nvme_transport_id_parse(&b, "traddr"), -EINVAL);
	CU_ASSERT_EQUAL(sl_nvme_transport_id_parse(&b, ""), -EINVAL);
}

static void
test_qid_allocator(void)
{
	struct sl_nvme_ctrlr *ctrlr;
	struct sl_nvme_qpair *q[MOCK_MAX_QUEUES];
	int i;

	mock_ctrlr_setup(&g_m);
	ctrlr = mock_ctrlr_attach(&g_m, NULL);
	for (i = 0; i < MOCK_MAX_QUEUES - 1; i++) {
		q[i] = sl_nvme_ctrlr_alloc_io_qpair(ctrlr, NULL);
		CU_ASSERT_PTR_NOT_NULL_FATAL(q[i]);
		CU_ASSERT_EQUAL(sl_nvme_qpair_get_id(q[i]), i + 1);
	}
	CU_ASSERT_PTR_NULL(sl_nvme_ctrlr_alloc_io_qpair(ctrlr, NULL));
	CU_ASSERT_EQUAL(errno, EBUSY);
	sl_nvme_ctrlr_free_io_qpair(q[2]);
	CU_ASSERT_FALSE(g_m.q[3].created);
	q[2] = sl_nvme_ctrlr_alloc_io_qpair(ctrlr, NULL);
	CU_ASSERT_EQUAL(sl_nvme_qpair_get_id(q[2]), 3);
	for (i = 0; i < MOCK_MAX_QUEUES - 1; i++) {
		sl_nvme_ctrlr_free_io_qpair(q[i]);
	}
	sl_nvme_detach(ctrlr);
}

int
main(void)
{
	static const struct mock_test tests[] = {
		{"init sequence", test_init_sequence},
		{"init: CSTS.RDY timeout", test_init_ready_timeout},
		{"init: removed device", test_init_removed},
		{"reset re-creates qpairs, resubmits", test_reset_resubmit},
		{"reset re-creates qpairs, fails I/O", test_reset_fail},
		{"timeout -> abort", test_timeout_abort},
		{"timeout -> abort -> reset", test_timeout_abort_then_reset},
		{"CSTS.CFS -> reset", test_fatal_status_resets},
		{"surprise removal", test_surprise_removal},
		{"AER: namespace attribute changed", test_aer_ns_change},
		{"admin API", test_admin_api},
		{"status decoding", test_status_strings},
		{"transport IDs", test_transport_id},
		{"queue ID allocator", test_qid_allocator},
	};
	int rc = mock_run_suite("nvme_ctrlr", tests, SL_COUNTOF(tests));

	sl_dma_free(g_buf);
	return rc;
}
