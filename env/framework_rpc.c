/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * The framework's JSON-RPC methods, with SPDK's names, parameters and result shapes
 * (rpc_get_methods, spdk_get_version, framework_*, thread_get_stats, log_*,
 * spdk_kill_instance), plus save_config, which SPDK's rpc.py assembles on the client
 * side from framework_get_subsystems and framework_get_config.
 */

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "app_internal.h"
#include "sluice/app.h"
#include "sluice/cpuset.h"
#include "sluice/log.h"
#include "sluice/reactor.h"
#include "sluice/rpc.h"
#include "sluice/subsystem.h"
#include "sluice/thread.h"
#include "sluice/util.h"

#define RPC_ANY_STATE (SL_RPC_STARTUP | SL_RPC_RUNTIME)

void
app_rpc_link(void)
{
}

/* Methods without parameters accept none, {} or [] (clients differ), nothing else. */
static bool
rpc_reject_params(struct sl_jsonrpc_request *req, const json_t *params)
{
	size_t n = json_is_object(params) ? json_object_size(params) : json_array_size(params);

	if (params == NULL || n == 0) {
		return false;
	}
	sl_jsonrpc_send_error(req, SL_JSONRPC_ERROR_INVALID_PARAMS,
			      "this method takes no parameters");
	return true;
}

/* ---- rpc_get_methods ----------------------------------------------------------- */

struct rpc_get_methods_params {
	bool current;
	bool include_aliases;
};

static const struct sl_json_object_decoder g_get_methods_decoders[] = {
	{"current", offsetof(struct rpc_get_methods_params, current), sl_json_decode_bool, true},
	{"include_aliases", offsetof(struct rpc_get_methods_params, include_aliases),
	 sl_json_decode_bool, true},
};

static void
rpc_get_methods(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct rpc_get_methods_params p = {0};
	const struct sl_rpc_method *m;
	uint32_t state = sl_rpc_get_state();
	json_t *names;

	if (params != NULL && sl_rpc_decode_params(req, params, g_get_methods_decoders,
						   SL_COUNTOF(g_get_methods_decoders), &p) != 0) {
		return;
	}
	names = json_array();
	for (m = sl_rpc_get_methods(); m != NULL && names != NULL; m = m->next) {
		if ((p.current && !(m->state_mask & state)) ||
		    (!p.include_aliases && m->alias_of != NULL)) {
			continue;
		}
		json_array_append_new(names, json_string(m->name));
	}
	sl_jsonrpc_send_result(req, names);
}
SL_RPC_REGISTER("rpc_get_methods", rpc_get_methods, RPC_ANY_STATE)

/* ---- versions -------------------------------------------------------------------- */

static void
rpc_get_version(struct sl_jsonrpc_request *req, const json_t *params)
{
	if (rpc_reject_params(req, params)) {
		return;
	}
	sl_jsonrpc_send_result(req, json_pack("{s:s, s:{s:i, s:i, s:i, s:s}}", "version",
					      SL_VERSION_STRING, "fields", "major",
					      SL_VERSION_MAJOR, "minor", SL_VERSION_MINOR, "patch",
					      SL_VERSION_PATCH, "suffix", SL_VERSION_SUFFIX));
}
SL_RPC_REGISTER("sluice_get_version", rpc_get_version, RPC_ANY_STATE)

static void
rpc_spdk_get_version(struct sl_jsonrpc_request *req, const json_t *params)
{
	rpc_get_version(req, params);
}
SL_RPC_REGISTER("spdk_get_version", rpc_spdk_get_version, RPC_ANY_STATE)

/* ---- framework_start_init / framework_wait_init -------------------------------- */

static void
rpc_init_done(int rc, void *ctx)
{
	struct sl_jsonrpc_request *req = ctx;

	if (rc != 0) {
		sl_jsonrpc_send_errno(req, rc, "subsystem initialisation");
		return;
	}
	sl_jsonrpc_send_bool(req, true);
}

static void
rpc_framework_start_init(struct sl_jsonrpc_request *req, const json_t *params)
{
	if (rpc_reject_params(req, params)) {
		return;
	}
	sl_app_start_init(rpc_init_done, req);
}
SL_RPC_REGISTER("framework_start_init", rpc_framework_start_init, SL_RPC_STARTUP)

static void
rpc_framework_wait_init(struct sl_jsonrpc_request *req, const json_t *params)
{
	if (rpc_reject_params(req, params)) {
		return;
	}
	sl_app_wait_init(rpc_init_done, req);
}
SL_RPC_REGISTER("framework_wait_init", rpc_framework_wait_init, RPC_ANY_STATE)

/* ---- framework_get_subsystems / framework_get_config / save_config -------------- */

static void
rpc_framework_get_subsystems(struct sl_jsonrpc_request *req, const json_t *params)
{
	const struct sl_subsystem *s;
	const char *const *dep;
	json_t *result, *deps;

	if (rpc_reject_params(req, params)) {
		return;
	}
	result = json_array();
	for (s = sl_subsystem_first(); s != NULL && result != NULL; s = sl_subsystem_next(s)) {
		deps = json_array();
		for (dep = s->depends; dep != NULL && *dep != NULL; dep++) {
			json_array_append_new(deps, json_string(*dep));
		}
		json_array_append_new(
			result, json_pack("{s:s, s:o}", "subsystem", s->name, "depends_on", deps));
	}
	sl_jsonrpc_send_result(req, result);
}
SL_RPC_REGISTER("framework_get_subsystems", rpc_framework_get_subsystems, SL_RPC_RUNTIME)

struct rpc_get_config_params {
	char *name;
};

static const struct sl_json_object_decoder g_get_config_decoders[] = {
	{"name", offsetof(struct rpc_get_config_params, name), sl_json_decode_string, false},
};

static void
rpc_framework_get_config(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct rpc_get_config_params p = {0};
	const struct sl_subsystem *s;

	if (sl_rpc_decode_params(req, params, g_get_config_decoders,
				 SL_COUNTOF(g_get_config_decoders), &p) != 0) {
		return;
	}
	s = sl_subsystem_find(p.name);
	if (s == NULL) {
		sl_jsonrpc_send_error(req, SL_JSONRPC_ERROR_INVALID_PARAMS,
				      "subsystem '%s' not found", p.name);
	} else {
		sl_jsonrpc_send_result(req, sl_subsystem_get_config(s));
	}
	free(p.name);
}
SL_RPC_REGISTER("framework_get_config", rpc_framework_get_config, SL_RPC_RUNTIME)

static void
rpc_save_config(struct sl_jsonrpc_request *req, const json_t *params)
{
	json_t *config;

	if (rpc_reject_params(req, params)) {
		return;
	}
	config = sl_subsystem_save_config();
	if (config == NULL) {
		sl_jsonrpc_send_errno(req, -ENOMEM, "save_config");
		return;
	}
	sl_jsonrpc_send_result(req, config);
}
SL_RPC_REGISTER("save_config", rpc_save_config, SL_RPC_RUNTIME)

/* ---- framework_get_reactors / thread_get_stats ---------------------------------- */

struct rpc_threads_ctx {
	struct sl_jsonrpc_request *req;
	json_t *threads;    /* one object per lightweight thread, in visit order */
	json_t *lw_threads; /* framework_get_reactors: an array per reactor index */
	json_t *tids;
	bool reactors;
};

static json_t *
rpc_cpumask_json(const struct sl_cpuset *set)
{
	char buf[SL_CPUSET_SIZE / 4 + 8];
	const char *s = sl_cpuset_fmt(set, buf, sizeof(buf));

	/* SPDK prints masks as bare hex ("3"). */
	if (strncasecmp(s, "0x", 2) == 0) {
		s += 2;
	}
	return json_string(s);
}

/* Runs on each thread in turn (sl_for_each_thread serialises the visits). */
static void
rpc_thread_visit(void *arg)
{
	struct rpc_threads_ctx *ctx = arg;
	struct sl_thread *thread = sl_get_thread();
	uint32_t idx = sl_reactor_current_index();
	struct sl_reactor_info info = {0};
	struct sl_thread_stats stats = {0};
	json_t *t;

	sl_thread_get_stats(thread, &stats);
	if (idx != UINT32_MAX) {
		sl_reactor_get_info(idx, &info);
	}
	t = json_pack("{s:s, s:I, s:o}", "name", sl_thread_get_name(thread), "id",
		      (json_int_t)sl_thread_get_id(thread), "cpumask",
		      rpc_cpumask_json(sl_thread_get_cpumask(thread)));
	if (t == NULL) {
		return;
	}
	if (ctx->reactors) {
		if (idx != UINT32_MAX && idx < json_array_size(ctx->lw_threads)) {
			json_array_append_new(json_array_get(ctx->lw_threads, idx), t);
			json_array_set_new(ctx->tids, idx, json_integer(gettid()));
		} else {
			json_decref(t);
		}
		return;
	}
	json_object_set_new(t, "busy", json_integer((json_int_t)stats.busy_tsc));
	json_object_set_new(t, "idle", json_integer((json_int_t)stats.idle_tsc));
	json_object_set_new(t, "in_interrupt", json_boolean(info.in_interrupt));
	if (idx != UINT32_MAX) {
		json_object_set_new(t, "lcore", json_integer(info.core));
	}
	json_array_append_new(ctx->threads, t);
}

static json_t *
rpc_reactors_json(struct rpc_threads_ctx *ctx)
{
	struct sl_reactor_info info;
	json_t *reactors = json_array(), *r;
	uint32_t i;

	for (i = 0; i < sl_reactor_count() && reactors != NULL; i++) {
		if (sl_reactor_get_info(i, &info) != 0) {
			continue;
		}
		r = json_pack("{s:i, s:I, s:I, s:b, s:I, s:i, s:O}", "lcore", (int)info.core,
			      "busy", (json_int_t)info.busy_tsc, "idle", (json_int_t)info.idle_tsc,
			      "in_interrupt", info.in_interrupt, "sleeps", (json_int_t)info.sleeps,
			      "thread_count", (int)info.thread_count, "lw_threads",
			      json_array_get(ctx->lw_threads, i));
		if (r != NULL) {
			json_object_set_new(r, "is_hot", json_boolean(info.hot));
			json_object_set_new(r, "hot_periods",
					    json_integer((json_int_t)info.hot_periods));
			json_object_set_new(r, "hot", json_integer((json_int_t)info.hot_tsc));
		}
		if (r != NULL && json_integer_value(json_array_get(ctx->tids, i)) > 0) {
			json_object_set(r, "tid", json_array_get(ctx->tids, i));
		}
		json_array_append_new(reactors, r);
	}
	return reactors;
}

static void
rpc_threads_done(void *arg)
{
	struct rpc_threads_ctx *ctx = arg;
	json_t *result;

	if (ctx->reactors) {
		result = json_pack("{s:I, s:i, s:s, s:o}", "tick_rate",
				   (json_int_t)sl_get_ticks_hz(), "pid", (int)getpid(), "mode",
				   sl_reactors_get_mode() == SL_REACTOR_BUSY_POLL ? "busy-poll"
										  : "adaptive",
				   "reactors", rpc_reactors_json(ctx));
	} else {
		result = json_pack("{s:I, s:O}", "tick_rate", (json_int_t)sl_get_ticks_hz(),
				   "threads", ctx->threads);
	}
	if (result == NULL) {
		sl_jsonrpc_send_errno(ctx->req, -ENOMEM, "collecting thread statistics");
	} else {
		sl_jsonrpc_send_result(ctx->req, result);
	}
	json_decref(ctx->threads);
	json_decref(ctx->lw_threads);
	json_decref(ctx->tids);
	free(ctx);
}

static void
rpc_threads_collect(struct sl_jsonrpc_request *req, const json_t *params, bool reactors)
{
	struct rpc_threads_ctx *ctx;
	uint32_t i;

	if (rpc_reject_params(req, params)) {
		return;
	}
	ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL) {
		sl_jsonrpc_send_errno(req, -ENOMEM, "collecting thread statistics");
		return;
	}
	ctx->req = req;
	ctx->reactors = reactors;
	ctx->threads = json_array();
	ctx->lw_threads = json_array();
	ctx->tids = json_array();
	for (i = 0; i < sl_reactor_count(); i++) {
		json_array_append_new(ctx->lw_threads, json_array());
		json_array_append_new(ctx->tids, json_integer(0));
	}
	sl_for_each_thread(rpc_thread_visit, ctx, rpc_threads_done);
}

static void
rpc_framework_get_reactors(struct sl_jsonrpc_request *req, const json_t *params)
{
	rpc_threads_collect(req, params, true);
}
SL_RPC_REGISTER("framework_get_reactors", rpc_framework_get_reactors, SL_RPC_RUNTIME)

static void
rpc_thread_get_stats(struct sl_jsonrpc_request *req, const json_t *params)
{
	rpc_threads_collect(req, params, false);
}
SL_RPC_REGISTER("thread_get_stats", rpc_thread_get_stats, SL_RPC_RUNTIME)

/* ---- log_* ----------------------------------------------------------------------- */

/* Sluice logs to stderr only (the journal, under systemd), so the print level is the
 * one that filters; the "log level" (SPDK's syslog threshold) is kept so that SPDK
 * tools reading it back see what they set. */
static enum sl_log_level g_log_level = SL_LOG_NOTICE;

struct rpc_log_level_params {
	char *level;
};

static const struct sl_json_object_decoder g_log_level_decoders[] = {
	{"level", offsetof(struct rpc_log_level_params, level), sl_json_decode_string, false},
};

static int
rpc_decode_level(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct rpc_log_level_params p = {0};
	int level;

	if (sl_rpc_decode_params(req, params, g_log_level_decoders,
				 SL_COUNTOF(g_log_level_decoders), &p) != 0) {
		return -EINVAL;
	}
	level = sl_log_level_from_str(p.level);
	if (level < 0) {
		sl_jsonrpc_send_error(
			req, SL_JSONRPC_ERROR_INVALID_PARAMS,
			"unknown log level '%s' (ERROR, WARNING, NOTICE, INFO, DEBUG)", p.level);
	}
	free(p.level);
	return level < 0 ? -EINVAL : level;
}

static void
rpc_log_set_level(struct sl_jsonrpc_request *req, const json_t *params)
{
	int level = rpc_decode_level(req, params);

	if (level >= 0) {
		g_log_level = (enum sl_log_level)level;
		sl_jsonrpc_send_bool(req, true);
	}
}
SL_RPC_REGISTER("log_set_level", rpc_log_set_level, RPC_ANY_STATE)

static void
rpc_log_get_level(struct sl_jsonrpc_request *req, const json_t *params)
{
	if (!rpc_reject_params(req, params)) {
		sl_jsonrpc_send_result(req, json_string(sl_log_level_to_str(g_log_level)));
	}
}
SL_RPC_REGISTER("log_get_level", rpc_log_get_level, RPC_ANY_STATE)

static void
rpc_log_set_print_level(struct sl_jsonrpc_request *req, const json_t *params)
{
	int level = rpc_decode_level(req, params);

	if (level >= 0) {
		sl_log_set_print_level((enum sl_log_level)level);
		sl_jsonrpc_send_bool(req, true);
	}
}
SL_RPC_REGISTER("log_set_print_level", rpc_log_set_print_level, RPC_ANY_STATE)

static void
rpc_log_get_print_level(struct sl_jsonrpc_request *req, const json_t *params)
{
	if (!rpc_reject_params(req, params)) {
		sl_jsonrpc_send_result(req,
				       json_string(sl_log_level_to_str(sl_log_get_print_level())));
	}
}
SL_RPC_REGISTER("log_get_print_level", rpc_log_get_print_level, RPC_ANY_STATE)

struct rpc_log_flag_params {
	char *flag;
};

static const struct sl_json_object_decoder g_log_flag_decoders[] = {
	{"flag", offsetof(struct rpc_log_flag_params, flag), sl_json_decode_string, false},
};

static void
rpc_log_flag_change(struct sl_jsonrpc_request *req, const json_t *params, bool enable)
{
	struct rpc_log_flag_params p = {0};

	if (sl_rpc_decode_params(req, params, g_log_flag_decoders, SL_COUNTOF(g_log_flag_decoders),
				 &p) != 0) {
		return;
	}
	if (sl_log_set_flag(p.flag, enable) != 0) {
		sl_jsonrpc_send_error(req, SL_JSONRPC_ERROR_INVALID_PARAMS,
				      "unknown log flag '%s' (see log_get_flags)", p.flag);
	} else {
		sl_jsonrpc_send_bool(req, true);
	}
	free(p.flag);
}

static void
rpc_log_set_flag(struct sl_jsonrpc_request *req, const json_t *params)
{
	rpc_log_flag_change(req, params, true);
}
SL_RPC_REGISTER("log_set_flag", rpc_log_set_flag, RPC_ANY_STATE)

static void
rpc_log_clear_flag(struct sl_jsonrpc_request *req, const json_t *params)
{
	rpc_log_flag_change(req, params, false);
}
SL_RPC_REGISTER("log_clear_flag", rpc_log_clear_flag, RPC_ANY_STATE)

static void
rpc_log_get_flags(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct sl_log_flag *flag;
	json_t *flags;

	if (rpc_reject_params(req, params)) {
		return;
	}
	flags = json_object();
	for (flag = sl_log_flag_next(NULL); flag != NULL && flags != NULL;
	     flag = sl_log_flag_next(flag)) {
		json_object_set_new(flags, flag->name, json_boolean(flag->enabled));
	}
	sl_jsonrpc_send_result(req, flags);
}
SL_RPC_REGISTER("log_get_flags", rpc_log_get_flags, RPC_ANY_STATE)

/* ---- spdk_kill_instance ---------------------------------------------------------- */

struct rpc_kill_params {
	char *sig_name;
};

static const struct sl_json_object_decoder g_kill_decoders[] = {
	{"sig_name", offsetof(struct rpc_kill_params, sig_name), sl_json_decode_string, false},
};

static const struct {
	const char *name;
	int signo;
} g_kill_signals[] = {
	{"SIGINT", SIGINT}, {"SIGTERM", SIGTERM}, {"SIGQUIT", SIGQUIT},
	{"SIGHUP", SIGHUP}, {"SIGKILL", SIGKILL},
};

struct rpc_kill_ctx {
	struct sl_poller *poller;
	int signo;
};

/* Signal a moment after answering, so the answer leaves before the stop closes the
 * RPC connections (SIGINT/SIGTERM reach the app's signalfd; the others act at once). */
static int
rpc_kill_poll(void *arg)
{
	struct rpc_kill_ctx *ctx = arg;

	sl_poller_unregister(&ctx->poller);
	kill(getpid(), ctx->signo);
	free(ctx);
	return SL_POLLER_BUSY;
}

static void
rpc_spdk_kill_instance(struct sl_jsonrpc_request *req, const json_t *params)
{
	struct rpc_kill_params p = {0};
	struct rpc_kill_ctx *ctx;
	const char *name;
	size_t i;

	if (sl_rpc_decode_params(req, params, g_kill_decoders, SL_COUNTOF(g_kill_decoders), &p) !=
	    0) {
		return;
	}
	for (i = 0; i < SL_COUNTOF(g_kill_signals); i++) {
		name = g_kill_signals[i].name;
		/* SPDK accepts "SIGINT"; "INT" is taken too. */
		if (strcasecmp(p.sig_name, name) == 0 || strcasecmp(p.sig_name, name + 3) == 0) {
			break;
		}
	}
	if (i == SL_COUNTOF(g_kill_signals)) {
		sl_jsonrpc_send_error(req, SL_JSONRPC_ERROR_INVALID_PARAMS,
				      "unsupported signal '%s' (SIGINT, SIGTERM, SIGQUIT, SIGHUP, "
				      "SIGKILL)",
				      p.sig_name);
		free(p.sig_name);
		return;
	}
	free(p.sig_name);
	ctx = calloc(1, sizeof(*ctx));
	if (ctx != NULL) {
		ctx->signo = g_kill_signals[i].signo;
		ctx->poller = sl_poller_register(rpc_kill_poll, ctx, 20000, "kill_instance");
	}
	if (ctx == NULL || ctx->poller == NULL) {
		free(ctx);
		sl_jsonrpc_send_errno(req, -ENOMEM, "spdk_kill_instance");
		return;
	}
	sl_jsonrpc_send_bool(req, true);
}
SL_RPC_REGISTER("spdk_kill_instance", rpc_spdk_kill_instance, RPC_ANY_STATE)
SL_RPC_REGISTER_ALIAS("kill_instance", "spdk_kill_instance", rpc_spdk_kill_instance, RPC_ANY_STATE)
