/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * DMA-safe memory, virtual-to-IOVA translation and named shared memory.
 *
 * With the EAL up, buffers come from DPDK's heap (hugepages) and regions are memzones.
 * Without it (unit tests, tools that need no DMA) they come from the C heap and a
 * process-local list, so code above env/ runs unchanged; sl_vtophys() then says
 * SL_IOVA_INVALID.
 *
 * Which allocator owns a buffer is decided by its address, not by the current state:
 * DPDK's virtual ranges are recorded when the EAL comes up, so a heap buffer allocated
 * before sl_env_init() can be freed after it, and a DPDK buffer freed after
 * sl_env_fini() (its memory is already unmapped) is not handed to free().
 */

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_memory.h>
#include <rte_memzone.h>

#include "sluice/env.h"
#include "sluice/log.h"
#include "sluice/util.h"
#include "env_internal.h"

struct env_mem_range {
	uintptr_t start;
	uintptr_t end;
};

/* Written once by env_mem_eal_up() before any DPDK buffer exists; read-only after. */
static struct env_mem_range g_env_mem_ranges[RTE_MAX_MEMSEG_LISTS];
static int g_env_mem_nranges;

/* Regions reserved while the EAL is down. */
struct env_shm_region {
	char name[RTE_MEMZONE_NAMESIZE];
	void *addr;
	size_t len;
	TAILQ_ENTRY(env_shm_region) link;
};

static TAILQ_HEAD(, env_shm_region) g_env_shm_regions = TAILQ_HEAD_INITIALIZER(g_env_shm_regions);
static pthread_mutex_t g_env_shm_lock = PTHREAD_MUTEX_INITIALIZER;

static int
env_mem_range_add(const struct rte_memseg_list *msl, void *arg)
{
	if (g_env_mem_nranges < (int)SL_COUNTOF(g_env_mem_ranges) && msl->base_va != NULL) {
		g_env_mem_ranges[g_env_mem_nranges].start = (uintptr_t)msl->base_va;
		g_env_mem_ranges[g_env_mem_nranges].end = (uintptr_t)msl->base_va + msl->len;
		g_env_mem_nranges++;
	}
	return 0;
}

void
env_mem_eal_up(void)
{
	/* Memseg lists are virtual reservations made at init: they cover all DPDK memory. */
	g_env_mem_nranges = 0;
	rte_memseg_list_walk(env_mem_range_add, NULL);
}

void
env_mem_eal_down(void)
{
	/* The ranges stay: buffers freed later must still be recognised as DPDK's. */
}

static bool
env_mem_is_dpdk(const void *buf)
{
	uintptr_t va = (uintptr_t)buf;
	int i;

	for (i = 0; i < g_env_mem_nranges; i++) {
		if (va >= g_env_mem_ranges[i].start && va < g_env_mem_ranges[i].end) {
			return true;
		}
	}
	return false;
}

static int
env_mem_align(size_t *align)
{
	if (*align == 0) {
		*align = SL_CACHE_LINE;
	}
	return SL_IS_POW2(*align) ? 0 : -EINVAL;
}

static void *
env_heap_alloc(size_t size, size_t align)
{
	/* aligned_alloc wants a multiple of the alignment. */
	if (size > SIZE_MAX - align) {
		errno = ENOMEM;
		return NULL;
	}
	return aligned_alloc(align, SL_ALIGN_UP(size, align));
}

static void *
env_dma_alloc(size_t size, size_t align, uint64_t *iova, bool zero)
{
	void *buf;

	if (size == 0 || env_mem_align(&align) != 0) {
		errno = EINVAL;
		return NULL;
	}
	if (env_eal_is_up()) {
		buf = zero ? rte_zmalloc_socket(NULL, size, align, SOCKET_ID_ANY)
			   : rte_malloc_socket(NULL, size, align, SOCKET_ID_ANY);
		if (buf == NULL) {
			errno = ENOMEM;
		}
	} else {
		buf = env_heap_alloc(size, align);
		if (buf != NULL && zero) {
			memset(buf, 0, size);
		}
	}
	if (buf != NULL && iova != NULL) {
		*iova = sl_vtophys(buf, NULL);
	}
	return buf;
}

void *
sl_dma_malloc(size_t size, size_t align, uint64_t *iova)
{
	return env_dma_alloc(size, align, iova, false);
}

void *
sl_dma_zmalloc(size_t size, size_t align, uint64_t *iova)
{
	return env_dma_alloc(size, align, iova, true);
}

void *
sl_dma_realloc(void *buf, size_t size, size_t align)
{
	void *nbuf;

	if (buf == NULL) {
		return sl_dma_malloc(size, align, NULL);
	}
	if (size == 0 || env_mem_align(&align) != 0) {
		errno = EINVAL;
		return NULL;
	}
	if (env_mem_is_dpdk(buf)) {
		if (!env_eal_is_up()) {
			SL_ERRLOG("realloc of DMA buffer %p after sl_env_fini()", buf);
			errno = EINVAL;
			return NULL;
		}
		nbuf = rte_realloc_socket(buf, size, align, SOCKET_ID_ANY);
		if (nbuf == NULL) {
			errno = ENOMEM;
		}
		return nbuf;
	}
	/* A heap buffer: move it (to DPDK memory if the EAL has come up since). */
	nbuf = sl_dma_malloc(size, align, NULL);
	if (nbuf == NULL) {
		return NULL;
	}
	memcpy(nbuf, buf, SL_MIN(size, malloc_usable_size(buf)));
	free(buf);
	return nbuf;
}

void
sl_dma_free(void *buf)
{
	if (buf == NULL) {
		return;
	}
	if (env_mem_is_dpdk(buf)) {
		/* After sl_env_fini() the EAL has unmapped it already. */
		if (env_eal_is_up()) {
			rte_free(buf);
		}
		return;
	}
	free(buf);
}

/* Bytes IOVA-contiguous from vaddr, walking the memsegs after the one holding it. */
static uint64_t
env_mem_contig_len(struct rte_memseg_list *msl, int idx, const void *vaddr, uint64_t want)
{
	struct rte_memseg *ms = rte_fbarray_get(&msl->memseg_arr, idx);
	uint64_t len = (uintptr_t)ms->addr + ms->len - (uintptr_t)vaddr;
	uint64_t next_iova = ms->iova + ms->len;

	/* Memsegs of one list are virtually contiguous by index (base_va + idx * page_sz). */
	while (want == 0 || len < want) {
		idx++;
		if (idx >= (int)msl->memseg_arr.len ||
		    rte_fbarray_is_used(&msl->memseg_arr, idx) != 1) {
			break;
		}
		ms = rte_fbarray_get(&msl->memseg_arr, idx);
		if (ms->iova != next_iova) {
			break;
		}
		len += ms->len;
		next_iova += ms->len;
	}
	return want == 0 ? len : SL_MIN(len, want);
}

uint64_t
sl_vtophys(const void *vaddr, uint64_t *size)
{
	struct rte_memseg_list *msl;
	struct rte_memseg *ms;
	int idx;

	if (!env_eal_is_up() || !env_mem_is_dpdk(vaddr)) {
		goto invalid;
	}
	msl = rte_mem_virt2memseg_list(vaddr);
	ms = rte_mem_virt2memseg(vaddr, msl);
	if (ms == NULL) {
		goto invalid;
	}
	idx = rte_fbarray_find_idx(&msl->memseg_arr, ms);
	if (idx < 0 || rte_fbarray_is_used(&msl->memseg_arr, idx) != 1 ||
	    ms->iova == RTE_BAD_IOVA) {
		goto invalid;
	}
	if (size != NULL) {
		*size = env_mem_contig_len(msl, idx, vaddr, *size);
	}
	return ms->iova + ((uintptr_t)vaddr - (uintptr_t)ms->addr);
invalid:
	if (size != NULL) {
		*size = 0;
	}
	return SL_IOVA_INVALID;
}

static int
env_shm_check_name(const char *name)
{
	if (name == NULL || name[0] == '\0') {
		return -EINVAL;
	}
	if (strlen(name) >= RTE_MEMZONE_NAMESIZE) {
		SL_ERRLOG("shared memory name '%s' is too long (at most %d characters)", name,
			  RTE_MEMZONE_NAMESIZE - 1);
		return -ENAMETOOLONG;
	}
	return 0;
}

static struct env_shm_region *
env_shm_local_find(const char *name)
{
	struct env_shm_region *r;

	TAILQ_FOREACH (r, &g_env_shm_regions, link) {
		if (strcmp(r->name, name) == 0) {
			return r;
		}
	}
	return NULL;
}

static void *
env_shm_local_reserve(const char *name, size_t len, size_t align)
{
	struct env_shm_region *r;
	int err = 0;

	pthread_mutex_lock(&g_env_shm_lock);
	if (env_shm_local_find(name) != NULL) {
		err = EEXIST;
		goto out;
	}
	r = calloc(1, sizeof(*r));
	if (r != NULL) {
		r->addr = env_heap_alloc(len, align);
	}
	if (r == NULL || r->addr == NULL) {
		free(r);
		err = ENOMEM;
		goto out;
	}
	memset(r->addr, 0, len);
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->len = len;
	TAILQ_INSERT_TAIL(&g_env_shm_regions, r, link);
out:
	pthread_mutex_unlock(&g_env_shm_lock);
	errno = err;
	return err == 0 ? r->addr : NULL;
}

void *
sl_shm_reserve(const char *name, size_t len, size_t align)
{
	const struct rte_memzone *mz;
	int rc;

	rc = env_shm_check_name(name);
	if (rc == 0 && (len == 0 || env_mem_align(&align) != 0)) {
		rc = -EINVAL;
	}
	if (rc != 0) {
		errno = -rc;
		return NULL;
	}
	if (!env_eal_is_up()) {
		return env_shm_local_reserve(name, len, align);
	}
	mz = rte_memzone_reserve_aligned(name, len, SOCKET_ID_ANY, 0, align);
	if (mz == NULL) {
		errno = rte_errno;
		if (errno != EEXIST) {
			SL_ERRLOG("cannot reserve shared memory '%s' (%zu bytes): %s", name, len,
				  rte_strerror(rte_errno));
		}
		return NULL;
	}
	/* Heap memory is not guaranteed zero (e.g. dirty hugepages of a previous run). */
	memset(mz->addr, 0, len);
	return mz->addr;
}

void *
sl_shm_lookup(const char *name, size_t *len)
{
	const struct rte_memzone *mz;
	struct env_shm_region *r;
	void *addr = NULL;

	if (env_shm_check_name(name) != 0) {
		errno = EINVAL;
		return NULL;
	}
	if (env_eal_is_up()) {
		mz = rte_memzone_lookup(name);
		if (mz != NULL) {
			if (len != NULL) {
				*len = mz->len;
			}
			return mz->addr;
		}
	}
	pthread_mutex_lock(&g_env_shm_lock);
	r = env_shm_local_find(name);
	if (r != NULL) {
		addr = r->addr;
		if (len != NULL) {
			*len = r->len;
		}
	}
	pthread_mutex_unlock(&g_env_shm_lock);
	if (addr == NULL) {
		errno = ENOENT;
	}
	return addr;
}

int
sl_shm_free(const char *name)
{
	const struct rte_memzone *mz;
	struct env_shm_region *r;

	if (env_shm_check_name(name) != 0) {
		return -EINVAL;
	}
	if (env_eal_is_up()) {
		mz = rte_memzone_lookup(name);
		if (mz != NULL) {
			return rte_memzone_free(mz) == 0 ? 0 : -ENOENT;
		}
	}
	pthread_mutex_lock(&g_env_shm_lock);
	r = env_shm_local_find(name);
	if (r != NULL) {
		TAILQ_REMOVE(&g_env_shm_regions, r, link);
	}
	pthread_mutex_unlock(&g_env_shm_lock);
	if (r == NULL) {
		return -ENOENT;
	}
	free(r->addr);
	free(r);
	return 0;
}
