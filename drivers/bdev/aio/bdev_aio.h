/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * The aio bdev module: a file or block device served through Linux AIO (libaio).
 * Private to drivers/bdev/aio (its RPCs) and its unit test.
 */
#ifndef SLUICE_BDEV_AIO_H
#define SLUICE_BDEV_AIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/bdev_module.h"

/* Parameters of bdev_aio_create, as in SPDK's RPC. */
struct bdev_aio_opts {
	const char *name;
	const char *filename;
	/* 0 = the device's logical block size (512 for files). */
	uint32_t block_size;
	bool readonly;
	/* Unmap and write-zeroes through fallocate (default on here; SPDK's default is off). */
	bool fallocate;
	/* NULL or a UUID string. */
	const char *uuid;
};

/*
 * Create and register an aio bdev. On failure err holds the reason without the RPC
 * name ("cannot open '/x': No such file or directory").
 * Returns 0, -EEXIST (name taken), -EINVAL (bad block size, file too small, bad uuid),
 * -ENOENT and other errnos of open(2), -ENOMEM.
 */
int bdev_aio_create(const struct bdev_aio_opts *opts, char *err, size_t errlen);
/*
 * Unregister an aio bdev by name; cb(cb_arg, rc) when it is gone.
 * Returns 0 (cb will fire), -ENODEV (no aio bdev of that name), -EBUSY.
 */
int bdev_aio_delete(const char *name, sl_bdev_op_done_cb cb, void *cb_arg);
/*
 * Re-read the size of the backing file and announce a new block count.
 * Returns 0, -ENODEV (no aio bdev of that name), -errno from fstat/ioctl.
 */
int bdev_aio_rescan(const char *name);

#endif /* SLUICE_BDEV_AIO_H */
