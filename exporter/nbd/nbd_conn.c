/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * The NBD transmission phase: one connection's I/O path, on one thread.
 *
 * Receive. Request headers are recv()'d many at a time into a staging buffer and
 * parsed in place. A WRITE's data that arrived with the headers is copied out; the
 * rest is read straight into the request's buffer by a readv() whose second iovec is
 * the staging buffer, so the headers behind it come in the same call. (A copy of at
 * most one staging buffer per recv() is cheaper than one more syscall per request.)
 * A recv() that returns less than asked means the socket is empty: the loop stops
 * there rather than pay for the EAGAIN, and level-triggered epoll calls again.
 *
 * Requests in flight live in a fixed array of slots with their buffers (allocated on
 * first use and kept), so the I/O path allocates nothing. With no free slot, reading
 * pauses (EPOLLIN off) and the client's further requests wait in the socket.
 *
 * Transmit. A reply header is built in its slot; completions queue their slot and a
 * message to the thread flushes the queue with one sendmsg() -- every reply that
 * completed in the same poll iteration goes out together. A short write arms EPOLLOUT.
 *
 * Errors (proto.md, "Error values" and "Request types"): a bad request gets the spec's
 * error and its WRITE payload is drained, so the stream stays in sync; only a bad
 * magic (no way to resynchronise) ends the connection.
 *
 * End of input (the peer's FIN, a half-close) ends reading only: the requests already
 * read are answered before the socket closes. A send error or a hang-up drops them.
 */

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sluice/env.h"
#include "sluice/log.h"
#include "sluice/sock.h"
#include "sluice/thread.h"
#include "sluice/util.h"

#include "nbd_internal.h"

SL_LOG_REGISTER_COMPONENT(nbd)

/* Payloads from this size on stream in over several wake-ups (see conn_poll). */
#define NBD_STREAM_MIN (64u << 10)

/* Most iovecs per sendmsg(): two per reply (header, data). */
#define NBD_TX_IOV 128

/* A stopped connection whose peer does not take its replies is cut off after this: a
 * stuck client must not hold an export removal or a shutdown forever. */
#define NBD_STOP_GRACE_US (5ull * 1000 * 1000)

static atomic_uint_fast64_t g_nbd_conn_next_id = 1;
/* A variable so that the unit tests can shorten it. */
static uint64_t g_nbd_stop_grace_us = NBD_STOP_GRACE_US;

static void conn_rx_process(struct nbd_conn *conn);
static bool conn_check_done(struct nbd_conn *conn);
static void conn_tx_flush(struct nbd_conn *conn);

/* ---- Small helpers ------------------------------------------------------------ */

uint32_t
nbd_errno_to_nbd(int status, bool fast_zero)
{
	switch (-status) {
	case 0:
		return SL_NBD_OK;
	case EPERM:
	case EBADF:
	case EROFS:
	case EACCES:
		return SL_NBD_EPERM;
	case ENOMEM:
		return SL_NBD_ENOMEM;
	case EINVAL:
		return SL_NBD_EINVAL;
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return SL_NBD_ENOSPC;
	case EOVERFLOW:
		return SL_NBD_EOVERFLOW;
	case ENOTSUP:
		/* proto.md, "Error values": NBD_ENOTSUP only answers a WRITE_ZEROES
		 * with NBD_CMD_FLAG_FAST_ZERO that would not be fast; a WRITE_ZEROES
		 * without the flag MUST NOT get it once NBD_FLAG_SEND_FAST_ZERO is
		 * advertised (NBD_CMD_WRITE_ZEROES). The spec leaves the error for
		 * anything else unsupported open, and has clients take an unexpected
		 * one as NBD_EINVAL: send that. (EOPNOTSUPP == ENOTSUP on Linux.) */
		return fast_zero ? SL_NBD_ENOTSUP : SL_NBD_EINVAL;
	case ENODEV:
	case ESHUTDOWN:
	case ECANCELED:
		/* The bdev is going away: ESHUTDOWN tells the client to disconnect. */
		return SL_NBD_ESHUTDOWN;
	default:
		return SL_NBD_EIO;
	}
}

static const char *
nbd_cmd_name(uint16_t type)
{
	static const char *const names[] = {
		[SL_NBD_CMD_READ] = "read",
		[SL_NBD_CMD_WRITE] = "write",
		[SL_NBD_CMD_DISC] = "disc",
		[SL_NBD_CMD_FLUSH] = "flush",
		[SL_NBD_CMD_TRIM] = "trim",
		[SL_NBD_CMD_CACHE] = "cache",
		[SL_NBD_CMD_WRITE_ZEROES] = "write_zeroes",
		[SL_NBD_CMD_BLOCK_STATUS] = "block_status",
		[SL_NBD_CMD_RESIZE] = "resize",
	};

	return type < SL_COUNTOF(names) ? names[type] : "unknown";
}

uint16_t
sl_nbd_tx_flags(struct sl_bdev_desc *desc, bool read_only, bool structured_replies)
{
	struct sl_bdev *bdev = sl_bdev_desc_get_bdev(desc);
	uint16_t flags;

	/* The bdev's flush is device-wide, not per channel, so a flush on one connection
	 * covers writes answered on any other: multi-conn is safe (proto.md,
	 * NBD_FLAG_CAN_MULTI_CONN). */
	flags = SL_NBD_FLAG_HAS_FLAGS | SL_NBD_FLAG_SEND_FLUSH | SL_NBD_FLAG_CAN_MULTI_CONN |
		SL_NBD_FLAG_SEND_CACHE;
	if (read_only) {
		flags |= SL_NBD_FLAG_READ_ONLY;
	} else {
		flags |= SL_NBD_FLAG_SEND_FUA;
		if (sl_bdev_io_type_supported(bdev, SL_BDEV_IO_TYPE_UNMAP)) {
			flags |= SL_NBD_FLAG_SEND_TRIM;
		}
		if (sl_bdev_io_type_supported(bdev, SL_BDEV_IO_TYPE_WRITE_ZEROES)) {
			flags |= SL_NBD_FLAG_SEND_WRITE_ZEROES | SL_NBD_FLAG_SEND_FAST_ZERO;
		}
	}
	if (structured_replies) {
		/* Reads are always answered with one data chunk. */
		flags |= SL_NBD_FLAG_SEND_DF;
	}
	return flags;
}

/* ---- Connection object -------------------------------------------------------- */

struct nbd_conn *
nbd_conn_alloc(int fd, const char *name)
{
	struct nbd_conn *conn;

	conn = calloc(1, sizeof(*conn));
	if (conn == NULL) {
		return NULL;
	}
	conn->rx = malloc(NBD_RX_BUF_SIZE);
	if (conn->rx == NULL) {
		free(conn);
		return NULL;
	}
	conn->id = atomic_fetch_add(&g_nbd_conn_next_id, 1);
	conn->fd = fd;
	conn->min_block = 1;
	conn->max_payload = NBD_MAX_PAYLOAD;
	snprintf(conn->name, sizeof(conn->name), "%s", name != NULL ? name : "nbd");
	TAILQ_INIT(&conn->free_slots);
	TAILQ_INIT(&conn->txq);
	for (uint32_t i = 0; i < NBD_CONN_SLOTS; i++) {
		conn->slots[i].conn = conn;
		TAILQ_INSERT_TAIL(&conn->free_slots, &conn->slots[i], link);
	}
	return conn;
}

void
nbd_conn_free(struct nbd_conn *conn)
{
	if (conn == NULL) {
		return;
	}
	for (uint32_t i = 0; i < NBD_CONN_SLOTS; i++) {
		sl_dma_free(conn->slots[i].buf);
	}
	sl_dma_free(conn->big_buf);
	free(conn->rx);
	free(conn->hs_out);
	free(conn->meta_export);
	free(conn);
}

static void
conn_update_events(struct nbd_conn *conn, bool want_out)
{
	uint32_t events = 0;

	if (!conn->rx_paused && !conn->closing && !conn->eof) {
		events |= EPOLLIN;
	}
	if (want_out && !conn->eof) {
		events |= EPOLLOUT;
	}
	if (events != conn->events && conn->poller != NULL) {
		if (sl_poller_fd_set_events(conn->poller, events) == 0) {
			conn->events = events;
		}
	}
}

/* Hard disconnect: nothing more is read or sent; I/O in flight still completes. The
 * fd leaves epoll: a hung-up socket reports EPOLLHUP whatever events are asked for,
 * and would wake the thread until that I/O is done. Completions (a message) and a stop
 * (its timer) still reach the connection. */
static void
conn_set_eof(struct nbd_conn *conn)
{
	conn->eof = true;
	conn->closing = true;
	conn->events = 0;
	sl_poller_unregister(&conn->poller);
}

/* The peer shut down its writing side (recv() returned 0): no request follows, but it
 * may still read -- a client may half-close after its last requests. Reading ends;
 * the requests in flight are answered, then conn_check_done closes. A peer that is
 * gone altogether shows as a send error or a hang-up (conn_check_hangup), which end
 * in conn_set_eof and drop what is left. */
static void
conn_set_rx_shutdown(struct nbd_conn *conn)
{
	if (conn->in_flight > 0 || conn->rx_tail > conn->rx_head) {
		SL_DEBUGLOG(nbd,
			    "%s: peer shut down its side with %" PRIu32 " requests in flight\n",
			    conn->name, conn->in_flight);
	}
	conn->closing = true;
	conn_update_events(conn, conn->events & EPOLLOUT);
}

/* ---- Transmit ----------------------------------------------------------------- */

static void
conn_kick_msg(void *arg)
{
	struct nbd_conn *conn = arg;

	conn->tx_scheduled = false;
	if (!conn->closing && !conn->rx_paused && conn->rx_tail > conn->rx_head) {
		conn_rx_process(conn);
	}
	conn_tx_flush(conn);
	conn_check_done(conn);
}

/* Flush at the end of this poll iteration (messages run first in the next one), so
 * replies completed together leave in one sendmsg(). */
static void
conn_schedule(struct nbd_conn *conn)
{
	if (conn->tx_scheduled) {
		return;
	}
	conn->tx_scheduled = true;
	if (sl_unlikely(sl_thread_send_msg(conn->thread, conn_kick_msg, conn) != 0)) {
		/* Message pool empty: flush now rather than never. Not re-entrant into the
		 * receive loop: it only frees slots, whose resumption is scheduled. */
		conn->tx_scheduled = false;
		conn_tx_flush(conn);
	}
}

static void
conn_slot_put(struct nbd_conn *conn, struct nbd_slot *slot)
{
	slot->state = NBD_SLOT_FREE;
	if (conn->big_owner == slot) {
		conn->big_owner = NULL;
	}
	/* LIFO: the next request reuses a buffer that is still in cache. */
	TAILQ_INSERT_HEAD(&conn->free_slots, slot, link);
	conn->in_flight--;
	if (conn->rx_paused && !conn->closing) {
		conn->rx_paused = false;
		conn_update_events(conn, conn->events & EPOLLOUT);
		/* Headers already staged get no epoll event: have them parsed. */
		if (conn->rx_tail > conn->rx_head && !conn->in_rx) {
			conn_schedule(conn);
		}
	}
}

static void *
conn_slot_buf(struct nbd_conn *conn, struct nbd_slot *slot, uint32_t len)
{
	if (len <= NBD_SLOT_BUF_SIZE) {
		if (slot->buf == NULL) {
			slot->buf = sl_dma_malloc(NBD_SLOT_BUF_SIZE, 4096, NULL);
		}
		return slot->buf;
	}
	if (conn->big_buf_size < len) {
		/* Grown to a power of two and kept: large requests come in runs of one
		 * size, and one allocation per size beats one per request. */
		uint32_t size = SL_MAX(len, 1u << 20);

		size = (uint32_t)SL_MIN(1ull << (64 - __builtin_clzll((uint64_t)size - 1)),
					(uint64_t)NBD_MAX_PAYLOAD);
		sl_dma_free(conn->big_buf);
		conn->big_buf_size = 0;
		conn->big_buf = sl_dma_malloc(size, 4096, NULL);
		if (conn->big_buf == NULL) {
			return NULL;
		}
		conn->big_buf_size = size;
	}
	conn->big_owner = slot;
	return conn->big_buf;
}

static inline uint32_t
slot_wire_len(const struct nbd_slot *slot)
{
	return slot->hdr_len + slot->data_len;
}

/* Account n bytes sent: slots fully on the wire go back to the free list. */
static void
conn_tx_advance(struct nbd_conn *conn, size_t n)
{
	struct nbd_slot *slot;

	n += conn->tx_off;
	while ((slot = TAILQ_FIRST(&conn->txq)) != NULL && n >= slot_wire_len(slot)) {
		n -= slot_wire_len(slot);
		TAILQ_REMOVE(&conn->txq, slot, link);
		conn_slot_put(conn, slot);
	}
	conn->tx_off = (uint32_t)n;
}

static void
conn_tx_drop(struct nbd_conn *conn)
{
	struct nbd_slot *slot;

	while ((slot = TAILQ_FIRST(&conn->txq)) != NULL) {
		TAILQ_REMOVE(&conn->txq, slot, link);
		conn_slot_put(conn, slot);
	}
	conn->tx_off = 0;
}

static int
conn_tx_gather(struct nbd_conn *conn, struct iovec *iov, size_t *total)
{
	struct nbd_slot *slot;
	uint32_t skip = conn->tx_off;
	int cnt = 0;

	*total = 0;
	TAILQ_FOREACH (slot, &conn->txq, link) {
		if (cnt + 2 > NBD_TX_IOV) {
			break;
		}
		if (skip < slot->hdr_len) {
			iov[cnt].iov_base = slot->hdr + skip;
			iov[cnt++].iov_len = slot->hdr_len - skip;
			skip = 0;
		} else {
			skip -= slot->hdr_len;
		}
		if (slot->data_len > skip) {
			iov[cnt].iov_base = (uint8_t *)slot->data + skip;
			iov[cnt++].iov_len = slot->data_len - skip;
		}
		skip = 0;
	}
	for (int i = 0; i < cnt; i++) {
		*total += iov[i].iov_len;
	}
	return cnt;
}

static void
conn_tx_flush(struct nbd_conn *conn)
{
	struct iovec iov[NBD_TX_IOV];
	struct msghdr msg = {.msg_iov = iov};
	size_t total;
	ssize_t n;

	while (!TAILQ_EMPTY(&conn->txq)) {
		if (conn->eof) {
			conn_tx_drop(conn);
			break;
		}
		msg.msg_iovlen = conn_tx_gather(conn, iov, &total);
		n = sendmsg(conn->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				conn_update_events(conn, true);
				return;
			}
			SL_DEBUGLOG(nbd, "%s: send: %s\n", conn->name, strerror(errno));
			conn_set_eof(conn);
			continue;
		}
		conn_tx_advance(conn, (size_t)n);
		if ((size_t)n < total) {
			/* Socket buffer full: go on when it drains. */
			conn_update_events(conn, true);
			return;
		}
	}
	if (conn->events & EPOLLOUT) {
		conn_update_events(conn, false);
	}
}

static void
conn_tx_queue(struct nbd_conn *conn, struct nbd_slot *slot)
{
	slot->state = NBD_SLOT_TX;
	TAILQ_INSERT_TAIL(&conn->txq, slot, link);
	conn_schedule(conn);
}

/* ---- Replies (built in the slot, in wire order) ------------------------------- */

static void
slot_reply_simple(struct nbd_slot *slot, uint32_t error)
{
	struct sl_nbd_simple_reply *r = (struct sl_nbd_simple_reply *)slot->hdr;

	r->magic = htobe32(SL_NBD_SIMPLE_REPLY_MAGIC);
	r->error = htobe32(error);
	r->cookie = slot->cookie;
	slot->hdr_len = sizeof(*r);
}

static void
slot_reply_chunk(struct nbd_slot *slot, uint16_t type, uint32_t length)
{
	struct sl_nbd_structured_reply *r = (struct sl_nbd_structured_reply *)slot->hdr;

	r->magic = htobe32(SL_NBD_STRUCTURED_REPLY_MAGIC);
	r->flags = htobe16(SL_NBD_REPLY_FLAG_DONE);
	r->type = htobe16(type);
	r->cookie = slot->cookie;
	r->length = htobe32(length);
	slot->hdr_len = sizeof(*r);
}

static void
conn_reply_error(struct nbd_conn *conn, struct nbd_slot *slot, uint32_t error, const char *msg)
{
	struct sl_nbd_reply_error *e;
	size_t len;

	conn->stats.num_errors++;
	SL_DEBUGLOG(nbd, "%s: %s offset %" PRIu64 " length %" PRIu32 ": error %" PRIu32 " (%s)\n",
		    conn->name, nbd_cmd_name(slot->type), slot->offset, slot->length, error, msg);
	slot->data = NULL;
	slot->data_len = 0;
	if (!conn->structured) {
		/* A simple READ error carries no payload (proto.md, NBD_CMD_READ). */
		slot_reply_simple(slot, error);
	} else {
		/* Structured: the error travels with a message for the user. */
		len = SL_MIN(strlen(msg), NBD_ERR_MSG_MAX);
		slot_reply_chunk(slot, SL_NBD_REPLY_TYPE_ERROR, (uint32_t)(sizeof(*e) + len));
		e = (struct sl_nbd_reply_error *)(slot->hdr + slot->hdr_len);
		e->error = htobe32(error);
		e->msg_length = htobe16((uint16_t)len);
		memcpy(slot->hdr + slot->hdr_len + sizeof(*e), msg, len);
		slot->hdr_len += (uint32_t)(sizeof(*e) + len);
	}
	conn_tx_queue(conn, slot);
}

static void
conn_reply_ok(struct nbd_conn *conn, struct nbd_slot *slot)
{
	if (slot->type != SL_NBD_CMD_READ) {
		/* Simple replies are allowed for everything but READ even when structured
		 * replies are negotiated, and are the shortest. */
		slot_reply_simple(slot, SL_NBD_OK);
	} else if (conn->structured) {
		uint64_t offset = htobe64(slot->offset);

		slot_reply_chunk(slot, SL_NBD_REPLY_TYPE_OFFSET_DATA, slot->length + 8);
		memcpy(slot->hdr + slot->hdr_len, &offset, sizeof(offset));
		slot->hdr_len += sizeof(offset);
		slot->data = slot->iov.iov_base;
		slot->data_len = slot->length;
	} else {
		slot_reply_simple(slot, SL_NBD_OK);
		slot->data = slot->iov.iov_base;
		slot->data_len = slot->length;
	}
	conn_tx_queue(conn, slot);
}

/* ---- Submission and completion ------------------------------------------------ */

static void
conn_account(struct nbd_conn *conn, const struct nbd_slot *slot)
{
	switch (slot->type) {
	case SL_NBD_CMD_READ:
		conn->stats.num_read_ops++;
		conn->stats.bytes_read += slot->length;
		break;
	case SL_NBD_CMD_WRITE:
		conn->stats.num_write_ops++;
		conn->stats.bytes_written += slot->length;
		break;
	default:
		conn->stats.num_other_ops++;
		break;
	}
}

static void conn_submit(struct nbd_conn *conn, struct nbd_slot *slot);

/* The NBD error for a failed bdev call made for slot. Only the zeroing of a FAST_ZERO
 * request may say "not fast": the flush that follows it for FUA comes after the export
 * changed, and NBD_ENOTSUP promises it did not (proto.md, NBD_CMD_WRITE_ZEROES). */
static uint32_t
slot_errno_to_nbd(const struct nbd_slot *slot, int status)
{
	bool fast_zero = slot->type == SL_NBD_CMD_WRITE_ZEROES &&
			 (slot->flags & SL_NBD_CMD_FLAG_FAST_ZERO) && !slot->flushing;

	return nbd_errno_to_nbd(status, fast_zero);
}

static void
conn_io_done(void *cb_arg, int status)
{
	struct nbd_slot *slot = cb_arg;
	struct nbd_conn *conn = slot->conn;

	if (status == 0 && slot->fua_flush) {
		/* FUA on TRIM/WRITE_ZEROES: durable before the reply (proto.md,
		 * NBD_CMD_FLAG_FUA); the bdev has no FUA for those, so flush. */
		slot->fua_flush = false;
		slot->flushing = true;
		conn_submit(conn, slot);
		return;
	}
	conn_account(conn, slot);
	if (status != 0) {
		conn_reply_error(conn, slot, slot_errno_to_nbd(slot, status), strerror(-status));
	} else {
		conn_reply_ok(conn, slot);
	}
}

static int
conn_submit_io(struct nbd_conn *conn, struct nbd_slot *slot)
{
	uint32_t flags;

	if (slot->flushing) {
		return sl_bdev_flush(conn->desc, conn->ch, 0, 0, conn_io_done, slot);
	}
	switch (slot->type) {
	case SL_NBD_CMD_READ:
		return sl_bdev_readv(conn->desc, conn->ch, &slot->iov, 1, slot->offset,
				     slot->length, conn_io_done, slot);
	case SL_NBD_CMD_WRITE:
		flags = (slot->flags & SL_NBD_CMD_FLAG_FUA) ? SL_BDEV_IO_FLAG_FUA : 0;
		return sl_bdev_writev_ext(conn->desc, conn->ch, &slot->iov, 1, slot->offset,
					  slot->length, flags, conn_io_done, slot);
	case SL_NBD_CMD_FLUSH:
		return sl_bdev_flush(conn->desc, conn->ch, 0, 0, conn_io_done, slot);
	case SL_NBD_CMD_TRIM:
		return sl_bdev_unmap(conn->desc, conn->ch, slot->offset, slot->length, conn_io_done,
				     slot);
	case SL_NBD_CMD_WRITE_ZEROES:
		/* FAST_ZERO: fail at once rather than fall back to writing zeroes. NO_HOLE
		 * needs nothing: the bdev's write-zeroes never deallocates. */
		flags = (slot->flags & SL_NBD_CMD_FLAG_FAST_ZERO) ? SL_BDEV_IO_FLAG_NO_FALLBACK : 0;
		return sl_bdev_write_zeroes_ext(conn->desc, conn->ch, slot->offset, slot->length,
						flags, conn_io_done, slot);
	default:
		return -EINVAL;
	}
}

static void
conn_io_retry(void *cb_arg)
{
	struct nbd_slot *slot = cb_arg;
	struct nbd_conn *conn = slot->conn;

	if (conn->eof) {
		/* Nobody to answer: finish the slot without doing the I/O. */
		conn_reply_error(conn, slot, SL_NBD_ESHUTDOWN, "connection closed");
		return;
	}
	conn_submit(conn, slot);
}

static void
conn_submit(struct nbd_conn *conn, struct nbd_slot *slot)
{
	int rc;

	slot->state = NBD_SLOT_IO;
	rc = conn_submit_io(conn, slot);
	if (sl_likely(rc == 0)) {
		return;
	}
	if (rc == -ENOMEM) {
		/* The channel's I/O descriptors are all in use (many connections on this
		 * thread): wait for one, without allocating. */
		slot->wait.bdev = sl_bdev_desc_get_bdev(conn->desc);
		slot->wait.cb_fn = conn_io_retry;
		slot->wait.cb_arg = slot;
		rc = sl_bdev_queue_io_wait(slot->wait.bdev, conn->ch, &slot->wait);
		if (rc == 0) {
			return;
		}
		rc = -ENOMEM;
	}
	conn_reply_error(conn, slot, slot_errno_to_nbd(slot, rc), strerror(-rc));
}

static void
conn_block_status(struct nbd_conn *conn, struct nbd_slot *slot)
{
	struct sl_bdev_extent *extents;
	struct sl_nbd_block_descriptor *d;
	uint32_t max, id = htobe32(NBD_META_ID_BASE_ALLOCATION);
	int n;

	extents = conn_slot_buf(conn, slot, NBD_SLOT_BUF_SIZE);
	if (extents == NULL) {
		conn_reply_error(conn, slot, SL_NBD_ENOMEM, "out of memory");
		return;
	}
	max = (slot->flags & SL_NBD_CMD_FLAG_REQ_ONE) ? 1 : NBD_MAX_EXTENTS;
	n = sl_bdev_get_allocation(conn->desc, slot->offset, slot->length, extents, max);
	if (n <= 0) {
		n = n < 0 ? n : -EIO;
		conn_reply_error(conn, slot, nbd_errno_to_nbd(n, false), strerror(-n));
		return;
	}
	/* The descriptors go after the extents in the same buffer, sent from there. */
	d = (struct sl_nbd_block_descriptor *)(extents + NBD_MAX_EXTENTS);
	for (int i = 0; i < n; i++) {
		d[i].length = htobe32((uint32_t)extents[i].length);
		d[i].status_flags =
			htobe32(extents[i].flags & (SL_NBD_STATE_HOLE | SL_NBD_STATE_ZERO));
	}
	slot_reply_chunk(slot, SL_NBD_REPLY_TYPE_BLOCK_STATUS,
			 (uint32_t)(sizeof(id) + (size_t)n * sizeof(*d)));
	memcpy(slot->hdr + slot->hdr_len, &id, sizeof(id));
	slot->hdr_len += sizeof(id);
	slot->data = d;
	slot->data_len = (uint32_t)((size_t)n * sizeof(*d));
	conn->stats.num_other_ops++;
	conn_tx_queue(conn, slot);
}

/* ---- Request validation (proto.md "Request types" and "Error values") --------- */

static const uint16_t g_cmd_flags_allowed[] = {
	[SL_NBD_CMD_READ] = SL_NBD_CMD_FLAG_FUA | SL_NBD_CMD_FLAG_DF,
	[SL_NBD_CMD_WRITE] = SL_NBD_CMD_FLAG_FUA,
	[SL_NBD_CMD_DISC] = SL_NBD_CMD_FLAG_FUA,
	[SL_NBD_CMD_FLUSH] = SL_NBD_CMD_FLAG_FUA,
	[SL_NBD_CMD_TRIM] = SL_NBD_CMD_FLAG_FUA,
	[SL_NBD_CMD_CACHE] = SL_NBD_CMD_FLAG_FUA,
	[SL_NBD_CMD_WRITE_ZEROES] =
		SL_NBD_CMD_FLAG_FUA | SL_NBD_CMD_FLAG_NO_HOLE | SL_NBD_CMD_FLAG_FAST_ZERO,
	[SL_NBD_CMD_BLOCK_STATUS] = SL_NBD_CMD_FLAG_FUA | SL_NBD_CMD_FLAG_REQ_ONE,
};

static bool
cmd_is_write(uint16_t type)
{
	return type == SL_NBD_CMD_WRITE || type == SL_NBD_CMD_TRIM ||
	       type == SL_NBD_CMD_WRITE_ZEROES;
}

/* Which transmission flag a command needs advertised, 0 if none. */
static uint16_t
cmd_needed_flag(uint16_t type)
{
	switch (type) {
	case SL_NBD_CMD_FLUSH:
		return SL_NBD_FLAG_SEND_FLUSH;
	case SL_NBD_CMD_TRIM:
		return SL_NBD_FLAG_SEND_TRIM;
	case SL_NBD_CMD_CACHE:
		return SL_NBD_FLAG_SEND_CACHE;
	case SL_NBD_CMD_WRITE_ZEROES:
		return SL_NBD_FLAG_SEND_WRITE_ZEROES;
	default:
		return 0;
	}
}

/* \return 0 or the NBD error for the request; *msg says why. */
static uint32_t
conn_check_flags(const struct nbd_conn *conn, const struct nbd_slot *slot, const char **msg)
{
	uint16_t need;

	if (slot->type >= SL_COUNTOF(g_cmd_flags_allowed) || slot->type == SL_NBD_CMD_DISC) {
		*msg = "unknown command";
		return SL_NBD_EINVAL;
	}
	if (slot->flags & ~g_cmd_flags_allowed[slot->type]) {
		*msg = "flag not valid for this command";
		return SL_NBD_EINVAL;
	}
	if (((slot->flags & SL_NBD_CMD_FLAG_FUA) && !(conn->tx_flags & SL_NBD_FLAG_SEND_FUA)) ||
	    ((slot->flags & SL_NBD_CMD_FLAG_DF) && !(conn->tx_flags & SL_NBD_FLAG_SEND_DF)) ||
	    ((slot->flags & SL_NBD_CMD_FLAG_FAST_ZERO) &&
	     !(conn->tx_flags & SL_NBD_FLAG_SEND_FAST_ZERO))) {
		*msg = "flag not negotiated";
		return SL_NBD_EINVAL;
	}
	if (cmd_is_write(slot->type) && (conn->tx_flags & SL_NBD_FLAG_READ_ONLY)) {
		*msg = "export is read-only";
		return SL_NBD_EPERM;
	}
	need = cmd_needed_flag(slot->type);
	if (need != 0 && !(conn->tx_flags & need)) {
		*msg = "command not advertised";
		return SL_NBD_EINVAL;
	}
	if (slot->type == SL_NBD_CMD_BLOCK_STATUS && !conn->base_allocation) {
		/* proto.md: block status without a selected context SHOULD get EINVAL. */
		*msg = "no metadata context selected";
		return SL_NBD_EINVAL;
	}
	return SL_NBD_OK;
}

static uint32_t
conn_check_range(const struct nbd_conn *conn, const struct nbd_slot *slot, const char **msg)
{
	if (slot->type == SL_NBD_CMD_FLUSH) {
		/* Offset and length are reserved: the whole export is flushed. */
		return SL_NBD_OK;
	}
	if (slot->length == 0) {
		*msg = "zero length";
		return SL_NBD_EINVAL;
	}
	if ((slot->type == SL_NBD_CMD_READ || slot->type == SL_NBD_CMD_WRITE) &&
	    slot->length > conn->max_payload) {
		*msg = "request larger than the maximum block size";
		return SL_NBD_EOVERFLOW;
	}
	if (((slot->offset | slot->length) & (conn->min_block - 1)) != 0) {
		*msg = "request not aligned to the minimum block size";
		return SL_NBD_EINVAL;
	}
	if (slot->offset > conn->size || slot->length > conn->size - slot->offset) {
		/* Writes past the end are ENOSPC, the rest EINVAL (proto.md, "Error
		 * values"). */
		*msg = "request beyond the end of the export";
		return (slot->type == SL_NBD_CMD_WRITE || slot->type == SL_NBD_CMD_WRITE_ZEROES)
			       ? SL_NBD_ENOSPC
			       : SL_NBD_EINVAL;
	}
	return SL_NBD_OK;
}

/* ---- Receive ------------------------------------------------------------------ */

static void
conn_payload_done(struct nbd_conn *conn)
{
	struct nbd_slot *slot = conn->payload_slot;

	conn->payload_slot = NULL;
	conn_submit(conn, slot);
}

/* Refuse a request; a WRITE's payload is read and dropped first, so the next header
 * is found where the client put it. */
static void
conn_refuse(struct nbd_conn *conn, struct nbd_slot *slot, uint32_t error, const char *msg)
{
	if (slot->type == SL_NBD_CMD_WRITE && slot->length > 0) {
		slot->state = NBD_SLOT_PAYLOAD;
		slot->iov.iov_base = NULL;
		conn->payload_slot = slot;
		conn->drain_left = slot->length;
		conn->drain_error = error;
		conn->drain_msg = msg;
		return;
	}
	conn_reply_error(conn, slot, error, msg);
}

static void
conn_dispatch(struct nbd_conn *conn, struct nbd_slot *slot)
{
	const char *msg = NULL;
	uint32_t error;
	void *buf;

	error = conn_check_flags(conn, slot, &msg);
	if (error == SL_NBD_OK) {
		error = conn_check_range(conn, slot, &msg);
	}
	if (error != SL_NBD_OK) {
		conn_refuse(conn, slot, error, msg);
		return;
	}
	slot->fua_flush = (slot->flags & SL_NBD_CMD_FLAG_FUA) &&
			  (slot->type == SL_NBD_CMD_TRIM || slot->type == SL_NBD_CMD_WRITE_ZEROES);
	switch (slot->type) {
	case SL_NBD_CMD_READ:
	case SL_NBD_CMD_WRITE:
		buf = conn_slot_buf(conn, slot, slot->length);
		if (buf == NULL) {
			conn_refuse(conn, slot, SL_NBD_ENOMEM, "out of memory");
			return;
		}
		slot->iov.iov_base = buf;
		slot->iov.iov_len = slot->length;
		if (slot->type == SL_NBD_CMD_READ) {
			conn_submit(conn, slot);
		} else {
			slot->state = NBD_SLOT_PAYLOAD;
			conn->payload_slot = slot;
			conn->payload_got = 0;
		}
		break;
	case SL_NBD_CMD_CACHE:
		/* A prefetch hint: bdevs here have no cache to warm, so it is done. */
		conn->stats.num_other_ops++;
		conn_reply_ok(conn, slot);
		break;
	case SL_NBD_CMD_BLOCK_STATUS:
		conn_block_status(conn, slot);
		break;
	default:
		conn_submit(conn, slot);
		break;
	}
}

static void
conn_rx_pause(struct nbd_conn *conn)
{
	conn->rx_paused = true;
	conn_update_events(conn, conn->events & EPOLLOUT);
}

/* Parse the request header at rx_head. \return false to stop the receive loop. */
static bool
conn_rx_request(struct nbd_conn *conn)
{
	const struct sl_nbd_request *req = (const void *)(conn->rx + conn->rx_head);
	struct nbd_slot *slot;
	uint32_t length = be32toh(req->length);
	uint16_t type = be16toh(req->type);

	if (sl_unlikely(be32toh(req->magic) != SL_NBD_REQUEST_MAGIC)) {
		SL_ERRLOG("%s: bad request magic 0x%08x: closing the connection\n", conn->name,
			  be32toh(req->magic));
		conn_set_eof(conn);
		return false;
	}
	if (type == SL_NBD_CMD_DISC) {
		/* Soft disconnect: answer what is in flight, then close (proto.md). */
		conn->rx_head += sizeof(*req);
		conn->closing = true;
		conn_update_events(conn, conn->events & EPOLLOUT);
		return false;
	}
	if (TAILQ_EMPTY(&conn->free_slots) ||
	    ((type == SL_NBD_CMD_READ || type == SL_NBD_CMD_WRITE) && length > NBD_SLOT_BUF_SIZE &&
	     length <= conn->max_payload && conn->big_owner != NULL)) {
		/* Leave the header staged; a slot coming back resumes the parse. */
		conn_rx_pause(conn);
		return false;
	}
	slot = TAILQ_FIRST(&conn->free_slots);
	TAILQ_REMOVE(&conn->free_slots, slot, link);
	conn->in_flight++;
	slot->type = type;
	slot->flags = be16toh(req->flags);
	slot->cookie = req->cookie;
	slot->offset = be64toh(req->offset);
	slot->length = length;
	slot->fua_flush = false;
	slot->flushing = false;
	slot->data = NULL;
	slot->data_len = 0;
	conn->rx_head += sizeof(*req);
	conn_dispatch(conn, slot);
	return true;
}

/* Read more into the staging buffer. \return false when nothing more can be read now. */
static bool
conn_rx_fill(struct nbd_conn *conn, bool *drained)
{
	uint32_t want;
	ssize_t n;

	if (conn->rx_head > 0) {
		memmove(conn->rx, conn->rx + conn->rx_head, conn->rx_tail - conn->rx_head);
		conn->rx_tail -= conn->rx_head;
		conn->rx_head = 0;
	}
	want = NBD_RX_BUF_SIZE - conn->rx_tail;
	n = recv(conn->fd, conn->rx + conn->rx_tail, want, MSG_DONTWAIT);
	if (n > 0) {
		conn->rx_tail += (uint32_t)n;
		*drained = (uint32_t)n < want;
		return true;
	}
	if (n == 0) {
		conn_set_rx_shutdown(conn);
		return false;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
		return false;
	}
	SL_DEBUGLOG(nbd, "%s: recv: %s\n", conn->name, strerror(errno));
	conn_set_eof(conn);
	return false;
}

/* Discard a refused WRITE's payload. \return false to stop the receive loop. */
static bool
conn_rx_drain(struct nbd_conn *conn, bool *drained)
{
	uint32_t avail = conn->rx_tail - conn->rx_head;
	uint64_t n = SL_MIN((uint64_t)avail, conn->drain_left);
	struct nbd_slot *slot;

	conn->rx_head += (uint32_t)n;
	conn->drain_left -= n;
	if (conn->drain_left == 0) {
		slot = conn->payload_slot;
		conn->payload_slot = NULL;
		conn_reply_error(conn, slot, conn->drain_error, conn->drain_msg);
		return true;
	}
	if (*drained) {
		return false;
	}
	return conn_rx_fill(conn, drained);
}

/* Receive a WRITE's payload: staged bytes are copied, the rest read in place along
 * with the next headers. \return false to stop the receive loop. */
static bool
conn_rx_payload(struct nbd_conn *conn, bool *drained)
{
	struct nbd_slot *slot = conn->payload_slot;
	uint8_t *dst = slot->iov.iov_base;
	uint32_t avail = conn->rx_tail - conn->rx_head;
	uint32_t need = slot->length - conn->payload_got;
	struct iovec iov[2];
	ssize_t n;

	if (avail > 0) {
		uint32_t c = SL_MIN(avail, need);

		memcpy(dst + conn->payload_got, conn->rx + conn->rx_head, c);
		conn->rx_head += c;
		conn->payload_got += c;
		need -= c;
	}
	if (need == 0) {
		conn_payload_done(conn);
		return true;
	}
	if (*drained) {
		return false;
	}
	/* The staging buffer is empty here. */
	conn->rx_head = conn->rx_tail = 0;
	iov[0].iov_base = dst + conn->payload_got;
	iov[0].iov_len = need;
	iov[1].iov_base = conn->rx;
	iov[1].iov_len = NBD_RX_BUF_SIZE;
	n = readv(conn->fd, iov, 2);
	if (n == 0) {
		/* This WRITE's data will never come: conn_check_done drops it. */
		conn_set_rx_shutdown(conn);
		return false;
	}
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			conn_set_eof(conn);
		}
		return false;
	}
	*drained = (size_t)n < need + NBD_RX_BUF_SIZE;
	if ((uint32_t)n < need) {
		conn->payload_got += (uint32_t)n;
		return !*drained;
	}
	conn->rx_tail = (uint32_t)n - need;
	conn->payload_got = slot->length;
	conn_payload_done(conn);
	return true;
}

static void
conn_rx_process(struct nbd_conn *conn)
{
	bool drained = false, more = true;

	conn->in_rx = true;
	while (more && !conn->closing && !conn->rx_paused) {
		if (conn->drain_left > 0) {
			more = conn_rx_drain(conn, &drained);
		} else if (conn->payload_slot != NULL) {
			more = conn_rx_payload(conn, &drained);
		} else if (conn->rx_tail - conn->rx_head >= sizeof(struct sl_nbd_request)) {
			more = conn_rx_request(conn);
		} else if (drained) {
			more = false;
		} else {
			more = conn_rx_fill(conn, &drained);
		}
	}
	conn->in_rx = false;
}

/* ---- Life cycle --------------------------------------------------------------- */

static void
conn_close(struct nbd_conn *conn)
{
	sl_nbd_conn_done_cb cb = conn->done_cb;
	void *cb_arg = conn->done_arg;
	bool owned = conn->serve_owned;

	conn->closed = true;
	sl_poller_unregister(&conn->poller);
	sl_poller_unregister(&conn->stop_timer);
	if (conn->sock != NULL) {
		sl_sock_close(&conn->sock);
	} else if (conn->fd >= 0) {
		close(conn->fd);
	}
	conn->fd = -1;
	if (conn->ch != NULL) {
		sl_put_io_channel(conn->ch);
		conn->ch = NULL;
	}
	SL_DEBUGLOG(nbd, "%s: connection %" PRIu64 " closed\n", conn->name, conn->id);
	if (cb != NULL) {
		cb(cb_arg, (struct sl_nbd_conn *)conn);
	}
	if (owned) {
		nbd_conn_free(conn);
	}
}

/* Close once reading has ended and every request is answered (or dropped).
 * \return true if the connection is gone (it may have been freed). */
static bool
conn_check_done(struct nbd_conn *conn)
{
	if (conn->closed || !conn->closing || conn->in_rx || conn->tx_scheduled) {
		return conn->closed;
	}
	if (conn->payload_slot != NULL) {
		/* A request whose data will never come: nothing to answer. */
		conn->payload_slot->state = NBD_SLOT_FREE;
		TAILQ_INSERT_HEAD(&conn->free_slots, conn->payload_slot, link);
		conn->in_flight--;
		conn->payload_slot = NULL;
		conn->drain_left = 0;
	}
	if (conn->in_flight > 0) {
		return false;
	}
	conn_close(conn);
	return true;
}

/* An event we did not ask for (EPOLLHUP/EPOLLERR are always reported): is the peer
 * gone? */
static void
conn_check_hangup(struct nbd_conn *conn)
{
	struct pollfd pfd = {.fd = conn->fd, .events = 0};

	if (poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR | POLLNVAL))) {
		conn_set_eof(conn);
	}
}

static int
conn_poll(void *arg)
{
	struct nbd_conn *conn = arg;
	uint32_t events = conn->events;

	if (events & EPOLLOUT) {
		conn_tx_flush(conn);
	}
	if ((events & EPOLLIN) && !conn->closing && !conn->rx_paused) {
		conn_rx_process(conn);
	} else if (!(events & EPOLLOUT)) {
		conn_check_hangup(conn);
	}
	if (conn_check_done(conn)) {
		return SL_POLLER_IDLE;
	}
	/* The socket is drained here (a short recv() or EAGAIN), or reading stopped on
	 * purpose (no free slot, closing) and resumes through conn_schedule(). Between
	 * requests the next one may be far off: epoll will say (IDLE). In the middle
	 * of a large payload, or with replies waiting for room in the socket, the peer
	 * is streaming and the rest is microseconds away (BUSY: the reactor spins
	 * briefly instead of paying a sleep and a wake-up per socket buffer). Not for a
	 * small payload split from its header: spinning for it cost more than the
	 * wake-up at 100K 4 KiB writes/s. */
	if ((conn->events & EPOLLOUT) ||
	    (conn->payload_slot != NULL && conn->payload_slot->length >= NBD_STREAM_MIN)) {
		return SL_POLLER_BUSY;
	}
	return SL_POLLER_IDLE;
}

int
nbd_conn_start(struct nbd_conn *conn, sl_nbd_conn_done_cb done_cb, void *cb_arg)
{
	int flags;

	conn->thread = sl_get_thread();
	if (conn->thread == NULL || conn->desc == NULL || !SL_IS_POW2(conn->min_block)) {
		return -EINVAL;
	}
	flags = fcntl(conn->fd, F_GETFL);
	if (flags < 0 || fcntl(conn->fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		return -errno;
	}
	conn->ch = sl_bdev_get_io_channel(conn->desc);
	if (conn->ch == NULL) {
		return -ENODEV;
	}
	conn->events = EPOLLIN;
	conn->poller = sl_poller_register_fd(conn->fd, EPOLLIN, conn_poll, conn, "nbd_conn");
	if (conn->poller == NULL) {
		int rc = -errno;

		sl_put_io_channel(conn->ch);
		conn->ch = NULL;
		return rc != 0 ? rc : -ENOMEM;
	}
	/* conn_poll reads until EAGAIN and acts on conn->events, not on what fired: a
	 * busy reactor may run it with the socket out of epoll, sparing the client. */
	sl_poller_fd_set_direct(conn->poller, true);
	conn->done_cb = done_cb;
	conn->done_arg = cb_arg;
	if (conn->rx_tail > conn->rx_head) {
		/* Requests pipelined behind the handshake: no epoll event will tell. */
		conn_schedule(conn);
	}
	SL_DEBUGLOG(nbd, "%s: connection %" PRIu64 " serving on thread %s (flags 0x%04x%s)\n",
		    conn->name, conn->id, sl_thread_get_name(conn->thread), conn->tx_flags,
		    conn->structured ? ", structured replies" : "");
	return 0;
}

struct sl_nbd_conn *
sl_nbd_conn_serve(int fd, struct sl_bdev_desc *desc, const struct sl_nbd_conn_opts *opts,
		  sl_nbd_conn_done_cb done_cb, void *cb_arg)
{
	struct nbd_conn *conn;
	int rc;

	if (fd < 0 || desc == NULL || opts == NULL ||
	    (opts->base_allocation && !opts->structured_replies)) {
		errno = EINVAL;
		return NULL;
	}
	conn = nbd_conn_alloc(fd, opts->name);
	if (conn == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	conn->desc = desc;
	conn->size = sl_bdev_get_size(sl_bdev_desc_get_bdev(desc));
	conn->tx_flags = opts->tx_flags | SL_NBD_FLAG_HAS_FLAGS;
	conn->structured = opts->structured_replies;
	conn->base_allocation = opts->base_allocation;
	conn->min_block = opts->min_block_size != 0 ? opts->min_block_size : 1;
	if (opts->max_payload != 0 && opts->max_payload < NBD_MAX_PAYLOAD) {
		conn->max_payload = opts->max_payload;
	}
	conn->serve_owned = true;
	rc = nbd_conn_start(conn, done_cb, cb_arg);
	if (rc != 0) {
		conn->fd = -1;
		nbd_conn_free(conn);
		errno = -rc;
		return NULL;
	}
	return (struct sl_nbd_conn *)conn;
}

/* The grace period of a stop is over: replies still unsent are dropped (a hard
 * disconnect); I/O in flight still completes before the connection goes. */
static int
conn_stop_timeout(void *arg)
{
	struct nbd_conn *conn = arg;

	sl_poller_unregister(&conn->stop_timer);
	if (!conn->eof) {
		SL_NOTICELOG("%s: connection %" PRIu64 " stopped but its peer takes no replies: "
			     "disconnecting\n",
			     conn->name, conn->id);
		conn_set_eof(conn);
		conn_tx_flush(conn);
	}
	conn_check_done(conn);
	return SL_POLLER_BUSY;
}

void
sl_nbd_conn_stop(struct sl_nbd_conn *sconn)
{
	struct nbd_conn *conn = (struct nbd_conn *)sconn;

	/* Not conn->closing alone: a DISC sets it too, and the peer may stall after one. */
	if (conn == NULL || conn->closed || conn->stop_timer != NULL) {
		return;
	}
	conn->closing = true;
	conn_update_events(conn, conn->events & EPOLLOUT);
	if (conn_check_done(conn)) {
		return;
	}
	conn->stop_timer =
		sl_poller_register(conn_stop_timeout, conn, g_nbd_stop_grace_us, "nbd_stop");
}

void
nbd_conn_get_info(const struct nbd_conn *conn, struct sl_nbd_conn_info *info)
{
	memset(info, 0, sizeof(*info));
	info->id = conn->id;
	snprintf(info->peer, sizeof(info->peer), "%s", conn->peer);
	info->thread = conn->thread != NULL ? sl_thread_get_name(conn->thread) : "";
	info->structured_replies = conn->structured;
	info->base_allocation = conn->base_allocation;
	/* Read from the app thread while the connection's thread updates them: a
	 * snapshot, possibly a little stale, which is all a listing needs. */
	info->in_flight = conn->in_flight;
	info->num_read_ops = conn->stats.num_read_ops;
	info->bytes_read = conn->stats.bytes_read;
	info->num_write_ops = conn->stats.num_write_ops;
	info->bytes_written = conn->stats.bytes_written;
	info->num_other_ops = conn->stats.num_other_ops;
	info->num_errors = conn->stats.num_errors;
}
