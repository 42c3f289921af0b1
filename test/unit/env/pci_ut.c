/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * PCI addresses, sysfs enumeration on a fake tree built in /tmp, and the vfio attach
 * error paths (no vfio or IOMMU needed).
 */

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/Basic.h>

/* Paths here are short temporary ones; truncation would fail the test anyway. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include "sl_ut.h"
#include "sluice/log.h"
#include "sluice/pci.h"
#include "env/env_internal.h"

static char g_root[PATH_MAX];
static char g_log[8192];

static void
capture_log(enum sl_log_level level, const char *line, void *ctx)
{
	size_t used = strlen(g_log);

	snprintf(g_log + used, sizeof(g_log) - used, "%s", line);
	fprintf(stderr, "%s\n", line);
}

/* The fake tree is built in the suite's init, outside any test: no CU_ASSERT there. */
#define SETUP_CHECK(c)                                                        \
	do {                                                                  \
		if (!(c)) {                                                   \
			fprintf(stderr, "fake sysfs setup failed: %s\n", #c); \
			exit(1);                                              \
		}                                                             \
	} while (0)

static void
write_file(const char *dir, const char *name, const char *content)
{
	char path[PATH_MAX + 64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	SETUP_CHECK(f != NULL);
	fputs(content, f);
	fclose(f);
}

static void
make_dir(const char *path)
{
	char cmd[PATH_MAX + 32];

	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", path);
	SETUP_CHECK(system(cmd) == 0);
}

/* One function as the kernel shows it: attributes, plus driver and group links. */
static void
fake_function(const char *bdf, const char *vendor, const char *device, const char *class_id,
	      const char *numa, const char *driver, int group)
{
	char dir[PATH_MAX], target[PATH_MAX], link[PATH_MAX + 32];

	snprintf(dir, sizeof(dir), "%s/devices/pci0000:00/%s", g_root, bdf);
	make_dir(dir);
	write_file(dir, "vendor", vendor);
	write_file(dir, "device", device);
	write_file(dir, "class", class_id);
	write_file(dir, "subsystem_vendor", "0x1af4\n");
	write_file(dir, "subsystem_device", "0x1100\n");
	write_file(dir, "numa_node", numa);
	if (driver != NULL) {
		snprintf(target, sizeof(target), "%s/bus/pci/drivers/%s", g_root, driver);
		make_dir(target);
		snprintf(link, sizeof(link), "%s/driver", dir);
		SETUP_CHECK(symlink(target, link) == 0);
	}
	if (group >= 0) {
		snprintf(target, sizeof(target), "%s/kernel/iommu_groups/%d", g_root, group);
		make_dir(target);
		snprintf(link, sizeof(link), "%s/iommu_group", dir);
		SETUP_CHECK(symlink(target, link) == 0);
	}
	/* bus/pci/devices/<bdf> is a relative link into devices/, as in sysfs. */
	snprintf(link, sizeof(link), "%s/bus/pci/devices/%s", g_root, bdf);
	snprintf(target, sizeof(target), "../../../devices/pci0000:00/%s", bdf);
	SETUP_CHECK(symlink(target, link) == 0);
}

static int
suite_init(void)
{
	char dir[PATH_MAX + 32];

	snprintf(g_root, sizeof(g_root), "/tmp/sluice_pci_ut.XXXXXX");
	if (mkdtemp(g_root) == NULL) {
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s/bus/pci/devices", g_root);
	make_dir(dir);
	fake_function("0000:00:04.0", "0x1b36\n", "0x0010\n", "0x010802\n", "0\n", "nvme", 7);
	fake_function("0000:00:03.0", "0x1af4\n", "0x1041\n", "0x020000\n", "-1\n", NULL, -1);
	fake_function("0000:01:00.0", "0x8086\n", "0x0e20\n", "0x088000\n", "1\n", "vfio-pci", 12);
	fake_function("0000:00:05.0", "0x1b36\n", "0x0010\n", "0x010802\n", "0\n", "vfio-pci", -1);
	fake_function("0001:00:00.0", "0x1b36\n", "0x0010\n", "0x010802\n", "0\n", NULL, 3);
	/* Not a function: must be skipped. */
	snprintf(dir, sizeof(dir), "%s/bus/pci/devices/notadevice", g_root);
	make_dir(dir);
	env_set_sysfs_root(g_root);
	sl_log_set_output(capture_log, NULL);
	return 0;
}

static int
suite_fini(void)
{
	char cmd[PATH_MAX + 32];

	sl_log_set_output(NULL, NULL);
	env_set_sysfs_root(NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_root);
	return system(cmd) == 0 ? 0 : -1;
}

static void
test_addr_parse(void)
{
	struct sl_pci_addr a;

	CU_ASSERT(sl_pci_addr_parse(&a, "0000:00:04.0") == 0);
	CU_ASSERT(a.domain == 0 && a.bus == 0 && a.dev == 4 && a.func == 0);
	CU_ASSERT(sl_pci_addr_parse(&a, "00:1f.7") == 0);
	CU_ASSERT(a.domain == 0 && a.bus == 0 && a.dev == 0x1f && a.func == 7);
	CU_ASSERT(sl_pci_addr_parse(&a, "0001:AF:02.3") == 0);
	CU_ASSERT(a.domain == 1 && a.bus == 0xaf && a.dev == 2 && a.func == 3);
	/* VMD domains pass 0xffff. */
	CU_ASSERT(sl_pci_addr_parse(&a, "10000:e1:00.0") == 0);
	CU_ASSERT(a.domain == 0x10000 && a.bus == 0xe1);

	CU_ASSERT(sl_pci_addr_parse(&a, NULL) == -EINVAL);
	CU_ASSERT(sl_pci_addr_parse(&a, "") == -EINVAL);
	CU_ASSERT(sl_pci_addr_parse(&a, "0000:00:04") == -EINVAL);
	CU_ASSERT(sl_pci_addr_parse(&a, "0000:00:20.0") == -EINVAL);
	CU_ASSERT(sl_pci_addr_parse(&a, "0000:00:04.8") == -EINVAL);
	CU_ASSERT(sl_pci_addr_parse(&a, "0000:100:04.0") == -EINVAL);
	CU_ASSERT(sl_pci_addr_parse(&a, "0000:00:04.0 ") == -EINVAL);
	CU_ASSERT(sl_pci_addr_parse(&a, " 0000:00:04.0") == -EINVAL);
	CU_ASSERT(sl_pci_addr_parse(&a, "0000::04.0") == -EINVAL);
	CU_ASSERT(sl_pci_addr_parse(&a, "-1:00:04.0") == -EINVAL);
	CU_ASSERT(sl_pci_addr_parse(&a, "0x00:04.0") == -EINVAL);
	CU_ASSERT(sl_pci_addr_parse(&a, "123456789:00:04.0") == -EINVAL);
	CU_ASSERT(sl_pci_addr_parse(&a, "0000:00:04.0:1") == -EINVAL);
	CU_ASSERT(sl_pci_addr_parse(&a, "notadevice") == -EINVAL);
}

static void
test_addr_fmt_compare(void)
{
	struct sl_pci_addr a = {.domain = 0, .bus = 0xaf, .dev = 0x1f, .func = 7}, b;
	char buf[32];

	CU_ASSERT(sl_pci_addr_fmt(buf, 13, &a) == 0);
	CU_ASSERT_STRING_EQUAL(buf, "0000:af:1f.7");
	CU_ASSERT(sl_pci_addr_fmt(buf, 12, &a) == -ENOSPC);
	CU_ASSERT(sl_pci_addr_parse(&b, "0000:af:1f.7") == 0);
	CU_ASSERT(sl_pci_addr_compare(&a, &b) == 0);

	b.func = 6;
	CU_ASSERT(sl_pci_addr_compare(&a, &b) > 0);
	CU_ASSERT(sl_pci_addr_compare(&b, &a) < 0);
	b = a;
	b.domain = 1;
	b.bus = 0;
	CU_ASSERT(sl_pci_addr_compare(&a, &b) < 0);
	b = a;
	b.dev = 0x1e;
	b.func = 7;
	CU_ASSERT(sl_pci_addr_compare(&a, &b) > 0);
}

struct enum_ctx {
	int count;
	struct sl_pci_info infos[8];
	int stop_after;
};

static int
enum_cb(const struct sl_pci_info *info, void *arg)
{
	struct enum_ctx *ctx = arg;

	if (ctx->count < 8) {
		ctx->infos[ctx->count] = *info;
	}
	ctx->count++;
	return ctx->stop_after != 0 && ctx->count == ctx->stop_after ? 42 : 0;
}

static void
test_enumerate(void)
{
	struct enum_ctx ctx = {0};
	char bdf[32];

	CU_ASSERT(sl_pci_enumerate(0, 0, enum_cb, &ctx) == 0);
	CU_ASSERT_FATAL(ctx.count == 5);
	/* Sorted by address whatever readdir's order. */
	sl_pci_addr_fmt(bdf, sizeof(bdf), &ctx.infos[0].addr);
	CU_ASSERT_STRING_EQUAL(bdf, "0000:00:03.0");
	sl_pci_addr_fmt(bdf, sizeof(bdf), &ctx.infos[4].addr);
	CU_ASSERT_STRING_EQUAL(bdf, "0001:00:00.0");

	CU_ASSERT(ctx.infos[0].id.vendor_id == 0x1af4);
	CU_ASSERT(ctx.infos[0].id.class_id == 0x020000);
	CU_ASSERT_STRING_EQUAL(ctx.infos[0].driver, "");
	CU_ASSERT(ctx.infos[0].iommu_group == -1);
	CU_ASSERT(ctx.infos[0].numa_node == -1);

	CU_ASSERT(ctx.infos[1].id.vendor_id == 0x1b36);
	CU_ASSERT(ctx.infos[1].id.device_id == 0x0010);
	CU_ASSERT(ctx.infos[1].id.subvendor_id == 0x1af4);
	CU_ASSERT(ctx.infos[1].id.subdevice_id == 0x1100);
	CU_ASSERT(ctx.infos[1].id.class_id == 0x010802);
	CU_ASSERT_STRING_EQUAL(ctx.infos[1].driver, "nvme");
	CU_ASSERT(ctx.infos[1].iommu_group == 7);
	CU_ASSERT(ctx.infos[1].numa_node == 0);

	CU_ASSERT_STRING_EQUAL(ctx.infos[3].driver, "vfio-pci");
	CU_ASSERT(ctx.infos[3].iommu_group == 12);
	CU_ASSERT(ctx.infos[3].numa_node == 1);

	/* NVMe by class code 01/08/02. */
	memset(&ctx, 0, sizeof(ctx));
	CU_ASSERT(sl_pci_enumerate(0x010802, 0xffffff, enum_cb, &ctx) == 0);
	CU_ASSERT(ctx.count == 3);
	/* Base class only (mass storage). */
	memset(&ctx, 0, sizeof(ctx));
	CU_ASSERT(sl_pci_enumerate(0x010000, 0xff0000, enum_cb, &ctx) == 0);
	CU_ASSERT(ctx.count == 3);

	/* The callback's non-zero value stops the walk and is returned. */
	memset(&ctx, 0, sizeof(ctx));
	ctx.stop_after = 2;
	CU_ASSERT(sl_pci_enumerate(0, 0, enum_cb, &ctx) == 42);
	CU_ASSERT(ctx.count == 2);
}

static void
test_get_info(void)
{
	struct sl_pci_addr a;
	struct sl_pci_info info;
	char saved[PATH_MAX];

	sl_pci_addr_parse(&a, "0000:01:00.0");
	CU_ASSERT(sl_pci_get_info(&a, &info) == 0);
	CU_ASSERT(info.id.vendor_id == 0x8086 && info.id.device_id == 0x0e20);
	CU_ASSERT(sl_pci_addr_compare(&info.addr, &a) == 0);
	sl_pci_addr_parse(&a, "0000:09:00.0");
	CU_ASSERT(sl_pci_get_info(&a, &info) == -ENOENT);

	/* $SLUICE_SYSFS_ROOT applies when no override is set. */
	snprintf(saved, sizeof(saved), "%s", env_sysfs_root());
	env_set_sysfs_root(NULL);
	setenv("SLUICE_SYSFS_ROOT", saved, 1);
	CU_ASSERT_STRING_EQUAL(env_sysfs_root(), saved);
	sl_pci_addr_parse(&a, "0000:01:00.0");
	CU_ASSERT(sl_pci_get_info(&a, &info) == 0);
	unsetenv("SLUICE_SYSFS_ROOT");
	CU_ASSERT_STRING_EQUAL(env_sysfs_root(), "/sys");
	env_set_sysfs_root(saved);
}

static void
test_enumerate_real_sysfs(void)
{
	struct enum_ctx ctx = {0};
	char saved[PATH_MAX];
	int rc;

	/* Whatever the host has, enumeration must not fail where sysfs exists. */
	snprintf(saved, sizeof(saved), "%s", env_sysfs_root());
	env_set_sysfs_root("/sys");
	rc = sl_pci_enumerate(0, 0, enum_cb, &ctx);
	CU_ASSERT(rc == 0 || access("/sys/bus/pci/devices", R_OK) != 0);
	env_set_sysfs_root(saved);
}

static struct sl_pci_device *
attach_str(const char *bdf)
{
	struct sl_pci_addr a;

	CU_ASSERT_FATAL(sl_pci_addr_parse(&a, bdf) == 0);
	g_log[0] = '\0';
	errno = 0;
	return sl_pci_device_attach(&a);
}

static void
test_attach_errors(void)
{
	/* Bound to the kernel's nvme driver: name the function, the driver and the fix. */
	CU_ASSERT(attach_str("0000:00:04.0") == NULL);
	CU_ASSERT(errno == ENODEV);
	CU_ASSERT(strstr(g_log, "0000:00:04.0") != NULL);
	CU_ASSERT(strstr(g_log, "nvme") != NULL);
	CU_ASSERT(strstr(g_log, "contrib/setup.sh") != NULL);

	/* Bound to nothing. */
	CU_ASSERT(attach_str("0001:00:00.0") == NULL);
	CU_ASSERT(errno == ENODEV);
	CU_ASSERT(strstr(g_log, "0001:00:00.0") != NULL);
	CU_ASSERT(strstr(g_log, "contrib/setup.sh") != NULL);

	/* Not there at all. */
	CU_ASSERT(attach_str("0000:09:00.0") == NULL);
	CU_ASSERT(errno == ENOENT);
	CU_ASSERT(strstr(g_log, "0000:09:00.0") != NULL);

	/* vfio-pci but no IOMMU group. */
	CU_ASSERT(attach_str("0000:00:05.0") == NULL);
	CU_ASSERT(errno == ENODEV);
	CU_ASSERT(strstr(g_log, "IOMMU group") != NULL);

	/* Usable, but the environment is down. */
	CU_ASSERT(attach_str("0000:01:00.0") == NULL);
	CU_ASSERT(errno == EINVAL);
	CU_ASSERT(strstr(g_log, "sl_env_init") != NULL);

	sl_pci_device_detach(NULL);
}

int
main(void)
{
	CU_pSuite suite = sl_ut_suite("pci", suite_init, suite_fini);

	CU_add_test(suite, "addr_parse", test_addr_parse);
	CU_add_test(suite, "addr_fmt_compare", test_addr_fmt_compare);
	CU_add_test(suite, "enumerate", test_enumerate);
	CU_add_test(suite, "get_info", test_get_info);
	CU_add_test(suite, "enumerate_real_sysfs", test_enumerate_real_sysfs);
	CU_add_test(suite, "attach_errors", test_attach_errors);
	return sl_ut_run();
}
