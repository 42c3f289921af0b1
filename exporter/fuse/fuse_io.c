/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * The request path of the FUSE export, on the reactors.
 *
 * Each mount has one channel per reactor: a clone of the session's /dev/fuse fd
 * (FUSE_DEV_IOC_CLONE), read by an fd poller on a thread of that reactor. A clone has
 * its own processing list in the kernel, so a reply must be written to the fd its
 * request was read from: libfuse (3.14) calls our writev hook with the session fd, and
 * the hook writes to the channel in tls_chan instead, which is set around
 * fuse_session_process_buf() and around every reply sent from a completion (both run
 * on the channel's own thread, so a thread-local is exact and costs no lookup).
 *
 * Requests are read into buffers of the channel's pool, FUSE_IO_HDR_ROOM -
 * FUSE_IO_WRITE_HDR bytes in, so that a WRITE's payload is page-aligned and is handed
 * to the bdev where it lies; read replies are built in the same buffer. Our code
 * allocates nothing per request; libfuse itself callocs a struct fuse_req per request
 * (fuse_session_process_buf), which its API gives no way around.
 *
 * Direct writes run in parallel: libfuse 3.14 cannot set FOPEN_PARALLEL_DIRECT_WRITES,
 * so the writev hook adds it to the open reply (fuse_io_mark_open_reply()).
 *
 * Range lock. Unaligned writes, and fallocate with unaligned edges, are
 * read-modify-writes of their edge blocks; another write to those blocks in flight at
 * the same time (from any reactor) would be lost. Aligned writes normally take a fast
 * path that touches no lock: they count themselves in their channel's fast_writes and
 * go, if the export's slow_count is 0. Otherwise, and always for read-modify-writes,
 * a request enters the export's list (a mutex guards it) and waits for every earlier
 * overlapping entry; a read-modify-write also waits for the fast writes in flight to
 * drain (they are few and short: none start while slow_count is non-zero). The fast
 * path's increment-then-check and the slow path's increment-then-sum are a Dekker pair
 * (seq_cst atomics): at least one side sees the other. A request granted by another
 * thread's release is resumed on its own thread by a message.
 */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fuse.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sluice/log.h"

#include "fuse_internal.h"

/* The channel whose request is being processed or answered on this OS thread. */
static __thread struct fuse_chan *tls_chan;
/* The request context of the request being processed, until a handler claims it. */
static __thread struct fuse_io *tls_io;
/* The next reply is an open reply to patch (set by fuse_io_mark_open_reply). */
static __thread bool tls_open_reply;

static void fuse_io_advance(struct fuse_io *io);
static void fuse_io_submit(struct fuse_io *io);

/* ---- custom I/O hooks --------------------------------------------------------- */

static void
fuse_io_patch_open(struct iovec *iov, int count)
{
	const struct fuse_out_header *out = iov[0].iov_base;
	struct fuse_open_out *arg;

	/* fuse_reply_open() sends the header and one fuse_open_out. */
	if (count != 2 || out->error != 0 || iov[1].iov_len != sizeof(*arg)) {
		return;
	}
	arg = iov[1].iov_base;
	arg->open_flags |= FOPEN_DIRECT_IO | FOPEN_PARALLEL_DIRECT_WRITES;
}

static ssize_t
fuse_io_writev_hook(int fd, struct iovec *iov, int count, void *userdata)
{
	struct fuse_chan *chan = tls_chan;

	if (tls_open_reply) {
		tls_open_reply = false;
		fuse_io_patch_open(iov, count);
	}
	/* Notifications carry no unique: any fd of the connection takes them. */
	return writev(chan != NULL ? chan->fd : fd, iov, count);
}

static ssize_t
fuse_io_read_hook(int fd, void *buf, size_t buf_len, void *userdata)
{
	/* Never called: requests are read by the channels' pollers. */
	return read(fd, buf, buf_len);
}

const struct fuse_custom_io g_fuse_custom_io = {
	.writev = fuse_io_writev_hook,
	.read = fuse_io_read_hook,
};

void
fuse_io_mark_open_reply(void)
{
	tls_open_reply = true;
}

uint8_t *
fuse_io_scratch(size_t *len)
{
	if (tls_io == NULL) {
		return NULL;
	}
	*len = FUSE_IO_MAX_XFER;
	return tls_io->buf + FUSE_IO_HDR_ROOM;
}

/* ---- ranges ------------------------------------------------------------------- */

void
fuse_io_set_range(struct fuse_io *io, uint64_t offset, uint64_t len, uint32_t bs)
{
	bool head_partial, single;

	io->offset = offset;
	io->len = len;
	io->start = SL_ALIGN_DOWN(offset, bs);
	io->end = SL_ALIGN_UP(offset + len, bs);
	single = io->end - io->start == bs;
	head_partial = offset != io->start || (single && offset + len != io->end);
	io->mid_start = io->start + (head_partial ? bs : 0);
	/* A single partial block is the head's: the tail is a different block. */
	io->mid_end = io->end - (!single && offset + len != io->end ? bs : 0);
}

static bool
fuse_io_head_partial(const struct fuse_io *io)
{
	return io->mid_start > io->start;
}

static bool
fuse_io_tail_partial(const struct fuse_io *io)
{
	return io->mid_end < io->end;
}

void
fuse_range_init(struct fuse_exp *exp)
{
	pthread_mutex_init(&exp->range_mutex, NULL);
	TAILQ_INIT(&exp->ranges);
	atomic_init(&exp->slow_count, 0);
}

void
fuse_range_fini(struct fuse_exp *exp)
{
	pthread_mutex_destroy(&exp->range_mutex);
}

static bool
fuse_range_overlaps(const struct fuse_io *a, const struct fuse_io *b)
{
	return a->start < b->end && b->start < a->end;
}

/* Under range_mutex: may io run? */
static bool
fuse_range_can_run(struct fuse_exp *exp, struct fuse_io *io)
{
	struct fuse_io *e;
	uint32_t i;

	for (e = TAILQ_FIRST(&exp->ranges); e != io; e = TAILQ_NEXT(e, range_link)) {
		if (fuse_range_overlaps(e, io)) {
			return false;
		}
	}
	if (io->needs_drain) {
		for (i = 0; i < exp->mnt->num_chans; i++) {
			if (atomic_load(&exp->chans[i].fast_writes) != 0) {
				return false;
			}
		}
	}
	return true;
}

static void
fuse_range_granted_msg(void *ctx)
{
	fuse_io_advance(ctx);
}

/* Under range_mutex: resume the waiters that may now run, each on its own thread. */
static void
fuse_range_grant_locked(struct fuse_exp *exp)
{
	struct fuse_io *e;
	int rc;

	TAILQ_FOREACH (e, &exp->ranges, range_link) {
		if (e->hold != FUSE_RANGE_WAITING || !fuse_range_can_run(exp, e)) {
			continue;
		}
		rc = sl_thread_send_msg(e->chan->thread, fuse_range_granted_msg, e);
		if (rc != 0) {
			/* Stays waiting: the next release or kick tries again. */
			SL_ERRLOG("fuse %s: cannot resume a write: %s\n", exp->mnt->path,
				  strerror(-rc));
			continue;
		}
		e->hold = FUSE_RANGE_HELD;
	}
}

static void
fuse_range_kick(struct fuse_exp *exp)
{
	pthread_mutex_lock(&exp->range_mutex);
	fuse_range_grant_locked(exp);
	pthread_mutex_unlock(&exp->range_mutex);
}

/* \return true if io holds its range now; else it is resumed once granted. */
static bool
fuse_range_acquire(struct fuse_io *io)
{
	struct fuse_exp *exp = io->exp;
	struct fuse_exp_chan *ec = &exp->chans[io->chan->index];
	bool granted;

	io->needs_drain = io->mid_start != io->start || io->mid_end != io->end;
	if (!io->needs_drain) {
		atomic_fetch_add(&ec->fast_writes, 1);
		if (sl_likely(atomic_load(&exp->slow_count) == 0)) {
			io->hold = FUSE_RANGE_FAST;
			return true;
		}
		atomic_fetch_sub(&ec->fast_writes, 1);
		/* A read-modify-write may have seen our transient count. */
		fuse_range_kick(exp);
	}
	pthread_mutex_lock(&exp->range_mutex);
	TAILQ_INSERT_TAIL(&exp->ranges, io, range_link);
	atomic_fetch_add(&exp->slow_count, 1);
	granted = fuse_range_can_run(exp, io);
	io->hold = granted ? FUSE_RANGE_HELD : FUSE_RANGE_WAITING;
	pthread_mutex_unlock(&exp->range_mutex);
	return granted;
}

static void
fuse_range_release(struct fuse_io *io)
{
	struct fuse_exp *exp = io->exp;

	switch (io->hold) {
	case FUSE_RANGE_FAST:
		atomic_fetch_sub(&exp->chans[io->chan->index].fast_writes, 1);
		if (atomic_load(&exp->slow_count) != 0) {
			fuse_range_kick(exp);
		}
		break;
	case FUSE_RANGE_HELD:
	case FUSE_RANGE_WAITING:
		pthread_mutex_lock(&exp->range_mutex);
		TAILQ_REMOVE(&exp->ranges, io, range_link);
		atomic_fetch_sub(&exp->slow_count, 1);
		fuse_range_grant_locked(exp);
		pthread_mutex_unlock(&exp->range_mutex);
		break;
	case FUSE_RANGE_NONE:
		break;
	}
	io->hold = FUSE_RANGE_NONE;
}

/* ---- request contexts ------------------------------------------------------------ */

/*
 * Take the request context being processed for an I/O on ino. Replies and returns
 * NULL when the request cannot go to the bdev.
 */
static struct fuse_io *
fuse_io_claim(fuse_req_t req, fuse_ino_t ino, bool write)
{
	struct fuse_chan *chan = tls_chan;
	struct fuse_io *io = tls_io;
	struct fuse_exp_chan *ec;
	struct fuse_exp *exp;

	assert(chan != NULL && io != NULL);
	exp = fuse_ino_to_exp(chan->mnt, ino);
	if (exp == NULL) {
		fuse_reply_err(req, EISDIR);
		return NULL;
	}
	if (atomic_load_explicit(&exp->removing, memory_order_acquire)) {
		fuse_reply_err(req, ENODEV);
		return NULL;
	}
	if (write && exp->read_only) {
		fuse_reply_err(req, EROFS);
		return NULL;
	}
	ec = &exp->chans[chan->index];
	if (sl_unlikely(ec->ch == NULL)) {
		/* First I/O of this export on this channel. */
		ec->ch = sl_bdev_get_io_channel(exp->desc);
		if (ec->ch == NULL) {
			fuse_reply_err(req, EIO);
			return NULL;
		}
	}
	tls_io = NULL;
	io->claimed = true;
	io->req = req;
	io->exp = exp;
	io->status = 0;
	io->steps = 0;
	io->hold = FUSE_RANGE_NONE;
	io->needs_drain = false;
	ec->inflight++;
	chan->inflight++;
	return io;
}

static void
fuse_io_reply(struct fuse_io *io)
{
	struct fuse_chan *prev = tls_chan;

	tls_chan = io->chan;
	if (io->status != 0) {
		fuse_reply_err(io->req, -io->status);
	} else if (io->type == FUSE_IO_READ) {
		fuse_reply_buf(io->req,
			       (const char *)io->buf + FUSE_IO_HDR_ROOM + (io->offset - io->start),
			       io->len);
	} else if (io->type == FUSE_IO_WRITE) {
		fuse_reply_write(io->req, io->len);
	} else {
		fuse_reply_err(io->req, 0);
	}
	tls_chan = prev;
}

static void
fuse_io_finish(struct fuse_io *io)
{
	struct fuse_chan *chan = io->chan;
	struct fuse_exp *exp = io->exp;
	struct fuse_exp_chan *ec = &exp->chans[chan->index];

	fuse_range_release(io);
	fuse_io_reply(io);
	io->req = NULL;
	ec->inflight--;
	chan->inflight--;
	STAILQ_INSERT_HEAD(&chan->free_ios, io, free_link);
	if (chan->paused && !chan->stopping && !chan->dead) {
		chan->paused = false;
		sl_poller_resume(chan->poller);
	}
	if (ec->inflight == 0 && ec->quiesce_pending) {
		fuse_exp_chan_quiesce(exp, chan);
	}
	if (chan->stopping && chan->inflight == 0) {
		fuse_chan_stop(chan);
	}
}

/* ---- steps ----------------------------------------------------------------------- */

static bool
fuse_exp_reads_zero(struct fuse_exp *exp, uint64_t offset, uint64_t len)
{
	struct sl_bdev_extent ext[16];
	uint64_t pos = offset, end = offset + len;
	int n, i;

	while (pos < end) {
		n = sl_bdev_get_allocation(exp->desc, pos, end - pos, ext, SL_COUNTOF(ext));
		if (n <= 0) {
			return false;
		}
		for (i = 0; i < n; i++) {
			if (!(ext[i].flags & SL_BDEV_EXTENT_ZERO)) {
				return false;
			}
			pos = ext[i].offset + ext[i].length;
		}
	}
	return true;
}

static void
fuse_io_step_done(void *cb_arg, int status)
{
	struct fuse_io *io = cb_arg;
	struct fuse_exp *exp = io->exp;

	if (status != 0) {
		io->status = status;
	} else if (io->cur_step == FUSE_STEP_MAIN && io->type == FUSE_IO_PUNCH && exp->has_unmap &&
		   !fuse_exp_reads_zero(exp, io->mid_start, io->mid_end - io->mid_start)) {
		/* The module's unmap may leave data behind; a hole must read as zeroes. */
		io->steps |= FUSE_STEP_ZERO_CHECK;
	}
	fuse_io_advance(io);
}

/* Put the user's bytes into the edge blocks and describe the whole-block write. */
static void
fuse_io_build_write(struct fuse_io *io)
{
	uint32_t bs = io->exp->block_size;
	uint64_t user_end = io->offset + io->len;
	uint64_t n;

	io->iovcnt = 0;
	if (fuse_io_head_partial(io)) {
		n = SL_MIN(user_end, io->start + bs) - io->offset;
		memcpy(io->head + (io->offset - io->start), io->data, n);
		io->iov[io->iovcnt++] = (struct iovec){.iov_base = io->head, .iov_len = bs};
	}
	if (io->mid_end > io->mid_start) {
		io->iov[io->iovcnt++] = (struct iovec){
			.iov_base = (void *)(uintptr_t)(io->data + (io->mid_start - io->offset)),
			.iov_len = io->mid_end - io->mid_start,
		};
	}
	if (fuse_io_tail_partial(io)) {
		n = user_end - (io->end - bs);
		memcpy(io->tail, io->data + (io->end - bs - io->offset), n);
		io->iov[io->iovcnt++] = (struct iovec){.iov_base = io->tail, .iov_len = bs};
	}
}

static int
fuse_io_submit_main(struct fuse_io *io, struct sl_io_channel *ch)
{
	struct sl_bdev_desc *desc = io->exp->desc;
	uint64_t mid_len = io->mid_end - io->mid_start;

	switch (io->type) {
	case FUSE_IO_READ:
		return sl_bdev_read(desc, ch, io->buf + FUSE_IO_HDR_ROOM, io->start,
				    io->end - io->start, fuse_io_step_done, io);
	case FUSE_IO_WRITE:
		fuse_io_build_write(io);
		return sl_bdev_writev(desc, ch, io->iov, io->iovcnt, io->start, io->end - io->start,
				      fuse_io_step_done, io);
	case FUSE_IO_ZERO:
		return sl_bdev_write_zeroes(desc, ch, io->mid_start, mid_len, fuse_io_step_done,
					    io);
	case FUSE_IO_PUNCH:
		if (io->exp->has_unmap) {
			return sl_bdev_unmap(desc, ch, io->mid_start, mid_len, fuse_io_step_done,
					     io);
		}
		return sl_bdev_write_zeroes(desc, ch, io->mid_start, mid_len, fuse_io_step_done,
					    io);
	case FUSE_IO_FLUSH:
		return sl_bdev_flush(desc, ch, 0, 0, fuse_io_step_done, io);
	case FUSE_IO_ALLOC:
		/* Answered in fuse_op_fallocate, never submitted. */
		break;
	}
	return -EINVAL;
}

static int
fuse_io_submit_step(struct fuse_io *io)
{
	struct fuse_exp *exp = io->exp;
	struct sl_io_channel *ch = exp->chans[io->chan->index].ch;
	uint32_t bs = exp->block_size;
	uint64_t user_end = io->offset + io->len;

	switch (io->cur_step) {
	case FUSE_STEP_HEAD_READ:
		return sl_bdev_read(exp->desc, ch, io->head, io->start, bs, fuse_io_step_done, io);
	case FUSE_STEP_HEAD_ZERO:
		memset(io->head + (io->offset - io->start), 0,
		       SL_MIN(user_end, io->start + bs) - io->offset);
		return sl_bdev_write(exp->desc, ch, io->head, io->start, bs, fuse_io_step_done, io);
	case FUSE_STEP_TAIL_READ:
		return sl_bdev_read(exp->desc, ch, io->tail, io->end - bs, bs, fuse_io_step_done,
				    io);
	case FUSE_STEP_TAIL_ZERO:
		memset(io->tail, 0, user_end - (io->end - bs));
		return sl_bdev_write(exp->desc, ch, io->tail, io->end - bs, bs, fuse_io_step_done,
				     io);
	case FUSE_STEP_MAIN:
		return fuse_io_submit_main(io, ch);
	case FUSE_STEP_ZERO_CHECK:
		return sl_bdev_write_zeroes(exp->desc, ch, io->mid_start,
					    io->mid_end - io->mid_start, fuse_io_step_done, io);
	}
	return -EINVAL;
}

static void
fuse_io_retry(void *cb_arg)
{
	fuse_io_submit(cb_arg);
}

static void
fuse_io_submit(struct fuse_io *io)
{
	struct fuse_exp *exp = io->exp;
	struct sl_io_channel *ch = exp->chans[io->chan->index].ch;
	int rc, tries;

	for (tries = 0; tries < 4; tries++) {
		rc = fuse_io_submit_step(io);
		if (rc != -ENOMEM) {
			break;
		}
		/* The channel's descriptors are all in flight: resubmit when one returns. */
		io->wait.bdev = sl_bdev_desc_get_bdev(exp->desc);
		io->wait.cb_fn = fuse_io_retry;
		io->wait.cb_arg = io;
		if (sl_bdev_queue_io_wait(io->wait.bdev, ch, &io->wait) == 0) {
			return;
		}
	}
	if (rc != 0) {
		io->status = rc;
		fuse_io_finish(io);
	}
}

static void
fuse_io_advance(struct fuse_io *io)
{
	if (io->status != 0 || io->steps == 0) {
		fuse_io_finish(io);
		return;
	}
	io->cur_step = io->steps & -io->steps;
	io->steps &= ~io->cur_step;
	fuse_io_submit(io);
}

/* Steps of a write-type request over its range, then go once the range is held. */
static void
fuse_io_start_write(struct fuse_io *io)
{
	bool zeroing = io->type == FUSE_IO_ZERO || io->type == FUSE_IO_PUNCH;

	io->head = io->buf + FUSE_IO_HDR_ROOM + FUSE_IO_MAX_XFER;
	io->tail = io->head + FUSE_IO_MAX_BLOCK;
	io->steps = 0;
	if (fuse_io_head_partial(io)) {
		io->steps |= FUSE_STEP_HEAD_READ | (zeroing ? FUSE_STEP_HEAD_ZERO : 0);
	}
	if (fuse_io_tail_partial(io)) {
		io->steps |= FUSE_STEP_TAIL_READ | (zeroing ? FUSE_STEP_TAIL_ZERO : 0);
	}
	if (!zeroing || io->mid_end > io->mid_start) {
		io->steps |= FUSE_STEP_MAIN;
	}
	if (fuse_range_acquire(io)) {
		fuse_io_advance(io);
	}
}

/* ---- handlers ------------------------------------------------------------------ */

void
fuse_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fuse_io *io = fuse_io_claim(req, ino, false);
	struct fuse_exp *exp;

	if (io == NULL) {
		return;
	}
	exp = io->exp;
	io->type = FUSE_IO_READ;
	if (off < 0 || (uint64_t)off >= exp->size || size == 0) {
		/* At or past the end: a short (empty) read. */
		io->offset = io->start = 0;
		io->len = 0;
		fuse_io_finish(io);
		return;
	}
	size = SL_MIN(size, FUSE_IO_MAX_XFER);
	fuse_io_set_range(io, off, SL_MIN((uint64_t)size, exp->size - off), exp->block_size);
	io->steps = FUSE_STEP_MAIN;
	fuse_io_advance(io);
}

void
fuse_op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv, off_t off,
		  struct fuse_file_info *fi)
{
	struct fuse_io *io = fuse_io_claim(req, ino, true);
	uint8_t *payload;
	struct fuse_exp *exp;
	size_t size;

	if (io == NULL) {
		return;
	}
	exp = io->exp;
	io->type = FUSE_IO_WRITE;
	size = fuse_buf_size(bufv);
	payload = io->buf + FUSE_IO_HDR_ROOM;
	if (bufv->count != 1 || (bufv->buf[0].flags & FUSE_BUF_IS_FD) || size > FUSE_IO_MAX_XFER) {
		io->status = -EINVAL;
		fuse_io_finish(io);
		return;
	}
	if (bufv->buf[0].mem != payload) {
		/* Not where a WRITE header puts it (never, with the kernel's layout). */
		memmove(payload, bufv->buf[0].mem, size);
	}
	io->data = payload;
	if (off < 0 || (uint64_t)off >= exp->size) {
		io->status = size == 0 ? 0 : -ENOSPC;
		io->len = 0;
		fuse_io_finish(io);
		return;
	}
	if (size == 0) {
		io->len = 0;
		fuse_io_finish(io);
		return;
	}
	/* A write straddling the end is short, as on a block device. */
	fuse_io_set_range(io, off, SL_MIN((uint64_t)size, exp->size - off), exp->block_size);
	fuse_io_start_write(io);
}

static void
fuse_op_flush_common(fuse_req_t req, fuse_ino_t ino)
{
	struct fuse_chan *chan = tls_chan;
	struct fuse_exp *exp = fuse_ino_to_exp(chan->mnt, ino);
	struct fuse_io *io;

	if (exp != NULL && exp->read_only) {
		fuse_reply_err(req, 0);
		return;
	}
	io = fuse_io_claim(req, ino, true);
	if (io == NULL) {
		return;
	}
	io->type = FUSE_IO_FLUSH;
	io->offset = io->start = 0;
	io->len = 0;
	io->steps = FUSE_STEP_MAIN;
	fuse_io_advance(io);
}

void
fuse_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_op_flush_common(req, ino);
}

void
fuse_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	fuse_op_flush_common(req, ino);
}

/*
 * Modes: PUNCH_HOLE|KEEP_SIZE and ZERO_RANGE write zeroes (or unmap); mode 0 (plain
 * allocation, posix_fallocate) has nothing to do: every block of the file is there
 * for as long as the bdev is, so inside the file it succeeds as it is. (A thin bdev --
 * aio on a sparse file -- may still fail a later write for space: the host file
 * system's preallocation is the bdev's business, not the export's.) Others:
 * EOPNOTSUPP, as the kernel's own block devices answer.
 *
 * The file's size is the bdev's and cannot change, so a range past the end is cut at
 * the end with KEEP_SIZE, and without it fails with ENOSPC: the file would have to
 * grow and there is no room, which is what a write past the end already answers here
 * (and on a block device). A Linux block device gives EINVAL for a fallocate past its
 * end, but this is a regular file to its users, for whom EINVAL means a bad argument
 * (a negative offset, a zero length). EFBIG is the file system's size limit
 * (s_maxbytes), which the kernel checks itself before the request comes here, and is
 * not what writes past the end say.
 */
void
fuse_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
		  struct fuse_file_info *fi)
{
	bool keep_size = mode & FALLOC_FL_KEEP_SIZE;
	enum fuse_io_type type;
	struct fuse_exp *exp;
	struct fuse_io *io;
	uint64_t end;

	if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
		type = FUSE_IO_PUNCH;
	} else if ((mode & ~FALLOC_FL_KEEP_SIZE) == FALLOC_FL_ZERO_RANGE) {
		type = FUSE_IO_ZERO;
	} else if ((mode & ~FALLOC_FL_KEEP_SIZE) == 0) {
		type = FUSE_IO_ALLOC;
	} else {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (offset < 0 || length <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	io = fuse_io_claim(req, ino, true);
	if (io == NULL) {
		return;
	}
	exp = io->exp;
	io->type = type;
	io->offset = io->start = 0;
	io->len = 0;
	end = (uint64_t)offset + (uint64_t)length;
	if (end > exp->size && !keep_size) {
		/* The file cannot grow (see above). */
		io->status = -ENOSPC;
	}
	if (io->status != 0 || (uint64_t)offset >= exp->size || type == FUSE_IO_ALLOC) {
		fuse_io_finish(io);
		return;
	}
	fuse_io_set_range(io, offset, SL_MIN(end, exp->size) - offset, exp->block_size);
	fuse_io_start_write(io);
}

int64_t
fuse_seek_extents(struct sl_bdev_desc *desc, uint64_t size, uint64_t off, int whence)
{
	struct sl_bdev_extent ext[64];
	uint64_t pos = off;
	bool hole;
	int n, i;

	if (off >= size) {
		return -ENXIO;
	}
	while (pos < size) {
		n = sl_bdev_get_allocation(desc, pos, size - pos, ext, SL_COUNTOF(ext));
		if (n < 0) {
			return n;
		}
		if (n == 0) {
			break;
		}
		for (i = 0; i < n; i++) {
			hole = ext[i].flags & SL_BDEV_EXTENT_HOLE;
			if (hole == (whence == SEEK_HOLE)) {
				return (int64_t)SL_MAX(ext[i].offset, off);
			}
			pos = ext[i].offset + ext[i].length;
		}
	}
	/* No data after off: ENXIO; no hole: the implicit one at the end. */
	return whence == SEEK_DATA ? -ENXIO : (int64_t)size;
}

void
fuse_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	struct fuse_exp *exp = fuse_ino_to_exp(tls_chan->mnt, ino);
	int64_t pos;

	if (exp == NULL || atomic_load(&exp->removing)) {
		fuse_reply_err(req, exp == NULL ? EISDIR : ENODEV);
		return;
	}
	if ((whence != SEEK_DATA && whence != SEEK_HOLE) || off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	pos = fuse_seek_extents(exp->desc, exp->size, off, whence);
	if (pos < 0) {
		fuse_reply_err(req, (int)-pos);
		return;
	}
	fuse_reply_lseek(req, pos);
}

/* ---- channels ------------------------------------------------------------------ */

int
fuse_chan_init(struct fuse_chan *chan, struct fuse_mnt *mnt, uint32_t index, int session_fd)
{
	uint32_t sfd = (uint32_t)session_fd, i;
	size_t len = (size_t)FUSE_CHAN_IO_COUNT * FUSE_IO_BUF_SIZE;
	int rc;

	chan->mnt = mnt;
	chan->index = index;
	STAILQ_INIT(&chan->free_ios);
	chan->fd = open("/dev/fuse", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (chan->fd < 0) {
		rc = -errno;
		SL_ERRLOG("fuse %s: open /dev/fuse: %s\n", mnt->path, strerror(-rc));
		return rc;
	}
	if (ioctl(chan->fd, FUSE_DEV_IOC_CLONE, &sfd) != 0) {
		rc = -errno;
		SL_ERRLOG("fuse %s: FUSE_DEV_IOC_CLONE: %s\n", mnt->path, strerror(-rc));
		return rc;
	}
	/* Untouched pages cost nothing: 4 KiB I/O touches a few pages of each buffer. */
	chan->bufs = mmap(NULL, len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (chan->bufs == MAP_FAILED) {
		chan->bufs = NULL;
		return -ENOMEM;
	}
	chan->ios = calloc(FUSE_CHAN_IO_COUNT, sizeof(*chan->ios));
	if (chan->ios == NULL) {
		return -ENOMEM;
	}
	for (i = FUSE_CHAN_IO_COUNT; i-- > 0;) {
		chan->ios[i].chan = chan;
		chan->ios[i].buf = chan->bufs + (size_t)i * FUSE_IO_BUF_SIZE;
		STAILQ_INSERT_HEAD(&chan->free_ios, &chan->ios[i], free_link);
	}
	return 0;
}

void
fuse_chan_fini(struct fuse_chan *chan)
{
	if (chan->fd >= 0) {
		close(chan->fd);
		chan->fd = -1;
	}
	if (chan->bufs != NULL) {
		munmap(chan->bufs, (size_t)FUSE_CHAN_IO_COUNT * FUSE_IO_BUF_SIZE);
		chan->bufs = NULL;
	}
	free(chan->ios);
	chan->ios = NULL;
}

static void
fuse_chan_dead(struct fuse_chan *chan)
{
	if (chan->dead) {
		return;
	}
	/* Unmounted behind our back, or aborted through /sys/fs/fuse/connections. */
	chan->dead = true;
	sl_poller_pause(chan->poller);
	fuse_mnt_stop_async(chan->mnt);
}

static void
fuse_chan_process(struct fuse_chan *chan, struct fuse_io *io, size_t len)
{
	struct fuse_buf fbuf = {
		.mem = io->buf + FUSE_IO_HDR_ROOM - FUSE_IO_WRITE_HDR,
		.size = len,
	};

	io->claimed = false;
	tls_chan = chan;
	tls_io = io;
	fuse_session_process_buf(chan->mnt->se, &fbuf);
	tls_chan = NULL;
	tls_io = NULL;
	if (!io->claimed) {
		STAILQ_INSERT_HEAD(&chan->free_ios, io, free_link);
	}
}

static int
fuse_chan_poll(void *arg)
{
	struct fuse_chan *chan = arg;
	struct fuse_io *io;
	uint32_t n;
	ssize_t r;

	for (n = 0; n < FUSE_CHAN_READ_BATCH; n++) {
		io = STAILQ_FIRST(&chan->free_ios);
		if (io == NULL) {
			/* Out of contexts: the kernel keeps the rest until one returns. */
			chan->paused = true;
			sl_poller_pause(chan->poller);
			break;
		}
		r = read(chan->fd, io->buf + FUSE_IO_HDR_ROOM - FUSE_IO_WRITE_HDR,
			 FUSE_IO_BUF_SIZE - FUSE_IO_HDR_ROOM + FUSE_IO_WRITE_HDR);
		if (r < 0) {
			/* ENOENT: the request was interrupted before we read it. */
			if (errno == EINTR || errno == ENOENT) {
				continue;
			}
			if (errno == ENODEV) {
				fuse_chan_dead(chan);
			} else if (errno != EAGAIN) {
				SL_ERRLOG("fuse %s: read /dev/fuse: %s\n", chan->mnt->path,
					  strerror(errno));
			}
			break;
		}
		if ((size_t)r < sizeof(struct fuse_in_header)) {
			SL_ERRLOG("fuse %s: short read on /dev/fuse (%zd bytes)\n", chan->mnt->path,
				  r);
			continue;
		}
		STAILQ_REMOVE_HEAD(&chan->free_ios, free_link);
		fuse_chan_process(chan, io, (size_t)r);
	}
	return n > 0 ? SL_POLLER_BUSY : SL_POLLER_IDLE;
}

int
fuse_chan_start(struct fuse_chan *chan)
{
	char name[32];

	snprintf(name, sizeof(name), "fuse%u", chan->index);
	chan->poller = sl_poller_register_fd(chan->fd, EPOLLIN, fuse_chan_poll, chan, name);
	if (chan->poller == NULL) {
		return errno != 0 ? -errno : -ENOMEM;
	}
	return 0;
}

static void
fuse_chan_finished_msg(void *ctx)
{
	fuse_chan_finished(ctx);
}

static void
fuse_chan_put_exp_channels(struct fuse_chan *chan, struct fuse_exp *exp)
{
	struct fuse_exp_chan *ec = &exp->chans[chan->index];

	if (ec->ch != NULL) {
		sl_put_io_channel(ec->ch);
		ec->ch = NULL;
	}
}

/*
 * On the channel's thread: stop reading; once the requests in flight are answered,
 * put the bdev channels, close the clone fd and leave the thread. Called again from
 * fuse_io_finish() when the last request completes.
 */
void
fuse_chan_stop(struct fuse_chan *chan)
{
	struct fuse_mnt *mnt = chan->mnt;
	struct fuse_exp *exp;

	chan->stopping = true;
	sl_poller_unregister(&chan->poller);
	if (chan->inflight != 0) {
		return;
	}
	pthread_mutex_lock(&mnt->lock);
	TAILQ_FOREACH (exp, &mnt->exports, link) {
		fuse_chan_put_exp_channels(chan, exp);
	}
	TAILQ_FOREACH (exp, &mnt->removed, link) {
		fuse_chan_put_exp_channels(chan, exp);
	}
	pthread_mutex_unlock(&mnt->lock);
	/* The last fd of the connection to close aborts what the kernel still queues. */
	if (chan->fd >= 0) {
		close(chan->fd);
		chan->fd = -1;
	}
	sl_thread_exit(chan->thread);
	if (sl_thread_send_msg(sl_thread_get_app_thread(), fuse_chan_finished_msg, chan) != 0) {
		SL_ERRLOG("fuse %s: cannot report channel %u stopped\n", mnt->path, chan->index);
	}
}

static void
fuse_exp_quiesced_msg(void *ctx)
{
	fuse_exp_chan_quiesced(ctx);
}

void
fuse_exp_chan_quiesce(struct fuse_exp *exp, struct fuse_chan *chan)
{
	struct fuse_exp_chan *ec = &exp->chans[chan->index];

	if (ec->inflight != 0) {
		ec->quiesce_pending = true;
		return;
	}
	ec->quiesce_pending = false;
	fuse_chan_put_exp_channels(chan, exp);
	if (sl_thread_send_msg(sl_thread_get_app_thread(), fuse_exp_quiesced_msg, exp) != 0) {
		SL_ERRLOG("fuse %s: cannot report removal of %s\n", exp->mnt->path, exp->name);
	}
}
