/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/** \file
 * PCI functions: enumeration through sysfs, and access through vfio.
 *
 * Debian's DPDK lacks the PCI driver SDK headers, so there is no rte_pci driver:
 * functions are found in /sys/bus/pci/devices and opened with rte_vfio_setup_device().
 */
#ifndef SLUICE_PCI_H
#define SLUICE_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_pci_addr {
	uint32_t domain;
	uint8_t bus;
	uint8_t dev;
	uint8_t func;
};

struct sl_pci_id {
	uint16_t vendor_id;
	uint16_t device_id;
	uint16_t subvendor_id;
	uint16_t subdevice_id;
	uint32_t class_id; /* 24-bit class code */
};

struct sl_pci_info {
	struct sl_pci_addr addr;
	struct sl_pci_id id;
	char driver[64]; /* bound kernel driver, "" if none */
	int numa_node;
	int iommu_group; /* -1 if none */
};

/** Parse "0000:00:04.0" or "00:04.0". \return 0 or -EINVAL. */
int sl_pci_addr_parse(struct sl_pci_addr *addr, const char *str);
/** Format as "dddd:bb:dd.f" into buf (at least 13 bytes). \return 0 or -ENOSPC. */
int sl_pci_addr_fmt(char *buf, size_t len, const struct sl_pci_addr *addr);
int sl_pci_addr_compare(const struct sl_pci_addr *a, const struct sl_pci_addr *b);

/** Enumeration callback: return 0 to continue, non-zero to stop (returned). */
typedef int (*sl_pci_enum_cb)(const struct sl_pci_info *info, void *ctx);
/**
 * Enumerate the PCI functions in sysfs (in address order), optionally filtered by
 * class (class_mask bits of class_id must match). The sysfs root is /sys, or
 * $SLUICE_SYSFS_ROOT (tests). \return 0, the callback's non-zero value, or -errno.
 */
int sl_pci_enumerate(uint32_t class_id, uint32_t class_mask, sl_pci_enum_cb cb, void *ctx);
/** Read one function's information. \return 0, -ENOENT, -EIO (unreadable IDs). */
int sl_pci_get_info(const struct sl_pci_addr *addr, struct sl_pci_info *info);

struct sl_pci_device;
/**
 * Attach a function bound to vfio-pci (needs sl_env_init, with vfio-pci loaded before
 * it). \return the device or NULL with errno set: ENOENT (no such function), ENODEV
 * (not bound to vfio-pci, no IOMMU group, vfio unavailable), EINVAL (env down), EIO; the
 * log names the function and the fix (e.g. bind it with contrib/setup.sh).
 */
struct sl_pci_device *sl_pci_device_attach(const struct sl_pci_addr *addr);
/** Unmap BARs, close the vfio device. NULL is allowed. */
void sl_pci_device_detach(struct sl_pci_device *dev);
/** \return whether this process can attach vfio devices itself (a process that joined
 * the secondaries of a dead primary cannot: see sl_pci_device_attach_borrowed). */
bool sl_pci_vfio_available(void);
/**
 * Attach a function through a duplicate of vfio device fd `fd` of live process `pid`
 * (pidfd_getfd(2)): for processes without a vfio container of their own.
 * \return the device or NULL with errno set.
 */
struct sl_pci_device *sl_pci_device_attach_borrowed(const struct sl_pci_addr *addr, int pid,
						    int fd);
/** \return the vfio device fd (for others to borrow). */
int sl_pci_device_get_fd(const struct sl_pci_device *dev);
const struct sl_pci_info *sl_pci_device_get_info(const struct sl_pci_device *dev);
/**
 * Map a memory BAR (once; later calls return the same mapping). When the kernel keeps
 * the MSI-X table unmappable, the BAR is mapped around it (that range faults).
 * \param size receives its length; \param phys its bus address.
 * \return the mapping or NULL (errno: EINVAL, ENOENT (no such BAR), ENOTSUP (I/O BAR)).
 */
void *sl_pci_device_map_bar(struct sl_pci_device *dev, uint32_t bar, uint64_t *phys,
			    uint64_t *size);
/** \return 0 or -errno. */
int sl_pci_device_unmap_bar(struct sl_pci_device *dev, uint32_t bar, void *addr);
/** Config-space access. \return 0 or -errno. */
int sl_pci_device_cfg_read(struct sl_pci_device *dev, void *value, uint32_t len, uint32_t offset);
int sl_pci_device_cfg_write(struct sl_pci_device *dev, const void *value, uint32_t len,
			    uint32_t offset);
int sl_pci_device_cfg_read32(struct sl_pci_device *dev, uint32_t *value, uint32_t offset);
int sl_pci_device_cfg_write32(struct sl_pci_device *dev, uint32_t value, uint32_t offset);
/** Set the bus-master (and memory-space) bits of the command register. \return 0/-errno. */
int sl_pci_device_enable_bus_master(struct sl_pci_device *dev);
/** \return whether the function still answers (config reads not all ones). */
bool sl_pci_device_is_present(struct sl_pci_device *dev);

#endif /* SLUICE_PCI_H */
