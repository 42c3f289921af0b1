/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * Private declarations of the NBD export: the connection (shared by the handshake on
 * the app thread and the transmission phase on an NBD thread), its request slots, and
 * the export object.
 */
#ifndef SLUICE_NBD_INTERNAL_H
#define SLUICE_NBD_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/uio.h>

#include "sluice/bdev.h"
#include "sluice/nbd.h"
#include "sluice/nbd_spec.h"

/* Longest READ/WRITE payload: the spec's customary 32 MiB maximum block size. */
#define NBD_MAX_PAYLOAD (32u << 20)
/* Requests in flight per connection. More may be queued by the client: they wait in
 * the socket (TCP flow control) until a slot is free. */
#define NBD_CONN_SLOTS 128
/* Each slot's own buffer, allocated on first use and kept; larger requests borrow the
 * connection's single big buffer (grown to the largest such request, kept). */
#define NBD_SLOT_BUF_SIZE (128u << 10)
/* Receive staging: request headers are parsed in place here, many per recv(). Option
 * haggling uses it too, which bounds an option's data. */
#define NBD_RX_BUF_SIZE    (16u << 10)
#define NBD_MAX_OPTION_LEN (NBD_RX_BUF_SIZE - sizeof(struct sl_nbd_option))
/* Most extents in one block status reply (the spec lets a server stop early). */
#define NBD_MAX_EXTENTS 512
/* Reply header room: a chunk header plus an error payload and a short message. */
#define NBD_HDR_MAX 128
#define NBD_ERR_MSG_MAX \
	(NBD_HDR_MAX - sizeof(struct sl_nbd_structured_reply) - sizeof(struct sl_nbd_reply_error))
/* The id of base:allocation in NBD_REP_META_CONTEXT and block status replies. */
#define NBD_META_ID_BASE_ALLOCATION 1

enum nbd_slot_state {
	NBD_SLOT_FREE = 0,
	NBD_SLOT_PAYLOAD, /* WRITE data being received */
	NBD_SLOT_IO,      /* in the bdev (or waiting for a bdev I/O descriptor) */
	NBD_SLOT_TX,      /* reply queued */
};

struct nbd_conn;

/* One request in flight: parsed header, buffer, reply header built in place. */
struct nbd_slot {
	struct nbd_conn *conn;
	TAILQ_ENTRY(nbd_slot) link;
	uint8_t state;
	bool fua_flush; /* TRIM/WRITE_ZEROES with FUA: flush once it completes */
	bool flushing;  /* ... and that flush is the I/O now in flight */
	uint16_t flags;
	uint16_t type;
	uint64_t cookie; /* wire order, echoed as is */
	uint64_t offset;
	uint32_t length;
	void *buf;  /* own buffer (NBD_SLOT_BUF_SIZE), NULL until first needed */
	void *data; /* what follows the header on the wire (READ data) */
	uint32_t data_len;
	uint32_t hdr_len;
	struct iovec iov;
	struct sl_bdev_io_wait_entry wait;
	uint8_t hdr[NBD_HDR_MAX] __attribute__((aligned(8)));
};

enum nbd_hs_state {
	NBD_HS_CLIENT_FLAGS = 0, /* hello sent, waiting for the client's 32-bit flags */
	NBD_HS_OPTIONS,          /* option haggling */
	NBD_HS_CLOSING,          /* ABORT answered or fatal: flush what is queued, close */
	NBD_HS_DONE,             /* handed to the transmission phase */
};

struct nbd_conn_stats {
	uint64_t num_read_ops;
	uint64_t bytes_read;
	uint64_t num_write_ops;
	uint64_t bytes_written;
	uint64_t num_other_ops;
	uint64_t num_errors;
};

struct nbd_conn {
	uint64_t id;
	int fd;
	struct sl_sock *sock; /* network connections; NULL for an fd given to serve() */
	struct sl_poller *poller;
	struct sl_poller *stop_timer; /* armed by a stop: cuts off a peer that stalls */
	struct sl_thread *thread;
	uint32_t events;
	char name[64];
	char peer[64];

	/* Negotiated; fixed in the transmission phase. */
	struct sl_bdev_desc *desc;
	struct sl_io_channel *ch;
	uint64_t size;
	uint32_t min_block;
	uint32_t max_payload;
	uint16_t tx_flags;
	bool structured;
	bool base_allocation;

	/* Receive side. */
	uint8_t *rx;
	uint32_t rx_head;
	uint32_t rx_tail;
	struct nbd_slot *payload_slot; /* WRITE whose data is being read */
	uint32_t payload_got;
	uint64_t drain_left; /* payload of a refused WRITE still to discard */
	uint32_t drain_error;
	const char *drain_msg;
	bool rx_paused; /* no free slot (or big buffer): EPOLLIN is off */
	bool eof;       /* peer closed or socket error: nothing more is sent */
	bool closing;   /* DISC, stop or protocol error: reading has ended */
	bool closed;
	bool in_rx; /* conn_rx_process on the stack */

	/* Slots and the transmit queue. */
	TAILQ_HEAD(, nbd_slot) free_slots;
	TAILQ_HEAD(, nbd_slot) txq;
	uint32_t in_flight;
	uint32_t tx_off; /* bytes of the head of txq already sent */
	bool tx_scheduled;
	void *big_buf;
	uint32_t big_buf_size;
	struct nbd_slot *big_owner;

	/* Handshake (network connections only), on the app thread. */
	enum nbd_hs_state hs_state;
	bool fixed_newstyle;
	bool no_zeroes;
	uint8_t *hs_out;
	size_t hs_out_len;
	size_t hs_out_cap;
	size_t hs_out_off;
	uint64_t hs_discard;
	char *meta_export;          /* export the base:allocation selection was made for */
	struct sl_poller *hs_timer; /* the handshake limit; gone at hand-off or close */

	/* Server bookkeeping (app thread). */
	struct sl_nbd_export *export;
	TAILQ_ENTRY(nbd_conn) link;
	uint32_t pt_index;
	bool stop_sent;   /* a stop message may still be queued to the conn's thread */
	bool serve_owned; /* made by sl_nbd_conn_serve: freed after done_cb */

	sl_nbd_conn_done_cb done_cb;
	void *done_arg;
	struct nbd_conn_stats stats;
	struct nbd_slot slots[NBD_CONN_SLOTS];
};

struct sl_nbd_export {
	char *name;
	char *bdev_name;
	char *description;
	bool read_only;
	struct sl_bdev_desc *desc;
	uint32_t block_size;
	TAILQ_ENTRY(sl_nbd_export) link;
	TAILQ_HEAD(, nbd_conn) conns;
	uint32_t nconns;
	bool removing;
	sl_nbd_done_cb remove_cb;
	void *remove_arg;
};

/* nbd_conn.c */
struct nbd_conn *nbd_conn_alloc(int fd, const char *name);
void nbd_conn_free(struct nbd_conn *conn);
/* Start the transmission phase on the calling thread. \return 0 or -errno. */
int nbd_conn_start(struct nbd_conn *conn, sl_nbd_conn_done_cb done_cb, void *cb_arg);
void nbd_conn_get_info(const struct nbd_conn *conn, struct sl_nbd_conn_info *info);
/* Map a bdev status (0/-errno) to the spec's error set. fast_zero: the status answers
 * a WRITE_ZEROES with NBD_CMD_FLAG_FAST_ZERO, the one request that may get
 * NBD_ENOTSUP; any other "not supported" becomes NBD_EINVAL. */
uint32_t nbd_errno_to_nbd(int status, bool fast_zero);

/* nbd_uri.c */
/* Percent-encode s for an NBD URI (RFC 3986 2.1): all but the unreserved characters
 * and those in keep (may be NULL). Writes at most outlen bytes with the NUL, cut
 * before an escape that does not fit. \return the encoded length without the NUL,
 * whatever outlen (as snprintf). */
size_t nbd_uri_encode(char *out, size_t outlen, const char *s, const char *keep);
/* The URI of export name at host:port, or at the Unix socket path, in a new string
 * (free()), or NULL without memory. */
char *nbd_uri_tcp(const char *host, int port, const char *name);
char *nbd_uri_unix(const char *path, const char *name);

/* nbd_server.c */
/* Feed the handshake with what is in conn->rx; \return 0 to go on, 1 when the
 * connection reached the transmission phase, -errno to close it. */
int nbd_hs_process(struct nbd_conn *conn);
/* Queue the server's hello (after accept). */
int nbd_hs_start(struct nbd_conn *conn);
/* The export a client asked for ("" is the first), or NULL. */
struct sl_nbd_export *nbd_export_lookup(const char *name, size_t len);
uint64_t nbd_export_size(const struct sl_nbd_export *exp);

#endif /* SLUICE_NBD_INTERNAL_H */
