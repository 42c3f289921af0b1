/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/* The I/O path: submit, split, bounce, emulate, hand to the module, retry on
 * -ENOMEM, complete. Runs on the channel's thread only; allocates nothing and takes
 * no lock. Every descriptor comes from the channel's pool.
 *
 * The one rule that shapes it: a user callback never runs inside the user's submit
 * call (nor a split child's completion inside its parent's submit loop). Every
 * completion that happens while t_bdev_submit_depth > 0 -- a module finishing inline,
 * an early error -- goes to the channel's done list, which the channel poller drains.
 * Completions from a module's own poller (depth 0) run at once. */

#include <errno.h>
#include <string.h>

#include "sluice/env.h"
#include "sluice/log.h"
#include "sluice/util.h"

#include "bdev_internal.h"

/* Depth of submit calls on this OS thread: completions inside one are deferred.
 * initial-exec: two instructions to reach it, also when built as a shared library. */
static __thread uint32_t t_bdev_submit_depth __attribute__((tls_model("initial-exec")));

static void bdev_split_continue(struct sl_bdev_io *parent);
static void bdev_io_submit_bounced(struct sl_bdev_io *io);

/* ---- Pool -------------------------------------------------------------------- */

static inline struct sl_bdev_io *
bdev_io_get(struct bdev_channel *bch)
{
	struct sl_bdev_io *io = STAILQ_FIRST(&bch->free_ios);

	if (sl_likely(io != NULL)) {
		STAILQ_REMOVE_HEAD(&bch->free_ios, internal.link);
		bch->in_use++;
	}
	return io;
}

/* A descriptor came back and someone waits for one, or the channel is a zombie. */
static void
bdev_io_release_wake(struct bdev_channel *bch)
{
	struct sl_bdev_io_wait_entry *w;
	struct sl_bdev_io *parent;

	if (!STAILQ_EMPTY(&bch->split_wait)) {
		/* Split parents first: they hold user I/O that is already accepted. */
		parent = STAILQ_FIRST(&bch->split_wait);
		STAILQ_REMOVE_HEAD(&bch->split_wait, internal.link);
		bdev_split_continue(parent);
	} else if (!TAILQ_EMPTY(&bch->io_wait)) {
		w = TAILQ_FIRST(&bch->io_wait);
		TAILQ_REMOVE(&bch->io_wait, w, link);
		w->cb_fn(w->cb_arg);
	}
	if (bch->zombie && bch->in_use == 0) {
		bdev_channel_kick(bch);
	}
}

/* Return a descriptor to the pool and wake whoever waits for one. */
static inline void
bdev_io_put(struct sl_bdev_io *io)
{
	struct bdev_channel *bch = io->internal.ch;

	STAILQ_INSERT_HEAD(&bch->free_ios, io, internal.link);
	bch->in_use--;
	if (sl_unlikely(!STAILQ_EMPTY(&bch->split_wait) || !TAILQ_EMPTY(&bch->io_wait) ||
			bch->zombie)) {
		bdev_io_release_wake(bch);
	}
}

/* ---- Completion -------------------------------------------------------------- */

/* Complete later from the poller: for errors found while still inside a submit. */
static void
bdev_io_defer_done(struct sl_bdev_io *io, int status)
{
	struct bdev_channel *bch = io->internal.ch;

	io->internal.status = status;
	STAILQ_INSERT_TAIL(&bch->done_ios, io, internal.link);
	bdev_channel_kick(bch);
}

static inline void
bdev_io_call_module(struct sl_bdev_io *io)
{
	struct bdev_channel *bch = io->internal.ch;

	bch->in_module++;
	t_bdev_submit_depth++;
	io->bdev->fn_table->submit_request(bch->module_ch, io);
	t_bdev_submit_depth--;
}

static inline void
bdev_io_submit_module(struct sl_bdev_io *io)
{
	struct bdev_channel *bch = io->internal.ch;

	if (sl_unlikely(bch->nomem_count > 0)) {
		/* Behind the I/O the module already refused, to keep their order. */
		STAILQ_INSERT_TAIL(&bch->nomem_ios, io, internal.link);
		bch->nomem_count++;
		bdev_channel_kick(bch);
		return;
	}
	bdev_io_call_module(io);
}

void
bdev_channel_retry_nomem(struct bdev_channel *bch, uint32_t max)
{
	struct sl_bdev_io *io;

	/* Bounded by max: an I/O refused again goes back on the list. */
	while (max-- > 0 && (io = STAILQ_FIRST(&bch->nomem_ios)) != NULL) {
		STAILQ_REMOVE_HEAD(&bch->nomem_ios, internal.link);
		bch->nomem_count--;
		bdev_io_call_module(io);
	}
}

static void bdev_io_complete_polled(struct bdev_channel *bch, struct sl_bdev_io *io);

void
sl_bdev_io_complete(struct sl_bdev_io *io, int status)
{
	struct bdev_channel *bch = io->internal.ch;

	bch->in_module--;
	if (sl_unlikely(status == -ENOMEM)) {
		STAILQ_INSERT_TAIL(&bch->nomem_ios, io, internal.link);
		bch->nomem_count++;
		if (bch->in_module == 0) {
			bdev_channel_kick(bch);
		}
		return;
	}
	io->internal.status = status;
	if (sl_likely(t_bdev_submit_depth > 0)) {
		STAILQ_INSERT_TAIL(&bch->done_ios, io, internal.link);
		bdev_channel_kick(bch);
		return;
	}
	bdev_io_complete_polled(bch, io);
}

static void
bdev_io_unbounce(struct sl_bdev_io *io)
{
	struct bdev_channel *bch = io->internal.ch;
	struct sl_bdev_io *waiter;

	if (io->type == SL_BDEV_IO_TYPE_READ && io->internal.status == 0) {
		sl_bdev_copy_to_iovs(io->internal.orig_iovs, io->internal.orig_iovcnt,
				     io->internal.bounce_buf, sl_bdev_io_get_nbytes(io));
	}
	io->iovs = io->internal.orig_iovs;
	io->iovcnt = io->internal.orig_iovcnt;
	bch->bounce_free[bch->bounce_free_count++] = io->internal.bounce_buf;
	io->internal.bounce_buf = NULL;
	waiter = STAILQ_FIRST(&bch->bounce_wait);
	if (waiter != NULL) {
		STAILQ_REMOVE_HEAD(&bch->bounce_wait, internal.link);
		bdev_io_submit_bounced(waiter);
	}
}

static inline void
bdev_io_finish_user(struct sl_bdev_io *io)
{
	struct bdev_channel *bch = io->internal.ch;
	int status = io->internal.status;
	sl_bdev_io_done_cb cb;
	void *cb_arg;

	if (sl_unlikely(io->internal.fua_flush)) {
		io->internal.fua_flush = false;
		if (status == 0) {
			/* FUA without module support: the write is done, now flush it. */
			io->type = SL_BDEV_IO_TYPE_FLUSH;
			bdev_io_submit_module(io);
			return;
		}
	}
	if (bch->stats_on) {
		bdev_stat_account(bch, io, status);
	}
	cb = io->internal.cb;
	cb_arg = io->internal.cb_arg;
	/* Back in the pool first, so the callback can submit the next I/O with it. */
	bdev_io_put(io);
	cb(cb_arg, status);
}

static void
bdev_io_child_done(struct sl_bdev_io *child)
{
	struct sl_bdev_io *parent = child->internal.parent;
	int status = child->internal.status;

	if (status != 0 && parent->internal.status == 0) {
		parent->internal.status = status;
	}
	parent->internal.split_outstanding--;
	bdev_io_put(child);
	bdev_split_continue(parent);
}

static inline void
bdev_io_complete_now(struct sl_bdev_io *io)
{
	struct bdev_channel *bch = io->internal.ch;

	if (sl_unlikely(io->internal.bounce_buf != NULL)) {
		bdev_io_unbounce(io);
	}
	if (sl_unlikely(bch->nomem_count > 0)) {
		/* Something completed: the module has room for one refused I/O again. */
		bdev_channel_retry_nomem(bch, 1);
	}
	if (io->internal.is_child) {
		bdev_io_child_done(io);
		return;
	}
	bdev_io_finish_user(io);
}

/* A completion from a module's poller, outside any submit: a batch of one, so the
 * callback's next submit reuses its tick read. The channel outlives the callback
 * (putting it is deferred by a message). */
static void
bdev_io_complete_polled(struct bdev_channel *bch, struct sl_bdev_io *io)
{
	uint64_t saved = bch->poll_now;

	if (bch->stats_on && saved == 0) {
		bch->poll_now = sl_get_ticks();
	}
	bdev_io_complete_now(io);
	bch->poll_now = saved;
}

int
bdev_channel_drain_done(struct bdev_channel *bch)
{
	struct bdev_io_list done;
	struct sl_bdev_io *io;
	int n = 0;

	if (STAILQ_EMPTY(&bch->done_ios)) {
		return 0;
	}
	/* Take the batch: completions queued while it runs wait for the next poll. */
	STAILQ_INIT(&done);
	STAILQ_CONCAT(&done, &bch->done_ios);
	/* One tick read for the batch, its completions and the I/O their callbacks submit. */
	if (bch->stats_on) {
		bch->poll_now = sl_get_ticks();
	}
	while ((io = STAILQ_FIRST(&done)) != NULL) {
		STAILQ_REMOVE_HEAD(&done, internal.link);
		bdev_io_complete_now(io);
		n++;
	}
	bch->poll_now = 0;
	return n;
}

void
bdev_channel_abort_queued(struct bdev_channel *bch, int status)
{
	struct sl_bdev_io *io;

	while ((io = STAILQ_FIRST(&bch->nomem_ios)) != NULL) {
		STAILQ_REMOVE_HEAD(&bch->nomem_ios, internal.link);
		bch->nomem_count--;
		bdev_io_defer_done(io, status);
	}
	while ((io = STAILQ_FIRST(&bch->bounce_wait)) != NULL) {
		STAILQ_REMOVE_HEAD(&bch->bounce_wait, internal.link);
		bdev_io_defer_done(io, status);
	}
	/* A waiting parent has no child in flight: it completes with the status. */
	while ((io = STAILQ_FIRST(&bch->split_wait)) != NULL) {
		STAILQ_REMOVE_HEAD(&bch->split_wait, internal.link);
		io->internal.split_remaining_blocks = 0;
		bdev_io_defer_done(io, status);
	}
}

/* ---- Bounce buffers ---------------------------------------------------------- */

static bool
bdev_iovs_need_bounce(const struct sl_bdev *bdev, const struct iovec *iovs, int iovcnt)
{
	uintptr_t mask = bdev->required_alignment > 1 ? bdev->required_alignment - 1 : 0;
	int i;

	for (i = 0; i < iovcnt; i++) {
		if ((((uintptr_t)iovs[i].iov_base | iovs[i].iov_len) & mask) != 0) {
			return true;
		}
		if (bdev->needs_dma && sl_vtophys(iovs[i].iov_base, NULL) == SL_IOVA_INVALID) {
			return true;
		}
	}
	return false;
}

static void
bdev_io_submit_bounced(struct sl_bdev_io *io)
{
	struct bdev_channel *bch = io->internal.ch;
	uint64_t bytes = sl_bdev_io_get_nbytes(io);
	void *buf;

	if (sl_unlikely(bch->bounce_size == 0 || bytes > bch->bounce_size)) {
		SL_ERRLOG("bdev %s: buffer needs bouncing but no bounce buffer fits %llu bytes\n",
			  io->bdev->name, (unsigned long long)bytes);
		bdev_io_defer_done(io, -EINVAL);
		return;
	}
	if (bch->bounce_free_count == 0) {
		STAILQ_INSERT_TAIL(&bch->bounce_wait, io, internal.link);
		return;
	}
	buf = bch->bounce_free[--bch->bounce_free_count];
	io->internal.orig_iovs = io->iovs;
	io->internal.orig_iovcnt = io->iovcnt;
	io->internal.bounce_buf = buf;
	if (io->type == SL_BDEV_IO_TYPE_WRITE) {
		sl_bdev_copy_from_iovs(buf, io->iovs, io->iovcnt, bytes);
	}
	io->internal.bounce_iov.iov_base = buf;
	io->internal.bounce_iov.iov_len = bytes;
	io->iovs = &io->internal.bounce_iov;
	io->iovcnt = 1;
	bdev_io_submit_module(io);
}

/* ---- Splitting --------------------------------------------------------------- */

static uint64_t
bdev_split_child_blocks(const struct sl_bdev_io *p)
{
	const struct sl_bdev *bdev = p->bdev;
	uint64_t len = p->internal.split_remaining_blocks;
	uint64_t off = p->internal.split_offset_blocks;
	uint32_t limit = p->internal.split_limit_blocks;
	uint64_t b = bdev->optimal_io_boundary;

	if (limit != 0 && len > limit) {
		len = limit;
	}
	if (bdev->split_on_optimal_io_boundary && b != 0 &&
	    (p->type == SL_BDEV_IO_TYPE_READ || p->type == SL_BDEV_IO_TYPE_WRITE ||
	     p->internal.emulate_zeroes)) {
		len = SL_MIN(len, b - off % b);
	}
	return len;
}

/* Move an iovec cursor forward by bytes. */
static void
bdev_iov_advance(const struct iovec *iovs, int iovcnt, int *idx, size_t *off, uint64_t bytes)
{
	while (bytes > 0 && *idx < iovcnt) {
		size_t avail = iovs[*idx].iov_len - *off;

		if (bytes < avail) {
			*off += bytes;
			return;
		}
		bytes -= avail;
		(*idx)++;
		*off = 0;
	}
}

/*
 * Point the child's iovecs at the next bytes of the parent's buffers, at most
 * SL_BDEV_IO_MAX_IOVS (or max_segments) entries. If the entries run out first, the
 * child is cut to whole blocks. \return the bytes the child covers (0: not one block).
 */
static uint64_t
bdev_split_fill_iovs(struct sl_bdev_io *p, struct sl_bdev_io *c, uint64_t bytes)
{
	const struct sl_bdev *bdev = p->bdev;
	int max = SL_BDEV_IO_MAX_IOVS, idx = p->internal.split_iov_idx, n = 0;
	size_t off = p->internal.split_iov_off;
	uint64_t got = 0, excess;

	if (bdev->max_segments != 0 && bdev->max_segments < (uint32_t)max) {
		max = (int)bdev->max_segments;
	}
	while (got < bytes && n < max && idx < p->iovcnt) {
		size_t avail = p->iovs[idx].iov_len - off;
		size_t take = (size_t)SL_MIN((uint64_t)avail, bytes - got);

		if (take > 0) {
			c->internal.iov_inline[n].iov_base = (uint8_t *)p->iovs[idx].iov_base + off;
			c->internal.iov_inline[n].iov_len = take;
			n++;
			got += take;
		}
		off += take;
		if (off == p->iovs[idx].iov_len) {
			idx++;
			off = 0;
		}
	}
	if (got < bytes) {
		excess = got & (bdev->blocklen - 1);
		got -= excess;
		while (excess > 0 && n > 0) {
			struct iovec *last = &c->internal.iov_inline[n - 1];

			if (last->iov_len <= excess) {
				excess -= last->iov_len;
				n--;
			} else {
				last->iov_len -= excess;
				excess = 0;
			}
		}
	}
	c->iovcnt = n;
	bdev_iov_advance(p->iovs, p->iovcnt, &p->internal.split_iov_idx, &p->internal.split_iov_off,
			 got);
	return got;
}

static int
bdev_split_build_child(struct sl_bdev_io *p, struct sl_bdev_io *c)
{
	uint64_t blocks = bdev_split_child_blocks(p);
	uint8_t shift = p->bdev->blocklen_shift;
	uint64_t bytes;

	c->type = p->type;
	c->flags = p->flags;
	c->offset_blocks = p->internal.split_offset_blocks;
	c->iovs = c->internal.iov_inline;
	c->iovcnt = 0;
	c->internal.parent = p;
	c->internal.is_child = true;
	c->internal.status = 0;
	c->internal.bounce_buf = NULL;
	c->internal.emulate_zeroes = false;
	c->internal.fua_flush = false;
	if (p->internal.emulate_zeroes) {
		c->type = SL_BDEV_IO_TYPE_WRITE;
		c->internal.iov_inline[0].iov_base = g_bdev_zero_buf;
		c->internal.iov_inline[0].iov_len = blocks << shift;
		c->iovcnt = 1;
	} else if (p->type == SL_BDEV_IO_TYPE_READ || p->type == SL_BDEV_IO_TYPE_WRITE) {
		bytes = bdev_split_fill_iovs(p, c, blocks << shift);
		if (bytes == 0) {
			return -EINVAL;
		}
		blocks = bytes >> shift;
	}
	c->num_blocks = blocks;
	p->internal.split_offset_blocks += blocks;
	p->internal.split_remaining_blocks -= blocks;
	return 0;
}

static void
bdev_io_submit_child(struct sl_bdev_io *c)
{
	if (sl_unlikely(c->bdev->bounce_check) && c->type != SL_BDEV_IO_TYPE_UNMAP &&
	    c->type != SL_BDEV_IO_TYPE_WRITE_ZEROES &&
	    bdev_iovs_need_bounce(c->bdev, c->iovs, c->iovcnt)) {
		bdev_io_submit_bounced(c);
		return;
	}
	bdev_io_submit_module(c);
}

static void
bdev_split_continue(struct sl_bdev_io *p)
{
	struct bdev_channel *bch = p->internal.ch;
	struct sl_bdev_io *c;

	while (p->internal.split_remaining_blocks > 0 && p->internal.status == 0 &&
	       p->internal.split_outstanding < BDEV_SPLIT_MAX_OUTSTANDING) {
		c = bdev_io_get(bch);
		if (c == NULL) {
			/* With children in flight their completion continues the split. */
			if (p->internal.split_outstanding == 0) {
				STAILQ_INSERT_TAIL(&bch->split_wait, p, internal.link);
			}
			return;
		}
		if (bdev_split_build_child(p, c) != 0) {
			SL_ERRLOG("bdev %s: a block of the buffer spans more than %d iovecs\n",
				  p->bdev->name, SL_BDEV_IO_MAX_IOVS);
			p->internal.status = -EINVAL;
			STAILQ_INSERT_HEAD(&bch->free_ios, c, internal.link);
			bch->in_use--;
			break;
		}
		p->internal.split_outstanding++;
		bdev_io_submit_child(c);
	}
	if (p->internal.split_outstanding == 0 &&
	    (p->internal.split_remaining_blocks == 0 || p->internal.status != 0)) {
		if (t_bdev_submit_depth > 0) {
			bdev_io_defer_done(p, p->internal.status);
		} else {
			bdev_io_finish_user(p);
		}
	}
}

static void
bdev_split_start(struct sl_bdev_io *p, uint32_t limit_blocks)
{
	struct bdev_channel *bch = p->internal.ch;

	/* Children of any size may land misaligned: keep each within a bounce buffer. */
	if (bch->bounce_blocks != 0 && p->type != SL_BDEV_IO_TYPE_UNMAP &&
	    !(p->type == SL_BDEV_IO_TYPE_WRITE_ZEROES && !p->internal.emulate_zeroes)) {
		limit_blocks = limit_blocks ? SL_MIN(limit_blocks, bch->bounce_blocks)
					    : bch->bounce_blocks;
	}
	p->internal.split_offset_blocks = p->offset_blocks;
	p->internal.split_remaining_blocks = p->num_blocks;
	p->internal.split_outstanding = 0;
	p->internal.split_limit_blocks = limit_blocks;
	p->internal.split_iov_idx = 0;
	p->internal.split_iov_off = 0;
	bdev_split_continue(p);
}

/* ---- Dispatch ---------------------------------------------------------------- */

static bool
bdev_rw_needs_split(const struct sl_bdev_io *io, uint32_t limit)
{
	const struct sl_bdev *bdev = io->bdev;
	uint64_t b = bdev->optimal_io_boundary;

	if (limit != 0 && io->num_blocks > limit) {
		return true;
	}
	if (bdev->max_segments != 0 && (uint32_t)io->iovcnt > bdev->max_segments) {
		return true;
	}
	return bdev->split_on_optimal_io_boundary && b != 0 &&
	       io->offset_blocks / b != (io->offset_blocks + io->num_blocks - 1) / b;
}

static void
bdev_io_dispatch_rw(struct sl_bdev_io *io)
{
	struct sl_bdev *bdev = io->bdev;
	struct bdev_channel *bch = io->internal.ch;
	uint32_t limit = bdev->max_transfer_blocks;
	bool bounce = false;

	if (io->flags & SL_BDEV_IO_FLAG_FUA) {
		if (!bdev->fua) {
			io->flags &= (uint8_t)~SL_BDEV_IO_FLAG_FUA;
			io->internal.fua_flush =
				bdev->write_cache && bdev->io_native[SL_BDEV_IO_TYPE_FLUSH];
		}
	}
	if (sl_unlikely(bdev->bounce_check) && bdev_iovs_need_bounce(bdev, io->iovs, io->iovcnt)) {
		bounce = true;
		if (bch->bounce_blocks != 0) {
			limit = limit ? SL_MIN(limit, bch->bounce_blocks) : bch->bounce_blocks;
		}
	}
	if (sl_unlikely(bdev->rw_split_check || bounce) && bdev_rw_needs_split(io, limit)) {
		bdev_split_start(io, limit);
	} else if (bounce) {
		bdev_io_submit_bounced(io);
	} else {
		bdev_io_submit_module(io);
	}
}

static void
bdev_io_dispatch_zeroes(struct sl_bdev_io *io)
{
	struct sl_bdev *bdev = io->bdev;
	uint32_t limit;

	if (bdev->io_native[SL_BDEV_IO_TYPE_WRITE_ZEROES]) {
		limit = bdev->max_write_zeroes_blocks;
		if (limit != 0 && io->num_blocks > limit) {
			bdev_split_start(io, limit);
		} else {
			bdev_io_submit_module(io);
		}
		return;
	}
	if ((io->internal.user_flags & SL_BDEV_IO_FLAG_NO_FALLBACK) ||
	    bdev->blocklen > BDEV_ZERO_BUF_SIZE) {
		bdev_io_defer_done(io, -ENOTSUP);
		return;
	}
	/* Writes from the shared zero buffer, one buffer's worth per child. */
	io->internal.emulate_zeroes = true;
	limit = BDEV_ZERO_BUF_SIZE >> bdev->blocklen_shift;
	if (bdev->max_transfer_blocks != 0) {
		limit = SL_MIN(limit, bdev->max_transfer_blocks);
	}
	bdev_split_start(io, limit);
}

static void
bdev_io_dispatch(struct sl_bdev_io *io)
{
	struct sl_bdev *bdev = io->bdev;

	switch (io->type) {
	case SL_BDEV_IO_TYPE_READ:
	case SL_BDEV_IO_TYPE_WRITE:
		bdev_io_dispatch_rw(io);
		return;
	case SL_BDEV_IO_TYPE_WRITE_ZEROES:
		bdev_io_dispatch_zeroes(io);
		return;
	case SL_BDEV_IO_TYPE_UNMAP:
		if (!bdev->io_native[SL_BDEV_IO_TYPE_UNMAP]) {
			bdev_io_defer_done(io, -ENOTSUP);
		} else if (bdev->max_unmap_blocks != 0 && io->num_blocks > bdev->max_unmap_blocks) {
			bdev_split_start(io, bdev->max_unmap_blocks);
		} else {
			bdev_io_submit_module(io);
		}
		return;
	case SL_BDEV_IO_TYPE_FLUSH:
		if (io->num_blocks == 0) {
			io->offset_blocks = 0;
			io->num_blocks = bdev->blockcnt;
		}
		if (!bdev->io_native[SL_BDEV_IO_TYPE_FLUSH]) {
			/* Without a volatile cache there is nothing to flush. */
			bdev_io_defer_done(io, bdev->write_cache ? -ENOTSUP : 0);
		} else {
			bdev_io_submit_module(io);
		}
		return;
	case SL_BDEV_IO_TYPE_RESET:
		bdev_channel_abort_queued(io->internal.ch, -ECANCELED);
		if (!bdev->io_native[SL_BDEV_IO_TYPE_RESET]) {
			bdev_io_defer_done(io, 0);
		} else {
			bdev_io_submit_module(io);
		}
		return;
	default:
		bdev_io_defer_done(io, -EINVAL);
		return;
	}
}

/* ---- Entry points ------------------------------------------------------------ */

static inline int
bdev_io_check(const struct sl_bdev_desc *desc, const struct sl_bdev *bdev, uint8_t type,
	      uint64_t offset_blocks, uint64_t num_blocks)
{
	if (sl_unlikely(bdev->removing)) {
		return -ENODEV;
	}
	if (type != SL_BDEV_IO_TYPE_READ && type != SL_BDEV_IO_TYPE_FLUSH &&
	    type != SL_BDEV_IO_TYPE_RESET && sl_unlikely(!desc->write)) {
		return -EBADF;
	}
	if (sl_unlikely(offset_blocks + num_blocks < offset_blocks ||
			offset_blocks + num_blocks > bdev->blockcnt)) {
		return -EINVAL;
	}
	if (sl_unlikely(num_blocks == 0) && type != SL_BDEV_IO_TYPE_FLUSH &&
	    type != SL_BDEV_IO_TYPE_RESET) {
		return -EINVAL;
	}
	return 0;
}

/* Read or write with nothing for the core to do on the way (no split, bounce, FUA
 * emulation, nor refused I/O queued before it): straight to the module. */
static inline bool
bdev_rw_is_direct(const struct sl_bdev *bdev, const struct bdev_channel *bch, uint32_t flags)
{
	return !(bdev->rw_split_check | bdev->bounce_check) && (flags & SL_BDEV_IO_FLAG_FUA) == 0 &&
	       bch->nomem_count == 0;
}

/*
 * Inlined into each read and write entry point, where type, buf and flags are
 * constants and the branches on them fold away; the other types go through
 * bdev_submit_other(). No allocation, lock or atomic: the pool and the counters
 * belong to the channel's thread.
 */
static inline __attribute__((always_inline)) int
bdev_submit(struct sl_bdev_desc *desc, struct sl_io_channel *ch, uint8_t type, struct iovec *iov,
	    int iovcnt, void *buf, uint64_t offset_blocks, uint64_t num_blocks, uint32_t flags,
	    sl_bdev_io_done_cb cb, void *cb_arg)
{
	struct bdev_channel *bch = bdev_channel_get(ch);
	struct sl_bdev *bdev = desc->bdev;
	struct sl_bdev_io *io;
	int rc;

	io = bdev_io_get(bch);
	if (sl_unlikely(io == NULL)) {
		return -ENOMEM;
	}
	if (buf != NULL) {
		io->internal.iov_inline[0].iov_base = buf;
		io->internal.iov_inline[0].iov_len = num_blocks << bdev->blocklen_shift;
		iov = io->internal.iov_inline;
		iovcnt = 1;
	}
	io->type = type;
	io->flags = (uint8_t)(flags & SL_BDEV_IO_FLAG_FUA);
	io->iovs = iov;
	io->iovcnt = iovcnt;
	io->offset_blocks = offset_blocks;
	io->num_blocks = num_blocks;
	io->internal.cb = cb;
	io->internal.cb_arg = cb_arg;
	io->internal.status = 0;
	io->internal.user_type = type;
	io->internal.user_flags = (uint8_t)flags;
	io->internal.is_child = false;
	io->internal.emulate_zeroes = false;
	io->internal.fua_flush = false;
	io->internal.bounce_buf = NULL;
	io->internal.parent = NULL;
	if (bch->stats_on) {
		io->internal.submit_tsc = bdev_channel_now(bch);
	}
	t_bdev_submit_depth++;
	rc = bdev_io_check(desc, bdev, type, offset_blocks, num_blocks);
	if (sl_unlikely(rc != 0)) {
		bdev_io_defer_done(io, rc);
	} else if ((type == SL_BDEV_IO_TYPE_READ || type == SL_BDEV_IO_TYPE_WRITE) &&
		   sl_likely(bdev_rw_is_direct(bdev, bch, flags))) {
		/* bdev_io_call_module() without its depth count: we hold one. */
		bch->in_module++;
		bdev->fn_table->submit_request(bch->module_ch, io);
	} else {
		bdev_io_dispatch(io);
	}
	t_bdev_submit_depth--;
	return 0;
}

/* The types that are not worth a copy of bdev_submit each. */
static int
bdev_submit_other(struct sl_bdev_desc *desc, struct sl_io_channel *ch, uint8_t type,
		  uint64_t offset_blocks, uint64_t num_blocks, uint32_t flags,
		  sl_bdev_io_done_cb cb, void *cb_arg)
{
	return bdev_submit(desc, ch, type, NULL, 0, NULL, offset_blocks, num_blocks, flags, cb,
			   cb_arg);
}

/* Byte ranges that are not whole blocks become an impossible block count, which the
 * range check turns into -EINVAL through the callback. */
static inline uint64_t
bdev_bytes_to_blocks(const struct sl_bdev *bdev, uint64_t offset, uint64_t nbytes,
		     uint64_t *offset_blocks)
{
	*offset_blocks = offset >> bdev->blocklen_shift;
	if (sl_unlikely(((offset | nbytes) & (bdev->blocklen - 1)) != 0)) {
		return UINT64_MAX;
	}
	return nbytes >> bdev->blocklen_shift;
}

int
sl_bdev_read_blocks(struct sl_bdev_desc *desc, struct sl_io_channel *ch, void *buf,
		    uint64_t offset_blocks, uint64_t num_blocks, sl_bdev_io_done_cb cb,
		    void *cb_arg)
{
	return bdev_submit(desc, ch, SL_BDEV_IO_TYPE_READ, NULL, 0, buf, offset_blocks, num_blocks,
			   0, cb, cb_arg);
}

int
sl_bdev_read(struct sl_bdev_desc *desc, struct sl_io_channel *ch, void *buf, uint64_t offset,
	     uint64_t nbytes, sl_bdev_io_done_cb cb, void *cb_arg)
{
	uint64_t ob, nb = bdev_bytes_to_blocks(desc->bdev, offset, nbytes, &ob);

	return bdev_submit(desc, ch, SL_BDEV_IO_TYPE_READ, NULL, 0, buf, ob, nb, 0, cb, cb_arg);
}

int
sl_bdev_readv_blocks(struct sl_bdev_desc *desc, struct sl_io_channel *ch, struct iovec *iov,
		     int iovcnt, uint64_t offset_blocks, uint64_t num_blocks, sl_bdev_io_done_cb cb,
		     void *cb_arg)
{
	return bdev_submit(desc, ch, SL_BDEV_IO_TYPE_READ, iov, iovcnt, NULL, offset_blocks,
			   num_blocks, 0, cb, cb_arg);
}

int
sl_bdev_readv(struct sl_bdev_desc *desc, struct sl_io_channel *ch, struct iovec *iov, int iovcnt,
	      uint64_t offset, uint64_t nbytes, sl_bdev_io_done_cb cb, void *cb_arg)
{
	uint64_t ob, nb = bdev_bytes_to_blocks(desc->bdev, offset, nbytes, &ob);

	return bdev_submit(desc, ch, SL_BDEV_IO_TYPE_READ, iov, iovcnt, NULL, ob, nb, 0, cb,
			   cb_arg);
}

int
sl_bdev_write_blocks(struct sl_bdev_desc *desc, struct sl_io_channel *ch, const void *buf,
		     uint64_t offset_blocks, uint64_t num_blocks, sl_bdev_io_done_cb cb,
		     void *cb_arg)
{
	/* The module only reads a write's buffer. */
	return bdev_submit(desc, ch, SL_BDEV_IO_TYPE_WRITE, NULL, 0, (void *)(uintptr_t)buf,
			   offset_blocks, num_blocks, 0, cb, cb_arg);
}

int
sl_bdev_write(struct sl_bdev_desc *desc, struct sl_io_channel *ch, const void *buf, uint64_t offset,
	      uint64_t nbytes, sl_bdev_io_done_cb cb, void *cb_arg)
{
	uint64_t ob, nb = bdev_bytes_to_blocks(desc->bdev, offset, nbytes, &ob);

	return bdev_submit(desc, ch, SL_BDEV_IO_TYPE_WRITE, NULL, 0, (void *)(uintptr_t)buf, ob, nb,
			   0, cb, cb_arg);
}

int
sl_bdev_writev_blocks(struct sl_bdev_desc *desc, struct sl_io_channel *ch, struct iovec *iov,
		      int iovcnt, uint64_t offset_blocks, uint64_t num_blocks,
		      sl_bdev_io_done_cb cb, void *cb_arg)
{
	return bdev_submit(desc, ch, SL_BDEV_IO_TYPE_WRITE, iov, iovcnt, NULL, offset_blocks,
			   num_blocks, 0, cb, cb_arg);
}

int
sl_bdev_writev(struct sl_bdev_desc *desc, struct sl_io_channel *ch, struct iovec *iov, int iovcnt,
	       uint64_t offset, uint64_t nbytes, sl_bdev_io_done_cb cb, void *cb_arg)
{
	return sl_bdev_writev_ext(desc, ch, iov, iovcnt, offset, nbytes, 0, cb, cb_arg);
}

int
sl_bdev_writev_ext(struct sl_bdev_desc *desc, struct sl_io_channel *ch, struct iovec *iov,
		   int iovcnt, uint64_t offset, uint64_t nbytes, uint32_t flags,
		   sl_bdev_io_done_cb cb, void *cb_arg)
{
	uint64_t ob, nb = bdev_bytes_to_blocks(desc->bdev, offset, nbytes, &ob);

	return bdev_submit(desc, ch, SL_BDEV_IO_TYPE_WRITE, iov, iovcnt, NULL, ob, nb, flags, cb,
			   cb_arg);
}

int
sl_bdev_flush(struct sl_bdev_desc *desc, struct sl_io_channel *ch, uint64_t offset, uint64_t nbytes,
	      sl_bdev_io_done_cb cb, void *cb_arg)
{
	uint64_t ob, nb = bdev_bytes_to_blocks(desc->bdev, offset, nbytes, &ob);

	return bdev_submit_other(desc, ch, SL_BDEV_IO_TYPE_FLUSH, ob, nb, 0, cb, cb_arg);
}

int
sl_bdev_unmap_blocks(struct sl_bdev_desc *desc, struct sl_io_channel *ch, uint64_t offset_blocks,
		     uint64_t num_blocks, sl_bdev_io_done_cb cb, void *cb_arg)
{
	return bdev_submit_other(desc, ch, SL_BDEV_IO_TYPE_UNMAP, offset_blocks, num_blocks, 0, cb,
				 cb_arg);
}

int
sl_bdev_unmap(struct sl_bdev_desc *desc, struct sl_io_channel *ch, uint64_t offset, uint64_t nbytes,
	      sl_bdev_io_done_cb cb, void *cb_arg)
{
	uint64_t ob, nb = bdev_bytes_to_blocks(desc->bdev, offset, nbytes, &ob);

	return bdev_submit_other(desc, ch, SL_BDEV_IO_TYPE_UNMAP, ob, nb, 0, cb, cb_arg);
}

int
sl_bdev_write_zeroes_blocks(struct sl_bdev_desc *desc, struct sl_io_channel *ch,
			    uint64_t offset_blocks, uint64_t num_blocks, sl_bdev_io_done_cb cb,
			    void *cb_arg)
{
	return bdev_submit_other(desc, ch, SL_BDEV_IO_TYPE_WRITE_ZEROES, offset_blocks, num_blocks,
				 0, cb, cb_arg);
}

int
sl_bdev_write_zeroes(struct sl_bdev_desc *desc, struct sl_io_channel *ch, uint64_t offset,
		     uint64_t nbytes, sl_bdev_io_done_cb cb, void *cb_arg)
{
	return sl_bdev_write_zeroes_ext(desc, ch, offset, nbytes, 0, cb, cb_arg);
}

int
sl_bdev_write_zeroes_ext(struct sl_bdev_desc *desc, struct sl_io_channel *ch, uint64_t offset,
			 uint64_t nbytes, uint32_t flags, sl_bdev_io_done_cb cb, void *cb_arg)
{
	uint64_t ob, nb = bdev_bytes_to_blocks(desc->bdev, offset, nbytes, &ob);

	return bdev_submit_other(desc, ch, SL_BDEV_IO_TYPE_WRITE_ZEROES, ob, nb, flags, cb, cb_arg);
}

int
sl_bdev_reset(struct sl_bdev_desc *desc, struct sl_io_channel *ch, sl_bdev_io_done_cb cb,
	      void *cb_arg)
{
	return bdev_submit_other(desc, ch, SL_BDEV_IO_TYPE_RESET, 0, 0, 0, cb, cb_arg);
}

int
sl_bdev_queue_io_wait(struct sl_bdev *bdev, struct sl_io_channel *ch,
		      struct sl_bdev_io_wait_entry *entry)
{
	struct bdev_channel *bch = bdev_channel_get(ch);

	if (entry->bdev != bdev || bch->bdev != bdev || !STAILQ_EMPTY(&bch->free_ios)) {
		return -EINVAL;
	}
	TAILQ_INSERT_TAIL(&bch->io_wait, entry, link);
	return 0;
}
