/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/** \file
 * Export of bdevs to the local kernel as /dev/nbdX block devices (SPDK's
 * nbd_start_disk / nbd_stop_disk / nbd_get_disks).
 *
 * Each disk is a kernel NBD device connected through the kernel's "nbd" generic
 * netlink family (NBD_CMD_CONNECT), with ioctls as a fallback on kernels without it.
 * The kernel is given one end of a socketpair per connection; the other end is served
 * by the transmission-phase engine of nbd.h (sl_nbd_conn_serve) on an NBD thread of
 * one of the reactors (one connection per reactor by default).
 *
 * A device is tagged with a backend identifier, "sluice:<bdev name>:<bdev uuid>".
 * With a dead-connection timeout set (the default), the kernel keeps the device and
 * queues its I/O when the serving process dies; starting the same bdev again (the
 * same nbd_start_disk, e.g. from the saved config) finds the device by that
 * identifier and re-binds it with NBD_CMD_RECONFIGURE instead of connecting a new
 * one, so a filesystem mounted on it carries on. A device tagged with another
 * identifier is never re-bound (the kernel checks it too).
 *
 * Every function runs on the app thread.
 */
#ifndef SLUICE_NBD_KERNEL_H
#define SLUICE_NBD_KERNEL_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "sluice/nbd.h"

struct sl_nbd_disk;

/** Longest device path ("/dev/nbd12345"), with its NUL. */
#define SL_NBD_DISK_PATH_LEN 32

/** Defaults of sl_nbd_disk_opts (seconds). */
#define SL_NBD_DISK_DEFAULT_TIMEOUT      30
#define SL_NBD_DISK_DEFAULT_DEAD_TIMEOUT 60

/** What to export and how. */
struct sl_nbd_disk_opts {
	/** The bdev (name or alias). */
	const char *bdev_name;
	/** "/dev/nbdX", or NULL to pick a free device (or the one this bdev had). */
	const char *nbd_device;
	/** Connections (and kernel hardware queues); 0 = one per reactor. */
	uint32_t num_connections;
	/**
	 * Request timeout in seconds (NBD_ATTR_TIMEOUT): a request unanswered this long is
	 * resent on another connection (or after a re-bind). 0 = the kernel's default,
	 * under which requests in flight when the server died are never resent on a
	 * kernel with one connection; keep it non-zero for re-binding.
	 */
	uint32_t timeout_s;
	/**
	 * Dead-connection timeout in seconds (NBD_ATTR_DEAD_CONN_TIMEOUT): how long the
	 * kernel holds I/O when every connection is gone, waiting for a re-bind. 0 = I/O
	 * fails at once when the server dies.
	 */
	uint32_t dead_timeout_s;
	/** Export read-only (the kernel device is read-only). */
	bool read_only;
	/** Use the ioctl interface even where netlink works (tests; no re-binding). */
	bool use_ioctl;
};

/** Fill opts with the defaults: timeouts as above, netlink, writable, per-reactor. */
void sl_nbd_disk_opts_init(struct sl_nbd_disk_opts *opts);

/**
 * Completion of sl_nbd_disk_start, on the app thread.
 * \param disk the disk (NULL on failure).
 * \param rc 0, or -errno (see sl_nbd_disk_start).
 */
typedef void (*sl_nbd_disk_start_cb)(void *cb_arg, struct sl_nbd_disk *disk, int rc);

/**
 * Export a bdev as a kernel NBD device. The bdev is opened (read-write unless
 * read_only) and claimed ("nbd /dev/nbdX"). The first disk started also marks every
 * reactor PR_SET_IO_FLUSHER (see sl_nbd_kernel_set_io_flusher).
 *
 * cb runs exactly once with rc: -EINVAL (bad path or options, block size over 4096,
 * size mismatch on re-bind), -ENODEV (no such bdev, or no /dev/nbdX), -EPERM (bdev
 * claimed by someone else), -EBUSY (device in use by another backend, or already a
 * disk here), -EEXIST (the bdev is already exported to another device here), -ENOSPC
 * (no free device), -ENOMEM, or the kernel's -errno.
 */
void sl_nbd_disk_start(const struct sl_nbd_disk_opts *opts, sl_nbd_disk_start_cb cb, void *cb_arg);

/**
 * Disconnect a disk from the kernel (NBD_CMD_DISCONNECT: requests the kernel still
 * holds fail), stop its connections, close the bdev. cb(0) on the app thread.
 * \return 0 (cb will run), -ENODEV (no such disk; cb will not run), -EALREADY (being
 * stopped; cb will not run).
 */
int sl_nbd_disk_stop(struct sl_nbd_disk *disk, sl_nbd_done_cb cb, void *cb_arg);

/** Stop every disk (subsystem fini); cb(0) when all are gone. */
void sl_nbd_disk_stop_all(sl_nbd_done_cb cb, void *cb_arg);

/** \return the disk on that device path ("/dev/nbd0"), or NULL. */
struct sl_nbd_disk *sl_nbd_disk_find(const char *nbd_device);
/** \return the first running disk (in the order started), or NULL. */
struct sl_nbd_disk *sl_nbd_disk_first(void);
/** \return the next running disk, or NULL. */
struct sl_nbd_disk *sl_nbd_disk_next(struct sl_nbd_disk *disk);

/** \return "/dev/nbdX". */
const char *sl_nbd_disk_get_path(const struct sl_nbd_disk *disk);
/** \return the bdev's name. */
const char *sl_nbd_disk_get_bdev_name(const struct sl_nbd_disk *disk);
/** \return the backend identifier given to the kernel. */
const char *sl_nbd_disk_get_backend(const struct sl_nbd_disk *disk);
/** \return the options the disk runs with (num_connections is the real count). */
const struct sl_nbd_disk_opts *sl_nbd_disk_get_opts(const struct sl_nbd_disk *disk);
/** \return whether num_connections was asked for (else one per reactor). */
bool sl_nbd_disk_num_connections_set(const struct sl_nbd_disk *disk);
/** \return whether the disk re-bound a device left by an earlier process. */
bool sl_nbd_disk_is_rebound(const struct sl_nbd_disk *disk);
/** \return whether the disk was connected through netlink (else ioctls). */
bool sl_nbd_disk_uses_netlink(const struct sl_nbd_disk *disk);

/**
 * Append the nbd_start_disk entries that recreate the running disks to config (a JSON
 * array of {"method","params"}): the save_config of the subsystem holding the disks.
 */
void sl_nbd_kernel_write_config_json(json_t *config);

/**
 * Mark the calling thread PR_SET_IO_FLUSHER (Linux 5.6+): its memory allocations
 * never recurse into filesystem I/O and it is not throttled by dirty-page writeback,
 * so a filesystem on a local NBD device served by this process cannot deadlock it
 * under memory pressure. sl_nbd_disk_start calls it on every reactor when the first
 * disk starts; the daemon may call it earlier. Needs CAP_SYS_RESOURCE.
 * \return 0, or -errno (logged once as a warning).
 */
int sl_nbd_kernel_set_io_flusher(void);

#endif /* SLUICE_NBD_KERNEL_H */
