/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/* PCIe transport: PRP lists and SGLs, checked entry by entry and end to end against
 * the mock controller, which walks them as a device would. */

#include "nvme_mock.h"

#define PAGE 4096u

static struct mock_ctrlr g_m;
static struct sl_nvme_ctrlr *g_ctrlr;
static struct nvme_tracker *g_tr;
static struct nvme_request g_req;
static uint8_t *g_mem; /* 512 pages, page aligned */

static void
prp_setup(void)
{
	mock_ctrlr_setup(&g_m);
	if (g_ctrlr == NULL) {
		g_ctrlr = mock_ctrlr_construct(&g_m, NULL);
		g_tr = sl_dma_zmalloc(NVME_TRACKER_SIZE, NVME_TRACKER_SIZE, NULL);
		g_mem = sl_dma_zmalloc(512 * PAGE, PAGE, NULL);
	}
	memset(g_tr, 0, sizeof(*g_tr));
	memset(&g_req, 0, sizeof(g_req));
	g_tr->req = &g_req;
	g_tr->list_iova = (uint64_t)(uintptr_t)&g_tr->u;
}

static uint64_t
va(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

static int
build_prps(void *buf, uint32_t len)
{
	struct iovec iov = {.iov_base = buf, .iov_len = len};

	return nvme_pcie_build_prps(g_ctrlr, NULL, g_tr, &iov, 1, len);
}

static void
test_prp_single_page(void)
{
	prp_setup();
	CU_ASSERT_EQUAL(build_prps(g_mem, PAGE), 0);
	CU_ASSERT_EQUAL(g_req.cmd.psdt, SL_NVME_PSDT_PRP);
	CU_ASSERT_EQUAL(g_req.cmd.dptr.prp.prp1, va(g_mem));
	CU_ASSERT_EQUAL(g_req.cmd.dptr.prp.prp2, 0);
	/* Less than a page, inside one. */
	CU_ASSERT_EQUAL(build_prps(g_mem + 1024, 512), 0);
	CU_ASSERT_EQUAL(g_req.cmd.dptr.prp.prp1, va(g_mem + 1024));
	CU_ASSERT_EQUAL(g_req.cmd.dptr.prp.prp2, 0);
}

static void
test_prp_two_pages(void)
{
	prp_setup();
	CU_ASSERT_EQUAL(build_prps(g_mem, 2 * PAGE), 0);
	CU_ASSERT_EQUAL(g_req.cmd.dptr.prp.prp1, va(g_mem));
	CU_ASSERT_EQUAL(g_req.cmd.dptr.prp.prp2, va(g_mem + PAGE));
	/* Unaligned first element: 4 KiB from offset 512 spans two pages. */
	CU_ASSERT_EQUAL(build_prps(g_mem + 512, PAGE), 0);
	CU_ASSERT_EQUAL(g_req.cmd.dptr.prp.prp1, va(g_mem + 512));
	CU_ASSERT_EQUAL(g_req.cmd.dptr.prp.prp2, va(g_mem + PAGE));
}

static void
test_prp_list(void)
{
	uint32_t i;

	prp_setup();
	CU_ASSERT_EQUAL(build_prps(g_mem, 16 * PAGE), 0);
	CU_ASSERT_EQUAL(g_req.cmd.dptr.prp.prp1, va(g_mem));
	CU_ASSERT_EQUAL(g_req.cmd.dptr.prp.prp2, g_tr->list_iova);
	for (i = 0; i < 15; i++) {
		CU_ASSERT_EQUAL(g_tr->u.prp[i], va(g_mem + (i + 1) * PAGE));
	}
	/* Unaligned start: 3 pages of data from offset 512 touch 4 pages. */
	CU_ASSERT_EQUAL(build_prps(g_mem + 512, 3 * PAGE), 0);
	CU_ASSERT_EQUAL(g_req.cmd.dptr.prp.prp1, va(g_mem + 512));
	CU_ASSERT_EQUAL(g_req.cmd.dptr.prp.prp2, g_tr->list_iova);
	CU_ASSERT_EQUAL(g_tr->u.prp[0], va(g_mem + PAGE));
	CU_ASSERT_EQUAL(g_tr->u.prp[2], va(g_mem + 3 * PAGE));
	/* The list spans many pages of data: its limit is the tracker's list. */
	CU_ASSERT_EQUAL(build_prps(g_mem, (NVME_MAX_PRP_LIST_ENTRIES + 1) * PAGE), 0);
	CU_ASSERT_EQUAL(g_tr->u.prp[NVME_MAX_PRP_LIST_ENTRIES - 1],
			va(g_mem + NVME_MAX_PRP_LIST_ENTRIES * PAGE));
	CU_ASSERT_EQUAL(build_prps(g_mem, (NVME_MAX_PRP_LIST_ENTRIES + 2) * PAGE), -EINVAL);
	/* The list itself lies within one page (no chaining needed). */
	CU_ASSERT_EQUAL(g_tr->list_iova / PAGE,
			(g_tr->list_iova + NVME_TRACKER_LIST_BYTES - 1) / PAGE);
	/* Not dword aligned. */
	CU_ASSERT_EQUAL(build_prps(g_mem + 2, 512), -EINVAL);
}

static void
test_prp_page_split_translation(void)
{
	uint32_t i;

	prp_setup();
	g_m.page_split = true;
	CU_ASSERT_EQUAL(build_prps(g_mem + 512, 4 * PAGE), 0);
	CU_ASSERT_EQUAL(g_req.cmd.dptr.prp.prp1, va(g_mem + 512));
	for (i = 0; i < 4; i++) {
		CU_ASSERT_EQUAL(g_tr->u.prp[i], va(g_mem + (i + 1) * PAGE));
	}
	g_m.page_split = false;
}

static void
test_prp_iovecs(void)
{
	struct iovec iov[3] = {
		{.iov_base = g_mem + 10 * PAGE + 512, .iov_len = PAGE - 512},
		{.iov_base = g_mem + 20 * PAGE, .iov_len = 2 * PAGE},
		{.iov_base = g_mem + 30 * PAGE, .iov_len = 1024},
	};
	struct iovec bad[2] = {
		{.iov_base = g_mem, .iov_len = 1024},
		{.iov_base = g_mem + 2 * PAGE, .iov_len = PAGE},
	};
	struct iovec bad2[2] = {
		{.iov_base = g_mem, .iov_len = PAGE},
		{.iov_base = g_mem + 2 * PAGE + 512, .iov_len = PAGE},
	};

	prp_setup();
	CU_ASSERT_EQUAL(nvme_pcie_build_prps(g_ctrlr, NULL, g_tr, iov, 3, 3 * PAGE + 512), 0);
	CU_ASSERT_EQUAL(g_req.cmd.dptr.prp.prp1, va(g_mem + 10 * PAGE + 512));
	CU_ASSERT_EQUAL(g_req.cmd.dptr.prp.prp2, g_tr->list_iova);
	CU_ASSERT_EQUAL(g_tr->u.prp[0], va(g_mem + 20 * PAGE));
	CU_ASSERT_EQUAL(g_tr->u.prp[1], va(g_mem + 21 * PAGE));
	CU_ASSERT_EQUAL(g_tr->u.prp[2], va(g_mem + 30 * PAGE));
	/* The length given bounds the walk: the last iovec is used only in part. */
	CU_ASSERT_EQUAL(nvme_pcie_build_prps(g_ctrlr, NULL, g_tr, iov, 3, 2 * PAGE), 0);
	CU_ASSERT_EQUAL(g_req.cmd.dptr.prp.prp2, g_tr->list_iova);
	CU_ASSERT_EQUAL(nvme_pcie_build_prps(g_ctrlr, NULL, g_tr, iov, 3, 4 * PAGE), -EINVAL);
	/* A middle element not ending, or not starting, on a page boundary. */
	CU_ASSERT_EQUAL(nvme_pcie_build_prps(g_ctrlr, NULL, g_tr, bad, 2, 1024 + PAGE), -EINVAL);
	CU_ASSERT_EQUAL(nvme_pcie_build_prps(g_ctrlr, NULL, g_tr, bad2, 2, 2 * PAGE), -EINVAL);
}

static void
test_sgl(void)
{
	struct iovec iov[3] = {
		{.iov_base = g_mem + 3, .iov_len = 1000},
		{.iov_base = g_mem + 8 * PAGE + 100, .iov_len = 5000},
		{.iov_base = g_mem + 20 * PAGE + 7, .iov_len = 96},
	};
	struct iovec contig[2] = {
		{.iov_base = g_mem, .iov_len = 512},
		{.iov_base = g_mem + 512, .iov_len = 1536},
	};
	struct iovec many[NVME_MAX_SGL_DESCRIPTORS + 1];
	uint32_t i;

	prp_setup();
	/* One element: the data block sits in the command. */
	CU_ASSERT_EQUAL(nvme_pcie_build_sgl(g_ctrlr, NULL, g_tr, iov, 1, 1000), 0);
	CU_ASSERT_EQUAL(g_req.cmd.psdt, SL_NVME_PSDT_SGL_MPTR_CONTIG);
	CU_ASSERT_EQUAL(g_req.cmd.dptr.sgl1.type, SL_NVME_SGL_TYPE_DATA_BLOCK);
	CU_ASSERT_EQUAL(g_req.cmd.dptr.sgl1.address, va(g_mem + 3));
	CU_ASSERT_EQUAL(g_req.cmd.dptr.sgl1.length, 1000);
	/* Several: a last segment in the tracker. */
	CU_ASSERT_EQUAL(nvme_pcie_build_sgl(g_ctrlr, NULL, g_tr, iov, 3, 6096), 0);
	CU_ASSERT_EQUAL(g_req.cmd.dptr.sgl1.type, SL_NVME_SGL_TYPE_LAST_SEGMENT);
	CU_ASSERT_EQUAL(g_req.cmd.dptr.sgl1.subtype, SL_NVME_SGL_SUBTYPE_ADDRESS);
	CU_ASSERT_EQUAL(g_req.cmd.dptr.sgl1.address, g_tr->list_iova);
	CU_ASSERT_EQUAL(g_req.cmd.dptr.sgl1.length, 3 * 16);
	CU_ASSERT_EQUAL(g_tr->u.sgl[1].address, va(g_mem + 8 * PAGE + 100));
	CU_ASSERT_EQUAL(g_tr->u.sgl[1].length, 5000);
	CU_ASSERT_EQUAL(g_tr->u.sgl[2].length, 96);
	/* Adjacent elements merge. */
	CU_ASSERT_EQUAL(nvme_pcie_build_sgl(g_ctrlr, NULL, g_tr, contig, 2, 2048), 0);
	CU_ASSERT_EQUAL(g_req.cmd.dptr.sgl1.type, SL_NVME_SGL_TYPE_DATA_BLOCK);
	CU_ASSERT_EQUAL(g_req.cmd.dptr.sgl1.length, 2048);
	/* Too many descriptors. */
	for (i = 0; i < SL_COUNTOF(many); i++) {
		many[i].iov_base = g_mem + i * 2 * 512;
		many[i].iov_len = 512;
	}
	CU_ASSERT_EQUAL(nvme_pcie_build_sgl(g_ctrlr, NULL, g_tr, many, NVME_MAX_SGL_DESCRIPTORS,
					    NVME_MAX_SGL_DESCRIPTORS * 512),
			0);
	CU_ASSERT_EQUAL(nvme_pcie_build_sgl(g_ctrlr, NULL, g_tr, many, (int)SL_COUNTOF(many),
					    (uint32_t)SL_COUNTOF(many) * 512),
			-EINVAL);
}

/* End to end: write through SGLs from odd iovecs, read back through PRPs. */
static void
test_vectored_io_end_to_end(void)
{
	struct sl_nvme_ctrlr_opts opts;
	struct sl_nvme_ctrlr *ctrlr;
	struct sl_nvme_qpair *qpair;
	struct sl_nvme_ns *ns;
	struct io_status st = {0};
	uint8_t *src = sl_dma_zmalloc(16 * PAGE, PAGE, NULL);
	uint8_t *dst = sl_dma_zmalloc(16 * PAGE, PAGE, NULL);
	struct iovec wiov[3] = {
		{.iov_base = src + 4, .iov_len = 1020},
		{.iov_base = src + 5 * PAGE + 8, .iov_len = 3072},
		{.iov_base = src + 9 * PAGE + 12, .iov_len = 4100},
	};
	struct iovec riov[3] = {
		{.iov_base = dst + 512, .iov_len = PAGE - 512},
		{.iov_base = dst + 4 * PAGE, .iov_len = PAGE},
		{.iov_base = dst + 8 * PAGE, .iov_len = 3 * 512},
	};
	uint32_t i;

	for (i = 0; i < 16 * PAGE; i++) {
		src[i] = (uint8_t)(i * 7 + 1);
	}
	mock_ctrlr_setup(&g_m);
	ctrlr = mock_ctrlr_attach(&g_m, NULL);
	qpair = sl_nvme_ctrlr_alloc_io_qpair(ctrlr, NULL);
	ns = sl_nvme_ctrlr_get_ns(ctrlr, 1);
	CU_ASSERT_EQUAL(sl_nvme_ns_cmd_writev(ns, qpair, wiov, 3, 100, 16, io_cpl, &st, 0), 0);
	sl_nvme_qpair_process_completions(qpair, 0);
	CU_ASSERT_EQUAL(g_m.last_psdt, SL_NVME_PSDT_SGL_MPTR_CONTIG);
	CU_ASSERT(memcmp(g_m.disk[0] + 100 * 512, src + 4, 1020) == 0);
	CU_ASSERT(memcmp(g_m.disk[0] + 100 * 512 + 1020, src + 5 * PAGE + 8, 3072) == 0);
	CU_ASSERT(memcmp(g_m.disk[0] + 100 * 512 + 4092, src + 9 * PAGE + 12, 4100) == 0);
	sl_nvme_ctrlr_free_io_qpair(qpair);
	sl_nvme_detach(ctrlr);

	/* Without SGLs, PRP-compatible iovecs read it back. */
	sl_nvme_ctrlr_get_default_opts(&opts);
	opts.use_sgl = false;
	g_m.num_writes = 0;
	{
		uint8_t disk_copy[MOCK_NS_SECTORS * MOCK_SECTOR];

		memcpy(disk_copy, g_m.disk[0], sizeof(disk_copy));
		mock_ctrlr_setup(&g_m);
		memcpy(g_m.disk[0], disk_copy, sizeof(disk_copy));
	}
	ctrlr = mock_ctrlr_attach(&g_m, &opts);
	qpair = sl_nvme_ctrlr_alloc_io_qpair(ctrlr, NULL);
	ns = sl_nvme_ctrlr_get_ns(ctrlr, 1);
	CU_ASSERT_EQUAL(sl_nvme_ns_cmd_readv(ns, qpair, riov, 3, 100, 18, io_cpl, &st, 0), 0);
	sl_nvme_qpair_process_completions(qpair, 0);
	CU_ASSERT_EQUAL(g_m.last_psdt, SL_NVME_PSDT_PRP);
	CU_ASSERT_EQUAL(st.done, 2);
	CU_ASSERT_EQUAL(st.errors, 0);
	CU_ASSERT(memcmp(dst + 512, g_m.disk[0] + 100 * 512, PAGE - 512) == 0);
	CU_ASSERT(memcmp(dst + 4 * PAGE, g_m.disk[0] + 100 * 512 + PAGE - 512, PAGE) == 0);
	CU_ASSERT(memcmp(dst + 8 * PAGE, g_m.disk[0] + 100 * 512 + 2 * PAGE - 512, 1536) == 0);
	/* Misaligned for PRPs, and no SGLs: refused up front. */
	CU_ASSERT_EQUAL(sl_nvme_ns_cmd_writev(ns, qpair, wiov, 3, 100, 16, io_cpl, &st, 0),
			-EINVAL);
	sl_nvme_ctrlr_free_io_qpair(qpair);
	sl_nvme_detach(ctrlr);
	sl_dma_free(src);
	sl_dma_free(dst);
}

int
main(void)
{
	static const struct mock_test tests[] = {
		{"PRP: single page", test_prp_single_page},
		{"PRP: two pages, unaligned first element", test_prp_two_pages},
		{"PRP: list across pages", test_prp_list},
		{"PRP: page-by-page translation", test_prp_page_split_translation},
		{"PRP: iovecs", test_prp_iovecs},
		{"SGL: data blocks and last segment", test_sgl},
		{"vectored I/O end to end", test_vectored_io_end_to_end},
	};
	int rc = mock_run_suite("nvme_pcie", tests, SL_COUNTOF(tests));

	if (g_ctrlr != NULL) {
		nvme_ctrlr_destruct(g_ctrlr);
	}
	sl_dma_free(g_tr);
	sl_dma_free(g_mem);
	return rc;
}
