/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/* The app framework's flag parsing (sl_app_parse_args) and option defaults. */

#include <CUnit/Basic.h>

#include "sl_ut.h"
#include "env/app.c"

static char g_app_arg_seen;

static int
parse(struct sl_app_opts *opts, int argc, const char **argv)
{
	sl_app_opts_init(opts);
	return sl_app_parse_args(argc, (char **)(uintptr_t)argv, opts, NULL, NULL, NULL, NULL);
}

static void
test_defaults(void)
{
	struct sl_app_opts opts;
	const char *argv[] = {"sluiced"};

	CU_ASSERT_EQUAL(parse(&opts, 1, argv), 0);
	CU_ASSERT_STRING_EQUAL(opts.rpc_addr, SL_DEFAULT_RPC_ADDR);
	CU_ASSERT_EQUAL(opts.shm_id, -1);
	CU_ASSERT_EQUAL(opts.mode, SL_REACTOR_ADAPTIVE);
	CU_ASSERT_FALSE(opts.no_huge);
	CU_ASSERT_FALSE(opts.wait_for_rpc);
	CU_ASSERT_PTR_NULL(opts.json_config);
}

static void
test_all_flags(void)
{
	struct sl_app_opts opts;
	const char *argv[] = {"sluiced",
			      "-m",
			      "0x3",
			      "-c",
			      "cfg.json",
			      "-r",
			      "/tmp/s.sock",
			      "-s",
			      "1G",
			      "--no-huge",
			      "-i",
			      "7",
			      "--wait-for-rpc",
			      "--busy-poll",
			      "--mlockall",
			      "--pid-file",
			      "/tmp/p.pid",
			      "--log-level",
			      "info",
			      "--json-ignore-init-errors"};

	CU_ASSERT_EQUAL(parse(&opts, SL_COUNTOF(argv), argv), 0);
	CU_ASSERT_STRING_EQUAL(opts.reactor_mask, "0x3");
	CU_ASSERT_STRING_EQUAL(opts.json_config, "cfg.json");
	CU_ASSERT_STRING_EQUAL(opts.rpc_addr, "/tmp/s.sock");
	CU_ASSERT_EQUAL(opts.mem_size_mb, 1024);
	CU_ASSERT_TRUE(opts.no_huge);
	CU_ASSERT_EQUAL(opts.shm_id, 7);
	CU_ASSERT_TRUE(opts.wait_for_rpc);
	CU_ASSERT_EQUAL(opts.mode, SL_REACTOR_BUSY_POLL);
	CU_ASSERT_TRUE(opts.mlockall);
	CU_ASSERT_STRING_EQUAL(opts.pid_file, "/tmp/p.pid");
	CU_ASSERT_TRUE(opts.log_level_set);
	CU_ASSERT_EQUAL(sl_log_get_print_level(), SL_LOG_INFO);
	CU_ASSERT_TRUE(opts.json_ignore_init_errors);
	sl_log_set_print_level(SL_LOG_NOTICE);
}

static void
test_long_names(void)
{
	struct sl_app_opts opts;
	const char *argv[] = {"sluiced",   "--json", "a.json",     "--rpc-socket", "/x",
			      "--cpumask", "[0]",    "--mem-size", "256"};

	CU_ASSERT_EQUAL(parse(&opts, SL_COUNTOF(argv), argv), 0);
	CU_ASSERT_STRING_EQUAL(opts.json_config, "a.json");
	CU_ASSERT_STRING_EQUAL(opts.rpc_addr, "/x");
	CU_ASSERT_STRING_EQUAL(opts.reactor_mask, "[0]");
	CU_ASSERT_EQUAL(opts.mem_size_mb, 256);
}

static void
test_bad_flags(void)
{
	struct sl_app_opts opts;
	const char *bad_mask[] = {"sluiced", "-m", "zz"};
	const char *bad_mem[] = {"sluiced", "-s", "12X"};
	const char *bad_shm[] = {"sluiced", "-i", "-4"};
	const char *bad_level[] = {"sluiced", "--log-level", "loud"};
	const char *bad_flag[] = {"sluiced", "-L", "no_such_flag"};
	const char *unknown[] = {"sluiced", "--frobnicate"};
	const char *missing[] = {"sluiced", "-c"};
	const char *extra[] = {"sluiced", "stray"};

	CU_ASSERT_EQUAL(parse(&opts, 3, bad_mask), -EINVAL);
	CU_ASSERT_EQUAL(parse(&opts, 3, bad_mem), -EINVAL);
	CU_ASSERT_EQUAL(parse(&opts, 3, bad_shm), -EINVAL);
	CU_ASSERT_EQUAL(parse(&opts, 3, bad_level), -EINVAL);
	CU_ASSERT_EQUAL(parse(&opts, 3, bad_flag), -EINVAL);
	CU_ASSERT_EQUAL(parse(&opts, 2, unknown), -EINVAL);
	CU_ASSERT_EQUAL(parse(&opts, 2, missing), -EINVAL);
	CU_ASSERT_EQUAL(parse(&opts, 2, extra), -EINVAL);
}

static void
test_help_and_version(void)
{
	struct sl_app_opts opts;
	const char *help[] = {"sluiced", "-h"};
	const char *version[] = {"sluiced", "--version"};

	CU_ASSERT_EQUAL(parse(&opts, 2, help), 1);
	CU_ASSERT_EQUAL(parse(&opts, 2, version), 1);
}

static int
app_arg(int ch, const char *arg)
{
	g_app_arg_seen = (char)ch;
	return ch == 'x' ? 0 : -EINVAL;
}

static void
test_program_options(void)
{
	static const struct option longopts[] = {
		{"extra", no_argument, NULL, 'x'},
		{NULL, 0, NULL, 0},
	};
	struct sl_app_opts opts;
	const char *argv[] = {"tool", "--extra", "-m", "0x1"};

	sl_app_opts_init(&opts);
	CU_ASSERT_EQUAL(
		sl_app_parse_args(4, (char **)(uintptr_t)argv, &opts, "x", longopts, app_arg, NULL),
		0);
	CU_ASSERT_EQUAL(g_app_arg_seen, 'x');
	CU_ASSERT_STRING_EQUAL(opts.reactor_mask, "0x1");
}

int
main(void)
{
	CU_pSuite suite = sl_ut_suite("app", NULL, NULL);

	CU_ADD_TEST(suite, test_defaults);
	CU_ADD_TEST(suite, test_all_flags);
	CU_ADD_TEST(suite, test_long_names);
	CU_ADD_TEST(suite, test_bad_flags);
	CU_ADD_TEST(suite, test_help_and_version);
	CU_ADD_TEST(suite, test_program_options);
	return sl_ut_run();
}
