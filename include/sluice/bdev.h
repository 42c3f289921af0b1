/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/** \file
 * The block layer, as seen by its users: exports (NBD, FUSE, NVMe-oF), tools
 * (bdevperf) and the daemon.
 *
 * A bdev is a named block device provided by a module (malloc, null, aio, nvme, ...).
 * Users find it by name, open a descriptor on it (read-only or read-write, with an
 * event callback for hot removal), take a per-thread I/O channel, and submit I/O.
 *
 * I/O model:
 * - Every submit function takes (cb, cb_arg). When it returns 0 the callback fires
 *   exactly once, on the submitting thread, never from inside the submit call itself
 *   (so a callback may resubmit without growing the stack). Errors found before the
 *   module sees the I/O (bad range, read-only descriptor, bdev being removed) are
 *   delivered the same way, through the callback.
 * - A submit returns -ENOMEM, and the callback does NOT fire, only when the channel's
 *   pool of I/O descriptors is empty. Queue with sl_bdev_queue_io_wait() and submit
 *   again from its callback.
 * - The callback receives 0 or a negative errno (see sl_bdev_io_done_cb). The I/O
 *   descriptor has been returned to the pool before the callback runs, so the
 *   callback can submit the next I/O at once.
 * - Offsets and lengths are in bytes and must be multiples of the block size; the
 *   *_blocks variants take blocks. Buffers need no alignment: the core bounces
 *   through aligned DMA-safe memory when a module needs it.
 * - Large I/O is split by the core (module max transfer, optimal boundary), writes of
 *   zeroes are emulated with writes when a module lacks them, and -ENOMEM from a
 *   module is queued and retried: the user sees none of this.
 * - The I/O path allocates nothing and takes no locks. With statistics on (default)
 *   it reads the tick counter once per completion batch, and an I/O submitted from a
 *   completion callback reuses that batch's tick (rdtsc:
 *   ~7 ns on bare metal, ~25 ns in some VMs); set sl_bdev_opts.enable_stats = false
 *   (bdev_set_options) to drop it, e.g. for peak-IOPS benchmarks.
 *
 * Control functions (register, open, close, RPC helpers) run on the app thread unless
 * said otherwise; open and close may run on any thread (the descriptor then belongs
 * to that thread: its event callback runs there).
 */
#ifndef SLUICE_BDEV_H
#define SLUICE_BDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/uio.h>

struct sl_bdev;
struct sl_bdev_desc;
struct sl_io_channel;

/** Longest bdev name or alias, including the terminating NUL. */
#define SL_BDEV_MAX_NAME_LEN 256
/** Length of a UUID string with its NUL ("xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"). */
#define SL_BDEV_UUID_STR_LEN 37

/** I/O types, as used for sl_bdev_io_type_supported() and statistics. */
enum sl_bdev_io_type {
	SL_BDEV_IO_TYPE_INVALID = 0,
	SL_BDEV_IO_TYPE_READ,
	SL_BDEV_IO_TYPE_WRITE,
	SL_BDEV_IO_TYPE_FLUSH,
	SL_BDEV_IO_TYPE_UNMAP,
	SL_BDEV_IO_TYPE_WRITE_ZEROES,
	SL_BDEV_IO_TYPE_RESET,
	SL_BDEV_NUM_IO_TYPES,
};

/** Events delivered to a descriptor's event callback. */
enum sl_bdev_event_type {
	/**
	 * The bdev is being removed (sl_bdev_unregister, bdev_*_delete, device gone).
	 * New I/O on it fails with -ENODEV; close the descriptor (after your in-flight
	 * I/O completes, or at once: in-flight I/O still completes through its
	 * callbacks). Removal finishes when every descriptor is closed.
	 */
	SL_BDEV_EVENT_REMOVE = 0,
	/** The block count changed (sl_bdev_get_num_blocks gives the new one). */
	SL_BDEV_EVENT_RESIZE,
};

/**
 * A descriptor's event callback; runs on the thread that opened the descriptor.
 * \param type what happened.
 * \param bdev the bdev.
 * \param event_ctx the ctx given to sl_bdev_open().
 */
typedef void (*sl_bdev_event_cb)(enum sl_bdev_event_type type, struct sl_bdev *bdev,
				 void *event_ctx);

/**
 * Completion of an I/O.
 * \param cb_arg the cb_arg given at submit.
 * \param status 0 on success, or a negative errno:
 *	-EINVAL (range outside the bdev, or not a multiple of the block size),
 *	-EBADF (write-type I/O on a read-only descriptor),
 *	-ENODEV (the bdev is being removed),
 *	-ENOTSUP (the bdev does not support the type, e.g. unmap, or write-zeroes with
 *	 SL_BDEV_IO_FLAG_NO_FALLBACK),
 *	-ECANCELED (dropped from a queue by a reset),
 *	-EIO or another errno from the module (device error).
 */
typedef void (*sl_bdev_io_done_cb)(void *cb_arg, int status);

/** Completion of an asynchronous control operation: rc 0 or -errno. */
typedef void (*sl_bdev_op_done_cb)(void *cb_arg, int rc);

/** Flags for the *_ext submit functions. */
enum sl_bdev_io_flag {
	/** Write: the data is durable when the callback fires (emulated with a flush). */
	SL_BDEV_IO_FLAG_FUA = 1u << 0,
	/** Write-zeroes: fail with -ENOTSUP instead of emulating with writes (NBD fast-zero). */
	SL_BDEV_IO_FLAG_NO_FALLBACK = 1u << 1,
};

/* ---- Library options and life cycle ------------------------------------------ */

/** Options of the block layer; set before channels exist. */
struct sl_bdev_opts {
	/**
	 * I/O descriptors per (bdev, thread) channel: the most I/O (plus split children)
	 * a thread can have in flight on one bdev before submits return -ENOMEM.
	 */
	uint32_t bdev_io_per_channel;
	/** Bytes in each bounce buffer; larger bounced I/O is split to this size. */
	uint32_t bounce_buf_size;
	/** Bounce buffers per channel, for bdevs that need aligned or DMA-safe memory. */
	uint32_t bounce_buf_count;
	/** Keep per-channel statistics including latency (one tick read per I/O). */
	bool enable_stats;
};

/** Fill opts with the current options (defaults: 1024, 128 KiB, 16, true). */
void sl_bdev_get_opts(struct sl_bdev_opts *opts);
/**
 * Set the options. Channels created later use them.
 * \return 0, or -EINVAL (a zero pool size, or a bounce size that is not a power of two
 * of at least 4 KiB).
 */
int sl_bdev_set_opts(const struct sl_bdev_opts *opts);

/**
 * Initialise the block layer and every registered module (module_init in
 * registration order). The "bdev" subsystem calls this; tests and tools may call it
 * directly on their app thread.
 * \return 0 or the first module's -errno (modules already initialised are finished).
 */
int sl_bdev_initialize(void);
/**
 * Unregister every bdev (as hot removal: descriptors get SL_BDEV_EVENT_REMOVE),
 * wait for their destruction, then finish every module. cb runs on the calling
 * thread, which must be the app thread.
 */
void sl_bdev_finish(sl_bdev_op_done_cb cb, void *cb_arg);

/* ---- Finding bdevs and their properties --------------------------------------- */

/** \return the bdev with that name or alias, or NULL. */
struct sl_bdev *sl_bdev_get_by_name(const char *name);
/** \return the first registered bdev, or NULL. */
struct sl_bdev *sl_bdev_first(void);
/** \return the bdev after prev, or NULL. */
struct sl_bdev *sl_bdev_next(struct sl_bdev *prev);

/** \return the bdev's name. */
const char *sl_bdev_get_name(const struct sl_bdev *bdev);
/** \return the product name ("Malloc disk", "Null disk", ...). */
const char *sl_bdev_get_product_name(const struct sl_bdev *bdev);
/** \return the name of the module that provides the bdev. */
const char *sl_bdev_get_module_name(const struct sl_bdev *bdev);
/** \return the logical block size in bytes (a power of two, >= 512). */
uint32_t sl_bdev_get_block_size(const struct sl_bdev *bdev);
/** \return the number of blocks. */
uint64_t sl_bdev_get_num_blocks(const struct sl_bdev *bdev);
/** \return the size in bytes (block size times block count). */
uint64_t sl_bdev_get_size(const struct sl_bdev *bdev);
/** \return the 16 bytes of the bdev's UUID (never all zero once registered). */
const uint8_t *sl_bdev_get_uuid(const struct sl_bdev *bdev);
/** Format the UUID as lower-case text into buf (SL_BDEV_UUID_STR_LEN bytes). */
void sl_bdev_get_uuid_str(const struct sl_bdev *bdev, char *buf, size_t len);
/** \return the buffer alignment the module needs, in bytes (1 = none). */
uint32_t sl_bdev_get_buf_align(const struct sl_bdev *bdev);
/** \return the optimal I/O boundary in blocks (0 = none). */
uint32_t sl_bdev_get_optimal_io_boundary(const struct sl_bdev *bdev);
/** \return the module's largest read/write in blocks (0 = unlimited; the core splits). */
uint32_t sl_bdev_get_max_transfer_blocks(const struct sl_bdev *bdev);
/** \return whether the bdev has a volatile write cache (flush matters). */
bool sl_bdev_has_write_cache(const struct sl_bdev *bdev);
/**
 * \return whether I/O of that type works on the bdev: natively, or emulated by the
 * core (write-zeroes over writes, FUA over flush). Unmap and flush are never
 * emulated. Use sl_bdev_io_type_supported_native() to tell the two apart.
 */
bool sl_bdev_io_type_supported(struct sl_bdev *bdev, enum sl_bdev_io_type type);
/** \return whether the module itself implements that I/O type. */
bool sl_bdev_io_type_supported_native(struct sl_bdev *bdev, enum sl_bdev_io_type type);
/** \return the name of the claim owner, or NULL if the bdev is not claimed. */
const char *sl_bdev_get_claim_owner(const struct sl_bdev *bdev);
/**
 * Call fn for each alias of the bdev (not its name).
 * \return the number of aliases.
 */
int sl_bdev_for_each_alias(const struct sl_bdev *bdev, void (*fn)(const char *alias, void *ctx),
			   void *ctx);
/** \return the name of an I/O type ("read", "write", "unmap", ...). */
const char *sl_bdev_io_type_name(enum sl_bdev_io_type type);

/* ---- Descriptors and claims --------------------------------------------------- */

/**
 * Open a descriptor on a bdev. The descriptor belongs to the calling thread: its
 * event callback runs there, and it must be closed there.
 * \param name bdev name or alias.
 * \param write whether write-type I/O (write, unmap, write-zeroes) is allowed.
 * \param event_cb called on removal and resize; required (a user must be able to let
 *	go of a bdev being removed).
 * \param event_ctx passed to event_cb.
 * \param desc receives the descriptor.
 * \return 0, -EINVAL (no event_cb or not on a thread), -ENODEV (no such bdev, or it is
 * being removed), -EPERM (write requested on a bdev claimed by another owner),
 * -ENOMEM.
 */
int sl_bdev_open(const char *name, bool write, sl_bdev_event_cb event_cb, void *event_ctx,
		 struct sl_bdev_desc **desc);
/**
 * Close a descriptor on its thread. Releases the claim the descriptor holds. Put the
 * channels you took first; in-flight I/O still completes through its callbacks.
 */
void sl_bdev_close(struct sl_bdev_desc *desc);
/** \return the bdev of a descriptor. */
struct sl_bdev *sl_bdev_desc_get_bdev(struct sl_bdev_desc *desc);

/**
 * Claim the bdev exclusively for owner (an export, a virtual bdev). The descriptor
 * must be writable. Other descriptors can still read; opening it for write, and
 * claiming it, fail while the claim stands. Released by sl_bdev_release_claim() or
 * when the descriptor closes.
 * \param owner a name for errors and bdev_get_bdevs ("nbd /dev/nbd0"), copied.
 * \return 0, -EBADF (read-only descriptor), -EPERM (claimed by someone else; the log
 * line names the owner).
 */
int sl_bdev_claim(struct sl_bdev_desc *desc, const char *owner);
/** Release the claim held through desc (no-op if it holds none). */
void sl_bdev_release_claim(struct sl_bdev_desc *desc);

/* ---- I/O channels ------------------------------------------------------------- */

/**
 * Get the calling thread's I/O channel to the descriptor's bdev (shared by every
 * descriptor of that bdev on the thread). Put it with sl_put_io_channel() (thread.h)
 * on the same thread before closing the descriptor.
 * \return the channel, or NULL (not on a thread, bdev removed, out of memory).
 */
struct sl_io_channel *sl_bdev_get_io_channel(struct sl_bdev_desc *desc);

/* ---- I/O ---------------------------------------------------------------------- */

/** Read nbytes at offset into buf. \return 0 (cb will fire) or -ENOMEM (it will not). */
int sl_bdev_read(struct sl_bdev_desc *desc, struct sl_io_channel *ch, void *buf, uint64_t offset,
		 uint64_t nbytes, sl_bdev_io_done_cb cb, void *cb_arg);
/** Read num_blocks at offset_blocks into buf. \return 0 or -ENOMEM. */
int sl_bdev_read_blocks(struct sl_bdev_desc *desc, struct sl_io_channel *ch, void *buf,
			uint64_t offset_blocks, uint64_t num_blocks, sl_bdev_io_done_cb cb,
			void *cb_arg);
/**
 * Vectored read. The iov array must stay valid until the callback; its total length
 * must be at least nbytes.
 * \return 0 or -ENOMEM.
 */
int sl_bdev_readv(struct sl_bdev_desc *desc, struct sl_io_channel *ch, struct iovec *iov,
		  int iovcnt, uint64_t offset, uint64_t nbytes, sl_bdev_io_done_cb cb,
		  void *cb_arg);
/** Vectored read in blocks. \return 0 or -ENOMEM. */
int sl_bdev_readv_blocks(struct sl_bdev_desc *desc, struct sl_io_channel *ch, struct iovec *iov,
			 int iovcnt, uint64_t offset_blocks, uint64_t num_blocks,
			 sl_bdev_io_done_cb cb, void *cb_arg);

/** Write nbytes from buf at offset. \return 0 or -ENOMEM. */
int sl_bdev_write(struct sl_bdev_desc *desc, struct sl_io_channel *ch, const void *buf,
		  uint64_t offset, uint64_t nbytes, sl_bdev_io_done_cb cb, void *cb_arg);
/** Write in blocks. \return 0 or -ENOMEM. */
int sl_bdev_write_blocks(struct sl_bdev_desc *desc, struct sl_io_channel *ch, const void *buf,
			 uint64_t offset_blocks, uint64_t num_blocks, sl_bdev_io_done_cb cb,
			 void *cb_arg);
/** Vectored write; iov stays valid until the callback. \return 0 or -ENOMEM. */
int sl_bdev_writev(struct sl_bdev_desc *desc, struct sl_io_channel *ch, struct iovec *iov,
		   int iovcnt, uint64_t offset, uint64_t nbytes, sl_bdev_io_done_cb cb,
		   void *cb_arg);
/** Vectored write in blocks. \return 0 or -ENOMEM. */
int sl_bdev_writev_blocks(struct sl_bdev_desc *desc, struct sl_io_channel *ch, struct iovec *iov,
			  int iovcnt, uint64_t offset_blocks, uint64_t num_blocks,
			  sl_bdev_io_done_cb cb, void *cb_arg);
/**
 * Vectored write with flags (SL_BDEV_IO_FLAG_FUA: durable at completion; the core
 * issues a flush after the write when the bdev has a write cache).
 * \return 0 or -ENOMEM.
 */
int sl_bdev_writev_ext(struct sl_bdev_desc *desc, struct sl_io_channel *ch, struct iovec *iov,
		       int iovcnt, uint64_t offset, uint64_t nbytes, uint32_t flags,
		       sl_bdev_io_done_cb cb, void *cb_arg);

/**
 * Make written data in the range durable; nbytes 0 means the whole bdev. On a bdev
 * without a write cache whose module has no flush, completes at once with 0.
 * \return 0 or -ENOMEM.
 */
int sl_bdev_flush(struct sl_bdev_desc *desc, struct sl_io_channel *ch, uint64_t offset,
		  uint64_t nbytes, sl_bdev_io_done_cb cb, void *cb_arg);
/**
 * Discard a range (trim). Afterwards the range reads as zeroes on malloc and null;
 * other modules may return old data. Fails with -ENOTSUP where unsupported.
 * \return 0 or -ENOMEM.
 */
int sl_bdev_unmap(struct sl_bdev_desc *desc, struct sl_io_channel *ch, uint64_t offset,
		  uint64_t nbytes, sl_bdev_io_done_cb cb, void *cb_arg);
/** Unmap in blocks. \return 0 or -ENOMEM. */
int sl_bdev_unmap_blocks(struct sl_bdev_desc *desc, struct sl_io_channel *ch,
			 uint64_t offset_blocks, uint64_t num_blocks, sl_bdev_io_done_cb cb,
			 void *cb_arg);
/** Make a range read as zeroes (emulated with writes if needed). \return 0 or -ENOMEM. */
int sl_bdev_write_zeroes(struct sl_bdev_desc *desc, struct sl_io_channel *ch, uint64_t offset,
			 uint64_t nbytes, sl_bdev_io_done_cb cb, void *cb_arg);
/** Write-zeroes in blocks. \return 0 or -ENOMEM. */
int sl_bdev_write_zeroes_blocks(struct sl_bdev_desc *desc, struct sl_io_channel *ch,
				uint64_t offset_blocks, uint64_t num_blocks, sl_bdev_io_done_cb cb,
				void *cb_arg);
/**
 * Write-zeroes with flags (SL_BDEV_IO_FLAG_NO_FALLBACK: -ENOTSUP rather than emulate).
 * \return 0 or -ENOMEM.
 */
int sl_bdev_write_zeroes_ext(struct sl_bdev_desc *desc, struct sl_io_channel *ch, uint64_t offset,
			     uint64_t nbytes, uint32_t flags, sl_bdev_io_done_cb cb, void *cb_arg);
/**
 * Reset the bdev as seen from this channel: I/O of this channel that waits in the
 * core's queues (module -ENOMEM retries, bounce waits) fails with -ECANCELED, then the
 * module resets if it supports it. I/O already in the module completes normally.
 * \return 0 or -ENOMEM.
 */
int sl_bdev_reset(struct sl_bdev_desc *desc, struct sl_io_channel *ch, sl_bdev_io_done_cb cb,
		  void *cb_arg);

/**
 * A waiter for a free I/O descriptor, owned by the caller (no allocation). Fill
 * bdev, cb_fn and cb_arg; the link is the core's.
 */
struct sl_bdev_io_wait_entry {
	struct sl_bdev *bdev;
	void (*cb_fn)(void *cb_arg);
	void *cb_arg;
	TAILQ_ENTRY(sl_bdev_io_wait_entry) link;
};

/**
 * Wait for an I/O descriptor after a submit returned -ENOMEM: entry->cb_fn runs on
 * this thread once one is free on the channel; submit again from there (it may
 * return -ENOMEM again if someone else took it: queue again).
 * \return 0, or -EINVAL (entry->bdev is not the channel's bdev, or the channel's pool
 * is not empty: submit instead).
 */
int sl_bdev_queue_io_wait(struct sl_bdev *bdev, struct sl_io_channel *ch,
			  struct sl_bdev_io_wait_entry *entry);

/* ---- Allocation (block status, SEEK_DATA/SEEK_HOLE) --------------------------- */

/** Extent flags; the values are NBD's base:allocation flags. */
enum sl_bdev_extent_flag {
	/** Not allocated: no storage behind the range (a hole). */
	SL_BDEV_EXTENT_HOLE = 1u << 0,
	/** Reads as zeroes. */
	SL_BDEV_EXTENT_ZERO = 1u << 1,
};

/** One extent of a range: offset and length in bytes, flags from sl_bdev_extent_flag. */
struct sl_bdev_extent {
	uint64_t offset;
	uint64_t length;
	uint32_t flags;
};

/**
 * Describe the allocation of a range, synchronously, from any thread. Extents are
 * contiguous from offset, in order, adjacent ones have different flags, and together
 * cover at most nbytes (fewer when max_extents runs out: ask again from the end of
 * the last). A module that cannot tell reports one data extent (flags 0) for the
 * whole range. The answer may be stale with respect to I/O in flight (NBD's
 * block status and SEEK_HOLE are advisory in the same way).
 * \param offset,nbytes the range, in bytes, inside the bdev (any alignment; extents are
 *	reported at the module's granularity, clipped to the range).
 * \return the number of extents filled (>= 1), or -EINVAL (range outside the bdev, or
 * max_extents 0), -ENODEV (bdev being removed), -errno from the module.
 */
int sl_bdev_get_allocation(struct sl_bdev_desc *desc, uint64_t offset, uint64_t nbytes,
			   struct sl_bdev_extent *extents, uint32_t max_extents);

/* ---- Statistics --------------------------------------------------------------- */

/**
 * I/O statistics of a bdev or a channel, SPDK's bdev_get_iostat fields. Latencies are
 * in ticks (sl_get_ticks_hz per second), submit to completion as the user sees it;
 * min is UINT64_MAX while no I/O of the type completed.
 */
struct sl_bdev_io_stat {
	uint64_t bytes_read;
	uint64_t num_read_ops;
	uint64_t bytes_written;
	uint64_t num_write_ops;
	uint64_t bytes_unmapped;
	uint64_t num_unmap_ops;
	uint64_t bytes_copied;
	uint64_t num_copy_ops;
	uint64_t read_latency_ticks;
	uint64_t max_read_latency_ticks;
	uint64_t min_read_latency_ticks;
	uint64_t write_latency_ticks;
	uint64_t max_write_latency_ticks;
	uint64_t min_write_latency_ticks;
	uint64_t unmap_latency_ticks;
	uint64_t max_unmap_latency_ticks;
	uint64_t min_unmap_latency_ticks;
	uint64_t copy_latency_ticks;
	uint64_t max_copy_latency_ticks;
	uint64_t min_copy_latency_ticks;
	/** Flushes, write-zeroes and resets (not in SPDK's output; ours). */
	uint64_t num_flush_ops;
	uint64_t num_write_zeroes_ops;
	uint64_t bytes_zeroed;
	uint64_t num_reset_ops;
	/** I/O that completed with an error, by the user-visible status. */
	uint64_t num_io_errors;
};

/** Zero a stat (min latencies to UINT64_MAX). */
void sl_bdev_io_stat_init(struct sl_bdev_io_stat *stat);
/** Add src into dst (sums; min and max combined). */
void sl_bdev_io_stat_add(struct sl_bdev_io_stat *dst, const struct sl_bdev_io_stat *src);

/**
 * Copy the statistics of one channel (the calling thread's), synchronously.
 * \param ch a channel from sl_bdev_get_io_channel().
 */
void sl_bdev_channel_get_io_stat(struct sl_io_channel *ch, struct sl_bdev_io_stat *stat);

/** Completion of sl_bdev_get_io_stat: rc 0 or -errno; stat is the caller's. */
typedef void (*sl_bdev_io_stat_cb)(struct sl_bdev *bdev, struct sl_bdev_io_stat *stat, void *cb_arg,
				   int rc);
/**
 * Aggregate the statistics of every channel of the bdev, and of channels already
 * destroyed, into stat (visiting each channel on its thread). Must be called on a
 * thread; cb runs on it.
 */
void sl_bdev_get_io_stat(struct sl_bdev *bdev, struct sl_bdev_io_stat *stat, sl_bdev_io_stat_cb cb,
			 void *cb_arg);

#endif /* SLUICE_BDEV_H */
