/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/* Subsystem ordering, init/fini chains and save_config. */

#include <CUnit/Basic.h>

#include "sl_ut.h"
#include "env/subsystem.c"

static char g_trace[256];
static int g_fail_init_of; /* index (1-based) of the subsystem whose init fails */
static int g_done_rc = 1;
static int g_done_calls;

static void
trace(const char *what)
{
	strncat(g_trace, what, sizeof(g_trace) - strlen(g_trace) - 1);
}

static void
reset(void)
{
	g_head = NULL;
	g_count = 0;
	g_sorted = false;
	g_init_count = 0;
	g_cur = 0;
	g_chain_cb = NULL;
	g_trace[0] = '\0';
	g_fail_init_of = 0;
	g_done_rc = 1;
	g_done_calls = 0;
}

static void
chain_done(int rc)
{
	g_done_rc = rc;
	g_done_calls++;
}

#define FAKE_SUBSYSTEM(N, IDX)                          \
	static void init_##N(sl_subsystem_done_fn done) \
	{                                               \
		trace("+" #N);                          \
		done(g_fail_init_of == IDX ? -EIO : 0); \
	}                                               \
	static void fini_##N(sl_subsystem_done_fn done) \
	{                                               \
		trace("-" #N);                          \
		done(0);                                \
	}

FAKE_SUBSYSTEM(a, 1)
FAKE_SUBSYSTEM(b, 2)
FAKE_SUBSYSTEM(c, 3)

static void
write_config_b(json_t *config)
{
	json_array_append_new(
		config, json_pack("{s:s, s:{s:s}}", "method", "b_create", "params", "name", "B0"));
}

static const char *const g_deps_on_b[] = {"b", NULL};
static const char *const g_deps_on_a[] = {"a", NULL};
static const char *const g_deps_on_x[] = {"x", NULL};

static struct sl_subsystem g_a, g_b, g_c;

static void
setup_abc(const char *const *a_deps, const char *const *b_deps, const char *const *c_deps)
{
	reset();
	g_a = (struct sl_subsystem){.name = "a", .init = init_a, .fini = fini_a, .depends = a_deps};
	g_b = (struct sl_subsystem){.name = "b",
				    .init = init_b,
				    .fini = fini_b,
				    .write_config_json = write_config_b,
				    .depends = b_deps};
	g_c = (struct sl_subsystem){.name = "c", .init = init_c, .fini = fini_c, .depends = c_deps};
	sl_subsystem_register(&g_a);
	sl_subsystem_register(&g_b);
	sl_subsystem_register(&g_c);
}

static void
test_sort_keeps_registration_order(void)
{
	setup_abc(NULL, NULL, NULL);
	CU_ASSERT_EQUAL(sl_subsystem_sort(), 0);
	CU_ASSERT_PTR_EQUAL(sl_subsystem_first(), &g_a);
	CU_ASSERT_PTR_EQUAL(sl_subsystem_next(&g_a), &g_b);
	CU_ASSERT_PTR_EQUAL(sl_subsystem_next(&g_b), &g_c);
	CU_ASSERT_PTR_NULL(sl_subsystem_next(&g_c));
}

static void
test_sort_dependencies(void)
{
	/* a needs b, c needs a: b, a, c. */
	setup_abc(g_deps_on_b, NULL, g_deps_on_a);
	CU_ASSERT_EQUAL(sl_subsystem_sort(), 0);
	CU_ASSERT_PTR_EQUAL(sl_subsystem_first(), &g_b);
	CU_ASSERT_PTR_EQUAL(sl_subsystem_next(&g_b), &g_a);
	CU_ASSERT_PTR_EQUAL(sl_subsystem_next(&g_a), &g_c);
	CU_ASSERT_PTR_EQUAL(sl_subsystem_find("c"), &g_c);
	CU_ASSERT_PTR_NULL(sl_subsystem_find("nope"));
}

static void
test_sort_missing_dependency(void)
{
	setup_abc(NULL, g_deps_on_x, NULL);
	CU_ASSERT_EQUAL(sl_subsystem_sort(), -ENOENT);
	sl_subsystem_init_all(chain_done);
	CU_ASSERT_EQUAL(g_done_rc, -ENOENT);
	CU_ASSERT_STRING_EQUAL(g_trace, "");
}

static void
test_sort_cycle(void)
{
	setup_abc(g_deps_on_b, g_deps_on_a, NULL);
	CU_ASSERT_EQUAL(sl_subsystem_sort(), -ELOOP);
	CU_ASSERT_PTR_NULL(sl_subsystem_first());
}

static void
test_init_fini_order(void)
{
	setup_abc(g_deps_on_b, NULL, g_deps_on_a);
	sl_subsystem_init_all(chain_done);
	CU_ASSERT_EQUAL(g_done_rc, 0);
	CU_ASSERT_EQUAL(g_done_calls, 1);
	CU_ASSERT_STRING_EQUAL(g_trace, "+b+a+c");
	CU_ASSERT_TRUE(sl_subsystem_is_initialized("c"));
	/* A second init is refused, not re-run. */
	sl_subsystem_init_all(chain_done);
	CU_ASSERT_EQUAL(g_done_rc, -EALREADY);
	sl_subsystem_fini_all(chain_done);
	CU_ASSERT_EQUAL(g_done_rc, 0);
	CU_ASSERT_STRING_EQUAL(g_trace, "+b+a+c-c-a-b");
	CU_ASSERT_FALSE(sl_subsystem_is_initialized("b"));
}

static void
test_init_failure_finishes_only_started(void)
{
	setup_abc(NULL, NULL, NULL);
	g_fail_init_of = 2; /* b fails */
	sl_subsystem_init_all(chain_done);
	CU_ASSERT_EQUAL(g_done_rc, -EIO);
	CU_ASSERT_STRING_EQUAL(g_trace, "+a+b");
	CU_ASSERT_TRUE(sl_subsystem_is_initialized("a"));
	CU_ASSERT_FALSE(sl_subsystem_is_initialized("b"));
	sl_subsystem_fini_all(chain_done);
	CU_ASSERT_STRING_EQUAL(g_trace, "+a+b-a");
}

static void
test_save_config(void)
{
	json_t *cfg, *subs;

	setup_abc(g_deps_on_b, NULL, NULL);
	/* Before init nothing is written (state may not exist yet). */
	cfg = sl_subsystem_save_config();
	CU_ASSERT_EQUAL(json_array_size(json_object_get(
				json_array_get(json_object_get(cfg, "subsystems"), 0), "config")),
			0);
	json_decref(cfg);

	sl_subsystem_init_all(chain_done);
	cfg = sl_subsystem_save_config();
	subs = json_object_get(cfg, "subsystems");
	CU_ASSERT_EQUAL(json_array_size(subs), 3);
	CU_ASSERT_STRING_EQUAL(
		json_string_value(json_object_get(json_array_get(subs, 0), "subsystem")), "b");
	CU_ASSERT_STRING_EQUAL(
		json_string_value(json_object_get(
			json_array_get(json_object_get(json_array_get(subs, 0), "config"), 0),
			"method")),
		"b_create");
	CU_ASSERT_EQUAL(json_array_size(json_object_get(json_array_get(subs, 1), "config")), 0);
	json_decref(cfg);
	sl_subsystem_fini_all(chain_done);
}

int
main(void)
{
	CU_pSuite suite = sl_ut_suite("subsystem", NULL, NULL);

	CU_ADD_TEST(suite, test_sort_keeps_registration_order);
	CU_ADD_TEST(suite, test_sort_dependencies);
	CU_ADD_TEST(suite, test_sort_missing_dependency);
	CU_ADD_TEST(suite, test_sort_cycle);
	CU_ADD_TEST(suite, test_init_fini_order);
	CU_ADD_TEST(suite, test_init_failure_finishes_only_started);
	CU_ADD_TEST(suite, test_save_config);
	return sl_ut_run();
}
