/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * Unit tests of a forced exit (env/thread.c, env/io_channel.c): a thread that does not
 * finish exiting within the exit timeout (lowered here to 50 ms) is marked
 * exited and destroyed while it still holds pollers or channels, awaits completions,
 * or has messages queued. Nothing it leaves may be touched after it is freed: by the
 * holders of its pollers, by the iterations and unregistrations it started, or by the
 * messages sent to it. Run under ASan to see the use-after-free these used to be.
 * Threads are polled by hand.
 */

#include <CUnit/Basic.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "sl_ut.h"
#include "env/thread_internal.h"
#include "sluice/thread.h"

/* Short, but past the first poll of an exiting thread on a loaded machine. */
#define EXIT_TIMEOUT_MS 50

static uint32_t g_saved_timeout_ms;
static int g_dev;
static int g_creates, g_destroys, g_unregistered;
static struct sl_thread *g_unregister_thread;

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct sl_thread *
thread_new(const char *name)
{
	struct sl_thread *t = sl_thread_create(name, NULL);

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	return t;
}

/* Ask t to exit, as its own code would. */
static void
exit_begin(struct sl_thread *t)
{
	sl_set_thread(t);
	CU_ASSERT(sl_thread_exit(t) == 0);
	sl_set_thread(NULL);
}

/* Poll an exiting t until the exit timeout forces it out (it never exits by itself). */
static void
poll_until_forced(struct sl_thread *t)
{
	uint64_t end = now_ms() + SL_UT_TIMEOUT_MS;

	while (!sl_thread_is_exited(t) && now_ms() < end) {
		sl_thread_poll(t, 0, 0);
	}
	CU_ASSERT_FATAL(sl_thread_is_exited(t));
}

/* Exit t, let the timeout force it out, and free it, as a reactor does. */
static void
force_out(struct sl_thread *t)
{
	exit_begin(t);
	poll_until_forced(t);
	sl_thread_destroy(t);
}

static int
chan_create(void *io_device, void *ctx_buf)
{
	g_creates++;
	return 0;
}

static void
chan_destroy(void *io_device, void *ctx_buf)
{
	g_destroys++;
}

static void
dev_unregistered(void *io_device)
{
	g_unregistered++;
	g_unregister_thread = sl_get_thread();
}

static void
dev_register(void)
{
	g_creates = g_destroys = g_unregistered = 0;
	g_unregister_thread = NULL;
	sl_io_device_register(&g_dev, chan_create, chan_destroy, 64, "forced_dev");
}

static struct sl_io_channel *
chan_get(struct sl_thread *t)
{
	struct sl_io_channel *ch;

	sl_set_thread(t);
	ch = sl_get_io_channel(&g_dev);
	sl_set_thread(NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ch);
	return ch;
}

static void
chan_put(struct sl_io_channel *ch)
{
	struct sl_thread *t = sl_io_channel_get_thread(ch);

	sl_set_thread(t);
	sl_put_io_channel(ch);
	sl_set_thread(NULL);
	sl_ut_poll(t);
}

/* The device address can be registered again: its unregistration has completed. */
static void
dev_check_gone(void)
{
	struct sl_thread *t = thread_new("check");
	struct sl_io_channel *ch;

	sl_io_device_register(&g_dev, NULL, NULL, 8, "forced_dev_again");
	sl_set_thread(t);
	ch = sl_get_io_channel(&g_dev);
	CU_ASSERT_PTR_NOT_NULL(ch);
	sl_put_io_channel(ch);
	sl_io_device_unregister(&g_dev, NULL);
	sl_set_thread(NULL);
	CU_ASSERT(sl_ut_thread_end(t) == 0);
}

/* --- Completions awaited by a forced thread --------------------------------------- */

/*
 * A thread unregisters a device while another holds a channel to it, and is forced out
 * waiting for the unregistration. The last channel goes later: the completion must
 * not be sent to the freed thread, nor its callback run anywhere else (it was meant
 * for the forced thread), and the device must still be freed.
 */
static void
test_forced_unregister_completion(void)
{
	struct sl_thread *asker = thread_new("asker"), *holder = thread_new("holder");
	struct sl_io_channel *ch;

	dev_register();
	ch = chan_get(holder);
	sl_set_thread(asker);
	sl_io_device_unregister(&g_dev, dev_unregistered);
	sl_set_thread(NULL);
	force_out(asker);

	chan_put(ch);
	CU_ASSERT(g_destroys == 1);
	CU_ASSERT(g_unregistered == 0);
	CU_ASSERT(sl_ut_thread_end(holder) == 0);
	dev_check_gone();
}

/*
 * The shutdown case: every thread exits at once; the one that unregistered a device
 * is forced out first, then the one leaking a channel to it. Destroying the second
 * releases the channel, which completes the unregistration for the first.
 */
static void
test_forced_unregister_both(void)
{
	struct sl_thread *asker = thread_new("asker"), *holder = thread_new("holder");

	dev_register();
	chan_get(holder);
	sl_set_thread(asker);
	sl_io_device_unregister(&g_dev, dev_unregistered);
	sl_set_thread(NULL);
	exit_begin(asker);
	exit_begin(holder);
	poll_until_forced(asker);
	sl_thread_destroy(asker);
	poll_until_forced(holder);
	sl_thread_destroy(holder);
	/* A leaked channel is released without its destroy callback. */
	CU_ASSERT(g_destroys == 0);
	CU_ASSERT(g_unregistered == 0);
	dev_check_gone();
}

static atomic_int g_fe_visits;
static atomic_int g_fe_cpls;

static void
fe_thread_visit(void *ctx)
{
	atomic_fetch_add(&g_fe_visits, 1);
}

static void
fe_thread_done(void *ctx)
{
	atomic_fetch_add(&g_fe_cpls, 1);
}

/* sl_for_each_thread's origin is forced out before the iteration comes back. */
static void
test_forced_for_each_thread_origin(void)
{
	struct sl_thread *orig = thread_new("fe_orig"), *other = thread_new("fe_other");

	atomic_store(&g_fe_visits, 0);
	atomic_store(&g_fe_cpls, 0);
	sl_set_thread(orig);
	sl_for_each_thread(fe_thread_visit, NULL, fe_thread_done);
	sl_set_thread(NULL);
	/* The origin runs its own step, then waits for other's, which never runs. */
	force_out(orig);
	CU_ASSERT(atomic_load(&g_fe_visits) == 1);

	sl_ut_poll(other);
	CU_ASSERT(atomic_load(&g_fe_visits) == 2);
	CU_ASSERT(atomic_load(&g_fe_cpls) == 0);
	CU_ASSERT(sl_ut_thread_end(other) == 0);
}

static void
fe_channel_visit(struct sl_io_channel_iter *i)
{
	atomic_fetch_add(&g_fe_visits, 1);
	sl_for_each_channel_continue(i, 0);
}

static void
fe_channel_done(struct sl_io_channel_iter *i, int status)
{
	atomic_fetch_add(&g_fe_cpls, 1);
}

/*
 * sl_for_each_channel's origin is forced out before the iteration comes back; the
 * device's unregistration waits for the iteration, and must still complete.
 */
static void
test_forced_for_each_channel_origin(void)
{
	struct sl_thread *orig = thread_new("fe_orig"), *holder = thread_new("holder");
	struct sl_io_channel *ch;

	dev_register();
	ch = chan_get(holder);
	atomic_store(&g_fe_visits, 0);
	atomic_store(&g_fe_cpls, 0);
	sl_set_thread(orig);
	sl_for_each_channel(&g_dev, fe_channel_visit, NULL, fe_channel_done);
	sl_set_thread(NULL);
	force_out(orig);

	sl_ut_poll(holder);
	CU_ASSERT(atomic_load(&g_fe_visits) == 1);
	CU_ASSERT(atomic_load(&g_fe_cpls) == 0);
	chan_put(ch);
	sl_set_thread(holder);
	sl_io_device_unregister(&g_dev, dev_unregistered);
	sl_set_thread(NULL);
	sl_ut_poll(holder);
	CU_ASSERT(g_unregistered == 1);
	CU_ASSERT(g_unregister_thread == holder);
	CU_ASSERT(sl_ut_thread_end(holder) == 0);
}

/* --- Pollers left to their holders ------------------------------------------------- */

static int
poller_idle(void *arg)
{
	(*(int *)arg)++;
	return SL_POLLER_IDLE;
}

/*
 * The holders of a forced thread's pollers unregister them later, from another thread
 * or from none: the unregistration must not touch the freed thread nor a freed poller.
 */
static void
test_forced_pollers_unregistered_later(void)
{
	struct sl_thread *t = thread_new("leaky"), *other = thread_new("other");
	struct sl_poller *active, *timed, *paused, *fdp;
	int runs = 0, efd = eventfd(0, EFD_NONBLOCK);

	CU_ASSERT_FATAL(efd >= 0);
	sl_set_thread(t);
	active = sl_poller_register(poller_idle, &runs, 0, "leaked_active");
	timed = sl_poller_register(poller_idle, &runs, 1000000, "leaked_timed");
	paused = sl_poller_register(poller_idle, &runs, 0, "leaked_paused");
	fdp = sl_poller_register_fd(efd, EPOLLIN, poller_idle, &runs, "leaked_fd");
	CU_ASSERT_FATAL(active && timed && paused && fdp);
	sl_poller_pause(paused);
	sl_set_thread(NULL);
	force_out(t);
	runs = 0;

	/* Owner-only calls are refused, not run on a freed thread. */
	sl_set_thread(other);
	sl_poller_pause(active);
	sl_poller_resume(paused);
	CU_ASSERT(sl_poller_fd_set_events(fdp, EPOLLOUT) == -EINVAL);
	sl_poller_unregister(&active);
	sl_poller_unregister(&timed);
	sl_set_thread(NULL);
	sl_poller_unregister(&paused);
	sl_poller_unregister(&fdp);
	CU_ASSERT(active == NULL && timed == NULL && paused == NULL && fdp == NULL);
	sl_ut_poll(other);
	CU_ASSERT(runs == 0);
	close(efd);
	CU_ASSERT(sl_ut_thread_end(other) == 0);
}

/*
 * An unregistration from another thread that lands between the forced exit and the
 * destruction: refused with -EIO by the send, so the destruction frees the poller.
 */
static void
test_forced_poller_unregistered_before_destroy(void)
{
	struct sl_thread *t = thread_new("leaky");
	struct sl_poller *p;
	int runs = 0;

	sl_set_thread(t);
	p = sl_poller_register(poller_idle, &runs, 0, "leaked");
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	sl_set_thread(NULL);
	exit_begin(t);
	poll_until_forced(t);
	sl_poller_unregister(&p);
	CU_ASSERT(p == NULL);
	sl_thread_destroy(t);
}

struct unregister_race {
	struct sl_poller *poller;
	uint64_t delay_us;
	atomic_int go;
};

static void *
unregister_race_main(void *arg)
{
	struct unregister_race *r = arg;
	uint64_t end;

	while (!atomic_load(&r->go)) {
		sched_yield();
	}
	end = sl_get_ticks() + r->delay_us * sl_get_ticks_hz() / 1000000;
	while (sl_get_ticks() < end) {
	}
	sl_poller_unregister(&r->poller);
	return NULL;
}

/*
 * The holder of a leaked poller unregisters it from another OS thread while its thread
 * is forced out and destroyed: before the exit closes (the message runs), between the
 * exit and the destruction (the destruction frees it), after (the holder frees it).
 */
static void
test_forced_poller_unregister_race(void)
{
	uint32_t saved = g_thread_exit_timeout_ms;
	struct unregister_race r;
	struct sl_thread *t;
	pthread_t tid;
	int runs = 0, i;

	g_thread_exit_timeout_ms = 1;
	for (i = 0; i < 60; i++) {
		t = thread_new("leaky");
		sl_set_thread(t);
		r.poller = sl_poller_register(poller_idle, &runs, 0, "raced");
		sl_set_thread(NULL);
		CU_ASSERT_PTR_NOT_NULL_FATAL(r.poller);
		r.delay_us = (uint64_t)(i % 20) * 100;
		atomic_store(&r.go, 0);
		CU_ASSERT_FATAL(pthread_create(&tid, NULL, unregister_race_main, &r) == 0);
		exit_begin(t);
		atomic_store(&r.go, 1);
		poll_until_forced(t);
		sl_thread_destroy(t);
		pthread_join(tid, NULL);
		CU_ASSERT(r.poller == NULL);
	}
	g_thread_exit_timeout_ms = saved;
}

/* --- Messages queued when it is forced out ----------------------------------------- */

static atomic_int g_msgs_ran;

static void
msg_count(void *arg)
{
	atomic_fetch_add(&g_msgs_ran, 1);
}

/* Queue n messages to t from another thread, after t's exit timeout has passed. */
static void
queue_after_timeout(struct sl_thread *t, struct sl_thread *from, int n)
{
	int i;

	usleep(2 * EXIT_TIMEOUT_MS * 1000);
	sl_set_thread(from);
	for (i = 0; i < n; i++) {
		CU_ASSERT(sl_thread_send_msg(t, msg_count, NULL) == 0);
	}
	sl_set_thread(NULL);
}

/*
 * A message accepted runs (sl_thread_send_msg), also when the thread it was sent to is
 * forced out with a backlog: more than one poll's batch is queued when the timeout hits.
 */
static void
test_forced_runs_queued_msgs(void)
{
	struct sl_thread *t = thread_new("leaky"), *other = thread_new("other");
	struct sl_poller *p;
	int runs = 0;

	atomic_store(&g_msgs_ran, 0);
	sl_set_thread(t);
	p = sl_poller_register(poller_idle, &runs, 0, "leaked");
	sl_set_thread(NULL);
	exit_begin(t);
	sl_thread_poll(t, 0, 0);
	CU_ASSERT_FATAL(!sl_thread_is_exited(t));
	queue_after_timeout(t, other, 3 * THREAD_MSG_BATCH);
	sl_thread_poll(t, 0, 0);
	CU_ASSERT(sl_thread_is_exited(t));
	CU_ASSERT(atomic_load(&g_msgs_ran) == 3 * THREAD_MSG_BATCH);
	sl_set_thread(other);
	CU_ASSERT(sl_thread_send_msg(t, msg_count, NULL) == -EIO);
	sl_set_thread(NULL);
	sl_thread_destroy(t);
	sl_poller_unregister(&p);
	CU_ASSERT(sl_ut_thread_end(other) == 0);
}

/*
 * An iteration step queued behind a backlog on a thread that is forced out: the
 * iteration must still visit it and complete on its origin (and the device, whose
 * unregistration waits for the iteration, be freed).
 */
static void
test_forced_iteration_step_queued(void)
{
	struct sl_thread *t = thread_new("leaky"), *orig = thread_new("fe_orig");

	dev_register();
	chan_get(t); /* leaked */
	atomic_store(&g_fe_visits, 0);
	atomic_store(&g_fe_cpls, 0);
	atomic_store(&g_msgs_ran, 0);
	exit_begin(t);
	sl_thread_poll(t, 0, 0);
	CU_ASSERT_FATAL(!sl_thread_is_exited(t));
	queue_after_timeout(t, orig, 2 * THREAD_MSG_BATCH);
	sl_set_thread(orig);
	sl_for_each_channel(&g_dev, fe_channel_visit, NULL, fe_channel_done);
	sl_io_device_unregister(&g_dev, dev_unregistered);
	sl_set_thread(NULL);

	sl_thread_poll(t, 0, 0);
	CU_ASSERT(sl_thread_is_exited(t));
	sl_thread_destroy(t);
	sl_ut_poll(orig);
	CU_ASSERT(atomic_load(&g_fe_visits) == 1);
	CU_ASSERT(atomic_load(&g_fe_cpls) == 1);
	CU_ASSERT(g_unregistered == 1);
	CU_ASSERT(g_unregister_thread == orig);
	CU_ASSERT(sl_ut_thread_end(orig) == 0);
}

/* --- Channels ----------------------------------------------------------------------- */

/*
 * A forced thread's leaked channel is released: iterations started meanwhile skip the
 * forced thread, and an unregistration waiting for the channel completes on its thread.
 */
static void
test_forced_channel_released(void)
{
	struct sl_thread *t = thread_new("leaky"), *other = thread_new("other");

	dev_register();
	chan_get(t);
	exit_begin(t);
	poll_until_forced(t);

	/* Exited, not yet destroyed: an iteration started now skips it. */
	atomic_store(&g_fe_visits, 0);
	atomic_store(&g_fe_cpls, 0);
	sl_set_thread(other);
	sl_for_each_channel(&g_dev, fe_channel_visit, NULL, fe_channel_done);
	sl_io_device_unregister(&g_dev, dev_unregistered);
	sl_set_thread(NULL);
	sl_ut_poll(other);
	CU_ASSERT(atomic_load(&g_fe_visits) == 0);
	CU_ASSERT(atomic_load(&g_fe_cpls) == 1);
	CU_ASSERT(g_unregistered == 0);

	sl_thread_destroy(t);
	sl_ut_poll(other);
	CU_ASSERT(g_unregistered == 1);
	CU_ASSERT(g_unregister_thread == other);
	CU_ASSERT(g_destroys == 0);
	CU_ASSERT(sl_ut_thread_end(other) == 0);
}

static int
suite_init(void)
{
	g_saved_timeout_ms = g_thread_exit_timeout_ms;
	g_thread_exit_timeout_ms = EXIT_TIMEOUT_MS;
	return sl_thread_lib_init(NULL, 0);
}

static int
suite_fini(void)
{
	sl_thread_lib_fini();
	g_thread_exit_timeout_ms = g_saved_timeout_ms;
	return thread_live_count() == 0 ? 0 : -1;
}

int
main(void)
{
	CU_pSuite suite = sl_ut_suite("thread_forced", suite_init, suite_fini);

	CU_ADD_TEST(suite, test_forced_channel_released);
	CU_ADD_TEST(suite, test_forced_unregister_completion);
	CU_ADD_TEST(suite, test_forced_unregister_both);
	CU_ADD_TEST(suite, test_forced_for_each_thread_origin);
	CU_ADD_TEST(suite, test_forced_for_each_channel_origin);
	CU_ADD_TEST(suite, test_forced_pollers_unregistered_later);
	CU_ADD_TEST(suite, test_forced_poller_unregistered_before_destroy);
	CU_ADD_TEST(suite, test_forced_poller_unregister_race);
	CU_ADD_TEST(suite, test_forced_runs_queued_msgs);
	CU_ADD_TEST(suite, test_forced_iteration_step_queued);
	return sl_ut_run();
}
