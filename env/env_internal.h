/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/** \file
 * Private declarations shared by env.c, env_mem.c, pci.c and pci_vfio.c, and
 * reached by their unit tests.
 */
#ifndef SLUICE_ENV_INTERNAL_H
#define SLUICE_ENV_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/pci.h"

/** Message appended to every "hugepages missing" error. */
#define ENV_HUGEPAGE_FIX "run 'contrib/setup.sh' (reserves hugepages) or start with --no-huge"
/** Message appended to every "device not usable through vfio" error. */
#define ENV_VFIO_FIX "bind it to vfio-pci with 'contrib/setup.sh'"

/**
 * \return the sysfs root ("/sys" unless $SLUICE_SYSFS_ROOT or env_set_sysfs_root()
 * says otherwise). Unit tests point it at a fake tree.
 */
const char *env_sysfs_root(void);
/** Override the sysfs root; NULL restores the default (and $SLUICE_SYSFS_ROOT). */
void env_set_sysfs_root(const char *root);

/**
 * Sum the free hugepages of every size under <sysfs>/kernel/mm/hugepages.
 * \return free bytes (0 when there are none or the directory is missing).
 */
uint64_t env_hugepages_free_bytes(void);

/**
 * Parse field 22 (starttime) of a /proc/<pid>/stat line. The comm field may hold
 * spaces and parentheses, so parsing starts after the last ')'.
 * \return the start time, or 0 when the line is malformed.
 */
uint64_t env_proc_stat_start_time(const char *line);

/** Called by env.c once the EAL is up: snapshot DPDK's virtual address ranges. */
void env_mem_eal_up(void);
/** Called by env.c just before the EAL goes down. */
void env_mem_eal_down(void);
/** \return whether the EAL is up (DPDK calls are allowed). */
bool env_eal_is_up(void);

/** Read one sysfs attribute of a PCI function into buf (newline stripped). \return 0/-errno. */
int pci_sysfs_read_attr(const struct sl_pci_addr *addr, const char *attr, char *buf, size_t len);
/** Format "<sysfs>/bus/pci/devices" into buf. \return 0 or -ENAMETOOLONG. */
int pci_sysfs_devices_dir(char *buf, size_t len);

#endif /* SLUICE_ENV_INTERNAL_H */
