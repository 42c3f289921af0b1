/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/** \file
 * Small helpers shared by every module: branch hints, container_of, alignment,
 * the missing `_SAFE` list macros of glibc's <sys/queue.h>, and cleanup attributes
 * for control-path code.
 */
#ifndef SLUICE_UTIL_H
#define SLUICE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/queue.h>

#define sl_likely(x)   __builtin_expect(!!(x), 1)
#define sl_unlikely(x) __builtin_expect(!!(x), 0)

#define SL_CONTAINEROF(ptr, type, member) ((type *)((uintptr_t)(ptr)-offsetof(type, member)))
#define SL_COUNTOF(a)                     (sizeof(a) / sizeof((a)[0]))
#define SL_MIN(a, b)                      ((a) < (b) ? (a) : (b))
#define SL_MAX(a, b)                      ((a) > (b) ? (a) : (b))
#define SL_ALIGN_UP(v, a)                 ((((v) + (a)-1) / (a)) * (a))
#define SL_ALIGN_DOWN(v, a)               (((v) / (a)) * (a))
#define SL_IS_POW2(v)                     ((v) != 0 && (((v) & ((v)-1)) == 0))
#define SL_STATIC_ASSERT(c, m)            _Static_assert(c, m)
#define SL_CACHE_LINE                     64

#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)                                         \
	for ((var) = TAILQ_FIRST((head)); (var) && ((tvar) = TAILQ_NEXT((var), field), 1); \
	     (var) = (tvar))
#endif
#ifndef STAILQ_FOREACH_SAFE
#define STAILQ_FOREACH_SAFE(var, head, field, tvar)                                          \
	for ((var) = STAILQ_FIRST((head)); (var) && ((tvar) = STAILQ_NEXT((var), field), 1); \
	     (var) = (tvar))
#endif
#ifndef LIST_FOREACH_SAFE
#define LIST_FOREACH_SAFE(var, head, field, tvar)                                        \
	for ((var) = LIST_FIRST((head)); (var) && ((tvar) = LIST_NEXT((var), field), 1); \
	     (var) = (tvar))
#endif

/* Cleanup helpers: control-path code only, never the polled data path (STYLE.md). */
static inline void
sl_cleanup_free(void *p)
{
	free(*(void **)p);
}
#define SL_CLEANUP_FREE __attribute__((cleanup(sl_cleanup_free)))

#endif /* SLUICE_UTIL_H */
