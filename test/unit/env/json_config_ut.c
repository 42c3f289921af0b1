/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/* JSON config: validation errors, SPDK-config tolerance, phases and error reports. */

#include <CUnit/Basic.h>
#include <unistd.h>

#include "sl_ut.h"
#include "env/json_config.c"

/* ---- A fake RPC layer ------------------------------------------------------------ */

static struct sl_rpc_method g_fake_methods[] = {
	{.name = "bdev_malloc_create", .state_mask = SL_RPC_RUNTIME},
	{.name = "bdev_null_create", .state_mask = SL_RPC_RUNTIME},
	{.name = "log_set_flag", .state_mask = SL_RPC_STARTUP | SL_RPC_RUNTIME},
	{.name = "bdev_set_options", .state_mask = SL_RPC_STARTUP},
};

static char g_calls[512];
static sl_rpc_local_cb g_deferred_cb;
static void *g_deferred_ctx;
static bool g_defer;

static const struct sl_rpc_method *
fake_find_method(const char *name)
{
	size_t i;

	for (i = 0; i < SL_COUNTOF(g_fake_methods); i++) {
		if (strcmp(g_fake_methods[i].name, name) == 0) {
			return &g_fake_methods[i];
		}
	}
	return NULL;
}

static void
fake_call(json_t *request, sl_rpc_local_cb cb, void *ctx)
{
	const char *method = json_string_value(json_object_get(request, "method"));
	const char *name =
		json_string_value(json_object_get(json_object_get(request, "params"), "name"));
	json_t *resp;

	snprintf(g_calls + strlen(g_calls), sizeof(g_calls) - strlen(g_calls), "%s(%s) ", method,
		 name ? name : "");
	if (g_defer) {
		g_deferred_cb = cb;
		g_deferred_ctx = ctx;
		return;
	}
	/* A second bdev of the same name fails, as the real module does. */
	if (name != NULL && strcmp(name, "Dup") == 0) {
		resp = json_pack("{s:s, s:i, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", 1, "error",
				 "code", -17, "message", "bdev Dup already exists");
	} else {
		resp = json_pack("{s:s, s:i, s:b}", "jsonrpc", "2.0", "id", 1, "result", 1);
	}
	cb(ctx, resp);
	json_decref(resp);
}

static struct sl_subsystem g_bdev_subsystem = {.name = "bdev"};

static int g_run_rc;
static int g_run_calls;

static void
run_done(int rc, void *ctx)
{
	g_run_rc = rc;
	g_run_calls++;
}

static int
suite_init(void)
{
	g_json_config_find_method = fake_find_method;
	g_json_config_call = fake_call;
	sl_subsystem_register(&g_bdev_subsystem);
	return 0;
}

static struct sl_json_config *
parse(const char *text, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root = json_loads(text, 0, &jerr);
	struct sl_json_config *cfg;

	CU_ASSERT_PTR_NOT_NULL_FATAL(root);
	cfg = sl_json_config_parse(root, err, errlen);
	json_decref(root);
	return cfg;
}

static void
expect_error(const char *text, const char *needle)
{
	char err[512];
	struct sl_json_config *cfg = parse(text, err, sizeof(err));

	CU_ASSERT_PTR_NULL(cfg);
	if (strstr(err, needle) == NULL) {
		fprintf(stderr, "\n  expected '%s' in '%s'\n", needle, err);
		CU_FAIL("error message");
	}
	sl_json_config_free(cfg);
}

/* ---- Tests ----------------------------------------------------------------------- */

static void
test_shape_errors(void)
{
	expect_error("[]", "\"subsystems\" array");
	expect_error("{}", "\"subsystems\" array");
	expect_error("{\"subsystems\": {}}", "\"subsystems\" array");
	expect_error("{\"subsystems\": [42]}", "subsystems[0]");
	expect_error("{\"subsystems\": [{\"config\": []}]}", "subsystems[0]");
	expect_error("{\"subsystems\": [{\"subsystem\": \"bdev\", \"config\": {}}]}",
		     "subsystem 'bdev': \"config\" must be an array");
	expect_error(
		"{\"subsystems\": [{\"subsystem\": \"bdev\", \"config\": [{\"params\": {}}]}]}",
		"subsystem 'bdev', config entry 0");
	expect_error("{\"subsystems\": [{\"subsystem\": \"bdev\", \"config\": "
		     "[{\"method\": \"bdev_malloc_create\", \"params\": 5}]}]}",
		     "method 'bdev_malloc_create': \"params\" must be an object");
}

static void
test_unknown_methods(void)
{
	expect_error("{\"subsystems\": [{\"subsystem\": \"bdev\", \"config\": "
		     "[{\"method\": \"bdev_frobnicate\"}]}]}",
		     "subsystem 'bdev', method 'bdev_frobnicate': no such method");
	expect_error(
		"{\"subsystems\": [{\"subsystem\": \"vhost_scsi\", \"config\": "
		"[{\"method\": \"vhost_create_scsi_controller\"}]}]}",
		"subsystem 'vhost_scsi', method 'vhost_create_scsi_controller': not supported");
}

static void
test_spdk_config_tolerated(void)
{
	/* The shape of what SPDK's save_config writes for an app with two bdevs. */
	static const char text[] =
		"{\"subsystems\": ["
		" {\"subsystem\": \"keyring\", \"config\": []},"
		" {\"subsystem\": \"iobuf\", \"config\": [{\"method\": \"iobuf_set_options\","
		"   \"params\": {\"small_pool_count\": 8192}}]},"
		" {\"subsystem\": \"sock\", \"config\": [{\"method\": \"sock_set_default_impl\","
		"   \"params\": {\"impl_name\": \"posix\"}}, {\"method\": "
		"\"sock_impl_set_options\","
		"   \"params\": {\"impl_name\": \"posix\"}}]},"
		" {\"subsystem\": \"vmd\", \"config\": null},"
		" {\"subsystem\": \"accel\", \"config\": [{\"method\": \"accel_set_options\"}]},"
		" {\"subsystem\": \"scheduler\", \"config\": [{\"method\": "
		"\"framework_set_scheduler\","
		"   \"params\": {\"name\": \"static\"}}]},"
		" {\"subsystem\": \"bdev\", \"config\": ["
		"   {\"method\": \"bdev_set_options\", \"params\": {\"bdev_io_pool_size\": 65535}},"
		"   {\"method\": \"bdev_nvme_set_options\", \"params\": {}},"
		"   {\"method\": \"bdev_malloc_create\", \"params\": {\"name\": \"M0\"}},"
		"   {\"method\": \"bdev_null_create\", \"params\": {\"name\": \"N0\"}},"
		"   {\"method\": \"bdev_wait_for_examine\"}]}]}";
	char err[512];
	struct sl_json_config *cfg = parse(text, err, sizeof(err));

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	/* Only the methods Sluice has are kept. */
	CU_ASSERT_EQUAL(cfg->count, 3);
	sl_json_config_free(cfg);
}

static void
test_phases_and_order(void)
{
	static const char text[] =
		"{\"subsystems\": [{\"subsystem\": \"bdev\", \"config\": ["
		" {\"method\": \"bdev_malloc_create\", \"params\": {\"name\": \"M0\"}},"
		" {\"method\": \"bdev_set_options\", \"params\": {\"name\": \"opts\"}},"
		" {\"method\": \"bdev_null_create\", \"params\": {\"name\": \"N0\"}},"
		" {\"method\": \"log_set_flag\", \"params\": {\"name\": \"flag\"}}]}]}";
	char err[512];
	struct sl_json_config *cfg = parse(text, err, sizeof(err));

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	g_calls[0] = '\0';
	g_run_calls = 0;
	sl_json_config_run(cfg, SL_RPC_STARTUP, false, run_done, NULL);
	CU_ASSERT_EQUAL(g_run_calls, 1);
	CU_ASSERT_EQUAL(g_run_rc, 0);
	CU_ASSERT_STRING_EQUAL(g_calls, "bdev_set_options(opts) log_set_flag(flag) ");
	g_calls[0] = '\0';
	sl_json_config_run(cfg, SL_RPC_RUNTIME, false, run_done, NULL);
	CU_ASSERT_EQUAL(g_run_calls, 2);
	CU_ASSERT_EQUAL(g_run_rc, 0);
	CU_ASSERT_STRING_EQUAL(g_calls, "bdev_malloc_create(M0) bdev_null_create(N0) ");
	sl_json_config_free(cfg);
}

static void
test_failing_entry(void)
{
	static const char text[] =
		"{\"subsystems\": [{\"subsystem\": \"bdev\", \"config\": ["
		" {\"method\": \"bdev_malloc_create\", \"params\": {\"name\": \"Dup\"}},"
		" {\"method\": \"bdev_malloc_create\", \"params\": {\"name\": \"After\"}}]}]}";
	char err[512];
	struct sl_json_config *cfg = parse(text, err, sizeof(err));

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	g_calls[0] = '\0';
	sl_json_config_run(cfg, SL_RPC_RUNTIME, false, run_done, NULL);
	CU_ASSERT_EQUAL(g_run_rc, -17);
	CU_ASSERT_STRING_EQUAL(g_calls, "bdev_malloc_create(Dup) ");
	CU_ASSERT_STRING_EQUAL(
		sl_json_config_error(cfg),
		"subsystem 'bdev', method 'bdev_malloc_create' (entry 0): error -17: "
		"bdev Dup already exists");
	/* --json-ignore-init-errors: logged, and the rest still runs. */
	g_calls[0] = '\0';
	sl_json_config_run(cfg, SL_RPC_RUNTIME, true, run_done, NULL);
	CU_ASSERT_EQUAL(g_run_rc, 0);
	CU_ASSERT_STRING_EQUAL(g_calls, "bdev_malloc_create(Dup) bdev_malloc_create(After) ");
	sl_json_config_free(cfg);
}

static void
test_deferred_answers(void)
{
	static const char text[] =
		"{\"subsystems\": [{\"subsystem\": \"bdev\", \"config\": ["
		" {\"method\": \"bdev_malloc_create\", \"params\": {\"name\": \"A\"}},"
		" {\"method\": \"bdev_malloc_create\", \"params\": {\"name\": \"B\"}}]}]}";
	json_t *ok = json_pack("{s:b}", "result", 1);
	char err[512];
	struct sl_json_config *cfg = parse(text, err, sizeof(err));

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	g_calls[0] = '\0';
	g_run_calls = 0;
	g_defer = true;
	sl_json_config_run(cfg, SL_RPC_RUNTIME, false, run_done, NULL);
	CU_ASSERT_EQUAL(g_run_calls, 0);
	g_deferred_cb(g_deferred_ctx, ok);
	CU_ASSERT_EQUAL(g_run_calls, 0);
	CU_ASSERT_STRING_EQUAL(g_calls, "bdev_malloc_create(A) bdev_malloc_create(B) ");
	g_deferred_cb(g_deferred_ctx, ok);
	CU_ASSERT_EQUAL(g_run_calls, 1);
	CU_ASSERT_EQUAL(g_run_rc, 0);
	g_defer = false;
	json_decref(ok);
	sl_json_config_free(cfg);
}

static void
test_files(void)
{
	char path[] = "/tmp/json_config_ut.XXXXXX", err[512];
	struct sl_json_config *cfg;
	int fd;

	cfg = sl_json_config_load_file("/nonexistent/sluice.json", err, sizeof(err));
	CU_ASSERT_PTR_NULL(cfg);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot read JSON config /nonexistent/sluice.json"));

	fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(write(fd, "{\"subsystems\": [\n  {,}\n]}", 24), 24);
	close(fd);
	cfg = sl_json_config_load_file(path, err, sizeof(err));
	CU_ASSERT_PTR_NULL(cfg);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "line 2 column"));
	unlink(path);
}

int
main(void)
{
	CU_pSuite suite = sl_ut_suite("json_config", suite_init, NULL);

	CU_ADD_TEST(suite, test_shape_errors);
	CU_ADD_TEST(suite, test_unknown_methods);
	CU_ADD_TEST(suite, test_spdk_config_tolerated);
	CU_ADD_TEST(suite, test_phases_and_order);
	CU_ADD_TEST(suite, test_failing_entry);
	CU_ADD_TEST(suite, test_deferred_answers);
	CU_ADD_TEST(suite, test_files);
	return sl_ut_run();
}
