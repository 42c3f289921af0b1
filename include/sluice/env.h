/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/** \file
 * The environment: DMA-safe memory, virtual-to-IOVA translation, named shared
 * memory, mempools and rings, over DPDK's EAL. Nothing above env/ sees an rte_ type.
 *
 * Before sl_env_init() (unit tests, tools that need no DMA) the allocators fall back
 * to the ordinary heap and sl_vtophys() returns SL_IOVA_INVALID; rings and mempools
 * work in both states.
 */
#ifndef SLUICE_ENV_H
#define SLUICE_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_IOVA_INVALID   UINT64_MAX
#define SL_ENV_SOCKET_ANY (-1)

enum sl_proc_type {
	SL_PROC_AUTO = 0,
	SL_PROC_PRIMARY,
	SL_PROC_SECONDARY,
};

enum sl_iova_mode {
	SL_IOVA_DEFAULT = 0, /* VA when possible */
	SL_IOVA_VA,
	SL_IOVA_PA,
};

struct sl_env_opts {
	/** Name for logs and the EAL ("sluiced"). */
	const char *name;
	/** Core mask for EAL lcores ("0x1"); NULL = the first CPU the caller may run on. */
	const char *core_mask;
	/** Memory to reserve in MiB (0 = on demand). */
	uint32_t mem_size_mb;
	/** Run without hugepages (memory is not DMA-safe for devices). */
	bool no_huge;
	/**
	 * Shared-memory id: processes with the same id share memory (DPDK file prefix
	 * "sluice<id>"). -1 = private: --in-memory (no hugepage files), prefix
	 * "sluice_pid<pid>", so private processes on one host never clash.
	 */
	int shm_id;
	enum sl_proc_type proc_type;
	enum sl_iova_mode iova_mode;
	/** Hugetlbfs directory (NULL = EAL's search). */
	const char *huge_dir;
	/**
	 * Keep the primary's DPDK runtime directory (and any hugepage files still there)
	 * at sl_env_fini(): default true, as DPDK lets secondaries attach after the primary
	 * is gone; the next primary or `contrib/setup.sh cleanup` removes what is stale.
	 * false: a primary with a shm id removes them at fini. (DPDK 22.11 frees the
	 * primary's hugepage files itself on a clean exit; a crash leaves them.) Not DPDK's
	 * --no-shconf, despite the name.
	 */
	bool no_shconf;
	/** Extra EAL arguments, space separated (expert use). */
	const char *eal_args;
};

/** Fill opts with defaults (private memory, hugepages, auto process type). */
void sl_env_opts_init(struct sl_env_opts *opts);
/**
 * Initialise the environment (DPDK's EAL, with --no-pci: devices are found through
 * sysfs). Hugepages missing gives a message naming the fix (`contrib/setup.sh`, or
 * `--no-huge`). The EAL comes up once per process: a second call, or a call after
 * sl_env_fini(), fails with -EALREADY. Failures detected before the EAL is called
 * (options, hugepages, no primary) can be retried.
 * \param opts NULL for the defaults of sl_env_opts_init().
 * \return 0, -EINVAL (bad option), -ENOMEM (no hugepages), -ENODEV (secondary and no
 * primary with that shm id), -EALREADY, -errno from EAL.
 */
int sl_env_init(const struct sl_env_opts *opts);
/** Release the environment. DMA buffers and regions from the EAL become invalid; the
 * allocators fall back to the heap. */
void sl_env_fini(void);
/** \return whether sl_env_init() succeeded and sl_env_fini() has not run. */
bool sl_env_is_initialized(void);
/** \return whether the env is up on hugepages (not --no-huge): its memory is DMA-safe. */
bool sl_env_has_hugepages(void);
/** \return whether this process is the primary (or private). */
bool sl_env_is_primary(void);
/** \return the shm id in use, or -1. */
int sl_env_shm_id(void);

/**
 * DMA-safe allocation (hugepage memory when the env is up; the C heap before, and then
 * the IOVA is SL_IOVA_INVALID). The buffer is not necessarily IOVA-contiguous past a
 * page: ask sl_vtophys() for the contiguous length.
 * \param size bytes, > 0.
 * \param align power of two, 0 for the cache line.
 * \param iova if not NULL, receives the IOVA of the start.
 * \return the buffer or NULL (errno EINVAL, ENOMEM).
 */
void *sl_dma_malloc(size_t size, size_t align, uint64_t *iova);
void *sl_dma_zmalloc(size_t size, size_t align, uint64_t *iova);
/** Resize, keeping the contents (NULL buf = malloc). \return the buffer or NULL (the old
 * one is then untouched). */
void *sl_dma_realloc(void *buf, size_t size, size_t align);
/** Free a buffer of sl_dma_*alloc (either allocator; NULL is allowed). */
void sl_dma_free(void *buf);

/**
 * Translate a virtual address inside DMA-safe memory to its IOVA.
 * \param size in: bytes wanted (0 = as many as are contiguous); out (if not NULL):
 * bytes contiguous in IOVA from vaddr, at most the bytes wanted, 0 on failure.
 * \return the IOVA, or SL_IOVA_INVALID (env down, or not DPDK memory).
 */
uint64_t sl_vtophys(const void *vaddr, uint64_t *size);

/**
 * Reserve a named, zeroed shared-memory region (a memzone) that other processes with
 * the same shm id find by name. Before sl_env_init() regions are process-local.
 * \param name at most 31 characters.
 * \param align power of two, 0 for the cache line.
 * \return the address or NULL (errno: EEXIST, ENOMEM, ENAMETOOLONG, EINVAL).
 */
void *sl_shm_reserve(const char *name, size_t len, size_t align);
/** Find a region by name. \param len receives its size. \return address or NULL
 * (errno ENOENT). */
void *sl_shm_lookup(const char *name, size_t *len);
/** Free a region (primary, or its creator). \return 0, -ENOENT or -EINVAL (bad name). */
int sl_shm_free(const char *name);

/* Mempools: fixed-size elements with per-thread caches. */
struct sl_mempool;
/** \param cache_size per-lcore cache (0 = none). \return the pool or NULL. */
struct sl_mempool *sl_mempool_create(const char *name, size_t count, size_t elt_size,
				     size_t cache_size, int socket_id);
struct sl_mempool *sl_mempool_lookup(const char *name);
void sl_mempool_free(struct sl_mempool *mp);
/** \return an element or NULL. */
void *sl_mempool_get(struct sl_mempool *mp);
/** \return 0 or -ENOMEM (none taken). */
int sl_mempool_get_bulk(struct sl_mempool *mp, void **elts, size_t count);
void sl_mempool_put(struct sl_mempool *mp, void *elt);
void sl_mempool_put_bulk(struct sl_mempool *mp, void **elts, size_t count);
size_t sl_mempool_count(const struct sl_mempool *mp);

/* Rings: lock-free FIFOs of pointers. */
struct sl_ring;
enum sl_ring_type {
	SL_RING_SP_SC,
	SL_RING_MP_SC,
	SL_RING_MP_MC,
};
/** \param count exact capacity (objects the ring holds). \return the ring or NULL. */
struct sl_ring *sl_ring_create(enum sl_ring_type type, size_t count, int socket_id);
void sl_ring_free(struct sl_ring *ring);
/** \return objects enqueued: count or fewer. \param free_space receives space left. */
size_t sl_ring_enqueue(struct sl_ring *ring, void **objs, size_t count, size_t *free_space);
/** \return objects dequeued (0..count). */
size_t sl_ring_dequeue(struct sl_ring *ring, void **objs, size_t count);
size_t sl_ring_count(struct sl_ring *ring);

/** \return the process start time in clock ticks since boot (/proc/<pid>/stat field
 * 22), or 0 if the process does not exist. Used for pid-reuse-safe identity. */
uint64_t sl_env_proc_start_time(int pid);
/** \return whether the process that had this pid and start time still runs: false if
 * the pid is gone, is a zombie, or now names a process started at another time. */
bool sl_env_proc_alive(int pid, uint64_t start_time);

#endif /* SLUICE_ENV_H */
