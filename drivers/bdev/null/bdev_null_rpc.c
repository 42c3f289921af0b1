/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/* bdev_null_create / bdev_null_delete / bdev_null_resize, with SPDK's parameters (and
 * zero_reads). Metadata and protection information are refused by name. */

#include <errno.h>
#include <stdlib.h>

#include "sluice/bdev_module.h"
#include "sluice/rpc.h"
#include "sluice/util.h"

#include "bdev_null.h"

/* SPDK's parameters, and zero_reads (Sluice's; default true). */
struct rpc_null_create {
	struct sl_bdev_disk_params p;
	bool zero_reads;
};

#define NULL_PARAM(field) offsetof(struct rpc_null_create, p.field)

static const struct sl_json_object_decoder rpc_null_create_decoders[] = {
	{"name", NULL_PARAM(name), sl_json_decode_string, false},
	{"uuid", NULL_PARAM(uuid), sl_json_decode_string, true},
	{"num_blocks", NULL_PARAM(num_blocks), sl_json_decode_uint64, false},
	{"block_size", NULL_PARAM(block_size), sl_json_decode_uint32, false},
	{"physical_block_size", NULL_PARAM(physical_block_size), sl_json_decode_uint32, true},
	{"md_size", NULL_PARAM(md_size), sl_json_decode_uint32, true},
	{"dif_type", NULL_PARAM(dif_type), sl_json_decode_int32, true},
	{"dif_is_head_of_md", NULL_PARAM(dif_is_head_of_md), sl_json_decode_bool, true},
	{"dif_pi_format", NULL_PARAM(dif_pi_format), sl_json_decode_int32, true},
	{"zero_reads", offsetof(struct rpc_null_create, zero_reads), sl_json_decode_bool, true},
};

static void
rpc_bdev_null_create(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct rpc_null_create r = {.zero_reads = true};
	struct sl_bdev_disk_params *p = &r.p;
	struct null_disk_opts opts = {0};
	struct sl_bdev *bdev;
	char err[256];
	int rc;

	if (sl_rpc_decode_params(req, params, rpc_null_create_decoders,
				 SL_COUNTOF(rpc_null_create_decoders), &r) != 0) {
		goto out;
	}
	rc = sl_bdev_check_disk_params(p, opts.uuid, err, sizeof(err));
	if (rc != 0) {
		sl_jsonrpc_send_errno(req, rc, "%s", err);
		goto out;
	}
	opts.name = p->name;
	opts.num_blocks = p->num_blocks;
	opts.block_size = p->block_size;
	opts.no_zero_reads = !r.zero_reads;
	rc = null_disk_create(&opts, &bdev, err, sizeof(err));
	if (rc != 0) {
		sl_jsonrpc_send_errno(req, rc, "bdev_null_create %s: %s", p->name, err);
		goto out;
	}
	sl_jsonrpc_send_result(req, json_string(sl_bdev_get_name(bdev)));
out:
	free(p->name);
	free(p->uuid);
}
SL_RPC_REGISTER("bdev_null_create", rpc_bdev_null_create, SL_RPC_RUNTIME)

static void
rpc_bdev_null_delete(struct sl_jsonrpc_request *req, const json_t *params)
{
	sl_bdev_rpc_delete(req, params, "bdev_null_delete", null_disk_delete);
}
SL_RPC_REGISTER("bdev_null_delete", rpc_bdev_null_delete, SL_RPC_RUNTIME)

struct rpc_null_resize {
	char *name;
	uint64_t new_size;
};

static const struct sl_json_object_decoder rpc_null_resize_decoders[] = {
	{"name", offsetof(struct rpc_null_resize, name), sl_json_decode_string, false},
	{"new_size", offsetof(struct rpc_null_resize, new_size), sl_json_decode_uint64, false},
};

/* SPDK's new_size is in MiB. */
static void
rpc_bdev_null_resize(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct rpc_null_resize p = {0};
	struct sl_bdev *bdev;
	int rc;

	if (sl_rpc_decode_params(req, params, rpc_null_resize_decoders,
				 SL_COUNTOF(rpc_null_resize_decoders), &p) != 0) {
		return;
	}
	bdev = sl_bdev_get_by_name(p.name);
	if (bdev == NULL || p.new_size == 0 || p.new_size > (UINT64_MAX >> 20)) {
		rc = bdev == NULL ? -ENODEV : -EINVAL;
	} else {
		rc = null_disk_resize(p.name, (p.new_size << 20) / sl_bdev_get_block_size(bdev));
	}
	if (rc != 0) {
		sl_jsonrpc_send_errno(req, rc, "bdev_null_resize %s to %llu MiB", p.name,
				      (unsigned long long)p.new_size);
	} else {
		sl_jsonrpc_send_bool(req, true);
	}
	free(p.name);
}
SL_RPC_REGISTER("bdev_null_resize", rpc_bdev_null_resize, SL_RPC_RUNTIME)
