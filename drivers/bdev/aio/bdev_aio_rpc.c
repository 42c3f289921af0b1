/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * RPCs of the aio module, with SPDK's names and parameters: bdev_aio_create,
 * bdev_aio_delete, bdev_aio_rescan.
 */

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "bdev_aio.h"
#include "sluice/rpc.h"
#include "sluice/util.h"

struct rpc_aio_create {
	char *name;
	char *filename;
	uint32_t block_size;
	bool readonly;
	bool fallocate;
	char *uuid;
};

static const struct sl_json_object_decoder g_rpc_aio_create_decoders[] = {
	{"name", offsetof(struct rpc_aio_create, name), sl_json_decode_string, false},
	{"filename", offsetof(struct rpc_aio_create, filename), sl_json_decode_string, false},
	{"block_size", offsetof(struct rpc_aio_create, block_size), sl_json_decode_uint32, true},
	{"readonly", offsetof(struct rpc_aio_create, readonly), sl_json_decode_bool, true},
	{"fallocate", offsetof(struct rpc_aio_create, fallocate), sl_json_decode_bool, true},
	{"uuid", offsetof(struct rpc_aio_create, uuid), sl_json_decode_string, true},
};

static void
rpc_bdev_aio_create(struct sl_jsonrpc_request *req, const json_t *params)
{
	/* fallocate defaults on: unmap and write-zeroes are cheap on files (SPDK: off). */
	struct rpc_aio_create p = {.fallocate = true};
	struct bdev_aio_opts opts;
	char err[512];
	int rc;

	if (sl_rpc_decode_params(req, params, g_rpc_aio_create_decoders,
				 SL_COUNTOF(g_rpc_aio_create_decoders), &p) != 0) {
		goto out;
	}
	opts = (struct bdev_aio_opts){
		.name = p.name,
		.filename = p.filename,
		.block_size = p.block_size,
		.readonly = p.readonly,
		.fallocate = p.fallocate,
		.uuid = p.uuid,
	};
	rc = bdev_aio_create(&opts, err, sizeof(err));
	if (rc != 0) {
		sl_jsonrpc_send_error(req, rc, "bdev_aio_create: %s", err);
		goto out;
	}
	sl_jsonrpc_send_result(req, json_string(p.name));
out:
	free(p.name);
	free(p.filename);
	free(p.uuid);
}
SL_RPC_REGISTER("bdev_aio_create", rpc_bdev_aio_create, SL_RPC_RUNTIME)

static void
rpc_bdev_aio_delete(struct sl_jsonrpc_request *req, const json_t *params)
{
	sl_bdev_rpc_delete(req, params, "bdev_aio_delete", bdev_aio_delete);
}
SL_RPC_REGISTER("bdev_aio_delete", rpc_bdev_aio_delete, SL_RPC_RUNTIME)

struct rpc_aio_name {
	char *name;
};

static const struct sl_json_object_decoder g_rpc_aio_name_decoders[] = {
	{"name", offsetof(struct rpc_aio_name, name), sl_json_decode_string, false},
};

static void
rpc_bdev_aio_rescan(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct rpc_aio_name p = {0};
	int rc;

	if (sl_rpc_decode_params(req, params, g_rpc_aio_name_decoders,
				 SL_COUNTOF(g_rpc_aio_name_decoders), &p) != 0) {
		goto out;
	}
	rc = bdev_aio_rescan(p.name);
	if (rc != 0) {
		sl_jsonrpc_send_errno(req, rc, "bdev_aio_rescan: %s", p.name);
	} else {
		sl_jsonrpc_send_bool(req, true);
	}
out:
	free(p.name);
}
SL_RPC_REGISTER("bdev_aio_rescan", rpc_bdev_aio_rescan, SL_RPC_RUNTIME)
