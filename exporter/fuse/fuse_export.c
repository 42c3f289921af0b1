/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * FUSE mounts: sessions, exports, life cycle, and the metadata operations.
 *
 * Everything here runs on the app thread except the low-level operations, which run
 * on the channels' threads (fuse_io.c calls fuse_session_process_buf there). Those
 * read the export list of a directory mount under mnt->lock; the I/O path reaches its
 * export from the nodeid alone (a disk's root, or the export's address, which is the
 * nodeid we gave the kernel), so it takes no lock. Removed exports are kept until the
 * unmount, since the kernel may still name them.
 *
 * Stopping: the session is unmounted lazily (open files keep working), every channel
 * stops reading, answers what it holds, puts its bdev channels and closes its clone
 * fd; the last close aborts the connection, failing whatever the kernel still queues
 * with ENOTCONN. Then the bdevs are closed and the session destroyed.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "sluice/log.h"
#include "sluice/reactor.h"

#include "fuse_internal.h"

SL_LOG_REGISTER_COMPONENT(fuse)

/* Seconds the kernel may cache attributes; sizes never change, names rarely. */
#define FUSE_ATTR_TIMEOUT 1.0

static TAILQ_HEAD(, fuse_mnt) g_fuse_mnts = TAILQ_HEAD_INITIALIZER(g_fuse_mnts);

static void fuse_mnt_stop(struct fuse_mnt *mnt, sl_fuse_done_cb cb, void *cb_arg);

void
sl_fuse_opts_init(struct sl_fuse_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->uid = getuid();
	opts->gid = getgid();
	opts->mode = 0600;
}

/* ---- lookups --------------------------------------------------------------------- */

static struct fuse_mnt *
fuse_mnt_find(const char *path)
{
	struct fuse_mnt *mnt;

	TAILQ_FOREACH (mnt, &g_fuse_mnts, link) {
		if (strcmp(mnt->path, path) == 0) {
			return mnt;
		}
	}
	return NULL;
}

/* Under mnt->lock. */
static struct fuse_exp *
fuse_exp_find(struct fuse_mnt *mnt, const char *name)
{
	struct fuse_exp *exp;

	TAILQ_FOREACH (exp, &mnt->exports, link) {
		if (strcmp(exp->name, name) == 0) {
			return exp;
		}
	}
	return NULL;
}

struct fuse_exp *
fuse_ino_to_exp(struct fuse_mnt *mnt, fuse_ino_t ino)
{
	if (!mnt->is_dir) {
		return mnt->disk;
	}
	/* The nodeids of a directory's files are their exports' addresses. */
	return ino == FUSE_ROOT_ID ? NULL : (struct fuse_exp *)(uintptr_t)ino;
}

/* Canonical form of path; the last component need not exist. NULL if its directory does not. */
char *
fuse_path_canonical(const char *path)
{
	char *copy1, *copy2, *dir, *res;
	char buf[PATH_MAX];

	if (realpath(path, buf) != NULL) {
		return strdup(buf);
	}
	copy1 = strdup(path);
	copy2 = strdup(path);
	res = NULL;
	if (copy1 != NULL && copy2 != NULL && realpath(dirname(copy1), buf) != NULL) {
		dir = basename(copy2);
		if (asprintf(&res, "%s/%s", strcmp(buf, "/") == 0 ? "" : buf, dir) < 0) {
			res = NULL;
		}
	}
	free(copy1);
	free(copy2);
	return res;
}

/* ---- attributes ------------------------------------------------------------------ */

void
fuse_exp_fill_attr(struct fuse_exp *exp, struct stat *st)
{
	struct fuse_mnt *mnt = exp->mnt;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&mnt->lock);
	st->st_mode = S_IFREG | (exp->mode & (exp->read_only ? 07555 : 07777));
	st->st_uid = exp->uid;
	st->st_gid = exp->gid;
	pthread_mutex_unlock(&mnt->lock);
	st->st_ino = exp->attr_ino;
	st->st_nlink = 1;
	st->st_size = (off_t)exp->size;
	st->st_blksize = SL_MAX(exp->block_size, 4096u);
	st->st_blocks = (blkcnt_t)(exp->size / 512);
	st->st_atime = st->st_mtime = st->st_ctime = (time_t)mnt->start_time;
}

static void
fuse_dir_fill_attr(struct fuse_mnt *mnt, struct stat *st)
{
	uint32_t mode = mnt->opts.mode & 0777;

	memset(st, 0, sizeof(*st));
	/* Search permission wherever read permission is given. */
	st->st_mode = S_IFDIR | mode | ((mode & 0444) >> 2);
	st->st_ino = FUSE_ROOT_ID;
	st->st_nlink = 2;
	st->st_uid = mnt->opts.uid;
	st->st_gid = mnt->opts.gid;
	st->st_atime = st->st_mtime = st->st_ctime = (time_t)mnt->start_time;
}

/* ---- metadata operations (on the channels' threads) ----------------------------------- */

static void
fuse_op_init(void *userdata, struct fuse_conn_info *conn)
{
	conn->max_write = FUSE_IO_MAX_XFER;
	/* Async direct I/O is sent as background requests: let QD 32 and more through. */
	conn->max_background = FUSE_MAX_BACKGROUND;
	conn->congestion_threshold = FUSE_MAX_BACKGROUND * 3 / 4;
	conn->want |= conn->capable & (FUSE_CAP_ASYNC_DIO | FUSE_CAP_ATOMIC_O_TRUNC);
	/* Replies are written from our buffers; the pipe dance would only add copies. */
	conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE |
			FUSE_CAP_WRITEBACK_CACHE);
	/* FOPEN_PARALLEL_DIRECT_WRITES (patched into open replies) came with 7.36. */
	SL_DEBUGLOG(fuse, "FUSE %u.%u, capable 0x%x, want 0x%x, max_write %u, max_background %u\n",
		    conn->proto_major, conn->proto_minor, conn->capable, conn->want,
		    conn->max_write, conn->max_background);
	if (conn->proto_major == 7 && conn->proto_minor < 36) {
		SL_NOTICELOG("fuse: kernel FUSE %u.%u: direct writes to a file are serialised\n",
			     conn->proto_major, conn->proto_minor);
	}
}

static void
fuse_reply_entry_of(fuse_req_t req, struct fuse_exp *exp)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = (fuse_ino_t)(uintptr_t)exp;
	e.attr_timeout = FUSE_ATTR_TIMEOUT;
	/* Names are not cached, so a removed export is gone at once. */
	e.entry_timeout = 0;
	fuse_exp_fill_attr(exp, &e.attr);
	fuse_reply_entry(req, &e);
}

static void
fuse_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_mnt *mnt = fuse_req_userdata(req);
	struct fuse_exp *exp = NULL;

	if (mnt->is_dir && parent == FUSE_ROOT_ID) {
		pthread_mutex_lock(&mnt->lock);
		exp = fuse_exp_find(mnt, name);
		pthread_mutex_unlock(&mnt->lock);
	}
	if (exp == NULL) {
		fuse_reply_err(req, mnt->is_dir ? ENOENT : ENOTDIR);
		return;
	}
	fuse_reply_entry_of(req, exp);
}

static void
fuse_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fuse_mnt *mnt = fuse_req_userdata(req);
	struct fuse_exp *exp = fuse_ino_to_exp(mnt, ino);
	struct stat st;

	if (exp == NULL) {
		fuse_dir_fill_attr(mnt, &st);
	} else {
		fuse_exp_fill_attr(exp, &st);
	}
	fuse_reply_attr(req, &st, FUSE_ATTR_TIMEOUT);
}

static void
fuse_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi)
{
	struct fuse_mnt *mnt = fuse_req_userdata(req);
	struct fuse_exp *exp = fuse_ino_to_exp(mnt, ino);
	struct stat st;

	if (exp == NULL) {
		fuse_reply_err(req, EPERM);
		return;
	}
	/* The size is the bdev's: truncation and growth are refused. */
	if ((to_set & FUSE_SET_ATTR_SIZE) && (uint64_t)attr->st_size != exp->size) {
		fuse_reply_err(req, EPERM);
		return;
	}
	pthread_mutex_lock(&mnt->lock);
	if (to_set & FUSE_SET_ATTR_MODE) {
		exp->mode = attr->st_mode & 07777;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		exp->uid = attr->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		exp->gid = attr->st_gid;
	}
	pthread_mutex_unlock(&mnt->lock);
	fuse_exp_fill_attr(exp, &st);
	fuse_reply_attr(req, &st, FUSE_ATTR_TIMEOUT);
}

static void
fuse_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fuse_mnt *mnt = fuse_req_userdata(req);
	struct fuse_exp *exp = fuse_ino_to_exp(mnt, ino);

	if (exp == NULL) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (atomic_load(&exp->removing)) {
		fuse_reply_err(req, ENODEV);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY && exp->read_only) {
		fuse_reply_err(req, EROFS);
		return;
	}
	/* O_TRUNC is ignored, as on a block device. */
	fi->direct_io = 1;
	fi->keep_cache = 0;
	fi->fh = (uint64_t)(uintptr_t)exp;
	fuse_io_mark_open_reply();
	fuse_reply_open(req, fi);
}

static void
fuse_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

/* Add one entry to a readdir reply. \return false when it does not fit. */
static bool
fuse_dir_put(fuse_req_t req, char *buf, size_t size, size_t *used, const char *name, uint64_t ino,
	     mode_t type, off_t next)
{
	struct stat st = {.st_ino = ino, .st_mode = type};
	size_t n = fuse_add_direntry(req, buf + *used, size - *used, name, &st, next);

	/* fuse_add_direntry reports what an entry needs even when it does not fit. */
	if (n > size - *used) {
		return false;
	}
	*used += n;
	return true;
}

static void
fuse_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fuse_mnt *mnt = fuse_req_userdata(req);
	struct fuse_exp *exp;
	size_t cap, used = 0;
	off_t idx = 2;
	char *buf;

	if (fuse_ino_to_exp(mnt, ino) != NULL) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	/* The request's own buffer: readdir allocates nothing either. */
	buf = (char *)fuse_io_scratch(&cap);
	size = SL_MIN(size, cap);
	/* Entry i (0-based) is sent when off <= i, with i + 1 as the next offset. */
	if ((off > 0 || fuse_dir_put(req, buf, size, &used, ".", FUSE_ROOT_ID, S_IFDIR, 1)) &&
	    (off > 1 || fuse_dir_put(req, buf, size, &used, "..", FUSE_ROOT_ID, S_IFDIR, 2))) {
		pthread_mutex_lock(&mnt->lock);
		TAILQ_FOREACH (exp, &mnt->exports, link) {
			if (idx++ < off) {
				continue;
			}
			if (!fuse_dir_put(req, buf, size, &used, exp->name, exp->attr_ino, S_IFREG,
					  idx)) {
				break;
			}
		}
		pthread_mutex_unlock(&mnt->lock);
	}
	fuse_reply_buf(req, buf, used);
}

static void
fuse_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fuse_mnt *mnt = fuse_req_userdata(req);
	struct statvfs sv;
	struct fuse_exp *exp;
	uint64_t bytes = 0;
	uint32_t bs = 4096, files = 1;

	pthread_mutex_lock(&mnt->lock);
	TAILQ_FOREACH (exp, &mnt->exports, link) {
		bytes += exp->size;
		bs = mnt->is_dir ? bs : exp->block_size;
		files++;
	}
	pthread_mutex_unlock(&mnt->lock);
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = bs;
	sv.f_frsize = bs;
	sv.f_blocks = bytes / bs;
	sv.f_files = files;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

const struct fuse_lowlevel_ops g_fuse_ops = {
	.init = fuse_op_init,
	.lookup = fuse_op_lookup,
	.getattr = fuse_op_getattr,
	.setattr = fuse_op_setattr,
	.open = fuse_op_open,
	.read = fuse_op_read,
	.write_buf = fuse_op_write_buf,
	.flush = fuse_op_flush,
	.release = fuse_op_release,
	.fsync = fuse_op_fsync,
	.readdir = fuse_op_readdir,
	.statfs = fuse_op_statfs,
	.fallocate = fuse_op_fallocate,
	.lseek = fuse_op_lseek,
};

/* ---- exports --------------------------------------------------------------------- */

static void fuse_exp_remove(struct fuse_exp *exp, sl_fuse_done_cb cb, void *cb_arg);

static void
fuse_exp_event_cb(enum sl_bdev_event_type type, struct sl_bdev *bdev, void *ctx)
{
	struct fuse_exp *exp = ctx;

	switch (type) {
	case SL_BDEV_EVENT_REMOVE:
		SL_NOTICELOG("fuse %s: bdev %s removed: %s\n", exp->mnt->path, exp->bdev_name,
			     exp->mnt->is_dir ? "removing its file" : "stopping the export");
		if (exp->mnt->is_dir) {
			fuse_exp_remove(exp, NULL, NULL);
		} else {
			fuse_mnt_stop(exp->mnt, NULL, NULL);
		}
		break;
	case SL_BDEV_EVENT_RESIZE:
		SL_NOTICELOG("fuse %s: bdev %s resized; the file keeps %" PRIu64 " bytes\n",
			     exp->mnt->path, exp->bdev_name, exp->size);
		break;
	}
}

static void
fuse_exp_free(struct fuse_exp *exp)
{
	if (exp == NULL) {
		return;
	}
	if (exp->desc != NULL) {
		sl_bdev_close(exp->desc);
	}
	fuse_range_fini(exp);
	free(exp->chans);
	free(exp->name);
	free(exp->bdev_name);
	free(exp);
}

static int
fuse_exp_create(struct fuse_mnt *mnt, const char *bdev_name, const char *name, bool read_only,
		struct fuse_exp **out)
{
	struct sl_bdev *bdev;
	struct fuse_exp *exp;
	uint32_t i;
	int rc;

	exp = calloc(1, sizeof(*exp));
	if (exp == NULL) {
		return -ENOMEM;
	}
	fuse_range_init(exp);
	exp->mnt = mnt;
	exp->read_only = read_only;
	exp->mode = mnt->opts.mode;
	exp->uid = mnt->opts.uid;
	exp->gid = mnt->opts.gid;
	exp->bdev_name = strdup(bdev_name);
	exp->name = name != NULL ? strdup(name) : NULL;
	exp->chans = aligned_alloc(SL_CACHE_LINE, sizeof(*exp->chans) * mnt->num_chans);
	if (exp->bdev_name == NULL || (name != NULL && exp->name == NULL) || exp->chans == NULL) {
		rc = -ENOMEM;
		goto err;
	}
	memset(exp->chans, 0, sizeof(*exp->chans) * mnt->num_chans);
	for (i = 0; i < mnt->num_chans; i++) {
		exp->chans[i].exp = exp;
		exp->chans[i].chan = &mnt->chans[i];
		atomic_init(&exp->chans[i].fast_writes, 0);
	}
	rc = sl_bdev_open(bdev_name, !read_only, fuse_exp_event_cb, exp, &exp->desc);
	if (rc != 0) {
		SL_ERRLOG("fuse %s: cannot open bdev %s: %s\n", mnt->path, bdev_name,
			  strerror(-rc));
		goto err;
	}
	bdev = sl_bdev_desc_get_bdev(exp->desc);
	exp->block_size = sl_bdev_get_block_size(bdev);
	exp->size = sl_bdev_get_size(bdev);
	exp->has_unmap = sl_bdev_io_type_supported(bdev, SL_BDEV_IO_TYPE_UNMAP);
	if (exp->block_size > FUSE_IO_MAX_BLOCK) {
		SL_ERRLOG("fuse %s: bdev %s: block size %u is over the %u supported\n", mnt->path,
			  bdev_name, exp->block_size, FUSE_IO_MAX_BLOCK);
		rc = -EINVAL;
		goto err;
	}
	/* No claim: the file shares its bdev with network NBD exports (direct I/O, no cache
	 * in between); a kernel NBD device claims it. */
	exp->attr_ino = ++mnt->next_attr_ino;
	*out = exp;
	return 0;
err:
	fuse_exp_free(exp);
	return rc;
}

/* ---- mounts -------------------------------------------------------------------- */

static void
fuse_mnt_free(struct fuse_mnt *mnt)
{
	struct fuse_exp *exp;
	uint32_t i;

	while ((exp = TAILQ_FIRST(&mnt->exports)) != NULL) {
		TAILQ_REMOVE(&mnt->exports, exp, link);
		fuse_exp_free(exp);
	}
	while ((exp = TAILQ_FIRST(&mnt->removed)) != NULL) {
		TAILQ_REMOVE(&mnt->removed, exp, link);
		fuse_exp_free(exp);
	}
	if (mnt->se != NULL) {
		fuse_session_unmount(mnt->se);
		fuse_session_destroy(mnt->se);
	}
	for (i = 0; mnt->chans != NULL && i < mnt->num_chans; i++) {
		fuse_chan_fini(&mnt->chans[i]);
	}
	if (mnt->created_file && unlink(mnt->path) != 0) {
		SL_WARNLOG("fuse: cannot remove %s: %s\n", mnt->path, strerror(errno));
	}
	pthread_mutex_destroy(&mnt->lock);
	free(mnt->chans);
	free(mnt->waiters);
	free(mnt->path);
	free(mnt);
}

static int
fuse_mnt_alloc(const char *path, bool is_dir, const struct sl_fuse_opts *opts,
	       struct fuse_mnt **out)
{
	struct fuse_mnt *mnt;
	uint32_t i;

	mnt = calloc(1, sizeof(*mnt));
	if (mnt == NULL) {
		return -ENOMEM;
	}
	pthread_mutex_init(&mnt->lock, NULL);
	TAILQ_INIT(&mnt->exports);
	TAILQ_INIT(&mnt->removed);
	mnt->is_dir = is_dir;
	mnt->opts = *opts;
	mnt->start_time = (uint64_t)time(NULL);
	mnt->path = fuse_path_canonical(path);
	if (mnt->path == NULL) {
		/* The directory holding the mount point does not exist. */
		fuse_mnt_free(mnt);
		return -ENOENT;
	}
	mnt->num_chans = SL_MAX(sl_reactor_count(), 1u);
	mnt->chans = aligned_alloc(SL_CACHE_LINE, sizeof(*mnt->chans) * mnt->num_chans);
	if (mnt->chans == NULL) {
		fuse_mnt_free(mnt);
		return -ENOMEM;
	}
	memset(mnt->chans, 0, sizeof(*mnt->chans) * mnt->num_chans);
	for (i = 0; i < mnt->num_chans; i++) {
		mnt->chans[i].fd = -1;
	}
	*out = mnt;
	return 0;
}

/* Check the mount point: a regular file (created if missing) or a directory. */
static int
fuse_mnt_check_path(struct fuse_mnt *mnt)
{
	struct stat st;
	int fd;

	if (stat(mnt->path, &st) != 0) {
		if (errno != ENOENT || mnt->is_dir) {
			return -errno;
		}
		fd = open(mnt->path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
		if (fd < 0) {
			return -errno;
		}
		close(fd);
		mnt->created_file = true;
		return 0;
	}
	if (mnt->is_dir && !S_ISDIR(st.st_mode)) {
		return -ENOTDIR;
	}
	if (!mnt->is_dir && !S_ISREG(st.st_mode)) {
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	}
	return 0;
}

/* fsname shows in mount(8) and /proc/mounts; keep it free of the option separators. */
static void
fuse_mnt_fsname(const struct fuse_mnt *mnt, char *buf, size_t len)
{
	const char *what = mnt->is_dir ? "dir" : mnt->disk->bdev_name;
	size_t i;

	snprintf(buf, len, "sluice:%s", what);
	for (i = 0; buf[i] != '\0'; i++) {
		if (buf[i] == ',' || buf[i] == ' ' || buf[i] == '\\' || buf[i] == '=') {
			buf[i] = '_';
		}
	}
}

static int
fuse_mnt_session(struct fuse_mnt *mnt)
{
	char fsname[SL_BDEV_MAX_NAME_LEN + 16], mopts[SL_BDEV_MAX_NAME_LEN + 128];
	char prog[] = "sluiced", opt[] = "-o";
	char *argv[] = {prog, opt, mopts, NULL};
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	int rc;

	fuse_mnt_fsname(mnt, fsname, sizeof(fsname));
	snprintf(mopts, sizeof(mopts), "fsname=%s,subtype=sluice,default_permissions%s%s", fsname,
		 mnt->opts.allow_other ? ",allow_other" : "",
		 !mnt->is_dir && mnt->opts.read_only ? ",ro" : "");
	mnt->se = fuse_session_new(&args, &g_fuse_ops, sizeof(g_fuse_ops), mnt);
	fuse_opt_free_args(&args);
	if (mnt->se == NULL) {
		return -EINVAL;
	}
	errno = 0;
	if (fuse_session_mount(mnt->se, mnt->path) != 0) {
		rc = errno != 0 ? -errno : -EIO;
		SL_ERRLOG("fuse: cannot mount %s: %s\n", mnt->path, strerror(-rc));
		return rc;
	}
	/* Replies go through our writev hook (the clone fds; open flags). */
	if (fuse_session_custom_io(mnt->se, &g_fuse_custom_io, fuse_session_fd(mnt->se)) != 0) {
		return -EINVAL;
	}
	return 0;
}

static void
fuse_mnt_finish_start(struct fuse_mnt *mnt)
{
	sl_fuse_done_cb cb = mnt->start_cb;
	void *cb_arg = mnt->start_cb_arg;

	mnt->start_cb = NULL;
	if (mnt->start_rc != 0) {
		/* Tear down what started; start_cb gets start_rc when it is gone. */
		mnt->start_cb = cb;
		fuse_mnt_stop(mnt, NULL, NULL);
		return;
	}
	mnt->state = FUSE_MNT_RUNNING;
	SL_NOTICELOG("fuse: %s %s served by %u reactor(s)\n", mnt->is_dir ? "directory" : "disk",
		     mnt->path, mnt->num_chans);
	if (cb != NULL) {
		cb(cb_arg, 0);
	}
	if (mnt->stop_deferred) {
		mnt->stop_deferred = false;
		fuse_mnt_stop(mnt, NULL, NULL);
	}
}

static void
fuse_chan_started_msg(void *ctx)
{
	struct fuse_chan *chan = ctx;
	struct fuse_mnt *mnt = chan->mnt;

	if (++mnt->chans_ready == mnt->num_chans) {
		fuse_mnt_finish_start(mnt);
	}
}

static void
fuse_chan_start_msg(void *ctx)
{
	struct fuse_chan *chan = ctx;
	int rc = fuse_chan_start(chan);

	if (rc != 0) {
		SL_ERRLOG("fuse %s: channel %u: cannot poll: %s\n", chan->mnt->path, chan->index,
			  strerror(-rc));
		chan->mnt->start_rc = rc;
	}
	sl_thread_send_msg(sl_thread_get_app_thread(), fuse_chan_started_msg, chan);
}

/* Open the clone fds and put one thread per reactor on them. */
static int
fuse_mnt_start_chans(struct fuse_mnt *mnt)
{
	struct fuse_chan *chan;
	char name[64];
	uint32_t i;
	int rc;

	for (i = 0; i < mnt->num_chans; i++) {
		rc = fuse_chan_init(&mnt->chans[i], mnt, i, fuse_session_fd(mnt->se));
		if (rc != 0) {
			return rc;
		}
	}
	for (i = 0; i < mnt->num_chans; i++) {
		chan = &mnt->chans[i];
		snprintf(name, sizeof(name), "fuse_%s_%u", mnt->path, i);
		chan->thread = sl_reactor_count() > 0 ? sl_reactor_thread_create(i, name)
						      : sl_thread_create(name, NULL);
		if (chan->thread == NULL) {
			return -ENOMEM;
		}
	}
	for (i = 0; i < mnt->num_chans; i++) {
		rc = sl_thread_send_msg(mnt->chans[i].thread, fuse_chan_start_msg, &mnt->chans[i]);
		if (rc != 0) {
			/* Counted as started; the stop that follows takes the thread down. */
			mnt->start_rc = rc;
			fuse_chan_started_msg(&mnt->chans[i]);
		}
	}
	return 0;
}

/* Mount and start serving; mnt->disk or nothing is exported yet. */
static void
fuse_mnt_start(struct fuse_mnt *mnt, sl_fuse_done_cb cb, void *cb_arg)
{
	int rc;

	mnt->start_cb = cb;
	mnt->start_cb_arg = cb_arg;
	rc = fuse_mnt_session(mnt);
	if (rc != 0) {
		goto err;
	}
	TAILQ_INSERT_TAIL(&g_fuse_mnts, mnt, link);
	rc = fuse_mnt_start_chans(mnt);
	if (rc != 0) {
		/* Threads may exist: stop through the normal path, which reports rc. */
		mnt->start_rc = rc;
		mnt->chans_ready = mnt->num_chans;
		fuse_mnt_finish_start(mnt);
	}
	return;
err:
	fuse_mnt_free(mnt);
	cb(cb_arg, rc);
}

void
sl_fuse_disk_start(const char *bdev_name, const char *path, const struct sl_fuse_opts *opts,
		   sl_fuse_done_cb cb, void *cb_arg)
{
	struct sl_fuse_opts defaults;
	struct fuse_mnt *mnt;
	int rc;

	if (opts == NULL) {
		sl_fuse_opts_init(&defaults);
		opts = &defaults;
	}
	if (bdev_name == NULL || path == NULL || opts->mode > 07777) {
		cb(cb_arg, -EINVAL);
		return;
	}
	rc = fuse_mnt_alloc(path, false, opts, &mnt);
	if (rc != 0) {
		cb(cb_arg, rc);
		return;
	}
	if (fuse_mnt_find(mnt->path) != NULL) {
		rc = -EEXIST;
		goto err;
	}
	rc = fuse_exp_create(mnt, bdev_name, NULL, opts->read_only, &mnt->disk);
	if (rc != 0) {
		goto err;
	}
	TAILQ_INSERT_TAIL(&mnt->exports, mnt->disk, link);
	rc = fuse_mnt_check_path(mnt);
	if (rc != 0) {
		SL_ERRLOG("fuse: %s: %s\n", mnt->path, strerror(-rc));
		goto err;
	}
	fuse_mnt_start(mnt, cb, cb_arg);
	return;
err:
	fuse_mnt_free(mnt);
	cb(cb_arg, rc);
}

void
sl_fuse_mount_start(const char *dir, const struct sl_fuse_opts *opts, sl_fuse_done_cb cb,
		    void *cb_arg)
{
	struct sl_fuse_opts defaults;
	struct fuse_mnt *mnt;
	int rc;

	if (opts == NULL) {
		sl_fuse_opts_init(&defaults);
		opts = &defaults;
	}
	if (dir == NULL || opts->mode > 07777) {
		cb(cb_arg, -EINVAL);
		return;
	}
	rc = fuse_mnt_alloc(dir, true, opts, &mnt);
	if (rc != 0) {
		cb(cb_arg, rc);
		return;
	}
	rc = fuse_mnt_find(mnt->path) != NULL ? -EEXIST : fuse_mnt_check_path(mnt);
	if (rc != 0) {
		fuse_mnt_free(mnt);
		cb(cb_arg, rc);
		return;
	}
	fuse_mnt_start(mnt, cb, cb_arg);
}

/* ---- stopping -------------------------------------------------------------------- */

static void
fuse_chan_stop_msg(void *ctx)
{
	fuse_chan_stop(ctx);
}

static void
fuse_mnt_done(struct fuse_mnt *mnt)
{
	struct fuse_stop_waiter *waiters = mnt->waiters;
	uint32_t i, count = mnt->stop_waiters;
	sl_fuse_done_cb start_cb = mnt->start_cb;
	void *start_cb_arg = mnt->start_cb_arg;
	int start_rc = mnt->start_rc;

	SL_NOTICELOG("fuse: %s unmounted\n", mnt->path);
	TAILQ_REMOVE(&g_fuse_mnts, mnt, link);
	mnt->waiters = NULL;
	fuse_mnt_free(mnt);
	if (start_cb != NULL) {
		start_cb(start_cb_arg, start_rc);
	}
	for (i = 0; i < count; i++) {
		waiters[i].cb(waiters[i].cb_arg, 0);
	}
	free(waiters);
}

void
fuse_chan_finished(struct fuse_chan *chan)
{
	struct fuse_mnt *mnt = chan->mnt;

	if (++mnt->chans_ready == mnt->num_chans) {
		fuse_mnt_done(mnt);
	}
}

static void
fuse_mnt_stop(struct fuse_mnt *mnt, sl_fuse_done_cb cb, void *cb_arg)
{
	struct fuse_stop_waiter *w;
	uint32_t i, threads = 0;

	if (cb != NULL) {
		w = realloc(mnt->waiters, sizeof(*w) * (mnt->stop_waiters + 1));
		if (w == NULL) {
			cb(cb_arg, -ENOMEM);
			return;
		}
		mnt->waiters = w;
		w[mnt->stop_waiters++] = (struct fuse_stop_waiter){.cb = cb, .cb_arg = cb_arg};
	}
	if (mnt->state == FUSE_MNT_STOPPING) {
		return;
	}
	if ((mnt->state == FUSE_MNT_STARTING && mnt->start_cb != NULL && mnt->start_rc == 0) ||
	    mnt->removals != 0) {
		/* Resumed when the start or the removals finish. */
		mnt->stop_deferred = true;
		return;
	}
	mnt->state = FUSE_MNT_STOPPING;
	/* Quiet libfuse's "writing device" complaints about the aborted connection. */
	fuse_session_exit(mnt->se);
	/* Lazy: files still open keep working until the channels close. */
	fuse_session_unmount(mnt->se);
	mnt->chans_ready = 0;
	for (i = 0; i < mnt->num_chans; i++) {
		if (mnt->chans[i].thread != NULL &&
		    sl_thread_send_msg(mnt->chans[i].thread, fuse_chan_stop_msg, &mnt->chans[i]) ==
			    0) {
			threads++;
		} else {
			mnt->chans_ready++;
		}
	}
	if (threads == 0) {
		fuse_mnt_done(mnt);
	}
}

static void
fuse_mnt_stop_msg(void *ctx)
{
	struct fuse_mnt *mnt = ctx;

	/* Our own unmount also ends the connection: only an outside one is news. */
	if (mnt->state != FUSE_MNT_STOPPING) {
		SL_NOTICELOG("fuse %s: connection gone (unmounted from outside?): stopping\n",
			     mnt->path);
		fuse_mnt_stop(mnt, NULL, NULL);
	}
}

void
fuse_mnt_stop_async(struct fuse_mnt *mnt)
{
	sl_thread_send_msg(sl_thread_get_app_thread(), fuse_mnt_stop_msg, mnt);
}

static void
fuse_stop_path(const char *path, bool is_dir, sl_fuse_done_cb cb, void *cb_arg)
{
	char *canon = fuse_path_canonical(path);
	struct fuse_mnt *mnt = canon != NULL ? fuse_mnt_find(canon) : NULL;

	free(canon);
	if (mnt == NULL || mnt->is_dir != is_dir) {
		cb(cb_arg, -ENOENT);
		return;
	}
	fuse_mnt_stop(mnt, cb, cb_arg);
}

void
sl_fuse_disk_stop(const char *path, sl_fuse_done_cb cb, void *cb_arg)
{
	fuse_stop_path(path, false, cb, cb_arg);
}

void
sl_fuse_mount_stop(const char *dir, sl_fuse_done_cb cb, void *cb_arg)
{
	fuse_stop_path(dir, true, cb, cb_arg);
}

struct fuse_stop_all_ctx {
	uint32_t pending;
	sl_fuse_done_cb cb;
	void *cb_arg;
};

static void
fuse_stop_all_one(void *cb_arg, int rc)
{
	struct fuse_stop_all_ctx *ctx = cb_arg;

	if (--ctx->pending == 0) {
		ctx->cb(ctx->cb_arg, 0);
		free(ctx);
	}
}

void
sl_fuse_stop_all(sl_fuse_done_cb cb, void *cb_arg)
{
	struct fuse_stop_all_ctx *ctx;
	struct fuse_mnt *mnt, *tmp;

	ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL) {
		cb(cb_arg, -ENOMEM);
		return;
	}
	ctx->cb = cb;
	ctx->cb_arg = cb_arg;
	/* Held by this loop, so that a mount finishing at once does not end it early. */
	ctx->pending = 1;
	TAILQ_FOREACH_SAFE (mnt, &g_fuse_mnts, link, tmp) {
		ctx->pending++;
		fuse_mnt_stop(mnt, fuse_stop_all_one, ctx);
	}
	fuse_stop_all_one(ctx, 0);
}

/* ---- directory exports ------------------------------------------------------------- */

static struct fuse_mnt *
fuse_dir_find(const char *dir)
{
	struct fuse_mnt *mnt, *found = NULL;
	char *canon;

	if (dir != NULL) {
		canon = fuse_path_canonical(dir);
		found = canon != NULL ? fuse_mnt_find(canon) : NULL;
		free(canon);
		return found != NULL && found->is_dir ? found : NULL;
	}
	TAILQ_FOREACH (mnt, &g_fuse_mnts, link) {
		if (mnt->is_dir) {
			if (found != NULL) {
				return NULL;
			}
			found = mnt;
		}
	}
	return found;
}

static bool
fuse_name_valid(const char *name)
{
	return name[0] != '\0' && strchr(name, '/') == NULL && strcmp(name, ".") != 0 &&
	       strcmp(name, "..") != 0 && strlen(name) <= 255;
}

int
sl_fuse_export_add(const char *dir, const char *bdev_name, const char *name, bool read_only)
{
	struct fuse_mnt *mnt = fuse_dir_find(dir);
	struct fuse_exp *exp;
	int rc;

	if (mnt == NULL) {
		return -ENOENT;
	}
	if (mnt->state != FUSE_MNT_RUNNING) {
		return -EBUSY;
	}
	if (bdev_name == NULL) {
		return -EINVAL;
	}
	name = name != NULL ? name : bdev_name;
	if (!fuse_name_valid(name)) {
		return -EINVAL;
	}
	pthread_mutex_lock(&mnt->lock);
	exp = fuse_exp_find(mnt, name);
	pthread_mutex_unlock(&mnt->lock);
	if (exp != NULL) {
		return -EEXIST;
	}
	rc = fuse_exp_create(mnt, bdev_name, name, read_only, &exp);
	if (rc != 0) {
		return rc;
	}
	pthread_mutex_lock(&mnt->lock);
	TAILQ_INSERT_TAIL(&mnt->exports, exp, link);
	pthread_mutex_unlock(&mnt->lock);
	return 0;
}

static void
fuse_exp_chan_quiesce_msg(void *ctx)
{
	struct fuse_exp_chan *ec = ctx;

	fuse_exp_chan_quiesce(ec->exp, ec->chan);
}

void
fuse_exp_chan_quiesced(struct fuse_exp *exp)
{
	struct fuse_mnt *mnt = exp->mnt;
	sl_fuse_done_cb cb = exp->remove_cb;

	if (++exp->quiesced < mnt->num_chans) {
		return;
	}
	sl_bdev_close(exp->desc);
	exp->desc = NULL;
	mnt->removals--;
	SL_NOTICELOG("fuse %s: removed %s\n", mnt->path, exp->name);
	if (cb != NULL) {
		cb(exp->remove_cb_arg, 0);
	}
	if (mnt->removals == 0 && mnt->stop_deferred) {
		mnt->stop_deferred = false;
		fuse_mnt_stop(mnt, NULL, NULL);
	}
}

static void
fuse_exp_remove(struct fuse_exp *exp, sl_fuse_done_cb cb, void *cb_arg)
{
	struct fuse_mnt *mnt = exp->mnt;
	uint32_t i;

	if (mnt->state != FUSE_MNT_RUNNING || atomic_load(&exp->removing)) {
		if (cb != NULL) {
			cb(cb_arg, -EBUSY);
		}
		return;
	}
	exp->remove_cb = cb;
	exp->remove_cb_arg = cb_arg;
	exp->quiesced = 0;
	/* New requests fail from here on; those in flight finish on their channels. */
	atomic_store_explicit(&exp->removing, true, memory_order_release);
	pthread_mutex_lock(&mnt->lock);
	TAILQ_REMOVE(&mnt->exports, exp, link);
	TAILQ_INSERT_TAIL(&mnt->removed, exp, link);
	pthread_mutex_unlock(&mnt->lock);
	mnt->removals++;
	for (i = 0; i < mnt->num_chans; i++) {
		if (sl_thread_send_msg(mnt->chans[i].thread, fuse_exp_chan_quiesce_msg,
				       &exp->chans[i]) != 0) {
			SL_ERRLOG("fuse %s: cannot reach channel %u to remove %s\n", mnt->path, i,
				  exp->name);
			fuse_exp_chan_quiesced(exp);
		}
	}
}

void
sl_fuse_export_remove(const char *dir, const char *name, sl_fuse_done_cb cb, void *cb_arg)
{
	struct fuse_mnt *mnt = fuse_dir_find(dir);
	struct fuse_exp *exp = NULL;

	if (mnt != NULL && name != NULL) {
		pthread_mutex_lock(&mnt->lock);
		exp = fuse_exp_find(mnt, name);
		pthread_mutex_unlock(&mnt->lock);
	}
	if (exp == NULL) {
		cb(cb_arg, -ENOENT);
		return;
	}
	fuse_exp_remove(exp, cb, cb_arg);
}

/* ---- listing and stale mounts --------------------------------------------------------- */

void
sl_fuse_for_each_export(void (*fn)(const struct sl_fuse_export_info *info, void *ctx), void *ctx)
{
	struct sl_fuse_export_info info;
	struct fuse_mnt *mnt;
	struct fuse_exp *exp;

	TAILQ_FOREACH (mnt, &g_fuse_mnts, link) {
		memset(&info, 0, sizeof(info));
		info.mount_path = mnt->path;
		info.is_dir = mnt->is_dir;
		info.opts = &mnt->opts;
		if (mnt->is_dir && TAILQ_EMPTY(&mnt->exports)) {
			fn(&info, ctx);
			continue;
		}
		TAILQ_FOREACH (exp, &mnt->exports, link) {
			info.name = exp->name;
			info.bdev_name = exp->bdev_name;
			info.read_only = exp->read_only;
			fn(&info, ctx);
		}
	}
}

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void
fuse_unescape(char *s)
{
	char *out = s;

	while (*s != '\0') {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
			s += 4;
		} else {
			*out++ = *s++;
		}
	}
	*out = '\0';
}

int
sl_fuse_cleanup_stale_mounts(void)
{
	char line[4096], mnt_point[PATH_MAX], fstype[64];
	struct stat st;
	int cleaned = 0;
	FILE *f;
	char *sep;

	f = fopen("/proc/self/mountinfo", "re");
	if (f == NULL) {
		return -errno;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		/* "id parent maj:min root mount-point options [optional...] - fstype src super" */
		sep = strstr(line, " - ");
		if (sep == NULL || sscanf(line, "%*s %*s %*s %*s %4095s", mnt_point) != 1 ||
		    sscanf(sep + 3, "%63s", fstype) != 1 || strcmp(fstype, "fuse.sluice") != 0) {
			continue;
		}
		fuse_unescape(mnt_point);
		/* A live daemon answers; a dead one's mount says ENOTCONN. */
		if (stat(mnt_point, &st) == 0 || errno != ENOTCONN) {
			continue;
		}
		if (umount2(mnt_point, MNT_DETACH) != 0) {
			SL_WARNLOG("fuse: cannot unmount stale %s: %s\n", mnt_point,
				   strerror(errno));
			continue;
		}
		SL_NOTICELOG("fuse: unmounted %s, left by a daemon that died\n", mnt_point);
		cleaned++;
	}
	fclose(f);
	return cleaned;
}
