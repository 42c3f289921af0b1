/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * msg_bench: the cost of the runtime's primitives.
 *
 *   msg_bench [-n iterations-scale]
 *
 * Hand-polled thread (no reactor):
 *   - send+run of a message to the same thread, in batches of 32;
 *   - an idle sl_thread_poll() iteration: empty, with 16 timed pollers not due, with a
 *     quiet fd poller;
 *   - a run-always poller call (16 empty pollers, minus the empty iteration);
 *   - one epoll_wait(0) on a thread's epoll fd (what fd polling costs per look).
 * Reactors (cores 0 and 1, unpinned if the process may not use both):
 *   - one-way message latency between two reactors (ping-pong / 2), busy polling and
 *     adaptive;
 *   - wake-up latency of a sleeping adaptive reactor (send to first instruction).
 * Prints a table; see test/bench/README.md for figures.
 */

#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "sluice/reactor.h"
#include "sluice/thread.h"

static double g_scale = 1.0;

static double
ticks_to_ns(uint64_t ticks)
{
	return (double)ticks * 1e9 / (double)sl_get_ticks_hz();
}

static uint64_t
iters(uint64_t n)
{
	return (uint64_t)((double)n * g_scale) + 1;
}

static void
row(const char *what, double ns)
{
	printf("%-58s %10.1f\n", what, ns);
}

/* --- Hand-polled ---------------------------------------------------------------- */

static void
msg_nop(void *arg)
{
	(*(uint64_t *)arg)++;
}

static int
poller_nop(void *arg)
{
	return SL_POLLER_IDLE;
}

static double
bench_same_thread_msgs(struct sl_thread *t)
{
	uint64_t n = iters(2000000) / 32 * 32, ran = 0, i, start;
	int k;

	start = sl_get_ticks();
	for (i = 0; i < n; i += 32) {
		for (k = 0; k < 32; k++) {
			sl_thread_send_msg(t, msg_nop, &ran);
		}
		sl_thread_poll(t, 32, 0);
	}
	return ticks_to_ns(sl_get_ticks() - start) / (double)n;
}

static double
bench_poll_iteration(struct sl_thread *t)
{
	uint64_t n = iters(2000000), i, start;

	start = sl_get_ticks();
	for (i = 0; i < n; i++) {
		sl_thread_poll(t, 0, 0);
	}
	return ticks_to_ns(sl_get_ticks() - start) / (double)n;
}

static void
bench_hand_polled(void)
{
	struct sl_poller *pollers[16], *fdp;
	struct sl_thread *t;
	double empty, with;
	int i, efd;
	uint64_t n, k, start;
	struct epoll_event ev;

	sl_thread_lib_init(NULL, 0);
	t = sl_thread_create("bench", NULL);
	sl_set_thread(t);

	/* Warm the message cache and the code. */
	bench_same_thread_msgs(t);
	row("message to the same thread, send + run (ns/msg)", bench_same_thread_msgs(t));

	empty = bench_poll_iteration(t);
	row("idle thread poll iteration, no pollers (ns)", empty);

	for (i = 0; i < 16; i++) {
		pollers[i] = sl_poller_register(poller_nop, NULL, 1000000, "timed");
	}
	row("idle thread poll iteration, 16 timed pollers not due (ns)", bench_poll_iteration(t));
	for (i = 0; i < 16; i++) {
		sl_poller_unregister(&pollers[i]);
	}

	for (i = 0; i < 16; i++) {
		pollers[i] = sl_poller_register(poller_nop, NULL, 0, "active");
	}
	with = bench_poll_iteration(t);
	row("run-always poller call (ns/call, 16 pollers)", (with - empty) / 16);
	for (i = 0; i < 16; i++) {
		sl_poller_unregister(&pollers[i]);
	}

	efd = eventfd(0, EFD_NONBLOCK);
	fdp = sl_poller_register_fd(efd, EPOLLIN, poller_nop, NULL, "fd");
	row("idle thread poll iteration, 1 quiet fd poller (ns)", bench_poll_iteration(t));
	n = iters(200000);
	start = sl_get_ticks();
	for (k = 0; k < n; k++) {
		epoll_wait(sl_thread_get_epoll_fd(t), &ev, 1, 0);
	}
	row("epoll_wait(0) on a thread's epoll fd (ns)",
	    ticks_to_ns(sl_get_ticks() - start) / (double)n);
	sl_poller_unregister(&fdp);
	close(efd);

	sl_thread_exit(t);
	while (!sl_thread_is_exited(t)) {
		sl_thread_poll(t, 0, 0);
	}
	sl_set_thread(NULL);
	sl_thread_destroy(t);
	sl_thread_lib_fini();
}

/* --- Reactors ------------------------------------------------------------------- */

static struct sl_thread *g_t0, *g_t1;

struct pingpong {
	uint64_t count;
	uint64_t limit;
	uint64_t start;
	uint64_t end;
};

static void
ping(void *arg)
{
	struct pingpong *p = arg;
	struct sl_thread *self = sl_get_thread();

	if (p->count == 0) {
		p->start = sl_get_ticks();
	}
	if (++p->count == p->limit) {
		p->end = sl_get_ticks();
		sl_reactors_stop();
		return;
	}
	sl_thread_send_msg(self == g_t0 ? g_t1 : g_t0, ping, p);
}

static bool
reactors_setup(enum sl_reactor_mode mode)
{
	struct sl_reactors_opts opts = {.cpumask = "0x3", .mode = mode};

	if (sl_reactors_init(&opts) != 0) {
		/* Fewer than 2 usable cores: measure anyway, unpinned. */
		opts.no_pin = true;
		if (sl_reactors_init(&opts) != 0) {
			return false;
		}
		printf("(reactors not pinned: cores 0-1 are not both available)\n");
	}
	g_t0 = sl_reactor_thread_create(0, "t0");
	g_t1 = sl_reactor_thread_create(1, "t1");
	return true;
}

static void
bench_pingpong(enum sl_reactor_mode mode, const char *label)
{
	struct pingpong p = {.limit = iters(400000)};

	if (!reactors_setup(mode)) {
		return;
	}
	sl_thread_send_msg(g_t0, ping, &p);
	sl_reactors_start();
	sl_reactors_fini();
	row(label, ticks_to_ns(p.end - p.start) / (double)(p.limit - 1));
}

/* Wake-up latency: t0 sends to t1 every 5 ms, once reactor 1 sleeps. */
struct wake {
	struct sl_poller *timer;
	uint64_t sent_tick;
	uint64_t total_ticks;
	uint64_t samples;
	uint64_t limit;
	atomic_bool in_flight;
};

static void
wake_recv(void *arg)
{
	struct wake *w = arg;

	w->total_ticks += sl_get_ticks() - w->sent_tick;
	w->samples++;
	atomic_store(&w->in_flight, false);
}

static int
wake_send(void *arg)
{
	struct wake *w = arg;
	struct sl_reactor_info info;

	if (w->samples >= w->limit) {
		sl_poller_unregister(&w->timer);
		sl_reactors_stop();
		return SL_POLLER_BUSY;
	}
	sl_reactor_get_info(1, &info);
	if (!info.in_interrupt || atomic_load(&w->in_flight)) {
		return SL_POLLER_IDLE;
	}
	atomic_store(&w->in_flight, true);
	w->sent_tick = sl_get_ticks();
	sl_thread_send_msg(g_t1, wake_recv, w);
	return SL_POLLER_BUSY;
}

static void
wake_start(void *arg)
{
	struct wake *w = arg;

	w->timer = sl_poller_register(wake_send, w, 5000, "wake");
}

static void
bench_wake(void)
{
	struct wake w = {.limit = iters(200)};

	if (!reactors_setup(SL_REACTOR_ADAPTIVE)) {
		return;
	}
	sl_thread_send_msg(g_t0, wake_start, &w);
	sl_reactors_start();
	sl_reactors_fini();
	if (w.samples > 0) {
		row("wake-up of a sleeping adaptive reactor by a message (ns)",
		    ticks_to_ns(w.total_ticks) / (double)w.samples);
	}
}

int
main(int argc, char **argv)
{
	int ch;

	while ((ch = getopt(argc, argv, "n:")) != -1) {
		if (ch == 'n') {
			g_scale = atof(optarg);
		} else {
			fprintf(stderr, "usage: %s [-n scale]\n", argv[0]);
			return 2;
		}
	}
	printf("%-58s %10s\n", "measure", "ns");
	bench_hand_polled();
	bench_pingpong(SL_REACTOR_BUSY_POLL,
		       "message between two reactors, busy polling (ns one-way)");
	bench_pingpong(SL_REACTOR_ADAPTIVE, "message between two reactors, adaptive (ns one-way)");
	bench_wake();
	return 0;
}
