/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * The uring bdev module: a file or block device served through io_uring (liburing).
 * Private to drivers/bdev/uring (its RPCs) and its unit test.
 */
#ifndef SLUICE_BDEV_URING_H
#define SLUICE_BDEV_URING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/bdev_module.h"

/* Parameters of bdev_uring_create, as in SPDK's RPC. */
struct bdev_uring_opts {
	const char *name;
	const char *filename;
	/* 0 = the device's logical block size (512 for files). */
	uint32_t block_size;
	/* NULL or a UUID string. */
	const char *uuid;
};

/*
 * Create and register a uring bdev. On failure err holds the reason without the RPC
 * name. Returns 0, -EEXIST, -EINVAL, -ENOENT and other errnos of open(2), -ENOMEM.
 */
int bdev_uring_create(const struct bdev_uring_opts *opts, char *err, size_t errlen);
/*
 * Unregister a uring bdev by name; cb(cb_arg, rc) when it is gone.
 * Returns 0 (cb will fire), -ENODEV, -EBUSY.
 */
int bdev_uring_delete(const char *name, sl_bdev_op_done_cb cb, void *cb_arg);

#endif /* SLUICE_BDEV_URING_H */
