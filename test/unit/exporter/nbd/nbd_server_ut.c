/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * Unit tests of the NBD server (nbd_server.c): option haggling fed byte strings and
 * read back from the reply buffer, then the server for real on a hand-polled thread
 * over a Unix socket (handshake, hand-off to the transmission phase, export removal
 * and server stop with clients connected, the handshake limit).
 */

#include <CUnit/Basic.h>
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "nbd_mock.h"

#include "exporter/nbd/nbd_conn.c"
#include "exporter/nbd/nbd_server.c"

static struct sl_thread *g_thread;
static struct nbd_conn *g_hs;

/* ---- Option haggling on a socket-less connection ------------------------------- */

static void
hs_new(uint32_t client_flags)
{
	uint32_t f = htobe32(client_flags);

	nbd_conn_free(g_hs);
	g_hs = nbd_conn_alloc(-1, "ut");
	CU_ASSERT_FATAL(g_hs != NULL);
	CU_ASSERT(nbd_hs_start(g_hs) == 0);
	CU_ASSERT(g_hs->hs_out_len == sizeof(struct sl_nbd_hello));
	g_hs->hs_out_len = 0; /* "sent" */
	memcpy(g_hs->rx, &f, sizeof(f));
	g_hs->rx_tail = sizeof(f);
}

static void
hs_feed(const void *data, size_t len)
{
	if (len == 0) {
		return;
	}
	if (g_hs->rx_head > 0) {
		memmove(g_hs->rx, g_hs->rx + g_hs->rx_head, g_hs->rx_tail - g_hs->rx_head);
		g_hs->rx_tail -= g_hs->rx_head;
		g_hs->rx_head = 0;
	}
	memcpy(g_hs->rx + g_hs->rx_tail, data, len);
	g_hs->rx_tail += (uint32_t)len;
}

static void
hs_option(uint32_t opt, const void *data, uint32_t len)
{
	struct sl_nbd_option o = {
		.magic = htobe64(SL_NBD_OPTS_MAGIC),
		.option = htobe32(opt),
		.length = htobe32(len),
	};

	hs_feed(&o, sizeof(o));
	hs_feed(data, len);
}

/* Walk the replies in hs_out: \return the type of reply i, or 0. */
static uint32_t
hs_reply_type(int i, const uint8_t **data, uint32_t *len)
{
	size_t pos = 0;

	for (;;) {
		struct sl_nbd_option_reply r;

		if (pos + sizeof(r) > g_hs->hs_out_len) {
			return 0;
		}
		memcpy(&r, g_hs->hs_out + pos, sizeof(r));
		if (be64toh(r.magic) != SL_NBD_REP_MAGIC) {
			return 0;
		}
		if (i-- == 0) {
			if (data != NULL) {
				*data = g_hs->hs_out + pos + sizeof(r);
				*len = be32toh(r.length);
			}
			return be32toh(r.type);
		}
		pos += sizeof(r) + be32toh(r.length);
	}
}

static void
hs_flushed(void)
{
	g_hs->hs_out_len = 0;
}

static size_t
go_data(uint8_t *buf, const char *name, const uint16_t *reqs, uint16_t nreq)
{
	uint32_t nlen = htobe32((uint32_t)strlen(name));
	uint16_t n = htobe16(nreq);
	size_t pos = 0;

	memcpy(buf, &nlen, 4);
	pos += 4;
	memcpy(buf + pos, name, strlen(name));
	pos += strlen(name);
	memcpy(buf + pos, &n, 2);
	pos += 2;
	for (uint16_t i = 0; i < nreq; i++) {
		uint16_t r = htobe16(reqs[i]);

		memcpy(buf + pos, &r, 2);
		pos += 2;
	}
	return pos;
}

static void
test_client_flags(void)
{
	hs_new(0x10);
	CU_ASSERT(nbd_hs_process(g_hs) == -EINVAL);
	hs_new(0);
	hs_option(SL_NBD_OPT_LIST, NULL, 0);
	CU_ASSERT(nbd_hs_process(g_hs) == -EINVAL); /* plain newstyle: EXPORT_NAME only */
}

static void
test_export_name(void)
{
	hs_new(SL_NBD_FLAG_C_FIXED_NEWSTYLE);
	hs_option(SL_NBD_OPT_EXPORT_NAME, "disk", 4);
	CU_ASSERT(nbd_hs_process(g_hs) == 1);
	CU_ASSERT(g_hs->hs_out_len == 10 + SL_NBD_EXPORT_NAME_PAD);
	CU_ASSERT(g_hs->hs_state == NBD_HS_DONE && g_hs->min_block == 512);
	hs_new(SL_NBD_FLAG_C_FIXED_NEWSTYLE | SL_NBD_FLAG_C_NO_ZEROES);
	hs_option(SL_NBD_OPT_EXPORT_NAME, "", 0); /* the default export */
	CU_ASSERT(nbd_hs_process(g_hs) == 1);
	CU_ASSERT(g_hs->hs_out_len == 10);
	hs_new(SL_NBD_FLAG_C_FIXED_NEWSTYLE);
	hs_option(SL_NBD_OPT_EXPORT_NAME, "nosuch", 6);
	CU_ASSERT(nbd_hs_process(g_hs) == -ENOENT);
}

static void
test_go(void)
{
	static const uint16_t reqs[] = {SL_NBD_INFO_NAME, SL_NBD_INFO_DESCRIPTION, 77};
	uint8_t buf[256];
	const uint8_t *d = NULL;
	uint32_t len = 0;
	size_t n;

	hs_new(SL_NBD_FLAG_C_FIXED_NEWSTYLE);
	n = go_data(buf, "disk", reqs, 3);
	hs_option(SL_NBD_OPT_INFO, buf, (uint32_t)n);
	CU_ASSERT(nbd_hs_process(g_hs) == 0);
	CU_ASSERT(hs_reply_type(0, &d, &len) == SL_NBD_REP_INFO && len == 12);
	CU_ASSERT(be16toh(*(const uint16_t *)d) == SL_NBD_INFO_EXPORT);
	CU_ASSERT(hs_reply_type(1, &d, &len) == SL_NBD_REP_INFO && len == 2 + 4 &&
		  memcmp(d + 2, "disk", 4) == 0);
	CU_ASSERT(hs_reply_type(2, &d, &len) == SL_NBD_REP_INFO && len == 2 + 9 &&
		  memcmp(d + 2, "unit test", 9) == 0);
	CU_ASSERT(hs_reply_type(3, &d, &len) == SL_NBD_REP_INFO && len == 14);
	CU_ASSERT(hs_reply_type(4, NULL, NULL) == SL_NBD_REP_ACK);
	CU_ASSERT(g_hs->hs_state == NBD_HS_OPTIONS);
	hs_flushed();

	/* Bad count, unknown export, then GO. */
	n = go_data(buf, "disk", reqs, 3);
	hs_option(SL_NBD_OPT_GO, buf, (uint32_t)n - 1);
	CU_ASSERT(nbd_hs_process(g_hs) == 0 &&
		  hs_reply_type(0, NULL, NULL) == SL_NBD_REP_ERR_INVALID);
	hs_flushed();
	n = go_data(buf, "other", NULL, 0);
	hs_option(SL_NBD_OPT_GO, buf, (uint32_t)n);
	CU_ASSERT(nbd_hs_process(g_hs) == 0 &&
		  hs_reply_type(0, NULL, NULL) == SL_NBD_REP_ERR_UNKNOWN);
	hs_flushed();
	n = go_data(buf, "disk", NULL, 0);
	hs_option(SL_NBD_OPT_GO, buf, (uint32_t)n);
	CU_ASSERT(nbd_hs_process(g_hs) == 1);
	CU_ASSERT(g_hs->hs_state == NBD_HS_DONE && g_hs->export != NULL);
	CU_ASSERT(!(g_hs->tx_flags & SL_NBD_FLAG_SEND_DF)); /* no structured replies */
}

static size_t
meta_data(uint8_t *buf, const char *name, const char **queries, uint32_t nq)
{
	uint32_t v = htobe32((uint32_t)strlen(name));
	size_t pos = 0;

	memcpy(buf, &v, 4);
	memcpy(buf + 4, name, strlen(name));
	pos = 4 + strlen(name);
	v = htobe32(nq);
	memcpy(buf + pos, &v, 4);
	pos += 4;
	for (uint32_t i = 0; i < nq; i++) {
		v = htobe32((uint32_t)strlen(queries[i]));
		memcpy(buf + pos, &v, 4);
		memcpy(buf + pos + 4, queries[i], strlen(queries[i]));
		pos += 4 + strlen(queries[i]);
	}
	return pos;
}

static void
test_meta_context(void)
{
	const char *base[] = {"base:allocation"}, *ns[] = {"base:"}, *other[] = {"x-foo:bar"};
	uint8_t buf[256];
	const uint8_t *d = NULL;
	uint32_t len = 0;
	size_t n;

	hs_new(SL_NBD_FLAG_C_FIXED_NEWSTYLE);
	n = meta_data(buf, "disk", base, 1);
	hs_option(SL_NBD_OPT_SET_META_CONTEXT, buf, (uint32_t)n);
	CU_ASSERT(nbd_hs_process(g_hs) == 0 &&
		  hs_reply_type(0, NULL, NULL) == SL_NBD_REP_ERR_INVALID);
	hs_flushed();
	hs_option(SL_NBD_OPT_STRUCTURED_REPLY, NULL, 0);
	CU_ASSERT(nbd_hs_process(g_hs) == 0 && hs_reply_type(0, NULL, NULL) == SL_NBD_REP_ACK);
	hs_flushed();
	n = meta_data(buf, "disk", NULL, 0);
	hs_option(SL_NBD_OPT_LIST_META_CONTEXT, buf, (uint32_t)n);
	CU_ASSERT(nbd_hs_process(g_hs) == 0);
	CU_ASSERT(hs_reply_type(0, &d, &len) == SL_NBD_REP_META_CONTEXT && len == 4 + 15);
	CU_ASSERT(hs_reply_type(1, NULL, NULL) == SL_NBD_REP_ACK);
	hs_flushed();
	n = meta_data(buf, "disk", ns, 1);
	hs_option(SL_NBD_OPT_LIST_META_CONTEXT, buf, (uint32_t)n);
	CU_ASSERT(nbd_hs_process(g_hs) == 0 &&
		  hs_reply_type(0, NULL, NULL) == SL_NBD_REP_META_CONTEXT);
	hs_flushed();
	n = meta_data(buf, "disk", other, 1);
	hs_option(SL_NBD_OPT_SET_META_CONTEXT, buf, (uint32_t)n);
	CU_ASSERT(nbd_hs_process(g_hs) == 0 && hs_reply_type(0, NULL, NULL) == SL_NBD_REP_ACK);
	CU_ASSERT(!g_hs->base_allocation);
	hs_flushed();
	n = meta_data(buf, "disk", base, 1);
	hs_option(SL_NBD_OPT_SET_META_CONTEXT, buf, (uint32_t)n - 1); /* truncated query */
	CU_ASSERT(nbd_hs_process(g_hs) == 0 &&
		  hs_reply_type(0, NULL, NULL) == SL_NBD_REP_ERR_INVALID);
	hs_flushed();
	hs_option(SL_NBD_OPT_SET_META_CONTEXT, buf, (uint32_t)n);
	CU_ASSERT(nbd_hs_process(g_hs) == 0);
	CU_ASSERT(hs_reply_type(0, &d, &len) == SL_NBD_REP_META_CONTEXT &&
		  be32toh(*(const uint32_t *)d) == NBD_META_ID_BASE_ALLOCATION);
	CU_ASSERT(g_hs->base_allocation);
	hs_flushed();
	/* GO on the default export name: the same export, so the selection holds. */
	n = go_data(buf, "", NULL, 0);
	hs_option(SL_NBD_OPT_GO, buf, (uint32_t)n);
	CU_ASSERT(nbd_hs_process(g_hs) == 1);
	CU_ASSERT(g_hs->base_allocation && (g_hs->tx_flags & SL_NBD_FLAG_SEND_DF));
}

static void
test_pieces_and_big_options(void)
{
	static uint8_t big[NBD_MAX_OPTION_LEN + 100];
	uint8_t buf[64];
	size_t n;

	hs_new(SL_NBD_FLAG_C_FIXED_NEWSTYLE);
	n = go_data(buf, "disk", NULL, 0);
	{
		struct sl_nbd_option o = {htobe64(SL_NBD_OPTS_MAGIC), htobe32(SL_NBD_OPT_INFO),
					  htobe32((uint32_t)n)};

		hs_feed(&o, 10);
		CU_ASSERT(nbd_hs_process(g_hs) == 0 && g_hs->hs_out_len == 0);
		hs_feed((uint8_t *)&o + 10, sizeof(o) - 10);
		hs_feed(buf, 3);
		CU_ASSERT(nbd_hs_process(g_hs) == 0 && g_hs->hs_out_len == 0);
		hs_feed(buf + 3, n - 3);
		CU_ASSERT(nbd_hs_process(g_hs) == 0 &&
			  hs_reply_type(0, NULL, NULL) == SL_NBD_REP_INFO);
	}
	hs_flushed();
	/* An option longer than the staging buffer: refused, its data skipped. */
	{
		struct sl_nbd_option o = {htobe64(SL_NBD_OPTS_MAGIC), htobe32(SL_NBD_OPT_GO),
					  htobe32(sizeof(big))};

		hs_feed(&o, sizeof(o));
		CU_ASSERT(nbd_hs_process(g_hs) == 0 &&
			  hs_reply_type(0, NULL, NULL) == SL_NBD_REP_ERR_TOO_BIG);
		hs_flushed();
		for (size_t off = 0; off < sizeof(big); off += 4096) {
			hs_feed(big + off, SL_MIN(4096, sizeof(big) - off));
			CU_ASSERT(nbd_hs_process(g_hs) == 0 && g_hs->hs_out_len == 0);
		}
		CU_ASSERT(g_hs->hs_discard == 0);
	}
	hs_option(SL_NBD_OPT_STARTTLS, NULL, 0);
	CU_ASSERT(nbd_hs_process(g_hs) == 0 &&
		  hs_reply_type(0, NULL, NULL) == SL_NBD_REP_ERR_UNSUP);
	hs_flushed();
	hs_option(SL_NBD_OPT_LIST, NULL, 0);
	CU_ASSERT(nbd_hs_process(g_hs) == 0 && hs_reply_type(0, NULL, NULL) == SL_NBD_REP_SERVER &&
		  hs_reply_type(1, NULL, NULL) == SL_NBD_REP_SERVER &&
		  hs_reply_type(2, NULL, NULL) == SL_NBD_REP_ACK);
	hs_flushed();
	hs_option(SL_NBD_OPT_ABORT, NULL, 0);
	CU_ASSERT(nbd_hs_process(g_hs) == 0 && hs_reply_type(0, NULL, NULL) == SL_NBD_REP_ACK &&
		  g_hs->hs_state == NBD_HS_CLOSING);
	hs_flushed();
	buf[0] = 0;
	hs_feed("garbage-garbage-garbage", 20);
	CU_ASSERT(nbd_hs_process(g_hs) == 0); /* closing: nothing more is parsed */
}

/* ---- The server for real, on the hand-polled thread ----------------------------- */

static int g_stopped = -1;

static void
poll_n(int n)
{
	while (n-- > 0) {
		usleep(20);
		sl_thread_poll(g_thread, 0, 0);
	}
}

static void
stop_cb(void *cb_arg, int rc)
{
	*(int *)cb_arg = rc;
}

static int
client_recv(int fd, void *buf, size_t len)
{
	size_t got = 0;

	for (int i = 0; i < 50000 && got < len; i++) {
		ssize_t n = recv(fd, (uint8_t *)buf + got, len - got, MSG_DONTWAIT);

		if (n == 0) {
			break;
		}
		if (n > 0) {
			got += (size_t)n;
		} else {
			poll_n(1);
		}
	}
	return (int)got;
}

static int
client_connect(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	CU_ASSERT_FATAL(connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	return fd;
}

/* Handshake with EXPORT_NAME and NO_ZEROES; \return the size announced. */
static uint64_t
client_handshake(int fd, const char *name)
{
	struct sl_nbd_hello hello;
	struct sl_nbd_export_name_reply r;
	uint32_t flags = htobe32(SL_NBD_FLAG_C_FIXED_NEWSTYLE | SL_NBD_FLAG_C_NO_ZEROES);
	struct sl_nbd_option o = {htobe64(SL_NBD_OPTS_MAGIC), htobe32(SL_NBD_OPT_EXPORT_NAME),
				  htobe32((uint32_t)strlen(name))};

	if (client_recv(fd, &hello, sizeof(hello)) != sizeof(hello)) {
		return 0;
	}
	send(fd, &flags, 4, 0);
	send(fd, &o, sizeof(o), 0);
	send(fd, name, strlen(name), 0);
	if (client_recv(fd, &r, sizeof(r)) != sizeof(r)) {
		return 0;
	}
	return be64toh(r.size);
}

static int
client_read(int fd, uint64_t cookie, uint64_t offset, void *buf, uint32_t len)
{
	struct sl_nbd_request q = {htobe32(SL_NBD_REQUEST_MAGIC),
				   0,
				   htobe16(SL_NBD_CMD_READ),
				   cookie,
				   htobe64(offset),
				   htobe32(len)};
	struct sl_nbd_simple_reply r;

	send(fd, &q, sizeof(q), 0);
	if (client_recv(fd, &r, sizeof(r)) != sizeof(r) || r.error != 0 || r.cookie != cookie) {
		return -1;
	}
	return client_recv(fd, buf, len) == (int)len ? 0 : -1;
}

static void
test_server(void)
{
	char path[64];
	struct sl_nbd_server_opts opts = {.unix_path = path};
	uint8_t buf[512];
	int fd, fd2, removed = -1;

	snprintf(path, sizeof(path), "/tmp/sluice-nbd-ut-%d.sock", getpid());
	CU_ASSERT(sl_nbd_server_start(&opts) == 0);
	CU_ASSERT(sl_nbd_server_start(&opts) == -EALREADY);
	CU_ASSERT(sl_nbd_server_get_unix_path() != NULL && sl_nbd_server_get_tcp_port() == -1);

	fd = client_connect(path);
	CU_ASSERT(client_handshake(fd, "disk") == sl_bdev_get_size(&g_mock_bdev));
	memset(g_mock_bdev.data, 0x42, 512);
	CU_ASSERT(client_read(fd, 1, 0, buf, sizeof(buf)) == 0 && buf[0] == 0x42);
	CU_ASSERT(sl_nbd_export_find("disk")->nconns == 1);

	/* Remove the export with the client connected: it is cut off, the export goes. */
	fd2 = client_connect(path);
	CU_ASSERT(client_handshake(fd2, "ro") == sl_bdev_get_size(&g_mock_bdev));
	CU_ASSERT(sl_nbd_export_remove("ro", stop_cb, &removed) == 0);
	CU_ASSERT(sl_nbd_export_find("ro") == NULL);
	CU_ASSERT(client_recv(fd2, buf, 1) == 0);
	poll_n(100);
	CU_ASSERT(removed == 0);
	close(fd2);

	/* Stop with a client connected: it is closed, then the server is done. */
	sl_nbd_server_stop(stop_cb, &g_stopped);
	CU_ASSERT(client_recv(fd, buf, 1) == 0);
	poll_n(100);
	CU_ASSERT(g_stopped == 0);
	CU_ASSERT(!sl_nbd_server_is_running());
	CU_ASSERT(access(path, F_OK) != 0);
	close(fd);
	sl_nbd_server_stop(stop_cb, &g_stopped);
	CU_ASSERT(g_stopped == -ENOENT);
}

/* A connection closes on its thread (its "gone" message to the app thread is queued)
 * just as its export is removed: the stop message sent to it must not reach it after
 * the app thread freed it. */
static void
test_close_races_remove(void)
{
	char path[64];
	struct sl_nbd_server_opts opts = {.unix_path = path};
	struct sl_nbd_export_opts o = {.name = "race", .bdev_name = "Mock0"};
	struct sl_nbd_export *exp;
	struct nbd_conn *conn;
	uint8_t buf[512];
	int fd, removed = -1, stopped = -1;

	snprintf(path, sizeof(path), "/tmp/sluice-nbd-ut-race-%d.sock", getpid());
	CU_ASSERT_FATAL(sl_nbd_server_start(&opts) == 0);
	CU_ASSERT_FATAL(sl_nbd_export_add(&o) == 0);
	exp = sl_nbd_export_find("race");
	fd = client_connect(path);
	CU_ASSERT(client_handshake(fd, "race") == sl_bdev_get_size(&g_mock_bdev));
	CU_ASSERT(client_read(fd, 1, 0, buf, sizeof(buf)) == 0);
	conn = TAILQ_FIRST(&exp->conns);
	CU_ASSERT_FATAL(conn != NULL);
	close(fd);
	/* Poll one step at a time: stop as soon as the connection has closed, before the
	 * app thread has seen its "gone" message. */
	for (int i = 0; i < 100000; i++) {
		sl_thread_poll_fds(g_thread, 0); /* fd pollers only, no messages */
		if (conn->closed) {
			break;
		}
		usleep(20);
	}
	CU_ASSERT_FATAL(conn->closed && exp->nconns == 1);
	CU_ASSERT(sl_nbd_export_remove("race", stop_cb, &removed) == 0);
	poll_n(100);
	CU_ASSERT(removed == 0);
	sl_nbd_server_stop(stop_cb, &stopped);
	poll_n(100);
	CU_ASSERT(stopped == 0);
}

/* The bdev goes away under a connection with a read in flight: the read is answered,
 * then the connection closes and the export goes. */
static void
test_hot_remove(void)
{
	char path[64];
	struct sl_nbd_server_opts opts = {.unix_path = path};
	struct sl_nbd_export_opts o = {.name = "hot", .bdev_name = "Mock0"};
	struct sl_nbd_request q = {
		htobe32(SL_NBD_REQUEST_MAGIC), 0, htobe16(SL_NBD_CMD_READ), 7, 0, htobe32(512)};
	struct sl_nbd_simple_reply r;
	struct sl_bdev_desc *desc;
	uint8_t buf[512];
	int fd, stopped = -1;

	snprintf(path, sizeof(path), "/tmp/sluice-nbd-ut-hot-%d.sock", getpid());
	CU_ASSERT_FATAL(sl_nbd_server_start(&opts) == 0);
	CU_ASSERT_FATAL(sl_nbd_export_add(&o) == 0);
	desc = sl_nbd_export_find("hot")->desc;
	fd = client_connect(path);
	CU_ASSERT(client_handshake(fd, "hot") == sl_bdev_get_size(&g_mock_bdev));
	g_mock_hold = true;
	send(fd, &q, sizeof(q), 0);
	for (int i = 0; i < 10000 && g_mock_held == NULL; i++) {
		poll_n(1);
	}
	CU_ASSERT_FATAL(g_mock_held != NULL);
	desc->event_cb(SL_BDEV_EVENT_REMOVE, desc->bdev, desc->event_ctx);
	CU_ASSERT(sl_nbd_export_find("hot") == NULL);
	poll_n(50);
	mock_release();
	CU_ASSERT(client_recv(fd, &r, sizeof(r)) == sizeof(r) && r.error == 0 && r.cookie == 7);
	CU_ASSERT(client_recv(fd, buf, sizeof(buf)) == sizeof(buf));
	CU_ASSERT(client_recv(fd, buf, 1) == 0); /* then EOF */
	close(fd);
	poll_n(100);
	sl_nbd_server_stop(stop_cb, &stopped);
	poll_n(100);
	CU_ASSERT(stopped == 0);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Poll the server until the peer closes fd (what it sent before is read and dropped).
 * \return whether it did within max_s seconds. */
static bool
client_wait_closed(int fd, double max_s)
{
	double end = now_s() + max_s;
	uint8_t buf[256];

	while (now_s() < end) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n == 0) {
			return true;
		}
		if (n < 0) {
			poll_n(10);
		}
	}
	return false;
}

/* Clients that send nothing, or stop in the middle of the client flags or of an option,
 * are cut off when the handshake limit passes; one that connected with them finishes
 * its handshake and is served, before and after the limit. */
static void
test_handshake_limit(void)
{
	char path[64];
	struct sl_nbd_server_opts opts = {.unix_path = path, .handshake_limit = 1};
	struct sl_nbd_option o = {htobe64(SL_NBD_OPTS_MAGIC), htobe32(SL_NBD_OPT_GO), htobe32(64)};
	uint32_t flags = htobe32(SL_NBD_FLAG_C_FIXED_NEWSTYLE);
	struct sl_nbd_hello hello;
	uint8_t buf[512];
	int silent, half_flags, half_opt, good, stopped = -1;

	snprintf(path, sizeof(path), "/tmp/sluice-nbd-ut-hsl-%d.sock", getpid());
	opts.handshake_limit = SL_NBD_MAX_HANDSHAKE_LIMIT + 1;
	CU_ASSERT(sl_nbd_server_start(&opts) == -EINVAL);
	opts.handshake_limit = 1;
	CU_ASSERT_FATAL(sl_nbd_server_start(&opts) == 0);
	CU_ASSERT(sl_nbd_server_get_handshake_limit() == 1);

	silent = client_connect(path);
	half_flags = client_connect(path);
	half_opt = client_connect(path);
	good = client_connect(path);
	CU_ASSERT(client_recv(half_flags, &hello, sizeof(hello)) == sizeof(hello));
	send(half_flags, &flags, 2, 0);
	CU_ASSERT(client_recv(half_opt, &hello, sizeof(hello)) == sizeof(hello));
	send(half_opt, &flags, sizeof(flags), 0);
	send(half_opt, &o, sizeof(o), 0);
	send(half_opt, "\0\0\0\4dis", 7, 0); /* 7 of the 64 bytes announced */
	CU_ASSERT(client_handshake(good, "disk") == sl_bdev_get_size(&g_mock_bdev));
	CU_ASSERT(client_read(good, 1, 0, buf, sizeof(buf)) == 0);

	/* The limit is 1 s; the bound only guards against a hang. */
	CU_ASSERT(client_wait_closed(silent, 30));
	CU_ASSERT(client_wait_closed(half_flags, 30));
	CU_ASSERT(client_wait_closed(half_opt, 30));
	CU_ASSERT(TAILQ_EMPTY(&g_nbd.hs_conns));
	CU_ASSERT(client_read(good, 2, 512, buf, sizeof(buf)) == 0);
	CU_ASSERT(sl_nbd_export_find("disk")->nconns == 1);
	close(silent);
	close(half_flags);
	close(half_opt);

	/* A connection closed before its limit takes its timer with it. */
	silent = client_connect(path);
	for (int i = 0; i < 10000 && TAILQ_EMPTY(&g_nbd.hs_conns); i++) {
		poll_n(1);
	}
	CU_ASSERT_FATAL(!TAILQ_EMPTY(&g_nbd.hs_conns));
	CU_ASSERT(TAILQ_FIRST(&g_nbd.hs_conns)->hs_timer != NULL);
	close(silent);
	for (int i = 0; i < 10000 && !TAILQ_EMPTY(&g_nbd.hs_conns); i++) {
		poll_n(1);
	}
	CU_ASSERT(TAILQ_EMPTY(&g_nbd.hs_conns));

	sl_nbd_server_stop(stop_cb, &stopped);
	CU_ASSERT(client_wait_closed(good, 30));
	poll_n(100);
	CU_ASSERT(stopped == 0);
	close(good);
}

static void
test_exports(void)
{
	struct sl_nbd_export_opts o = {.bdev_name = "Mock0"};

	/* Network exports share a bdev: a second writable export of Mock0 is fine. */
	CU_ASSERT(sl_nbd_export_add(&o) == 0);
	CU_ASSERT(sl_nbd_export_find("Mock0") != NULL);
	CU_ASSERT(sl_nbd_export_remove("Mock0", NULL, NULL) == 0);
	poll_n(100);
	CU_ASSERT(sl_nbd_export_find("Mock0") == NULL);
	o.name = "disk";
	o.read_only = true;
	CU_ASSERT(sl_nbd_export_add(&o) == -EEXIST);
	o.name = "";
	CU_ASSERT(sl_nbd_export_add(&o) == -EINVAL);
	o.name = "x";
	o.bdev_name = "nosuch";
	CU_ASSERT(sl_nbd_export_add(&o) == -ENODEV);
	CU_ASSERT(sl_nbd_export_remove("nosuch", NULL, NULL) == -ENOENT);
	CU_ASSERT(strcmp(sl_nbd_export_get_description(sl_nbd_export_find("disk")), "unit test") ==
		  0);
}

int
main(void)
{
	struct sl_nbd_export_opts disk = {
		.name = "disk", .bdev_name = "Mock0", .description = "unit test"};
	struct sl_nbd_export_opts ro = {.name = "ro", .bdev_name = "Mock0", .read_only = true};
	CU_pSuite s;
	unsigned int failures;

	sl_thread_lib_init(NULL, 0);
	g_thread = sl_thread_create("ut", NULL);
	sl_set_thread(g_thread);
	mock_init();
	if (sl_nbd_export_add(&disk) != 0 || sl_nbd_export_add(&ro) != 0) {
		return 1;
	}

	CU_initialize_registry();
	s = CU_add_suite("nbd_server", NULL, NULL);
	CU_add_test(s, "client flags", test_client_flags);
	CU_add_test(s, "NBD_OPT_EXPORT_NAME", test_export_name);
	CU_add_test(s, "NBD_OPT_INFO and NBD_OPT_GO", test_go);
	CU_add_test(s, "metadata contexts", test_meta_context);
	CU_add_test(s, "options in pieces, oversized, others", test_pieces_and_big_options);
	CU_add_test(s, "exports", test_exports);
	CU_add_test(s, "server start, hand-off, remove, stop", test_server);
	CU_add_test(s, "connection closing as its export goes", test_close_races_remove);
	CU_add_test(s, "bdev hot-removed under a connection", test_hot_remove);
	CU_add_test(s, "handshake limit", test_handshake_limit);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	nbd_conn_free(g_hs);
	return failures == 0 ? 0 : 1;
}
