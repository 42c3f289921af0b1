/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * Unit tests of env/thread.c: messages, pollers, exit, for_each_thread. Threads are
 * polled by hand (no reactors). Timing is only ever checked loosely: the machine
 * running the tests may be loaded.
 */

#include <CUnit/Basic.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "sl_ut.h"
#include "env/thread_internal.h"
#include "sluice/log.h"
#include "sluice/thread.h"

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Poll thread until *flag is non-zero or timeout_ms passes. \return *flag. */
static int
poll_until(struct sl_thread *thread, const atomic_int *flag, uint64_t timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;

	while (atomic_load(flag) == 0 && now_ms() < end) {
		sl_thread_poll(thread, 0, 0);
	}
	return atomic_load(flag);
}

static void
poll_for_ms(struct sl_thread *thread, uint64_t ms)
{
	uint64_t end = now_ms() + ms;

	while (now_ms() < end) {
		sl_thread_poll(thread, 0, 0);
	}
}

static struct sl_thread *
thread_new(const char *name)
{
	struct sl_thread *t = sl_thread_create(name, NULL);

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	return t;
}

/* --- Messages ------------------------------------------------------------------- */

#define SEQ_LEN 1000
static int g_seq[SEQ_LEN];
static int g_seq_n;

static void
msg_record(void *arg)
{
	g_seq[g_seq_n++] = (int)(intptr_t)arg;
}

static void
test_send_msg_order(void)
{
	struct sl_thread *t = thread_new("order");
	int i;

	g_seq_n = 0;
	sl_set_thread(t);
	CU_ASSERT(sl_thread_has_msgs(t) == false);
	for (i = 0; i < SEQ_LEN; i++) {
		CU_ASSERT(sl_thread_send_msg(t, msg_record, (void *)(intptr_t)i) == 0);
	}
	CU_ASSERT(sl_thread_has_msgs(t));
	CU_ASSERT(sl_thread_next_poller_ticks(t, sl_get_ticks()) == 0);
	/* Batches: one poll runs at most max_msgs. */
	CU_ASSERT(sl_thread_poll(t, 10, 0) > 0);
	CU_ASSERT(g_seq_n == 10);
	while (g_seq_n < SEQ_LEN) {
		sl_thread_poll(t, 0, 0);
	}
	for (i = 0; i < SEQ_LEN; i++) {
		CU_ASSERT(g_seq[i] == i);
	}
	CU_ASSERT(sl_thread_poll(t, 0, 0) == 0);
	CU_ASSERT(sl_ut_thread_end(t) == 0);
}

#define PRODUCER_MSGS 20000
struct producer {
	struct sl_thread *target;
	int id;
	int last[2];
	atomic_int *done;
};
static atomic_int g_msgs_run;
static bool g_order_ok = true;
static int g_last_seen[2] = {-1, -1};

static void
msg_from_producer(void *arg)
{
	intptr_t v = (intptr_t)arg;
	int id = (int)(v & 1), seq = (int)(v >> 1);

	if (seq != g_last_seen[id] + 1) {
		g_order_ok = false;
	}
	g_last_seen[id] = seq;
	atomic_fetch_add(&g_msgs_run, 1);
}

static void *
producer_main(void *arg)
{
	struct producer *p = arg;
	intptr_t i;

	for (i = 0; i < PRODUCER_MSGS; i++) {
		while (sl_thread_send_msg(p->target, msg_from_producer,
					  (void *)((i << 1) | p->id)) == -ENOMEM) {
			sched_yield();
		}
	}
	return NULL;
}

static void
test_send_msg_two_producers(void)
{
	struct sl_thread *t = thread_new("mpsc");
	struct producer p[2] = {{.target = t, .id = 0}, {.target = t, .id = 1}};
	pthread_t tid[2];
	uint64_t end = now_ms() + 30000;
	int i;

	atomic_store(&g_msgs_run, 0);
	for (i = 0; i < 2; i++) {
		CU_ASSERT_FATAL(pthread_create(&tid[i], NULL, producer_main, &p[i]) == 0);
	}
	while (atomic_load(&g_msgs_run) < 2 * PRODUCER_MSGS && now_ms() < end) {
		sl_thread_poll(t, 0, 0);
	}
	for (i = 0; i < 2; i++) {
		pthread_join(tid[i], NULL);
	}
	CU_ASSERT(atomic_load(&g_msgs_run) == 2 * PRODUCER_MSGS);
	CU_ASSERT(g_order_ok);
	CU_ASSERT(sl_ut_thread_end(t) == 0);
}

static void
msg_count(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
}

static void
test_send_msg_off_thread(void)
{
	struct sl_thread *t = thread_new("offthread");
	atomic_int n = 0;

	sl_set_thread(NULL);
	CU_ASSERT(sl_get_thread() == NULL);
	CU_ASSERT(sl_thread_send_msg(t, msg_count, &n) == 0);
	CU_ASSERT(poll_until(t, &n, 1000) == 1);
	CU_ASSERT(sl_ut_thread_end(t) == 0);
}

/* A message sent from within a message runs on the next batch, not recursively. */
static atomic_int g_chain;
static void
msg_chain(void *arg)
{
	if (atomic_fetch_add(&g_chain, 1) < 99) {
		sl_thread_send_msg(sl_get_thread(), msg_chain, arg);
	}
}

static void
test_send_msg_chain(void)
{
	struct sl_thread *t = thread_new("chain");
	uint64_t end = now_ms() + 1000;

	sl_set_thread(t);
	atomic_store(&g_chain, 0);
	sl_thread_send_msg(t, msg_chain, NULL);
	sl_thread_poll(t, 0, 0);
	CU_ASSERT(atomic_load(&g_chain) <= 32);
	while (atomic_load(&g_chain) < 100 && now_ms() < end) {
		sl_thread_poll(t, 0, 0);
	}
	CU_ASSERT(atomic_load(&g_chain) == 100);
	CU_ASSERT(sl_ut_thread_end(t) == 0);
}

/* --- Pollers -------------------------------------------------------------------- */

static int
poller_count(void *arg)
{
	(*(int *)arg)++;
	return SL_POLLER_BUSY;
}

static void
test_timed_pollers(void)
{
	struct sl_thread *t = thread_new("timed");
	struct sl_poller *fast, *slow;
	int nfast = 0, nslow = 0, i;
	uint64_t now;

	sl_set_thread(t);
	fast = sl_poller_register(poller_count, &nfast, 2000, "fast");
	slow = sl_poller_register(poller_count, &nslow, 10000, "slow");
	CU_ASSERT_PTR_NOT_NULL_FATAL(fast);
	CU_ASSERT_PTR_NOT_NULL_FATAL(slow);
	CU_ASSERT(sl_thread_has_active_pollers(t) == false);
	/* Not due yet: the next deadline is in the future, and bounded by the period. */
	CU_ASSERT(sl_thread_next_poller_ticks(t, sl_get_ticks()) > 0);
	CU_ASSERT(sl_thread_next_poller_ticks(t, sl_get_ticks()) <= sl_get_ticks_hz() / 500);
	/* Drive the clock by hand, 100 ms in 1 ms steps, so the counts do not depend on
	 * how the machine schedules this test: 2 ms and 10 ms periods give 50 and 10. */
	now = sl_get_ticks();
	for (i = 1; i <= 100; i++) {
		sl_thread_poll(t, 0, now + i * (sl_get_ticks_hz() / 1000));
	}
	CU_ASSERT(nfast >= 49 && nfast <= 51);
	CU_ASSERT(nslow >= 9 && nslow <= 11);
	sl_poller_unregister(&fast);
	CU_ASSERT(fast == NULL);
	sl_poller_unregister(&slow);
	sl_poller_unregister(&slow); /* NULL is fine */
	CU_ASSERT(sl_ut_thread_end(t) == 0);
}

/* Periods of hours (and absurd ones) must not overflow into short ones. */
static void
test_timed_poller_long_period(void)
{
	struct sl_thread *t = thread_new("long");
	struct sl_poller *hours, *forever;
	uint64_t hz = sl_get_ticks_hz(), now = sl_get_ticks();
	int nhours = 0, nforever = 0;

	sl_set_thread(t);
	hours = sl_poller_register(poller_count, &nhours, 100ull * 3600 * 1000000, "100h");
	forever = sl_poller_register(poller_count, &nforever, UINT64_MAX, "forever");
	CU_ASSERT_PTR_NOT_NULL_FATAL(hours);
	CU_ASSERT_PTR_NOT_NULL_FATAL(forever);
	CU_ASSERT(hours->period_ticks / hz >= 100ull * 3600 - 1);
	CU_ASSERT(hours->period_ticks / hz <= 100ull * 3600 + 1);
	CU_ASSERT(sl_thread_next_poller_ticks(t, now) >= 99ull * 3600 * hz);
	/* An hour later, neither has run. */
	sl_thread_poll(t, 0, now + 3600 * hz);
	CU_ASSERT(nhours == 0);
	CU_ASSERT(nforever == 0);
	/* 100 hours later, only the first. */
	sl_thread_poll(t, 0, now + 101ull * 3600 * hz);
	CU_ASSERT(nhours == 1);
	CU_ASSERT(nforever == 0);
	sl_poller_unregister(&hours);
	sl_poller_unregister(&forever);
	CU_ASSERT(sl_ut_thread_end(t) == 0);
}

struct self_unreg {
	struct sl_poller *poller;
	struct sl_poller *victim;
	int runs;
	int stop_after;
};

static int
poller_self_unreg(void *arg)
{
	struct self_unreg *s = arg;

	if (++s->runs == s->stop_after) {
		sl_poller_unregister(&s->poller);
		/* Also unregister another one, maybe the next in the list. */
		sl_poller_unregister(&s->victim);
	}
	return SL_POLLER_BUSY;
}

static void
test_poller_unregister_in_callback(void)
{
	struct sl_thread *t = thread_new("unreg");
	struct self_unreg a = {.stop_after = 3}, b = {.stop_after = 5};
	int nvictim = 0, ntimed_victim = 0;
	struct sl_poller *timed_victim;
	int i;

	sl_set_thread(t);
	a.poller = sl_poller_register(poller_self_unreg, &a, 0, "a");
	a.victim = sl_poller_register(poller_count, &nvictim, 0, "victim");
	b.poller = sl_poller_register(poller_self_unreg, &b, 100, "b-timed");
	timed_victim = sl_poller_register(poller_count, &ntimed_victim, 100, "timed-victim");
	b.victim = timed_victim;
	CU_ASSERT(sl_thread_has_active_pollers(t));
	for (i = 0; i < 3; i++) {
		sl_thread_poll(t, 0, 0);
	}
	CU_ASSERT(a.runs == 3);
	CU_ASSERT(a.poller == NULL);
	CU_ASSERT(nvictim == 2); /* it ran after a on runs 1 and 2 only */
	CU_ASSERT(sl_thread_has_active_pollers(t) == false);
	poll_for_ms(t, 20);
	CU_ASSERT(a.runs == 3);
	CU_ASSERT(b.runs == 5);
	CU_ASSERT(b.poller == NULL);
	CU_ASSERT(ntimed_victim <= 5);
	CU_ASSERT(t->poller_count == 0);
	CU_ASSERT(sl_thread_next_poller_ticks(t, sl_get_ticks()) == UINT64_MAX);
	CU_ASSERT(sl_ut_thread_end(t) == 0);
}

struct pauser {
	struct sl_poller *poller;
	int runs;
};

static int
poller_pause_self(void *arg)
{
	struct pauser *p = arg;

	p->runs++;
	sl_poller_pause(p->poller);
	return SL_POLLER_IDLE;
}

static int
poller_pause_self_busy(void *arg)
{
	struct pauser *p = arg;

	p->runs++;
	sl_poller_pause(p->poller);
	return SL_POLLER_BUSY;
}

/* What keeps an adaptive reactor spinning: a run-always poller busy and still active
 * (poll_busy), a message from elsewhere (event_busy); not a poller that paused itself
 * after its work (deferred completions), nor a message the thread sent itself. */
static void
test_poller_busy_kinds(void)
{
	struct sl_thread *t = thread_new("kinds");
	struct pauser self = {0};
	struct sl_poller *active;
	int nactive = 0;

	sl_set_thread(t);
	self.poller = sl_poller_register(poller_pause_self_busy, &self, 0, "self");
	CU_ASSERT(sl_thread_poll(t, 0, 0) > 0);
	CU_ASSERT(self.runs == 1);
	CU_ASSERT(!t->poll_busy && !t->event_busy);
	CU_ASSERT(sl_thread_poll(t, 0, 0) == 0);
	g_seq_n = 0;
	CU_ASSERT(sl_thread_send_msg(t, msg_record, (void *)1) == 0);
	CU_ASSERT(sl_thread_poll(t, 0, 0) > 0);
	CU_ASSERT(g_seq_n == 1);
	CU_ASSERT(!t->poll_busy && !t->event_busy);
	sl_set_thread(NULL);
	CU_ASSERT(sl_thread_send_msg(t, msg_record, (void *)2) == 0);
	sl_set_thread(t);
	CU_ASSERT(sl_thread_poll(t, 0, 0) > 0);
	CU_ASSERT(g_seq_n == 2);
	CU_ASSERT(!t->poll_busy && t->event_busy);
	/* Resumed (by fd work that queued completions, say): it runs before any sleep. */
	sl_poller_resume(self.poller);
	CU_ASSERT(sl_thread_next_poller_ticks(t, sl_get_ticks()) == 0);
	CU_ASSERT(sl_thread_poll(t, 0, 0) > 0);
	CU_ASSERT(self.runs == 2);
	CU_ASSERT(sl_thread_next_poller_ticks(t, sl_get_ticks()) == UINT64_MAX);
	active = sl_poller_register(poller_count, &nactive, 0, "active");
	CU_ASSERT(sl_thread_poll(t, 0, 0) > 0);
	CU_ASSERT(t->poll_busy && !t->event_busy);
	sl_poller_unregister(&active);
	sl_poller_unregister(&self.poller);
	CU_ASSERT(sl_ut_thread_end(t) == 0);
}

static void
test_poller_pause_resume(void)
{
	struct sl_thread *t = thread_new("pause");
	struct sl_poller *active, *timed;
	struct pauser self = {0};
	int nactive = 0, ntimed = 0;

	sl_set_thread(t);
	active = sl_poller_register(poller_count, &nactive, 0, "active");
	timed = sl_poller_register(poller_count, &ntimed, 100, "timed");
	self.poller = sl_poller_register(poller_pause_self, &self, 0, "self");
	sl_thread_poll(t, 0, 0);
	CU_ASSERT(nactive == 1);
	CU_ASSERT(self.runs == 1);
	sl_poller_pause(active);
	sl_poller_pause(active); /* twice is fine */
	sl_poller_pause(timed);
	CU_ASSERT(sl_thread_has_active_pollers(t) == false);
	poll_for_ms(t, 5);
	CU_ASSERT(nactive == 1);
	CU_ASSERT(ntimed == 0);
	CU_ASSERT(self.runs == 1);
	sl_poller_resume(active);
	sl_poller_resume(timed);
	sl_poller_resume(self.poller);
	CU_ASSERT(sl_thread_has_active_pollers(t));
	poll_for_ms(t, 5);
	/* A loaded machine may not poll at all in 5 ms: one poll past the deadline. */
	sl_thread_poll(t, 0, sl_get_ticks() + sl_get_ticks_hz() / 100);
	CU_ASSERT(nactive > 1);
	CU_ASSERT(ntimed > 0);
	CU_ASSERT(self.runs == 2);
	/* Pause then resume before the loop moved it: it keeps running. */
	sl_poller_pause(active);
	sl_poller_resume(active);
	nactive = 0;
	sl_thread_poll(t, 0, 0);
	CU_ASSERT(nactive == 1);
	/* Unregistering a paused poller. */
	sl_poller_pause(active);
	sl_poller_unregister(&active);
	sl_poller_unregister(&timed);
	sl_poller_unregister(&self.poller);
	CU_ASSERT(t->poller_count == 0);
	CU_ASSERT(sl_ut_thread_end(t) == 0);
}

/*
 * Unregistering from another OS thread (a completion running elsewhere, say) must not
 * touch the owner's poller lists, which its poll loop walks meanwhile: the owner does
 * it, before it runs any poller again.
 */
static void
test_poller_unregister_off_thread(void)
{
	struct sl_thread *t = thread_new("owner"), *other = thread_new("other");
	struct sl_poller *active, *timed;
	int nactive = 0, ntimed = 0;

	sl_set_thread(t);
	active = sl_poller_register(poller_count, &nactive, 0, "active");
	timed = sl_poller_register(poller_count, &ntimed, 1, "timed");
	CU_ASSERT_PTR_NOT_NULL_FATAL(active);
	CU_ASSERT_PTR_NOT_NULL_FATAL(timed);
	sl_set_thread(other);
	sl_poller_unregister(&active);
	sl_set_thread(NULL);
	sl_poller_unregister(&timed);
	CU_ASSERT(active == NULL && timed == NULL);
	/* Nothing of t's changed under it; t does it on its next poll. */
	CU_ASSERT(t->poller_count == 2);
	CU_ASSERT(t->active_count == 1);
	CU_ASSERT(!TAILQ_EMPTY(&t->timed_pollers));
	sl_thread_poll(t, 0, sl_get_ticks() + sl_get_ticks_hz());
	CU_ASSERT(nactive == 0);
	CU_ASSERT(ntimed == 0);
	CU_ASSERT(t->poller_count == 0);
	CU_ASSERT(t->active_count == 0);
	CU_ASSERT(TAILQ_EMPTY(&t->timed_pollers));
	CU_ASSERT(sl_ut_thread_end(other) == 0);
	CU_ASSERT(sl_ut_thread_end(t) == 0);
}

struct fd_ctx {
	int fd;
	int runs;
	struct sl_poller *poller;
	bool unregister;
};

static int
poller_fd_read(void *arg)
{
	struct fd_ctx *c = arg;
	uint64_t v;

	c->runs++;
	if (read(c->fd, &v, sizeof(v)) != sizeof(v)) {
		return SL_POLLER_IDLE;
	}
	if (c->unregister) {
		sl_poller_unregister(&c->poller);
	}
	return SL_POLLER_BUSY;
}

static void
fd_kick(int fd)
{
	uint64_t one = 1;

	CU_ASSERT(write(fd, &one, sizeof(one)) == sizeof(one));
}

static void
test_fd_poller(void)
{
	struct sl_thread *t = thread_new("fd");
	struct fd_ctx c = {.fd = eventfd(0, EFD_NONBLOCK)};
	uint64_t end;

	sl_set_thread(t);
	CU_ASSERT(sl_thread_get_epoll_fd(t) >= 0);
	c.poller = sl_poller_register_fd(c.fd, EPOLLIN, poller_fd_read, &c, "efd");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c.poller);
	poll_for_ms(t, 2);
	CU_ASSERT(c.runs == 0);
	fd_kick(c.fd);
	end = now_ms() + 1000;
	while (c.runs == 0 && now_ms() < end) {
		sl_thread_poll(t, 0, 0);
	}
	CU_ASSERT(c.runs == 1);
	/* Paused: no run however long we poll. */
	sl_poller_pause(c.poller);
	fd_kick(c.fd);
	poll_for_ms(t, 5);
	CU_ASSERT(c.runs == 1);
	sl_poller_resume(c.poller);
	end = now_ms() + 1000;
	while (c.runs == 1 && now_ms() < end) {
		sl_thread_poll(t, 0, 0);
	}
	CU_ASSERT(c.runs == 2);
	/* A scheduler saw the epoll fd readable: the sole fd poller runs without an
	 * epoll_wait() (the fd is quiet: it reads nothing, and asks for no re-poll). */
	t->fd_ready = true;
	sl_thread_poll(t, 0, 0);
	CU_ASSERT(c.runs == 3);
	CU_ASSERT(!t->fd_ready && !t->fd_busy);
	/* Change events: EPOLLOUT on an eventfd is always ready. */
	CU_ASSERT(sl_poller_fd_set_events(c.poller, EPOLLIN | EPOLLOUT) == 0);
	CU_ASSERT(sl_thread_poll_fds(t, 0) == 1);
	CU_ASSERT(sl_poller_fd_set_events(c.poller, EPOLLIN) == 0);
	/* Unregister inside its callback. */
	c.unregister = true;
	fd_kick(c.fd);
	end = now_ms() + 1000;
	while (c.poller != NULL && now_ms() < end) {
		sl_thread_poll(t, 0, 0);
	}
	CU_ASSERT(c.poller == NULL);
	fd_kick(c.fd);
	c.runs = 0;
	poll_for_ms(t, 2);
	CU_ASSERT(c.runs == 0);
	CU_ASSERT(t->poller_count == 0);
	/* Its last busy run must not leave the thread due forever (a reactor that never
	 * sleeps again after a connection closed). */
	CU_ASSERT(sl_thread_next_poller_ticks(t, sl_get_ticks()) == UINT64_MAX);
	CU_ASSERT(sl_poller_register_fd(-1, EPOLLIN, poller_fd_read, &c, "bad") == NULL);
	close(c.fd);
	CU_ASSERT(sl_ut_thread_end(t) == 0);
}

/* Is fd in the thread's epoll set? /proc lists an epoll fd's entries, "tfd: N ...". */
static bool
in_epoll(struct sl_thread *t, int fd)
{
	char path[64], line[256];
	bool found = false;
	FILE *f;
	int tfd;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", t->epfd);
	f = fopen(path, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		found = sscanf(line, "tfd: %d", &tfd) == 1 && tfd == fd;
	}
	fclose(f);
	return found;
}

/* Poll until the thread has n detached pollers (bounded). \return whether it has. */
static bool
poll_until_detached(struct sl_thread *t, uint32_t n)
{
	uint64_t end = now_ms() + 1000;

	while (t->direct_count != n && now_ms() < end) {
		sl_thread_poll(t, 0, 0);
	}
	return t->direct_count == n;
}

/* Direct fd pollers leave epoll while their thread is hot, and come back when it cools,
 * pauses them, or after a millisecond; they run on every iteration meanwhile. The
 * iterations that must not reach that millisecond run at the tick of the detach. */
static void
test_fd_poller_direct(void)
{
	struct sl_thread *t = thread_new("direct");
	struct fd_ctx c = {.fd = eventfd(0, EFD_NONBLOCK)};
	struct fd_ctx plain = {.fd = eventfd(0, EFD_NONBLOCK)};
	struct sl_poller *timed;
	uint64_t v;
	int n = 0;

	sl_set_thread(t);
	c.poller = sl_poller_register_fd(c.fd, EPOLLIN, poller_fd_read, &c, "direct");
	plain.poller = sl_poller_register_fd(plain.fd, EPOLLIN, poller_fd_read, &plain, "plain");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c.poller);
	CU_ASSERT_PTR_NOT_NULL_FATAL(plain.poller);
	timed = sl_poller_register(poller_count, &n, 1000000, "timed");
	CU_ASSERT(sl_poller_fd_set_direct(timed, true) == -EINVAL);
	CU_ASSERT(sl_poller_fd_set_direct(c.poller, true) == 0);
	/* Cold: a direct poller is an fd poller like any other. */
	fd_kick(c.fd);
	poll_for_ms(t, 2);
	CU_ASSERT(c.runs == 1);
	CU_ASSERT(t->direct_count == 0 && in_epoll(t, c.fd));
	CU_ASSERT(sl_thread_get_direct_runs(t) == 1);

	/* Hot: it leaves epoll at its next run, the plain one stays. */
	sl_thread_set_hot(t, true);
	fd_kick(plain.fd);
	poll_for_ms(t, 2);
	CU_ASSERT(plain.runs == 1 && in_epoll(t, plain.fd));
	CU_ASSERT(t->direct_count == 0);
	fd_kick(c.fd);
	CU_ASSERT_FATAL(poll_until_detached(t, 1));
	CU_ASSERT(c.poller->detached && !in_epoll(t, c.fd));
	CU_ASSERT(sl_thread_next_poller_ticks(t, sl_get_ticks()) == 0);
	/* Out of epoll it runs on every iteration, and finds what comes. */
	c.runs = 0;
	sl_thread_poll(t, 0, t->direct_since_tick);
	sl_thread_poll(t, 0, t->direct_since_tick);
	CU_ASSERT(c.runs == 2);
	fd_kick(c.fd);
	sl_thread_poll(t, 0, t->direct_since_tick);
	CU_ASSERT(c.runs == 3);
	CU_ASSERT(read(c.fd, &v, sizeof(v)) < 0 && errno == EAGAIN);
	/* Its events change with no epoll entry to change. */
	CU_ASSERT(sl_poller_fd_set_events(c.poller, EPOLLIN | EPOLLOUT) == 0);
	CU_ASSERT(c.poller->events == (EPOLLIN | EPOLLOUT) && !in_epoll(t, c.fd));
	CU_ASSERT(sl_poller_fd_set_events(c.poller, EPOLLIN) == 0);

	/* Paused, it goes back into epoll (watching nothing) and does not run. */
	sl_poller_pause(c.poller);
	CU_ASSERT(t->direct_count == 0 && !c.poller->detached && in_epoll(t, c.fd));
	c.runs = 0;
	fd_kick(c.fd);
	poll_for_ms(t, 2);
	CU_ASSERT(c.runs == 0);
	sl_poller_resume(c.poller);
	CU_ASSERT(poll_until_detached(t, 1));
	CU_ASSERT(c.runs >= 1);

	/* A millisecond after the detach it goes back, quiet, and stays. */
	sl_thread_poll(t, 0, t->direct_since_tick + sl_get_ticks_hz() / 500);
	CU_ASSERT(t->direct_count == 0 && in_epoll(t, c.fd));
	c.runs = 0;
	poll_for_ms(t, 2);
	CU_ASSERT(c.runs == 0);
	fd_kick(c.fd);
	CU_ASSERT(poll_until_detached(t, 1));

	/* Cooling puts it back; events reach epoll again. */
	sl_thread_set_hot(t, false);
	CU_ASSERT(t->direct_count == 0 && in_epoll(t, c.fd));
	poll_for_ms(t, 2); /* its last run read a kick: BUSY asks for one more look */
	CU_ASSERT(sl_thread_next_poller_ticks(t, sl_get_ticks()) != 0);
	fd_kick(c.fd);
	CU_ASSERT(sl_thread_poll_fds(t, 0) == 1);

	/* Not direct any more: back into epoll at once, and never out again. */
	sl_thread_set_hot(t, true);
	fd_kick(c.fd);
	CU_ASSERT(poll_until_detached(t, 1));
	CU_ASSERT(sl_poller_fd_set_direct(c.poller, false) == 0);
	CU_ASSERT(t->direct_count == 0 && in_epoll(t, c.fd));
	fd_kick(c.fd);
	poll_for_ms(t, 2);
	CU_ASSERT(t->direct_count == 0);

	/* Unregistered while out of epoll: gone from the direct array too. */
	CU_ASSERT(sl_poller_fd_set_direct(c.poller, true) == 0);
	fd_kick(c.fd);
	CU_ASSERT(poll_until_detached(t, 1));
	sl_poller_unregister(&c.poller);
	CU_ASSERT(t->direct_count == 0);
	c.runs = 0;
	fd_kick(c.fd);
	poll_for_ms(t, 2);
	CU_ASSERT(c.runs == 0);
	sl_poller_unregister(&plain.poller);
	sl_poller_unregister(&timed);
	CU_ASSERT(sl_thread_next_poller_ticks(t, sl_get_ticks()) == UINT64_MAX);
	close(c.fd);
	close(plain.fd);
	CU_ASSERT(sl_ut_thread_end(t) == 0);
}

/* Two detached pollers; the first to run unregisters the other, which must not run
 * in the same batch (under ASan, a run of it after the reap would be caught too). */
struct direct_one {
	int fd;
	int *runs;
	bool unregister;
	struct sl_poller *poller;
	struct sl_poller **other;
};

static int
direct_unregister_other(void *arg)
{
	struct direct_one *d = arg;
	uint64_t v;

	(*d->runs)++;
	if (read(d->fd, &v, sizeof(v)) == sizeof(v) && d->unregister) {
		sl_poller_unregister(d->other);
	}
	return SL_POLLER_IDLE;
}

static void
test_fd_poller_direct_unregister_in_batch(void)
{
	struct sl_thread *t = thread_new("direct2");
	struct direct_one a = {.fd = eventfd(0, EFD_NONBLOCK)},
			  b = {.fd = eventfd(0, EFD_NONBLOCK)};
	int runs = 0;

	sl_set_thread(t);
	sl_thread_set_hot(t, true);
	a.runs = b.runs = &runs;
	a.other = &b.poller;
	b.other = &a.poller;
	a.poller = sl_poller_register_fd(a.fd, EPOLLIN, direct_unregister_other, &a, "a");
	b.poller = sl_poller_register_fd(b.fd, EPOLLIN, direct_unregister_other, &b, "b");
	CU_ASSERT_PTR_NOT_NULL_FATAL(a.poller);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b.poller);
	CU_ASSERT(sl_poller_fd_set_direct(a.poller, true) == 0);
	CU_ASSERT(sl_poller_fd_set_direct(b.poller, true) == 0);
	fd_kick(a.fd);
	fd_kick(b.fd);
	CU_ASSERT_FATAL(poll_until_detached(t, 2));
	/* Both have input; whichever runs first unregisters the other. */
	a.unregister = b.unregister = true;
	runs = 0;
	fd_kick(a.fd);
	fd_kick(b.fd);
	sl_thread_poll(t, 0, t->direct_since_tick);
	CU_ASSERT(runs == 1);
	CU_ASSERT(t->direct_count == 1);
	CU_ASSERT((a.poller == NULL) != (b.poller == NULL));
	sl_poller_unregister(&a.poller);
	sl_poller_unregister(&b.poller);
	CU_ASSERT(t->direct_count == 0);
	close(a.fd);
	close(b.fd);
	CU_ASSERT(sl_ut_thread_end(t) == 0);
}

/* The pollers of test_poller_calls_off_thread, and the last error logged. */
struct off_thread {
	struct sl_poller *active, *timed, *fd;
	int set_events_rc;
	int nlines;
	char line[512];
};

static void
off_thread_log(enum sl_log_level level, const char *line, void *ctx)
{
	struct off_thread *o = ctx;

	o->nlines++;
	snprintf(o->line, sizeof(o->line), "%s", line);
}

static void
off_thread_calls(struct off_thread *o)
{
	sl_poller_pause(o->active);
	sl_poller_pause(o->fd);
	sl_poller_resume(o->timed);
	o->set_events_rc = sl_poller_fd_set_events(o->fd, EPOLLIN | EPOLLOUT);
}

static void *
off_thread_main(void *arg)
{
	off_thread_calls(arg);
	return NULL;
}

/*
 * Pause, resume and fd_set_events change the owner's poller lists and epoll set with no
 * lock: from another sl_thread, or from a plain pthread, they are refused and logged,
 * and nothing of the owner's changes.
 */
static void
test_poller_calls_off_thread(void)
{
	struct sl_thread *t = thread_new("owner"), *other = thread_new("other");
	struct off_thread o = {0};
	int efd = eventfd(0, EFD_NONBLOCK), n = 0;
	pthread_t tid;

	sl_set_thread(t);
	o.active = sl_poller_register(poller_count, &n, 0, "active");
	o.timed = sl_poller_register(poller_count, &n, 1000, "timed");
	o.fd = sl_poller_register_fd(efd, EPOLLIN, poller_count, &n, "efd");
	CU_ASSERT_FATAL(o.active != NULL && o.timed != NULL && o.fd != NULL);
	sl_poller_pause(o.timed);
	CU_ASSERT(o.timed->state == POLLER_STATE_PAUSED);

	sl_log_set_output(off_thread_log, &o);
	sl_set_thread(other);
	off_thread_calls(&o);
	CU_ASSERT(o.set_events_rc == -EINVAL);
	CU_ASSERT(o.nlines == 4);
	CU_ASSERT(strstr(o.line, "sl_poller_fd_set_events: poller efd belongs to thread owner, "
				 "called on other") != NULL);
	sl_set_thread(NULL);
	o.set_events_rc = 0;
	CU_ASSERT_FATAL(pthread_create(&tid, NULL, off_thread_main, &o) == 0);
	pthread_join(tid, NULL);
	CU_ASSERT(o.set_events_rc == -EINVAL);
	CU_ASSERT(o.nlines == 8);
	CU_ASSERT(strstr(o.line, "poller efd belongs to thread owner, called on no sl_thread") !=
		  NULL);
	sl_log_set_output(NULL, NULL);

	/* Unchanged: states, counts, lists, events. */
	CU_ASSERT(o.active->state == POLLER_STATE_WAITING);
	CU_ASSERT(o.fd->state == POLLER_STATE_WAITING);
	CU_ASSERT(o.timed->state == POLLER_STATE_PAUSED);
	CU_ASSERT(o.fd->events == EPOLLIN);
	CU_ASSERT(t->active_count == 1 && t->fd_count == 1 && t->poller_count == 3);
	CU_ASSERT(TAILQ_FIRST(&t->active_pollers) == o.active);
	CU_ASSERT(TAILQ_FIRST(&t->fd_pollers) == o.fd);
	CU_ASSERT(TAILQ_FIRST(&t->paused_pollers) == o.timed);
	CU_ASSERT(TAILQ_EMPTY(&t->timed_pollers));
	/* EPOLLOUT was not added: the quiet eventfd is not ready. */
	CU_ASSERT(sl_thread_poll_fds(t, 0) == 0);

	/* The owner may. */
	sl_set_thread(t);
	CU_ASSERT(sl_poller_fd_set_events(o.fd, EPOLLIN | EPOLLOUT) == 0);
	CU_ASSERT(sl_thread_poll_fds(t, 0) == 1);
	sl_poller_pause(o.active);
	sl_poller_resume(o.timed);
	CU_ASSERT(t->active_count == 0);
	CU_ASSERT(o.timed->state == POLLER_STATE_WAITING);
	sl_poller_unregister(&o.active);
	sl_poller_unregister(&o.timed);
	sl_poller_unregister(&o.fd);
	close(efd);
	CU_ASSERT(sl_ut_thread_end(other) == 0);
	CU_ASSERT(sl_ut_thread_end(t) == 0);
}

static void
test_poller_off_thread(void)
{
	int n = 0;

	sl_set_thread(NULL);
	CU_ASSERT(sl_poller_register(poller_count, &n, 0, "nothread") == NULL);
}

/* --- Exit ----------------------------------------------------------------------- */

static void
test_thread_exit_drains(void)
{
	struct sl_thread *t = thread_new("exit");
	struct sl_poller *p;
	atomic_int n = 0;
	int runs = 0, i;

	sl_set_thread(t);
	CU_ASSERT(sl_thread_exit(NULL) == -EINVAL);
	p = sl_poller_register(poller_count, &runs, 0, "held");
	for (i = 0; i < 100; i++) {
		sl_thread_send_msg(t, msg_count, &n);
	}
	CU_ASSERT(sl_thread_exit(t) == 0);
	poll_for_ms(t, 5);
	/* Messages ran, but the poller keeps the thread alive. */
	CU_ASSERT(atomic_load(&n) == 100);
	CU_ASSERT(!sl_thread_is_exited(t));
	/* Messages sent while exiting still run. */
	CU_ASSERT(sl_thread_send_msg(t, msg_count, &n) == 0);
	sl_poller_unregister(&p);
	sl_thread_poll(t, 0, 0);
	CU_ASSERT(atomic_load(&n) == 101);
	CU_ASSERT(sl_thread_is_exited(t));
	CU_ASSERT(sl_thread_send_msg(t, msg_count, &n) == -EIO);
	sl_set_thread(NULL);
	sl_thread_destroy(t);
}

static void
test_thread_exit_timeout(void)
{
	struct sl_thread *t = thread_new("leaky");
	uint32_t saved = g_thread_exit_timeout_ms;
	struct sl_poller *p;
	int runs = 0;

	g_thread_exit_timeout_ms = 20;
	sl_set_thread(t);
	p = sl_poller_register(poller_count, &runs, 1000, "leaked");
	CU_ASSERT_PTR_NOT_NULL(p);
	sl_thread_exit(t);
	poll_for_ms(t, 100);
	CU_ASSERT(sl_thread_is_exited(t));
	sl_set_thread(NULL);
	sl_thread_destroy(t);
	/* The forced exit left the leaked poller to its holder, who frees it. */
	sl_poller_unregister(&p);
	g_thread_exit_timeout_ms = saved;
}

/* Every message whose send returned 0 runs, even while the target exits. */
struct racer {
	struct sl_thread *target;
	atomic_int accepted;
	atomic_int ran;
};

static void
msg_race(void *arg)
{
	atomic_fetch_add(&((struct racer *)arg)->ran, 1);
}

static void *
racer_main(void *arg)
{
	struct racer *r = arg;
	int rc;

	do {
		rc = sl_thread_send_msg(r->target, msg_race, r);
		if (rc == 0) {
			atomic_fetch_add(&r->accepted, 1);
		}
	} while (rc != -EIO);
	return NULL;
}

static void
test_thread_exit_race(void)
{
	struct racer r = {.target = thread_new("race")};
	pthread_t tid;
	uint64_t end = now_ms() + 10000;

	sl_set_thread(r.target);
	CU_ASSERT_FATAL(pthread_create(&tid, NULL, racer_main, &r) == 0);
	while (atomic_load(&r.accepted) < 1000 && now_ms() < end) {
		sl_thread_poll(r.target, 0, 0);
	}
	sl_thread_exit(r.target);
	while (!sl_thread_is_exited(r.target) && now_ms() < end) {
		sl_thread_poll(r.target, 0, 0);
	}
	pthread_join(tid, NULL);
	CU_ASSERT(sl_thread_is_exited(r.target));
	CU_ASSERT(atomic_load(&r.accepted) == atomic_load(&r.ran));
	CU_ASSERT(!sl_thread_has_msgs(r.target));
	sl_set_thread(NULL);
	sl_thread_destroy(r.target);
}

struct exit_window {
	struct sl_thread *target;
	atomic_int n;
	atomic_int rc;
	atomic_int done;
};

static void *
exit_window_poll(void *arg)
{
	struct exit_window *w = arg;

	/* The exit check waits for the sender announced by the test. */
	sl_set_thread(w->target);
	sl_thread_poll(w->target, 0, 0);
	return NULL;
}

static void *
exit_window_send(void *arg)
{
	struct exit_window *w = arg;

	atomic_store(&w->rc, sl_thread_send_msg(w->target, msg_count, &w->n));
	atomic_store(&w->done, 1);
	return NULL;
}

/*
 * The window of thread_exit_check: an idle exiting thread closes, waits for a sender
 * that read EXITING, finds its message and goes back to EXITING. A send arriving in
 * between must not be refused (-EIO says "exited for good") while the thread lives on
 * and runs the earlier message: it waits and is accepted.
 */
static void
test_thread_exit_window(void)
{
	struct exit_window w = {.target = thread_new("window")};
	pthread_t poller, sender;
	uint64_t end = now_ms() + 5000;
	void *m1;

	/* A real message, taken out of the ring: the announced sender's, not yet queued. */
	CU_ASSERT_FATAL(sl_thread_send_msg(w.target, msg_count, &w.n) == 0);
	CU_ASSERT_FATAL(sl_ring_dequeue(w.target->messages, &m1, 1) == 1);
	sl_set_thread(w.target);
	CU_ASSERT(sl_thread_exit(w.target) == 0);
	sl_set_thread(NULL);
	atomic_fetch_add(&w.target->senders, 1);

	CU_ASSERT_FATAL(pthread_create(&poller, NULL, exit_window_poll, &w) == 0);
	while (atomic_load(&w.target->state) == THREAD_STATE_EXITING && now_ms() < end) {
		sched_yield();
	}
	CU_ASSERT(!sl_thread_is_exited(w.target));
	CU_ASSERT_FATAL(pthread_create(&sender, NULL, exit_window_send, &w) == 0);
	/* Long enough for a refusal to show; the send must still be waiting. */
	usleep(20000);
	CU_ASSERT(atomic_load(&w.done) == 0);

	/* The announced sender queues its message and leaves. */
	CU_ASSERT(sl_ring_enqueue(w.target->messages, &m1, 1, NULL) == 1);
	atomic_fetch_sub(&w.target->senders, 1);
	pthread_join(poller, NULL);
	pthread_join(sender, NULL);
	CU_ASSERT(atomic_load(&w.rc) == 0);
	CU_ASSERT(!sl_thread_is_exited(w.target));

	/* Both run, then the thread exits, and for good. */
	CU_ASSERT(sl_ut_thread_end(w.target) == 0);
	CU_ASSERT(atomic_load(&w.n) == 2);
}

/* --- for_each_thread, accessors ------------------------------------------------- */

static uint64_t g_visited[8];
static int g_nvisited;
static atomic_int g_for_each_done;

static void
for_each_visit(void *ctx)
{
	CU_ASSERT(ctx == &g_nvisited);
	g_visited[g_nvisited++] = sl_thread_get_id(sl_get_thread());
}

static void
for_each_done(void *ctx)
{
	CU_ASSERT(sl_get_thread() == sl_thread_get_by_id(g_visited[0]));
	atomic_store(&g_for_each_done, 1);
}

static void
test_for_each_thread(void)
{
	struct sl_thread *t[3];
	uint64_t end = now_ms() + 2000;
	int i;

	for (i = 0; i < 3; i++) {
		t[i] = thread_new(NULL);
	}
	g_nvisited = 0;
	atomic_store(&g_for_each_done, 0);
	sl_set_thread(t[0]);
	sl_for_each_thread(for_each_visit, &g_nvisited, for_each_done);
	while (!atomic_load(&g_for_each_done) && now_ms() < end) {
		for (i = 0; i < 3; i++) {
			sl_thread_poll(t[i], 0, 0);
		}
	}
	CU_ASSERT(atomic_load(&g_for_each_done) == 1);
	CU_ASSERT(g_nvisited == 3);
	for (i = 0; i < 3; i++) {
		CU_ASSERT(g_visited[i] == sl_thread_get_id(t[i]));
	}
	for (i = 0; i < 3; i++) {
		CU_ASSERT(sl_ut_thread_end(t[i]) == 0);
	}
}

static atomic_int g_for_each_runs;

static void
for_each_count(void *ctx)
{
	atomic_fetch_add(&g_for_each_runs, 1);
}

static void
for_each_count_done(void *ctx)
{
	*(struct sl_thread **)ctx = sl_get_thread();
}

/* The thread that started sl_for_each_thread lives until its completion has run. */
static void
test_for_each_thread_exit(void)
{
	struct sl_thread *t0 = thread_new("fe_orig"), *t1 = thread_new("fe_other");
	struct sl_thread *cpl_thread = NULL;
	int i;

	atomic_store(&g_for_each_runs, 0);
	sl_set_thread(t0);
	sl_for_each_thread(for_each_count, &cpl_thread, for_each_count_done);
	sl_thread_exit(t0);
	for (i = 0; i < 10; i++) {
		sl_thread_poll(t0, 0, 0);
	}
	CU_ASSERT(atomic_load(&g_for_each_runs) == 1);
	CU_ASSERT_FATAL(!sl_thread_is_exited(t0));
	sl_thread_poll(t1, 0, 0);
	CU_ASSERT(atomic_load(&g_for_each_runs) == 2);
	for (i = 0; i < 10 && !sl_thread_is_exited(t0); i++) {
		sl_thread_poll(t0, 0, 0);
	}
	CU_ASSERT(cpl_thread == t0);
	CU_ASSERT(sl_thread_is_exited(t0));
	sl_set_thread(NULL);
	sl_thread_destroy(t0);
	CU_ASSERT(sl_ut_thread_end(t1) == 0);
}

static void
test_accessors(void)
{
	struct sl_thread *a = thread_new("a"), *b = thread_new(NULL);
	struct sl_thread_stats st;
	char name[32];

	CU_ASSERT(sl_thread_get_app_thread() == a);
	CU_ASSERT(strcmp(sl_thread_get_name(a), "a") == 0);
	snprintf(name, sizeof(name), "thread%llu", (unsigned long long)sl_thread_get_id(b));
	CU_ASSERT(strcmp(sl_thread_get_name(b), name) == 0);
	CU_ASSERT(sl_thread_get_by_id(sl_thread_get_id(b)) == b);
	CU_ASSERT(sl_thread_get_by_id(999999) == NULL);
	CU_ASSERT(sl_thread_get_from_ctx(sl_thread_get_ctx(a)) == a);
	CU_ASSERT(sl_cpuset_count(sl_thread_get_cpumask(a)) == SL_CPUSET_SIZE);
	CU_ASSERT(sl_get_ticks_hz() > 1000000);
	CU_ASSERT(sl_get_ticks() < sl_get_ticks());
	sl_thread_poll(a, 0, 0);
	CU_ASSERT(sl_thread_get_stats(a, &st) == 0);
	CU_ASSERT(st.idle_tsc > 0);
	CU_ASSERT(sl_ut_thread_end(b) == 0);
	CU_ASSERT(sl_ut_thread_end(a) == 0);
	CU_ASSERT(sl_thread_get_app_thread() == NULL);
}

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Whatever the source (TSC calibrated at init, or the clock), ticks over sl_get_ticks_hz()
 * are seconds: within 2 % of CLOCK_MONOTONIC over 50 ms (a loaded machine may preempt
 * between the two reads at either end; the loop retries a few times). */
static void
test_ticks_rate(void)
{
	uint64_t hz = sl_get_ticks_hz();
	uint64_t t0, c0, t1, c1, ns;
	double ratio = 0;
	int i;

	for (i = 0; i < 5; i++) {
		c0 = sl_get_ticks();
		t0 = mono_ns();
		do {
			t1 = mono_ns();
		} while (t1 - t0 < 50000000ull);
		c1 = sl_get_ticks();
		ns = t1 - t0;
		ratio = (double)(c1 - c0) * 1e9 / (double)hz / (double)ns;
		if (ratio > 0.98 && ratio < 1.02) {
			break;
		}
	}
	CU_ASSERT(ratio > 0.98 && ratio < 1.02);
}

static int
suite_init(void)
{
	return sl_thread_lib_init(NULL, 64);
}

static int
suite_fini(void)
{
	sl_thread_lib_fini();
	return 0;
}

int
main(void)
{
	CU_pSuite suite = sl_ut_suite("thread", suite_init, suite_fini);

	CU_ADD_TEST(suite, test_accessors);
	CU_ADD_TEST(suite, test_send_msg_order);
	CU_ADD_TEST(suite, test_send_msg_two_producers);
	CU_ADD_TEST(suite, test_send_msg_off_thread);
	CU_ADD_TEST(suite, test_send_msg_chain);
	CU_ADD_TEST(suite, test_timed_pollers);
	CU_ADD_TEST(suite, test_timed_poller_long_period);
	CU_ADD_TEST(suite, test_poller_unregister_in_callback);
	CU_ADD_TEST(suite, test_poller_unregister_off_thread);
	CU_ADD_TEST(suite, test_poller_pause_resume);
	CU_ADD_TEST(suite, test_poller_busy_kinds);
	CU_ADD_TEST(suite, test_fd_poller);
	CU_ADD_TEST(suite, test_fd_poller_direct);
	CU_ADD_TEST(suite, test_fd_poller_direct_unregister_in_batch);
	CU_ADD_TEST(suite, test_poller_calls_off_thread);
	CU_ADD_TEST(suite, test_poller_off_thread);
	CU_ADD_TEST(suite, test_thread_exit_drains);
	CU_ADD_TEST(suite, test_thread_exit_timeout);
	CU_ADD_TEST(suite, test_thread_exit_race);
	CU_ADD_TEST(suite, test_thread_exit_window);
	CU_ADD_TEST(suite, test_for_each_thread);
	CU_ADD_TEST(suite, test_for_each_thread_exit);
	CU_ADD_TEST(suite, test_ticks_rate);
	return sl_ut_run();
}
