/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/** \file
 * The NVMe host driver: controllers over PCIe (vfio), their namespaces, and I/O queue
 * pairs polled by their owner.
 *
 * Usage: sl_env_init(), then sl_nvme_probe() (or sl_nvme_connect()) attaches
 * controllers; each thread that does I/O allocates its own qpair with
 * sl_nvme_ctrlr_alloc_io_qpair() and reaps completions by calling
 * sl_nvme_qpair_process_completions(). Admin commands complete when someone calls
 * sl_nvme_ctrlr_process_admin_completions(), which also runs timeouts, health checks
 * and resets. Nothing runs in the background: the driver works in a plain
 * single-threaded tool (see drivers/nvme/tools/hello_world.c).
 *
 * A qpair belongs to one thread; admin calls may come from any thread (they take the
 * controller lock).
 */
#ifndef SLUICE_NVME_H
#define SLUICE_NVME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "sluice/nvme_spec.h"
#include "sluice/pci.h"

struct sl_nvme_ctrlr;
struct sl_nvme_ns;
struct sl_nvme_qpair;

/* --- Transport IDs ----------------------------------------------------------------- */

enum sl_nvme_transport_type {
	SL_NVME_TRANSPORT_PCIE = 256,
	SL_NVME_TRANSPORT_TCP = 3,
	SL_NVME_TRANSPORT_RDMA = 1,
};

#define SL_NVME_TRADDR_MAX_LEN  256
#define SL_NVME_TRSVCID_MAX_LEN 32
#define SL_NVME_NQN_MAX_LEN     223

/** Where a controller is: "trtype:PCIe traddr:0000:00:04.0" in its string form. */
struct sl_nvme_transport_id {
	enum sl_nvme_transport_type trtype;
	/** "ipv4"/"ipv6" for fabrics; empty for PCIe. */
	char adrfam[8];
	/** PCI address in canonical "dddd:bb:dd.f" form after parsing, or a host. */
	char traddr[SL_NVME_TRADDR_MAX_LEN + 1];
	char trsvcid[SL_NVME_TRSVCID_MAX_LEN + 1];
	char subnqn[SL_NVME_NQN_MAX_LEN + 1];
};

/**
 * Parse a transport ID string: whitespace-separated key:value pairs, keys
 * case-insensitive (trtype, adrfam, traddr, trsvcid, subnqn). A PCI traddr is
 * normalised to "dddd:bb:dd.f". Unknown keys are an error.
 * \return 0, or -EINVAL (the log names the bad key or value).
 */
int sl_nvme_transport_id_parse(struct sl_nvme_transport_id *trid, const char *str);
/** Format a transport ID as its string form. \return 0 or -ENOSPC. */
int sl_nvme_transport_id_fmt(char *buf, size_t len, const struct sl_nvme_transport_id *trid);
/** Compare two transport IDs (trtype, then traddr, trsvcid, subnqn). \return <0, 0, >0. */
int sl_nvme_transport_id_compare(const struct sl_nvme_transport_id *a,
				 const struct sl_nvme_transport_id *b);
/** \return "PCIe", "TCP", "RDMA", or NULL. */
const char *sl_nvme_transport_type_str(enum sl_nvme_transport_type trtype);

/* --- Controller options ------------------------------------------------------------ */

/** What to do when a command outlives its timeout. */
enum sl_nvme_timeout_action {
	/** Only log it. */
	SL_NVME_TIMEOUT_ACTION_NONE = 0,
	/** Send Abort; if the command is still outstanding one timeout later, reset. */
	SL_NVME_TIMEOUT_ACTION_ABORT,
	/** Reset the controller at once. */
	SL_NVME_TIMEOUT_ACTION_RESET,
};

/** What a controller reset does with the I/O outstanding on the qpairs. */
enum sl_nvme_reset_policy {
	/** Submit it again on the re-created queue (the default). */
	SL_NVME_RESET_RESUBMIT = 0,
	/** Complete it with ABORTED - SQ DELETION (retryable). */
	SL_NVME_RESET_FAIL,
};

struct sl_nvme_ctrlr_opts {
	/** I/O queue pairs to ask for with Set Features Number of Queues. */
	uint32_t num_io_queues;
	/** Default I/O queue size (entries), clamped to CAP.MQES + 1. */
	uint32_t io_queue_size;
	/** Default requests per I/O qpair; more than queue entries queue in software. */
	uint32_t io_queue_requests;
	/** Admin queue entries (2..4096). */
	uint32_t admin_queue_size;
	/** Use SGLs for vectored I/O when the controller supports them. */
	bool use_sgl;
	/** Defer SQ tail doorbells to the next sl_nvme_qpair_process_completions(). */
	bool delay_sq_doorbell;
	/** Asynchronous event requests to keep outstanding (clamped to AERL + 1). */
	uint32_t aer_count;
	/** Admin command timeout, ms (0 = none). */
	uint32_t admin_timeout_ms;
	/** I/O command timeout, us (0 = none). */
	uint64_t io_timeout_us;
	enum sl_nvme_timeout_action timeout_action;
	enum sl_nvme_reset_policy reset_policy;
	/** Interval between health checks of CSTS (CFS, removal), ms (0 = never). */
	uint32_t health_check_ms;
	/**
	 * Use shadow doorbells (Doorbell Buffer Config, OACS bit 8) when the controller
	 * has them: doorbell values go to memory and MMIO is written only when the
	 * controller's event index asks for it. Emulated controllers gain most.
	 */
	bool use_shadow_doorbell;
};

/** Fill opts with the defaults. */
void sl_nvme_ctrlr_get_default_opts(struct sl_nvme_ctrlr_opts *opts);

/* --- Probe, attach, detach --------------------------------------------------------- */

/**
 * Called for each controller found; return true to attach it. opts may be changed.
 */
typedef bool (*sl_nvme_probe_cb)(void *cb_ctx, const struct sl_nvme_transport_id *trid,
				 struct sl_nvme_ctrlr_opts *opts);
/** Called for each controller attached and initialised. */
typedef void (*sl_nvme_attach_cb)(void *cb_ctx, const struct sl_nvme_transport_id *trid,
				  struct sl_nvme_ctrlr *ctrlr,
				  const struct sl_nvme_ctrlr_opts *opts);

/**
 * Find NVMe controllers, offer each to probe_cb, attach and initialise those it picks
 * (in parallel), and hand each to attach_cb. With trid NULL (or an empty traddr) every
 * PCI NVMe function bound to vfio-pci is offered; otherwise only trid's. Needs
 * sl_env_init().
 * \return 0 if every picked controller attached, -ENODEV if trid names no NVMe
 * function, or the first -errno of a failed attach (others still attach).
 */
int sl_nvme_probe(const struct sl_nvme_transport_id *trid, void *cb_ctx, sl_nvme_probe_cb probe_cb,
		  sl_nvme_attach_cb attach_cb);
/**
 * Attach one controller synchronously. \param opts NULL for the defaults.
 * \return the controller, or NULL with errno set.
 */
struct sl_nvme_ctrlr *sl_nvme_connect(const struct sl_nvme_transport_id *trid,
				      const struct sl_nvme_ctrlr_opts *opts);
/**
 * Detach: delete the I/O queues still allocated, shut the controller down (CC.SHN)
 * and release it. I/O still outstanding is completed with ABORTED - SQ DELETION.
 * \return 0, or -errno if the shutdown did not finish (the controller is freed anyway).
 */
int sl_nvme_detach(struct sl_nvme_ctrlr *ctrlr);

/* --- Processes sharing a controller (the ledger) --------------------------------------- */

/*
 * Processes started with the same shm id (sl_env_opts.shm_id) share a PCIe controller:
 * the first to connect initialises it (the primary of the controller), later ones
 * attach to its state in shared memory and allocate their own I/O qpairs from its
 * pool of queue IDs. The ledger records, per attached process, its pid and start time
 * (an identity that survives pid reuse), its references, its queue IDs and its admin
 * commands in flight. Every connect, detach and sl_nvme_ctrlr_process_admin_completions()
 * (at most every SL_NVME_REAP_INTERVAL_MS) reaps the entries of dead processes: their
 * queues are deleted on the controller, their queue IDs and memory returned, their admin
 * commands dropped without callbacks.
 */
#define SL_NVME_LEDGER_MAX_PROCS 32
#define SL_NVME_REAP_INTERVAL_MS 250

struct sl_nvme_ledger_proc {
	int pid;
	/** Start time in clock ticks since boot (/proc/<pid>/stat field 22). */
	uint64_t start_time;
	/** The process that initialised (or adopted) the controller. */
	bool primary;
	/** This entry is the calling process. */
	bool self;
	/** Connects not yet matched by a detach. */
	uint32_t refs;
	/** Admin commands submitted and not yet completed. */
	uint32_t admin_outstanding;
	uint32_t num_qids;
	uint16_t qids[64];
};

struct sl_nvme_ledger_info {
	uint32_t num_procs;
	struct sl_nvme_ledger_proc procs[SL_NVME_LEDGER_MAX_PROCS];
	/** I/O queue IDs in use, and the controller's total. */
	uint32_t queues_in_use;
	uint32_t queues_total;
	/** Processes reaped (by anyone) since the controller was initialised. */
	uint64_t reaped;
	/** Times the controller lock was recovered from a dead holder. */
	uint64_t lock_recoveries;
	/** Whether the controller state lives in shared memory (shm id given). */
	bool shared;
};

/** Snapshot the ledger (reaping first). \return 0 or -errno. */
int sl_nvme_ctrlr_get_ledger(struct sl_nvme_ctrlr *ctrlr, struct sl_nvme_ledger_info *info);
/** Reap dead processes now. \return how many were reaped, or -errno. */
int sl_nvme_ctrlr_reap(struct sl_nvme_ctrlr *ctrlr);
/**
 * Test hook: add a ledger entry as a process with this identity would have left it,
 * holding num_qids queue IDs (not created on the controller), so that a test can
 * check that an entry whose pid is dead, or now names another process (pid reuse),
 * is reaped. \return 0 or -errno (-EBUSY: no free slot or queue ID).
 */
int sl_nvme_ctrlr_forge_ledger_entry(struct sl_nvme_ctrlr *ctrlr, int pid, uint64_t start_time,
				     uint32_t num_qids);
/** Test hook: take the controller lock and keep it for ms milliseconds (so that a test
 * can kill the process while it holds the lock). */
void sl_nvme_ctrlr_hold_lock(struct sl_nvme_ctrlr *ctrlr, uint32_t ms);

/* --- Controller --------------------------------------------------------------------- */

const struct sl_nvme_ctrlr_data *sl_nvme_ctrlr_get_data(const struct sl_nvme_ctrlr *ctrlr);
const struct sl_nvme_transport_id *
sl_nvme_ctrlr_get_transport_id(const struct sl_nvme_ctrlr *ctrlr);
union sl_nvme_cap_register sl_nvme_ctrlr_get_regs_cap(const struct sl_nvme_ctrlr *ctrlr);
union sl_nvme_vs_register sl_nvme_ctrlr_get_regs_vs(const struct sl_nvme_ctrlr *ctrlr);
/** Read CSTS now. */
union sl_nvme_csts_register sl_nvme_ctrlr_get_regs_csts(struct sl_nvme_ctrlr *ctrlr);
/** \return the PCI IDs (vendor, device, subsystem). */
const struct sl_pci_id *sl_nvme_ctrlr_get_pci_id(const struct sl_nvme_ctrlr *ctrlr);
/** \return the largest transfer of one command in bytes (MDTS, PRP list limit). */
uint32_t sl_nvme_ctrlr_get_max_xfer_size(const struct sl_nvme_ctrlr *ctrlr);
/** \return the I/O queue pairs the controller granted. */
uint32_t sl_nvme_ctrlr_get_num_io_queues(const struct sl_nvme_ctrlr *ctrlr);
/** \return whether the controller takes SGLs for I/O commands. */
bool sl_nvme_ctrlr_sgl_supported(const struct sl_nvme_ctrlr *ctrlr);
/** \return whether the controller has failed (fatal status, removal, failed reset). */
bool sl_nvme_ctrlr_is_failed(const struct sl_nvme_ctrlr *ctrlr);
/** \return whether the controller was surprise-removed (registers read all ones). */
bool sl_nvme_ctrlr_is_removed(const struct sl_nvme_ctrlr *ctrlr);
/** \return the number of resets done since attach. */
uint64_t sl_nvme_ctrlr_get_reset_count(const struct sl_nvme_ctrlr *ctrlr);

/** \return the highest namespace ID (Identify Controller NN). */
uint32_t sl_nvme_ctrlr_get_num_ns(const struct sl_nvme_ctrlr *ctrlr);
/** \return the first active namespace ID, or 0. */
uint32_t sl_nvme_ctrlr_get_first_active_ns(const struct sl_nvme_ctrlr *ctrlr);
/** \return the next active namespace ID after prev, or 0. */
uint32_t sl_nvme_ctrlr_get_next_active_ns(const struct sl_nvme_ctrlr *ctrlr, uint32_t prev);
bool sl_nvme_ctrlr_is_active_ns(const struct sl_nvme_ctrlr *ctrlr, uint32_t nsid);
/** \return the namespace (active or not), or NULL if nsid is 0 or above NN. */
struct sl_nvme_ns *sl_nvme_ctrlr_get_ns(struct sl_nvme_ctrlr *ctrlr, uint32_t nsid);

/**
 * Reset the controller (disable, re-initialise, enable) on the calling thread,
 * synchronously. I/O qpairs are re-created by their owners on their next
 * sl_nvme_qpair_process_completions(); outstanding I/O is then resubmitted or failed
 * per opts.reset_policy.
 * \return 0, -ENXIO if the controller is gone (it is then failed), -ETIMEDOUT,
 * -EIO (re-initialisation failed; the controller is failed).
 */
int sl_nvme_ctrlr_reset(struct sl_nvme_ctrlr *ctrlr);
/** Mark the controller failed: every qpair fails its I/O with ABORTED - SQ DELETION. */
void sl_nvme_ctrlr_fail(struct sl_nvme_ctrlr *ctrlr);

/* --- Admin commands ------------------------------------------------------------------ */

/** Completion of a command; cpl is valid for the call only. Fires exactly once. */
typedef void (*sl_nvme_cmd_cb)(void *cb_arg, const struct sl_nvme_cpl *cpl);
/** An asynchronous event: cpl->cdw0 is a union sl_nvme_async_event_completion. */
typedef void (*sl_nvme_aer_cb)(void *cb_arg, const struct sl_nvme_cpl *cpl);
/** The controller failed or was removed. */
typedef void (*sl_nvme_remove_cb)(void *cb_arg, struct sl_nvme_ctrlr *ctrlr);

void sl_nvme_ctrlr_register_aer_callback(struct sl_nvme_ctrlr *ctrlr, sl_nvme_aer_cb cb_fn,
					 void *cb_arg);
void sl_nvme_ctrlr_register_remove_callback(struct sl_nvme_ctrlr *ctrlr, sl_nvme_remove_cb cb_fn,
					    void *cb_arg);

/**
 * Reap admin completions, then run the admin side's periodic work: timeouts, the
 * health check (CSTS.CFS, surprise removal), a reset that a timeout asked for, and
 * namespace changes reported by asynchronous events.
 * \return completions reaped, or -ENXIO if the controller has failed.
 */
int32_t sl_nvme_ctrlr_process_admin_completions(struct sl_nvme_ctrlr *ctrlr);

/**
 * Submit a raw admin command. The command's data pointer is built from buf/len (buf
 * must be DMA-safe memory, sl_dma_malloc); its CID is assigned by the driver.
 * \return 0, -ENOMEM (no request free), -ENXIO (controller failed).
 */
int sl_nvme_ctrlr_cmd_admin_raw(struct sl_nvme_ctrlr *ctrlr, const struct sl_nvme_cmd *cmd,
				void *buf, uint32_t len, sl_nvme_cmd_cb cb_fn, void *cb_arg);
/** Identify (5.15). \param cns an sl_nvme_identify_cns. \return as admin_raw. */
int sl_nvme_ctrlr_cmd_identify(struct sl_nvme_ctrlr *ctrlr, uint8_t cns, uint16_t cntid,
			       uint32_t nsid, void *buf, uint32_t len, sl_nvme_cmd_cb cb_fn,
			       void *cb_arg);
/** Get Log Page (5.14). \param offset byte offset into the log. \return as admin_raw. */
int sl_nvme_ctrlr_cmd_get_log_page(struct sl_nvme_ctrlr *ctrlr, uint8_t lid, uint32_t nsid,
				   void *buf, uint32_t len, uint64_t offset, sl_nvme_cmd_cb cb_fn,
				   void *cb_arg);
/** Get Features (5.14): the value is in cpl->cdw0. \return as admin_raw. */
int sl_nvme_ctrlr_cmd_get_feature(struct sl_nvme_ctrlr *ctrlr, uint8_t fid, uint8_t sel,
				  uint32_t cdw11, void *buf, uint32_t len, sl_nvme_cmd_cb cb_fn,
				  void *cb_arg);
/** Set Features (5.21). \return as admin_raw. */
int sl_nvme_ctrlr_cmd_set_feature(struct sl_nvme_ctrlr *ctrlr, uint8_t fid, uint32_t cdw11,
				  uint32_t cdw12, void *buf, uint32_t len, sl_nvme_cmd_cb cb_fn,
				  void *cb_arg);
/** Abort command cid on qpair (NULL = the admin queue) (5.1). \return as admin_raw. */
int sl_nvme_ctrlr_cmd_abort(struct sl_nvme_ctrlr *ctrlr, struct sl_nvme_qpair *qpair, uint16_t cid,
			    sl_nvme_cmd_cb cb_fn, void *cb_arg);

/**
 * Run an admin command and wait for it, polling the admin queue (control path only).
 * \param cpl receives the completion (may be NULL).
 * \return 0, -EIO if the command failed (cpl says how), -ENXIO, -ENOMEM, -ETIMEDOUT.
 */
int sl_nvme_ctrlr_cmd_admin_sync(struct sl_nvme_ctrlr *ctrlr, const struct sl_nvme_cmd *cmd,
				 void *buf, uint32_t len, struct sl_nvme_cpl *cpl);

/* --- I/O queue pairs ----------------------------------------------------------------- */

struct sl_nvme_io_qpair_opts {
	/** SQ/CQ entries (2..CAP.MQES+1); 0 = the controller default. */
	uint32_t io_queue_size;
	/** Requests (in flight + queued in software); 0 = the controller default. */
	uint32_t io_queue_requests;
	/** Defer SQ doorbells to process_completions (batching). */
	bool delay_sq_doorbell;
};

void sl_nvme_ctrlr_get_default_io_qpair_opts(const struct sl_nvme_ctrlr *ctrlr,
					     struct sl_nvme_io_qpair_opts *opts);
/**
 * Allocate an I/O queue pair: memory, a queue ID, and the CQ and SQ on the controller.
 * \param opts NULL for the defaults.
 * \return the qpair, or NULL with errno (ENOMEM, EBUSY: no queue ID left, ENXIO, EIO).
 */
struct sl_nvme_qpair *sl_nvme_ctrlr_alloc_io_qpair(struct sl_nvme_ctrlr *ctrlr,
						   const struct sl_nvme_io_qpair_opts *opts);
/**
 * Delete the queues on the controller and free the qpair. Outstanding and queued I/O
 * completes with ABORTED - SQ DELETION first. \return 0 or -errno (freed anyway).
 */
int sl_nvme_ctrlr_free_io_qpair(struct sl_nvme_qpair *qpair);

/**
 * Ring deferred doorbells, reap up to max_completions completions (0 = a queue's
 * worth) and call their callbacks, submit requests queued in software, check timeouts.
 * After a controller reset, this re-creates the qpair first.
 * \return completions reaped, or -ENXIO if the controller failed (outstanding I/O has
 * then been completed with an error).
 */
int32_t sl_nvme_qpair_process_completions(struct sl_nvme_qpair *qpair, uint32_t max_completions);
/**
 * Counters of one qpair since its allocation (SPDK's spdk_nvme_pcie_stat): what the
 * polls found, and how many doorbell updates had to be MMIO writes (each a trap into
 * the hypervisor on an emulated controller) rather than shadow doorbell stores.
 */
struct sl_nvme_qpair_stats {
	uint64_t polls;
	uint64_t idle_polls;
	uint64_t completions;
	uint64_t submitted_requests;
	/** Requests that waited in software (SQ full, or a reset in progress). */
	uint64_t queued_requests;
	uint64_t sq_mmio_doorbell_updates;
	uint64_t cq_mmio_doorbell_updates;
	uint64_t sq_shadow_doorbell_updates;
	uint64_t cq_shadow_doorbell_updates;
};

/** Copy the qpair's counters into stats. Call from the qpair's thread. */
void sl_nvme_qpair_get_stats(const struct sl_nvme_qpair *qpair, struct sl_nvme_qpair_stats *stats);
/** \return the queue ID. */
uint16_t sl_nvme_qpair_get_id(const struct sl_nvme_qpair *qpair);
/** \return commands on the controller plus requests queued in software. */
uint32_t sl_nvme_qpair_get_num_outstanding(const struct sl_nvme_qpair *qpair);

/** \return whether a completion reports an error. */
static inline bool
sl_nvme_cpl_is_error(const struct sl_nvme_cpl *cpl)
{
	return cpl->status.sct != SL_NVME_SCT_GENERIC || cpl->status.sc != SL_NVME_SC_SUCCESS;
}

/* --- Namespaces and I/O --------------------------------------------------------------- */

/** I/O flags for the ns commands (cdw12 bits). */
#define SL_NVME_IO_FLAGS_FUA           SL_NVME_RW_FUA
#define SL_NVME_IO_FLAGS_LIMITED_RETRY SL_NVME_RW_LR
/** Write zeroes: the controller may deallocate instead. */
#define SL_NVME_IO_FLAGS_DEALLOCATE SL_NVME_WZ_DEAC

/** Most ranges one dataset-management command takes here. */
#define SL_NVME_DSM_MAX_RANGES 120

uint32_t sl_nvme_ns_get_id(const struct sl_nvme_ns *ns);
bool sl_nvme_ns_is_active(const struct sl_nvme_ns *ns);
const struct sl_nvme_ns_data *sl_nvme_ns_get_data(const struct sl_nvme_ns *ns);
struct sl_nvme_ctrlr *sl_nvme_ns_get_ctrlr(const struct sl_nvme_ns *ns);
/** \return the LBA data size of the current format. */
uint32_t sl_nvme_ns_get_sector_size(const struct sl_nvme_ns *ns);
uint32_t sl_nvme_ns_get_md_size(const struct sl_nvme_ns *ns);
uint64_t sl_nvme_ns_get_num_sectors(const struct sl_nvme_ns *ns);
uint64_t sl_nvme_ns_get_size(const struct sl_nvme_ns *ns);
uint32_t sl_nvme_ns_get_max_io_xfer_size(const struct sl_nvme_ns *ns);
/** \return the NGUID (16 bytes) from the descriptor list or Identify, or NULL if zero. */
const uint8_t *sl_nvme_ns_get_nguid(const struct sl_nvme_ns *ns);
/** \return the EUI-64 (8 bytes), or NULL if zero. */
const uint8_t *sl_nvme_ns_get_eui64(const struct sl_nvme_ns *ns);
/** \return the UUID (16 bytes) from the descriptor list, or NULL. */
const uint8_t *sl_nvme_ns_get_uuid(const struct sl_nvme_ns *ns);
/** \return the command set identifier (0 = NVM). */
uint8_t sl_nvme_ns_get_csi(const struct sl_nvme_ns *ns);

/*
 * I/O submission. Buffers must be DMA-safe (sl_dma_malloc); iovecs and DSM ranges
 * must stay valid until the callback. Each returns 0 (cb_fn will fire exactly once),
 * -EINVAL (bad range, alignment or flags), -ENOMEM (no request free: retry after
 * completions), -ENXIO (controller failed). A request that finds the SQ full is queued
 * in software and submitted as entries free up.
 */
int sl_nvme_ns_cmd_read(struct sl_nvme_ns *ns, struct sl_nvme_qpair *qpair, void *buf, uint64_t lba,
			uint32_t lba_count, sl_nvme_cmd_cb cb_fn, void *cb_arg, uint32_t io_flags);
int sl_nvme_ns_cmd_write(struct sl_nvme_ns *ns, struct sl_nvme_qpair *qpair, void *buf,
			 uint64_t lba, uint32_t lba_count, sl_nvme_cmd_cb cb_fn, void *cb_arg,
			 uint32_t io_flags);
/** Vectored read: PRP lists, or SGLs where the controller has them and opts allow. */
int sl_nvme_ns_cmd_readv(struct sl_nvme_ns *ns, struct sl_nvme_qpair *qpair,
			 const struct iovec *iov, int iovcnt, uint64_t lba, uint32_t lba_count,
			 sl_nvme_cmd_cb cb_fn, void *cb_arg, uint32_t io_flags);
int sl_nvme_ns_cmd_writev(struct sl_nvme_ns *ns, struct sl_nvme_qpair *qpair,
			  const struct iovec *iov, int iovcnt, uint64_t lba, uint32_t lba_count,
			  sl_nvme_cmd_cb cb_fn, void *cb_arg, uint32_t io_flags);
int sl_nvme_ns_cmd_compare(struct sl_nvme_ns *ns, struct sl_nvme_qpair *qpair, void *buf,
			   uint64_t lba, uint32_t lba_count, sl_nvme_cmd_cb cb_fn, void *cb_arg,
			   uint32_t io_flags);
int sl_nvme_ns_cmd_flush(struct sl_nvme_ns *ns, struct sl_nvme_qpair *qpair, sl_nvme_cmd_cb cb_fn,
			 void *cb_arg);
int sl_nvme_ns_cmd_write_zeroes(struct sl_nvme_ns *ns, struct sl_nvme_qpair *qpair, uint64_t lba,
				uint32_t lba_count, sl_nvme_cmd_cb cb_fn, void *cb_arg,
				uint32_t io_flags);
/**
 * Dataset management (e.g. SL_NVME_DSM_ATTR_DEALLOCATE). \param num_ranges
 * 1..SL_NVME_DSM_MAX_RANGES.
 */
int sl_nvme_ns_cmd_dataset_management(struct sl_nvme_ns *ns, struct sl_nvme_qpair *qpair,
				      uint32_t attributes, const struct sl_nvme_dsm_range *ranges,
				      uint16_t num_ranges, sl_nvme_cmd_cb cb_fn, void *cb_arg);
/** Raw I/O passthrough (buf DMA-safe). \return as the ns commands. */
int sl_nvme_ctrlr_cmd_io_raw(struct sl_nvme_ctrlr *ctrlr, struct sl_nvme_qpair *qpair,
			     const struct sl_nvme_cmd *cmd, void *buf, uint32_t len,
			     sl_nvme_cmd_cb cb_fn, void *cb_arg);

/* --- Status decoding ------------------------------------------------------------------ */

/** \return the spec's name of a status, e.g. "INVALID FIELD", or "UNKNOWN". */
const char *sl_nvme_status_str(uint8_t sct, uint8_t sc);
/** \return "GENERIC", "COMMAND SPECIFIC", "MEDIA ERROR", "PATH", "VENDOR SPECIFIC"... */
const char *sl_nvme_sct_str(uint8_t sct);
/** \return the name of an opcode ("READ", "IDENTIFY"), or "UNKNOWN". */
const char *sl_nvme_opcode_str(bool admin, uint8_t opc);
/**
 * Format a completion: "INVALID FIELD (00/02) qid:1 cid:5 cdw0:0 sqhd:0004 p:1 m:0
 * dnr:1". \return the length that was needed, as snprintf.
 */
int sl_nvme_cpl_fmt(char *buf, size_t len, const struct sl_nvme_cpl *cpl);
/** Format a command: "READ sqid:1 cid:5 nsid:1 lba:0 len:8". \return as snprintf. */
int sl_nvme_cmd_fmt(char *buf, size_t len, bool admin, uint16_t qid, const struct sl_nvme_cmd *cmd);

#endif /* SLUICE_NVME_H */
