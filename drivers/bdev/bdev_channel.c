/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/* Per-(bdev, thread) channels: the pool of I/O descriptors and bounce buffers
 * (sized here, once, so the I/O path allocates nothing), and the poller that runs
 * deferred completions and -ENOMEM retries. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/env.h"
#include "sluice/log.h"
#include "sluice/util.h"

#include "bdev_internal.h"

struct sl_bdev_opts g_bdev_opts = {
	.bdev_io_per_channel = 1024,
	.bounce_buf_size = 128 * 1024,
	.bounce_buf_count = 16,
	.enable_stats = true,
};
void *g_bdev_zero_buf;

void
sl_bdev_get_opts(struct sl_bdev_opts *opts)
{
	*opts = g_bdev_opts;
}

int
sl_bdev_set_opts(const struct sl_bdev_opts *opts)
{
	if (opts->bdev_io_per_channel == 0) {
		SL_ERRLOG("bdev options: bdev_io_per_channel must be > 0\n");
		return -EINVAL;
	}
	if (!SL_IS_POW2(opts->bounce_buf_size) || opts->bounce_buf_size < 4096) {
		SL_ERRLOG("bdev options: bounce_buf_size %u is not a power of two >= 4096\n",
			  opts->bounce_buf_size);
		return -EINVAL;
	}
	g_bdev_opts = *opts;
	return 0;
}

/* The poller is paused while there is nothing to do, so an idle channel costs an
 * adaptive reactor nothing; bdev_channel_kick() resumes it. */
static int
bdev_channel_poll(void *arg)
{
	struct bdev_channel *bch = arg;
	int n = bdev_channel_drain_done(bch);

	if (bch->nomem_count > 0 && bch->in_module == 0) {
		/* Nothing in the module will complete to trigger the retry: do it here. */
		bdev_channel_retry_nomem(bch, bch->nomem_count);
		n++;
	}
	if (bch->zombie && bch->in_use == 0) {
		bdev_channel_free(bch);
		return SL_POLLER_BUSY;
	}
	if (STAILQ_EMPTY(&bch->done_ios) && (bch->nomem_count == 0 || bch->in_module > 0)) {
		sl_poller_pause(bch->poller);
		bch->poller_active = false;
	}
	return n > 0 ? SL_POLLER_BUSY : SL_POLLER_IDLE;
}

void
bdev_channel_resume(struct bdev_channel *bch)
{
	bch->poller_active = true;
	sl_poller_resume(bch->poller);
}

static int
bdev_channel_alloc_ios(struct bdev_channel *bch, uint32_t driver_ctx_size)
{
	uint32_t i;

	bch->io_count = g_bdev_opts.bdev_io_per_channel;
	bch->io_stride = (uint32_t)SL_ALIGN_UP(sizeof(struct sl_bdev_io) + driver_ctx_size,
					       (size_t)SL_CACHE_LINE);
	bch->io_mem = aligned_alloc(SL_CACHE_LINE, (size_t)bch->io_stride * bch->io_count);
	if (bch->io_mem == NULL) {
		return -ENOMEM;
	}
	memset(bch->io_mem, 0, (size_t)bch->io_stride * bch->io_count);
	/* Pushed in reverse so the first I/O gets the lowest address. */
	for (i = bch->io_count; i > 0; i--) {
		struct sl_bdev_io *io = (struct sl_bdev_io *)((uint8_t *)bch->io_mem +
							      (size_t)(i - 1) * bch->io_stride);

		io->bdev = bch->bdev;
		io->internal.ch = bch;
		STAILQ_INSERT_HEAD(&bch->free_ios, io, internal.link);
	}
	return 0;
}

static int
bdev_channel_alloc_bounce(struct bdev_channel *bch)
{
	struct sl_bdev *bdev = bch->bdev;
	size_t align = SL_MAX(4096u, bdev->required_alignment);
	uint32_t i, count = g_bdev_opts.bounce_buf_count;

	if (!bdev->bounce_check || count == 0) {
		return 0;
	}
	bch->bounce_size = SL_MAX(g_bdev_opts.bounce_buf_size, bdev->blocklen);
	bch->bounce_blocks = bch->bounce_size >> bdev->blocklen_shift;
	bch->bounce_mem = sl_dma_malloc((size_t)bch->bounce_size * count, align, NULL);
	bch->bounce_free = calloc(count, sizeof(void *));
	if (bch->bounce_mem == NULL || bch->bounce_free == NULL) {
		return -ENOMEM;
	}
	for (i = 0; i < count; i++) {
		bch->bounce_free[i] = (uint8_t *)bch->bounce_mem + (size_t)i * bch->bounce_size;
	}
	bch->bounce_free_count = count;
	return 0;
}

/* Releases what was set up; accepts a half-built channel. */
static void
bdev_channel_release(struct bdev_channel *bch)
{
	if (bch->module_ch != NULL) {
		sl_put_io_channel(bch->module_ch);
	}
	sl_poller_unregister(&bch->poller);
	sl_dma_free(bch->bounce_mem);
	free(bch->bounce_free);
	free(bch->io_mem);
	free(bch);
}

int
bdev_channel_create(void *io_device, void *ctx_buf)
{
	struct bdev_channel_ctx *ctx = ctx_buf;
	struct sl_bdev *bdev = io_device;
	struct bdev_channel *bch;

	bch = aligned_alloc(SL_CACHE_LINE, SL_ALIGN_UP(sizeof(*bch), (size_t)SL_CACHE_LINE));
	if (bch == NULL) {
		return -ENOMEM;
	}
	memset(bch, 0, sizeof(*bch));
	bch->bdev = bdev;
	bch->thread = sl_get_thread();
	bch->stats_on = g_bdev_opts.enable_stats;
	STAILQ_INIT(&bch->free_ios);
	STAILQ_INIT(&bch->done_ios);
	STAILQ_INIT(&bch->nomem_ios);
	STAILQ_INIT(&bch->bounce_wait);
	STAILQ_INIT(&bch->split_wait);
	TAILQ_INIT(&bch->io_wait);
	sl_bdev_io_stat_init(&bch->stat);
	if (bdev_channel_alloc_ios(bch, bdev->priv->driver_ctx_size) != 0 ||
	    bdev_channel_alloc_bounce(bch) != 0) {
		SL_ERRLOG("bdev %s: out of memory for a channel's pools\n", bdev->name);
		goto err;
	}
	bch->poller = sl_poller_register(bdev_channel_poll, bch, 0, "bdev_channel");
	if (bch->poller == NULL) {
		goto err;
	}
	sl_poller_pause(bch->poller);
	bch->module_ch = bdev->fn_table->get_io_channel(bdev->ctxt);
	if (bch->module_ch == NULL) {
		SL_ERRLOG("bdev %s: the module gave no I/O channel\n", bdev->name);
		goto err;
	}
	atomic_fetch_add(&bdev->priv->live_channels, 1);
	ctx->bch = bch;
	return 0;
err:
	bdev_channel_release(bch);
	return -ENOMEM;
}

void
bdev_channel_free(struct bdev_channel *bch)
{
	struct sl_bdev *bdev = bch->bdev;
	struct sl_bdev_io_stat stat = bch->stat;

	bdev_channel_release(bch);
	bdev_channel_retired(bdev, &stat);
}

/* The io_channel goes; I/O still in flight keeps the struct alive as a zombie until
 * its last completion (the user may put a channel with I/O outstanding). */
void
bdev_channel_destroy(void *io_device, void *ctx_buf)
{
	struct bdev_channel *bch = ((struct bdev_channel_ctx *)ctx_buf)->bch;

	bdev_channel_abort_queued(bch, -ECANCELED);
	if (bch->in_use == 0) {
		bdev_channel_free(bch);
		return;
	}
	bch->zombie = true;
	bdev_channel_kick(bch);
}
