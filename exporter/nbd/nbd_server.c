/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * The network NBD server: listeners, exports, NBD threads, and the fixed newstyle
 * handshake (proto.md, "Newstyle negotiation" and "Option types").
 *
 * Everything here runs on the app thread, exports and handshakes included, so the
 * export list needs no lock. A connection haggles options on the app thread (a short
 * exchange of control messages), then moves to the NBD thread with the fewest
 * connections -- one per reactor -- for its transmission phase (nbd_conn.c). It comes
 * back to the app thread, as a message, only to be freed.
 *
 * A malformed handshake closes that connection and nothing else. Option replies are
 * queued in a per-connection buffer; while some are unsent, no further option is read,
 * so a client that sends options without reading replies cannot grow the buffer. A
 * client that stalls (sends nothing, stops half-way, reads no reply) is disconnected
 * when the handshake limit passes, as qemu-nbd's --handshake-limit does: each such
 * connection holds a socket and its buffers.
 */

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sluice/log.h"
#include "sluice/reactor.h"
#include "sluice/sock.h"
#include "sluice/thread.h"
#include "sluice/util.h"

#include "nbd_internal.h"

/* Unsent option replies beyond this close the connection (a LIST of every export
 * fits many times over). */
#define NBD_HS_OUT_MAX (1u << 20)
/* Connections accepted per listener wake-up before other work gets a turn. */
#define NBD_ACCEPT_BURST 16

struct nbd_poll_thread {
	struct sl_thread *thread;
	bool own; /* created by the server (else the app thread, without reactors) */
	uint32_t nconns;
};

struct nbd_listener {
	struct sl_sock *sock;
	struct sl_poller *poller;
};

static struct {
	bool running;
	bool stopping;
	struct nbd_listener tcp;
	struct nbd_listener unx;
	char *tcp_host;
	int tcp_port;
	char *unix_path;
	uint32_t handshake_limit; /* seconds, 0 = none */
	struct nbd_poll_thread *pts;
	uint32_t npts;
	uint32_t next_pt;
	TAILQ_HEAD(, nbd_conn) hs_conns;
	uint32_t nconns;
	sl_nbd_done_cb stop_cb;
	void *stop_arg;
} g_nbd = {
	.hs_conns = TAILQ_HEAD_INITIALIZER(g_nbd.hs_conns),
	.tcp_port = -1,
};

static TAILQ_HEAD(, sl_nbd_export) g_nbd_exports = TAILQ_HEAD_INITIALIZER(g_nbd_exports);

static void nbd_export_remove_now(struct sl_nbd_export *exp, sl_nbd_done_cb cb, void *cb_arg);

/* ---- Exports ------------------------------------------------------------------ */

struct sl_nbd_export *
nbd_export_lookup(const char *name, size_t len)
{
	struct sl_nbd_export *exp;

	if (len == 0) {
		/* The empty name is the default export (proto.md, NBD_OPT_EXPORT_NAME). */
		return TAILQ_FIRST(&g_nbd_exports);
	}
	TAILQ_FOREACH (exp, &g_nbd_exports, link) {
		if (strlen(exp->name) == len && memcmp(exp->name, name, len) == 0) {
			return exp;
		}
	}
	return NULL;
}

uint64_t
nbd_export_size(const struct sl_nbd_export *exp)
{
	return sl_bdev_get_size(sl_bdev_desc_get_bdev(exp->desc));
}

struct sl_nbd_export *
sl_nbd_export_find(const char *name)
{
	return name != NULL && name[0] != '\0' ? nbd_export_lookup(name, strlen(name)) : NULL;
}

struct sl_nbd_export *
sl_nbd_export_first(void)
{
	return TAILQ_FIRST(&g_nbd_exports);
}

struct sl_nbd_export *
sl_nbd_export_next(struct sl_nbd_export *exp)
{
	return TAILQ_NEXT(exp, link);
}

const char *
sl_nbd_export_get_name(const struct sl_nbd_export *exp)
{
	return exp->name;
}

const char *
sl_nbd_export_get_bdev_name(const struct sl_nbd_export *exp)
{
	return exp->bdev_name;
}

const char *
sl_nbd_export_get_description(const struct sl_nbd_export *exp)
{
	return exp->description != NULL ? exp->description : "";
}

bool
sl_nbd_export_is_read_only(const struct sl_nbd_export *exp)
{
	return exp->read_only;
}

uint64_t
sl_nbd_export_get_size(const struct sl_nbd_export *exp)
{
	return nbd_export_size(exp);
}

int
sl_nbd_export_for_each_conn(struct sl_nbd_export *exp,
			    void (*fn)(const struct sl_nbd_conn_info *info, void *ctx), void *ctx)
{
	struct sl_nbd_conn_info info;
	struct nbd_conn *conn;
	int n = 0;

	TAILQ_FOREACH (conn, &exp->conns, link) {
		nbd_conn_get_info(conn, &info);
		fn(&info, ctx);
		n++;
	}
	return n;
}

static void
nbd_export_event_cb(enum sl_bdev_event_type type, struct sl_bdev *bdev, void *event_ctx)
{
	struct sl_nbd_export *exp = event_ctx;

	if (type != SL_BDEV_EVENT_REMOVE) {
		/* A resize is seen by the next connection: NBD fixes the size per
		 * connection, at the handshake. */
		return;
	}
	if (!exp->removing) {
		SL_NOTICELOG("nbd export %s: bdev %s is being removed: removing the export\n",
			     exp->name, exp->bdev_name);
		nbd_export_remove_now(exp, NULL, NULL);
	}
}

static void
nbd_export_free(struct sl_nbd_export *exp)
{
	if (exp->desc != NULL) {
		sl_bdev_close(exp->desc);
	}
	free(exp->name);
	free(exp->bdev_name);
	free(exp->description);
	free(exp);
}

static int
nbd_export_check_name(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > SL_NBD_MAX_STRING) {
		SL_ERRLOG("nbd export name '%s': must be 1 to %d bytes\n", name, SL_NBD_MAX_STRING);
		return -EINVAL;
	}
	if (sl_nbd_export_find(name) != NULL) {
		SL_ERRLOG("nbd export %s already exists\n", name);
		return -EEXIST;
	}
	return 0;
}

int
sl_nbd_export_add(const struct sl_nbd_export_opts *opts)
{
	struct sl_nbd_export *exp;
	const char *name;
	int rc;

	if (opts == NULL || opts->bdev_name == NULL) {
		return -EINVAL;
	}
	name = opts->name != NULL ? opts->name : opts->bdev_name;
	rc = nbd_export_check_name(name);
	if (rc != 0) {
		return rc;
	}
	exp = calloc(1, sizeof(*exp));
	if (exp == NULL) {
		return -ENOMEM;
	}
	TAILQ_INIT(&exp->conns);
	exp->read_only = opts->read_only;
	exp->name = strdup(name);
	exp->bdev_name = strdup(opts->bdev_name);
	exp->description = opts->description != NULL ? strdup(opts->description) : NULL;
	if (exp->name == NULL || exp->bdev_name == NULL ||
	    (opts->description != NULL && exp->description == NULL)) {
		nbd_export_free(exp);
		return -ENOMEM;
	}
	rc = sl_bdev_open(exp->bdev_name, !exp->read_only, nbd_export_event_cb, exp, &exp->desc);
	if (rc != 0) {
		SL_ERRLOG("nbd export %s: cannot open bdev %s: %s\n", name, exp->bdev_name,
			  strerror(-rc));
		exp->desc = NULL;
		nbd_export_free(exp);
		return rc;
	}
	/* No claim: network exports share their bdev with each other and with FUSE files,
	 * as NBD's multi-conn clients share one export -- every path reaches the same
	 * blocks with no cache in between, and a flush reaches the bdev. A kernel NBD
	 * device, whose page cache would go stale behind a second writer, claims it. */
	exp->block_size = sl_bdev_get_block_size(sl_bdev_desc_get_bdev(exp->desc));
	TAILQ_INSERT_TAIL(&g_nbd_exports, exp, link);
	SL_NOTICELOG("nbd export %s: bdev %s, %" PRIu64 " bytes%s\n", exp->name, exp->bdev_name,
		     nbd_export_size(exp), exp->read_only ? ", read-only" : "");
	return 0;
}

static void
nbd_export_remove_done(struct sl_nbd_export *exp)
{
	sl_nbd_done_cb cb = exp->remove_cb;
	void *cb_arg = exp->remove_arg;

	SL_NOTICELOG("nbd export %s removed\n", exp->name);
	nbd_export_free(exp);
	if (cb != NULL) {
		cb(cb_arg, 0);
	}
}

static void nbd_hs_close(struct nbd_conn *conn);

static void
nbd_conn_stop_msg(void *arg)
{
	sl_nbd_conn_stop((struct sl_nbd_conn *)arg);
}

/* Ask every connection of exp to stop (on its thread). */
static void
nbd_export_stop_conns(struct sl_nbd_export *exp)
{
	struct nbd_conn *conn, *tmp;

	TAILQ_FOREACH_SAFE (conn, &g_nbd.hs_conns, link, tmp) {
		if (conn->export == exp) {
			nbd_hs_close(conn);
		}
	}
	TAILQ_FOREACH (conn, &exp->conns, link) {
		conn->stop_sent = true;
		if (sl_thread_send_msg(conn->thread, nbd_conn_stop_msg, conn) != 0) {
			SL_ERRLOG("nbd export %s: cannot stop connection %" PRIu64 "\n", exp->name,
				  conn->id);
		}
	}
}

static void
nbd_export_remove_now(struct sl_nbd_export *exp, sl_nbd_done_cb cb, void *cb_arg)
{
	TAILQ_REMOVE(&g_nbd_exports, exp, link);
	exp->removing = true;
	exp->remove_cb = cb;
	exp->remove_arg = cb_arg;
	nbd_export_stop_conns(exp);
	if (exp->nconns == 0) {
		nbd_export_remove_done(exp);
	}
}

int
sl_nbd_export_remove(const char *name, sl_nbd_done_cb cb, void *cb_arg)
{
	struct sl_nbd_export *exp = sl_nbd_export_find(name);

	if (exp == NULL) {
		return -ENOENT;
	}
	nbd_export_remove_now(exp, cb, cb_arg);
	return 0;
}

/* ---- Connections: from handshake to transmission and back --------------------- */

static void nbd_server_stop_done(void);
static void nbd_server_conn_gone(void *arg);

/* Connection thread: every message queued to it before this one has run. */
static void
nbd_server_conn_bounce(void *arg)
{
	if (sl_thread_send_msg(sl_thread_get_app_thread(), nbd_server_conn_gone, arg) != 0) {
		SL_ERRLOG("nbd: cannot report a closed connection to the app thread\n");
	}
}

/* App thread: a transmission-phase connection has closed. */
static void
nbd_server_conn_gone(void *arg)
{
	struct nbd_conn *conn = arg;
	struct sl_nbd_export *exp = conn->export;

	if (conn->stop_sent) {
		/* A stop sent while the connection was closing may still sit in its thread's
		 * queue: free only after a round trip through that (FIFO) queue. */
		conn->stop_sent = false;
		if (sl_thread_send_msg(conn->thread, nbd_server_conn_bounce, conn) == 0) {
			return;
		}
		SL_ERRLOG("nbd: connection %" PRIu64 ": cannot sync with its thread\n", conn->id);
	}
	TAILQ_REMOVE(&exp->conns, conn, link);
	exp->nconns--;
	g_nbd.nconns--;
	if (conn->pt_index < g_nbd.npts) {
		g_nbd.pts[conn->pt_index].nconns--;
	}
	nbd_conn_free(conn);
	if (exp->removing && exp->nconns == 0) {
		nbd_export_remove_done(exp);
	}
	if (g_nbd.stopping && g_nbd.nconns == 0) {
		nbd_server_stop_done();
	}
}

/* Connection thread: closed; the app thread owns the bookkeeping. */
static void
nbd_server_conn_done(void *cb_arg, struct sl_nbd_conn *sconn)
{
	if (sl_thread_send_msg(sl_thread_get_app_thread(), nbd_server_conn_gone, sconn) != 0) {
		SL_ERRLOG("nbd: cannot report a closed connection to the app thread\n");
	}
}

static void
nbd_conn_begin_msg(void *arg)
{
	struct nbd_conn *conn = arg;
	int rc;

	rc = nbd_conn_start(conn, nbd_server_conn_done, NULL);
	if (rc != 0) {
		SL_ERRLOG("%s: cannot serve connection %" PRIu64 ": %s\n", conn->name, conn->id,
			  strerror(-rc));
		sl_sock_close(&conn->sock);
		conn->fd = -1;
		nbd_server_conn_done(NULL, (struct sl_nbd_conn *)conn);
	}
}

static uint32_t
nbd_pick_poll_thread(void)
{
	uint32_t best = g_nbd.next_pt % g_nbd.npts;

	/* Fewest connections, round-robin among equals. */
	for (uint32_t k = 0; k < g_nbd.npts; k++) {
		uint32_t i = (g_nbd.next_pt + k) % g_nbd.npts;

		if (g_nbd.pts[i].nconns < g_nbd.pts[best].nconns) {
			best = i;
		}
	}
	g_nbd.next_pt = best + 1;
	return best;
}

/* The handshake is over and its replies are sent: attach to the export and move to
 * an NBD thread. */
static void
nbd_hs_handoff(struct nbd_conn *conn)
{
	struct sl_nbd_export *exp = conn->export;
	struct nbd_poll_thread *pt;

	sl_poller_unregister(&conn->poller);
	sl_poller_unregister(&conn->hs_timer);
	TAILQ_REMOVE(&g_nbd.hs_conns, conn, link);
	free(conn->hs_out);
	conn->hs_out = NULL;
	conn->hs_out_len = conn->hs_out_off = conn->hs_out_cap = 0;
	TAILQ_INSERT_TAIL(&exp->conns, conn, link);
	exp->nconns++;
	g_nbd.nconns++;
	conn->pt_index = nbd_pick_poll_thread();
	pt = &g_nbd.pts[conn->pt_index];
	pt->nconns++;
	SL_INFOLOG("nbd export %s: connection %" PRIu64 " from %s on thread %s\n", exp->name,
		   conn->id, conn->peer, sl_thread_get_name(pt->thread));
	if (sl_thread_send_msg(pt->thread, nbd_conn_begin_msg, conn) != 0) {
		conn->pt_index = UINT32_MAX;
		pt->nconns--;
		sl_sock_close(&conn->sock);
		conn->fd = -1;
		nbd_server_conn_gone(conn);
	}
}

static void
nbd_hs_close(struct nbd_conn *conn)
{
	sl_poller_unregister(&conn->poller);
	sl_poller_unregister(&conn->hs_timer);
	TAILQ_REMOVE(&g_nbd.hs_conns, conn, link);
	sl_sock_close(&conn->sock);
	conn->fd = -1;
	nbd_conn_free(conn);
}

/* ---- Handshake: output -------------------------------------------------------- */

static int
nbd_hs_append(struct nbd_conn *conn, const void *data, size_t len)
{
	size_t cap;
	uint8_t *p;

	if (conn->hs_out_len + len > conn->hs_out_cap) {
		if (conn->hs_out_len + len > NBD_HS_OUT_MAX) {
			return -ENOBUFS;
		}
		cap = SL_MAX(conn->hs_out_cap * 2, SL_MAX(conn->hs_out_len + len, (size_t)256));
		p = realloc(conn->hs_out, cap);
		if (p == NULL) {
			return -ENOMEM;
		}
		conn->hs_out = p;
		conn->hs_out_cap = cap;
	}
	memcpy(conn->hs_out + conn->hs_out_len, data, len);
	conn->hs_out_len += len;
	return 0;
}

/* An option reply: header, then up to two pieces of payload. */
static int
nbd_hs_reply(struct nbd_conn *conn, uint32_t opt, uint32_t type, const void *d1, size_t l1,
	     const void *d2, size_t l2)
{
	struct sl_nbd_option_reply r = {
		.magic = htobe64(SL_NBD_REP_MAGIC),
		.option = htobe32(opt),
		.type = htobe32(type),
		.length = htobe32((uint32_t)(l1 + l2)),
	};
	int rc;

	rc = nbd_hs_append(conn, &r, sizeof(r));
	if (rc == 0 && l1 > 0) {
		rc = nbd_hs_append(conn, d1, l1);
	}
	if (rc == 0 && l2 > 0) {
		rc = nbd_hs_append(conn, d2, l2);
	}
	return rc;
}

static int
nbd_hs_error(struct nbd_conn *conn, uint32_t opt, uint32_t type, const char *msg)
{
	SL_DEBUGLOG(nbd, "nbd connection %" PRIu64 ": option %" PRIu32 ": %s\n", conn->id, opt,
		    msg);
	return nbd_hs_reply(conn, opt, type, msg, strlen(msg), NULL, 0);
}

/* \return 0 when everything is sent, 1 if some is left, -errno on a dead socket. */
static int
nbd_hs_flush(struct nbd_conn *conn)
{
	ssize_t n;

	while (conn->hs_out_off < conn->hs_out_len) {
		n = send(conn->fd, conn->hs_out + conn->hs_out_off,
			 conn->hs_out_len - conn->hs_out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -errno;
		}
		conn->hs_out_off += (size_t)n;
	}
	conn->hs_out_off = conn->hs_out_len = 0;
	return 0;
}

int
nbd_hs_start(struct nbd_conn *conn)
{
	struct sl_nbd_hello hello = {
		.magic = htobe64(SL_NBD_MAGIC),
		.opts_magic = htobe64(SL_NBD_OPTS_MAGIC),
		.flags = htobe16(SL_NBD_FLAG_FIXED_NEWSTYLE | SL_NBD_FLAG_NO_ZEROES),
	};

	conn->hs_state = NBD_HS_CLIENT_FLAGS;
	return nbd_hs_append(conn, &hello, sizeof(hello));
}

/* ---- Handshake: options ------------------------------------------------------- */

/* Fix what the transmission phase needs from the chosen export. */
static void
nbd_hs_enter(struct nbd_conn *conn, struct sl_nbd_export *exp)
{
	conn->export = exp;
	conn->desc = exp->desc;
	conn->size = nbd_export_size(exp);
	conn->min_block = exp->block_size;
	conn->max_payload = NBD_MAX_PAYLOAD;
	conn->tx_flags = sl_nbd_tx_flags(exp->desc, exp->read_only, conn->structured);
	/* Metadata contexts are chosen per export name (proto.md,
	 * NBD_OPT_SET_META_CONTEXT): a selection made for another export does not hold. */
	conn->base_allocation = conn->base_allocation && conn->meta_export != NULL &&
				strcmp(conn->meta_export, exp->name) == 0;
	snprintf(conn->name, sizeof(conn->name), "nbd %s #%" PRIu64, exp->name, conn->id);
	conn->hs_state = NBD_HS_DONE;
}

static int
nbd_opt_export_name(struct nbd_conn *conn, const uint8_t *data, uint32_t len)
{
	struct sl_nbd_export *exp = nbd_export_lookup((const char *)data, len);
	struct sl_nbd_export_name_reply r;
	static const uint8_t zeroes[SL_NBD_EXPORT_NAME_PAD];
	int rc;

	if (exp == NULL) {
		/* No way to answer an error here: the spec says hang up. */
		SL_NOTICELOG("nbd connection %" PRIu64 " from %s: no export '%.*s'\n", conn->id,
			     conn->peer, (int)SL_MIN(len, 256u), (const char *)data);
		return -ENOENT;
	}
	nbd_hs_enter(conn, exp);
	r.size = htobe64(conn->size);
	r.flags = htobe16(conn->tx_flags);
	rc = nbd_hs_append(conn, &r, sizeof(r));
	if (rc == 0 && !conn->no_zeroes) {
		rc = nbd_hs_append(conn, zeroes, sizeof(zeroes));
	}
	return rc == 0 ? 1 : rc;
}

static int
nbd_opt_list(struct nbd_conn *conn, uint32_t len)
{
	struct sl_nbd_export *exp;
	uint32_t nlen;
	int rc;

	if (len != 0) {
		return nbd_hs_error(conn, SL_NBD_OPT_LIST, SL_NBD_REP_ERR_INVALID,
				    "NBD_OPT_LIST takes no data");
	}
	TAILQ_FOREACH (exp, &g_nbd_exports, link) {
		nlen = htobe32((uint32_t)strlen(exp->name));
		rc = nbd_hs_reply(conn, SL_NBD_OPT_LIST, SL_NBD_REP_SERVER, &nlen, sizeof(nlen),
				  exp->name, strlen(exp->name));
		if (rc != 0) {
			return rc;
		}
	}
	return nbd_hs_reply(conn, SL_NBD_OPT_LIST, SL_NBD_REP_ACK, NULL, 0, NULL, 0);
}

/* Read a 32-bit length and that many bytes at *pos. \return false if they overrun. */
static bool
nbd_read_string(const uint8_t *data, uint32_t len, uint32_t *pos, const uint8_t **s, uint32_t *slen)
{
	uint32_t l;

	if (len - *pos < sizeof(l)) {
		return false;
	}
	memcpy(&l, data + *pos, sizeof(l));
	l = be32toh(l);
	*pos += sizeof(l);
	if (l > len - *pos || l > SL_NBD_MAX_STRING) {
		return false;
	}
	*s = data + *pos;
	*slen = l;
	*pos += l;
	return true;
}

static int
nbd_info_send(struct nbd_conn *conn, uint32_t opt, struct sl_nbd_export *exp, uint16_t type)
{
	uint16_t t = htobe16(type);

	switch (type) {
	case SL_NBD_INFO_NAME:
		return nbd_hs_reply(conn, opt, SL_NBD_REP_INFO, &t, sizeof(t), exp->name,
				    strlen(exp->name));
	case SL_NBD_INFO_DESCRIPTION:
		if (exp->description == NULL || exp->description[0] == '\0') {
			return 0;
		}
		return nbd_hs_reply(conn, opt, SL_NBD_REP_INFO, &t, sizeof(t), exp->description,
				    SL_MIN(strlen(exp->description), (size_t)SL_NBD_MAX_STRING));
	default:
		/* Unknown requests are ignored (proto.md, NBD_OPT_INFO). */
		return 0;
	}
}

/* NBD_OPT_INFO and NBD_OPT_GO: export name, then a list of 16-bit info requests. */
static int
nbd_opt_info_go(struct nbd_conn *conn, uint32_t opt, const uint8_t *data, uint32_t len)
{
	struct sl_nbd_export *exp;
	struct sl_nbd_info_export ie;
	struct sl_nbd_info_block_size ib;
	const uint8_t *name;
	uint32_t nlen, pos = 0;
	uint16_t nreq, req;
	int rc;

	if (!nbd_read_string(data, len, &pos, &name, &nlen) || len - pos < sizeof(nreq)) {
		return nbd_hs_error(conn, opt, SL_NBD_REP_ERR_INVALID, "malformed request");
	}
	memcpy(&nreq, data + pos, sizeof(nreq));
	nreq = be16toh(nreq);
	pos += sizeof(nreq);
	if (len - pos != (uint32_t)nreq * sizeof(req)) {
		return nbd_hs_error(conn, opt, SL_NBD_REP_ERR_INVALID,
				    "information request count does not match the length");
	}
	exp = nbd_export_lookup((const char *)name, nlen);
	if (exp == NULL) {
		return nbd_hs_error(conn, opt, SL_NBD_REP_ERR_UNKNOWN, "no such export");
	}
	ie.type = htobe16(SL_NBD_INFO_EXPORT);
	ie.size = htobe64(nbd_export_size(exp));
	ie.flags = htobe16(sl_nbd_tx_flags(exp->desc, exp->read_only, conn->structured));
	rc = nbd_hs_reply(conn, opt, SL_NBD_REP_INFO, &ie, sizeof(ie), NULL, 0);
	for (uint16_t i = 0; rc == 0 && i < nreq; i++) {
		memcpy(&req, data + pos + i * sizeof(req), sizeof(req));
		rc = nbd_info_send(conn, opt, exp, be16toh(req));
	}
	/* Block sizes always, requested or not, as qemu does: a client that ignores them
	 * still sees EINVAL for unaligned requests rather than a refused GO. */
	ib.type = htobe16(SL_NBD_INFO_BLOCK_SIZE);
	ib.minimum = htobe32(exp->block_size);
	ib.preferred = htobe32(SL_MAX(exp->block_size, 4096u));
	ib.maximum = htobe32(NBD_MAX_PAYLOAD);
	if (rc == 0) {
		rc = nbd_hs_reply(conn, opt, SL_NBD_REP_INFO, &ib, sizeof(ib), NULL, 0);
	}
	if (rc == 0) {
		rc = nbd_hs_reply(conn, opt, SL_NBD_REP_ACK, NULL, 0, NULL, 0);
	}
	if (rc != 0 || opt == SL_NBD_OPT_INFO) {
		return rc;
	}
	nbd_hs_enter(conn, exp);
	return 1;
}

static int
nbd_meta_reply(struct nbd_conn *conn, uint32_t opt, uint32_t id)
{
	id = htobe32(id);
	return nbd_hs_reply(conn, opt, SL_NBD_REP_META_CONTEXT, &id, sizeof(id),
			    SL_NBD_CONTEXT_BASE_ALLOCATION, strlen(SL_NBD_CONTEXT_BASE_ALLOCATION));
}

static bool
nbd_query_is(const uint8_t *q, uint32_t qlen, const char *s)
{
	return qlen == strlen(s) && memcmp(q, s, qlen) == 0;
}

/* NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT: export name, then queries.
 * The one context is base:allocation; LIST also answers the "base:" namespace. */
static int
nbd_opt_meta(struct nbd_conn *conn, uint32_t opt, const uint8_t *data, uint32_t len)
{
	bool set = opt == SL_NBD_OPT_SET_META_CONTEXT, match = false;
	struct sl_nbd_export *exp;
	const uint8_t *name, *q;
	uint32_t nlen, nq, qlen, pos = 0;

	if (!conn->structured) {
		return nbd_hs_error(conn, opt, SL_NBD_REP_ERR_INVALID,
				    "structured replies not negotiated");
	}
	if (!nbd_read_string(data, len, &pos, &name, &nlen) || len - pos < sizeof(nq)) {
		return nbd_hs_error(conn, opt, SL_NBD_REP_ERR_INVALID, "malformed request");
	}
	memcpy(&nq, data + pos, sizeof(nq));
	nq = be32toh(nq);
	pos += sizeof(nq);
	for (uint32_t i = 0; i < nq; i++) {
		if (!nbd_read_string(data, len, &pos, &q, &qlen)) {
			return nbd_hs_error(conn, opt, SL_NBD_REP_ERR_INVALID, "malformed query");
		}
		match |= nbd_query_is(q, qlen, SL_NBD_CONTEXT_BASE_ALLOCATION) ||
			 (!set && nbd_query_is(q, qlen, "base:"));
	}
	if (pos != len) {
		return nbd_hs_error(conn, opt, SL_NBD_REP_ERR_INVALID, "trailing data");
	}
	exp = nbd_export_lookup((const char *)name, nlen);
	if (exp == NULL) {
		return nbd_hs_error(conn, opt, SL_NBD_REP_ERR_UNKNOWN, "no such export");
	}
	if (!set && nq == 0) {
		/* An empty LIST query lists every context. */
		match = true;
	}
	if (set) {
		/* A SET replaces the previous selection, whatever it was. */
		free(conn->meta_export);
		conn->meta_export = strdup(exp->name);
		if (conn->meta_export == NULL) {
			return -ENOMEM;
		}
		conn->base_allocation = match;
	}
	if (match) {
		int rc = nbd_meta_reply(conn, opt, set ? NBD_META_ID_BASE_ALLOCATION : 0);

		if (rc != 0) {
			return rc;
		}
	}
	return nbd_hs_reply(conn, opt, SL_NBD_REP_ACK, NULL, 0, NULL, 0);
}

/* One option. \return 0 to go on, 1 for the transmission phase, -errno to close. */
static int
nbd_hs_option(struct nbd_conn *conn, uint32_t opt, const uint8_t *data, uint32_t len)
{
	if (!conn->fixed_newstyle && opt != SL_NBD_OPT_EXPORT_NAME) {
		/* Plain newstyle knows no other option, nor any way to refuse one. */
		return -EINVAL;
	}
	switch (opt) {
	case SL_NBD_OPT_EXPORT_NAME:
		return nbd_opt_export_name(conn, data, len);
	case SL_NBD_OPT_ABORT:
		conn->hs_state = NBD_HS_CLOSING;
		return nbd_hs_reply(conn, opt, SL_NBD_REP_ACK, NULL, 0, NULL, 0);
	case SL_NBD_OPT_LIST:
		return nbd_opt_list(conn, len);
	case SL_NBD_OPT_STARTTLS:
		return nbd_hs_error(conn, opt, SL_NBD_REP_ERR_UNSUP, "TLS is not supported");
	case SL_NBD_OPT_INFO:
	case SL_NBD_OPT_GO:
		return nbd_opt_info_go(conn, opt, data, len);
	case SL_NBD_OPT_STRUCTURED_REPLY:
		if (len != 0) {
			return nbd_hs_error(conn, opt, SL_NBD_REP_ERR_INVALID,
					    "NBD_OPT_STRUCTURED_REPLY takes no data");
		}
		conn->structured = true;
		return nbd_hs_reply(conn, opt, SL_NBD_REP_ACK, NULL, 0, NULL, 0);
	case SL_NBD_OPT_LIST_META_CONTEXT:
	case SL_NBD_OPT_SET_META_CONTEXT:
		return nbd_opt_meta(conn, opt, data, len);
	default:
		return nbd_hs_error(conn, opt, SL_NBD_REP_ERR_UNSUP, "unknown option");
	}
}

/* Options whose data does not fit the staging buffer are refused and skipped. */
static int
nbd_hs_skip(struct nbd_conn *conn)
{
	uint32_t avail = conn->rx_tail - conn->rx_head;
	uint64_t n = SL_MIN((uint64_t)avail, conn->hs_discard);

	conn->rx_head += (uint32_t)n;
	conn->hs_discard -= n;
	return 0;
}

static int
nbd_hs_client_flags(struct nbd_conn *conn)
{
	uint32_t flags;

	memcpy(&flags, conn->rx + conn->rx_head, sizeof(flags));
	flags = be32toh(flags);
	conn->rx_head += sizeof(flags);
	if (flags & ~(SL_NBD_FLAG_C_FIXED_NEWSTYLE | SL_NBD_FLAG_C_NO_ZEROES)) {
		/* proto.md: the server MUST drop the connection on unknown client flags. */
		SL_NOTICELOG("nbd connection %" PRIu64 " from %s: unknown client flags 0x%x\n",
			     conn->id, conn->peer, flags);
		return -EINVAL;
	}
	conn->fixed_newstyle = flags & SL_NBD_FLAG_C_FIXED_NEWSTYLE;
	conn->no_zeroes = flags & SL_NBD_FLAG_C_NO_ZEROES;
	conn->hs_state = NBD_HS_OPTIONS;
	return 0;
}

static int
nbd_hs_next_option(struct nbd_conn *conn)
{
	struct sl_nbd_option hdr;
	uint32_t avail = conn->rx_tail - conn->rx_head, len, opt;
	int rc;

	memcpy(&hdr, conn->rx + conn->rx_head, sizeof(hdr));
	if (be64toh(hdr.magic) != SL_NBD_OPTS_MAGIC) {
		SL_NOTICELOG("nbd connection %" PRIu64 " from %s: bad option magic\n", conn->id,
			     conn->peer);
		return -EINVAL;
	}
	len = be32toh(hdr.length);
	opt = be32toh(hdr.option);
	if (len > NBD_MAX_OPTION_LEN) {
		if (!conn->fixed_newstyle) {
			return -EINVAL;
		}
		conn->rx_head += sizeof(hdr);
		conn->hs_discard = len;
		return nbd_hs_error(conn, opt, SL_NBD_REP_ERR_TOO_BIG, "option too long");
	}
	if (avail < sizeof(hdr) + len) {
		return 0; /* wait for the rest */
	}
	conn->rx_head += sizeof(hdr) + len;
	rc = nbd_hs_option(conn, opt, conn->rx + conn->rx_head - len, len);
	return rc;
}

int
nbd_hs_process(struct nbd_conn *conn)
{
	uint32_t avail, head;
	int rc = 0;

	while (rc == 0 && conn->hs_out_len == 0) {
		avail = conn->rx_tail - conn->rx_head;
		head = conn->rx_head;
		if (conn->hs_discard > 0) {
			if (avail == 0) {
				break;
			}
			rc = nbd_hs_skip(conn);
		} else if (conn->hs_state == NBD_HS_CLIENT_FLAGS) {
			if (avail < sizeof(uint32_t)) {
				break;
			}
			rc = nbd_hs_client_flags(conn);
		} else if (conn->hs_state == NBD_HS_OPTIONS) {
			if (avail < sizeof(struct sl_nbd_option)) {
				break;
			}
			rc = nbd_hs_next_option(conn);
			if (rc == 0 && conn->rx_head == head) {
				break; /* an option's data is still coming */
			}
		} else {
			break;
		}
	}
	return rc;
}

/* ---- Handshake: the connection on the app thread ------------------------------ */

static bool
nbd_hs_fill(struct nbd_conn *conn)
{
	ssize_t n;

	if (conn->rx_head > 0) {
		memmove(conn->rx, conn->rx + conn->rx_head, conn->rx_tail - conn->rx_head);
		conn->rx_tail -= conn->rx_head;
		conn->rx_head = 0;
	}
	if (conn->rx_tail == NBD_RX_BUF_SIZE) {
		return true;
	}
	n = recv(conn->fd, conn->rx + conn->rx_tail, NBD_RX_BUF_SIZE - conn->rx_tail, MSG_DONTWAIT);
	if (n > 0) {
		conn->rx_tail += (uint32_t)n;
		return true;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		return true;
	}
	SL_DEBUGLOG(nbd, "nbd connection %" PRIu64 ": closed during the handshake\n", conn->id);
	return false;
}

/* Run the handshake as far as input and the socket allow. \return false to close. */
static bool
nbd_hs_run(struct nbd_conn *conn, bool readable)
{
	int rc;

	rc = nbd_hs_flush(conn);
	if (rc < 0) {
		return false;
	}
	if (rc == 0 && conn->hs_state == NBD_HS_CLOSING) {
		return false;
	}
	if (rc == 0 && readable && conn->hs_state != NBD_HS_DONE && !nbd_hs_fill(conn)) {
		return false;
	}
	while (rc == 0 && conn->hs_state != NBD_HS_DONE && conn->hs_state != NBD_HS_CLOSING) {
		uint32_t before = conn->rx_head;

		rc = nbd_hs_process(conn);
		if (rc < 0) {
			return false;
		}
		rc = nbd_hs_flush(conn);
		if (rc < 0) {
			return false;
		}
		if (conn->rx_head == before) {
			break;
		}
	}
	if (rc == 0 && conn->hs_state == NBD_HS_CLOSING) {
		return false;
	}
	return true;
}

static int
nbd_hs_poll(void *arg)
{
	struct nbd_conn *conn = arg;
	uint32_t events;

	if (!nbd_hs_run(conn, true)) {
		nbd_hs_close(conn);
		return SL_POLLER_BUSY;
	}
	if (conn->hs_state == NBD_HS_DONE && conn->hs_out_len == 0) {
		nbd_hs_handoff(conn);
		return SL_POLLER_BUSY;
	}
	events = conn->hs_out_len > 0 ? EPOLLOUT : EPOLLIN;
	if (events != conn->events && sl_poller_fd_set_events(conn->poller, events) == 0) {
		conn->events = events;
	}
	return SL_POLLER_BUSY;
}

/* The handshake limit passed before the transmission phase: only this connection goes
 * (its timer goes with it, unregistered from its own callback, which is allowed). */
static int
nbd_hs_timeout(void *arg)
{
	struct nbd_conn *conn = arg;

	SL_NOTICELOG("nbd connection %" PRIu64 " from %s: handshake not finished within %" PRIu32
		     " s: disconnecting\n",
		     conn->id, conn->peer, g_nbd.handshake_limit);
	nbd_hs_close(conn);
	return SL_POLLER_BUSY;
}

static void
nbd_server_accept(struct sl_sock *sock)
{
	struct nbd_conn *conn;
	char caddr[48];
	int cport = 0;

	conn = nbd_conn_alloc(sl_sock_get_fd(sock), "nbd");
	if (conn == NULL) {
		SL_ERRLOG("nbd: out of memory for a new connection\n");
		sl_sock_close(&sock);
		return;
	}
	conn->sock = sock;
	if (sl_sock_is_unix(sock)) {
		snprintf(conn->peer, sizeof(conn->peer), "unix");
	} else if (sl_sock_getaddr(sock, NULL, 0, NULL, caddr, sizeof(caddr), &cport) == 0) {
		snprintf(conn->peer, sizeof(conn->peer), "%s:%d", caddr, cport);
	}
	conn->events = EPOLLOUT;
	conn->poller = sl_poller_register_fd(conn->fd, EPOLLOUT, nbd_hs_poll, conn, "nbd_hs");
	if (g_nbd.handshake_limit > 0) {
		conn->hs_timer = sl_poller_register(
			nbd_hs_timeout, conn, g_nbd.handshake_limit * 1000000ull, "nbd_hs_limit");
	}
	if (conn->poller == NULL || (g_nbd.handshake_limit > 0 && conn->hs_timer == NULL) ||
	    nbd_hs_start(conn) != 0) {
		SL_ERRLOG("nbd: cannot start a handshake with %s\n", conn->peer);
		sl_poller_unregister(&conn->poller);
		sl_poller_unregister(&conn->hs_timer);
		sl_sock_close(&conn->sock);
		nbd_conn_free(conn);
		return;
	}
	conn->thread = sl_get_thread();
	TAILQ_INSERT_TAIL(&g_nbd.hs_conns, conn, link);
}

static int
nbd_listener_poll(void *arg)
{
	struct nbd_listener *l = arg;
	struct sl_sock *sock;
	int i;

	for (i = 0; i < NBD_ACCEPT_BURST && l->sock != NULL; i++) {
		sock = sl_sock_accept(l->sock);
		if (sock == NULL) {
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				SL_ERRLOG("nbd: accept: %s\n", strerror(errno));
			}
			break;
		}
		nbd_server_accept(sock);
	}
	return i > 0 ? SL_POLLER_BUSY : SL_POLLER_IDLE;
}

/* ---- Server start and stop ---------------------------------------------------- */

static int
nbd_listener_start(struct nbd_listener *l, enum sl_sock_family family, const char *host, int port)
{
	l->sock = sl_sock_listen(family, host, port, NULL);
	if (l->sock == NULL) {
		return errno != 0 ? -errno : -EINVAL;
	}
	l->poller = sl_poller_register_fd(sl_sock_get_fd(l->sock), EPOLLIN, nbd_listener_poll, l,
					  "nbd_listen");
	if (l->poller == NULL) {
		int rc = errno != 0 ? -errno : -ENOMEM;

		sl_sock_close(&l->sock);
		return rc;
	}
	return 0;
}

static void
nbd_listener_stop(struct nbd_listener *l)
{
	sl_poller_unregister(&l->poller);
	sl_sock_close(&l->sock);
}

static void
nbd_pt_exit_msg(void *arg)
{
	sl_thread_exit(sl_get_thread());
}

static void
nbd_poll_threads_stop(void)
{
	for (uint32_t i = 0; i < g_nbd.npts; i++) {
		if (g_nbd.pts[i].own) {
			sl_thread_send_msg(g_nbd.pts[i].thread, nbd_pt_exit_msg, NULL);
		}
	}
	free(g_nbd.pts);
	g_nbd.pts = NULL;
	g_nbd.npts = 0;
}

static int
nbd_poll_threads_start(void)
{
	uint32_t n = sl_reactor_count();
	char name[32];

	g_nbd.npts = n > 0 ? n : 1;
	g_nbd.pts = calloc(g_nbd.npts, sizeof(*g_nbd.pts));
	if (g_nbd.pts == NULL) {
		g_nbd.npts = 0;
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < g_nbd.npts; i++) {
		snprintf(name, sizeof(name), "nbd_%u", i);
		/* Without reactors (tests, tools polling by hand) the app thread serves. */
		g_nbd.pts[i].thread = n > 0 ? sl_reactor_thread_create(i, name) : NULL;
		g_nbd.pts[i].own = g_nbd.pts[i].thread != NULL;
		if (g_nbd.pts[i].thread == NULL) {
			g_nbd.pts[i].thread = sl_get_thread();
		}
	}
	return 0;
}

static void
nbd_server_cleanup(void)
{
	nbd_listener_stop(&g_nbd.tcp);
	nbd_listener_stop(&g_nbd.unx);
	free(g_nbd.tcp_host);
	free(g_nbd.unix_path);
	g_nbd.tcp_host = NULL;
	g_nbd.unix_path = NULL;
	g_nbd.tcp_port = -1;
}

int
sl_nbd_server_start(const struct sl_nbd_server_opts *opts)
{
	const char *host;
	char addr[64];
	int rc;

	if (g_nbd.running || g_nbd.stopping) {
		return -EALREADY;
	}
	if (opts == NULL || (!opts->tcp && opts->unix_path == NULL)) {
		return -EINVAL;
	}
	if (opts->handshake_limit > SL_NBD_MAX_HANDSHAKE_LIMIT) {
		SL_ERRLOG("nbd server: handshake limit %" PRIu32 " s: must be at most %d s\n",
			  opts->handshake_limit, SL_NBD_MAX_HANDSHAKE_LIMIT);
		return -EINVAL;
	}
	if (opts->tcp) {
		host = opts->host != NULL ? opts->host : "127.0.0.1";
		rc = nbd_listener_start(&g_nbd.tcp, SL_SOCK_TCP, host, opts->port);
		if (rc != 0) {
			goto err;
		}
		g_nbd.tcp_host = strdup(host);
		sl_sock_getaddr(g_nbd.tcp.sock, addr, sizeof(addr), &g_nbd.tcp_port, NULL, 0, NULL);
	}
	if (opts->unix_path != NULL) {
		rc = nbd_listener_start(&g_nbd.unx, SL_SOCK_UNIX, opts->unix_path, 0);
		if (rc != 0) {
			goto err;
		}
		g_nbd.unix_path = strdup(opts->unix_path);
	}
	if ((opts->tcp && g_nbd.tcp_host == NULL) ||
	    (opts->unix_path != NULL && g_nbd.unix_path == NULL)) {
		rc = -ENOMEM;
		goto err;
	}
	rc = nbd_poll_threads_start();
	if (rc != 0) {
		goto err;
	}
	g_nbd.running = true;
	g_nbd.handshake_limit = opts->handshake_limit;
	if (opts->tcp) {
		SL_NOTICELOG("nbd server listening on %s:%d\n", g_nbd.tcp_host, g_nbd.tcp_port);
	}
	if (g_nbd.unix_path != NULL) {
		SL_NOTICELOG("nbd server listening on %s\n", g_nbd.unix_path);
	}
	if (g_nbd.handshake_limit > 0) {
		SL_NOTICELOG("nbd server: handshake limit %" PRIu32 " s\n", g_nbd.handshake_limit);
	} else {
		SL_NOTICELOG("nbd server: no handshake limit\n");
	}
	return 0;
err:
	nbd_server_cleanup();
	return rc;
}

static void
nbd_server_stop_done(void)
{
	sl_nbd_done_cb cb = g_nbd.stop_cb;
	void *cb_arg = g_nbd.stop_arg;

	nbd_poll_threads_stop();
	g_nbd.stopping = false;
	g_nbd.stop_cb = NULL;
	SL_NOTICELOG("nbd server stopped\n");
	if (cb != NULL) {
		cb(cb_arg, 0);
	}
}

void
sl_nbd_server_stop(sl_nbd_done_cb cb, void *cb_arg)
{
	struct sl_nbd_export *exp;
	struct nbd_conn *conn, *tmp;

	if (!g_nbd.running) {
		if (cb != NULL) {
			cb(cb_arg, g_nbd.stopping ? -EALREADY : -ENOENT);
		}
		return;
	}
	g_nbd.running = false;
	g_nbd.stopping = true;
	g_nbd.stop_cb = cb;
	g_nbd.stop_arg = cb_arg;
	nbd_server_cleanup();
	TAILQ_FOREACH_SAFE (conn, &g_nbd.hs_conns, link, tmp) {
		nbd_hs_close(conn);
	}
	TAILQ_FOREACH (exp, &g_nbd_exports, link) {
		nbd_export_stop_conns(exp);
	}
	if (g_nbd.nconns == 0) {
		nbd_server_stop_done();
	}
}

bool
sl_nbd_server_is_running(void)
{
	return g_nbd.running;
}

const char *
sl_nbd_server_get_tcp_host(void)
{
	return g_nbd.tcp_host;
}

int
sl_nbd_server_get_tcp_port(void)
{
	return g_nbd.tcp_port;
}

const char *
sl_nbd_server_get_unix_path(void)
{
	return g_nbd.unix_path;
}

uint32_t
sl_nbd_server_get_handshake_limit(void)
{
	return g_nbd.handshake_limit;
}
