/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/** \file
 * Private hooks of the JSON-RPC server, for its unit tests and fuzzer: limits that
 * tests shrink, and connections fed from a buffer instead of a socket.
 */
#ifndef SLUICE_RPC_INTERNAL_H
#define SLUICE_RPC_INTERNAL_H

#include <stddef.h>

#include "sluice/sock.h"

/** Largest request (one JSON value) accepted on a connection; default 32 MiB. */
extern size_t g_rpc_max_request_size;
/** Stop reading a connection while this many response bytes wait to be sent. */
extern size_t g_rpc_out_high_watermark;

struct rpc_conn;

/**
 * Make a connection over sock (owned by the connection from now on), or over nothing
 * when sock is NULL: then responses are discarded (fuzzing). It is not added to any
 * poll group; feed it with rpc_conn_feed().
 */
struct rpc_conn *rpc_conn_alloc(struct sl_sock *sock);
/**
 * Append bytes of the stream and handle every complete request in them.
 * \return 0, or -ECONNRESET once the stream is unusable (parse error, too large).
 */
int rpc_conn_feed(struct rpc_conn *conn, const void *data, size_t len);
/** Signal the end of the stream (the peer half-closed). */
void rpc_conn_feed_eof(struct rpc_conn *conn);
/** Close and free; requests still being handled are orphaned. */
void rpc_conn_destroy(struct rpc_conn *conn);
/** \return the number of connections the server has open. */
size_t rpc_server_conn_count(void);

#endif /* SLUICE_RPC_INTERNAL_H */
