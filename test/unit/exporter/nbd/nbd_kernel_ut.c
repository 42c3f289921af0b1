/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * Unit tests of the kernel NBD export without a kernel: device paths, device choice
 * and re-bind rules over a fake /sys/block, the netlink messages (built, then parsed
 * back with libnl), and the start/stop/re-bind/replace flows with the kernel calls,
 * the bdev and the transmission engine replaced by fakes. Threads are polled by hand.
 */

#include <CUnit/Basic.h>
#include <stdio.h>
#include <sys/stat.h>

#include "exporter/nbd/nbd_kernel.c"
#include "exporter/nbd/nbd_kernel_rpc.c"

/* ---- Fake bdev ---------------------------------------------------------------- */

struct sl_bdev {
	const char *name;
	uint32_t block_size;
	uint64_t num_blocks;
	int opens;
	bool claimed;
	bool write_cache;
};

struct sl_bdev_desc {
	struct sl_bdev *bdev;
};

static struct sl_bdev g_bdev = {.name = "Malloc0", .block_size = 4096, .num_blocks = 1024};
static struct sl_bdev_desc g_desc = {.bdev = &g_bdev};

int
sl_bdev_open(const char *name, bool write, sl_bdev_event_cb event_cb, void *event_ctx,
	     struct sl_bdev_desc **desc)
{
	if (strcmp(name, g_bdev.name) != 0) {
		return -ENODEV;
	}
	g_bdev.opens++;
	*desc = &g_desc;
	return 0;
}

void
sl_bdev_close(struct sl_bdev_desc *desc)
{
	g_bdev.opens--;
	g_bdev.claimed = false;
}

int
sl_bdev_claim(struct sl_bdev_desc *desc, const char *owner)
{
	if (g_bdev.claimed) {
		return -EPERM;
	}
	g_bdev.claimed = true;
	return 0;
}

struct sl_bdev *
sl_bdev_desc_get_bdev(struct sl_bdev_desc *desc)
{
	return desc->bdev;
}

const char *
sl_bdev_get_name(const struct sl_bdev *bdev)
{
	return bdev->name;
}

uint32_t
sl_bdev_get_block_size(const struct sl_bdev *bdev)
{
	return bdev->block_size;
}

uint64_t
sl_bdev_get_size(const struct sl_bdev *bdev)
{
	return bdev->block_size * bdev->num_blocks;
}

void
sl_bdev_get_uuid_str(const struct sl_bdev *bdev, char *buf, size_t len)
{
	snprintf(buf, len, "%s", "11111111-2222-3333-4444-555555555555");
}

bool
sl_bdev_has_write_cache(const struct sl_bdev *bdev)
{
	return bdev->write_cache;
}

#define OUR_BACKEND "sluice:Malloc0:11111111-2222-3333-4444-555555555555"

/* ---- Fake engine -------------------------------------------------------------- */

struct fake_conn {
	int fd;
	bool stopped;
	sl_nbd_conn_done_cb done_cb;
	void *cb_arg;
	struct sl_nbd_conn_opts opts;
};

static struct fake_conn g_fconns[16];
static int g_nfconns;

uint16_t
sl_nbd_tx_flags(struct sl_bdev_desc *desc, bool read_only, bool structured_replies)
{
	return SL_NBD_FLAG_HAS_FLAGS | SL_NBD_FLAG_SEND_FLUSH | SL_NBD_FLAG_SEND_FUA |
	       SL_NBD_FLAG_CAN_MULTI_CONN | SL_NBD_FLAG_SEND_CACHE |
	       (read_only ? SL_NBD_FLAG_READ_ONLY : SL_NBD_FLAG_SEND_TRIM);
}

struct sl_nbd_conn *
sl_nbd_conn_serve(int fd, struct sl_bdev_desc *desc, const struct sl_nbd_conn_opts *opts,
		  sl_nbd_conn_done_cb done_cb, void *cb_arg)
{
	struct fake_conn *c = &g_fconns[g_nfconns++];

	*c = (struct fake_conn){.fd = fd, .done_cb = done_cb, .cb_arg = cb_arg, .opts = *opts};
	c->opts.name = NULL;
	return (struct sl_nbd_conn *)c;
}

/* Done at once, inside the call: the harshest order the contract allows. */
void
sl_nbd_conn_stop(struct sl_nbd_conn *conn)
{
	struct fake_conn *c = (struct fake_conn *)conn;

	if (c == NULL || c->stopped) {
		return;
	}
	c->stopped = true;
	close(c->fd);
	c->done_cb(c->cb_arg, conn);
}

/* ---- Fake kernel -------------------------------------------------------------- */

static struct nbd_kreq g_last_req;
static int g_nreqs;
static int g_kernel_rc;
static int g_kernel_index = 7;

static int
fake_kernel_run(struct nbd_kreq *req)
{
	if (req->op == NBD_KOP_CONNECT && req->index < 0 && g_kernel_rc == 0) {
		req->index = g_kernel_index;
	}
	req->accepted = g_kernel_rc == 0 ? req->nfds : 0;
	g_last_req = *req;
	g_nreqs++;
	return g_kernel_rc;
}

/* ---- Harness ------------------------------------------------------------------ */

static struct sl_thread *g_app;
static char g_sysfs[64];

/* Poll the app thread for a while, letting helper pthreads run. */
static void
poll_some(int rounds)
{
	for (int i = 0; i < rounds; i++) {
		sl_thread_poll(g_app, 0, 0);
		usleep(20);
	}
}

static void
poll_until(bool *flag)
{
	for (int i = 0; i < 200000 && !*flag; i++) {
		sl_thread_poll(g_app, 0, 0);
		if (!*flag) {
			usleep(10);
		}
	}
	CU_ASSERT_FATAL(*flag);
}

static void
fake_dev(int index, const char *backend, uint64_t size)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/nbd%d", g_sysfs, index);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/nbd%d/pid", g_sysfs, index);
	unlink(path);
	snprintf(path, sizeof(path), "%s/nbd%d/backend", g_sysfs, index);
	unlink(path);
	if (backend == NULL) {
		return;
	}
	snprintf(path, sizeof(path), "%s/nbd%d/pid", g_sysfs, index);
	f = fopen(path, "w");
	fputs("1234\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/nbd%d/backend", g_sysfs, index);
	f = fopen(path, "w");
	fprintf(f, "%s\n", backend);
	fclose(f);
	snprintf(path, sizeof(path), "%s/nbd%d/size", g_sysfs, index);
	f = fopen(path, "w");
	fprintf(f, "%" PRIu64 "\n", size / 512);
	fclose(f);
}

static int
suite_init(void)
{
	char cmd[128];

	snprintf(g_sysfs, sizeof(g_sysfs), "/tmp/nbd_kernel_ut.XXXXXX");
	if (mkdtemp(g_sysfs) == NULL) {
		return -1;
	}
	g_sysfs_block = g_sysfs;
	g_nbd_kernel_run = fake_kernel_run;
	if (sl_thread_lib_init(NULL, 0) != 0) {
		return -1;
	}
	g_app = sl_thread_create("app", NULL);
	sl_set_thread(g_app);
	(void)cmd;
	return g_app != NULL ? 0 : -1;
}

static int
suite_fini(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", g_sysfs);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- Tests -------------------------------------------------------------------- */

static void
test_path_index(void)
{
	CU_ASSERT_EQUAL(nbd_path_index("/dev/nbd0"), 0);
	CU_ASSERT_EQUAL(nbd_path_index("/dev/nbd15"), 15);
	CU_ASSERT_EQUAL(nbd_path_index("/dev/nbd"), -EINVAL);
	CU_ASSERT_EQUAL(nbd_path_index("/dev/nbd01"), -EINVAL);
	CU_ASSERT_EQUAL(nbd_path_index("/dev/nbd1x"), -EINVAL);
	CU_ASSERT_EQUAL(nbd_path_index("/dev/nbd-1"), -EINVAL);
	CU_ASSERT_EQUAL(nbd_path_index("/dev/sda"), -EINVAL);
	CU_ASSERT_EQUAL(nbd_path_index(NULL), -EINVAL);
}

static void
test_select(void)
{
	uint64_t size = 4096 * 1024;
	bool rebind;
	int index;

	fake_dev(0, "sluice:Other:99999999-2222-3333-4444-555555555555", size);
	fake_dev(1, NULL, 0);
	fake_dev(2, OUR_BACKEND, size);
	fake_dev(3, NULL, 0);

	/* Ours first, wherever it is. */
	CU_ASSERT_EQUAL(nbd_select(-1, OUR_BACKEND, size, &index, &rebind), 0);
	CU_ASSERT_EQUAL(index, 2);
	CU_ASSERT_TRUE(rebind);
	/* Another backend's device is never taken; a free one is. */
	CU_ASSERT_EQUAL(nbd_select(0, OUR_BACKEND, size, &index, &rebind), -EBUSY);
	CU_ASSERT_EQUAL(nbd_select(3, OUR_BACKEND, size, &index, &rebind), 0);
	CU_ASSERT_EQUAL(index, 3);
	CU_ASSERT_FALSE(rebind);
	CU_ASSERT_EQUAL(nbd_select(2, OUR_BACKEND, size, &index, &rebind), 0);
	CU_ASSERT_TRUE(rebind);
	CU_ASSERT_EQUAL(nbd_select(9, OUR_BACKEND, size, &index, &rebind), -ENODEV);
	/* Ours, but the bdev changed size: refuse. */
	CU_ASSERT_EQUAL(nbd_select(2, OUR_BACKEND, size * 2, &index, &rebind), -EINVAL);
	CU_ASSERT_EQUAL(nbd_select(-1, OUR_BACKEND, size * 2, &index, &rebind), -EINVAL);
	/* Not ours anywhere: the first free one. */
	fake_dev(2, NULL, 0);
	CU_ASSERT_EQUAL(nbd_select(-1, OUR_BACKEND, size, &index, &rebind), 0);
	CU_ASSERT_EQUAL(index, 1);
	CU_ASSERT_FALSE(rebind);
}

/* Parse a built message back, as the kernel would. */
static void
parse_msg(struct nl_msg *msg, struct nlattr **attrs, int *fds, int *nfds)
{
	struct nlattr *item, *sock[NBD_SOCK_MAX + 1];
	int rem;

	CU_ASSERT_EQUAL_FATAL(genlmsg_parse(nlmsg_hdr(msg), 0, attrs, NBD_ATTR_MAX, NULL), 0);
	*nfds = 0;
	if (attrs[NBD_ATTR_SOCKETS] == NULL) {
		return;
	}
	nla_for_each_nested(item, attrs[NBD_ATTR_SOCKETS], rem)
	{
		CU_ASSERT_EQUAL(nla_type(item), NBD_SOCK_ITEM);
		CU_ASSERT_EQUAL(nla_parse_nested(sock, NBD_SOCK_MAX, item, NULL), 0);
		fds[(*nfds)++] = (int)nla_get_u32(sock[NBD_SOCK_FD]);
	}
}

static void
test_netlink_msgs(void)
{
	struct nbd_kreq req = {
		.op = NBD_KOP_CONNECT,
		.index = -1,
		.fds = {5, 6},
		.nfds = 2,
		.size = 1 << 30,
		.block_size = 4096,
		.flags = 0x103,
		.timeout_s = 30,
		.dead_timeout_s = 60,
		.backend = OUR_BACKEND,
	};
	struct nlattr *attrs[NBD_ATTR_MAX + 1];
	struct nl_msg *msg;
	int fds[4], nfds;

	msg = nlmsg_alloc();
	CU_ASSERT_EQUAL_FATAL(nbd_nl_build(msg, 42, &req, req.nfds), 0);
	CU_ASSERT_EQUAL(nlmsg_hdr(msg)->nlmsg_type, 42);
	CU_ASSERT_EQUAL(((struct genlmsghdr *)nlmsg_data(nlmsg_hdr(msg)))->cmd, NBD_CMD_CONNECT);
	parse_msg(msg, attrs, fds, &nfds);
	CU_ASSERT_PTR_NULL(attrs[NBD_ATTR_INDEX]); /* the kernel chooses */
	CU_ASSERT_EQUAL(nla_get_u64(attrs[NBD_ATTR_SIZE_BYTES]), 1 << 30);
	CU_ASSERT_EQUAL(nla_get_u64(attrs[NBD_ATTR_BLOCK_SIZE_BYTES]), 4096);
	CU_ASSERT_EQUAL(nla_get_u64(attrs[NBD_ATTR_SERVER_FLAGS]), 0x103);
	CU_ASSERT_EQUAL(nla_get_u64(attrs[NBD_ATTR_CLIENT_FLAGS]), 0);
	CU_ASSERT_EQUAL(nla_get_u64(attrs[NBD_ATTR_TIMEOUT]), 30);
	CU_ASSERT_EQUAL(nla_get_u64(attrs[NBD_ATTR_DEAD_CONN_TIMEOUT]), 60);
	CU_ASSERT_STRING_EQUAL(nla_get_string(attrs[NBD_ATTR_BACKEND_IDENTIFIER]), OUR_BACKEND);
	CU_ASSERT_EQUAL(nfds, 2);
	CU_ASSERT_EQUAL(fds[0], 5);
	CU_ASSERT_EQUAL(fds[1], 6);
	nlmsg_free(msg);

	/* RECONFIGURE: the device, the identity, new sockets; no geometry. */
	req.op = NBD_KOP_RECONFIGURE;
	req.index = 3;
	msg = nlmsg_alloc();
	CU_ASSERT_EQUAL_FATAL(nbd_nl_build(msg, 42, &req, 1), 0);
	parse_msg(msg, attrs, fds, &nfds);
	CU_ASSERT_EQUAL(nla_get_u32(attrs[NBD_ATTR_INDEX]), 3);
	CU_ASSERT_PTR_NULL(attrs[NBD_ATTR_SIZE_BYTES]);
	CU_ASSERT_PTR_NULL(attrs[NBD_ATTR_SERVER_FLAGS]);
	CU_ASSERT_STRING_EQUAL(nla_get_string(attrs[NBD_ATTR_BACKEND_IDENTIFIER]), OUR_BACKEND);
	CU_ASSERT_EQUAL(nfds, 1);
	nlmsg_free(msg);

	/* DISCONNECT: the index alone. */
	req.op = NBD_KOP_DISCONNECT;
	msg = nlmsg_alloc();
	CU_ASSERT_EQUAL_FATAL(nbd_nl_build(msg, 42, &req, 0), 0);
	parse_msg(msg, attrs, fds, &nfds);
	CU_ASSERT_EQUAL(nla_get_u32(attrs[NBD_ATTR_INDEX]), 3);
	CU_ASSERT_PTR_NULL(attrs[NBD_ATTR_BACKEND_IDENTIFIER]);
	CU_ASSERT_EQUAL(nfds, 0);
	nlmsg_free(msg);
}

static void
test_flags(void)
{
	uint16_t f;

	g_bdev.write_cache = false;
	f = nbd_kernel_flags(&g_desc, false);
	CU_ASSERT_FALSE(f &
			(SL_NBD_FLAG_SEND_FLUSH | SL_NBD_FLAG_SEND_FUA | SL_NBD_FLAG_SEND_CACHE));
	CU_ASSERT_TRUE(f & SL_NBD_FLAG_SEND_TRIM);
	CU_ASSERT_TRUE(f & SL_NBD_FLAG_CAN_MULTI_CONN);
	g_bdev.write_cache = true;
	f = nbd_kernel_flags(&g_desc, false);
	CU_ASSERT_TRUE(f & SL_NBD_FLAG_SEND_FLUSH);
	CU_ASSERT_TRUE(f & SL_NBD_FLAG_SEND_FUA);
	f = nbd_kernel_flags(&g_desc, true);
	CU_ASSERT_TRUE(f & SL_NBD_FLAG_READ_ONLY);
}

struct start_res {
	bool done;
	int rc;
	struct sl_nbd_disk *disk;
};

static void
start_done(void *cb_arg, struct sl_nbd_disk *disk, int rc)
{
	struct start_res *r = cb_arg;

	r->done = true;
	r->rc = rc;
	r->disk = disk;
}

static void
stop_done(void *cb_arg, int rc)
{
	*(bool *)cb_arg = true;
}

static struct sl_nbd_disk *
start(const char *dev, int expect_rc)
{
	struct sl_nbd_disk_opts opts;
	struct start_res r = {0};

	sl_nbd_disk_opts_init(&opts);
	opts.bdev_name = "Malloc0";
	opts.nbd_device = dev;
	sl_nbd_disk_start(&opts, start_done, &r);
	poll_until(&r.done);
	CU_ASSERT_EQUAL(r.rc, expect_rc);
	return r.disk;
}

static void
stop(struct sl_nbd_disk *disk)
{
	bool done = false;

	CU_ASSERT_EQUAL_FATAL(sl_nbd_disk_stop(disk, stop_done, &done), 0);
	poll_until(&done);
	CU_ASSERT_EQUAL(g_bdev.opens, 0);
}

static void
test_start_stop(void)
{
	struct sl_nbd_disk *disk;
	json_t *config;
	int before = g_nreqs;

	fake_dev(0, "sluice:Other:x", 1);
	fake_dev(1, NULL, 0);
	disk = start(NULL, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(disk);
	CU_ASSERT_EQUAL(g_nreqs, before + 1);
	CU_ASSERT_EQUAL(g_last_req.op, NBD_KOP_CONNECT);
	CU_ASSERT_EQUAL(g_last_req.index, 1);
	CU_ASSERT_EQUAL(g_last_req.nfds, 1); /* no reactors: one connection */
	CU_ASSERT_STRING_EQUAL(sl_nbd_disk_get_path(disk), "/dev/nbd1");
	CU_ASSERT_STRING_EQUAL(sl_nbd_disk_get_backend(disk), OUR_BACKEND);
	CU_ASSERT_FALSE(sl_nbd_disk_is_rebound(disk));
	CU_ASSERT_TRUE(g_bdev.claimed);
	CU_ASSERT_EQUAL(g_fconns[g_nfconns - 1].opts.min_block_size, 4096);
	CU_ASSERT_PTR_EQUAL(sl_nbd_disk_find("/dev/nbd1"), disk);
	CU_ASSERT_PTR_EQUAL(sl_nbd_disk_first(), disk);

	/* The same bdev twice, or the same device: refused. */
	start(NULL, -EEXIST);
	CU_ASSERT_EQUAL(g_nreqs, before + 1);

	config = json_array();
	sl_nbd_kernel_write_config_json(config);
	CU_ASSERT_EQUAL(json_array_size(config), 1);
	CU_ASSERT_STRING_EQUAL(
		json_string_value(json_object_get(json_array_get(config, 0), "method")),
		"nbd_start_disk");
	CU_ASSERT_STRING_EQUAL(
		json_string_value(json_object_get(
			json_object_get(json_array_get(config, 0), "params"), "nbd_device")),
		"/dev/nbd1");
	/* Defaults are not written: SPDK would refuse the keys. */
	CU_ASSERT_PTR_NULL(
		json_object_get(json_object_get(json_array_get(config, 0), "params"), "timeout"));
	json_decref(config);

	stop(disk);
	CU_ASSERT_EQUAL(g_last_req.op, NBD_KOP_DISCONNECT);
	CU_ASSERT_EQUAL(g_last_req.index, 1);
	CU_ASSERT_TRUE(g_fconns[g_nfconns - 1].stopped);
	CU_ASSERT_PTR_NULL(sl_nbd_disk_first());
}

static void
test_rebind_and_heal(void)
{
	struct sl_nbd_disk *disk;
	struct fake_conn *c;
	int before;

	fake_dev(1, NULL, 0);
	fake_dev(2, OUR_BACKEND, 4096 * 1024);
	disk = start("/dev/nbd2", 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(disk);
	CU_ASSERT_EQUAL(g_last_req.op, NBD_KOP_RECONFIGURE);
	CU_ASSERT_EQUAL(g_last_req.index, 2);
	CU_ASSERT_TRUE(sl_nbd_disk_is_rebound(disk));

	/* The kernel shuts a connection down (request timeout): it is replaced with a
	 * new socket through RECONFIGURE. */
	before = g_nreqs;
	c = &g_fconns[g_nfconns - 1];
	disk->conns[0].attached_at = 0;
	sl_nbd_conn_stop((struct sl_nbd_conn *)c);
	for (int i = 0; i < 10000 && (g_nreqs == before || disk->busy != 0); i++) {
		poll_some(1);
	}
	poll_some(100);
	CU_ASSERT_EQUAL(g_nreqs, before + 1);
	CU_ASSERT_EQUAL(g_last_req.op, NBD_KOP_RECONFIGURE);
	CU_ASSERT_EQUAL(g_last_req.nfds, 1);
	CU_ASSERT_EQUAL(disk->live, 1);
	CU_ASSERT_EQUAL(disk->heals, 1);

	/* A connection that ends right after being given: not replaced again. */
	before = g_nreqs;
	c = &g_fconns[g_nfconns - 1];
	g_kernel_rc = 0;
	sl_nbd_conn_stop((struct sl_nbd_conn *)c);
	for (int i = 0; i < 10000 && !TAILQ_EMPTY(&g_disks); i++) {
		poll_some(1);
	}
	/* Every connection gone: the device is let go (DISCONNECT), the disk ends. */
	CU_ASSERT_EQUAL(g_nreqs, before + 1);
	CU_ASSERT_EQUAL(g_last_req.op, NBD_KOP_DISCONNECT);
	CU_ASSERT_PTR_NULL(sl_nbd_disk_first());
	CU_ASSERT_EQUAL(g_bdev.opens, 0);
}

static void
test_failures(void)
{
	int conns = g_nfconns;

	fake_dev(1, NULL, 0);
	fake_dev(2, NULL, 0);
	/* The kernel refuses: the connections made are stopped, the bdev closed. */
	g_kernel_rc = -EBUSY;
	start("/dev/nbd1", -EBUSY);
	g_kernel_rc = 0;
	CU_ASSERT_EQUAL(g_nfconns, conns + 1);
	CU_ASSERT_TRUE(g_fconns[g_nfconns - 1].stopped);
	CU_ASSERT_EQUAL(g_bdev.opens, 0);
	CU_ASSERT_FALSE(g_bdev.claimed);
	CU_ASSERT_PTR_NULL(sl_nbd_disk_first());

	start("/dev/sda", -EINVAL);
	start("/dev/nbd9", -ENODEV);
	g_bdev.block_size = 8192;
	start("/dev/nbd1", -EINVAL);
	g_bdev.block_size = 4096;
	CU_ASSERT_EQUAL(g_bdev.opens, 0);
	/* The ioctl interface cannot re-bind. */
	fake_dev(2, OUR_BACKEND, 4096 * 1024);
	{
		struct sl_nbd_disk_opts opts;
		struct start_res r = {0};

		sl_nbd_disk_opts_init(&opts);
		opts.bdev_name = "Malloc0";
		opts.nbd_device = "/dev/nbd2";
		opts.use_ioctl = true;
		sl_nbd_disk_start(&opts, start_done, &r);
		poll_until(&r.done);
		CU_ASSERT_EQUAL(r.rc, -EBUSY);
	}
	CU_ASSERT_EQUAL(g_bdev.opens, 0);
}

int
main(void)
{
	CU_pSuite suite;
	unsigned int failures;

	if (CU_initialize_registry() != CUE_SUCCESS) {
		return 1;
	}
	suite = CU_add_suite("nbd_kernel", suite_init, suite_fini);
	CU_add_test(suite, "path_index", test_path_index);
	CU_add_test(suite, "select", test_select);
	CU_add_test(suite, "netlink_msgs", test_netlink_msgs);
	CU_add_test(suite, "flags", test_flags);
	CU_add_test(suite, "start_stop", test_start_stop);
	CU_add_test(suite, "rebind_and_heal", test_rebind_and_heal);
	CU_add_test(suite, "failures", test_failures);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures == 0 ? 0 : 1;
}
