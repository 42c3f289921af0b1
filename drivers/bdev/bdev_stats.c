/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/* I/O statistics: counted per channel on the I/O path (no atomics, no locks: each
 * channel belongs to one thread), summed on request by visiting every channel. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/log.h"
#include "sluice/util.h"

#include "bdev_internal.h"

void
sl_bdev_io_stat_init(struct sl_bdev_io_stat *stat)
{
	memset(stat, 0, sizeof(*stat));
	stat->min_read_latency_ticks = UINT64_MAX;
	stat->min_write_latency_ticks = UINT64_MAX;
	stat->min_unmap_latency_ticks = UINT64_MAX;
	stat->min_copy_latency_ticks = UINT64_MAX;
}

void
sl_bdev_io_stat_add(struct sl_bdev_io_stat *dst, const struct sl_bdev_io_stat *src)
{
	dst->bytes_read += src->bytes_read;
	dst->num_read_ops += src->num_read_ops;
	dst->bytes_written += src->bytes_written;
	dst->num_write_ops += src->num_write_ops;
	dst->bytes_unmapped += src->bytes_unmapped;
	dst->num_unmap_ops += src->num_unmap_ops;
	dst->bytes_copied += src->bytes_copied;
	dst->num_copy_ops += src->num_copy_ops;
	dst->read_latency_ticks += src->read_latency_ticks;
	dst->max_read_latency_ticks =
		SL_MAX(dst->max_read_latency_ticks, src->max_read_latency_ticks);
	dst->min_read_latency_ticks =
		SL_MIN(dst->min_read_latency_ticks, src->min_read_latency_ticks);
	dst->write_latency_ticks += src->write_latency_ticks;
	dst->max_write_latency_ticks =
		SL_MAX(dst->max_write_latency_ticks, src->max_write_latency_ticks);
	dst->min_write_latency_ticks =
		SL_MIN(dst->min_write_latency_ticks, src->min_write_latency_ticks);
	dst->unmap_latency_ticks += src->unmap_latency_ticks;
	dst->max_unmap_latency_ticks =
		SL_MAX(dst->max_unmap_latency_ticks, src->max_unmap_latency_ticks);
	dst->min_unmap_latency_ticks =
		SL_MIN(dst->min_unmap_latency_ticks, src->min_unmap_latency_ticks);
	dst->copy_latency_ticks += src->copy_latency_ticks;
	dst->max_copy_latency_ticks =
		SL_MAX(dst->max_copy_latency_ticks, src->max_copy_latency_ticks);
	dst->min_copy_latency_ticks =
		SL_MIN(dst->min_copy_latency_ticks, src->min_copy_latency_ticks);
	dst->num_flush_ops += src->num_flush_ops;
	dst->num_write_zeroes_ops += src->num_write_zeroes_ops;
	dst->bytes_zeroed += src->bytes_zeroed;
	dst->num_reset_ops += src->num_reset_ops;
	dst->num_io_errors += src->num_io_errors;
}

void
sl_bdev_channel_get_io_stat(struct sl_io_channel *ch, struct sl_bdev_io_stat *stat)
{
	*stat = bdev_channel_get(ch)->stat;
}

struct bdev_stat_ctx {
	struct sl_bdev *bdev;
	struct sl_bdev_io_stat *stat;
	sl_bdev_io_stat_cb cb;
	void *cb_arg;
};

static void
bdev_stat_visit(struct sl_io_channel_iter *i)
{
	struct bdev_stat_ctx *ctx = sl_io_channel_iter_get_ctx(i);
	struct sl_io_channel *ch = sl_io_channel_iter_get_channel(i);

	sl_bdev_io_stat_add(ctx->stat, &bdev_channel_get(ch)->stat);
	sl_for_each_channel_continue(i, 0);
}

static void
bdev_stat_visit_done(struct sl_io_channel_iter *i, int status)
{
	struct bdev_stat_ctx *ctx = sl_io_channel_iter_get_ctx(i);

	ctx->cb(ctx->bdev, ctx->stat, ctx->cb_arg, status);
	free(ctx);
}

void
sl_bdev_get_io_stat(struct sl_bdev *bdev, struct sl_bdev_io_stat *stat, sl_bdev_io_stat_cb cb,
		    void *cb_arg)
{
	struct bdev_stat_ctx *ctx;

	if (bdev->removing) {
		cb(bdev, stat, cb_arg, -ENODEV);
		return;
	}
	ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL) {
		cb(bdev, stat, cb_arg, -ENOMEM);
		return;
	}
	ctx->bdev = bdev;
	ctx->stat = stat;
	ctx->cb = cb;
	ctx->cb_arg = cb_arg;
	/* Channels already destroyed left their counts in retired_stat. */
	pthread_mutex_lock(&g_bdev_mutex);
	*stat = bdev->priv->retired_stat;
	pthread_mutex_unlock(&g_bdev_mutex);
	sl_for_each_channel(bdev, bdev_stat_visit, ctx, bdev_stat_visit_done);
}
