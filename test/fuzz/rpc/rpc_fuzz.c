/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * libFuzzer harness of the JSON-RPC server: arbitrary bytes are one connection's
 * stream, fed in pieces whose size the first byte picks, then the stream ends. A few
 * methods decode params with the table decoders; one answers later, some of its
 * requests after the connection is gone (orphans). Nothing may crash or leak.
 */

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/log.h"
#include "sluice/rpc.h"
#include "sluice/thread.h"
#include "sluice/util.h"
#include "env/rpc_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_ASYNC 8

static struct sl_thread *g_thread;
static struct sl_jsonrpc_request *g_async[FUZZ_MAX_ASYNC];
static int g_async_count;

struct fuzz_params {
	char *name;
	uint64_t num_blocks;
	uint32_t block_size;
	uint16_t port;
	int32_t offset;
	bool readonly;
	char *uuid;
};

static const struct sl_json_object_decoder g_fuzz_decoders[] = {
	{"name", offsetof(struct fuzz_params, name), sl_json_decode_string, false},
	{"num_blocks", offsetof(struct fuzz_params, num_blocks), sl_json_decode_uint64, true},
	{"block_size", offsetof(struct fuzz_params, block_size), sl_json_decode_uint32, true},
	{"port", offsetof(struct fuzz_params, port), sl_json_decode_uint16, true},
	{"offset", offsetof(struct fuzz_params, offset), sl_json_decode_int32, true},
	{"readonly", offsetof(struct fuzz_params, readonly), sl_json_decode_bool, true},
	{"uuid", offsetof(struct fuzz_params, uuid), sl_json_decode_string, true},
};

/* Not heap memory: a decoder freeing the default is an ASan error. */
static char g_default_uuid[] = "00000000-0000-0000-0000-000000000000";

static void
fuzz_create(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct fuzz_params p = {.uuid = g_default_uuid};

	/* A failed decode must leave nothing to free: LSan would find a leak here. */
	if (sl_rpc_decode_params(req, params, g_fuzz_decoders, SL_COUNTOF(g_fuzz_decoders), &p) !=
	    0) {
		if (p.name != NULL || p.uuid != g_default_uuid) {
			abort();
		}
		return;
	}
	if (p.block_size == 0) {
		sl_jsonrpc_send_errno(req, -EINVAL, "bdev %s: block_size 0", p.name);
	} else {
		sl_jsonrpc_send_result(req, json_string(p.name));
	}
	free(p.name);
	if (p.uuid != g_default_uuid) {
		free(p.uuid);
	}
}
SL_RPC_REGISTER("bdev_malloc_create", fuzz_create, SL_RPC_RUNTIME)

/* params: an array of names, else of ids. */
static void
fuzz_list(struct sl_jsonrpc_request *req, const json_t *params)
{
	char *names[4] = {NULL};
	uint32_t ids[4];
	size_t n = SIZE_MAX;
	char err[128];

	if (params == NULL) {
		sl_jsonrpc_send_result(req, json_array());
		return;
	}
	if (sl_json_decode_array(params, sl_json_decode_string, names, SL_COUNTOF(names), &n,
				 sizeof(names[0]), err, sizeof(err)) == 0) {
		sl_jsonrpc_send_result(req, json_integer((json_int_t)n));
		for (size_t i = 0; i < n; i++) {
			free(names[i]);
		}
		return;
	}
	/* A failure leaves the array and its size as they were. */
	for (size_t i = 0; i < SL_COUNTOF(names); i++) {
		if (names[i] != NULL) {
			abort();
		}
	}
	if (n != SIZE_MAX) {
		abort();
	}
	if (sl_json_decode_array(params, sl_json_decode_uint32, ids, SL_COUNTOF(ids), &n,
				 sizeof(ids[0]), err, sizeof(err)) != 0) {
		sl_jsonrpc_send_error(req, SL_JSONRPC_ERROR_INVALID_PARAMS, "%s", err);
		return;
	}
	sl_jsonrpc_send_result(req, json_integer((json_int_t)n));
}
SL_RPC_REGISTER("bdev_get_bdevs", fuzz_list, SL_RPC_STARTUP | SL_RPC_RUNTIME)

static void
fuzz_async(struct sl_jsonrpc_request *req, const json_t *params)
{
	if (g_async_count == FUZZ_MAX_ASYNC) {
		sl_jsonrpc_send_bool(req, false);
		return;
	}
	g_async[g_async_count++] = req;
}
SL_RPC_REGISTER("nbd_start_disk", fuzz_async, SL_RPC_RUNTIME)

static void
fuzz_echo(struct sl_jsonrpc_request *req, const json_t *params)
{
	sl_jsonrpc_send_result(req, params != NULL ? json_deep_copy(params) : NULL);
}
SL_RPC_REGISTER("rpc_get_methods", fuzz_echo, SL_RPC_STARTUP | SL_RPC_RUNTIME)

static void
fuzz_answer_async(int keep)
{
	while (g_async_count > keep) {
		struct sl_jsonrpc_request *req = g_async[--g_async_count];

		if (g_async_count % 2 == 0) {
			sl_jsonrpc_send_result(req, json_string("/dev/nbd0"));
		} else {
			sl_jsonrpc_send_errno(req, -ENODEV, "nbd%d", g_async_count);
		}
	}
}

static void
fuzz_init(void)
{
	sl_log_set_print_level(SL_LOG_DISABLED);
	if (sl_thread_lib_init(NULL, 0) != 0) {
		abort();
	}
	g_thread = sl_thread_create("app", NULL);
	if (g_thread == NULL) {
		abort();
	}
	sl_set_thread(g_thread);
	sl_rpc_set_state(SL_RPC_RUNTIME);
	/* Small enough that the fuzzer reaches the limit. */
	g_rpc_max_request_size = 2048;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rpc_conn *conn;
	size_t chunk, off;

	if (g_thread == NULL) {
		fuzz_init();
	}
	if (size == 0) {
		return 0;
	}
	/* The first byte: piece size (0 = everything at once) and the EOF choice. */
	chunk = data[0] & 0x7f;
	if (chunk == 0) {
		chunk = size;
	}
	conn = rpc_conn_alloc(NULL);
	if (conn == NULL) {
		return 0;
	}
	for (off = 1; off < size; off += chunk) {
		if (rpc_conn_feed(conn, data + off, SL_MIN(chunk, size - off)) != 0) {
			break;
		}
		/* Some answers come while the connection lives, the rest after. */
		fuzz_answer_async(FUZZ_MAX_ASYNC / 2);
	}
	if (data[0] & 0x80) {
		rpc_conn_feed_eof(conn);
	}
	fuzz_answer_async(1);
	rpc_conn_destroy(conn);
	fuzz_answer_async(0);
	sl_thread_poll(g_thread, 0, 0);
	return 0;
}
