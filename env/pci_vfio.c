/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * PCI function access through vfio: the device fd comes from rte_vfio_setup_device(),
 * which also puts the function's IOMMU group into DPDK's default container (and maps
 * DPDK's memory into it, so rte_malloc memory is DMA-able). BARs and config space are
 * regions of the device fd (linux/vfio.h: VFIO_DEVICE_GET_REGION_INFO).
 *
 * DPDK's EAL opens its vfio container at rte_eal_init() when the vfio module is loaded,
 * whether or not --no-pci is given (rte_vfio_enable() in eal.c), so vfio-pci must be
 * loaded before sl_env_init(): contrib/setup.sh does it.
 */

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <rte_vfio.h>

#include "sluice/log.h"
#include "sluice/pci.h"
#include "sluice/util.h"
#include "env_internal.h"

#define PCI_NUM_BARS        6
#define PCI_CFG_COMMAND     0x04
#define PCI_CFG_BAR0        0x10
#define PCI_CMD_MEMORY      0x2
#define PCI_CMD_BUS_MASTER  0x4
#define PCI_BAR_IO          0x1
#define PCI_BAR_TYPE_MASK   0x6
#define PCI_BAR_TYPE_64     0x4
#define PCI_BAR_MEM_ADDR(v) ((v) & ~0xfULL)

struct pci_vfio_bar {
	void *addr;
	uint64_t len;
};

struct sl_pci_device {
	struct sl_pci_info info;
	/* The fd was taken from another process (sl_pci_device_attach_borrowed): DPDK
	 * knows nothing of it. */
	bool borrowed;
	char bdf[32];
	char sysfs_base[PATH_MAX];
	int fd;
	uint64_t cfg_offset;
	uint64_t cfg_size;
	struct pci_vfio_bar bars[PCI_NUM_BARS];
};

/* Refuse early, with the function and the fix named, what vfio would refuse obscurely. */
static int
pci_vfio_check(struct sl_pci_device *dev, const struct sl_pci_addr *addr)
{
	int rc;

	rc = sl_pci_get_info(addr, &dev->info);
	if (rc != 0) {
		SL_ERRLOG("PCI function %s not found under %s: %s", dev->bdf, dev->sysfs_base,
			  strerror(-rc));
		return rc;
	}
	if (strcmp(dev->info.driver, "vfio-pci") != 0) {
		SL_ERRLOG("PCI function %s is bound to %s, not vfio-pci: %s", dev->bdf,
			  dev->info.driver[0] != '\0' ? dev->info.driver : "no driver",
			  ENV_VFIO_FIX);
		return -ENODEV;
	}
	if (dev->info.iommu_group < 0) {
		SL_ERRLOG("PCI function %s has no IOMMU group: enable the IOMMU or vfio's "
			  "no-IOMMU mode, then %s",
			  dev->bdf, ENV_VFIO_FIX);
		return -ENODEV;
	}
	if (!env_eal_is_up()) {
		SL_ERRLOG("attaching PCI function %s needs sl_env_init() first", dev->bdf);
		return -EINVAL;
	}
	if (!sl_pci_vfio_available()) {
		SL_ERRLOG("cannot attach %s: vfio was not available when the environment started "
			  "(load vfio-pci before starting: %s)",
			  dev->bdf, ENV_VFIO_FIX);
		return -ENODEV;
	}
	return 0;
}

static int
pci_vfio_region_info(struct sl_pci_device *dev, uint32_t index, struct vfio_region_info **out)
{
	struct vfio_region_info *info, *big;

	info = calloc(1, sizeof(*info));
	if (info == NULL) {
		return -ENOMEM;
	}
	info->argsz = sizeof(*info);
	info->index = index;
	if (ioctl(dev->fd, VFIO_DEVICE_GET_REGION_INFO, info) != 0) {
		free(info);
		return -errno;
	}
	/* The kernel asks for a larger buffer when the region has capabilities. */
	if (info->argsz > sizeof(*info)) {
		big = realloc(info, info->argsz);
		if (big == NULL) {
			free(info);
			return -ENOMEM;
		}
		info = big;
		if (ioctl(dev->fd, VFIO_DEVICE_GET_REGION_INFO, info) != 0) {
			free(info);
			return -errno;
		}
	}
	*out = info;
	return 0;
}

static const struct vfio_info_cap_header *
pci_vfio_region_cap(const struct vfio_region_info *info, uint16_t id)
{
	const struct vfio_info_cap_header *hdr;
	uint32_t off;

	if (!(info->flags & VFIO_REGION_INFO_FLAG_CAPS) || info->argsz <= sizeof(*info)) {
		return NULL;
	}
	for (off = info->cap_offset; off != 0 && off + sizeof(*hdr) <= info->argsz;
	     off = hdr->next) {
		hdr = (const void *)((const char *)info + off);
		if (hdr->id == id) {
			return hdr;
		}
	}
	return NULL;
}

bool
sl_pci_vfio_available(void)
{
	return env_eal_is_up() && rte_vfio_is_enabled("vfio") == 1;
}

/* Config space through the device fd (either way of getting it). */
static int
pci_vfio_open_regions(struct sl_pci_device *dev, const struct vfio_device_info *dev_info)
{
	struct vfio_region_info *cfg;
	int rc;

	if (dev_info->num_regions <= VFIO_PCI_CONFIG_REGION_INDEX) {
		SL_ERRLOG("%s: vfio reports %u regions, no config space", dev->bdf,
			  dev_info->num_regions);
		return -ENODEV;
	}
	rc = pci_vfio_region_info(dev, VFIO_PCI_CONFIG_REGION_INDEX, &cfg);
	if (rc != 0) {
		SL_ERRLOG("%s: cannot get the config region: %s", dev->bdf, strerror(-rc));
		return rc;
	}
	dev->cfg_offset = cfg->offset;
	dev->cfg_size = cfg->size;
	free(cfg);
	return 0;
}

static int
pci_vfio_open(struct sl_pci_device *dev)
{
	struct vfio_device_info dev_info = {.argsz = sizeof(dev_info)};
	int rc;

	rc = rte_vfio_setup_device(dev->sysfs_base, dev->bdf, &dev->fd, &dev_info);
	if (rc != 0) {
		dev->fd = -1;
		SL_ERRLOG("vfio setup of %s (IOMMU group %d) failed%s: %s", dev->bdf,
			  dev->info.iommu_group, rc > 0 ? " (not managed by vfio)" : "",
			  ENV_VFIO_FIX);
		return rc > 0 ? -ENODEV : -EIO;
	}
	return pci_vfio_open_regions(dev, &dev_info);
}

struct sl_pci_device *
sl_pci_device_attach(const struct sl_pci_addr *addr)
{
	struct sl_pci_device *dev;
	int rc;

	dev = calloc(1, sizeof(*dev));
	if (dev == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	dev->fd = -1;
	sl_pci_addr_fmt(dev->bdf, sizeof(dev->bdf), addr);
	rc = pci_sysfs_devices_dir(dev->sysfs_base, sizeof(dev->sysfs_base));
	rc = rc ?: pci_vfio_check(dev, addr);
	rc = rc ?: pci_vfio_open(dev);
	if (rc != 0) {
		sl_pci_device_detach(dev);
		errno = -rc;
		return NULL;
	}
	return dev;
}

/*
 * A process that joined the secondaries of a dead primary has no vfio container of its
 * own (DPDK's secondaries get it from the primary), but the devices are open in the
 * live processes, with the group in their container and the memory mapped: take a
 * duplicate of a live process's device fd (pidfd_getfd(2), Linux 5.6; needs the
 * right to ptrace it, which root has).
 */
struct sl_pci_device *
sl_pci_device_attach_borrowed(const struct sl_pci_addr *addr, int pid, int fd)
{
	struct vfio_device_info dev_info = {.argsz = sizeof(dev_info)};
	struct sl_pci_device *dev;
	int pidfd, rc;

	dev = calloc(1, sizeof(*dev));
	if (dev == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	dev->fd = -1;
	dev->borrowed = true;
	sl_pci_addr_fmt(dev->bdf, sizeof(dev->bdf), addr);
	rc = pci_sysfs_devices_dir(dev->sysfs_base, sizeof(dev->sysfs_base));
	rc = rc ?: sl_pci_get_info(addr, &dev->info);
	if (rc == 0) {
		pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (pidfd < 0) {
			rc = -errno;
		} else {
			dev->fd = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
			rc = dev->fd < 0 ? -errno : 0;
			close(pidfd);
		}
		if (rc != 0) {
			SL_ERRLOG("%s: cannot take vfio device fd %d of process %d: %s", dev->bdf,
				  fd, pid, strerror(-rc));
		}
	}
	if (rc == 0 && ioctl(dev->fd, VFIO_DEVICE_GET_INFO, &dev_info) != 0) {
		rc = -errno;
		SL_ERRLOG("%s: fd %d of process %d is not a vfio device: %s", dev->bdf, fd, pid,
			  strerror(-rc));
	}
	rc = rc ?: pci_vfio_open_regions(dev, &dev_info);
	if (rc != 0) {
		sl_pci_device_detach(dev);
		errno = -rc;
		return NULL;
	}
	SL_NOTICELOG("%s: using the vfio device of process %d (fd %d)", dev->bdf, pid, fd);
	return dev;
}

int
sl_pci_device_get_fd(const struct sl_pci_device *dev)
{
	return dev->fd;
}

static void
pci_vfio_bar_unmap(struct pci_vfio_bar *bar)
{
	if (bar->addr != NULL) {
		munmap(bar->addr, bar->len);
		bar->addr = NULL;
		bar->len = 0;
	}
}

void
sl_pci_device_detach(struct sl_pci_device *dev)
{
	int i;

	if (dev == NULL) {
		return;
	}
	for (i = 0; i < PCI_NUM_BARS; i++) {
		pci_vfio_bar_unmap(&dev->bars[i]);
	}
	if (dev->fd >= 0) {
		/* DPDK drops the group from its container when its last device goes. */
		if (dev->borrowed || !env_eal_is_up() ||
		    rte_vfio_release_device(dev->sysfs_base, dev->bdf, dev->fd) != 0) {
			close(dev->fd);
		}
	}
	free(dev);
}

const struct sl_pci_info *
sl_pci_device_get_info(const struct sl_pci_device *dev)
{
	return &dev->info;
}

/* The BAR's bus address, from its config-space register(s). */
static int
pci_vfio_bar_phys(struct sl_pci_device *dev, uint32_t bar, uint64_t *phys)
{
	uint32_t lo, hi = 0;
	int rc;

	rc = sl_pci_device_cfg_read32(dev, &lo, PCI_CFG_BAR0 + bar * 4);
	if (rc != 0) {
		return rc;
	}
	if (lo & PCI_BAR_IO) {
		return -ENOTSUP;
	}
	if ((lo & PCI_BAR_TYPE_MASK) == PCI_BAR_TYPE_64) {
		if (bar + 1 >= PCI_NUM_BARS) {
			return -EINVAL;
		}
		rc = sl_pci_device_cfg_read32(dev, &hi, PCI_CFG_BAR0 + (bar + 1) * 4);
		if (rc != 0) {
			return rc;
		}
	}
	*phys = PCI_BAR_MEM_ADDR(((uint64_t)hi << 32) | lo);
	return 0;
}

/*
 * When the BAR holds the MSI-X table and the kernel cannot let it be mapped (no
 * interrupt remapping, e.g. no-IOMMU mode), only the sparse areas may be mapped:
 * reserve the whole BAR, then map the areas over the reservation.
 */
static void *
pci_vfio_bar_mmap_sparse(struct sl_pci_device *dev, const struct vfio_region_info *info,
			 const struct vfio_region_info_cap_sparse_mmap *sparse)
{
	const struct vfio_region_sparse_mmap_area *area;
	void *base, *p;
	uint32_t i;

	base = mmap(NULL, info->size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) {
		return MAP_FAILED;
	}
	for (i = 0; i < sparse->nr_areas; i++) {
		area = &sparse->areas[i];
		if (area->size == 0 || area->offset + area->size > info->size) {
			continue;
		}
		p = mmap((char *)base + area->offset, area->size, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_FIXED, dev->fd, (off_t)(info->offset + area->offset));
		if (p == MAP_FAILED) {
			munmap(base, info->size);
			return MAP_FAILED;
		}
	}
	return base;
}

static int
pci_vfio_bar_mmap(struct sl_pci_device *dev, uint32_t bar)
{
	const struct vfio_info_cap_header *sparse;
	struct vfio_region_info *info;
	void *addr;
	int rc;

	rc = pci_vfio_region_info(dev, VFIO_PCI_BAR0_REGION_INDEX + bar, &info);
	if (rc != 0) {
		return rc;
	}
	if (info->size == 0 || !(info->flags & VFIO_REGION_INFO_FLAG_MMAP)) {
		rc = info->size == 0 ? -ENOENT : -ENOTSUP;
		SL_ERRLOG("%s: BAR %u is %s", dev->bdf, bar,
			  rc == -ENOENT ? "not implemented" : "not mappable");
		free(info);
		return rc;
	}
	sparse = pci_vfio_region_cap(info, VFIO_REGION_INFO_CAP_SPARSE_MMAP);
	if (sparse != NULL &&
	    pci_vfio_region_cap(info, VFIO_REGION_INFO_CAP_MSIX_MAPPABLE) == NULL) {
		addr = pci_vfio_bar_mmap_sparse(dev, info, (const void *)sparse);
	} else {
		addr = mmap(NULL, info->size, PROT_READ | PROT_WRITE, MAP_SHARED, dev->fd,
			    (off_t)info->offset);
	}
	rc = addr == MAP_FAILED ? -errno : 0;
	if (rc == 0) {
		dev->bars[bar].addr = addr;
		dev->bars[bar].len = info->size;
	} else {
		SL_ERRLOG("%s: mmap of BAR %u failed: %s", dev->bdf, bar, strerror(-rc));
	}
	free(info);
	return rc;
}

void *
sl_pci_device_map_bar(struct sl_pci_device *dev, uint32_t bar, uint64_t *phys, uint64_t *size)
{
	uint64_t bus_addr = 0;
	int rc;

	if (bar >= PCI_NUM_BARS) {
		errno = EINVAL;
		return NULL;
	}
	rc = pci_vfio_bar_phys(dev, bar, &bus_addr);
	if (rc == 0 && dev->bars[bar].addr == NULL) {
		rc = pci_vfio_bar_mmap(dev, bar);
	}
	if (rc != 0) {
		errno = -rc;
		return NULL;
	}
	if (phys != NULL) {
		*phys = bus_addr;
	}
	if (size != NULL) {
		*size = dev->bars[bar].len;
	}
	return dev->bars[bar].addr;
}

int
sl_pci_device_unmap_bar(struct sl_pci_device *dev, uint32_t bar, void *addr)
{
	if (bar >= PCI_NUM_BARS || dev->bars[bar].addr == NULL || dev->bars[bar].addr != addr) {
		return -EINVAL;
	}
	pci_vfio_bar_unmap(&dev->bars[bar]);
	return 0;
}

static int
pci_vfio_cfg_check(struct sl_pci_device *dev, uint32_t len, uint32_t offset)
{
	if (dev->fd < 0) {
		return -ENODEV;
	}
	if (len == 0 || offset > dev->cfg_size || len > dev->cfg_size - offset) {
		return -EINVAL;
	}
	return 0;
}

int
sl_pci_device_cfg_read(struct sl_pci_device *dev, void *value, uint32_t len, uint32_t offset)
{
	ssize_t n;
	int rc;

	rc = pci_vfio_cfg_check(dev, len, offset);
	if (rc != 0) {
		return rc;
	}
	n = pread(dev->fd, value, len, (off_t)(dev->cfg_offset + offset));
	if (n < 0) {
		return -errno;
	}
	return (uint32_t)n == len ? 0 : -EIO;
}

int
sl_pci_device_cfg_write(struct sl_pci_device *dev, const void *value, uint32_t len, uint32_t offset)
{
	ssize_t n;
	int rc;

	rc = pci_vfio_cfg_check(dev, len, offset);
	if (rc != 0) {
		return rc;
	}
	n = pwrite(dev->fd, value, len, (off_t)(dev->cfg_offset + offset));
	if (n < 0) {
		return -errno;
	}
	return (uint32_t)n == len ? 0 : -EIO;
}

int
sl_pci_device_cfg_read32(struct sl_pci_device *dev, uint32_t *value, uint32_t offset)
{
	return sl_pci_device_cfg_read(dev, value, sizeof(*value), offset);
}

int
sl_pci_device_cfg_write32(struct sl_pci_device *dev, uint32_t value, uint32_t offset)
{
	return sl_pci_device_cfg_write(dev, &value, sizeof(value), offset);
}

int
sl_pci_device_enable_bus_master(struct sl_pci_device *dev)
{
	uint16_t cmd;
	int rc;

	/* 16-bit access: the status register above the command register is write-1-to-clear. */
	rc = sl_pci_device_cfg_read(dev, &cmd, sizeof(cmd), PCI_CFG_COMMAND);
	if (rc != 0) {
		return rc;
	}
	if ((cmd & (PCI_CMD_BUS_MASTER | PCI_CMD_MEMORY)) ==
	    (PCI_CMD_BUS_MASTER | PCI_CMD_MEMORY)) {
		return 0;
	}
	cmd |= PCI_CMD_BUS_MASTER | PCI_CMD_MEMORY;
	return sl_pci_device_cfg_write(dev, &cmd, sizeof(cmd), PCI_CFG_COMMAND);
}

bool
sl_pci_device_is_present(struct sl_pci_device *dev)
{
	uint32_t id;

	/* A surprise-removed function answers config reads with all ones. */
	return sl_pci_device_cfg_read32(dev, &id, 0) == 0 && id != UINT32_MAX;
}
