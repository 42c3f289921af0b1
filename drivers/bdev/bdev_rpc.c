/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/* Generic bdev RPCs with SPDK's names, parameters and result fields, so SPDK's
 * rpc.py and tooling read them: bdev_get_bdevs, bdev_get_iostat, bdev_set_options;
 * and the delete RPC every module serves the same way. */

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/log.h"
#include "sluice/rpc.h"
#include "sluice/util.h"

#include "bdev_internal.h"

/* ---- bdev_get_bdevs ---------------------------------------------------------- */

static void
bdev_json_add_alias(const char *alias, void *ctx)
{
	json_array_append_new(ctx, json_string(alias));
}

static json_t *
bdev_json_io_types(struct sl_bdev *bdev)
{
	/* SPDK's keys that Sluice has no I/O type for are listed as false. */
	static const char *const absent[] = {
		"nvme_admin", "nvme_io", "compare", "compare_and_write", "abort", "copy", "zcopy"};
	json_t *o = json_object();
	bool alloc = bdev->fn_table->get_allocation != NULL;
	int t;
	size_t i;

	for (t = SL_BDEV_IO_TYPE_READ; t < SL_BDEV_NUM_IO_TYPES; t++) {
		json_object_set_new(o, sl_bdev_io_type_name(t),
				    json_boolean(sl_bdev_io_type_supported(bdev, t)));
	}
	for (i = 0; i < SL_COUNTOF(absent); i++) {
		json_object_set_new(o, absent[i], json_false());
	}
	json_object_set_new(o, "seek_hole", json_boolean(alloc));
	json_object_set_new(o, "seek_data", json_boolean(alloc));
	return o;
}

json_t *
bdev_dump_info_json(struct sl_bdev *bdev)
{
	char uuid[SL_BDEV_UUID_STR_LEN];
	json_t *o = json_object(), *aliases = json_array(), *limits = json_object();
	json_t *driver = json_object();
	const char *owner = sl_bdev_get_claim_owner(bdev);

	sl_bdev_for_each_alias(bdev, bdev_json_add_alias, aliases);
	sl_bdev_get_uuid_str(bdev, uuid, sizeof(uuid));
	json_object_set_new(o, "name", json_string(bdev->name));
	json_object_set_new(o, "aliases", aliases);
	json_object_set_new(o, "product_name", json_string(sl_bdev_get_product_name(bdev)));
	json_object_set_new(o, "block_size", json_integer(bdev->blocklen));
	json_object_set_new(o, "num_blocks", json_integer((json_int_t)bdev->blockcnt));
	json_object_set_new(o, "uuid", json_string(uuid));
	json_object_set_new(limits, "rw_ios_per_sec", json_integer(0));
	json_object_set_new(limits, "rw_mbytes_per_sec", json_integer(0));
	json_object_set_new(limits, "r_mbytes_per_sec", json_integer(0));
	json_object_set_new(limits, "w_mbytes_per_sec", json_integer(0));
	json_object_set_new(o, "assigned_rate_limits", limits);
	json_object_set_new(o, "claimed", json_boolean(owner != NULL));
	if (owner != NULL) {
		/* SPDK's claim types do not name the owner; ours does, beside it. */
		json_object_set_new(o, "claim_type", json_string("exclusive_write"));
		json_object_set_new(o, "claim_owner", json_string(owner));
	}
	json_object_set_new(o, "zoned", json_false());
	json_object_set_new(o, "supported_io_types", bdev_json_io_types(bdev));
	if (bdev->optimal_io_boundary != 0) {
		json_object_set_new(o, "optimal_io_boundary",
				    json_integer(bdev->optimal_io_boundary));
	}
	if (bdev->fn_table->dump_info_json != NULL) {
		bdev->fn_table->dump_info_json(bdev->ctxt, driver);
	}
	json_object_set_new(o, "driver_specific", driver);
	return o;
}

struct rpc_get_bdevs {
	char *name;
	uint64_t timeout;
};

static const struct sl_json_object_decoder rpc_get_bdevs_decoders[] = {
	{"name", offsetof(struct rpc_get_bdevs, name), sl_json_decode_string, true},
	{"timeout", offsetof(struct rpc_get_bdevs, timeout), sl_json_decode_uint64, true},
};

struct rpc_get_bdevs_wait {
	struct sl_jsonrpc_request *req;
	char *name;
	uint64_t deadline;
	struct sl_poller *poller;
};

static void
rpc_get_bdevs_send_one(struct sl_jsonrpc_request *req, struct sl_bdev *bdev)
{
	json_t *result = json_array();

	json_array_append_new(result, bdev_dump_info_json(bdev));
	sl_jsonrpc_send_result(req, result);
}

/* SPDK's timeout: wait up to that many ms for the bdev to appear. */
static int
rpc_get_bdevs_wait_poll(void *arg)
{
	struct rpc_get_bdevs_wait *w = arg;
	struct sl_bdev *bdev = sl_bdev_get_by_name(w->name);

	if (bdev == NULL && sl_get_ticks() < w->deadline) {
		return SL_POLLER_IDLE;
	}
	if (bdev != NULL) {
		rpc_get_bdevs_send_one(w->req, bdev);
	} else {
		sl_jsonrpc_send_errno(w->req, -ENODEV, "bdev %s not found", w->name);
	}
	sl_poller_unregister(&w->poller);
	free(w->name);
	free(w);
	return SL_POLLER_BUSY;
}

static int
rpc_get_bdevs_wait(struct sl_jsonrpc_request *req, struct rpc_get_bdevs *p)
{
	struct rpc_get_bdevs_wait *w = calloc(1, sizeof(*w));

	if (w == NULL) {
		return -ENOMEM;
	}
	w->req = req;
	w->name = p->name;
	w->deadline = sl_get_ticks() + p->timeout * sl_get_ticks_hz() / 1000;
	w->poller = sl_poller_register(rpc_get_bdevs_wait_poll, w, 1000, "bdev_get_bdevs");
	if (w->poller == NULL) {
		free(w);
		return -ENOMEM;
	}
	p->name = NULL;
	return 0;
}

static void
rpc_bdev_get_bdevs(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct rpc_get_bdevs p = {0};
	struct sl_bdev *bdev;
	json_t *result;

	if (params != NULL && sl_rpc_decode_params(req, params, rpc_get_bdevs_decoders,
						   SL_COUNTOF(rpc_get_bdevs_decoders), &p) != 0) {
		return;
	}
	if (p.name != NULL) {
		bdev = sl_bdev_get_by_name(p.name);
		if (bdev != NULL) {
			rpc_get_bdevs_send_one(req, bdev);
		} else if (p.timeout == 0 || rpc_get_bdevs_wait(req, &p) != 0) {
			sl_jsonrpc_send_errno(req, -ENODEV, "bdev %s not found", p.name);
		}
		free(p.name);
		return;
	}
	/* The list changes on the app thread only, where this runs. */
	result = json_array();
	for (bdev = sl_bdev_first(); bdev != NULL; bdev = sl_bdev_next(bdev)) {
		json_array_append_new(result, bdev_dump_info_json(bdev));
	}
	sl_jsonrpc_send_result(req, result);
}
SL_RPC_REGISTER("bdev_get_bdevs", rpc_bdev_get_bdevs, SL_RPC_RUNTIME)

/* ---- bdev_get_iostat --------------------------------------------------------- */

static void
bdev_json_io_stat(json_t *o, const struct sl_bdev_io_stat *s)
{
#define STAT(field) json_object_set_new(o, #field, json_integer((json_int_t)s->field))
#define STAT_MIN(field)                \
	json_object_set_new(o, #field, \
			    json_integer(s->field == UINT64_MAX ? 0 : (json_int_t)s->field))
	STAT(bytes_read);
	STAT(num_read_ops);
	STAT(bytes_written);
	STAT(num_write_ops);
	STAT(bytes_unmapped);
	STAT(num_unmap_ops);
	STAT(bytes_copied);
	STAT(num_copy_ops);
	STAT(read_latency_ticks);
	STAT(max_read_latency_ticks);
	STAT_MIN(min_read_latency_ticks);
	STAT(write_latency_ticks);
	STAT(max_write_latency_ticks);
	STAT_MIN(min_write_latency_ticks);
	STAT(unmap_latency_ticks);
	STAT(max_unmap_latency_ticks);
	STAT_MIN(min_unmap_latency_ticks);
	STAT(copy_latency_ticks);
	STAT(max_copy_latency_ticks);
	STAT_MIN(min_copy_latency_ticks);
	STAT(num_flush_ops);
	STAT(num_write_zeroes_ops);
	STAT(bytes_zeroed);
	STAT(num_reset_ops);
	STAT(num_io_errors);
#undef STAT
#undef STAT_MIN
}

struct rpc_get_iostat {
	char *name;
	bool per_channel;
	char *reset_mode;
};

static const struct sl_json_object_decoder rpc_get_iostat_decoders[] = {
	{"name", offsetof(struct rpc_get_iostat, name), sl_json_decode_string, true},
	{"per_channel", offsetof(struct rpc_get_iostat, per_channel), sl_json_decode_bool, true},
	{"reset_mode", offsetof(struct rpc_get_iostat, reset_mode), sl_json_decode_string, true},
};

/* One bdev at a time; pending holds the bdevs still to visit (names, so a bdev
 * removed meanwhile is skipped rather than touched). */
struct rpc_iostat_ctx {
	struct sl_jsonrpc_request *req;
	json_t *names;
	size_t next;
	json_t *bdevs;
	json_t *channels;
	bool per_channel;
	struct sl_bdev_io_stat stat;
};

static void rpc_iostat_next(struct rpc_iostat_ctx *ctx);

static json_t *
rpc_iostat_header(void)
{
	json_t *o = json_object();

	json_object_set_new(o, "tick_rate", json_integer((json_int_t)sl_get_ticks_hz()));
	json_object_set_new(o, "ticks", json_integer((json_int_t)sl_get_ticks()));
	return o;
}

static void
rpc_iostat_bdev_done(struct sl_bdev *bdev, struct sl_bdev_io_stat *stat, void *cb_arg, int rc)
{
	struct rpc_iostat_ctx *ctx = cb_arg;
	json_t *o;

	if (rc == 0) {
		o = json_object();
		json_object_set_new(o, "name", json_string(bdev->name));
		bdev_json_io_stat(o, stat);
		json_array_append_new(ctx->bdevs, o);
	}
	rpc_iostat_next(ctx);
}

static void
rpc_iostat_finish(struct rpc_iostat_ctx *ctx)
{
	json_t *result = rpc_iostat_header();

	json_object_set_new(result, "bdevs", ctx->bdevs);
	sl_jsonrpc_send_result(ctx->req, result);
	json_decref(ctx->names);
	free(ctx);
}

static void
rpc_iostat_next(struct rpc_iostat_ctx *ctx)
{
	struct sl_bdev *bdev = NULL;

	while (bdev == NULL && ctx->next < json_array_size(ctx->names)) {
		bdev = sl_bdev_get_by_name(
			json_string_value(json_array_get(ctx->names, ctx->next)));
		ctx->next++;
	}
	if (bdev == NULL) {
		rpc_iostat_finish(ctx);
		return;
	}
	sl_bdev_get_io_stat(bdev, &ctx->stat, rpc_iostat_bdev_done, ctx);
}

static void
rpc_iostat_channel(struct sl_io_channel_iter *i)
{
	struct rpc_iostat_ctx *ctx = sl_io_channel_iter_get_ctx(i);
	struct sl_io_channel *ch = sl_io_channel_iter_get_channel(i);
	struct sl_bdev_io_stat stat;
	json_t *o = json_object();

	sl_bdev_channel_get_io_stat(ch, &stat);
	json_object_set_new(o, "thread_id",
			    json_integer((json_int_t)sl_thread_get_id(sl_get_thread())));
	bdev_json_io_stat(o, &stat);
	/* jansson is not thread-safe for one object, but the iteration is sequential. */
	json_array_append_new(ctx->channels, o);
	sl_for_each_channel_continue(i, 0);
}

static void
rpc_iostat_channels_done(struct sl_io_channel_iter *i, int status)
{
	struct rpc_iostat_ctx *ctx = sl_io_channel_iter_get_ctx(i);
	json_t *result = rpc_iostat_header();

	json_object_set(result, "name", json_array_get(ctx->names, 0));
	json_object_set_new(result, "channels", ctx->channels);
	sl_jsonrpc_send_result(ctx->req, result);
	json_decref(ctx->names);
	json_decref(ctx->bdevs);
	free(ctx);
}

static int
rpc_iostat_collect_names(struct rpc_iostat_ctx *ctx, const char *name)
{
	struct sl_bdev *bdev;

	if (name != NULL) {
		bdev = sl_bdev_get_by_name(name);
		if (bdev == NULL) {
			return -ENODEV;
		}
		json_array_append_new(ctx->names, json_string(bdev->name));
		return 0;
	}
	pthread_mutex_lock(&g_bdev_mutex);
	for (bdev = sl_bdev_first(); bdev != NULL; bdev = sl_bdev_next(bdev)) {
		if (!bdev->removing) {
			json_array_append_new(ctx->names, json_string(bdev->name));
		}
	}
	pthread_mutex_unlock(&g_bdev_mutex);
	return 0;
}

static void
rpc_bdev_get_iostat(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct rpc_get_iostat p = {0};
	struct rpc_iostat_ctx *ctx;
	struct sl_bdev *bdev;

	if (params != NULL && sl_rpc_decode_params(req, params, rpc_get_iostat_decoders,
						   SL_COUNTOF(rpc_get_iostat_decoders), &p) != 0) {
		return;
	}
	if (p.per_channel && p.name == NULL) {
		sl_jsonrpc_send_error(req, SL_JSONRPC_ERROR_INVALID_PARAMS,
				      "per_channel needs a bdev name");
		goto out;
	}
	ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL) {
		sl_jsonrpc_send_errno(req, -ENOMEM, "bdev_get_iostat");
		goto out;
	}
	ctx->req = req;
	ctx->names = json_array();
	ctx->bdevs = json_array();
	if (rpc_iostat_collect_names(ctx, p.name) != 0) {
		sl_jsonrpc_send_errno(req, -ENODEV, "bdev %s not found", p.name);
		json_decref(ctx->names);
		json_decref(ctx->bdevs);
		free(ctx);
		goto out;
	}
	if (p.per_channel) {
		bdev = sl_bdev_get_by_name(p.name);
		ctx->channels = json_array();
		sl_for_each_channel(bdev, rpc_iostat_channel, ctx, rpc_iostat_channels_done);
	} else {
		rpc_iostat_next(ctx);
	}
out:
	free(p.name);
	free(p.reset_mode);
}
SL_RPC_REGISTER("bdev_get_iostat", rpc_bdev_get_iostat, SL_RPC_RUNTIME)

/* ---- bdev_set_options -------------------------------------------------------- */

struct rpc_set_options {
	struct sl_bdev_opts opts;
	/* SPDK's global-pool and iobuf knobs: accepted, no meaning in per-channel pools. */
	uint32_t bdev_io_pool_size;
	uint32_t bdev_io_cache_size;
	bool bdev_auto_examine;
	uint32_t iobuf_small_cache_size;
	uint32_t iobuf_large_cache_size;
};

static const struct sl_json_object_decoder rpc_set_options_decoders[] = {
	{"bdev_io_per_channel", offsetof(struct rpc_set_options, opts.bdev_io_per_channel),
	 sl_json_decode_uint32, true},
	{"bounce_buf_size", offsetof(struct rpc_set_options, opts.bounce_buf_size),
	 sl_json_decode_uint32, true},
	{"bounce_buf_count", offsetof(struct rpc_set_options, opts.bounce_buf_count),
	 sl_json_decode_uint32, true},
	{"enable_stats", offsetof(struct rpc_set_options, opts.enable_stats), sl_json_decode_bool,
	 true},
	{"bdev_io_pool_size", offsetof(struct rpc_set_options, bdev_io_pool_size),
	 sl_json_decode_uint32, true},
	{"bdev_io_cache_size", offsetof(struct rpc_set_options, bdev_io_cache_size),
	 sl_json_decode_uint32, true},
	{"bdev_auto_examine", offsetof(struct rpc_set_options, bdev_auto_examine),
	 sl_json_decode_bool, true},
	{"iobuf_small_cache_size", offsetof(struct rpc_set_options, iobuf_small_cache_size),
	 sl_json_decode_uint32, true},
	{"iobuf_large_cache_size", offsetof(struct rpc_set_options, iobuf_large_cache_size),
	 sl_json_decode_uint32, true},
};

static void
rpc_bdev_set_options(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct rpc_set_options p = {0};

	sl_bdev_get_opts(&p.opts);
	if (params != NULL && sl_rpc_decode_params(req, params, rpc_set_options_decoders,
						   SL_COUNTOF(rpc_set_options_decoders), &p) != 0) {
		return;
	}
	if (p.opts.bdev_io_per_channel == 0) {
		sl_jsonrpc_send_error(req, SL_JSONRPC_ERROR_INVALID_PARAMS,
				      "bdev_io_per_channel must be > 0");
		return;
	}
	if (!SL_IS_POW2(p.opts.bounce_buf_size) || p.opts.bounce_buf_size < 4096) {
		sl_jsonrpc_send_error(req, SL_JSONRPC_ERROR_INVALID_PARAMS,
				      "bounce_buf_size %u is not a power of two >= 4096",
				      p.opts.bounce_buf_size);
		return;
	}
	sl_bdev_set_opts(&p.opts);
	sl_jsonrpc_send_bool(req, true);
}
SL_RPC_REGISTER("bdev_set_options", rpc_bdev_set_options, SL_RPC_STARTUP | SL_RPC_RUNTIME)

/* Written only when changed: SPDK's bdev_set_options rejects our keys, and a default
 * config should load in SPDK too. */
void
bdev_write_opts_json(json_t *config)
{
	const struct sl_bdev_opts *o = &g_bdev_opts;
	json_t *params;

	if (o->bdev_io_per_channel == 1024 && o->bounce_buf_size == 128 * 1024 &&
	    o->bounce_buf_count == 16 && o->enable_stats) {
		return;
	}
	params = json_pack("{s:I, s:I, s:I, s:b}", "bdev_io_per_channel",
			   (json_int_t)g_bdev_opts.bdev_io_per_channel, "bounce_buf_size",
			   (json_int_t)g_bdev_opts.bounce_buf_size, "bounce_buf_count",
			   (json_int_t)g_bdev_opts.bounce_buf_count, "enable_stats",
			   (int)g_bdev_opts.enable_stats);
	json_array_append_new(
		config, json_pack("{s:s, s:o}", "method", "bdev_set_options", "params", params));
}

/* ---- bdev_<module>_delete ---------------------------------------------------- */

struct rpc_bdev_delete {
	struct sl_jsonrpc_request *req;
	const char *method;
	char *name;
};

static const struct sl_json_object_decoder g_rpc_bdev_delete_decoders[] = {
	{"name", offsetof(struct rpc_bdev_delete, name), sl_json_decode_string, false},
};

static void
rpc_bdev_delete_free(struct rpc_bdev_delete *ctx)
{
	free(ctx->name);
	free(ctx);
}

static void
rpc_bdev_delete_done(void *cb_arg, int rc)
{
	struct rpc_bdev_delete *ctx = cb_arg;

	if (rc != 0) {
		sl_jsonrpc_send_errno(ctx->req, rc, "%s: %s", ctx->method, ctx->name);
	} else {
		sl_jsonrpc_send_bool(ctx->req, true);
	}
	rpc_bdev_delete_free(ctx);
}

void
sl_bdev_rpc_delete(struct sl_jsonrpc_request *req, const json_t *params, const char *method,
		   int (*delete_fn)(const char *name, sl_bdev_op_done_cb cb, void *cb_arg))
{
	struct rpc_bdev_delete *ctx = calloc(1, sizeof(*ctx));
	int rc;

	if (ctx == NULL) {
		sl_jsonrpc_send_errno(req, -ENOMEM, "%s", method);
		return;
	}
	ctx->req = req;
	ctx->method = method;
	if (sl_rpc_decode_params(req, params, g_rpc_bdev_delete_decoders,
				 SL_COUNTOF(g_rpc_bdev_delete_decoders), ctx) != 0) {
		rpc_bdev_delete_free(ctx);
		return;
	}
	rc = delete_fn(ctx->name, rpc_bdev_delete_done, ctx);
	if (rc == 0) {
		return;
	}
	if (rc == -EBUSY) {
		sl_jsonrpc_send_errno(req, rc, "%s: bdev %s is already being deleted", method,
				      ctx->name);
	} else {
		sl_jsonrpc_send_errno(req, rc, "%s: %s", method, ctx->name);
	}
	rpc_bdev_delete_free(ctx);
}
