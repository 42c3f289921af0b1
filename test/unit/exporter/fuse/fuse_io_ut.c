/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * Unit tests of the FUSE request path (fuse_io.c, included): range splitting,
 * read-modify-write and fallocate against an in-memory bdev and a reference copy,
 * the range lock (overlaps wait, read-modify-writes drain fast writes), -ENOMEM
 * retries, SEEK_DATA/SEEK_HOLE, and the writev hook (reply routing, open flags).
 * The bdev, threads, pollers and libfuse's reply functions are mocked here.
 */

#include <CUnit/Basic.h>
#include <stdarg.h>

#include "fuse_io.c"

/* ---- mocks: bdev ------------------------------------------------------------------ */

#define DISK_SIZE   (1u << 20)
#define MAX_PENDING 64

struct sl_thread {
	int id;
};
struct sl_io_channel {
	int id;
};
struct sl_bdev_desc {
	int id;
};
struct sl_bdev {
	int id;
};

static struct sl_thread g_thread;
static struct sl_io_channel g_ch;
static struct sl_bdev_desc g_desc;
static struct sl_bdev g_bdev;

static uint8_t g_disk[DISK_SIZE];
static uint8_t g_ref[DISK_SIZE];
static bool g_hole[DISK_SIZE / 512]; /* per 512-byte unit: unmapped */
static uint32_t g_bs = 4096;
static bool g_unmap_zeroes = true; /* a module whose unmap leaves data: false */
static int g_misaligned;
static int g_enomem_once;
static struct sl_bdev_io_wait_entry *g_waiter;

struct pending {
	sl_bdev_io_done_cb cb;
	void *arg;
};
static struct pending g_pending[MAX_PENDING];
static int g_npending;
static int g_nsubmits; /* bdev I/Os queued, ever */

static int
bdev_queue(uint64_t off, uint64_t len, sl_bdev_io_done_cb cb, void *arg)
{
	g_nsubmits++;
	if (off % g_bs != 0 || len % g_bs != 0 || off + len > DISK_SIZE) {
		g_misaligned++;
	}
	CU_ASSERT_FATAL(g_npending < MAX_PENDING);
	g_pending[g_npending++] = (struct pending){.cb = cb, .arg = arg};
	return 0;
}

static void
mark(uint64_t off, uint64_t len, bool hole)
{
	uint64_t u;

	for (u = off / 512; u < (off + len) / 512; u++) {
		g_hole[u] = hole;
	}
}

static int
enomem_check(void)
{
	if (g_enomem_once > 0) {
		g_enomem_once--;
		return -ENOMEM;
	}
	return 0;
}

int
sl_bdev_read(struct sl_bdev_desc *desc, struct sl_io_channel *ch, void *buf, uint64_t offset,
	     uint64_t nbytes, sl_bdev_io_done_cb cb, void *cb_arg)
{
	if (enomem_check() != 0) {
		return -ENOMEM;
	}
	memcpy(buf, g_disk + offset, nbytes);
	return bdev_queue(offset, nbytes, cb, cb_arg);
}

int
sl_bdev_write(struct sl_bdev_desc *desc, struct sl_io_channel *ch, const void *buf, uint64_t offset,
	      uint64_t nbytes, sl_bdev_io_done_cb cb, void *cb_arg)
{
	if (enomem_check() != 0) {
		return -ENOMEM;
	}
	memcpy(g_disk + offset, buf, nbytes);
	mark(offset, nbytes, false);
	return bdev_queue(offset, nbytes, cb, cb_arg);
}

int
sl_bdev_writev(struct sl_bdev_desc *desc, struct sl_io_channel *ch, struct iovec *iov, int iovcnt,
	       uint64_t offset, uint64_t nbytes, sl_bdev_io_done_cb cb, void *cb_arg)
{
	uint64_t pos = offset;
	int i;

	if (enomem_check() != 0) {
		return -ENOMEM;
	}
	for (i = 0; i < iovcnt; i++) {
		memcpy(g_disk + pos, iov[i].iov_base, iov[i].iov_len);
		pos += iov[i].iov_len;
	}
	CU_ASSERT(pos - offset == nbytes);
	mark(offset, nbytes, false);
	return bdev_queue(offset, nbytes, cb, cb_arg);
}

int
sl_bdev_write_zeroes(struct sl_bdev_desc *desc, struct sl_io_channel *ch, uint64_t offset,
		     uint64_t nbytes, sl_bdev_io_done_cb cb, void *cb_arg)
{
	memset(g_disk + offset, 0, nbytes);
	mark(offset, nbytes, false);
	return bdev_queue(offset, nbytes, cb, cb_arg);
}

int
sl_bdev_unmap(struct sl_bdev_desc *desc, struct sl_io_channel *ch, uint64_t offset, uint64_t nbytes,
	      sl_bdev_io_done_cb cb, void *cb_arg)
{
	if (g_unmap_zeroes) {
		memset(g_disk + offset, 0, nbytes);
	}
	mark(offset, nbytes, true);
	return bdev_queue(offset, nbytes, cb, cb_arg);
}

int
sl_bdev_flush(struct sl_bdev_desc *desc, struct sl_io_channel *ch, uint64_t offset, uint64_t nbytes,
	      sl_bdev_io_done_cb cb, void *cb_arg)
{
	return bdev_queue(0, 0, cb, cb_arg);
}

int
sl_bdev_get_allocation(struct sl_bdev_desc *desc, uint64_t offset, uint64_t nbytes,
		       struct sl_bdev_extent *extents, uint32_t max_extents)
{
	uint64_t u = offset / 512, end = (offset + nbytes + 511) / 512;
	uint32_t n = 0;
	bool hole;

	while (u < end && n < max_extents) {
		hole = g_hole[u];
		extents[n].offset = SL_MAX(u * 512, offset);
		while (u < end && g_hole[u] == hole) {
			u++;
		}
		extents[n].length = SL_MIN(u * 512, offset + nbytes) - extents[n].offset;
		/* An unmapped unit reads as zeroes only if the module zeroes on unmap. */
		extents[n].flags =
			hole ? (SL_BDEV_EXTENT_HOLE | (g_unmap_zeroes ? SL_BDEV_EXTENT_ZERO : 0))
			     : 0;
		n++;
	}
	return (int)n;
}

int
sl_bdev_queue_io_wait(struct sl_bdev *bdev, struct sl_io_channel *ch,
		      struct sl_bdev_io_wait_entry *entry)
{
	g_waiter = entry;
	return 0;
}

struct sl_bdev *
sl_bdev_desc_get_bdev(struct sl_bdev_desc *desc)
{
	return &g_bdev;
}

struct sl_io_channel *
sl_bdev_get_io_channel(struct sl_bdev_desc *desc)
{
	return &g_ch;
}

/* ---- mocks: threads, pollers, log, mount -------------------------------------------- */

struct msg {
	sl_msg_fn fn;
	void *ctx;
};
static struct msg g_msgs[MAX_PENDING];
static int g_nmsgs;

int
sl_thread_send_msg(const struct sl_thread *thread, sl_msg_fn fn, void *ctx)
{
	CU_ASSERT_FATAL(g_nmsgs < MAX_PENDING);
	g_msgs[g_nmsgs++] = (struct msg){.fn = fn, .ctx = ctx};
	return 0;
}

struct sl_thread *
sl_thread_get_app_thread(void)
{
	return &g_thread;
}

int
sl_thread_exit(struct sl_thread *thread)
{
	return 0;
}

void
sl_put_io_channel(struct sl_io_channel *ch)
{
}

struct sl_poller *
sl_poller_register_fd(int fd, uint32_t events, sl_poller_fn fn, void *arg, const char *name)
{
	return NULL;
}

void
sl_poller_unregister(struct sl_poller **poller)
{
	*poller = NULL;
}

void
sl_poller_pause(struct sl_poller *poller)
{
}

void
sl_poller_resume(struct sl_poller *poller)
{
}

void
sl_log(enum sl_log_level level, const char *file, int line, const char *func, const char *fmt, ...)
{
}

void
fuse_mnt_stop_async(struct fuse_mnt *mnt)
{
}

void
fuse_exp_chan_quiesced(struct fuse_exp *exp)
{
}

void
fuse_chan_finished(struct fuse_chan *chan)
{
}

static struct fuse_exp *g_exp;

struct fuse_exp *
fuse_ino_to_exp(struct fuse_mnt *mnt, fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? NULL : g_exp;
}

/* ---- mocks: libfuse replies ------------------------------------------------------------ */

static int g_replies;
static int g_reply_err;
static size_t g_reply_count;
static uint8_t g_reply_buf[FUSE_IO_MAX_XFER];
static off_t g_reply_off;

void
fuse_session_process_buf(struct fuse_session *se, const struct fuse_buf *buf)
{
}

int
fuse_reply_err(fuse_req_t req, int err)
{
	g_replies++;
	g_reply_err = err;
	return 0;
}

int
fuse_reply_buf(fuse_req_t req, const char *buf, size_t size)
{
	g_replies++;
	g_reply_err = 0;
	g_reply_count = size;
	memcpy(g_reply_buf, buf, size);
	return 0;
}

int
fuse_reply_write(fuse_req_t req, size_t count)
{
	g_replies++;
	g_reply_err = 0;
	g_reply_count = count;
	return 0;
}

int
fuse_reply_lseek(fuse_req_t req, off_t off)
{
	g_replies++;
	g_reply_off = off;
	return 0;
}

size_t
fuse_buf_size(const struct fuse_bufvec *bufv)
{
	size_t i, n = 0;

	for (i = bufv->idx; i < bufv->count; i++) {
		n += bufv->buf[i].size;
	}
	return n;
}

/* ---- fixture --------------------------------------------------------------------- */

static struct fuse_mnt g_mnt;
static struct fuse_chan g_chans[2];
static struct fuse_exp g_exp_obj;
static struct fuse_exp_chan g_exp_chans[2];
static uint8_t *g_bufs;
static struct fuse_io g_ios[8];
static fuse_req_t g_req = (fuse_req_t)(uintptr_t)0x1000;

static void
fixture_init(uint32_t bs, bool has_unmap, bool unmap_zeroes)
{
	int i;

	memset(&g_mnt, 0, sizeof(g_mnt));
	memset(g_chans, 0, sizeof(g_chans));
	memset(&g_exp_obj, 0, sizeof(g_exp_obj));
	memset(g_exp_chans, 0, sizeof(g_exp_chans));
	memset(g_disk, 0, sizeof(g_disk));
	memset(g_ref, 0, sizeof(g_ref));
	memset(g_hole, 0, sizeof(g_hole));
	g_bs = bs;
	g_unmap_zeroes = unmap_zeroes;
	g_misaligned = 0;
	g_npending = g_nmsgs = 0;
	g_mnt.path = (char *)(uintptr_t) "/test";
	g_mnt.num_chans = 2;
	g_mnt.chans = g_chans;
	for (i = 0; i < 2; i++) {
		g_chans[i].mnt = &g_mnt;
		g_chans[i].index = (uint32_t)i;
		g_chans[i].thread = &g_thread;
		g_chans[i].fd = -1;
		STAILQ_INIT(&g_chans[i].free_ios);
		g_exp_chans[i].exp = &g_exp_obj;
		g_exp_chans[i].chan = &g_chans[i];
	}
	g_exp_obj.mnt = &g_mnt;
	g_exp_obj.desc = &g_desc;
	g_exp_obj.block_size = bs;
	g_exp_obj.size = DISK_SIZE;
	g_exp_obj.has_unmap = has_unmap;
	g_exp_obj.chans = g_exp_chans;
	fuse_range_init(&g_exp_obj);
	g_exp = &g_exp_obj;
	if (g_bufs == NULL) {
		g_bufs = malloc(SL_COUNTOF(g_ios) * (size_t)FUSE_IO_BUF_SIZE);
	}
	for (i = 0; i < (int)SL_COUNTOF(g_ios); i++) {
		memset(&g_ios[i], 0, sizeof(g_ios[i]));
		g_ios[i].chan = &g_chans[0];
		g_ios[i].buf = g_bufs + (size_t)i * FUSE_IO_BUF_SIZE;
		STAILQ_INSERT_TAIL(&g_chans[0].free_ios, &g_ios[i], free_link);
	}
}

/* Complete pending bdev I/O and run messages until nothing is left. */
static void
drain(void)
{
	struct pending p;
	struct msg m;

	while (g_npending > 0 || g_nmsgs > 0) {
		if (g_npending > 0) {
			p = g_pending[0];
			memmove(g_pending, g_pending + 1, sizeof(p) * (size_t)--g_npending);
			p.cb(p.arg, 0);
		} else {
			m = g_msgs[0];
			memmove(g_msgs, g_msgs + 1, sizeof(m) * (size_t)--g_nmsgs);
			m.fn(m.ctx);
		}
	}
}

/* Start a handler as fuse_chan_process() would: on channel chan, with a free context. */
static struct fuse_io *
begin(uint32_t chan)
{
	struct fuse_io *io = STAILQ_FIRST(&g_chans[0].free_ios);

	CU_ASSERT_FATAL(io != NULL);
	STAILQ_REMOVE_HEAD(&g_chans[0].free_ios, free_link);
	io->chan = &g_chans[chan];
	io->claimed = false;
	tls_chan = &g_chans[chan];
	tls_io = io;
	g_replies = 0;
	g_reply_err = -1;
	return io;
}

static void
end(struct fuse_io *io)
{
	tls_chan = NULL;
	tls_io = NULL;
	if (!io->claimed) {
		STAILQ_INSERT_HEAD(&io->chan->free_ios, io, free_link);
	}
}

static void
do_write(uint32_t chan, uint64_t off, const uint8_t *data, size_t len)
{
	struct fuse_io *io = begin(chan);
	struct fuse_bufvec bufv = FUSE_BUFVEC_INIT(len);

	memcpy(io->buf + FUSE_IO_HDR_ROOM, data, len);
	bufv.buf[0].mem = io->buf + FUSE_IO_HDR_ROOM;
	fuse_op_write_buf(g_req, 2, &bufv, (off_t)off, NULL);
	end(io);
}

static void
do_read(uint64_t off, size_t len)
{
	struct fuse_io *io = begin(0);

	fuse_op_read(g_req, 2, len, (off_t)off, NULL);
	end(io);
	drain();
}

static void
do_fallocate(int mode, uint64_t off, uint64_t len)
{
	struct fuse_io *io = begin(0);

	fuse_op_fallocate(g_req, 2, mode, (off_t)off, (off_t)len, NULL);
	end(io);
	drain();
}

/* ---- tests -------------------------------------------------------------------------- */

static void
test_set_range(void)
{
	struct fuse_io io;

	fuse_io_set_range(&io, 4096, 8192, 4096); /* aligned */
	CU_ASSERT(io.start == 4096 && io.end == 12288);
	CU_ASSERT(io.mid_start == 4096 && io.mid_end == 12288);
	fuse_io_set_range(&io, 100, 10, 4096); /* inside one block */
	CU_ASSERT(io.start == 0 && io.end == 4096);
	CU_ASSERT(io.mid_start == 4096 && io.mid_end == 4096);
	CU_ASSERT(fuse_io_head_partial(&io) && !fuse_io_tail_partial(&io));
	fuse_io_set_range(&io, 0, 100, 4096); /* head of one block */
	CU_ASSERT(fuse_io_head_partial(&io) && !fuse_io_tail_partial(&io));
	fuse_io_set_range(&io, 100, 8192, 4096); /* both edges partial */
	CU_ASSERT(io.start == 0 && io.end == 12288);
	CU_ASSERT(io.mid_start == 4096 && io.mid_end == 8192);
	CU_ASSERT(fuse_io_head_partial(&io) && fuse_io_tail_partial(&io));
	fuse_io_set_range(&io, 4096, 5000, 4096); /* aligned head, partial tail */
	CU_ASSERT(!fuse_io_head_partial(&io) && fuse_io_tail_partial(&io));
	CU_ASSERT(io.mid_start == 4096 && io.mid_end == 8192);
	fuse_io_set_range(&io, 1000, 3096, 4096); /* partial head ending on a boundary */
	CU_ASSERT(fuse_io_head_partial(&io) && !fuse_io_tail_partial(&io));
}

static void
test_aligned_roundtrip(void)
{
	uint8_t data[8192];
	size_t i;

	fixture_init(4096, true, true);
	for (i = 0; i < sizeof(data); i++) {
		data[i] = (uint8_t)(i * 7);
	}
	do_write(0, 8192, data, sizeof(data));
	CU_ASSERT(g_ios[0].hold == FUSE_RANGE_FAST);
	CU_ASSERT(atomic_load(&g_exp_chans[0].fast_writes) == 1);
	drain();
	CU_ASSERT(atomic_load(&g_exp_chans[0].fast_writes) == 0);
	CU_ASSERT(g_replies == 1 && g_reply_err == 0 && g_reply_count == sizeof(data));
	do_read(8192, sizeof(data));
	CU_ASSERT(g_reply_count == sizeof(data));
	CU_ASSERT(memcmp(g_reply_buf, data, sizeof(data)) == 0);
	CU_ASSERT(g_misaligned == 0);
	CU_ASSERT(g_chans[0].inflight == 0 && g_exp_chans[0].inflight == 0);
}

/* Random writes, zero-ranges and punches, each alone, against a reference copy. */
static void
random_ops(uint32_t bs, bool has_unmap, bool unmap_zeroes)
{
	uint8_t data[70000];
	uint64_t off, len;
	int i, kind;
	size_t j;

	fixture_init(bs, has_unmap, unmap_zeroes);
	srand(42);
	for (i = 0; i < 400; i++) {
		kind = rand() % 10;
		off = (uint64_t)rand() % (DISK_SIZE - 1);
		len = (uint64_t)(1 + rand() % (int)sizeof(data));
		len = SL_MIN(len, DISK_SIZE - off);
		if (kind < 6) {
			for (j = 0; j < len; j++) {
				data[j] = (uint8_t)rand();
			}
			do_write(0, off, data, len);
			drain();
			CU_ASSERT(g_reply_err == 0 && g_reply_count == len);
			memcpy(g_ref + off, data, len);
		} else {
			do_fallocate(kind < 8 ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
					      : FALLOC_FL_ZERO_RANGE,
				     off, len);
			CU_ASSERT(g_reply_err == 0);
			memset(g_ref + off, 0, len);
		}
		if (i % 50 == 0) {
			off = (uint64_t)rand() % (DISK_SIZE - 1);
			len = SL_MIN((uint64_t)(1 + rand() % 100000), DISK_SIZE - off);
			do_read(off, len);
			CU_ASSERT(g_reply_count == len);
			CU_ASSERT(memcmp(g_reply_buf, g_ref + off, len) == 0);
		}
	}
	CU_ASSERT(memcmp(g_disk, g_ref, DISK_SIZE) == 0);
	CU_ASSERT(g_misaligned == 0);
	CU_ASSERT(TAILQ_EMPTY(&g_exp_obj.ranges) && atomic_load(&g_exp_obj.slow_count) == 0);
}

static void
test_rmw_4k(void)
{
	random_ops(4096, true, true);
}

static void
test_rmw_512_no_unmap(void)
{
	random_ops(512, false, true);
}

static void
test_punch_dirty_unmap(void)
{
	/* The module's unmap leaves data: punch must write zeroes as well. */
	random_ops(4096, true, false);
}

static void
test_edges(void)
{
	uint8_t data[4096];

	fixture_init(4096, true, true);
	memset(data, 0xab, sizeof(data));
	do_write(0, DISK_SIZE - 100, data, sizeof(data));
	drain();
	CU_ASSERT(g_reply_err == 0 && g_reply_count == 100);
	do_write(0, DISK_SIZE, data, sizeof(data));
	drain();
	CU_ASSERT(g_reply_err == ENOSPC);
	do_read(DISK_SIZE - 10, 4096);
	CU_ASSERT(g_reply_count == 10);
	do_read(DISK_SIZE, 4096);
	CU_ASSERT(g_replies == 1 && g_reply_count == 0);
	do_fallocate(FALLOC_FL_ZERO_RANGE, DISK_SIZE - 4096, 8192);
	CU_ASSERT(g_reply_err == ENOSPC);
	do_fallocate(FALLOC_FL_COLLAPSE_RANGE, 0, 4096);
	CU_ASSERT(g_reply_err == EOPNOTSUPP);
	g_exp_obj.read_only = true;
	do_write(0, 0, data, sizeof(data));
	CU_ASSERT(g_reply_err == EROFS);
	g_exp_obj.read_only = false;
	atomic_store(&g_exp_obj.removing, true);
	do_read(0, 4096);
	CU_ASSERT(g_reply_err == ENODEV);
	CU_ASSERT(g_chans[0].inflight == 0);
}

/* fallocate mode 0 (posix_fallocate): inside the file the blocks exist, so it succeeds
 * without touching the bdev or the data; growing the file fails with ENOSPC as a write
 * past the end does; KEEP_SIZE cuts at the end. */
static void
test_fallocate_alloc(void)
{
	int before;

	fixture_init(4096, true, true);
	memset(g_disk + 4096, 0x5c, 8192);
	memcpy(g_ref, g_disk, DISK_SIZE);
	before = g_nsubmits;
	do_fallocate(0, 100, 10000);
	CU_ASSERT(g_replies == 1 && g_reply_err == 0);
	do_fallocate(0, 0, DISK_SIZE);
	CU_ASSERT(g_replies == 1 && g_reply_err == 0);
	do_fallocate(FALLOC_FL_KEEP_SIZE, DISK_SIZE - 4096, 8192);
	CU_ASSERT(g_replies == 1 && g_reply_err == 0);
	do_fallocate(FALLOC_FL_KEEP_SIZE, DISK_SIZE + 4096, 4096);
	CU_ASSERT(g_replies == 1 && g_reply_err == 0);
	CU_ASSERT(g_nsubmits == before && memcmp(g_disk, g_ref, DISK_SIZE) == 0);
	do_fallocate(0, DISK_SIZE - 4096, 8192);
	CU_ASSERT(g_replies == 1 && g_reply_err == ENOSPC);
	do_fallocate(0, DISK_SIZE, 4096);
	CU_ASSERT(g_replies == 1 && g_reply_err == ENOSPC);
	do_fallocate(0, 0, 0);
	CU_ASSERT(g_replies == 1 && g_reply_err == EINVAL);
	g_exp_obj.read_only = true;
	do_fallocate(0, 0, 4096);
	CU_ASSERT(g_replies == 1 && g_reply_err == EROFS);
	g_exp_obj.read_only = false;
	CU_ASSERT(g_nsubmits == before && memcmp(g_disk, g_ref, DISK_SIZE) == 0);
	CU_ASSERT(g_chans[0].inflight == 0 && g_exp_chans[0].inflight == 0);
}

static void
test_range_overlap_waits(void)
{
	uint8_t a[100], b[100], c[4096];

	fixture_init(4096, true, true);
	memset(a, 1, sizeof(a));
	memset(b, 2, sizeof(b));
	memset(c, 6, sizeof(c));
	/* Two unaligned writes into block 0 from both channels: the second waits. */
	do_write(0, 10, a, sizeof(a));
	CU_ASSERT(g_ios[0].hold == FUSE_RANGE_HELD);
	do_write(1, 2000, b, sizeof(b));
	CU_ASSERT(g_ios[1].hold == FUSE_RANGE_WAITING);
	/* An aligned write elsewhere now takes the slow path, but is not blocked. */
	do_write(0, 65536, c, sizeof(c));
	CU_ASSERT(g_ios[2].hold == FUSE_RANGE_HELD);
	drain();
	CU_ASSERT(g_disk[10] == 1 && g_disk[109] == 1 && g_disk[2000] == 2 && g_disk[2099] == 2);
	CU_ASSERT(g_disk[65536] == 6 && g_disk[9] == 0 && g_disk[110] == 0);
	CU_ASSERT(TAILQ_EMPTY(&g_exp_obj.ranges) && atomic_load(&g_exp_obj.slow_count) == 0);
}

static void
test_range_drains_fast(void)
{
	uint8_t a[4096], b[10];

	fixture_init(4096, true, true);
	memset(a, 3, sizeof(a));
	memset(b, 4, sizeof(b));
	/* A fast write in flight on channel 1 (not completed yet). */
	do_write(1, 0, a, sizeof(a));
	CU_ASSERT(g_ios[0].hold == FUSE_RANGE_FAST);
	/* A read-modify-write must wait for it... */
	do_write(0, 5, b, sizeof(b));
	CU_ASSERT(g_ios[1].hold == FUSE_RANGE_WAITING);
	/* ...and is resumed (by message) when it completes; nothing is lost. */
	drain();
	CU_ASSERT(g_ios[1].hold == FUSE_RANGE_NONE);
	CU_ASSERT(g_disk[0] == 3 && g_disk[5] == 4 && g_disk[14] == 4 && g_disk[15] == 3);
	CU_ASSERT(atomic_load(&g_exp_chans[1].fast_writes) == 0);
}

static void
test_enomem_retry(void)
{
	uint8_t a[4096];

	fixture_init(4096, true, true);
	memset(a, 5, sizeof(a));
	g_enomem_once = 1;
	g_waiter = NULL;
	do_write(0, 0, a, sizeof(a));
	CU_ASSERT(g_waiter != NULL && g_replies == 0);
	g_waiter->cb_fn(g_waiter->cb_arg);
	drain();
	CU_ASSERT(g_replies == 1 && g_reply_err == 0 && g_disk[0] == 5);
}

static void
test_seek(void)
{
	fixture_init(4096, true, true);
	mark(8192, 16384, true);
	mark(DISK_SIZE - 4096, 4096, true);
	CU_ASSERT(fuse_seek_extents(&g_desc, DISK_SIZE, 0, SEEK_HOLE) == 8192);
	CU_ASSERT(fuse_seek_extents(&g_desc, DISK_SIZE, 0, SEEK_DATA) == 0);
	CU_ASSERT(fuse_seek_extents(&g_desc, DISK_SIZE, 9000, SEEK_DATA) == 24576);
	CU_ASSERT(fuse_seek_extents(&g_desc, DISK_SIZE, 9000, SEEK_HOLE) == 9000);
	CU_ASSERT(fuse_seek_extents(&g_desc, DISK_SIZE, DISK_SIZE - 4096, SEEK_DATA) == -ENXIO);
	CU_ASSERT(fuse_seek_extents(&g_desc, DISK_SIZE, DISK_SIZE, SEEK_HOLE) == -ENXIO);
	mark(DISK_SIZE - 4096, 4096, false);
	CU_ASSERT(fuse_seek_extents(&g_desc, DISK_SIZE, 30000, SEEK_HOLE) == DISK_SIZE);
}

static void
test_writev_hook(void)
{
	struct fuse_out_header out = {.len = sizeof(out) + sizeof(struct fuse_open_out)};
	struct fuse_open_out arg = {.fh = 7};
	struct iovec iov[2] = {{&out, sizeof(out)}, {&arg, sizeof(arg)}};
	struct fuse_chan chan = {0};
	uint8_t got[64];
	int p[2];

	CU_ASSERT_FATAL(pipe(p) == 0);
	chan.fd = p[1];
	tls_chan = &chan;
	fuse_io_mark_open_reply();
	/* The session fd given (-1) is not used: the reply goes to the channel's fd. */
	CU_ASSERT(fuse_io_writev_hook(-1, iov, 2, NULL) == (ssize_t)(sizeof(out) + sizeof(arg)));
	CU_ASSERT(arg.open_flags == (FOPEN_DIRECT_IO | FOPEN_PARALLEL_DIRECT_WRITES));
	CU_ASSERT(read(p[0], got, sizeof(got)) == (ssize_t)(sizeof(out) + sizeof(arg)));
	/* Only the marked reply is patched. */
	arg.open_flags = 0;
	CU_ASSERT(fuse_io_writev_hook(-1, iov, 2, NULL) > 0);
	CU_ASSERT(arg.open_flags == 0);
	tls_chan = NULL;
	close(p[0]);
	close(p[1]);
}

int
main(void)
{
	CU_pSuite suite;
	unsigned int failures;

	if (CU_initialize_registry() != CUE_SUCCESS) {
		return 1;
	}
	suite = CU_add_suite("fuse_io", NULL, NULL);
	CU_ADD_TEST(suite, test_set_range);
	CU_ADD_TEST(suite, test_aligned_roundtrip);
	CU_ADD_TEST(suite, test_rmw_4k);
	CU_ADD_TEST(suite, test_rmw_512_no_unmap);
	CU_ADD_TEST(suite, test_punch_dirty_unmap);
	CU_ADD_TEST(suite, test_edges);
	CU_ADD_TEST(suite, test_fallocate_alloc);
	CU_ADD_TEST(suite, test_range_overlap_waits);
	CU_ADD_TEST(suite, test_range_drains_fast);
	CU_ADD_TEST(suite, test_enomem_retry);
	CU_ADD_TEST(suite, test_seek);
	CU_ADD_TEST(suite, test_writev_hook);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	free(g_bufs);
	return failures != 0;
}
