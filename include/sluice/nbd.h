/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/** \file
 * NBD export of bdevs over the network (fixed newstyle NBD server on TCP and Unix
 * sockets), and the transmission-phase engine it shares with the kernel export.
 *
 * The server, its listeners and its exports are control objects of the app thread:
 * every function below except the sl_nbd_conn_* ones runs there. Connections do their
 * handshake (option haggling) on the app thread, then move to an NBD thread on one
 * of the reactors (round-robin), which serves their transmission phase.
 *
 * URIs follow the NBD URI spec: nbd://HOST:PORT/NAME and nbd+unix:///NAME?socket=PATH.
 */
#ifndef SLUICE_NBD_H
#define SLUICE_NBD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_bdev_desc;
struct sl_nbd_export;
struct sl_nbd_conn;

/** Completion of an asynchronous NBD control operation: rc 0 or -errno. */
typedef void (*sl_nbd_done_cb)(void *cb_arg, int rc);

/* ---- Server ------------------------------------------------------------------- */

/** The handshake limit nbd_server_start applies when none is given (qemu-nbd's). */
#define SL_NBD_DEFAULT_HANDSHAKE_LIMIT 10
/** The longest handshake limit accepted, in seconds. */
#define SL_NBD_MAX_HANDSHAKE_LIMIT 3600

/** Where the server listens, and how long a client may take to negotiate. */
struct sl_nbd_server_opts {
	/** Listen on TCP. */
	bool tcp;
	/** TCP address (NULL = "127.0.0.1"); "" or "0.0.0.0" for every address. */
	const char *host;
	/** TCP port (0 = pick a free one; see sl_nbd_server_get_tcp_port). */
	int port;
	/** Unix socket path, or NULL for none. */
	const char *unix_path;
	/**
	 * Seconds a client has, from its accept, to finish the handshake (reach the
	 * transmission phase); past that it is disconnected. 0 = no limit; at most
	 * SL_NBD_MAX_HANDSHAKE_LIMIT.
	 */
	uint32_t handshake_limit;
};

/**
 * Start the server: listeners, and one NBD thread per reactor.
 * \return 0, -EALREADY (running), -EINVAL (neither TCP nor Unix, or a handshake limit
 * over SL_NBD_MAX_HANDSHAKE_LIMIT), or the -errno of the listen (-EADDRINUSE, ...),
 * logged with the address.
 */
int sl_nbd_server_start(const struct sl_nbd_server_opts *opts);
/**
 * Stop the server: close the listeners and every connection (no new request is read;
 * requests in flight complete and are answered), then the NBD threads. Exports stay
 * (they are served again by the next start). cb(0) runs on the app thread when done;
 * cb(-ENOENT) at once if the server is not running.
 */
void sl_nbd_server_stop(sl_nbd_done_cb cb, void *cb_arg);
/** \return whether the server is running. */
bool sl_nbd_server_is_running(void);
/** \return the TCP address listened on, or NULL when not on TCP. */
const char *sl_nbd_server_get_tcp_host(void);
/** \return the TCP port bound (the real one when 0 was asked), or -1. */
int sl_nbd_server_get_tcp_port(void);
/** \return the Unix socket path, or NULL. */
const char *sl_nbd_server_get_unix_path(void);
/** \return the handshake limit in seconds (0 = none) of the running server. */
uint32_t sl_nbd_server_get_handshake_limit(void);

/* ---- Exports ------------------------------------------------------------------ */

struct sl_nbd_export_opts {
	/** Export name clients ask for (NULL = the bdev name). */
	const char *name;
	const char *bdev_name;
	/** Free text shown by clients (nbdinfo); NULL for none. */
	const char *description;
	bool read_only;
};

/**
 * Export a bdev. A writable export opens the bdev for writing and claims it
 * ("nbd export NAME"); a read-only one only opens it. The export is served on
 * connections made after this returns; it may be added before the server starts.
 * \return 0, -EINVAL (bad name), -EEXIST (name taken), -ENODEV (no such bdev), -EPERM
 * (writable export of a bdev claimed by someone else), -ENOMEM.
 */
int sl_nbd_export_add(const struct sl_nbd_export_opts *opts);
/**
 * Remove an export: its connections stop (in-flight requests complete and are
 * answered), then the bdev is closed. cb(0) on the app thread when done. A bdev
 * removed under an export removes the export the same way.
 * \return 0 (cb will run) or -ENOENT (no such export; cb will not run).
 */
int sl_nbd_export_remove(const char *name, sl_nbd_done_cb cb, void *cb_arg);
/** \return the export of that name, or NULL. */
struct sl_nbd_export *sl_nbd_export_find(const char *name);
/** \return the first export (in the order added), or NULL. */
struct sl_nbd_export *sl_nbd_export_first(void);
/** \return the next export, or NULL. */
struct sl_nbd_export *sl_nbd_export_next(struct sl_nbd_export *exp);
const char *sl_nbd_export_get_name(const struct sl_nbd_export *exp);
const char *sl_nbd_export_get_bdev_name(const struct sl_nbd_export *exp);
/** \return the description, or "" if none. */
const char *sl_nbd_export_get_description(const struct sl_nbd_export *exp);
bool sl_nbd_export_is_read_only(const struct sl_nbd_export *exp);
/** \return the size in bytes served to new connections. */
uint64_t sl_nbd_export_get_size(const struct sl_nbd_export *exp);

/** A connection as reported by nbd_server_get_exports (a snapshot). */
struct sl_nbd_conn_info {
	uint64_t id;
	/** "127.0.0.1:45678", or "unix" for a Unix socket. */
	char peer[64];
	const char *thread;
	bool structured_replies;
	bool base_allocation;
	uint32_t in_flight;
	uint64_t num_read_ops;
	uint64_t bytes_read;
	uint64_t num_write_ops;
	uint64_t bytes_written;
	uint64_t num_other_ops;
	uint64_t num_errors;
};
/**
 * Call fn for each connection in the transmission phase on the export.
 * \return the number of connections.
 */
int sl_nbd_export_for_each_conn(struct sl_nbd_export *exp,
				void (*fn)(const struct sl_nbd_conn_info *info, void *ctx),
				void *ctx);

/* ---- Transmission phase (shared with the kernel export) ----------------------- */

/** What a connection was negotiated to, for sl_nbd_conn_serve. */
struct sl_nbd_conn_opts {
	/** Transmission flags the client was given (SL_NBD_FLAG_*). */
	uint16_t tx_flags;
	/** Structured replies negotiated (never for the kernel's client). */
	bool structured_replies;
	/** base:allocation selected (needs structured replies). */
	bool base_allocation;
	/** Requests must be multiples of this (the bdev block size for the kernel). */
	uint32_t min_block_size;
	/** Longest READ/WRITE payload accepted (0 = 32 MiB). */
	uint32_t max_payload;
	/** A name for logs ("nbd0", an export name); copied. */
	const char *name;
};

/**
 * Called on the connection's thread once it is closed and its I/O finished. The
 * connection is freed when the callback returns.
 */
typedef void (*sl_nbd_conn_done_cb)(void *cb_arg, struct sl_nbd_conn *conn);

/**
 * Serve the transmission phase of an already negotiated NBD connection on the calling
 * thread: the fd (a connected stream socket, made non-blocking here; owned from now on
 * and closed at the end) is watched by an fd poller, so an idle connection costs
 * nothing. Requests go to desc's bdev through this thread's I/O channel.
 * \param desc an open descriptor (writable unless tx_flags has READ_ONLY); it must
 *	stay open until done_cb.
 * \return the connection, or NULL with errno set (EINVAL, ENOMEM, ENODEV for no
 * channel); on failure the fd is not closed.
 */
struct sl_nbd_conn *sl_nbd_conn_serve(int fd, struct sl_bdev_desc *desc,
				      const struct sl_nbd_conn_opts *opts,
				      sl_nbd_conn_done_cb done_cb, void *cb_arg);
/**
 * Stop a connection, on its thread: no further request is read, requests in flight
 * complete and are answered, then the socket is closed and done_cb runs. Idempotent.
 */
void sl_nbd_conn_stop(struct sl_nbd_conn *conn);
/**
 * Transmission flags for a bdev: flush, FUA, multi-conn and cache always; trim,
 * write-zeroes and fast-zero as the bdev supports them unless read_only; DF when
 * structured replies are negotiated.
 */
uint16_t sl_nbd_tx_flags(struct sl_bdev_desc *desc, bool read_only, bool structured_replies);

#endif /* SLUICE_NBD_H */
