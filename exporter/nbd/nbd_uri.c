/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * NBD URIs for an export (NetworkBlockDevice/nbd doc/uri.md), as nbd_server_get_exports
 * lists them for users to paste into nbdinfo, qemu or fio.
 *
 * uri.md defers every quoting question to RFC 3986, and its clients percent-decode the
 * path into the export name and the socket parameter into the socket's name. Both are
 * free text here -- an export name is any UTF-8 but NUL (proto.md, strings), a socket
 * path any bytes but NUL -- so anything outside RFC 3986's "unreserved" set (2.3) is
 * percent-encoded (2.1, upper-case hex), byte by byte for UTF-8. That covers the
 * characters that would end or split a component ('?' and '#' the path, '&' and '#' a
 * query parameter, '%' any of them), '+' that some query parsers read as a space, and
 * space and non-ASCII, which may not appear in a URI at all. The one exception is '/'
 * in the socket path: a query may hold it as it is (3.4), and a path reads better so.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nbd_internal.h"

static bool
uri_unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

size_t
nbd_uri_encode(char *out, size_t outlen, const char *s, const char *keep)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t len = 0, w = 0;
	bool full = outlen == 0;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		char tok[3] = {(char)c};
		size_t n = 1;

		if (!uri_unreserved(c) && (keep == NULL || strchr(keep, c) == NULL)) {
			tok[0] = '%';
			tok[1] = hex[c >> 4];
			tok[2] = hex[c & 15];
			n = 3;
		}
		/* Whole escapes only: a cut output ends before one, never inside. */
		if (!full && w + n < outlen) {
			memcpy(out + w, tok, n);
			w += n;
		} else {
			full = true;
		}
		len += n;
	}
	if (outlen > 0) {
		out[w] = '\0';
	}
	return len;
}

/* \return s percent-encoded in a new string, or NULL without memory. */
static char *
uri_encode_dup(const char *s, const char *keep)
{
	size_t len = nbd_uri_encode(NULL, 0, s, keep);
	char *out = malloc(len + 1);

	if (out != NULL) {
		nbd_uri_encode(out, len + 1, s, keep);
	}
	return out;
}

char *
nbd_uri_tcp(const char *host, int port, const char *name)
{
	char *ename, *ehost = NULL, *uri = NULL;

	ename = uri_encode_dup(name, NULL);
	if (ename == NULL) {
		return NULL;
	}
	if (strchr(host, ':') != NULL) {
		/* An IPv6 literal goes in brackets (RFC 3986 3.2.2); a zone's '%' is
		 * written "%25" (RFC 6874). */
		ehost = uri_encode_dup(host, ":");
		if (ehost == NULL || asprintf(&uri, "nbd://[%s]:%d/%s", ehost, port, ename) < 0) {
			uri = NULL;
		}
	} else if (asprintf(&uri, "nbd://%s:%d/%s", host, port, ename) < 0) {
		uri = NULL;
	}
	free(ehost);
	free(ename);
	return uri;
}

char *
nbd_uri_unix(const char *path, const char *name)
{
	char *ename, *epath, *uri = NULL;

	ename = uri_encode_dup(name, NULL);
	epath = uri_encode_dup(path, "/");
	if (ename == NULL || epath == NULL ||
	    asprintf(&uri, "nbd+unix:///%s?socket=%s", ename, epath) < 0) {
		uri = NULL;
	}
	free(epath);
	free(ename);
	return uri;
}
