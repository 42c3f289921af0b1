/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * nbd_trivial: the trivial blocking NBD server, the benchmark's reference row. One
 * connection at a time on a Unix socket, one thread, blocking I/O: a request header is
 * read, a WRITE's payload read straight into the RAM disk, a READ answered with one
 * writev() from it. No checks beyond what keeps it in bounds, no flags, no options but
 * those libnbd needs to reach transmission (GO and INFO, with NBD_INFO_EXPORT; anything
 * else is refused with NBD_REP_ERR_UNSUP).
 *
 * It shows two things a real server is measured against: the client's own limit (it
 * does nothing but copy, so its throughput is what fio's nbd engine can drive), and
 * what the simplest design costs per I/O at a fixed rate (a read(), a write() and a
 * sleep per request).
 *
 *   nbd_trivial SOCKET_PATH SIZE_MIB
 *
 * Not a server to use: it trusts its client (beyond bounds), serves one export, and
 * exits on any error.
 */

#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define NBD_MAGIC        0x4e42444d41474943ull /* "NBDMAGIC" */
#define NBD_IHAVEOPT     0x49484156454f5054ull
#define NBD_REP_MAGIC    0x3e889045565a9ull
#define NBD_REQUEST      0x25609513u
#define NBD_SIMPLE_REPLY 0x67446698u

#define NBD_FLAG_FIXED_NEWSTYLE 1u
#define NBD_FLAG_NO_ZEROES      2u
#define NBD_FLAG_HAS_FLAGS      1u
#define NBD_OPT_ABORT           2u
#define NBD_OPT_INFO            6u
#define NBD_OPT_GO              7u
#define NBD_REP_ACK             1u
#define NBD_REP_INFO            3u
#define NBD_REP_ERR_UNSUP       0x80000001u
#define NBD_CMD_READ            0u
#define NBD_CMD_WRITE           1u
#define NBD_CMD_DISC            2u
#define NBD_EINVAL              22u

struct request {
	uint32_t magic;
	uint16_t flags;
	uint16_t type;
	uint64_t cookie;
	uint64_t offset;
	uint32_t length;
} __attribute__((packed));

struct reply {
	uint32_t magic;
	uint32_t error;
	uint64_t cookie;
} __attribute__((packed));

static uint8_t *g_disk;
static uint64_t g_size;

/* Read (out == NULL) into in, or write out, all of len bytes. */
static int
xfer(int fd, void *in, const void *out, size_t len)
{
	uint8_t *p = in;
	const uint8_t *q = out;

	while (len > 0) {
		ssize_t n = q != NULL ? write(fd, q, len) : read(fd, p, len);

		if (n <= 0) {
			if (n < 0 && errno == EINTR) {
				continue;
			}
			return -1;
		}
		if (q != NULL) {
			q += n;
		} else {
			p += n;
		}
		len -= (size_t)n;
	}
	return 0;
}

static int
opt_reply(int fd, uint32_t opt, uint32_t type, const void *data, uint32_t len)
{
	struct {
		uint64_t magic;
		uint32_t opt, type, len;
	} __attribute__((packed))
	h = {htobe64(NBD_REP_MAGIC), htobe32(opt), htobe32(type), htobe32(len)};

	if (xfer(fd, NULL, &h, sizeof(h)) != 0) {
		return -1;
	}
	return len > 0 ? xfer(fd, NULL, data, len) : 0;
}

/* \return 1 to go to transmission, 0 to read another option, -1 to close. */
static int
handle_option(int fd)
{
	struct {
		uint64_t magic;
		uint32_t opt, len;
	} __attribute__((packed)) h;
	uint8_t info[12];
	uint16_t tflags = htobe16(NBD_FLAG_HAS_FLAGS);
	uint64_t size = htobe64(g_size);
	uint32_t opt, len;
	char skip[4096];

	if (xfer(fd, &h, NULL, sizeof(h)) != 0 || be64toh(h.magic) != NBD_IHAVEOPT) {
		return -1;
	}
	opt = be32toh(h.opt);
	len = be32toh(h.len);
	while (len > 0) {
		uint32_t n = len < sizeof(skip) ? len : sizeof(skip);

		if (xfer(fd, skip, NULL, n) != 0) {
			return -1;
		}
		len -= n;
	}
	if (opt == NBD_OPT_ABORT) {
		return -1;
	}
	if (opt != NBD_OPT_GO && opt != NBD_OPT_INFO) {
		return opt_reply(fd, opt, NBD_REP_ERR_UNSUP, NULL, 0);
	}
	memset(info, 0, 2); /* NBD_INFO_EXPORT */
	memcpy(info + 2, &size, 8);
	memcpy(info + 10, &tflags, 2);
	if (opt_reply(fd, opt, NBD_REP_INFO, info, sizeof(info)) != 0 ||
	    opt_reply(fd, opt, NBD_REP_ACK, NULL, 0) != 0) {
		return -1;
	}
	return opt == NBD_OPT_GO;
}

static void
serve(int fd)
{
	struct {
		uint64_t magic, ihaveopt;
		uint16_t flags;
	} __attribute__((packed)) hello = {htobe64(NBD_MAGIC), htobe64(NBD_IHAVEOPT),
					   htobe16(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES)};
	struct request req;
	struct reply rep = {.magic = htobe32(NBD_SIMPLE_REPLY)};
	uint32_t cflags;
	int rc;

	if (xfer(fd, NULL, &hello, sizeof(hello)) != 0 || xfer(fd, &cflags, NULL, 4) != 0) {
		return;
	}
	while ((rc = handle_option(fd)) == 0) {
	}
	if (rc < 0) {
		return;
	}
	while (xfer(fd, &req, NULL, sizeof(req)) == 0 && be32toh(req.magic) == NBD_REQUEST) {
		uint16_t type = be16toh(req.type);
		uint64_t off = be64toh(req.offset);
		uint32_t len = be32toh(req.length);
		bool in_range = off <= g_size && len <= g_size - off;
		struct iovec iov[2] = {{&rep, sizeof(rep)}, {g_disk + off, len}};

		rep.cookie = req.cookie;
		rep.error = 0;
		if (type == NBD_CMD_DISC) {
			return;
		}
		if (type == NBD_CMD_WRITE) {
			if (!in_range) {
				return; /* cannot stay in sync without draining: just close */
			}
			if (xfer(fd, g_disk + off, NULL, len) != 0) {
				return;
			}
		} else if (type != NBD_CMD_READ || !in_range) {
			rep.error = htobe32(NBD_EINVAL);
		}
		if (writev(fd, iov, type == NBD_CMD_READ && rep.error == 0 ? 2 : 1) < 0) {
			return;
		}
	}
}

int
main(int argc, char **argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int lfd, fd;

	if (argc != 3 || strlen(argv[1]) >= sizeof(sa.sun_path) || atoi(argv[2]) <= 0) {
		fprintf(stderr, "usage: nbd_trivial SOCKET_PATH SIZE_MIB\n");
		return 2;
	}
	g_size = (uint64_t)atoi(argv[2]) << 20;
	g_disk = mmap(NULL, g_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (g_disk == MAP_FAILED) {
		perror("nbd_trivial: mmap");
		return 1;
	}
	memset(g_disk, 0, g_size);
	strcpy(sa.sun_path, argv[1]);
	unlink(argv[1]);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 4) != 0) {
		perror("nbd_trivial: socket");
		return 1;
	}
	for (;;) {
		fd = accept(lfd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR) {
				continue;
			}
			perror("nbd_trivial: accept");
			return 1;
		}
		serve(fd);
		close(fd);
	}
}
