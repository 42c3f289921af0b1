/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * The table-driven params decoders: types, ranges, unknown and missing keys, and a
 * failure leaving out as found (run under ASan, LeakSanitizer checks nothing leaks).
 */

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

/* Strings around scalars; only the last key is required. */
struct owned {
	char *first;
	uint32_t num;
	char *middle;
	bool flag;
	char *last;
};

static const struct sl_json_object_decoder g_owned_decoders[] = {
	{"first", offsetof(struct owned, first), sl_json_decode_string, true},
	{"num", offsetof(struct owned, num), sl_json_decode_uint32, true},
	{"middle", offsetof(struct owned, middle), sl_json_decode_string, true},
	{"flag", offsetof(struct owned, flag), sl_json_decode_bool, true},
	{"last", offsetof(struct owned, last), sl_json_decode_string, false},
};

/* Caller defaults that are not heap memory: freeing one would be an ASan error. */
static char g_default_first[] = "default-first";
static char g_default_middle[] = "default-middle";
static char g_default_last[] = "default-last";

/* Decode text into *p, which holds prior; the call must fail with msg and leave the
 * string fields as they were. */
static void
check_owned_fails(const char *text, const struct owned *prior, const char *msg)
{
	json_t *obj = json_loads(text, JSON_ALLOW_NUL, NULL);
	struct owned p = *prior;

	CU_ASSERT_FATAL(obj != NULL);
	g_err[0] = '\0';
	CU_ASSERT_EQUAL(sl_json_decode_object(obj, g_owned_decoders, SL_COUNTOF(g_owned_decoders),
					      &p, g_err, sizeof(g_err)),
			-EINVAL);
	CU_ASSERT_STRING_EQUAL(g_err, msg);
	CU_ASSERT_PTR_EQUAL(p.first, prior->first);
	CU_ASSERT_PTR_EQUAL(p.middle, prior->middle);
	CU_ASSERT_PTR_EQUAL(p.last, prior->last);
	json_decref(obj);
}

static void
test_failure_frees(void)
{
	const struct owned empty = {0};
	const struct owned defaults = {
		.first = g_default_first,
		.middle = g_default_middle,
		.last = g_default_last,
	};
	const struct owned *priors[] = {&empty, &defaults};

	for (size_t i = 0; i < SL_COUNTOF(priors); i++) {
		/* The first key fails: nothing decoded yet. */
		check_owned_fails("{\"first\":5,\"middle\":\"m\",\"last\":\"l\"}", priors[i],
				  "'first' must be a string, got 5");
		/* A middle key fails after one string. */
		check_owned_fails("{\"first\":\"f\",\"num\":-1,\"middle\":\"m\",\"last\":\"l\"}",
				  priors[i], "'num' must be an integer in [0, 4294967295], got -1");
		/* A middle key fails after two strings. */
		check_owned_fails("{\"first\":\"f\",\"middle\":\"m\",\"flag\":1,\"last\":\"l\"}",
				  priors[i], "'flag' must be true or false, got 1");
		/* The last key fails after two strings: wrong type, NUL, missing. */
		check_owned_fails("{\"first\":\"f\",\"num\":3,\"middle\":\"m\",\"last\":7}",
				  priors[i], "'last' must be a string, got 7");
		check_owned_fails("{\"first\":\"f\",\"middle\":\"m\",\"last\":\"a\\u0000b\"}",
				  priors[i], "'last' must not contain NUL characters");
		check_owned_fails("{\"first\":\"f\",\"middle\":\"m\",\"flag\":true}", priors[i],
				  "missing parameter 'last'");
		/* Unknown keys are found before anything is decoded. */
		check_owned_fails("{\"first\":\"f\",\"last\":\"l\",\"lats\":1}", priors[i],
				  "unknown parameter 'lats'");
	}
}

static void
test_defaults_kept(void)
{
	json_t *obj = json_loads("{\"middle\":\"m\",\"last\":\"l\"}", 0, NULL);
	struct owned p = {.first = g_default_first, .middle = g_default_middle};

	/* On success too, absent keys keep the caller's values. */
	CU_ASSERT_EQUAL(sl_json_decode_object(obj, g_owned_decoders, SL_COUNTOF(g_owned_decoders),
					      &p, g_err, sizeof(g_err)),
			0);
	CU_ASSERT_PTR_EQUAL(p.first, g_default_first);
	CU_ASSERT_STRING_EQUAL(p.middle, "m");
	CU_ASSERT_STRING_EQUAL(p.last, "l");
	free(p.middle);
	free(p.last);
	json_decref(obj);
}

/* An array of strings that fails at element bad must leave names and n as they were. */
static void
check_strings_fail(const char *text, char **prior, size_t bad)
{
	json_t *arr = json_loads(text, 0, NULL);
	char *names[4], msg[128];
	size_t n = 77;

	CU_ASSERT_FATAL(arr != NULL);
	memcpy(names, prior, sizeof(names));
	CU_ASSERT_EQUAL(sl_json_decode_array(arr, sl_json_decode_string, names, SL_COUNTOF(names),
					     &n, sizeof(names[0]), g_err, sizeof(g_err)),
			-EINVAL);
	snprintf(msg, sizeof(msg), "element %zu must be a string, got 5", bad);
	CU_ASSERT_STRING_EQUAL(g_err, msg);
	CU_ASSERT_EQUAL(n, 77);
	CU_ASSERT(memcmp(names, prior, sizeof(names)) == 0);
	json_decref(arr);
}

static void
test_array_failure_frees(void)
{
	char *empty[4] = {NULL};
	char *defaults[4] = {g_default_first, g_default_middle, g_default_last, NULL};
	char **priors[] = {empty, defaults};
	json_t *arr = json_loads("[\"a\", \"b\", \"c\"]", 0, NULL);
	char *names[4] = {NULL};
	size_t n = 0;

	for (size_t i = 0; i < SL_COUNTOF(priors); i++) {
		check_strings_fail("[5, \"b\", \"c\"]", priors[i], 0);
		check_strings_fail("[\"a\", 5, \"c\"]", priors[i], 1);
		check_strings_fail("[\"a\", \"b\", 5]", priors[i], 2);
		check_strings_fail("[\"a\", \"b\", \"c\", 5]", priors[i], 3);
	}
	CU_ASSERT_EQUAL(sl_json_decode_array(arr, sl_json_decode_string, names, SL_COUNTOF(names),
					     &n, sizeof(names[0]), g_err, sizeof(g_err)),
			0);
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT_STRING_EQUAL(names[2], "c");
	CU_ASSERT_PTR_NULL(names[3]);
	for (size_t i = 0; i < n; i++) {
		free(names[i]);
	}
	json_decref(arr);
}

int
main(void)
{
	CU_pSuite suite = sl_ut_suite("json_decode", NULL, NULL);

	CU_add_test(suite, "all_types", test_all_types);
	CU_add_test(suite, "errors", test_errors);
	CU_add_test(suite, "long_value", test_long_value);
	CU_add_test(suite, "array", test_array);
	CU_add_test(suite, "failure_frees", test_failure_frees);
	CU_add_test(suite, "defaults_kept", test_defaults_kept);
	CU_add_test(suite, "array_failure_frees", test_array_failure_frees);
	return sl_ut_run();
}
