/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * What every CUnit test binary repeats: running the registered suites and turning the
 * result into an exit status, and driving an sl_thread by hand. Header-only, so a
 * test needs nothing more than test/common on its include path.
 */
#ifndef SLUICE_TEST_SL_UT_H
#define SLUICE_TEST_SL_UT_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <CUnit/Basic.h>

#include "sluice/thread.h"

/* How long a helper here waits for something that should take milliseconds. */
#define SL_UT_TIMEOUT_MS 5000
/* Rounds of sl_ut_poll. */
#define SL_UT_POLL_ROUNDS 16

/*
 * Add a suite to the CUnit registry, initialising the registry on the first call. A
 * test binary cannot go on without either, so a failure ends the process (status 1).
 * \return the suite.
 */
static inline CU_pSuite
sl_ut_suite(const char *name, CU_InitializeFunc init, CU_CleanupFunc fini)
{
	CU_pSuite suite;

	if (CU_get_registry() == NULL && CU_initialize_registry() != CUE_SUCCESS) {
		fprintf(stderr, "CUnit: cannot initialise the registry: %s\n", CU_get_error_msg());
		exit(1);
	}
	suite = CU_add_suite(name, init, fini);
	if (suite == NULL) {
		fprintf(stderr, "CUnit: cannot add suite %s: %s\n", name, CU_get_error_msg());
		exit(1);
	}
	return suite;
}

/*
 * Run every registered suite verbosely, then free the registry.
 * A suite whose init or cleanup failed counts as a failure: its tests did not run.
 * \return the process exit status: 0 when everything passed, 1 otherwise.
 */
static inline int
sl_ut_run(void)
{
	unsigned int failures;

	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failures == 0 ? 0 : 1;
}

/* Poll thread SL_UT_POLL_ROUNDS times: enough for any short chain of messages. */
static inline void
sl_ut_poll(struct sl_thread *thread)
{
	for (int i = 0; i < SL_UT_POLL_ROUNDS; i++) {
		sl_thread_poll(thread, 0, 0);
	}
}

/*
 * Poll thread until *done or timeout_ms pass.
 * \return *done.
 */
static inline bool
sl_ut_poll_until(struct sl_thread *thread, const bool *done, uint64_t timeout_ms)
{
	uint64_t end = sl_get_ticks() + timeout_ms * sl_get_ticks_hz() / 1000;

	while (!*done && sl_get_ticks() < end) {
		sl_thread_poll(thread, 0, 0);
	}
	return *done;
}

/*
 * Exit thread (current for the call, as sl_thread_exit wants), poll it until it has
 * exited, and destroy it. A thread that does not exit within SL_UT_TIMEOUT_MS is left
 * alone (destroying it would assert).
 * \return what sl_thread_exit returned, or -ETIMEDOUT.
 */
static inline int
sl_ut_thread_end(struct sl_thread *thread)
{
	uint64_t end = sl_get_ticks() + SL_UT_TIMEOUT_MS * sl_get_ticks_hz() / 1000;
	int rc;

	sl_set_thread(thread);
	rc = sl_thread_exit(thread);
	while (!sl_thread_is_exited(thread) && sl_get_ticks() < end) {
		sl_thread_poll(thread, 0, 0);
	}
	sl_set_thread(NULL);
	if (!sl_thread_is_exited(thread)) {
		return -ETIMEDOUT;
	}
	sl_thread_destroy(thread);
	return rc;
}

#endif /* SLUICE_TEST_SL_UT_H */
