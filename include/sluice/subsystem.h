/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/** \file
 * Subsystems: named groups of state (bdev, nbd, fuse, nvmf, ...) that initialise in
 * dependency order at start, finish in reverse at stop, and write their running
 * state as SPDK-format JSON config ({"subsystem": name, "config": [{"method", "params"}]}).
 */
#ifndef SLUICE_SUBSYSTEM_H
#define SLUICE_SUBSYSTEM_H

#include <stdbool.h>
#include <jansson.h>

/** Completion of an async init/fini step: rc 0 or -errno. */
typedef void (*sl_subsystem_done_fn)(int rc);

struct sl_subsystem {
	const char *name;
	/** Initialise on the app thread; call done exactly once. NULL = nothing to do. */
	void (*init)(sl_subsystem_done_fn done);
	/** Finish on the app thread (exports stop, in-flight I/O completes). NULL = nothing. */
	void (*fini)(sl_subsystem_done_fn done);
	/**
	 * Append {"method","params"} objects that recreate the running state to config
	 * (a JSON array). NULL = no state.
	 */
	void (*write_config_json)(json_t *config);
	/** Names of subsystems this one needs first, NULL-terminated (may be NULL). */
	const char *const *depends;
	struct sl_subsystem *next;
};

void sl_subsystem_register(struct sl_subsystem *subsystem);

#define SL_SUBSYSTEM_REGISTER(S)                                                 \
	__attribute__((constructor)) static void sl_subsystem_register_##S(void) \
	{                                                                        \
		sl_subsystem_register(&S);                                       \
	}

/**
 * Order the registered subsystems so that each follows those it depends on (a stable
 * topological sort: otherwise registration order is kept). Called by
 * sl_subsystem_init_all(); idempotent.
 * \return 0, -ENOENT if a dependency is not registered, -ELOOP on a dependency cycle
 * (an error naming the subsystems is logged).
 */
int sl_subsystem_sort(void);

/** \return the registered subsystems in init order (after sl_subsystem_sort). */
struct sl_subsystem *sl_subsystem_first(void);
/** \return the subsystem after s in init order, or NULL. */
struct sl_subsystem *sl_subsystem_next(const struct sl_subsystem *s);
/** \return the subsystem with that name, or NULL. */
struct sl_subsystem *sl_subsystem_find(const char *name);
/** \return whether the named subsystem has been initialised (and not finished). */
bool sl_subsystem_is_initialized(const char *name);

/** Initialise every subsystem in dependency order; cb(rc) on the app thread. */
void sl_subsystem_init_all(sl_subsystem_done_fn cb);
/** Finish every initialised subsystem in reverse order; cb(0) when done. */
void sl_subsystem_fini_all(sl_subsystem_done_fn cb);
/**
 * One subsystem's running config as an array of {"method","params"} objects (the
 * result of framework_get_config). \return a new reference, or NULL if no such subsystem.
 */
json_t *sl_subsystem_get_config(const struct sl_subsystem *subsystem);
/**
 * Build the whole config: {"subsystems":[{"subsystem","config"}...]} in init order, so
 * that loading it recreates the running state (new reference).
 */
json_t *sl_subsystem_save_config(void);

#endif /* SLUICE_SUBSYSTEM_H */
