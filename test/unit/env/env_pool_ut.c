/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * Unit tests of env/env_pool.c without the EAL: rings built by rte_ring_init() on the
 * heap, and the heap mempool fallback.
 */

#include <CUnit/Basic.h>
#include <pthread.h>
#include <stdint.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "sl_ut.h"
#include "sluice/env.h"

static void
test_ring_sp_sc(void)
{
	struct sl_ring *r = sl_ring_create(SL_RING_SP_SC, 8, SL_ENV_SOCKET_ANY);
	void *objs[16], *out[16];
	size_t space, i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	for (i = 0; i < 16; i++) {
		objs[i] = (void *)(i + 1);
	}
	CU_ASSERT(sl_ring_count(r) == 0);
	CU_ASSERT(sl_ring_dequeue(r, out, 4) == 0);
	/* Holds exactly count objects. */
	CU_ASSERT(sl_ring_enqueue(r, objs, 16, &space) == 8);
	CU_ASSERT(space == 0);
	CU_ASSERT(sl_ring_count(r) == 8);
	CU_ASSERT(sl_ring_enqueue(r, objs, 1, NULL) == 0);
	CU_ASSERT(sl_ring_dequeue(r, out, 3) == 3);
	CU_ASSERT(out[0] == objs[0] && out[2] == objs[2]);
	CU_ASSERT(sl_ring_enqueue(r, &objs[8], 2, &space) == 2);
	CU_ASSERT(space == 1);
	CU_ASSERT(sl_ring_dequeue(r, out, 16) == 7);
	/* FIFO across the wrap. */
	CU_ASSERT(out[0] == objs[3]);
	CU_ASSERT(out[4] == objs[7]);
	CU_ASSERT(out[5] == objs[8] && out[6] == objs[9]);
	sl_ring_free(r);
	CU_ASSERT(sl_ring_create(SL_RING_SP_SC, 0, 0) == NULL);
	sl_ring_free(NULL);
}

#define PER_PRODUCER 200000

struct producer {
	struct sl_ring *ring;
	uintptr_t id;
};

static void *
producer_main(void *arg)
{
	struct producer *p = arg;
	uintptr_t i;
	void *obj;

	for (i = 0; i < PER_PRODUCER; i++) {
		obj = (void *)((i << 1) | p->id);
		while (sl_ring_enqueue(p->ring, &obj, 1, NULL) != 1) {
			sched_yield();
		}
	}
	return NULL;
}

static void
test_ring_mp_sc(void)
{
	struct sl_ring *r = sl_ring_create(SL_RING_MP_SC, 1024, SL_ENV_SOCKET_ANY);
	struct producer p[2] = {{.ring = r, .id = 0}, {.ring = r, .id = 1}};
	long next[2] = {0, 0};
	pthread_t tid[2];
	void *out[64];
	size_t n, i, total = 0;
	bool ordered = true;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	for (i = 0; i < 2; i++) {
		CU_ASSERT_FATAL(pthread_create(&tid[i], NULL, producer_main, &p[i]) == 0);
	}
	while (total < 2 * PER_PRODUCER) {
		n = sl_ring_dequeue(r, out, 64);
		for (i = 0; i < n; i++) {
			uintptr_t v = (uintptr_t)out[i];

			/* Each producer's objects arrive in its order, none lost. */
			if ((long)(v >> 1) != next[v & 1]) {
				ordered = false;
			}
			next[v & 1] = (long)(v >> 1) + 1;
		}
		total += n;
		if (n == 0) {
			sched_yield();
		}
	}
	for (i = 0; i < 2; i++) {
		pthread_join(tid[i], NULL);
	}
	CU_ASSERT(ordered);
	CU_ASSERT(next[0] == PER_PRODUCER && next[1] == PER_PRODUCER);
	CU_ASSERT(sl_ring_count(r) == 0);
	sl_ring_free(r);
}

static void
test_mempool_heap(void)
{
	struct sl_mempool *mp;
	void *elts[100], *extra;
	size_t i;

	CU_ASSERT(!sl_env_is_initialized());
	mp = sl_mempool_create("ut_pool", 100, 40, 16, SL_ENV_SOCKET_ANY);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mp);
	CU_ASSERT(sl_mempool_lookup("ut_pool") == mp);
	CU_ASSERT(sl_mempool_lookup("nope") == NULL);
	CU_ASSERT(sl_mempool_count(mp) == 100);
	CU_ASSERT(sl_mempool_get_bulk(mp, elts, 101) != 0);
	CU_ASSERT(sl_mempool_count(mp) == 100); /* all or nothing */
	CU_ASSERT(sl_mempool_get_bulk(mp, elts, 60) == 0);
	for (i = 60; i < 100; i++) {
		elts[i] = sl_mempool_get(mp);
		CU_ASSERT_PTR_NOT_NULL(elts[i]);
	}
	CU_ASSERT(sl_mempool_count(mp) == 0);
	CU_ASSERT(sl_mempool_get(mp) == NULL);
	/* Distinct, aligned, writable elements. */
	for (i = 0; i < 100; i++) {
		CU_ASSERT((uintptr_t)elts[i] % sizeof(void *) == 0);
		memset(elts[i], (int)i, 40);
	}
	for (i = 0; i < 100; i++) {
		CU_ASSERT(((uint8_t *)elts[i])[39] == (uint8_t)i);
	}
	sl_mempool_put(mp, elts[0]);
	CU_ASSERT(sl_mempool_count(mp) == 1);
	extra = sl_mempool_get(mp);
	CU_ASSERT(extra == elts[0]);
	sl_mempool_put_bulk(mp, elts, 100);
	CU_ASSERT(sl_mempool_count(mp) == 100);
	sl_mempool_free(mp);
	CU_ASSERT(sl_mempool_lookup("ut_pool") == NULL);
	sl_mempool_free(NULL);
	CU_ASSERT(sl_mempool_create("bad", 0, 8, 0, 0) == NULL);
}

int
main(void)
{
	CU_pSuite suite = sl_ut_suite("env_pool", NULL, NULL);

	CU_ADD_TEST(suite, test_ring_sp_sc);
	CU_ADD_TEST(suite, test_ring_mp_sc);
	CU_ADD_TEST(suite, test_mempool_heap);
	return sl_ut_run();
}
