/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * Unit tests of the uring bdev module (drivers/bdev/uring): the tests it shares with
 * the aio module (bdev_file_ut.h; unmap and write-zeroes are IORING_OP_FALLOCATE
 * here), and deleting an unknown name. Needs no root and no hugepages; skipped (exit
 * 0, with a notice) where io_uring is disabled.
 */

#include <liburing.h>

#include "drivers/bdev/aio/bdev_file.c"
#include "drivers/bdev/uring/bdev_uring.c"

#define FILE_UT_MODULE "uring"
#include "bdev_file_ut.h"

static int
file_ut_create(const char *name, const char *path, uint32_t block_size, char *err, size_t errlen)
{
	struct bdev_uring_opts opts = {
		.name = name,
		.filename = path,
		.block_size = block_size,
	};

	return bdev_uring_create(&opts, err, errlen);
}

static int
file_ut_delete(const char *name, sl_bdev_op_done_cb cb, void *cb_arg)
{
	return bdev_uring_delete(name, cb, cb_arg);
}

static void
test_delete_unknown(void)
{
	CU_ASSERT(bdev_uring_delete("nope", op_done, NULL) == -ENODEV);
}

static bool
uring_available(void)
{
	struct io_uring ring;

	if (io_uring_queue_init(4, &ring, 0) != 0) {
		return false;
	}
	io_uring_queue_exit(&ring);
	return true;
}

int
main(void)
{
	CU_pSuite suite;

	if (!uring_available()) {
		printf("io_uring is not available here (kernel.io_uring_disabled or seccomp): "
		       "skipped\n");
		return 0;
	}
	suite = sl_ut_suite("bdev_uring", file_ut_suite_init, file_ut_suite_fini);
	file_ut_add_tests(suite);
	CU_add_test(suite, "delete unknown", test_delete_unknown);
	return sl_ut_run();
}
