/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/* RAM bdevs. The I/O path is a plain memcpy and an inline completion (the core defers
 * the user's callback). Memory is zeroed at creation, so reads need no check; a
 * bitmap of written chunks exists only to answer allocation queries (block status,
 * SEEK_HOLE) and to make unmap of never-written chunks free. Bits are set with
 * atomics because channels on several threads may write to the same word. */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

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
static void
malloc_bits_set(uint64_t *bm, uint64_t first, uint64_t last)
{
	uint64_t w;

	for (w = first >> 6; w <= last >> 6; w++) {
		uint64_t mask = malloc_word_mask(w, first, last);

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

static void
malloc_read(struct malloc_disk *d, struct sl_bdev_io *io, uint64_t off)
{
	const uint8_t *src = d->mem + off;
	int i;

	for (i = 0; i < io->iovcnt; i++) {
		memcpy(io->iovs[i].iov_base, src, io->iovs[i].iov_len);
		src += io->iovs[i].iov_len;
	}
}

static void
malloc_write(struct malloc_disk *d, struct sl_bdev_io *io, uint64_t off, uint64_t len)
{
	uint8_t *dst = d->mem + off;
	int i;

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
	sl_dma_free(d->mem);
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

static int
malloc_disk_alloc_mem(struct malloc_disk *d, char *err, size_t errlen)
{
	uint64_t avail;

	/* Without the env the heap overcommits: a too-large disk would be OOM-killed on
	 * first touch rather than refused, so check the kernel's estimate first. */
	if (!sl_env_is_initialized()) {
		avail = malloc_mem_available();
		if (avail != 0 && d->size > avail) {
			snprintf(err, errlen,
				 "%" PRIu64 " MiB requested, only %" PRIu64
				 " MiB of memory available",
				 d->size >> 20, avail >> 20);
			return -ENOMEM;
		}
	}
	d->mem = sl_dma_zmalloc((size_t)d->size, 2 * 1024 * 1024, NULL);
	if (d->mem == NULL) {
		snprintf(err, errlen, "cannot allocate %" PRIu64 " MiB of %smemory", d->size >> 20,
			 sl_env_is_initialized() ? "DMA (hugepage) " : "");
		return -ENOMEM;
	}
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
