/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * CPU sets: parse and format core masks.
 *
 * A mask is hex ("0x3", "3"; SPDK's -m) or a list ("[0-2,5]", "0-2,5"). A bare
 * number is hex, as in SPDK: "1" is core 0, not core 1.
 */

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/cpuset.h"
#include "sluice/util.h"

void
sl_cpuset_zero(struct sl_cpuset *set)
{
	memset(set, 0, sizeof(*set));
}

void
sl_cpuset_set_cpu(struct sl_cpuset *set, uint32_t cpu, bool on)
{
	if (cpu >= SL_CPUSET_SIZE) {
		return;
	}
	if (on) {
		set->bits[cpu / 64] |= 1ull << (cpu % 64);
	} else {
		set->bits[cpu / 64] &= ~(1ull << (cpu % 64));
	}
}

bool
sl_cpuset_get_cpu(const struct sl_cpuset *set, uint32_t cpu)
{
	if (cpu >= SL_CPUSET_SIZE) {
		return false;
	}
	return (set->bits[cpu / 64] >> (cpu % 64)) & 1;
}

uint32_t
sl_cpuset_count(const struct sl_cpuset *set)
{
	uint32_t n = 0;
	size_t i;

	for (i = 0; i < SL_COUNTOF(set->bits); i++) {
		n += (uint32_t)__builtin_popcountll(set->bits[i]);
	}
	return n;
}

uint32_t
sl_cpuset_next(const struct sl_cpuset *set, uint32_t from)
{
	uint32_t word;
	uint64_t bits;

	for (word = from / 64; word < SL_COUNTOF(set->bits); word++) {
		bits = set->bits[word];
		if (word == from / 64) {
			bits &= ~0ull << (from % 64);
		}
		if (bits != 0) {
			return word * 64 + (uint32_t)__builtin_ctzll(bits);
		}
	}
	return UINT32_MAX;
}

bool
sl_cpuset_equal(const struct sl_cpuset *a, const struct sl_cpuset *b)
{
	return memcmp(a->bits, b->bits, sizeof(a->bits)) == 0;
}

void
sl_cpuset_and(struct sl_cpuset *dst, const struct sl_cpuset *src)
{
	size_t i;

	for (i = 0; i < SL_COUNTOF(dst->bits); i++) {
		dst->bits[i] &= src->bits[i];
	}
}

void
sl_cpuset_or(struct sl_cpuset *dst, const struct sl_cpuset *src)
{
	size_t i;

	for (i = 0; i < SL_COUNTOF(dst->bits); i++) {
		dst->bits[i] |= src->bits[i];
	}
}

static int
cpuset_hex_digit(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	return -1;
}

static int
cpuset_parse_hex(struct sl_cpuset *set, const char *s)
{
	size_t len, i;
	int d;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
	}
	len = strlen(s);
	if (len == 0 || len > SL_CPUSET_SIZE / 4) {
		return -EINVAL;
	}
	/* The last digit holds cores 0-3. */
	for (i = 0; i < len; i++) {
		d = cpuset_hex_digit(s[len - 1 - i]);
		if (d < 0) {
			return -EINVAL;
		}
		set->bits[i / 16] |= (uint64_t)d << ((i % 16) * 4);
	}
	return 0;
}

static int
cpuset_parse_cpu(const char **s, uint32_t *cpu)
{
	unsigned long v;
	char *end;

	if (!isdigit((unsigned char)**s)) {
		return -EINVAL;
	}
	errno = 0;
	v = strtoul(*s, &end, 10);
	if (errno != 0 || v >= SL_CPUSET_SIZE) {
		return -EINVAL;
	}
	*cpu = (uint32_t)v;
	*s = end;
	return 0;
}

/* "0-2,5" up to the end or a ']' that must close an opening '['. */
static int
cpuset_parse_list(struct sl_cpuset *set, const char *s)
{
	bool bracket = *s == '[';
	uint32_t lo, hi, cpu;

	s += bracket;
	for (;;) {
		if (cpuset_parse_cpu(&s, &lo) != 0) {
			return -EINVAL;
		}
		hi = lo;
		if (*s == '-') {
			s++;
			if (cpuset_parse_cpu(&s, &hi) != 0 || hi < lo) {
				return -EINVAL;
			}
		}
		for (cpu = lo; cpu <= hi; cpu++) {
			sl_cpuset_set_cpu(set, cpu, true);
		}
		if (*s != ',') {
			break;
		}
		s++;
	}
	if (bracket && *s++ != ']') {
		return -EINVAL;
	}
	return *s == '\0' ? 0 : -EINVAL;
}

int
sl_cpuset_parse(struct sl_cpuset *set, const char *mask)
{
	struct sl_cpuset tmp;
	int rc;

	if (set == NULL || mask == NULL) {
		return -EINVAL;
	}
	sl_cpuset_zero(&tmp);
	if (mask[0] == '[' || strpbrk(mask, "-,") != NULL) {
		rc = cpuset_parse_list(&tmp, mask);
	} else {
		rc = cpuset_parse_hex(&tmp, mask);
	}
	if (rc == 0) {
		*set = tmp;
	}
	return rc;
}

const char *
sl_cpuset_fmt(const struct sl_cpuset *set, char *buf, unsigned int len)
{
	static const char digits[] = "0123456789abcdef";
	unsigned int pos = 0;
	int i, top;

	if (len == 0) {
		return buf;
	}
	/* Highest non-zero nibble first; at least one digit. */
	for (top = SL_CPUSET_SIZE / 4 - 1; top > 0; top--) {
		if ((set->bits[top / 16] >> ((top % 16) * 4)) & 0xf) {
			break;
		}
	}
	if ((unsigned int)top + 4 > len) {
		buf[0] = '\0';
		return buf;
	}
	buf[pos++] = '0';
	buf[pos++] = 'x';
	for (i = top; i >= 0; i--) {
		buf[pos++] = digits[(set->bits[i / 16] >> ((i % 16) * 4)) & 0xf];
	}
	buf[pos] = '\0';
	return buf;
}
