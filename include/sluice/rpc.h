/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/** \file
 * JSON-RPC 2.0 over a Unix socket, and method registration.
 *
 * Modules register their methods with SL_RPC_REGISTER. Handlers run on the app
 * thread and answer exactly once -- at once or later from a callback, but on the app
 * thread -- with sl_jsonrpc_send_result() or sl_jsonrpc_send_error().
 * JSON values are jansson's json_t.
 */
#ifndef SLUICE_RPC_H
#define SLUICE_RPC_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

/* JSON-RPC 2.0 error codes (spec section 5.1). Application errors are -errno. */
#define SL_JSONRPC_ERROR_PARSE_ERROR      -32700
#define SL_JSONRPC_ERROR_INVALID_REQUEST  -32600
#define SL_JSONRPC_ERROR_METHOD_NOT_FOUND -32601
#define SL_JSONRPC_ERROR_INVALID_PARAMS   -32602
#define SL_JSONRPC_ERROR_INTERNAL_ERROR   -32603
/* Method exists but not in the current state (SPDK's code for the same thing). */
#define SL_JSONRPC_ERROR_INVALID_STATE -1

/** States in which a method may be called (bit mask). */
#define SL_RPC_STARTUP 0x1 /* before framework_start_init (--wait-for-rpc) */
#define SL_RPC_RUNTIME 0x2 /* after subsystems are initialised */

struct sl_jsonrpc_request;

/**
 * A method handler. params is the request's "params" (object or array), or NULL when
 * absent; it is borrowed for the duration of the call only.
 */
typedef void (*sl_rpc_method_handler)(struct sl_jsonrpc_request *req, const json_t *params);

struct sl_rpc_method {
	const char *name;
	sl_rpc_method_handler fn;
	uint32_t state_mask;
	/** Deprecated alias target, if this name is an alias (NULL otherwise). */
	const char *alias_of;
	struct sl_rpc_method *next;
	/** Set once the deprecation warning of an alias has been logged. */
	bool deprecation_warned;
};

/**
 * Register a method (constructor time). Duplicates abort: they are programmer errors.
 * The list is kept sorted by name.
 */
void sl_rpc_register_method(struct sl_rpc_method *method);

#define SL_RPC_REGISTER(NAME, FN, MASK)                                     \
	static struct sl_rpc_method sl_rpc_method_##FN = {                  \
		.name = NAME,                                               \
		.fn = FN,                                                   \
		.state_mask = MASK,                                         \
	};                                                                  \
	__attribute__((constructor)) static void sl_rpc_register_##FN(void) \
	{                                                                   \
		sl_rpc_register_method(&sl_rpc_method_##FN);                \
	}

/** Register an alias of an existing method (e.g. SPDK's older names). */
#define SL_RPC_REGISTER_ALIAS(ALIAS, NAME, FN, MASK)                              \
	static struct sl_rpc_method sl_rpc_alias_##FN = {                         \
		.name = ALIAS,                                                    \
		.fn = FN,                                                         \
		.state_mask = MASK,                                               \
		.alias_of = NAME,                                                 \
	};                                                                        \
	__attribute__((constructor)) static void sl_rpc_register_alias_##FN(void) \
	{                                                                         \
		sl_rpc_register_method(&sl_rpc_alias_##FN);                       \
	}

/** \return the first registered method (then ->next), for rpc_get_methods. */
const struct sl_rpc_method *sl_rpc_get_methods(void);
/** \return the method with that name, or NULL. */
const struct sl_rpc_method *sl_rpc_find_method(const char *name);

/** Current state for method filtering (SL_RPC_STARTUP or SL_RPC_RUNTIME). */
void sl_rpc_set_state(uint32_t state);
uint32_t sl_rpc_get_state(void);

/**
 * Start listening on a Unix socket path (mode 0600; a stale socket file left by a dead
 * process is replaced). Must be called on the app thread; the server is served there
 * by an fd poller (the listener) and a socket poll group (the connections).
 *
 * Requests are JSON values, concatenated with or without whitespace/newlines between
 * them (SPDK's rpc.py sends bare objects); a request may arrive in pieces. Responses
 * are compact JSON, each followed by a newline. A parse error or a request over 32 MiB
 * is answered (id null) and the connection is then closed, as the stream cannot be
 * resynchronised. A client that disconnects before its answers orphans its pending
 * requests: their handlers still answer, and the answers are dropped.
 * \return 0, -EINVAL (no path, or not on a thread), -EALREADY (already started),
 * -EADDRINUSE (another live server owns the path, or the path is not a socket),
 * -ENAMETOOLONG, or another -errno from socket(2)/bind(2).
 */
int sl_rpc_server_start(const char *path);
/**
 * Stop the server and remove its socket file. Open connections are closed and their
 * pending requests orphaned. Safe to call from within a handler, and when not started.
 */
void sl_rpc_server_stop(void);
/** \return the listening path or NULL. */
const char *sl_rpc_server_path(void);

/**
 * Answer with a result; steals the reference to result (NULL is sent as true).
 * Every request is answered exactly once, notifications included (the answer is then
 * dropped); req is freed by the call. An answer given on another thread is moved to
 * the app thread.
 */
void sl_jsonrpc_send_result(struct sl_jsonrpc_request *req, json_t *result);
/** Answer true. */
void sl_jsonrpc_send_bool(struct sl_jsonrpc_request *req, bool value);
/**
 * Answer with an error. code is a JSON-RPC code or -errno; the message is formatted.
 */
void sl_jsonrpc_send_error(struct sl_jsonrpc_request *req, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/** Answer with an error from -errno, the message being strerror plus context. */
void sl_jsonrpc_send_errno(struct sl_jsonrpc_request *req, int neg_errno, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/**
 * Dispatch one parsed request object (or batch array) in-process, as if it came from
 * a client (used by the JSON config loader and tests). request is borrowed: the caller
 * keeps its reference and may drop it when this returns.
 *
 * The response (or NULL for a notification, or when out of memory) is given to cb on
 * the app thread; it is borrowed for the duration of cb (json_incref to keep it).
 * Called on the app thread, a handler that answers at once calls cb before this
 * returns; called elsewhere, the request is sent to the app thread first.
 */
typedef void (*sl_rpc_local_cb)(void *ctx, json_t *response);
void sl_rpc_call_local(json_t *request, sl_rpc_local_cb cb, void *ctx);

/* ---- Parameter decoding ------------------------------------------------------- */

/**
 * Decode one JSON value into out; on error write a message to err and leave out as it
 * was. \return 0/-EINVAL (or -ENOMEM).
 */
typedef int (*sl_json_decode_fn)(const json_t *val, void *out, char *err, size_t errlen);

struct sl_json_object_decoder {
	const char *name;
	size_t offset;
	sl_json_decode_fn decode;
	bool optional;
};

/**
 * Decode a params object into a struct by a table. Unknown keys, missing required
 * keys and wrong types are errors; err names the key and the value. obj may be NULL
 * (params absent): then only optional decoders are allowed. Keys absent from obj
 * leave their fields as the caller set them (defaults).
 *
 * On failure, every string the call decoded is freed and its field holds again what
 * it held before the call (NULL, or the caller's default, which is neither freed nor
 * lost), so the caller frees out the same way whether the call failed or not. Other
 * fields decoded before the failing key may keep their new values. A decode function
 * of the caller's that allocates (one wrapping sl_json_decode_array of strings, or a
 * nested object) is not undone: its field is the caller's to free, on failure too.
 * \return 0 or -EINVAL.
 */
int sl_json_decode_object(const json_t *obj, const struct sl_json_object_decoder *decoders,
			  size_t count, void *out, char *err, size_t errlen);
/** Decoders: string -> char * (strdup'ed; free with free()). */
int sl_json_decode_string(const json_t *val, void *out, char *err, size_t errlen);
int sl_json_decode_bool(const json_t *val, void *out, char *err, size_t errlen);
int sl_json_decode_int32(const json_t *val, void *out, char *err, size_t errlen);
int sl_json_decode_uint16(const json_t *val, void *out, char *err, size_t errlen);
int sl_json_decode_uint32(const json_t *val, void *out, char *err, size_t errlen);
int sl_json_decode_uint64(const json_t *val, void *out, char *err, size_t errlen);
/**
 * Decode an integer in [min, max] into *v, for a field with bounds of its own. On
 * failure err says "must be <what>, got <value>": what names the range for the user
 * (say "an integer in [0, 3600] (seconds)"). \return 0 or -EINVAL.
 */
int sl_json_decode_int_range(const json_t *val, json_int_t min, json_int_t max, const char *what,
			     json_int_t *v, char *err, size_t errlen);
/**
 * Decode a JSON array into a C array of max_size elements of stride bytes, each by
 * decode, and set *out_size to the number of elements. On failure out and *out_size
 * are left as they were: strings decoded by sl_json_decode_string are freed (no
 * other element decoder may allocate) and the elements' previous bytes put back.
 * \return 0, -EINVAL (err names the element index and the value) or -ENOMEM.
 */
int sl_json_decode_array(const json_t *val, sl_json_decode_fn decode, void *out, size_t max_size,
			 size_t *out_size, size_t stride, char *err, size_t errlen);
/**
 * Decode and, on failure, answer -32602 with "<method>: <message>" (e.g.
 * "bdev_malloc_create: 'num_blocks' must be an integer in [0, 4294967295], got -5").
 * A failure frees the strings it decoded (see sl_json_decode_object): out may be
 * freed as on success, or left alone.
 * \return 0 or -EINVAL (already answered: the handler must not answer again).
 */
int sl_rpc_decode_params(struct sl_jsonrpc_request *req, const json_t *params,
			 const struct sl_json_object_decoder *decoders, size_t count, void *out);

#endif /* SLUICE_RPC_H */
