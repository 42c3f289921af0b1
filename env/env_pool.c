/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * Rings and mempools.
 *
 * Rings are DPDK rings built with rte_ring_init() on heap memory: that needs no EAL,
 * so the thread library (whose message queues are rings) runs in unit tests and in
 * tools that bring the env up late. A struct sl_ring is the rte_ring itself.
 *
 * Mempools are rte_mempools when the EAL is up (hugepage memory, per-lcore caches,
 * shareable between processes), else a heap block whose free elements sit on an
 * MP/MC ring. Both sit behind one small wrapper, found by name in g_pools.
 */

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <rte_errno.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "sluice/env.h"
#include "sluice/log.h"
#include "sluice/util.h"
#include "thread_internal.h"

#define POOL_NAME_LEN 64

struct sl_mempool {
	/* Set when the pool is an rte_mempool; else the heap fallback below. */
	struct rte_mempool *rte;
	struct sl_ring *free_ring;
	void *mem;
	size_t count;
	size_t elt_size;
	char name[POOL_NAME_LEN];
	LIST_ENTRY(sl_mempool) link;
};

static pthread_mutex_t g_pools_lock = PTHREAD_MUTEX_INITIALIZER;
static LIST_HEAD(, sl_mempool) g_pools = LIST_HEAD_INITIALIZER(g_pools);

static unsigned int
pool_ring_flags(enum sl_ring_type type)
{
	switch (type) {
	case SL_RING_SP_SC:
		return RING_F_SP_ENQ | RING_F_SC_DEQ;
	case SL_RING_MP_SC:
		return RING_F_SC_DEQ;
	case SL_RING_MP_MC:
	default:
		return 0;
	}
}

struct sl_ring *
sl_ring_create(enum sl_ring_type type, size_t count, int socket_id)
{
	struct rte_ring *r;
	ssize_t memsize;
	int rc;

	(void)socket_id;
	if (count == 0 || count >= RTE_RING_SZ_MASK) {
		return NULL;
	}
	/* RING_F_EXACT_SZ: the ring holds exactly count objects (its slot array is the
	 * next power of two above). */
	memsize = rte_ring_get_memsize(rte_align32pow2((uint32_t)count + 1));
	if (memsize < 0) {
		return NULL;
	}
	r = aligned_alloc(RTE_CACHE_LINE_SIZE, SL_ALIGN_UP((size_t)memsize, RTE_CACHE_LINE_SIZE));
	if (r == NULL) {
		return NULL;
	}
	rc = rte_ring_init(r, "sl_ring", (unsigned int)count,
			   pool_ring_flags(type) | RING_F_EXACT_SZ);
	if (rc != 0) {
		free(r);
		return NULL;
	}
	return (struct sl_ring *)r;
}

void
sl_ring_free(struct sl_ring *ring)
{
	free(ring);
}

size_t
sl_ring_enqueue(struct sl_ring *ring, void **objs, size_t count, size_t *free_space)
{
	unsigned int space = 0;
	size_t n;

	n = rte_ring_enqueue_burst((struct rte_ring *)ring, objs, (unsigned int)count, &space);
	if (free_space != NULL) {
		*free_space = space;
	}
	return n;
}

size_t
sl_ring_dequeue(struct sl_ring *ring, void **objs, size_t count)
{
	return rte_ring_dequeue_burst((struct rte_ring *)ring, objs, (unsigned int)count, NULL);
}

size_t
sl_ring_count(struct sl_ring *ring)
{
	const struct rte_ring *r = (const struct rte_ring *)ring;
	uint32_t prod, cons, count;

	/* rte_ring_count() reads the tails with plain loads, racing with the producers'
	 * atomic stores. The reactors' lost-wake-up check is such a read (reactor.c), so
	 * read them atomically: ordered by the fences there, and TSan-clean. */
	prod = __atomic_load_n(&r->prod.tail, __ATOMIC_ACQUIRE);
	cons = __atomic_load_n(&r->cons.tail, __ATOMIC_ACQUIRE);
	count = (prod - cons) & r->mask;
	return count > r->capacity ? r->capacity : count;
}

static int
pool_heap_init(struct sl_mempool *mp, size_t count, size_t elt_size)
{
	size_t stride = SL_ALIGN_UP(elt_size, sizeof(void *));
	size_t i;

	mp->free_ring = sl_ring_create(SL_RING_MP_MC, count, SL_ENV_SOCKET_ANY);
	if (mp->free_ring == NULL) {
		return -ENOMEM;
	}
	mp->mem = aligned_alloc(SL_CACHE_LINE, SL_ALIGN_UP(count * stride, SL_CACHE_LINE));
	if (mp->mem == NULL) {
		return -ENOMEM;
	}
	for (i = 0; i < count; i++) {
		void *elt = (uint8_t *)mp->mem + i * stride;

		rte_ring_enqueue((struct rte_ring *)mp->free_ring, elt);
	}
	return 0;
}

static int
pool_rte_init(struct sl_mempool *mp, size_t count, size_t elt_size, size_t cache_size,
	      int socket_id)
{
	/* rte_mempool_create rejects caches above this bound (rte_mempool.h). */
	cache_size = SL_MIN(cache_size, (size_t)RTE_MEMPOOL_CACHE_MAX_SIZE);
	cache_size = SL_MIN(cache_size, count * 2 / 3);
	mp->rte = rte_mempool_create(mp->name, (unsigned int)count, (unsigned int)elt_size,
				     (unsigned int)cache_size, 0, NULL, NULL, NULL, NULL,
				     socket_id < 0 ? SOCKET_ID_ANY : socket_id, 0);
	if (mp->rte == NULL) {
		return rte_errno != 0 ? -rte_errno : -ENOMEM;
	}
	return 0;
}

static void
pool_destroy(struct sl_mempool *mp)
{
	if (mp->rte != NULL) {
		rte_mempool_free(mp->rte);
	}
	sl_ring_free(mp->free_ring);
	free(mp->mem);
	free(mp);
}

static struct sl_mempool *
pool_create(const char *name, size_t count, size_t elt_size, size_t cache_size, int socket_id,
	    bool heap)
{
	struct sl_mempool *mp;
	int rc;

	if (name == NULL || count == 0 || elt_size == 0 || count > UINT32_MAX) {
		errno = EINVAL;
		return NULL;
	}
	mp = calloc(1, sizeof(*mp));
	if (mp == NULL) {
		return NULL;
	}
	snprintf(mp->name, sizeof(mp->name), "%s", name);
	mp->count = count;
	mp->elt_size = elt_size;
	if (!heap) {
		rc = pool_rte_init(mp, count, elt_size, cache_size, socket_id);
	} else {
		rc = pool_heap_init(mp, count, elt_size);
	}
	if (rc != 0) {
		SL_ERRLOG("mempool %s (%zu x %zu bytes): %s\n", name, count, elt_size,
			  strerror(-rc));
		pool_destroy(mp);
		errno = -rc;
		return NULL;
	}
	pthread_mutex_lock(&g_pools_lock);
	LIST_INSERT_HEAD(&g_pools, mp, link);
	pthread_mutex_unlock(&g_pools_lock);
	return mp;
}

struct sl_mempool *
sl_mempool_create(const char *name, size_t count, size_t elt_size, size_t cache_size, int socket_id)
{
	return pool_create(name, count, elt_size, cache_size, socket_id, !sl_env_is_initialized());
}

struct sl_mempool *
env_mempool_create_heap(const char *name, size_t count, size_t elt_size)
{
	return pool_create(name, count, elt_size, 0, SL_ENV_SOCKET_ANY, true);
}

struct sl_mempool *
sl_mempool_lookup(const char *name)
{
	struct rte_mempool *rte;
	struct sl_mempool *mp;

	pthread_mutex_lock(&g_pools_lock);
	LIST_FOREACH (mp, &g_pools, link) {
		if (strcmp(mp->name, name) == 0) {
			break;
		}
	}
	pthread_mutex_unlock(&g_pools_lock);
	if (mp != NULL || !sl_env_is_initialized()) {
		return mp;
	}
	/* A pool of another process (DPDK multi-process): wrap it on first lookup. */
	rte = rte_mempool_lookup(name);
	if (rte == NULL) {
		return NULL;
	}
	mp = calloc(1, sizeof(*mp));
	if (mp == NULL) {
		return NULL;
	}
	snprintf(mp->name, sizeof(mp->name), "%s", name);
	mp->rte = rte;
	mp->count = rte->size;
	mp->elt_size = rte->elt_size;
	pthread_mutex_lock(&g_pools_lock);
	LIST_INSERT_HEAD(&g_pools, mp, link);
	pthread_mutex_unlock(&g_pools_lock);
	return mp;
}

void
sl_mempool_free(struct sl_mempool *mp)
{
	if (mp == NULL) {
		return;
	}
	pthread_mutex_lock(&g_pools_lock);
	LIST_REMOVE(mp, link);
	pthread_mutex_unlock(&g_pools_lock);
	pool_destroy(mp);
}

void *
sl_mempool_get(struct sl_mempool *mp)
{
	void *elt = NULL;

	if (mp->rte != NULL) {
		return rte_mempool_get(mp->rte, &elt) == 0 ? elt : NULL;
	}
	return rte_ring_dequeue((struct rte_ring *)mp->free_ring, &elt) == 0 ? elt : NULL;
}

int
sl_mempool_get_bulk(struct sl_mempool *mp, void **elts, size_t count)
{
	if (mp->rte != NULL) {
		return rte_mempool_get_bulk(mp->rte, elts, (unsigned int)count) == 0 ? 0 : -ENOMEM;
	}
	if (rte_ring_dequeue_bulk((struct rte_ring *)mp->free_ring, elts, (unsigned int)count,
				  NULL) != count) {
		return -ENOMEM;
	}
	return 0;
}

void
sl_mempool_put(struct sl_mempool *mp, void *elt)
{
	if (mp->rte != NULL) {
		rte_mempool_put(mp->rte, elt);
		return;
	}
	/* The ring holds every element, so it cannot be full. */
	rte_ring_enqueue((struct rte_ring *)mp->free_ring, elt);
}

void
sl_mempool_put_bulk(struct sl_mempool *mp, void **elts, size_t count)
{
	if (mp->rte != NULL) {
		rte_mempool_put_bulk(mp->rte, elts, (unsigned int)count);
		return;
	}
	rte_ring_enqueue_bulk((struct rte_ring *)mp->free_ring, elts, (unsigned int)count, NULL);
}

size_t
sl_mempool_count(const struct sl_mempool *mp)
{
	if (mp->rte != NULL) {
		return rte_mempool_avail_count(mp->rte);
	}
	return rte_ring_count((const struct rte_ring *)mp->free_ring);
}
