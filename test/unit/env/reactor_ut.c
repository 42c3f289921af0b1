/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * Unit tests of env/reactor.c on real reactors: two of them, not pinned (the test
 * machine may have fewer cores than reactors). sl_reactors_start() runs on a helper
 * OS thread; the test drives the lightweight threads with messages and waits on
 * atomics. Every wait has a generous bound: these check behaviour, not speed.
 */

#include <CUnit/Basic.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "sl_ut.h"
#include "env/thread_internal.h"
#include "sluice/reactor.h"

static pthread_t g_runner;
static struct sl_thread *g_t0, *g_t1;

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static bool
wait_for(const atomic_int *v, int want, uint64_t timeout_ms)
{
	uint64_t end = now_us() + timeout_ms * 1000;

	while (atomic_load(v) < want && now_us() < end) {
		usleep(200);
	}
	return atomic_load(v) >= want;
}

static void *
runner_main(void *arg)
{
	sl_reactors_start();
	return NULL;
}

static int
reactors_up(enum sl_reactor_mode mode)
{
	struct sl_reactors_opts opts = {
		.cpumask = "0x3",
		.mode = mode,
		.idle_spin_us = 100,
		.no_pin = true,
	};

	if (sl_reactors_init(&opts) != 0) {
		return -1;
	}
	g_t0 = sl_reactor_thread_create(0, "t0");
	g_t1 = sl_reactor_thread_create(1, "t1");
	if (g_t0 == NULL || g_t1 == NULL) {
		return -1;
	}
	return pthread_create(&g_runner, NULL, runner_main, NULL) == 0 ? 0 : -1;
}

static int
reactors_down(void)
{
	sl_reactors_stop();
	pthread_join(g_runner, NULL);
	sl_reactors_fini();
	return 0;
}

/* --- Run code on a thread and wait for it --------------------------------------- */

struct call {
	void (*fn)(void *);
	void *arg;
	atomic_int done;
};

static void
call_run(void *arg)
{
	struct call *c = arg;

	c->fn(c->arg);
	atomic_store(&c->done, 1);
}

static void
run_on(struct sl_thread *t, void (*fn)(void *), void *arg)
{
	struct call c = {.fn = fn, .arg = arg};

	CU_ASSERT_FATAL(sl_thread_send_msg(t, call_run, &c) == 0);
	CU_ASSERT_FATAL(wait_for(&c.done, 1, 5000));
}

/* --- Tests ---------------------------------------------------------------------- */

static void
test_info(void)
{
	struct sl_reactor_info info;

	CU_ASSERT(sl_reactor_count() == 2);
	CU_ASSERT(sl_reactor_core(0) == 0);
	CU_ASSERT(sl_reactor_core(1) == 1);
	CU_ASSERT(sl_reactor_core(2) == UINT32_MAX);
	CU_ASSERT(sl_reactor_current_index() == UINT32_MAX);
	CU_ASSERT(sl_reactor_get_info(1, &info) == 0);
	CU_ASSERT(info.index == 1 && info.core == 1);
	CU_ASSERT(sl_reactor_get_info(2, &info) == -EINVAL);
	CU_ASSERT(sl_reactor_thread_create(2, "none") == NULL);
	CU_ASSERT(sl_reactors_get_mode() == SL_REACTOR_ADAPTIVE);
}

struct pingpong {
	atomic_int count;
	int limit;
	bool wrong_reactor;
};

static void ping(void *arg);

static void
ping(void *arg)
{
	struct pingpong *p = arg;
	int n = atomic_fetch_add(&p->count, 1) + 1;
	struct sl_thread *self = sl_get_thread();

	if (sl_reactor_current_index() != (self == g_t0 ? 0u : 1u)) {
		p->wrong_reactor = true;
	}
	if (n < p->limit) {
		sl_thread_send_msg(self == g_t0 ? g_t1 : g_t0, ping, p);
	}
}

static void
test_cross_reactor_messages(void)
{
	struct pingpong p = {.limit = 20000};

	CU_ASSERT(sl_thread_send_msg(g_t0, ping, &p) == 0);
	CU_ASSERT(wait_for(&p.count, p.limit, 20000));
	CU_ASSERT(!p.wrong_reactor);
}

static void
get_index(void *arg)
{
	*(uint32_t *)arg = sl_reactor_current_index();
}

static void
test_adaptive_sleep_and_wake_on_msg(void)
{
	struct sl_reactor_info info;
	uint32_t index = 99;
	uint64_t t0, sleeps;
	uint64_t end = now_us() + 5000000;

	/* Idle: reactor 1 goes to sleep. */
	do {
		usleep(1000);
		sl_reactor_get_info(1, &info);
	} while (!info.in_interrupt && now_us() < end);
	CU_ASSERT(info.in_interrupt);
	CU_ASSERT(info.sleeps > 0);
	sleeps = info.sleeps;
	/* A message wakes it; loose bound on the latency. */
	t0 = now_us();
	run_on(g_t1, get_index, &index);
	CU_ASSERT(index == 1);
	CU_ASSERT(now_us() - t0 < 1000000);
	do {
		usleep(1000);
		sl_reactor_get_info(1, &info);
	} while (info.sleeps == sleeps && now_us() < end);
	CU_ASSERT(info.sleeps > sleeps);
}

static atomic_int g_ticks;
static struct sl_poller *g_timer;

static int
timer_fn(void *arg)
{
	atomic_fetch_add(&g_ticks, 1);
	return SL_POLLER_BUSY;
}

static void
timer_start(void *arg)
{
	g_timer = sl_poller_register(timer_fn, NULL, 20000, "timer");
}

static void
timer_stop(void *arg)
{
	sl_poller_unregister(&g_timer);
}

static void
test_adaptive_wake_on_timer(void)
{
	struct sl_reactor_info before, after;
	uint64_t t0, elapsed_ms;
	int n;

	atomic_store(&g_ticks, 0);
	sl_reactor_get_info(1, &before);
	t0 = now_us();
	run_on(g_t1, timer_start, NULL);
	usleep(300000);
	n = atomic_load(&g_ticks);
	elapsed_ms = (now_us() - t0) / 1000;
	run_on(g_t1, timer_stop, NULL);
	sl_reactor_get_info(1, &after);
	/* A 20 ms poller over ~300 ms: never faster than its period, and a sleeping
	 * reactor still wakes for it. */
	CU_ASSERT(n >= 3);
	CU_ASSERT(n <= (int)(elapsed_ms / 20) + 1);
	/* It slept between the runs rather than spinning. */
	CU_ASSERT(after.sleeps - before.sleeps >= (uint64_t)n - 1);
}

struct fdwatch {
	int fd;
	struct sl_poller *poller;
	atomic_int runs;
};

static int
fd_fn(void *arg)
{
	struct fdwatch *w = arg;
	uint64_t v;

	if (read(w->fd, &v, sizeof(v)) == sizeof(v)) {
		atomic_fetch_add(&w->runs, 1);
		return SL_POLLER_BUSY;
	}
	return SL_POLLER_IDLE;
}

static void
fd_start(void *arg)
{
	struct fdwatch *w = arg;

	w->poller = sl_poller_register_fd(w->fd, EPOLLIN, fd_fn, w, "efd");
}

static void
fd_stop(void *arg)
{
	sl_poller_unregister(&((struct fdwatch *)arg)->poller);
}

static void
test_adaptive_wake_on_fd(void)
{
	struct fdwatch w = {.fd = eventfd(0, EFD_NONBLOCK)};
	struct sl_reactor_info info;
	uint64_t one = 1, end;
	int i;

	run_on(g_t1, fd_start, &w);
	CU_ASSERT_PTR_NOT_NULL(w.poller);
	for (i = 1; i <= 3; i++) {
		end = now_us() + 5000000;
		do {
			usleep(1000);
			sl_reactor_get_info(1, &info);
		} while (!info.in_interrupt && now_us() < end);
		CU_ASSERT(info.in_interrupt);
		CU_ASSERT(write(w.fd, &one, sizeof(one)) == sizeof(one));
		CU_ASSERT(wait_for(&w.runs, i, 1000));
	}
	run_on(g_t1, fd_stop, &w);
	close(w.fd);
}

/* --- Heat ------------------------------------------------------------------------ */

struct kicker {
	int fd;
	atomic_bool stop;
};

static void *
kicker_main(void *arg)
{
	struct kicker *k = arg;
	uint64_t one = 1;

	while (!atomic_load(&k->stop)) {
		if (write(k->fd, &one, sizeof(one)) != sizeof(one)) {
			sched_yield();
		}
	}
	return NULL;
}

static void
fd_start_direct(void *arg)
{
	struct fdwatch *w = arg;

	fd_start(w);
	if (w->poller != NULL) {
		sl_poller_fd_set_direct(w->poller, true);
	}
}

static bool
wait_hot(uint32_t index, bool hot, uint64_t timeout_ms)
{
	struct sl_reactor_info info;
	uint64_t end = now_us() + timeout_ms * 1000;

	do {
		usleep(1000);
		sl_reactor_get_info(index, &info);
	} while (info.hot != hot && now_us() < end);
	return info.hot == hot;
}

/* A reactor whose direct fd poller has input every few microseconds turns hot, and
 * goes back to sleeping once the input stops; a quiet one never turns hot. */
static void
test_adaptive_heat(void)
{
	struct fdwatch w = {.fd = eventfd(0, EFD_NONBLOCK)};
	struct kicker k = {.fd = w.fd};
	struct sl_reactor_info before, after;
	uint64_t one = 1, end;
	pthread_t tid;
	int runs;

	run_on(g_t1, fd_start_direct, &w);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w.poller);
	sl_reactor_get_info(1, &before);
	usleep(20000);
	sl_reactor_get_info(1, &after);
	CU_ASSERT(!after.hot && after.hot_periods == before.hot_periods);

	CU_ASSERT_FATAL(pthread_create(&tid, NULL, kicker_main, &k) == 0);
	CU_ASSERT(wait_hot(1, true, 5000));
	atomic_store(&k.stop, true);
	pthread_join(tid, NULL);
	sl_reactor_get_info(1, &after);
	CU_ASSERT(after.hot_periods > before.hot_periods);

	/* Quiet again: it cools within a hold and sleeps. */
	CU_ASSERT(wait_hot(1, false, 5000));
	end = now_us() + 5000000;
	do {
		usleep(1000);
		sl_reactor_get_info(1, &after);
	} while (!after.in_interrupt && now_us() < end);
	CU_ASSERT(after.in_interrupt);
	CU_ASSERT(after.hot_tsc > before.hot_tsc);
	/* And its fd wakes it as before. */
	runs = atomic_load(&w.runs);
	CU_ASSERT(write(w.fd, &one, sizeof(one)) == sizeof(one));
	CU_ASSERT(wait_for(&w.runs, runs + 1, 1000));
	run_on(g_t1, fd_stop, &w);
	close(w.fd);
}

static atomic_int g_visited;
static atomic_int g_fe_done;

static void
fe_visit(void *ctx)
{
	atomic_fetch_add(&g_visited, 1);
}

static void
fe_done(void *ctx)
{
	atomic_store(&g_fe_done, 1);
}

static void
fe_start(void *arg)
{
	sl_for_each_thread(fe_visit, NULL, fe_done);
}

static void
test_for_each_thread(void)
{
	atomic_store(&g_visited, 0);
	atomic_store(&g_fe_done, 0);
	run_on(g_t1, fe_start, NULL);
	CU_ASSERT(wait_for(&g_fe_done, 1, 5000));
	CU_ASSERT(atomic_load(&g_visited) == 2);
}

/* Shutdown: messages queued when stop is called all run before start returns. */
#define FLOOD 10000
static atomic_int g_flood_ran;

static void
flood_msg(void *arg)
{
	atomic_fetch_add(&g_flood_ran, 1);
}

static void
flood_and_stop(void *arg)
{
	int i, sent = 0;

	for (i = 0; i < FLOOD; i++) {
		sent += sl_thread_send_msg(g_t1, flood_msg, NULL) == 0;
	}
	CU_ASSERT(sent == FLOOD);
	sl_reactors_stop();
}

static void
test_stop_drains_messages(void)
{
	struct sl_reactors_opts opts = {.cpumask = "[0-1]", .no_pin = true};
	struct sl_thread *extra;

	CU_ASSERT_FATAL(sl_reactors_init(&opts) == 0);
	g_t0 = sl_reactor_thread_create(0, "t0");
	g_t1 = sl_reactor_thread_create(1, "t1");
	/* Round-robin placement of an unplaced thread. */
	extra = sl_thread_create("extra", NULL);
	CU_ASSERT_PTR_NOT_NULL(extra);
	atomic_store(&g_flood_ran, 0);
	sl_thread_send_msg(g_t0, flood_and_stop, NULL);
	sl_reactors_start(); /* on this thread: it returns after the stop */
	CU_ASSERT(atomic_load(&g_flood_ran) == FLOOD);
	CU_ASSERT(thread_live_count() == 0);
	sl_reactors_fini();
}

/* A thread that leaks a poller is forced out after the exit timeout. */
static int
leak_fn(void *arg)
{
	return SL_POLLER_IDLE;
}

static struct sl_poller *g_leaked_poller;

static void
leak_and_stop(void *arg)
{
	g_leaked_poller = sl_poller_register(leak_fn, NULL, 1000, "leaked");
	CU_ASSERT(g_leaked_poller != NULL);
	sl_reactors_stop();
}

static void
test_stop_forces_leaky_thread(void)
{
	struct sl_reactors_opts opts = {.cpumask = "0x1", .no_pin = true};
	uint32_t saved = g_thread_exit_timeout_ms;
	uint64_t t0;

	g_thread_exit_timeout_ms = 100;
	CU_ASSERT_FATAL(sl_reactors_init(&opts) == 0);
	g_t0 = sl_thread_create("leaky", NULL);
	sl_thread_send_msg(g_t0, leak_and_stop, NULL);
	t0 = now_us();
	sl_reactors_start();
	CU_ASSERT(now_us() - t0 >= 100000);
	CU_ASSERT(thread_live_count() == 0);
	/* Left to its holder by the forced exit. */
	sl_poller_unregister(&g_leaked_poller);
	sl_reactors_fini();
	g_thread_exit_timeout_ms = saved;
}

/*
 * The shutdown of a process with a leak: the app thread unregisters a device that
 * another thread leaks a channel to, and the reactors stop. Both threads are forced
 * out; the app thread first (it is first on the reactor), then the holder, whose
 * destruction releases the channel and so completes the unregistration awaited by the
 * app thread, freed by then.
 */
static int g_leak_dev;
static struct sl_thread *g_leak_app;

static void
leak_unregister_and_stop(void *arg)
{
	sl_io_device_unregister(&g_leak_dev, NULL);
	sl_reactors_stop();
}

static void
leak_channel(void *arg)
{
	CU_ASSERT(sl_get_io_channel(&g_leak_dev) != NULL);
	CU_ASSERT(sl_thread_send_msg(g_leak_app, leak_unregister_and_stop, NULL) == 0);
}

static void
test_stop_forces_unregistering_thread(void)
{
	struct sl_reactors_opts opts = {.cpumask = "0x1", .no_pin = true};
	uint32_t saved = g_thread_exit_timeout_ms;
	struct sl_thread *holder;

	g_thread_exit_timeout_ms = 100;
	CU_ASSERT_FATAL(sl_reactors_init(&opts) == 0);
	sl_io_device_register(&g_leak_dev, NULL, NULL, 8, "leak_dev");
	g_leak_app = sl_thread_create("app", NULL);
	holder = sl_thread_create("holder", NULL);
	CU_ASSERT_FATAL(g_leak_app != NULL && holder != NULL);
	sl_thread_send_msg(holder, leak_channel, NULL);
	sl_reactors_start();
	CU_ASSERT(thread_live_count() == 0);
	sl_reactors_fini();
	g_thread_exit_timeout_ms = saved;
	/* The unregistration completed: the address may be registered again. */
	sl_io_device_register(&g_leak_dev, NULL, NULL, 8, "leak_dev_again");
	sl_io_device_unregister(&g_leak_dev, NULL);
}

static void
test_busy_poll_spins(void)
{
	struct sl_reactor_info info;
	uint32_t index = 99;

	CU_ASSERT_FATAL(reactors_up(SL_REACTOR_BUSY_POLL) == 0);
	CU_ASSERT(sl_reactors_get_mode() == SL_REACTOR_BUSY_POLL);
	run_on(g_t1, get_index, &index);
	CU_ASSERT(index == 1);
	usleep(50000);
	sl_reactor_get_info(1, &info);
	CU_ASSERT(info.sleeps == 0);
	CU_ASSERT(!info.in_interrupt);
	CU_ASSERT(info.hot);
	CU_ASSERT(info.idle_tsc > 0);
	reactors_down();
}

static void
test_bad_masks(void)
{
	struct sl_reactors_opts opts = {.cpumask = "zz"};

	CU_ASSERT(sl_reactors_init(&opts) == -EINVAL);
	opts.cpumask = "0x0";
	CU_ASSERT(sl_reactors_init(&opts) == -EINVAL);
	/* A core this process may not run on (unless no_pin). */
	opts.cpumask = "[1023]";
	CU_ASSERT(sl_reactors_init(&opts) == -EINVAL);
	/* NULL = the first allowed core; fini without start frees the threads. */
	CU_ASSERT(sl_reactors_init(NULL) == 0);
	CU_ASSERT(sl_reactor_count() == 1);
	CU_ASSERT(sl_thread_create("never-run", NULL) != NULL);
	sl_reactors_fini();
	CU_ASSERT(thread_live_count() == 0);
}

static int
adaptive_init(void)
{
	return reactors_up(SL_REACTOR_ADAPTIVE);
}

static int
adaptive_fini(void)
{
	return reactors_down();
}

int
main(void)
{
	CU_pSuite suite = sl_ut_suite("reactor_adaptive", adaptive_init, adaptive_fini);

	CU_ADD_TEST(suite, test_info);
	CU_ADD_TEST(suite, test_cross_reactor_messages);
	CU_ADD_TEST(suite, test_adaptive_sleep_and_wake_on_msg);
	CU_ADD_TEST(suite, test_adaptive_wake_on_timer);
	CU_ADD_TEST(suite, test_adaptive_wake_on_fd);
	CU_ADD_TEST(suite, test_adaptive_heat);
	CU_ADD_TEST(suite, test_for_each_thread);
	suite = sl_ut_suite("reactor", NULL, NULL);
	CU_ADD_TEST(suite, test_stop_drains_messages);
	CU_ADD_TEST(suite, test_stop_forces_leaky_thread);
	CU_ADD_TEST(suite, test_stop_forces_unregistering_thread);
	CU_ADD_TEST(suite, test_busy_poll_spins);
	CU_ADD_TEST(suite, test_bad_masks);
	return sl_ut_run();
}
