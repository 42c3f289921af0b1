/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/** \file
 * Private declarations of the block layer core, shared by bdev.c (registry, open,
 * claims), bdev_channel.c (per-thread channels and pools), bdev_io.c (the I/O path),
 * bdev_stats.c and bdev_rpc.c, and reached by the unit tests.
 */
#ifndef SLUICE_BDEV_INTERNAL_H
#define SLUICE_BDEV_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "sluice/bdev.h"
#include "sluice/bdev_module.h"
#include "sluice/thread.h"
#include "sluice/util.h"

/** Size of the shared zero buffer that write-zeroes emulation writes from. */
#define BDEV_ZERO_BUF_SIZE (1u << 20)
/** Split children a parent keeps in flight at once (bounds its use of the pool). */
#define BDEV_SPLIT_MAX_OUTSTANDING 32

struct bdev_alias {
	char *name;
	TAILQ_ENTRY(bdev_alias) link;
};

/** Per-bdev state of the core; protected by g_bdev_mutex unless said otherwise. */
struct sl_bdev_priv {
	struct sl_bdev *bdev;
	TAILQ_HEAD(, sl_bdev_desc) descs;
	TAILQ_HEAD(, bdev_alias) aliases;
	/** The claim: owner name (NULL = unclaimed) and the descriptor that holds it. */
	char *claim_owner;
	struct sl_bdev_desc *claim_desc;
	/** Per-I/O module context size, rounded to 64 (fixed at register). */
	uint32_t driver_ctx_size;
	/** Unregister: completion and the thread it runs on. */
	sl_bdev_op_done_cb unregister_cb;
	void *unregister_arg;
	struct sl_thread *unregister_thread;
	bool io_device_registered;
	bool io_device_gone;
	atomic_bool destructing;
	/** Channel structs alive, including ones whose channel is gone but I/O is not. */
	atomic_uint live_channels;
	/** Statistics of destroyed channels. */
	struct sl_bdev_io_stat retired_stat;
};

/** An open descriptor; protected by g_bdev_mutex. */
struct sl_bdev_desc {
	struct sl_bdev *bdev;
	struct sl_thread *thread;
	sl_bdev_event_cb event_cb;
	void *event_ctx;
	bool write;
	bool closed;
	/** Event messages in flight to the descriptor's thread (they free a closed desc). */
	uint32_t pending_events;
	TAILQ_ENTRY(sl_bdev_desc) link;
};

STAILQ_HEAD(bdev_io_list, sl_bdev_io);

/**
 * Per-(bdev, thread) state. The io_channel's context holds only a pointer to it, so
 * it can outlive the channel while I/O the user submitted is still in flight.
 * Touched by its thread only.
 */
struct bdev_channel {
	struct sl_bdev *bdev;
	struct sl_io_channel *module_ch;
	struct sl_thread *thread;
	/** Free I/O descriptors (a stack: the most recently freed is hottest in cache). */
	struct bdev_io_list free_ios;
	/** Completions deferred out of a submit call; drained by the poller. */
	struct bdev_io_list done_ios;
	/** I/O the module refused with -ENOMEM, in order. */
	struct bdev_io_list nomem_ios;
	uint32_t nomem_count;
	/** I/O waiting for a bounce buffer. */
	struct bdev_io_list bounce_wait;
	/** Split parents waiting for a free descriptor for their next child. */
	struct bdev_io_list split_wait;
	/** Users waiting for a free descriptor (sl_bdev_queue_io_wait). */
	TAILQ_HEAD(, sl_bdev_io_wait_entry) io_wait;
	/** I/O inside the module now. */
	uint32_t in_module;
	/** Descriptors taken from the pool. */
	uint32_t in_use;
	uint32_t io_count;
	uint32_t io_stride;
	void *io_mem;
	/** Bounce buffers: a stack of free ones, each bounce_size bytes. */
	void **bounce_free;
	uint32_t bounce_free_count;
	uint32_t bounce_size;
	uint32_t bounce_blocks;
	void *bounce_mem;
	struct sl_poller *poller;
	bool poller_active;
	bool stats_on;
	/** The io_channel was destroyed; free once in_use drops to 0. */
	bool zombie;
	/**
	 * Tick count of the completion batch being run (a drain of done_ios, or one
	 * completion from a module's poller), 0 outside of one. Statistics stamp both the
	 * batch's completions and the I/O their callbacks submit with it, so a batch
	 * costs one tick read however many I/O it holds.
	 */
	uint64_t poll_now;
	struct sl_bdev_io_stat stat;
};

/** Context of the bdev io_device's channels. */
struct bdev_channel_ctx {
	struct bdev_channel *bch;
};

extern pthread_mutex_t g_bdev_mutex;
extern struct sl_bdev_opts g_bdev_opts;
extern void *g_bdev_zero_buf;

static inline struct bdev_channel *
bdev_channel_get(struct sl_io_channel *ch)
{
	return ((struct bdev_channel_ctx *)sl_io_channel_get_ctx(ch))->bch;
}

/* bdev_channel.c */
int bdev_channel_create(void *io_device, void *ctx_buf);
void bdev_channel_destroy(void *io_device, void *ctx_buf);
/** Resume the channel's paused poller (through bdev_channel_kick). */
void bdev_channel_resume(struct bdev_channel *bch);

/** Make sure the channel's poller runs (deferred completions, retries). */
static inline void
bdev_channel_kick(struct bdev_channel *bch)
{
	/* Inline: on a busy channel the poller is already running, and this is a load. */
	if (sl_unlikely(!bch->poller_active)) {
		bdev_channel_resume(bch);
	}
}

/** \return the tick count to stamp an I/O with: the batch's, or a fresh one. */
static inline uint64_t
bdev_channel_now(const struct bdev_channel *bch)
{
	return bch->poll_now != 0 ? bch->poll_now : sl_get_ticks();
}
/** Free a zombie channel whose last I/O completed. */
void bdev_channel_free(struct bdev_channel *bch);

/* bdev_io.c */
/** Fail every I/O of the channel waiting in the core's queues with status. */
void bdev_channel_abort_queued(struct bdev_channel *bch, int status);
/** Run the channel's deferred completions queued so far. \return how many ran. */
int bdev_channel_drain_done(struct bdev_channel *bch);
/** Resubmit up to max I/O the module refused with -ENOMEM. */
void bdev_channel_retry_nomem(struct bdev_channel *bch, uint32_t max);

/* bdev.c */
/** A channel struct of bdev was freed (any thread). */
void bdev_channel_retired(struct sl_bdev *bdev, const struct sl_bdev_io_stat *stat);
/** \return the bdev with that name or alias; caller holds g_bdev_mutex. */
struct sl_bdev *bdev_get_by_name_locked(const char *name);

/* Statistics: accounted inline on the completion path, summed by bdev_stats.c. */
static inline void
bdev_stat_latency(uint64_t *sum, uint64_t *max, uint64_t *min, uint64_t ticks)
{
	*sum += ticks;
	if (ticks > *max) {
		*max = ticks;
	}
	if (ticks < *min) {
		*min = ticks;
	}
}

/** Account a user-visible completion in the channel's statistics. */
static inline void
bdev_stat_account(struct bdev_channel *bch, struct sl_bdev_io *io, int status)
{
	struct sl_bdev_io_stat *s = &bch->stat;
	uint64_t ticks = bdev_channel_now(bch) - io->internal.submit_tsc;
	uint64_t bytes = sl_bdev_io_get_nbytes(io);

	if (sl_unlikely(status != 0)) {
		s->num_io_errors++;
		return;
	}
	switch (io->internal.user_type) {
	case SL_BDEV_IO_TYPE_READ:
		s->num_read_ops++;
		s->bytes_read += bytes;
		bdev_stat_latency(&s->read_latency_ticks, &s->max_read_latency_ticks,
				  &s->min_read_latency_ticks, ticks);
		break;
	case SL_BDEV_IO_TYPE_WRITE:
		s->num_write_ops++;
		s->bytes_written += bytes;
		bdev_stat_latency(&s->write_latency_ticks, &s->max_write_latency_ticks,
				  &s->min_write_latency_ticks, ticks);
		break;
	case SL_BDEV_IO_TYPE_UNMAP:
		s->num_unmap_ops++;
		s->bytes_unmapped += bytes;
		bdev_stat_latency(&s->unmap_latency_ticks, &s->max_unmap_latency_ticks,
				  &s->min_unmap_latency_ticks, ticks);
		break;
	case SL_BDEV_IO_TYPE_FLUSH:
		s->num_flush_ops++;
		break;
	case SL_BDEV_IO_TYPE_WRITE_ZEROES:
		s->num_write_zeroes_ops++;
		s->bytes_zeroed += bytes;
		break;
	case SL_BDEV_IO_TYPE_RESET:
		s->num_reset_ops++;
		break;
	default:
		break;
	}
}

/* bdev_rpc.c */
/** Append bdev_set_options to the subsystem config if options differ from defaults. */
void bdev_write_opts_json(json_t *config);
/** \return the bdev_get_bdevs object of one bdev (new reference). */
json_t *bdev_dump_info_json(struct sl_bdev *bdev);

#endif /* SLUICE_BDEV_INTERNAL_H */
