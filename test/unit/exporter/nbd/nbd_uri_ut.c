/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * Unit tests of the NBD URI builder (nbd_uri.c): what RFC 3986 lets stand in a path or
 * a query parameter, and what must be percent-encoded so that a client decodes the
 * export name and socket path it was given (doc/uri.md of the NBD project).
 */

#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

#include "exporter/nbd/nbd_uri.c"

static void
check_encode(const char *in, const char *keep, const char *want)
{
	char out[256];
	size_t n = nbd_uri_encode(out, sizeof(out), in, keep);

	CU_ASSERT(n == strlen(want));
	CU_ASSERT_STRING_EQUAL(out, want);
}

static void
test_encode(void)
{
	/* RFC 3986 2.3, unreserved: stays. */
	check_encode("AZaz09-._~", NULL, "AZaz09-._~");
	check_encode("", NULL, "");
	/* Delimiters of a path or query, '%' itself, '+', space: encoded, upper-case hex. */
	check_encode("a b", NULL, "a%20b");
	check_encode("&?#%=+;", NULL, "%26%3F%23%25%3D%2B%3B");
	check_encode("[]@:!$'()*,", NULL, "%5B%5D%40%3A%21%24%27%28%29%2A%2C");
	/* Non-ASCII: each UTF-8 byte. Control characters too. */
	check_encode("\xc3\xa9", NULL, "%C3%A9");
	check_encode("\x01\x7f\xff", NULL, "%01%7F%FF");
	/* '/' only where asked for. */
	check_encode("/a/b", NULL, "%2Fa%2Fb");
	check_encode("/tmp/x y/n.sock", "/", "/tmp/x%20y/n.sock");
}

static void
test_encode_short(void)
{
	char out[8];

	/* snprintf-like: the full length comes back, the output is cut and terminated. */
	CU_ASSERT(nbd_uri_encode(out, sizeof(out), "abcdefghij", NULL) == 10);
	CU_ASSERT_STRING_EQUAL(out, "abcdefg");
	/* Never half an escape: "ab%20" is 5, "%20" after it would need 8 + NUL. */
	CU_ASSERT(nbd_uri_encode(out, sizeof(out), "ab  ", NULL) == 8);
	CU_ASSERT_STRING_EQUAL(out, "ab%20");
	/* Nor anything after a cut escape, even if it would fit. */
	CU_ASSERT(nbd_uri_encode(out, 6, "abc d", NULL) == 7);
	CU_ASSERT_STRING_EQUAL(out, "abc");
	CU_ASSERT(nbd_uri_encode(NULL, 0, "a b", NULL) == 5);
	out[0] = 'x';
	CU_ASSERT(nbd_uri_encode(out, 1, "a", NULL) == 1 && out[0] == '\0');
}

static void
check_uri(char *uri, const char *want)
{
	CU_ASSERT_PTR_NOT_NULL_FATAL(uri);
	CU_ASSERT_STRING_EQUAL(uri, want);
	free(uri);
}

static void
test_uris(void)
{
	check_uri(nbd_uri_unix("/run/sluice/nbd.sock", "disk"),
		  "nbd+unix:///disk?socket=/run/sluice/nbd.sock");
	/* The characters that broke the URI before: each in the path and the name. */
	check_uri(nbd_uri_unix("/tmp/my dir/a&b?c#d%e.sock", "my disk"),
		  "nbd+unix:///my%20disk?socket=/tmp/my%20dir/a%26b%3Fc%23d%25e.sock");
	check_uri(nbd_uri_unix("/tmp/d\xc3\xa9j\xc3\xa0/s=1+2", "a/b?c"),
		  "nbd+unix:///a%2Fb%3Fc?socket=/tmp/d%C3%A9j%C3%A0/s%3D1%2B2");
	check_uri(nbd_uri_tcp("127.0.0.1", 10809, "disk 1"), "nbd://127.0.0.1:10809/disk%201");
	check_uri(nbd_uri_tcp("::1", 10810, "d"), "nbd://[::1]:10810/d");
	/* RFC 6874: a zone's '%' is "%25". */
	check_uri(nbd_uri_tcp("fe80::1%eth0", 10809, "d"), "nbd://[fe80::1%25eth0]:10809/d");
}

static void
test_long_name(void)
{
	/* Export names go up to 4096 bytes (proto.md): no fixed buffer cuts them. */
	char *name = malloc(4097), *uri;

	CU_ASSERT_PTR_NOT_NULL_FATAL(name);
	memset(name, ' ', 4096);
	name[4096] = '\0';
	uri = nbd_uri_unix("/s", name);
	CU_ASSERT_PTR_NOT_NULL_FATAL(uri);
	CU_ASSERT(strlen(uri) == strlen("nbd+unix:///?socket=/s") + 3 * 4096);
	CU_ASSERT(strcmp(uri + strlen(uri) - 13, "%20?socket=/s") == 0);
	free(uri);
	free(name);
}

int
main(void)
{
	CU_pSuite s;
	unsigned int failures;

	CU_initialize_registry();
	s = CU_add_suite("nbd_uri", NULL, NULL);
	CU_add_test(s, "percent-encoding", test_encode);
	CU_add_test(s, "percent-encoding into a short buffer", test_encode_short);
	CU_add_test(s, "unix and tcp URIs", test_uris);
	CU_add_test(s, "a 4096-byte export name", test_long_name);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures == 0 ? 0 : 1;
}
