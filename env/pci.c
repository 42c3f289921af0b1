/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * PCI addresses and enumeration through sysfs (<sysfs>/bus/pci/devices/<bdf>/...).
 *
 * Debian's DPDK has no PCI driver SDK, so this replaces the rte_pci bus scan. The
 * sysfs root is configurable (env_set_sysfs_root(), $SLUICE_SYSFS_ROOT) so unit tests
 * run against a fake tree.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sluice/pci.h"
#include "sluice/util.h"
#include "env_internal.h"

#define PCI_MAX_DOMAIN 0xffffffffu
#define PCI_MAX_BUS    0xffu
#define PCI_MAX_DEV    0x1fu
#define PCI_MAX_FUNC   0x7u

static int
pci_hex_digit(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return -1;
}

/* Parse 1..maxdigits hex digits at *p, no sign, no "0x", no spaces. */
static int
pci_parse_hex(const char **p, int maxdigits, uint32_t max, uint32_t *out)
{
	uint32_t v = 0;
	int n = 0, d;

	while ((d = pci_hex_digit(**p)) >= 0) {
		if (++n > maxdigits) {
			return -EINVAL;
		}
		v = v * 16 + (uint32_t)d;
		(*p)++;
	}
	if (n == 0 || v > max) {
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int
pci_expect(const char **p, char c)
{
	if (**p != c) {
		return -EINVAL;
	}
	(*p)++;
	return 0;
}

int
sl_pci_addr_parse(struct sl_pci_addr *addr, const char *str)
{
	uint32_t domain = 0, bus, dev, func;
	const char *p = str;
	int rc;

	if (str == NULL) {
		return -EINVAL;
	}
	/* Two colons: "domain:bus:dev.func"; one: "bus:dev.func" in domain 0. */
	if (strchr(str, ':') != strrchr(str, ':')) {
		rc = pci_parse_hex(&p, 8, PCI_MAX_DOMAIN, &domain);
		rc = rc ?: pci_expect(&p, ':');
		if (rc != 0) {
			return rc;
		}
	}
	rc = pci_parse_hex(&p, 2, PCI_MAX_BUS, &bus);
	rc = rc ?: pci_expect(&p, ':');
	rc = rc ?: pci_parse_hex(&p, 2, PCI_MAX_DEV, &dev);
	rc = rc ?: pci_expect(&p, '.');
	rc = rc ?: pci_parse_hex(&p, 1, PCI_MAX_FUNC, &func);
	if (rc != 0 || *p != '\0') {
		return -EINVAL;
	}
	addr->domain = domain;
	addr->bus = (uint8_t)bus;
	addr->dev = (uint8_t)dev;
	addr->func = (uint8_t)func;
	return 0;
}

int
sl_pci_addr_fmt(char *buf, size_t len, const struct sl_pci_addr *addr)
{
	int n;

	n = snprintf(buf, len, "%04x:%02x:%02x.%x", addr->domain, addr->bus, addr->dev, addr->func);
	return (n < 0 || (size_t)n >= len) ? -ENOSPC : 0;
}

static int
pci_cmp_u32(uint32_t a, uint32_t b)
{
	return (a > b) - (a < b);
}

int
sl_pci_addr_compare(const struct sl_pci_addr *a, const struct sl_pci_addr *b)
{
	int rc;

	rc = pci_cmp_u32(a->domain, b->domain);
	rc = rc ?: pci_cmp_u32(a->bus, b->bus);
	rc = rc ?: pci_cmp_u32(a->dev, b->dev);
	return rc ?: pci_cmp_u32(a->func, b->func);
}

int
pci_sysfs_devices_dir(char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/bus/pci/devices", env_sysfs_root());

	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

static int
pci_sysfs_path(char *buf, size_t len, const struct sl_pci_addr *addr, const char *attr)
{
	char dir[PATH_MAX], bdf[32];
	int n;

	if (pci_sysfs_devices_dir(dir, sizeof(dir)) != 0 ||
	    sl_pci_addr_fmt(bdf, sizeof(bdf), addr) != 0) {
		return -ENAMETOOLONG;
	}
	n = snprintf(buf, len, "%s/%s%s%s", dir, bdf, attr[0] != '\0' ? "/" : "", attr);
	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

int
pci_sysfs_read_attr(const struct sl_pci_addr *addr, const char *attr, char *buf, size_t len)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd, rc;

	rc = pci_sysfs_path(path, sizeof(path), addr, attr);
	if (rc != 0) {
		return rc;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return -errno;
	}
	n = read(fd, buf, len - 1);
	rc = n < 0 ? -errno : 0;
	close(fd);
	if (rc != 0) {
		return rc;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static int
pci_sysfs_read_ulong(const struct sl_pci_addr *addr, const char *attr, int base, long *value)
{
	char buf[64], *end;
	int rc;

	rc = pci_sysfs_read_attr(addr, attr, buf, sizeof(buf));
	if (rc != 0) {
		return rc;
	}
	errno = 0;
	*value = strtol(buf, &end, base);
	return (errno != 0 || end == buf || *end != '\0') ? -EINVAL : 0;
}

/* The last path component of the link <dev>/<attr>, "" when there is no link. */
static void
pci_sysfs_link_name(const struct sl_pci_addr *addr, const char *attr, char *buf, size_t len)
{
	char path[PATH_MAX], target[PATH_MAX];
	const char *slash;
	ssize_t n;

	buf[0] = '\0';
	if (pci_sysfs_path(path, sizeof(path), addr, attr) != 0) {
		return;
	}
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0) {
		return;
	}
	target[n] = '\0';
	slash = strrchr(target, '/');
	if ((size_t)snprintf(buf, len, "%s", slash != NULL ? slash + 1 : target) >= len) {
		buf[0] = '\0'; /* no driver or group has such a name: treat as none */
	}
}

static int
pci_read_ids(const struct sl_pci_addr *addr, struct sl_pci_id *id)
{
	long vendor, device, class_id, subv = 0, subd = 0;
	int rc;

	rc = pci_sysfs_read_ulong(addr, "vendor", 16, &vendor);
	rc = rc ?: pci_sysfs_read_ulong(addr, "device", 16, &device);
	rc = rc ?: pci_sysfs_read_ulong(addr, "class", 16, &class_id);
	if (rc != 0) {
		return rc;
	}
	/* Absent on some virtual functions: leave them zero. */
	pci_sysfs_read_ulong(addr, "subsystem_vendor", 16, &subv);
	pci_sysfs_read_ulong(addr, "subsystem_device", 16, &subd);
	id->vendor_id = (uint16_t)vendor;
	id->device_id = (uint16_t)device;
	id->subvendor_id = (uint16_t)subv;
	id->subdevice_id = (uint16_t)subd;
	id->class_id = (uint32_t)class_id & 0xffffffu;
	return 0;
}

int
sl_pci_get_info(const struct sl_pci_addr *addr, struct sl_pci_info *info)
{
	char path[PATH_MAX], group[32];
	struct stat st;
	long numa = -1;
	int rc;

	rc = pci_sysfs_path(path, sizeof(path), addr, "");
	if (rc != 0) {
		return rc;
	}
	if (stat(path, &st) != 0) {
		return -ENOENT;
	}
	memset(info, 0, sizeof(*info));
	info->addr = *addr;
	rc = pci_read_ids(addr, &info->id);
	if (rc != 0) {
		return rc == -ENOENT ? -ENOENT : -EIO;
	}
	pci_sysfs_read_ulong(addr, "numa_node", 10, &numa);
	info->numa_node = (int)numa;
	pci_sysfs_link_name(addr, "driver", info->driver, sizeof(info->driver));
	pci_sysfs_link_name(addr, "iommu_group", group, sizeof(group));
	info->iommu_group = group[0] != '\0' ? atoi(group) : -1;
	return 0;
}

static int
pci_addr_qsort_cmp(const void *a, const void *b)
{
	return sl_pci_addr_compare(a, b);
}

/* The functions present, sorted by address so callers see a stable order. */
static int
pci_list(struct sl_pci_addr **out, size_t *count)
{
	struct sl_pci_addr *addrs = NULL, *tmp;
	size_t n = 0, cap = 0;
	char dir[PATH_MAX];
	struct dirent *de;
	DIR *d;

	if (pci_sysfs_devices_dir(dir, sizeof(dir)) != 0) {
		return -ENAMETOOLONG;
	}
	d = opendir(dir);
	if (d == NULL) {
		return -errno;
	}
	while ((de = readdir(d)) != NULL) {
		if (n == cap) {
			cap = cap != 0 ? cap * 2 : 32;
			tmp = realloc(addrs, cap * sizeof(*addrs));
			if (tmp == NULL) {
				closedir(d);
				free(addrs);
				return -ENOMEM;
			}
			addrs = tmp;
		}
		if (sl_pci_addr_parse(&addrs[n], de->d_name) == 0) {
			n++;
		}
	}
	closedir(d);
	if (n > 0) {
		qsort(addrs, n, sizeof(*addrs), pci_addr_qsort_cmp);
	}
	*out = addrs;
	*count = n;
	return 0;
}

int
sl_pci_enumerate(uint32_t class_id, uint32_t class_mask, sl_pci_enum_cb cb, void *ctx)
{
	struct sl_pci_addr *addrs;
	struct sl_pci_info info;
	size_t n, i;
	int rc;

	rc = pci_list(&addrs, &n);
	if (rc != 0) {
		return rc;
	}
	for (i = 0; i < n && rc == 0; i++) {
		/* A function removed since the listing is not an error. */
		if (sl_pci_get_info(&addrs[i], &info) != 0) {
			continue;
		}
		if ((info.id.class_id & class_mask) != (class_id & class_mask)) {
			continue;
		}
		rc = cb(&info, ctx);
	}
	free(addrs);
	return rc;
}
