/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * The aio bdev module: a file or block device through Linux AIO (libaio).
 *
 * Each (bdev, thread) channel owns an io_context sized to the channel's I/O pool, so
 * the module can never be asked for more than the context holds. Reads and writes
 * are queued as iocbs and handed to the kernel in one io_submit per poll; the
 * channel's run-always poller reaps with a zero-timeout io_getevents, which libaio
 * answers from the user-space ring without a syscall when it is empty. Every iocb
 * also signals the channel's eventfd, registered as an fd poller, so an adaptive
 * reactor may sleep while the disk works and wake on the completion.
 *
 * Flush is IOCB_CMD_FDSYNC (Linux 4.18 runs it on a kernel worker for any file with
 * fsync); it is probed at create and, where missing, replaced by a synchronous
 * fdatasync() on the reactor. Either way the data reaches the disk: fdatasync flushes
 * the page cache and sends the device a cache flush. Unmap and write-zeroes are
 * synchronous fallocate() calls (AIO has no such command); they are metadata
 * operations and short.
 */

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <libaio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bdev_aio.h"
#include "bdev_file.h"
#include "sluice/log.h"
#include "sluice/thread.h"
#include "sluice/util.h"

struct aio_disk {
	struct bdev_file_disk common;
	/* IOCB_CMD_FDSYNC works on this file. */
	bool fdsync;
};

struct aio_channel {
	struct aio_disk *disk;
	io_context_t ctx;
	int efd;
	uint32_t depth;
	/* Submitted to the kernel and not yet reaped. */
	uint32_t inflight;
	/* Prepared, waiting for the next io_submit. */
	uint32_t npending;
	struct iocb **pending;
	struct io_event *events;
	struct sl_poller *poller;
	struct sl_poller *fd_poller;
};

/* Per-I/O context. */
struct aio_task {
	struct iocb iocb;
};

static struct sl_bdev_module g_aio_module;

/* ---- Completion -------------------------------------------------------------------- */

static void
aio_complete_event(struct io_event *ev)
{
	struct sl_bdev_io *io = ev->data;
	long res = (long)ev->res;
	int status = 0;

	if (res < 0) {
		status = (int)res;
	} else if ((io->type == SL_BDEV_IO_TYPE_READ || io->type == SL_BDEV_IO_TYPE_WRITE) &&
		   (uint64_t)res != sl_bdev_io_get_nbytes(io)) {
		/* Short transfer: the file shrank under the bdev. */
		status = -EIO;
	}
	sl_bdev_io_complete(io, status);
}

static int
aio_submit_pending(struct aio_channel *ch)
{
	struct iocb *failed;
	int rc;

	while (ch->npending > 0) {
		rc = io_submit(ch->ctx, (long)ch->npending, ch->pending);
		if (rc == -EAGAIN || rc == -EINTR) {
			/* The context is full or the kernel is short: try on the next poll. */
			return SL_POLLER_BUSY;
		}
		if (rc < 0) {
			/* The first iocb is bad: fail it alone and go on with the rest. */
			failed = ch->pending[0];
			ch->npending--;
			memmove(ch->pending, ch->pending + 1, ch->npending * sizeof(*ch->pending));
			sl_bdev_io_complete(failed->data, rc);
			continue;
		}
		ch->inflight += (uint32_t)rc;
		ch->npending -= (uint32_t)rc;
		if (ch->npending > 0) {
			memmove(ch->pending, ch->pending + rc, ch->npending * sizeof(*ch->pending));
		}
	}
	return SL_POLLER_BUSY;
}

static int
aio_reap(struct aio_channel *ch)
{
	struct timespec zero = {0, 0};
	int n, i;

	if (ch->inflight == 0) {
		return 0;
	}
	n = io_getevents(ch->ctx, 0, (long)ch->depth, ch->events, &zero);
	if (n <= 0) {
		return 0;
	}
	ch->inflight -= (uint32_t)n;
	for (i = 0; i < n; i++) {
		aio_complete_event(&ch->events[i]);
	}
	return n;
}

static int
aio_poll(void *arg)
{
	struct aio_channel *ch = arg;
	int busy = SL_POLLER_IDLE;

	if (ch->npending > 0) {
		busy = aio_submit_pending(ch);
	}
	if (aio_reap(ch) > 0) {
		busy = SL_POLLER_BUSY;
	}
	/* Completions queued inside the callbacks go out in this same poll. */
	if (ch->npending > 0) {
		busy = aio_submit_pending(ch);
	}
	return busy;
}

static int
aio_fd_poll(void *arg)
{
	struct aio_channel *ch = arg;
	uint64_t count;

	/* Drain the eventfd (level-triggered) and reap what woke us. */
	if (read(ch->efd, &count, sizeof(count)) < 0 && errno != EAGAIN) {
		SL_ERRLOG("%s: eventfd read failed: %s\n", ch->disk->common.bdev.name,
			  strerror(errno));
	}
	return aio_poll(ch);
}

/* ---- Submission -------------------------------------------------------------------- */

static void
aio_queue_iocb(struct aio_channel *ch, struct sl_bdev_io *io, struct iocb *iocb)
{
	iocb->data = io;
	io_set_eventfd(iocb, ch->efd);
	ch->pending[ch->npending++] = iocb;
}

static void
aio_submit_rw(struct aio_channel *ch, struct sl_bdev_io *io)
{
	struct aio_task *task = sl_bdev_io_get_driver_ctx(io);
	int fd = ch->disk->common.file.fd;
	long long off = (long long)(io->offset_blocks << io->bdev->blocklen_shift);

	if (io->type == SL_BDEV_IO_TYPE_READ) {
		if (io->iovcnt == 1) {
			io_prep_pread(&task->iocb, fd, io->iovs[0].iov_base, io->iovs[0].iov_len,
				      off);
		} else {
			io_prep_preadv(&task->iocb, fd, io->iovs, io->iovcnt, off);
		}
	} else {
		if (io->iovcnt == 1) {
			io_prep_pwrite(&task->iocb, fd, io->iovs[0].iov_base, io->iovs[0].iov_len,
				       off);
		} else {
			io_prep_pwritev(&task->iocb, fd, io->iovs, io->iovcnt, off);
		}
	}
	aio_queue_iocb(ch, io, &task->iocb);
}

static void
aio_submit_flush(struct aio_channel *ch, struct sl_bdev_io *io)
{
	struct aio_task *task = sl_bdev_io_get_driver_ctx(io);
	struct aio_disk *disk = ch->disk;

	if (!disk->fdsync) {
		sl_bdev_io_complete(io, fdatasync(disk->common.file.fd) == 0 ? 0 : -errno);
		return;
	}
	io_prep_fdsync(&task->iocb, disk->common.file.fd);
	aio_queue_iocb(ch, io, &task->iocb);
}

static void
aio_submit_fallocate(struct aio_channel *ch, struct sl_bdev_io *io, int mode)
{
	const struct bdev_file *f = &ch->disk->common.file;
	uint64_t off = io->offset_blocks << io->bdev->blocklen_shift;
	int rc;

	if (mode == 0) {
		/* Not offered (io_type_supported said no); never fallocate with mode 0. */
		sl_bdev_io_complete(io, -ENOTSUP);
		return;
	}
	rc = bdev_file_fallocate(f, mode, off, sl_bdev_io_get_nbytes(io));
	if (rc == -ENOTSUP && mode != f->punch_mode && f->punch_mode != 0) {
		/* ZERO_RANGE went away (another file system mounted over?): a hole reads as 0. */
		rc = bdev_file_fallocate(f, f->punch_mode, off, sl_bdev_io_get_nbytes(io));
	}
	sl_bdev_io_complete(io, rc);
}

static void
aio_submit_request(struct sl_io_channel *ioch, struct sl_bdev_io *io)
{
	struct aio_channel *ch = sl_io_channel_get_ctx(ioch);
	struct aio_disk *disk = ch->disk;

	if (sl_unlikely(disk->common.file.readonly && io->type != SL_BDEV_IO_TYPE_READ &&
			io->type != SL_BDEV_IO_TYPE_FLUSH)) {
		sl_bdev_io_complete(io, -EROFS);
		return;
	}
	switch (io->type) {
	case SL_BDEV_IO_TYPE_READ:
	case SL_BDEV_IO_TYPE_WRITE:
		if (sl_unlikely(ch->npending + ch->inflight >= ch->depth)) {
			sl_bdev_io_complete(io, -ENOMEM);
			return;
		}
		aio_submit_rw(ch, io);
		return;
	case SL_BDEV_IO_TYPE_FLUSH:
		if (sl_unlikely(ch->npending + ch->inflight >= ch->depth)) {
			sl_bdev_io_complete(io, -ENOMEM);
			return;
		}
		aio_submit_flush(ch, io);
		return;
	case SL_BDEV_IO_TYPE_UNMAP:
		aio_submit_fallocate(ch, io, disk->common.file.punch_mode);
		return;
	case SL_BDEV_IO_TYPE_WRITE_ZEROES:
		aio_submit_fallocate(ch, io, disk->common.file.zero_mode);
		return;
	default:
		sl_bdev_io_complete(io, -ENOTSUP);
		return;
	}
}

/* ---- Channels ---------------------------------------------------------------------- */

static void
aio_channel_fini(struct aio_channel *ch)
{
	sl_poller_unregister(&ch->poller);
	sl_poller_unregister(&ch->fd_poller);
	if (ch->ctx != NULL) {
		io_destroy(ch->ctx);
		ch->ctx = NULL;
	}
	if (ch->efd >= 0) {
		close(ch->efd);
		ch->efd = -1;
	}
	free(ch->pending);
	free(ch->events);
}

static int
aio_channel_create(void *io_device, void *ctx_buf)
{
	struct aio_channel *ch = ctx_buf;
	struct sl_bdev_opts opts;
	int rc;

	memset(ch, 0, sizeof(*ch));
	ch->disk = SL_CONTAINEROF(io_device, struct aio_disk, common.file);
	ch->efd = -1;
	sl_bdev_get_opts(&opts);
	ch->depth = opts.bdev_io_per_channel;
	ch->pending = calloc(ch->depth, sizeof(*ch->pending));
	ch->events = calloc(ch->depth, sizeof(*ch->events));
	if (ch->pending == NULL || ch->events == NULL) {
		rc = -ENOMEM;
		goto err;
	}
	rc = io_setup((int)ch->depth, &ch->ctx);
	if (rc != 0) {
		SL_ERRLOG("%s: io_setup(%" PRIu32 ") failed: %s (see /proc/sys/fs/aio-max-nr)\n",
			  ch->disk->common.bdev.name, ch->depth, strerror(-rc));
		goto err;
	}
	ch->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (ch->efd < 0) {
		rc = -errno;
		goto err;
	}
	ch->poller = sl_poller_register(aio_poll, ch, 0, "bdev_aio");
	if (ch->poller == NULL) {
		rc = -ENOMEM;
		goto err;
	}
	ch->fd_poller = sl_poller_register_fd(ch->efd, EPOLLIN, aio_fd_poll, ch, "bdev_aio_efd");
	if (ch->fd_poller == NULL) {
		rc = -errno;
		goto err;
	}
	return 0;
err:
	aio_channel_fini(ch);
	return rc;
}

static void
aio_channel_destroy(void *io_device, void *ctx_buf)
{
	struct aio_channel *ch = ctx_buf;

	/* The core destroys a channel only once its I/O has completed. */
	assert(ch->inflight == 0 && ch->npending == 0);
	aio_channel_fini(ch);
}

/* ---- Life cycle -------------------------------------------------------------------- */

/* Does IOCB_CMD_FDSYNC work on this file? One synchronous round trip at create. */
static bool
aio_probe_fdsync(int fd)
{
	struct timespec timeout = {5, 0};
	io_context_t ctx = NULL;
	struct io_event ev;
	struct iocb iocb, *iocbs[1] = {&iocb};
	bool ok = false;

	if (io_setup(1, &ctx) != 0) {
		return false;
	}
	io_prep_fdsync(&iocb, fd);
	if (io_submit(ctx, 1, iocbs) == 1 && io_getevents(ctx, 1, 1, &ev, &timeout) == 1) {
		ok = (long)ev.res == 0;
	}
	io_destroy(ctx);
	return ok;
}

static void
aio_write_config_json(struct sl_bdev *bdev, json_t *config)
{
	struct bdev_file_disk *disk = bdev->ctxt;
	json_t *params = bdev_file_disk_config_params(disk);

	if (params == NULL) {
		return;
	}
	json_object_set_new(params, "readonly", json_boolean(disk->file.readonly));
	json_object_set_new(params, "fallocate", json_boolean(disk->file.use_fallocate));
	json_array_append_new(
		config, json_pack("{s:s, s:o}", "method", "bdev_aio_create", "params", params));
}

static const struct sl_bdev_fn_table g_aio_fn_table = {
	.destruct = bdev_file_disk_destruct,
	.submit_request = aio_submit_request,
	.io_type_supported = bdev_file_disk_io_type_supported,
	.get_io_channel = bdev_file_disk_get_io_channel,
	.dump_info_json = bdev_file_disk_dump_info_json,
	.write_config_json = aio_write_config_json,
	.get_allocation = bdev_file_disk_get_allocation,
};

static void
aio_disk_init(struct bdev_file_disk *common)
{
	struct aio_disk *disk = SL_CONTAINEROF(common, struct aio_disk, common);

	disk->fdsync = aio_probe_fdsync(common->file.fd);
	if (!disk->fdsync) {
		SL_NOTICELOG("%s: no asynchronous fdsync here; flush uses fdatasync() on the "
			     "reactor\n",
			     common->file.filename);
	}
}

static const struct bdev_file_module g_aio_file_module = {
	.module = &g_aio_module,
	.fn_table = &g_aio_fn_table,
	.product_name = "AIO disk",
	.disk_size = sizeof(struct aio_disk),
	.channel_create = aio_channel_create,
	.channel_destroy = aio_channel_destroy,
	.channel_size = sizeof(struct aio_channel),
	.disk_init = aio_disk_init,
};

int
bdev_aio_create(const struct bdev_aio_opts *opts, char *err, size_t errlen)
{
	struct bdev_file_opts fopts = {
		.filename = opts->filename,
		.block_size = opts->block_size,
		.readonly = opts->readonly,
		.use_fallocate = opts->fallocate,
	};

	return bdev_file_disk_create(&g_aio_file_module, opts->name, opts->uuid, &fopts, err,
				     errlen);
}

int
bdev_aio_delete(const char *name, sl_bdev_op_done_cb cb, void *cb_arg)
{
	return sl_bdev_unregister_by_name(name, &g_aio_module, cb, cb_arg);
}

int
bdev_aio_rescan(const char *name)
{
	return bdev_file_disk_rescan(name, &g_aio_module);
}

static int
aio_get_ctx_size(void)
{
	return (int)sizeof(struct aio_task);
}

static struct sl_bdev_module g_aio_module = {
	.name = "aio",
	.get_ctx_size = aio_get_ctx_size,
};
SL_BDEV_MODULE_REGISTER(aio, &g_aio_module)
