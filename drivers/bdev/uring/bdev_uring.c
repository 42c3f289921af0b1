/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * The uring bdev module: a file or block device through io_uring.
 *
 * Each (bdev, thread) channel owns a ring with as many SQ entries as the channel's I/O
 * pool, so an SQE is always free for an I/O the core hands over. SQEs are prepared in
 * submit_request and given to the kernel with one io_uring_submit per poll; the
 * channel's run-always poller reaps the CQ ring from user space. The ring's eventfd is
 * registered as an fd poller, so an adaptive reactor may sleep while I/O is in flight.
 *
 * Flush is IORING_OP_FSYNC with IORING_FSYNC_DATASYNC (fdatasync: the page cache is
 * written and the device's cache flushed). Unmap and write-zeroes are
 * IORING_OP_FALLOCATE, run by the kernel's io-wq workers, so the reactor never blocks.
 */

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../aio/bdev_file.h"
#include "bdev_uring.h"
#include "sluice/log.h"
#include "sluice/thread.h"
#include "sluice/util.h"

#define URING_REAP_BATCH 64

struct uring_channel {
	struct bdev_file_disk *disk;
	struct io_uring ring;
	bool ring_ok;
	int efd;
	/* SQEs prepared and not yet submitted. */
	uint32_t npending;
	/* Submitted and not yet reaped. */
	uint32_t inflight;
	struct sl_poller *poller;
	struct sl_poller *fd_poller;
};

static struct sl_bdev_module g_uring_module;

/* ---- Completion -------------------------------------------------------------------- */

static void
uring_complete_cqe(const struct io_uring_cqe *cqe)
{
	struct sl_bdev_io *io = io_uring_cqe_get_data(cqe);
	int status = 0;

	if (cqe->res < 0) {
		status = cqe->res == -EOPNOTSUPP ? -ENOTSUP : cqe->res;
	} else if ((io->type == SL_BDEV_IO_TYPE_READ || io->type == SL_BDEV_IO_TYPE_WRITE) &&
		   (uint64_t)cqe->res != sl_bdev_io_get_nbytes(io)) {
		/* Short transfer: the file shrank under the bdev. */
		status = -EIO;
	}
	sl_bdev_io_complete(io, status);
}

static int
uring_reap(struct uring_channel *ch)
{
	struct io_uring_cqe *cqes[URING_REAP_BATCH];
	unsigned int n, i, total = 0;

	while (ch->inflight > 0) {
		n = io_uring_peek_batch_cqe(&ch->ring, cqes, URING_REAP_BATCH);
		if (n == 0) {
			break;
		}
		/* Copy nothing: each CQE is read before the ring slot is given back. */
		for (i = 0; i < n; i++) {
			uring_complete_cqe(cqes[i]);
		}
		io_uring_cq_advance(&ch->ring, n);
		ch->inflight -= n;
		total += n;
	}
	return (int)total;
}

static void
uring_submit_pending(struct uring_channel *ch)
{
	int rc;

	rc = io_uring_submit(&ch->ring);
	if (rc > 0) {
		ch->inflight += (uint32_t)rc;
		ch->npending -= SL_MIN((uint32_t)rc, ch->npending);
	} else if (rc < 0 && rc != -EAGAIN && rc != -EBUSY && rc != -EINTR) {
		SL_ERRLOG("%s: io_uring_submit failed: %s\n", ch->disk->bdev.name, strerror(-rc));
	}
}

static int
uring_poll(void *arg)
{
	struct uring_channel *ch = arg;
	int busy = SL_POLLER_IDLE;

	if (ch->npending > 0) {
		uring_submit_pending(ch);
		busy = SL_POLLER_BUSY;
	}
	if (uring_reap(ch) > 0) {
		busy = SL_POLLER_BUSY;
	}
	/* I/O resubmitted from completion callbacks leaves in this same poll. */
	if (ch->npending > 0) {
		uring_submit_pending(ch);
	}
	return busy;
}

static int
uring_fd_poll(void *arg)
{
	struct uring_channel *ch = arg;
	uint64_t count;

	if (read(ch->efd, &count, sizeof(count)) < 0 && errno != EAGAIN) {
		SL_ERRLOG("%s: eventfd read failed: %s\n", ch->disk->bdev.name, strerror(errno));
	}
	return uring_poll(ch);
}

/* ---- Submission -------------------------------------------------------------------- */

static struct io_uring_sqe *
uring_get_sqe(struct uring_channel *ch)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ch->ring);

	if (sl_unlikely(sqe == NULL)) {
		/* SQ full of prepared entries: hand them over now and take a slot. */
		uring_submit_pending(ch);
		sqe = io_uring_get_sqe(&ch->ring);
	}
	return sqe;
}

static void
uring_prep_rw(struct io_uring_sqe *sqe, int fd, struct sl_bdev_io *io)
{
	uint64_t off = io->offset_blocks << io->bdev->blocklen_shift;

	if (io->type == SL_BDEV_IO_TYPE_READ) {
		if (io->iovcnt == 1) {
			io_uring_prep_read(sqe, fd, io->iovs[0].iov_base,
					   (unsigned int)io->iovs[0].iov_len, off);
		} else {
			io_uring_prep_readv(sqe, fd, io->iovs, (unsigned int)io->iovcnt, off);
		}
	} else {
		if (io->iovcnt == 1) {
			io_uring_prep_write(sqe, fd, io->iovs[0].iov_base,
					    (unsigned int)io->iovs[0].iov_len, off);
		} else {
			io_uring_prep_writev(sqe, fd, io->iovs, (unsigned int)io->iovcnt, off);
		}
	}
}

static void
uring_submit_request(struct sl_io_channel *ioch, struct sl_bdev_io *io)
{
	struct uring_channel *ch = sl_io_channel_get_ctx(ioch);
	const struct bdev_file *f = &ch->disk->file;
	struct io_uring_sqe *sqe;
	uint64_t off = io->offset_blocks << io->bdev->blocklen_shift;

	if (sl_unlikely(io->type > SL_BDEV_IO_TYPE_WRITE_ZEROES ||
			(io->type == SL_BDEV_IO_TYPE_UNMAP && f->punch_mode == 0) ||
			(io->type == SL_BDEV_IO_TYPE_WRITE_ZEROES && f->zero_mode == 0))) {
		sl_bdev_io_complete(io, -ENOTSUP);
		return;
	}
	sqe = uring_get_sqe(ch);
	if (sl_unlikely(sqe == NULL)) {
		sl_bdev_io_complete(io, -ENOMEM);
		return;
	}
	switch (io->type) {
	case SL_BDEV_IO_TYPE_READ:
	case SL_BDEV_IO_TYPE_WRITE:
		uring_prep_rw(sqe, f->fd, io);
		break;
	case SL_BDEV_IO_TYPE_FLUSH:
		io_uring_prep_fsync(sqe, f->fd, IORING_FSYNC_DATASYNC);
		break;
	case SL_BDEV_IO_TYPE_UNMAP:
		io_uring_prep_fallocate(sqe, f->fd, f->punch_mode, (off_t)off,
					(off_t)sl_bdev_io_get_nbytes(io));
		break;
	default:
		io_uring_prep_fallocate(sqe, f->fd, f->zero_mode, (off_t)off,
					(off_t)sl_bdev_io_get_nbytes(io));
		break;
	}
	io_uring_sqe_set_data(sqe, io);
	ch->npending++;
}

/* ---- Channels ---------------------------------------------------------------------- */

static void
uring_channel_fini(struct uring_channel *ch)
{
	sl_poller_unregister(&ch->poller);
	sl_poller_unregister(&ch->fd_poller);
	if (ch->ring_ok) {
		io_uring_queue_exit(&ch->ring);
		ch->ring_ok = false;
	}
	if (ch->efd >= 0) {
		close(ch->efd);
		ch->efd = -1;
	}
}

static int
uring_channel_create(void *io_device, void *ctx_buf)
{
	struct uring_channel *ch = ctx_buf;
	struct sl_bdev_opts opts;
	int rc;

	memset(ch, 0, sizeof(*ch));
	ch->disk = SL_CONTAINEROF(io_device, struct bdev_file_disk, file);
	ch->efd = -1;
	sl_bdev_get_opts(&opts);
	rc = io_uring_queue_init(opts.bdev_io_per_channel, &ch->ring, 0);
	if (rc != 0) {
		SL_ERRLOG("%s: io_uring_queue_init(%" PRIu32 ") failed: %s\n", ch->disk->bdev.name,
			  opts.bdev_io_per_channel, strerror(-rc));
		goto err;
	}
	ch->ring_ok = true;
	ch->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (ch->efd < 0) {
		rc = -errno;
		goto err;
	}
	rc = io_uring_register_eventfd(&ch->ring, ch->efd);
	if (rc != 0) {
		goto err;
	}
	ch->poller = sl_poller_register(uring_poll, ch, 0, "bdev_uring");
	if (ch->poller == NULL) {
		rc = -ENOMEM;
		goto err;
	}
	ch->fd_poller =
		sl_poller_register_fd(ch->efd, EPOLLIN, uring_fd_poll, ch, "bdev_uring_efd");
	if (ch->fd_poller == NULL) {
		rc = -errno;
		goto err;
	}
	return 0;
err:
	uring_channel_fini(ch);
	return rc;
}

static void
uring_channel_destroy(void *io_device, void *ctx_buf)
{
	struct uring_channel *ch = ctx_buf;

	assert(ch->inflight == 0 && ch->npending == 0);
	uring_channel_fini(ch);
}

/* ---- Life cycle -------------------------------------------------------------------- */

static void
uring_write_config_json(struct sl_bdev *bdev, json_t *config)
{
	json_t *params = bdev_file_disk_config_params(bdev->ctxt);

	if (params != NULL) {
		json_array_append_new(config, json_pack("{s:s, s:o}", "method", "bdev_uring_create",
							"params", params));
	}
}

static const struct sl_bdev_fn_table g_uring_fn_table = {
	.destruct = bdev_file_disk_destruct,
	.submit_request = uring_submit_request,
	.io_type_supported = bdev_file_disk_io_type_supported,
	.get_io_channel = bdev_file_disk_get_io_channel,
	.dump_info_json = bdev_file_disk_dump_info_json,
	.write_config_json = uring_write_config_json,
	.get_allocation = bdev_file_disk_get_allocation,
};

static const struct bdev_file_module g_uring_file_module = {
	.module = &g_uring_module,
	.fn_table = &g_uring_fn_table,
	.product_name = "URING disk",
	.disk_size = sizeof(struct bdev_file_disk),
	.channel_create = uring_channel_create,
	.channel_destroy = uring_channel_destroy,
	.channel_size = sizeof(struct uring_channel),
};

int
bdev_uring_create(const struct bdev_uring_opts *opts, char *err, size_t errlen)
{
	struct bdev_file_opts fopts = {
		.filename = opts->filename,
		.block_size = opts->block_size,
		.use_fallocate = true,
	};

	return bdev_file_disk_create(&g_uring_file_module, opts->name, opts->uuid, &fopts, err,
				     errlen);
}

int
bdev_uring_delete(const char *name, sl_bdev_op_done_cb cb, void *cb_arg)
{
	return sl_bdev_unregister_by_name(name, &g_uring_module, cb, cb_arg);
}

static struct sl_bdev_module g_uring_module = {
	.name = "uring",
};
SL_BDEV_MODULE_REGISTER(uring, &g_uring_module)
