/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/* The table-driven params decoders: types, ranges, unknown and missing keys. */

#include <CUnit/Basic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "sl_ut.h"
#include "sluice/rpc.h"
#include "sluice/util.h"

struct params {
	char *name;
	bool flag;
	int32_t i32;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
};

static const struct sl_json_object_decoder g_decoders[] = {
	{"name", offsetof(struct params, name), sl_json_decode_string, false},
	{"flag", offsetof(struct params, flag), sl_json_decode_bool, true},
	{"i32", offsetof(struct params, i32), sl_json_decode_int32, true},
	{"u16", offsetof(struct params, u16), sl_json_decode_uint16, true},
	{"u32", offsetof(struct params, u32), sl_json_decode_uint32, true},
	{"u64", offsetof(struct params, u64), sl_json_decode_uint64, true},
};

static char g_err[256];

/* Decode text into p; \return the rc. */
static int
decode(const char *text, struct params *p)
{
	json_error_t jerr;
	json_t *obj =
		text != NULL ? json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr) : NULL;
	int rc;

	CU_ASSERT_FATAL(text == NULL || obj != NULL);
	memset(p, 0, sizeof(*p));
	g_err[0] = '\0';
	rc = sl_json_decode_object(obj, g_decoders, SL_COUNTOF(g_decoders), p, g_err,
				   sizeof(g_err));
	json_decref(obj);
	return rc;
}

static void
check_fails(const char *text, const char *msg)
{
	struct params p;

	CU_ASSERT_EQUAL(decode(text, &p), -EINVAL);
	CU_ASSERT_STRING_EQUAL(g_err, msg);
	free(p.name);
}

static void
test_all_types(void)
{
	struct params p;

	CU_ASSERT_EQUAL(decode("{\"name\":\"Malloc0\",\"flag\":true,\"i32\":-7,\"u16\":65535,"
			       "\"u32\":4294967295,\"u64\":9223372036854775807}",
			       &p),
			0);
	CU_ASSERT_STRING_EQUAL(p.name, "Malloc0");
	CU_ASSERT(p.flag);
	CU_ASSERT_EQUAL(p.i32, -7);
	CU_ASSERT_EQUAL(p.u16, 65535);
	CU_ASSERT_EQUAL(p.u32, UINT32_MAX);
	CU_ASSERT_EQUAL(p.u64, (uint64_t)INT64_MAX);
	free(p.name);

	/* Optional keys may be absent; they keep what the caller put there. */
	CU_ASSERT_EQUAL(decode("{\"name\":\"x\"}", &p), 0);
	CU_ASSERT_EQUAL(p.u32, 0);
	free(p.name);
}

static void
test_errors(void)
{
	check_fails("{\"name\":\"x\",\"foo\":1}", "unknown parameter 'foo'");
	check_fails("{\"u32\":1}", "missing parameter 'name'");
	check_fails(NULL, "missing parameter 'name'");
	check_fails("[1]", "params must be an object, got [1]");
	check_fails("{\"name\":5}", "'name' must be a string, got 5");
	check_fails("{\"name\":\"a\\u0000b\"}", "'name' must not contain NUL characters");
	check_fails("{\"name\":\"x\",\"flag\":1}", "'flag' must be true or false, got 1");
	check_fails("{\"name\":\"x\",\"u32\":1099511627776}",
		    "'u32' must be an integer in [0, 4294967295], got 1099511627776");
	check_fails("{\"name\":\"x\",\"u32\":-5}",
		    "'u32' must be an integer in [0, 4294967295], got -5");
	check_fails("{\"name\":\"x\",\"u32\":1.5}",
		    "'u32' must be an integer in [0, 4294967295], got 1.5");
	check_fails("{\"name\":\"x\",\"u32\":\"12\"}",
		    "'u32' must be an integer in [0, 4294967295], got \"12\"");
	check_fails("{\"name\":\"x\",\"u16\":65536}",
		    "'u16' must be an integer in [0, 65535], got 65536");
	check_fails("{\"name\":\"x\",\"i32\":2147483648}",
		    "'i32' must be an integer in [-2147483648, 2147483647], got 2147483648");
	check_fails("{\"name\":\"x\",\"u64\":-1}", "'u64' must be a non-negative integer, got -1");
	check_fails("{\"name\":\"x\",\"u64\":null}",
		    "'u64' must be a non-negative integer, got null");
}

static void
test_long_value(void)
{
	char text[512];
	struct params p;

	/* A long value is quoted cut short, never overflowing the message. */
	snprintf(text, sizeof(text), "{\"name\":[");
	for (int i = 0; i < 100; i++) {
		strcat(text, "1,");
	}
	strcat(text, "1]}");
	CU_ASSERT_EQUAL(decode(text, &p), -EINVAL);
	CU_ASSERT(strncmp(g_err, "'name' must be a string, got [1,1,", 34) == 0);
	CU_ASSERT(strstr(g_err, "...") != NULL);
	CU_ASSERT(strlen(g_err) < 120);
}

static void
test_array(void)
{
	json_t *arr = json_loads("[1, 2, 3]", 0, NULL);
	json_t *bad = json_loads("[1, -2]", 0, NULL);
	uint32_t out[4];
	size_t n;
	char err[128];

	CU_ASSERT_EQUAL(sl_json_decode_array(arr, sl_json_decode_uint32, out, 4, &n, sizeof(out[0]),
					     err, sizeof(err)),
			0);
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT_EQUAL(out[2], 3);
	CU_ASSERT_EQUAL(sl_json_decode_array(arr, sl_json_decode_uint32, out, 2, &n, sizeof(out[0]),
					     err, sizeof(err)),
			-EINVAL);
	CU_ASSERT_STRING_EQUAL(err, "must have at most 2 elements, got 3");
	CU_ASSERT_EQUAL(sl_json_decode_array(bad, sl_json_decode_uint32, out, 4, &n, sizeof(out[0]),
					     err, sizeof(err)),
			-EINVAL);
	CU_ASSERT_STRING_EQUAL(err, "element 1 must be an integer in [0, 4294967295], got -2");
	json_decref(arr);
	json_decref(bad);
}

int
main(void)
{
	CU_pSuite suite = sl_ut_suite("json_decode", NULL, NULL);

	CU_add_test(suite, "all_types", test_all_types);
	CU_add_test(suite, "errors", test_errors);
	CU_add_test(suite, "long_value", test_long_value);
	CU_add_test(suite, "array", test_array);
	return sl_ut_run();
}
