/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * The smallest program on the installed kit: the app framework loads a JSON config,
 * then looks the bdev up and stops. Built by install_test.sh with nothing but
 * `pkg-config --cflags --libs sluice`.
 */
#include <stdio.h>

#include <sluice/app.h>
#include <sluice/bdev.h>

static int g_found;

static void
demo_start(void *ctx)
{
	const char *name = ctx;

	g_found = sl_bdev_get_by_name(name) != NULL;
	printf("bdev %s: %s\n", name, g_found ? "found" : "missing");
	sl_app_stop(0);
}

int
main(int argc, char **argv)
{
	struct sl_app_opts opts;
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: %s CONFIG BDEV\n", argv[0]);
		return 2;
	}
	sl_app_opts_init(&opts);
	opts.name = "app_demo";
	opts.no_huge = true;
	opts.mem_size_mb = 256;
	opts.rpc_addr = NULL;
	opts.json_config = argv[1];
	rc = sl_app_start(&opts, demo_start, argv[2]);
	return rc == 0 && g_found ? 0 : 1;
}
