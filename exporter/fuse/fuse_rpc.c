/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * FUSE RPCs and the "fuse" subsystem.
 *
 * Disks, after SPDK's nbd_start_disk: fuse_start_disk {bdev_name, path, read_only,
 * uid, gid, mode, allow_other}, fuse_stop_disk {path}, fuse_get_disks {path?}.
 * Directories: fuse_mount {path, uid, gid, mode, allow_other}, fuse_unmount {path},
 * fuse_add_export {bdev_name, name?, read_only?, path?}, fuse_remove_export {name,
 * path?} (path may be left out when one directory is mounted).
 * mode is an integer or an octal string ("0640"). save_config writes them back.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/log.h"
#include "sluice/rpc.h"
#include "sluice/subsystem.h"
#include "sluice/util.h"

#include "fuse_internal.h"

struct fuse_rpc_params {
	char *bdev_name;
	char *path;
	char *name;
	bool read_only;
	uint32_t uid;
	uint32_t gid;
	uint32_t mode;
	bool allow_other;
};

static void
fuse_rpc_params_free(struct fuse_rpc_params *p)
{
	free(p->bdev_name);
	free(p->path);
	free(p->name);
}

/* A permission mode: an integer, or a string in octal ("0600"). */
static int
fuse_decode_mode(const json_t *val, void *out, char *err, size_t errlen)
{
	json_int_t v = -1;
	const char *s;
	char *end;

	if (json_is_integer(val)) {
		v = json_integer_value(val);
	} else if (json_is_string(val)) {
		s = json_string_value(val);
		v = strtol(s, &end, 8);
		if (*s == '\0' || *end != '\0') {
			v = -1;
		}
	}
	if (v < 0 || v > 07777) {
		snprintf(err, errlen, "must be a mode in [0, 07777] (integer or octal string)");
		return -EINVAL;
	}
	*(uint32_t *)out = (uint32_t)v;
	return 0;
}

#define FUSE_DEC(NAME, FIELD, FN, OPT)                                                         \
	{                                                                                      \
		.name = NAME, .offset = offsetof(struct fuse_rpc_params, FIELD), .decode = FN, \
		.optional = OPT,                                                               \
	}

static const struct sl_json_object_decoder g_start_disk_decoders[] = {
	FUSE_DEC("bdev_name", bdev_name, sl_json_decode_string, false),
	FUSE_DEC("path", path, sl_json_decode_string, false),
	FUSE_DEC("read_only", read_only, sl_json_decode_bool, true),
	FUSE_DEC("uid", uid, sl_json_decode_uint32, true),
	FUSE_DEC("gid", gid, sl_json_decode_uint32, true),
	FUSE_DEC("mode", mode, fuse_decode_mode, true),
	FUSE_DEC("allow_other", allow_other, sl_json_decode_bool, true),
};

static const struct sl_json_object_decoder g_mount_decoders[] = {
	FUSE_DEC("path", path, sl_json_decode_string, false),
	FUSE_DEC("uid", uid, sl_json_decode_uint32, true),
	FUSE_DEC("gid", gid, sl_json_decode_uint32, true),
	FUSE_DEC("mode", mode, fuse_decode_mode, true),
	FUSE_DEC("allow_other", allow_other, sl_json_decode_bool, true),
};

static const struct sl_json_object_decoder g_path_decoders[] = {
	FUSE_DEC("path", path, sl_json_decode_string, false),
};

static const struct sl_json_object_decoder g_get_decoders[] = {
	FUSE_DEC("path", path, sl_json_decode_string, true),
};

static const struct sl_json_object_decoder g_add_export_decoders[] = {
	FUSE_DEC("bdev_name", bdev_name, sl_json_decode_string, false),
	FUSE_DEC("name", name, sl_json_decode_string, true),
	FUSE_DEC("read_only", read_only, sl_json_decode_bool, true),
	FUSE_DEC("path", path, sl_json_decode_string, true),
};

static const struct sl_json_object_decoder g_remove_export_decoders[] = {
	FUSE_DEC("name", name, sl_json_decode_string, false),
	FUSE_DEC("path", path, sl_json_decode_string, true),
};

/* Decode with the defaults of sl_fuse_opts_init(). \return 0 or -EINVAL (answered). */
static int
fuse_rpc_decode(struct sl_jsonrpc_request *req, const json_t *params,
		const struct sl_json_object_decoder *decoders, size_t count,
		struct fuse_rpc_params *p, struct sl_fuse_opts *opts)
{
	struct sl_fuse_opts defaults;

	memset(p, 0, sizeof(*p));
	sl_fuse_opts_init(&defaults);
	p->uid = defaults.uid;
	p->gid = defaults.gid;
	p->mode = defaults.mode;
	if (sl_rpc_decode_params(req, params, decoders, count, p) != 0) {
		fuse_rpc_params_free(p);
		return -EINVAL;
	}
	if (opts != NULL) {
		*opts = defaults;
		opts->read_only = p->read_only;
		opts->uid = p->uid;
		opts->gid = p->gid;
		opts->mode = p->mode;
		opts->allow_other = p->allow_other;
	}
	return 0;
}

/* What an asynchronous call answers with: true, or the errno naming the object. */
struct fuse_rpc_ctx {
	struct sl_jsonrpc_request *req;
	char what[512];
};

static void
fuse_rpc_done(void *cb_arg, int rc)
{
	struct fuse_rpc_ctx *ctx = cb_arg;

	if (rc == 0) {
		sl_jsonrpc_send_bool(ctx->req, true);
	} else {
		sl_jsonrpc_send_errno(ctx->req, rc, "%s", ctx->what);
	}
	free(ctx);
}

static struct fuse_rpc_ctx *fuse_rpc_ctx_new(struct sl_jsonrpc_request *req, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static struct fuse_rpc_ctx *
fuse_rpc_ctx_new(struct sl_jsonrpc_request *req, const char *fmt, ...)
{
	struct fuse_rpc_ctx *ctx = calloc(1, sizeof(*ctx));
	va_list ap;

	if (ctx == NULL) {
		sl_jsonrpc_send_errno(req, -ENOMEM, "fuse");
		return NULL;
	}
	ctx->req = req;
	va_start(ap, fmt);
	vsnprintf(ctx->what, sizeof(ctx->what), fmt, ap);
	va_end(ap);
	return ctx;
}

static void
rpc_fuse_start_disk(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct fuse_rpc_params p;
	struct sl_fuse_opts opts;
	struct fuse_rpc_ctx *ctx;

	if (fuse_rpc_decode(req, params, g_start_disk_decoders, SL_COUNTOF(g_start_disk_decoders),
			    &p, &opts) != 0) {
		return;
	}
	ctx = fuse_rpc_ctx_new(req, "fuse_start_disk: bdev %s on %s", p.bdev_name, p.path);
	if (ctx != NULL) {
		sl_fuse_disk_start(p.bdev_name, p.path, &opts, fuse_rpc_done, ctx);
	}
	fuse_rpc_params_free(&p);
}
SL_RPC_REGISTER("fuse_start_disk", rpc_fuse_start_disk, SL_RPC_RUNTIME)

static void
rpc_fuse_stop_disk(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct fuse_rpc_params p;
	struct fuse_rpc_ctx *ctx;

	if (fuse_rpc_decode(req, params, g_path_decoders, SL_COUNTOF(g_path_decoders), &p, NULL) !=
	    0) {
		return;
	}
	ctx = fuse_rpc_ctx_new(req, "fuse_stop_disk: %s", p.path);
	if (ctx != NULL) {
		sl_fuse_disk_stop(p.path, fuse_rpc_done, ctx);
	}
	fuse_rpc_params_free(&p);
}
SL_RPC_REGISTER("fuse_stop_disk", rpc_fuse_stop_disk, SL_RPC_RUNTIME)

static void
rpc_fuse_mount(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct fuse_rpc_params p;
	struct sl_fuse_opts opts;
	struct fuse_rpc_ctx *ctx;

	if (fuse_rpc_decode(req, params, g_mount_decoders, SL_COUNTOF(g_mount_decoders), &p,
			    &opts) != 0) {
		return;
	}
	ctx = fuse_rpc_ctx_new(req, "fuse_mount: %s", p.path);
	if (ctx != NULL) {
		sl_fuse_mount_start(p.path, &opts, fuse_rpc_done, ctx);
	}
	fuse_rpc_params_free(&p);
}
SL_RPC_REGISTER("fuse_mount", rpc_fuse_mount, SL_RPC_RUNTIME)

static void
rpc_fuse_unmount(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct fuse_rpc_params p;
	struct fuse_rpc_ctx *ctx;

	if (fuse_rpc_decode(req, params, g_path_decoders, SL_COUNTOF(g_path_decoders), &p, NULL) !=
	    0) {
		return;
	}
	ctx = fuse_rpc_ctx_new(req, "fuse_unmount: %s", p.path);
	if (ctx != NULL) {
		sl_fuse_mount_stop(p.path, fuse_rpc_done, ctx);
	}
	fuse_rpc_params_free(&p);
}
SL_RPC_REGISTER("fuse_unmount", rpc_fuse_unmount, SL_RPC_RUNTIME)

static void
rpc_fuse_add_export(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct fuse_rpc_params p;
	int rc;

	if (fuse_rpc_decode(req, params, g_add_export_decoders, SL_COUNTOF(g_add_export_decoders),
			    &p, NULL) != 0) {
		return;
	}
	rc = sl_fuse_export_add(p.path, p.bdev_name, p.name, p.read_only);
	if (rc == 0) {
		sl_jsonrpc_send_bool(req, true);
	} else if (rc == -ENOENT) {
		sl_jsonrpc_send_errno(
			req, rc, "fuse_add_export: %s",
			p.path != NULL ? p.path : "need 'path': no directory mount, or several");
	} else {
		sl_jsonrpc_send_errno(req, rc, "fuse_add_export: bdev %s as '%s'", p.bdev_name,
				      p.name != NULL ? p.name : p.bdev_name);
	}
	fuse_rpc_params_free(&p);
}
SL_RPC_REGISTER("fuse_add_export", rpc_fuse_add_export, SL_RPC_RUNTIME)

static void
rpc_fuse_remove_export(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct fuse_rpc_params p;
	struct fuse_rpc_ctx *ctx;

	if (fuse_rpc_decode(req, params, g_remove_export_decoders,
			    SL_COUNTOF(g_remove_export_decoders), &p, NULL) != 0) {
		return;
	}
	ctx = fuse_rpc_ctx_new(req, "fuse_remove_export: '%s' in %s", p.name,
			       p.path != NULL ? p.path : "the directory mount");
	if (ctx != NULL) {
		sl_fuse_export_remove(p.path, p.name, fuse_rpc_done, ctx);
	}
	fuse_rpc_params_free(&p);
}
SL_RPC_REGISTER("fuse_remove_export", rpc_fuse_remove_export, SL_RPC_RUNTIME)

/* ---- fuse_get_disks ------------------------------------------------------------- */

struct fuse_get_ctx {
	const char *path;
	json_t *arr;
};

static void
fuse_get_one(const struct sl_fuse_export_info *info, void *cb_arg)
{
	struct fuse_get_ctx *ctx = cb_arg;
	char mode[8], *file = NULL;
	json_t *o;

	if (info->name != NULL && asprintf(&file, "%s/%s", info->mount_path, info->name) < 0) {
		file = NULL;
	}
	if (ctx->path != NULL && strcmp(ctx->path, info->mount_path) != 0 &&
	    (file == NULL || strcmp(ctx->path, file) != 0)) {
		free(file);
		return;
	}
	snprintf(mode, sizeof(mode), "0%o", info->opts->mode);
	o = json_object();
	json_object_set_new(o, "path", json_string(file != NULL ? file : info->mount_path));
	json_object_set_new(o, "mount", json_string(info->mount_path));
	json_object_set_new(o, "type", json_string(info->is_dir ? "directory" : "disk"));
	json_object_set_new(o, "bdev_name",
			    info->bdev_name != NULL ? json_string(info->bdev_name) : json_null());
	if (info->name != NULL) {
		json_object_set_new(o, "name", json_string(info->name));
	}
	json_object_set_new(o, "read_only", json_boolean(info->read_only));
	json_object_set_new(o, "uid", json_integer(info->opts->uid));
	json_object_set_new(o, "gid", json_integer(info->opts->gid));
	json_object_set_new(o, "mode", json_string(mode));
	json_object_set_new(o, "allow_other", json_boolean(info->opts->allow_other));
	json_array_append_new(ctx->arr, o);
	free(file);
}

static void
rpc_fuse_get_disks(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct fuse_rpc_params p;
	struct fuse_get_ctx ctx;
	char *canon;

	if (fuse_rpc_decode(req, params, g_get_decoders, SL_COUNTOF(g_get_decoders), &p, NULL) !=
	    0) {
		return;
	}
	if (p.path != NULL) {
		/* Compare with the canonical paths mounts are kept under. */
		canon = fuse_path_canonical(p.path);
		if (canon != NULL) {
			free(p.path);
			p.path = canon;
		}
	}
	ctx.path = p.path;
	ctx.arr = json_array();
	sl_fuse_for_each_export(fuse_get_one, &ctx);
	if (p.path != NULL && json_array_size(ctx.arr) == 0) {
		json_decref(ctx.arr);
		sl_jsonrpc_send_errno(req, -ENOENT, "fuse_get_disks: %s", p.path);
	} else {
		sl_jsonrpc_send_result(req, ctx.arr);
	}
	fuse_rpc_params_free(&p);
}
SL_RPC_REGISTER("fuse_get_disks", rpc_fuse_get_disks, SL_RPC_RUNTIME)

/* ---- subsystem ---------------------------------------------------------------------- */

static json_t *
fuse_config_entry(const char *method, json_t *params)
{
	json_t *o = json_object();

	json_object_set_new(o, "method", json_string(method));
	json_object_set_new(o, "params", params);
	return o;
}

static json_t *
fuse_config_opts(const struct sl_fuse_export_info *info)
{
	char mode[8];
	json_t *p = json_object();

	snprintf(mode, sizeof(mode), "0%o", info->opts->mode);
	json_object_set_new(p, "path", json_string(info->mount_path));
	json_object_set_new(p, "uid", json_integer(info->opts->uid));
	json_object_set_new(p, "gid", json_integer(info->opts->gid));
	json_object_set_new(p, "mode", json_string(mode));
	json_object_set_new(p, "allow_other", json_boolean(info->opts->allow_other));
	return p;
}

struct fuse_config_ctx {
	json_t *config;
	const char *last_dir; /* the directory whose fuse_mount was written */
};

static void
fuse_config_one(const struct sl_fuse_export_info *info, void *cb_arg)
{
	struct fuse_config_ctx *ctx = cb_arg;
	json_t *p;

	if (!info->is_dir) {
		p = fuse_config_opts(info);
		json_object_set_new(p, "bdev_name", json_string(info->bdev_name));
		json_object_set_new(p, "read_only", json_boolean(info->read_only));
		json_array_append_new(ctx->config, fuse_config_entry("fuse_start_disk", p));
		return;
	}
	if (ctx->last_dir != info->mount_path) {
		ctx->last_dir = info->mount_path;
		json_array_append_new(ctx->config,
				      fuse_config_entry("fuse_mount", fuse_config_opts(info)));
	}
	if (info->bdev_name == NULL) {
		return;
	}
	p = json_object();
	json_object_set_new(p, "path", json_string(info->mount_path));
	json_object_set_new(p, "bdev_name", json_string(info->bdev_name));
	json_object_set_new(p, "name", json_string(info->name));
	json_object_set_new(p, "read_only", json_boolean(info->read_only));
	json_array_append_new(ctx->config, fuse_config_entry("fuse_add_export", p));
}

static void
fuse_subsystem_write_config(json_t *config)
{
	struct fuse_config_ctx ctx = {.config = config};

	sl_fuse_for_each_export(fuse_config_one, &ctx);
}

static void
fuse_subsystem_init(sl_subsystem_done_fn done)
{
	int rc = sl_fuse_cleanup_stale_mounts();

	if (rc < 0) {
		SL_WARNLOG("fuse: cannot look for stale mounts: %s\n", strerror(-rc));
	}
	done(0);
}

static void
fuse_subsystem_fini_done(void *cb_arg, int rc)
{
	sl_subsystem_done_fn done = (sl_subsystem_done_fn)(uintptr_t)cb_arg;

	done(rc);
}

static void
fuse_subsystem_fini(sl_subsystem_done_fn done)
{
	sl_fuse_stop_all(fuse_subsystem_fini_done, (void *)(uintptr_t)done);
}

static const char *const g_fuse_depends[] = {"bdev", NULL};

static struct sl_subsystem g_fuse_subsystem = {
	.name = "fuse",
	.init = fuse_subsystem_init,
	.fini = fuse_subsystem_fini,
	.write_config_json = fuse_subsystem_write_config,
	.depends = g_fuse_depends,
};
SL_SUBSYSTEM_REGISTER(g_fuse_subsystem)
