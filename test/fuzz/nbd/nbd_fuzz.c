/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * libFuzzer harness of the NBD server: the handshake (option haggling) and the
 * transmission-phase request parser, through the real accept path of a Unix listener,
 * on a thread polled by hand, over a RAM bdev mock.
 *
 * The input is a list of records that the harness turns into a client's byte stream,
 * adding the magic numbers so that mutations reach past them:
 *   0 raw:      1-byte length, then that many bytes as they are
 *   1 flags:    the client's 32-bit flags (low byte from the input)
 *   2 option:   option number, 1-byte length, data (IHAVEOPT header added)
 *   3 request:  type, flags, 16-bit offset in blocks, 16-bit length in 64-byte units;
 *               a WRITE's payload follows from the input (request magic added)
 * The first byte picks the size of the pieces the stream is sent in (2^(low nibble)
 * bytes; 0: all at once), whether the bdev fails I/O or refuses it with -ENOMEM, and
 * whether the export "disk" is removed half-way through (and added back after). The
 * stream ends with a hang-up; the server must answer what it can, close that
 * connection alone, and leak nothing.
 */

#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "nbd_mock.h"

#include "exporter/nbd/nbd_conn.c"
#include "exporter/nbd/nbd_server.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_STREAM_MAX (256u << 10)

static struct sl_thread *g_thread;
static char g_path[108];
static uint8_t *g_stream;
static size_t g_len;
static bool g_removing;

static const struct sl_nbd_export_opts g_disk_opts = {.name = "disk", .bdev_name = "Mock0"};
static const struct sl_nbd_export_opts g_ro_opts = {
	.name = "ro", .bdev_name = "Mock0", .read_only = true};

static void
fuzz_init(void)
{
	struct sl_nbd_server_opts opts = {.unix_path = g_path};

	sl_log_set_print_level(SL_LOG_DISABLED);
	if (sl_thread_lib_init(NULL, 0) != 0) {
		abort();
	}
	g_thread = sl_thread_create("fuzz", NULL);
	sl_set_thread(g_thread);
	g_mock_bdev.num_blocks = 2048; /* 1 MiB */
	mock_init();
	snprintf(g_path, sizeof(g_path), "/tmp/sluice-nbd-fuzz-%d.sock", getpid());
	if (sl_nbd_export_add(&g_disk_opts) != 0 || sl_nbd_export_add(&g_ro_opts) != 0 ||
	    sl_nbd_server_start(&opts) != 0) {
		abort();
	}
	g_stream = malloc(FUZZ_STREAM_MAX);
}

static void
put(const void *p, size_t n)
{
	n = SL_MIN(n, FUZZ_STREAM_MAX - g_len);
	memcpy(g_stream + g_len, p, n);
	g_len += n;
}

static size_t
take(const uint8_t *data, size_t size, size_t *pos, size_t n, void *out)
{
	n = SL_MIN(n, size - *pos);
	memcpy(out, data + *pos, n);
	*pos += n;
	return n;
}

static void
build_request(const uint8_t *data, size_t size, size_t *pos)
{
	uint8_t f[6] = {0};
	struct sl_nbd_request r;
	uint32_t len;
	uint8_t buf[4096];

	take(data, size, pos, sizeof(f), f);
	len = (uint32_t)(f[4] | f[5] << 8) * 64;
	r.magic = htobe32(SL_NBD_REQUEST_MAGIC);
	r.type = htobe16(f[0] % 10);
	r.flags = htobe16(f[1] & 0x3f);
	r.cookie = htobe64(g_len);
	r.offset = htobe64((uint64_t)(f[2] | f[3] << 8) * 512);
	r.length = htobe32(len);
	put(&r, sizeof(r));
	if (f[0] % 10 == SL_NBD_CMD_WRITE) {
		while (len > 0 && g_len < FUZZ_STREAM_MAX) {
			size_t n = SL_MIN(len, sizeof(buf));

			memset(buf, 0, n);
			take(data, size, pos, n / 64, buf);
			put(buf, n);
			len -= (uint32_t)n;
		}
	}
}

static void
build_stream(const uint8_t *data, size_t size)
{
	size_t pos = 1;

	g_len = 0;
	while (pos < size && g_len < FUZZ_STREAM_MAX) {
		uint8_t kind = data[pos++] % 4, n = 0, opt = 0;
		uint8_t buf[256];
		uint32_t v;

		switch (kind) {
		case 0:
			take(data, size, &pos, 1, &n);
			put(buf, take(data, size, &pos, n, buf));
			break;
		case 1:
			take(data, size, &pos, 1, &n);
			v = htobe32(n);
			put(&v, sizeof(v));
			break;
		case 2: {
			struct sl_nbd_option o;

			take(data, size, &pos, 1, &opt);
			take(data, size, &pos, 1, &n);
			n = (uint8_t)take(data, size, &pos, n, buf);
			o.magic = htobe64(SL_NBD_OPTS_MAGIC);
			o.option = htobe32(opt);
			o.length = htobe32(n);
			put(&o, sizeof(o));
			put(buf, n);
			break;
		}
		default:
			build_request(data, size, &pos);
			break;
		}
	}
}

static int
client_connect(void)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", g_path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static bool
server_idle(void)
{
	struct sl_nbd_export *exp;

	if (!TAILQ_EMPTY(&g_nbd.hs_conns)) {
		return false;
	}
	TAILQ_FOREACH (exp, &g_nbd_exports, link) {
		if (exp->nconns != 0) {
			return false;
		}
	}
	return true;
}

/* Poll the server, throwing its answers away. */
static void
pump(int fd, int rounds)
{
	static uint8_t sink[65536];

	for (int i = 0; i < rounds; i++) {
		/* The fd pollers at once: sl_thread_poll looks at them every few µs only. */
		sl_thread_poll_fds(g_thread, 0);
		sl_thread_poll(g_thread, 0, 0);
		while (fd >= 0 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0) {
		}
		if (g_mock_waiter != NULL && (i & 7) == 0) {
			mock_wake_waiter();
		}
	}
}

static void
fuzz_removed(void *cb_arg, int rc)
{
	g_removing = false;
}

/* Put the exports back as they were, in the same order (the first is the default). */
static void
fuzz_restore_exports(void)
{
	if (sl_nbd_export_find("disk") != NULL) {
		return;
	}
	if (sl_nbd_export_remove("ro", NULL, NULL) != 0 || sl_nbd_export_add(&g_disk_opts) != 0 ||
	    sl_nbd_export_add(&g_ro_opts) != 0) {
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t chunk, off = 0;
	bool remove = false;
	int fd;

	if (g_thread == NULL) {
		fuzz_init();
	}
	if (size == 0) {
		return 0;
	}
	build_stream(data, size);
	chunk = (data[0] & 0x0f) != 0 ? (size_t)1 << (data[0] & 0x0f) : g_len;
	g_mock_fail_next = (data[0] & 0x40) ? -EIO : 0;
	g_mock_nomem = (data[0] & 0x80) ? 2 : 0;
	remove = (data[0] & 0x20) != 0;
	fd = client_connect();
	if (fd < 0) {
		abort();
	}
	while (off < g_len) {
		ssize_t n = send(fd, g_stream + off, SL_MIN(chunk, g_len - off), MSG_NOSIGNAL);

		if (n > 0) {
			off += (size_t)n;
		} else if (n < 0 && errno != EAGAIN) {
			break; /* the server hung up: fine */
		}
		pump(fd, 4);
		if (remove && off >= g_len / 2) {
			/* Its connections stop while requests may be in flight. */
			remove = false;
			g_removing = true;
			if (sl_nbd_export_remove("disk", fuzz_removed, NULL) != 0) {
				abort();
			}
		}
	}
	pump(fd, 64);
	close(fd);
	/* The hang-up: the connection must go, and nothing may be left behind. */
	for (int i = 0; i < 100000 && (!server_idle() || g_removing); i++) {
		pump(-1, 1);
		if (g_mock_waiter != NULL) {
			mock_wake_waiter();
		}
	}
	if (!server_idle() || g_removing) {
		abort(); /* a connection that never closes */
	}
	fuzz_restore_exports();
	g_mock_fail_next = 0;
	g_mock_nomem = 0;
	return 0;
}
