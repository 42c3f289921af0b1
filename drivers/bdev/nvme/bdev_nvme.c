/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * The nvme bdev module: controllers attached through Sluice's polled driver, one bdev
 * per active namespace, named as SPDK names them ("Nvme0" gives "Nvme0n1", ...).
 *
 * Each controller is an io_device. A thread's channel to it holds one I/O qpair,
 * shared by the controller's namespaces, and a poller that reaps completions in
 * batches and stays busy while anything is outstanding, so an adaptive reactor keeps
 * polling until the last completion is in. The admin queue is polled on the app
 * thread, where asynchronous events, health checks, command timeouts and resets run.
 *
 * Resets lose no I/O. The driver resets the controller synchronously on the app
 * thread: every qpair is marked disconnected, and from then on new commands wait in
 * the qpair's software queue (and, should its requests run out, in the bdev core,
 * through -ENOMEM). Each qpair is re-created by its own thread on its next poll,
 * which then resubmits the commands that were on the controller (the driver's
 * SL_NVME_RESET_RESUBMIT policy: same tracker, CID and buffers) and the queued ones.
 */

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "bdev_nvme.h"
#include "sluice/log.h"
#include "sluice/nvme_spec.h"
#include "sluice/thread.h"
#include "sluice/util.h"

/* Completions one poll reaps at most: bounds the time one channel holds a reactor. */
#define BDEV_NVME_POLL_BATCH 64
/*
 * The admin poller's longest period, whatever nvme_adminq_poll_period_us says: it also
 * reaps the ledger's dead processes (the driver does that at most every
 * SL_NVME_REAP_INTERVAL_MS), and their queues should come back within a second.
 */
#define BDEV_NVME_ADMIN_POLL_MAX_US 100000
/* Name length: "<name>n<nsid>" must fit a bdev name. */
#define BDEV_NVME_NAME_MAX 64

struct nvme_bdev_ctrlr;

struct nvme_bdev {
	struct sl_bdev bdev;
	struct nvme_bdev_ctrlr *nctrlr;
	struct sl_nvme_ns *ns;
	TAILQ_ENTRY(nvme_bdev) link;
};

struct nvme_bdev_ctrlr {
	char *name;
	struct sl_nvme_ctrlr *ctrlr;
	struct sl_nvme_transport_id trid;
	/* As asked for at attach (0 = default), for save_config. */
	uint32_t num_io_queues;
	struct sl_poller *admin_poller;
	TAILQ_HEAD(, nvme_bdev) bdevs;
	/* Bdevs registered and not yet destructed. */
	uint32_t num_bdevs;
	bool detaching;
	bool io_device_registered;
	bdev_nvme_done_cb detach_cb;
	void *detach_arg;
	TAILQ_ENTRY(nvme_bdev_ctrlr) link;
};

/* A thread's channel to a controller. */
struct nvme_ctrlr_channel {
	struct nvme_bdev_ctrlr *nctrlr;
	struct sl_nvme_qpair *qpair;
	struct sl_poller *poller;
};

/* A bdev reset I/O on its way to the app thread and back. */
struct nvme_reset_ctx {
	struct sl_bdev_io *io;
	struct sl_thread *thread;
	struct nvme_bdev_ctrlr *nctrlr;
	int rc;
};

static TAILQ_HEAD(, nvme_bdev_ctrlr) g_nvme_ctrlrs = TAILQ_HEAD_INITIALIZER(g_nvme_ctrlrs);
static struct sl_bdev_module g_nvme_module;
static struct bdev_nvme_opts g_opts = {
	.timeout_us = 30ull * 1000 * 1000,
	.timeout_admin_us = 30ull * 1000 * 1000,
	.action_on_timeout = SL_NVME_TIMEOUT_ACTION_ABORT,
	.nvme_adminq_poll_period_us = 10000,
	.nvme_ioq_poll_period_us = 0,
	.io_queue_requests = 0,
	.delay_cmd_submit = true,
};

static struct nvme_bdev_ctrlr *
nvme_ctrlr_find(const char *name)
{
	struct nvme_bdev_ctrlr *nctrlr;

	TAILQ_FOREACH (nctrlr, &g_nvme_ctrlrs, link) {
		if (strcmp(nctrlr->name, name) == 0) {
			return nctrlr;
		}
	}
	return NULL;
}

void
bdev_nvme_get_opts(struct bdev_nvme_opts *opts)
{
	*opts = g_opts;
}

int
bdev_nvme_set_opts(const struct bdev_nvme_opts *opts)
{
	if (!TAILQ_EMPTY(&g_nvme_ctrlrs)) {
		return -EPERM;
	}
	if (opts->nvme_adminq_poll_period_us == 0) {
		return -EINVAL;
	}
	g_opts = *opts;
	return 0;
}

/* ---- I/O ----------------------------------------------------------------------------- */

static void
nvme_bdev_io_done(void *arg, const struct sl_nvme_cpl *cpl)
{
	struct sl_bdev_io *io = arg;
	int status = 0;

	if (sl_unlikely(sl_nvme_cpl_is_error(cpl))) {
		status = cpl->status.sct == SL_NVME_SCT_GENERIC &&
					 cpl->status.sc == SL_NVME_SC_INVALID_FIELD
				 ? -EINVAL
				 : -EIO;
	}
	sl_bdev_io_complete(io, status);
}

static int
nvme_bdev_submit_rw(struct nvme_bdev *nbdev, struct sl_nvme_qpair *qpair, struct sl_bdev_io *io)
{
	uint32_t flags = (io->flags & SL_BDEV_IO_FLAG_FUA) ? SL_NVME_IO_FLAGS_FUA : 0;
	uint32_t count = (uint32_t)io->num_blocks;

	if (io->type == SL_BDEV_IO_TYPE_READ) {
		if (io->iovcnt == 1) {
			return sl_nvme_ns_cmd_read(nbdev->ns, qpair, io->iovs[0].iov_base,
						   io->offset_blocks, count, nvme_bdev_io_done, io,
						   flags);
		}
		return sl_nvme_ns_cmd_readv(nbdev->ns, qpair, io->iovs, io->iovcnt,
					    io->offset_blocks, count, nvme_bdev_io_done, io, flags);
	}
	if (io->iovcnt == 1) {
		return sl_nvme_ns_cmd_write(nbdev->ns, qpair, io->iovs[0].iov_base,
					    io->offset_blocks, count, nvme_bdev_io_done, io, flags);
	}
	return sl_nvme_ns_cmd_writev(nbdev->ns, qpair, io->iovs, io->iovcnt, io->offset_blocks,
				     count, nvme_bdev_io_done, io, flags);
}

static int
nvme_bdev_submit_unmap(struct nvme_bdev *nbdev, struct sl_nvme_qpair *qpair, struct sl_bdev_io *io)
{
	/* In the I/O, not on the stack: the driver reads the ranges when the command gets
	 * a slot, which is later if the SQ is full or a reset is under way. */
	struct sl_nvme_dsm_range *range = sl_bdev_io_get_driver_ctx(io);

	/* max_unmap_blocks keeps each unmap within one range (the core splits). */
	assert(io->num_blocks <= UINT32_MAX);
	*range = (struct sl_nvme_dsm_range){
		.length = (uint32_t)io->num_blocks,
		.starting_lba = io->offset_blocks,
	};
	return sl_nvme_ns_cmd_dataset_management(nbdev->ns, qpair, SL_NVME_DSM_ATTR_DEALLOCATE,
						 range, 1, nvme_bdev_io_done, io);
}

static void nvme_bdev_reset_io(struct nvme_bdev *nbdev, struct sl_bdev_io *io);

static void
nvme_bdev_submit_request(struct sl_io_channel *ioch, struct sl_bdev_io *io)
{
	struct nvme_ctrlr_channel *ch = sl_io_channel_get_ctx(ioch);
	struct nvme_bdev *nbdev = io->bdev->ctxt;
	int rc;

	switch (io->type) {
	case SL_BDEV_IO_TYPE_READ:
	case SL_BDEV_IO_TYPE_WRITE:
		rc = nvme_bdev_submit_rw(nbdev, ch->qpair, io);
		break;
	case SL_BDEV_IO_TYPE_FLUSH:
		rc = sl_nvme_ns_cmd_flush(nbdev->ns, ch->qpair, nvme_bdev_io_done, io);
		break;
	case SL_BDEV_IO_TYPE_UNMAP:
		rc = nvme_bdev_submit_unmap(nbdev, ch->qpair, io);
		break;
	case SL_BDEV_IO_TYPE_WRITE_ZEROES:
		rc = sl_nvme_ns_cmd_write_zeroes(nbdev->ns, ch->qpair, io->offset_blocks,
						 (uint32_t)io->num_blocks, nvme_bdev_io_done, io,
						 0);
		break;
	case SL_BDEV_IO_TYPE_RESET:
		nvme_bdev_reset_io(nbdev, io);
		return;
	default:
		rc = -ENOTSUP;
		break;
	}
	if (sl_unlikely(rc != 0)) {
		/* -ENOMEM: no request left; the core queues the I/O and retries. A failed
		 * controller (-ENXIO) is a device error to the user. */
		sl_bdev_io_complete(io, rc == -ENXIO ? -EIO : rc);
	}
}

static bool
nvme_bdev_io_type_supported(void *ctxt, enum sl_bdev_io_type type)
{
	struct nvme_bdev *nbdev = ctxt;
	const struct sl_nvme_ctrlr_data *cdata = sl_nvme_ctrlr_get_data(nbdev->nctrlr->ctrlr);

	switch (type) {
	case SL_BDEV_IO_TYPE_READ:
	case SL_BDEV_IO_TYPE_WRITE:
	case SL_BDEV_IO_TYPE_RESET:
		return true;
	case SL_BDEV_IO_TYPE_FLUSH:
		return (cdata->vwc & 1) != 0;
	case SL_BDEV_IO_TYPE_UNMAP:
		return (cdata->oncs & SL_NVME_ONCS_DSM) != 0;
	case SL_BDEV_IO_TYPE_WRITE_ZEROES:
		return (cdata->oncs & SL_NVME_ONCS_WRITE_ZEROES) != 0;
	default:
		return false;
	}
}

/* ---- Channels ------------------------------------------------------------------------ */

static int
nvme_channel_poll(void *arg)
{
	struct nvme_ctrlr_channel *ch = arg;
	int32_t n = sl_nvme_qpair_process_completions(ch->qpair, BDEV_NVME_POLL_BATCH);

	/* Busy while I/O is outstanding: an adaptive reactor must not sleep on it (no
	 * interrupt would wake it). */
	return n > 0 || sl_nvme_qpair_get_num_outstanding(ch->qpair) != 0 ? SL_POLLER_BUSY
									  : SL_POLLER_IDLE;
}

static int
nvme_channel_create(void *io_device, void *ctx_buf)
{
	struct nvme_bdev_ctrlr *nctrlr = io_device;
	struct nvme_ctrlr_channel *ch = ctx_buf;
	struct sl_nvme_io_qpair_opts qopts;

	ch->nctrlr = nctrlr;
	sl_nvme_ctrlr_get_default_io_qpair_opts(nctrlr->ctrlr, &qopts);
	if (g_opts.io_queue_requests != 0) {
		qopts.io_queue_requests = g_opts.io_queue_requests;
	}
	qopts.delay_sq_doorbell = g_opts.delay_cmd_submit;
	ch->qpair = sl_nvme_ctrlr_alloc_io_qpair(nctrlr->ctrlr, &qopts);
	if (ch->qpair == NULL) {
		int rc = -errno;

		SL_ERRLOG("%s: cannot allocate an I/O qpair: %s\n", nctrlr->name, strerror(-rc));
		return rc ? rc : -ENOMEM;
	}
	ch->poller = sl_poller_register(nvme_channel_poll, ch, g_opts.nvme_ioq_poll_period_us,
					"bdev_nvme_io");
	if (ch->poller == NULL) {
		sl_nvme_ctrlr_free_io_qpair(ch->qpair);
		ch->qpair = NULL;
		return -ENOMEM;
	}
	return 0;
}

static void
nvme_channel_destroy(void *io_device, void *ctx_buf)
{
	struct nvme_ctrlr_channel *ch = ctx_buf;

	sl_poller_unregister(&ch->poller);
	sl_nvme_ctrlr_free_io_qpair(ch->qpair);
	ch->qpair = NULL;
}

static struct sl_io_channel *
nvme_bdev_get_io_channel(void *ctxt)
{
	struct nvme_bdev *nbdev = ctxt;

	return sl_get_io_channel(nbdev->nctrlr);
}

/* ---- Resets -------------------------------------------------------------------------- */

static int
nvme_ctrlr_do_reset(struct nvme_bdev_ctrlr *nctrlr)
{
	int rc;

	if (sl_nvme_ctrlr_is_failed(nctrlr->ctrlr)) {
		return -ENXIO;
	}
	rc = sl_nvme_ctrlr_reset(nctrlr->ctrlr);
	if (rc == -EBUSY) {
		/* One was already running (from a timeout): it is done now, as this one
		 * would be. */
		rc = 0;
	}
	if (rc != 0) {
		SL_ERRLOG("%s: reset failed: %s\n", nctrlr->name, strerror(-rc));
	}
	return rc;
}

static void
nvme_reset_io_done(void *arg)
{
	struct nvme_reset_ctx *ctx = arg;
	struct sl_bdev_io *io = ctx->io;
	int rc = ctx->rc;

	free(ctx);
	sl_bdev_io_complete(io, rc);
}

static void
nvme_reset_io_on_app_thread(void *arg)
{
	struct nvme_reset_ctx *ctx = arg;

	ctx->rc = nvme_ctrlr_do_reset(ctx->nctrlr);
	if (sl_thread_send_msg(ctx->thread, nvme_reset_io_done, ctx) != 0) {
		SL_ERRLOG("%s: cannot complete a reset on its thread\n", ctx->nctrlr->name);
	}
}

/* A bdev reset resets the controller (as SPDK's bdev_nvme does), on the app thread. */
static void
nvme_bdev_reset_io(struct nvme_bdev *nbdev, struct sl_bdev_io *io)
{
	struct nvme_reset_ctx *ctx = calloc(1, sizeof(*ctx));

	if (ctx == NULL) {
		sl_bdev_io_complete(io, -ENOMEM);
		return;
	}
	ctx->io = io;
	ctx->thread = sl_get_thread();
	ctx->nctrlr = nbdev->nctrlr;
	if (sl_thread_send_msg(sl_thread_get_app_thread(), nvme_reset_io_on_app_thread, ctx) != 0) {
		free(ctx);
		sl_bdev_io_complete(io, -ENOMEM);
	}
}

int
bdev_nvme_reset(const char *name, bdev_nvme_done_cb cb, void *cb_arg)
{
	struct nvme_bdev_ctrlr *nctrlr = nvme_ctrlr_find(name);

	if (nctrlr == NULL || nctrlr->detaching) {
		return -ENODEV;
	}
	if (sl_nvme_ctrlr_is_failed(nctrlr->ctrlr)) {
		return -ENXIO;
	}
	cb(cb_arg, nvme_ctrlr_do_reset(nctrlr));
	return 0;
}

/* The admin queue: completions, AERs, health checks, timeouts, requested resets, and
 * reaping the processes that died holding a share of the controller. */
static int
nvme_admin_poll(void *arg)
{
	struct nvme_bdev_ctrlr *nctrlr = arg;

	return sl_nvme_ctrlr_process_admin_completions(nctrlr->ctrlr) > 0 ? SL_POLLER_BUSY
									  : SL_POLLER_IDLE;
}

/* ---- Bdevs --------------------------------------------------------------------------- */

static void nvme_ctrlr_release(struct nvme_bdev_ctrlr *nctrlr);

static int
nvme_bdev_destruct(void *ctxt)
{
	struct nvme_bdev *nbdev = ctxt;
	struct nvme_bdev_ctrlr *nctrlr = nbdev->nctrlr;

	TAILQ_REMOVE(&nctrlr->bdevs, nbdev, link);
	free(nbdev->bdev.name);
	free(nbdev);
	if (--nctrlr->num_bdevs == 0 && nctrlr->detaching) {
		nvme_ctrlr_release(nctrlr);
	}
	return 0;
}

/* Copy a space-padded Identify string (1.4, 5.15.2.2) without its padding. */
static void
nvme_copy_id_str(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	size_t n = SL_MIN(srclen, dstlen - 1);

	while (n > 0 && (src[n - 1] == ' ' || src[n - 1] == '\0')) {
		n--;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static int
nvme_bdev_dump_info_json(void *ctxt, json_t *driver_specific)
{
	struct nvme_bdev *nbdev = ctxt;
	const struct sl_nvme_ctrlr_data *cdata = sl_nvme_ctrlr_get_data(nbdev->nctrlr->ctrlr);
	const struct sl_pci_id *id = sl_nvme_ctrlr_get_pci_id(nbdev->nctrlr->ctrlr);
	char model[sizeof(cdata->mn) + 1], serial[sizeof(cdata->sn) + 1];

	nvme_copy_id_str(model, sizeof(model), cdata->mn, sizeof(cdata->mn));
	nvme_copy_id_str(serial, sizeof(serial), cdata->sn, sizeof(cdata->sn));
	json_object_set_new(driver_specific, "nvme",
			    json_pack("[{s:{s:s, s:s}, s:{s:i, s:i, s:s, s:s}, s:{s:i}}]", "trid",
				      "trtype", "PCIe", "traddr", nbdev->nctrlr->trid.traddr,
				      "ctrlr_data", "vendor_id", id->vendor_id, "cntlid",
				      cdata->cntlid, "model_number", model, "serial_number", serial,
				      "ns_data", "id", (int)sl_nvme_ns_get_id(nbdev->ns)));
	return 0;
}

static const struct sl_bdev_fn_table g_nvme_fn_table = {
	.destruct = nvme_bdev_destruct,
	.submit_request = nvme_bdev_submit_request,
	.io_type_supported = nvme_bdev_io_type_supported,
	.get_io_channel = nvme_bdev_get_io_channel,
	.dump_info_json = nvme_bdev_dump_info_json,
	/* The controller's attach call recreates every namespace (config_json). */
	.write_config_json = NULL,
};

static void
nvme_bdev_set_uuid(struct nvme_bdev *nbdev)
{
	const uint8_t *id = sl_nvme_ns_get_uuid(nbdev->ns);

	if (id == NULL) {
		id = sl_nvme_ns_get_nguid(nbdev->ns);
	}
	if (id != NULL) {
		memcpy(nbdev->bdev.uuid, id, sizeof(nbdev->bdev.uuid));
	}
}

static int
nvme_bdev_create(struct nvme_bdev_ctrlr *nctrlr, uint32_t nsid, json_t *names, char *err,
		 size_t errlen)
{
	struct sl_nvme_ns *ns = sl_nvme_ctrlr_get_ns(nctrlr->ctrlr, nsid);
	const struct sl_nvme_ns_data *nsdata = sl_nvme_ns_get_data(ns);
	const struct sl_nvme_ctrlr_data *cdata = sl_nvme_ctrlr_get_data(nctrlr->ctrlr);
	struct nvme_bdev *nbdev;
	int rc;

	if (sl_nvme_ns_get_md_size(ns) != 0) {
		SL_WARNLOG("%s: namespace %u has %u bytes of metadata per block: not exported\n",
			   nctrlr->name, nsid, sl_nvme_ns_get_md_size(ns));
		return 0;
	}
	nbdev = calloc(1, sizeof(*nbdev));
	if (nbdev == NULL || asprintf(&nbdev->bdev.name, "%sn%u", nctrlr->name, nsid) < 0) {
		free(nbdev);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	nbdev->nctrlr = nctrlr;
	nbdev->ns = ns;
	nbdev->bdev.product_name = "NVMe disk";
	nbdev->bdev.blocklen = sl_nvme_ns_get_sector_size(ns);
	nbdev->bdev.blockcnt = sl_nvme_ns_get_num_sectors(ns);
	nbdev->bdev.needs_dma = true;
	/* PRP entries are dword aligned (4.3). */
	nbdev->bdev.required_alignment = 4;
	nbdev->bdev.write_cache = (cdata->vwc & 1) != 0;
	nbdev->bdev.fua = true;
	nbdev->bdev.max_transfer_blocks =
		sl_nvme_ns_get_max_io_xfer_size(ns) / nbdev->bdev.blocklen;
	/* A DSM range counts 32 bits of blocks; write zeroes' NLB is 16 bits, 0's based. */
	nbdev->bdev.max_unmap_blocks = UINT32_MAX;
	nbdev->bdev.max_write_zeroes_blocks = 65536;
	if (nsdata->noiob != 0) {
		nbdev->bdev.optimal_io_boundary = nsdata->noiob;
		nbdev->bdev.split_on_optimal_io_boundary = true;
	}
	nvme_bdev_set_uuid(nbdev);
	nbdev->bdev.ctxt = nbdev;
	nbdev->bdev.fn_table = &g_nvme_fn_table;
	nbdev->bdev.module = &g_nvme_module;
	rc = sl_bdev_register(&nbdev->bdev);
	if (rc != 0) {
		snprintf(err, errlen, "cannot register bdev %s: %s", nbdev->bdev.name,
			 strerror(-rc));
		free(nbdev->bdev.name);
		free(nbdev);
		return rc;
	}
	TAILQ_INSERT_TAIL(&nctrlr->bdevs, nbdev, link);
	nctrlr->num_bdevs++;
	json_array_append_new(names, json_string(nbdev->bdev.name));
	return 0;
}

/* ---- Controllers --------------------------------------------------------------------- */

static void
nvme_ctrlr_free(struct nvme_bdev_ctrlr *nctrlr)
{
	sl_poller_unregister(&nctrlr->admin_poller);
	if (nctrlr->ctrlr != NULL) {
		sl_nvme_detach(nctrlr->ctrlr);
	}
	free(nctrlr->name);
	free(nctrlr);
}

static void
nvme_ctrlr_unregistered(void *io_device)
{
	struct nvme_bdev_ctrlr *nctrlr = io_device;
	bdev_nvme_done_cb cb = nctrlr->detach_cb;
	void *cb_arg = nctrlr->detach_arg;

	SL_NOTICELOG("%s: detached\n", nctrlr->name);
	nvme_ctrlr_free(nctrlr);
	if (cb != NULL) {
		cb(cb_arg, 0);
	}
}

/* Every bdev is gone: drop the io_device (its channels free their qpairs), then the
 * controller. */
static void
nvme_ctrlr_release(struct nvme_bdev_ctrlr *nctrlr)
{
	TAILQ_REMOVE(&g_nvme_ctrlrs, nctrlr, link);
	if (nctrlr->io_device_registered) {
		sl_io_device_unregister(nctrlr, nvme_ctrlr_unregistered);
	} else {
		nvme_ctrlr_unregistered(nctrlr);
	}
}

static void
nvme_ctrlr_bdev_unregistered(void *cb_arg, int rc)
{
	if (rc != 0) {
		SL_ERRLOG("unregistering an NVMe bdev failed: %s\n", strerror(-rc));
	}
}

int
bdev_nvme_detach(const char *name, bdev_nvme_done_cb cb, void *cb_arg)
{
	struct nvme_bdev_ctrlr *nctrlr = nvme_ctrlr_find(name);
	struct nvme_bdev *nbdev, *tmp;

	if (nctrlr == NULL) {
		return -ENODEV;
	}
	if (nctrlr->detaching) {
		return -EBUSY;
	}
	nctrlr->detaching = true;
	nctrlr->detach_cb = cb;
	nctrlr->detach_arg = cb_arg;
	if (nctrlr->num_bdevs == 0) {
		nvme_ctrlr_release(nctrlr);
		return 0;
	}
	TAILQ_FOREACH_SAFE (nbdev, &nctrlr->bdevs, link, tmp) {
		sl_bdev_unregister(&nbdev->bdev, nvme_ctrlr_bdev_unregistered, NULL);
	}
	return 0;
}

static int
nvme_attach_check(const struct bdev_nvme_attach_opts *opts, char *err, size_t errlen)
{
	if (opts->name == NULL || opts->name[0] == '\0' ||
	    strlen(opts->name) > BDEV_NVME_NAME_MAX) {
		snprintf(err, errlen, "name '%s' must have 1 to %d characters",
			 opts->name ? opts->name : "", BDEV_NVME_NAME_MAX);
		return -EINVAL;
	}
	if (nvme_ctrlr_find(opts->name) != NULL) {
		snprintf(err, errlen, "controller %s already exists", opts->name);
		return -EEXIST;
	}
	if (opts->trid.trtype != SL_NVME_TRANSPORT_PCIE) {
		snprintf(err, errlen, "transport %s is not supported (only PCIe)",
			 sl_nvme_transport_type_str(opts->trid.trtype));
		return -ENOTSUP;
	}
	return 0;
}

static struct nvme_bdev_ctrlr *
nvme_ctrlr_connect(const struct bdev_nvme_attach_opts *opts, char *err, size_t errlen, int *rc)
{
	struct nvme_bdev_ctrlr *nctrlr = calloc(1, sizeof(*nctrlr));
	struct sl_nvme_ctrlr_opts copts;

	if (nctrlr == NULL || (nctrlr->name = strdup(opts->name)) == NULL) {
		free(nctrlr);
		snprintf(err, errlen, "out of memory");
		*rc = -ENOMEM;
		return NULL;
	}
	TAILQ_INIT(&nctrlr->bdevs);
	nctrlr->trid = opts->trid;
	nctrlr->num_io_queues = opts->num_io_queues;
	sl_nvme_ctrlr_get_default_opts(&copts);
	if (opts->num_io_queues != 0) {
		copts.num_io_queues = opts->num_io_queues;
	}
	if (g_opts.io_queue_requests != 0) {
		copts.io_queue_requests = g_opts.io_queue_requests;
	}
	copts.delay_sq_doorbell = g_opts.delay_cmd_submit;
	copts.io_timeout_us = g_opts.timeout_us;
	copts.admin_timeout_ms = (uint32_t)SL_MIN(g_opts.timeout_admin_us / 1000, UINT32_MAX);
	copts.timeout_action = g_opts.action_on_timeout;
	copts.reset_policy = SL_NVME_RESET_RESUBMIT;
	nctrlr->ctrlr = sl_nvme_connect(&opts->trid, &copts);
	if (nctrlr->ctrlr == NULL) {
		*rc = errno ? -errno : -EIO;
		snprintf(err, errlen,
			 "cannot attach the NVMe controller at %s: %s "
			 "(is it bound to vfio-pci, and are hugepages set up?)",
			 opts->trid.traddr, strerror(-*rc));
		nvme_ctrlr_free(nctrlr);
		return NULL;
	}
	return nctrlr;
}

int
bdev_nvme_attach(const struct bdev_nvme_attach_opts *opts, json_t **names, char *err, size_t errlen)
{
	struct nvme_bdev_ctrlr *nctrlr;
	uint32_t nsid;
	int rc;

	*names = NULL;
	rc = nvme_attach_check(opts, err, errlen);
	if (rc != 0) {
		return rc;
	}
	nctrlr = nvme_ctrlr_connect(opts, err, errlen, &rc);
	if (nctrlr == NULL) {
		return rc;
	}
	nctrlr->admin_poller = sl_poller_register(
		nvme_admin_poll, nctrlr,
		SL_MIN(g_opts.nvme_adminq_poll_period_us, BDEV_NVME_ADMIN_POLL_MAX_US),
		"bdev_nvme_admin");
	*names = json_array();
	if (nctrlr->admin_poller == NULL || *names == NULL) {
		snprintf(err, errlen, "out of memory");
		json_decref(*names);
		*names = NULL;
		nvme_ctrlr_free(nctrlr);
		return -ENOMEM;
	}
	sl_io_device_register(nctrlr, nvme_channel_create, nvme_channel_destroy,
			      sizeof(struct nvme_ctrlr_channel), nctrlr->name);
	nctrlr->io_device_registered = true;
	TAILQ_INSERT_TAIL(&g_nvme_ctrlrs, nctrlr, link);
	for (nsid = sl_nvme_ctrlr_get_first_active_ns(nctrlr->ctrlr); nsid != 0;
	     nsid = sl_nvme_ctrlr_get_next_active_ns(nctrlr->ctrlr, nsid)) {
		rc = nvme_bdev_create(nctrlr, nsid, *names, err, errlen);
		if (rc != 0) {
			/* Undo what was made; the caller hears of the failure at once. */
			json_decref(*names);
			*names = NULL;
			bdev_nvme_detach(nctrlr->name, NULL, NULL);
			return rc;
		}
	}
	SL_NOTICELOG("%s: attached %s, %zu namespace bdev(s)\n", nctrlr->name, nctrlr->trid.traddr,
		     json_array_size(*names));
	return 0;
}

static const char *
nvme_ctrlr_state_str(const struct nvme_bdev_ctrlr *nctrlr)
{
	if (nctrlr->detaching) {
		return "deleting";
	}
	if (sl_nvme_ctrlr_is_failed(nctrlr->ctrlr)) {
		return "failed";
	}
	return "enabled";
}

/*
 * The controller's ledger: the processes attached to it (this one has "self"), the
 * queue IDs each holds, and what was reclaimed from dead ones. The same keys as
 * sluice-nvme-identify --ledger. NULL when the driver cannot tell.
 */
static json_t *
nvme_ledger_json(struct sl_nvme_ctrlr *ctrlr)
{
	struct sl_nvme_ledger_info *info = calloc(1, sizeof(*info));
	const struct sl_nvme_ledger_proc *lp;
	json_t *procs, *qids, *ledger;
	uint32_t i, q;

	if (info == NULL || sl_nvme_ctrlr_get_ledger(ctrlr, info) != 0) {
		free(info);
		return NULL;
	}
	procs = json_array();
	for (i = 0; i < info->num_procs && i < SL_NVME_LEDGER_MAX_PROCS; i++) {
		lp = &info->procs[i];
		qids = json_array();
		for (q = 0; q < lp->num_qids && q < SL_COUNTOF(lp->qids); q++) {
			json_array_append_new(qids, json_integer(lp->qids[q]));
		}
		json_array_append_new(procs,
				      json_pack("{s:i, s:I, s:b, s:b, s:i, s:i, s:o}", "pid",
						lp->pid, "start_time", (json_int_t)lp->start_time,
						"primary", lp->primary, "self", lp->self, "refs",
						(int)lp->refs, "admin_outstanding",
						(int)lp->admin_outstanding, "qids", qids));
	}
	ledger = json_pack("{s:b, s:o, s:i, s:i, s:I, s:I}", "shared", info->shared, "processes",
			   procs, "queues_in_use", (int)info->queues_in_use, "queues_total",
			   (int)info->queues_total, "reaped", (json_int_t)info->reaped,
			   "lock_recoveries", (json_int_t)info->lock_recoveries);
	free(info);
	return ledger;
}

/* SPDK's shape: {"name", "ctrlrs": [{"state", "trid": {...}, "cntlid", "host"}]}, and
 * Sluice's "ledger" in each of "ctrlrs" (it belongs to the controller, a path). */
static json_t *
nvme_ctrlr_info_json(const struct nvme_bdev_ctrlr *nctrlr)
{
	const struct sl_nvme_ctrlr_data *cdata = sl_nvme_ctrlr_get_data(nctrlr->ctrlr);
	json_t *info, *ledger;

	info = json_pack("{s:s, s:[{s:s, s:{s:s, s:s}, s:i, s:I, s:{s:s, s:s, s:s}}]}", "name",
			 nctrlr->name, "ctrlrs", "state", nvme_ctrlr_state_str(nctrlr), "trid",
			 "trtype", "PCIe", "traddr", nctrlr->trid.traddr, "cntlid",
			 (int)cdata->cntlid, "reset_count",
			 (json_int_t)sl_nvme_ctrlr_get_reset_count(nctrlr->ctrlr), "host", "nqn",
			 "", "addr", "", "svcid", "");
	ledger = nvme_ledger_json(nctrlr->ctrlr);
	if (info != NULL && ledger != NULL) {
		json_object_set_new(json_array_get(json_object_get(info, "ctrlrs"), 0), "ledger",
				    ledger);
	} else {
		json_decref(ledger);
	}
	return info;
}

const struct sl_nvme_transport_id *
bdev_nvme_get_trid(const char *name)
{
	struct nvme_bdev_ctrlr *nctrlr = nvme_ctrlr_find(name);

	return nctrlr != NULL ? &nctrlr->trid : NULL;
}

int
bdev_nvme_dump_controllers(const char *name, json_t *array)
{
	struct nvme_bdev_ctrlr *nctrlr;
	bool found = false;

	TAILQ_FOREACH (nctrlr, &g_nvme_ctrlrs, link) {
		if (name == NULL || strcmp(name, nctrlr->name) == 0) {
			json_array_append_new(array, nvme_ctrlr_info_json(nctrlr));
			found = true;
		}
	}
	return name == NULL || found ? 0 : -ENODEV;
}

/* ---- Module -------------------------------------------------------------------------- */

static const char *
nvme_timeout_action_str(enum sl_nvme_timeout_action action)
{
	switch (action) {
	case SL_NVME_TIMEOUT_ACTION_RESET:
		return "reset";
	case SL_NVME_TIMEOUT_ACTION_ABORT:
		return "abort";
	default:
		return "none";
	}
}

/* SPDK's order: the module's options, then one attach per controller; its namespace
 * bdevs come back with it, so they write no entry of their own. */
static void
nvme_module_config_json(json_t *config)
{
	struct nvme_bdev_ctrlr *nctrlr;
	json_t *params;

	json_array_append_new(
		config,
		json_pack("{s:s, s:{s:s, s:I, s:I, s:I, s:I, s:i, s:b}}", "method",
			  "bdev_nvme_set_options", "params", "action_on_timeout",
			  nvme_timeout_action_str(g_opts.action_on_timeout), "timeout_us",
			  (json_int_t)g_opts.timeout_us, "timeout_admin_us",
			  (json_int_t)g_opts.timeout_admin_us, "nvme_adminq_poll_period_us",
			  (json_int_t)g_opts.nvme_adminq_poll_period_us, "nvme_ioq_poll_period_us",
			  (json_int_t)g_opts.nvme_ioq_poll_period_us, "io_queue_requests",
			  (int)g_opts.io_queue_requests, "delay_cmd_submit",
			  g_opts.delay_cmd_submit));
	TAILQ_FOREACH (nctrlr, &g_nvme_ctrlrs, link) {
		if (nctrlr->detaching) {
			continue;
		}
		params = json_pack("{s:s, s:s, s:s, s:b, s:b}", "name", nctrlr->name, "trtype",
				   "PCIe", "traddr", nctrlr->trid.traddr, "prchk_reftag", false,
				   "prchk_guard", false);
		if (nctrlr->num_io_queues != 0) {
			json_object_set_new(params, "num_io_queues",
					    json_integer(nctrlr->num_io_queues));
		}
		json_array_append_new(config,
				      json_pack("{s:s, s:o}", "method",
						"bdev_nvme_attach_controller", "params", params));
	}
}

/* Every bdev has been destructed by now: what is left are controllers without bdevs
 * (all namespaces skipped) and the io_devices, whose unregistration detaches the
 * controllers (no channel is left, so that is at once). */
static void
nvme_module_fini(void)
{
	struct nvme_bdev_ctrlr *nctrlr;

	while ((nctrlr = TAILQ_FIRST(&g_nvme_ctrlrs)) != NULL) {
		nctrlr->detaching = true;
		nctrlr->detach_cb = NULL;
		nvme_ctrlr_release(nctrlr);
	}
}

static int
nvme_get_ctx_size(void)
{
	return (int)sizeof(struct sl_nvme_dsm_range);
}

static struct sl_bdev_module g_nvme_module = {
	.name = "nvme",
	.get_ctx_size = nvme_get_ctx_size,
	.module_fini = nvme_module_fini,
	.config_json = nvme_module_config_json,
};
SL_BDEV_MODULE_REGISTER(nvme, &g_nvme_module)
