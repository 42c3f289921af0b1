/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * Table-driven decoding of RPC params into structs. Messages name the key and quote
 * the offending value, because they go back verbatim to the user who typed them.
 * Value decoders write "must be ..., got X"; the object decoder prefixes "'key' ".
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/rpc.h"

/* Longest quoted value in a message: enough to recognise it. */
#define DECODE_VALUE_MAX 64

/* Write the compact JSON text of val, cut to DECODE_VALUE_MAX, into buf. */
static void
decode_value_str(const json_t *val, char *buf, size_t len)
{
	char *text = json_dumps(val, JSON_ENCODE_ANY | JSON_COMPACT);

	if (text == NULL) {
		snprintf(buf, len, "?");
		return;
	}
	if (strlen(text) > DECODE_VALUE_MAX) {
		snprintf(buf, len, "%.*s...", DECODE_VALUE_MAX, text);
	} else {
		snprintf(buf, len, "%s", text);
	}
	free(text);
}

static int
decode_fail(const json_t *val, const char *what, char *err, size_t errlen)
{
	char value[DECODE_VALUE_MAX + 8];

	decode_value_str(val, value, sizeof(value));
	snprintf(err, errlen, "must be %s, got %s", what, value);
	return -EINVAL;
}

int
sl_json_decode_string(const json_t *val, void *out, char *err, size_t errlen)
{
	char *copy;

	if (!json_is_string(val)) {
		return decode_fail(val, "a string", err, errlen);
	}
	/* JSON strings may hold NUL (\u0000); a C string would silently cut it. */
	if (strlen(json_string_value(val)) != json_string_length(val)) {
		snprintf(err, errlen, "must not contain NUL characters");
		return -EINVAL;
	}
	copy = strdup(json_string_value(val));
	if (copy == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	*(char **)out = copy;
	return 0;
}

int
sl_json_decode_bool(const json_t *val, void *out, char *err, size_t errlen)
{
	if (!json_is_boolean(val)) {
		return decode_fail(val, "true or false", err, errlen);
	}
	*(bool *)out = json_is_true(val);
	return 0;
}

/* Range-check an integer value; what names the type in the message. */
static int
decode_int_range(const json_t *val, json_int_t min, json_int_t max, const char *what, json_int_t *v,
		 char *err, size_t errlen)
{
	if (!json_is_integer(val)) {
		return decode_fail(val, what, err, errlen);
	}
	*v = json_integer_value(val);
	if (*v < min || *v > max) {
		return decode_fail(val, what, err, errlen);
	}
	return 0;
}

int
sl_json_decode_int32(const json_t *val, void *out, char *err, size_t errlen)
{
	json_int_t v;
	int rc;

	rc = decode_int_range(val, INT32_MIN, INT32_MAX, "an integer in [-2147483648, 2147483647]",
			      &v, err, errlen);
	if (rc == 0) {
		*(int32_t *)out = (int32_t)v;
	}
	return rc;
}

int
sl_json_decode_uint16(const json_t *val, void *out, char *err, size_t errlen)
{
	json_int_t v;
	int rc;

	rc = decode_int_range(val, 0, UINT16_MAX, "an integer in [0, 65535]", &v, err, errlen);
	if (rc == 0) {
		*(uint16_t *)out = (uint16_t)v;
	}
	return rc;
}

int
sl_json_decode_uint32(const json_t *val, void *out, char *err, size_t errlen)
{
	json_int_t v;
	int rc;

	rc = decode_int_range(val, 0, UINT32_MAX, "an integer in [0, 4294967295]", &v, err, errlen);
	if (rc == 0) {
		*(uint32_t *)out = (uint32_t)v;
	}
	return rc;
}

int
sl_json_decode_uint64(const json_t *val, void *out, char *err, size_t errlen)
{
	json_int_t v;
	int rc;

	/* jansson stores integers as long long: values above INT64_MAX fail to parse. */
	rc = decode_int_range(val, 0, INT64_MAX, "a non-negative integer", &v, err, errlen);
	if (rc == 0) {
		*(uint64_t *)out = (uint64_t)v;
	}
	return rc;
}

int
sl_json_decode_array(const json_t *val, sl_json_decode_fn decode, void *out, size_t max_size,
		     size_t *out_size, size_t stride, char *err, size_t errlen)
{
	char inner[256];
	size_t i;
	json_t *elem;

	*out_size = 0;
	if (!json_is_array(val)) {
		return decode_fail(val, "an array", err, errlen);
	}
	if (json_array_size(val) > max_size) {
		snprintf(err, errlen, "must have at most %zu elements, got %zu", max_size,
			 json_array_size(val));
		return -EINVAL;
	}
	json_array_foreach (val, i, elem) {
		int rc = decode(elem, (char *)out + i * stride, inner, sizeof(inner));

		if (rc != 0) {
			snprintf(err, errlen, "element %zu %s", i, inner);
			return rc;
		}
		*out_size = i + 1;
	}
	return 0;
}

static const struct sl_json_object_decoder *
decode_find(const struct sl_json_object_decoder *decoders, size_t count, const char *key)
{
	for (size_t i = 0; i < count; i++) {
		if (strcmp(decoders[i].name, key) == 0) {
			return &decoders[i];
		}
	}
	return NULL;
}

int
sl_json_decode_object(const json_t *obj, const struct sl_json_object_decoder *decoders,
		      size_t count, void *out, char *err, size_t errlen)
{
	const char *key;
	json_t *val;
	char inner[256];

	if (obj != NULL && !json_is_object(obj)) {
		char value[DECODE_VALUE_MAX + 8];

		decode_value_str(obj, value, sizeof(value));
		snprintf(err, errlen, "params must be an object, got %s", value);
		return -EINVAL;
	}
	if (obj != NULL) {
		/* Unknown keys first: a typo is a better explanation than "missing". */
		json_object_foreach ((json_t *)(uintptr_t)obj, key, val) {
			if (decode_find(decoders, count, key) == NULL) {
				snprintf(err, errlen, "unknown parameter '%s'", key);
				return -EINVAL;
			}
		}
	}
	for (size_t i = 0; i < count; i++) {
		int rc;

		val = obj != NULL ? json_object_get(obj, decoders[i].name) : NULL;
		if (val == NULL) {
			if (!decoders[i].optional) {
				snprintf(err, errlen, "missing parameter '%s'", decoders[i].name);
				return -EINVAL;
			}
			continue;
		}
		rc = decoders[i].decode(val, (char *)out + decoders[i].offset, inner,
					sizeof(inner));
		if (rc != 0) {
			snprintf(err, errlen, "'%s' %s", decoders[i].name, inner);
			return -EINVAL;
		}
	}
	return 0;
}
