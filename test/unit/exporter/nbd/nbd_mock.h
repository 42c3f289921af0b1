/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * A RAM bdev behind the block layer's public API, for the NBD unit tests: the tests
 * link the real env (threads polled by hand, I/O channels, pollers, DMA allocation on
 * the C heap) but not sluice_bdev. Completions are messages to the submitting thread,
 * as the contract says (never inside the submit call). A test can fail the next I/O,
 * refuse submits with -ENOMEM, or hold completions until it releases them.
 */
#ifndef NBD_MOCK_H
#define NBD_MOCK_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/bdev.h"
#include "sluice/thread.h"
#include "sluice/util.h"

struct sl_bdev {
	const char *name;
	uint32_t block_size;
	uint64_t num_blocks;
	uint8_t *data;
	bool unmap;
	bool write_zeroes;
	bool write_zeroes_native;
	bool claimed;
};

struct sl_bdev_desc {
	struct sl_bdev *bdev;
	bool write;
	sl_bdev_event_cb event_cb;
	void *event_ctx;
};

struct mock_io {
	sl_bdev_io_done_cb cb;
	void *cb_arg;
	int status;
	struct mock_io *next;
};

static struct sl_bdev g_mock_bdev = {
	.name = "Mock0",
	.block_size = 512,
	.num_blocks = 2048,
	.unmap = true,
	.write_zeroes = true,
	.write_zeroes_native = false,
};
static int g_mock_fail_next;        /* -errno for the next I/O */
static int g_mock_fail_flush;       /* -errno for the next flush */
static int g_mock_nomem;            /* submits to refuse with -ENOMEM */
static bool g_mock_hold;            /* keep completions until mock_release() */
static struct mock_io *g_mock_held; /* LIFO is fine: order is not promised */
static struct sl_bdev_io_wait_entry *g_mock_waiter;
static int g_mock_flushes;
static int g_mock_ch_dummy;

static int
mock_ch_create(void *dev, void *ctx)
{
	return 0;
}

static void
mock_ch_destroy(void *dev, void *ctx)
{
}

static void
mock_done_msg(void *arg)
{
	struct mock_io *io = arg;

	io->cb(io->cb_arg, io->status);
	free(io);
}

static int
mock_complete(sl_bdev_io_done_cb cb, void *cb_arg, int status)
{
	struct mock_io *io;

	if (g_mock_nomem > 0) {
		g_mock_nomem--;
		return -ENOMEM;
	}
	io = calloc(1, sizeof(*io));
	io->cb = cb;
	io->cb_arg = cb_arg;
	io->status = g_mock_fail_next != 0 ? g_mock_fail_next : status;
	g_mock_fail_next = 0;
	if (g_mock_hold) {
		io->next = g_mock_held;
		g_mock_held = io;
		return 0;
	}
	sl_thread_send_msg(sl_get_thread(), mock_done_msg, io);
	return 0;
}

__attribute__((unused)) static void
mock_release(void)
{
	struct mock_io *io;

	g_mock_hold = false;
	while ((io = g_mock_held) != NULL) {
		g_mock_held = io->next;
		sl_thread_send_msg(sl_get_thread(), mock_done_msg, io);
	}
}

static bool
mock_range_ok(struct sl_bdev *b, uint64_t off, uint64_t len)
{
	return off % b->block_size == 0 && len % b->block_size == 0 &&
	       off <= b->num_blocks * b->block_size && len <= b->num_blocks * b->block_size - off;
}

struct sl_bdev *
sl_bdev_desc_get_bdev(struct sl_bdev_desc *desc)
{
	return desc->bdev;
}

uint64_t
sl_bdev_get_size(const struct sl_bdev *bdev)
{
	return bdev->num_blocks * bdev->block_size;
}

uint32_t
sl_bdev_get_block_size(const struct sl_bdev *bdev)
{
	return bdev->block_size;
}

bool
sl_bdev_io_type_supported(struct sl_bdev *bdev, enum sl_bdev_io_type type)
{
	switch (type) {
	case SL_BDEV_IO_TYPE_UNMAP:
		return bdev->unmap;
	case SL_BDEV_IO_TYPE_WRITE_ZEROES:
		return bdev->write_zeroes;
	default:
		return true;
	}
}

int
sl_bdev_open(const char *name, bool write, sl_bdev_event_cb event_cb, void *event_ctx,
	     struct sl_bdev_desc **desc)
{
	if (strcmp(name, g_mock_bdev.name) != 0) {
		return -ENODEV;
	}
	if (write && g_mock_bdev.claimed) {
		return -EPERM;
	}
	*desc = calloc(1, sizeof(**desc));
	(*desc)->bdev = &g_mock_bdev;
	(*desc)->write = write;
	(*desc)->event_cb = event_cb;
	(*desc)->event_ctx = event_ctx;
	return 0;
}

int
sl_bdev_claim(struct sl_bdev_desc *desc, const char *owner)
{
	desc->bdev->claimed = true;
	return 0;
}

void
sl_bdev_close(struct sl_bdev_desc *desc)
{
	if (desc->write) {
		desc->bdev->claimed = false;
	}
	free(desc);
}

struct sl_io_channel *
sl_bdev_get_io_channel(struct sl_bdev_desc *desc)
{
	return sl_get_io_channel(&g_mock_ch_dummy);
}

int
sl_bdev_readv(struct sl_bdev_desc *desc, struct sl_io_channel *ch, struct iovec *iov, int iovcnt,
	      uint64_t offset, uint64_t nbytes, sl_bdev_io_done_cb cb, void *cb_arg)
{
	struct sl_bdev *b = desc->bdev;

	if (!mock_range_ok(b, offset, nbytes) || iovcnt != 1 || iov[0].iov_len < nbytes) {
		return mock_complete(cb, cb_arg, -EINVAL);
	}
	memcpy(iov[0].iov_base, b->data + offset, nbytes);
	return mock_complete(cb, cb_arg, 0);
}

int
sl_bdev_writev_ext(struct sl_bdev_desc *desc, struct sl_io_channel *ch, struct iovec *iov,
		   int iovcnt, uint64_t offset, uint64_t nbytes, uint32_t flags,
		   sl_bdev_io_done_cb cb, void *cb_arg)
{
	struct sl_bdev *b = desc->bdev;

	if (!desc->write) {
		return mock_complete(cb, cb_arg, -EBADF);
	}
	if (!mock_range_ok(b, offset, nbytes) || iovcnt != 1) {
		return mock_complete(cb, cb_arg, -EINVAL);
	}
	memcpy(b->data + offset, iov[0].iov_base, nbytes);
	if (flags & SL_BDEV_IO_FLAG_FUA) {
		g_mock_flushes++;
	}
	return mock_complete(cb, cb_arg, 0);
}

int
sl_bdev_flush(struct sl_bdev_desc *desc, struct sl_io_channel *ch, uint64_t offset, uint64_t nbytes,
	      sl_bdev_io_done_cb cb, void *cb_arg)
{
	int status = g_mock_fail_flush;

	g_mock_fail_flush = 0;
	g_mock_flushes++;
	return mock_complete(cb, cb_arg, status);
}

int
sl_bdev_unmap(struct sl_bdev_desc *desc, struct sl_io_channel *ch, uint64_t offset, uint64_t nbytes,
	      sl_bdev_io_done_cb cb, void *cb_arg)
{
	if (!mock_range_ok(desc->bdev, offset, nbytes)) {
		return mock_complete(cb, cb_arg, -EINVAL);
	}
	memset(desc->bdev->data + offset, 0, nbytes);
	return mock_complete(cb, cb_arg, 0);
}

int
sl_bdev_write_zeroes_ext(struct sl_bdev_desc *desc, struct sl_io_channel *ch, uint64_t offset,
			 uint64_t nbytes, uint32_t flags, sl_bdev_io_done_cb cb, void *cb_arg)
{
	if ((flags & SL_BDEV_IO_FLAG_NO_FALLBACK) && !desc->bdev->write_zeroes_native) {
		return mock_complete(cb, cb_arg, -ENOTSUP);
	}
	if (!mock_range_ok(desc->bdev, offset, nbytes)) {
		return mock_complete(cb, cb_arg, -EINVAL);
	}
	memset(desc->bdev->data + offset, 0, nbytes);
	return mock_complete(cb, cb_arg, 0);
}

int
sl_bdev_queue_io_wait(struct sl_bdev *bdev, struct sl_io_channel *ch,
		      struct sl_bdev_io_wait_entry *entry)
{
	/* One waiter is enough for the tests; a second would be a test bug. */
	if (g_mock_waiter != NULL) {
		return -EINVAL;
	}
	g_mock_waiter = entry;
	return 0;
}

__attribute__((unused)) static void
mock_wake_waiter(void)
{
	struct sl_bdev_io_wait_entry *w = g_mock_waiter;

	g_mock_waiter = NULL;
	if (w != NULL) {
		w->cb_fn(w->cb_arg);
	}
}

/* The first half of the device is data, the second a hole that reads as zeroes. */
int
sl_bdev_get_allocation(struct sl_bdev_desc *desc, uint64_t offset, uint64_t nbytes,
		       struct sl_bdev_extent *extents, uint32_t max_extents)
{
	uint64_t half = sl_bdev_get_size(desc->bdev) / 2, end = offset + nbytes;
	uint32_t n = 0;

	if (max_extents == 0 || offset + nbytes > sl_bdev_get_size(desc->bdev)) {
		return -EINVAL;
	}
	if (offset < half) {
		extents[n++] = (struct sl_bdev_extent){offset, SL_MIN(end, half) - offset, 0};
	}
	if (end > half && n < max_extents) {
		uint64_t start = SL_MAX(offset, half);

		extents[n++] = (struct sl_bdev_extent){start, end - start,
						       SL_BDEV_EXTENT_HOLE | SL_BDEV_EXTENT_ZERO};
	}
	return (int)n;
}

static void
mock_init(void)
{
	g_mock_bdev.data = calloc(1, sl_bdev_get_size(&g_mock_bdev));
	sl_io_device_register(&g_mock_ch_dummy, mock_ch_create, mock_ch_destroy, 8, "mock_bdev");
}

#endif /* NBD_MOCK_H */
