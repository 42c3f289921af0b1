/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * RPCs of the nvme module, with SPDK's names, parameters and results:
 * bdev_nvme_set_options, bdev_nvme_attach_controller, bdev_nvme_detach_controller,
 * bdev_nvme_get_controllers, bdev_nvme_reset_controller.
 *
 * SPDK's parameters for fabrics, multipath, reconnects and protection information
 * are accepted, so that SPDK's configs load unchanged, and have no effect on a PCIe
 * controller; a transport other than PCIe is refused.
 */

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bdev_nvme.h"
#include "sluice/rpc.h"
#include "sluice/util.h"

/* ---- bdev_nvme_set_options -------------------------------------------------------------- */

struct rpc_nvme_options {
	char *action_on_timeout;
	struct bdev_nvme_opts opts;
	/* Accepted for SPDK's configs; nothing here acts on them. */
	uint64_t ignored_u64;
	int32_t ignored_i32;
	bool ignored_bool;
};

#define RPC_OPT(NAME, FIELD, DECODE)                                                          \
	{                                                                                     \
		NAME, offsetof(struct rpc_nvme_options, FIELD), sl_json_decode_##DECODE, true \
	}

static const struct sl_json_object_decoder g_rpc_nvme_options_decoders[] = {
	RPC_OPT("action_on_timeout", action_on_timeout, string),
	RPC_OPT("timeout_us", opts.timeout_us, uint64),
	RPC_OPT("timeout_admin_us", opts.timeout_admin_us, uint64),
	RPC_OPT("nvme_adminq_poll_period_us", opts.nvme_adminq_poll_period_us, uint64),
	RPC_OPT("nvme_ioq_poll_period_us", opts.nvme_ioq_poll_period_us, uint64),
	RPC_OPT("io_queue_requests", opts.io_queue_requests, uint32),
	RPC_OPT("delay_cmd_submit", opts.delay_cmd_submit, bool),
	RPC_OPT("keep_alive_timeout_ms", ignored_u64, uint64),
	RPC_OPT("retry_count", ignored_u64, uint64),
	RPC_OPT("transport_retry_count", ignored_u64, uint64),
	RPC_OPT("arbitration_burst", ignored_u64, uint64),
	RPC_OPT("low_priority_weight", ignored_u64, uint64),
	RPC_OPT("medium_priority_weight", ignored_u64, uint64),
	RPC_OPT("high_priority_weight", ignored_u64, uint64),
	RPC_OPT("bdev_retry_count", ignored_i32, int32),
	RPC_OPT("transport_ack_timeout", ignored_u64, uint64),
	RPC_OPT("ctrlr_loss_timeout_sec", ignored_i32, int32),
	RPC_OPT("reconnect_delay_sec", ignored_u64, uint64),
	RPC_OPT("fast_io_fail_timeout_sec", ignored_u64, uint64),
	RPC_OPT("disable_auto_failback", ignored_bool, bool),
	RPC_OPT("generate_uuids", ignored_bool, bool),
	RPC_OPT("transport_tos", ignored_u64, uint64),
	RPC_OPT("nvme_error_stat", ignored_bool, bool),
	RPC_OPT("rdma_srq_size", ignored_u64, uint64),
	RPC_OPT("io_path_stat", ignored_bool, bool),
	RPC_OPT("allow_accel_sequence", ignored_bool, bool),
	RPC_OPT("rdma_max_cq_size", ignored_u64, uint64),
	RPC_OPT("rdma_cm_event_timeout_ms", ignored_u64, uint64),
};

static int
rpc_parse_timeout_action(const char *s, enum sl_nvme_timeout_action *action)
{
	if (strcasecmp(s, "none") == 0) {
		*action = SL_NVME_TIMEOUT_ACTION_NONE;
	} else if (strcasecmp(s, "reset") == 0) {
		*action = SL_NVME_TIMEOUT_ACTION_RESET;
	} else if (strcasecmp(s, "abort") == 0) {
		*action = SL_NVME_TIMEOUT_ACTION_ABORT;
	} else {
		return -EINVAL;
	}
	return 0;
}

static void
rpc_bdev_nvme_set_options(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct rpc_nvme_options p = {0};
	int rc;

	bdev_nvme_get_opts(&p.opts);
	if (sl_rpc_decode_params(req, params, g_rpc_nvme_options_decoders,
				 SL_COUNTOF(g_rpc_nvme_options_decoders), &p) != 0) {
		goto out;
	}
	if (p.action_on_timeout != NULL &&
	    rpc_parse_timeout_action(p.action_on_timeout, &p.opts.action_on_timeout) != 0) {
		sl_jsonrpc_send_error(req, -EINVAL,
				      "bdev_nvme_set_options: action_on_timeout '%s' is not one "
				      "of none, reset, abort",
				      p.action_on_timeout);
		goto out;
	}
	rc = bdev_nvme_set_opts(&p.opts);
	if (rc == -EPERM) {
		sl_jsonrpc_send_error(req, rc,
				      "bdev_nvme_set_options: controllers are attached already; "
				      "set options before the first bdev_nvme_attach_controller");
	} else if (rc != 0) {
		sl_jsonrpc_send_error(
			req, rc, "bdev_nvme_set_options: nvme_adminq_poll_period_us must be > 0");
	} else {
		sl_jsonrpc_send_bool(req, true);
	}
out:
	free(p.action_on_timeout);
}
SL_RPC_REGISTER("bdev_nvme_set_options", rpc_bdev_nvme_set_options, SL_RPC_STARTUP | SL_RPC_RUNTIME)

/* ---- bdev_nvme_attach_controller -------------------------------------------------------- */

struct rpc_nvme_trid {
	char *trtype;
	char *traddr;
	char *adrfam;
	char *trsvcid;
	char *subnqn;
	char *hostaddr;
	char *hostsvcid;
};

struct rpc_nvme_attach {
	char *name;
	struct rpc_nvme_trid trid;
	char *hostnqn;
	char *multipath;
	char *psk;
	uint32_t num_io_queues;
	bool ignored_bool;
	uint64_t ignored_u64;
	int32_t ignored_i32;
};

#define RPC_ATTACH(NAME, FIELD, DECODE, OPT)                                                \
	{                                                                                   \
		NAME, offsetof(struct rpc_nvme_attach, FIELD), sl_json_decode_##DECODE, OPT \
	}

static const struct sl_json_object_decoder g_rpc_nvme_attach_decoders[] = {
	RPC_ATTACH("name", name, string, false),
	RPC_ATTACH("trtype", trid.trtype, string, false),
	RPC_ATTACH("traddr", trid.traddr, string, false),
	RPC_ATTACH("adrfam", trid.adrfam, string, true),
	RPC_ATTACH("trsvcid", trid.trsvcid, string, true),
	RPC_ATTACH("subnqn", trid.subnqn, string, true),
	RPC_ATTACH("hostaddr", trid.hostaddr, string, true),
	RPC_ATTACH("hostsvcid", trid.hostsvcid, string, true),
	RPC_ATTACH("hostnqn", hostnqn, string, true),
	RPC_ATTACH("multipath", multipath, string, true),
	RPC_ATTACH("psk", psk, string, true),
	RPC_ATTACH("num_io_queues", num_io_queues, uint32, true),
	RPC_ATTACH("prchk_reftag", ignored_bool, bool, true),
	RPC_ATTACH("prchk_guard", ignored_bool, bool, true),
	RPC_ATTACH("hdgst", ignored_bool, bool, true),
	RPC_ATTACH("ddgst", ignored_bool, bool, true),
	RPC_ATTACH("fabrics_connect_timeout_us", ignored_u64, uint64, true),
	RPC_ATTACH("ctrlr_loss_timeout_sec", ignored_i32, int32, true),
	RPC_ATTACH("reconnect_delay_sec", ignored_u64, uint64, true),
	RPC_ATTACH("fast_io_fail_timeout_sec", ignored_u64, uint64, true),
};

static void
rpc_nvme_trid_free(struct rpc_nvme_trid *t)
{
	free(t->trtype);
	free(t->traddr);
	free(t->adrfam);
	free(t->trsvcid);
	free(t->subnqn);
	free(t->hostaddr);
	free(t->hostsvcid);
}

/* Build a transport ID from SPDK's separate keys, through the driver's parser (which
 * normalises a PCI address). */
static int
rpc_nvme_trid_parse(const struct rpc_nvme_trid *t, struct sl_nvme_transport_id *trid)
{
	char str[512];
	int n;

	n = snprintf(str, sizeof(str), "trtype:%s traddr:%s", t->trtype, t->traddr);
	if (t->adrfam != NULL) {
		n += snprintf(str + n, sizeof(str) - (size_t)SL_MIN(n, (int)sizeof(str)),
			      " adrfam:%s", t->adrfam);
	}
	if (t->trsvcid != NULL) {
		n += snprintf(str + n, sizeof(str) - (size_t)SL_MIN(n, (int)sizeof(str)),
			      " trsvcid:%s", t->trsvcid);
	}
	if (t->subnqn != NULL) {
		n += snprintf(str + n, sizeof(str) - (size_t)SL_MIN(n, (int)sizeof(str)),
			      " subnqn:%s", t->subnqn);
	}
	if (n >= (int)sizeof(str)) {
		return -EINVAL;
	}
	return sl_nvme_transport_id_parse(trid, str);
}

static void
rpc_bdev_nvme_attach_controller(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct rpc_nvme_attach p = {0};
	struct bdev_nvme_attach_opts opts = {0};
	json_t *names;
	char err[512];
	int rc;

	if (sl_rpc_decode_params(req, params, g_rpc_nvme_attach_decoders,
				 SL_COUNTOF(g_rpc_nvme_attach_decoders), &p) != 0) {
		goto out;
	}
	if (rpc_nvme_trid_parse(&p.trid, &opts.trid) != 0) {
		sl_jsonrpc_send_error(req, -EINVAL,
				      "bdev_nvme_attach_controller: bad transport ID (trtype '%s', "
				      "traddr '%s')",
				      p.trid.trtype, p.trid.traddr);
		goto out;
	}
	opts.name = p.name;
	opts.num_io_queues = p.num_io_queues;
	rc = bdev_nvme_attach(&opts, &names, err, sizeof(err));
	if (rc != 0) {
		sl_jsonrpc_send_error(req, rc, "bdev_nvme_attach_controller: %s", err);
		goto out;
	}
	sl_jsonrpc_send_result(req, names);
out:
	free(p.name);
	rpc_nvme_trid_free(&p.trid);
	free(p.hostnqn);
	free(p.multipath);
	free(p.psk);
}
SL_RPC_REGISTER("bdev_nvme_attach_controller", rpc_bdev_nvme_attach_controller, SL_RPC_RUNTIME)

/* ---- bdev_nvme_detach_controller -------------------------------------------------------- */

struct rpc_nvme_detach {
	char *name;
	struct rpc_nvme_trid trid;
};

static const struct sl_json_object_decoder g_rpc_nvme_detach_decoders[] = {
	{"name", offsetof(struct rpc_nvme_detach, name), sl_json_decode_string, false},
	{"trtype", offsetof(struct rpc_nvme_detach, trid.trtype), sl_json_decode_string, true},
	{"traddr", offsetof(struct rpc_nvme_detach, trid.traddr), sl_json_decode_string, true},
	{"adrfam", offsetof(struct rpc_nvme_detach, trid.adrfam), sl_json_decode_string, true},
	{"trsvcid", offsetof(struct rpc_nvme_detach, trid.trsvcid), sl_json_decode_string, true},
	{"subnqn", offsetof(struct rpc_nvme_detach, trid.subnqn), sl_json_decode_string, true},
	{"hostaddr", offsetof(struct rpc_nvme_detach, trid.hostaddr), sl_json_decode_string, true},
	{"hostsvcid", offsetof(struct rpc_nvme_detach, trid.hostsvcid), sl_json_decode_string,
	 true},
};

static void
rpc_nvme_detach_done(void *cb_arg, int rc)
{
	struct sl_jsonrpc_request *req = cb_arg;

	if (rc != 0) {
		sl_jsonrpc_send_errno(req, rc, "bdev_nvme_detach_controller");
	} else {
		sl_jsonrpc_send_bool(req, true);
	}
}

/* With a transport ID given, it must name the controller's one path. */
static int
rpc_nvme_detach_check_path(const char *name, const struct rpc_nvme_trid *t)
{
	const struct sl_nvme_transport_id *have = bdev_nvme_get_trid(name);
	struct sl_nvme_transport_id want;

	if (have == NULL) {
		return -ENODEV;
	}
	if (t->trtype == NULL || t->traddr == NULL) {
		return 0;
	}
	if (rpc_nvme_trid_parse(t, &want) != 0 || sl_nvme_transport_id_compare(have, &want) != 0) {
		return -ENODEV;
	}
	return 0;
}

static void
rpc_bdev_nvme_detach_controller(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct rpc_nvme_detach p = {0};
	int rc;

	if (sl_rpc_decode_params(req, params, g_rpc_nvme_detach_decoders,
				 SL_COUNTOF(g_rpc_nvme_detach_decoders), &p) != 0) {
		goto out;
	}
	rc = rpc_nvme_detach_check_path(p.name, &p.trid);
	if (rc == 0) {
		rc = bdev_nvme_detach(p.name, rpc_nvme_detach_done, req);
	}
	if (rc == -ENODEV) {
		sl_jsonrpc_send_error(req, rc, "bdev_nvme_detach_controller: no controller %s%s%s",
				      p.name, p.trid.traddr ? " with traddr " : "",
				      p.trid.traddr ? p.trid.traddr : "");
	} else if (rc != 0) {
		sl_jsonrpc_send_errno(req, rc, "bdev_nvme_detach_controller: %s", p.name);
	}
out:
	free(p.name);
	rpc_nvme_trid_free(&p.trid);
}
SL_RPC_REGISTER("bdev_nvme_detach_controller", rpc_bdev_nvme_detach_controller, SL_RPC_RUNTIME)

/* ---- bdev_nvme_get_controllers, bdev_nvme_reset_controller ------------------------------- */

struct rpc_nvme_name {
	char *name;
};

static const struct sl_json_object_decoder g_rpc_nvme_opt_name_decoders[] = {
	{"name", offsetof(struct rpc_nvme_name, name), sl_json_decode_string, true},
};

static const struct sl_json_object_decoder g_rpc_nvme_name_decoders[] = {
	{"name", offsetof(struct rpc_nvme_name, name), sl_json_decode_string, false},
};

static void
rpc_bdev_nvme_get_controllers(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct rpc_nvme_name p = {0};
	json_t *list;

	if (sl_rpc_decode_params(req, params, g_rpc_nvme_opt_name_decoders,
				 SL_COUNTOF(g_rpc_nvme_opt_name_decoders), &p) != 0) {
		goto out;
	}
	list = json_array();
	if (list == NULL) {
		sl_jsonrpc_send_errno(req, -ENOMEM, "bdev_nvme_get_controllers");
		goto out;
	}
	if (bdev_nvme_dump_controllers(p.name, list) != 0) {
		json_decref(list);
		sl_jsonrpc_send_error(req, -ENODEV, "bdev_nvme_get_controllers: no controller %s",
				      p.name);
		goto out;
	}
	sl_jsonrpc_send_result(req, list);
out:
	free(p.name);
}
SL_RPC_REGISTER("bdev_nvme_get_controllers", rpc_bdev_nvme_get_controllers, SL_RPC_RUNTIME)

static void
rpc_nvme_reset_done(void *cb_arg, int rc)
{
	struct sl_jsonrpc_request *req = cb_arg;

	if (rc != 0) {
		sl_jsonrpc_send_errno(req, rc, "bdev_nvme_reset_controller");
	} else {
		sl_jsonrpc_send_bool(req, true);
	}
}

static void
rpc_bdev_nvme_reset_controller(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct rpc_nvme_name p = {0};
	int rc;

	if (sl_rpc_decode_params(req, params, g_rpc_nvme_name_decoders,
				 SL_COUNTOF(g_rpc_nvme_name_decoders), &p) != 0) {
		goto out;
	}
	rc = bdev_nvme_reset(p.name, rpc_nvme_reset_done, req);
	if (rc == -ENODEV) {
		sl_jsonrpc_send_error(req, rc, "bdev_nvme_reset_controller: no controller %s",
				      p.name);
	} else if (rc != 0) {
		sl_jsonrpc_send_errno(req, rc, "bdev_nvme_reset_controller: %s", p.name);
	}
out:
	free(p.name);
}
SL_RPC_REGISTER("bdev_nvme_reset_controller", rpc_bdev_nvme_reset_controller, SL_RPC_RUNTIME)
