/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * JSON-RPC methods of the network NBD server, and the "nbd" subsystem (its shutdown
 * and its part of save_config).
 *
 *   nbd_server_start         {"host", "port", "unix_path", "handshake_limit"}
 *   nbd_server_stop          {}
 *   nbd_server_add_export    {"name", "bdev_name", "read_only", "description"}
 *   nbd_server_remove_export {"name"}
 *   nbd_server_get_exports   {"name"}  -> exports with their URIs and connections
 *
 * nbd_server_start listens on TCP when host or port is given, or when unix_path is not
 * (127.0.0.1:10809 by default), and on the Unix path when given. handshake_limit is
 * the seconds a client has to negotiate (10 by default, as qemu-nbd; 0 for none).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/log.h"
#include "sluice/nbd.h"
#include "sluice/nbd_spec.h"
#include "sluice/rpc.h"
#include "sluice/subsystem.h"
#include "sluice/util.h"

#include "nbd_internal.h"

/* ---- URIs (nbd_uri.c) --------------------------------------------------------- */

static void
nbd_uris_append(json_t *uris, char *uri)
{
	if (uri != NULL) {
		json_array_append_new(uris, json_string(uri));
		free(uri);
	}
}

static json_t *
nbd_export_uris(const struct sl_nbd_export *exp)
{
	const char *host = sl_nbd_server_get_tcp_host();
	const char *path = sl_nbd_server_get_unix_path();
	const char *name = sl_nbd_export_get_name(exp);
	json_t *uris = json_array();

	if (uris == NULL) {
		return NULL;
	}
	if (host != NULL) {
		if (host[0] == '\0' || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0) {
			host = "localhost";
		}
		nbd_uris_append(uris, nbd_uri_tcp(host, sl_nbd_server_get_tcp_port(), name));
	}
	if (path != NULL) {
		nbd_uris_append(uris, nbd_uri_unix(path, name));
	}
	return uris;
}

/* ---- nbd_server_start / nbd_server_stop ---------------------------------------- */

struct rpc_nbd_server_start {
	char *host;
	int32_t port;
	char *unix_path;
	uint32_t handshake_limit;
};

/* Seconds, in [0, SL_NBD_MAX_HANDSHAKE_LIMIT]: the message names this range, not the
 * C type's. */
static int
rpc_decode_handshake_limit(const json_t *val, void *out, char *err, size_t errlen)
{
	char what[64];
	json_int_t v;
	int rc;

	snprintf(what, sizeof(what), "an integer in [0, %d] (seconds, 0 for no limit)",
		 SL_NBD_MAX_HANDSHAKE_LIMIT);
	rc = sl_json_decode_int_range(val, 0, SL_NBD_MAX_HANDSHAKE_LIMIT, what, &v, err, errlen);
	if (rc == 0) {
		*(uint32_t *)out = (uint32_t)v;
	}
	return rc;
}

static const struct sl_json_object_decoder g_rpc_nbd_server_start_decoders[] = {
	{"host", offsetof(struct rpc_nbd_server_start, host), sl_json_decode_string, true},
	{"port", offsetof(struct rpc_nbd_server_start, port), sl_json_decode_int32, true},
	{"unix_path", offsetof(struct rpc_nbd_server_start, unix_path), sl_json_decode_string,
	 true},
	{"handshake_limit", offsetof(struct rpc_nbd_server_start, handshake_limit),
	 rpc_decode_handshake_limit, true},
};

static void
rpc_nbd_server_start(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct rpc_nbd_server_start p = {.port = -1,
					 .handshake_limit = SL_NBD_DEFAULT_HANDSHAKE_LIMIT};
	struct sl_nbd_server_opts opts = {};
	int rc;

	if (sl_rpc_decode_params(req, params, g_rpc_nbd_server_start_decoders,
				 SL_COUNTOF(g_rpc_nbd_server_start_decoders), &p) != 0) {
		goto out;
	}
	if (p.port > 65535 || (p.port < 0 && p.port != -1)) {
		sl_jsonrpc_send_error(req, SL_JSONRPC_ERROR_INVALID_PARAMS,
				      "nbd_server_start: 'port' must be in [0, 65535], got %d",
				      (int)p.port);
		goto out;
	}
	opts.tcp = p.host != NULL || p.port >= 0 || p.unix_path == NULL;
	opts.host = p.host;
	opts.port = p.port >= 0 ? p.port : SL_NBD_DEFAULT_PORT;
	opts.unix_path = p.unix_path;
	opts.handshake_limit = p.handshake_limit;
	rc = sl_nbd_server_start(&opts);
	if (rc == -EALREADY) {
		sl_jsonrpc_send_error(req, SL_JSONRPC_ERROR_INVALID_STATE,
				      "nbd_server_start: the NBD server is already running");
	} else if (rc != 0) {
		sl_jsonrpc_send_errno(req, rc, "nbd_server_start: cannot listen on %s%s%s",
				      opts.tcp ? (p.host != NULL ? p.host : "127.0.0.1") : "",
				      opts.tcp && p.unix_path != NULL ? " and " : "",
				      p.unix_path != NULL ? p.unix_path : "");
	} else {
		sl_jsonrpc_send_bool(req, true);
	}
out:
	free(p.host);
	free(p.unix_path);
}
SL_RPC_REGISTER("nbd_server_start", rpc_nbd_server_start, SL_RPC_RUNTIME)

static void
rpc_nbd_done(void *cb_arg, int rc)
{
	struct sl_jsonrpc_request *req = cb_arg;

	if (rc != 0) {
		sl_jsonrpc_send_errno(req, rc, "NBD operation failed");
	} else {
		sl_jsonrpc_send_bool(req, true);
	}
}

static void
rpc_nbd_server_stop(struct sl_jsonrpc_request *req, const json_t *params)
{
	if (params != NULL && json_object_size(params) != 0) {
		sl_jsonrpc_send_error(req, SL_JSONRPC_ERROR_INVALID_PARAMS,
				      "nbd_server_stop: takes no parameters");
		return;
	}
	if (!sl_nbd_server_is_running()) {
		sl_jsonrpc_send_error(req, SL_JSONRPC_ERROR_INVALID_STATE,
				      "nbd_server_stop: the NBD server is not running");
		return;
	}
	sl_nbd_server_stop(rpc_nbd_done, req);
}
SL_RPC_REGISTER("nbd_server_stop", rpc_nbd_server_stop, SL_RPC_RUNTIME)

/* ---- Exports ------------------------------------------------------------------ */

struct rpc_nbd_export {
	char *name;
	char *bdev_name;
	char *description;
	bool read_only;
};

static const struct sl_json_object_decoder g_rpc_nbd_add_export_decoders[] = {
	{"name", offsetof(struct rpc_nbd_export, name), sl_json_decode_string, true},
	{"bdev_name", offsetof(struct rpc_nbd_export, bdev_name), sl_json_decode_string, false},
	{"description", offsetof(struct rpc_nbd_export, description), sl_json_decode_string, true},
	{"read_only", offsetof(struct rpc_nbd_export, read_only), sl_json_decode_bool, true},
};

static void
rpc_nbd_server_add_export(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct rpc_nbd_export p = {};
	struct sl_nbd_export_opts opts;
	int rc;

	if (sl_rpc_decode_params(req, params, g_rpc_nbd_add_export_decoders,
				 SL_COUNTOF(g_rpc_nbd_add_export_decoders), &p) != 0) {
		goto out;
	}
	opts.name = p.name;
	opts.bdev_name = p.bdev_name;
	opts.description = p.description;
	opts.read_only = p.read_only;
	rc = sl_nbd_export_add(&opts);
	if (rc != 0) {
		sl_jsonrpc_send_errno(req, rc, "nbd_server_add_export: export %s of bdev %s",
				      p.name != NULL ? p.name : p.bdev_name, p.bdev_name);
	} else {
		sl_jsonrpc_send_bool(req, true);
	}
out:
	free(p.name);
	free(p.bdev_name);
	free(p.description);
}
SL_RPC_REGISTER("nbd_server_add_export", rpc_nbd_server_add_export, SL_RPC_RUNTIME)

static const struct sl_json_object_decoder g_rpc_nbd_name_decoders[] = {
	{"name", offsetof(struct rpc_nbd_export, name), sl_json_decode_string, false},
};

static void
rpc_nbd_server_remove_export(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct rpc_nbd_export p = {};

	if (sl_rpc_decode_params(req, params, g_rpc_nbd_name_decoders,
				 SL_COUNTOF(g_rpc_nbd_name_decoders), &p) != 0) {
		goto out;
	}
	if (sl_nbd_export_remove(p.name, rpc_nbd_done, req) != 0) {
		sl_jsonrpc_send_errno(req, -ENOENT, "nbd_server_remove_export: no export %s",
				      p.name);
	}
out:
	free(p.name);
}
SL_RPC_REGISTER("nbd_server_remove_export", rpc_nbd_server_remove_export, SL_RPC_RUNTIME)

static void
rpc_nbd_conn_json(const struct sl_nbd_conn_info *info, void *ctx)
{
	json_t *conns = ctx;

	json_array_append_new(
		conns,
		json_pack("{s:I, s:s, s:s, s:b, s:b, s:i, s:I, s:I, s:I, s:I, s:I, s:I}", "id",
			  (json_int_t)info->id, "peer", info->peer, "thread", info->thread,
			  "structured_replies", info->structured_replies, "base_allocation",
			  info->base_allocation, "in_flight", (int)info->in_flight, "num_read_ops",
			  (json_int_t)info->num_read_ops, "bytes_read",
			  (json_int_t)info->bytes_read, "num_write_ops",
			  (json_int_t)info->num_write_ops, "bytes_written",
			  (json_int_t)info->bytes_written, "num_other_ops",
			  (json_int_t)info->num_other_ops, "num_errors",
			  (json_int_t)info->num_errors));
}

static json_t *
rpc_nbd_export_json(struct sl_nbd_export *exp)
{
	json_t *conns = json_array();

	if (conns == NULL) {
		return NULL;
	}
	sl_nbd_export_for_each_conn(exp, rpc_nbd_conn_json, conns);
	return json_pack("{s:s, s:s, s:s, s:b, s:I, s:o*, s:o}", "name",
			 sl_nbd_export_get_name(exp), "bdev_name", sl_nbd_export_get_bdev_name(exp),
			 "description", sl_nbd_export_get_description(exp), "read_only",
			 sl_nbd_export_is_read_only(exp), "size",
			 (json_int_t)sl_nbd_export_get_size(exp), "uris", nbd_export_uris(exp),
			 "connections", conns);
}

static const struct sl_json_object_decoder g_rpc_nbd_get_exports_decoders[] = {
	{"name", offsetof(struct rpc_nbd_export, name), sl_json_decode_string, true},
};

static void
rpc_nbd_server_get_exports(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct rpc_nbd_export p = {};
	struct sl_nbd_export *exp;
	json_t *result;

	if (sl_rpc_decode_params(req, params, g_rpc_nbd_get_exports_decoders,
				 SL_COUNTOF(g_rpc_nbd_get_exports_decoders), &p) != 0) {
		goto out;
	}
	if (p.name != NULL && sl_nbd_export_find(p.name) == NULL) {
		sl_jsonrpc_send_errno(req, -ENOENT, "nbd_server_get_exports: no export %s", p.name);
		goto out;
	}
	result = json_array();
	for (exp = sl_nbd_export_first(); exp != NULL && result != NULL;
	     exp = sl_nbd_export_next(exp)) {
		if (p.name == NULL || strcmp(p.name, sl_nbd_export_get_name(exp)) == 0) {
			json_array_append_new(result, rpc_nbd_export_json(exp));
		}
	}
	sl_jsonrpc_send_result(req, result);
out:
	free(p.name);
}
SL_RPC_REGISTER("nbd_server_get_exports", rpc_nbd_server_get_exports, SL_RPC_RUNTIME)

/* ---- The "nbd" subsystem ------------------------------------------------------ */

static sl_subsystem_done_fn g_nbd_fini_done;

static void
nbd_fini_next(void *cb_arg, int rc)
{
	struct sl_nbd_export *exp = sl_nbd_export_first();

	if (exp != NULL &&
	    sl_nbd_export_remove(sl_nbd_export_get_name(exp), nbd_fini_next, NULL) == 0) {
		return;
	}
	g_nbd_fini_done(0);
}

/* Stop the server (connections finish their requests in flight), then remove the
 * exports one by one, which closes their bdevs before the bdev subsystem finishes. */
static void
nbd_subsystem_fini(sl_subsystem_done_fn done)
{
	g_nbd_fini_done = done;
	if (sl_nbd_server_is_running()) {
		sl_nbd_server_stop(nbd_fini_next, NULL);
	} else {
		nbd_fini_next(NULL, 0);
	}
}

static void
nbd_subsystem_write_config_json(json_t *config)
{
	struct sl_nbd_export *exp;
	json_t *params;

	if (sl_nbd_server_is_running()) {
		params = json_object();
		if (sl_nbd_server_get_tcp_host() != NULL) {
			json_object_set_new(params, "host",
					    json_string(sl_nbd_server_get_tcp_host()));
			/* The port bound, so that a config saved from "port": 0 comes back
			 * at the same address. */
			json_object_set_new(params, "port",
					    json_integer(sl_nbd_server_get_tcp_port()));
		}
		if (sl_nbd_server_get_unix_path() != NULL) {
			json_object_set_new(params, "unix_path",
					    json_string(sl_nbd_server_get_unix_path()));
		}
		json_object_set_new(params, "handshake_limit",
				    json_integer(sl_nbd_server_get_handshake_limit()));
		json_array_append_new(config, json_pack("{s:s, s:o}", "method", "nbd_server_start",
							"params", params));
	}
	for (exp = sl_nbd_export_first(); exp != NULL; exp = sl_nbd_export_next(exp)) {
		params = json_pack("{s:s, s:s, s:b}", "name", sl_nbd_export_get_name(exp),
				   "bdev_name", sl_nbd_export_get_bdev_name(exp), "read_only",
				   sl_nbd_export_is_read_only(exp));
		if (sl_nbd_export_get_description(exp)[0] != '\0') {
			json_object_set_new(params, "description",
					    json_string(sl_nbd_export_get_description(exp)));
		}
		json_array_append_new(config, json_pack("{s:s, s:o}", "method",
							"nbd_server_add_export", "params", params));
	}
}

static const char *const g_nbd_subsystem_depends[] = {"bdev", NULL};

static struct sl_subsystem g_nbd_subsystem = {
	.name = "nbd",
	.init = NULL,
	.fini = nbd_subsystem_fini,
	.write_config_json = nbd_subsystem_write_config_json,
	.depends = g_nbd_subsystem_depends,
};
SL_SUBSYSTEM_REGISTER(g_nbd_subsystem)
