/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * The JSON-RPC 2.0 server: method registry, a Unix-socket listener served on the app
 * thread, request framing, dispatch and responses.
 *
 * Framing. SPDK's rpc.py sends one bare JSON object with no newline and waits for the
 * answer, so requests are delimited by JSON syntax alone: a stream of concatenated
 * values, whitespace optional. A small structural scanner (strings, escapes, bracket
 * depth) finds where each value ends, keeping its state across reads so a request
 * that arrives in pieces is scanned once, not reparsed on every read; jansson then
 * parses exactly that span and does all the validation.
 *
 * Ownership. Each top-level value (a request or a batch) gets a sink, which collects
 * its responses and knows where they go: a connection, a local callback, or nowhere
 * once the connection has closed (an orphan: the handler still answers, and the
 * answer is dropped). A request points at its sink; the sink lives until its last
 * request has answered. Connections never wait for their handlers, so a client that
 * disconnects costs nothing but the dropped answers.
 */

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/queue.h>

#include "sluice/log.h"
#include "sluice/rpc.h"
#include "sluice/sock.h"
#include "sluice/thread.h"
#include "sluice/util.h"
#include "rpc_internal.h"

SL_LOG_REGISTER_COMPONENT(rpc)

#define RPC_READ_CHUNK (64 * 1024)
/* Reads per readiness callback, so one chatty client cannot starve the others. */
#define RPC_READS_PER_EVENT  16
#define RPC_ACCEPTS_PER_POLL 16
#define RPC_LOG_TEXT_MAX     512

size_t g_rpc_max_request_size = 32 * 1024 * 1024;
size_t g_rpc_out_high_watermark = 4 * 1024 * 1024;

struct rpc_buf {
	char *data;
	size_t head; /* first unconsumed byte */
	size_t len;  /* end of valid data */
	size_t cap;
};

/* Where the scanner is inside the value that starts at the buffer's head. */
struct rpc_scan {
	size_t pos;
	int depth;
	bool started;
	bool in_string;
	bool escape;
	bool scalar;
};

struct rpc_sink {
	struct rpc_conn *conn; /* NULL for local calls and orphans */
	sl_rpc_local_cb local_cb;
	void *local_ctx;
	bool is_batch;
	json_t *response; /* the single response, or the batch's array */
	size_t outstanding;
	TAILQ_ENTRY(rpc_sink) link; /* conn->sinks */
};

struct sl_jsonrpc_request {
	struct rpc_sink *sink;
	json_t *id; /* NULL for a notification */
	char *method;
};

struct rpc_conn {
	struct sl_sock *sock;
	struct rpc_buf in;
	struct rpc_buf out;
	struct rpc_scan scan;
	TAILQ_HEAD(, rpc_sink) sinks;
	/* Inside a callback of ours that uses the conn afterwards: defer the free. */
	int busy;
	bool closed;
	/* No more requests: EOF, or the stream is broken. Close once answers are out. */
	bool rx_done;
	bool in_server;
	TAILQ_ENTRY(rpc_conn) link;
};

static struct {
	struct sl_sock *listener;
	struct sl_poller *accept_poller;
	struct sl_sock_group *group;
	char *path;
	TAILQ_HEAD(, rpc_conn) conns;
	size_t nconns;
} g_rpc_server = {.conns = TAILQ_HEAD_INITIALIZER(g_rpc_server.conns)};

static struct sl_rpc_method *g_rpc_methods;
static uint32_t g_rpc_state = SL_RPC_STARTUP;

/* ---- Registry ------------------------------------------------------------------ */

void
sl_rpc_register_method(struct sl_rpc_method *method)
{
	struct sl_rpc_method **pos;

	/* Sorted by name, so rpc_get_methods lists them in a stable order. */
	for (pos = &g_rpc_methods; *pos != NULL; pos = &(*pos)->next) {
		int cmp = strcmp((*pos)->name, method->name);

		if (cmp == 0) {
			fprintf(stderr, "sluice: RPC method '%s' registered twice\n", method->name);
			abort();
		}
		if (cmp > 0) {
			break;
		}
	}
	method->next = *pos;
	*pos = method;
}

const struct sl_rpc_method *
sl_rpc_get_methods(void)
{
	return g_rpc_methods;
}

static struct sl_rpc_method *
rpc_find_method(const char *name)
{
	struct sl_rpc_method *m;

	for (m = g_rpc_methods; m != NULL; m = m->next) {
		if (strcmp(m->name, name) == 0) {
			return m;
		}
	}
	return NULL;
}

const struct sl_rpc_method *
sl_rpc_find_method(const char *name)
{
	return name != NULL ? rpc_find_method(name) : NULL;
}

void
sl_rpc_set_state(uint32_t state)
{
	g_rpc_state = state;
}

uint32_t
sl_rpc_get_state(void)
{
	return g_rpc_state;
}

static const char *
rpc_state_name(uint32_t state)
{
	switch (state) {
	case SL_RPC_STARTUP:
		return "startup";
	case SL_RPC_RUNTIME:
		return "runtime";
	default:
		return "unknown";
	}
}

/* ---- Byte buffers -------------------------------------------------------------- */

static int
rpc_buf_reserve(struct rpc_buf *buf, size_t room)
{
	size_t cap;
	char *data;

	if (buf->head > 0 && (buf->head == buf->len || buf->cap - buf->len < room)) {
		memmove(buf->data, buf->data + buf->head, buf->len - buf->head);
		buf->len -= buf->head;
		buf->head = 0;
	}
	if (buf->cap - buf->len >= room) {
		return 0;
	}
	cap = SL_MAX(buf->cap * 2, buf->len + room);
	data = realloc(buf->data, cap);
	if (data == NULL) {
		return -ENOMEM;
	}
	buf->data = data;
	buf->cap = cap;
	return 0;
}

static void
rpc_buf_free(struct rpc_buf *buf)
{
	free(buf->data);
	memset(buf, 0, sizeof(*buf));
}

static size_t
rpc_buf_pending(const struct rpc_buf *buf)
{
	return buf->len - buf->head;
}

/* ---- Framing ------------------------------------------------------------------- */

static bool
rpc_is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool
rpc_ends_scalar(char c)
{
	return rpc_is_ws(c) || c == '{' || c == '}' || c == '[' || c == ']' || c == '"' ||
	       c == ',' || c == ':';
}

/*
 * Scan on from where the last call stopped.
 * \return the length of the first complete value in buf (leading whitespace included),
 * or 0 if it is not complete yet. Ill-formed input also ends a value: jansson rejects it.
 */
static size_t
rpc_scan_value(struct rpc_scan *s, const char *buf, size_t len)
{
	for (; s->pos < len; s->pos++) {
		char c = buf[s->pos];

		if (s->in_string) {
			if (s->escape) {
				s->escape = false;
			} else if (c == '\\') {
				s->escape = true;
			} else if (c == '"') {
				s->in_string = false;
				if (s->depth == 0) {
					return ++s->pos;
				}
			}
		} else if (!s->started) {
			if (rpc_is_ws(c)) {
				continue;
			}
			s->started = true;
			if (c == '"') {
				s->in_string = true;
			} else if (c == '{' || c == '[') {
				s->depth = 1;
			} else if (c == '}' || c == ']') {
				return ++s->pos;
			} else {
				s->scalar = true;
			}
		} else if (s->scalar) {
			/* A bare number or literal ends at the first byte that cannot extend it. */
			if (rpc_ends_scalar(c)) {
				return s->pos;
			}
		} else if (c == '"') {
			s->in_string = true;
		} else if (c == '{' || c == '[') {
			s->depth++;
		} else if ((c == '}' || c == ']') && --s->depth == 0) {
			return ++s->pos;
		}
	}
	return 0;
}

/* ---- Responses ----------------------------------------------------------------- */

/* jansson refuses invalid UTF-8 (a message cut mid-character): mask such bytes. */
static json_t *
rpc_json_string(const char *msg)
{
	json_t *s = json_string(msg);
	char *copy;

	if (s != NULL) {
		return s;
	}
	copy = strdup(msg);
	if (copy == NULL) {
		return NULL;
	}
	for (char *p = copy; *p != '\0'; p++) {
		if ((unsigned char)*p >= 0x80) {
			*p = '?';
		}
	}
	s = json_string(copy);
	free(copy);
	return s;
}

static json_t *
rpc_response_new(json_t *id)
{
	return json_pack("{s:s, s:O}", "jsonrpc", "2.0", "id", id != NULL ? id : json_null());
}

static void rpc_sink_put(struct rpc_sink *sink);

/* Hand a finished response (stolen, may be NULL) to the request's sink; free req. */
static void
rpc_request_finish(struct sl_jsonrpc_request *req, json_t *response)
{
	struct rpc_sink *sink = req->sink;

	if (response != NULL && req->id != NULL) {
		if (sink->is_batch) {
			json_array_append_new(sink->response, response);
		} else {
			sink->response = response;
		}
	} else {
		json_decref(response);
	}
	json_decref(req->id);
	free(req->method);
	free(req);
	rpc_sink_put(sink);
}

/* Answers must be given on the app thread; one given elsewhere is moved there. */
struct rpc_forward {
	struct sl_jsonrpc_request *req;
	json_t *response;
};

static void
rpc_forward_msg(void *ctx)
{
	struct rpc_forward *fwd = ctx;

	rpc_request_finish(fwd->req, fwd->response);
	free(fwd);
}

static bool
rpc_forward_to_app(struct sl_jsonrpc_request *req, json_t *response)
{
	struct sl_thread *app = sl_thread_get_app_thread();
	struct rpc_forward *fwd;

	if (app == NULL || sl_get_thread() == app) {
		return false;
	}
	fwd = malloc(sizeof(*fwd));
	if (fwd == NULL) {
		return false;
	}
	fwd->req = req;
	fwd->response = response;
	if (sl_thread_send_msg(app, rpc_forward_msg, fwd) != 0) {
		free(fwd);
		return false;
	}
	return true;
}

static void
rpc_answer(struct sl_jsonrpc_request *req, json_t *response)
{
	if (!rpc_forward_to_app(req, response)) {
		rpc_request_finish(req, response);
	}
}

void
sl_jsonrpc_send_result(struct sl_jsonrpc_request *req, json_t *result)
{
	json_t *response;

	if (req == NULL) {
		json_decref(result);
		return;
	}
	if (result == NULL) {
		result = json_true();
	}
	if (req->id == NULL) {
		/* A notification: nobody hears the answer. */
		json_decref(result);
		rpc_answer(req, NULL);
		return;
	}
	response = rpc_response_new(req->id);
	if (response == NULL || json_object_set_new(response, "result", result) != 0) {
		SL_ERRLOG("out of memory answering %s\n", req->method != NULL ? req->method : "?");
		json_decref(response);
		response = NULL;
	}
	rpc_answer(req, response);
}

void
sl_jsonrpc_send_bool(struct sl_jsonrpc_request *req, bool value)
{
	sl_jsonrpc_send_result(req, json_boolean(value));
}

static void
rpc_send_error_str(struct sl_jsonrpc_request *req, int code, const char *msg)
{
	json_t *response = NULL;

	if (req->id != NULL) {
		response = rpc_response_new(req->id);
		if (response == NULL ||
		    json_object_set_new(response, "error",
					json_pack("{s:i, s:o?}", "code", code, "message",
						  rpc_json_string(msg))) != 0) {
			SL_ERRLOG("out of memory answering an error\n");
			json_decref(response);
			response = NULL;
		}
	}
	SL_DEBUGLOG(rpc, "%s: error %d: %s\n", req->method != NULL ? req->method : "(invalid)",
		    code, msg);
	rpc_answer(req, response);
}

static void rpc_send_error_va(struct sl_jsonrpc_request *req, int code, const char *prefix,
			      const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

static void
rpc_send_error_va(struct sl_jsonrpc_request *req, int code, const char *prefix, const char *fmt,
		  va_list ap)
{
	char *msg = NULL;
	char *full = NULL;

	if (vasprintf(&msg, fmt, ap) < 0) {
		msg = NULL;
	}
	if (prefix != NULL && msg != NULL) {
		int rc = msg[0] != '\0' ? asprintf(&full, "%s: %s", msg, prefix)
					: asprintf(&full, "%s", prefix);

		if (rc < 0) {
			full = NULL;
		}
	}
	rpc_send_error_str(req, code, full != NULL ? full : (msg != NULL ? msg : "out of memory"));
	free(full);
	free(msg);
}

void
sl_jsonrpc_send_error(struct sl_jsonrpc_request *req, int code, const char *fmt, ...)
{
	va_list ap;

	if (req == NULL) {
		return;
	}
	va_start(ap, fmt);
	rpc_send_error_va(req, code, NULL, fmt, ap);
	va_end(ap);
}

void
sl_jsonrpc_send_errno(struct sl_jsonrpc_request *req, int neg_errno, const char *fmt, ...)
{
	va_list ap;

	if (req == NULL) {
		return;
	}
	if (neg_errno > 0) {
		neg_errno = -neg_errno;
	}
	va_start(ap, fmt);
	/* "<context>: <strerror>", or strerror alone when the context is empty. */
	rpc_send_error_va(req, neg_errno, strerror(-neg_errno), fmt, ap);
	va_end(ap);
}

int
sl_rpc_decode_params(struct sl_jsonrpc_request *req, const json_t *params,
		     const struct sl_json_object_decoder *decoders, size_t count, void *out)
{
	char err[512];
	int rc;

	rc = sl_json_decode_object(params, decoders, count, out, err, sizeof(err));
	if (rc != 0) {
		sl_jsonrpc_send_error(req, SL_JSONRPC_ERROR_INVALID_PARAMS, "%s: %s",
				      req->method != NULL ? req->method : "params", err);
		return -EINVAL;
	}
	return 0;
}

/* ---- Connections: output ------------------------------------------------------- */

static void rpc_conn_close(struct rpc_conn *conn);

static void
rpc_conn_update_events(struct rpc_conn *conn)
{
	uint32_t events = 0;

	if (conn->closed || conn->sock == NULL || g_rpc_server.group == NULL) {
		return;
	}
	if (!conn->rx_done && rpc_buf_pending(&conn->out) < g_rpc_out_high_watermark) {
		events |= EPOLLIN;
	}
	if (rpc_buf_pending(&conn->out) > 0) {
		events |= EPOLLOUT;
	}
	sl_sock_group_set_events(g_rpc_server.group, conn->sock, events);
}

/* Send what the socket takes now; the rest waits for EPOLLOUT. */
static void
rpc_conn_flush(struct rpc_conn *conn)
{
	struct rpc_buf *out = &conn->out;

	while (rpc_buf_pending(out) > 0) {
		ssize_t n;

		if (conn->sock == NULL) {
			/* A socketless (fuzzing) conn or a closed one: nobody to send to. */
			out->head = out->len = 0;
			break;
		}
		n = sl_sock_send(conn->sock, out->data + out->head, rpc_buf_pending(out));
		if (n == -EAGAIN) {
			break;
		}
		if (n < 0) {
			SL_DEBUGLOG(rpc, "send: %s\n", strerror((int)-n));
			out->head = out->len = 0;
			rpc_conn_close(conn);
			return;
		}
		out->head += (size_t)n;
	}
	if (out->head == out->len) {
		out->head = out->len = 0;
	}
	rpc_conn_update_events(conn);
}

static void
rpc_conn_send_json(struct rpc_conn *conn, json_t *response)
{
	size_t size = json_dumpb(response, NULL, 0, JSON_COMPACT);

	if (size == 0 || rpc_buf_reserve(&conn->out, size + 1) != 0) {
		SL_ERRLOG("cannot serialise a response of %zu bytes\n", size);
		return;
	}
	json_dumpb(response, conn->out.data + conn->out.len, size, JSON_COMPACT);
	conn->out.len += size;
	conn->out.data[conn->out.len++] = '\n';
	rpc_conn_flush(conn);
}

/* Close a conn whose peer stopped sending once everything owed to it is sent. */
static void
rpc_conn_maybe_finish(struct rpc_conn *conn)
{
	if (!conn->closed && conn->rx_done && TAILQ_EMPTY(&conn->sinks) &&
	    rpc_buf_pending(&conn->out) == 0) {
		rpc_conn_close(conn);
	}
}

/* ---- Sinks and dispatch -------------------------------------------------------- */

static struct rpc_sink *
rpc_sink_alloc(struct rpc_conn *conn, sl_rpc_local_cb cb, void *ctx)
{
	struct rpc_sink *sink = calloc(1, sizeof(*sink));

	if (sink == NULL) {
		return NULL;
	}
	sink->local_cb = cb;
	sink->local_ctx = ctx;
	/* The dispatcher's own reference, dropped when it has handed out every request. */
	sink->outstanding = 1;
	if (conn != NULL) {
		sink->conn = conn;
		TAILQ_INSERT_TAIL(&conn->sinks, sink, link);
	}
	return sink;
}

static void
rpc_sink_deliver(struct rpc_sink *sink)
{
	struct rpc_conn *conn = sink->conn;
	json_t *response = sink->response;

	/* A batch of notifications only gets no answer at all (spec section 6). */
	if (sink->is_batch && json_array_size(response) == 0) {
		response = NULL;
	}
	if (conn != NULL) {
		TAILQ_REMOVE(&conn->sinks, sink, link);
		/* A failed send closes conn: keep it allocated until we are done with it. */
		conn->busy++;
		if (response != NULL) {
			rpc_conn_send_json(conn, response);
		}
		conn->busy--;
		if (conn->closed) {
			rpc_conn_close(conn);
		} else {
			rpc_conn_maybe_finish(conn);
		}
	} else if (sink->local_cb != NULL) {
		sink->local_cb(sink->local_ctx, response);
	}
	json_decref(sink->response);
	free(sink);
}

static void
rpc_sink_put(struct rpc_sink *sink)
{
	assert(sink->outstanding > 0);
	if (--sink->outstanding == 0) {
		rpc_sink_deliver(sink);
	}
}

static bool
rpc_id_is_valid(const json_t *id)
{
	return json_is_string(id) || json_is_number(id) || json_is_null(id);
}

/*
 * Check the request object (spec section 4). \return the method to call, or NULL
 * after answering the error.
 */
static struct sl_rpc_method *
rpc_request_validate(struct sl_jsonrpc_request *req, const json_t *obj, const json_t **params)
{
	const json_t *version = json_object_get(obj, "jsonrpc");
	const json_t *method = json_object_get(obj, "method");
	struct sl_rpc_method *m;

	if (!json_is_string(version) || strcmp(json_string_value(version), "2.0") != 0) {
		rpc_send_error_str(req, SL_JSONRPC_ERROR_INVALID_REQUEST,
				   "Invalid request: 'jsonrpc' must be \"2.0\"");
		return NULL;
	}
	if (!json_is_string(method)) {
		rpc_send_error_str(req, SL_JSONRPC_ERROR_INVALID_REQUEST,
				   "Invalid request: 'method' must be a string");
		return NULL;
	}
	*params = json_object_get(obj, "params");
	if (json_is_null(*params)) {
		*params = NULL;
	}
	if (*params != NULL && !json_is_object(*params) && !json_is_array(*params)) {
		rpc_send_error_str(req, SL_JSONRPC_ERROR_INVALID_REQUEST,
				   "Invalid request: 'params' must be an object or an array");
		return NULL;
	}
	req->method = strdup(json_string_value(method));
	m = strlen(json_string_value(method)) == json_string_length(method)
		    ? rpc_find_method(json_string_value(method))
		    : NULL;
	if (m == NULL) {
		sl_jsonrpc_send_error(req, SL_JSONRPC_ERROR_METHOD_NOT_FOUND,
				      "Method not found: %.128s", json_string_value(method));
		return NULL;
	}
	if ((m->state_mask & g_rpc_state) == 0) {
		sl_jsonrpc_send_error(req, SL_JSONRPC_ERROR_INVALID_STATE,
				      "method %s is not allowed in state %s", m->name,
				      rpc_state_name(g_rpc_state));
		return NULL;
	}
	return m;
}

static void
rpc_log_value(const char *what, const json_t *val)
{
	char *text;

	if (!SL_LOG_FLAG_rpc.enabled) {
		return;
	}
	text = json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY);
	SL_DEBUGLOG(rpc, "%s: %.*s\n", what, RPC_LOG_TEXT_MAX, text != NULL ? text : "?");
	free(text);
}

/* Handle one request object (or what should have been one) of a sink. */
static void
rpc_dispatch_one(struct rpc_sink *sink, const json_t *obj)
{
	struct sl_jsonrpc_request *req;
	const json_t *params = NULL;
	struct sl_rpc_method *m;
	json_t *id;

	req = calloc(1, sizeof(*req));
	if (req == NULL) {
		SL_ERRLOG("out of memory for an RPC request\n");
		return;
	}
	req->sink = sink;
	sink->outstanding++;
	rpc_log_value("request", obj);
	if (!json_is_object(obj)) {
		req->id = json_null();
		rpc_send_error_str(req, SL_JSONRPC_ERROR_INVALID_REQUEST,
				   "Invalid request: not a JSON object");
		return;
	}
	id = json_object_get(obj, "id");
	if (id != NULL && !rpc_id_is_valid(id)) {
		/* The spec answers an id it cannot echo with null. */
		req->id = json_null();
		rpc_send_error_str(req, SL_JSONRPC_ERROR_INVALID_REQUEST,
				   "Invalid request: 'id' must be a string, a number or null");
		return;
	}
	req->id = json_incref(id);
	m = rpc_request_validate(req, obj, &params);
	if (m == NULL) {
		return;
	}
	if (m->alias_of != NULL && !m->deprecation_warned) {
		m->deprecation_warned = true;
		SL_WARNLOG("RPC method %s is deprecated, use %s\n", m->name, m->alias_of);
	}
	m->fn(req, params);
}

/*
 * Dispatch a parsed top-level value: one request, or a batch (spec section 6).
 * Consumes the sink's dispatcher reference.
 */
static void
rpc_dispatch(struct rpc_sink *sink, const json_t *root)
{
	size_t i;
	json_t *elem;

	if (json_is_array(root) && json_array_size(root) > 0) {
		sink->is_batch = true;
		sink->response = json_array();
		if (sink->response == NULL) {
			SL_ERRLOG("out of memory for a batch\n");
			rpc_sink_put(sink);
			return;
		}
		json_array_foreach (root, i, elem) {
			rpc_dispatch_one(sink, elem);
		}
	} else {
		/* An empty batch is answered by a single Invalid Request error. */
		rpc_dispatch_one(sink, root);
	}
	rpc_sink_put(sink);
}

static void rpc_conn_stream_error(struct rpc_conn *conn, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Answer a stream-level error (parse error, too large): id null, no request. */
static void
rpc_conn_stream_error(struct rpc_conn *conn, int code, const char *fmt, ...)
{
	struct sl_jsonrpc_request *req;
	struct rpc_sink *sink;
	va_list ap;

	/* The stream cannot be resynchronised: stop reading, close once answered. */
	conn->rx_done = true;
	sink = rpc_sink_alloc(conn, NULL, NULL);
	req = calloc(1, sizeof(*req));
	if (sink == NULL || req == NULL) {
		free(req);
		if (sink != NULL) {
			rpc_sink_put(sink);
		}
		return;
	}
	req->sink = sink;
	req->id = json_null();
	sink->outstanding++;
	va_start(ap, fmt);
	rpc_send_error_va(req, code, NULL, fmt, ap);
	va_end(ap);
	rpc_sink_put(sink);
}

static void
rpc_conn_handle_value(struct rpc_conn *conn, const char *text, size_t len)
{
	struct rpc_sink *sink;
	json_error_t jerr;
	json_t *root;

	root = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
	if (root == NULL) {
		rpc_conn_stream_error(conn, SL_JSONRPC_ERROR_PARSE_ERROR,
				      "Parse error: %s at line %d column %d", jerr.text, jerr.line,
				      jerr.column);
		return;
	}
	sink = rpc_sink_alloc(conn, NULL, NULL);
	if (sink == NULL) {
		SL_ERRLOG("out of memory for an RPC request\n");
	} else {
		rpc_dispatch(sink, root);
	}
	json_decref(root);
}

/* Handle every complete value in the input buffer. */
static void
rpc_conn_process(struct rpc_conn *conn)
{
	struct rpc_buf *in = &conn->in;

	if (in->data == NULL) {
		return;
	}
	while (!conn->closed && !conn->rx_done) {
		size_t end = rpc_scan_value(&conn->scan, in->data + in->head, rpc_buf_pending(in));

		if (end == 0 ? rpc_buf_pending(in) > g_rpc_max_request_size
			     : end > g_rpc_max_request_size) {
			rpc_conn_stream_error(conn, SL_JSONRPC_ERROR_INVALID_REQUEST,
					      "Invalid request: larger than the limit of %zu bytes",
					      g_rpc_max_request_size);
			break;
		}
		if (end == 0) {
			break;
		}
		memset(&conn->scan, 0, sizeof(conn->scan));
		in->head += end;
		rpc_conn_handle_value(conn, in->data + in->head - end, end);
	}
	if (in->head == in->len) {
		in->head = in->len = 0;
	}
}

/* The peer will send no more: whatever is left is a truncated value or a bare scalar. */
static void
rpc_conn_eof(struct rpc_conn *conn)
{
	struct rpc_buf *in = &conn->in;

	if (conn->closed || conn->rx_done) {
		return;
	}
	while (rpc_buf_pending(in) > 0 && rpc_is_ws(in->data[in->head])) {
		in->head++;
	}
	if (rpc_buf_pending(in) > 0) {
		size_t len = rpc_buf_pending(in);

		in->head = in->len;
		rpc_conn_handle_value(conn, in->data + in->head - len, len);
	}
	conn->rx_done = true;
}

/* ---- Connections: lifetime and input ------------------------------------------- */

struct rpc_conn *
rpc_conn_alloc(struct sl_sock *sock)
{
	struct rpc_conn *conn = calloc(1, sizeof(*conn));

	if (conn == NULL) {
		return NULL;
	}
	conn->sock = sock;
	TAILQ_INIT(&conn->sinks);
	return conn;
}

static void
rpc_conn_free(struct rpc_conn *conn)
{
	rpc_buf_free(&conn->in);
	rpc_buf_free(&conn->out);
	free(conn);
}

/* Tear down at once; the memory goes when no callback of ours still uses it. */
static void
rpc_conn_close(struct rpc_conn *conn)
{
	struct rpc_sink *sink;

	if (!conn->closed) {
		conn->closed = true;
		/* Handlers still running answer into the void. */
		while ((sink = TAILQ_FIRST(&conn->sinks)) != NULL) {
			TAILQ_REMOVE(&conn->sinks, sink, link);
			sink->conn = NULL;
		}
		sl_sock_close(&conn->sock);
		if (conn->in_server) {
			TAILQ_REMOVE(&g_rpc_server.conns, conn, link);
			g_rpc_server.nconns--;
			conn->in_server = false;
		}
		SL_DEBUGLOG(rpc, "connection %p closed\n", (void *)conn);
	}
	if (conn->busy == 0) {
		rpc_conn_free(conn);
	}
}

void
rpc_conn_destroy(struct rpc_conn *conn)
{
	if (conn != NULL) {
		rpc_conn_close(conn);
	}
}

int
rpc_conn_feed(struct rpc_conn *conn, const void *data, size_t len)
{
	int rc = 0;

	conn->busy++;
	if (!conn->closed && !conn->rx_done && len > 0) {
		if (rpc_buf_reserve(&conn->in, len) != 0) {
			rc = -ENOMEM;
		} else {
			memcpy(conn->in.data + conn->in.len, data, len);
			conn->in.len += len;
			rpc_conn_process(conn);
		}
	}
	conn->busy--;
	if (rc == 0 && (conn->closed || conn->rx_done)) {
		rc = -ECONNRESET;
	}
	return rc;
}

void
rpc_conn_feed_eof(struct rpc_conn *conn)
{
	conn->busy++;
	rpc_conn_eof(conn);
	conn->busy--;
}

/* Read what the socket has (bounded) and handle it. */
static void
rpc_conn_read(struct rpc_conn *conn)
{
	for (int i = 0; i < RPC_READS_PER_EVENT; i++) {
		ssize_t n;

		if (conn->closed || conn->rx_done ||
		    rpc_buf_pending(&conn->out) >= g_rpc_out_high_watermark) {
			return;
		}
		if (rpc_buf_reserve(&conn->in, RPC_READ_CHUNK) != 0) {
			SL_ERRLOG("out of memory reading an RPC request\n");
			rpc_conn_close(conn);
			return;
		}
		n = sl_sock_recv(conn->sock, conn->in.data + conn->in.len,
				 conn->in.cap - conn->in.len);
		if (n == -EAGAIN) {
			return;
		}
		if (n < 0) {
			SL_DEBUGLOG(rpc, "recv: %s\n", strerror((int)-n));
			rpc_conn_close(conn);
			return;
		}
		if (n == 0) {
			rpc_conn_eof(conn);
			return;
		}
		conn->in.len += (size_t)n;
		rpc_conn_process(conn);
	}
}

static void
rpc_conn_sock_cb(void *arg, struct sl_sock_group *group, struct sl_sock *sock, uint32_t events)
{
	struct rpc_conn *conn = arg;

	conn->busy++;
	if (events & EPOLLOUT) {
		rpc_conn_flush(conn);
	}
	if (events & EPOLLERR) {
		rpc_conn_close(conn);
	} else if (events & (EPOLLIN | EPOLLHUP)) {
		rpc_conn_read(conn);
	}
	/* HUP: the peer is gone both ways (a half-close gives only EOF): orphan the rest. */
	if (events & EPOLLHUP) {
		rpc_conn_close(conn);
	}
	conn->busy--;
	if (conn->closed) {
		rpc_conn_close(conn);
		return;
	}
	rpc_conn_update_events(conn);
	rpc_conn_maybe_finish(conn);
}

/* ---- The server ---------------------------------------------------------------- */

static void
rpc_server_accept_one(struct sl_sock *sock)
{
	struct rpc_conn *conn = rpc_conn_alloc(sock);
	int rc;

	if (conn == NULL) {
		SL_ERRLOG("out of memory accepting an RPC connection\n");
		sl_sock_close(&sock);
		return;
	}
	rc = sl_sock_group_add_sock(g_rpc_server.group, sock, EPOLLIN, rpc_conn_sock_cb, conn);
	if (rc != 0) {
		SL_ERRLOG("cannot poll an RPC connection: %s\n", strerror(-rc));
		rpc_conn_close(conn);
		return;
	}
	conn->in_server = true;
	TAILQ_INSERT_TAIL(&g_rpc_server.conns, conn, link);
	g_rpc_server.nconns++;
	SL_DEBUGLOG(rpc, "connection %p accepted\n", (void *)conn);
}

static int
rpc_server_accept_poll(void *arg)
{
	int count = 0;

	while (g_rpc_server.listener != NULL && count < RPC_ACCEPTS_PER_POLL) {
		struct sl_sock *sock = sl_sock_accept(g_rpc_server.listener);

		if (sock == NULL) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED) {
				SL_ERRLOG("accept on %s: %m\n", g_rpc_server.path);
			}
			break;
		}
		rpc_server_accept_one(sock);
		count++;
	}
	return count > 0 ? SL_POLLER_BUSY : SL_POLLER_IDLE;
}

int
sl_rpc_server_start(const char *path)
{
	int rc;

	if (path == NULL || path[0] == '\0') {
		return -EINVAL;
	}
	if (g_rpc_server.listener != NULL) {
		return -EALREADY;
	}
	if (sl_get_thread() == NULL) {
		SL_ERRLOG("the RPC server must be started on the app thread\n");
		return -EINVAL;
	}
	g_rpc_server.path = strdup(path);
	if (g_rpc_server.path == NULL) {
		return -ENOMEM;
	}
	g_rpc_server.listener = sl_sock_listen(SL_SOCK_UNIX, path, 0, NULL);
	if (g_rpc_server.listener == NULL) {
		rc = -errno;
		goto err;
	}
	g_rpc_server.group = sl_sock_group_create(NULL);
	if (g_rpc_server.group == NULL) {
		rc = -ENOMEM;
		goto err;
	}
	g_rpc_server.accept_poller =
		sl_poller_register_fd(sl_sock_get_fd(g_rpc_server.listener), EPOLLIN,
				      rpc_server_accept_poll, NULL, "rpc_accept");
	if (g_rpc_server.accept_poller == NULL) {
		rc = errno != 0 ? -errno : -ENOMEM;
		goto err;
	}
	SL_NOTICELOG("RPC server listening on %s\n", path);
	return 0;
err:
	sl_sock_group_close(&g_rpc_server.group);
	sl_sock_close(&g_rpc_server.listener);
	free(g_rpc_server.path);
	g_rpc_server.path = NULL;
	return rc;
}

void
sl_rpc_server_stop(void)
{
	struct rpc_conn *conn;

	sl_poller_unregister(&g_rpc_server.accept_poller);
	while ((conn = TAILQ_FIRST(&g_rpc_server.conns)) != NULL) {
		rpc_conn_close(conn);
	}
	sl_sock_group_close(&g_rpc_server.group);
	/* Closing the listener removes its socket file (if it is still ours). */
	sl_sock_close(&g_rpc_server.listener);
	free(g_rpc_server.path);
	g_rpc_server.path = NULL;
}

const char *
sl_rpc_server_path(void)
{
	return g_rpc_server.path;
}

size_t
rpc_server_conn_count(void)
{
	return g_rpc_server.nconns;
}

/* ---- Local calls --------------------------------------------------------------- */

struct rpc_local_call {
	json_t *request;
	sl_rpc_local_cb cb;
	void *ctx;
};

static void
rpc_call_local_now(json_t *request, sl_rpc_local_cb cb, void *ctx)
{
	struct rpc_sink *sink = rpc_sink_alloc(NULL, cb, ctx);

	if (sink == NULL) {
		SL_ERRLOG("out of memory for a local RPC call\n");
		cb(ctx, NULL);
		return;
	}
	rpc_dispatch(sink, request);
}

static void
rpc_call_local_msg(void *arg)
{
	struct rpc_local_call *call = arg;

	rpc_call_local_now(call->request, call->cb, call->ctx);
	json_decref(call->request);
	free(call);
}

void
sl_rpc_call_local(json_t *request, sl_rpc_local_cb cb, void *ctx)
{
	struct sl_thread *app = sl_thread_get_app_thread();
	struct rpc_local_call *call;

	if (app == NULL || sl_get_thread() == app) {
		rpc_call_local_now(request, cb, ctx);
		return;
	}
	/* Handlers run on the app thread only. */
	call = malloc(sizeof(*call));
	if (call == NULL) {
		cb(ctx, NULL);
		return;
	}
	call->request = json_incref(request);
	call->cb = cb;
	call->ctx = ctx;
	if (sl_thread_send_msg(app, rpc_call_local_msg, call) != 0) {
		json_decref(call->request);
		free(call);
		cb(ctx, NULL);
	}
}
