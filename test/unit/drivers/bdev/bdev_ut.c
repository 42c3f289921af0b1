/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * The block layer core against a test module ("ut") whose limits and failures the
 * tests set: registry, descriptors, claims, splitting (max transfer, boundary,
 * segments; vectored), -ENOMEM retry, pool exhaustion and io_wait, hot removal with
 * I/O in flight, write-zeroes and FUA emulation, bounce buffers, statistics, reset.
 * One hand-polled thread, no EAL.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "sl_ut_bdev.h"
#include "sluice/bdev.h"
#include "sluice/bdev_module.h"
#include "sluice/thread.h"

#include "bdev_internal.h"

#define UT_MAX_RECORDS 256
#define UT_MAX_HELD    64

struct ut_record {
	uint8_t type;
	uint8_t flags;
	uint64_t offset;
	uint64_t num;
	int iovcnt;
	bool aligned;
	uint64_t iov_bytes;
};

struct ut_disk {
	struct sl_bdev bdev;
	uint8_t *mem;
	bool supports[SL_BDEV_NUM_IO_TYPES];
	int destructs;
};

static struct sl_thread *g_thread;
static int g_ut_io_device;
static struct ut_record g_rec[UT_MAX_RECORDS];
static int g_nrec;
static int g_nomem_left;
static bool g_hold;
static struct sl_bdev_io *g_held[UT_MAX_HELD];
static int g_nheld;
static bool g_in_submit;
static int g_destructs;
/* submit_tsc of the last I/O the module saw. */
static uint64_t g_last_submit_tsc;

static struct sl_bdev_module g_ut_module;

/* ---- The test module ----------------------------------------------------------- */

static void
ut_do_io(struct ut_disk *d, struct sl_bdev_io *io)
{
	uint64_t off = io->offset_blocks * io->bdev->blocklen;
	uint64_t len = io->num_blocks * io->bdev->blocklen;

	switch (io->type) {
	case SL_BDEV_IO_TYPE_READ:
		sl_bdev_copy_to_iovs(io->iovs, io->iovcnt, d->mem + off, len);
		break;
	case SL_BDEV_IO_TYPE_WRITE:
		sl_bdev_copy_from_iovs(d->mem + off, io->iovs, io->iovcnt, len);
		break;
	case SL_BDEV_IO_TYPE_UNMAP:
	case SL_BDEV_IO_TYPE_WRITE_ZEROES:
		memset(d->mem + off, 0, len);
		break;
	default:
		break;
	}
}

static void
ut_record(struct sl_bdev_io *io)
{
	struct ut_record *r;
	int i;

	if (g_nrec >= UT_MAX_RECORDS) {
		return;
	}
	r = &g_rec[g_nrec++];
	r->type = io->type;
	r->flags = io->flags;
	r->offset = io->offset_blocks;
	r->num = io->num_blocks;
	r->iovcnt = io->iovcnt;
	r->aligned = true;
	r->iov_bytes = 0;
	for (i = 0; i < io->iovcnt; i++) {
		if (((uintptr_t)io->iovs[i].iov_base | io->iovs[i].iov_len) & 4095) {
			r->aligned = false;
		}
		r->iov_bytes += io->iovs[i].iov_len;
	}
}

static void
ut_submit(struct sl_io_channel *ch, struct sl_bdev_io *io)
{
	uint64_t *ctx = sl_bdev_io_get_driver_ctx(io);

	/* The driver context is the module's and sits inside the descriptor. */
	CU_ASSERT(sl_bdev_io_from_driver_ctx(ctx) == io);
	*ctx = 0xfeedULL;
	g_last_submit_tsc = io->internal.submit_tsc;
	ut_record(io);
	if (g_nomem_left > 0) {
		g_nomem_left--;
		sl_bdev_io_complete(io, -ENOMEM);
		return;
	}
	ut_do_io(io->bdev->ctxt, io);
	if (g_hold && g_nheld < UT_MAX_HELD) {
		g_held[g_nheld++] = io;
		return;
	}
	sl_bdev_io_complete(io, 0);
}

static void
ut_release_held(int status)
{
	int i, n = g_nheld;

	g_nheld = 0;
	for (i = 0; i < n; i++) {
		sl_bdev_io_complete(g_held[i], status);
	}
}

static bool
ut_io_type_supported(void *ctxt, enum sl_bdev_io_type type)
{
	return ((struct ut_disk *)ctxt)->supports[type];
}

static struct sl_io_channel *
ut_get_io_channel(void *ctxt)
{
	return sl_get_io_channel(&g_ut_io_device);
}

static int
ut_destruct(void *ctxt)
{
	struct ut_disk *d = ctxt;

	g_destructs++;
	free(d->mem);
	free(d->bdev.name);
	free(d);
	return 0;
}

static const struct sl_bdev_fn_table g_ut_fn_table = {
	.destruct = ut_destruct,
	.submit_request = ut_submit,
	.io_type_supported = ut_io_type_supported,
	.get_io_channel = ut_get_io_channel,
};

static int
ut_get_ctx_size(void)
{
	return (int)sizeof(uint64_t);
}

static int
ut_module_init(void)
{
	sl_io_device_register(&g_ut_io_device, NULL, NULL, 0, "ut");
	return 0;
}

static void
ut_module_fini(void)
{
	sl_io_device_unregister(&g_ut_io_device, NULL);
}

static struct sl_bdev_module g_ut_module = {
	.name = "ut",
	.module_init = ut_module_init,
	.module_fini = ut_module_fini,
	.get_ctx_size = ut_get_ctx_size,
};
SL_BDEV_MODULE_REGISTER(ut, &g_ut_module)

/* A disk of 8192 blocks of 512 bytes supporting everything, unless changed. */
static struct ut_disk *
ut_disk_alloc(const char *name)
{
	struct ut_disk *d = calloc(1, sizeof(*d));
	int t;

	d->bdev.name = strdup(name);
	d->bdev.product_name = "UT disk";
	d->bdev.blocklen = 512;
	d->bdev.blockcnt = 8192;
	d->bdev.ctxt = d;
	d->bdev.fn_table = &g_ut_fn_table;
	d->bdev.module = &g_ut_module;
	d->mem = calloc(8192, 512);
	for (t = 0; t < SL_BDEV_NUM_IO_TYPES; t++) {
		d->supports[t] = true;
	}
	return d;
}

/* ---- Harness --------------------------------------------------------------------- */

struct io_result {
	int count;
	int status;
};

static void
io_done(void *arg, int status)
{
	struct io_result *r = arg;

	/* Never from inside the submit call (the user may resubmit from here). */
	CU_ASSERT(!g_in_submit);
	r->count++;
	r->status = status;
}

static int g_events;
static enum sl_bdev_event_type g_last_event;

static void
event_cb(enum sl_bdev_event_type type, struct sl_bdev *bdev, void *ctx)
{
	g_events++;
	g_last_event = type;
}

static void
reset_module_state(void)
{
	g_nrec = 0;
	g_nomem_left = 0;
	g_hold = false;
	g_nheld = 0;
}

struct ut_env {
	struct ut_disk *disk;
	struct sl_bdev_desc *desc;
	struct sl_io_channel *ch;
};

static void
ut_env_open(struct ut_env *e, struct ut_disk *d)
{
	reset_module_state();
	e->disk = d;
	CU_ASSERT_FATAL(sl_bdev_register(&d->bdev) == 0);
	CU_ASSERT_FATAL(sl_bdev_open(d->bdev.name, true, event_cb, NULL, &e->desc) == 0);
	e->ch = sl_bdev_get_io_channel(e->desc);
	CU_ASSERT_FATAL(e->ch != NULL);
}

static int g_unreg_rc, g_unreg_done;

static void
unreg_done(void *arg, int rc)
{
	g_unreg_rc = rc;
	g_unreg_done++;
}

static void
ut_env_close(struct ut_env *e)
{
	int destructs = g_destructs;

	sl_put_io_channel(e->ch);
	sl_bdev_close(e->desc);
	g_unreg_done = 0;
	sl_bdev_unregister(&e->disk->bdev, unreg_done, NULL);
	sl_ut_poll(g_thread);
	CU_ASSERT(g_unreg_done == 1);
	CU_ASSERT(g_unreg_rc == 0);
	CU_ASSERT(g_destructs == destructs + 1);
}

static void
fill(uint8_t *buf, size_t len, uint8_t seed)
{
	size_t i;

	for (i = 0; i < len; i++) {
		buf[i] = (uint8_t)(seed + i * 7);
	}
}

/* Submit with the "inside submit" flag up, so callbacks can tell. */
#define SUBMIT(call)                 \
	({                           \
		int _rc;             \
		g_in_submit = true;  \
		_rc = (call);        \
		g_in_submit = false; \
		_rc;                 \
	})

/* ---- Tests ----------------------------------------------------------------------- */

static void
test_register_open_claim(void)
{
	struct ut_disk *d = ut_disk_alloc("ut0"), *dup = ut_disk_alloc("ut0");
	struct sl_bdev_desc *ro, *rw, *rw2;
	char uuid[SL_BDEV_UUID_STR_LEN];

	CU_ASSERT_FATAL(sl_bdev_register(&d->bdev) == 0);
	CU_ASSERT(sl_bdev_register(&dup->bdev) == -EEXIST);
	free(dup->mem);
	free(dup->bdev.name);
	dup->bdev.name = strdup("ut_bad");
	dup->bdev.blocklen = 1000;
	CU_ASSERT(sl_bdev_register(&dup->bdev) == -EINVAL);
	dup->bdev.blocklen = 512;
	dup->bdev.blockcnt = 0;
	CU_ASSERT(sl_bdev_register(&dup->bdev) == -EINVAL);
	free(dup->bdev.name);
	free(dup);

	CU_ASSERT(sl_bdev_get_by_name("ut0") == &d->bdev);
	sl_bdev_get_uuid_str(&d->bdev, uuid, sizeof(uuid));
	CU_ASSERT(strlen(uuid) == 36);
	CU_ASSERT(sl_bdev_get_by_name(uuid) == &d->bdev);
	CU_ASSERT(sl_bdev_alias_add(&d->bdev, "ut_alias") == 0);
	CU_ASSERT(sl_bdev_alias_add(&d->bdev, "ut0") == -EEXIST);
	CU_ASSERT(sl_bdev_get_by_name("ut_alias") == &d->bdev);
	CU_ASSERT(sl_bdev_get_size(&d->bdev) == 8192 * 512);

	CU_ASSERT(sl_bdev_open("nope", false, event_cb, NULL, &ro) == -ENODEV);
	CU_ASSERT(sl_bdev_open("ut0", false, NULL, NULL, &ro) == -EINVAL);
	CU_ASSERT_FATAL(sl_bdev_open("ut_alias", false, event_cb, NULL, &ro) == 0);
	CU_ASSERT_FATAL(sl_bdev_open("ut0", true, event_cb, NULL, &rw) == 0);
	CU_ASSERT_FATAL(sl_bdev_open("ut0", true, event_cb, NULL, &rw2) == 0);
	CU_ASSERT(sl_bdev_claim(ro, "reader") == -EBADF);
	CU_ASSERT(sl_bdev_claim(rw, "nbd /dev/nbd0") == 0);
	CU_ASSERT_STRING_EQUAL(sl_bdev_get_claim_owner(&d->bdev), "nbd /dev/nbd0");
	CU_ASSERT(sl_bdev_claim(rw2, "fuse") == -EPERM);
	/* A claimed bdev opens read-only only. */
	{
		struct sl_bdev_desc *x;

		CU_ASSERT(sl_bdev_open("ut0", true, event_cb, NULL, &x) == -EPERM);
		CU_ASSERT(sl_bdev_open("ut0", false, event_cb, NULL, &x) == 0);
		sl_bdev_close(x);
	}
	sl_bdev_close(rw);
	CU_ASSERT(sl_bdev_get_claim_owner(&d->bdev) == NULL);
	CU_ASSERT(sl_bdev_claim(rw2, "fuse") == 0);
	sl_bdev_release_claim(rw2);
	CU_ASSERT(sl_bdev_get_claim_owner(&d->bdev) == NULL);
	CU_ASSERT(sl_bdev_module_claim_bdev(&d->bdev, NULL, &g_ut_module) == 0);
	CU_ASSERT_STRING_EQUAL(sl_bdev_get_claim_owner(&d->bdev), "ut");
	sl_bdev_module_release_bdev(&d->bdev);
	sl_bdev_close(rw2);
	sl_bdev_close(ro);

	g_unreg_done = 0;
	sl_bdev_unregister(&d->bdev, unreg_done, NULL);
	sl_ut_poll(g_thread);
	CU_ASSERT(g_unreg_done == 1);
	CU_ASSERT(sl_bdev_get_by_name("ut0") == NULL);
	CU_ASSERT(sl_bdev_get_by_name("ut_alias") == NULL);
}

static void
test_rw_basic(void)
{
	struct ut_env e;
	struct io_result r = {0};
	struct sl_bdev_desc *ro;
	uint8_t wbuf[8192], rbuf[8192];

	ut_env_open(&e, ut_disk_alloc("ut_rw"));
	fill(wbuf, sizeof(wbuf), 1);
	CU_ASSERT(SUBMIT(sl_bdev_write(e.desc, e.ch, wbuf, 4096, 8192, io_done, &r)) == 0);
	CU_ASSERT(r.count == 0); /* deferred even though the module completed inline */
	sl_ut_poll(g_thread);
	CU_ASSERT(r.count == 1 && r.status == 0);
	CU_ASSERT(memcmp(e.disk->mem + 4096, wbuf, 8192) == 0);
	CU_ASSERT(SUBMIT(sl_bdev_read_blocks(e.desc, e.ch, rbuf, 8, 16, io_done, &r)) == 0);
	sl_ut_poll(g_thread);
	CU_ASSERT(r.count == 2 && r.status == 0);
	CU_ASSERT(memcmp(rbuf, wbuf, 8192) == 0);

	/* Early errors come through the callback too, never from the submit. */
	CU_ASSERT(SUBMIT(sl_bdev_read(e.desc, e.ch, rbuf, 100, 512, io_done, &r)) == 0);
	sl_ut_poll(g_thread);
	CU_ASSERT(r.count == 3 && r.status == -EINVAL);
	CU_ASSERT(SUBMIT(sl_bdev_read_blocks(e.desc, e.ch, rbuf, 8190, 4, io_done, &r)) == 0);
	sl_ut_poll(g_thread);
	CU_ASSERT(r.count == 4 && r.status == -EINVAL);
	CU_ASSERT(SUBMIT(sl_bdev_read_blocks(e.desc, e.ch, rbuf, 0, 0, io_done, &r)) == 0);
	sl_ut_poll(g_thread);
	CU_ASSERT(r.count == 5 && r.status == -EINVAL);
	CU_ASSERT_FATAL(sl_bdev_open("ut_rw", false, event_cb, NULL, &ro) == 0);
	CU_ASSERT(SUBMIT(sl_bdev_write(ro, e.ch, wbuf, 0, 512, io_done, &r)) == 0);
	sl_ut_poll(g_thread);
	CU_ASSERT(r.count == 6 && r.status == -EBADF);
	sl_bdev_close(ro);
	/* Flush with length 0 covers the whole bdev. */
	g_nrec = 0;
	CU_ASSERT(SUBMIT(sl_bdev_flush(e.desc, e.ch, 0, 0, io_done, &r)) == 0);
	sl_ut_poll(g_thread);
	CU_ASSERT(r.count == 7 && r.status == 0);
	CU_ASSERT(g_nrec == 1 && g_rec[0].type == SL_BDEV_IO_TYPE_FLUSH && g_rec[0].num == 8192);
	ut_env_close(&e);
}

static void
test_split_max_transfer_vectored(void)
{
	struct ut_disk *d = ut_disk_alloc("ut_split");
	struct ut_env e;
	struct io_result r = {0};
	uint8_t src[10240], dst[10240];
	struct iovec wiov[3] = {{src, 1536}, {src + 1536, 6144}, {src + 7680, 2560}};
	struct iovec riov[2] = {{dst, 5120}, {dst + 5120, 5120}};
	int i;
	uint64_t total = 0;

	d->bdev.max_transfer_blocks = 8;
	ut_env_open(&e, d);
	fill(src, sizeof(src), 3);
	CU_ASSERT(SUBMIT(sl_bdev_writev_blocks(e.desc, e.ch, wiov, 3, 3, 20, io_done, &r)) == 0);
	sl_ut_poll(g_thread);
	CU_ASSERT(r.count == 1 && r.status == 0);
	CU_ASSERT_FATAL(g_nrec == 3);
	CU_ASSERT(g_rec[0].offset == 3 && g_rec[0].num == 8);
	CU_ASSERT(g_rec[1].offset == 11 && g_rec[1].num == 8);
	CU_ASSERT(g_rec[2].offset == 19 && g_rec[2].num == 4);
	for (i = 0; i < 3; i++) {
		CU_ASSERT(g_rec[i].iov_bytes == g_rec[i].num * 512);
		total += g_rec[i].iov_bytes;
	}
	CU_ASSERT(total == sizeof(src));
	CU_ASSERT(memcmp(e.disk->mem + 3 * 512, src, sizeof(src)) == 0);

	g_nrec = 0;
	CU_ASSERT(SUBMIT(sl_bdev_readv(e.desc, e.ch, riov, 2, 3 * 512, 10240, io_done, &r)) == 0);
	sl_ut_poll(g_thread);
	CU_ASSERT(r.count == 2 && r.status == 0);
	CU_ASSERT(g_nrec == 3);
	CU_ASSERT(memcmp(dst, src, sizeof(src)) == 0);
	ut_env_close(&e);
}

static void
test_split_boundary_and_segments(void)
{
	struct ut_disk *d = ut_disk_alloc("ut_bound");
	struct ut_env e;
	struct io_result r = {0};
	uint8_t buf[20 * 512];
	struct iovec iov[5];
	int i;

	d->bdev.optimal_io_boundary = 16;
	d->bdev.split_on_optimal_io_boundary = true;
	d->bdev.max_segments = 2;
	ut_env_open(&e, d);
	fill(buf, sizeof(buf), 5);
	CU_ASSERT(SUBMIT(sl_bdev_write_blocks(e.desc, e.ch, buf, 10, 20, io_done, &r)) == 0);
	sl_ut_poll(g_thread);
	CU_ASSERT(r.count == 1 && r.status == 0);
	CU_ASSERT_FATAL(g_nrec == 2);
	CU_ASSERT(g_rec[0].offset == 10 && g_rec[0].num == 6);
	CU_ASSERT(g_rec[1].offset == 16 && g_rec[1].num == 14);
	CU_ASSERT(memcmp(e.disk->mem + 10 * 512, buf, sizeof(buf)) == 0);

	/* Five segments, two allowed per I/O: 2 + 2 + 1. */
	for (i = 0; i < 5; i++) {
		iov[i].iov_base = buf + i * 512;
		iov[i].iov_len = 512;
	}
	g_nrec = 0;
	CU_ASSERT(SUBMIT(sl_bdev_readv_blocks(e.desc, e.ch, iov, 5, 0, 5, io_done, &r)) == 0);
	sl_ut_poll(g_thread);
	CU_ASSERT(r.count == 2 && r.status == 0);
	CU_ASSERT_FATAL(g_nrec == 3);
	CU_ASSERT(g_rec[0].iovcnt == 2 && g_rec[1].iovcnt == 2 && g_rec[2].iovcnt == 1);
	CU_ASSERT(g_rec[2].offset == 4 && g_rec[2].num == 1);
	ut_env_close(&e);
}

static void
test_enomem_retry(void)
{
	struct ut_env e;
	struct io_result r = {0};
	uint8_t buf[4][512];
	int i;

	ut_env_open(&e, ut_disk_alloc("ut_nomem"));
	/* The module runs out of resources three times, then recovers. */
	g_nomem_left = 3;
	for (i = 0; i < 4; i++) {
		CU_ASSERT(SUBMIT(sl_bdev_read_blocks(e.desc, e.ch, buf[i], (uint64_t)i, 1, io_done,
						     &r)) == 0);
	}
	sl_ut_poll(g_thread);
	CU_ASSERT(r.count == 4 && r.status == 0);
	CU_ASSERT(g_nrec == 7);
	ut_env_close(&e);
}

static struct sl_bdev_io_wait_entry g_wait;
static struct ut_env *g_wait_env;
static struct io_result g_wait_result;
static int g_wait_called;
static uint8_t g_wait_buf[512];

static void
io_wait_cb(void *arg)
{
	g_wait_called++;
	CU_ASSERT(sl_bdev_read_blocks(g_wait_env->desc, g_wait_env->ch, g_wait_buf, 0, 1, io_done,
				      &g_wait_result) == 0);
}

static void
test_pool_exhaustion_io_wait(void)
{
	struct sl_bdev_opts opts, saved;
	struct ut_env e;
	struct io_result r = {0};
	uint8_t buf[512];
	int i;

	sl_bdev_get_opts(&saved);
	opts = saved;
	opts.bdev_io_per_channel = 4;
	CU_ASSERT(sl_bdev_set_opts(&opts) == 0);
	ut_env_open(&e, ut_disk_alloc("ut_pool"));
	g_hold = true;
	for (i = 0; i < 4; i++) {
		CU_ASSERT(SUBMIT(sl_bdev_read_blocks(e.desc, e.ch, buf, 0, 1, io_done, &r)) == 0);
	}
	CU_ASSERT(SUBMIT(sl_bdev_read_blocks(e.desc, e.ch, buf, 0, 1, io_done, &r)) == -ENOMEM);
	g_wait.bdev = &e.disk->bdev;
	g_wait.cb_fn = io_wait_cb;
	g_wait_env = &e;
	CU_ASSERT(sl_bdev_queue_io_wait(&e.disk->bdev, e.ch, &g_wait) == 0);
	sl_ut_poll(g_thread);
	CU_ASSERT(g_wait_called == 0);
	g_hold = false;
	ut_release_held(0);
	sl_ut_poll(g_thread);
	CU_ASSERT(r.count == 4 && r.status == 0);
	CU_ASSERT(g_wait_called == 1);
	CU_ASSERT(g_wait_result.count == 1 && g_wait_result.status == 0);
	ut_env_close(&e);
	CU_ASSERT(sl_bdev_set_opts(&saved) == 0);
}

static void
test_hot_remove_inflight(void)
{
	struct ut_env e;
	struct io_result r = {0}, late = {0};
	uint8_t buf[2][512];
	int destructs;

	ut_env_open(&e, ut_disk_alloc("ut_hot"));
	g_hold = true;
	CU_ASSERT(SUBMIT(sl_bdev_read_blocks(e.desc, e.ch, buf[0], 0, 1, io_done, &r)) == 0);
	CU_ASSERT(SUBMIT(sl_bdev_read_blocks(e.desc, e.ch, buf[1], 1, 1, io_done, &r)) == 0);
	CU_ASSERT(g_nheld == 2);

	g_events = 0;
	g_unreg_done = 0;
	destructs = g_destructs;
	sl_bdev_unregister(&e.disk->bdev, unreg_done, NULL);
	sl_ut_poll(g_thread);
	CU_ASSERT(g_events == 1 && g_last_event == SL_BDEV_EVENT_REMOVE);
	{
		struct sl_bdev_desc *x;

		CU_ASSERT(sl_bdev_open("ut_hot", false, event_cb, NULL, &x) == -ENODEV);
	}
	/* New I/O fails, the old is still in the module. */
	CU_ASSERT(SUBMIT(sl_bdev_read_blocks(e.desc, e.ch, buf[0], 0, 1, io_done, &late)) == 0);
	sl_ut_poll(g_thread);
	CU_ASSERT(late.count == 1 && late.status == -ENODEV);
	/* The user lets go with I/O in flight: removal waits for it. */
	sl_put_io_channel(e.ch);
	sl_bdev_close(e.desc);
	sl_ut_poll(g_thread);
	CU_ASSERT(g_unreg_done == 0);
	CU_ASSERT(g_destructs == destructs);
	g_hold = false;
	ut_release_held(0);
	sl_ut_poll(g_thread);
	CU_ASSERT(r.count == 2 && r.status == 0);
	CU_ASSERT(g_unreg_done == 1 && g_unreg_rc == 0);
	CU_ASSERT(g_destructs == destructs + 1);
}

static void
test_write_zeroes_emulation(void)
{
	struct ut_disk *d = ut_disk_alloc("ut_wz");
	struct ut_env e;
	struct io_result r = {0};
	uint64_t i, len = 2 * 1024 * 1024 + 512 * 3;
	bool zero = true;

	d->supports[SL_BDEV_IO_TYPE_WRITE_ZEROES] = false;
	d->bdev.blockcnt = 8192; /* 4 MiB */
	ut_env_open(&e, d);
	memset(d->mem, 0xff, 8192 * 512);
	CU_ASSERT(sl_bdev_io_type_supported(&d->bdev, SL_BDEV_IO_TYPE_WRITE_ZEROES));
	CU_ASSERT(!sl_bdev_io_type_supported_native(&d->bdev, SL_BDEV_IO_TYPE_WRITE_ZEROES));
	CU_ASSERT(SUBMIT(sl_bdev_write_zeroes(e.desc, e.ch, 512, len, io_done, &r)) == 0);
	sl_ut_poll(g_thread);
	CU_ASSERT(r.count == 1 && r.status == 0);
	for (i = 0; i < len; i++) {
		zero &= d->mem[512 + i] == 0;
	}
	CU_ASSERT(zero);
	CU_ASSERT(d->mem[511] == 0xff && d->mem[512 + len] == 0xff);
	/* Writes of at most the 1 MiB zero buffer, nothing else. */
	CU_ASSERT(g_nrec == 3);
	for (i = 0; i < (uint64_t)g_nrec; i++) {
		CU_ASSERT(g_rec[i].type == SL_BDEV_IO_TYPE_WRITE);
		CU_ASSERT(g_rec[i].num <= 2048);
	}
	CU_ASSERT(SUBMIT(sl_bdev_write_zeroes_ext(e.desc, e.ch, 0, 512, SL_BDEV_IO_FLAG_NO_FALLBACK,
						  io_done, &r)) == 0);
	sl_ut_poll(g_thread);
	CU_ASSERT(r.count == 2 && r.status == -ENOTSUP);
	ut_env_close(&e);
}

static void
test_unsupported_and_fua(void)
{
	struct ut_disk *d = ut_disk_alloc("ut_fua");
	struct ut_env e;
	struct io_result r = {0};
	uint8_t buf[512] = {0};
	struct iovec iov = {buf, 512};

	d->supports[SL_BDEV_IO_TYPE_UNMAP] = false;
	d->bdev.write_cache = true;
	ut_env_open(&e, d);
	CU_ASSERT(SUBMIT(sl_bdev_unmap(e.desc, e.ch, 0, 4096, io_done, &r)) == 0);
	sl_ut_poll(g_thread);
	CU_ASSERT(r.count == 1 && r.status == -ENOTSUP);
	CU_ASSERT(g_nrec == 0);
	/* FUA on a write-back bdev without FUA support: write, then flush. */
	CU_ASSERT(SUBMIT(sl_bdev_writev_ext(e.desc, e.ch, &iov, 1, 0, 512, SL_BDEV_IO_FLAG_FUA,
					    io_done, &r)) == 0);
	sl_ut_poll(g_thread);
	CU_ASSERT(r.count == 2 && r.status == 0);
	CU_ASSERT_FATAL(g_nrec == 2);
	CU_ASSERT(g_rec[0].type == SL_BDEV_IO_TYPE_WRITE && g_rec[0].flags == 0);
	CU_ASSERT(g_rec[1].type == SL_BDEV_IO_TYPE_FLUSH);
	ut_env_close(&e);
}

static void
test_bounce(void)
{
	struct ut_disk *d = ut_disk_alloc("ut_bounce");
	struct ut_env e;
	struct io_result r = {0};
	size_t len = 300 * 1024;
	uint8_t *raw = malloc(len + 4096 + 1), *buf = raw + 1;
	uint8_t *raw2 = malloc(len + 4096 + 1), *back = raw2 + 3;
	int i;
	bool aligned = true;

	d->bdev.required_alignment = 4096;
	ut_env_open(&e, d);
	fill(buf, len, 9);
	CU_ASSERT(SUBMIT(sl_bdev_write(e.desc, e.ch, buf, 4096, len, io_done, &r)) == 0);
	sl_ut_poll(g_thread);
	CU_ASSERT(r.count == 1 && r.status == 0);
	CU_ASSERT(memcmp(d->mem + 4096, buf, len) == 0);
	/* Split to bounce-buffer size (128 KiB), every piece aligned for the module. */
	CU_ASSERT(g_nrec == 3);
	for (i = 0; i < g_nrec; i++) {
		aligned &= g_rec[i].aligned;
		CU_ASSERT(g_rec[i].num <= 256);
	}
	CU_ASSERT(aligned);
	g_nrec = 0;
	CU_ASSERT(SUBMIT(sl_bdev_read(e.desc, e.ch, back, 4096, 8192, io_done, &r)) == 0);
	sl_ut_poll(g_thread);
	CU_ASSERT(r.count == 2 && r.status == 0);
	CU_ASSERT(g_nrec == 1 && g_rec[0].aligned);
	CU_ASSERT(memcmp(back, buf, 8192) == 0);
	free(raw);
	free(raw2);
	ut_env_close(&e);
}

static struct sl_bdev_io_stat g_agg;
static int g_agg_done;

static void
stat_done(struct sl_bdev *bdev, struct sl_bdev_io_stat *stat, void *arg, int rc)
{
	CU_ASSERT(rc == 0);
	g_agg_done++;
}

static void
test_stats(void)
{
	struct ut_env e;
	struct io_result r = {0};
	struct sl_bdev_io_stat s;
	uint8_t buf[4096];

	ut_env_open(&e, ut_disk_alloc("ut_stat"));
	SUBMIT(sl_bdev_read(e.desc, e.ch, buf, 0, 4096, io_done, &r));
	SUBMIT(sl_bdev_read(e.desc, e.ch, buf, 0, 1024, io_done, &r));
	SUBMIT(sl_bdev_write(e.desc, e.ch, buf, 0, 2048, io_done, &r));
	SUBMIT(sl_bdev_unmap(e.desc, e.ch, 0, 512, io_done, &r));
	SUBMIT(sl_bdev_read(e.desc, e.ch, buf, 1, 512, io_done, &r)); /* -EINVAL */
	sl_ut_poll(g_thread);
	CU_ASSERT(r.count == 5);
	sl_bdev_channel_get_io_stat(e.ch, &s);
	CU_ASSERT(s.num_read_ops == 2 && s.bytes_read == 5120);
	CU_ASSERT(s.num_write_ops == 1 && s.bytes_written == 2048);
	CU_ASSERT(s.num_unmap_ops == 1 && s.bytes_unmapped == 512);
	CU_ASSERT(s.num_io_errors == 1);
	CU_ASSERT(s.min_read_latency_ticks <= s.max_read_latency_ticks);
	CU_ASSERT(s.read_latency_ticks >= s.max_read_latency_ticks);
	g_agg_done = 0;
	sl_bdev_get_io_stat(&e.disk->bdev, &g_agg, stat_done, NULL);
	sl_ut_poll(g_thread);
	CU_ASSERT(g_agg_done == 1);
	CU_ASSERT(g_agg.num_read_ops == 2 && g_agg.num_write_ops == 1);
	ut_env_close(&e);
}

struct batch_ctx {
	struct ut_env *e;
	uint8_t *buf;
	int left;
	int done;
	/* The channel's batch tick seen from inside each callback. */
	uint64_t batch_tick[4];
	/* submit_tsc of the I/O submitted from each callback. */
	uint64_t resubmit_tsc[4];
};

static void
batch_io_done(void *arg, int status)
{
	struct batch_ctx *c = arg;
	struct bdev_channel *bch = bdev_channel_get(c->e->ch);

	CU_ASSERT(status == 0);
	c->batch_tick[c->done] = bch->poll_now;
	c->done++;
	if (c->left-- > 0) {
		CU_ASSERT(sl_bdev_read(c->e->desc, c->e->ch, c->buf, 0, 512, batch_io_done, c) ==
			  0);
		c->resubmit_tsc[c->done - 1] = g_last_submit_tsc;
	}
}

/* Statistics read the tick counter once per completion batch: the completions of a
 * batch, and the I/O their callbacks submit, share one reading. */
static void
test_stats_batch_tick(void)
{
	struct ut_env e;
	struct batch_ctx c = {.e = &e, .left = 2};
	struct sl_bdev_io_stat s;
	uint8_t buf[512];
	int i;

	c.buf = buf;
	ut_env_open(&e, ut_disk_alloc("ut_tick"));
	/* Inline completions: deferred, drained by the channel poller. */
	SUBMIT(sl_bdev_read(e.desc, e.ch, buf, 0, 512, batch_io_done, &c));
	sl_ut_poll(g_thread);
	CU_ASSERT_FATAL(c.done == 3);
	for (i = 0; i < 2; i++) {
		CU_ASSERT(c.batch_tick[i] != 0);
		CU_ASSERT(c.resubmit_tsc[i] == c.batch_tick[i]);
	}
	CU_ASSERT(bdev_channel_get(e.ch)->poll_now == 0);
	sl_bdev_channel_get_io_stat(e.ch, &s);
	CU_ASSERT(s.num_read_ops == 3);
	CU_ASSERT(s.min_read_latency_ticks <= s.max_read_latency_ticks);

	/* A completion from the module's own poller (outside any submit) is a batch of one. */
	c.done = 0;
	c.left = 1;
	g_hold = true;
	SUBMIT(sl_bdev_read(e.desc, e.ch, buf, 0, 512, batch_io_done, &c));
	sl_ut_poll(g_thread);
	CU_ASSERT_FATAL(g_nheld == 1);
	ut_release_held(0);
	CU_ASSERT(c.done == 1 && c.batch_tick[0] != 0);
	CU_ASSERT(c.resubmit_tsc[0] == c.batch_tick[0]);
	CU_ASSERT(bdev_channel_get(e.ch)->poll_now == 0);
	ut_release_held(0);
	sl_ut_poll(g_thread);
	CU_ASSERT(c.done == 2);
	g_hold = false;
	sl_bdev_channel_get_io_stat(e.ch, &s);
	CU_ASSERT(s.num_read_ops == 5);
	ut_env_close(&e);
}

static void
test_reset_cancels_queued(void)
{
	struct ut_env e;
	struct io_result r = {0}, rr = {0};
	uint8_t buf[512];

	ut_env_open(&e, ut_disk_alloc("ut_reset"));
	g_nomem_left = 100;
	SUBMIT(sl_bdev_read(e.desc, e.ch, buf, 0, 512, io_done, &r));
	CU_ASSERT(SUBMIT(sl_bdev_reset(e.desc, e.ch, io_done, &rr)) == 0);
	g_nomem_left = 0;
	sl_ut_poll(g_thread);
	CU_ASSERT(r.count == 1 && r.status == -ECANCELED);
	CU_ASSERT(rr.count == 1 && rr.status == 0);
	ut_env_close(&e);
}

static void
test_allocation_default(void)
{
	struct ut_env e;
	struct sl_bdev_extent ext[4];

	ut_env_open(&e, ut_disk_alloc("ut_alloc"));
	CU_ASSERT(sl_bdev_get_allocation(e.desc, 100, 1000, ext, 4) == 1);
	CU_ASSERT(ext[0].offset == 100 && ext[0].length == 1000 && ext[0].flags == 0);
	CU_ASSERT(sl_bdev_get_allocation(e.desc, 0, 8192 * 512 + 1, ext, 4) == -EINVAL);
	ut_env_close(&e);
}

static int
suite_init(void)
{
	return sl_ut_bdev_init("bdev_ut", &g_thread);
}

static int
suite_fini(void)
{
	return sl_ut_bdev_fini(g_thread);
}

int
main(void)
{
	CU_pSuite suite = sl_ut_suite("bdev", suite_init, suite_fini);

	CU_ADD_TEST(suite, test_register_open_claim);
	CU_ADD_TEST(suite, test_rw_basic);
	CU_ADD_TEST(suite, test_split_max_transfer_vectored);
	CU_ADD_TEST(suite, test_split_boundary_and_segments);
	CU_ADD_TEST(suite, test_enomem_retry);
	CU_ADD_TEST(suite, test_pool_exhaustion_io_wait);
	CU_ADD_TEST(suite, test_hot_remove_inflight);
	CU_ADD_TEST(suite, test_write_zeroes_emulation);
	CU_ADD_TEST(suite, test_unsupported_and_fua);
	CU_ADD_TEST(suite, test_bounce);
	CU_ADD_TEST(suite, test_stats);
	CU_ADD_TEST(suite, test_stats_batch_tick);
	CU_ADD_TEST(suite, test_reset_cancels_queued);
	CU_ADD_TEST(suite, test_allocation_default);
	return sl_ut_run();
}
