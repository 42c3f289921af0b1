/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * The NVMe driver in a few steps: attach a controller, allocate a qpair, write
 * "Hello world!" to LBA 0 of namespace 1, read it back, print it, detach.
 *
 * With --write FILE / --read FILE it instead copies a file onto the namespace from
 * --lba on, or reads --size bytes from there into a file (the VM tests compare such
 * data with what the kernel driver sees).
 */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/env.h"
#include "sluice/nvme.h"

struct hello_ctx {
	struct sl_nvme_ctrlr *ctrlr;
	struct sl_nvme_ns *ns;
	struct sl_nvme_qpair *qpair;
	bool done;
	bool failed;
};

static void
io_done(void *arg, const struct sl_nvme_cpl *cpl)
{
	struct hello_ctx *ctx = arg;
	char str[160];

	if (sl_nvme_cpl_is_error(cpl)) {
		sl_nvme_cpl_fmt(str, sizeof(str), cpl);
		fprintf(stderr, "I/O failed: %s\n", str);
		ctx->failed = true;
	}
	ctx->done = true;
}

/* Submit one command through fn and poll until it completes. */
static int
run_io(struct hello_ctx *ctx, bool write, void *buf, uint64_t lba, uint32_t count)
{
	int rc;

	ctx->done = false;
	ctx->failed = false;
	rc = write ? sl_nvme_ns_cmd_write(ctx->ns, ctx->qpair, buf, lba, count, io_done, ctx, 0)
		   : sl_nvme_ns_cmd_read(ctx->ns, ctx->qpair, buf, lba, count, io_done, ctx, 0);
	if (rc != 0) {
		fprintf(stderr, "submit failed: %s\n", strerror(-rc));
		return rc;
	}
	while (!ctx->done) {
		if (sl_nvme_qpair_process_completions(ctx->qpair, 0) < 0) {
			return -ENXIO;
		}
		sl_nvme_ctrlr_process_admin_completions(ctx->ctrlr);
	}
	return ctx->failed ? -EIO : 0;
}

/* Copy between a file and the namespace in chunks of the largest transfer. */
static int
copy_file(struct hello_ctx *ctx, const char *path, bool to_ns, uint64_t lba, uint64_t size)
{
	uint32_t ss = sl_nvme_ns_get_sector_size(ctx->ns);
	uint32_t chunk = sl_nvme_ns_get_max_io_xfer_size(ctx->ns);
	FILE *f = fopen(path, to_ns ? "rb" : "wb");
	uint8_t *buf = sl_dma_zmalloc(chunk, 4096, NULL);
	uint64_t done = 0;
	int rc = 0;

	if (f == NULL || buf == NULL) {
		fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
		rc = -errno;
		goto out;
	}
	for (;;) {
		size_t n = to_ns ? fread(buf, 1, chunk, f) : (size_t)SL_MIN(chunk, size - done);
		uint32_t sectors = (uint32_t)((n + ss - 1) / ss);

		if (n == 0) {
			break;
		}
		memset(buf + n, 0, (size_t)sectors * ss - n);
		rc = run_io(ctx, to_ns, buf, lba + done / ss, sectors);
		if (rc == 0 && !to_ns && fwrite(buf, 1, n, f) != n) {
			rc = -EIO;
		}
		if (rc != 0) {
			break;
		}
		done += n;
	}
	printf("%s %llu bytes %s namespace %u at LBA %llu\n", to_ns ? "wrote" : "read",
	       (unsigned long long)done, to_ns ? "to" : "from", sl_nvme_ns_get_id(ctx->ns),
	       (unsigned long long)lba);
out:
	if (f != NULL) {
		fclose(f);
	}
	sl_dma_free(buf);
	return rc;
}

static int
hello(struct hello_ctx *ctx)
{
	uint32_t ss = sl_nvme_ns_get_sector_size(ctx->ns);
	char *buf = sl_dma_zmalloc(ss, 4096, NULL);
	int rc;

	if (buf == NULL) {
		return -ENOMEM;
	}
	snprintf(buf, ss, "%s", "Hello world!\n");
	rc = run_io(ctx, true, buf, 0, 1);
	if (rc == 0) {
		memset(buf, 0, ss);
		rc = run_io(ctx, false, buf, 0, 1);
	}
	if (rc == 0) {
		printf("%s", buf);
		rc = strcmp(buf, "Hello world!\n") == 0 ? 0 : -EIO;
	}
	sl_dma_free(buf);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"trid", required_argument, NULL, 'r'},
		{"ns", required_argument, NULL, 'n'},
		{"write", required_argument, NULL, 'w'},
		{"read", required_argument, NULL, 'R'},
		{"lba", required_argument, NULL, 'l'},
		{"size", required_argument, NULL, 's'},
		{NULL, 0, NULL, 0},
	};
	struct sl_nvme_transport_id trid;
	struct sl_env_opts env_opts;
	struct hello_ctx ctx = {.ctrlr = NULL};
	const char *wfile = NULL, *rfile = NULL;
	uint64_t lba = 0, size = 0;
	uint32_t nsid = 1;
	int c, rc;

	memset(&trid, 0, sizeof(trid));
	while ((c = getopt_long(argc, argv, "r:n:", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (sl_nvme_transport_id_parse(&trid, optarg) != 0) {
				return 2;
			}
			break;
		case 'n':
			nsid = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'w':
			wfile = optarg;
			break;
		case 'R':
			rfile = optarg;
			break;
		case 'l':
			lba = strtoull(optarg, NULL, 0);
			break;
		case 's':
			size = strtoull(optarg, NULL, 0);
			break;
		default:
			fprintf(stderr,
				"usage: %s -r 'trtype:PCIe traddr:<BDF>' [-n nsid] "
				"[--write FILE | --read FILE --size N] [--lba N]\n",
				argv[0]);
			return 2;
		}
	}
	if (trid.traddr[0] == '\0') {
		fprintf(stderr, "-r 'trtype:PCIe traddr:<BDF>' is required\n");
		return 2;
	}
	sl_env_opts_init(&env_opts);
	env_opts.name = "sluice-nvme-hello-world";
	rc = sl_env_init(&env_opts);
	if (rc != 0) {
		fprintf(stderr, "cannot initialise the environment: %s\n", strerror(-rc));
		return 1;
	}
	ctx.ctrlr = sl_nvme_connect(&trid, NULL);
	if (ctx.ctrlr == NULL) {
		fprintf(stderr, "cannot attach %s: %s\n", trid.traddr, strerror(errno));
		sl_env_fini();
		return 1;
	}
	ctx.ns = sl_nvme_ctrlr_get_ns(ctx.ctrlr, nsid);
	ctx.qpair = sl_nvme_ctrlr_alloc_io_qpair(ctx.ctrlr, NULL);
	if (ctx.ns == NULL || !sl_nvme_ns_is_active(ctx.ns) || ctx.qpair == NULL) {
		fprintf(stderr, "no active namespace %u or no qpair\n", nsid);
		rc = -ENODEV;
	} else if (wfile != NULL) {
		rc = copy_file(&ctx, wfile, true, lba, 0);
	} else if (rfile != NULL) {
		rc = copy_file(&ctx, rfile, false, lba, size);
	} else {
		rc = hello(&ctx);
	}
	sl_nvme_ctrlr_free_io_qpair(ctx.qpair);
	sl_nvme_detach(ctx.ctrlr);
	sl_env_fini();
	return rc == 0 ? 0 : 1;
}
