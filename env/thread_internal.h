/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/** \file
 * Private structures of the thread library, shared by thread.c, io_channel.c and
 * reactor.c, and reached by their unit tests.
 */
#ifndef SLUICE_THREAD_INTERNAL_H
#define SLUICE_THREAD_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "sluice/cpuset.h"
#include "sluice/env.h"
#include "sluice/thread.h"
#include "sluice/util.h"

#define THREAD_NAME_LEN 64
#define POLLER_NAME_LEN 64
/** Capacity of each thread's message ring (slots are touched only when used). */
#define THREAD_MSG_RING_SIZE 65536
/** Messages in the global pool, shared by all threads. */
#define THREAD_MSG_POOL_SIZE 131071
/** Free messages a thread keeps for itself, so sending rarely touches the pool. */
#define THREAD_MSG_CACHE_SIZE 256
/** Default message batch of one sl_thread_poll() iteration. */
#define THREAD_MSG_BATCH 32
/** Milliseconds a thread may take to exit before it is forced (leaks logged). */
#define THREAD_EXIT_TIMEOUT_MS 5000

struct thread_msg {
	sl_msg_fn fn;
	void *arg;
	STAILQ_ENTRY(thread_msg) link;
	bool remote; /* sent from another thread (or from no thread) */
};

enum poller_state {
	/* In its list, waiting for its turn. */
	POLLER_STATE_WAITING,
	/* Its callback is running now. */
	POLLER_STATE_RUNNING,
	/* Unregistered; freed by the poll loop, which may still hold it. */
	POLLER_STATE_UNREGISTERED,
	/* Pause requested while it ran or sat in the run-always list. */
	POLLER_STATE_PAUSING,
	POLLER_STATE_PAUSED,
};

enum poller_kind {
	POLLER_KIND_ACTIVE, /* run on every iteration */
	POLLER_KIND_TIMED,  /* run at most once per period */
	POLLER_KIND_FD,     /* run when its fd has events */
};

/* Most fd pollers a hot thread takes out of epoll at once. */
#define THREAD_DIRECT_MAX 8

struct sl_poller {
	TAILQ_ENTRY(sl_poller) tailq;
	enum poller_state state;
	enum poller_kind kind;
	struct sl_thread *thread;
	sl_poller_fn fn;
	void *arg;
	uint64_t period_ticks;
	uint64_t next_run_tick;
	int fd;
	uint32_t events;
	uint64_t run_count;
	uint64_t busy_count;
	/* fd pollers: direct - may run with no events (sl_poller_fd_set_direct);
	 * detached - out of epoll, run on every iteration of its hot thread. */
	bool direct;
	bool detached;
	bool attach_failed; /* logged once */
	/* Under g_threads_lock, once the thread has exited (see sl_thread_destroy):
	 * orphaned          - its thread was forced out and destroyed; the poller stays
	 *                     allocated, holding a reference on the thread's struct,
	 *                     until its holder unregisters it;
	 * late_unregistered - unregistered from another thread once the thread had
	 *                     exited (the send was refused): its destruction frees it. */
	bool orphaned;
	bool late_unregistered;
	char name[POLLER_NAME_LEN];
};

TAILQ_HEAD(poller_list, sl_poller);

enum thread_state {
	THREAD_STATE_RUNNING,
	THREAD_STATE_EXITING,
	/* Exiting, idle, and deciding whether it may exit: senders wait for the verdict
	 * (see thread_exit_check). */
	THREAD_STATE_EXIT_CHECK,
	THREAD_STATE_EXITED, /* final: sends fail with -EIO from now on */
};

struct sl_thread {
	/* Read by senders on other cores: kept apart from the owner's hot fields. */
	struct sl_ring *messages;
	_Atomic(enum thread_state) state;
	sl_thread_wake_fn wake_fn;
	void *wake_arg;
	/* Senders between their state check and their enqueue (see thread_exit_check). */
	atomic_uint senders __attribute__((aligned(SL_CACHE_LINE)));
	/*
	 * References to this struct: one from creation to sl_thread_destroy, one per
	 * completion the thread awaits (thread_cpl_hold: the iterations and io_device
	 * unregistrations it started), and after a forced exit one per poller left to its
	 * holder. While the thread lives, refs - 1 completions are awaited: it does not
	 * exit before they have run, or they would be sent to a freed thread. A thread
	 * forced out with references left is destroyed but for this struct, which stays
	 * EXITED (sends fail with -EIO) until the last one goes. Atomic because a
	 * completion that cannot be sent (-ENOMEM) runs where it is.
	 */
	atomic_uint refs;

	/* Owner-only from here on. */
	uint64_t id __attribute__((aligned(SL_CACHE_LINE)));
	char name[THREAD_NAME_LEN];
	struct sl_cpuset cpumask;
	STAILQ_HEAD(, thread_msg) msg_cache;
	uint32_t msg_cache_count;

	struct poller_list active_pollers;
	struct poller_list timed_pollers; /* sorted by next_run_tick */
	struct poller_list fd_pollers;
	struct poller_list paused_pollers;
	struct poller_list reap_pollers; /* unregistered, freed at the end of a poll */
	uint32_t active_count;           /* live run-always pollers, not paused */
	uint32_t poller_count;           /* live pollers of any kind, paused included */

	int epfd;
	uint32_t fd_count;
	/* fd pollers are polled at most every fd_poll_ticks while they stay quiet. */
	uint64_t last_fd_poll_tick;
	bool fd_ready; /* set by a scheduler that saw the epoll fd readable */
	bool fd_busy;  /* an fd poller returned BUSY: poll again next iteration */
	/* Direct fd pollers (see sl_thread_set_hot): while the thread is hot, those that
	 * run leave epoll for the direct array and run on every iteration; all go back
	 * when it cools, and every THREAD_DIRECT_REFRESH_US, so quiet ones stop costing
	 * a syscall per iteration. */
	bool hot;
	uint32_t direct_count;
	struct sl_poller *direct[THREAD_DIRECT_MAX];
	uint64_t direct_since_tick; /* when the array was last emptied */
	uint64_t direct_runs;       /* runs of direct fd pollers, attached or not */
	/* A run-always poller was resumed and has not run since: the thread is due (the
	 * reactor sleeps once it is idle, and nothing would wake it for this one). */
	bool active_resumed;

	/* Set by sl_thread_poll for adaptive scheduling (timed pollers count for
	 * neither: the reactor wakes for their deadlines anyway):
	 * poll_busy  - run-always pollers were busy and are still active: only polling
	 *              notices their next work (device completions), so the reactor
	 *              keeps spinning;
	 * event_busy - messages from other threads were run (the next one wakes a
	 *              sleeping reactor by itself, but at a cost to its sender: an
	 *              eventfd write), or an fd poller is in the middle of a transfer
	 *              (returned BUSY): the reactor spins a little after them.
	 * Other work -- fd pollers, messages a thread sent itself, run-always pollers
	 * that paused themselves after their work -- sets neither: what comes next is
	 * either pending already (sl_thread_next_poller_ticks says so) or arrives through
	 * epoll, where sleeping costs nobody but the sleeper. */
	bool poll_busy;
	bool event_busy;

	TAILQ_HEAD(, sl_io_channel) io_channels; /* under g_devlist_lock (io_channel.c) */

	uint64_t exit_start_tick;
	uint64_t last_tick;
	struct sl_thread_stats stats;

	TAILQ_ENTRY(sl_thread) tailq; /* g_threads, under g_threads_lock, by id */

	uint8_t ctx[] __attribute__((aligned(SL_CACHE_LINE)));
};

/* struct sl_io_channel is defined here so thread.c can report leaked channels. */
struct io_device;

struct sl_io_channel {
	struct sl_thread *thread;
	struct io_device *dev;
	uint32_t ref;
	bool destroy_pending;
	TAILQ_ENTRY(sl_io_channel) tailq;
	/* The per-thread context follows, cache-line aligned. */
	uint8_t ctx[] __attribute__((aligned(SL_CACHE_LINE)));
};

/** Protects g_threads (thread.c). Never taken before g_devlist_lock (io_channel.c). */
extern pthread_mutex_t g_threads_lock;
extern TAILQ_HEAD(thread_list, sl_thread) g_threads;

/** \return the number of created, not yet destroyed threads. */
uint32_t thread_live_count(void);
/** \return the next live (not exited) thread after prev in id order (NULL = first). Lock held. */
struct sl_thread *thread_next_locked(struct sl_thread *prev);
/** Log what keeps a thread from exiting: its pollers and channels. */
void thread_log_leaks(struct sl_thread *thread);

/**
 * Count a completion that must run on thread before it may exit (see refs). Called on
 * thread; the reference also keeps its struct should it be forced out meanwhile.
 */
static inline void
thread_cpl_hold(struct sl_thread *thread)
{
	atomic_fetch_add(&thread->refs, 1);
}

/**
 * The completion counted by thread_cpl_hold() has run, or was dropped. This may free
 * what is left of a forced thread: touch it no more.
 */
void thread_cpl_release(struct sl_thread *thread);

/**
 * Send thread a completion it awaits (counted by thread_cpl_hold). When the send
 * fails, fn runs here if this is that thread (forced out, running its last messages)
 * or if the thread lives on (-ENOMEM: it waits for this, so it has not exited).
 * \return 0 if fn was sent or has run; -EIO if the thread was forced out: the caller
 * drops the completion without its callback, which was meant for that thread (its
 * argument may well be that thread's), and releases the reference.
 */
int thread_cpl_send(struct sl_thread *thread, sl_msg_fn fn, void *arg);
/** Milliseconds before a thread that does not exit is forced out (tests lower it). */
extern uint32_t g_thread_exit_timeout_ms;
/** Ticks between polls of quiet fd pollers (see sl_thread_poll). */
extern uint64_t g_thread_fd_poll_ticks;

/** Release the channels a thread leaked when it was forced to exit (io_channel.c). */
void io_channel_thread_release(struct sl_thread *thread);
/** Log the channels a thread still holds (io_channel.c). */
void io_channel_thread_log(struct sl_thread *thread);

/**
 * Create a heap mempool whatever the EAL state (env_pool.c). The message pool uses it:
 * messages never reach a device, and the thread library may outlive the EAL.
 */
struct sl_mempool *env_mempool_create_heap(const char *name, size_t count, size_t elt_size);

#endif /* SLUICE_THREAD_INTERNAL_H */
