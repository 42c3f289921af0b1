/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * What the aio and uring bdev modules share about their backing file or block device:
 * opening it (O_DIRECT when the geometry allows), its geometry, which fallocate modes
 * it has, and the allocation report through SEEK_DATA/SEEK_HOLE. Library
 * sluice_bdev_file; private to drivers/bdev/aio and drivers/bdev/uring.
 */
#ifndef SLUICE_BDEV_FILE_H
#define SLUICE_BDEV_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/bdev_module.h"

/* An open backing file or block device. */
struct bdev_file {
	char *filename;
	int fd;
	bool readonly;
	/* Opened with O_DIRECT (false after the buffered fallback). */
	bool direct;
	bool is_blockdev;
	/* The caller gave block_size (false: detected). */
	bool block_size_override;
	/* fallocate was asked for (bdev_aio_create's "fallocate"). */
	bool use_fallocate;
	/* fallocate mode for unmap, or 0 when unmap is not supported. */
	int punch_mode;
	/* fallocate mode for write-zeroes, or 0 (the core then emulates with writes). */
	int zero_mode;
	/* Bytes per block as exposed by the bdev. */
	uint32_t blocklen;
	uint64_t blockcnt;
	/* Memory alignment O_DIRECT needs (1 when buffered). */
	uint32_t mem_align;
};

/* Options of bdev_file_open(). */
struct bdev_file_opts {
	const char *filename;
	/* 0 = detect (the device's logical block size, or 512 for files). */
	uint32_t block_size;
	bool readonly;
	/* Use fallocate for unmap and write-zeroes when the file system has it. */
	bool use_fallocate;
};

/*
 * Open and probe the backing file. On failure the message (without the RPC's name) is
 * in err, e.g. "cannot open '/x': No such file or directory".
 * Returns 0, -ENOENT/-EACCES/... from open(2), -EINVAL (block size not a power of two
 * >= 512, smaller than the device's logical block size, or larger than the file).
 */
int bdev_file_open(struct bdev_file *f, const struct bdev_file_opts *opts, char *err,
		   size_t errlen);
/* Close the file; accepts a half-opened one (fd -1). */
void bdev_file_close(struct bdev_file *f);
/* Fill the geometry fields of a bdev from the file (blocklen, blockcnt, alignment...). */
void bdev_file_fill_bdev(const struct bdev_file *f, struct sl_bdev *bdev);
/* Size in blocks now (for rescan). Returns 0 or -errno. */
int bdev_file_get_blockcnt(const struct bdev_file *f, uint64_t *blockcnt);

/* Synchronous fallocate(mode) over a byte range. Returns 0 or -errno. */
int bdev_file_fallocate(const struct bdev_file *f, int mode, uint64_t offset, uint64_t len);

/* fn_table->get_allocation for a file: SEEK_DATA/SEEK_HOLE; block devices: all data. */
int bdev_file_get_allocation(const struct bdev_file *f, uint64_t offset, uint64_t nbytes,
			     struct sl_bdev_extent *extents, uint32_t max_extents);

/* Add "filename", "block_size_override", "readonly", "fallocate", "direct_io" to obj. */
int bdev_file_dump_info(const struct bdev_file *f, json_t *obj);

#endif /* SLUICE_BDEV_FILE_H */
