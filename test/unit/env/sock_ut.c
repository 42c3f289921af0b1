/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * Sockets over loopback TCP (port 0) and Unix paths in a temporary directory, and poll
 * groups polled by hand and through their thread's fd poller.
 */

#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "sl_ut.h"
#include "sluice/log.h"
#include "sluice/sock.h"
#include "sluice/thread.h"

static char g_dir[64];

/* Accept, retrying while the connection is still on its way. */
static struct sl_sock *
accept_wait(struct sl_sock *listener)
{
	for (int i = 0; i < 1000; i++) {
		struct sl_sock *s = sl_sock_accept(listener);

		if (s != NULL || errno != EAGAIN) {
			return s;
		}
		usleep(1000);
	}
	return NULL;
}

static ssize_t
recv_wait(struct sl_sock *sock, void *buf, size_t len)
{
	ssize_t n = -EAGAIN;

	for (int i = 0; i < 1000 && n == -EAGAIN; i++) {
		n = sl_sock_recv(sock, buf, len);
		if (n == -EAGAIN) {
			usleep(1000);
		}
	}
	return n;
}

/* Connect a client to listener and accept its server side. */
static void
make_pair(enum sl_sock_family family, const char *host, int port, struct sl_sock *listener,
	  struct sl_sock **client, struct sl_sock **server)
{
	*client = sl_sock_connect(family, host, port, NULL);
	CU_ASSERT_FATAL(*client != NULL);
	*server = accept_wait(listener);
	CU_ASSERT_FATAL(*server != NULL);
}

static void
exchange(struct sl_sock *a, struct sl_sock *b)
{
	char hdr[] = "hello ", body[] = "world", buf[64] = {};
	struct iovec iov[2] = {{hdr, 6}, {body, 5}};
	struct iovec riov[2] = {{buf, 3}, {buf + 3, sizeof(buf) - 4}};
	ssize_t n = -EAGAIN;

	/* A TCP connect may still be in progress: writes then give EAGAIN. */
	for (int i = 0; i < 1000 && n == -EAGAIN; i++) {
		n = sl_sock_writev(a, iov, 2);
		if (n == -EAGAIN) {
			usleep(1000);
		}
	}
	CU_ASSERT_EQUAL(n, 11);
	for (int i = 0; i < 1000; i++) {
		n = sl_sock_readv(b, riov, 2);
		if (n != -EAGAIN) {
			break;
		}
		usleep(1000);
	}
	CU_ASSERT_EQUAL(n, 11);
	CU_ASSERT_STRING_EQUAL(buf, "hello world");
	CU_ASSERT_EQUAL(sl_sock_send(b, "x", 1), 1);
	CU_ASSERT_EQUAL(recv_wait(a, buf, sizeof(buf)), 1);
}

static void
test_tcp(void)
{
	struct sl_sock *listener, *client, *server;
	char saddr[64], caddr[64];
	int sport, cport, one = 0;
	socklen_t len = sizeof(one);
	char buf[8];

	listener = sl_sock_listen(SL_SOCK_TCP, "127.0.0.1", 0, NULL);
	CU_ASSERT_FATAL(listener != NULL);
	CU_ASSERT_FALSE(sl_sock_is_unix(listener));
	CU_ASSERT_EQUAL(sl_sock_getaddr(listener, saddr, sizeof(saddr), &sport, NULL, 0, NULL), 0);
	CU_ASSERT_STRING_EQUAL(saddr, "127.0.0.1");
	CU_ASSERT(sport > 0);
	CU_ASSERT(sl_sock_accept(listener) == NULL && errno == EAGAIN);

	make_pair(SL_SOCK_TCP, "127.0.0.1", sport, listener, &client, &server);
	CU_ASSERT_EQUAL(
		sl_sock_getaddr(server, saddr, sizeof(saddr), &sport, caddr, sizeof(caddr), &cport),
		0);
	CU_ASSERT_STRING_EQUAL(caddr, "127.0.0.1");
	CU_ASSERT(cport > 0 && cport != sport);
	/* TCP_NODELAY by default, on both sides. */
	getsockopt(sl_sock_get_fd(server), IPPROTO_TCP, TCP_NODELAY, &one, &len);
	CU_ASSERT(one != 0);
	exchange(client, server);

	/* EOF after the peer closes; then a write fails with EPIPE, not SIGPIPE. */
	sl_sock_close(&client);
	CU_ASSERT(client == NULL);
	CU_ASSERT_EQUAL(recv_wait(server, buf, sizeof(buf)), 0);
	for (int i = 0; i < 3; i++) {
		ssize_t n = sl_sock_send(server, "abc", 3);

		CU_ASSERT(n == 3 || n == -EPIPE || n == -ECONNRESET);
		usleep(1000);
	}
	sl_sock_close(&server);
	sl_sock_close(&listener);
	CU_ASSERT_EQUAL(sl_sock_close(NULL), 0);
}

static void
test_tcp_ipv6_and_errors(void)
{
	struct sl_sock *listener, *l2, *client, *server;
	char saddr[64];
	int port;

	listener = sl_sock_listen(SL_SOCK_TCP, "::1", 0, NULL);
	if (listener == NULL) {
		/* No IPv6 loopback in this container. */
		CU_PASS("no IPv6");
	} else {
		CU_ASSERT_EQUAL(
			sl_sock_getaddr(listener, saddr, sizeof(saddr), &port, NULL, 0, NULL), 0);
		CU_ASSERT_STRING_EQUAL(saddr, "::1");
		make_pair(SL_SOCK_TCP, "::1", port, listener, &client, &server);
		exchange(client, server);
		sl_sock_close(&client);
		sl_sock_close(&server);
		sl_sock_close(&listener);
	}

	/* A port in use: EADDRINUSE (and a message naming the address). */
	listener = sl_sock_listen(SL_SOCK_TCP, "127.0.0.1", 0, NULL);
	CU_ASSERT_FATAL(listener != NULL);
	sl_sock_getaddr(listener, saddr, sizeof(saddr), &port, NULL, 0, NULL);
	l2 = sl_sock_listen(SL_SOCK_TCP, "127.0.0.1", port, NULL);
	CU_ASSERT(l2 == NULL && errno == EADDRINUSE);
	sl_sock_close(&listener);

	CU_ASSERT(sl_sock_listen(SL_SOCK_TCP, "127.0.0.1", 70000, NULL) == NULL);
	CU_ASSERT(sl_sock_listen(SL_SOCK_TCP, "no.such.host.invalid", 0, NULL) == NULL);
	CU_ASSERT(sl_sock_connect(SL_SOCK_UNIX, "/nonexistent/x.sock", 0, NULL) == NULL);
}

struct captured {
	char line[512];
};

static void
capture_cb(enum sl_log_level level, const char *line, void *ctx)
{
	struct captured *cap = ctx;

	snprintf(cap->line, sizeof(cap->line), "%s", line);
}

static void
test_error_message_names_address(void)
{
	struct captured cap = {};
	struct sl_sock *listener, *l2;
	char saddr[64], expect[128];
	int port;

	listener = sl_sock_listen(SL_SOCK_TCP, "127.0.0.1", 0, NULL);
	CU_ASSERT_FATAL(listener != NULL);
	sl_sock_getaddr(listener, saddr, sizeof(saddr), &port, NULL, 0, NULL);
	sl_log_set_output(capture_cb, &cap);
	sl_log_set_print_level(SL_LOG_ERROR);
	l2 = sl_sock_listen(SL_SOCK_TCP, "127.0.0.1", port, NULL);
	sl_log_set_print_level(SL_LOG_DISABLED);
	sl_log_set_output(NULL, NULL);
	CU_ASSERT(l2 == NULL);
	snprintf(expect, sizeof(expect), "listen on 127.0.0.1:%d: Address already in use", port);
	CU_ASSERT(strstr(cap.line, expect) != NULL);
	sl_sock_close(&listener);
}

static void
test_unix(void)
{
	struct sl_sock *listener, *l2, *client, *server;
	char path[128], saddr[128];
	struct stat st;
	int port = -1;

	snprintf(path, sizeof(path), "%s/a.sock", g_dir);
	listener = sl_sock_listen(SL_SOCK_UNIX, path, 0, NULL);
	CU_ASSERT_FATAL(listener != NULL);
	CU_ASSERT(sl_sock_is_unix(listener));
	CU_ASSERT(stat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600);
	CU_ASSERT_EQUAL(sl_sock_getaddr(listener, saddr, sizeof(saddr), &port, NULL, 0, NULL), 0);
	CU_ASSERT_STRING_EQUAL(saddr, path);
	CU_ASSERT_EQUAL(port, 0);

	/* A live server's path is refused. */
	l2 = sl_sock_listen(SL_SOCK_UNIX, path, 0, NULL);
	CU_ASSERT(l2 == NULL && errno == EADDRINUSE);
	/* The liveness probe was a connection: the server sees it open and close. */
	server = accept_wait(listener);
	CU_ASSERT_FATAL(server != NULL);
	CU_ASSERT_EQUAL(recv_wait(server, saddr, sizeof(saddr)), 0);
	sl_sock_close(&server);

	make_pair(SL_SOCK_UNIX, path, 0, listener, &client, &server);
	exchange(client, server);
	sl_sock_close(&server);
	CU_ASSERT_EQUAL(recv_wait(client, saddr, sizeof(saddr)), 0);
	sl_sock_close(&client);

	/* Closing the listener removes its file. */
	sl_sock_close(&listener);
	CU_ASSERT(access(path, F_OK) != 0);
}

static void
test_unix_stale_and_not_socket(void)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct sl_sock *listener;
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/stale.sock", g_dir);
	CU_ASSERT_FATAL(strlen(path) < sizeof(sun.sun_path));
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	close(fd);
	/* The file is left behind, as after a crash: it is replaced. */
	CU_ASSERT(access(path, F_OK) == 0);
	listener = sl_sock_listen(SL_SOCK_UNIX, path, 0, NULL);
	CU_ASSERT(listener != NULL);
	sl_sock_close(&listener);

	/* A regular file is never removed. */
	snprintf(path, sizeof(path), "%s/regular", g_dir);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	close(fd);
	listener = sl_sock_listen(SL_SOCK_UNIX, path, 0, NULL);
	CU_ASSERT(listener == NULL && errno == EADDRINUSE);
	CU_ASSERT(access(path, F_OK) == 0);
	unlink(path);

	/* Too long a path. */
	memset(path, 'p', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	path[0] = '/';
	listener = sl_sock_listen(SL_SOCK_UNIX, path, 0, NULL);
	CU_ASSERT(listener == NULL && errno == ENAMETOOLONG);
}

/* ---- Poll groups --------------------------------------------------------------- */

struct group_ctx {
	struct sl_sock_group *group;
	struct sl_sock *socks[4];
	int calls[4];
	uint32_t last_events[4];
	/* What a callback does: close a sock (by index), or -1. */
	int close_on_event[4];
};

static void
group_cb(void *arg, struct sl_sock_group *group, struct sl_sock *sock, uint32_t events)
{
	struct group_ctx *ctx = sl_sock_group_get_ctx(group);
	int idx = (int)(intptr_t)arg;
	char buf[64];
	int victim;

	CU_ASSERT(ctx->socks[idx] == sock);
	ctx->calls[idx]++;
	ctx->last_events[idx] = events;
	sl_sock_recv(sock, buf, sizeof(buf));
	victim = ctx->close_on_event[idx];
	if (victim >= 0 && ctx->socks[victim] != NULL) {
		sl_sock_close(&ctx->socks[victim]);
	}
}

/* Four connected pairs over Unix; the server sides go in the group. */
static void
group_setup(struct group_ctx *ctx, struct sl_sock **listener, struct sl_sock *clients[4])
{
	char path[128];

	snprintf(path, sizeof(path), "%s/g.sock", g_dir);
	*listener = sl_sock_listen(SL_SOCK_UNIX, path, 0, NULL);
	CU_ASSERT_FATAL(*listener != NULL);
	ctx->group = sl_sock_group_create(ctx);
	CU_ASSERT_FATAL(ctx->group != NULL);
	for (int i = 0; i < 4; i++) {
		make_pair(SL_SOCK_UNIX, path, 0, *listener, &clients[i], &ctx->socks[i]);
		ctx->close_on_event[i] = -1;
		CU_ASSERT_EQUAL(sl_sock_group_add_sock(ctx->group, ctx->socks[i], EPOLLIN, group_cb,
						       (void *)(intptr_t)i),
				0);
	}
}

static void
group_teardown(struct group_ctx *ctx, struct sl_sock **listener, struct sl_sock *clients[4])
{
	CU_ASSERT_EQUAL(sl_sock_group_close(&ctx->group), -EBUSY);
	for (int i = 0; i < 4; i++) {
		sl_sock_close(&ctx->socks[i]);
		sl_sock_close(&clients[i]);
	}
	CU_ASSERT_EQUAL(sl_sock_group_close(&ctx->group), 0);
	CU_ASSERT(ctx->group == NULL);
	sl_sock_close(listener);
}

static void
test_group_callbacks(void)
{
	struct group_ctx ctx = {};
	struct sl_sock *listener, *clients[4];

	group_setup(&ctx, &listener, clients);
	CU_ASSERT_EQUAL(sl_sock_group_poll(ctx.group, 32), 0);
	sl_sock_send(clients[1], "a", 1);
	sl_sock_send(clients[3], "b", 1);
	CU_ASSERT_EQUAL(sl_sock_group_poll(ctx.group, 32), 2);
	CU_ASSERT(ctx.calls[0] == 0 && ctx.calls[1] == 1 && ctx.calls[2] == 0 && ctx.calls[3] == 1);
	CU_ASSERT(ctx.last_events[1] & EPOLLIN);
	/* Read: quiet again. */
	CU_ASSERT_EQUAL(sl_sock_group_poll(ctx.group, 32), 0);

	/* Writability on request. */
	CU_ASSERT_EQUAL(sl_sock_group_set_events(ctx.group, ctx.socks[2], EPOLLIN | EPOLLOUT), 0);
	CU_ASSERT_EQUAL(sl_sock_group_poll(ctx.group, 32), 1);
	CU_ASSERT(ctx.last_events[2] & EPOLLOUT);
	CU_ASSERT_EQUAL(sl_sock_group_set_events(ctx.group, ctx.socks[2], EPOLLIN), 0);

	/* A socket in a group cannot join another; removed, it is not reported. */
	CU_ASSERT_EQUAL(
		sl_sock_group_add_sock(ctx.group, ctx.socks[0], EPOLLIN, group_cb, (void *)0),
		-EBUSY);
	CU_ASSERT_EQUAL(sl_sock_group_remove_sock(ctx.group, ctx.socks[0]), 0);
	sl_sock_send(clients[0], "c", 1);
	CU_ASSERT_EQUAL(sl_sock_group_poll(ctx.group, 32), 0);
	CU_ASSERT_EQUAL(
		sl_sock_group_add_sock(ctx.group, ctx.socks[0], EPOLLIN, group_cb, (void *)0), 0);
	CU_ASSERT_EQUAL(sl_sock_group_poll(ctx.group, 32), 1);

	/* The peer hangs up: EPOLLHUP/EPOLLIN with EOF. */
	sl_sock_close(&clients[3]);
	CU_ASSERT_EQUAL(sl_sock_group_poll(ctx.group, 32), 1);
	CU_ASSERT(ctx.last_events[3] & (EPOLLHUP | EPOLLIN));
	group_teardown(&ctx, &listener, clients);
}

static void
test_group_close_in_callback(void)
{
	struct group_ctx ctx = {};
	struct sl_sock *listener, *clients[4];
	int total;

	group_setup(&ctx, &listener, clients);
	/* Every socket is ready: 0 and 1 close themselves, 2 and 3 close each other. */
	for (int i = 0; i < 4; i++) {
		sl_sock_send(clients[i], "x", 1);
	}
	ctx.close_on_event[0] = 0;
	ctx.close_on_event[1] = 1;
	ctx.close_on_event[2] = 3;
	ctx.close_on_event[3] = 2;
	/* Whatever the order of the batch, a closed socket is never called back. */
	total = sl_sock_group_poll(ctx.group, 32);
	CU_ASSERT(total >= 2 && total <= 3);
	CU_ASSERT(ctx.calls[2] + ctx.calls[3] == 1);
	CU_ASSERT(ctx.calls[0] == 1 && ctx.calls[1] == 1);
	CU_ASSERT(ctx.socks[0] == NULL && ctx.socks[1] == NULL);
	CU_ASSERT((ctx.socks[2] == NULL) != (ctx.socks[3] == NULL));
	group_teardown(&ctx, &listener, clients);
}

static struct sl_sock_group *g_self_close_group;

static void
self_close_cb(void *arg, struct sl_sock_group *group, struct sl_sock *sock, uint32_t events)
{
	struct sl_sock **psock = arg;

	/* Close our socket and then the now empty group, from inside its own poll. */
	sl_sock_close(psock);
	CU_ASSERT_EQUAL(sl_sock_group_close(&g_self_close_group), 0);
}

static void
test_group_on_thread(void)
{
	struct sl_sock *listener, *client, *server;
	struct sl_thread *thread;
	char path[128];
	int i;

	CU_ASSERT_FATAL(sl_thread_lib_init(NULL, 0) == 0);
	thread = sl_thread_create("socks", NULL);
	CU_ASSERT_FATAL(thread != NULL);
	sl_set_thread(thread);

	snprintf(path, sizeof(path), "%s/t.sock", g_dir);
	listener = sl_sock_listen(SL_SOCK_UNIX, path, 0, NULL);
	CU_ASSERT_FATAL(listener != NULL);
	make_pair(SL_SOCK_UNIX, path, 0, listener, &client, &server);
	g_self_close_group = sl_sock_group_create(NULL);
	CU_ASSERT_FATAL(g_self_close_group != NULL);
	CU_ASSERT_EQUAL(
		sl_sock_group_add_sock(g_self_close_group, server, EPOLLIN, self_close_cb, &server),
		0);
	/* Quiet: nothing runs. */
	for (i = 0; i < 100; i++) {
		sl_thread_poll(thread, 0, 0);
	}
	CU_ASSERT(server != NULL);
	/* The thread's fd poller notices the group and runs the callback. */
	sl_sock_send(client, "x", 1);
	for (i = 0; i < 100000 && server != NULL; i++) {
		sl_thread_poll(thread, 0, 0);
	}
	CU_ASSERT(server == NULL);
	CU_ASSERT(g_self_close_group == NULL);
	sl_sock_close(&client);
	sl_sock_close(&listener);

	CU_ASSERT(sl_ut_thread_end(thread) == 0);
	sl_thread_lib_fini();
}

int
main(void)
{
	CU_pSuite suite;
	int rc;

	snprintf(g_dir, sizeof(g_dir), "/tmp/sl_sock_ut.XXXXXX");
	if (mkdtemp(g_dir) == NULL) {
		return 1;
	}
	sl_log_set_print_level(SL_LOG_DISABLED);
	suite = sl_ut_suite("sock", NULL, NULL);
	CU_add_test(suite, "tcp", test_tcp);
	CU_add_test(suite, "tcp_ipv6_and_errors", test_tcp_ipv6_and_errors);
	CU_add_test(suite, "error_message_names_address", test_error_message_names_address);
	CU_add_test(suite, "unix", test_unix);
	CU_add_test(suite, "unix_stale_and_not_socket", test_unix_stale_and_not_socket);
	CU_add_test(suite, "group_callbacks", test_group_callbacks);
	CU_add_test(suite, "group_close_in_callback", test_group_close_in_callback);
	CU_add_test(suite, "group_on_thread", test_group_on_thread);
	rc = sl_ut_run();
	rmdir(g_dir);
	return rc;
}
