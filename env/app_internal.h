/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/* Private declarations shared by app.c and framework_rpc.c. */
#ifndef SLUICE_APP_INTERNAL_H
#define SLUICE_APP_INTERNAL_H

/*
 * Called by sl_app_start(): the reference makes the linker keep framework_rpc.o, and
 * with it the constructors that register the framework methods, when sluice_env is
 * linked as an ordinary archive.
 */
void app_rpc_link(void);

#endif /* SLUICE_APP_INTERNAL_H */
