/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * Subsystem registry: registration at constructor time, a stable dependency sort, and
 * the init/fini chains. Init and fini are strictly sequential (one subsystem at a
 * time, in order), so the first g_init_count entries of g_order are exactly the
 * initialised ones and fini walks them backwards.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/log.h"
#include "sluice/subsystem.h"

#define SUBSYSTEM_MAX 64

static struct sl_subsystem *g_head;
static struct sl_subsystem *g_order[SUBSYSTEM_MAX];
static size_t g_count;
static bool g_sorted;

/* Progress of the init/fini chains. */
static size_t g_init_count;
static size_t g_cur;
static sl_subsystem_done_fn g_chain_cb;

void
sl_subsystem_register(struct sl_subsystem *subsystem)
{
	struct sl_subsystem **tail = &g_head;

	/* Registration happens in constructors: a duplicate is a programmer error. */
	if (sl_subsystem_find(subsystem->name) != NULL) {
		fprintf(stderr, "subsystem '%s' registered twice\n", subsystem->name);
		abort();
	}
	while (*tail != NULL) {
		tail = &(*tail)->next;
	}
	subsystem->next = NULL;
	*tail = subsystem;
	g_sorted = false;
}

struct sl_subsystem *
sl_subsystem_find(const char *name)
{
	struct sl_subsystem *s;

	for (s = g_head; s != NULL; s = s->next) {
		if (strcmp(s->name, name) == 0) {
			return s;
		}
	}
	return NULL;
}

static bool
subsystem_placed(const char *name, size_t placed)
{
	size_t i;

	for (i = 0; i < placed; i++) {
		if (strcmp(g_order[i]->name, name) == 0) {
			return true;
		}
	}
	return false;
}

static bool
subsystem_deps_placed(const struct sl_subsystem *s, size_t placed)
{
	const char *const *dep;

	for (dep = s->depends; dep != NULL && *dep != NULL; dep++) {
		if (!subsystem_placed(*dep, placed)) {
			return false;
		}
	}
	return true;
}

static int
subsystem_check_deps(void)
{
	const struct sl_subsystem *s;
	const char *const *dep;

	for (s = g_head; s != NULL; s = s->next) {
		for (dep = s->depends; dep != NULL && *dep != NULL; dep++) {
			if (sl_subsystem_find(*dep) == NULL) {
				SL_ERRLOG(
					"subsystem '%s' depends on '%s', which is not registered\n",
					s->name, *dep);
				return -ENOENT;
			}
		}
	}
	return 0;
}

static void
subsystem_log_cycle(size_t placed)
{
	const struct sl_subsystem *s;

	for (s = g_head; s != NULL; s = s->next) {
		if (!subsystem_placed(s->name, placed)) {
			SL_ERRLOG("subsystem '%s' is part of a dependency cycle\n", s->name);
		}
	}
}

int
sl_subsystem_sort(void)
{
	struct sl_subsystem *s;
	size_t placed = 0, total = 0;
	bool progress = true;
	int rc;

	if (g_sorted) {
		return 0;
	}
	/* Sorting while a chain runs would reshuffle g_order under it. */
	if (g_init_count > 0) {
		return -EBUSY;
	}
	rc = subsystem_check_deps();
	if (rc != 0) {
		return rc;
	}
	for (s = g_head; s != NULL; s = s->next) {
		total++;
	}
	if (total > SUBSYSTEM_MAX) {
		SL_ERRLOG("%zu subsystems registered, at most %d supported\n", total,
			  SUBSYSTEM_MAX);
		return -E2BIG;
	}
	/* Kahn's algorithm, always taking the earliest-registered ready subsystem, so
	 * the order is deterministic and unrelated subsystems keep registration order. */
	while (placed < total && progress) {
		progress = false;
		for (s = g_head; s != NULL; s = s->next) {
			if (!subsystem_placed(s->name, placed) &&
			    subsystem_deps_placed(s, placed)) {
				g_order[placed++] = s;
				progress = true;
				break;
			}
		}
	}
	if (placed < total) {
		subsystem_log_cycle(placed);
		return -ELOOP;
	}
	g_count = total;
	g_sorted = true;
	return 0;
}

struct sl_subsystem *
sl_subsystem_first(void)
{
	if (sl_subsystem_sort() != 0 || g_count == 0) {
		return NULL;
	}
	return g_order[0];
}

struct sl_subsystem *
sl_subsystem_next(const struct sl_subsystem *s)
{
	size_t i;

	for (i = 0; i + 1 < g_count; i++) {
		if (g_order[i] == s) {
			return g_order[i + 1];
		}
	}
	return NULL;
}

bool
sl_subsystem_is_initialized(const char *name)
{
	size_t i;

	for (i = 0; i < g_init_count; i++) {
		if (strcmp(g_order[i]->name, name) == 0) {
			return true;
		}
	}
	return false;
}

static void subsystem_init_next(void);

static void
subsystem_init_done(int rc)
{
	sl_subsystem_done_fn cb;

	if (rc != 0) {
		SL_ERRLOG("subsystem '%s' failed to initialise: %s\n", g_order[g_cur]->name,
			  strerror(-rc));
		cb = g_chain_cb;
		g_chain_cb = NULL;
		cb(rc);
		return;
	}
	g_init_count = ++g_cur;
	subsystem_init_next();
}

static void
subsystem_init_next(void)
{
	sl_subsystem_done_fn cb;

	/* A synchronous done() recurses once per subsystem: a few dozen frames at most. */
	while (g_cur < g_count && g_order[g_cur]->init == NULL) {
		g_init_count = ++g_cur;
	}
	if (g_cur == g_count) {
		cb = g_chain_cb;
		g_chain_cb = NULL;
		cb(0);
		return;
	}
	SL_INFOLOG("initialising subsystem '%s'\n", g_order[g_cur]->name);
	g_order[g_cur]->init(subsystem_init_done);
}

void
sl_subsystem_init_all(sl_subsystem_done_fn cb)
{
	int rc;

	if (g_chain_cb != NULL || g_init_count != 0) {
		cb(-EALREADY);
		return;
	}
	rc = sl_subsystem_sort();
	if (rc != 0) {
		cb(rc);
		return;
	}
	g_chain_cb = cb;
	g_cur = 0;
	subsystem_init_next();
}

static void subsystem_fini_next(void);

static void
subsystem_fini_done(int rc)
{
	if (rc != 0) {
		/* Keep going: a stuck subsystem must not keep the others from closing. */
		SL_WARNLOG("subsystem '%s' finished with an error: %s\n",
			   g_order[g_init_count]->name, strerror(-rc));
	}
	subsystem_fini_next();
}

static void
subsystem_fini_next(void)
{
	sl_subsystem_done_fn cb;
	struct sl_subsystem *s;

	while (g_init_count > 0) {
		s = g_order[--g_init_count];
		if (s->fini != NULL) {
			SL_INFOLOG("finishing subsystem '%s'\n", s->name);
			s->fini(subsystem_fini_done);
			return;
		}
	}
	g_cur = 0;
	cb = g_chain_cb;
	g_chain_cb = NULL;
	cb(0);
}

void
sl_subsystem_fini_all(sl_subsystem_done_fn cb)
{
	if (g_chain_cb != NULL) {
		/* An init chain is in flight: the caller waits for it first. */
		cb(-EBUSY);
		return;
	}
	g_chain_cb = cb;
	subsystem_fini_next();
}

json_t *
sl_subsystem_get_config(const struct sl_subsystem *subsystem)
{
	json_t *config = json_array();

	/* Only an initialised subsystem has state worth writing (and safe to walk). */
	if (config != NULL && subsystem->write_config_json != NULL &&
	    sl_subsystem_is_initialized(subsystem->name)) {
		subsystem->write_config_json(config);
	}
	return config;
}

json_t *
sl_subsystem_save_config(void)
{
	json_t *root, *subsystems, *entry;
	struct sl_subsystem *s;

	root = json_object();
	subsystems = json_array();
	if (root == NULL || subsystems == NULL) {
		json_decref(root);
		json_decref(subsystems);
		return NULL;
	}
	json_object_set_new(root, "subsystems", subsystems);
	for (s = sl_subsystem_first(); s != NULL; s = sl_subsystem_next(s)) {
		entry = json_pack("{s:s, s:o}", "subsystem", s->name, "config",
				  sl_subsystem_get_config(s));
		if (entry == NULL || json_array_append_new(subsystems, entry) != 0) {
			json_decref(root);
			return NULL;
		}
	}
	return root;
}
