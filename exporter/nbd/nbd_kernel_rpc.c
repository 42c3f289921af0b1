/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * nbd_start_disk / nbd_stop_disk / nbd_get_disks with SPDK's parameters and results,
 * and the subsystem whose saved config recreates the disks. SPDK keeps
 * nbd_start_disk in its "nbd" subsystem, which here belongs to the network server
 * (nbd_rpc.c); until that one calls sl_nbd_kernel_write_config_json and
 * sl_nbd_disk_stop_all itself, the disks are the "nbd_kernel" subsystem. Configs load
 * either way: entries run as RPCs whatever subsystem holds them.
 *
 * Beyond SPDK's parameters, nbd_start_disk takes num_connections, timeout,
 * dead_timeout, read_only and use_ioctl; save_config writes them only when they differ
 * from the defaults, so a config saved from a plain setup still loads in SPDK.
 *
 * The saved nbd_start_disk carries the device path. Restarting with the saved config
 * therefore asks for the same device; while the kernel still holds it (the daemon
 * died and the dead-connection timeout has not run out) it carries this bdev's
 * backend identifier, and the start re-binds it (NBD_CMD_RECONFIGURE) instead of
 * failing with -EBUSY. The identifier holds the bdev's UUID, which the saved config
 * also keeps (bdev_*_create "uuid"): a config written by hand must give the UUID too
 * for a re-bind to find its device.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/nbd_kernel.h"
#include "sluice/rpc.h"
#include "sluice/subsystem.h"
#include "sluice/util.h"

struct rpc_nbd_start_disk {
	char *bdev_name;
	char *nbd_device;
	uint32_t num_connections;
	uint32_t timeout;
	uint32_t dead_timeout;
	bool read_only;
	bool use_ioctl;
};

static const struct sl_json_object_decoder rpc_nbd_start_disk_decoders[] = {
	{"bdev_name", offsetof(struct rpc_nbd_start_disk, bdev_name), sl_json_decode_string, false},
	{"nbd_device", offsetof(struct rpc_nbd_start_disk, nbd_device), sl_json_decode_string,
	 true},
	{"num_connections", offsetof(struct rpc_nbd_start_disk, num_connections),
	 sl_json_decode_uint32, true},
	{"timeout", offsetof(struct rpc_nbd_start_disk, timeout), sl_json_decode_uint32, true},
	{"dead_timeout", offsetof(struct rpc_nbd_start_disk, dead_timeout), sl_json_decode_uint32,
	 true},
	{"read_only", offsetof(struct rpc_nbd_start_disk, read_only), sl_json_decode_bool, true},
	{"use_ioctl", offsetof(struct rpc_nbd_start_disk, use_ioctl), sl_json_decode_bool, true},
};

static void
rpc_nbd_start_disk_free(struct rpc_nbd_start_disk *p)
{
	free(p->bdev_name);
	free(p->nbd_device);
	free(p);
}

static const char *
rpc_nbd_start_error(int rc)
{
	switch (rc) {
	case -ENODEV:
		return "no such bdev or device";
	case -EBUSY:
		return "device in use (by another backend, or by a disk here)";
	case -EEXIST:
		return "bdev already exported to another device";
	case -EPERM:
		return "bdev claimed by someone else";
	case -ENOSPC:
		return "no free NBD device";
	case -EINVAL:
		return "invalid parameters (device path, block size, or size mismatch on re-bind)";
	default:
		return NULL;
	}
}

struct rpc_nbd_start_ctx {
	struct sl_jsonrpc_request *req;
	struct rpc_nbd_start_disk *p;
};

static void
rpc_nbd_start_disk_done(void *cb_arg, struct sl_nbd_disk *disk, int rc)
{
	struct rpc_nbd_start_ctx *ctx = cb_arg;
	const char *why = rpc_nbd_start_error(rc);

	if (rc != 0) {
		sl_jsonrpc_send_errno(ctx->req, rc, "nbd_start_disk %s%s%s%s%s", ctx->p->bdev_name,
				      ctx->p->nbd_device ? " " : "",
				      ctx->p->nbd_device ? ctx->p->nbd_device : "", why ? ": " : "",
				      why ? why : "");
	} else {
		sl_jsonrpc_send_result(ctx->req, json_string(sl_nbd_disk_get_path(disk)));
	}
	rpc_nbd_start_disk_free(ctx->p);
	free(ctx);
}

static void
rpc_nbd_start_disk(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct rpc_nbd_start_disk *p = calloc(1, sizeof(*p));
	struct rpc_nbd_start_ctx *ctx = calloc(1, sizeof(*ctx));
	struct sl_nbd_disk_opts opts;

	if (p == NULL || ctx == NULL) {
		free(p);
		free(ctx);
		sl_jsonrpc_send_errno(req, -ENOMEM, "nbd_start_disk");
		return;
	}
	p->timeout = SL_NBD_DISK_DEFAULT_TIMEOUT;
	p->dead_timeout = SL_NBD_DISK_DEFAULT_DEAD_TIMEOUT;
	if (sl_rpc_decode_params(req, params, rpc_nbd_start_disk_decoders,
				 SL_COUNTOF(rpc_nbd_start_disk_decoders), p) != 0) {
		rpc_nbd_start_disk_free(p);
		free(ctx);
		return;
	}
	sl_nbd_disk_opts_init(&opts);
	opts.bdev_name = p->bdev_name;
	opts.nbd_device = p->nbd_device;
	opts.num_connections = p->num_connections;
	opts.timeout_s = p->timeout;
	opts.dead_timeout_s = p->dead_timeout;
	opts.read_only = p->read_only;
	opts.use_ioctl = p->use_ioctl;
	ctx->req = req;
	ctx->p = p;
	sl_nbd_disk_start(&opts, rpc_nbd_start_disk_done, ctx);
}
SL_RPC_REGISTER("nbd_start_disk", rpc_nbd_start_disk, SL_RPC_RUNTIME)

struct rpc_nbd_stop_disk {
	char *nbd_device;
};

static const struct sl_json_object_decoder rpc_nbd_stop_disk_decoders[] = {
	{"nbd_device", offsetof(struct rpc_nbd_stop_disk, nbd_device), sl_json_decode_string,
	 false},
};

static void
rpc_nbd_stop_disk_done(void *cb_arg, int rc)
{
	struct sl_jsonrpc_request *req = cb_arg;

	if (rc != 0) {
		sl_jsonrpc_send_errno(req, rc, "nbd_stop_disk");
	} else {
		sl_jsonrpc_send_bool(req, true);
	}
}

static void
rpc_nbd_stop_disk(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct rpc_nbd_stop_disk p = {0};
	int rc;

	if (sl_rpc_decode_params(req, params, rpc_nbd_stop_disk_decoders,
				 SL_COUNTOF(rpc_nbd_stop_disk_decoders), &p) != 0) {
		goto out;
	}
	rc = sl_nbd_disk_stop(sl_nbd_disk_find(p.nbd_device), rpc_nbd_stop_disk_done, req);
	if (rc != 0) {
		sl_jsonrpc_send_errno(req, rc, "nbd_stop_disk %s: %s", p.nbd_device,
				      rc == -ENODEV ? "no such disk" : "already being stopped");
	}
out:
	free(p.nbd_device);
}
SL_RPC_REGISTER("nbd_stop_disk", rpc_nbd_stop_disk, SL_RPC_RUNTIME)

static json_t *
rpc_nbd_disk_json(struct sl_nbd_disk *disk)
{
	const struct sl_nbd_disk_opts *o = sl_nbd_disk_get_opts(disk);

	return json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:b, s:b, s:s}", "nbd_device",
			 sl_nbd_disk_get_path(disk), "bdev_name", sl_nbd_disk_get_bdev_name(disk),
			 "backend", sl_nbd_disk_get_backend(disk), "num_connections",
			 (json_int_t)o->num_connections, "timeout", (json_int_t)o->timeout_s,
			 "dead_timeout", (json_int_t)o->dead_timeout_s, "read_only", o->read_only,
			 "rebound", sl_nbd_disk_is_rebound(disk), "interface",
			 sl_nbd_disk_uses_netlink(disk) ? "netlink" : "ioctl");
}

struct rpc_nbd_get_disks {
	char *nbd_device;
};

static const struct sl_json_object_decoder rpc_nbd_get_disks_decoders[] = {
	{"nbd_device", offsetof(struct rpc_nbd_get_disks, nbd_device), sl_json_decode_string, true},
};

static void
rpc_nbd_get_disks(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct rpc_nbd_get_disks p = {0};
	struct sl_nbd_disk *disk;
	json_t *arr;

	if (sl_rpc_decode_params(req, params, rpc_nbd_get_disks_decoders,
				 SL_COUNTOF(rpc_nbd_get_disks_decoders), &p) != 0) {
		goto out;
	}
	arr = json_array();
	if (p.nbd_device != NULL) {
		disk = sl_nbd_disk_find(p.nbd_device);
		if (disk == NULL) {
			json_decref(arr);
			sl_jsonrpc_send_errno(req, -ENODEV, "nbd_get_disks %s: no such disk",
					      p.nbd_device);
			goto out;
		}
		json_array_append_new(arr, rpc_nbd_disk_json(disk));
	} else {
		for (disk = sl_nbd_disk_first(); disk != NULL; disk = sl_nbd_disk_next(disk)) {
			json_array_append_new(arr, rpc_nbd_disk_json(disk));
		}
	}
	sl_jsonrpc_send_result(req, arr);
out:
	free(p.nbd_device);
}
SL_RPC_REGISTER("nbd_get_disks", rpc_nbd_get_disks, SL_RPC_RUNTIME)

/* ---- Subsystem ---------------------------------------------------------------- */

static json_t *
nbd_disk_config_params(struct sl_nbd_disk *disk)
{
	const struct sl_nbd_disk_opts *o = sl_nbd_disk_get_opts(disk);
	json_t *params;

	params = json_pack("{s:s, s:s}", "bdev_name", sl_nbd_disk_get_bdev_name(disk), "nbd_device",
			   sl_nbd_disk_get_path(disk));
	if (params == NULL) {
		return NULL;
	}
	/* Only what differs from the defaults: SPDK refuses parameters it lacks. */
	if (sl_nbd_disk_num_connections_set(disk)) {
		json_object_set_new(params, "num_connections", json_integer(o->num_connections));
	}
	if (o->timeout_s != SL_NBD_DISK_DEFAULT_TIMEOUT) {
		json_object_set_new(params, "timeout", json_integer(o->timeout_s));
	}
	if (o->dead_timeout_s != SL_NBD_DISK_DEFAULT_DEAD_TIMEOUT) {
		json_object_set_new(params, "dead_timeout", json_integer(o->dead_timeout_s));
	}
	if (o->read_only) {
		json_object_set_new(params, "read_only", json_true());
	}
	if (o->use_ioctl) {
		json_object_set_new(params, "use_ioctl", json_true());
	}
	return params;
}

void
sl_nbd_kernel_write_config_json(json_t *config)
{
	struct sl_nbd_disk *disk;

	for (disk = sl_nbd_disk_first(); disk != NULL; disk = sl_nbd_disk_next(disk)) {
		json_array_append_new(config, json_pack("{s:s, s:o}", "method", "nbd_start_disk",
							"params", nbd_disk_config_params(disk)));
	}
}

static void
nbd_kernel_subsystem_init(sl_subsystem_done_fn done)
{
	done(0);
}

static void
nbd_kernel_fini_done(void *cb_arg, int rc)
{
	sl_subsystem_done_fn done = (sl_subsystem_done_fn)(uintptr_t)cb_arg;

	done(rc);
}

static void
nbd_kernel_subsystem_fini(sl_subsystem_done_fn done)
{
	/* As SPDK: an orderly stop disconnects the devices. Only a process that dies
	 * leaves them to be re-bound. */
	sl_nbd_disk_stop_all(nbd_kernel_fini_done, (void *)(uintptr_t)done);
}

static const char *const g_nbd_kernel_depends[] = {"bdev", NULL};

static struct sl_subsystem g_nbd_kernel_subsystem = {
	.name = "nbd_kernel",
	.init = nbd_kernel_subsystem_init,
	.fini = nbd_kernel_subsystem_fini,
	.write_config_json = sl_nbd_kernel_write_config_json,
	.depends = g_nbd_kernel_depends,
};
SL_SUBSYSTEM_REGISTER(g_nbd_kernel_subsystem)
