/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * The environment without root or hugepages: the heap fallback of the DMA allocators
 * and shared memory, process start times, the hugepage check (on a fake sysfs), and
 * finally a real EAL in --no-huge mode, its fini, and the refused second init.
 * The suites run in order: the EAL can only come up once per process.
 */

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CUnit/Basic.h>

/* Paths here are short temporary ones; truncation would fail the test anyway. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include "sl_ut.h"
#include "sluice/env.h"
#include "sluice/log.h"
#include "env/env_internal.h"

static char g_log[8192];
static char g_root[PATH_MAX];

static void
capture_log(enum sl_log_level level, const char *line, void *ctx)
{
	size_t used = strlen(g_log);

	snprintf(g_log + used, sizeof(g_log) - used, "%s", line);
	fprintf(stderr, "%s\n", line);
}

static bool
is_aligned(const void *p, size_t align)
{
	return ((uintptr_t)p & (align - 1)) == 0;
}

static void
test_heap_alloc_align(void)
{
	static const size_t aligns[] = {0, 8, 64, 512, 4096, 2 * 1024 * 1024};
	uint64_t iova = 0;
	size_t i;
	char *p;

	CU_ASSERT(!sl_env_is_initialized());
	for (i = 0; i < sizeof(aligns) / sizeof(aligns[0]); i++) {
		p = sl_dma_malloc(100, aligns[i], &iova);
		CU_ASSERT_FATAL(p != NULL);
		CU_ASSERT(is_aligned(p, aligns[i] != 0 ? aligns[i] : 64));
		CU_ASSERT(iova == SL_IOVA_INVALID);
		memset(p, 0xa5, 100);
		sl_dma_free(p);
	}
	p = sl_dma_zmalloc(4097, 4096, NULL);
	CU_ASSERT_FATAL(p != NULL);
	CU_ASSERT(is_aligned(p, 4096));
	CU_ASSERT(p[0] == 0 && p[4096] == 0);
	sl_dma_free(p);

	errno = 0;
	CU_ASSERT(sl_dma_malloc(100, 48, NULL) == NULL);
	CU_ASSERT(errno == EINVAL);
	CU_ASSERT(sl_dma_malloc(0, 64, NULL) == NULL);
	CU_ASSERT(sl_dma_malloc(SIZE_MAX - 10, 4096, NULL) == NULL);
	sl_dma_free(NULL);
}

static void
test_heap_realloc(void)
{
	uint64_t size = 4096;
	char *p;
	int i;

	p = sl_dma_realloc(NULL, 64, 0);
	CU_ASSERT_FATAL(p != NULL);
	for (i = 0; i < 64; i++) {
		p[i] = (char)i;
	}
	p = sl_dma_realloc(p, 1 << 20, 4096);
	CU_ASSERT_FATAL(p != NULL);
	CU_ASSERT(is_aligned(p, 4096));
	for (i = 0; i < 64; i++) {
		CU_ASSERT(p[i] == (char)i);
	}
	p = sl_dma_realloc(p, 16, 0);
	CU_ASSERT_FATAL(p != NULL);
	CU_ASSERT(p[15] == 15);
	CU_ASSERT(sl_vtophys(p, &size) == SL_IOVA_INVALID);
	CU_ASSERT(size == 0);
	sl_dma_free(p);
}

static void
test_heap_shm(void)
{
	size_t len = 0;
	char *p, *q;

	p = sl_shm_reserve("sl_ut_region", 1000, 0);
	CU_ASSERT_FATAL(p != NULL);
	CU_ASSERT(p[999] == 0);
	strcpy(p, "hello");
	CU_ASSERT(sl_shm_reserve("sl_ut_region", 10, 0) == NULL);
	CU_ASSERT(errno == EEXIST);
	q = sl_shm_lookup("sl_ut_region", &len);
	CU_ASSERT(q == p);
	CU_ASSERT(len == 1000);
	CU_ASSERT(sl_shm_lookup("sl_ut_nothere", NULL) == NULL);
	CU_ASSERT(errno == ENOENT);
	CU_ASSERT(sl_shm_reserve("a_name_that_is_much_longer_than_31_chars", 10, 0) == NULL);
	CU_ASSERT(errno == ENAMETOOLONG);
	CU_ASSERT(sl_shm_reserve("", 10, 0) == NULL);
	CU_ASSERT(sl_shm_free("sl_ut_region") == 0);
	CU_ASSERT(sl_shm_free("sl_ut_region") == -ENOENT);
}

/* Field 22 the simple way, for a comm without spaces. */
static uint64_t
naive_start_time(int pid)
{
	char path[64];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (f == NULL) {
		return 0;
	}
	if (fscanf(f,
		   "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d "
		   "%*d %*d %*d %llu",
		   &v) != 1) {
		v = 0;
	}
	fclose(f);
	return v;
}

static void
test_proc_start_time(void)
{
	uint64_t self, child_t;
	char pid_max[32] = "";
	FILE *f;
	pid_t child;
	int status;

	self = sl_env_proc_start_time(getpid());
	CU_ASSERT(self != 0);
	CU_ASSERT(self == naive_start_time(getpid()));

	child = fork();
	CU_ASSERT_FATAL(child >= 0);
	if (child == 0) {
		pause();
		_exit(0);
	}
	child_t = sl_env_proc_start_time(child);
	CU_ASSERT(child_t != 0);
	CU_ASSERT(child_t >= self);
	CU_ASSERT(child_t == naive_start_time(child));
	CU_ASSERT(sl_env_proc_alive(child, child_t));
	/* The same pid with another start time is another process (pid reuse). */
	CU_ASSERT(!sl_env_proc_alive(child, child_t + 1));
	kill(child, SIGKILL);
	/* Killed but not yet waited for: a zombie holds nothing. */
	while (sl_env_proc_alive(child, child_t)) {
		usleep(1000);
	}
	CU_ASSERT(sl_env_proc_start_time(child) == child_t);
	waitpid(child, &status, 0);
	CU_ASSERT(sl_env_proc_start_time(child) == 0);
	CU_ASSERT(!sl_env_proc_alive(child, child_t));
	CU_ASSERT(sl_env_proc_alive(getpid(), self));
	CU_ASSERT(!sl_env_proc_alive(0, 0));

	CU_ASSERT(sl_env_proc_start_time(0) == 0);
	CU_ASSERT(sl_env_proc_start_time(-1) == 0);
	f = fopen("/proc/sys/kernel/pid_max", "r");
	if (f != NULL) {
		/* pid_max itself is never a valid pid. */
		CU_ASSERT(fgets(pid_max, sizeof(pid_max), f) != NULL);
		fclose(f);
		CU_ASSERT(sl_env_proc_start_time(atoi(pid_max)) == 0);
	}
}

static void
test_proc_stat_parse(void)
{
	/* A comm with spaces and parentheses, as a process may name itself. */
	const char *tricky = "1234 (a) b (c) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 "
			     "1 0 987654321 1000 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 "
			     "17 1 0 0 0 0 0\n";
	const char *plain = "1 (init) S 0 1 1 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 42 100 10\n";

	CU_ASSERT(env_proc_stat_start_time(tricky) == 987654321ULL);
	CU_ASSERT(env_proc_stat_start_time(plain) == 42);
	CU_ASSERT(env_proc_stat_start_time("") == 0);
	CU_ASSERT(env_proc_stat_start_time("1 (x) S 1 2 3") == 0);
	CU_ASSERT(env_proc_stat_start_time("no paren at all 1 2 3 4 5 6 7 8 9 10") == 0);
	CU_ASSERT(env_proc_stat_start_time(
			  "1 (x) S 0 1 1 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 4x2 100\n") == 0);
}

static void
fake_hugepages(const char *free_pages)
{
	char cmd[PATH_MAX * 2];

	snprintf(cmd, sizeof(cmd),
		 "mkdir -p %s/kernel/mm/hugepages/hugepages-2048kB && "
		 "echo %s > %s/kernel/mm/hugepages/hugepages-2048kB/free_hugepages",
		 g_root, free_pages, g_root);
	CU_ASSERT_FATAL(system(cmd) == 0);
}

static void
test_init_bad_opts_and_no_hugepages(void)
{
	struct sl_env_opts opts;
	char cmd[PATH_MAX + 32];

	snprintf(g_root, sizeof(g_root), "/tmp/sluice_env_ut.XXXXXX");
	CU_ASSERT_FATAL(mkdtemp(g_root) != NULL);
	env_set_sysfs_root(g_root);

	sl_env_opts_init(&opts);
	opts.proc_type = SL_PROC_SECONDARY;
	CU_ASSERT(sl_env_init(&opts) == -EINVAL);
	sl_env_opts_init(&opts);
	opts.shm_id = -5;
	CU_ASSERT(sl_env_init(&opts) == -EINVAL);

	/* No hugepages: fail before the EAL (which cannot be retried), naming the fix. */
	fake_hugepages("0");
	sl_env_opts_init(&opts);
	g_log[0] = '\0';
	CU_ASSERT(sl_env_init(&opts) == -ENOMEM);
	CU_ASSERT(strstr(g_log, "no free hugepages") != NULL);
	CU_ASSERT(strstr(g_log, "contrib/setup.sh") != NULL);
	CU_ASSERT(strstr(g_log, "--no-huge") != NULL);

	/* Fewer than asked for. */
	fake_hugepages("2");
	opts.mem_size_mb = 64;
	g_log[0] = '\0';
	CU_ASSERT(sl_env_init(&opts) == -ENOMEM);
	CU_ASSERT(strstr(g_log, "64 MiB") != NULL);
	CU_ASSERT(env_hugepages_free_bytes() == 4 * 1024 * 1024);
	CU_ASSERT(!sl_env_is_initialized());

	env_set_sysfs_root(NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_root);
	CU_ASSERT(system(cmd) == 0);
}

static char *g_heap_before_init;

static void
test_eal_no_huge(void)
{
	struct sl_env_opts opts;
	uint64_t iova, size;
	char *p, *q;
	size_t len;

	g_heap_before_init = sl_dma_malloc(256, 0, NULL);
	CU_ASSERT_FATAL(g_heap_before_init != NULL);

	sl_env_opts_init(&opts);
	opts.name = "env_mem_ut";
	opts.no_huge = true;
	opts.mem_size_mb = 64;
	opts.iova_mode = SL_IOVA_VA;
	CU_ASSERT_FATAL(sl_env_init(&opts) == 0);
	CU_ASSERT(sl_env_is_initialized());
	CU_ASSERT(sl_env_is_primary());
	CU_ASSERT(sl_env_shm_id() == -1);
	CU_ASSERT(sl_env_init(&opts) == -EALREADY);

	p = sl_dma_malloc(10000, 4096, &iova);
	CU_ASSERT_FATAL(p != NULL);
	CU_ASSERT(is_aligned(p, 4096));
	/* IOVA-as-VA: the IOVA is the address, over the whole request. */
	CU_ASSERT(iova == (uintptr_t)p);
	size = 10000;
	CU_ASSERT(sl_vtophys(p + 100, &size) == (uintptr_t)p + 100);
	CU_ASSERT(size == 10000);
	size = 0;
	CU_ASSERT(sl_vtophys(p, &size) == (uintptr_t)p);
	CU_ASSERT(size >= 10000);
	memset(p, 1, 10000);
	q = sl_dma_realloc(p, 20000, 4096);
	CU_ASSERT_FATAL(q != NULL);
	CU_ASSERT(q[9999] == 1);
	CU_ASSERT(sl_vtophys(q, NULL) == (uintptr_t)q);
	sl_dma_free(q);

	/* Heap memory is not DMA memory. */
	size = 256;
	CU_ASSERT(sl_vtophys(g_heap_before_init, &size) == SL_IOVA_INVALID);
	CU_ASSERT(size == 0);

	p = sl_dma_zmalloc(1000, 0, NULL);
	CU_ASSERT_FATAL(p != NULL);
	CU_ASSERT(p[999] == 0);
	sl_dma_free(p);

	p = sl_shm_reserve("sl_ut_mz", 8192, 4096);
	CU_ASSERT_FATAL(p != NULL);
	CU_ASSERT(is_aligned(p, 4096));
	CU_ASSERT(sl_shm_reserve("sl_ut_mz", 10, 0) == NULL);
	CU_ASSERT(errno == EEXIST);
	CU_ASSERT(sl_shm_lookup("sl_ut_mz", &len) == p);
	CU_ASSERT(len >= 8192);
	CU_ASSERT(sl_vtophys(p, NULL) == (uintptr_t)p);
	CU_ASSERT(sl_shm_free("sl_ut_mz") == 0);
	CU_ASSERT(sl_shm_lookup("sl_ut_mz", NULL) == NULL);
}

static void
test_eal_fini_and_reinit(void)
{
	struct sl_env_opts opts;
	char *dpdk_buf, *p;

	dpdk_buf = sl_dma_malloc(64, 0, NULL);
	CU_ASSERT_FATAL(dpdk_buf != NULL);
	sl_env_fini();
	CU_ASSERT(!sl_env_is_initialized());
	sl_env_fini();

	/* Allocated before init, freed after fini: still the heap's. */
	sl_dma_free(g_heap_before_init);
	/* DPDK's, freed after fini: ignored, not handed to free(). */
	sl_dma_free(dpdk_buf);

	sl_env_opts_init(&opts);
	opts.no_huge = true;
	g_log[0] = '\0';
	CU_ASSERT(sl_env_init(&opts) == -EALREADY);
	CU_ASSERT(strstr(g_log, "again") != NULL);

	/* Back to the heap fallback. */
	p = sl_dma_malloc(100, 256, NULL);
	CU_ASSERT_FATAL(p != NULL);
	CU_ASSERT(is_aligned(p, 256));
	CU_ASSERT(sl_vtophys(p, NULL) == SL_IOVA_INVALID);
	sl_dma_free(p);
}

int
main(void)
{
	CU_pSuite suite;
	int rc;

	sl_log_set_output(capture_log, NULL);
	suite = sl_ut_suite("env_heap", NULL, NULL);
	CU_add_test(suite, "heap_alloc_align", test_heap_alloc_align);
	CU_add_test(suite, "heap_realloc", test_heap_realloc);
	CU_add_test(suite, "heap_shm", test_heap_shm);
	CU_add_test(suite, "proc_start_time", test_proc_start_time);
	CU_add_test(suite, "proc_stat_parse", test_proc_stat_parse);
	CU_add_test(suite, "init_bad_opts_and_no_hugepages", test_init_bad_opts_and_no_hugepages);
	suite = sl_ut_suite("env_eal", NULL, NULL);
	CU_add_test(suite, "eal_no_huge", test_eal_no_huge);
	CU_add_test(suite, "eal_fini_and_reinit", test_eal_fini_and_reinit);
	rc = sl_ut_run();
	sl_log_set_output(NULL, NULL);
	return rc;
}
