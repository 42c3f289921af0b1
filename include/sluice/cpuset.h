/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/** \file
 * CPU sets as parsed from core masks ("0x3", "[0-3,6]", "1").
 */
#ifndef SLUICE_CPUSET_H
#define SLUICE_CPUSET_H

#include <stdbool.h>
#include <stdint.h>

#define SL_CPUSET_SIZE 1024

struct sl_cpuset {
	uint64_t bits[SL_CPUSET_SIZE / 64];
};

/**
 * Parse a core mask: hex ("0x3" or "3"; a bare number is hex, as in SPDK's -m, so "1"
 * is core 0), or a list ("[0-2,5]" or "0-2,5"). On error set is left unchanged.
 * \return 0, or -EINVAL naming nothing (the caller names the option).
 */
int sl_cpuset_parse(struct sl_cpuset *set, const char *mask);
/** Format as a hex mask ("0x3"; "0x0" when empty) into buf. \return buf, "" if too short. */
const char *sl_cpuset_fmt(const struct sl_cpuset *set, char *buf, unsigned int len);
void sl_cpuset_zero(struct sl_cpuset *set);
void sl_cpuset_set_cpu(struct sl_cpuset *set, uint32_t cpu, bool on);
bool sl_cpuset_get_cpu(const struct sl_cpuset *set, uint32_t cpu);
uint32_t sl_cpuset_count(const struct sl_cpuset *set);
/** \return the first cpu >= from in the set, or UINT32_MAX. */
uint32_t sl_cpuset_next(const struct sl_cpuset *set, uint32_t from);
bool sl_cpuset_equal(const struct sl_cpuset *a, const struct sl_cpuset *b);
void sl_cpuset_and(struct sl_cpuset *dst, const struct sl_cpuset *src);
void sl_cpuset_or(struct sl_cpuset *dst, const struct sl_cpuset *src);

#endif /* SLUICE_CPUSET_H */
