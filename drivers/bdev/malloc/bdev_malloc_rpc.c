/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/* bdev_malloc_create / bdev_malloc_delete, with SPDK's parameters. Metadata and
 * protection information (md_size, dif_type) are refused by name: Sluice has none. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/bdev_module.h"
#include "sluice/rpc.h"
#include "sluice/util.h"

#include "bdev_malloc.h"

struct rpc_malloc_create {
	struct sl_bdev_disk_params disk;
	uint32_t optimal_io_boundary;
};

#define MALLOC_PARAM(field) offsetof(struct rpc_malloc_create, field)

static const struct sl_json_object_decoder rpc_malloc_create_decoders[] = {
	{"name", MALLOC_PARAM(disk.name), sl_json_decode_string, true},
	{"uuid", MALLOC_PARAM(disk.uuid), sl_json_decode_string, true},
	{"num_blocks", MALLOC_PARAM(disk.num_blocks), sl_json_decode_uint64, false},
	{"block_size", MALLOC_PARAM(disk.block_size), sl_json_decode_uint32, false},
	{"physical_block_size", MALLOC_PARAM(disk.physical_block_size), sl_json_decode_uint32,
	 true},
	{"optimal_io_boundary", MALLOC_PARAM(optimal_io_boundary), sl_json_decode_uint32, true},
	{"md_size", MALLOC_PARAM(disk.md_size), sl_json_decode_uint32, true},
	{"md_interleave", MALLOC_PARAM(disk.md_interleave), sl_json_decode_bool, true},
	{"dif_type", MALLOC_PARAM(disk.dif_type), sl_json_decode_int32, true},
	{"dif_is_head_of_md", MALLOC_PARAM(disk.dif_is_head_of_md), sl_json_decode_bool, true},
	{"dif_pi_format", MALLOC_PARAM(disk.dif_pi_format), sl_json_decode_int32, true},
};

static void
rpc_bdev_malloc_create(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct rpc_malloc_create p = {0};
	struct malloc_disk_opts opts = {0};
	struct sl_bdev *bdev;
	char err[256];
	int rc;

	if (sl_rpc_decode_params(req, params, rpc_malloc_create_decoders,
				 SL_COUNTOF(rpc_malloc_create_decoders), &p) != 0) {
		goto out;
	}
	rc = sl_bdev_check_disk_params(&p.disk, opts.uuid, err, sizeof(err));
	if (rc != 0) {
		sl_jsonrpc_send_errno(req, rc, "%s", err);
		goto out;
	}
	opts.name = p.disk.name;
	opts.num_blocks = p.disk.num_blocks;
	opts.block_size = p.disk.block_size;
	opts.optimal_io_boundary = p.optimal_io_boundary;
	rc = malloc_disk_create(&opts, &bdev, err, sizeof(err));
	if (rc != 0) {
		sl_jsonrpc_send_errno(req, rc, "bdev_malloc_create %s: %s",
				      p.disk.name ? p.disk.name : "(auto)", err);
		goto out;
	}
	sl_jsonrpc_send_result(req, json_string(sl_bdev_get_name(bdev)));
out:
	free(p.disk.name);
	free(p.disk.uuid);
}
SL_RPC_REGISTER("bdev_malloc_create", rpc_bdev_malloc_create, SL_RPC_RUNTIME)

static void
rpc_bdev_malloc_delete(struct sl_jsonrpc_request *req, const json_t *params)
{
	sl_bdev_rpc_delete(req, params, "bdev_malloc_delete", malloc_disk_delete);
}
SL_RPC_REGISTER("bdev_malloc_delete", rpc_bdev_malloc_delete, SL_RPC_RUNTIME)
