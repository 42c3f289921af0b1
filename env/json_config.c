/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * The SPDK-format JSON config: parsed and validated up front (so a typo fails before
 * anything is created), then executed entry by entry through the RPC layer, exactly as
 * if a client had sent each request. Validation decides which entries run at all:
 * option methods that SPDK's save_config always writes (accel, iobuf, sock, scheduler,
 * bdev_nvme ...) are dropped with a warning when Sluice has no such method, so SPDK
 * configs load; any other unknown method is an error naming subsystem and method.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/app.h"
#include "sluice/log.h"
#include "sluice/rpc.h"
#include "sluice/subsystem.h"
#include "sluice/util.h"

/* Seams for the unit test, which includes this file and replaces the RPC layer. */
static const struct sl_rpc_method *(*g_json_config_find_method)(const char *) = sl_rpc_find_method;
static void (*g_json_config_call)(json_t *, sl_rpc_local_cb, void *) = sl_rpc_call_local;

struct json_config_entry {
	const char *subsystem; /* borrowed from root */
	const char *method;
	json_t *params; /* borrowed from root; NULL when absent */
	size_t index;   /* position inside its subsystem's config, for messages */
	uint32_t state_mask;
};

struct sl_json_config {
	json_t *root;
	struct json_config_entry *entries;
	size_t count;

	/* State of a run. */
	size_t cur;
	uint32_t phase;
	bool ignore_errors;
	bool in_call;
	bool call_done;
	int rc;
	sl_json_config_done_fn cb;
	void *cb_ctx;
	char err[512];
};

/* Methods that only tune SPDK internals Sluice does not have (or sizes it chooses
 * itself); besides these, every "*_set_options" method is tolerated. */
static const char *const g_tolerated_methods[] = {
	"framework_set_scheduler", "bdev_wait_for_examine", "bdev_nvme_set_hotplug",
	"sock_set_default_impl",   "accel_set_driver",      "iobuf_set_small_cache_size",
};

static bool
json_config_method_tolerated(const char *method)
{
	static const char suffix[] = "_set_options";
	size_t len = strlen(method), i;

	if (len > sizeof(suffix) - 1 && strcmp(method + len - (sizeof(suffix) - 1), suffix) == 0) {
		return true;
	}
	for (i = 0; i < SL_COUNTOF(g_tolerated_methods); i++) {
		if (strcmp(method, g_tolerated_methods[i]) == 0) {
			return true;
		}
	}
	return false;
}

static void __attribute__((format(printf, 3, 4)))
json_config_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Decide the fate of one config entry: 1 = keep, 0 = drop (warned), <0 = error. */
static int
json_config_check_entry(const char *subsystem, bool known, size_t idx, json_t *entry,
			struct json_config_entry *out, char *err, size_t errlen)
{
	const struct sl_rpc_method *m;
	const json_t *method;
	json_t *params;

	method = json_object_get(entry, "method");
	params = json_object_get(entry, "params");
	if (!json_is_object(entry) || !json_is_string(method)) {
		json_config_err(err, errlen,
				"subsystem '%s', config entry %zu: expected an object with a "
				"string \"method\"",
				subsystem, idx);
		return -EINVAL;
	}
	if (params != NULL && !json_is_object(params) && !json_is_array(params) &&
	    !json_is_null(params)) {
		json_config_err(err, errlen,
				"subsystem '%s', method '%s': \"params\" must be an object",
				subsystem, json_string_value(method));
		return -EINVAL;
	}
	m = g_json_config_find_method(json_string_value(method));
	if (m == NULL) {
		if (json_config_method_tolerated(json_string_value(method))) {
			SL_WARNLOG("config: subsystem '%s': method '%s' has no meaning in Sluice; "
				   "ignored\n",
				   subsystem, json_string_value(method));
			return 0;
		}
		json_config_err(err, errlen, "subsystem '%s', method '%s': %s", subsystem,
				json_string_value(method),
				known ? "no such method"
				      : "not supported (Sluice has no such subsystem)");
		return -ENOENT;
	}
	out->subsystem = subsystem;
	out->method = json_string_value(method);
	out->params = json_is_null(params) ? NULL : params;
	out->index = idx;
	out->state_mask = m->state_mask;
	return 1;
}

static int
json_config_add_subsystem(struct sl_json_config *cfg, json_t *sub, size_t si, char *err,
			  size_t errlen)
{
	const json_t *name = json_object_get(sub, "subsystem");
	json_t *config = json_object_get(sub, "config");
	struct json_config_entry *grown;
	json_t *entry;
	bool known;
	size_t idx;
	int rc;

	if (!json_is_object(sub) || !json_is_string(name)) {
		json_config_err(err, errlen,
				"subsystems[%zu]: expected an object with a string \"subsystem\"",
				si);
		return -EINVAL;
	}
	known = sl_subsystem_find(json_string_value(name)) != NULL;
	if (config == NULL || json_is_null(config) ||
	    (json_is_array(config) && json_array_size(config) == 0)) {
		if (!known) {
			SL_WARNLOG("config: subsystem '%s' is not part of Sluice; its empty config "
				   "is ignored\n",
				   json_string_value(name));
		}
		return 0;
	}
	if (!json_is_array(config)) {
		json_config_err(err, errlen, "subsystem '%s': \"config\" must be an array",
				json_string_value(name));
		return -EINVAL;
	}
	grown = realloc(cfg->entries, (cfg->count + json_array_size(config)) * sizeof(*grown));
	if (grown == NULL) {
		json_config_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	cfg->entries = grown;
	json_array_foreach (config, idx, entry) {
		rc = json_config_check_entry(json_string_value(name), known, idx, entry,
					     &cfg->entries[cfg->count], err, errlen);
		if (rc < 0) {
			return rc;
		}
		cfg->count += (size_t)rc;
	}
	return 0;
}

struct sl_json_config *
sl_json_config_parse(const json_t *root, char *err, size_t errlen)
{
	struct sl_json_config *cfg;
	const json_t *subsystems;
	json_t *sub;
	size_t si;

	json_config_err(err, errlen, "%s", "");
	subsystems = json_object_get(root, "subsystems");
	if (!json_is_object(root) || !json_is_array(subsystems)) {
		json_config_err(err, errlen, "expected an object with a \"subsystems\" array");
		return NULL;
	}
	cfg = calloc(1, sizeof(*cfg));
	if (cfg == NULL) {
		json_config_err(err, errlen, "out of memory");
		return NULL;
	}
	/* Entries borrow strings and params from the tree: keep a private copy alive
	 * with them (the caller's tree may change after we return). */
	cfg->root = json_deep_copy(root);
	if (cfg->root == NULL) {
		json_config_err(err, errlen, "out of memory");
		free(cfg);
		return NULL;
	}
	subsystems = json_object_get(cfg->root, "subsystems");
	json_array_foreach (subsystems, si, sub) {
		if (json_config_add_subsystem(cfg, sub, si, err, errlen) != 0) {
			sl_json_config_free(cfg);
			return NULL;
		}
	}
	return cfg;
}

struct sl_json_config *
sl_json_config_load_file(const char *path, char *err, size_t errlen)
{
	struct sl_json_config *cfg;
	char perr[400];
	json_error_t jerr;
	json_t *root;

	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		if (jerr.line <= 0) {
			/* jansson reports an unreadable file with line -1 and the errno text. */
			json_config_err(err, errlen, "cannot read JSON config %s: %s", path,
					jerr.text);
		} else {
			json_config_err(err, errlen, "JSON config %s: line %d column %d: %s", path,
					jerr.line, jerr.column, jerr.text);
		}
		return NULL;
	}
	cfg = sl_json_config_parse(root, perr, sizeof(perr));
	json_decref(root);
	if (cfg == NULL) {
		json_config_err(err, errlen, "JSON config %s: %s", path, perr);
	}
	return cfg;
}

void
sl_json_config_free(struct sl_json_config *cfg)
{
	if (cfg == NULL) {
		return;
	}
	free(cfg->entries);
	json_decref(cfg->root);
	free(cfg);
}

const char *
sl_json_config_error(const struct sl_json_config *cfg)
{
	return cfg->err;
}

static bool
json_config_in_phase(const struct json_config_entry *e, uint32_t phase)
{
	bool startup = (e->state_mask & SL_RPC_STARTUP) != 0;

	return phase == SL_RPC_STARTUP ? startup : !startup;
}

static void
json_config_format_error(struct sl_json_config *cfg, const struct json_config_entry *e,
			 const json_t *response)
{
	const json_t *error = json_object_get(response, "error");
	const char *msg = response == NULL ? "no response (out of memory)"
					   : json_string_value(json_object_get(error, "message"));
	json_int_t code = json_integer_value(json_object_get(error, "code"));

	snprintf(cfg->err, sizeof(cfg->err),
		 "subsystem '%s', method '%s' (entry %zu): error %lld: %s", e->subsystem, e->method,
		 e->index, (long long)code, msg != NULL ? msg : "(none)");
}

/* A response carries either "result" or "error" (JSON-RPC 2.0 section 5). */
static int
json_config_response_rc(const json_t *response)
{
	const json_t *error = json_object_get(response, "error");
	json_int_t code;

	if (response == NULL) {
		return -ENOMEM; /* the RPC layer could not even build an answer */
	}
	if (error == NULL) {
		return 0;
	}
	code = json_integer_value(json_object_get(error, "code"));
	/* Keep -errno codes; JSON-RPC protocol codes all mean "invalid input" here. */
	return code < 0 && code > -4096 ? (int)code : -EINVAL;
}

static void json_config_next(struct sl_json_config *cfg);

static void
json_config_call_done(void *ctx, json_t *response)
{
	struct sl_json_config *cfg = ctx;
	const struct json_config_entry *e = &cfg->entries[cfg->cur];
	int rc = json_config_response_rc(response);

	if (rc != 0) {
		json_config_format_error(cfg, e, response);
		if (cfg->ignore_errors) {
			SL_WARNLOG("config: %s (ignored)\n", cfg->err);
			rc = 0;
		}
	}
	cfg->rc = rc;
	cfg->cur++;
	/* A handler that answers at once calls us inside g_json_config_call: let the loop
	 * in json_config_next continue instead of recursing once per entry. */
	if (cfg->in_call) {
		cfg->call_done = true;
		return;
	}
	json_config_next(cfg);
}

static void
json_config_finish(struct sl_json_config *cfg)
{
	sl_json_config_done_fn cb = cfg->cb;

	cfg->cb = NULL;
	cb(cfg->rc, cfg->cb_ctx);
}

static void
json_config_next(struct sl_json_config *cfg)
{
	const struct json_config_entry *e;
	json_t *req;

	while (cfg->rc == 0) {
		while (cfg->cur < cfg->count &&
		       !json_config_in_phase(&cfg->entries[cfg->cur], cfg->phase)) {
			cfg->cur++;
		}
		if (cfg->cur == cfg->count) {
			break;
		}
		e = &cfg->entries[cfg->cur];
		req = json_pack("{s:s, s:s, s:I}", "jsonrpc", "2.0", "method", e->method, "id",
				(json_int_t)(cfg->cur + 1));
		if (req == NULL ||
		    (e->params != NULL && json_object_set(req, "params", e->params))) {
			json_decref(req);
			snprintf(cfg->err, sizeof(cfg->err), "out of memory");
			cfg->rc = -ENOMEM;
			break;
		}
		SL_INFOLOG("config: subsystem '%s': %s\n", e->subsystem, e->method);
		cfg->in_call = true;
		cfg->call_done = false;
		g_json_config_call(req, json_config_call_done, cfg);
		cfg->in_call = false;
		json_decref(req);
		if (!cfg->call_done) {
			/* Answered later, from a callback: json_config_call_done resumes. */
			return;
		}
	}
	json_config_finish(cfg);
}

void
sl_json_config_run(struct sl_json_config *cfg, uint32_t phase, bool ignore_errors,
		   sl_json_config_done_fn cb, void *ctx)
{
	cfg->cur = 0;
	cfg->phase = phase;
	cfg->ignore_errors = ignore_errors;
	cfg->rc = 0;
	cfg->err[0] = '\0';
	cfg->cb = cb;
	cfg->cb_ctx = ctx;
	json_config_next(cfg);
}
