/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * The kernel NBD export: bdevs as /dev/nbdX.
 *
 * Start. The bdev is opened and claimed, a device is chosen (sysfs: the device this
 * bdev's backend identifier is on, else the given one, else the first unconfigured
 * one), one socketpair per connection is made and our ends are served by
 * sl_nbd_conn_serve on the NBD threads (one per reactor), and only then is the kernel
 * given its ends: NBD_CMD_CONNECT, or NBD_CMD_RECONFIGURE when the device is already
 * configured with our backend identifier (a previous sluiced died: re-bind).
 *
 * Kernel calls block (a DISCONNECT waits for the kernel's receive workers, and a
 * kernel sender may wait for socket space that only our connections free), so they
 * run on a short-lived helper pthread, never on a reactor: a connection served on the
 * app thread's reactor would otherwise wait for the very call that waits for it.
 * The helper posts its result back to the app thread.
 *
 * A connection that ends while its disk runs was shut down by the kernel (a request
 * timed out: the kernel marks the socket dead and resends its requests elsewhere).
 * It is replaced at once by a new socketpair given with NBD_CMD_RECONFIGURE, so one
 * slow request does not cost the device a queue for good.
 *
 * The ioctl interface (kernels before 4.12, or use_ioctl) sets the device up with
 * NBD_SET_* and holds it with NBD_DO_IT on a pthread of its own; it has no backend
 * identifier and no re-binding.
 */

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/nbd-netlink.h>
#include <linux/nbd.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include "sluice/bdev.h"
#include "sluice/log.h"
#include "sluice/nbd.h"
#include "sluice/nbd_kernel.h"
#include "sluice/nbd_spec.h"
#include "sluice/reactor.h"
#include "sluice/thread.h"
#include "sluice/util.h"

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif

SL_LOG_REGISTER_COMPONENT(nbd_kernel)

/* Longest backend identifier: "sluice:" + name + ":" + uuid. */
#define NBD_BACKEND_LEN (sizeof("sluice::") + SL_BDEV_MAX_NAME_LEN + SL_BDEV_UUID_STR_LEN)
/* Connections a disk may have (the kernel has no limit; this bounds our arrays). */
#define NBD_MAX_CONNS 64
/* Replacements of connections shut down by the kernel, per disk, before giving up. */
#define NBD_MAX_HEALS 64

enum nbd_disk_state {
	NBD_DISK_STARTING = 0,
	NBD_DISK_RUNNING,
	NBD_DISK_STOPPING,
};

/* One connection of a disk: a socketpair, our end served on an NBD thread. */
struct nbd_kconn {
	struct sl_nbd_disk *disk;
	uint32_t idx;
	struct sl_thread *thread;
	struct sl_nbd_conn *conn; /* on the connection's thread only */
	int ufd;                  /* our end until served (then the engine owns it) */
	int kfd;                  /* the kernel's end until the kernel holds it */
	bool live;                /* app thread: served and not yet gone */
	int serve_rc;
	uint64_t attached_at; /* ticks when the kernel took its end */
};

struct sl_nbd_disk {
	struct sl_nbd_disk_opts opts;
	char *bdev_name;
	char path[SL_NBD_DISK_PATH_LEN];
	char backend[NBD_BACKEND_LEN];
	int index; /* -1 until known */
	bool num_conns_set;
	bool rebind;
	bool netlink;
	bool removed;     /* the bdev is being removed */
	bool heal_failed; /* a connection could not be replaced: replace no more */
	enum nbd_disk_state state;
	struct sl_bdev_desc *desc;
	uint64_t size;
	uint32_t block_size;
	uint16_t tx_flags;
	struct nbd_kconn *conns;
	uint32_t busy; /* serve messages and kernel calls in flight */
	uint32_t live; /* connections served and not yet gone */
	uint32_t heals;
	int rc; /* the first failure while starting */

	sl_nbd_disk_start_cb start_cb;
	void *start_arg;
	sl_nbd_done_cb stop_cb;
	void *stop_arg;

	/* ioctl interface */
	int dev_fd;
	pthread_t doit_thread;
	bool doit_started;

	TAILQ_ENTRY(sl_nbd_disk) link;
};

static TAILQ_HEAD(, sl_nbd_disk) g_disks = TAILQ_HEAD_INITIALIZER(g_disks);
static struct sl_thread **g_threads;
static uint32_t g_nthreads;
static bool g_own_threads;
/* Where devices are looked at; tests point these at a fake tree. */
static const char *g_sysfs_block = "/sys/block";
static const char *g_dev_dir = "/dev";

/* ---- Small helpers ------------------------------------------------------------ */

void
sl_nbd_disk_opts_init(struct sl_nbd_disk_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->timeout_s = SL_NBD_DISK_DEFAULT_TIMEOUT;
	opts->dead_timeout_s = SL_NBD_DISK_DEFAULT_DEAD_TIMEOUT;
}

int
sl_nbd_kernel_set_io_flusher(void)
{
	static bool warned;
	int rc;

	/* Per task: every thread that serves I/O of a local NBD device needs it. */
	if (prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) == 0) {
		return 0;
	}
	rc = -errno;
	if (!warned) {
		warned = true;
		SL_WARNLOG("PR_SET_IO_FLUSHER: %s (needs Linux 5.6 and CAP_SYS_RESOURCE): a "
			   "filesystem on a local NBD device may deadlock this process under "
			   "memory pressure\n",
			   strerror(-rc));
	}
	return rc;
}

/* "/dev/nbd12" -> 12. \return the index, or -EINVAL. */
static int
nbd_path_index(const char *path)
{
	const char *p;
	char *end;
	long v;

	if (path == NULL || strncmp(path, "/dev/nbd", 8) != 0) {
		return -EINVAL;
	}
	p = path + 8;
	if (!isdigit((unsigned char)*p) || (p[0] == '0' && p[1] != '\0')) {
		return -EINVAL;
	}
	errno = 0;
	v = strtol(p, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0 || v > 1000000) {
		return -EINVAL;
	}
	return (int)v;
}

static void
nbd_backend_format(struct sl_bdev *bdev, char *buf, size_t len)
{
	char uuid[SL_BDEV_UUID_STR_LEN];

	sl_bdev_get_uuid_str(bdev, uuid, sizeof(uuid));
	snprintf(buf, len, "sluice:%s:%s", sl_bdev_get_name(bdev), uuid);
}

/* Read a sysfs attribute of nbd<index> into buf, without the trailing newline.
 * \return 0, or -errno (-ENOENT when the attribute does not exist). */
static int
nbd_sysfs_read(int index, const char *attr, char *buf, size_t len)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/nbd%d/%s", g_sysfs_block, index, attr);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return -errno;
	}
	n = read(fd, buf, len - 1);
	if (n < 0) {
		n = -errno;
		close(fd);
		return (int)n;
	}
	close(fd);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) {
		buf[--n] = '\0';
	}
	return 0;
}

static bool
nbd_sysfs_exists(int index)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/nbd%d", g_sysfs_block, index);
	return stat(path, &st) == 0;
}

/* A device is configured (connected, or holding its I/O for a re-bind) while the
 * kernel shows its "pid" attribute: it comes with the configuration and goes with it. */
static bool
nbd_sysfs_configured(int index)
{
	char buf[32];

	return nbd_sysfs_read(index, "pid", buf, sizeof(buf)) == 0;
}

static struct sl_nbd_disk *
disk_find_index(int index)
{
	struct sl_nbd_disk *disk;

	TAILQ_FOREACH (disk, &g_disks, link) {
		if (disk->index == index) {
			return disk;
		}
	}
	return NULL;
}

/* May a configured device be re-bound to this disk? \return 0 (yes), -EBUSY (another
 * backend or none), -EINVAL (ours but another size: refuse rather than corrupt). */
static int
nbd_check_rebind(int index, const char *backend, uint64_t size)
{
	char buf[NBD_BACKEND_LEN + 16];
	unsigned long long sectors;

	if (nbd_sysfs_read(index, "backend", buf, sizeof(buf)) != 0 || strcmp(buf, backend) != 0) {
		return -EBUSY;
	}
	if (nbd_sysfs_read(index, "size", buf, sizeof(buf)) == 0 &&
	    sscanf(buf, "%llu", &sectors) == 1 && sectors * 512 != size) {
		SL_ERRLOG("/dev/nbd%d: backend %s but %llu bytes, the bdev has %" PRIu64
			  ": not re-binding\n",
			  index, backend, sectors * 512, size);
		return -EINVAL;
	}
	return 0;
}

static int
nbd_index_cmp(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* The nbd<N> devices in sysfs, sorted. \return the count (at most max), or -errno. */
static int
nbd_sysfs_list(int *out, int max)
{
	struct dirent *de;
	DIR *dir;
	int n = 0;

	dir = opendir(g_sysfs_block);
	if (dir == NULL) {
		return -errno;
	}
	while ((de = readdir(dir)) != NULL && n < max) {
		char path[sizeof("/dev/") + sizeof(de->d_name)];
		int idx;

		snprintf(path, sizeof(path), "/dev/%s", de->d_name);
		idx = nbd_path_index(path);
		if (idx >= 0) {
			out[n++] = idx;
		}
	}
	closedir(dir);
	qsort(out, (size_t)n, sizeof(*out), nbd_index_cmp);
	return n;
}

/*
 * Choose the device: want >= 0 asks for /dev/nbd<want>; -1 for any. A configured
 * device tagged with our backend is re-bound (*rebind); a configured device of any
 * other backend is never touched. *index is -1 when no device is free (the kernel
 * then makes one on CONNECT).
 * \return 0, -ENODEV (no such device), -EBUSY, -EINVAL (size mismatch).
 */
static int
nbd_select(int want, const char *backend, uint64_t size, int *index, bool *rebind)
{
	int list[1024];
	int n, i, rc;

	*rebind = false;
	*index = -1;
	if (want >= 0) {
		if (!nbd_sysfs_exists(want)) {
			return -ENODEV;
		}
		if (nbd_sysfs_configured(want)) {
			rc = nbd_check_rebind(want, backend, size);
			if (rc != 0) {
				return rc;
			}
			*rebind = true;
		}
		*index = want;
		return 0;
	}
	n = nbd_sysfs_list(list, (int)SL_COUNTOF(list));
	if (n < 0) {
		/* No sysfs (or no nbd module yet): let the kernel choose. */
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (disk_find_index(list[i]) == NULL && nbd_sysfs_configured(list[i])) {
			rc = nbd_check_rebind(list[i], backend, size);
			if (rc == 0 || rc == -EINVAL) {
				*index = rc == 0 ? list[i] : -1;
				*rebind = rc == 0;
				return rc;
			}
		}
	}
	for (i = 0; i < n; i++) {
		if (disk_find_index(list[i]) == NULL && !nbd_sysfs_configured(list[i])) {
			*index = list[i];
			return 0;
		}
	}
	return 0;
}

/* Transmission flags for the kernel's client. */
static uint16_t
nbd_kernel_flags(struct sl_bdev_desc *desc, bool read_only)
{
	uint16_t flags = sl_nbd_tx_flags(desc, read_only, false);

	/* The kernel turns the device's write cache on with FLUSH (and FUA with FUA):
	 * without a volatile cache both are pure cost. */
	if (!sl_bdev_has_write_cache(sl_bdev_desc_get_bdev(desc))) {
		flags &= (uint16_t) ~(SL_NBD_FLAG_SEND_FLUSH | SL_NBD_FLAG_SEND_FUA);
	}
	/* The kernel's client never sends these. */
	flags &= (uint16_t) ~(SL_NBD_FLAG_SEND_CACHE | SL_NBD_FLAG_SEND_FAST_ZERO |
			      SL_NBD_FLAG_SEND_DF);
	return flags;
}

/* ---- Kernel calls: netlink ---------------------------------------------------- */

enum nbd_kop {
	NBD_KOP_CONNECT,
	NBD_KOP_RECONFIGURE,
	NBD_KOP_DISCONNECT,
};

/* One blocking kernel call, run on a helper pthread; done runs on the app thread. */
struct nbd_kreq {
	enum nbd_kop op;
	struct sl_nbd_disk *disk;
	bool netlink;
	int index; /* in: -1 = any (CONNECT); out: the device */
	int fds[NBD_MAX_CONNS];
	uint32_t nfds;
	uint32_t first_conn; /* conns[first_conn + i] owns fds[i] */
	uint64_t size;
	uint32_t block_size;
	uint16_t flags;
	uint32_t timeout_s;
	uint32_t dead_timeout_s;
	const char *backend;
	uint32_t accepted; /* RECONFIGURE: sockets the kernel took */
	int rc;
	void (*done)(struct nbd_kreq *req);
};

struct nbd_nl_ctx {
	int err;
	int index;
};

static int
nbd_nl_err_cb(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct nbd_nl_ctx *ctx = arg;

	ctx->err = e->error;
	return NL_STOP;
}

/* CONNECT's reply carries the index of the device the kernel chose. */
static int
nbd_nl_connect_reply(struct nl_msg *msg, void *arg)
{
	struct nbd_nl_ctx *ctx = arg;
	struct nlattr *attrs[NBD_ATTR_MAX + 1];

	if (genlmsg_parse(nlmsg_hdr(msg), 0, attrs, NBD_ATTR_MAX, NULL) == 0 &&
	    attrs[NBD_ATTR_INDEX] != NULL) {
		ctx->index = (int)nla_get_u32(attrs[NBD_ATTR_INDEX]);
	}
	return NL_OK;
}

/* Open a generic netlink socket and resolve the "nbd" family.
 * \return 0, or -EPROTONOSUPPORT (no nbd family: no module, or a kernel before 4.12). */
static int
nbd_nl_open(struct nl_sock **sk_out, int *family)
{
	struct nl_sock *sk;
	int rc;

	sk = nl_socket_alloc();
	if (sk == NULL) {
		return -ENOMEM;
	}
	rc = genl_connect(sk);
	if (rc < 0) {
		SL_ERRLOG("generic netlink: %s\n", nl_geterror(rc));
		nl_socket_free(sk);
		return -EPROTONOSUPPORT;
	}
	/* Resolving the family loads the nbd module if needed (genl family alias). */
	*family = genl_ctrl_resolve(sk, NBD_GENL_FAMILY_NAME);
	if (*family < 0) {
		nl_socket_free(sk);
		return -EPROTONOSUPPORT;
	}
	*sk_out = sk;
	return 0;
}

static int
nbd_nl_put_sockets(struct nl_msg *msg, const int *fds, uint32_t nfds)
{
	struct nlattr *socks, *item;

	socks = nla_nest_start(msg, NBD_ATTR_SOCKETS);
	if (socks == NULL) {
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < nfds; i++) {
		item = nla_nest_start(msg, NBD_SOCK_ITEM);
		if (item == NULL || nla_put_u32(msg, NBD_SOCK_FD, (uint32_t)fds[i]) < 0) {
			return -ENOMEM;
		}
		nla_nest_end(msg, item);
	}
	nla_nest_end(msg, socks);
	return 0;
}

/* Build the message of a request. \return 0 or -ENOMEM. */
static int
nbd_nl_build(struct nl_msg *msg, int family, const struct nbd_kreq *req, uint32_t nfds)
{
	uint8_t cmd = req->op == NBD_KOP_CONNECT       ? NBD_CMD_CONNECT
		      : req->op == NBD_KOP_RECONFIGURE ? NBD_CMD_RECONFIGURE
						       : NBD_CMD_DISCONNECT;
	int rc = 0;

	if (genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, 0, cmd, NBD_GENL_VERSION) ==
	    NULL) {
		return -ENOMEM;
	}
	if (req->index >= 0) {
		rc |= nla_put_u32(msg, NBD_ATTR_INDEX, (uint32_t)req->index);
	}
	if (req->op == NBD_KOP_DISCONNECT) {
		return rc < 0 ? -ENOMEM : 0;
	}
	if (req->op == NBD_KOP_CONNECT) {
		rc |= nla_put_u64(msg, NBD_ATTR_SIZE_BYTES, req->size);
		rc |= nla_put_u64(msg, NBD_ATTR_BLOCK_SIZE_BYTES, req->block_size);
		rc |= nla_put_u64(msg, NBD_ATTR_SERVER_FLAGS, req->flags);
	}
	/* No client flags: DESTROY_ON_DISCONNECT would lose the device index a re-bind
	 * looks for, and DISCONNECT_ON_CLOSE would end it with its last opener. */
	rc |= nla_put_u64(msg, NBD_ATTR_CLIENT_FLAGS, 0);
	if (req->timeout_s != 0) {
		rc |= nla_put_u64(msg, NBD_ATTR_TIMEOUT, req->timeout_s);
	}
	rc |= nla_put_u64(msg, NBD_ATTR_DEAD_CONN_TIMEOUT, req->dead_timeout_s);
	rc |= nla_put_string(msg, NBD_ATTR_BACKEND_IDENTIFIER, req->backend);
	if (rc < 0) {
		return -ENOMEM;
	}
	return nbd_nl_put_sockets(msg, req->fds, nfds);
}

/* Send one command and wait for its answer. \return 0 or the kernel's -errno. */
static int
nbd_nl_exec(struct nl_sock *sk, int family, const struct nbd_kreq *req, uint32_t nfds,
	    int *index_out)
{
	struct nbd_nl_ctx ctx = {.err = 0, .index = -1};
	struct nl_msg *msg;
	int rc;

	msg = nlmsg_alloc();
	if (msg == NULL) {
		return -ENOMEM;
	}
	rc = nbd_nl_build(msg, family, req, nfds);
	if (rc != 0) {
		nlmsg_free(msg);
		return rc;
	}
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, nbd_nl_connect_reply, &ctx);
	nl_socket_modify_err_cb(sk, NL_CB_CUSTOM, nbd_nl_err_cb, &ctx);
	rc = nl_send_sync(sk, msg); /* frees msg */
	if (rc < 0) {
		return ctx.err < 0 ? ctx.err : -EIO;
	}
	if (index_out != NULL) {
		*index_out = ctx.index;
	}
	return 0;
}

static int
nbd_nl_run(struct nbd_kreq *req)
{
	struct nl_sock *sk;
	int family, rc, index = -1;

	rc = nbd_nl_open(&sk, &family);
	if (rc != 0) {
		return rc;
	}
	if (req->op != NBD_KOP_RECONFIGURE) {
		rc = nbd_nl_exec(sk, family, req, req->nfds, &index);
		if (rc == 0 && req->op == NBD_KOP_CONNECT && index >= 0) {
			req->index = index;
		}
		req->accepted = rc == 0 ? req->nfds : 0;
	} else {
		/* One socket a call: the kernel fills only dead slots, and some kernels
		 * ignore sockets beyond them silently; stopping at the first refusal tells
		 * how many it took. */
		req->accepted = 0;
		for (uint32_t i = 0; i < req->nfds; i++) {
			struct nbd_kreq one = *req;

			one.fds[0] = req->fds[i];
			rc = nbd_nl_exec(sk, family, &one, 1, NULL);
			if (rc != 0) {
				break;
			}
			req->accepted++;
		}
		if (req->accepted > 0) {
			rc = 0;
		}
	}
	nl_socket_free(sk);
	return rc;
}

/* ---- Kernel calls: ioctls ----------------------------------------------------- */

static void *
nbd_doit_thread(void *arg)
{
	struct sl_nbd_disk *disk = arg;

	/* Returns on disconnect (ours or anyone's), or when every socket died. */
	if (ioctl(disk->dev_fd, NBD_DO_IT) < 0 && errno != EPIPE) {
		SL_DEBUGLOG(nbd_kernel, "%s: NBD_DO_IT: %s\n", disk->path, strerror(errno));
	}
	ioctl(disk->dev_fd, NBD_CLEAR_QUE);
	ioctl(disk->dev_fd, NBD_CLEAR_SOCK);
	return NULL;
}

static int
nbd_ioctl_connect(struct nbd_kreq *req)
{
	struct sl_nbd_disk *disk = req->disk;
	char path[PATH_MAX];
	int rc = 0;

	if (req->index < 0) {
		return -ENOSPC;
	}
	snprintf(path, sizeof(path), "%s/nbd%d", g_dev_dir, req->index);
	disk->dev_fd = open(path, O_RDWR | O_CLOEXEC);
	if (disk->dev_fd < 0) {
		return -errno;
	}
	if (ioctl(disk->dev_fd, NBD_SET_BLKSIZE, (unsigned long)req->block_size) < 0 ||
	    ioctl(disk->dev_fd, NBD_SET_SIZE_BLOCKS, (unsigned long)(req->size / req->block_size)) <
		    0 ||
	    (req->timeout_s != 0 &&
	     ioctl(disk->dev_fd, NBD_SET_TIMEOUT, (unsigned long)req->timeout_s) < 0) ||
	    ioctl(disk->dev_fd, NBD_SET_FLAGS, (unsigned long)req->flags) < 0) {
		rc = -errno;
	}
	for (uint32_t i = 0; rc == 0 && i < req->nfds; i++) {
		if (ioctl(disk->dev_fd, NBD_SET_SOCK, (unsigned long)req->fds[i]) < 0) {
			rc = -errno;
		}
	}
	if (rc == 0) {
		rc = -pthread_create(&disk->doit_thread, NULL, nbd_doit_thread, disk);
		disk->doit_started = rc == 0;
	}
	if (rc != 0) {
		ioctl(disk->dev_fd, NBD_CLEAR_SOCK);
		close(disk->dev_fd);
		disk->dev_fd = -1;
		return rc;
	}
	req->accepted = req->nfds;
	return 0;
}

static int
nbd_ioctl_disconnect(struct nbd_kreq *req)
{
	struct sl_nbd_disk *disk = req->disk;

	if (disk->dev_fd < 0) {
		return 0;
	}
	ioctl(disk->dev_fd, NBD_DISCONNECT);
	if (disk->doit_started) {
		pthread_join(disk->doit_thread, NULL);
		disk->doit_started = false;
	}
	close(disk->dev_fd);
	disk->dev_fd = -1;
	return 0;
}

/* ---- Running kernel calls off the reactors ------------------------------------ */

/* Tests replace the kernel with their own. */
static int (*g_nbd_kernel_run)(struct nbd_kreq *req);

static int
nbd_kernel_run(struct nbd_kreq *req)
{
	int rc;

	if (g_nbd_kernel_run != NULL) {
		return g_nbd_kernel_run(req);
	}
	if (req->netlink) {
		rc = nbd_nl_run(req);
		if (rc != -EPROTONOSUPPORT || req->op != NBD_KOP_CONNECT) {
			return rc;
		}
		SL_NOTICELOG("no nbd netlink family (kernel before 4.12?): using ioctls\n");
		req->netlink = false;
	}
	switch (req->op) {
	case NBD_KOP_CONNECT:
		return nbd_ioctl_connect(req);
	case NBD_KOP_DISCONNECT:
		return nbd_ioctl_disconnect(req);
	default:
		return -ENOTSUP;
	}
}

static void
nbd_kreq_done_msg(void *arg)
{
	struct nbd_kreq *req = arg;

	req->disk->netlink = req->netlink;
	req->disk->busy--;
	req->done(req);
}

static void *
nbd_kreq_thread(void *arg)
{
	struct nbd_kreq *req = arg;

	req->rc = nbd_kernel_run(req);
	while (sl_thread_send_msg(sl_thread_get_app_thread(), nbd_kreq_done_msg, req) == -ENOMEM) {
		usleep(1000);
	}
	return NULL;
}

static struct nbd_kreq *
nbd_kreq_alloc(struct sl_nbd_disk *disk, enum nbd_kop op, void (*done)(struct nbd_kreq *))
{
	struct nbd_kreq *req = calloc(1, sizeof(*req));

	if (req == NULL) {
		return NULL;
	}
	req->op = op;
	req->disk = disk;
	req->netlink = disk->netlink;
	req->index = disk->index;
	req->size = disk->size;
	req->block_size = disk->block_size;
	req->flags = disk->tx_flags;
	req->timeout_s = disk->opts.timeout_s;
	req->dead_timeout_s = disk->opts.dead_timeout_s;
	req->backend = disk->backend;
	req->done = done;
	return req;
}

/* Run req on a helper pthread; its done runs on the app thread. \return 0 or -errno
 * (req not run, not freed). */
static int
nbd_kreq_submit(struct nbd_kreq *req)
{
	pthread_attr_t attr;
	pthread_t tid;
	int rc;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&tid, &attr, nbd_kreq_thread, req);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		return -rc;
	}
	req->disk->busy++;
	return 0;
}

/* ---- NBD threads -------------------------------------------------------------- */

static void
nbd_thread_io_flusher_msg(void *arg)
{
	sl_nbd_kernel_set_io_flusher();
}

/* One NBD thread per reactor, made with the first disk. */
static int
nbd_threads_ensure(void)
{
	uint32_t n = sl_reactor_count();
	char name[32];

	if (g_nthreads != 0) {
		return 0;
	}
	sl_nbd_kernel_set_io_flusher();
	if (n == 0) {
		/* No reactors (tools, tests): serve on the app thread. */
		g_threads = calloc(1, sizeof(*g_threads));
		if (g_threads == NULL) {
			return -ENOMEM;
		}
		g_threads[0] = sl_thread_get_app_thread();
		g_nthreads = 1;
		g_own_threads = false;
		return 0;
	}
	g_threads = calloc(n, sizeof(*g_threads));
	if (g_threads == NULL) {
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "nbd_kernel%u", i);
		g_threads[i] = sl_reactor_thread_create(i, name);
		if (g_threads[i] == NULL) {
			SL_ERRLOG("cannot create NBD thread %s\n", name);
			return -ENOMEM; /* the ones made are used, and exited at fini */
		}
		g_nthreads = i + 1;
		g_own_threads = true;
		sl_thread_send_msg(g_threads[i], nbd_thread_io_flusher_msg, NULL);
	}
	return 0;
}

static void
nbd_thread_exit_msg(void *arg)
{
	sl_thread_exit(sl_get_thread());
}

/* Subsystem fini, once no disk is left. */
static void
nbd_threads_release(void)
{
	for (uint32_t i = 0; g_own_threads && i < g_nthreads; i++) {
		sl_thread_send_msg(g_threads[i], nbd_thread_exit_msg, NULL);
	}
	free(g_threads);
	g_threads = NULL;
	g_nthreads = 0;
	g_own_threads = false;
}

/* ---- Connections -------------------------------------------------------------- */

static void disk_conn_gone(struct nbd_kconn *kc);
static void disk_check_finish(struct sl_nbd_disk *disk);

static void
kconn_gone_msg(void *arg)
{
	disk_conn_gone(arg);
}

/* On the connection's thread. */
static void
kconn_done(void *cb_arg, struct sl_nbd_conn *conn)
{
	struct nbd_kconn *kc = cb_arg;

	kc->conn = NULL;
	while (sl_thread_send_msg(sl_thread_get_app_thread(), kconn_gone_msg, kc) == -ENOMEM) {
		usleep(100);
	}
}

static void disk_conn_served(struct nbd_kconn *kc);

static void
kconn_served_msg(void *arg)
{
	disk_conn_served(arg);
}

static void
kconn_serve_msg(void *arg)
{
	struct nbd_kconn *kc = arg;
	struct sl_nbd_disk *disk = kc->disk;
	char name[64];
	struct sl_nbd_conn_opts opts = {
		.tx_flags = disk->tx_flags,
		.structured_replies = false,
		.min_block_size = disk->block_size,
		.name = name,
	};

	snprintf(name, sizeof(name), "%s.%u", disk->path, kc->idx);
	kc->conn = sl_nbd_conn_serve(kc->ufd, disk->desc, &opts, kconn_done, kc);
	kc->serve_rc = kc->conn != NULL ? 0 : -errno;
	while (sl_thread_send_msg(sl_thread_get_app_thread(), kconn_served_msg, kc) == -ENOMEM) {
		usleep(100);
	}
}

static void
kconn_stop_ack_msg(void *arg)
{
	struct nbd_kconn *kc = arg;

	kc->disk->busy--;
	disk_check_finish(kc->disk);
}

static void
kconn_stop_msg(void *arg)
{
	struct nbd_kconn *kc = arg;

	/* NULL once done_cb ran: the "gone" message is already on its way. */
	sl_nbd_conn_stop(kc->conn);
	/* Acknowledged, so that the disk (and kc) outlive this message. */
	while (sl_thread_send_msg(sl_thread_get_app_thread(), kconn_stop_ack_msg, kc) == -ENOMEM) {
		usleep(100);
	}
}

/* Stop a live connection (on its thread); it ends through disk_conn_gone. */
static void
kconn_stop(struct nbd_kconn *kc)
{
	if (sl_thread_send_msg(kc->thread, kconn_stop_msg, kc) == 0) {
		kc->disk->busy++;
	}
}

static void
kconn_close_fds(struct nbd_kconn *kc)
{
	if (kc->ufd >= 0) {
		close(kc->ufd);
		kc->ufd = -1;
	}
	if (kc->kfd >= 0) {
		close(kc->kfd);
		kc->kfd = -1;
	}
}

/* Make the socketpair of a connection and serve our end on its thread. */
static int
kconn_start(struct nbd_kconn *kc)
{
	int sv[2];
	int rc;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		return -errno;
	}
	kc->ufd = sv[0];
	kc->kfd = sv[1];
	rc = sl_thread_send_msg(kc->thread, kconn_serve_msg, kc);
	if (rc != 0) {
		kconn_close_fds(kc);
		return rc;
	}
	kc->disk->busy++;
	return 0;
}

/* ---- Disks: finish ------------------------------------------------------------ */

static void
disk_free(struct sl_nbd_disk *disk)
{
	for (uint32_t i = 0; disk->conns != NULL && i < disk->opts.num_connections; i++) {
		kconn_close_fds(&disk->conns[i]);
	}
	free(disk->conns);
	free(disk->bdev_name);
	free(disk);
}

static void
disk_stop_conns(struct sl_nbd_disk *disk)
{
	for (uint32_t i = 0; i < disk->opts.num_connections; i++) {
		struct nbd_kconn *kc = &disk->conns[i];

		if (kc->live) {
			kconn_stop(kc);
		}
	}
}

/* The end of a failed start or of a stop, once nothing is in flight. */
static void
disk_check_finish(struct sl_nbd_disk *disk)
{
	sl_nbd_disk_start_cb start_cb = disk->start_cb;
	sl_nbd_done_cb stop_cb = disk->stop_cb;

	if (disk->state != NBD_DISK_STOPPING || disk->busy != 0 || disk->live != 0) {
		return;
	}
	if (disk->desc != NULL) {
		sl_bdev_close(disk->desc);
		disk->desc = NULL;
	}
	TAILQ_REMOVE(&g_disks, disk, link);
	if (start_cb != NULL) {
		/* A start that failed, or was overtaken by a stop or a bdev removal. */
		disk->start_cb = NULL;
		start_cb(disk->start_arg, NULL, disk->rc != 0 ? disk->rc : -ENODEV);
	} else {
		SL_NOTICELOG("%s: stopped (bdev %s)\n", disk->path, disk->bdev_name);
	}
	if (stop_cb != NULL) {
		stop_cb(disk->stop_arg, 0);
	}
	disk_free(disk);
}

static void
disk_fail(struct sl_nbd_disk *disk, int rc)
{
	if (disk->rc == 0) {
		disk->rc = rc;
	}
	disk->state = NBD_DISK_STOPPING;
	disk_stop_conns(disk);
	disk_check_finish(disk);
}

static void
disk_disconnected(struct nbd_kreq *req)
{
	struct sl_nbd_disk *disk = req->disk;

	if (req->rc != 0) {
		SL_WARNLOG("%s: disconnect: %s\n", disk->path, strerror(-req->rc));
	}
	free(req);
	/* The kernel closed its ends; connections see DISC or EOF. Stop them anyway,
	 * for a kernel that never had them. */
	disk_stop_conns(disk);
	disk_check_finish(disk);
}

/* Disconnect from the kernel, then stop the connections. */
static void
disk_detach(struct sl_nbd_disk *disk)
{
	struct nbd_kreq *req;

	disk->state = NBD_DISK_STOPPING;
	req = nbd_kreq_alloc(disk, NBD_KOP_DISCONNECT, disk_disconnected);
	if (req == NULL || nbd_kreq_submit(req) != 0) {
		free(req);
		SL_ERRLOG("%s: cannot disconnect from the kernel\n", disk->path);
		disk_stop_conns(disk);
		disk_check_finish(disk);
	}
}

/* ---- Disks: connections that end -------------------------------------------- */

/* A replacement that failed: stop replacing, and let the device go with its last
 * connection. */
static void
disk_heal_failed(struct nbd_kconn *kc, int rc)
{
	struct sl_nbd_disk *disk = kc->disk;

	SL_ERRLOG("%s: connection %u cannot be replaced: %s\n", disk->path, kc->idx, strerror(-rc));
	disk->heal_failed = true;
	if (kc->kfd >= 0) {
		close(kc->kfd);
		kc->kfd = -1;
	}
	if (kc->live) {
		kconn_stop(kc); /* its end comes back through disk_conn_gone */
	} else if (disk->state == NBD_DISK_RUNNING && disk->live == 0) {
		disk_detach(disk);
	}
	disk_check_finish(disk);
}

static void
disk_healed(struct nbd_kreq *req)
{
	struct sl_nbd_disk *disk = req->disk;
	struct nbd_kconn *kc = &disk->conns[req->first_conn];
	int rc = req->rc != 0 ? req->rc : (req->accepted == 1 ? 0 : -ENOSPC);

	free(req);
	if (rc != 0) {
		disk_heal_failed(kc, rc);
		return;
	}
	close(kc->kfd);
	kc->kfd = -1;
	kc->attached_at = sl_get_ticks();
	SL_NOTICELOG("%s: connection %u replaced\n", disk->path, kc->idx);
	if (disk->state == NBD_DISK_STOPPING) {
		disk_stop_conns(disk);
		disk_check_finish(disk);
	}
}

/* A replacement is being served: hand the kernel its end. */
static void
disk_heal_attach(struct nbd_kconn *kc)
{
	struct sl_nbd_disk *disk = kc->disk;
	struct nbd_kreq *req;

	if (kc->serve_rc != 0) {
		disk_heal_failed(kc, kc->serve_rc);
		return;
	}
	req = nbd_kreq_alloc(disk, NBD_KOP_RECONFIGURE, disk_healed);
	if (req == NULL) {
		disk_heal_failed(kc, -ENOMEM);
		return;
	}
	req->fds[0] = kc->kfd;
	req->nfds = 1;
	req->first_conn = kc->idx;
	if (nbd_kreq_submit(req) != 0) {
		free(req);
		disk_heal_failed(kc, -ENOMEM);
	}
}

static void
disk_conn_gone(struct nbd_kconn *kc)
{
	struct sl_nbd_disk *disk = kc->disk;
	uint64_t age;
	int rc;

	kc->live = false;
	disk->live--;
	if (disk->state != NBD_DISK_RUNNING) {
		disk_check_finish(disk);
		return;
	}
	/*
	 * Running: the kernel shut the socket down (a request timed out; the kernel
	 * resends it elsewhere), or the device was disconnected behind our back. Give the
	 * kernel a new socket -- unless this one had just been given: a kernel that has
	 * no dead slot for it drops it without an error (RECONFIGURE's -ENOSPC is
	 * swallowed), and replacing it again would loop.
	 */
	age = sl_get_ticks() - kc->attached_at;
	if (!disk->netlink || disk->heal_failed || disk->heals >= NBD_MAX_HEALS ||
	    age < 2 * sl_get_ticks_hz()) {
		if (disk->live == 0) {
			SL_WARNLOG("%s: every connection is gone: disconnecting\n", disk->path);
			disk_detach(disk);
		}
		return;
	}
	disk->heals++;
	SL_WARNLOG("%s: connection %u closed by the kernel (request timeout?): replacing it\n",
		   disk->path, kc->idx);
	rc = kconn_start(kc);
	if (rc != 0) {
		disk_heal_failed(kc, rc);
	}
}

/* ---- Disks: start ------------------------------------------------------------- */

static void
disk_attached(struct nbd_kreq *req)
{
	struct sl_nbd_disk *disk = req->disk;
	int rc = req->rc;

	if (rc == 0 && req->op == NBD_KOP_CONNECT && disk->index < 0) {
		disk->index = req->index;
		snprintf(disk->path, sizeof(disk->path), "/dev/nbd%d", disk->index);
	}
	if (rc == 0 && req->accepted < disk->opts.num_connections) {
		/* A re-bind to a device that had fewer connections: the rest idle. */
		SL_WARNLOG("%s: the kernel took %u of %u connections\n", disk->path, req->accepted,
			   disk->opts.num_connections);
		for (uint32_t i = req->accepted; i < disk->opts.num_connections; i++) {
			kconn_close_fds(&disk->conns[i]);
		}
	}
	free(req);
	/* The kernel holds its ends now (or failed): ours are closed either way. */
	for (uint32_t i = 0; i < disk->opts.num_connections; i++) {
		if (disk->conns[i].kfd >= 0) {
			close(disk->conns[i].kfd);
			disk->conns[i].kfd = -1;
		}
		disk->conns[i].attached_at = sl_get_ticks();
	}
	if (rc != 0) {
		SL_ERRLOG("%s: %s: %s\n", disk->path[0] ? disk->path : "nbd",
			  disk->rebind ? "re-bind (NBD_CMD_RECONFIGURE)" : "connect",
			  strerror(-rc));
		disk_fail(disk, rc);
		return;
	}
	if (disk->removed || disk->stop_cb != NULL) {
		disk->start_cb(disk->start_arg, NULL, -ENODEV);
		disk->start_cb = NULL;
		disk_detach(disk);
		return;
	}
	disk->state = NBD_DISK_RUNNING;
	SL_NOTICELOG("%s: %s bdev %s (%s, %u connection%s, %s)\n", disk->path,
		     disk->rebind ? "re-bound to" : "serving", disk->bdev_name, disk->backend,
		     disk->opts.num_connections, disk->opts.num_connections == 1 ? "" : "s",
		     disk->netlink ? "netlink" : "ioctl");
	disk->start_cb(disk->start_arg, disk, 0);
	disk->start_cb = NULL;
}

static void
disk_attach(struct sl_nbd_disk *disk)
{
	struct nbd_kreq *req;

	req = nbd_kreq_alloc(disk, disk->rebind ? NBD_KOP_RECONFIGURE : NBD_KOP_CONNECT,
			     disk_attached);
	if (req == NULL) {
		disk_fail(disk, -ENOMEM);
		return;
	}
	for (uint32_t i = 0; i < disk->opts.num_connections; i++) {
		req->fds[i] = disk->conns[i].kfd;
	}
	req->nfds = disk->opts.num_connections;
	if (nbd_kreq_submit(req) != 0) {
		free(req);
		disk_fail(disk, -ENOMEM);
	}
}

static void
disk_conn_served(struct nbd_kconn *kc)
{
	struct sl_nbd_disk *disk = kc->disk;

	disk->busy--;
	if (kc->serve_rc == 0) {
		kc->ufd = -1; /* the engine's now */
		kc->live = true;
		disk->live++;
	} else {
		SL_ERRLOG("%s: cannot serve connection %u: %s\n", disk->path, kc->idx,
			  strerror(-kc->serve_rc));
	}
	if (disk->state == NBD_DISK_RUNNING) {
		disk_heal_attach(kc);
		return;
	}
	if (kc->serve_rc != 0 && disk->rc == 0) {
		disk->rc = kc->serve_rc;
	}
	if (disk->busy != 0) {
		return;
	}
	if (disk->state == NBD_DISK_STARTING && disk->rc == 0) {
		disk_attach(disk);
		return;
	}
	disk_fail(disk, disk->rc);
}

static void
disk_event_cb(enum sl_bdev_event_type type, struct sl_bdev *bdev, void *ctx)
{
	struct sl_nbd_disk *disk = ctx;

	if (type != SL_BDEV_EVENT_REMOVE) {
		return;
	}
	SL_NOTICELOG("%s: bdev %s is being removed: stopping\n", disk->path[0] ? disk->path : "nbd",
		     disk->bdev_name);
	disk->removed = true;
	if (disk->state == NBD_DISK_RUNNING) {
		disk_detach(disk);
	}
}

static int
disk_check_opts(const struct sl_nbd_disk_opts *opts, int *want)
{
	struct sl_nbd_disk *disk;

	*want = -1;
	if (opts->bdev_name == NULL || opts->num_connections > NBD_MAX_CONNS) {
		return -EINVAL;
	}
	TAILQ_FOREACH (disk, &g_disks, link) {
		if (strcmp(disk->bdev_name, opts->bdev_name) == 0) {
			return -EEXIST;
		}
	}
	if (opts->nbd_device != NULL) {
		*want = nbd_path_index(opts->nbd_device);
		if (*want < 0) {
			return -EINVAL;
		}
		if (disk_find_index(*want) != NULL) {
			return -EBUSY;
		}
	}
	return 0;
}

/* Open the bdev and read what the kernel is told about it. */
static int
disk_open_bdev(struct sl_nbd_disk *disk)
{
	struct sl_bdev *bdev;
	int rc;

	rc = sl_bdev_open(disk->bdev_name, !disk->opts.read_only, disk_event_cb, disk, &disk->desc);
	if (rc != 0) {
		return rc;
	}
	bdev = sl_bdev_desc_get_bdev(disk->desc);
	disk->block_size = sl_bdev_get_block_size(bdev);
	disk->size = sl_bdev_get_size(bdev);
	if (disk->block_size > 4096) {
		/* The kernel's logical block size stops at the page size. */
		SL_ERRLOG("bdev %s: block size %u is over 4096, which the kernel cannot use\n",
			  disk->bdev_name, disk->block_size);
		return -EINVAL;
	}
	nbd_backend_format(bdev, disk->backend, sizeof(disk->backend));
	disk->tx_flags = nbd_kernel_flags(disk->desc, disk->opts.read_only);
	return 0;
}

static int
disk_alloc_conns(struct sl_nbd_disk *disk)
{
	if (!disk->num_conns_set) {
		disk->opts.num_connections = g_nthreads;
	}
	disk->conns = calloc(disk->opts.num_connections, sizeof(*disk->conns));
	if (disk->conns == NULL) {
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < disk->opts.num_connections; i++) {
		disk->conns[i] = (struct nbd_kconn){
			.disk = disk,
			.idx = i,
			.thread = g_threads[i % g_nthreads],
			.ufd = -1,
			.kfd = -1,
		};
	}
	return 0;
}

/* Everything of a start up to serving the connections. \return 0 or -errno. */
static int
disk_prepare(struct sl_nbd_disk *disk, int want)
{
	char owner[SL_NBD_DISK_PATH_LEN + 8];
	int rc;

	rc = nbd_threads_ensure();
	if (rc == 0) {
		rc = disk_alloc_conns(disk);
	}
	if (rc == 0) {
		rc = disk_open_bdev(disk);
	}
	if (rc == 0) {
		rc = nbd_select(want, disk->backend, disk->size, &disk->index, &disk->rebind);
	}
	if (rc != 0) {
		return rc;
	}
	if (disk->rebind && disk->opts.use_ioctl) {
		return -EBUSY; /* ioctls cannot re-bind */
	}
	if (disk->index >= 0) {
		snprintf(disk->path, sizeof(disk->path), "/dev/nbd%d", disk->index);
	} else if (disk->opts.use_ioctl) {
		return -ENOSPC; /* only netlink makes new devices */
	}
	if (disk->opts.read_only) {
		return 0;
	}
	snprintf(owner, sizeof(owner), "nbd %s", disk->index >= 0 ? disk->path : "(new device)");
	return sl_bdev_claim(disk->desc, owner);
}

void
sl_nbd_disk_start(const struct sl_nbd_disk_opts *opts, sl_nbd_disk_start_cb cb, void *cb_arg)
{
	struct sl_nbd_disk *disk;
	int rc, want;

	rc = disk_check_opts(opts, &want);
	if (rc != 0) {
		cb(cb_arg, NULL, rc);
		return;
	}
	disk = calloc(1, sizeof(*disk));
	if (disk == NULL || (disk->bdev_name = strdup(opts->bdev_name)) == NULL) {
		free(disk);
		cb(cb_arg, NULL, -ENOMEM);
		return;
	}
	disk->opts = *opts;
	disk->opts.bdev_name = disk->bdev_name;
	disk->opts.nbd_device = NULL;
	disk->num_conns_set = opts->num_connections != 0;
	disk->netlink = !opts->use_ioctl;
	disk->index = -1;
	disk->dev_fd = -1;
	disk->state = NBD_DISK_STARTING;
	disk->start_cb = cb;
	disk->start_arg = cb_arg;
	TAILQ_INSERT_TAIL(&g_disks, disk, link);

	rc = disk_prepare(disk, want);
	for (uint32_t i = 0; rc == 0 && i < disk->opts.num_connections; i++) {
		rc = kconn_start(&disk->conns[i]);
	}
	if (rc != 0) {
		disk_fail(disk, rc);
	}
}

/* ---- Disks: stop and look-up -------------------------------------------------- */

int
sl_nbd_disk_stop(struct sl_nbd_disk *disk, sl_nbd_done_cb cb, void *cb_arg)
{
	if (disk == NULL) {
		return -ENODEV;
	}
	if (disk->stop_cb != NULL || disk->state == NBD_DISK_STOPPING) {
		return -EALREADY;
	}
	disk->stop_cb = cb;
	disk->stop_arg = cb_arg;
	if (disk->state == NBD_DISK_RUNNING) {
		disk_detach(disk);
	}
	/* STARTING: disk_attached sees stop_cb and detaches. */
	return 0;
}

struct nbd_stop_all_ctx {
	uint32_t pending;
	sl_nbd_done_cb cb;
	void *cb_arg;
};

static void
nbd_stop_all_one(void *arg, int rc)
{
	struct nbd_stop_all_ctx *ctx = arg;

	if (--ctx->pending == 0) {
		nbd_threads_release();
		ctx->cb(ctx->cb_arg, 0);
		free(ctx);
	}
}

void
sl_nbd_disk_stop_all(sl_nbd_done_cb cb, void *cb_arg)
{
	struct nbd_stop_all_ctx *ctx = calloc(1, sizeof(*ctx));
	struct sl_nbd_disk *disk, *tmp;

	if (ctx == NULL) {
		cb(cb_arg, -ENOMEM);
		return;
	}
	ctx->cb = cb;
	ctx->cb_arg = cb_arg;
	ctx->pending = 1;
	TAILQ_FOREACH_SAFE (disk, &g_disks, link, tmp) {
		if (sl_nbd_disk_stop(disk, nbd_stop_all_one, ctx) == 0) {
			ctx->pending++;
		}
	}
	nbd_stop_all_one(ctx, 0);
}

struct sl_nbd_disk *
sl_nbd_disk_find(const char *nbd_device)
{
	int index = nbd_path_index(nbd_device);
	struct sl_nbd_disk *disk = index >= 0 ? disk_find_index(index) : NULL;

	return disk != NULL && disk->state == NBD_DISK_RUNNING ? disk : NULL;
}

static struct sl_nbd_disk *
disk_next_running(struct sl_nbd_disk *disk)
{
	while (disk != NULL && disk->state != NBD_DISK_RUNNING) {
		disk = TAILQ_NEXT(disk, link);
	}
	return disk;
}

struct sl_nbd_disk *
sl_nbd_disk_first(void)
{
	return disk_next_running(TAILQ_FIRST(&g_disks));
}

struct sl_nbd_disk *
sl_nbd_disk_next(struct sl_nbd_disk *disk)
{
	return disk_next_running(TAILQ_NEXT(disk, link));
}

const char *
sl_nbd_disk_get_path(const struct sl_nbd_disk *disk)
{
	return disk->path;
}

const char *
sl_nbd_disk_get_bdev_name(const struct sl_nbd_disk *disk)
{
	return disk->bdev_name;
}

const char *
sl_nbd_disk_get_backend(const struct sl_nbd_disk *disk)
{
	return disk->backend;
}

const struct sl_nbd_disk_opts *
sl_nbd_disk_get_opts(const struct sl_nbd_disk *disk)
{
	return &disk->opts;
}

bool
sl_nbd_disk_num_connections_set(const struct sl_nbd_disk *disk)
{
	return disk->num_conns_set;
}

bool
sl_nbd_disk_is_rebound(const struct sl_nbd_disk *disk)
{
	return disk->rebind;
}

bool
sl_nbd_disk_uses_netlink(const struct sl_nbd_disk *disk)
{
	return disk->netlink;
}
