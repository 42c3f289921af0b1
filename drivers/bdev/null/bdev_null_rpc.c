/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/* bdev_null_create / bdev_null_delete / bdev_null_resize, with SPDK's parameters.
 * Metadata and protection information are refused by name. */

#include <errno.h>
#include <stdlib.h>

#include "sluice/bdev_module.h"
#include "sluice/rpc.h"
#include "sluice/util.h"

#include "bdev_null.h"

struct rpc_null_create {
	char *name;
	char *uuid;
	uint64_t num_blocks;
	uint32_t block_size;
	uint32_t physical_block_size;
	uint32_t md_size;
	int32_t dif_type;
	bool dif_is_head_of_md;
	int32_t dif_pi_format;
};

static const struct sl_json_object_decoder rpc_null_create_decoders[] = {
	{"name", offsetof(struct rpc_null_create, name), sl_json_decode_string, false},
	{"uuid", offsetof(struct rpc_null_create, uuid), sl_json_decode_string, true},
	{"num_blocks", offsetof(struct rpc_null_create, num_blocks), sl_json_decode_uint64, false},
	{"block_size", offsetof(struct rpc_null_create, block_size), sl_json_decode_uint32, false},
	{"physical_block_size", offsetof(struct rpc_null_create, physical_block_size),
	 sl_json_decode_uint32, true},
	{"md_size", offsetof(struct rpc_null_create, md_size), sl_json_decode_uint32, true},
	{"dif_type", offsetof(struct rpc_null_create, dif_type), sl_json_decode_int32, true},
	{"dif_is_head_of_md", offsetof(struct rpc_null_create, dif_is_head_of_md),
	 sl_json_decode_bool, true},
	{"dif_pi_format", offsetof(struct rpc_null_create, dif_pi_format), sl_json_decode_int32,
	 true},
};

static int
rpc_null_check(struct sl_jsonrpc_request *req, const struct rpc_null_create *p,
	       struct null_disk_opts *opts)
{
	if (p->md_size != 0 || p->dif_type != 0 || p->dif_is_head_of_md) {
		sl_jsonrpc_send_errno(req, -ENOTSUP,
				      "md_size %u / dif_type %d: metadata and protection "
				      "information are not supported",
				      p->md_size, p->dif_type);
		return -ENOTSUP;
	}
	if (p->physical_block_size != 0 &&
	    (!SL_IS_POW2(p->physical_block_size) || p->physical_block_size < p->block_size)) {
		sl_jsonrpc_send_errno(
			req, -EINVAL,
			"physical_block_size %u is not a power of two >= block_size %u",
			p->physical_block_size, p->block_size);
		return -EINVAL;
	}
	if (p->uuid != NULL && sl_bdev_uuid_parse(p->uuid, opts->uuid) != 0) {
		sl_jsonrpc_send_errno(req, -EINVAL, "uuid '%s' is not a UUID", p->uuid);
		return -EINVAL;
	}
	opts->name = p->name;
	opts->num_blocks = p->num_blocks;
	opts->block_size = p->block_size;
	return 0;
}

static void
rpc_bdev_null_create(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct rpc_null_create p = {0};
	struct null_disk_opts opts = {0};
	struct sl_bdev *bdev;
	char err[256];
	int rc;

	if (sl_rpc_decode_params(req, params, rpc_null_create_decoders,
				 SL_COUNTOF(rpc_null_create_decoders), &p) != 0) {
		goto out;
	}
	if (rpc_null_check(req, &p, &opts) != 0) {
		goto out;
	}
	rc = null_disk_create(&opts, &bdev, err, sizeof(err));
	if (rc != 0) {
		sl_jsonrpc_send_errno(req, rc, "bdev_null_create %s: %s", p.name, err);
		goto out;
	}
	sl_jsonrpc_send_result(req, json_string(sl_bdev_get_name(bdev)));
out:
	free(p.name);
	free(p.uuid);
}
SL_RPC_REGISTER("bdev_null_create", rpc_bdev_null_create, SL_RPC_RUNTIME)

struct rpc_null_name {
	char *name;
	uint64_t new_size;
};

static const struct sl_json_object_decoder rpc_null_delete_decoders[] = {
	{"name", offsetof(struct rpc_null_name, name), sl_json_decode_string, false},
};

static void
rpc_bdev_null_delete_done(void *arg, int rc)
{
	struct sl_jsonrpc_request *req = arg;

	if (rc != 0) {
		sl_jsonrpc_send_errno(req, rc, "bdev_null_delete");
	} else {
		sl_jsonrpc_send_bool(req, true);
	}
}

static void
rpc_bdev_null_delete(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct rpc_null_name p = {0};
	int rc;

	if (sl_rpc_decode_params(req, params, rpc_null_delete_decoders,
				 SL_COUNTOF(rpc_null_delete_decoders), &p) != 0) {
		return;
	}
	rc = null_disk_delete(p.name, rpc_bdev_null_delete_done, req);
	if (rc == -EBUSY) {
		sl_jsonrpc_send_errno(req, rc, "bdev %s is already being deleted", p.name);
	} else if (rc != 0) {
		sl_jsonrpc_send_errno(req, rc, "bdev %s: no such null bdev", p.name);
	}
	free(p.name);
}
SL_RPC_REGISTER("bdev_null_delete", rpc_bdev_null_delete, SL_RPC_RUNTIME)

static const struct sl_json_object_decoder rpc_null_resize_decoders[] = {
	{"name", offsetof(struct rpc_null_name, name), sl_json_decode_string, false},
	{"new_size", offsetof(struct rpc_null_name, new_size), sl_json_decode_uint64, false},
};

/* SPDK's new_size is in MiB. */
static void
rpc_bdev_null_resize(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct rpc_null_name p = {0};
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
