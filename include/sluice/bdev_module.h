/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/** \file
 * The block layer, as seen by the modules that provide bdevs (malloc, null, aio,
 * uring, nvme, ...).
 *
 * A module:
 * 1. defines a const struct sl_bdev_module and registers it with
 *    SL_BDEV_MODULE_REGISTER (link its library whole);
 * 2. embeds a struct sl_bdev in its own per-device struct, fills the public fields
 *    (name, product_name, blocklen, blockcnt, limits, ctxt, fn_table, module) and
 *    calls sl_bdev_register();
 * 3. serves I/O in fn_table->submit_request() on the module's own per-thread channel
 *    (fn_table->get_io_channel), and finishes each I/O exactly once with
 *    sl_bdev_io_complete(). Completing inside submit_request is fine: the core
 *    defers the user's callback so it never runs inside the user's submit call.
 *    Completing with -ENOMEM means "out of resources": the core queues the I/O and
 *    submits it again after another I/O of the channel completes (or on the next
 *    poll when none is in flight).
 * 4. removes a bdev with sl_bdev_unregister(); the core raises SL_BDEV_EVENT_REMOVE on
 *    every descriptor, waits until all are closed and all I/O is done, then calls
 *    fn_table->destruct().
 *
 * What the core does for the module, so it need not: range checks, splitting to
 * max_transfer_blocks / max_segments / optimal_io_boundary / max_unmap_blocks /
 * max_write_zeroes_blocks, bouncing misaligned or non-DMA buffers (required_alignment,
 * needs_dma), write-zeroes emulation with writes, FUA emulation with a flush,
 * statistics, -ENOMEM retry, and hot-remove bookkeeping. A module sees only I/O
 * that fits its declared limits.
 *
 * Minimal example (a RAM disk that completes inline):
 * \code
 * static void ram_submit(struct sl_io_channel *ch, struct sl_bdev_io *io)
 * {
 *	struct ram_disk *d = io->bdev->ctxt;
 *	uint64_t off = io->offset_blocks * io->bdev->blocklen;
 *	switch (io->type) {
 *	case SL_BDEV_IO_TYPE_READ:  copy_to_iovs(io->iovs, io->iovcnt, d->mem + off); break;
 *	case SL_BDEV_IO_TYPE_WRITE: copy_from_iovs(d->mem + off, io->iovs, io->iovcnt); break;
 *	default: break;
 *	}
 *	sl_bdev_io_complete(io, 0);
 * }
 * \endcode
 * See drivers/bdev/null/bdev_null.c and drivers/bdev/malloc/bdev_malloc.c.
 */
#ifndef SLUICE_BDEV_MODULE_H
#define SLUICE_BDEV_MODULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/uio.h>

#include <jansson.h>

#include "sluice/bdev.h"

struct sl_bdev_io;
struct sl_bdev_priv;
struct bdev_channel;

/* ---- Modules ------------------------------------------------------------------ */

/** A bdev module: one per driver (malloc, null, aio, ...). */
struct sl_bdev_module {
	/** Short name ("malloc"); also the claim owner name of sl_bdev_module_claim_bdev. */
	const char *name;
	/**
	 * Initialise module-wide state, on the app thread, at sl_bdev_initialize().
	 * NULL = nothing to do. \return 0 or -errno (fails the bdev subsystem start).
	 */
	int (*module_init)(void);
	/**
	 * Free module-wide state, at sl_bdev_finish(), after every bdev (of every module)
	 * has been destructed. NULL = nothing to do.
	 */
	void (*module_fini)(void);
	/**
	 * Append module-wide option RPCs ({"method","params"}) to the config array; the
	 * per-bdev create RPCs come from fn_table->write_config_json. NULL = none.
	 */
	void (*config_json)(json_t *config);
	/**
	 * \return bytes of per-I/O context the module wants (sl_bdev_io_get_driver_ctx),
	 * queried once at sl_bdev_initialize(). NULL = 0.
	 */
	int (*get_ctx_size)(void);
	/** The core's list link. */
	TAILQ_ENTRY(sl_bdev_module) link;
};

/** Add a module to the list (constructor time; use SL_BDEV_MODULE_REGISTER). */
void sl_bdev_module_list_add(struct sl_bdev_module *module);
/** \return the registered module with that name, or NULL. */
struct sl_bdev_module *sl_bdev_module_find(const char *name);

/**
 * Register a module from a constructor. NAME is an identifier (malloc); MODULE the
 * address of its struct sl_bdev_module.
 */
#define SL_BDEV_MODULE_REGISTER(NAME, MODULE)                                         \
	__attribute__((constructor)) static void sl_bdev_module_register_##NAME(void) \
	{                                                                             \
		sl_bdev_module_list_add(MODULE);                                      \
	}

/* ---- The operations of a bdev ------------------------------------------------- */

/** What a module implements for its bdevs; const, designated initialisers. */
struct sl_bdev_fn_table {
	/**
	 * Free the device, after the last descriptor closed and the last I/O completed
	 * (app thread). \return 0 when done, or a positive value when it finishes later
	 * by calling sl_bdev_destruct_done(), or -errno (logged; unregister goes on).
	 */
	int (*destruct)(void *ctxt);
	/**
	 * Start an I/O on the module channel ch (the one get_io_channel gave on this
	 * thread). Finish it with sl_bdev_io_complete(), now or later on this thread.
	 */
	void (*submit_request)(struct sl_io_channel *ch, struct sl_bdev_io *io);
	/**
	 * \return whether the module implements the type. READ and WRITE are
	 * assumed; FLUSH, UNMAP, WRITE_ZEROES and RESET are asked for.
	 */
	bool (*io_type_supported)(void *ctxt, enum sl_bdev_io_type type);
	/** \return a reference to the calling thread's module channel (sl_get_io_channel). */
	struct sl_io_channel *(*get_io_channel)(void *ctxt);
	/**
	 * Add the module's entry to a bdev_get_bdevs "driver_specific" object, e.g.
	 * {"aio": {"filename": ...}}. NULL = none. \return 0 or -errno.
	 */
	int (*dump_info_json)(void *ctxt, json_t *driver_specific);
	/**
	 * Append to config (a JSON array) the {"method","params"} object that recreates
	 * this bdev, in SPDK's format (bdev_malloc_create with name, num_blocks,
	 * block_size, uuid, ...). NULL = not saved.
	 */
	void (*write_config_json)(struct sl_bdev *bdev, json_t *config);
	/**
	 * Describe allocation of [offset, offset + nbytes) in bytes; see
	 * sl_bdev_get_allocation() for the rules (contiguous extents from offset, at most
	 * max_extents, may cover less than asked; the core clips and merges). Called on
	 * any thread, concurrently with I/O. NULL = all data.
	 * \return extents filled (>= 1) or -errno.
	 */
	int (*get_allocation)(void *ctxt, uint64_t offset, uint64_t nbytes,
			      struct sl_bdev_extent *extents, uint32_t max_extents);
};

/* ---- The bdev ----------------------------------------------------------------- */

/**
 * A block device, embedded in the module's device struct. The module fills the
 * fields above "core" before sl_bdev_register() and does not change them afterwards
 * (except blockcnt through sl_bdev_notify_blockcnt_change). Zero means "no limit" for
 * every limit.
 */
struct sl_bdev {
	/** Unique name; the module owns the string, which must outlive the bdev. */
	char *name;
	/** Product name for bdev_get_bdevs ("Malloc disk"); a static string. */
	const char *product_name;
	/** Logical block size in bytes: a power of two, >= 512. */
	uint32_t blocklen;
	/** Number of blocks (> 0). */
	uint64_t blockcnt;
	/** UUID; all zero = the core generates a random one at register. */
	uint8_t uuid[16];
	/** Buffer alignment the module needs, bytes (power of two; 0 or 1 = none). */
	uint32_t required_alignment;
	/** Buffers handed to the module must be DMA-safe (sl_vtophys works); else bounced. */
	bool needs_dma;
	/** Volatile write cache: flush matters, and FUA needs a flush unless fua is set. */
	bool write_cache;
	/** The module honours SL_BDEV_IO_FLAG_FUA on writes itself. */
	bool fua;
	/** Optimal I/O boundary in blocks (power of two not required). */
	uint32_t optimal_io_boundary;
	/** Split read/write at optimal_io_boundary. */
	bool split_on_optimal_io_boundary;
	/** Largest read/write in blocks. */
	uint32_t max_transfer_blocks;
	/** Most iovec entries in one read/write (capped by the core at SL_BDEV_IO_MAX_IOVS when
	 * splitting). */
	uint32_t max_segments;
	/** Largest unmap in blocks. */
	uint32_t max_unmap_blocks;
	/** Largest native write-zeroes in blocks. */
	uint32_t max_write_zeroes_blocks;
	/** Module context, given back to every fn_table call. */
	void *ctxt;
	/** The operations. */
	const struct sl_bdev_fn_table *fn_table;
	/** The module. */
	struct sl_bdev_module *module;

	/** core: private state, allocated at register. */
	struct sl_bdev_priv *priv;
	/** core: set when unregister starts (read on the I/O path). */
	volatile bool removing;
	/** core: shift of blocklen. */
	uint8_t blocklen_shift;
	/** core: read/write must go through the splitter (limits are set). */
	bool rw_split_check;
	/** core: the bdev may need bounce buffers (required_alignment > 1 or needs_dma). */
	bool bounce_check;
	/** core: native support, indexed by enum sl_bdev_io_type (cached at register). */
	bool io_native[SL_BDEV_NUM_IO_TYPES];
	/** core: list link. */
	TAILQ_ENTRY(sl_bdev) link;
};

/**
 * Register a bdev. Checks the fields, generates a UUID if none, and makes it
 * visible to sl_bdev_get_by_name(). App thread.
 * \return 0, -EINVAL (no name, name too long, blocklen not a power of two >= 512,
 * blockcnt 0 or size overflowing, alignment not a power of two, no fn_table/module,
 * bdev_io pool not initialised), -EEXIST (the name or UUID is taken; logged as
 * "bdev NAME already exists"), -ENOMEM.
 */
int sl_bdev_register(struct sl_bdev *bdev);
/**
 * Unregister a bdev: new opens fail, each open descriptor gets SL_BDEV_EVENT_REMOVE
 * on its thread, new I/O fails with -ENODEV. When every descriptor is closed and every
 * channel's I/O has completed, fn_table->destruct runs, then cb(cb_arg, rc) on the
 * calling thread (app thread). cb may be NULL.
 */
void sl_bdev_unregister(struct sl_bdev *bdev, sl_bdev_op_done_cb cb, void *cb_arg);
/**
 * Find a bdev of module by name and unregister it (for bdev_*_delete RPCs).
 * \return 0 (cb will fire), -ENODEV (no bdev of that name for that module; cb will
 * not fire), -EBUSY (already being removed).
 */
int sl_bdev_unregister_by_name(const char *name, struct sl_bdev_module *module,
			       sl_bdev_op_done_cb cb, void *cb_arg);
/** Finish an asynchronous destruct (destruct returned > 0). \param rc 0 or -errno. */
void sl_bdev_destruct_done(struct sl_bdev *bdev, int rc);

/**
 * Add an alias (another name) to a registered bdev.
 * \return 0, -EINVAL (bad name), -EEXIST (a bdev or alias has that name), -ENOMEM.
 */
int sl_bdev_alias_add(struct sl_bdev *bdev, const char *alias);
/** Remove an alias. \return 0 or -ENOENT. */
int sl_bdev_alias_del(struct sl_bdev *bdev, const char *alias);

/**
 * Change the block count and raise SL_BDEV_EVENT_RESIZE on every descriptor.
 * Shrinking below an open descriptor's use is the user's concern.
 * \return 0 or -EINVAL (0 blocks).
 */
int sl_bdev_notify_blockcnt_change(struct sl_bdev *bdev, uint64_t blockcnt);

/**
 * Claim a bdev for a module (virtual bdevs): as sl_bdev_claim() with the module's
 * name as owner. desc may be NULL, then the claim is tied to no descriptor and lasts
 * until sl_bdev_module_release_bdev().
 * \return 0 or -EPERM (claimed by another owner; logged with the owner's name).
 */
int sl_bdev_module_claim_bdev(struct sl_bdev *bdev, struct sl_bdev_desc *desc,
			      struct sl_bdev_module *module);
/** Release a module claim. */
void sl_bdev_module_release_bdev(struct sl_bdev *bdev);

/* ---- I/O as seen by a module -------------------------------------------------- */

/** Iovec entries a split child can carry (children of larger spans are cut shorter). */
#define SL_BDEV_IO_MAX_IOVS 32

/**
 * One I/O. The module reads the fields of the first block; "internal" belongs to the
 * core. Per-I/O module context of get_ctx_size() bytes follows the struct
 * (sl_bdev_io_get_driver_ctx). Descriptors come from per-channel pools sized at
 * channel creation: nothing is allocated per I/O.
 */
struct sl_bdev_io {
	/** The bdev. */
	struct sl_bdev *bdev;
	/** SL_BDEV_IO_TYPE_*. */
	uint8_t type;
	/** SL_BDEV_IO_FLAG_FUA (writes, only if bdev->fua is set). */
	uint8_t flags;
	/** Number of entries in iovs (read/write); 0 for other types. */
	int iovcnt;
	/** Data buffers (read/write); they cover exactly num_blocks * blocklen bytes. */
	struct iovec *iovs;
	/** First block. */
	uint64_t offset_blocks;
	/** Number of blocks (0 for reset; the whole device for a reset-less flush). */
	uint64_t num_blocks;

	/** The core's state: modules must not touch it. */
	struct {
		struct bdev_channel *ch;
		sl_bdev_io_done_cb cb;
		void *cb_arg;
		uint64_t submit_tsc;
		int status;
		uint8_t user_type;
		uint8_t user_flags;
		bool is_child;
		bool bounced;
		bool emulate_zeroes;
		bool fua_flush;
		STAILQ_ENTRY(sl_bdev_io) link;
		/* Splitting (parent side) */
		struct sl_bdev_io *parent;
		uint64_t split_offset_blocks;
		uint64_t split_remaining_blocks;
		uint32_t split_outstanding;
		uint32_t split_limit_blocks;
		int split_iov_idx;
		size_t split_iov_off;
		/* The user's buffers while the module sees a bounce buffer */
		struct iovec *orig_iovs;
		int orig_iovcnt;
		void *bounce_buf;
		struct iovec bounce_iov;
		struct iovec iov_inline[SL_BDEV_IO_MAX_IOVS];
	} internal;

	/** Module context (get_ctx_size bytes), 64-byte aligned. */
	uint8_t driver_ctx[] __attribute__((aligned(64)));
};

/**
 * Finish an I/O, on the thread it was submitted to the module. Call exactly once.
 * \param status 0, -ENOMEM (queue and retry: not seen by the user), or -errno for
 * the user (-EIO for device errors; -ENOTSUP for unsupported requests).
 */
void sl_bdev_io_complete(struct sl_bdev_io *io, int status);

/** \return the module's per-I/O context. */
static inline void *
sl_bdev_io_get_driver_ctx(struct sl_bdev_io *io)
{
	return io->driver_ctx;
}

/** \return the I/O owning a module context. */
static inline struct sl_bdev_io *
sl_bdev_io_from_driver_ctx(void *ctx)
{
	return (struct sl_bdev_io *)((uint8_t *)ctx - offsetof(struct sl_bdev_io, driver_ctx));
}

/** \return the I/O's length in bytes (num_blocks * blocklen). */
static inline uint64_t
sl_bdev_io_get_nbytes(const struct sl_bdev_io *io)
{
	return io->num_blocks << io->bdev->blocklen_shift;
}

/* ---- Helpers for modules -------------------------------------------------------- */

/**
 * Copy buf into the iovs (at most len bytes). \return bytes copied.
 */
size_t sl_bdev_copy_to_iovs(struct iovec *iovs, int iovcnt, const void *buf, size_t len);
/** Copy from the iovs into buf (at most len bytes). \return bytes copied. */
size_t sl_bdev_copy_from_iovs(void *buf, struct iovec *iovs, int iovcnt, size_t len);
/** Zero the first len bytes covered by the iovs. */
void sl_bdev_zero_iovs(struct iovec *iovs, int iovcnt, size_t len);

/**
 * Parse a UUID string ("xxxxxxxx-xxxx-...") into 16 bytes.
 * \return 0 or -EINVAL.
 */
int sl_bdev_uuid_parse(const char *str, uint8_t uuid[16]);
/** Format 16 bytes as a lower-case UUID string (SL_BDEV_UUID_STR_LEN bytes). */
void sl_bdev_uuid_fmt(const uint8_t uuid[16], char *buf, size_t len);

/**
 * Check a create RPC's geometry and name, for modules' RPC handlers. Messages name the
 * value ("block_size 1000 is not a power of two >= 512").
 * \return 0, -EINVAL (message in err), -EEXIST ("bdev NAME already exists").
 */
int sl_bdev_check_create_params(const char *name, uint64_t num_blocks, uint32_t block_size,
				char *err, size_t errlen);

/**
 * The parameters SPDK's bdev_malloc_create and bdev_null_create share, as their RPC
 * handlers decode them (the strings are the decoder's: the handler frees them).
 */
struct sl_bdev_disk_params {
	char *name;
	char *uuid;
	uint64_t num_blocks;
	uint32_t block_size;
	uint32_t physical_block_size;
	uint32_t md_size;
	bool md_interleave;
	int32_t dif_type;
	bool dif_is_head_of_md;
	int32_t dif_pi_format;
};

/**
 * Check what a RAM disk's create RPC asks for beyond its geometry (see
 * sl_bdev_check_create_params for that): metadata and protection information are
 * refused, Sluice has none; physical_block_size must be 0 or a power of two >=
 * block_size; uuid, when given, must parse. Messages name the value.
 * \param uuid_out receives the parsed uuid (untouched when p->uuid is NULL).
 * \return 0, -ENOTSUP (metadata or protection information asked), -EINVAL (message in
 * err).
 */
int sl_bdev_check_disk_params(const struct sl_bdev_disk_params *p, uint8_t uuid_out[16], char *err,
			      size_t errlen);

struct sl_jsonrpc_request;

/**
 * Serve a module's delete RPC (SPDK's bdev_<module>_delete {"name"}): decode the name,
 * call delete_fn (the module's delete, e.g. bdev_aio_delete), and answer true once the
 * bdev is gone, or the error, naming the method and the bdev.
 *
 * \param req the request; always answered.
 * \param params the request's params.
 * \param method the method's name, for messages (a string that outlives the request).
 * \param delete_fn unregisters the module's bdev named name and calls cb(cb_arg, rc)
 * when it is gone; returns 0 (cb will fire) or -errno (-ENODEV, -EBUSY).
 */
void sl_bdev_rpc_delete(struct sl_jsonrpc_request *req, const json_t *params, const char *method,
			int (*delete_fn)(const char *name, sl_bdev_op_done_cb cb, void *cb_arg));

#endif /* SLUICE_BDEV_MODULE_H */
