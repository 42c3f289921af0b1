/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/** \file
 * Reactors: one OS thread per core of the core mask, pinned, each running the
 * lightweight threads placed on it.
 *
 * Scheduling modes: busy polling spins forever (dedicated cores). Adaptive (the
 * default) spins while any thread is busy and, after a short idle spell, sleeps in
 * epoll until a message, a timed poller's deadline or a registered fd wakes it, so an
 * idle daemon costs nothing. "Busy" means a message ran, or a run-always or fd poller
 * returned SL_POLLER_BUSY (see enum sl_poller_status for the pollers' contract).
 * Under load an adaptive reactor turns hot: when fd work has come every few
 * microseconds for a few milliseconds, it stops sleeping for a while, and its threads'
 * direct fd pollers (sl_poller_fd_set_direct) leave epoll, which spares the peers
 * writing to those sockets epoll's wake-up callbacks; it cools, and sleeps again,
 * when the load drops. A busy-polling reactor is always hot.
 *
 * Threads are placed when created: on the given reactor (sl_reactor_thread_create),
 * else round-robin over the reactors whose core is in the thread's cpumask. A thread
 * stays on its reactor. Reactors may be initialised and threads created before the
 * EAL is; a reactor started with the EAL up registers as a DPDK non-EAL lcore.
 *
 * Shutdown, exactly: sl_reactors_stop() (any thread, also a signal handler) marks the
 * reactors stopping and wakes them. Each reactor then calls sl_thread_exit() on each of
 * its threads (and on threads created later). A thread exits once it holds no poller
 * and no channel and its queue is empty -- messages queued before or during the exit
 * all run -- or is forced out 5 s after the request, with what it held logged. Exited
 * threads are destroyed by their reactor. When no thread is left, every reactor
 * returns and sl_reactors_start() returns on the calling thread, which gets its CPU
 * affinity back. The owners of pollers and channels (the subsystems) release them
 * before or while the stop runs; the app framework calls sl_reactors_stop() after its
 * subsystems have finished.
 */
#ifndef SLUICE_REACTOR_H
#define SLUICE_REACTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "sluice/thread.h"
#include "sluice/cpuset.h"

enum sl_reactor_mode {
	SL_REACTOR_ADAPTIVE = 0,
	SL_REACTOR_BUSY_POLL = 1,
};

struct sl_reactors_opts {
	/** Core mask ("0x1", "[0-1]"); NULL = the first core the process may run on. */
	const char *cpumask;
	enum sl_reactor_mode mode;
	/**
	 * Adaptive mode: how long (us) a reactor keeps spinning after its run-always
	 * pollers last had work, before it sleeps (0 = 200). After messages and fd
	 * pollers it spins at most 20 us: their next event wakes it anyway.
	 */
	uint32_t idle_spin_us;
	/** Do not pin reactors to their cores (tests on shared machines). */
	bool no_pin;
};

/**
 * Create the reactors and initialise the thread library with the reactor scheduler.
 * \param opts options, or NULL for the defaults (first allowed core, adaptive).
 * \return 0, -EINVAL (bad mask, or a core the process cannot run on unless no_pin),
 * -ENOMEM, -EALREADY.
 */
int sl_reactors_init(const struct sl_reactors_opts *opts);
/**
 * Run the reactors: the calling OS thread becomes the first reactor; returns after
 * sl_reactors_stop() once every reactor has stopped and every thread has exited.
 */
void sl_reactors_start(void);
/**
 * Begin an orderly stop, from any thread: reactors keep running threads until every
 * thread has exited (queued messages are drained first), then return from
 * sl_reactors_start().
 */
void sl_reactors_stop(void);
/** Free the reactors and finish the thread library; threads never run are destroyed. */
void sl_reactors_fini(void);

/** \return the number of reactors. */
uint32_t sl_reactor_count(void);
/** \return the core of the reactor running the caller, or UINT32_MAX. */
uint32_t sl_reactor_current_core(void);
/** \return the index (0..count-1) of the reactor running the caller, or UINT32_MAX. */
uint32_t sl_reactor_current_index(void);
/** \return the core of reactor index i. */
uint32_t sl_reactor_core(uint32_t i);

/** Per-reactor information for framework_get_reactors. */
struct sl_reactor_info {
	uint32_t core;
	uint32_t index;
	bool in_interrupt; /* sleeping in epoll right now (adaptive) */
	uint64_t busy_tsc;
	uint64_t idle_tsc;
	uint64_t sleeps;      /* times it went to sleep */
	bool hot;             /* spinning under load, direct fd pollers out of epoll */
	uint64_t hot_periods; /* times it turned hot (adaptive) */
	uint64_t hot_tsc;     /* ticks spent hot, ended periods only (adaptive) */
	uint32_t thread_count;
};
/** Fill info for reactor index i. \return 0 or -EINVAL. */
int sl_reactor_get_info(uint32_t i, struct sl_reactor_info *info);
/** \return the current scheduling mode. */
enum sl_reactor_mode sl_reactors_get_mode(void);

/**
 * Create a thread on a given reactor index (channel-per-reactor users such as NBD
 * connections); its cpumask is that reactor's core. \return the thread, or NULL (no
 * such reactor, or out of memory).
 */
struct sl_thread *sl_reactor_thread_create(uint32_t index, const char *name);

#endif /* SLUICE_REACTOR_H */
