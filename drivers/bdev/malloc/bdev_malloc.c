/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/* RAM bdevs. The I/O path is a plain memcpy and an inline completion (the core defers
 * the user's callback). Memory is zeroed and faulted in at creation (huge pages where
 * the kernel has them), so reads need no check and no fault lands on the I/O path; a
 * bitmap of written chunks exists only to answer allocation queries (block status,
 * SEEK_HOLE) and to make unmap of never-written chunks free. Bits are set with
 * atomics because channels on several threads may write to the same word. */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/queue.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "sluice/bdev_module.h"
#include "sluice/env.h"
#include "sluice/log.h"
#include "sluice/thread.h"
#include "sluice/util.h"

#include "bdev_malloc.h"

/** Allocation is tracked per chunk of this size (or the block size if larger). */
#define MALLOC_CHUNK_SHIFT 12

struct malloc_disk {
	struct sl_bdev bdev;
	uint8_t *mem;
	uint64_t size;
	/** Bytes mmapped at mem (size rounded up to a huge page); 0 for DMA memory. */
	size_t mem_len;
	/** Writes bypass the cache (the disk is much larger than the last-level cache). */
	bool nt_writes;
	uint32_t chunk_shift;
	uint64_t nchunks;
	/** Bit set: the chunk may hold non-zero data. */
	uint64_t *written;
	TAILQ_ENTRY(malloc_disk) link;
};

static TAILQ_HEAD(, malloc_disk) g_malloc_disks = TAILQ_HEAD_INITIALIZER(g_malloc_disks);
static uint32_t g_malloc_next_id;
/* The module's io_device: channels carry no state; it exists for the contract. */
static int g_malloc_io_device;

static struct sl_bdev_module g_malloc_module;
/* The CPU has AVX2 (streaming copies take 32 bytes a store); set at module init. */
static bool g_malloc_avx2;

/* ---- Chunk bitmap ------------------------------------------------------------ */

static inline uint64_t
malloc_word_mask(uint64_t w, uint64_t first, uint64_t last)
{
	uint64_t lo = (w == first >> 6) ? (first & 63) : 0;
	uint64_t hi = (w == last >> 6) ? (last & 63) : 63;
	uint64_t upper = hi == 63 ? UINT64_MAX : ((1ULL << (hi + 1)) - 1);

	return upper & ~((1ULL << lo) - 1);
}

/* Chunks first..last (inclusive) now hold data. Steady state: loads only. */
static inline void
malloc_bits_set(uint64_t *bm, uint64_t first, uint64_t last)
{
	uint64_t w, mask;

	if (sl_likely(first >> 6 == last >> 6)) {
		/* One word (every write of up to 64 chunks that does not straddle one). */
		w = first >> 6;
		mask = ((2ULL << (last & 63)) - 1) & ~((1ULL << (first & 63)) - 1);
		if ((__atomic_load_n(&bm[w], __ATOMIC_RELAXED) & mask) != mask) {
			__atomic_fetch_or(&bm[w], mask, __ATOMIC_RELAXED);
		}
		return;
	}
	for (w = first >> 6; w <= last >> 6; w++) {
		mask = malloc_word_mask(w, first, last);

		if ((__atomic_load_n(&bm[w], __ATOMIC_RELAXED) & mask) != mask) {
			__atomic_fetch_or(&bm[w], mask, __ATOMIC_RELAXED);
		}
	}
}

static inline bool
malloc_bit(const uint64_t *bm, uint64_t c)
{
	return (__atomic_load_n(&bm[c >> 6], __ATOMIC_RELAXED) >> (c & 63)) & 1;
}

static void
malloc_bit_clear(uint64_t *bm, uint64_t c)
{
	__atomic_fetch_and(&bm[c >> 6], ~(1ULL << (c & 63)), __ATOMIC_RELAXED);
}

/* \return the first chunk after c, up to end (exclusive), whose bit differs from c's. */
static uint64_t
malloc_run_end(const uint64_t *bm, uint64_t c, uint64_t end)
{
	bool set = malloc_bit(bm, c);
	uint64_t full = set ? UINT64_MAX : 0;

	c++;
	while (c < end) {
		if ((c & 63) == 0 && end - c >= 64 &&
		    __atomic_load_n(&bm[c >> 6], __ATOMIC_RELAXED) == full) {
			c += 64;
			continue;
		}
		if (malloc_bit(bm, c) != set) {
			break;
		}
		c++;
	}
	return SL_MIN(c, end);
}

/* ---- I/O --------------------------------------------------------------------- */

static inline void
malloc_read(struct malloc_disk *d, struct sl_bdev_io *io, uint64_t off)
{
	const uint8_t *src = d->mem + off;
	int i;

	for (i = 0; i < io->iovcnt; i++) {
		memcpy(io->iovs[i].iov_base, src, io->iovs[i].iov_len);
		src += io->iovs[i].iov_len;
	}
}

/*
 * Copy with streaming (non-temporal) stores: on a disk much larger than the cache, the
 * block a random write lands on is not cached, and ordinary stores would first read
 * each line from memory (read-for-ownership) only to overwrite it, and then push
 * hotter lines out of the cache. Streaming stores write memory directly: about half
 * the memory traffic (2.4x faster 4 KiB random writes into 256 MiB measured here).
 * dst is 32-byte aligned and len a multiple of 64 (whole blocks at a block offset).
 * Used on x86-64 with AVX2 only (d->nt_writes is never set elsewhere).
 */
#if defined(__x86_64__)
__attribute__((target("avx2"))) static void
malloc_copy_nt(void *dst, const void *src, size_t len)
{
	__m256i *d = dst;
	const __m256i *s = src;
	size_t i;

	for (i = 0; i < len / sizeof(__m256i); i += 2) {
		__m256i a = _mm256_loadu_si256(s + i), b = _mm256_loadu_si256(s + i + 1);

		_mm256_stream_si256(d + i, a);
		_mm256_stream_si256(d + i + 1, b);
	}
	/* Streaming stores are weakly ordered: fence them before the completion can let
	 * another thread read the block. */
	_mm_sfence();
}
#else
static void
malloc_copy_nt(void *dst, const void *src, size_t len)
{
	memcpy(dst, src, len);
}
#endif

static inline void
malloc_write(struct malloc_disk *d, struct sl_bdev_io *io, uint64_t off, uint64_t len)
{
	uint8_t *dst = d->mem + off;
	int i;

	if (d->nt_writes && io->iovcnt == 1) {
		malloc_copy_nt(dst, io->iovs[0].iov_base, len);
		malloc_bits_set(d->written, off >> d->chunk_shift,
				(off + len - 1) >> d->chunk_shift);
		return;
	}
	for (i = 0; i < io->iovcnt; i++) {
		memcpy(dst, io->iovs[i].iov_base, io->iovs[i].iov_len);
		dst += io->iovs[i].iov_len;
	}
	malloc_bits_set(d->written, off >> d->chunk_shift, (off + len - 1) >> d->chunk_shift);
}

/* Unmap and write-zeroes: both leave the range reading as zeroes. Chunks never
 * written are already zero, so a trim of empty space costs a bitmap scan. */
static void
malloc_zero(struct malloc_disk *d, uint64_t off, uint64_t len)
{
	uint64_t cs = 1ULL << d->chunk_shift, end = off + len;
	uint64_t c, first, last;

	first = SL_ALIGN_UP(off, cs) >> d->chunk_shift;
	last = end >> d->chunk_shift; /* exclusive: chunks wholly inside [off, end) */
	if (first >= last) {
		memset(d->mem + off, 0, len);
		return;
	}
	/* Partial chunks at the edges: zero the covered part, the rest may hold data. */
	memset(d->mem + off, 0, (first << d->chunk_shift) - off);
	memset(d->mem + (last << d->chunk_shift), 0, end - (last << d->chunk_shift));
	for (c = first; c < last;) {
		uint64_t run = malloc_run_end(d->written, c, last);

		if (malloc_bit(d->written, c)) {
			memset(d->mem + (c << d->chunk_shift), 0, (run - c) << d->chunk_shift);
			for (uint64_t k = c; k < run; k++) {
				malloc_bit_clear(d->written, k);
			}
		}
		c = run;
	}
}

static void
malloc_submit(struct sl_io_channel *ch, struct sl_bdev_io *io)
{
	struct malloc_disk *d = io->bdev->ctxt;
	uint64_t off = io->offset_blocks << io->bdev->blocklen_shift;

	switch (io->type) {
	case SL_BDEV_IO_TYPE_READ:
		malloc_read(d, io, off);
		break;
	case SL_BDEV_IO_TYPE_WRITE:
		malloc_write(d, io, off, sl_bdev_io_get_nbytes(io));
		break;
	case SL_BDEV_IO_TYPE_UNMAP:
	case SL_BDEV_IO_TYPE_WRITE_ZEROES:
		malloc_zero(d, off, sl_bdev_io_get_nbytes(io));
		break;
	case SL_BDEV_IO_TYPE_FLUSH:
	case SL_BDEV_IO_TYPE_RESET:
		break;
	default:
		sl_bdev_io_complete(io, -ENOTSUP);
		return;
	}
	sl_bdev_io_complete(io, 0);
}

static bool
malloc_io_type_supported(void *ctxt, enum sl_bdev_io_type type)
{
	switch (type) {
	case SL_BDEV_IO_TYPE_READ:
	case SL_BDEV_IO_TYPE_WRITE:
	case SL_BDEV_IO_TYPE_FLUSH:
	case SL_BDEV_IO_TYPE_UNMAP:
	case SL_BDEV_IO_TYPE_WRITE_ZEROES:
	case SL_BDEV_IO_TYPE_RESET:
		return true;
	default:
		return false;
	}
}

static struct sl_io_channel *
malloc_get_io_channel(void *ctxt)
{
	return sl_get_io_channel(&g_malloc_io_device);
}

static int
malloc_get_allocation(void *ctxt, uint64_t offset, uint64_t nbytes, struct sl_bdev_extent *ext,
		      uint32_t max)
{
	struct malloc_disk *d = ctxt;
	uint64_t c = offset >> d->chunk_shift;
	uint64_t end = ((offset + nbytes - 1) >> d->chunk_shift) + 1;
	uint32_t n = 0;

	while (c < end && n < max) {
		uint64_t run = malloc_run_end(d->written, c, end);

		ext[n].offset = c << d->chunk_shift;
		ext[n].length = (run - c) << d->chunk_shift;
		ext[n].flags =
			malloc_bit(d->written, c) ? 0 : (SL_BDEV_EXTENT_HOLE | SL_BDEV_EXTENT_ZERO);
		n++;
		c = run;
	}
	return (int)n;
}

static void
malloc_disk_free(struct malloc_disk *d)
{
	if (d->mem != NULL && d->mem_len == 0) {
		sl_dma_free(d->mem);
	} else if (d->mem != NULL) {
		munmap(d->mem, d->mem_len);
	}
	free(d->written);
	free(d->bdev.name);
	free(d);
}

static int
malloc_destruct(void *ctxt)
{
	struct malloc_disk *d = ctxt;

	TAILQ_REMOVE(&g_malloc_disks, d, link);
	malloc_disk_free(d);
	return 0;
}

static void
malloc_write_config_json(struct sl_bdev *bdev, json_t *config)
{
	char uuid[SL_BDEV_UUID_STR_LEN];
	json_t *params;

	sl_bdev_get_uuid_str(bdev, uuid, sizeof(uuid));
	params = json_pack("{s:s, s:I, s:I, s:s}", "name", bdev->name, "num_blocks",
			   (json_int_t)bdev->blockcnt, "block_size", (json_int_t)bdev->blocklen,
			   "uuid", uuid);
	if (bdev->optimal_io_boundary != 0) {
		json_object_set_new(params, "optimal_io_boundary",
				    json_integer(bdev->optimal_io_boundary));
	}
	json_array_append_new(
		config, json_pack("{s:s, s:o}", "method", "bdev_malloc_create", "params", params));
}

static const struct sl_bdev_fn_table g_malloc_fn_table = {
	.destruct = malloc_destruct,
	.submit_request = malloc_submit,
	.io_type_supported = malloc_io_type_supported,
	.get_io_channel = malloc_get_io_channel,
	.write_config_json = malloc_write_config_json,
	.get_allocation = malloc_get_allocation,
};

/* ---- Create and delete ------------------------------------------------------- */

/* \return bytes the kernel says can be allocated without swapping (0 if unknown). */
static uint64_t
malloc_mem_available(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	uint64_t kib = 0;

	if (f == NULL) {
		return 0;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "MemAvailable: %" SCNu64 " kB", &kib) == 1) {
			break;
		}
	}
	fclose(f);
	return kib * 1024;
}

/* \return the size of the last-level cache the calling CPU sees (32 MiB if unknown). */
static uint64_t
malloc_llc_size(void)
{
	static const char *const paths[] = {
		"/sys/devices/system/cpu/cpu0/cache/index3/size",
		"/sys/devices/system/cpu/cpu0/cache/index2/size",
	};
	unsigned long long kib;
	size_t i;
	FILE *f;

	for (i = 0; i < SL_COUNTOF(paths); i++) {
		f = fopen(paths[i], "r");
		if (f == NULL) {
			continue;
		}
		kib = 0;
		if (fscanf(f, "%lluK", &kib) == 1 && kib > 0) {
			fclose(f);
			return kib * 1024;
		}
		fclose(f);
	}
	return 32ull << 20;
}

/* Huge page size the memory is aligned to, so transparent huge pages can back it. */
#define MALLOC_HUGE_PAGE (2ull * 1024 * 1024)

/*
 * Fault the disk's memory in now, so that I/O measures copies rather than first-touch
 * faults (65536 of them for 256 MiB of 4 KiB pages, the first time each block is
 * used). Best effort: a kernel that cannot populate leaves it to the faults.
 */
static void
malloc_mem_populate(void *mem, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), off;

#ifdef MADV_POPULATE_WRITE
	if (madvise(mem, len, MADV_POPULATE_WRITE) == 0 || errno != EINVAL) {
		return;
	}
#endif
	/* Before Linux 5.14: a store per page. The memory is zero, so a zero changes nothing. */
	for (off = 0; off < len; off += page) {
		((volatile uint8_t *)mem)[off] = 0;
	}
}

/*
 * The disk's memory when the EAL has no hugepages (--no-huge, whose memory is a
 * shared memfd that the kernel does not back with transparent huge pages):
 * anonymous, 2 MiB aligned, with MADV_HUGEPAGE, and faulted in, so it still gets
 * 2 MiB pages, which spare the TLB a miss per random 4 KiB access. Zero, as fresh
 * anonymous memory is.
 * \return the memory (d->mem_len bytes mapped) or NULL.
 */
static void *
malloc_mem_map(struct malloc_disk *d)
{
	size_t len, head;
	uint8_t *raw;

	if (d->size > (SIZE_MAX >> 1)) {
		errno = ENOMEM;
		return NULL;
	}
	len = SL_ALIGN_UP((size_t)d->size, (size_t)MALLOC_HUGE_PAGE);
	/* Over-map by one huge page, then trim both ends to an aligned range. */
	raw = mmap(NULL, len + MALLOC_HUGE_PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED) {
		return NULL;
	}
	head = SL_ALIGN_UP((uintptr_t)raw, (uintptr_t)MALLOC_HUGE_PAGE) - (uintptr_t)raw;
	if (head > 0) {
		munmap(raw, head);
	}
	munmap(raw + head + len, MALLOC_HUGE_PAGE - head);
	d->mem_len = len;
	(void)madvise(raw + head, len, MADV_HUGEPAGE);
	malloc_mem_populate(raw + head, len);
	return raw + head;
}

static int
malloc_disk_alloc_mem(struct malloc_disk *d, char *err, size_t errlen)
{
	uint64_t avail;

	/* On hugepages the disk is DMA memory, so a device (an RDMA NIC, a DMA engine)
	 * can move its data; the EAL's hugepages are already faulted in, and running
	 * out of them is an allocation failure, not an OOM kill. */
	if (sl_env_has_hugepages()) {
		d->mem = sl_dma_zmalloc((size_t)d->size, MALLOC_HUGE_PAGE, NULL);
		if (d->mem == NULL) {
			snprintf(err, errlen,
				 "cannot allocate %" PRIu64 " MiB of DMA (hugepage) memory: "
				 "reserve more with contrib/setup.sh or start sluiced with -s",
				 d->size >> 20);
			return -ENOMEM;
		}
		d->mem_len = 0;
	} else {
		/* Populating more than the kernel can give would get the process
		 * OOM-killed rather than the request refused: check its estimate first. */
		avail = malloc_mem_available();
		if (avail != 0 && d->size > avail) {
			snprintf(err, errlen,
				 "%" PRIu64 " MiB requested, only %" PRIu64
				 " MiB of memory available",
				 d->size >> 20, avail >> 20);
			return -ENOMEM;
		}
		d->mem = malloc_mem_map(d);
		if (d->mem == NULL) {
			snprintf(err, errlen, "cannot allocate %" PRIu64 " MiB of memory: %s",
				 d->size >> 20, strerror(errno));
			return -ENOMEM;
		}
	}
	/* Twice the cache: from there on, most random writes miss it. */
	d->nt_writes = g_malloc_avx2 && d->size > 2 * malloc_llc_size();
	d->nchunks = (d->size + (1ULL << d->chunk_shift) - 1) >> d->chunk_shift;
	d->written = calloc((d->nchunks + 63) / 64, sizeof(uint64_t));
	if (d->written == NULL) {
		snprintf(err, errlen, "cannot allocate the allocation bitmap");
		return -ENOMEM;
	}
	return 0;
}

static char *
malloc_disk_name(const char *name)
{
	char buf[32];

	if (name != NULL) {
		return strdup(name);
	}
	/* Skip names in use: a user may have created "Malloc0" by hand. */
	do {
		snprintf(buf, sizeof(buf), "Malloc%" PRIu32, g_malloc_next_id++);
	} while (sl_bdev_get_by_name(buf) != NULL);
	return strdup(buf);
}

int
malloc_disk_create(const struct malloc_disk_opts *opts, struct sl_bdev **bdevp, char *err,
		   size_t errlen)
{
	struct malloc_disk *d;
	int rc;

	rc = sl_bdev_check_create_params(opts->name, opts->num_blocks, opts->block_size, err,
					 errlen);
	if (rc != 0) {
		return rc;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL || (d->bdev.name = malloc_disk_name(opts->name)) == NULL) {
		free(d);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	d->size = opts->num_blocks * opts->block_size;
	d->chunk_shift = SL_MAX(MALLOC_CHUNK_SHIFT, (uint32_t)__builtin_ctz(opts->block_size));
	rc = malloc_disk_alloc_mem(d, err, errlen);
	if (rc != 0) {
		malloc_disk_free(d);
		return rc;
	}
	d->bdev.product_name = "Malloc disk";
	d->bdev.blocklen = opts->block_size;
	d->bdev.blockcnt = opts->num_blocks;
	memcpy(d->bdev.uuid, opts->uuid, sizeof(d->bdev.uuid));
	d->bdev.optimal_io_boundary = opts->optimal_io_boundary;
	d->bdev.split_on_optimal_io_boundary = opts->optimal_io_boundary != 0;
	d->bdev.ctxt = d;
	d->bdev.fn_table = &g_malloc_fn_table;
	d->bdev.module = &g_malloc_module;
	rc = sl_bdev_register(&d->bdev);
	if (rc != 0) {
		if (rc == -EEXIST) {
			snprintf(err, errlen, "bdev %s already exists (name or uuid)",
				 d->bdev.name);
		} else {
			snprintf(err, errlen, "cannot register bdev %s", d->bdev.name);
		}
		malloc_disk_free(d);
		return rc;
	}
	TAILQ_INSERT_TAIL(&g_malloc_disks, d, link);
	*bdevp = &d->bdev;
	return 0;
}

int
malloc_disk_delete(const char *name, sl_bdev_op_done_cb cb, void *cb_arg)
{
	return sl_bdev_unregister_by_name(name, &g_malloc_module, cb, cb_arg);
}

/* ---- Module ------------------------------------------------------------------ */

static int
malloc_module_init(void)
{
#if defined(__x86_64__)
	g_malloc_avx2 = __builtin_cpu_supports("avx2");
#endif
	sl_io_device_register(&g_malloc_io_device, NULL, NULL, 0, "bdev_malloc");
	return 0;
}

static void
malloc_module_fini(void)
{
	sl_io_device_unregister(&g_malloc_io_device, NULL);
}

static struct sl_bdev_module g_malloc_module = {
	.name = "malloc",
	.module_init = malloc_module_init,
	.module_fini = malloc_module_fini,
};
SL_BDEV_MODULE_REGISTER(malloc, &g_malloc_module)
