/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/* Null bdevs. Everything completes inline; the core defers the user callbacks. Reads
 * are zero-filled (a memset per read: the price of "reads return zeroes", which the
 * exports and their tests rely on) unless the bdev was created with zero_reads false,
 * which leaves the buffer alone as SPDK's null bdev does, for benchmarks; writes,
 * unmaps and flushes do nothing. */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "sluice/bdev_module.h"
#include "sluice/log.h"
#include "sluice/thread.h"
#include "sluice/util.h"

#include "bdev_null.h"

struct null_disk {
	struct sl_bdev bdev;
	bool zero_reads;
	TAILQ_ENTRY(null_disk) link;
};

static TAILQ_HEAD(, null_disk) g_null_disks = TAILQ_HEAD_INITIALIZER(g_null_disks);
static int g_null_io_device;
static struct sl_bdev_module g_null_module;

static void
null_zero_read(struct sl_bdev_io *io)
{
	if (sl_likely(io->iovcnt == 1)) {
		/* The core made iovs cover exactly the I/O: no length walk needed. */
		memset(io->iovs[0].iov_base, 0, io->iovs[0].iov_len);
		return;
	}
	sl_bdev_zero_iovs(io->iovs, io->iovcnt, sl_bdev_io_get_nbytes(io));
}

static void
null_submit(struct sl_io_channel *ch, struct sl_bdev_io *io)
{
	const struct null_disk *d = io->bdev->ctxt;

	if (io->type == SL_BDEV_IO_TYPE_READ && d->zero_reads) {
		null_zero_read(io);
	}
	sl_bdev_io_complete(io, 0);
}

static bool
null_io_type_supported(void *ctxt, enum sl_bdev_io_type type)
{
	return type > SL_BDEV_IO_TYPE_INVALID && type < SL_BDEV_NUM_IO_TYPES;
}

static struct sl_io_channel *
null_get_io_channel(void *ctxt)
{
	return sl_get_io_channel(&g_null_io_device);
}

static int
null_get_allocation(void *ctxt, uint64_t offset, uint64_t nbytes, struct sl_bdev_extent *ext,
		    uint32_t max)
{
	const struct null_disk *d = ctxt;

	ext[0].offset = offset;
	ext[0].length = nbytes;
	/* Without zero-filling, a read returns the caller's buffer: not zeroes. */
	ext[0].flags = SL_BDEV_EXTENT_HOLE | (d->zero_reads ? SL_BDEV_EXTENT_ZERO : 0);
	return 1;
}

static int
null_destruct(void *ctxt)
{
	struct null_disk *d = ctxt;

	TAILQ_REMOVE(&g_null_disks, d, link);
	free(d->bdev.name);
	free(d);
	return 0;
}

static void
null_write_config_json(struct sl_bdev *bdev, json_t *config)
{
	const struct null_disk *d = bdev->ctxt;
	char uuid[SL_BDEV_UUID_STR_LEN];
	json_t *params;

	sl_bdev_get_uuid_str(bdev, uuid, sizeof(uuid));
	params = json_pack("{s:s, s:I, s:I, s:s}", "name", bdev->name, "num_blocks",
			   (json_int_t)bdev->blockcnt, "block_size", (json_int_t)bdev->blocklen,
			   "uuid", uuid);
	/* Only when off: the default keeps the call as SPDK writes it. */
	if (!d->zero_reads) {
		json_object_set_new(params, "zero_reads", json_false());
	}
	json_array_append_new(
		config, json_pack("{s:s, s:o}", "method", "bdev_null_create", "params", params));
}

static const struct sl_bdev_fn_table g_null_fn_table = {
	.destruct = null_destruct,
	.submit_request = null_submit,
	.io_type_supported = null_io_type_supported,
	.get_io_channel = null_get_io_channel,
	.write_config_json = null_write_config_json,
	.get_allocation = null_get_allocation,
};

int
null_disk_create(const struct null_disk_opts *opts, struct sl_bdev **bdevp, char *err,
		 size_t errlen)
{
	struct null_disk *d;
	int rc;

	if (opts->name == NULL) {
		snprintf(err, errlen, "a name is required");
		return -EINVAL;
	}
	rc = sl_bdev_check_create_params(opts->name, opts->num_blocks, opts->block_size, err,
					 errlen);
	if (rc != 0) {
		return rc;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL || (d->bdev.name = strdup(opts->name)) == NULL) {
		free(d);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	d->zero_reads = !opts->no_zero_reads;
	d->bdev.product_name = "Null disk";
	d->bdev.blocklen = opts->block_size;
	d->bdev.blockcnt = opts->num_blocks;
	memcpy(d->bdev.uuid, opts->uuid, sizeof(d->bdev.uuid));
	d->bdev.ctxt = d;
	d->bdev.fn_table = &g_null_fn_table;
	d->bdev.module = &g_null_module;
	rc = sl_bdev_register(&d->bdev);
	if (rc != 0) {
		snprintf(err, errlen, "bdev %s already exists (name or uuid)", d->bdev.name);
		free(d->bdev.name);
		free(d);
		return rc;
	}
	TAILQ_INSERT_TAIL(&g_null_disks, d, link);
	*bdevp = &d->bdev;
	return 0;
}

int
null_disk_delete(const char *name, sl_bdev_op_done_cb cb, void *cb_arg)
{
	return sl_bdev_unregister_by_name(name, &g_null_module, cb, cb_arg);
}

int
null_disk_resize(const char *name, uint64_t num_blocks)
{
	struct null_disk *d;

	TAILQ_FOREACH (d, &g_null_disks, link) {
		if (strcmp(d->bdev.name, name) == 0) {
			return sl_bdev_notify_blockcnt_change(&d->bdev, num_blocks);
		}
	}
	return -ENODEV;
}

static int
null_module_init(void)
{
	sl_io_device_register(&g_null_io_device, NULL, NULL, 0, "bdev_null");
	return 0;
}

static void
null_module_fini(void)
{
	sl_io_device_unregister(&g_null_io_device, NULL);
}

static struct sl_bdev_module g_null_module = {
	.name = "null",
	.module_init = null_module_init,
	.module_fini = null_module_fini,
};
SL_BDEV_MODULE_REGISTER(null, &g_null_module)
