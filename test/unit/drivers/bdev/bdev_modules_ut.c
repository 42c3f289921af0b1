/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * The malloc and null modules through the block layer (read/write/unmap/
 * write-zeroes, allocation reporting), their RPCs and the generic bdev RPCs called
 * with sl_rpc_call_local (parameter errors, SPDK field names), and the "bdev"
 * subsystem's saved config. One hand-polled thread, no EAL.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "sl_ut_bdev.h"
#include "sluice/bdev.h"
#include "sluice/bdev_module.h"
#include "sluice/rpc.h"
#include "sluice/subsystem.h"
#include "sluice/thread.h"
#include "sluice/util.h"

#include "malloc/bdev_malloc.h"
#include "null/bdev_null.h"

static struct sl_thread *g_thread;

static void
event_cb(enum sl_bdev_event_type type, struct sl_bdev *bdev, void *ctx)
{
}

struct io_result {
	int count;
	int status;
};

static void
io_done(void *arg, int status)
{
	struct io_result *r = arg;

	r->count++;
	r->status = status;
}

static int g_del_rc, g_del_done;

static void
del_done(void *arg, int rc)
{
	g_del_rc = rc;
	g_del_done++;
}

/* ---- RPC helper ---------------------------------------------------------------- */

static json_t *g_resp;

static void
rpc_resp(void *ctx, json_t *response)
{
	json_decref(g_resp);
	g_resp = response != NULL ? json_incref(response) : NULL;
}

/* Call method with params (a JSON text, or NULL); \return the response (borrowed). */
static json_t *
rpc(const char *method, const char *params)
{
	json_t *req = json_pack("{s:s, s:i, s:s}", "jsonrpc", "2.0", "id", 1, "method", method);

	if (params != NULL) {
		json_object_set_new(req, "params", json_loads(params, 0, NULL));
	}
	json_decref(g_resp);
	g_resp = NULL;
	sl_rpc_call_local(req, rpc_resp, NULL);
	sl_ut_poll(g_thread);
	json_decref(req);
	CU_ASSERT_FATAL(g_resp != NULL);
	return g_resp;
}

static int
rpc_error_code(json_t *resp)
{
	json_t *err = json_object_get(resp, "error");

	return err != NULL ? (int)json_integer_value(json_object_get(err, "code")) : 0;
}

static const char *
rpc_error_msg(json_t *resp)
{
	json_t *err = json_object_get(resp, "error");

	return err != NULL ? json_string_value(json_object_get(err, "message")) : "";
}

/* ---- malloc --------------------------------------------------------------------- */

static void
test_malloc_create_errors(void)
{
	struct malloc_disk_opts o = {.name = "Mbad", .num_blocks = 1024, .block_size = 1000};
	struct sl_bdev *bdev;
	char err[256];

	CU_ASSERT(malloc_disk_create(&o, &bdev, err, sizeof(err)) == -EINVAL);
	CU_ASSERT(strstr(err, "1000") != NULL);
	o.block_size = 256;
	CU_ASSERT(malloc_disk_create(&o, &bdev, err, sizeof(err)) == -EINVAL);
	o.block_size = 512;
	o.num_blocks = 0;
	CU_ASSERT(malloc_disk_create(&o, &bdev, err, sizeof(err)) == -EINVAL);
	/* 512 PiB: refused with a message, not a crash or an OOM kill. */
	o.num_blocks = 1ULL << 50;
	CU_ASSERT(malloc_disk_create(&o, &bdev, err, sizeof(err)) == -ENOMEM);
	CU_ASSERT(strstr(err, "MiB") != NULL);
	o.num_blocks = UINT64_MAX / 256;
	CU_ASSERT(malloc_disk_create(&o, &bdev, err, sizeof(err)) == -EINVAL);
	o.num_blocks = 16;
	CU_ASSERT(malloc_disk_create(&o, &bdev, err, sizeof(err)) == 0);
	CU_ASSERT(malloc_disk_create(&o, &bdev, err, sizeof(err)) == -EEXIST);
	CU_ASSERT(strstr(err, "Mbad already exists") != NULL);
	CU_ASSERT(malloc_disk_delete("nope", del_done, NULL) == -ENODEV);
	g_del_done = 0;
	CU_ASSERT(malloc_disk_delete("Mbad", del_done, NULL) == 0);
	sl_ut_poll(g_thread);
	CU_ASSERT(g_del_done == 1 && g_del_rc == 0);
	CU_ASSERT(sl_bdev_get_by_name("Mbad") == NULL);
}

static void
test_malloc_io_and_allocation(void)
{
	struct malloc_disk_opts o = {.name = "M0", .num_blocks = 2048, .block_size = 512};
	struct sl_bdev *bdev;
	struct sl_bdev_desc *desc;
	struct sl_io_channel *ch;
	struct io_result r = {0};
	struct sl_bdev_extent ext[8];
	uint8_t buf[4096], zero[4096] = {0};
	char err[256];
	int n;

	CU_ASSERT_FATAL(malloc_disk_create(&o, &bdev, err, sizeof(err)) == 0);
	CU_ASSERT_STRING_EQUAL(sl_bdev_get_product_name(bdev), "Malloc disk");
	CU_ASSERT_FATAL(sl_bdev_open("M0", true, event_cb, NULL, &desc) == 0);
	ch = sl_bdev_get_io_channel(desc);
	CU_ASSERT_FATAL(ch != NULL);

	/* Never written: reads zeroes, reported as a hole that reads as zero. */
	memset(buf, 0xaa, sizeof(buf));
	sl_bdev_read(desc, ch, buf, 0, 4096, io_done, &r);
	sl_ut_poll(g_thread);
	CU_ASSERT(r.count == 1 && r.status == 0 && memcmp(buf, zero, 4096) == 0);
	n = sl_bdev_get_allocation(desc, 0, 1024 * 1024, ext, 8);
	CU_ASSERT(n == 1 && ext[0].flags == (SL_BDEV_EXTENT_HOLE | SL_BDEV_EXTENT_ZERO));
	CU_ASSERT(ext[0].length == 1024 * 1024);

	memset(buf, 0x5c, sizeof(buf));
	sl_bdev_write(desc, ch, buf, 8192, 4096, io_done, &r);
	sl_ut_poll(g_thread);
	CU_ASSERT(r.count == 2 && r.status == 0);
	n = sl_bdev_get_allocation(desc, 0, 1024 * 1024, ext, 8);
	CU_ASSERT_FATAL(n == 3);
	CU_ASSERT(ext[0].offset == 0 && ext[0].length == 8192 && ext[0].flags != 0);
	CU_ASSERT(ext[1].offset == 8192 && ext[1].length == 4096 && ext[1].flags == 0);
	CU_ASSERT(ext[2].offset == 12288 && ext[2].flags != 0);
	/* Clipped to the range asked, at any alignment. */
	n = sl_bdev_get_allocation(desc, 9000, 100, ext, 8);
	CU_ASSERT(n == 1 && ext[0].offset == 9000 && ext[0].length == 100 && ext[0].flags == 0);

	/* A partial unmap keeps the chunk as data but reads zero where unmapped. */
	sl_bdev_unmap(desc, ch, 8192, 512, io_done, &r);
	sl_ut_poll(g_thread);
	sl_bdev_read(desc, ch, buf, 8192, 4096, io_done, &r);
	sl_ut_poll(g_thread);
	CU_ASSERT(r.count == 4 && r.status == 0);
	CU_ASSERT(memcmp(buf, zero, 512) == 0 && buf[512] == 0x5c);
	n = sl_bdev_get_allocation(desc, 8192, 4096, ext, 8);
	CU_ASSERT(n == 1 && ext[0].flags == 0);
	/* Write-zeroes over the whole chunk makes it a hole again. */
	sl_bdev_write_zeroes(desc, ch, 8192, 4096, io_done, &r);
	sl_ut_poll(g_thread);
	CU_ASSERT(r.count == 5 && r.status == 0);
	n = sl_bdev_get_allocation(desc, 0, 1024 * 1024, ext, 8);
	CU_ASSERT(n == 1 && ext[0].flags == (SL_BDEV_EXTENT_HOLE | SL_BDEV_EXTENT_ZERO));
	sl_bdev_read(desc, ch, buf, 8192, 4096, io_done, &r);
	sl_ut_poll(g_thread);
	CU_ASSERT(memcmp(buf, zero, 4096) == 0);

	sl_put_io_channel(ch);
	sl_bdev_close(desc);
	g_del_done = 0;
	CU_ASSERT(malloc_disk_delete("M0", del_done, NULL) == 0);
	sl_ut_poll(g_thread);
	CU_ASSERT(g_del_done == 1);
}

/* A disk larger than twice the last-level cache (128 MiB here): writes of one buffer
 * take the streaming-store path, vectored ones memcpy; both read back, and a write
 * across two words of the allocation bitmap marks both. */
static void
test_malloc_large_writes(void)
{
	struct malloc_disk_opts o = {.name = "Mbig", .num_blocks = 32768, .block_size = 4096};
	struct sl_bdev_desc *desc;
	struct sl_io_channel *ch;
	struct sl_bdev *bdev;
	struct io_result r = {0};
	struct sl_bdev_extent ext[4];
	uint8_t *buf = malloc(3 * 65536), *back = malloc(3 * 65536);
	struct iovec iov[3];
	uint64_t off[] = {0, 4096, 12345ull * 4096, (32768ull - 16) * 4096};
	char err[256];
	size_t i;

	CU_ASSERT_FATAL(buf != NULL && back != NULL);
	CU_ASSERT_FATAL(malloc_disk_create(&o, &bdev, err, sizeof(err)) == 0);
	CU_ASSERT_FATAL(sl_bdev_open("Mbig", true, event_cb, NULL, &desc) == 0);
	ch = sl_bdev_get_io_channel(desc);
	CU_ASSERT_FATAL(ch != NULL);
	for (i = 0; i < 3 * 65536; i++) {
		buf[i] = (uint8_t)(i * 13 + (i >> 12));
	}
	for (i = 0; i < SL_COUNTOF(off); i++) {
		/* 64 KiB from an odd address: the streaming copy loads unaligned. */
		sl_bdev_write(desc, ch, buf + 1 + i, off[i], 65536, io_done, &r);
		sl_ut_poll(g_thread);
		memset(back, 0, 65536);
		sl_bdev_read(desc, ch, back, off[i], 65536, io_done, &r);
		sl_ut_poll(g_thread);
		CU_ASSERT(r.status == 0 && memcmp(back, buf + 1 + i, 65536) == 0);
	}
	CU_ASSERT(r.count == 2 * (int)SL_COUNTOF(off));
	/* Chunks 63 and 64: two bitmap words. */
	sl_bdev_write(desc, ch, buf, 63ull * 4096 + 8 * 1024 * 1024, 8192, io_done, &r);
	sl_ut_poll(g_thread);
	CU_ASSERT(sl_bdev_get_allocation(desc, 8 * 1024 * 1024, 65 * 4096, ext, 4) == 2);
	CU_ASSERT(ext[0].length == 63 * 4096 && ext[1].flags == 0 && ext[1].length == 8192);
	/* Vectored, three uneven pieces: the memcpy path. */
	iov[0] = (struct iovec){buf + 65536, 1000};
	iov[1] = (struct iovec){buf + 70000, 7192};
	iov[2] = (struct iovec){buf + 100000, 8192};
	sl_bdev_writev(desc, ch, iov, 3, 1ull << 26, 16384, io_done, &r);
	sl_ut_poll(g_thread);
	sl_bdev_read(desc, ch, back, 1ull << 26, 16384, io_done, &r);
	sl_ut_poll(g_thread);
	CU_ASSERT(r.status == 0 && memcmp(back, buf + 65536, 1000) == 0 &&
		  memcmp(back + 1000, buf + 70000, 7192) == 0 &&
		  memcmp(back + 8192, buf + 100000, 8192) == 0);
	sl_put_io_channel(ch);
	sl_bdev_close(desc);
	g_del_done = 0;
	CU_ASSERT(malloc_disk_delete("Mbig", del_done, NULL) == 0);
	sl_ut_poll(g_thread);
	CU_ASSERT(g_del_done == 1);
	free(buf);
	free(back);
}

/* ---- null ----------------------------------------------------------------------- */

static void
test_null_io(void)
{
	struct null_disk_opts o = {.name = "N0", .num_blocks = 1024, .block_size = 4096};
	struct sl_bdev *bdev;
	struct sl_bdev_desc *desc;
	struct sl_io_channel *ch;
	struct io_result r = {0};
	struct sl_bdev_extent ext;
	uint8_t buf[8192], zero[8192] = {0};
	char err[256];

	CU_ASSERT_FATAL(null_disk_create(&o, &bdev, err, sizeof(err)) == 0);
	CU_ASSERT(null_disk_create(&o, &bdev, err, sizeof(err)) == -EEXIST);
	CU_ASSERT_FATAL(sl_bdev_open("N0", true, event_cb, NULL, &desc) == 0);
	ch = sl_bdev_get_io_channel(desc);
	memset(buf, 0xaa, sizeof(buf));
	sl_bdev_write(desc, ch, buf, 0, 8192, io_done, &r);
	sl_bdev_read(desc, ch, buf, 0, 8192, io_done, &r);
	sl_ut_poll(g_thread);
	CU_ASSERT(r.count == 2 && r.status == 0);
	CU_ASSERT(memcmp(buf, zero, sizeof(buf)) == 0);
	CU_ASSERT(sl_bdev_get_allocation(desc, 0, 4096, &ext, 1) == 1);
	CU_ASSERT(ext.flags == (SL_BDEV_EXTENT_HOLE | SL_BDEV_EXTENT_ZERO));
	sl_put_io_channel(ch);
	sl_bdev_close(desc);
	g_del_done = 0;
	CU_ASSERT(null_disk_delete("N0", del_done, NULL) == 0);
	sl_ut_poll(g_thread);
	CU_ASSERT(g_del_done == 1);
}

/* zero_reads false: reads leave the buffer alone (SPDK's null), and the extents no
 * longer claim zeroes; the RPC takes the flag and save_config writes it back. */
static void
test_null_no_zero_reads(void)
{
	struct null_disk_opts o = {.name = "NZ", .num_blocks = 64, .block_size = 512};
	struct sl_bdev_desc *desc;
	struct sl_io_channel *ch;
	struct sl_bdev *bdev;
	struct io_result r = {0};
	struct sl_bdev_extent ext;
	uint8_t buf[1024];
	json_t *resp, *cfg, *params = NULL;
	char err[256];
	size_t i, j;

	o.no_zero_reads = true;
	CU_ASSERT_FATAL(null_disk_create(&o, &bdev, err, sizeof(err)) == 0);
	CU_ASSERT_FATAL(sl_bdev_open("NZ", false, event_cb, NULL, &desc) == 0);
	ch = sl_bdev_get_io_channel(desc);
	memset(buf, 0x3c, sizeof(buf));
	sl_bdev_read(desc, ch, buf, 0, sizeof(buf), io_done, &r);
	sl_ut_poll(g_thread);
	CU_ASSERT(r.count == 1 && r.status == 0);
	for (i = 0; i < sizeof(buf) && buf[i] == 0x3c; i++) {
	}
	CU_ASSERT(i == sizeof(buf));
	CU_ASSERT(sl_bdev_get_allocation(desc, 0, 512, &ext, 1) == 1);
	CU_ASSERT(ext.flags == SL_BDEV_EXTENT_HOLE);
	sl_put_io_channel(ch);
	sl_bdev_close(desc);
	g_del_done = 0;
	CU_ASSERT(null_disk_delete("NZ", del_done, NULL) == 0);
	sl_ut_poll(g_thread);
	CU_ASSERT(g_del_done == 1);

	resp = rpc("bdev_null_create", "{\"name\": \"NZ\", \"num_blocks\": 64, \"block_size\": "
				       "512, \"zero_reads\": 1}");
	CU_ASSERT(rpc_error_code(resp) == SL_JSONRPC_ERROR_INVALID_PARAMS);
	resp = rpc("bdev_null_create", "{\"name\": \"NZ\", \"num_blocks\": 64, \"block_size\": "
				       "512, \"zero_reads\": false}");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(resp, "result")), "NZ");
	resp = rpc("bdev_null_create", "{\"name\": \"NY\", \"num_blocks\": 64, \"block_size\": "
				       "512, \"zero_reads\": true}");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(resp, "result")), "NY");
	cfg = json_array();
	sl_subsystem_find("bdev")->write_config_json(cfg);
	for (j = 0; j < json_array_size(cfg); j++) {
		json_t *p = json_object_get(json_array_get(cfg, j), "params");
		const char *name = json_string_value(json_object_get(p, "name"));

		if (name != NULL && strcmp(name, "NZ") == 0) {
			params = p;
		} else if (name != NULL && strcmp(name, "NY") == 0) {
			/* The default is left out, as SPDK writes the call. */
			CU_ASSERT(json_object_get(p, "zero_reads") == NULL);
		}
	}
	CU_ASSERT_FATAL(params != NULL);
	CU_ASSERT(json_is_false(json_object_get(params, "zero_reads")));
	json_decref(cfg);
	resp = rpc("bdev_null_delete", "{\"name\": \"NZ\"}");
	CU_ASSERT(json_is_true(json_object_get(resp, "result")));
	resp = rpc("bdev_null_delete", "{\"name\": \"NY\"}");
	CU_ASSERT(json_is_true(json_object_get(resp, "result")));
}

/* ---- RPCs ----------------------------------------------------------------------- */

static void
test_rpc_malloc(void)
{
	json_t *resp, *b, *types;

	resp = rpc("bdev_malloc_create", "{\"num_blocks\": 64, \"block_size\": 1000}");
	CU_ASSERT(rpc_error_code(resp) == -EINVAL);
	CU_ASSERT(strstr(rpc_error_msg(resp), "1000") != NULL);
	resp = rpc("bdev_malloc_create", "{\"block_size\": 512}");
	CU_ASSERT(rpc_error_code(resp) == SL_JSONRPC_ERROR_INVALID_PARAMS);
	CU_ASSERT(strstr(rpc_error_msg(resp), "num_blocks") != NULL);
	resp = rpc("bdev_malloc_create",
		   "{\"name\": \"R0\", \"num_blocks\": 64, \"block_size\": 512, \"md_size\": 8}");
	CU_ASSERT(rpc_error_code(resp) == -ENOTSUP);
	CU_ASSERT(strstr(rpc_error_msg(resp), "md_size") != NULL);
	resp = rpc("bdev_malloc_create", "{\"name\": \"R0\", \"num_blocks\": 64, \"block_size\": "
					 "512, \"uuid\": \"not-a-uuid\"}");
	CU_ASSERT(rpc_error_code(resp) == -EINVAL);
	resp = rpc("bdev_malloc_create",
		   "{\"name\": \"R0\", \"num_blocks\": 64, \"block_size\": 512, \"uuid\": "
		   "\"0c2f9e4a-1b8d-4f6e-9a3b-5d7c8e9f0a1b\", \"optimal_io_boundary\": 8}");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(resp, "result")), "R0");
	resp = rpc("bdev_malloc_create",
		   "{\"name\": \"R0\", \"num_blocks\": 64, \"block_size\": 512}");
	CU_ASSERT(rpc_error_code(resp) == -EEXIST);
	CU_ASSERT(strstr(rpc_error_msg(resp), "bdev R0 already exists") != NULL);
	/* Without a name: MallocN. */
	resp = rpc("bdev_malloc_create", "{\"num_blocks\": 64, \"block_size\": 4096}");
	CU_ASSERT(strncmp(json_string_value(json_object_get(resp, "result")), "Malloc", 6) == 0);

	resp = rpc("bdev_get_bdevs", "{\"name\": \"R0\"}");
	b = json_array_get(json_object_get(resp, "result"), 0);
	CU_ASSERT_FATAL(b != NULL);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(b, "name")), "R0");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(b, "product_name")),
			       "Malloc disk");
	CU_ASSERT(json_integer_value(json_object_get(b, "block_size")) == 512);
	CU_ASSERT(json_integer_value(json_object_get(b, "num_blocks")) == 64);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(b, "uuid")),
			       "0c2f9e4a-1b8d-4f6e-9a3b-5d7c8e9f0a1b");
	CU_ASSERT(json_is_false(json_object_get(b, "claimed")));
	CU_ASSERT(json_is_array(json_object_get(b, "aliases")));
	CU_ASSERT(json_is_object(json_object_get(b, "driver_specific")));
	CU_ASSERT(json_is_object(json_object_get(b, "assigned_rate_limits")));
	types = json_object_get(b, "supported_io_types");
	CU_ASSERT(json_is_true(json_object_get(types, "read")));
	CU_ASSERT(json_is_true(json_object_get(types, "unmap")));
	CU_ASSERT(json_is_true(json_object_get(types, "write_zeroes")));
	CU_ASSERT(json_is_false(json_object_get(types, "nvme_io")));
	resp = rpc("bdev_get_bdevs", "{\"name\": \"nope\"}");
	CU_ASSERT(rpc_error_code(resp) == -ENODEV);
	resp = rpc("bdev_get_bdevs", NULL);
	CU_ASSERT(json_array_size(json_object_get(resp, "result")) == 2);
	resp = rpc("bdev_get_bdevs", "{\"bogus\": 1}");
	CU_ASSERT(rpc_error_code(resp) == SL_JSONRPC_ERROR_INVALID_PARAMS);

	resp = rpc("bdev_get_iostat", "{\"name\": \"R0\"}");
	CU_ASSERT(json_integer_value(
			  json_object_get(json_object_get(resp, "result"), "tick_rate")) > 0);
	b = json_array_get(json_object_get(json_object_get(resp, "result"), "bdevs"), 0);
	CU_ASSERT(b != NULL && json_object_get(b, "num_read_ops") != NULL);
	CU_ASSERT(json_object_get(b, "min_read_latency_ticks") != NULL);
	resp = rpc("bdev_get_iostat", "{\"name\": \"R0\", \"per_channel\": true}");
	CU_ASSERT(json_is_array(json_object_get(json_object_get(resp, "result"), "channels")));

	resp = rpc("bdev_malloc_delete", "{\"name\": \"nope\"}");
	CU_ASSERT(rpc_error_code(resp) == -ENODEV);
	CU_ASSERT(strstr(rpc_error_msg(resp), "nope") != NULL);
	resp = rpc("bdev_malloc_delete", "{\"name\": \"R0\"}");
	CU_ASSERT(json_is_true(json_object_get(resp, "result")));
	CU_ASSERT(sl_bdev_get_by_name("R0") == NULL);
}

static void
test_rpc_null_and_config(void)
{
	json_t *resp, *cfg, *params;
	size_t j;
	bool found = false;

	resp = rpc("bdev_null_create", "{\"num_blocks\": 64, \"block_size\": 512}");
	CU_ASSERT(rpc_error_code(resp) == SL_JSONRPC_ERROR_INVALID_PARAMS);
	resp = rpc("bdev_null_create",
		   "{\"name\": \"N1\", \"num_blocks\": 0, \"block_size\": 512}");
	CU_ASSERT(rpc_error_code(resp) == -EINVAL);
	resp = rpc("bdev_null_create",
		   "{\"name\": \"N1\", \"num_blocks\": 64, \"block_size\": 512}");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(resp, "result")), "N1");
	resp = rpc("bdev_null_create",
		   "{\"name\": \"N1\", \"num_blocks\": 64, \"block_size\": 512}");
	CU_ASSERT(rpc_error_code(resp) == -EEXIST);
	resp = rpc("bdev_get_bdevs", "{\"name\": \"N1\"}");
	CU_ASSERT_STRING_EQUAL(
		json_string_value(json_object_get(
			json_array_get(json_object_get(resp, "result"), 0), "product_name")),
		"Null disk");
	resp = rpc("bdev_null_resize", "{\"name\": \"N1\", \"new_size\": 1}");
	CU_ASSERT(json_is_true(json_object_get(resp, "result")));
	CU_ASSERT(sl_bdev_get_num_blocks(sl_bdev_get_by_name("N1")) == 2048);

	/* save_config: the bdev subsystem writes SPDK's create calls. The subsystem was
	 * not started through sl_subsystem_init_all here, so ask it directly. */
	cfg = json_array();
	sl_subsystem_find("bdev")->write_config_json(cfg);
	for (j = 0; j < json_array_size(cfg); j++) {
		json_t *call = json_array_get(cfg, j);

		if (strcmp(json_string_value(json_object_get(call, "method")),
			   "bdev_null_create") == 0) {
			params = json_object_get(call, "params");
			found = strcmp(json_string_value(json_object_get(params, "name")), "N1") ==
					0 &&
				json_integer_value(json_object_get(params, "num_blocks")) == 2048 &&
				json_integer_value(json_object_get(params, "block_size")) == 512 &&
				json_object_get(params, "uuid") != NULL;
		}
	}
	CU_ASSERT(found);
	json_decref(cfg);

	resp = rpc("bdev_null_delete", "{\"name\": \"N1\"}");
	CU_ASSERT(json_is_true(json_object_get(resp, "result")));
	resp = rpc("bdev_null_delete", "{\"name\": \"N1\"}");
	CU_ASSERT(rpc_error_code(resp) == -ENODEV);
	resp = rpc("bdev_set_options",
		   "{\"bdev_io_pool_size\": 65535, \"bdev_io_cache_size\": 256}");
	CU_ASSERT(json_is_true(json_object_get(resp, "result")));
	resp = rpc("bdev_set_options", "{\"bounce_buf_size\": 1000}");
	CU_ASSERT(rpc_error_code(resp) == SL_JSONRPC_ERROR_INVALID_PARAMS);
}

static int
suite_init(void)
{
	sl_rpc_set_state(SL_RPC_RUNTIME);
	return sl_ut_bdev_init("bdev_modules_ut", &g_thread);
}

static int
suite_fini(void)
{
	json_decref(g_resp);
	return sl_ut_bdev_fini(g_thread);
}

int
main(void)
{
	CU_pSuite suite = sl_ut_suite("bdev_modules", suite_init, suite_fini);

	CU_ADD_TEST(suite, test_malloc_create_errors);
	CU_ADD_TEST(suite, test_malloc_io_and_allocation);
	CU_ADD_TEST(suite, test_malloc_large_writes);
	CU_ADD_TEST(suite, test_null_io);
	CU_ADD_TEST(suite, test_null_no_zero_reads);
	CU_ADD_TEST(suite, test_rpc_malloc);
	CU_ADD_TEST(suite, test_rpc_null_and_config);
	return sl_ut_run();
}
