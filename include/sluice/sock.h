/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/** \file
 * Non-blocking stream sockets (TCP and Unix) and poll groups.
 *
 * A poll group is owned by one sl_thread: it registers one fd poller (its epoll fd),
 * so a quiet group costs nothing in adaptive mode, and reports readiness of its
 * sockets in batches. NBD and NVMe/TCP sit on this.
 */
#ifndef SLUICE_SOCK_H
#define SLUICE_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct sl_sock;
struct sl_sock_group;

enum sl_sock_family {
	SL_SOCK_TCP = 0,  /* host is an IPv4/IPv6 address or name */
	SL_SOCK_UNIX = 1, /* host is a path; port ignored */
};

struct sl_sock_opts {
	/** Socket buffer sizes (0 = kernel default). */
	int recv_buf_size;
	int send_buf_size;
	/** TCP_NODELAY (default true for TCP). */
	bool no_delay;
	/** Unix listen socket mode (0 = 0600). */
	unsigned int unix_mode;
	/** listen() backlog (0 = 128). */
	int backlog;
};
void sl_sock_opts_init(struct sl_sock_opts *opts);

/**
 * Listen on host:port (TCP; port 0 picks one, see sl_sock_getaddr; host NULL or "" is
 * every address) or on a Unix path, created with opts->unix_mode (0600). An existing
 * Unix socket file is probed with a connect: a stale one (ECONNREFUSED) is replaced; a
 * live server's is refused with EADDRINUSE (that server sees the probe as a connection
 * that closes at once); a file that is not a socket is never removed (EADDRINUSE).
 * Failures are logged with the address ("listen on 127.0.0.1:10809: Address already
 * in use"). opts may be NULL for the defaults.
 * \return the socket or NULL with errno set (EADDRINUSE, EADDRNOTAVAIL for a name that
 * does not resolve, ENAMETOOLONG, EINVAL for a bad port, ...).
 */
struct sl_sock *sl_sock_listen(enum sl_sock_family family, const char *host, int port,
			       const struct sl_sock_opts *opts);
/** Accept one connection without blocking. \return it, or NULL (errno EAGAIN if none). */
struct sl_sock *sl_sock_accept(struct sl_sock *listener);
/**
 * Connect (non-blocking; completes later for TCP — writable when done).
 * \return the socket or NULL with errno set.
 */
struct sl_sock *sl_sock_connect(enum sl_sock_family family, const char *host, int port,
				const struct sl_sock_opts *opts);
/**
 * Close and free *sock and set it to NULL (removes it from its group first; safe inside
 * any callback of the group, its own included). A Unix listener removes its socket
 * file, unless another process has replaced it since. NULL is allowed. \return 0.
 */
int sl_sock_close(struct sl_sock **sock);

/** \return bytes read, 0 on EOF, or -errno (-EAGAIN when nothing is ready). */
ssize_t sl_sock_recv(struct sl_sock *sock, void *buf, size_t len);
ssize_t sl_sock_readv(struct sl_sock *sock, struct iovec *iov, int iovcnt);
/**
 * Send with MSG_NOSIGNAL: a closed peer gives -EPIPE, never SIGPIPE.
 * \return bytes written (may be short), or -errno (-EAGAIN).
 */
ssize_t sl_sock_writev(struct sl_sock *sock, const struct iovec *iov, int iovcnt);
ssize_t sl_sock_send(struct sl_sock *sock, const void *buf, size_t len);
/** \return the fd (for setsockopt and the like). */
int sl_sock_get_fd(const struct sl_sock *sock);
/**
 * Local and peer addresses as strings ("127.0.0.1", port; Unix: path, 0).
 * \return 0 or -errno.
 */
int sl_sock_getaddr(struct sl_sock *sock, char *saddr, size_t slen, int *sport, char *caddr,
		    size_t clen, int *cport);
bool sl_sock_is_unix(const struct sl_sock *sock);
void sl_sock_set_ctx(struct sl_sock *sock, void *ctx);
void *sl_sock_get_ctx(const struct sl_sock *sock);

/** Readiness callback: events are EPOLLIN/EPOLLOUT/EPOLLHUP/EPOLLERR bits. */
typedef void (*sl_sock_cb)(void *arg, struct sl_sock_group *group, struct sl_sock *sock,
			   uint32_t events);

/**
 * Create a poll group on the current thread. It registers an fd poller there (its
 * epoll fd), so a quiet group costs the thread nothing. Without a current thread the
 * group is polled by hand only (sl_sock_group_poll).
 * \return the group or NULL.
 */
struct sl_sock_group *sl_sock_group_create(void *ctx);
/** \return the ctx passed at creation. */
void *sl_sock_group_get_ctx(struct sl_sock_group *group);
/**
 * Add a socket; cb runs on the group's thread when it is ready for events
 * (level-triggered: data left unread is reported again). Callbacks may close or remove
 * any socket of the group, their own included: a socket gone is not called back again,
 * even later in the same batch.
 * \return 0 or -errno (-EBUSY if already in a group).
 */
int sl_sock_group_add_sock(struct sl_sock_group *group, struct sl_sock *sock, uint32_t events,
			   sl_sock_cb cb, void *cb_arg);
/** Change the events watched (e.g. add EPOLLOUT while a send is pending). */
int sl_sock_group_set_events(struct sl_sock_group *group, struct sl_sock *sock, uint32_t events);
int sl_sock_group_remove_sock(struct sl_sock_group *group, struct sl_sock *sock);
/**
 * Poll once: up to max_events ready sockets get their callbacks. Called by the
 * group's own poller; usable by hand too. \return number of callbacks run or -errno.
 */
int sl_sock_group_poll(struct sl_sock_group *group, int max_events);
/**
 * Destroy an empty group and set *group to NULL; allowed inside the group's own
 * callbacks (it is freed when the batch ends). \return 0 or -EBUSY if sockets remain.
 */
int sl_sock_group_close(struct sl_sock_group **group);

#endif /* SLUICE_SOCK_H */
