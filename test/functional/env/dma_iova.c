/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * DMA memory under hugepages: alignment, and every IOVA and contiguity claim of
 * sl_vtophys() checked against the kernel's /proc/self/pagemap (IOVA-as-PA) or the
 * address itself (IOVA-as-VA).
 *
 * Usage: env_dma_iova_ft pa|va. Needs root (pagemap hides frame numbers otherwise) and
 * free hugepages; run_env_ft.sh provides both.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/env.h"

#define PAGE_4K     4096ULL
#define HUGE_2M     (2ULL << 20)
#define PM_PRESENT  (1ULL << 63)
#define PM_PFN_MASK ((1ULL << 55) - 1)
#define SKIP        77

static int g_pagemap_fd = -1;
static bool g_pa;
static int g_failures;
static unsigned int g_checks;

#define CHECK(cond, ...)                                                                \
	do {                                                                            \
		g_checks++;                                                             \
		if (!(cond)) {                                                          \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                   \
			fprintf(stderr, "\n");                                          \
			g_failures++;                                                   \
		}                                                                       \
	} while (0)

/* What the device would see for va: the physical address (PA mode) or va itself. */
static uint64_t
expected_iova(const void *va)
{
	uint64_t entry;
	uintptr_t v = (uintptr_t)va;

	if (!g_pa) {
		return v;
	}
	if (pread(g_pagemap_fd, &entry, sizeof(entry), (off_t)(v / PAGE_4K * 8)) != sizeof(entry) ||
	    !(entry & PM_PRESENT) || (entry & PM_PFN_MASK) == 0) {
		return SL_IOVA_INVALID;
	}
	return (entry & PM_PFN_MASK) * PAGE_4K + (v & (PAGE_4K - 1));
}

/*
 * The claim "len bytes from va are contiguous at iova" must hold on every 4K page, and
 * be maximal: when shorter than asked, the next byte must not continue the run.
 */
static void
check_claim(const char *what, const char *va, uint64_t want)
{
	uint64_t len = want, iova, off, exp;

	iova = sl_vtophys(va, &len);
	CHECK(iova != SL_IOVA_INVALID, "%s: no IOVA for %p", what, (const void *)va);
	if (iova == SL_IOVA_INVALID) {
		return;
	}
	CHECK(iova == expected_iova(va), "%s: IOVA 0x%" PRIx64 ", pagemap says 0x%" PRIx64, what,
	      iova, expected_iova(va));
	CHECK(len > 0 && (want == 0 || len <= want), "%s: length %" PRIu64 " for %" PRIu64, what,
	      len, want);
	for (off = PAGE_4K - ((uintptr_t)va & (PAGE_4K - 1)); off < len; off += PAGE_4K) {
		exp = expected_iova(va + off);
		if (exp != iova + off) {
			CHECK(exp == iova + off,
			      "%s: claimed contiguous for %" PRIu64 " bytes but +%" PRIu64
			      " is at 0x%" PRIx64 ", not 0x%" PRIx64,
			      what, len, off, exp, iova + off);
			return;
		}
	}
	if (want != 0 && len < want) {
		exp = expected_iova(va + len);
		CHECK(exp != iova + len, "%s: stopped at %" PRIu64 " but +%" PRIu64 " continues",
		      what, len, len);
	}
}

static void
test_alignment_and_iova(void)
{
	static const size_t aligns[] = {0, 64, 4096, 65536, HUGE_2M};
	static const size_t sizes[] = {1, 100, 4096, 1 << 20, 3 << 20};
	uint64_t iova;
	size_t a, s;
	char *buf;

	for (a = 0; a < sizeof(aligns) / sizeof(aligns[0]); a++) {
		for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			buf = sl_dma_zmalloc(sizes[s], aligns[a], &iova);
			CHECK(buf != NULL, "zmalloc(%zu, %zu)", sizes[s], aligns[a]);
			if (buf == NULL) {
				continue;
			}
			CHECK(((uintptr_t)buf & ((aligns[a] ? aligns[a] : 64) - 1)) == 0,
			      "%p not aligned to %zu", (void *)buf, aligns[a]);
			CHECK(iova == sl_vtophys(buf, NULL), "iova out of malloc differs");
			check_claim("alloc", buf, sizes[s]);
			sl_dma_free(buf);
		}
	}
}

/* A buffer over several hugepages, probed across each page boundary. */
static void
test_page_crossing(void)
{
	const size_t size = 8 * HUGE_2M;
	unsigned int runs = 1, i;
	uint64_t len;
	char *buf;

	buf = sl_dma_malloc(size, HUGE_2M, NULL);
	CHECK(buf != NULL, "malloc 16 MiB");
	if (buf == NULL) {
		return;
	}
	memset(buf, 0x5a, size);
	for (i = 1; i < size / HUGE_2M; i++) {
		/* 8 KiB straddling the boundary between hugepage i-1 and i. */
		check_claim("straddle", buf + i * HUGE_2M - PAGE_4K, 2 * PAGE_4K);
		if (expected_iova(buf + i * HUGE_2M) != expected_iova(buf + i * HUGE_2M - 1) + 1) {
			runs++;
		}
	}
	check_claim("whole", buf, size);
	check_claim("unbounded", buf + 12345, 0);
	len = size;
	sl_vtophys(buf, &len);
	printf("16 MiB buffer: %u IOVA-contiguous run(s); first run %" PRIu64 " KiB\n", runs,
	       len >> 10);
	sl_dma_free(buf);
}

static void
test_shm_region(void)
{
	char *p;

	p = sl_shm_reserve("sl_ft_iova", 3 * HUGE_2M, HUGE_2M);
	CHECK(p != NULL, "shm reserve: %s", strerror(errno));
	if (p == NULL) {
		return;
	}
	check_claim("memzone", p, 3 * HUGE_2M);
	check_claim("memzone+off", p + HUGE_2M - 100, 200);
	CHECK(sl_shm_free("sl_ft_iova") == 0, "shm free");
}

int
main(int argc, char **argv)
{
	struct sl_env_opts opts;
	int rc;

	if (argc != 2 || (strcmp(argv[1], "pa") != 0 && strcmp(argv[1], "va") != 0)) {
		fprintf(stderr, "usage: %s pa|va\n", argv[0]);
		return 2;
	}
	g_pa = strcmp(argv[1], "pa") == 0;
	if (g_pa) {
		g_pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
		if (g_pagemap_fd < 0 || geteuid() != 0) {
			printf("SKIP: IOVA-as-PA checks need root and /proc/self/pagemap\n");
			return SKIP;
		}
	}
	sl_env_opts_init(&opts);
	opts.name = "env_dma_iova_ft";
	opts.iova_mode = g_pa ? SL_IOVA_PA : SL_IOVA_VA;
	rc = sl_env_init(&opts);
	if (rc != 0) {
		fprintf(stderr, "FAIL: sl_env_init: %s\n", strerror(-rc));
		return 1;
	}
	test_alignment_and_iova();
	test_page_crossing();
	test_shm_region();
	sl_env_fini();
	printf("%s: %u checks, %d failures\n", argv[1], g_checks, g_failures);
	return g_failures == 0 ? 0 : 1;
}
