/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * What the aio and uring bdev modules share about their backing file or block device:
 * opening it (O_DIRECT when the geometry allows), its geometry, which fallocate modes
 * it has, and the allocation report through SEEK_DATA/SEEK_HOLE; and the life of a
 * disk over it (create, destruct, rescan, info and config), so that a module only
 * brings its I/O path. Library sluice_bdev_file; private to drivers/bdev/aio and
 * drivers/bdev/uring.
 */
#ifndef SLUICE_BDEV_FILE_H
#define SLUICE_BDEV_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/bdev_module.h"
#include "sluice/thread.h"

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
/* Synchronous fallocate(mode) over a byte range. Returns 0 or -errno. */
int bdev_file_fallocate(const struct bdev_file *f, int mode, uint64_t offset, uint64_t len);

/*
 * An aio or uring disk: the bdev and its backing file. bdev.ctxt points to it, and
 * &file is the io_device of the module's channels (the core registers the bdev itself
 * as one). A module that keeps more per disk begins its own struct with this one.
 */
struct bdev_file_disk {
	struct sl_bdev bdev;
	struct bdev_file file;
	TAILQ_ENTRY(bdev_file_disk) link;
};

/* What a module gives bdev_file_disk_create. */
struct bdev_file_module {
	struct sl_bdev_module *module;
	const struct sl_bdev_fn_table *fn_table;
	const char *product_name;
	/* Size of the module's disk struct, which begins with struct bdev_file_disk. */
	size_t disk_size;
	sl_io_channel_create_cb channel_create;
	sl_io_channel_destroy_cb channel_destroy;
	uint32_t channel_size;
	/* Called once the file is open, before the bdev is registered; may be NULL. */
	void (*disk_init)(struct bdev_file_disk *disk);
};

/*
 * Create and register a disk of module m named name over fopts->filename. On failure
 * err holds the reason without the RPC's name.
 * Returns 0, -EEXIST (name taken), -EINVAL (bad uuid, block size or file size),
 * -ENOENT and other errnos of open(2), -ENOMEM.
 */
int bdev_file_disk_create(const struct bdev_file_module *m, const char *name, const char *uuid,
			  const struct bdev_file_opts *fopts, char *err, size_t errlen);
/*
 * Re-read the size of the backing file of the disk of module named name, and announce
 * a new block count. Returns 0, -ENODEV (no such disk), -errno from fstat/ioctl.
 */
int bdev_file_disk_rescan(const char *name, const struct sl_bdev_module *module);
/*
 * The params of the module's create RPC that make this disk again: name, filename,
 * uuid, and block_size when it was given. Returns a new object, or NULL.
 */
json_t *bdev_file_disk_config_params(const struct bdev_file_disk *disk);

/* fn_table entries the file modules share; ctxt is the struct bdev_file_disk. */
int bdev_file_disk_destruct(void *ctxt);
bool bdev_file_disk_io_type_supported(void *ctxt, enum sl_bdev_io_type type);
struct sl_io_channel *bdev_file_disk_get_io_channel(void *ctxt);
/* Adds {"<module name>": {"filename", "block_size_override", "readonly", ...}}. */
int bdev_file_disk_dump_info_json(void *ctxt, json_t *driver_specific);
/* SEEK_DATA/SEEK_HOLE for files; block devices report all data. */
int bdev_file_disk_get_allocation(void *ctxt, uint64_t offset, uint64_t nbytes,
				  struct sl_bdev_extent *extents, uint32_t max_extents);

#endif /* SLUICE_BDEV_FILE_H */
