/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/** \file
 * Null bdevs: reads return zeroes (unless created with zero_reads false), writes are
 * dropped. For benchmarks of the block layer and the exports without a device
 * underneath.
 */
#ifndef SLUICE_BDEV_NULL_H
#define SLUICE_BDEV_NULL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/bdev.h"

/** Parameters of a null bdev (bdev_null_create). */
struct null_disk_opts {
	/** Name (required). */
	const char *name;
	/** UUID; all zero = random. */
	uint8_t uuid[16];
	uint64_t num_blocks;
	uint32_t block_size;
	/**
	 * Leave read buffers as they are instead of zero-filling them, as SPDK's null bdev
	 * does: reads then cost nothing but return whatever the buffer held. For
	 * benchmarks of the layers above; an export needs reads of zeroes (RPC:
	 * "zero_reads": false).
	 */
	bool no_zero_reads;
};

/**
 * Create and register a null bdev.
 * \return 0, -EINVAL or -EEXIST (message in err), -ENOMEM.
 */
int null_disk_create(const struct null_disk_opts *opts, struct sl_bdev **bdev, char *err,
		     size_t errlen);
/** Delete by name. \return 0 (cb will run) or -ENODEV / -EBUSY. */
int null_disk_delete(const char *name, sl_bdev_op_done_cb cb, void *cb_arg);
/** Change the size. \return 0, -ENODEV, -EINVAL. */
int null_disk_resize(const char *name, uint64_t num_blocks);

#endif /* SLUICE_BDEV_NULL_H */
