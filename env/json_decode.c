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

int
sl_json_decode_int_range(const json_t *val, json_int_t min, json_int_t max, const char *what,
			 json_int_t *v, char *err, size_t errlen)
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

	rc = sl_json_decode_int_range(val, INT32_MIN, INT32_MAX,
				      "an integer in [-2147483648, 2147483647]", &v, err, errlen);
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

	rc = sl_json_decode_int_range(val, 0, UINT16_MAX, "an integer in [0, 65535]", &v, err,
				      errlen);
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

	rc = sl_json_decode_int_range(val, 0, UINT32_MAX, "an integer in [0, 4294967295]", &v, err,
				      errlen);
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
	rc = sl_json_decode_int_range(val, 0, INT64_MAX, "a non-negative integer", &v, err, errlen);
	if (rc == 0) {
		*(uint64_t *)out = (uint64_t)v;
	}
	return rc;
}

int
sl_json_decode_array(const json_t *val, sl_json_decode_fn decode, void *out, size_t max_size,
		     size_t *out_size, size_t stride, char *err, size_t errlen)
{
	size_t n = json_array_size(val), i;
	char inner[256];
	void *prior;
	int rc = 0;

	if (!json_is_array(val)) {
		return decode_fail(val, "an array", err, errlen);
	}
	if (n > max_size) {
		snprintf(err, errlen, "must have at most %zu elements, got %zu", max_size, n);
		return -EINVAL;
	}
	if (n == 0) {
		*out_size = 0;
		return 0;
	}
	/* The elements' bytes as the caller left them, put back if one fails (out_size is
	 * written on success only). */
	prior = malloc(n * stride);
	if (prior == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memcpy(prior, out, n * stride);
	for (i = 0; i < n; i++) {
		rc = decode(json_array_get(val, i), (char *)out + i * stride, inner, sizeof(inner));
		if (rc != 0) {
			break;
		}
	}
	if (rc != 0) {
		snprintf(err, errlen, "element %zu %s", i, inner);
		/* Elements before i hold strings of this call; element i got none. */
		while (decode == sl_json_decode_string && i-- > 0) {
			free(*(char **)((char *)out + i * stride));
		}
		memcpy(out, prior, n * stride);
	} else {
		*out_size = n;
	}
	free(prior);
	return rc;
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

/* Decode one present value into its field; err gets "'key' <why>". */
static int
decode_field(const json_t *val, const struct sl_json_object_decoder *d, void *out, char *err,
	     size_t errlen)
{
	char inner[256];

	if (d->decode(val, (char *)out + d->offset, inner, sizeof(inner)) != 0) {
		snprintf(err, errlen, "'%s' %s", d->name, inner);
		return -EINVAL;
	}
	return 0;
}

/*
 * Decode the fields of d[0 .. count) in table order. One frame per decoder (tables are
 * static and short) keeps each string field's value from before the call, so that when
 * a later field fails the string decoded here is freed and that value put back: a
 * default the caller set is neither freed nor lost.
 */
static int
decode_fields(const json_t *obj, const struct sl_json_object_decoder *d, size_t count, void *out,
	      char *err, size_t errlen)
{
	char **str = NULL, *prior = NULL;
	json_t *val;
	int rc;

	if (count == 0) {
		return 0;
	}
	val = obj != NULL ? json_object_get(obj, d->name) : NULL;
	if (val == NULL && !d->optional) {
		snprintf(err, errlen, "missing parameter '%s'", d->name);
		return -EINVAL;
	}
	if (val != NULL) {
		if (d->decode == sl_json_decode_string) {
			str = (char **)((char *)out + d->offset);
			prior = *str;
		}
		rc = decode_field(val, d, out, err, errlen);
		if (rc != 0) {
			return rc;
		}
	}
	rc = decode_fields(obj, d + 1, count - 1, out, err, errlen);
	if (rc != 0 && str != NULL) {
		free(*str);
		*str = prior;
	}
	return rc;
}

int
sl_json_decode_object(const json_t *obj, const struct sl_json_object_decoder *decoders,
		      size_t count, void *out, char *err, size_t errlen)
{
	const char *key;
	json_t *val;

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
	return decode_fields(obj, decoders, count, out, err, errlen);
}
