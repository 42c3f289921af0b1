/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * Non-blocking stream sockets over TCP (IPv4/IPv6 through getaddrinfo) and Unix paths.
 * Every send uses MSG_NOSIGNAL, so a peer that goes away gives EPIPE rather than a
 * SIGPIPE that would kill the daemon.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "sluice/log.h"
#include "sluice/sock.h"
#include "sock_internal.h"

SL_LOG_REGISTER_COMPONENT(sock)

#define SOCK_DEFAULT_BACKLOG   128
#define SOCK_DEFAULT_UNIX_MODE 0600

void
sl_sock_opts_init(struct sl_sock_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->no_delay = true;
	opts->unix_mode = SOCK_DEFAULT_UNIX_MODE;
	opts->backlog = SOCK_DEFAULT_BACKLOG;
}

/* "127.0.0.1:10809", "[::1]:10809" or the Unix path, for messages. */
static void
sock_format_addr(char *buf, size_t len, enum sl_sock_family family, const char *host, int port)
{
	if (family == SL_SOCK_UNIX) {
		snprintf(buf, len, "%s", host != NULL ? host : "(null)");
	} else if (host != NULL && strchr(host, ':') != NULL) {
		snprintf(buf, len, "[%s]:%d", host, port);
	} else {
		snprintf(buf, len, "%s:%d", host != NULL && host[0] != '\0' ? host : "*", port);
	}
}

static struct sl_sock *
sock_alloc(int fd, bool is_unix, const struct sl_sock_opts *opts)
{
	struct sl_sock *sock = calloc(1, sizeof(*sock));

	if (sock == NULL) {
		return NULL;
	}
	sock->fd = fd;
	sock->is_unix = is_unix;
	if (opts != NULL) {
		sock->opts = *opts;
	} else {
		sl_sock_opts_init(&sock->opts);
	}
	return sock;
}

/* Apply buffer sizes and TCP_NODELAY. \return 0 or -errno. */
static int
sock_apply_opts(int fd, bool is_unix, const struct sl_sock_opts *opts)
{
	int one = 1;

	if (opts->recv_buf_size > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &opts->recv_buf_size,
						  sizeof(opts->recv_buf_size)) != 0) {
		return -errno;
	}
	if (opts->send_buf_size > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &opts->send_buf_size,
						  sizeof(opts->send_buf_size)) != 0) {
		return -errno;
	}
	if (!is_unix && opts->no_delay &&
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
		return -errno;
	}
	return 0;
}

static int
sock_unix_addr(const char *path, struct sockaddr_un *sun)
{
	if (path == NULL || path[0] == '\0') {
		return -EINVAL;
	}
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path)) {
		return -ENAMETOOLONG;
	}
	strcpy(sun->sun_path, path);
	return 0;
}

/*
 * bind() found path in use: a live server answers a connect; a stale file left by a
 * crashed process refuses it and may be replaced. Never remove a non-socket.
 * \return 0 if the file was stale and is gone, else -EADDRINUSE.
 */
static int
sock_unix_remove_stale(const struct sockaddr_un *sun)
{
	struct stat st;
	int fd, rc;

	if (lstat(sun->sun_path, &st) != 0) {
		return errno == ENOENT ? 0 : -EADDRINUSE;
	}
	if (!S_ISSOCK(st.st_mode)) {
		return -EADDRINUSE;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		return -EADDRINUSE;
	}
	rc = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	/* EAGAIN: a live listener with a full backlog. */
	rc = (rc != 0 && errno == ECONNREFUSED) ? 0 : -EADDRINUSE;
	close(fd);
	if (rc == 0 && unlink(sun->sun_path) != 0 && errno != ENOENT) {
		return -EADDRINUSE;
	}
	return rc;
}

static int
sock_unix_bind(int fd, const struct sockaddr_un *sun)
{
	int rc;

	if (bind(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0) {
		return 0;
	}
	if (errno != EADDRINUSE) {
		return -errno;
	}
	rc = sock_unix_remove_stale(sun);
	if (rc != 0) {
		return rc;
	}
	SL_NOTICELOG("replaced stale socket file %s\n", sun->sun_path);
	return bind(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0 ? 0 : -errno;
}

static struct sl_sock *
sock_unix_listen(const char *path, const struct sl_sock_opts *opts)
{
	struct sockaddr_un sun;
	struct sl_sock *sock = NULL;
	struct stat st;
	int fd, rc;

	rc = sock_unix_addr(path, &sun);
	if (rc != 0) {
		errno = -rc;
		return NULL;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		return NULL;
	}
	rc = sock_unix_bind(fd, &sun);
	if (rc != 0) {
		goto err;
	}
	/* Before listen(), nobody can connect through the looser umask mode. */
	if (chmod(path, opts->unix_mode != 0 ? opts->unix_mode : SOCK_DEFAULT_UNIX_MODE) != 0 ||
	    stat(path, &st) != 0) {
		rc = -errno;
		unlink(path);
		goto err;
	}
	if (listen(fd, opts->backlog > 0 ? opts->backlog : SOCK_DEFAULT_BACKLOG) != 0) {
		rc = -errno;
		unlink(path);
		goto err;
	}
	sock = sock_alloc(fd, true, opts);
	if (sock == NULL || (sock->unix_path = strdup(path)) == NULL) {
		rc = -ENOMEM;
		unlink(path);
		goto err;
	}
	sock->is_listener = true;
	sock->unix_dev = st.st_dev;
	sock->unix_ino = st.st_ino;
	return sock;
err:
	free(sock);
	close(fd);
	errno = -rc;
	return NULL;
}

static int
sock_getaddrinfo(const char *host, int port, bool passive, struct addrinfo **res)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0),
	};
	char portstr[16];
	int rc;

	if (port < 0 || port > 65535) {
		return -EINVAL;
	}
	snprintf(portstr, sizeof(portstr), "%d", port);
	if (host != NULL && host[0] == '\0') {
		host = NULL;
	}
	rc = getaddrinfo(host, portstr, &hints, res);
	if (rc == 0) {
		return 0;
	}
	if (rc == EAI_SYSTEM) {
		return -errno;
	}
	SL_DEBUGLOG(sock, "getaddrinfo(%s): %s\n", host, gai_strerror(rc));
	return rc == EAI_MEMORY ? -ENOMEM : -EADDRNOTAVAIL;
}

static int
sock_tcp_listen_one(const struct addrinfo *ai, const struct sl_sock_opts *opts)
{
	int one = 1;
	int fd, rc;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
	if (fd < 0) {
		return -errno;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
	    listen(fd, opts->backlog > 0 ? opts->backlog : SOCK_DEFAULT_BACKLOG) != 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

static struct sl_sock *
sock_tcp_listen(const char *host, int port, const struct sl_sock_opts *opts)
{
	struct addrinfo *res, *ai;
	struct sl_sock *sock;
	int fd = -EADDRNOTAVAIL;
	int rc;

	rc = sock_getaddrinfo(host, port, true, &res);
	if (rc != 0) {
		errno = -rc;
		return NULL;
	}
	/* The first address that binds wins (getaddrinfo orders them by preference). */
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = sock_tcp_listen_one(ai, opts);
		if (fd >= 0) {
			break;
		}
	}
	freeaddrinfo(res);
	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	sock = sock_alloc(fd, false, opts);
	if (sock == NULL) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	sock->is_listener = true;
	return sock;
}

struct sl_sock *
sl_sock_listen(enum sl_sock_family family, const char *host, int port,
	       const struct sl_sock_opts *opts)
{
	struct sl_sock_opts defaults;
	struct sl_sock *sock;
	char addr[128];

	if (opts == NULL) {
		sl_sock_opts_init(&defaults);
		opts = &defaults;
	}
	if (family == SL_SOCK_UNIX) {
		sock = sock_unix_listen(host, opts);
	} else if (family == SL_SOCK_TCP) {
		sock = sock_tcp_listen(host, port, opts);
	} else {
		errno = EINVAL;
		sock = NULL;
	}
	if (sock == NULL) {
		int err = errno;

		sock_format_addr(addr, sizeof(addr), family, host, port);
		SL_ERRLOG("listen on %s: %s\n", addr, strerror(err));
		errno = err;
	}
	return sock;
}

struct sl_sock *
sl_sock_accept(struct sl_sock *listener)
{
	struct sl_sock *sock;
	int fd, rc;

	if (listener == NULL || !listener->is_listener) {
		errno = EINVAL;
		return NULL;
	}
	do {
		fd = accept4(listener->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		return NULL;
	}
	rc = sock_apply_opts(fd, listener->is_unix, &listener->opts);
	if (rc == 0) {
		sock = sock_alloc(fd, listener->is_unix, &listener->opts);
		if (sock != NULL) {
			return sock;
		}
		rc = -ENOMEM;
	}
	close(fd);
	errno = -rc;
	return NULL;
}

static int
sock_connect_fd(int family, int socktype, int protocol, const struct sockaddr *addr,
		socklen_t addrlen, bool is_unix, const struct sl_sock_opts *opts)
{
	int fd, rc;

	fd = socket(family, socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol);
	if (fd < 0) {
		return -errno;
	}
	rc = sock_apply_opts(fd, is_unix, opts);
	if (rc == 0 && connect(fd, addr, addrlen) != 0 && errno != EINPROGRESS) {
		rc = -errno;
	}
	if (rc != 0) {
		close(fd);
		return rc;
	}
	return fd;
}

static int
sock_connect_any(enum sl_sock_family family, const char *host, int port,
		 const struct sl_sock_opts *opts)
{
	struct addrinfo *res, *ai;
	struct sockaddr_un sun;
	int fd = -EADDRNOTAVAIL;
	int rc;

	if (family == SL_SOCK_UNIX) {
		rc = sock_unix_addr(host, &sun);
		if (rc != 0) {
			return rc;
		}
		return sock_connect_fd(AF_UNIX, SOCK_STREAM, 0, (struct sockaddr *)&sun,
				       sizeof(sun), true, opts);
	}
	if (family != SL_SOCK_TCP) {
		return -EINVAL;
	}
	rc = sock_getaddrinfo(host, port, false, &res);
	if (rc != 0) {
		return rc;
	}
	/* A connect in progress counts as success: only immediate failures try the next. */
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = sock_connect_fd(ai->ai_family, ai->ai_socktype, ai->ai_protocol, ai->ai_addr,
				     ai->ai_addrlen, false, opts);
		if (fd >= 0) {
			break;
		}
	}
	freeaddrinfo(res);
	return fd;
}

struct sl_sock *
sl_sock_connect(enum sl_sock_family family, const char *host, int port,
		const struct sl_sock_opts *opts)
{
	struct sl_sock_opts defaults;
	struct sl_sock *sock;
	char addr[128];
	int fd;

	if (opts == NULL) {
		sl_sock_opts_init(&defaults);
		opts = &defaults;
	}
	fd = sock_connect_any(family, host, port, opts);
	if (fd < 0) {
		sock_format_addr(addr, sizeof(addr), family, host, port);
		SL_ERRLOG("connect to %s: %s\n", addr, strerror(-fd));
		errno = -fd;
		return NULL;
	}
	sock = sock_alloc(fd, family == SL_SOCK_UNIX, opts);
	if (sock == NULL) {
		close(fd);
		errno = ENOMEM;
	}
	return sock;
}

static void
sock_unix_unlink(struct sl_sock *sock)
{
	struct stat st;

	/* Another server may have replaced the file since; leave theirs alone. */
	if (stat(sock->unix_path, &st) == 0 && st.st_dev == sock->unix_dev &&
	    st.st_ino == sock->unix_ino) {
		unlink(sock->unix_path);
	}
}

int
sl_sock_close(struct sl_sock **psock)
{
	struct sl_sock *sock;

	if (psock == NULL || *psock == NULL) {
		return 0;
	}
	sock = *psock;
	*psock = NULL;
	sock_group_detach(sock);
	if (sock->unix_path != NULL) {
		sock_unix_unlink(sock);
		free(sock->unix_path);
	}
	close(sock->fd);
	free(sock);
	return 0;
}

ssize_t
sl_sock_recv(struct sl_sock *sock, void *buf, size_t len)
{
	ssize_t n;

	do {
		n = recv(sock->fd, buf, len, 0);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

ssize_t
sl_sock_readv(struct sl_sock *sock, struct iovec *iov, int iovcnt)
{
	ssize_t n;

	do {
		n = readv(sock->fd, iov, iovcnt);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

ssize_t
sl_sock_writev(struct sl_sock *sock, const struct iovec *iov, int iovcnt)
{
	struct msghdr msg = {
		.msg_iov = (struct iovec *)(uintptr_t)iov,
		.msg_iovlen = (size_t)iovcnt,
	};
	ssize_t n;

	do {
		n = sendmsg(sock->fd, &msg, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

ssize_t
sl_sock_send(struct sl_sock *sock, const void *buf, size_t len)
{
	ssize_t n;

	do {
		n = send(sock->fd, buf, len, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

int
sl_sock_get_fd(const struct sl_sock *sock)
{
	return sock->fd;
}

bool
sl_sock_is_unix(const struct sl_sock *sock)
{
	return sock->is_unix;
}

void
sl_sock_set_ctx(struct sl_sock *sock, void *ctx)
{
	sock->ctx = ctx;
}

void *
sl_sock_get_ctx(const struct sl_sock *sock)
{
	return sock->ctx;
}

/* Numeric host and port of an address; IPv4-mapped IPv6 shows as plain IPv4. */
static int
sock_addr_to_str(const struct sockaddr_storage *ss, socklen_t sslen, char *host, size_t hostlen,
		 int *port)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_un *sun = (const struct sockaddr_un *)ss;
	const char *p = NULL;

	switch (ss->ss_family) {
	case AF_INET:
		p = inet_ntop(AF_INET, &sin->sin_addr, host, (socklen_t)hostlen);
		*port = ntohs(sin->sin_port);
		break;
	case AF_INET6:
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			p = inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], host,
				      (socklen_t)hostlen);
		} else {
			p = inet_ntop(AF_INET6, &sin6->sin6_addr, host, (socklen_t)hostlen);
		}
		*port = ntohs(sin6->sin6_port);
		break;
	case AF_UNIX:
		/* An unbound (client) Unix socket has an empty path. */
		if (sslen > offsetof(struct sockaddr_un, sun_path)) {
			snprintf(host, hostlen, "%.*s",
				 (int)(sslen - offsetof(struct sockaddr_un, sun_path)),
				 sun->sun_path);
		} else if (hostlen > 0) {
			host[0] = '\0';
		}
		*port = 0;
		return 0;
	default:
		return -EAFNOSUPPORT;
	}
	return p != NULL ? 0 : -errno;
}

int
sl_sock_getaddr(struct sl_sock *sock, char *saddr, size_t slen, int *sport, char *caddr,
		size_t clen, int *cport)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int port, rc;

	if (saddr != NULL) {
		sslen = sizeof(ss);
		if (getsockname(sock->fd, (struct sockaddr *)&ss, &sslen) != 0) {
			return -errno;
		}
		rc = sock_addr_to_str(&ss, sslen, saddr, slen, &port);
		if (rc != 0) {
			return rc;
		}
		if (sport != NULL) {
			*sport = port;
		}
	}
	if (caddr != NULL) {
		sslen = sizeof(ss);
		if (getpeername(sock->fd, (struct sockaddr *)&ss, &sslen) != 0) {
			return -errno;
		}
		rc = sock_addr_to_str(&ss, sslen, caddr, clen, &port);
		if (rc != 0) {
			return rc;
		}
		if (cport != NULL) {
			*cport = port;
		}
	}
	return 0;
}
