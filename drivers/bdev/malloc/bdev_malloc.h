/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/** \file
 * RAM bdevs: create and delete (used by the RPCs, the daemon and tests).
 */
#ifndef SLUICE_BDEV_MALLOC_H
#define SLUICE_BDEV_MALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/bdev.h"

/** Parameters of a RAM bdev (bdev_malloc_create). */
struct malloc_disk_opts {
	/** Name; NULL gives "Malloc<N>". */
	const char *name;
	/** UUID; all zero = random. */
	uint8_t uuid[16];
	uint64_t num_blocks;
	uint32_t block_size;
	/** Optimal I/O boundary in blocks (0 = none); I/O is split on it. */
	uint32_t optimal_io_boundary;
};

/**
 * Create and register a RAM bdev. The memory is DMA-safe (hugepages once the env is
 * up) and zeroed; a bitmap of written 4 KiB chunks answers allocation queries.
 * \param err receives a message naming the bad value on failure.
 * \return 0, -EINVAL, -EEXIST ("bdev NAME already exists"), -ENOMEM (more than the
 * free memory).
 */
int malloc_disk_create(const struct malloc_disk_opts *opts, struct sl_bdev **bdev, char *err,
		       size_t errlen);

/**
 * Delete a RAM bdev by name: hot removal, then cb(cb_arg, rc) once it is gone.
 * \return 0 (cb will run), or -ENODEV (no malloc bdev of that name).
 */
int malloc_disk_delete(const char *name, sl_bdev_op_done_cb cb, void *cb_arg);

#endif /* SLUICE_BDEV_MALLOC_H */
