/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/** \file
 * Lightweight threads, pollers, messages and I/O channels.
 *
 * A sl_thread is a unit of scheduling with its own pollers and a lock-free
 * multi-producer message queue. Threads run on reactors (see reactor.h), or are
 * polled by hand with sl_thread_poll() (unit tests, tools). Everything a thread
 * owns -- pollers, channels, the callbacks of I/O it submitted -- runs on that
 * thread only, so the I/O path takes no locks.
 */
#ifndef SLUICE_THREAD_H
#define SLUICE_THREAD_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

struct sl_thread;
struct sl_poller;
struct sl_io_channel;
struct sl_io_channel_iter;
struct sl_cpuset;

/** A message: runs once on the target thread. */
typedef void (*sl_msg_fn)(void *ctx);

/**
 * Poller return values, and the contract adaptive scheduling relies on.
 *
 * A run-always poller returns SL_POLLER_BUSY while it has outstanding work that only
 * polling will notice -- NVMe or I/OAT completions of submitted commands, say -- and
 * SL_POLLER_IDLE when nothing is outstanding. An adaptive reactor keeps spinning while
 * any run-always poller was busy in its last idle_spin_us (or a message from another
 * thread ran in a shorter window), and sleeps otherwise, so a poller that returns IDLE
 * with work outstanding may see that work only on the next wake-up (message, timer or
 * fd). An fd poller returns BUSY when more input is expected within microseconds (it
 * stopped at a batch limit, or is in the middle of a transfer), so it is polled again
 * at once and the reactor spins briefly before it sleeps, and IDLE once it has drained
 * its fd (read until EAGAIN or a short read) and the next input may be far off: epoll
 * reports it. Timed pollers
 * need no such care: the reactor wakes for their deadline whatever they return, and their BUSY does
 * not keep it spinning. Work signalled through an fd belongs in an fd poller. A
 * run-always poller that pauses itself once its work is done (deferred completions,
 * resumed by whoever queues more on its thread) has nothing left for polling to
 * notice: its BUSY counts as event work, like a message's, and does not keep the
 * reactor spinning either.
 */
enum sl_poller_status {
	/** Nothing was done and nothing is pending that only polling would notice. */
	SL_POLLER_IDLE = 0,
	/** Work was done, or work is outstanding that polling must notice. */
	SL_POLLER_BUSY = 1,
};
/** A poller: returns SL_POLLER_BUSY or SL_POLLER_IDLE (or a negative errno, treated as idle). */
typedef int (*sl_poller_fn)(void *ctx);

/** Create/destroy the per-thread context of an I/O device. */
typedef int (*sl_io_channel_create_cb)(void *io_device, void *ctx_buf);
typedef void (*sl_io_channel_destroy_cb)(void *io_device, void *ctx_buf);
typedef void (*sl_io_device_unregister_cb)(void *io_device);
typedef void (*sl_channel_msg)(struct sl_io_channel_iter *i);
typedef void (*sl_channel_for_each_cpl)(struct sl_io_channel_iter *i, int status);

/**
 * Hook by which a scheduler (the reactors) learns of a new thread and places it.
 * \return 0, or -errno to fail the creation.
 */
typedef int (*sl_new_thread_fn)(struct sl_thread *thread);

/**
 * Initialise the thread library.
 * \param new_thread_fn scheduler hook, or NULL when threads are polled by hand.
 * \param ctx_sz bytes of scheduler context reserved in each thread (sl_thread_get_ctx).
 * \return 0 or -ENOMEM.
 */
int sl_thread_lib_init(sl_new_thread_fn new_thread_fn, size_t ctx_sz);
/** Tear the library down; every thread must have been destroyed. */
void sl_thread_lib_fini(void);

/**
 * Create a thread. The first thread created is the app thread (RPC, config).
 * \param name a name for logs and stats (copied); NULL gives "thread<N>".
 * \param cpumask cores it may run on, or NULL for any.
 * \return the thread, or NULL on failure.
 */
struct sl_thread *sl_thread_create(const char *name, const struct sl_cpuset *cpumask);
/**
 * Ask the calling thread to exit. It stops once its pollers are unregistered, its
 * channels put, and the sl_for_each_thread/sl_for_each_channel iterations and
 * io_device unregistrations it started have completed; messages still queued run first, and
 * messages sent while it exits are still accepted and run. Then sl_thread_is_exited() is true and
 * sends fail with -EIO.
 *
 * A thread still holding any of these 5 s after this call is forced out: what it held
 * is logged, the messages it accepted run, and sends fail with -EIO from then on. When
 * its scheduler destroys it, its leaked pollers never run again but stay allocated
 * until their holders unregister them (from any thread); its leaked channels are
 * released without their destroy callback (their devices' unregistration goes on); the
 * completions of the iterations and unregistrations it started are dropped when they
 * come, their callbacks not called (they were meant for the forced thread). What
 * references it keeps a remnant of it, closed to sends, until the last reference goes.
 * \return 0, or -EINVAL if thread is NULL or not the calling thread.
 */
int sl_thread_exit(struct sl_thread *thread);
/** \return whether the thread has finished exiting. */
bool sl_thread_is_exited(struct sl_thread *thread);
/**
 * Free an exited thread (called by its scheduler). After a forced exit, see
 * sl_thread_exit for what becomes of what it held.
 */
void sl_thread_destroy(struct sl_thread *thread);

/**
 * Run one iteration of a thread: up to max_msgs messages (0 = a default batch of 32),
 * then the run-always pollers, the fd pollers whose fds have events (their epoll fd is
 * looked at every few microseconds while quiet, at once while busy), then the due
 * timed pollers. The thread is the current thread (sl_get_thread) meanwhile. Called
 * by reactors or by hand.
 * \param now current tick count (sl_get_ticks()), or 0 to read it.
 * \return >0 if anything was busy, 0 if idle.
 */
int sl_thread_poll(struct sl_thread *thread, uint32_t max_msgs, uint64_t now);

/**
 * Tell a thread whether its scheduler spins (busy polling, or an adaptive reactor
 * under load). While it is hot, a direct fd poller (sl_poller_fd_set_direct) that
 * runs leaves epoll and runs on every iteration; every millisecond they go back,
 * leaving again at their next event, so quiet ones stop costing a syscall per
 * iteration. Cooling puts them all back: do it before sleeping on the thread's epoll
 * fd (sl_thread_next_poller_ticks returns 0 while one is out). By the thread's
 * scheduler only.
 */
void sl_thread_set_hot(struct sl_thread *thread, bool hot);
/** \return how many times the thread has run direct fd pollers (for schedulers). */
uint64_t sl_thread_get_direct_runs(const struct sl_thread *thread);

/**
 * \return ticks until the thread's next timed poller is due (0 if one is due now or a
 * message is queued), or UINT64_MAX if it has none. Used by adaptive scheduling.
 */
uint64_t sl_thread_next_poller_ticks(struct sl_thread *thread, uint64_t now);
/** \return whether the thread has any run-always pollers. */
bool sl_thread_has_active_pollers(struct sl_thread *thread);
/** \return whether the thread has a message queued. */
bool sl_thread_has_msgs(struct sl_thread *thread);

/** \return the thread this code runs on, or NULL. */
struct sl_thread *sl_get_thread(void);
/** Set the current thread of the calling OS thread (schedulers and tests). */
void sl_set_thread(struct sl_thread *thread);
/** \return the app thread (the first one created). */
struct sl_thread *sl_thread_get_app_thread(void);
/** \return the thread's name. */
const char *sl_thread_get_name(const struct sl_thread *thread);
/** \return the thread's unique id (1-based). */
uint64_t sl_thread_get_id(const struct sl_thread *thread);
/** \return the thread with that id, or NULL. */
struct sl_thread *sl_thread_get_by_id(uint64_t id);
/** \return the scheduler context reserved by sl_thread_lib_init's ctx_sz. */
void *sl_thread_get_ctx(struct sl_thread *thread);
/** \return the thread owning a ctx from sl_thread_get_ctx. */
struct sl_thread *sl_thread_get_from_ctx(void *ctx);
/** \return the thread's cpumask (never NULL). */
const struct sl_cpuset *sl_thread_get_cpumask(const struct sl_thread *thread);

/**
 * Wake hook: called by sl_thread_send_msg on another OS thread when the target may be
 * asleep (adaptive reactors). Set by the scheduler per thread.
 */
typedef void (*sl_thread_wake_fn)(struct sl_thread *thread, void *arg);
void sl_thread_set_wake_fn(struct sl_thread *thread, sl_thread_wake_fn fn, void *arg);

/**
 * Send a message to a thread, from any OS thread. Lock-free; never blocks (but for
 * an instant when the target, exiting, is checking whether it may go: the send waits
 * for the verdict); allocates nothing (messages come from a pool, cached per thread).
 * Messages from one sender to one thread run in the order sent. A thread on a sleeping
 * adaptive reactor is woken. A message accepted (0) runs; -EIO is final: every later
 * send to that thread fails too.
 * \return 0, -ENOMEM if the message pool or the thread's queue is full, -EIO if the
 * thread has exited.
 */
int sl_thread_send_msg(const struct sl_thread *thread, sl_msg_fn fn, void *ctx);

/**
 * Run fn(ctx) on every thread in turn, then cpl(ctx) on the calling thread (not at all
 * if that thread was forced to exit meanwhile: see sl_thread_exit).
 * Must be called on a thread.
 */
void sl_for_each_thread(sl_msg_fn fn, void *ctx, sl_msg_fn cpl);

/** Thread statistics (ticks spent busy and idle; iterations). */
struct sl_thread_stats {
	uint64_t busy_tsc;
	uint64_t idle_tsc;
};
/** Copy the thread's stats. \return 0. */
int sl_thread_get_stats(struct sl_thread *thread, struct sl_thread_stats *stats);

/**
 * Register a poller on the current thread.
 * \param period_us 0 to run on every iteration, else at most once per period.
 * \return the poller, or NULL (no current thread, or out of memory).
 */
struct sl_poller *sl_poller_register(sl_poller_fn fn, void *arg, uint64_t period_us,
				     const char *name);
/**
 * Register an fd poller on the current thread: fn runs when fd is readable (or has the
 * given epoll events). It costs nothing while the fd is quiet, and wakes an adaptive
 * reactor that sleeps. Being level-triggered, an fd that stays ready (EPOLLOUT on an
 * idle socket) keeps the reactor awake: ask for EPOLLOUT only while output is queued.
 * \param events EPOLLIN/EPOLLOUT/... (level-triggered).
 * \return the poller, or NULL with errno set.
 */
struct sl_poller *sl_poller_register_fd(int fd, uint32_t events, sl_poller_fn fn, void *arg,
					const char *name);
/**
 * Change the events an fd poller waits for; only on the poller's thread.
 * \return 0, -EINVAL if poller is not an fd poller or this is not its thread (logged),
 * or -errno from epoll_ctl.
 */
int sl_poller_fd_set_events(struct sl_poller *poller, uint32_t events);
/**
 * Let a hot thread (sl_thread_set_hot) take this fd poller's fd out of epoll and run
 * the poller on every iteration instead, events or not. A peer writing to a socket
 * that sits in an epoll set pays for epoll's wake-up callbacks on its own CPU, whether
 * anyone waits there or not (a tenth of an NBD client's throughput at 150K 4 KiB
 * writes/s); a spinning thread needs no wake-up. Only for a poller whose fn copes
 * with a run that finds nothing (a non-blocking fd, EAGAIN handled) and that does
 * not depend on which events fired. Only on the poller's thread.
 * \return 0, -EINVAL if poller is not an fd poller or this is not its thread (logged),
 * or -errno if putting it back into epoll failed (direct false).
 */
int sl_poller_fd_set_direct(struct sl_poller *poller, bool direct);
/**
 * Unregister a poller and set *poller to NULL. NULL is allowed. On the poller's thread
 * (from any callback, the poller's own included) it never runs again. From another
 * thread the unregistration is sent to the poller's thread, and the poller may run
 * once more before it takes effect: free its argument only after that. A poller whose
 * thread was forced to exit (sl_thread_exit) runs no more and is freed here. Unregister
 * an fd poller before closing its fd (epoll tracks the fd number with the open file).
 */
void sl_poller_unregister(struct sl_poller **poller);
/**
 * Pause/resume a poller (on its thread; also from callbacks). A paused poller does not
 * run; a resumed timed poller is next due one period after the resume. Pausing a
 * paused poller, or resuming a running one, does nothing. Called on another thread (or
 * on none) they log an error and do nothing: the poller's lists belong to its thread.
 */
void sl_poller_pause(struct sl_poller *poller);
void sl_poller_resume(struct sl_poller *poller);

/**
 * The thread's epoll fd, holding its fd pollers: a scheduler waits on it when the thread
 * is idle. \return the fd, or -1.
 */
int sl_thread_get_epoll_fd(const struct sl_thread *thread);
/** Run the handlers of ready fd pollers (called from sl_thread_poll). \return count run. */
int sl_thread_poll_fds(struct sl_thread *thread, int timeout_ms);

/** \return the tick counter: the TSC where it is invariant, or under a hypervisor whose
 * guest clocksource traps (hpet, acpi_pm) when it proves steady (calibrated once against
 * CLOCK_MONOTONIC_RAW; SLUICE_TICKS=clock forbids it), else CLOCK_MONOTONIC_RAW in ns.
 * See sl_get_ticks_hz. */
uint64_t sl_get_ticks(void);
/** \return ticks per second. */
uint64_t sl_get_ticks_hz(void);

/**
 * Register an I/O device: channels to it are created per thread with ctx_size bytes
 * of context (zeroed, cache-line aligned), by create_cb on that thread. Registering
 * an address that is already registered is an error (logged, ignored).
 */
void sl_io_device_register(void *io_device, sl_io_channel_create_cb create_cb,
			   sl_io_channel_destroy_cb destroy_cb, uint32_t ctx_size,
			   const char *name);
/**
 * Unregister an I/O device. unregister_cb runs on the calling thread once every
 * channel to it has been destroyed (not at all if that thread was forced to exit
 * meanwhile: see sl_thread_exit). Getting a new channel after this fails.
 */
void sl_io_device_unregister(void *io_device, sl_io_device_unregister_cb unregister_cb);
/**
 * Get the current thread's channel to io_device, creating it on first get.
 * \return the channel (reference taken), or NULL: not on a thread, device not
 * registered (or being unregistered), create_cb failed, out of memory.
 */
struct sl_io_channel *sl_get_io_channel(void *io_device);
/** Drop a reference, on the channel's thread; the last one destroys the channel (deferred). */
void sl_put_io_channel(struct sl_io_channel *ch);
/** \return the per-thread context of a channel. */
void *sl_io_channel_get_ctx(struct sl_io_channel *ch);
/** \return the channel owning a context. */
struct sl_io_channel *sl_io_channel_from_ctx(void *ctx);
/** \return the thread a channel belongs to. */
struct sl_thread *sl_io_channel_get_thread(struct sl_io_channel *ch);
/** \return the I/O device of a channel. */
void *sl_io_channel_get_io_device(struct sl_io_channel *ch);

/**
 * Call fn on each thread that has a channel to io_device, one after another (in
 * thread id order); each call must end with sl_for_each_channel_continue(), on that
 * thread. Then cpl on the calling thread, with the status that ended the iteration
 * (not at all if that thread was forced to exit meanwhile: see sl_thread_exit).
 * Unregistering the device waits for running iterations.
 */
void sl_for_each_channel(void *io_device, sl_channel_msg fn, void *ctx,
			 sl_channel_for_each_cpl cpl);
/** Continue (status 0) or abort (status != 0) a sl_for_each_channel iteration. */
void sl_for_each_channel_continue(struct sl_io_channel_iter *i, int status);
void *sl_io_channel_iter_get_ctx(struct sl_io_channel_iter *i);
struct sl_io_channel *sl_io_channel_iter_get_channel(struct sl_io_channel_iter *i);
void *sl_io_channel_iter_get_io_device(struct sl_io_channel_iter *i);

#endif /* SLUICE_THREAD_H */
