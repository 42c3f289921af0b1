/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * The JSON-RPC server over a real Unix socket in a temporary directory. The app
 * thread is polled by hand (sl_thread_poll) while a raw client, in the same OS
 * thread, sends and reads with non-blocking I/O in between.
 */

#include <CUnit/Basic.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "sl_ut.h"
#include "sluice/log.h"
#include "sluice/rpc.h"
#include "sluice/thread.h"
#include "sluice/util.h"
#include "env/rpc_internal.h"

#define CLIENT_TIMEOUT_MS 5000

static struct sl_thread *g_thread;
static char g_dir[64];
static char g_path[128];

/* ---- Test methods -------------------------------------------------------------- */

static void
rpc_test_echo(struct sl_jsonrpc_request *req, const json_t *params)
{
	sl_jsonrpc_send_result(req, params != NULL ? json_deep_copy(params) : json_null());
}
SL_RPC_REGISTER("test_echo", rpc_test_echo, SL_RPC_STARTUP | SL_RPC_RUNTIME)

struct test_decode_params {
	char *name;
	uint32_t num_blocks;
	bool flag;
};

static const struct sl_json_object_decoder g_test_decoders[] = {
	{"name", offsetof(struct test_decode_params, name), sl_json_decode_string, false},
	{"num_blocks", offsetof(struct test_decode_params, num_blocks), sl_json_decode_uint32,
	 false},
	{"flag", offsetof(struct test_decode_params, flag), sl_json_decode_bool, true},
};

static void
rpc_test_decode(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct test_decode_params p = {};

	/* As most handlers do: a failed decode leaves nothing to free (LSan checks). */
	if (sl_rpc_decode_params(req, params, g_test_decoders, SL_COUNTOF(g_test_decoders), &p) !=
	    0) {
		return;
	}
	sl_jsonrpc_send_result(req, json_string(p.name));
	free(p.name);
}
SL_RPC_REGISTER("test_decode", rpc_test_decode, SL_RPC_STARTUP | SL_RPC_RUNTIME)

static void
rpc_test_errno(struct sl_jsonrpc_request *req, const json_t *params)
{
	sl_jsonrpc_send_errno(req, -ENODEV, "bdev %s", "Nope0");
}
SL_RPC_REGISTER("test_errno", rpc_test_errno, SL_RPC_STARTUP | SL_RPC_RUNTIME)

static void
rpc_test_runtime(struct sl_jsonrpc_request *req, const json_t *params)
{
	sl_jsonrpc_send_bool(req, true);
}
SL_RPC_REGISTER("test_runtime", rpc_test_runtime, SL_RPC_RUNTIME)
SL_RPC_REGISTER_ALIAS("test_runtime_old", "test_runtime", rpc_test_runtime, SL_RPC_RUNTIME)

static struct sl_jsonrpc_request *g_async_req;
static int g_async_calls;

static void
rpc_test_async(struct sl_jsonrpc_request *req, const json_t *params)
{
	CU_ASSERT(g_async_req == NULL);
	g_async_req = req;
	g_async_calls++;
}
SL_RPC_REGISTER("test_async", rpc_test_async, SL_RPC_STARTUP | SL_RPC_RUNTIME)

static void
rpc_test_big(struct sl_jsonrpc_request *req, const json_t *params)
{
	size_t len = 256 * 1024;
	char *s = malloc(len + 1);

	memset(s, 'x', len);
	s[len] = '\0';
	sl_jsonrpc_send_result(req, json_string(s));
	free(s);
}
SL_RPC_REGISTER("test_big", rpc_test_big, SL_RPC_STARTUP | SL_RPC_RUNTIME)

static void
rpc_test_stop(struct sl_jsonrpc_request *req, const json_t *params)
{
	sl_rpc_server_stop();
	sl_jsonrpc_send_bool(req, true);
}
SL_RPC_REGISTER("test_stop", rpc_test_stop, SL_RPC_STARTUP | SL_RPC_RUNTIME)

/* ---- A raw client -------------------------------------------------------------- */

struct client {
	int fd;
	char buf[1 << 21];
	size_t len;
	bool eof;
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Poll the app thread for about rounds * 20 us: fd pollers are looked at on a timer. */
static void
poll_app(int rounds)
{
	for (int i = 0; i < rounds; i++) {
		sl_thread_poll(g_thread, 0, 0);
		usleep(20);
	}
}

static void
set_sun_path(struct sockaddr_un *sun, const char *path)
{
	CU_ASSERT_FATAL(strlen(path) < sizeof(sun->sun_path));
	memcpy(sun->sun_path, path, strlen(path) + 1);
}

static struct client *
client_connect(void)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct client *c = calloc(1, sizeof(*c));

	set_sun_path(&sun, g_path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CU_ASSERT_FATAL(c->fd >= 0);
	CU_ASSERT_FATAL(connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	poll_app(20);
	return c;
}

static void
client_close(struct client *c)
{
	close(c->fd);
	free(c);
}

static void
client_send(struct client *c, const char *text)
{
	size_t len = strlen(text);

	CU_ASSERT_FATAL(send(c->fd, text, len, MSG_NOSIGNAL) == (ssize_t)len);
}

/* Poll the app thread and read until a whole line (one response) is in, or EOF. */
static json_t *
client_recv(struct client *c)
{
	uint64_t deadline = now_ms() + CLIENT_TIMEOUT_MS;
	json_error_t jerr;

	while (now_ms() < deadline) {
		char *nl = memchr(c->buf, '\n', c->len);

		if (nl != NULL) {
			size_t linelen = (size_t)(nl - c->buf) + 1;
			json_t *resp = json_loadb(c->buf, linelen - 1, 0, &jerr);

			CU_ASSERT(resp != NULL);
			memmove(c->buf, c->buf + linelen, c->len - linelen);
			c->len -= linelen;
			return resp;
		}
		if (c->eof) {
			return NULL;
		}
		sl_thread_poll(g_thread, 0, 0);
		ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, MSG_DONTWAIT);
		if (n == 0) {
			c->eof = true;
		} else if (n < 0 && errno != EAGAIN) {
			c->eof = true;
		} else if (n > 0) {
			c->len += (size_t)n;
		}
	}
	return NULL;
}

/* \return whether the server closed the connection (EOF) within the timeout. */
static bool
client_wait_eof(struct client *c)
{
	json_t *extra = client_recv(c);

	CU_ASSERT(extra == NULL);
	json_decref(extra);
	return c->eof;
}

static json_t *
client_call(struct client *c, const char *text)
{
	client_send(c, text);
	return client_recv(c);
}

static int
resp_error_code(const json_t *resp)
{
	return (int)json_integer_value(json_object_get(json_object_get(resp, "error"), "code"));
}

static const char *
resp_error_msg(const json_t *resp)
{
	return json_string_value(json_object_get(json_object_get(resp, "error"), "message"));
}

static void
check_error(const char *request, int code, const char *msg_part)
{
	struct client *c = client_connect();
	json_t *resp = client_call(c, request);

	CU_ASSERT_FATAL(resp != NULL);
	CU_ASSERT_EQUAL(resp_error_code(resp), code);
	CU_ASSERT(resp_error_msg(resp) != NULL && strstr(resp_error_msg(resp), msg_part) != NULL);
	if (resp_error_msg(resp) == NULL || strstr(resp_error_msg(resp), msg_part) == NULL) {
		fprintf(stderr, "\n%s -> %s\n", request, json_dumps(resp, 0));
	}
	json_decref(resp);
	client_close(c);
}

/* ---- Setup --------------------------------------------------------------------- */

static int
suite_init(void)
{
	if (sl_thread_lib_init(NULL, 0) != 0) {
		return -1;
	}
	g_thread = sl_thread_create("app", NULL);
	if (g_thread == NULL) {
		return -1;
	}
	sl_set_thread(g_thread);
	snprintf(g_dir, sizeof(g_dir), "/tmp/sl_rpc_ut.XXXXXX");
	if (mkdtemp(g_dir) == NULL) {
		return -1;
	}
	snprintf(g_path, sizeof(g_path), "%s/rpc.sock", g_dir);
	sl_rpc_set_state(SL_RPC_RUNTIME);
	return sl_rpc_server_start(g_path) == 0 ? 0 : -1;
}

static int
suite_fini(void)
{
	sl_rpc_server_stop();
	rmdir(g_dir);
	if (sl_ut_thread_end(g_thread) != 0) {
		return -1;
	}
	sl_thread_lib_fini();
	return 0;
}

/* ---- Tests --------------------------------------------------------------------- */

static void
test_basic(void)
{
	struct stat st;
	struct client *c;
	json_t *resp;

	CU_ASSERT_STRING_EQUAL(sl_rpc_server_path(), g_path);
	CU_ASSERT(stat(g_path, &st) == 0 && (st.st_mode & 0777) == 0600);
	CU_ASSERT_EQUAL(sl_rpc_server_start(g_path), -EALREADY);

	c = client_connect();
	resp = client_call(c, "{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\",\"id\":1,"
			      "\"params\":{\"a\":[1,2]}}");
	CU_ASSERT_FATAL(resp != NULL);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(resp, "jsonrpc")), "2.0");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(resp, "id")), 1);
	CU_ASSERT_EQUAL(json_integer_value(json_array_get(
				json_object_get(json_object_get(resp, "result"), "a"), 1)),
			2);
	CU_ASSERT(json_object_get(resp, "error") == NULL);
	json_decref(resp);

	/* A string id and absent params. */
	resp = client_call(c, "{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\",\"id\":\"x\"}\n");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(resp, "id")), "x");
	CU_ASSERT(json_is_null(json_object_get(resp, "result")));
	json_decref(resp);
	CU_ASSERT_EQUAL(rpc_server_conn_count(), 1);
	client_close(c);
	poll_app(50);
	CU_ASSERT_EQUAL(rpc_server_conn_count(), 0);
}

static void
test_fragments(void)
{
	const char *req = "{\"jsonrpc\": \"2.0\", \"method\": \"test_echo\", \"id\": 7, "
			  "\"params\": {\"s\": \"a}b]\\\"c{\"}}";
	struct client *c = client_connect();
	json_t *resp;

	/* One byte at a time, with the server polled in between. */
	for (size_t i = 0; req[i] != '\0'; i++) {
		CU_ASSERT(send(c->fd, &req[i], 1, MSG_NOSIGNAL) == 1);
		poll_app(2);
	}
	resp = client_recv(c);
	CU_ASSERT_FATAL(resp != NULL);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(resp, "id")), 7);
	CU_ASSERT_STRING_EQUAL(
		json_string_value(json_object_get(json_object_get(resp, "result"), "s")),
		"a}b]\"c{");
	json_decref(resp);
	client_close(c);
}

static void
test_pipelined(void)
{
	struct client *c = client_connect();
	json_t *resp;

	/* Three requests in one write: no separator, a space, a newline. */
	client_send(c, "{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\",\"id\":1}"
		       "{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\",\"id\":2} "
		       "{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\",\"id\":3}\n");
	for (int id = 1; id <= 3; id++) {
		resp = client_recv(c);
		CU_ASSERT_FATAL(resp != NULL);
		CU_ASSERT_EQUAL(json_integer_value(json_object_get(resp, "id")), id);
		json_decref(resp);
	}
	client_close(c);
}

static void
test_errors(void)
{
	check_error("{\"jsonrpc\":\"2.0\",\"method\":\"nope\",\"id\":1}", -32601, "nope");
	check_error("{\"method\":\"test_echo\",\"id\":1}", -32600, "jsonrpc");
	check_error("{\"jsonrpc\":\"1.0\",\"method\":\"test_echo\",\"id\":1}", -32600, "jsonrpc");
	check_error("{\"jsonrpc\":\"2.0\",\"method\":5,\"id\":1}", -32600, "method");
	check_error("{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\",\"id\":{}}", -32600, "id");
	check_error("{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\",\"id\":1,\"params\":3}", -32600,
		    "params");
	check_error("5 ", -32600, "object");
	check_error("{\"jsonrpc\":\"2.0\",\"method\":\"test_decode\",\"id\":1,"
		    "\"params\":{\"name\":\"m\",\"num_blocks\":-5}}",
		    -32602,
		    "test_decode: 'num_blocks' must be an integer in [0, 4294967295], got -5");
	check_error("{\"jsonrpc\":\"2.0\",\"method\":\"test_decode\",\"id\":1,"
		    "\"params\":{\"name\":\"m\",\"num_blocks\":1,\"foo\":1}}",
		    -32602, "unknown parameter 'foo'");
	check_error("{\"jsonrpc\":\"2.0\",\"method\":\"test_decode\",\"id\":1,"
		    "\"params\":{\"num_blocks\":1}}",
		    -32602, "missing parameter 'name'");
	check_error("{\"jsonrpc\":\"2.0\",\"method\":\"test_decode\",\"id\":1}", -32602,
		    "missing parameter 'name'");
	check_error("{\"jsonrpc\":\"2.0\",\"method\":\"test_errno\",\"id\":1}", -ENODEV,
		    "bdev Nope0: No such device");
}

static void
test_parse_error_closes(void)
{
	struct client *c = client_connect();
	json_t *resp;

	resp = client_call(c, "{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\",\"id\":1}{\"a\":tru}");
	CU_ASSERT_FATAL(resp != NULL);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(resp, "id")), 1);
	json_decref(resp);
	resp = client_recv(c);
	CU_ASSERT_FATAL(resp != NULL);
	CU_ASSERT_EQUAL(resp_error_code(resp), -32700);
	CU_ASSERT(json_is_null(json_object_get(resp, "id")));
	json_decref(resp);
	CU_ASSERT(client_wait_eof(c));
	client_close(c);
	poll_app(10);
	CU_ASSERT_EQUAL(rpc_server_conn_count(), 0);
}

static void
test_batch(void)
{
	struct client *c = client_connect();
	json_t *resp, *r;
	size_t i;
	int seen = 0;

	resp = client_call(c, "[{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\",\"id\":1},"
			      "{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\"},"
			      "1,"
			      "{\"jsonrpc\":\"2.0\",\"method\":\"nope\",\"id\":\"n\"}]");
	CU_ASSERT_FATAL(json_is_array(resp));
	CU_ASSERT_EQUAL(json_array_size(resp), 3);
	json_array_foreach (resp, i, r) {
		const json_t *id = json_object_get(r, "id");

		if (json_is_integer(id)) {
			CU_ASSERT(json_object_get(r, "result") != NULL);
			seen |= 1;
		} else if (json_is_null(id)) {
			CU_ASSERT_EQUAL(resp_error_code(r), -32600);
			seen |= 2;
		} else {
			CU_ASSERT_EQUAL(resp_error_code(r), -32601);
			seen |= 4;
		}
	}
	CU_ASSERT_EQUAL(seen, 7);
	json_decref(resp);

	/* An empty batch: one Invalid Request object, not an array. */
	resp = client_call(c, "[]");
	CU_ASSERT(json_is_object(resp));
	CU_ASSERT_EQUAL(resp_error_code(resp), -32600);
	json_decref(resp);

	/* A batch of notifications gets nothing: the next answer is the next request's. */
	client_send(c, "[{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\"},"
		       "{\"jsonrpc\":\"2.0\",\"method\":\"nope\"}]");
	resp = client_call(c, "{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\",\"id\":9}");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(resp, "id")), 9);
	json_decref(resp);
	client_close(c);
}

static void
test_notification(void)
{
	struct client *c = client_connect();
	json_t *resp;

	client_send(c, "{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\",\"params\":[1]}");
	client_send(c, "{\"jsonrpc\":\"2.0\",\"method\":\"nope\"}");
	resp = client_call(c, "{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\",\"id\":null}");
	CU_ASSERT_FATAL(resp != NULL);
	CU_ASSERT(json_is_null(json_object_get(resp, "id")));
	CU_ASSERT(json_object_get(resp, "result") != NULL);
	json_decref(resp);
	client_close(c);
}

static void
test_async(void)
{
	struct client *c = client_connect();
	json_t *resp;

	client_send(c, "{\"jsonrpc\":\"2.0\",\"method\":\"test_async\",\"id\":42}");
	poll_app(50);
	CU_ASSERT_FATAL(g_async_req != NULL);
	/* Other requests are served meanwhile. */
	resp = client_call(c, "{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\",\"id\":1}");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(resp, "id")), 1);
	json_decref(resp);

	sl_jsonrpc_send_result(g_async_req, json_string("done"));
	g_async_req = NULL;
	resp = client_recv(c);
	CU_ASSERT_FATAL(resp != NULL);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(resp, "id")), 42);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(resp, "result")), "done");
	json_decref(resp);
	client_close(c);
}

static void *
answer_thread(void *arg)
{
	sl_jsonrpc_send_result(arg, json_string("elsewhere"));
	return NULL;
}

static void
test_async_other_thread(void)
{
	struct client *c = client_connect();
	pthread_t tid;
	json_t *resp;

	client_send(c, "{\"jsonrpc\":\"2.0\",\"method\":\"test_async\",\"id\":43}");
	poll_app(50);
	CU_ASSERT_FATAL(g_async_req != NULL);
	/* An answer given on another OS thread is moved to the app thread. */
	pthread_create(&tid, NULL, answer_thread, g_async_req);
	pthread_join(tid, NULL);
	g_async_req = NULL;
	resp = client_recv(c);
	CU_ASSERT_FATAL(resp != NULL);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(resp, "result")), "elsewhere");
	json_decref(resp);
	client_close(c);
}

static void
test_disconnect_before_answer(void)
{
	struct client *c = client_connect();

	client_send(c, "{\"jsonrpc\":\"2.0\",\"method\":\"test_async\",\"id\":1}");
	poll_app(50);
	CU_ASSERT_FATAL(g_async_req != NULL);
	client_close(c);
	poll_app(50);
	CU_ASSERT_EQUAL(rpc_server_conn_count(), 0);
	/* The orphaned request's answer is dropped; ASan checks nothing leaks. */
	sl_jsonrpc_send_result(g_async_req, json_string("lost"));
	g_async_req = NULL;
	poll_app(10);

	/* Answered before the server has noticed the hang-up: the send fails (EPIPE). */
	c = client_connect();
	client_send(c, "{\"jsonrpc\":\"2.0\",\"method\":\"test_async\",\"id\":1}");
	poll_app(50);
	CU_ASSERT_FATAL(g_async_req != NULL);
	client_close(c);
	sl_jsonrpc_send_result(g_async_req, json_string("lost"));
	g_async_req = NULL;
	poll_app(50);
	CU_ASSERT_EQUAL(rpc_server_conn_count(), 0);

	/* Disconnect in the middle of a request. */
	c = client_connect();
	client_send(c, "{\"jsonrpc\":\"2.0\",\"meth");
	poll_app(10);
	client_close(c);
	poll_app(50);
	CU_ASSERT_EQUAL(rpc_server_conn_count(), 0);

	/* Disconnect right after a request whose answer is immediate. */
	c = client_connect();
	client_send(c, "{\"jsonrpc\":\"2.0\",\"method\":\"test_big\",\"id\":1}");
	client_close(c);
	poll_app(50);
	CU_ASSERT_EQUAL(rpc_server_conn_count(), 0);
}

static void
test_half_close(void)
{
	struct client *c = client_connect();
	json_t *resp;

	/* Like `socat` or `nc -N`: send, shut down the write side, read the answer. */
	client_send(c, "{\"jsonrpc\":\"2.0\",\"method\":\"test_async\",\"id\":5}");
	shutdown(c->fd, SHUT_WR);
	poll_app(50);
	CU_ASSERT_FATAL(g_async_req != NULL);
	CU_ASSERT_EQUAL(rpc_server_conn_count(), 1);
	sl_jsonrpc_send_result(g_async_req, NULL);
	g_async_req = NULL;
	resp = client_recv(c);
	CU_ASSERT_FATAL(resp != NULL);
	CU_ASSERT(json_is_true(json_object_get(resp, "result")));
	json_decref(resp);
	CU_ASSERT(client_wait_eof(c));
	client_close(c);
	poll_app(10);
	CU_ASSERT_EQUAL(rpc_server_conn_count(), 0);
}

static void
test_too_big(void)
{
	size_t saved = g_rpc_max_request_size;
	struct client *c = client_connect();
	char req[8192];
	json_t *resp;

	g_rpc_max_request_size = 4096;
	snprintf(req, sizeof(req),
		 "{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\",\"id\":1,"
		 "\"params\":[\"");
	memset(req + strlen(req), 'a', 6000);
	req[sizeof(req) - 1] = '\0';
	resp = client_call(c, req);
	CU_ASSERT_FATAL(resp != NULL);
	CU_ASSERT_EQUAL(resp_error_code(resp), -32600);
	CU_ASSERT(strstr(resp_error_msg(resp), "4096") != NULL);
	json_decref(resp);
	CU_ASSERT(client_wait_eof(c));
	client_close(c);
	g_rpc_max_request_size = saved;
}

/* Nesting deep enough to overflow a recursive parser's stack is refused, not fatal. */
static void
test_deep_nesting(void)
{
	size_t depth = 1000000, i;
	const char *head = "{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\",\"id\":1,\"params\":";
	size_t hlen = strlen(head);
	char *req = malloc(hlen + 2 * depth + 2);
	struct rpc_conn *conn;

	CU_ASSERT_FATAL(req != NULL);
	/* A whole value: jansson stops at its depth limit (2048). */
	memcpy(req, head, hlen);
	for (i = 0; i < depth; i++) {
		req[hlen + i] = '[';
		req[hlen + depth + i] = ']';
	}
	req[hlen + 2 * depth] = '}';
	conn = rpc_conn_alloc(NULL);
	CU_ASSERT_FATAL(conn != NULL);
	CU_ASSERT(rpc_conn_feed(conn, req, hlen + 2 * depth + 1) == -ECONNRESET);
	rpc_conn_destroy(conn);
	/* Within the limit, the echo handler copies and serialises it. */
	depth = 2000;
	for (i = 0; i < depth; i++) {
		req[hlen + i] = '[';
		req[hlen + depth + i] = ']';
	}
	req[hlen + 2 * depth] = '}';
	conn = rpc_conn_alloc(NULL);
	CU_ASSERT_FATAL(conn != NULL);
	CU_ASSERT(rpc_conn_feed(conn, req, hlen + 2 * depth + 1) == 0);
	rpc_conn_destroy(conn);
	free(req);
}

static void
test_state(void)
{
	json_t *resp;
	struct client *c;

	sl_rpc_set_state(SL_RPC_STARTUP);
	check_error("{\"jsonrpc\":\"2.0\",\"method\":\"test_runtime\",\"id\":1}",
		    SL_JSONRPC_ERROR_INVALID_STATE,
		    "method test_runtime is not allowed in state startup");
	sl_rpc_set_state(SL_RPC_RUNTIME);
	c = client_connect();
	resp = client_call(c, "{\"jsonrpc\":\"2.0\",\"method\":\"test_runtime_old\",\"id\":1}");
	CU_ASSERT(json_is_true(json_object_get(resp, "result")));
	json_decref(resp);
	client_close(c);
	CU_ASSERT(sl_rpc_find_method("test_runtime") != NULL);
	CU_ASSERT(sl_rpc_find_method("nope") == NULL);
}

static void
test_slow_reader(void)
{
	struct client *c = client_connect();
	json_t *resp;
	int n = 24;

	/* ~6 MiB of answers that the client does not read at first: they queue. */
	for (int i = 0; i < n; i++) {
		client_send(c, "{\"jsonrpc\":\"2.0\",\"method\":\"test_big\",\"id\":1}");
	}
	poll_app(200);
	for (int i = 0; i < n; i++) {
		resp = client_recv(c);
		CU_ASSERT_FATAL(resp != NULL);
		CU_ASSERT_EQUAL(json_string_length(json_object_get(resp, "result")), 256 * 1024);
		json_decref(resp);
	}
	client_close(c);
}

static void
test_many_clients(void)
{
	struct client *c[8];
	char req[128];
	json_t *resp;

	for (int i = 0; i < 8; i++) {
		c[i] = client_connect();
	}
	CU_ASSERT_EQUAL(rpc_server_conn_count(), 8);
	for (int i = 7; i >= 0; i--) {
		snprintf(req, sizeof(req),
			 "{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\",\"id\":%d}", i);
		client_send(c[i], req);
	}
	for (int i = 0; i < 8; i++) {
		resp = client_recv(c[i]);
		CU_ASSERT_EQUAL(json_integer_value(json_object_get(resp, "id")), i);
		json_decref(resp);
		client_close(c[i]);
	}
}

static json_t *g_local_resp;
static int g_local_calls;

static void
local_cb(void *ctx, json_t *response)
{
	g_local_calls++;
	json_decref(g_local_resp);
	g_local_resp = json_incref(response);
}

static void
test_call_local(void)
{
	json_t *req;

	req = json_pack("{s:s, s:s, s:i, s:{s:s, s:i}}", "jsonrpc", "2.0", "method", "test_decode",
			"id", 3, "params", "name", "Malloc0", "num_blocks", 8);
	sl_rpc_call_local(req, local_cb, NULL);
	json_decref(req);
	CU_ASSERT_EQUAL(g_local_calls, 1);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(g_local_resp, "result")),
			       "Malloc0");

	/* A notification: the callback still runs, with NULL. */
	req = json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method", "test_echo");
	sl_rpc_call_local(req, local_cb, NULL);
	json_decref(req);
	CU_ASSERT_EQUAL(g_local_calls, 2);
	CU_ASSERT(g_local_resp == NULL);

	/* Asynchronous: the callback runs when the handler answers. */
	req = json_pack("{s:s, s:s, s:i}", "jsonrpc", "2.0", "method", "test_async", "id", 4);
	sl_rpc_call_local(req, local_cb, NULL);
	json_decref(req);
	CU_ASSERT_EQUAL(g_local_calls, 2);
	sl_jsonrpc_send_error(g_async_req, -EIO, "failed: %d", 5);
	g_async_req = NULL;
	CU_ASSERT_EQUAL(g_local_calls, 3);
	CU_ASSERT_EQUAL(resp_error_code(g_local_resp), -EIO);
	CU_ASSERT_STRING_EQUAL(resp_error_msg(g_local_resp), "failed: 5");
	json_decref(g_local_resp);
	g_local_resp = NULL;
}

static void
test_stop_in_handler(void)
{
	struct client *c = client_connect();

	client_send(c, "{\"jsonrpc\":\"2.0\",\"method\":\"test_stop\",\"id\":1}"
		       "{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\",\"id\":2}");
	CU_ASSERT(client_wait_eof(c));
	client_close(c);
	CU_ASSERT(sl_rpc_server_path() == NULL);
	CU_ASSERT(access(g_path, F_OK) != 0);
	CU_ASSERT_EQUAL(rpc_server_conn_count(), 0);
	/* And it starts again on the same path. */
	CU_ASSERT_EQUAL(sl_rpc_server_start(g_path), 0);
}

static void
test_stale_socket(void)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	char path[160];
	int fd;

	/* A socket file nobody listens on, as a crashed server leaves. */
	snprintf(path, sizeof(path), "%s/stale.sock", g_dir);
	set_sun_path(&sun, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	close(fd);
	sl_rpc_server_stop();
	CU_ASSERT_EQUAL(sl_rpc_server_start(path), 0);
	sl_rpc_server_stop();
	CU_ASSERT(access(path, F_OK) != 0);
	CU_ASSERT_EQUAL(sl_rpc_server_start(g_path), 0);
}

int
main(void)
{
	CU_pSuite suite;

	sl_log_set_print_level(SL_LOG_WARN);
	suite = sl_ut_suite("rpc_server", suite_init, suite_fini);
	CU_add_test(suite, "basic", test_basic);
	CU_add_test(suite, "fragments", test_fragments);
	CU_add_test(suite, "pipelined", test_pipelined);
	CU_add_test(suite, "errors", test_errors);
	CU_add_test(suite, "parse_error_closes", test_parse_error_closes);
	CU_add_test(suite, "batch", test_batch);
	CU_add_test(suite, "notification", test_notification);
	CU_add_test(suite, "async", test_async);
	CU_add_test(suite, "async_other_thread", test_async_other_thread);
	CU_add_test(suite, "disconnect_before_answer", test_disconnect_before_answer);
	CU_add_test(suite, "half_close", test_half_close);
	CU_add_test(suite, "too_big", test_too_big);
	CU_add_test(suite, "deep_nesting", test_deep_nesting);
	CU_add_test(suite, "state", test_state);
	CU_add_test(suite, "slow_reader", test_slow_reader);
	CU_add_test(suite, "many_clients", test_many_clients);
	CU_add_test(suite, "call_local", test_call_local);
	CU_add_test(suite, "stop_in_handler", test_stop_in_handler);
	CU_add_test(suite, "stale_socket", test_stale_socket);
	return sl_ut_run();
}
