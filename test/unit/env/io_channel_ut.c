/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * Unit tests of env/io_channel.c: channel lifetimes, deferred destruction,
 * unregistration waiting for channels on other threads, for_each_channel. Threads
 * are polled by hand.
 */

#include <CUnit/Basic.h>
#include <errno.h>
#include <string.h>

#include "sl_ut.h"
#include "env/thread_internal.h"
#include "sluice/thread.h"

#define NTHREADS 3

static struct sl_thread *g_t[NTHREADS];
static int g_dev_a, g_dev_b;
static int g_creates, g_destroys, g_unregistered;
static struct sl_thread *g_unregister_thread;
static int g_create_rc;

struct chan_ctx {
	uint64_t magic;
	struct sl_thread *thread;
};

static int
chan_create(void *io_device, void *ctx_buf)
{
	struct chan_ctx *c = ctx_buf;

	if (g_create_rc != 0) {
		return g_create_rc;
	}
	CU_ASSERT(c->magic == 0); /* zeroed */
	c->magic = 0x5a5a;
	c->thread = sl_get_thread();
	g_creates++;
	return 0;
}

static void
chan_destroy(void *io_device, void *ctx_buf)
{
	struct chan_ctx *c = ctx_buf;

	CU_ASSERT(c->magic == 0x5a5a);
	CU_ASSERT(c->thread == sl_get_thread());
	g_destroys++;
}

static void
dev_unregistered(void *io_device)
{
	g_unregistered++;
	g_unregister_thread = sl_get_thread();
}

/* Run every thread a few times: enough for any chain of messages here to finish. */
static void
poll_all(void)
{
	int round, i;

	for (round = 0; round < 8; round++) {
		for (i = 0; i < NTHREADS; i++) {
			sl_thread_poll(g_t[i], 0, 0);
		}
	}
}

static void
reset_counts(void)
{
	g_creates = g_destroys = g_unregistered = 0;
	g_unregister_thread = NULL;
	g_create_rc = 0;
}

static void
test_lifetime(void)
{
	struct sl_io_channel *ch, *ch2;
	struct chan_ctx *c;

	reset_counts();
	sl_io_device_register(&g_dev_a, chan_create, chan_destroy, sizeof(struct chan_ctx), "a");
	sl_set_thread(g_t[0]);
	ch = sl_get_io_channel(&g_dev_a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ch);
	CU_ASSERT(g_creates == 1);
	ch2 = sl_get_io_channel(&g_dev_a);
	CU_ASSERT(ch2 == ch);
	CU_ASSERT(g_creates == 1);
	c = sl_io_channel_get_ctx(ch);
	CU_ASSERT(c->magic == 0x5a5a);
	CU_ASSERT((uintptr_t)c % 64 == 0);
	CU_ASSERT(sl_io_channel_from_ctx(c) == ch);
	CU_ASSERT(sl_io_channel_get_thread(ch) == g_t[0]);
	CU_ASSERT(sl_io_channel_get_io_device(ch) == &g_dev_a);

	sl_put_io_channel(ch2);
	sl_put_io_channel(ch);
	/* Destruction is deferred to a message. */
	CU_ASSERT(g_destroys == 0);
	poll_all();
	CU_ASSERT(g_destroys == 1);

	/* A put and a get in the same callback reuse the channel. */
	sl_set_thread(g_t[0]);
	ch = sl_get_io_channel(&g_dev_a);
	sl_put_io_channel(ch);
	ch2 = sl_get_io_channel(&g_dev_a);
	CU_ASSERT(ch2 == ch);
	sl_put_io_channel(ch2);
	ch2 = sl_get_io_channel(&g_dev_a);
	CU_ASSERT(ch2 == ch);
	poll_all();
	CU_ASSERT(g_creates == 2);
	CU_ASSERT(g_destroys == 1);
	sl_set_thread(g_t[0]);
	sl_put_io_channel(ch2);
	poll_all();
	CU_ASSERT(g_destroys == 2);

	/* One channel per thread. */
	sl_set_thread(g_t[1]);
	ch = sl_get_io_channel(&g_dev_a);
	sl_set_thread(g_t[2]);
	ch2 = sl_get_io_channel(&g_dev_a);
	CU_ASSERT(ch != ch2);
	CU_ASSERT(g_creates == 4);
	sl_set_thread(g_t[1]);
	sl_put_io_channel(ch);
	sl_set_thread(g_t[2]);
	sl_put_io_channel(ch2);
	poll_all();
	CU_ASSERT(g_destroys == 4);

	sl_set_thread(g_t[0]);
	sl_io_device_unregister(&g_dev_a, dev_unregistered);
	poll_all();
	CU_ASSERT(g_unregistered == 1);
	CU_ASSERT(g_unregister_thread == g_t[0]);
}

static void
test_get_fails(void)
{
	reset_counts();
	sl_set_thread(g_t[0]);
	/* Never registered. */
	CU_ASSERT(sl_get_io_channel(&g_dev_b) == NULL);
	/* Off any thread. */
	sl_io_device_register(&g_dev_b, chan_create, chan_destroy, sizeof(struct chan_ctx), "b");
	sl_set_thread(NULL);
	CU_ASSERT(sl_get_io_channel(&g_dev_b) == NULL);
	/* create_cb fails. */
	sl_set_thread(g_t[0]);
	g_create_rc = -ENOMEM;
	CU_ASSERT(sl_get_io_channel(&g_dev_b) == NULL);
	CU_ASSERT(TAILQ_EMPTY(&g_t[0]->io_channels));
	g_create_rc = 0;
	/* After unregistration. */
	sl_io_device_unregister(&g_dev_b, dev_unregistered);
	CU_ASSERT(sl_get_io_channel(&g_dev_b) == NULL);
	poll_all();
	CU_ASSERT(g_unregistered == 1);
	CU_ASSERT(g_creates == 0);
}

static void
test_unregister_waits(void)
{
	struct sl_io_channel *ch1, *ch2;

	reset_counts();
	sl_io_device_register(&g_dev_a, chan_create, chan_destroy, sizeof(struct chan_ctx), "a");
	sl_set_thread(g_t[1]);
	ch1 = sl_get_io_channel(&g_dev_a);
	sl_set_thread(g_t[2]);
	ch2 = sl_get_io_channel(&g_dev_a);
	CU_ASSERT(ch1 != NULL && ch2 != NULL);

	sl_set_thread(g_t[0]);
	sl_io_device_unregister(&g_dev_a, dev_unregistered);
	poll_all();
	CU_ASSERT(g_unregistered == 0);
	/* Existing channels keep working; new gets fail. */
	sl_set_thread(g_t[1]);
	CU_ASSERT(sl_get_io_channel(&g_dev_a) == NULL);
	sl_put_io_channel(ch1);
	poll_all();
	CU_ASSERT(g_destroys == 1);
	CU_ASSERT(g_unregistered == 0);
	sl_set_thread(g_t[2]);
	sl_put_io_channel(ch2);
	poll_all();
	CU_ASSERT(g_destroys == 2);
	CU_ASSERT(g_unregistered == 1);
	/* On the thread that unregistered, not the one that put last. */
	CU_ASSERT(g_unregister_thread == g_t[0]);
	/* The same address may be registered again at once. */
	sl_io_device_register(&g_dev_a, chan_create, chan_destroy, 8, "a-again");
	sl_set_thread(g_t[0]);
	sl_io_device_unregister(&g_dev_a, NULL);
	poll_all();
}

static int g_visits[NTHREADS];
static int g_fe_status = 1;
static struct sl_thread *g_fe_cpl_thread;
static int g_fe_abort_at = -1;

static void
fe_visit(struct sl_io_channel_iter *i)
{
	struct sl_io_channel *ch = sl_io_channel_iter_get_channel(i);
	int idx;

	CU_ASSERT(sl_io_channel_get_thread(ch) == sl_get_thread());
	CU_ASSERT(sl_io_channel_iter_get_io_device(i) == &g_dev_a);
	CU_ASSERT(sl_io_channel_iter_get_ctx(i) == g_visits);
	for (idx = 0; idx < NTHREADS; idx++) {
		if (g_t[idx] == sl_get_thread()) {
			g_visits[idx]++;
		}
	}
	sl_for_each_channel_continue(i, g_fe_abort_at >= 0 ? -EINTR : 0);
}

static void
fe_done(struct sl_io_channel_iter *i, int status)
{
	g_fe_status = status;
	g_fe_cpl_thread = sl_get_thread();
}

static void
test_for_each_channel(void)
{
	struct sl_io_channel *ch0, *ch2;

	reset_counts();
	memset(g_visits, 0, sizeof(g_visits));
	sl_io_device_register(&g_dev_a, chan_create, chan_destroy, sizeof(struct chan_ctx), "a");
	sl_set_thread(g_t[0]);
	ch0 = sl_get_io_channel(&g_dev_a);
	sl_set_thread(g_t[2]);
	ch2 = sl_get_io_channel(&g_dev_a);

	/* From t1, which has no channel: visits t0 and t2, completes on t1. */
	sl_set_thread(g_t[1]);
	g_fe_status = 1;
	sl_for_each_channel(&g_dev_a, fe_visit, g_visits, fe_done);
	poll_all();
	CU_ASSERT(g_visits[0] == 1);
	CU_ASSERT(g_visits[1] == 0);
	CU_ASSERT(g_visits[2] == 1);
	CU_ASSERT(g_fe_status == 0);
	CU_ASSERT(g_fe_cpl_thread == g_t[1]);

	/* Abort after the first. */
	g_fe_abort_at = 0;
	sl_set_thread(g_t[1]);
	sl_for_each_channel(&g_dev_a, fe_visit, g_visits, fe_done);
	poll_all();
	g_fe_abort_at = -1;
	CU_ASSERT(g_visits[0] == 2);
	CU_ASSERT(g_visits[2] == 1);
	CU_ASSERT(g_fe_status == -EINTR);

	/* Unregistration waits for a running iteration too. */
	sl_set_thread(g_t[0]);
	sl_put_io_channel(ch0);
	sl_set_thread(g_t[2]);
	sl_put_io_channel(ch2);
	sl_set_thread(g_t[1]);
	sl_for_each_channel(&g_dev_a, fe_visit, g_visits, fe_done);
	sl_io_device_unregister(&g_dev_a, dev_unregistered);
	CU_ASSERT(g_unregistered == 0);
	poll_all();
	CU_ASSERT(g_unregistered == 1);
	CU_ASSERT(g_destroys == 2);
	/* Channels put before the iteration ran were skipped. */
	CU_ASSERT(g_visits[0] == 2);
	CU_ASSERT(g_visits[2] == 1);
}

static void
test_exit_waits_for_channel(void)
{
	struct sl_thread *t = sl_thread_create("holder", NULL);
	struct sl_io_channel *ch;
	int i;

	reset_counts();
	sl_io_device_register(&g_dev_b, chan_create, chan_destroy, sizeof(struct chan_ctx), "b");
	sl_set_thread(t);
	ch = sl_get_io_channel(&g_dev_b);
	sl_thread_exit(t);
	for (i = 0; i < 10; i++) {
		sl_thread_poll(t, 0, 0);
	}
	CU_ASSERT(!sl_thread_is_exited(t));
	sl_set_thread(t);
	sl_put_io_channel(ch);
	for (i = 0; i < 10 && !sl_thread_is_exited(t); i++) {
		sl_thread_poll(t, 0, 0);
	}
	CU_ASSERT(sl_thread_is_exited(t));
	CU_ASSERT(g_destroys == 1);
	sl_set_thread(NULL);
	sl_thread_destroy(t);
	sl_set_thread(g_t[0]);
	sl_io_device_unregister(&g_dev_b, dev_unregistered);
	poll_all();
	CU_ASSERT(g_unregistered == 1);
}

static void
fe_visit_any(struct sl_io_channel_iter *i)
{
	sl_for_each_channel_continue(i, 0);
}

/*
 * A thread that started an iteration or an unregistration stays alive until their
 * completions have run on it: exiting earlier would leave them a freed thread to
 * complete on (the reactor destroys a thread as soon as it has exited).
 */
static void
test_exit_waits_for_completions(void)
{
	struct sl_thread *t = sl_thread_create("asker", NULL);
	struct sl_io_channel *ch;
	int i;

	reset_counts();
	sl_io_device_register(&g_dev_b, chan_create, chan_destroy, sizeof(struct chan_ctx), "b");
	sl_set_thread(g_t[1]);
	ch = sl_get_io_channel(&g_dev_b);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ch);
	sl_set_thread(t);
	g_fe_cpl_thread = NULL;
	sl_for_each_channel(&g_dev_b, fe_visit_any, NULL, fe_done);
	sl_io_device_unregister(&g_dev_b, dev_unregistered);
	sl_thread_exit(t);
	for (i = 0; i < 10; i++) {
		sl_thread_poll(t, 0, 0);
	}
	CU_ASSERT_FATAL(!sl_thread_is_exited(t));

	/* The iteration completes on t; the unregistration still holds it. */
	sl_thread_poll(g_t[1], 0, 0);
	sl_thread_poll(t, 0, 0);
	CU_ASSERT(g_fe_cpl_thread == t);
	CU_ASSERT_FATAL(!sl_thread_is_exited(t));

	sl_set_thread(g_t[1]);
	sl_put_io_channel(ch);
	sl_thread_poll(g_t[1], 0, 0);
	CU_ASSERT(g_unregistered == 0);
	for (i = 0; i < 10 && !sl_thread_is_exited(t); i++) {
		sl_thread_poll(t, 0, 0);
	}
	CU_ASSERT(g_unregistered == 1);
	CU_ASSERT(g_unregister_thread == t);
	CU_ASSERT(sl_thread_is_exited(t));
	sl_set_thread(NULL);
	sl_thread_destroy(t);
}

static int
suite_init(void)
{
	int i;

	if (sl_thread_lib_init(NULL, 0) != 0) {
		return -1;
	}
	for (i = 0; i < NTHREADS; i++) {
		g_t[i] = sl_thread_create(NULL, NULL);
		if (g_t[i] == NULL) {
			return -1;
		}
	}
	return 0;
}

static int
suite_fini(void)
{
	int i;

	for (i = 0; i < NTHREADS; i++) {
		if (sl_ut_thread_end(g_t[i]) != 0) {
			return -1;
		}
	}
	sl_thread_lib_fini();
	return 0;
}

int
main(void)
{
	CU_pSuite suite = sl_ut_suite("io_channel", suite_init, suite_fini);

	CU_ADD_TEST(suite, test_lifetime);
	CU_ADD_TEST(suite, test_get_fails);
	CU_ADD_TEST(suite, test_unregister_waits);
	CU_ADD_TEST(suite, test_for_each_channel);
	CU_ADD_TEST(suite, test_exit_waits_for_channel);
	CU_ADD_TEST(suite, test_exit_waits_for_completions);
	return sl_ut_run();
}
