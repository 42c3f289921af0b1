/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * The set-up of a block-layer test suite: the thread library, one thread polled by
 * hand (current for the whole suite), and the block layer on it; and the teardown in
 * reverse. For the CUnit suite init/cleanup of the tests in test/unit/drivers/bdev.
 */
#ifndef SLUICE_TEST_SL_UT_BDEV_H
#define SLUICE_TEST_SL_UT_BDEV_H

#include "sl_ut.h"
#include "sluice/bdev.h"

/*
 * Initialise the thread library, create the thread name and make it current, and
 * initialise the block layer.
 * \return 0, or -1 (as a CUnit suite init wants).
 */
static inline int
sl_ut_bdev_init(const char *name, struct sl_thread **thread)
{
	if (sl_thread_lib_init(NULL, 0) != 0) {
		return -1;
	}
	*thread = sl_thread_create(name, NULL);
	if (*thread == NULL) {
		return -1;
	}
	sl_set_thread(*thread);
	return sl_bdev_initialize() == 0 ? 0 : -1;
}

static inline void
sl_ut_bdev_finish_done(void *cb_arg, int rc)
{
	*(bool *)cb_arg = true;
}

/*
 * Finish the block layer (every bdev unregistered), end the thread, and finish the
 * thread library.
 * \return 0, or -1 when sl_bdev_finish did not complete or the thread did not exit.
 */
static inline int
sl_ut_bdev_fini(struct sl_thread *thread)
{
	bool done = false;

	sl_bdev_finish(sl_ut_bdev_finish_done, &done);
	if (!sl_ut_poll_until(thread, &done, SL_UT_TIMEOUT_MS)) {
		return -1;
	}
	if (sl_ut_thread_end(thread) != 0) {
		return -1;
	}
	sl_thread_lib_fini();
	return 0;
}

#endif /* SLUICE_TEST_SL_UT_BDEV_H */
