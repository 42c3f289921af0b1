/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * Unit tests of the aio bdev module (drivers/bdev/aio): the tests it shares with the
 * uring module (bdev_file_ut.h), and what only aio has: the IOCB_CMD_FDSYNC probe, the
 * read-only mode and rescan. Needs no root and no hugepages.
 */

#include "drivers/bdev/aio/bdev_aio.c"
#include "drivers/bdev/aio/bdev_file.c"

#define FILE_UT_MODULE "aio"
#include "bdev_file_ut.h"

static int
file_ut_create(const char *name, const char *path, uint32_t block_size, char *err, size_t errlen)
{
	struct bdev_aio_opts opts = {
		.name = name,
		.filename = path,
		.block_size = block_size,
		.fallocate = true,
	};

	return bdev_aio_create(&opts, err, errlen);
}

static int
file_ut_delete(const char *name, sl_bdev_op_done_cb cb, void *cb_arg)
{
	return bdev_aio_delete(name, cb, cb_arg);
}

static void
test_fdsync_probe(void)
{
	struct aio_disk *disk;
	char err[512];

	CU_ASSERT_FATAL(file_ut_create("sync", g_path, 4096, err, sizeof(err)) == 0);
	disk = sl_bdev_get_by_name("sync")->ctxt;
	/* /var/tmp is a disk file system here: IOCB_CMD_FDSYNC works. */
	CU_ASSERT(disk->fdsync);
	delete_bdev("sync");
}

static void
test_bad_uuid(void)
{
	struct bdev_aio_opts opts = {
		.name = "uuid",
		.filename = g_path,
		.uuid = "not-a-uuid",
	};
	bool stdin_open = fcntl(STDIN_FILENO, F_GETFD) != -1;
	char err[512];

	CU_ASSERT(bdev_aio_create(&opts, err, sizeof(err)) == -EINVAL);
	CU_ASSERT(strcmp(err, "invalid uuid 'not-a-uuid'") == 0);
	/* The half-built disk had no file open: it must not have closed fd 0. */
	CU_ASSERT(!stdin_open || fcntl(STDIN_FILENO, F_GETFD) != -1);
	CU_ASSERT(sl_bdev_get_by_name("uuid") == NULL);
}

static void
test_readonly_and_rescan(void)
{
	struct bdev_aio_opts opts = {
		.name = "ro",
		.filename = g_path,
		.block_size = 512,
		.fallocate = true,
	};
	struct sl_bdev *bdev;
	struct io_ctx c;
	uint8_t *buf;
	char err[512];

	make_file(g_path, FILE_SIZE);
	opts.readonly = true;
	CU_ASSERT_FATAL(bdev_aio_create(&opts, err, sizeof(err)) == 0);
	bdev = sl_bdev_get_by_name("ro");
	CU_ASSERT(!sl_bdev_io_type_supported_native(bdev, SL_BDEV_IO_TYPE_UNMAP));
	io_open("ro", &c);
	buf = aligned_alloc(4096, 4096);
	CU_ASSERT(do_io(&c, OP_READ, buf, 0, 4096) == 0);
	CU_ASSERT(do_io(&c, OP_WRITE, buf, 0, 4096) == -EROFS);
	io_close(&c);

	/* Growing the file and rescanning announces the new size. */
	CU_ASSERT(truncate(g_path, 2 * FILE_SIZE) == 0);
	CU_ASSERT(bdev_aio_rescan("ro") == 0);
	CU_ASSERT(sl_bdev_get_num_blocks(bdev) == 2 * FILE_SIZE / 512);
	CU_ASSERT(bdev_aio_rescan("nope") == -ENODEV);
	CU_ASSERT(bdev_aio_delete("nope", op_done, NULL) == -ENODEV);
	free(buf);
	delete_bdev("ro");
}

int
main(void)
{
	CU_pSuite suite = sl_ut_suite("bdev_aio", file_ut_suite_init, file_ut_suite_fini);

	file_ut_add_tests(suite);
	CU_add_test(suite, "fdsync probe", test_fdsync_probe);
	CU_add_test(suite, "bad uuid", test_bad_uuid);
	CU_add_test(suite, "read-only and rescan", test_readonly_and_rescan);
	return sl_ut_run();
}
