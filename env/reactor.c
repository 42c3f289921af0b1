/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * Reactors: one pinned OS thread per core of the mask, each polling the lightweight
 * threads placed on it.
 *
 * Adaptive mode. Each reactor owns an epoll fd holding an eventfd (wake-ups) and the
 * epoll fds of its threads (nested epoll: a thread's epoll fd is readable when one of
 * its fd pollers' fds is). The reactor sleeps in epoll_pwait2() until the nearest
 * timed poller is due once it has gone idle_spin_us without busy run-always pollers
 * (work only polling notices, such as device completions) and REACTOR_EVENT_SPIN_US
 * without messages from other threads (whose successors wake it, at a cost to their
 * senders) or fd pollers in the middle of a transfer, and at once after any other
 * work: fd pollers that drained their fd, and what they set off on their own thread,
 * are woken by epoll, and a sleep that finds work pending costs one syscall that
 * returns at once. Senders wake it
 * through the eventfd, and only when it sleeps, so a message to a spinning reactor costs no
 * syscall. The lost wake-up race is closed Dekker-style: the reactor stores `sleeping` and then
 * re-reads the message rings; a sender enqueues and then reads `sleeping`; both with full fences
 * between, so at least one of them sees the other.
 *
 * Under load an adaptive reactor turns hot (reactor_review_heat): it stops sleeping,
 * and its threads take their direct fd pollers' fds out of epoll (sl_thread_set_hot),
 * which spares the peers writing to those sockets epoll's wake-up callbacks.
 * Busy-polling reactors are hot from the start.
 */

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <rte_errno.h>
#include <rte_lcore.h>

#include "sluice/env.h"
#include "sluice/log.h"
#include "sluice/reactor.h"
#include "sluice/util.h"
#include "thread_internal.h"

/* A reactor spins this long after its last busy iteration before it sleeps. Long
 * enough to cover the gap between an I/O submission and its completion on fast
 * devices and a message round trip to another reactor; short enough that an idle
 * reactor costs nothing measurable (see test/bench/README.md). */
#define REACTOR_IDLE_SPIN_US_DEFAULT 200
/* After messages from other threads a reactor spins only this long: the next one
 * wakes it through the eventfd, which its sender pays for, so a short spin catches the
 * next of a burst for free. Likewise in the middle of a transfer on a socket. Not
 * after other fd work: spinning for the next request would make a server at a steady
 * request rate burn its whole core (100K NBD requests/s never leave a 20 us gap),
 * while sleeping costs only the sleeper. */
#define REACTOR_EVENT_SPIN_US 20
/* Longest sleep while stopping: exiting threads are checked at least this often. */
#define REACTOR_STOP_SLEEP_US 1000
/* Heat. A reactor that sleeps between bursts of fd work a few microseconds apart
 * saves itself little CPU, while its peers pay for the sleeps: a socket in an epoll
 * set costs every write into it epoll's wake-up callbacks (a tenth of an NBD client's
 * throughput at 150K 4 KiB writes/s). A cold window of REACTOR_HEAT_WINDOW_US is loaded
 * when direct fd pollers ran in it and its idle stretches averaged under
 * REACTOR_HOT_GAP_US; REACTOR_HOT_STREAK loaded windows in a row turn the reactor hot
 * (see reactor_review_heat). Measured with one NBD connection (test/bench/nbd/README.md):
 * 3-7 us per idle stretch unthrottled; at a fixed 100K requests/s, where the reactor
 * must go on sleeping (its CPU per request is a goal there), over 25 us in 98 % of
 * the windows, under 10 us in 0.4 %, and a loaded window rarely comes alone. */
#define REACTOR_HEAT_WINDOW_US  1000
#define REACTOR_HOT_GAP_US      10
#define REACTOR_HOT_STREAK      3
#define REACTOR_HOT_HOLD_MIN_US 2000
#define REACTOR_HOT_HOLD_MAX_US 32000
#define REACTOR_NEW_THREADS     4096
#define REACTOR_EPOLL_EVENTS    32

/* The scheduler context of each sl_thread (sl_thread_get_ctx). */
struct reactor_thread {
	TAILQ_ENTRY(reactor_thread) link;
	struct reactor *reactor;
};

struct reactor {
	uint32_t index;
	uint32_t core;
	pthread_t tid;
	int epfd;
	int evfd;
	/* Threads placed here by other OS threads, adopted by the reactor itself. */
	struct sl_ring *new_threads;
	TAILQ_HEAD(, reactor_thread) threads;
	bool stop_seen;
	uint64_t last_poll_busy_tick;  /* last run-always poller work */
	uint64_t last_event_busy_tick; /* last message from another thread */
	uint64_t last_fd_check_tick;   /* last look at all threads' fds */
	/* Heat (reactor_review_heat): the current window's start, and the counters then. */
	bool hot;
	bool heat_rehot;      /* the window measures after a hot period */
	uint32_t heat_streak; /* loaded cold windows in a row */
	uint64_t hot_hold_ticks;
	uint64_t heat_tick;
	uint64_t heat_idle_tsc;
	uint64_t heat_sleeps;
	uint64_t heat_direct_runs;

	/* Read by other OS threads: sleeping by senders, the rest by get_info. */
	atomic_bool sleeping __attribute__((aligned(SL_CACHE_LINE)));
	_Atomic uint64_t busy_tsc;
	_Atomic uint64_t idle_tsc;
	_Atomic uint64_t sleeps;
	_Atomic uint64_t hot_periods; /* times it turned hot */
	_Atomic uint64_t hot_tsc;     /* ticks spent hot (adaptive) */
	atomic_bool hot_now;
	atomic_uint thread_count;
} __attribute__((aligned(SL_CACHE_LINE)));

static struct reactor *g_reactors;
static uint32_t g_reactor_count;
static enum sl_reactor_mode g_mode;
static uint64_t g_idle_spin_ticks;
static uint64_t g_event_spin_ticks;
static uint64_t g_heat_window_ticks;
static uint64_t g_hot_gap_ticks;
static uint64_t g_hot_hold_min_ticks;
static uint64_t g_hot_hold_max_ticks;
static bool g_no_pin;
static atomic_bool g_stopping;
static atomic_uint g_next_reactor;
static __thread struct reactor *tls_reactor;
/* Set by sl_reactor_thread_create around sl_thread_create: the reactor to use. */
static __thread int32_t tls_place_index = -1;

static void
reactor_kick(struct reactor *r)
{
	uint64_t one = 1;

	if (write(r->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN) {
		SL_ERRLOG("reactor %u: eventfd write: %s\n", r->index, strerror(errno));
	}
}

/* Wake r if it sleeps. Called after an enqueue into one of its rings. */
static void
reactor_wake(struct reactor *r)
{
	/* Orders the caller's enqueue before the read of sleeping (see the top). */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&r->sleeping, memory_order_relaxed) &&
	    atomic_exchange(&r->sleeping, false)) {
		reactor_kick(r);
	}
}

static void
reactor_wake_fn(struct sl_thread *thread, void *arg)
{
	reactor_wake(arg);
}

static void
reactor_kick_all(void)
{
	uint32_t i;

	for (i = 0; i < g_reactor_count; i++) {
		reactor_kick(&g_reactors[i]);
	}
}

/* --- Placement ------------------------------------------------------------------ */

static struct reactor *
reactor_pick(const struct sl_thread *thread)
{
	const struct sl_cpuset *mask = sl_thread_get_cpumask(thread);
	uint32_t start, k;
	struct reactor *r;

	if (tls_place_index >= 0) {
		return &g_reactors[tls_place_index];
	}
	start = atomic_fetch_add(&g_next_reactor, 1);
	for (k = 0; k < g_reactor_count; k++) {
		r = &g_reactors[(start + k) % g_reactor_count];
		if (sl_cpuset_get_cpu(mask, r->core)) {
			return r;
		}
	}
	return NULL;
}

/* The sl_new_thread_fn: place a new thread on a reactor, which adopts it. */
static int
reactor_schedule_thread(struct sl_thread *thread)
{
	struct reactor_thread *rt = sl_thread_get_ctx(thread);
	struct reactor *r = reactor_pick(thread);
	void *obj = thread;

	if (r == NULL) {
		SL_ERRLOG("thread %s: no reactor runs on a core of its cpumask\n",
			  sl_thread_get_name(thread));
		return -EINVAL;
	}
	rt->reactor = r;
	sl_thread_set_wake_fn(thread, reactor_wake_fn, r);
	if (sl_ring_enqueue(r->new_threads, &obj, 1, NULL) != 1) {
		return -ENOMEM;
	}
	reactor_wake(r);
	return 0;
}

static void
reactor_adopt_threads(struct reactor *r)
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct sl_thread *thread;
	struct reactor_thread *rt;
	void *obj;

	while (sl_ring_dequeue(r->new_threads, &obj, 1) == 1) {
		thread = obj;
		rt = sl_thread_get_ctx(thread);
		TAILQ_INSERT_TAIL(&r->threads, rt, link);
		atomic_fetch_add(&r->thread_count, 1);
		ev.data.ptr = thread;
		if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, sl_thread_get_epoll_fd(thread), &ev) != 0) {
			SL_ERRLOG("reactor %u: cannot watch thread %s: %s\n", r->index,
				  thread->name, strerror(errno));
		}
		sl_thread_set_hot(thread, r->hot);
		if (r->stop_seen) {
			sl_set_thread(thread);
			sl_thread_exit(thread);
			sl_set_thread(NULL);
		}
	}
}

static void
reactor_remove_thread(struct reactor *r, struct reactor_thread *rt)
{
	struct sl_thread *thread = sl_thread_get_from_ctx(rt);

	TAILQ_REMOVE(&r->threads, rt, link);
	atomic_fetch_sub(&r->thread_count, 1);
	epoll_ctl(r->epfd, EPOLL_CTL_DEL, sl_thread_get_epoll_fd(thread), NULL);
	sl_thread_destroy(thread);
	if (atomic_load(&g_stopping) && thread_live_count() == 0) {
		/* The others may sleep with no thread left: let them see the end. */
		reactor_kick_all();
	}
}

static void
reactor_exit_threads(struct reactor *r)
{
	struct reactor_thread *rt;

	TAILQ_FOREACH (rt, &r->threads, link) {
		struct sl_thread *thread = sl_thread_get_from_ctx(rt);

		sl_set_thread(thread);
		sl_thread_exit(thread);
	}
	sl_set_thread(NULL);
	r->stop_seen = true;
}

/* --- The loop ------------------------------------------------------------------- */

static uint64_t
reactor_sleep_ticks(struct reactor *r, uint64_t now)
{
	struct reactor_thread *rt;
	uint64_t ticks = UINT64_MAX, t;

	if (sl_ring_count(r->new_threads) != 0) {
		return 0;
	}
	TAILQ_FOREACH (rt, &r->threads, link) {
		t = sl_thread_next_poller_ticks(sl_thread_get_from_ctx(rt), now);
		ticks = SL_MIN(ticks, t);
		if (ticks == 0) {
			return 0;
		}
	}
	if (atomic_load(&g_stopping)) {
		ticks = SL_MIN(ticks, REACTOR_STOP_SLEEP_US * sl_get_ticks_hz() / 1000000);
	}
	return ticks;
}

static int
reactor_epoll_wait(struct reactor *r, struct epoll_event *evs, uint64_t ticks)
{
	struct timespec ts, *tsp = NULL;
	uint64_t ns;
	int n;

	if (ticks != UINT64_MAX) {
		ns = (uint64_t)((unsigned __int128)ticks * 1000000000u / sl_get_ticks_hz());
		ts.tv_sec = (time_t)(ns / 1000000000u);
		ts.tv_nsec = (long)(ns % 1000000000u);
		tsp = &ts;
	}
	/* epoll_pwait2 (Linux 5.11) sleeps with ns precision; epoll_wait rounds to ms. */
	n = epoll_pwait2(r->epfd, evs, REACTOR_EPOLL_EVENTS, tsp, NULL);
	if (n < 0 && errno == ENOSYS) {
		int ms = tsp == NULL ? -1
				     : (int)SL_MIN((ns + 999999) / 1000000, (uint64_t)INT32_MAX);

		n = epoll_wait(r->epfd, evs, REACTOR_EPOLL_EVENTS, ms);
	}
	return n;
}

/* Take the events of a wait on the reactor's epoll fd. The wait looked at every
 * thread's fds: those it did not report are quiet and need no look of their own until
 * their next period (an epoll_wait() per thread otherwise). */
static void
reactor_take_events(struct reactor *r, const struct epoll_event *evs, int n, uint64_t now)
{
	struct reactor_thread *rt;
	uint64_t val;
	int i;

	/* A full array may have left ready threads out: they look for themselves. */
	TAILQ_FOREACH (rt, &r->threads, link) {
		if (n < REACTOR_EPOLL_EVENTS) {
			sl_thread_get_from_ctx(rt)->last_fd_poll_tick = now;
		}
	}
	for (i = 0; i < n; i++) {
		struct sl_thread *thread = evs[i].data.ptr;

		if (thread == NULL) {
			if (read(r->evfd, &val, sizeof(val)) < 0 && errno != EAGAIN) {
				SL_ERRLOG("reactor %u: eventfd read: %s\n", r->index,
					  strerror(errno));
			}
		} else {
			thread->fd_ready = true;
		}
	}
}

/* While awake, look at every thread's fds with one epoll_wait() on the reactor's epoll
 * fd every THREAD_FD_POLL_US, rather than one per thread. */
static void
reactor_check_fds(struct reactor *r, uint64_t now)
{
	struct epoll_event evs[REACTOR_EPOLL_EVENTS];
	int n;

	if (now - r->last_fd_check_tick < g_thread_fd_poll_ticks) {
		return;
	}
	r->last_fd_check_tick = now;
	n = epoll_wait(r->epfd, evs, REACTOR_EPOLL_EVENTS, 0);
	if (n >= 0) {
		reactor_take_events(r, evs, n, now);
	}
}

static void
reactor_set_hot(struct reactor *r, bool hot)
{
	struct reactor_thread *rt;

	r->hot = hot;
	atomic_store_explicit(&r->hot_now, hot, memory_order_relaxed);
	if (hot) {
		atomic_fetch_add_explicit(&r->hot_periods, 1, memory_order_relaxed);
	}
	TAILQ_FOREACH (rt, &r->threads, link) {
		sl_thread_set_hot(sl_thread_get_from_ctx(rt), hot);
	}
}

static uint64_t
reactor_direct_runs(struct reactor *r)
{
	struct reactor_thread *rt;
	uint64_t runs = 0;

	TAILQ_FOREACH (rt, &r->threads, link) {
		runs += sl_thread_get_direct_runs(sl_thread_get_from_ctx(rt));
	}
	return runs;
}

/* At the end of a window (adaptive mode). Two loaded cold windows in a row turn the
 * reactor hot (one alone is often a burst at a moderate rate) for REACTOR_HOT_HOLD_MIN_US;
 * then it cools for a window that measures again, and if that one is loaded too, it
 * turns hot again for twice as long, up to REACTOR_HOT_HOLD_MAX_US. A window is loaded
 * when direct fd pollers ran and its idle stretches averaged under REACTOR_HOT_GAP_US
 * (a window with no sleep counts as one stretch). */
static void
reactor_review_heat(struct reactor *r, uint64_t now)
{
	uint64_t idle = atomic_load_explicit(&r->idle_tsc, memory_order_relaxed);
	uint64_t sleeps = atomic_load_explicit(&r->sleeps, memory_order_relaxed);
	uint64_t runs = reactor_direct_runs(r);
	bool loaded, was_hot = r->hot;

	/* Threads leaving take their direct runs along: the count may go down. */
	/* Hysteresis: the window after a hot period needs only half the load. */
	loaded = runs > r->heat_direct_runs &&
		 idle - r->heat_idle_tsc < SL_MAX(sleeps - r->heat_sleeps, UINT64_C(1)) *
						   g_hot_gap_ticks * (r->heat_rehot ? 2 : 1);
	if (was_hot) {
		atomic_fetch_add_explicit(&r->hot_tsc, now - r->heat_tick, memory_order_relaxed);
		reactor_set_hot(r, false);
	} else if (!loaded) {
		r->heat_streak = 0;
	} else if (r->heat_rehot) {
		r->hot_hold_ticks = SL_MIN(r->hot_hold_ticks * 2, g_hot_hold_max_ticks);
		reactor_set_hot(r, true);
	} else if (++r->heat_streak >= REACTOR_HOT_STREAK) {
		r->hot_hold_ticks = g_hot_hold_min_ticks;
		reactor_set_hot(r, true);
	}
	r->heat_rehot = was_hot;
	r->heat_tick = now;
	r->heat_idle_tsc = idle;
	r->heat_sleeps = sleeps;
	r->heat_direct_runs = runs;
}

static void
reactor_sleep(struct reactor *r, uint64_t now)
{
	struct epoll_event evs[REACTOR_EPOLL_EVENTS];
	uint64_t ticks, end;
	int n;

	atomic_store(&r->sleeping, true);
	/* The ring counts below are plain loads (rte_ring_count), which a seq_cst store
	 * alone does not order after it (C11; ARMv8 stlr then ldr): the full fence does,
	 * pairing with the one in reactor_wake(). */
	atomic_thread_fence(memory_order_seq_cst);
	/* Re-check after the store: a sender that missed the flag has enqueued. */
	ticks = reactor_sleep_ticks(r, now);
	if (ticks == 0 || (atomic_load(&g_stopping) && !r->stop_seen)) {
		atomic_store(&r->sleeping, false);
		return;
	}
	atomic_fetch_add_explicit(&r->sleeps, 1, memory_order_relaxed);
	n = reactor_epoll_wait(r, evs, ticks);
	atomic_store(&r->sleeping, false);
	end = sl_get_ticks();
	r->last_fd_check_tick = end;
	reactor_take_events(r, evs, SL_MAX(n, 0), end);
	atomic_fetch_add_explicit(&r->idle_tsc, end - now, memory_order_relaxed);
}

static void
reactor_run(struct reactor *r)
{
	struct reactor_thread *rt, *tmp;
	uint64_t now, end;
	bool busy, poll, event, again, tbusy;

	tls_reactor = r;
	r->last_poll_busy_tick = r->last_event_busy_tick = r->heat_tick = sl_get_ticks();
	if (g_mode != SL_REACTOR_ADAPTIVE) {
		reactor_set_hot(r, true);
	}
	for (;;) {
		now = sl_get_ticks();
		if (sl_unlikely(sl_ring_count(r->new_threads) != 0)) {
			reactor_adopt_threads(r);
		}
		if (sl_unlikely(atomic_load_explicit(&g_stopping, memory_order_relaxed))) {
			if (!r->stop_seen) {
				reactor_exit_threads(r);
			}
			if (thread_live_count() == 0) {
				break;
			}
		}
		busy = poll = event = again = false;
		reactor_check_fds(r, now);
		TAILQ_FOREACH_SAFE (rt, &r->threads, link, tmp) {
			struct sl_thread *thread = sl_thread_get_from_ctx(rt);

			tbusy = sl_thread_poll(thread, 0, now) > 0;
			busy |= tbusy;
			again |= tbusy && thread->active_count > 0;
			poll |= thread->poll_busy;
			event |= thread->event_busy;
			if (sl_unlikely(sl_thread_is_exited(thread))) {
				reactor_remove_thread(r, rt);
			}
		}
		end = sl_get_ticks();
		atomic_fetch_add_explicit(busy ? &r->busy_tsc : &r->idle_tsc, end - now,
					  memory_order_relaxed);
		if (g_mode != SL_REACTOR_ADAPTIVE) {
			continue;
		}
		if (poll) {
			r->last_poll_busy_tick = end;
		}
		if (event) {
			r->last_event_busy_tick = end;
		}
		if (end - r->heat_tick >= (r->hot ? r->hot_hold_ticks : g_heat_window_ticks)) {
			reactor_review_heat(r, end);
		}
		if (r->hot) {
			continue;
		}
		/* Not straight after work on a thread with run-always pollers: what the work
		 * set off may wait for one of them (an aio submission batched for the next
		 * poll, an NVMe doorbell rung on the next completion check), and nothing
		 * but another iteration runs it. An iteration costs no syscall; a missed
		 * one costs a request timeout. (A thread whose pollers paused themselves,
		 * a malloc bdev's, has nothing that waits so.) */
		if (!again && end - r->last_poll_busy_tick >= g_idle_spin_ticks &&
		    end - r->last_event_busy_tick >= g_event_spin_ticks) {
			reactor_sleep(r, end);
		}
	}
	tls_reactor = NULL;
}

static void
reactor_pin(struct reactor *r, pthread_t tid)
{
	cpu_set_t set;
	int rc;

	if (g_no_pin) {
		return;
	}
	CPU_ZERO(&set);
	CPU_SET(r->core, &set);
	rc = pthread_setaffinity_np(tid, sizeof(set), &set);
	if (rc != 0) {
		SL_ERRLOG("reactor %u: cannot pin to core %u: %s\n", r->index, r->core,
			  strerror(rc));
	}
}

static void *
reactor_main(void *arg)
{
	struct reactor *r = arg;
	bool registered = false;

	reactor_pin(r, pthread_self());
	/* Give the reactor an lcore id so DPDK mempool caches work on it. */
	if (sl_env_is_initialized() && rte_lcore_id() == LCORE_ID_ANY) {
		registered = rte_thread_register() == 0;
		if (!registered) {
			SL_WARNLOG("reactor %u: no DPDK lcore: %s\n", r->index,
				   rte_strerror(rte_errno));
		}
	}
	reactor_run(r);
	if (registered) {
		rte_thread_unregister();
	}
	return NULL;
}

/* --- Life cycle ----------------------------------------------------------------- */

static int
reactors_parse_mask(const struct sl_reactors_opts *opts, struct sl_cpuset *mask)
{
	cpu_set_t allowed;
	uint32_t cpu;

	if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
		return -errno;
	}
	sl_cpuset_zero(mask);
	if (opts->cpumask == NULL) {
		for (cpu = 0; cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &allowed); cpu++) {
		}
		sl_cpuset_set_cpu(mask, cpu, true);
		return 0;
	}
	if (sl_cpuset_parse(mask, opts->cpumask) != 0 || sl_cpuset_count(mask) == 0) {
		SL_ERRLOG("invalid core mask '%s'\n", opts->cpumask);
		return -EINVAL;
	}
	for (cpu = sl_cpuset_next(mask, 0); cpu != UINT32_MAX && !opts->no_pin;
	     cpu = sl_cpuset_next(mask, cpu + 1)) {
		if (cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &allowed)) {
			SL_ERRLOG("core mask '%s': core %u is not available to this process\n",
				  opts->cpumask, cpu);
			return -EINVAL;
		}
	}
	return 0;
}

static int
reactor_construct(struct reactor *r, uint32_t index, uint32_t core)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};

	r->index = index;
	r->core = core;
	TAILQ_INIT(&r->threads);
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	r->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	r->new_threads = sl_ring_create(SL_RING_MP_SC, REACTOR_NEW_THREADS, SL_ENV_SOCKET_ANY);
	if (r->epfd < 0 || r->evfd < 0 || r->new_threads == NULL) {
		return -ENOMEM;
	}
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->evfd, &ev) != 0) {
		return -errno;
	}
	return 0;
}

static void
reactor_destruct(struct reactor *r)
{
	struct reactor_thread *rt;
	void *obj;

	/* Threads never run (start not called) or left behind: force them out. */
	while (sl_ring_dequeue(r->new_threads, &obj, 1) == 1) {
		rt = sl_thread_get_ctx(obj);
		TAILQ_INSERT_TAIL(&r->threads, rt, link);
	}
	while ((rt = TAILQ_FIRST(&r->threads)) != NULL) {
		struct sl_thread *thread = sl_thread_get_from_ctx(rt);

		TAILQ_REMOVE(&r->threads, rt, link);
		atomic_store(&thread->state, THREAD_STATE_EXITED);
		sl_thread_destroy(thread);
	}
	sl_ring_free(r->new_threads);
	if (r->epfd >= 0) {
		close(r->epfd);
	}
	if (r->evfd >= 0) {
		close(r->evfd);
	}
}

static void
reactors_free(void)
{
	uint32_t i;

	for (i = 0; i < g_reactor_count; i++) {
		reactor_destruct(&g_reactors[i]);
	}
	free(g_reactors);
	g_reactors = NULL;
	g_reactor_count = 0;
}

int
sl_reactors_init(const struct sl_reactors_opts *opts)
{
	struct sl_reactors_opts defaults = {0};
	struct sl_cpuset mask;
	uint32_t cpu, i = 0;
	int rc;

	if (g_reactors != NULL) {
		return -EALREADY;
	}
	opts = opts != NULL ? opts : &defaults;
	rc = reactors_parse_mask(opts, &mask);
	if (rc != 0) {
		return rc;
	}
	g_reactor_count = sl_cpuset_count(&mask);
	g_reactors = aligned_alloc(SL_CACHE_LINE, g_reactor_count * sizeof(*g_reactors));
	if (g_reactors == NULL) {
		g_reactor_count = 0;
		return -ENOMEM;
	}
	memset(g_reactors, 0, g_reactor_count * sizeof(*g_reactors));
	for (i = 0; i < g_reactor_count; i++) {
		g_reactors[i].epfd = g_reactors[i].evfd = -1;
	}
	for (cpu = sl_cpuset_next(&mask, 0), i = 0; cpu != UINT32_MAX;
	     cpu = sl_cpuset_next(&mask, cpu + 1), i++) {
		rc = reactor_construct(&g_reactors[i], i, cpu);
		if (rc != 0) {
			reactors_free();
			return rc;
		}
	}
	g_mode = opts->mode;
	g_no_pin = opts->no_pin;
	g_idle_spin_ticks =
		(uint64_t)(opts->idle_spin_us ? opts->idle_spin_us : REACTOR_IDLE_SPIN_US_DEFAULT) *
		sl_get_ticks_hz() / 1000000;
	g_event_spin_ticks = SL_MIN(g_idle_spin_ticks,
				    (uint64_t)REACTOR_EVENT_SPIN_US * sl_get_ticks_hz() / 1000000);
	g_heat_window_ticks = (uint64_t)REACTOR_HEAT_WINDOW_US * sl_get_ticks_hz() / 1000000;
	g_hot_gap_ticks = (uint64_t)REACTOR_HOT_GAP_US * sl_get_ticks_hz() / 1000000;
	g_hot_hold_min_ticks = (uint64_t)REACTOR_HOT_HOLD_MIN_US * sl_get_ticks_hz() / 1000000;
	g_hot_hold_max_ticks = (uint64_t)REACTOR_HOT_HOLD_MAX_US * sl_get_ticks_hz() / 1000000;
	atomic_store(&g_stopping, false);
	atomic_store(&g_next_reactor, 0);
	rc = sl_thread_lib_init(reactor_schedule_thread, sizeof(struct reactor_thread));
	if (rc != 0) {
		reactors_free();
	}
	return rc;
}

void
sl_reactors_start(void)
{
	cpu_set_t saved;
	bool restore;
	uint32_t i;
	int rc;

	for (i = 1; i < g_reactor_count; i++) {
		char name[16];

		rc = pthread_create(&g_reactors[i].tid, NULL, reactor_main, &g_reactors[i]);
		if (rc != 0) {
			SL_ERRLOG("reactor %u: cannot start: %s\n", i, strerror(rc));
			sl_reactors_stop();
			g_reactors[i].tid = 0;
			continue;
		}
		snprintf(name, sizeof(name), "reactor_%u", g_reactors[i].core);
		pthread_setname_np(g_reactors[i].tid, name);
	}
	/* The caller is reactor 0: pin it for the run, then give it its mask back. */
	restore = pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved) == 0;
	g_reactors[0].tid = pthread_self();
	reactor_pin(&g_reactors[0], pthread_self());
	reactor_run(&g_reactors[0]);
	for (i = 1; i < g_reactor_count; i++) {
		if (g_reactors[i].tid != 0) {
			pthread_join(g_reactors[i].tid, NULL);
		}
	}
	if (restore && !g_no_pin) {
		pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
	}
}

void
sl_reactors_stop(void)
{
	atomic_store(&g_stopping, true);
	reactor_kick_all();
}

void
sl_reactors_fini(void)
{
	if (g_reactors == NULL) {
		return;
	}
	reactors_free();
	sl_thread_lib_fini();
}

/* --- Information ---------------------------------------------------------------- */

uint32_t
sl_reactor_count(void)
{
	return g_reactor_count;
}

uint32_t
sl_reactor_current_core(void)
{
	return tls_reactor != NULL ? tls_reactor->core : UINT32_MAX;
}

uint32_t
sl_reactor_current_index(void)
{
	return tls_reactor != NULL ? tls_reactor->index : UINT32_MAX;
}

uint32_t
sl_reactor_core(uint32_t i)
{
	return i < g_reactor_count ? g_reactors[i].core : UINT32_MAX;
}

int
sl_reactor_get_info(uint32_t i, struct sl_reactor_info *info)
{
	struct reactor *r;

	if (i >= g_reactor_count) {
		return -EINVAL;
	}
	r = &g_reactors[i];
	info->core = r->core;
	info->index = r->index;
	info->in_interrupt = atomic_load(&r->sleeping);
	info->busy_tsc = atomic_load_explicit(&r->busy_tsc, memory_order_relaxed);
	info->idle_tsc = atomic_load_explicit(&r->idle_tsc, memory_order_relaxed);
	info->sleeps = atomic_load_explicit(&r->sleeps, memory_order_relaxed);
	info->hot = atomic_load_explicit(&r->hot_now, memory_order_relaxed);
	info->hot_periods = atomic_load_explicit(&r->hot_periods, memory_order_relaxed);
	info->hot_tsc = atomic_load_explicit(&r->hot_tsc, memory_order_relaxed);
	info->thread_count = atomic_load(&r->thread_count);
	return 0;
}

enum sl_reactor_mode
sl_reactors_get_mode(void)
{
	return g_mode;
}

struct sl_thread *
sl_reactor_thread_create(uint32_t index, const char *name)
{
	struct sl_cpuset mask;
	struct sl_thread *thread;

	if (index >= g_reactor_count) {
		SL_ERRLOG("thread %s: no reactor %u (%u reactors)\n", name ? name : "", index,
			  g_reactor_count);
		return NULL;
	}
	sl_cpuset_zero(&mask);
	sl_cpuset_set_cpu(&mask, g_reactors[index].core, true);
	tls_place_index = (int32_t)index;
	thread = sl_thread_create(name, &mask);
	tls_place_index = -1;
	return thread;
}
