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
	char *name;
	char *uuid;
	uint64_t num_blocks;
	uint32_t block_size;
	uint32_t physical_block_size;
	uint32_t optimal_io_boundary;
	uint32_t md_size;
	bool md_interleave;
	int32_t dif_type;
	bool dif_is_head_of_md;
	int32_t dif_pi_format;
};

static const struct sl_json_object_decoder rpc_malloc_create_decoders[] = {
	{"name", offsetof(struct rpc_malloc_create, name), sl_json_decode_string, true},
	{"uuid", offsetof(struct rpc_malloc_create, uuid), sl_json_decode_string, true},
	{"num_blocks", offsetof(struct rpc_malloc_create, num_blocks), sl_json_decode_uint64,
	 false},
	{"block_size", offsetof(struct rpc_malloc_create, block_size), sl_json_decode_uint32,
	 false},
	{"physical_block_size", offsetof(struct rpc_malloc_create, physical_block_size),
	 sl_json_decode_uint32, true},
	{"optimal_io_boundary", offsetof(struct rpc_malloc_create, optimal_io_boundary),
	 sl_json_decode_uint32, true},
	{"md_size", offsetof(struct rpc_malloc_create, md_size), sl_json_decode_uint32, true},
	{"md_interleave", offsetof(struct rpc_malloc_create, md_interleave), sl_json_decode_bool,
	 true},
	{"dif_type", offsetof(struct rpc_malloc_create, dif_type), sl_json_decode_int32, true},
	{"dif_is_head_of_md", offsetof(struct rpc_malloc_create, dif_is_head_of_md),
	 sl_json_decode_bool, true},
	{"dif_pi_format", offsetof(struct rpc_malloc_create, dif_pi_format), sl_json_decode_int32,
	 true},
};

/* \return 0, or answers the request and returns -EINVAL/-ENOTSUP. */
static int
rpc_malloc_check(struct sl_jsonrpc_request *req, const struct rpc_malloc_create *p,
		 struct malloc_disk_opts *opts)
{
	if (p->md_size != 0 || p->dif_type != 0 || p->md_interleave || p->dif_is_head_of_md) {
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
	opts->optimal_io_boundary = p->optimal_io_boundary;
	return 0;
}

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
	if (rpc_malloc_check(req, &p, &opts) != 0) {
		goto out;
	}
	rc = malloc_disk_create(&opts, &bdev, err, sizeof(err));
	if (rc != 0) {
		sl_jsonrpc_send_errno(req, rc, "bdev_malloc_create %s: %s",
				      p.name ? p.name : "(auto)", err);
		goto out;
	}
	sl_jsonrpc_send_result(req, json_string(sl_bdev_get_name(bdev)));
out:
	free(p.name);
	free(p.uuid);
}
SL_RPC_REGISTER("bdev_malloc_create", rpc_bdev_malloc_create, SL_RPC_RUNTIME)

struct rpc_bdev_delete {
	char *name;
};

static const struct sl_json_object_decoder rpc_malloc_delete_decoders[] = {
	{"name", offsetof(struct rpc_bdev_delete, name), sl_json_decode_string, false},
};

static void
rpc_bdev_malloc_delete_done(void *arg, int rc)
{
	struct sl_jsonrpc_request *req = arg;

	if (rc != 0) {
		sl_jsonrpc_send_errno(req, rc, "bdev_malloc_delete");
	} else {
		sl_jsonrpc_send_bool(req, true);
	}
}

static void
rpc_bdev_malloc_delete(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct rpc_bdev_delete p = {0};
	int rc;

	if (sl_rpc_decode_params(req, params, rpc_malloc_delete_decoders,
				 SL_COUNTOF(rpc_malloc_delete_decoders), &p) != 0) {
		return;
	}
	rc = malloc_disk_delete(p.name, rpc_bdev_malloc_delete_done, req);
	if (rc == -EBUSY) {
		sl_jsonrpc_send_errno(req, rc, "bdev %s is already being deleted", p.name);
	} else if (rc != 0) {
		sl_jsonrpc_send_errno(req, rc, "bdev %s: no such malloc bdev", p.name);
	}
	free(p.name);
}
SL_RPC_REGISTER("bdev_malloc_delete", rpc_bdev_malloc_delete, SL_RPC_RUNTIME)
