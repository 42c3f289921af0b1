/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/** \file
 * The application framework shared by sluiced and the tools: parses the common
 * flags (in the spirit of spdk_tgt), brings up the env and the reactors, starts the
 * RPC server, loads a JSON config, initialises the subsystems, runs, and stops in
 * order on SIGINT/SIGTERM or sl_app_stop().
 */
#ifndef SLUICE_APP_H
#define SLUICE_APP_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "sluice/env.h"
#include "sluice/reactor.h"

#define SL_DEFAULT_RPC_ADDR "/var/tmp/sluice.sock"

/* Release version, reported by --version, sluice_get_version and spdk_get_version. */
#define SL_VERSION_MAJOR  0
#define SL_VERSION_MINOR  1
#define SL_VERSION_PATCH  0
#define SL_VERSION_SUFFIX ""
#define SL_VERSION_STRING "Sluice v0.1.0"

struct sl_app_opts {
	const char *name;
	const char *reactor_mask;  /* -m */
	const char *json_config;   /* -c/--json */
	const char *rpc_addr;      /* -r; NULL = no RPC server */
	uint32_t mem_size_mb;      /* -s */
	bool no_huge;              /* --no-huge */
	int shm_id;                /* -i; -1 = none */
	bool wait_for_rpc;         /* --wait-for-rpc */
	enum sl_reactor_mode mode; /* --busy-poll */
	const char *log_level;     /* --log-level */
	bool json_ignore_init_errors;
	bool mlockall;        /* --mlockall */
	const char *pid_file; /* --pid-file; NULL = none */
	bool log_level_set;   /* --log-level was given (else -L raises it to debug) */
};

/** Defaults: rpc_addr = SL_DEFAULT_RPC_ADDR, shm_id = -1, adaptive. */
void sl_app_opts_init(struct sl_app_opts *opts);

/** Extra option parsing for a program: called for each option the framework does not know. */
typedef int (*sl_app_parse_arg_fn)(int ch, const char *arg);
typedef void (*sl_app_usage_fn)(void);

/**
 * Parse the common flags (-m -c -r -s -i -L -h --no-huge --wait-for-rpc --busy-poll
 * --json --log-level) plus app_getopt_str/app_long_opts through parse_fn.
 * \return 0 to run, 1 when -h printed help, -EINVAL on bad flags (message printed).
 */
struct option;
int sl_app_parse_args(int argc, char **argv, struct sl_app_opts *opts, const char *app_getopt_str,
		      const struct option *app_long_opts, sl_app_parse_arg_fn parse_fn,
		      sl_app_usage_fn usage_fn);

/** Called on the app thread once the subsystems are up (and the config loaded). */
typedef void (*sl_app_start_fn)(void *ctx);

/**
 * Run the application: blocks until sl_app_stop() (or a signal) and orderly shutdown.
 * \return the rc passed to sl_app_stop(), or -errno if start-up failed.
 */
int sl_app_start(const struct sl_app_opts *opts, sl_app_start_fn start_fn, void *ctx);
/** Stop the app in order (any thread): subsystems finish, then reactors stop. */
void sl_app_stop(int rc);
/** Initialise the subsystems now (framework_start_init); cb(rc) on the app thread. */
void sl_app_start_init(void (*cb)(int rc, void *ctx), void *ctx);
/** \return whether subsystems are initialised. */
bool sl_app_is_running(void);
/**
 * Call cb(0, ctx) on the app thread once the subsystems are initialised and the JSON
 * config applied (at once if they are), or cb(-ECANCELED) if the app stops first.
 * Used by framework_wait_init.
 */
void sl_app_wait_init(void (*cb)(int rc, void *ctx), void *ctx);

/* ---- JSON config (SPDK format) ------------------------------------------------- */

/**
 * A parsed JSON config: {"subsystems":[{"subsystem":name,"config":[{"method","params"}]}]}.
 *
 * Accepted beyond Sluice's own subsystems, so that configs written by SPDK's
 * save_config load: a subsystem Sluice does not have is skipped with a warning when its
 * config is null or empty, or holds only option methods that have no meaning here
 * (methods ending in "_set_options", and the few listed in json_config.c such as
 * framework_set_scheduler and bdev_wait_for_examine). The same option methods are
 * tolerated inside known subsystems when no such method is registered. Anything else
 * unknown is an error naming the subsystem and the method.
 */
struct sl_json_config;

/**
 * Parse and validate a config held in memory (borrowed).
 * \param err receives a message naming the offending entry on failure.
 * \return the config, or NULL.
 */
struct sl_json_config *sl_json_config_parse(const json_t *root, char *err, size_t errlen);
/** Read, parse and validate a config file. \return the config or NULL (err filled). */
struct sl_json_config *sl_json_config_load_file(const char *path, char *err, size_t errlen);
/** Free a config (after any run on it completed). NULL is allowed. */
void sl_json_config_free(struct sl_json_config *cfg);

/** Completion of sl_json_config_run: rc 0 or -errno; the message via sl_json_config_error. */
typedef void (*sl_json_config_done_fn)(int rc, void *ctx);
/**
 * Execute, in file order, the entries of one phase through sl_rpc_call_local():
 * SL_RPC_STARTUP runs the methods callable before subsystem init (options), and
 * SL_RPC_RUNTIME the rest, so each entry runs exactly once. Must run on the app thread.
 * \param ignore_errors log failed entries and go on (--json-ignore-init-errors).
 */
void sl_json_config_run(struct sl_json_config *cfg, uint32_t phase, bool ignore_errors,
			sl_json_config_done_fn cb, void *ctx);
/** \return the message of the last failure ("" if none). */
const char *sl_json_config_error(const struct sl_json_config *cfg);

#endif /* SLUICE_APP_H */
