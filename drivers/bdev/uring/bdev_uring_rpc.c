/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * RPCs of the uring module, with SPDK's names and parameters: bdev_uring_create and
 * bdev_uring_delete.
 */

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "bdev_uring.h"
#include "sluice/rpc.h"
#include "sluice/util.h"

struct rpc_uring_create {
	char *name;
	char *filename;
	uint32_t block_size;
	char *uuid;
};

static const struct sl_json_object_decoder g_rpc_uring_create_decoders[] = {
	{"name", offsetof(struct rpc_uring_create, name), sl_json_decode_string, false},
	{"filename", offsetof(struct rpc_uring_create, filename), sl_json_decode_string, false},
	{"block_size", offsetof(struct rpc_uring_create, block_size), sl_json_decode_uint32, true},
	{"uuid", offsetof(struct rpc_uring_create, uuid), sl_json_decode_string, true},
};

static void
rpc_bdev_uring_create(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct rpc_uring_create p = {0};
	struct bdev_uring_opts opts;
	char err[512];
	int rc;

	if (sl_rpc_decode_params(req, params, g_rpc_uring_create_decoders,
				 SL_COUNTOF(g_rpc_uring_create_decoders), &p) != 0) {
		goto out;
	}
	opts = (struct bdev_uring_opts){
		.name = p.name,
		.filename = p.filename,
		.block_size = p.block_size,
		.uuid = p.uuid,
	};
	rc = bdev_uring_create(&opts, err, sizeof(err));
	if (rc != 0) {
		sl_jsonrpc_send_error(req, rc, "bdev_uring_create: %s", err);
		goto out;
	}
	sl_jsonrpc_send_result(req, json_string(p.name));
out:
	free(p.name);
	free(p.filename);
	free(p.uuid);
}
SL_RPC_REGISTER("bdev_uring_create", rpc_bdev_uring_create, SL_RPC_RUNTIME)

static void
rpc_bdev_uring_delete(struct sl_jsonrpc_request *req, const json_t *params)
{
	sl_bdev_rpc_delete(req, params, "bdev_uring_delete", bdev_uring_delete);
}
SL_RPC_REGISTER("bdev_uring_delete", rpc_bdev_uring_delete, SL_RPC_RUNTIME)
