/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/** \file
 * FUSE export: bdevs as regular files, for hosts without the nbd module.
 *
 * Two shapes, both served by the same code:
 * - a disk: one bdev mounted over an existing regular file (fuse_start_disk, as
 *   qemu-storage-daemon's FUSE export does); the file is the bdev until stopped.
 * - a directory: a FUSE mount on a directory (fuse_mount) in which each exported
 *   bdev is a file (fuse_add_export / fuse_remove_export).
 *
 * The file's size is the bdev's. Reads and writes take any offset and length
 * (unaligned writes are read-modify-write, serialised against overlapping writes in
 * flight); fsync/fdatasync/close flush the bdev; fallocate PUNCH_HOLE|KEEP_SIZE unmaps
 * and ZERO_RANGE writes zeroes; SEEK_DATA/SEEK_HOLE come from the bdev's allocation
 * report; the size cannot change (truncate: EPERM; writes past the end: ENOSPC).
 *
 * Each mount is served by one thread per reactor, each reading its own clone of the
 * /dev/fuse fd from an fd poller; files are opened with direct I/O and parallel direct
 * writes. All functions run on the app thread; callbacks fire there, exactly once.
 */
#ifndef SLUICE_FUSE_EXPORT_H
#define SLUICE_FUSE_EXPORT_H

#include <stdbool.h>
#include <stdint.h>

/** Options of a mount (a disk, or a directory of exports). */
struct sl_fuse_opts {
	/** Disk: export read-only (mounted "ro"). Directory: ignored (per export). */
	bool read_only;
	/** Owner of the files (and of the directory). Default: the daemon's uid/gid. */
	uint32_t uid;
	uint32_t gid;
	/** Permission bits of the files (default 0600); a directory gets r/x where r is set. */
	uint32_t mode;
	/** Let users other than the owner in (mount option allow_other). */
	bool allow_other;
};

/** Fill opts with the defaults (read-write, daemon's uid/gid, mode 0600). */
void sl_fuse_opts_init(struct sl_fuse_opts *opts);

/** Completion of an asynchronous FUSE operation: rc 0 or -errno. */
typedef void (*sl_fuse_done_cb)(void *cb_arg, int rc);

/**
 * Export a bdev as the regular file path (fuse_start_disk). The file must exist and be
 * a regular file, or not exist (it is then created, and removed again at stop).
 * \param opts NULL for the defaults.
 * \param cb rc 0 once every reactor serves the mount; -ENODEV (no such bdev), -EEXIST
 *	(path already exported), -EPERM (bdev claimed by someone else), -EINVAL (path not a
 *	regular file, bad mode, block size over 64 KiB), -errno from mount(2).
 */
void sl_fuse_disk_start(const char *bdev_name, const char *path, const struct sl_fuse_opts *opts,
			sl_fuse_done_cb cb, void *cb_arg);
/**
 * Stop a disk or directory mount: lazily unmount, complete the I/O in flight, fail what
 * the kernel still queues (ENOTCONN), close the bdevs.
 * \param cb rc 0, or -ENOENT (nothing mounted there by us).
 */
void sl_fuse_disk_stop(const char *path, sl_fuse_done_cb cb, void *cb_arg);

/**
 * Mount an empty FUSE directory at dir (fuse_mount); add files with sl_fuse_export_add().
 * \param cb rc 0, -EEXIST, -ENOTDIR, -errno from mount(2).
 */
void sl_fuse_mount_start(const char *dir, const struct sl_fuse_opts *opts, sl_fuse_done_cb cb,
			 void *cb_arg);
/** Unmount a directory mount and every export in it; as sl_fuse_disk_stop(). */
void sl_fuse_mount_stop(const char *dir, sl_fuse_done_cb cb, void *cb_arg);

/**
 * Export a bdev as file name in the directory mount dir.
 * \param dir the mount, or NULL when exactly one directory mount exists.
 * \param name the file name, or NULL for the bdev's name.
 * \return 0, -ENOENT (no such mount, or several and dir NULL), -ENODEV (no such bdev),
 * -EEXIST (name taken), -EINVAL (bad name, block size over 64 KiB), -EPERM (claimed).
 */
int sl_fuse_export_add(const char *dir, const char *bdev_name, const char *name, bool read_only);
/**
 * Remove file name from a directory mount once its I/O in flight has completed.
 * \param cb rc 0, -ENOENT, -EBUSY (the mount is stopping).
 */
void sl_fuse_export_remove(const char *dir, const char *name, sl_fuse_done_cb cb, void *cb_arg);

/** Stop every mount (the "fuse" subsystem's fini). cb(0) when all are gone. */
void sl_fuse_stop_all(sl_fuse_done_cb cb, void *cb_arg);

/**
 * Unmount FUSE mounts of ours (type fuse.sluice) whose daemon died: their mount point
 * answers ENOTCONN. Live mounts of other processes are left alone.
 * \return the number of mounts cleaned, or -errno (mountinfo unreadable).
 */
int sl_fuse_cleanup_stale_mounts(void);

/** What sl_fuse_for_each_export() reports about one exported file. */
struct sl_fuse_export_info {
	/** The mount: the file itself (disk) or the directory. */
	const char *mount_path;
	/** True for a directory mount. */
	bool is_dir;
	/** File name inside the directory (disk: NULL). */
	const char *name;
	const char *bdev_name;
	bool read_only;
	const struct sl_fuse_opts *opts;
};

/**
 * Call fn for each mount and each export (a directory mount with no export is reported
 * once with name and bdev_name NULL), in creation order.
 */
void sl_fuse_for_each_export(void (*fn)(const struct sl_fuse_export_info *info, void *ctx),
			     void *ctx);

#endif /* SLUICE_FUSE_EXPORT_H */
