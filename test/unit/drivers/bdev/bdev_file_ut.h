/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * The tests the aio and uring modules share (their disks are both struct
 * bdev_file_disk): create errors, geometry and the O_DIRECT decision, the buffered
 * fallback on tmpfs, read/write/flush, unmap/write-zeroes and the allocation report;
 * on real files in a temporary directory, through the real block layer on a thread
 * polled by hand.
 *
 * The including test first includes its module's .c and bdev_file.c, and defines
 * FILE_UT_MODULE ("aio"), file_ut_create() and file_ut_delete(); then it adds
 * file_ut_add_tests() to a suite run with file_ut_suite_init/fini.
 */
#ifndef SLUICE_TEST_BDEV_FILE_UT_H
#define SLUICE_TEST_BDEV_FILE_UT_H

#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "sl_ut_bdev.h"
#include "sluice/bdev.h"
#include "sluice/thread.h"

/* Create a writable disk of the module under test. */
static int file_ut_create(const char *name, const char *path, uint32_t block_size, char *err,
			  size_t errlen);
/* Delete a disk of the module under test. */
static int file_ut_delete(const char *name, sl_bdev_op_done_cb cb, void *cb_arg);

#define FILE_SIZE      (1024 * 1024)
#define TMPFS_MAGIC_NR 0x01021994

static struct sl_thread *g_thread;
static char g_dir[] = "/var/tmp/sluice_" FILE_UT_MODULE "_ut.XXXXXX";
static char g_path[256];

struct io_wait {
	bool done;
	int status;
};

static void
io_done(void *arg, int status)
{
	struct io_wait *w = arg;

	w->done = true;
	w->status = status;
}

static void
op_done(void *arg, int rc)
{
	io_done(arg, rc);
}

/* Poll the thread until *done or five seconds pass, then for deferred work (channel
 * puts, unregistration). */
static void
poll_until(bool *done)
{
	sl_ut_poll_until(g_thread, done, SL_UT_TIMEOUT_MS);
	sl_ut_poll(g_thread);
}

static void
poll_some(void)
{
	uint64_t end = sl_get_ticks() + sl_get_ticks_hz() / 50;

	while (sl_get_ticks() < end) {
		sl_thread_poll(g_thread, 0, 0);
	}
}

static void
make_file(const char *path, off_t size)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(ftruncate(fd, size) == 0);
	close(fd);
}

static void
bdev_event(enum sl_bdev_event_type type, struct sl_bdev *bdev, void *ctx)
{
}

static void
delete_bdev(const char *name)
{
	struct io_wait w = {0};

	CU_ASSERT(file_ut_delete(name, op_done, &w) == 0);
	poll_until(&w.done);
	CU_ASSERT(w.done && w.status == 0);
	CU_ASSERT(sl_bdev_get_by_name(name) == NULL);
}

struct io_ctx {
	struct sl_bdev_desc *desc;
	struct sl_io_channel *ch;
};

static void
io_open(const char *name, struct io_ctx *c)
{
	CU_ASSERT_FATAL(sl_bdev_open(name, true, bdev_event, NULL, &c->desc) == 0);
	c->ch = sl_bdev_get_io_channel(c->desc);
	CU_ASSERT_FATAL(c->ch != NULL);
}

static void
io_close(struct io_ctx *c)
{
	sl_put_io_channel(c->ch);
	sl_bdev_close(c->desc);
	poll_some();
}

enum op { OP_READ, OP_WRITE, OP_FLUSH, OP_UNMAP, OP_ZEROES };

static int
do_io(struct io_ctx *c, enum op op, void *buf, uint64_t off, uint64_t len)
{
	struct io_wait w = {0};
	int rc;

	switch (op) {
	case OP_READ:
		rc = sl_bdev_read(c->desc, c->ch, buf, off, len, io_done, &w);
		break;
	case OP_WRITE:
		rc = sl_bdev_write(c->desc, c->ch, buf, off, len, io_done, &w);
		break;
	case OP_FLUSH:
		rc = sl_bdev_flush(c->desc, c->ch, off, len, io_done, &w);
		break;
	case OP_UNMAP:
		rc = sl_bdev_unmap(c->desc, c->ch, off, len, io_done, &w);
		break;
	default:
		rc = sl_bdev_write_zeroes(c->desc, c->ch, off, len, io_done, &w);
		break;
	}
	CU_ASSERT_FATAL(rc == 0);
	poll_until(&w.done);
	CU_ASSERT_FATAL(w.done);
	return w.status;
}

static void
test_create_errors(void)
{
	char err[512], small[300];
	int rc;

	rc = file_ut_create("bad0", "/nonexistent/dir/file", 0, err, sizeof(err));
	CU_ASSERT(rc == -ENOENT);
	CU_ASSERT(strcmp(err, "cannot open '/nonexistent/dir/file': No such file or directory") ==
		  0);

	rc = file_ut_create("bad1", g_path, 1000, err, sizeof(err));
	CU_ASSERT(rc == -EINVAL);
	CU_ASSERT(strstr(err, "1000") != NULL);
	rc = file_ut_create("bad2", g_path, 256, err, sizeof(err));
	CU_ASSERT(rc == -EINVAL);
	CU_ASSERT(strstr(err, "256") != NULL);

	snprintf(small, sizeof(small), "%s/small", g_dir);
	make_file(small, 100);
	rc = file_ut_create("bad3", small, 0, err, sizeof(err));
	CU_ASSERT(rc == -EINVAL);
	CU_ASSERT(strstr(err, "smaller than one block") != NULL);
	unlink(small);

	CU_ASSERT(file_ut_create("dup", g_path, 512, err, sizeof(err)) == 0);
	rc = file_ut_create("dup", g_path, 512, err, sizeof(err));
	CU_ASSERT(rc == -EEXIST);
	CU_ASSERT(strcmp(err, "bdev dup already exists") == 0);
	delete_bdev("dup");
	CU_ASSERT(sl_bdev_get_by_name("bad0") == NULL);
}

static void
test_geometry_and_direct(void)
{
	struct sl_bdev *bdev;
	struct bdev_file_disk *disk;
	char err[512];

	CU_ASSERT_FATAL(file_ut_create("geo", g_path, 4096, err, sizeof(err)) == 0);
	bdev = sl_bdev_get_by_name("geo");
	CU_ASSERT_FATAL(bdev != NULL);
	disk = bdev->ctxt;
	CU_ASSERT(sl_bdev_get_block_size(bdev) == 4096);
	CU_ASSERT(sl_bdev_get_num_blocks(bdev) == FILE_SIZE / 4096);
	CU_ASSERT(sl_bdev_has_write_cache(bdev));
	CU_ASSERT(sl_bdev_io_type_supported(bdev, SL_BDEV_IO_TYPE_FLUSH));
	/* /var/tmp is a disk file system here: O_DIRECT, and the kernel's alignment. */
	if (disk->file.direct) {
		CU_ASSERT(bdev->required_alignment >= 512);
	} else {
		CU_ASSERT(bdev->required_alignment <= 1);
	}
	delete_bdev("geo");

	/* Detected block size for a file: 512 or the direct-I/O alignment. */
	CU_ASSERT_FATAL(file_ut_create("geo", g_path, 0, err, sizeof(err)) == 0);
	bdev = sl_bdev_get_by_name("geo");
	CU_ASSERT(sl_bdev_get_block_size(bdev) >= 512);
	delete_bdev("geo");
}

static void
test_tmpfs_buffered(void)
{
	struct statfs sfs;
	struct sl_bdev *bdev;
	bool direct_ok;
	char path[] = "/dev/shm/sluice_" FILE_UT_MODULE "_ut.XXXXXX", err[512];
	int fd;

	if (statfs("/dev/shm", &sfs) != 0 || sfs.f_type != TMPFS_MAGIC_NR) {
		printf("(no tmpfs at /dev/shm: O_DIRECT fallback not tested) ");
		return;
	}
	fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(ftruncate(fd, 64 * 1024) == 0);
	close(fd);
	/* tmpfs has O_DIRECT since Linux 6.6: the module must follow what open() says. */
	fd = open(path, O_RDWR | O_DIRECT);
	direct_ok = fd >= 0;
	if (fd >= 0) {
		close(fd);
	}
	CU_ASSERT_FATAL(file_ut_create("shm", path, 512, err, sizeof(err)) == 0);
	bdev = sl_bdev_get_by_name("shm");
	CU_ASSERT(((struct bdev_file_disk *)bdev->ctxt)->file.direct == direct_ok);
	CU_ASSERT(direct_ok || bdev->required_alignment <= 1);
	delete_bdev("shm");
	unlink(path);
}

static void
test_rw_flush(void)
{
	struct io_ctx c;
	uint8_t *wbuf, *rbuf;
	char err[512];
	size_t i;

	make_file(g_path, FILE_SIZE);
	CU_ASSERT_FATAL(file_ut_create("rw", g_path, 512, err, sizeof(err)) == 0);
	io_open("rw", &c);
	/* Deliberately misaligned buffers: the core bounces them for O_DIRECT. */
	wbuf = malloc(8192 + 1);
	rbuf = malloc(8192 + 1);
	for (i = 0; i < 8192; i++) {
		wbuf[i + 1] = (uint8_t)(i * 7 + 3);
	}
	CU_ASSERT(do_io(&c, OP_WRITE, wbuf + 1, 4096, 8192) == 0);
	CU_ASSERT(do_io(&c, OP_READ, rbuf + 1, 4096, 8192) == 0);
	CU_ASSERT(memcmp(wbuf + 1, rbuf + 1, 8192) == 0);
	CU_ASSERT(do_io(&c, OP_FLUSH, NULL, 0, FILE_SIZE) == 0);
	/* The data is in the file itself. */
	{
		int fd = open(g_path, O_RDONLY);
		uint8_t tmp[8192];

		CU_ASSERT(pread(fd, tmp, sizeof(tmp), 4096) == (ssize_t)sizeof(tmp));
		CU_ASSERT(memcmp(tmp, wbuf + 1, sizeof(tmp)) == 0);
		close(fd);
	}
	free(wbuf);
	free(rbuf);
	io_close(&c);
	delete_bdev("rw");
}

static void
test_unmap_zeroes_allocation(void)
{
	struct sl_bdev_extent ext[8];
	struct sl_bdev *bdev;
	struct io_ctx c;
	uint8_t *buf, *zero;
	char err[512];
	int n;

	make_file(g_path, FILE_SIZE);
	CU_ASSERT_FATAL(file_ut_create("al", g_path, 4096, err, sizeof(err)) == 0);
	bdev = sl_bdev_get_by_name("al");
	io_open("al", &c);
	buf = aligned_alloc(4096, 65536);
	zero = calloc(1, 65536);
	memset(buf, 0xa5, 65536);

	/* A fresh sparse file is one hole. */
	n = sl_bdev_get_allocation(c.desc, 0, FILE_SIZE, ext, 8);
	CU_ASSERT(n == 1);
	CU_ASSERT(ext[0].flags == (SL_BDEV_EXTENT_HOLE | SL_BDEV_EXTENT_ZERO));
	CU_ASSERT(ext[0].length == FILE_SIZE);

	/* Data at [64K, 128K): hole, data, hole. */
	CU_ASSERT(do_io(&c, OP_WRITE, buf, 65536, 65536) == 0);
	n = sl_bdev_get_allocation(c.desc, 0, FILE_SIZE, ext, 8);
	CU_ASSERT(n == 3);
	if (n == 3) {
		CU_ASSERT(ext[0].offset == 0 && ext[0].length == 65536 && ext[0].flags != 0);
		CU_ASSERT(ext[1].offset == 65536 && ext[1].length == 65536 && ext[1].flags == 0);
		CU_ASSERT(ext[2].offset == 131072 && ext[2].flags != 0);
	}
	/* max_extents 1: only the first, ask again from its end. */
	CU_ASSERT(sl_bdev_get_allocation(c.desc, 0, FILE_SIZE, ext, 1) == 1);

	if (sl_bdev_io_type_supported_native(bdev, SL_BDEV_IO_TYPE_UNMAP)) {
		CU_ASSERT(do_io(&c, OP_UNMAP, NULL, 65536, 32768) == 0);
		CU_ASSERT(do_io(&c, OP_READ, buf, 65536, 32768) == 0);
		CU_ASSERT(memcmp(buf, zero, 32768) == 0);
		n = sl_bdev_get_allocation(c.desc, 65536, 65536, ext, 8);
		CU_ASSERT(n == 2 && ext[0].flags != 0 && ext[1].flags == 0);
	} else {
		printf("(no punch-hole here: unmap not tested) ");
	}
	memset(buf, 0x5a, 65536);
	CU_ASSERT(do_io(&c, OP_WRITE, buf, 0, 65536) == 0);
	CU_ASSERT(do_io(&c, OP_ZEROES, NULL, 8192, 16384) == 0);
	CU_ASSERT(do_io(&c, OP_READ, buf, 0, 65536) == 0);
	CU_ASSERT(buf[8191] == 0x5a && buf[8192] == 0 && buf[24575] == 0 && buf[24576] == 0x5a);

	free(buf);
	free(zero);
	io_close(&c);
	delete_bdev("al");
}

static int
file_ut_suite_init(void)
{
	int fd;

	if (mkdtemp(g_dir) == NULL) {
		return -1;
	}
	snprintf(g_path, sizeof(g_path), "%s/disk", g_dir);
	fd = open(g_path, O_CREAT | O_RDWR, 0600);
	if (fd < 0) {
		return -1;
	}
	if (ftruncate(fd, FILE_SIZE) != 0) {
		close(fd);
		return -1;
	}
	close(fd);
	return sl_ut_bdev_init(FILE_UT_MODULE "_ut", &g_thread);
}

static int
file_ut_suite_fini(void)
{
	int rc = sl_ut_bdev_fini(g_thread);

	unlink(g_path);
	rmdir(g_dir);
	return rc;
}

static void
file_ut_add_tests(CU_pSuite suite)
{
	CU_add_test(suite, "create errors", test_create_errors);
	CU_add_test(suite, "geometry and O_DIRECT", test_geometry_and_direct);
	CU_add_test(suite, "tmpfs: O_DIRECT or buffered fallback", test_tmpfs_buffered);
	CU_add_test(suite, "read, write, flush", test_rw_flush);
	CU_add_test(suite, "unmap, write-zeroes, allocation", test_unmap_zeroes_allocation);
}

#endif /* SLUICE_TEST_BDEV_FILE_UT_H */
