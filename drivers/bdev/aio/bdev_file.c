/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * The backing file of an aio or uring bdev.
 *
 * O_DIRECT is used when the file system has it and the bdev's block size is a
 * multiple of the direct-I/O offset alignment (statx STATX_DIOALIGN, or BLKSSZGET for
 * block devices); a read of the first block proves it. Otherwise the file is used
 * buffered, with a notice: tmpfs has no O_DIRECT, and a 512-byte bdev on a 4Kn disk
 * cannot use it. With O_DIRECT the bdev declares the memory alignment the kernel
 * needs, and the block layer bounces misaligned user buffers.
 *
 * Unmap and write-zeroes map to fallocate. Which modes work is learnt on an O_TMPFILE
 * in the file's directory, so that probing never touches the user's data or leaves
 * blocks allocated past its end. Write-zeroes prefers ZERO_RANGE and falls back to
 * PUNCH_HOLE, which reads back as zeroes too (tmpfs has only the latter).
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bdev_file.h"
#include "sluice/env.h"
#include "sluice/log.h"
#include "sluice/thread.h"
#include "sluice/util.h"

#define FILE_PUNCH_MODE (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)
#define FILE_ZERO_MODE  (FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE)
#define FILE_PROBE_LEN  4096u

struct file_geometry {
	uint64_t size;
	/* Offset/length alignment O_DIRECT needs; 0 when the file has no O_DIRECT. */
	uint32_t dio_offset_align;
	uint32_t dio_mem_align;
};

static int
file_reopen(struct bdev_file *f, bool direct)
{
	int flags = (f->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | (direct ? O_DIRECT : 0);
	int fd;

	fd = open(f->filename, flags);
	if (fd < 0) {
		return -errno;
	}
	if (f->fd >= 0) {
		close(f->fd);
	}
	f->fd = fd;
	f->direct = direct;
	return 0;
}

static void
file_fall_back_to_buffered(struct bdev_file *f, const char *why)
{
	if (!f->direct) {
		return;
	}
	if (file_reopen(f, false) == 0) {
		SL_NOTICELOG("%s: %s; using buffered I/O (flush still reaches the disk)\n",
			     f->filename, why);
	}
}

static void
file_statx_dio(int fd, struct file_geometry *geo)
{
#ifdef STATX_DIOALIGN
	struct statx stx;

	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN) != 0) {
		geo->dio_offset_align = stx.stx_dio_offset_align;
		geo->dio_mem_align = stx.stx_dio_mem_align;
		return;
	}
#endif
	/* Kernels before 6.1: most file systems take 512-byte aligned direct I/O. */
	geo->dio_offset_align = 512;
	geo->dio_mem_align = 512;
}

static int
file_get_geometry(struct bdev_file *f, struct file_geometry *geo, char *err, size_t errlen)
{
	struct stat st;
	int lbs;

	if (fstat(f->fd, &st) != 0) {
		snprintf(err, errlen, "cannot stat '%s': %s", f->filename, strerror(errno));
		return -errno;
	}
	memset(geo, 0, sizeof(*geo));
	if (S_ISBLK(st.st_mode)) {
		f->is_blockdev = true;
		if (ioctl(f->fd, BLKGETSIZE64, &geo->size) != 0 ||
		    ioctl(f->fd, BLKSSZGET, &lbs) != 0) {
			snprintf(err, errlen, "cannot get the geometry of '%s': %s", f->filename,
				 strerror(errno));
			return -errno;
		}
		file_statx_dio(f->fd, geo);
		/* The logical block size is the device's; statx may report a smaller one. */
		geo->dio_offset_align = (uint32_t)lbs;
		return 0;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "'%s' is neither a regular file nor a block device",
			 f->filename);
		return -EINVAL;
	}
	geo->size = (uint64_t)st.st_size;
	if (f->direct) {
		file_statx_dio(f->fd, geo);
	}
	return 0;
}

static int
file_check_block_size(struct bdev_file *f, const struct file_geometry *geo, uint32_t block_size,
		      char *err, size_t errlen)
{
	if (block_size == 0) {
		block_size = f->is_blockdev ? geo->dio_offset_align
					    : SL_MAX(512u, geo->dio_offset_align);
	} else {
		f->block_size_override = true;
	}
	if (block_size < 512 || !SL_IS_POW2(block_size)) {
		snprintf(err, errlen, "block_size %" PRIu32 " is not a power of two >= 512",
			 block_size);
		return -EINVAL;
	}
	if (f->is_blockdev && block_size < geo->dio_offset_align) {
		snprintf(err, errlen,
			 "block_size %" PRIu32 " is smaller than the logical block size %" PRIu32
			 " of '%s'",
			 block_size, geo->dio_offset_align, f->filename);
		return -EINVAL;
	}
	if (geo->size < block_size) {
		snprintf(err, errlen,
			 "'%s' (%" PRIu64 " bytes) is smaller than one block of %" PRIu32 " bytes",
			 f->filename, geo->size, block_size);
		return -EINVAL;
	}
	f->blocklen = block_size;
	f->blockcnt = geo->size / block_size;
	if (geo->size % block_size != 0) {
		SL_NOTICELOG("%s: the last %" PRIu64
			     " bytes are not a whole block and are not used\n",
			     f->filename, geo->size % block_size);
	}
	return 0;
}

/* Prove O_DIRECT with a read of the first block (some file systems fail only at I/O). */
static void
file_probe_direct(struct bdev_file *f, const struct file_geometry *geo)
{
	void *buf;
	ssize_t n;

	if (!f->direct) {
		return;
	}
	if (geo->dio_offset_align == 0 || f->blocklen % geo->dio_offset_align != 0) {
		file_fall_back_to_buffered(f, "the block size is not a multiple of the direct "
					      "I/O alignment");
		return;
	}
	f->mem_align = SL_MAX(geo->dio_mem_align, 1u);
	if (posix_memalign(&buf, SL_MAX(f->mem_align, 4096u), f->blocklen) != 0) {
		return;
	}
	n = pread(f->fd, buf, f->blocklen, 0);
	if (n < 0 && errno == EINVAL) {
		file_fall_back_to_buffered(f, "O_DIRECT reads fail");
	}
	free(buf);
}

static bool
file_try_fallocate(int fd, int mode)
{
	return fallocate(fd, mode, 0, FILE_PROBE_LEN) == 0;
}

/* Learn the fallocate modes on a scratch O_TMPFILE beside the file. */
static void
file_probe_fallocate(struct bdev_file *f)
{
	char *path, *dir;
	int fd;

	if (f->readonly || !f->use_fallocate) {
		return;
	}
	if (f->is_blockdev) {
		/* blkdev_fallocate (Linux 4.9) has both: discard and zero-out. */
		f->punch_mode = FILE_PUNCH_MODE;
		f->zero_mode = FILE_ZERO_MODE;
		return;
	}
	path = strdup(f->filename);
	if (path == NULL) {
		return;
	}
	dir = dirname(path);
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	free(path);
	if (fd < 0) {
		/* No O_TMPFILE: punching past the end of the file is harmless everywhere. */
		if (fallocate(f->fd, FILE_PUNCH_MODE, (off_t)f->blockcnt * f->blocklen,
			      FILE_PROBE_LEN) == 0) {
			f->punch_mode = f->zero_mode = FILE_PUNCH_MODE;
		}
		return;
	}
	if (ftruncate(fd, FILE_PROBE_LEN) == 0) {
		if (file_try_fallocate(fd, FILE_PUNCH_MODE)) {
			f->punch_mode = FILE_PUNCH_MODE;
		}
		if (file_try_fallocate(fd, FILE_ZERO_MODE)) {
			f->zero_mode = FILE_ZERO_MODE;
		} else {
			/* A punched hole reads as zeroes: as good for write-zeroes. */
			f->zero_mode = f->punch_mode;
		}
	}
	close(fd);
}

int
bdev_file_open(struct bdev_file *f, const struct bdev_file_opts *opts, char *err, size_t errlen)
{
	struct file_geometry geo;
	int rc;

	memset(f, 0, sizeof(*f));
	f->fd = -1;
	f->readonly = opts->readonly;
	f->use_fallocate = opts->use_fallocate;
	f->mem_align = 1;
	f->filename = strdup(opts->filename);
	if (f->filename == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = file_reopen(f, true);
	if (rc == -EINVAL) {
		/* tmpfs and a few others refuse O_DIRECT at open. */
		rc = file_reopen(f, false);
		if (rc == 0) {
			SL_NOTICELOG("%s: no O_DIRECT on this file system; using buffered I/O "
				     "(flush still reaches the disk)\n",
				     f->filename);
		}
	}
	if (rc != 0) {
		snprintf(err, errlen, "cannot open '%s': %s", f->filename, strerror(-rc));
		goto err;
	}
	rc = file_get_geometry(f, &geo, err, errlen);
	if (rc == 0) {
		rc = file_check_block_size(f, &geo, opts->block_size, err, errlen);
	}
	if (rc != 0) {
		goto err;
	}
	file_probe_direct(f, &geo);
	if (!f->direct) {
		f->mem_align = 1;
	}
	file_probe_fallocate(f);
	return 0;
err:
	bdev_file_close(f);
	return rc;
}

void
bdev_file_close(struct bdev_file *f)
{
	if (f->fd >= 0) {
		close(f->fd);
		f->fd = -1;
	}
	free(f->filename);
	f->filename = NULL;
}

static void
file_fill_bdev(const struct bdev_file *f, struct sl_bdev *bdev)
{
	bdev->blocklen = f->blocklen;
	bdev->blockcnt = f->blockcnt;
	bdev->required_alignment = f->direct ? f->mem_align : 1;
	/* Page cache or the disk's cache: flush matters, so exports advertise it. */
	bdev->write_cache = true;
}

static int
file_get_blockcnt(const struct bdev_file *f, uint64_t *blockcnt)
{
	struct stat st;
	uint64_t size;

	if (f->is_blockdev) {
		if (ioctl(f->fd, BLKGETSIZE64, &size) != 0) {
			return -errno;
		}
	} else {
		if (fstat(f->fd, &st) != 0) {
			return -errno;
		}
		size = (uint64_t)st.st_size;
	}
	*blockcnt = size / f->blocklen;
	return 0;
}

int
bdev_file_fallocate(const struct bdev_file *f, int mode, uint64_t offset, uint64_t len)
{
	if (fallocate(f->fd, mode, (off_t)offset, (off_t)len) != 0) {
		return errno == EOPNOTSUPP ? -ENOTSUP : -errno;
	}
	return 0;
}

static uint32_t
file_add_extent(struct sl_bdev_extent *extents, uint32_t n, uint64_t offset, uint64_t end,
		uint32_t flags)
{
	extents[n].offset = offset;
	extents[n].length = end - offset;
	extents[n].flags = flags;
	return n + 1;
}

static int
file_get_allocation(const struct bdev_file *f, uint64_t offset, uint64_t nbytes,
		    struct sl_bdev_extent *extents, uint32_t max_extents)
{
	uint64_t pos = offset, end = offset + nbytes, next;
	uint32_t n = 0;
	off_t r;

	if (f->is_blockdev) {
		return (int)file_add_extent(extents, 0, offset, end, 0);
	}
	/* lseek moves the shared file position, which no I/O of ours uses (all pread-like). */
	while (pos < end && n < max_extents) {
		r = lseek(f->fd, (off_t)pos, SEEK_DATA);
		if (r < 0 && errno != ENXIO) {
			/* No SEEK_DATA here: report data, as the contract allows. */
			return n > 0 ? (int)n : (int)file_add_extent(extents, 0, pos, end, 0);
		}
		next = r < 0 ? end : SL_MIN((uint64_t)r, end);
		if (next > pos) {
			n = file_add_extent(extents, n, pos, next,
					    SL_BDEV_EXTENT_HOLE | SL_BDEV_EXTENT_ZERO);
			pos = next;
			continue;
		}
		r = lseek(f->fd, (off_t)pos, SEEK_HOLE);
		next = r < 0 || (uint64_t)r <= pos ? end : SL_MIN((uint64_t)r, end);
		n = file_add_extent(extents, n, pos, next, 0);
		pos = next;
	}
	return (int)n;
}

static int
file_dump_info(const struct bdev_file *f, json_t *obj)
{
	int rc = 0;

	rc |= json_object_set_new(obj, "filename", json_string(f->filename));
	rc |= json_object_set_new(obj, "block_size_override", json_boolean(f->block_size_override));
	rc |= json_object_set_new(obj, "readonly", json_boolean(f->readonly));
	rc |= json_object_set_new(obj, "fallocate", json_boolean(f->use_fallocate));
	rc |= json_object_set_new(obj, "direct_io", json_boolean(f->direct));
	return rc == 0 ? 0 : -ENOMEM;
}

/* ---- Disks ------------------------------------------------------------------------- */

/* Every aio and uring disk; touched on the app thread only (RPCs and bdev destruct). */
static TAILQ_HEAD(, bdev_file_disk) g_file_disks = TAILQ_HEAD_INITIALIZER(g_file_disks);

static void
file_disk_free(struct bdev_file_disk *disk)
{
	bdev_file_close(&disk->file);
	free(disk->bdev.name);
	free(disk);
}

int
bdev_file_disk_create(const struct bdev_file_module *m, const char *name, const char *uuid,
		      const struct bdev_file_opts *fopts, char *err, size_t errlen)
{
	struct bdev_file_disk *disk;
	int rc;

	if (sl_bdev_get_by_name(name) != NULL) {
		snprintf(err, errlen, "bdev %s already exists", name);
		return -EEXIST;
	}
	disk = calloc(1, m->disk_size);
	if (disk == NULL || (disk->bdev.name = strdup(name)) == NULL) {
		free(disk);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* Not yet open: file_disk_free must not close fd 0. */
	disk->file.fd = -1;
	if (uuid != NULL && sl_bdev_uuid_parse(uuid, disk->bdev.uuid) != 0) {
		snprintf(err, errlen, "invalid uuid '%s'", uuid);
		rc = -EINVAL;
		goto err;
	}
	rc = bdev_file_open(&disk->file, fopts, err, errlen);
	if (rc != 0) {
		goto err;
	}
	if (m->disk_init != NULL) {
		m->disk_init(disk);
	}
	disk->bdev.product_name = m->product_name;
	file_fill_bdev(&disk->file, &disk->bdev);
	disk->bdev.ctxt = disk;
	disk->bdev.fn_table = m->fn_table;
	disk->bdev.module = m->module;
	rc = sl_bdev_register(&disk->bdev);
	if (rc != 0) {
		snprintf(err, errlen,
			 rc == -EEXIST ? "bdev %s already exists" : "cannot register %s", name);
		goto err;
	}
	sl_io_device_register(&disk->file, m->channel_create, m->channel_destroy, m->channel_size,
			      disk->bdev.name);
	TAILQ_INSERT_TAIL(&g_file_disks, disk, link);
	return 0;
err:
	file_disk_free(disk);
	return rc;
}

int
bdev_file_disk_rescan(const char *name, const struct sl_bdev_module *module)
{
	struct bdev_file_disk *disk;
	uint64_t blockcnt = 0;
	int rc;

	TAILQ_FOREACH (disk, &g_file_disks, link) {
		if (disk->bdev.module == module && strcmp(disk->bdev.name, name) == 0) {
			break;
		}
	}
	if (disk == NULL) {
		return -ENODEV;
	}
	rc = file_get_blockcnt(&disk->file, &blockcnt);
	if (rc != 0 || blockcnt == disk->bdev.blockcnt) {
		return rc;
	}
	SL_NOTICELOG("%s: %s resized from %" PRIu64 " to %" PRIu64 " blocks\n", name,
		     disk->file.filename, disk->bdev.blockcnt, blockcnt);
	return sl_bdev_notify_blockcnt_change(&disk->bdev, blockcnt);
}

json_t *
bdev_file_disk_config_params(const struct bdev_file_disk *disk)
{
	char uuid[SL_BDEV_UUID_STR_LEN];
	json_t *params;

	sl_bdev_uuid_fmt(disk->bdev.uuid, uuid, sizeof(uuid));
	params = json_pack("{s:s, s:s, s:s}", "name", disk->bdev.name, "filename",
			   disk->file.filename, "uuid", uuid);
	if (params != NULL && disk->file.block_size_override) {
		json_object_set_new(params, "block_size", json_integer(disk->bdev.blocklen));
	}
	return params;
}

static void
file_disk_unregistered(void *io_device)
{
	struct bdev_file_disk *disk = SL_CONTAINEROF(io_device, struct bdev_file_disk, file);

	sl_bdev_destruct_done(&disk->bdev, 0);
	file_disk_free(disk);
}

int
bdev_file_disk_destruct(void *ctxt)
{
	struct bdev_file_disk *disk = ctxt;

	TAILQ_REMOVE(&g_file_disks, disk, link);
	/* Completes once every channel is gone (file_disk_unregistered). */
	sl_io_device_unregister(&disk->file, file_disk_unregistered);
	return 1;
}

bool
bdev_file_disk_io_type_supported(void *ctxt, enum sl_bdev_io_type type)
{
	struct bdev_file_disk *disk = ctxt;

	switch (type) {
	case SL_BDEV_IO_TYPE_READ:
	case SL_BDEV_IO_TYPE_FLUSH:
		return true;
	case SL_BDEV_IO_TYPE_WRITE:
		return !disk->file.readonly;
	case SL_BDEV_IO_TYPE_UNMAP:
		return disk->file.punch_mode != 0;
	case SL_BDEV_IO_TYPE_WRITE_ZEROES:
		return disk->file.zero_mode != 0;
	default:
		return false;
	}
}

struct sl_io_channel *
bdev_file_disk_get_io_channel(void *ctxt)
{
	struct bdev_file_disk *disk = ctxt;

	return sl_get_io_channel(&disk->file);
}

int
bdev_file_disk_dump_info_json(void *ctxt, json_t *driver_specific)
{
	struct bdev_file_disk *disk = ctxt;
	json_t *obj = json_object();
	int rc;

	if (obj == NULL) {
		return -ENOMEM;
	}
	rc = file_dump_info(&disk->file, obj);
	if (json_object_set_new(driver_specific, disk->bdev.module->name, obj) != 0) {
		rc = -ENOMEM;
	}
	return rc;
}

int
bdev_file_disk_get_allocation(void *ctxt, uint64_t offset, uint64_t nbytes,
			      struct sl_bdev_extent *extents, uint32_t max_extents)
{
	struct bdev_file_disk *disk = ctxt;

	return file_get_allocation(&disk->file, offset, nbytes, extents, max_extents);
}
