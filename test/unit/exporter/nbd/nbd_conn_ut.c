/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * Unit tests of the NBD transmission phase (nbd_conn.c): a connection served on a
 * hand-polled thread over a socketpair, with a RAM bdev mock, driven byte by byte
 * from the client end. Covers what real clients rarely do: more requests than slots,
 * payloads in pieces, refused writes drained, -ENOMEM from the bdev, a full socket
 * buffer, stop, half-close and hang-up with I/O in flight, and the reply formats.
 */

#include <CUnit/Basic.h>
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nbd_mock.h"

#include "exporter/nbd/nbd_conn.c"

static struct sl_thread *g_thread;
static struct sl_bdev_desc *g_desc;
static int g_cfd = -1;
static struct sl_nbd_conn *g_conn;
static int g_done;

static void
poll_once(void)
{
	usleep(20);
	sl_thread_poll(g_thread, 0, 0);
}

static void
poll_n(int n)
{
	while (n-- > 0) {
		poll_once();
	}
}

static void
done_cb(void *cb_arg, struct sl_nbd_conn *conn)
{
	g_done++;
}

static void
bdev_event_cb(enum sl_bdev_event_type type, struct sl_bdev *bdev, void *ctx)
{
}

static void
serve(bool structured, bool base_allocation)
{
	struct sl_nbd_conn_opts opts = {
		.tx_flags = sl_nbd_tx_flags(g_desc, false, structured),
		.structured_replies = structured,
		.base_allocation = base_allocation,
		.min_block_size = 512,
		.name = "ut",
	};
	int sv[2];

	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	g_cfd = sv[0];
	g_done = 0;
	g_conn = sl_nbd_conn_serve(sv[1], g_desc, &opts, done_cb, NULL);
	CU_ASSERT_FATAL(g_conn != NULL);
}

static void
client_close(void)
{
	if (g_cfd >= 0) {
		close(g_cfd);
		g_cfd = -1;
	}
	for (int i = 0; i < 20000 && g_done == 0; i++) {
		poll_once();
	}
	CU_ASSERT(g_done == 1);
}

static void
client_send(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = send(g_cfd, p, len, MSG_DONTWAIT);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else {
			poll_once();
		}
	}
}

/* Read exactly len bytes, polling the server meanwhile. \return bytes read (short on
 * EOF or after a long wait). */
static size_t
client_recv(void *buf, size_t len)
{
	size_t got = 0;

	for (int i = 0; i < 100000 && got < len; i++) {
		ssize_t n = recv(g_cfd, (uint8_t *)buf + got, len - got, MSG_DONTWAIT);

		if (n == 0) {
			break;
		}
		if (n > 0) {
			got += (size_t)n;
		} else {
			poll_once();
		}
	}
	return got;
}

static void
send_req(uint16_t type, uint16_t flags, uint64_t cookie, uint64_t offset, uint32_t length)
{
	struct sl_nbd_request r = {
		.magic = htobe32(SL_NBD_REQUEST_MAGIC),
		.flags = htobe16(flags),
		.type = htobe16(type),
		.cookie = htobe64(cookie),
		.offset = htobe64(offset),
		.length = htobe32(length),
	};

	client_send(&r, sizeof(r));
}

/* \return the error of a simple reply for cookie, or -1 if it is not one. */
static int
recv_simple(uint64_t cookie)
{
	struct sl_nbd_simple_reply r;

	if (client_recv(&r, sizeof(r)) != sizeof(r) ||
	    be32toh(r.magic) != SL_NBD_SIMPLE_REPLY_MAGIC || be64toh(r.cookie) != cookie) {
		return -1;
	}
	return (int)be32toh(r.error);
}

static void
test_errno_map(void)
{
	CU_ASSERT(nbd_errno_to_nbd(0, false) == SL_NBD_OK);
	CU_ASSERT(nbd_errno_to_nbd(-EBADF, false) == SL_NBD_EPERM);
	CU_ASSERT(nbd_errno_to_nbd(-EROFS, false) == SL_NBD_EPERM);
	CU_ASSERT(nbd_errno_to_nbd(-ENOMEM, false) == SL_NBD_ENOMEM);
	CU_ASSERT(nbd_errno_to_nbd(-EINVAL, false) == SL_NBD_EINVAL);
	CU_ASSERT(nbd_errno_to_nbd(-EDQUOT, false) == SL_NBD_ENOSPC);
	CU_ASSERT(nbd_errno_to_nbd(-EOVERFLOW, false) == SL_NBD_EOVERFLOW);
	/* NBD_ENOTSUP is for a FAST_ZERO request only (proto.md, "Error values"). */
	CU_ASSERT(nbd_errno_to_nbd(-ENOTSUP, true) == SL_NBD_ENOTSUP);
	CU_ASSERT(nbd_errno_to_nbd(-ENOTSUP, false) == SL_NBD_EINVAL);
	CU_ASSERT(nbd_errno_to_nbd(-EOPNOTSUPP, false) == SL_NBD_EINVAL);
	CU_ASSERT(nbd_errno_to_nbd(-EIO, true) == SL_NBD_EIO);
	CU_ASSERT(nbd_errno_to_nbd(-ENODEV, false) == SL_NBD_ESHUTDOWN);
	CU_ASSERT(nbd_errno_to_nbd(-ECANCELED, false) == SL_NBD_ESHUTDOWN);
	CU_ASSERT(nbd_errno_to_nbd(-ETIMEDOUT, false) == SL_NBD_EIO);
}

static void
test_tx_flags(void)
{
	uint16_t f = sl_nbd_tx_flags(g_desc, false, true);

	CU_ASSERT((f & (SL_NBD_FLAG_HAS_FLAGS | SL_NBD_FLAG_SEND_FLUSH | SL_NBD_FLAG_SEND_FUA |
			SL_NBD_FLAG_SEND_TRIM | SL_NBD_FLAG_SEND_WRITE_ZEROES |
			SL_NBD_FLAG_SEND_FAST_ZERO | SL_NBD_FLAG_SEND_DF |
			SL_NBD_FLAG_CAN_MULTI_CONN | SL_NBD_FLAG_SEND_CACHE)) == f);
	CU_ASSERT(!(f & SL_NBD_FLAG_READ_ONLY));
	f = sl_nbd_tx_flags(g_desc, true, false);
	CU_ASSERT((f & SL_NBD_FLAG_READ_ONLY) && !(f & SL_NBD_FLAG_SEND_TRIM) &&
		  !(f & SL_NBD_FLAG_SEND_FUA) && !(f & SL_NBD_FLAG_SEND_DF));
	g_mock_bdev.unmap = false;
	CU_ASSERT(!(sl_nbd_tx_flags(g_desc, false, false) & SL_NBD_FLAG_SEND_TRIM));
	g_mock_bdev.unmap = true;
}

static void
test_read_write(void)
{
	uint8_t out[4096], in[4096];

	serve(false, false);
	memset(out, 0xa5, sizeof(out));
	send_req(SL_NBD_CMD_WRITE, 0, 1, 8192, sizeof(out));
	client_send(out, sizeof(out));
	CU_ASSERT(recv_simple(1) == 0);
	CU_ASSERT(memcmp(g_mock_bdev.data + 8192, out, sizeof(out)) == 0);
	send_req(SL_NBD_CMD_READ, 0, 2, 8192, sizeof(in));
	CU_ASSERT(recv_simple(2) == 0);
	CU_ASSERT(client_recv(in, sizeof(in)) == sizeof(in));
	CU_ASSERT(memcmp(in, out, sizeof(in)) == 0);
	client_close();
}

/* More requests than slots, in one burst: reading pauses and resumes. */
static void
test_more_than_slots(void)
{
	enum { N = 3 * NBD_CONN_SLOTS };
	static uint8_t seen[N];
	struct sl_nbd_simple_reply r;
	uint8_t blk[512];
	int ok = 0;

	serve(false, false);
	memset(seen, 0, sizeof(seen));
	for (int i = 0; i < N; i++) {
		memset(blk, i, sizeof(blk));
		send_req(SL_NBD_CMD_WRITE, 0, (uint64_t)i, (uint64_t)(i % 2048) * 512, 512);
		client_send(blk, sizeof(blk));
	}
	for (int i = 0; i < N; i++) {
		if (client_recv(&r, sizeof(r)) != sizeof(r) || r.error != 0) {
			break;
		}
		if (be64toh(r.cookie) < N && !seen[be64toh(r.cookie)]++) {
			ok++;
		}
	}
	CU_ASSERT(ok == N);
	CU_ASSERT(((struct nbd_conn *)g_conn)->in_flight == 0);
	client_close();
}

/* A payload in three pieces, and a refused write drained in pieces. */
static void
test_payload_pieces(void)
{
	uint8_t buf[4096];

	serve(false, false);
	memset(buf, 0x3c, sizeof(buf));
	send_req(SL_NBD_CMD_WRITE, 0, 7, 0, sizeof(buf));
	client_send(buf, 100);
	poll_n(20);
	client_send(buf + 100, 2000);
	poll_n(20);
	client_send(buf + 2100, sizeof(buf) - 2100);
	CU_ASSERT(recv_simple(7) == 0);
	CU_ASSERT(memcmp(g_mock_bdev.data, buf, sizeof(buf)) == 0);

	/* Past the end: ENOSPC, and the data is skipped, not taken for headers. */
	send_req(SL_NBD_CMD_WRITE, 0, 8, sl_bdev_get_size(&g_mock_bdev) - 512, sizeof(buf));
	client_send(buf, 1000);
	poll_n(20);
	client_send(buf + 1000, sizeof(buf) - 1000);
	CU_ASSERT(recv_simple(8) == SL_NBD_ENOSPC);
	/* Unaligned: EINVAL, drained too. */
	send_req(SL_NBD_CMD_WRITE, 0, 9, 1, 1000);
	client_send(buf, 1000);
	CU_ASSERT(recv_simple(9) == SL_NBD_EINVAL);
	send_req(SL_NBD_CMD_READ, 0, 10, 0, 512);
	CU_ASSERT(recv_simple(10) == 0);
	CU_ASSERT(client_recv(buf, 512) == 512 && buf[0] == 0x3c);
	client_close();
}

static void
test_errors(void)
{
	uint8_t buf[512];

	serve(false, false);
	send_req(SL_NBD_CMD_READ, 0, 1, sl_bdev_get_size(&g_mock_bdev), 512);
	CU_ASSERT(recv_simple(1) == SL_NBD_EINVAL);
	send_req(SL_NBD_CMD_READ, 0, 2, 0, NBD_MAX_PAYLOAD + 512);
	CU_ASSERT(recv_simple(2) == SL_NBD_EOVERFLOW);
	send_req(SL_NBD_CMD_READ, 0, 3, 0, 0);
	CU_ASSERT(recv_simple(3) == SL_NBD_EINVAL);
	send_req(SL_NBD_CMD_READ, SL_NBD_CMD_FLAG_REQ_ONE, 4, 0, 512);
	CU_ASSERT(recv_simple(4) == SL_NBD_EINVAL);
	/* DF needs structured replies. */
	send_req(SL_NBD_CMD_READ, SL_NBD_CMD_FLAG_DF, 5, 0, 512);
	CU_ASSERT(recv_simple(5) == SL_NBD_EINVAL);
	/* Block status without a context. */
	send_req(SL_NBD_CMD_BLOCK_STATUS, 0, 6, 0, 512);
	CU_ASSERT(recv_simple(6) == SL_NBD_EINVAL);
	send_req(SL_NBD_CMD_RESIZE, 0, 7, 0, 0);
	CU_ASSERT(recv_simple(7) == SL_NBD_EINVAL);
	send_req(99, 0, 8, 0, 0);
	CU_ASSERT(recv_simple(8) == SL_NBD_EINVAL);
	/* A bdev error: EIO; FAST_ZERO on a bdev without native zeroes: ENOTSUP. */
	g_mock_fail_next = -EIO;
	send_req(SL_NBD_CMD_READ, 0, 9, 0, 512);
	CU_ASSERT(recv_simple(9) == SL_NBD_EIO);
	send_req(SL_NBD_CMD_WRITE_ZEROES, SL_NBD_CMD_FLAG_FAST_ZERO, 10, 0, 512);
	CU_ASSERT(recv_simple(10) == SL_NBD_ENOTSUP);
	send_req(SL_NBD_CMD_CACHE, 0, 11, 0, 512);
	CU_ASSERT(recv_simple(11) == 0);
	send_req(SL_NBD_CMD_READ, 0, 12, 0, 512);
	CU_ASSERT(recv_simple(12) == 0 && client_recv(buf, 512) == 512);
	client_close();
}

/* A bdev that cannot do an operation (-ENOTSUP, as the block layer answers an unmap on
 * a bdev without one, or emulated zeroes on blocks larger than its zero buffer): the
 * client gets NBD_EINVAL, except for the zeroing of a FAST_ZERO request, where
 * NBD_ENOTSUP means "not fast" (proto.md, "Error values", NBD_CMD_WRITE_ZEROES). */
static void
test_not_supported(void)
{
	serve(false, false);
	g_mock_fail_next = -ENOTSUP;
	send_req(SL_NBD_CMD_TRIM, 0, 1, 0, 4096);
	CU_ASSERT(recv_simple(1) == SL_NBD_EINVAL);
	g_mock_fail_next = -ENOTSUP;
	send_req(SL_NBD_CMD_WRITE_ZEROES, 0, 2, 0, 4096);
	CU_ASSERT(recv_simple(2) == SL_NBD_EINVAL);
	g_mock_fail_next = -ENOTSUP;
	send_req(SL_NBD_CMD_WRITE_ZEROES, SL_NBD_CMD_FLAG_NO_HOLE, 3, 0, 4096);
	CU_ASSERT(recv_simple(3) == SL_NBD_EINVAL);
	g_mock_fail_next = -ENOTSUP;
	send_req(SL_NBD_CMD_FLUSH, 0, 4, 0, 0);
	CU_ASSERT(recv_simple(4) == SL_NBD_EINVAL);
	g_mock_fail_next = -ENOTSUP;
	send_req(SL_NBD_CMD_READ, 0, 5, 0, 512);
	CU_ASSERT(recv_simple(5) == SL_NBD_EINVAL);
	/* FAST_ZERO on a bdev without native zeroes: the mock refuses it, NBD_ENOTSUP. */
	send_req(SL_NBD_CMD_WRITE_ZEROES, SL_NBD_CMD_FLAG_FAST_ZERO, 6, 0, 4096);
	CU_ASSERT(recv_simple(6) == SL_NBD_ENOTSUP);
	/* FAST_ZERO|FUA whose zeroing worked but whose flush is not supported: the
	 * export changed, so not NBD_ENOTSUP. */
	g_mock_bdev.write_zeroes_native = true;
	g_mock_fail_flush = -ENOTSUP;
	memset(g_mock_bdev.data, 0x5a, 4096);
	send_req(SL_NBD_CMD_WRITE_ZEROES, SL_NBD_CMD_FLAG_FAST_ZERO | SL_NBD_CMD_FLAG_FUA, 7, 0,
		 4096);
	CU_ASSERT(recv_simple(7) == SL_NBD_EINVAL);
	CU_ASSERT(g_mock_bdev.data[0] == 0 && g_mock_fail_flush == 0);
	/* And with the flush working, the native fast zero succeeds. */
	send_req(SL_NBD_CMD_WRITE_ZEROES, SL_NBD_CMD_FLAG_FAST_ZERO | SL_NBD_CMD_FLAG_FUA, 8, 0,
		 4096);
	CU_ASSERT(recv_simple(8) == 0);
	g_mock_bdev.write_zeroes_native = false;
	client_close();
}

/* A WRITE on a read-only connection: EPERM, its payload drained, the stream in sync. */
static void
test_read_only(void)
{
	struct sl_nbd_conn_opts opts = {
		.tx_flags = sl_nbd_tx_flags(g_desc, true, false),
		.min_block_size = 512,
		.name = "ut-ro",
	};
	uint8_t buf[4096];
	int sv[2];

	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	g_cfd = sv[0];
	g_done = 0;
	g_conn = sl_nbd_conn_serve(sv[1], g_desc, &opts, done_cb, NULL);
	CU_ASSERT_FATAL(g_conn != NULL);
	memset(g_mock_bdev.data, 0x11, 4096);
	memset(buf, 0x77, sizeof(buf));
	send_req(SL_NBD_CMD_WRITE, 0, 1, 0, sizeof(buf));
	client_send(buf, 1000);
	poll_n(20);
	client_send(buf + 1000, sizeof(buf) - 1000);
	CU_ASSERT(recv_simple(1) == SL_NBD_EPERM);
	send_req(SL_NBD_CMD_TRIM, 0, 2, 0, 4096);
	CU_ASSERT(recv_simple(2) == SL_NBD_EPERM);
	send_req(SL_NBD_CMD_WRITE_ZEROES, 0, 3, 0, 4096);
	CU_ASSERT(recv_simple(3) == SL_NBD_EPERM);
	send_req(SL_NBD_CMD_READ, 0, 4, 0, 512);
	CU_ASSERT(recv_simple(4) == 0 && client_recv(buf, 512) == 512 && buf[0] == 0x11);
	client_close();
}

static void
test_fua(void)
{
	int before;

	serve(false, false);
	before = g_mock_flushes;
	send_req(SL_NBD_CMD_TRIM, SL_NBD_CMD_FLAG_FUA, 1, 0, 4096);
	CU_ASSERT(recv_simple(1) == 0);
	CU_ASSERT(g_mock_flushes == before + 1);
	send_req(SL_NBD_CMD_WRITE_ZEROES, SL_NBD_CMD_FLAG_FUA | SL_NBD_CMD_FLAG_NO_HOLE, 2, 0,
		 4096);
	CU_ASSERT(recv_simple(2) == 0);
	CU_ASSERT(g_mock_flushes == before + 2);
	send_req(SL_NBD_CMD_FLUSH, 0, 3, 0, 0);
	CU_ASSERT(recv_simple(3) == 0);
	CU_ASSERT(g_mock_flushes == before + 3);
	client_close();
}

static void
test_nomem(void)
{
	uint8_t buf[512];

	serve(false, false);
	g_mock_nomem = 1;
	send_req(SL_NBD_CMD_READ, 0, 1, 0, 512);
	for (int i = 0; i < 1000 && g_mock_waiter == NULL; i++) {
		poll_once();
	}
	CU_ASSERT_FATAL(g_mock_waiter != NULL);
	mock_wake_waiter();
	CU_ASSERT(recv_simple(1) == 0 && client_recv(buf, 512) == 512);
	client_close();
}

static void
test_structured(void)
{
	struct sl_nbd_structured_reply c;
	struct sl_nbd_reply_error e;
	struct sl_nbd_block_descriptor d[2];
	uint64_t off;
	uint32_t id;
	uint8_t buf[512];
	char msg[64];

	serve(true, true);
	send_req(SL_NBD_CMD_READ, SL_NBD_CMD_FLAG_DF, 1, 512, 512);
	CU_ASSERT(client_recv(&c, sizeof(c)) == sizeof(c));
	CU_ASSERT(be32toh(c.magic) == SL_NBD_STRUCTURED_REPLY_MAGIC &&
		  be16toh(c.flags) == SL_NBD_REPLY_FLAG_DONE &&
		  be16toh(c.type) == SL_NBD_REPLY_TYPE_OFFSET_DATA && be32toh(c.length) == 520);
	CU_ASSERT(client_recv(&off, 8) == 8 && be64toh(off) == 512);
	CU_ASSERT(client_recv(buf, 512) == 512);

	g_mock_fail_next = -EIO;
	send_req(SL_NBD_CMD_READ, 0, 2, 0, 512);
	CU_ASSERT(client_recv(&c, sizeof(c)) == sizeof(c));
	CU_ASSERT(be16toh(c.type) == SL_NBD_REPLY_TYPE_ERROR && be64toh(c.cookie) == 2);
	CU_ASSERT(client_recv(&e, sizeof(e)) == sizeof(e) && be32toh(e.error) == SL_NBD_EIO);
	CU_ASSERT(be32toh(c.length) == sizeof(e) + be16toh(e.msg_length));
	CU_ASSERT(client_recv(msg, be16toh(e.msg_length)) == be16toh(e.msg_length));

	/* Block status over the whole device: data, then hole+zero. */
	send_req(SL_NBD_CMD_BLOCK_STATUS, 0, 3, 0, (uint32_t)sl_bdev_get_size(&g_mock_bdev));
	CU_ASSERT(client_recv(&c, sizeof(c)) == sizeof(c));
	CU_ASSERT(be16toh(c.type) == SL_NBD_REPLY_TYPE_BLOCK_STATUS &&
		  be32toh(c.length) == 4 + 2 * 8);
	CU_ASSERT(client_recv(&id, 4) == 4 && be32toh(id) == NBD_META_ID_BASE_ALLOCATION);
	CU_ASSERT(client_recv(d, sizeof(d)) == sizeof(d));
	CU_ASSERT(be32toh(d[0].length) == sl_bdev_get_size(&g_mock_bdev) / 2 &&
		  be32toh(d[0].status_flags) == 0);
	CU_ASSERT(be32toh(d[1].status_flags) == (SL_NBD_STATE_HOLE | SL_NBD_STATE_ZERO));
	send_req(SL_NBD_CMD_BLOCK_STATUS, SL_NBD_CMD_FLAG_REQ_ONE, 4, 0,
		 (uint32_t)sl_bdev_get_size(&g_mock_bdev));
	CU_ASSERT(client_recv(&c, sizeof(c)) == sizeof(c) && be32toh(c.length) == 4 + 8);
	CU_ASSERT(client_recv(&id, 4) == 4 && client_recv(d, 8) == 8);
	/* Successful non-read commands get simple replies. */
	send_req(SL_NBD_CMD_FLUSH, 0, 5, 0, 0);
	CU_ASSERT(recv_simple(5) == 0);
	client_close();
}

/* The client does not read: replies back up, EPOLLOUT takes over, nothing is lost. */
static void
test_backpressure(void)
{
	enum { N = 64, LEN = 64 * 1024 };
	struct sl_nbd_simple_reply r;
	static uint8_t buf[LEN];
	int sz = 4096, ok = 0;

	g_mock_bdev.num_blocks = 8192; /* 4 MiB */
	free(g_mock_bdev.data);
	g_mock_bdev.data = calloc(1, sl_bdev_get_size(&g_mock_bdev));
	serve(false, false);
	setsockopt(g_cfd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	for (int i = 0; i < N; i++) {
		send_req(SL_NBD_CMD_READ, 0, (uint64_t)i, (uint64_t)i * LEN % (4u << 20), LEN);
	}
	poll_n(500);
	CU_ASSERT(((struct nbd_conn *)g_conn)->events & EPOLLOUT);
	for (int i = 0; i < N; i++) {
		if (client_recv(&r, sizeof(r)) == sizeof(r) && r.error == 0 &&
		    client_recv(buf, LEN) == LEN) {
			ok++;
		}
	}
	CU_ASSERT(ok == N);
	client_close();
}

/* Stop with I/O in flight: the reply still goes out, then the socket closes. */
static void
test_stop_in_flight(void)
{
	uint8_t buf[512];

	serve(false, false);
	g_mock_hold = true;
	send_req(SL_NBD_CMD_READ, 0, 1, 0, 512);
	for (int i = 0; i < 1000 && g_mock_held == NULL; i++) {
		poll_once();
	}
	CU_ASSERT_FATAL(g_mock_held != NULL);
	sl_nbd_conn_stop(g_conn);
	poll_n(50);
	CU_ASSERT(g_done == 0);
	mock_release();
	CU_ASSERT(recv_simple(1) == 0 && client_recv(buf, 512) == 512);
	CU_ASSERT(client_recv(buf, 1) == 0); /* EOF */
	CU_ASSERT(g_done == 1);
	close(g_cfd);
	g_cfd = -1;
}

/* Stop while the client takes no replies: after the grace period the connection is cut
 * off rather than held forever (it would block an export removal or a shutdown). The
 * same for a client that half-closed after its requests. */
static void
test_stop_stuck_client(void)
{
	enum { N = 64, LEN = 64 * 1024 };
	int sz = 4096;

	for (int half = 0; half < 2; half++) {
		serve(false, false);
		setsockopt(g_cfd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
		for (int i = 0; i < N; i++) {
			send_req(SL_NBD_CMD_READ, 0, (uint64_t)i, (uint64_t)i * LEN % (4u << 20),
				 LEN);
		}
		if (half) {
			CU_ASSERT(shutdown(g_cfd, SHUT_WR) == 0);
		}
		poll_n(500);
		CU_ASSERT(((struct nbd_conn *)g_conn)->events & EPOLLOUT);
		CU_ASSERT(g_done == 0);
		g_nbd_stop_grace_us = 20000;
		sl_nbd_conn_stop(g_conn);
		for (int i = 0; i < 20000 && g_done == 0; i++) {
			poll_once();
		}
		CU_ASSERT(g_done == 1);
		g_nbd_stop_grace_us = NBD_STOP_GRACE_US;
		close(g_cfd);
		g_cfd = -1;
	}
}

/* A client half-closes (shutdown(SHUT_WR)) right after its last requests, more than
 * there are slots, so reading pauses and resumes behind the FIN: every request is
 * answered, then the socket closes. */
static void
test_half_close(void)
{
	enum { N = 2 * NBD_CONN_SLOTS + 7 };
	static uint8_t seen[N];
	struct sl_nbd_simple_reply r;
	uint8_t buf[512];
	uint64_t cookie;
	int ok = 0;

	serve(false, false);
	memset(seen, 0, sizeof(seen));
	for (int i = 0; i < N; i++) {
		memset(g_mock_bdev.data + (size_t)i * 512, i, 512);
		send_req(SL_NBD_CMD_READ, 0, (uint64_t)i, (uint64_t)i * 512, 512);
	}
	CU_ASSERT(shutdown(g_cfd, SHUT_WR) == 0);
	for (int i = 0; i < N; i++) {
		if (client_recv(&r, sizeof(r)) != sizeof(r) || r.error != 0 ||
		    client_recv(buf, sizeof(buf)) != sizeof(buf)) {
			break;
		}
		cookie = be64toh(r.cookie);
		if (cookie < N && !seen[cookie]++ && buf[0] == (uint8_t)cookie) {
			ok++;
		}
	}
	CU_ASSERT(ok == N);
	CU_ASSERT(client_recv(buf, 1) == 0); /* then EOF */
	CU_ASSERT(g_done == 1);
	client_close();
}

/* Half-close with reads in the bdev and a WRITE whose data stops short: the socket
 * stays open (and in epoll) until the reads complete; they are answered, the WRITE,
 * never received whole, is not; then EOF. */
static void
test_half_close_in_flight(void)
{
	struct sl_nbd_simple_reply r;
	struct nbd_conn *conn;
	uint8_t buf[512];

	serve(false, false);
	conn = (struct nbd_conn *)g_conn;
	g_mock_hold = true;
	send_req(SL_NBD_CMD_READ, 0, 1, 0, 512);
	send_req(SL_NBD_CMD_READ, 0, 2, 512, 512);
	send_req(SL_NBD_CMD_WRITE, 0, 3, 0, 4096);
	client_send(buf, 100);
	CU_ASSERT(shutdown(g_cfd, SHUT_WR) == 0);
	poll_n(200);
	CU_ASSERT(g_done == 0);
	CU_ASSERT(conn->closing && !conn->eof && conn->poller != NULL);
	CU_ASSERT(conn->in_flight == 2 && conn->payload_slot == NULL);
	mock_release();
	for (int i = 0; i < 2; i++) { /* in either order */
		CU_ASSERT(client_recv(&r, sizeof(r)) == sizeof(r) && r.error == 0 &&
			  (be64toh(r.cookie) == 1 || be64toh(r.cookie) == 2));
		CU_ASSERT(client_recv(buf, 512) == 512);
	}
	CU_ASSERT(client_recv(buf, 1) == 0); /* EOF, no reply to the WRITE */
	CU_ASSERT(g_done == 1);
	client_close();
}

/* Hang-up with I/O in flight: the connection waits for it, then goes. */
static void
test_hangup_in_flight(void)
{
	serve(false, false);
	g_mock_hold = true;
	send_req(SL_NBD_CMD_READ, 0, 1, 0, 512);
	for (int i = 0; i < 1000 && g_mock_held == NULL; i++) {
		poll_once();
	}
	close(g_cfd);
	g_cfd = -1;
	poll_n(200);
	CU_ASSERT(g_done == 0);
	/* Out of epoll: the hung-up socket does not wake the thread meanwhile. */
	CU_ASSERT(((struct nbd_conn *)g_conn)->eof && ((struct nbd_conn *)g_conn)->poller == NULL);
	mock_release();
	client_close();
}

static void
test_disc_and_bad_magic(void)
{
	uint8_t buf[512];
	uint32_t bad = 0x12345678;

	serve(false, false);
	send_req(SL_NBD_CMD_READ, 0, 1, 0, 512);
	send_req(SL_NBD_CMD_DISC, 0, 2, 0, 0);
	CU_ASSERT(recv_simple(1) == 0 && client_recv(buf, 512) == 512);
	CU_ASSERT(client_recv(buf, 1) == 0);
	client_close();

	serve(false, false);
	client_send(&bad, sizeof(bad));
	client_send(buf, 24);
	CU_ASSERT(client_recv(buf, 1) == 0);
	client_close();
}

int
main(void)
{
	CU_pSuite s;
	unsigned int failures;

	sl_thread_lib_init(NULL, 0);
	g_thread = sl_thread_create("ut", NULL);
	sl_set_thread(g_thread);
	mock_init();
	sl_bdev_open("Mock0", true, bdev_event_cb, NULL, &g_desc);

	CU_initialize_registry();
	s = CU_add_suite("nbd_conn", NULL, NULL);
	CU_add_test(s, "errno map", test_errno_map);
	CU_add_test(s, "transmission flags", test_tx_flags);
	CU_add_test(s, "read and write", test_read_write);
	CU_add_test(s, "more requests than slots", test_more_than_slots);
	CU_add_test(s, "payload in pieces, refused writes drained", test_payload_pieces);
	CU_add_test(s, "errors", test_errors);
	CU_add_test(s, "unsupported operations: EINVAL, ENOTSUP for FAST_ZERO only",
		    test_not_supported);
	CU_add_test(s, "read-only: writes refused, payload drained", test_read_only);
	CU_add_test(s, "FUA on trim and write zeroes", test_fua);
	CU_add_test(s, "bdev -ENOMEM and io_wait", test_nomem);
	CU_add_test(s, "structured replies and block status", test_structured);
	CU_add_test(s, "socket buffer full", test_backpressure);
	CU_add_test(s, "stop with I/O in flight", test_stop_in_flight);
	CU_add_test(s, "hang-up with I/O in flight", test_hangup_in_flight);
	CU_add_test(s, "stop while the client takes no replies", test_stop_stuck_client);
	CU_add_test(s, "half-close: every request answered, then EOF", test_half_close);
	CU_add_test(s, "half-close with I/O in flight", test_half_close_in_flight);
	CU_add_test(s, "disconnect and bad magic", test_disc_and_bad_magic);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures == 0 ? 0 : 1;
}
