/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * The nvme bdev module: an NVMe controller attached through Sluice's driver, one bdev
 * per active namespace ("<name>n<nsid>"). Private to drivers/bdev/nvme (its RPCs) and
 * its unit test.
 */
#ifndef SLUICE_BDEV_NVME_H
#define SLUICE_BDEV_NVME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sluice/bdev_module.h"
#include "sluice/nvme.h"

/* Module-wide options: bdev_nvme_set_options, the subset that means something here. */
struct bdev_nvme_opts {
	/* Command timeouts (0 = none) and what to do on one: "none", "reset", "abort". */
	uint64_t timeout_us;
	uint64_t timeout_admin_us;
	enum sl_nvme_timeout_action action_on_timeout;
	/* Period of the admin queue poller (AERs, health, timeouts, resets). */
	uint64_t nvme_adminq_poll_period_us;
	/* Period of the I/O pollers; 0 = every reactor iteration. */
	uint64_t nvme_ioq_poll_period_us;
	/* Requests per I/O qpair (in flight plus queued in the driver). */
	uint32_t io_queue_requests;
	/* Ring SQ doorbells once per poll rather than once per command. */
	bool delay_cmd_submit;
};

/* Parameters of bdev_nvme_attach_controller that this module acts on. */
struct bdev_nvme_attach_opts {
	const char *name;
	struct sl_nvme_transport_id trid;
	/* I/O queues to ask the controller for (0 = the driver's default). */
	uint32_t num_io_queues;
};

/* Completion of an asynchronous operation (detach, reset): rc 0 or -errno. */
typedef void (*bdev_nvme_done_cb)(void *cb_arg, int rc);

void bdev_nvme_get_opts(struct bdev_nvme_opts *opts);
/* Returns 0, -EPERM (a controller is attached already: options apply to new ones),
 * -EINVAL (a period of 0 for the admin queue). */
int bdev_nvme_set_opts(const struct bdev_nvme_opts *opts);

/*
 * Attach a controller synchronously and register a bdev for each active namespace.
 * names receives the bdev names (a new JSON array). On failure err holds the reason.
 * Returns 0, -EEXIST (name taken), -EINVAL (bad parameters), -ENOTSUP (transport),
 * -ENODEV (no such device or not bound to vfio-pci), -ENOMEM, -EIO.
 */
int bdev_nvme_attach(const struct bdev_nvme_attach_opts *opts, json_t **names, char *err,
		     size_t errlen);
/*
 * Unregister the controller's bdevs, then detach it; cb when it is gone.
 * Returns 0 (cb will fire), -ENODEV (no controller of that name), -EBUSY (detaching).
 */
int bdev_nvme_detach(const char *name, bdev_nvme_done_cb cb, void *cb_arg);
/*
 * Reset the controller. New I/O waits in the qpairs' software queues, I/O that was on
 * the controller is resubmitted when each qpair is re-created; cb(cb_arg, rc) on the
 * app thread when the controller is up again. Resets asked for while one runs are
 * served by the next one. Returns 0 (cb will fire), -ENODEV, -ENXIO (failed).
 */
int bdev_nvme_reset(const char *name, bdev_nvme_done_cb cb, void *cb_arg);
/* The transport ID of a controller, or NULL (no such controller). */
const struct sl_nvme_transport_id *bdev_nvme_get_trid(const char *name);
/* Append the bdev_nvme_get_controllers entry of one controller (name NULL: all).
 * Returns 0 or -ENODEV. */
int bdev_nvme_dump_controllers(const char *name, json_t *array);

#endif /* SLUICE_BDEV_NVME_H */
