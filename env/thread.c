/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * Lightweight threads: message queues, pollers, ticks.
 *
 * A thread's message queue is an MP/SC ring of pointers to messages taken from one
 * global pool; each thread keeps a small cache of free messages (SPDK's scheme), so
 * sending from a thread takes no pool operation in the steady state. A message is
 * returned to the cache of the thread that ran it.
 *
 * Pollers live in one of five lists: run-always, timed (sorted by deadline), fd,
 * paused, and reap. Callbacks may unregister or pause any poller of their thread,
 * themselves included, so nothing is freed while a loop may hold it: run-always
 * pollers are only marked and the loop unlinks them when it reaches them; timed
 * pollers are unlinked while they run; fd pollers go to the reap list, freed at the
 * end of sl_thread_poll().
 */

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <x86intrin.h>
#endif

#include "sluice/log.h"
#include "sluice/thread.h"
#include "sluice/util.h"
#include "thread_internal.h"

pthread_mutex_t g_threads_lock = PTHREAD_MUTEX_INITIALIZER;
struct thread_list g_threads = TAILQ_HEAD_INITIALIZER(g_threads);
uint32_t g_thread_exit_timeout_ms = THREAD_EXIT_TIMEOUT_MS;
uint64_t g_thread_fd_poll_ticks;
static uint64_t g_thread_direct_refresh_ticks;

/* Quiet fd pollers are polled every this many microseconds (see thread_poll_fds_due). */
#define THREAD_FD_POLL_US 4
/* A hot thread puts its detached fd pollers back into epoll this often: those still
 * busy leave it again at their next event, quiet ones stay (see sl_thread_set_hot). */
#define THREAD_DIRECT_REFRESH_US 1000

static uint64_t g_next_thread_id = 1;
static struct sl_thread *g_app_thread;
static sl_new_thread_fn g_new_thread_fn;
static size_t g_ctx_sz;
static struct sl_mempool *g_msg_pool;
static atomic_uint g_live_threads;
static __thread struct sl_thread *tls_thread;

/* --- Ticks -------------------------------------------------------------------- */

enum ticks_source {
	TICKS_UNSET,
	TICKS_CLOCK,
	TICKS_TSC,
};

/* Written once by ticks_init (g_ticks_hz first, then the source with release), so a
 * reader that sees a source set also sees the rate. */
static _Atomic int g_ticks_source;
static uint64_t g_ticks_hz;
static pthread_once_t g_ticks_once = PTHREAD_ONCE_INIT;

static uint64_t
clock_raw_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#if defined(__x86_64__) || defined(__i386__)
/* The TSC counts time only if it neither changes rate with frequency scaling
 * (constant_tsc) nor stops in deep C-states (nonstop_tsc). */
static bool
ticks_tsc_is_invariant(void)
{
	char line[4096];
	bool constant = false, nonstop = false;
	FILE *f = fopen("/proc/cpuinfo", "r");

	if (f == NULL) {
		return false;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "flags", 5) == 0) {
			constant = strstr(line, " constant_tsc") != NULL;
			nonstop = strstr(line, " nonstop_tsc") != NULL;
			break;
		}
	}
	fclose(f);
	return constant && nonstop;
}

/* CPUID.1:ECX bit 31, set by every hypervisor for its guests. */
static bool
ticks_under_hypervisor(void)
{
	unsigned int eax, ebx, ecx, edx;

	__cpuid(1, eax, ebx, ecx, edx);
	return (ecx >> 31) & 1u;
}

/* Whether the kernel's clocksource is one that clock_gettime() cannot read from the
 * vDSO (hpet: an MMIO read, acpi_pm: a port read; both traps under a hypervisor).
 * kvm-clock, tsc and the Hyper-V page are read in user space and cost no more than
 * the TSC, so where they serve there is nothing to win and the clock stays. */
static bool
ticks_clocksource_traps(void)
{
	char name[64] = "";
	FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");

	if (f == NULL) {
		return false;
	}
	if (fgets(name, sizeof(name), f) == NULL) {
		name[0] = '\0';
	}
	fclose(f);
	name[strcspn(name, "\n")] = '\0';
	return strcmp(name, "hpet") == 0 || strcmp(name, "acpi_pm") == 0;
}

/* One (clock, TSC) pair: the clock read bracketed by two TSC reads, the TSC taken at
 * the middle; the narrowest of a few brackets wins (a preemption or an emulated
 * clock's trap widens one). */
static void
ticks_sample(uint64_t *ns, uint64_t *tsc)
{
	uint64_t best = UINT64_MAX, a, b, t;
	int i;

	for (i = 0; i < 5; i++) {
		a = __rdtsc();
		t = clock_raw_ns();
		b = __rdtsc();
		if (b - a < best) {
			best = b - a;
			*ns = t;
			*tsc = a + (b - a) / 2;
		}
	}
}

/* The TSC rate over one window of ms milliseconds. */
static uint64_t
ticks_tsc_rate(uint64_t ms)
{
	uint64_t t0, c0, t1, c1;

	ticks_sample(&t0, &c0);
	do {
		ticks_sample(&t1, &c1);
	} while (t1 - t0 < ms * 1000000ull);
	if (c1 <= c0) {
		return 0;
	}
	return (uint64_t)((unsigned __int128)(c1 - c0) * 1000000000u / (t1 - t0));
}

/*
 * Whether to count time with the TSC, and its rate. An invariant TSC is the CPU's own
 * promise. Under a hypervisor the flags are often missing although the TSC runs at a
 * steady rate (QEMU's TCG derives it from the host's TSC). Where the kernel then
 * falls back to a trapping clocksource (a TCG guest: every clock_gettime is a system
 * call and an emulated HPET read under QEMU's big lock), the TSC is taken if two
 * windows of calibration agree within 0.2 %. A migration to a host with another TSC
 * rate would skew such ticks; a guest that can migrate has kvm-clock, and keeps the
 * clock.
 */
static bool
ticks_tsc_calibrate(uint64_t *hz)
{
	bool invariant = ticks_tsc_is_invariant();
	uint64_t r1, r2;

	if (!invariant && !(ticks_under_hypervisor() && ticks_clocksource_traps())) {
		return false;
	}
	/* 10 ms against CLOCK_MONOTONIC_RAW: a few ppm on hardware, and well below
	 * what any timer here needs in a guest. */
	r1 = ticks_tsc_rate(10);
	if (!invariant) {
		r2 = ticks_tsc_rate(10);
		if (r1 == 0 || r2 == 0 || (r1 > r2 ? r1 - r2 : r2 - r1) > r1 / 500) {
			SL_NOTICELOG("TSC rate unsteady under the hypervisor (%" PRIu64
				     " vs %" PRIu64 " Hz): ticks from clock_gettime\n",
				     r1, r2);
			return false;
		}
		r1 = r1 / 2 + r2 / 2;
	}
	/* Round to 10 kHz: the last digits are noise. */
	*hz = (r1 + 5000) / 10000 * 10000;
	if (!invariant) {
		SL_INFOLOG("ticks from the TSC at %" PRIu64 " Hz (hypervisor, trapping clock)\n",
			   *hz);
	}
	return *hz != 0;
}
#endif

static void
ticks_init(void)
{
	const char *force = getenv("SLUICE_TICKS");
	int source = TICKS_CLOCK;

	g_ticks_hz = 1000000000ull;
#if defined(__x86_64__) || defined(__i386__)
	/* SLUICE_TICKS=clock forces clock_gettime (to compare, or to rule the TSC out). */
	if ((force == NULL || strcmp(force, "clock") != 0) && ticks_tsc_calibrate(&g_ticks_hz)) {
		source = TICKS_TSC;
	}
#else
	(void)force;
#endif
	atomic_store_explicit(&g_ticks_source, source, memory_order_release);
}

static inline uint64_t
ticks_read(int source)
{
#if defined(__x86_64__) || defined(__i386__)
	if (sl_likely(source == TICKS_TSC)) {
		return __rdtsc();
	}
#else
	(void)source;
#endif
	return clock_raw_ns();
}

uint64_t
sl_get_ticks(void)
{
	int source = atomic_load_explicit(&g_ticks_source, memory_order_acquire);

	/* Ticks read before the first sl_get_ticks_hz() must be in the same unit. */
	if (sl_unlikely(source == TICKS_UNSET)) {
		sl_get_ticks_hz();
		source = atomic_load_explicit(&g_ticks_source, memory_order_acquire);
	}
	return ticks_read(source);
}

uint64_t
sl_get_ticks_hz(void)
{
	pthread_once(&g_ticks_once, ticks_init);
	return g_ticks_hz;
}

/* Longest period in ticks (decades at any tick rate): deadlines computed as now +
 * period then never wrap around the 64-bit tick counter. */
#define TICKS_PERIOD_MAX (UINT64_MAX / 4)

static uint64_t
ticks_from_us(uint64_t us)
{
	/* 128 bits: us * hz overflows 64 bits for periods past about 1.7 hours. */
	unsigned __int128 ticks = (unsigned __int128)us * sl_get_ticks_hz() / 1000000u;

	return ticks > TICKS_PERIOD_MAX ? TICKS_PERIOD_MAX : (uint64_t)ticks;
}

/* --- Library -------------------------------------------------------------------- */

int
sl_thread_lib_init(sl_new_thread_fn new_thread_fn, size_t ctx_sz)
{
	char name[64];

	if (g_msg_pool != NULL) {
		return -EALREADY;
	}
	/* Ticks must be calibrated before the first thread reads them. */
	sl_get_ticks_hz();
	g_thread_fd_poll_ticks = ticks_from_us(THREAD_FD_POLL_US);
	g_thread_direct_refresh_ticks = ticks_from_us(THREAD_DIRECT_REFRESH_US);
	snprintf(name, sizeof(name), "sl_msg_%d", getpid());
	g_msg_pool = env_mempool_create_heap(name, THREAD_MSG_POOL_SIZE, sizeof(struct thread_msg));
	if (g_msg_pool == NULL) {
		SL_ERRLOG("cannot allocate the message pool (%d messages)\n", THREAD_MSG_POOL_SIZE);
		return -ENOMEM;
	}
	g_new_thread_fn = new_thread_fn;
	g_ctx_sz = ctx_sz;
	return 0;
}

void
sl_thread_lib_fini(void)
{
	struct sl_thread *thread;

	pthread_mutex_lock(&g_threads_lock);
	TAILQ_FOREACH (thread, &g_threads, tailq) {
		SL_ERRLOG("thread %s (id %" PRIu64 ") still exists\n", thread->name, thread->id);
	}
	pthread_mutex_unlock(&g_threads_lock);
	sl_mempool_free(g_msg_pool);
	g_msg_pool = NULL;
	g_new_thread_fn = NULL;
	g_ctx_sz = 0;
	g_app_thread = NULL;
	g_next_thread_id = 1;
}

uint32_t
thread_live_count(void)
{
	return atomic_load(&g_live_threads);
}

/* --- Messages ------------------------------------------------------------------- */

static struct thread_msg *
msg_alloc(struct sl_thread *local)
{
	struct thread_msg *msg;
	void *bulk[THREAD_MSG_BATCH];
	size_t i;

	if (local == NULL) {
		return sl_mempool_get(g_msg_pool);
	}
	if (sl_unlikely(local->msg_cache_count == 0)) {
		/* Refill in bulk: one ring operation for a batch. */
		if (sl_mempool_get_bulk(g_msg_pool, bulk, SL_COUNTOF(bulk)) != 0) {
			return sl_mempool_get(g_msg_pool);
		}
		for (i = 0; i < SL_COUNTOF(bulk); i++) {
			STAILQ_INSERT_HEAD(&local->msg_cache, (struct thread_msg *)bulk[i], link);
		}
		local->msg_cache_count = SL_COUNTOF(bulk);
	}
	msg = STAILQ_FIRST(&local->msg_cache);
	STAILQ_REMOVE_HEAD(&local->msg_cache, link);
	local->msg_cache_count--;
	return msg;
}

static void
msg_free(struct sl_thread *local, struct thread_msg *msg)
{
	if (local != NULL && local->msg_cache_count < THREAD_MSG_CACHE_SIZE) {
		STAILQ_INSERT_HEAD(&local->msg_cache, msg, link);
		local->msg_cache_count++;
		return;
	}
	sl_mempool_put(g_msg_pool, msg);
}

int
sl_thread_send_msg(const struct sl_thread *cthread, sl_msg_fn fn, void *ctx)
{
	struct sl_thread *thread = (struct sl_thread *)(uintptr_t)cthread;
	struct sl_thread *local = tls_thread;
	enum thread_state state;
	struct thread_msg *msg;
	size_t n;

	msg = msg_alloc(local);
	if (sl_unlikely(msg == NULL)) {
		return -ENOMEM;
	}
	msg->fn = fn;
	msg->arg = ctx;
	msg->remote = thread != local;
	/*
	 * Announce the send before reading the state: thread_exit_check() sets EXIT_CHECK,
	 * then waits for announced senders and looks at the ring, so a message is either
	 * refused here or seen there -- never left in a dead thread's ring. A sender that
	 * sees EXIT_CHECK steps back and waits for the verdict: refusing it then would be
	 * wrong if a message already announced keeps the thread alive (it goes back to
	 * EXITING and runs later sends), so -EIO means exited for good and callers (the
	 * off-thread poller unregistration, for_each_thread) may rely on it. The wait is
	 * as short as the announced senders' enqueues; the thread's own sends never wait.
	 */
	for (;;) {
		atomic_fetch_add(&thread->senders, 1);
		state = atomic_load(&thread->state);
		if (sl_likely(state != THREAD_STATE_EXIT_CHECK)) {
			break;
		}
		atomic_fetch_sub(&thread->senders, 1);
		sched_yield();
	}
	if (sl_unlikely(state == THREAD_STATE_EXITED)) {
		atomic_fetch_sub(&thread->senders, 1);
		msg_free(local, msg);
		return -EIO;
	}
	n = sl_ring_enqueue(thread->messages, (void **)&msg, 1, NULL);
	if (sl_unlikely(n != 1)) {
		atomic_fetch_sub(&thread->senders, 1);
		msg_free(local, msg);
		return -ENOMEM;
	}
	/* Still announced: the thread cannot be destroyed under the wake hook. */
	if (thread->wake_fn != NULL && thread != local) {
		thread->wake_fn(thread, thread->wake_arg);
	}
	atomic_fetch_sub(&thread->senders, 1);
	return 0;
}

/* \return the number of messages run; *remote is set if one came from elsewhere. */
static uint32_t
msg_queue_run(struct sl_thread *thread, uint32_t max_msgs, bool *remote)
{
	void *msgs[THREAD_MSG_BATCH];
	uint32_t total = 0;
	size_t n, i;

	if (max_msgs == 0) {
		max_msgs = THREAD_MSG_BATCH;
	}
	do {
		n = sl_ring_dequeue(thread->messages, msgs,
				    SL_MIN(max_msgs - total, (uint32_t)SL_COUNTOF(msgs)));
		for (i = 0; i < n; i++) {
			struct thread_msg *msg = msgs[i];
			sl_msg_fn fn = msg->fn;
			void *arg = msg->arg;

			*remote |= msg->remote;
			/* Free first: fn's own sends then reuse the message from the cache. */
			msg_free(thread, msg);
			fn(arg);
		}
		total += (uint32_t)n;
	} while (n == SL_COUNTOF(msgs) && total < max_msgs);
	return total;
}

bool
sl_thread_has_msgs(struct sl_thread *thread)
{
	return sl_ring_count(thread->messages) != 0;
}

/* --- Threads -------------------------------------------------------------------- */

static void
thread_init_fields(struct sl_thread *thread, const struct sl_cpuset *cpumask)
{
	atomic_init(&thread->state, THREAD_STATE_RUNNING);
	atomic_init(&thread->senders, 0);
	atomic_init(&thread->refs, 1);
	thread->epfd = -1;
	STAILQ_INIT(&thread->msg_cache);
	TAILQ_INIT(&thread->active_pollers);
	TAILQ_INIT(&thread->timed_pollers);
	TAILQ_INIT(&thread->fd_pollers);
	TAILQ_INIT(&thread->paused_pollers);
	TAILQ_INIT(&thread->reap_pollers);
	TAILQ_INIT(&thread->io_channels);
	if (cpumask != NULL) {
		thread->cpumask = *cpumask;
	} else {
		memset(&thread->cpumask, 0xff, sizeof(thread->cpumask));
	}
}

/* Free what only the thread itself uses: its queue and its epoll fd. */
static void
thread_free_resources(struct sl_thread *thread)
{
	if (thread->epfd >= 0) {
		close(thread->epfd);
		thread->epfd = -1;
	}
	sl_ring_free(thread->messages);
	thread->messages = NULL;
}

/* Drop a reference (see refs); the last frees the struct. */
static void
thread_put(struct sl_thread *thread)
{
	if (atomic_fetch_sub(&thread->refs, 1) == 1) {
		free(thread);
	}
}

void
thread_cpl_release(struct sl_thread *thread)
{
	thread_put(thread);
}

int
thread_cpl_send(struct sl_thread *thread, sl_msg_fn fn, void *arg)
{
	int rc = sl_thread_send_msg(thread, fn, arg);

	if (sl_likely(rc == 0)) {
		return 0;
	}
	/* The caller's reference keeps the struct of a thread forced out meanwhile. */
	if (thread == tls_thread) {
		fn(arg);
		return 0;
	}
	if (sl_thread_is_exited(thread)) {
		return -EIO;
	}
	SL_ERRLOG("cannot send a completion to thread %s: %s; running it here\n", thread->name,
		  strerror(-rc));
	fn(arg);
	return 0;
}

struct sl_thread *
sl_thread_create(const char *name, const struct sl_cpuset *cpumask)
{
	struct sl_thread *thread;
	size_t size;

	if (g_msg_pool == NULL) {
		SL_ERRLOG("thread library not initialised\n");
		return NULL;
	}
	size = sizeof(*thread) + SL_ALIGN_UP(g_ctx_sz, SL_CACHE_LINE);
	thread = aligned_alloc(SL_CACHE_LINE, SL_ALIGN_UP(size, SL_CACHE_LINE));
	if (thread == NULL) {
		return NULL;
	}
	memset(thread, 0, size);
	thread_init_fields(thread, cpumask);
	thread->messages = sl_ring_create(SL_RING_MP_SC, THREAD_MSG_RING_SIZE, SL_ENV_SOCKET_ANY);
	thread->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (thread->messages == NULL || thread->epfd < 0) {
		SL_ERRLOG("thread %s: cannot allocate its message ring or epoll fd\n",
			  name ? name : "");
		thread_free_resources(thread);
		free(thread);
		return NULL;
	}
	thread->last_tick = sl_get_ticks();

	pthread_mutex_lock(&g_threads_lock);
	thread->id = g_next_thread_id++;
	if (name != NULL) {
		snprintf(thread->name, sizeof(thread->name), "%s", name);
	} else {
		snprintf(thread->name, sizeof(thread->name), "thread%" PRIu64, thread->id);
	}
	/* Ids only grow, so the list stays sorted by id (for_each order). */
	TAILQ_INSERT_TAIL(&g_threads, thread, tailq);
	if (g_app_thread == NULL) {
		g_app_thread = thread;
	}
	pthread_mutex_unlock(&g_threads_lock);
	atomic_fetch_add(&g_live_threads, 1);

	if (g_new_thread_fn != NULL && g_new_thread_fn(thread) != 0) {
		atomic_store(&thread->state, THREAD_STATE_EXITED);
		sl_thread_destroy(thread);
		return NULL;
	}
	return thread;
}

int
sl_thread_exit(struct sl_thread *thread)
{
	if (thread == NULL || thread != tls_thread) {
		return -EINVAL;
	}
	if (atomic_load(&thread->state) == THREAD_STATE_RUNNING) {
		thread->exit_start_tick = sl_get_ticks();
		atomic_store(&thread->state, THREAD_STATE_EXITING);
	}
	return 0;
}

bool
sl_thread_is_exited(struct sl_thread *thread)
{
	return atomic_load(&thread->state) == THREAD_STATE_EXITED;
}

static void
poller_list_free(struct poller_list *list)
{
	struct sl_poller *p;

	while ((p = TAILQ_FIRST(list)) != NULL) {
		TAILQ_REMOVE(list, p, tailq);
		free(p);
	}
}

/*
 * Empty the poller lists of a thread being destroyed. Unregistered pollers are freed;
 * those still held (only a forced exit leaves any) are left to their holders, who may
 * unregister them later from any thread: they never run again, and each keeps a
 * reference on the thread's struct, which sl_poller_unregister reads. Under
 * g_threads_lock, which orders this against an unregistration from another thread
 * (poller_unregister_remote). \return the number left to their holders.
 */
static uint32_t
thread_orphan_pollers_locked(struct sl_thread *thread)
{
	struct poller_list *lists[] = {&thread->active_pollers, &thread->timed_pollers,
				       &thread->fd_pollers, &thread->paused_pollers};
	struct sl_poller *p;
	uint32_t orphans = 0;
	size_t i;

	for (i = 0; i < SL_COUNTOF(lists); i++) {
		while ((p = TAILQ_FIRST(lists[i])) != NULL) {
			TAILQ_REMOVE(lists[i], p, tailq);
			if (p->state == POLLER_STATE_UNREGISTERED || p->late_unregistered) {
				free(p);
				continue;
			}
			p->orphaned = true;
			orphans++;
		}
	}
	poller_list_free(&thread->reap_pollers);
	atomic_fetch_add(&thread->refs, orphans);
	return orphans;
}

static void
thread_drop_msgs(struct sl_thread *thread)
{
	struct thread_msg *msg;
	void *msgs[THREAD_MSG_BATCH];
	size_t n, dropped = 0;

	while ((n = sl_ring_dequeue(thread->messages, msgs, SL_COUNTOF(msgs))) > 0) {
		sl_mempool_put_bulk(g_msg_pool, msgs, n);
		dropped += n;
	}
	if (dropped > 0) {
		SL_ERRLOG("thread %s: %zu messages dropped at destruction\n", thread->name,
			  dropped);
	}
	while ((msg = STAILQ_FIRST(&thread->msg_cache)) != NULL) {
		STAILQ_REMOVE_HEAD(&thread->msg_cache, link);
		sl_mempool_put(g_msg_pool, msg);
	}
}

/*
 * A thread that exited by itself holds nothing: everything here is for a forced one.
 * Its channels are released, so that the unregistration of their devices completes;
 * its pollers go to their holders; what references its struct (those pollers, the
 * completions it awaits) keeps the struct, closed to sends, until it goes.
 */
void
sl_thread_destroy(struct sl_thread *thread)
{
	uint32_t orphans;

	if (thread == NULL) {
		return;
	}
	if (!sl_thread_is_exited(thread)) {
		SL_ERRLOG("thread %s destroyed before it exited\n", thread->name);
	}
	/* Completions released below are then dropped rather than run here. */
	if (tls_thread == thread) {
		tls_thread = NULL;
	}
	pthread_mutex_lock(&g_threads_lock);
	TAILQ_REMOVE(&g_threads, thread, tailq);
	if (g_app_thread == thread) {
		g_app_thread = NULL;
	}
	orphans = thread_orphan_pollers_locked(thread);
	pthread_mutex_unlock(&g_threads_lock);
	if (orphans > 0) {
		SL_ERRLOG("thread %s: %u leaked pollers stay allocated, never to run, until "
			  "their holders unregister them\n",
			  thread->name, orphans);
	}

	io_channel_thread_release(thread);
	thread_drop_msgs(thread);
	thread_free_resources(thread);
	atomic_fetch_sub(&g_live_threads, 1);
	thread_put(thread);
}

void
thread_log_leaks(struct sl_thread *thread)
{
	struct poller_list *lists[] = {&thread->active_pollers, &thread->timed_pollers,
				       &thread->fd_pollers, &thread->paused_pollers};
	struct sl_poller *p;
	size_t i;

	for (i = 0; i < SL_COUNTOF(lists); i++) {
		TAILQ_FOREACH (p, lists[i], tailq) {
			if (p->state != POLLER_STATE_UNREGISTERED) {
				SL_ERRLOG("thread %s still holds poller %s\n", thread->name,
					  p->name);
			}
		}
	}
	io_channel_thread_log(thread);
	if (atomic_load(&thread->refs) > 1) {
		SL_ERRLOG("thread %s still awaits %u iteration or unregistration completions "
			  "(dropped when they come)\n",
			  thread->name, atomic_load(&thread->refs) - 1);
	}
	if (sl_thread_has_msgs(thread)) {
		SL_ERRLOG("thread %s: %zu messages queued run before it goes\n", thread->name,
			  sl_ring_count(thread->messages));
	}
}

/* A forced thread runs the messages it accepted (an accepted message runs: see
 * sl_thread_send_msg), iteration steps and the completions it awaits among them. Its
 * queue is closed, so this ends; its own sends fail, which the completions it sends
 * itself handle (thread_cpl_send). */
static void
thread_run_last_msgs(struct sl_thread *thread)
{
	bool remote = false;

	while (msg_queue_run(thread, 0, &remote) > 0) {
	}
}

/* Finish exiting once nothing is left: no pollers, no channels, no completions it
 * awaits, no messages. */
static void
thread_exit_check(struct sl_thread *thread, uint64_t now)
{
	bool idle = thread->poller_count == 0 && TAILQ_EMPTY(&thread->io_channels) &&
		    atomic_load(&thread->refs) == 1 && !sl_thread_has_msgs(thread);

	if (!idle) {
		if (now - thread->exit_start_tick <
		    g_thread_exit_timeout_ms * (sl_get_ticks_hz() / 1000)) {
			return;
		}
		SL_ERRLOG("thread %s did not exit within %u ms; forcing it\n", thread->name,
			  g_thread_exit_timeout_ms);
		thread_log_leaks(thread);
	}
	/* Senders that read EXITING are announced in senders: wait for their enqueues,
	 * then look again; new senders wait meanwhile (see sl_thread_send_msg). A message
	 * that came in keeps the thread (EXITING) unless it is being forced out: then the
	 * queue closes with it inside, and it runs last. */
	atomic_store(&thread->state, THREAD_STATE_EXIT_CHECK);
	while (atomic_load(&thread->senders) != 0) {
		sched_yield();
	}
	if (idle && sl_thread_has_msgs(thread)) {
		atomic_store(&thread->state, THREAD_STATE_EXITING);
		return;
	}
	atomic_store(&thread->state, THREAD_STATE_EXITED);
	if (!idle) {
		thread_run_last_msgs(thread);
	}
}

/* --- Pollers -------------------------------------------------------------------- */

static void
poller_timed_insert(struct sl_thread *thread, struct sl_poller *poller)
{
	struct sl_poller *p;

	/* Most new deadlines are the latest: search from the tail. */
	TAILQ_FOREACH_REVERSE(p, &thread->timed_pollers, poller_list, tailq)
	{
		if (p->next_run_tick <= poller->next_run_tick) {
			TAILQ_INSERT_AFTER(&thread->timed_pollers, p, poller, tailq);
			return;
		}
	}
	TAILQ_INSERT_HEAD(&thread->timed_pollers, poller, tailq);
}

static inline int
poller_run(struct sl_poller *poller)
{
	int rc;

	poller->state = POLLER_STATE_RUNNING;
	rc = poller->fn(poller->arg);
	poller->run_count++;
	if (rc > 0) {
		poller->busy_count++;
	}
	if (poller->state == POLLER_STATE_RUNNING) {
		poller->state = POLLER_STATE_WAITING;
	}
	return rc > 0 ? 1 : 0;
}

/* \return whether any poller was busy; *poll_busy whether one that was is still
 * active. A poller that paused itself after its work (the bdev channel's deferred
 * completions, say) has nothing left that only polling would notice: whatever resumes
 * it runs on this thread, awake by then, so its work counts as event work. */
static int
thread_run_active_pollers(struct sl_thread *thread, bool *poll_busy)
{
	struct sl_poller *p, *tmp;
	int busy = 0, rc;

	/* A resume from here on may land behind the loop: it sets this again. */
	thread->active_resumed = false;
	TAILQ_FOREACH_SAFE (p, &thread->active_pollers, tailq, tmp) {
		if (sl_likely(p->state == POLLER_STATE_WAITING)) {
			rc = poller_run(p);
			busy |= rc;
			if (rc && p->state == POLLER_STATE_WAITING) {
				*poll_busy = true;
			}
		}
		/* Handle what the poller, or one before it, asked for. */
		if (sl_unlikely(p->state == POLLER_STATE_UNREGISTERED)) {
			TAILQ_REMOVE(&thread->active_pollers, p, tailq);
			free(p);
		} else if (sl_unlikely(p->state == POLLER_STATE_PAUSING)) {
			TAILQ_REMOVE(&thread->active_pollers, p, tailq);
			TAILQ_INSERT_TAIL(&thread->paused_pollers, p, tailq);
			p->state = POLLER_STATE_PAUSED;
		}
	}
	return busy;
}

static int
thread_run_timed_pollers(struct sl_thread *thread, uint64_t now)
{
	struct sl_poller *p;
	int busy = 0;

	while ((p = TAILQ_FIRST(&thread->timed_pollers)) != NULL && p->next_run_tick <= now) {
		TAILQ_REMOVE(&thread->timed_pollers, p, tailq);
		busy |= poller_run(p);
		switch (p->state) {
		case POLLER_STATE_UNREGISTERED:
			TAILQ_INSERT_TAIL(&thread->reap_pollers, p, tailq);
			break;
		case POLLER_STATE_PAUSING:
			TAILQ_INSERT_TAIL(&thread->paused_pollers, p, tailq);
			p->state = POLLER_STATE_PAUSED;
			break;
		default:
			p->next_run_tick = now + p->period_ticks;
			poller_timed_insert(thread, p);
			break;
		}
	}
	return busy;
}

/* --- Direct fd pollers ------------------------------------------------------------ */

static void
direct_remove(struct sl_thread *thread, struct sl_poller *p)
{
	uint32_t i;

	for (i = 0; i < thread->direct_count; i++) {
		if (thread->direct[i] == p) {
			thread->direct[i] = thread->direct[--thread->direct_count];
			break;
		}
	}
	p->detached = false;
}

/* Take a direct fd poller out of epoll: its thread runs it on every iteration. A
 * failed EPOLL_CTL_DEL leaves it watched, which loses nothing. */
static void
poller_fd_detach(struct sl_thread *thread, struct sl_poller *p, uint64_t now)
{
	if (thread->direct_count == THREAD_DIRECT_MAX ||
	    epoll_ctl(thread->epfd, EPOLL_CTL_DEL, p->fd, NULL) != 0) {
		return;
	}
	if (thread->direct_count == 0) {
		thread->direct_since_tick = now;
	}
	p->detached = true;
	thread->direct[thread->direct_count++] = p;
}

/* Put a detached poller back into epoll, watching events. If that fails it stays
 * detached, run on every iteration, and keeps its thread from sleeping: slower, but
 * nothing is lost. \return 0 or -errno. */
static int
poller_fd_attach(struct sl_thread *thread, struct sl_poller *p, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = p};
	int err;

	if (epoll_ctl(thread->epfd, EPOLL_CTL_ADD, p->fd, &ev) != 0) {
		err = errno;
		if (!p->attach_failed) {
			SL_ERRLOG("poller %s: cannot watch fd %d again: %s; it is polled "
				  "without sleeping\n",
				  p->name, p->fd, strerror(err));
			p->attach_failed = true;
		}
		return -err;
	}
	direct_remove(thread, p);
	return 0;
}

static void
thread_attach_direct(struct sl_thread *thread)
{
	uint32_t i = thread->direct_count;

	/* Backwards: an attach moves the last entry, already seen, into slot i. */
	while (i-- > 0) {
		struct sl_poller *p = thread->direct[i];

		poller_fd_attach(thread, p, p->events);
	}
}

/* Run an fd poller that epoll reported, or that a scheduler saw ready. A hot thread
 * takes a direct one out of epoll. */
static int
poller_run_fd(struct sl_thread *thread, struct sl_poller *p, uint64_t now)
{
	int rc = poller_run(p);

	if (p->direct) {
		thread->direct_runs++;
		if (thread->hot && p->state == POLLER_STATE_WAITING) {
			poller_fd_detach(thread, p, now);
		}
	}
	return rc;
}

/* Run the detached pollers. \return how many returned BUSY. */
static int
thread_run_direct(struct sl_thread *thread)
{
	struct sl_poller *batch[THREAD_DIRECT_MAX];
	uint32_t i, n = thread->direct_count;
	int busy = 0;

	/* A callback may change the array; the pollers stay allocated until the reap. */
	memcpy(batch, thread->direct, n * sizeof(batch[0]));
	for (i = 0; i < n; i++) {
		struct sl_poller *p = batch[i];

		/* Unregistered, paused or put back by an earlier callback of this batch. */
		if (!p->detached || p->state != POLLER_STATE_WAITING) {
			continue;
		}
		thread->direct_runs++;
		busy += poller_run(p);
	}
	return busy;
}

void
sl_thread_set_hot(struct sl_thread *thread, bool hot)
{
	thread->hot = hot;
	if (!hot) {
		thread_attach_direct(thread);
	}
}

uint64_t
sl_thread_get_direct_runs(const struct sl_thread *thread)
{
	return thread->direct_runs;
}

/* \return the number of fd pollers run, or -errno; *busy is set if one returned BUSY. */
static int
thread_poll_fds(struct sl_thread *thread, int timeout_ms, uint64_t now, bool *busy)
{
	struct epoll_event evs[32];
	struct sl_thread *orig = tls_thread;
	int n, i, count = 0;

	n = epoll_wait(thread->epfd, evs, SL_COUNTOF(evs), timeout_ms);
	if (n < 0) {
		return errno == EINTR ? 0 : -errno;
	}
	tls_thread = thread;
	for (i = 0; i < n; i++) {
		struct sl_poller *p = evs[i].data.ptr;

		/* Unregistered, paused or detached by an earlier callback of this batch. */
		if (p->state != POLLER_STATE_WAITING || p->detached) {
			continue;
		}
		*busy |= poller_run_fd(thread, p, now) > 0;
		count++;
	}
	tls_thread = orig;
	return count;
}

int
sl_thread_poll_fds(struct sl_thread *thread, int timeout_ms)
{
	bool busy = false;

	return thread_poll_fds(thread, timeout_ms, sl_get_ticks(), &busy);
}

/* Quiet fd pollers cost an epoll_wait() syscall per look, several times the cost of
 * an idle iteration, so they are looked at every THREAD_FD_POLL_US only -- at once
 * while one returns BUSY (it may have left input unread), or when a scheduler saw the
 * epoll fd readable. A poller that returns IDLE says it drained its fd: epoll will
 * tell when there is more. A thread with a single fd poller (an NBD connection's)
 * needs no epoll_wait() when the scheduler saw its epoll fd readable: that can only
 * mean that fd -- one syscall fewer per wake-up. Detached pollers run every time; they
 * count as work only when they return BUSY, or a hot thread would never look idle. */
static int
thread_run_fd_pollers(struct sl_thread *thread, uint64_t now)
{
	struct sl_poller *p;
	bool busy = false;
	int n = 0;

	if (thread->direct_count > 0) {
		if (now - thread->direct_since_tick >= g_thread_direct_refresh_ticks) {
			thread_attach_direct(thread);
			thread->direct_since_tick = now;
		}
		n = thread_run_direct(thread);
	}
	if (thread->fd_count == thread->direct_count) {
		/* The last fd poller may have gone in the poll that set these: left set,
		 * they would keep the thread due forever and its reactor from sleeping. */
		thread->fd_ready = thread->fd_busy = false;
		return n > 0;
	}
	if (!thread->fd_ready && !thread->fd_busy &&
	    now - thread->last_fd_poll_tick < g_thread_fd_poll_ticks) {
		return n > 0;
	}
	p = TAILQ_FIRST(&thread->fd_pollers);
	if (thread->fd_count == 1 && thread->fd_ready && p->state == POLLER_STATE_WAITING) {
		busy = poller_run_fd(thread, p, now) > 0;
		n++;
	} else {
		n += thread_poll_fds(thread, 0, now, &busy);
	}
	thread->fd_ready = false;
	thread->fd_busy = busy;
	thread->last_fd_poll_tick = now;
	return n > 0;
}

static void
thread_reap_pollers(struct sl_thread *thread)
{
	if (sl_unlikely(!TAILQ_EMPTY(&thread->reap_pollers))) {
		poller_list_free(&thread->reap_pollers);
	}
}

int
sl_thread_poll(struct sl_thread *thread, uint32_t max_msgs, uint64_t now)
{
	struct sl_thread *orig = tls_thread;
	uint64_t end;
	bool busy, event, poll;

	tls_thread = thread;
	if (now == 0) {
		now = sl_get_ticks();
	}
	poll = event = false;
	busy = msg_queue_run(thread, max_msgs, &event) > 0;
	busy |= thread_run_active_pollers(thread, &poll) > 0;
	busy |= thread_run_fd_pollers(thread, now) > 0;
	/* An fd poller in the middle of a transfer: its next input is microseconds
	 * away, cheaper to catch spinning than through a sleep. */
	event |= thread->fd_busy;
	busy |= thread_run_timed_pollers(thread, now) > 0;
	thread_reap_pollers(thread);
	thread->event_busy = event;
	thread->poll_busy = poll;

	end = sl_get_ticks();
	if (busy) {
		thread->stats.busy_tsc += end - now;
	} else {
		thread->stats.idle_tsc += end - now;
	}
	thread->last_tick = end;
	if (sl_unlikely(atomic_load_explicit(&thread->state, memory_order_relaxed) ==
			THREAD_STATE_EXITING)) {
		thread_exit_check(thread, end);
	}
	tls_thread = orig;
	return busy;
}

uint64_t
sl_thread_next_poller_ticks(struct sl_thread *thread, uint64_t now)
{
	struct sl_poller *p;

	if (sl_thread_has_msgs(thread) || thread->fd_ready || thread->fd_busy ||
	    thread->active_resumed || thread->direct_count > 0) {
		return 0;
	}
	p = TAILQ_FIRST(&thread->timed_pollers);
	if (p == NULL) {
		return UINT64_MAX;
	}
	return p->next_run_tick <= now ? 0 : p->next_run_tick - now;
}

bool
sl_thread_has_active_pollers(struct sl_thread *thread)
{
	return thread->active_count > 0;
}

static struct sl_poller *
poller_alloc(sl_poller_fn fn, void *arg, const char *name)
{
	struct sl_poller *poller;

	if (tls_thread == NULL) {
		SL_ERRLOG("poller %s: not called on a thread\n", name ? name : "");
		errno = EINVAL;
		return NULL;
	}
	poller = calloc(1, sizeof(*poller));
	if (poller == NULL) {
		return NULL;
	}
	poller->thread = tls_thread;
	poller->fn = fn;
	poller->arg = arg;
	poller->fd = -1;
	poller->state = POLLER_STATE_WAITING;
	if (name != NULL) {
		snprintf(poller->name, sizeof(poller->name), "%s", name);
	} else {
		snprintf(poller->name, sizeof(poller->name), "%p", (void *)(uintptr_t)fn);
	}
	return poller;
}

struct sl_poller *
sl_poller_register(sl_poller_fn fn, void *arg, uint64_t period_us, const char *name)
{
	struct sl_poller *poller = poller_alloc(fn, arg, name);
	struct sl_thread *thread;

	if (poller == NULL) {
		return NULL;
	}
	thread = poller->thread;
	thread->poller_count++;
	if (period_us == 0) {
		poller->kind = POLLER_KIND_ACTIVE;
		TAILQ_INSERT_TAIL(&thread->active_pollers, poller, tailq);
		thread->active_count++;
		thread->active_resumed = true;
		return poller;
	}
	poller->kind = POLLER_KIND_TIMED;
	poller->period_ticks = SL_MAX(ticks_from_us(period_us), 1);
	poller->next_run_tick = sl_get_ticks() + poller->period_ticks;
	poller_timed_insert(thread, poller);
	return poller;
}

struct sl_poller *
sl_poller_register_fd(int fd, uint32_t events, sl_poller_fn fn, void *arg, const char *name)
{
	struct sl_poller *poller = poller_alloc(fn, arg, name);
	struct epoll_event ev = {.events = events};
	struct sl_thread *thread;
	int err;

	if (poller == NULL) {
		return NULL;
	}
	thread = poller->thread;
	poller->kind = POLLER_KIND_FD;
	poller->fd = fd;
	poller->events = events;
	ev.data.ptr = poller;
	if (epoll_ctl(thread->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		err = errno;
		SL_ERRLOG("poller %s: cannot watch fd %d: %s\n", poller->name, fd, strerror(err));
		free(poller);
		errno = err;
		return NULL;
	}
	TAILQ_INSERT_TAIL(&thread->fd_pollers, poller, tailq);
	thread->fd_count++;
	thread->poller_count++;
	return poller;
}

/*
 * Pause, resume and fd_set_events move a poller between its thread's lists (or change
 * its epoll entry) with no lock: only the owner, whose poll loop walks those lists, may
 * call them. Forwarding them as a message would not be safe: the owner may unregister
 * and free the poller before the message runs, and the caller expects the change done
 * on return. \return whether the caller is the owner; if not, say who called.
 */
static bool
poller_on_own_thread(const struct sl_poller *p, const char *func)
{
	if (sl_likely(tls_thread == p->thread)) {
		return true;
	}
	SL_ERRLOG("%s: poller %s belongs to thread %s, called on %s: refused\n", func, p->name,
		  p->thread->name, tls_thread != NULL ? tls_thread->name : "no sl_thread");
	return false;
}

int
sl_poller_fd_set_events(struct sl_poller *poller, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = poller};

	if (!poller_on_own_thread(poller, __func__) || poller->kind != POLLER_KIND_FD) {
		return -EINVAL;
	}
	poller->events = events;
	if (poller->state == POLLER_STATE_PAUSED || poller->detached) {
		return 0;
	}
	return epoll_ctl(poller->thread->epfd, EPOLL_CTL_MOD, poller->fd, &ev) == 0 ? 0 : -errno;
}

int
sl_poller_fd_set_direct(struct sl_poller *poller, bool direct)
{
	if (!poller_on_own_thread(poller, __func__) || poller->kind != POLLER_KIND_FD) {
		return -EINVAL;
	}
	poller->direct = direct;
	if (!direct && poller->detached) {
		return poller_fd_attach(poller->thread, poller, poller->events);
	}
	return 0;
}

static void
poller_fd_watch(struct sl_poller *poller, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = poller};

	/* ENOENT: a paused poller whose return to epoll from a hot thread failed. */
	if (epoll_ctl(poller->thread->epfd, EPOLL_CTL_MOD, poller->fd, &ev) != 0 &&
	    (errno != ENOENT ||
	     epoll_ctl(poller->thread->epfd, EPOLL_CTL_ADD, poller->fd, &ev) != 0)) {
		SL_ERRLOG("poller %s: epoll_ctl on fd %d: %s\n", poller->name, poller->fd,
			  strerror(errno));
	}
}

/* Unlink a poller that is not run-always from wherever it is and reap it. */
static void
poller_unregister_unlink(struct sl_thread *thread, struct sl_poller *p, bool paused)
{
	if (p->kind == POLLER_KIND_FD) {
		if (p->detached) {
			direct_remove(thread, p);
		} else {
			/* The fd may already be closed; then epoll dropped it by itself. */
			epoll_ctl(thread->epfd, EPOLL_CTL_DEL, p->fd, NULL);
		}
		if (!paused) {
			thread->fd_count--;
		}
	}
	if (paused) {
		TAILQ_REMOVE(&thread->paused_pollers, p, tailq);
	} else if (p->kind == POLLER_KIND_FD) {
		TAILQ_REMOVE(&thread->fd_pollers, p, tailq);
	} else if (p->state != POLLER_STATE_RUNNING && p->state != POLLER_STATE_PAUSING) {
		TAILQ_REMOVE(&thread->timed_pollers, p, tailq);
	} else {
		/* A running timed poller is in no list: its loop reaps it. */
		p->state = POLLER_STATE_UNREGISTERED;
		return;
	}
	p->state = POLLER_STATE_UNREGISTERED;
	TAILQ_INSERT_TAIL(&thread->reap_pollers, p, tailq);
}

static void
poller_unregister_local(struct sl_thread *thread, struct sl_poller *p)
{
	if (p->state == POLLER_STATE_UNREGISTERED) {
		return;
	}
	thread->poller_count--;
	if (p->kind == POLLER_KIND_ACTIVE && p->state != POLLER_STATE_PAUSED) {
		if (p->state != POLLER_STATE_PAUSING) {
			thread->active_count--;
		}
		/* Its loop may hold it: the loop unlinks and frees it. */
		p->state = POLLER_STATE_UNREGISTERED;
		return;
	}
	poller_unregister_unlink(thread, p, p->state == POLLER_STATE_PAUSED);
}

static void
poller_unregister_msg(void *arg)
{
	struct sl_poller *p = arg;

	poller_unregister_local(p->thread, p);
}

/*
 * Unregister a poller from another thread (or none). Its thread may be walking its
 * poller lists right now: let it unlink the poller itself. Its messages run before
 * its pollers, so the poller runs again only if that thread is in the middle of an
 * iteration. A thread that was forced out refuses the message: if it is destroyed
 * already, the poller was left to us (orphaned); if not, its destruction frees it.
 * g_threads_lock orders the two against that destruction (thread_orphan_pollers_locked).
 */
static void
poller_unregister_remote(struct sl_poller *p)
{
	struct sl_thread *thread = p->thread;
	bool orphaned;
	int rc = 0;

	pthread_mutex_lock(&g_threads_lock);
	orphaned = p->orphaned;
	if (!orphaned) {
		/* Once the message is sent, the poller is its thread's to free. */
		rc = sl_thread_send_msg(thread, poller_unregister_msg, p);
		if (rc == -EIO) {
			p->late_unregistered = true;
		}
	}
	pthread_mutex_unlock(&g_threads_lock);
	if (orphaned) {
		free(p);
		thread_put(thread);
		return;
	}
	if (rc == 0 || rc == -EIO) {
		return;
	}
	SL_ERRLOG("poller %s: cannot unregister on its thread %s: %s\n", p->name, thread->name,
		  strerror(-rc));
	poller_unregister_local(thread, p);
}

void
sl_poller_unregister(struct sl_poller **pp)
{
	struct sl_poller *p = *pp;

	if (p == NULL) {
		return;
	}
	*pp = NULL;
	/* An orphaned poller's thread, destroyed, is no one's current thread. */
	if (tls_thread != p->thread) {
		poller_unregister_remote(p);
		return;
	}
	poller_unregister_local(p->thread, p);
}

void
sl_poller_pause(struct sl_poller *p)
{
	struct sl_thread *thread = p->thread;

	if (!poller_on_own_thread(p, __func__)) {
		return;
	}
	if (p->state == POLLER_STATE_PAUSED || p->state == POLLER_STATE_PAUSING ||
	    p->state == POLLER_STATE_UNREGISTERED) {
		return;
	}
	switch (p->kind) {
	case POLLER_KIND_ACTIVE:
		/* Its loop moves it to the paused list. */
		p->state = POLLER_STATE_PAUSING;
		thread->active_count--;
		break;
	case POLLER_KIND_TIMED:
		if (p->state == POLLER_STATE_RUNNING) {
			p->state = POLLER_STATE_PAUSING;
			break;
		}
		TAILQ_REMOVE(&thread->timed_pollers, p, tailq);
		TAILQ_INSERT_TAIL(&thread->paused_pollers, p, tailq);
		p->state = POLLER_STATE_PAUSED;
		break;
	case POLLER_KIND_FD:
		/* fd_poll loops walk epoll's array, not the list: moving it is safe. */
		if (!p->detached) {
			poller_fd_watch(p, 0);
		} else if (poller_fd_attach(thread, p, 0) != 0) {
			/* Out of epoll: the resume adds it back. */
			direct_remove(thread, p);
		}
		TAILQ_REMOVE(&thread->fd_pollers, p, tailq);
		TAILQ_INSERT_TAIL(&thread->paused_pollers, p, tailq);
		thread->fd_count--;
		p->state = POLLER_STATE_PAUSED;
		break;
	}
}

void
sl_poller_resume(struct sl_poller *p)
{
	struct sl_thread *thread = p->thread;

	if (!poller_on_own_thread(p, __func__)) {
		return;
	}
	if (p->state == POLLER_STATE_PAUSING) {
		/* Still where it was: just cancel the pause. */
		p->state = POLLER_STATE_WAITING;
		if (p->kind == POLLER_KIND_ACTIVE) {
			thread->active_count++;
			thread->active_resumed = true;
		}
		return;
	}
	if (p->state != POLLER_STATE_PAUSED) {
		return;
	}
	TAILQ_REMOVE(&thread->paused_pollers, p, tailq);
	p->state = POLLER_STATE_WAITING;
	switch (p->kind) {
	case POLLER_KIND_ACTIVE:
		TAILQ_INSERT_TAIL(&thread->active_pollers, p, tailq);
		thread->active_count++;
		thread->active_resumed = true;
		break;
	case POLLER_KIND_TIMED:
		p->next_run_tick = sl_get_ticks() + p->period_ticks;
		poller_timed_insert(thread, p);
		break;
	case POLLER_KIND_FD:
		poller_fd_watch(p, p->events);
		TAILQ_INSERT_TAIL(&thread->fd_pollers, p, tailq);
		thread->fd_count++;
		break;
	}
}

int
sl_thread_get_epoll_fd(const struct sl_thread *thread)
{
	return thread->epfd;
}

/* --- Accessors ------------------------------------------------------------------ */

struct sl_thread *
sl_get_thread(void)
{
	return tls_thread;
}

void
sl_set_thread(struct sl_thread *thread)
{
	tls_thread = thread;
}

struct sl_thread *
sl_thread_get_app_thread(void)
{
	return g_app_thread;
}

const char *
sl_thread_get_name(const struct sl_thread *thread)
{
	return thread->name;
}

uint64_t
sl_thread_get_id(const struct sl_thread *thread)
{
	return thread->id;
}

struct sl_thread *
sl_thread_get_by_id(uint64_t id)
{
	struct sl_thread *thread;

	pthread_mutex_lock(&g_threads_lock);
	TAILQ_FOREACH (thread, &g_threads, tailq) {
		if (thread->id == id) {
			break;
		}
	}
	pthread_mutex_unlock(&g_threads_lock);
	return thread;
}

void *
sl_thread_get_ctx(struct sl_thread *thread)
{
	return thread->ctx;
}

struct sl_thread *
sl_thread_get_from_ctx(void *ctx)
{
	return SL_CONTAINEROF(ctx, struct sl_thread, ctx);
}

const struct sl_cpuset *
sl_thread_get_cpumask(const struct sl_thread *thread)
{
	return &thread->cpumask;
}

void
sl_thread_set_wake_fn(struct sl_thread *thread, sl_thread_wake_fn fn, void *arg)
{
	thread->wake_arg = arg;
	thread->wake_fn = fn;
}

int
sl_thread_get_stats(struct sl_thread *thread, struct sl_thread_stats *stats)
{
	*stats = thread->stats;
	return 0;
}

/* --- for_each_thread ------------------------------------------------------------ */

struct thread_for_each {
	sl_msg_fn fn;
	sl_msg_fn cpl;
	void *ctx;
	struct sl_thread *orig;
};

struct sl_thread *
thread_next_locked(struct sl_thread *prev)
{
	struct sl_thread *t = prev == NULL ? TAILQ_FIRST(&g_threads) : TAILQ_NEXT(prev, tailq);

	while (t != NULL && atomic_load(&t->state) == THREAD_STATE_EXITED) {
		t = TAILQ_NEXT(t, tailq);
	}
	return t;
}

static void
for_each_thread_cpl(void *arg)
{
	struct thread_for_each *fe = arg;

	fe->cpl(fe->ctx);
	thread_cpl_release(fe->orig);
	free(fe);
}

static void for_each_thread_step(void *arg);

/* Send the iteration to the first live thread after prev, or complete it. The lock
 * keeps the target from being destroyed before the message is queued. */
static void
for_each_thread_next(struct thread_for_each *fe, struct sl_thread *prev)
{
	struct sl_thread *t;
	int rc = -EIO;

	pthread_mutex_lock(&g_threads_lock);
	for (t = thread_next_locked(prev); t != NULL; t = thread_next_locked(t)) {
		rc = sl_thread_send_msg(t, for_each_thread_step, fe);
		if (rc == 0) {
			break;
		}
	}
	pthread_mutex_unlock(&g_threads_lock);
	if (rc != 0 && thread_cpl_send(fe->orig, for_each_thread_cpl, fe) != 0) {
		SL_ERRLOG("for_each_thread: thread %s, which started it, was forced to exit: "
			  "completion dropped\n",
			  fe->orig->name);
		thread_cpl_release(fe->orig);
		free(fe);
	}
}

static void
for_each_thread_step(void *arg)
{
	struct thread_for_each *fe = arg;

	fe->fn(fe->ctx);
	for_each_thread_next(fe, tls_thread);
}

void
sl_for_each_thread(sl_msg_fn fn, void *ctx, sl_msg_fn cpl)
{
	struct thread_for_each *fe;

	if (tls_thread == NULL) {
		SL_ERRLOG("sl_for_each_thread: not called on a thread\n");
		return;
	}
	fe = calloc(1, sizeof(*fe));
	if (fe == NULL) {
		SL_ERRLOG("sl_for_each_thread: out of memory\n");
		return;
	}
	fe->fn = fn;
	fe->cpl = cpl;
	fe->ctx = ctx;
	fe->orig = tls_thread;
	thread_cpl_hold(fe->orig);
	for_each_thread_next(fe, NULL);
}
