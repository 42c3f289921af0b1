/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * sluiced: the Sluice daemon. Everything lives in the app framework (env/app.c) and in
 * the modules linked whole into this binary; main() only parses flags and runs.
 * Exit status: 0 after an orderly stop, 1 when start-up failed, 2 on bad flags.
 */

#include <stdio.h>
#include <string.h>

#include "sluice/app.h"

int
main(int argc, char **argv)
{
	struct sl_app_opts opts;
	int rc;

	sl_app_opts_init(&opts);
	opts.name = "sluiced";
	rc = sl_app_parse_args(argc, argv, &opts, NULL, NULL, NULL, NULL);
	if (rc != 0) {
		return rc > 0 ? 0 : 2;
	}
	rc = sl_app_start(&opts, NULL, NULL);
	if (rc != 0) {
		fprintf(stderr, "sluiced: exiting on error: %s\n", strerror(rc < 0 ? -rc : rc));
		return 1;
	}
	return 0;
}
