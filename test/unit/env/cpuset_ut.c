/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/* Unit tests of env/cpuset.c: parsing hex masks and lists, formatting, set algebra. */

#include <CUnit/Basic.h>
#include <errno.h>
#include <string.h>

#include "sl_ut.h"
#include "sluice/cpuset.h"

static const char *
fmt(const char *mask)
{
	static char buf[300];
	struct sl_cpuset set;

	if (sl_cpuset_parse(&set, mask) != 0) {
		return "error";
	}
	return sl_cpuset_fmt(&set, buf, sizeof(buf));
}

static void
test_parse_hex(void)
{
	struct sl_cpuset set;

	CU_ASSERT(sl_cpuset_parse(&set, "0x3") == 0);
	CU_ASSERT(sl_cpuset_count(&set) == 2);
	CU_ASSERT(sl_cpuset_get_cpu(&set, 0) && sl_cpuset_get_cpu(&set, 1));
	CU_ASSERT(!sl_cpuset_get_cpu(&set, 2));
	/* A bare number is hex, as in SPDK: "1" is core 0, "10" is core 4. */
	CU_ASSERT(strcmp(fmt("1"), "0x1") == 0);
	CU_ASSERT(strcmp(fmt("10"), "0x10") == 0);
	CU_ASSERT(strcmp(fmt("0XfF"), "0xff") == 0);
	CU_ASSERT(strcmp(fmt("0x0000000000000001"), "0x1") == 0);
	/* Past 64 cores. */
	CU_ASSERT(sl_cpuset_parse(&set, "0x10000000000000000") == 0);
	CU_ASSERT(sl_cpuset_count(&set) == 1);
	CU_ASSERT(sl_cpuset_get_cpu(&set, 64));
	CU_ASSERT(strcmp(fmt("0x10000000000000000"), "0x10000000000000000") == 0);
	CU_ASSERT(strcmp(fmt("0x0"), "0x0") == 0);
}

static void
test_parse_list(void)
{
	struct sl_cpuset set;
	char big[259];

	CU_ASSERT(sl_cpuset_parse(&set, "[0-2,5]") == 0);
	CU_ASSERT(sl_cpuset_count(&set) == 4);
	CU_ASSERT(strcmp(fmt("[0-2,5]"), "0x27") == 0);
	CU_ASSERT(strcmp(fmt("0-2,5"), "0x27") == 0);
	CU_ASSERT(strcmp(fmt("[3]"), "0x8") == 0);
	CU_ASSERT(strcmp(fmt("1,0"), "0x3") == 0);
	/* Core 1023: "0x8" and 255 zeros. */
	memset(big, '0', sizeof(big));
	big[0] = '0';
	big[1] = 'x';
	big[2] = '8';
	big[258] = '\0';
	CU_ASSERT(strcmp(fmt("[1023]"), big) == 0);
	CU_ASSERT(sl_cpuset_next(&set, 0) == 0);
	CU_ASSERT(sl_cpuset_next(&set, 3) == 5);
	CU_ASSERT(sl_cpuset_next(&set, 6) == UINT32_MAX);
}

static void
test_parse_bad(void)
{
	static const char *bad[] = {"",      "0x",   "0xg", "zz",   "[",    "[0-",
				    "[2-1]", "[0,]", "[0",  "0-2]", "[0]x", "[1024]",
				    "-1",    "0x-1", "[a]", "1,,2", " 1"};
	struct sl_cpuset set, before;
	size_t i;

	sl_cpuset_parse(&before, "0x5");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		set = before;
		CU_ASSERT_EQUAL(sl_cpuset_parse(&set, bad[i]), -EINVAL);
		/* A failed parse leaves the set alone. */
		CU_ASSERT(sl_cpuset_equal(&set, &before));
	}
	/* 257 hex digits: past the set. */
	CU_ASSERT(sl_cpuset_parse(&set, NULL) == -EINVAL);
	CU_ASSERT(sl_cpuset_parse(&set, "0x"
					"1000000000000000000000000000000000000000000000000"
					"000000000000000000000000000000000000000000000000000000"
					"000000000000000000000000000000000000000000000000000000"
					"000000000000000000000000000000000000000000000000000000"
					"000000000000000000000000000000000000000000000000000000") ==
		  -EINVAL);
}

static void
test_fmt_short_buffer(void)
{
	struct sl_cpuset set;
	char buf[4];

	sl_cpuset_parse(&set, "0xfff");
	CU_ASSERT(strcmp(sl_cpuset_fmt(&set, buf, sizeof(buf)), "") == 0);
	sl_cpuset_parse(&set, "0xf");
	CU_ASSERT(strcmp(sl_cpuset_fmt(&set, buf, sizeof(buf)), "0xf") == 0);
}

static void
test_algebra(void)
{
	struct sl_cpuset a, b;

	sl_cpuset_zero(&a);
	sl_cpuset_set_cpu(&a, 3, true);
	sl_cpuset_set_cpu(&a, 100, true);
	sl_cpuset_set_cpu(&a, 5000, true); /* out of range: ignored */
	CU_ASSERT(sl_cpuset_count(&a) == 2);
	CU_ASSERT(!sl_cpuset_get_cpu(&a, 5000));
	sl_cpuset_parse(&b, "[3-4]");
	sl_cpuset_or(&b, &a);
	CU_ASSERT(sl_cpuset_count(&b) == 3);
	sl_cpuset_and(&b, &a);
	CU_ASSERT(sl_cpuset_equal(&a, &b));
	sl_cpuset_set_cpu(&b, 100, false);
	CU_ASSERT(!sl_cpuset_equal(&a, &b));
	CU_ASSERT(sl_cpuset_next(&a, 4) == 100);
}

int
main(void)
{
	CU_pSuite suite = sl_ut_suite("cpuset", NULL, NULL);

	CU_ADD_TEST(suite, test_parse_hex);
	CU_ADD_TEST(suite, test_parse_list);
	CU_ADD_TEST(suite, test_parse_bad);
	CU_ADD_TEST(suite, test_fmt_short_buffer);
	CU_ADD_TEST(suite, test_algebra);
	return sl_ut_run();
}
