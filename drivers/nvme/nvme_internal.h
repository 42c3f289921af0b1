/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/* Private declarations of the NVMe driver, shared by its .c files and unit tests. */
#ifndef SLUICE_NVME_INTERNAL_H
#define SLUICE_NVME_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/queue.h>

#include "sluice/log.h"
#include "sluice/nvme.h"
#include "sluice/nvme_spec.h"
#include "sluice/pci.h"
#include "sluice/thread.h"
#include "sluice/util.h"

/*
 * A tracker is one command on the controller. It is DMA memory: its tail holds the
 * PRP list, SGL segment or DSM ranges of the command, so the I/O path needs no
 * allocation. Trackers are NVME_TRACKER_SIZE-aligned, so the list never crosses a
 * memory page (a PRP list may then be one page with no chaining, 4.3).
 */
#define NVME_TRACKER_SIZE          2048
#define NVME_TRACKER_HDR_SIZE      64
#define NVME_TRACKER_LIST_BYTES    (NVME_TRACKER_SIZE - NVME_TRACKER_HDR_SIZE)
#define NVME_MAX_PRP_LIST_ENTRIES  (NVME_TRACKER_LIST_BYTES / 8)
#define NVME_MAX_SGL_DESCRIPTORS   (NVME_TRACKER_LIST_BYTES / 16)
#define NVME_HOST_PAGE_SIZE        4096u
#define NVME_MAX_IO_QUEUES         1023u
#define NVME_ADMIN_QUEUE_SIZE      32u
#define NVME_ADMIN_REQUESTS        64u
#define NVME_DEFAULT_IO_QUEUE_SIZE 256u
#define NVME_DEFAULT_IO_REQUESTS   512u
#define NVME_MAX_AERS              4u
/* I/O qpairs read the clock for timeouts once per this many polls. */
#define NVME_TIMEOUT_CHECK_POLLS 1024u

SL_STATIC_ASSERT(SL_NVME_DSM_MAX_RANGES <= NVME_MAX_SGL_DESCRIPTORS, "DSM ranges fit a tracker");

enum nvme_payload_type {
	NVME_PAYLOAD_NONE = 0,
	NVME_PAYLOAD_CONTIG,
	NVME_PAYLOAD_IOV,
	NVME_PAYLOAD_DSM,
};

/* A request: from the qpair's pool; lives from submit to callback. */
struct nvme_request {
	struct sl_nvme_cmd cmd;
	STAILQ_ENTRY(nvme_request) link;
	sl_nvme_cmd_cb cb_fn;
	void *cb_arg;
	union {
		void *buf;
		const struct iovec *iov;
		const struct sl_nvme_dsm_range *ranges;
	} payload;
	uint32_t payload_size;
	uint16_t payload_count; /* iovcnt or DSM ranges */
	uint8_t payload_type;
	/* Internal requests (AERs) are dropped, not completed, on reset. */
	bool internal;
};

struct nvme_tracker {
	TAILQ_ENTRY(nvme_tracker) link;
	struct nvme_request *req;
	uint64_t submit_tick; /* 0 until a timeout check has seen it */
	uint64_t list_iova;   /* IOVA of u */
	uint16_t cid;
	uint8_t timed_out; /* 1 once an abort was sent for it */
	uint8_t rsvd[21];
	union {
		uint64_t prp[NVME_MAX_PRP_LIST_ENTRIES];
		struct sl_nvme_sgl_desc sgl[NVME_MAX_SGL_DESCRIPTORS];
		struct sl_nvme_dsm_range dsm[NVME_MAX_SGL_DESCRIPTORS];
	} u;
};
SL_STATIC_ASSERT(sizeof(struct nvme_tracker) == NVME_TRACKER_SIZE, "tracker size");
SL_STATIC_ASSERT(offsetof(struct nvme_tracker, u) == NVME_TRACKER_HDR_SIZE, "tracker header");

/*
 * The last range of data buffers found to translate to IOVA == VA (DPDK's IOVA-as-VA
 * mode: then every DMA address is its virtual address), so that the I/O path walks no
 * memseg tables per command. Ranges that do not translate to themselves (IOVA = PA)
 * are never cached: hugepages may be freed and their virtual addresses later backed by
 * other physical pages.
 */
struct nvme_iova_cache {
	uintptr_t start;
	uintptr_t end;
};

enum nvme_qpair_state {
	/* Queues not (or no longer) on the controller: after a reset, before reconnect. */
	NVME_QPAIR_DISCONNECTED = 0,
	NVME_QPAIR_ENABLED,
	/* The controller failed: everything completes with an error. */
	NVME_QPAIR_FAILED,
};

struct sl_nvme_qpair {
	struct sl_nvme_ctrlr *ctrlr;
	struct sl_nvme_cmd *sq;
	struct sl_nvme_cpl *cq;
	struct nvme_tracker *tr;
	struct nvme_request *reqs;
	uint64_t sq_iova;
	uint64_t cq_iova;
	uint32_t sq_tdbl; /* doorbell register offsets */
	uint32_t cq_hdbl;
	uint16_t id;
	uint16_t num_entries;
	uint16_t sq_tail;
	uint16_t last_sq_tail; /* value last written to the SQ doorbell */
	uint16_t cq_head;
	uint8_t phase;
	bool is_admin;
	bool delay_sq_doorbell;
	bool in_completion;
	/* Shadow doorbell and event index of each queue, or NULL (see dbbuf). */
	volatile uint32_t *sq_shadow;
	volatile uint32_t *sq_eventidx;
	volatile uint32_t *cq_shadow;
	volatile uint32_t *cq_eventidx;
	struct nvme_iova_cache iova_cache;
	/* Admin queue only: the shared positions and this process's ledger slot. */
	struct nvme_admin_shared *admin_sh;
	struct nvme_ledger_slot *ledger_slot;
	uint16_t cid_base; /* cid of tr[0] */
	uint16_t num_trackers;
	struct sl_nvme_qpair_stats stats;
	_Atomic int state;
	/* Controller reset generation this qpair's queues were created in. */
	uint64_t reset_gen;
	uint32_t num_reqs;
	uint32_t num_tr_busy;
	uint32_t num_queued;
	uint64_t timeout_ticks;
	uint64_t next_timeout_check;
	uint32_t polls_since_check;
	TAILQ_HEAD(, nvme_tracker) free_tr;
	TAILQ_HEAD(, nvme_tracker) outstanding_tr;
	STAILQ_HEAD(, nvme_request) free_req;
	STAILQ_HEAD(, nvme_request) queued_req;
	TAILQ_ENTRY(sl_nvme_qpair) link;
};

/* Register access. MMIO goes only through these, so a unit test can play the
 * controller, and so every access is an aligned 32-bit one (QEMU rejects narrower or
 * 64-bit reads of its NVMe registers). */
struct nvme_reg_ops {
	uint32_t (*read4)(struct sl_nvme_ctrlr *ctrlr, uint32_t offset);
	void (*write4)(struct sl_nvme_ctrlr *ctrlr, uint32_t offset, uint32_t value);
	/* Translate a buffer address to its IOVA (sl_vtophys for real devices). */
	uint64_t (*vtophys)(struct sl_nvme_ctrlr *ctrlr, const void *vaddr, uint64_t *size);
};

enum nvme_ctrlr_state {
	NVME_CTRLR_STATE_INIT = 0,
	/* A process joining a controller another one initialised. */
	NVME_CTRLR_STATE_ATTACH_SHARED,
	NVME_CTRLR_STATE_DISABLE_WAIT_FOR_READY_1,
	NVME_CTRLR_STATE_DISABLE,
	NVME_CTRLR_STATE_DISABLE_WAIT_FOR_READY_0,
	NVME_CTRLR_STATE_ENABLE_ADMIN_QUEUE,
	NVME_CTRLR_STATE_ENABLE,
	NVME_CTRLR_STATE_ENABLE_WAIT_FOR_READY_1,
	NVME_CTRLR_STATE_IDENTIFY,
	NVME_CTRLR_STATE_WAIT_FOR_IDENTIFY,
	NVME_CTRLR_STATE_SET_NUM_QUEUES,
	NVME_CTRLR_STATE_WAIT_FOR_SET_NUM_QUEUES,
	NVME_CTRLR_STATE_DBBUF_CONFIG,
	NVME_CTRLR_STATE_WAIT_FOR_DBBUF_CONFIG,
	NVME_CTRLR_STATE_IDENTIFY_ACTIVE_NS,
	NVME_CTRLR_STATE_WAIT_FOR_IDENTIFY_ACTIVE_NS,
	NVME_CTRLR_STATE_IDENTIFY_NS,
	NVME_CTRLR_STATE_WAIT_FOR_IDENTIFY_NS,
	NVME_CTRLR_STATE_IDENTIFY_ID_DESCS,
	NVME_CTRLR_STATE_WAIT_FOR_IDENTIFY_ID_DESCS,
	NVME_CTRLR_STATE_CONFIGURE_AER,
	NVME_CTRLR_STATE_WAIT_FOR_CONFIGURE_AER,
	NVME_CTRLR_STATE_SUBMIT_AERS,
	NVME_CTRLR_STATE_READY,
	NVME_CTRLR_STATE_ERROR,
};

/* Controller flags (shared->flags). */
#define NVME_CTRLR_FAILED          (1u << 0)
#define NVME_CTRLR_REMOVED         (1u << 1)
#define NVME_CTRLR_RESETTING       (1u << 2)
#define NVME_CTRLR_RESET_REQUESTED (1u << 3)
#define NVME_CTRLR_NS_CHANGED      (1u << 4)

/* --- The ledger (nvme_ledger.c): processes sharing one controller ---------------------- */

/* Admin commands carry cid = slot * NVME_ADMIN_CIDS_PER_SLOT + tracker index, so a
 * completion names the process that owns it. */
#define NVME_LEDGER_SLOTS        SL_NVME_LEDGER_MAX_PROCS
#define NVME_ADMIN_CIDS_PER_SLOT 32u
#define NVME_SHM_MAGIC           0x534c4e564d454c31ull /* "SLNVMEL1" */

enum nvme_slot_state {
	NVME_SLOT_FREE = 0,
	NVME_SLOT_ACTIVE,
	/* Reaped, but admin commands it submitted are still on the controller: the slot
	 * (and its command IDs) is reused only once their completions have been dropped. */
	NVME_SLOT_DRAINING,
};

struct nvme_ledger_slot {
	uint32_t state; /* enum nvme_slot_state */
	int32_t pid;
	uint64_t start_time;
	uint32_t refs;
	bool primary;
	/* Admin commands placed on the SQ and whose completion nobody consumed yet. */
	uint32_t admin_outstanding;
	/* Completions reaped by another process for this one: a ring of cids' entries,
	 * large enough for every command the slot can have outstanding. */
	uint32_t parked_head;
	uint32_t parked_tail;
	struct sl_nvme_cpl parked[NVME_ADMIN_CIDS_PER_SLOT];
	/* vfio device fd number in that process (for pidfd_getfd by an adopter). */
	int32_t vfio_fd;
	/* Its pid namespace (inode of /proc/self/ns/pid): a pid means nothing to a
	 * process in another namespace, which then never reaps the entry. */
	uint64_t pidns;
};

/* One I/O queue ID: who holds it, and the DMA memory its queues live in, so that a
 * reaper can free them once the queues are deleted on the controller. */
struct nvme_qid_rec {
	uint8_t owner; /* slot + 1; 0 = free */
	uint8_t rsvd[7];
	void *sq;
	void *cq;
	void *tr;
};

/* The admin queue's positions, written through by whoever holds the controller lock,
 * so that a holder that dies leaves them exact (see nvme_ledger_recover). */
struct nvme_admin_shared {
	struct sl_nvme_cmd *sq;
	struct sl_nvme_cpl *cq;
	uint64_t sq_iova;
	uint64_t cq_iova;
	uint16_t num_entries;
	uint16_t sq_tail;      /* next free SQ slot (entries before it are complete) */
	uint16_t last_sq_tail; /* last value written to the SQ doorbell */
	uint16_t cq_head;
	uint8_t phase;
	uint32_t inflight; /* commands on the SQ not yet consumed from the CQ */
};

enum nvme_shared_state {
	NVME_SHARED_INITIALISING = 0,
	NVME_SHARED_READY,
	NVME_SHARED_FAILED,
};

/*
 * The part of a controller that every process sharing it sees: in a memzone named
 * after the PCI address when processes share memory (shm id), else private DMA memory.
 * Pointers in it point into DPDK memory, which every process of a shm group maps at
 * the same address. Protected by lock (robust, process-shared, recursive).
 */
struct nvme_ctrlr_shared {
	uint64_t magic;
	pthread_mutex_t lock;
	_Atomic uint32_t init_state; /* enum nvme_shared_state */
	uint64_t lock_recoveries;
	uint64_t reaped;
	struct nvme_admin_shared admin;
	struct nvme_ledger_slot slots[NVME_LEDGER_SLOTS];
	struct nvme_qid_rec qids[NVME_MAX_IO_QUEUES + 1];
	uint32_t *dbbuf_db;
	uint32_t *dbbuf_ei;
	uint64_t dbbuf_db_iova;
	uint64_t dbbuf_ei_iova;
	bool dbbuf_enabled;
	struct sl_nvme_transport_id trid;
	struct sl_nvme_ctrlr_opts opts;
	struct sl_pci_id pci_id;
	union sl_nvme_cap_register cap;
	union sl_nvme_vs_register vs;
	uint64_t quirks;
	uint32_t page_size;
	uint32_t max_xfer_size;
	uint32_t num_io_queues;
	uint32_t num_ns;
	_Atomic uint32_t flags;
	_Atomic uint64_t reset_gen;
	struct sl_nvme_ctrlr_data cdata;
};

struct sl_nvme_ns {
	struct sl_nvme_ctrlr *ctrlr;
	struct sl_nvme_ns_data *nsdata; /* in ctrlr->nsdata */
	uint32_t id;
	uint32_t sector_size;
	uint32_t md_size;
	uint32_t extended_lba_size;
	uint64_t num_sectors;
	uint8_t csi;
	bool active;
	bool has_uuid;
	uint8_t uuid[16];
	uint8_t nguid[16];
	uint8_t eui64[8];
};

struct sl_nvme_ctrlr {
	struct nvme_ctrlr_shared *shared;
	const struct nvme_reg_ops *reg_ops;
	void *reg_ctx;
	volatile uint8_t *bar;
	uint64_t bar_size;
	struct sl_pci_device *pdev;
	struct sl_nvme_qpair *adminq;
	/* This process's ledger slot; shared->lock depth held by this process. */
	int slot;
	uint32_t lock_depth;
	/* Process-local references (sl_nvme_connect of an attached controller). */
	uint32_t refs;
	bool shm;           /* shared lives in a memzone */
	char shm_name[32];  /* its name */
	uint64_t next_reap; /* ticks */
	uint64_t seen_reset_gen;
	/* This process became the primary by reaping the old one: it owes the AERs. */
	bool adopted;
	bool was_primary;
	bool registered;
	TAILQ_ENTRY(sl_nvme_ctrlr) registry_link;
	TAILQ_HEAD(, sl_nvme_qpair) io_qpairs;
	struct sl_nvme_ns *ns;          /* [num_ns], index nsid - 1 */
	struct sl_nvme_ns_data *nsdata; /* DMA, [num_ns] */
	uint32_t *active_ns;            /* sorted active namespace IDs */
	uint32_t num_active_ns;
	uint32_t active_ns_cap;
	uint32_t *ns_list_buf; /* DMA page for Identify active namespace list */
	void *id_desc_buf;     /* DMA page for the descriptor list */
	void *aer_log_buf;     /* DMA page for the log an AER points at */
	/* Shadow doorbells (NVMe 1.3, 5.7): one page each, laid out as the doorbells;
	 * copies of shared's (the pages are shared by every process). */
	uint32_t *dbbuf_db;
	uint32_t *dbbuf_ei;
	uint64_t dbbuf_db_iova;
	uint64_t dbbuf_ei_iova;
	bool dbbuf_enabled;
	/* Init state machine. */
	enum nvme_ctrlr_state state;
	uint64_t state_deadline;
	uint32_t init_ns_idx;
	uint32_t init_ns_list_start;
	bool init_cmd_done;
	bool init_cmd_failed;
	uint32_t init_cdw0;
	uint32_t num_aers;
	sl_nvme_aer_cb aer_cb;
	void *aer_arg;
	sl_nvme_remove_cb remove_cb;
	void *remove_arg;
	bool remove_notified;
	uint64_t next_health_check;
	TAILQ_ENTRY(sl_nvme_ctrlr) link;
};

/* --- nvme_ctrlr.c --- */
uint32_t nvme_ctrlr_get_reg4(struct sl_nvme_ctrlr *ctrlr, uint32_t offset);
void nvme_ctrlr_set_reg4(struct sl_nvme_ctrlr *ctrlr, uint32_t offset, uint32_t value);
uint64_t nvme_ctrlr_get_reg8(struct sl_nvme_ctrlr *ctrlr, uint32_t offset);
void nvme_ctrlr_set_reg8(struct sl_nvme_ctrlr *ctrlr, uint32_t offset, uint64_t value);
struct sl_nvme_ctrlr *nvme_ctrlr_construct(const struct sl_nvme_transport_id *trid,
					   const struct sl_nvme_ctrlr_opts *opts,
					   const struct nvme_reg_ops *ops, void *reg_ctx);
void nvme_ctrlr_destruct(struct sl_nvme_ctrlr *ctrlr);
/* One step of initialisation. \return 0 while in progress or done (state READY),
 * -errno on failure (state ERROR). */
int nvme_ctrlr_process_init(struct sl_nvme_ctrlr *ctrlr);
int nvme_ctrlr_init_sync(struct sl_nvme_ctrlr *ctrlr);
const char *nvme_ctrlr_state_str(enum nvme_ctrlr_state state);
int nvme_ctrlr_alloc_qid(struct sl_nvme_ctrlr *ctrlr);
void nvme_ctrlr_free_qid(struct sl_nvme_ctrlr *ctrlr, uint16_t qid);
int nvme_ctrlr_create_io_queues(struct sl_nvme_ctrlr *ctrlr, struct sl_nvme_qpair *qpair);
/* Delete I/O SQ or CQ qid. \param missing_ok a queue the controller says is not there
 * counts as deleted. \return 0 or -errno. */
int nvme_ctrlr_delete_queue(struct sl_nvme_ctrlr *ctrlr, uint8_t opc, uint16_t qid,
			    bool missing_ok);
int nvme_ctrlr_submit_admin(struct sl_nvme_ctrlr *ctrlr, const struct sl_nvme_cmd *cmd, void *buf,
			    uint32_t len, sl_nvme_cmd_cb cb_fn, void *cb_arg, bool internal);
void nvme_ctrlr_request_reset(struct sl_nvme_ctrlr *ctrlr, const char *why);
bool nvme_ctrlr_check_present(struct sl_nvme_ctrlr *ctrlr);
void nvme_ctrlr_lock(struct sl_nvme_ctrlr *ctrlr);
/* Add to the process's connected controllers (after initialisation). */
void nvme_ctrlr_register(struct sl_nvme_ctrlr *ctrlr);
void nvme_ctrlr_unlock(struct sl_nvme_ctrlr *ctrlr);
static inline uint32_t
nvme_ctrlr_flags(const struct sl_nvme_ctrlr *ctrlr)
{
	return atomic_load_explicit(&ctrlr->shared->flags, memory_order_acquire);
}

/* --- nvme_qpair.c --- */
struct sl_nvme_qpair *nvme_qpair_construct(struct sl_nvme_ctrlr *ctrlr, uint16_t id,
					   uint32_t num_entries, uint32_t num_reqs);
void nvme_qpair_destruct(struct sl_nvme_qpair *qpair);
void nvme_qpair_reset_queues(struct sl_nvme_qpair *qpair);
struct nvme_request *nvme_qpair_alloc_request(struct sl_nvme_qpair *qpair);
int nvme_qpair_submit_request(struct sl_nvme_qpair *qpair, struct nvme_request *req);
int32_t nvme_qpair_process_completions(struct sl_nvme_qpair *qpair, uint32_t max);
void nvme_qpair_fail_all(struct sl_nvme_qpair *qpair, uint8_t sct, uint8_t sc, bool dnr,
			 bool outstanding_only);
void nvme_qpair_drop_internal(struct sl_nvme_qpair *qpair);
void nvme_qpair_ring_sq_doorbell(struct sl_nvme_qpair *qpair);
void nvme_qpair_set_shadow_doorbells(struct sl_nvme_qpair *qpair);
struct nvme_tracker *nvme_qpair_find_tracker(struct sl_nvme_qpair *qpair, uint16_t cid);
/* Complete a tracker with a completion another process reaped for us. */
void nvme_qpair_complete_parked(struct sl_nvme_qpair *qpair, struct nvme_tracker *tr,
				const struct sl_nvme_cpl *cpl);

/* --- nvme_ledger.c --- */
/* Set up shared (new or found) and this process's slot. \return 0 or -errno. */
int nvme_ledger_attach(struct sl_nvme_ctrlr *ctrlr, const struct sl_nvme_transport_id *trid,
		       const struct sl_nvme_ctrlr_opts *opts, bool *primary);
/* Give up this process's slot. \return whether other processes still hold the
 * controller (then it must be left running). */
bool nvme_ledger_detach(struct sl_nvme_ctrlr *ctrlr);
void nvme_ledger_free_shared(struct sl_nvme_ctrlr *ctrlr);
/* \return whether another live process holds a slot (call with the lock). */
bool nvme_ledger_others_alive(struct sl_nvme_ctrlr *ctrlr);
int nvme_ledger_reap(struct sl_nvme_ctrlr *ctrlr);
void nvme_ledger_recover(struct sl_nvme_ctrlr *ctrlr);
void nvme_ledger_sync_in(struct sl_nvme_ctrlr *ctrlr);
void nvme_ledger_admin_placed(struct sl_nvme_qpair *qpair);
void nvme_ledger_admin_reset(struct sl_nvme_qpair *qpair);
struct nvme_tracker *nvme_ledger_admin_cqe(struct sl_nvme_qpair *qpair,
					   const struct sl_nvme_cpl *cpl);
void nvme_ledger_admin_drain_parked(struct sl_nvme_qpair *qpair);
void nvme_ledger_qid_set_memory(struct sl_nvme_ctrlr *ctrlr, uint16_t qid, void *sq, void *cq,
				void *tr);
uint32_t nvme_ledger_qids_in_use(const struct sl_nvme_ctrlr *ctrlr);
struct sl_pci_device *nvme_ledger_borrow_device(struct sl_nvme_ctrlr *ctrlr,
						const struct sl_pci_addr *addr);

/* --- nvme_pcie.c --- */
extern const struct nvme_reg_ops g_nvme_pcie_reg_ops;
int nvme_pcie_ctrlr_attach(struct sl_nvme_ctrlr *ctrlr);
void nvme_pcie_ctrlr_detach(struct sl_nvme_ctrlr *ctrlr);
/* Fill the data pointer of tr->req->cmd from the request's payload.
 * \return 0 or -EINVAL (payload cannot be described). */
int nvme_pcie_build_payload(struct sl_nvme_qpair *qpair, struct nvme_tracker *tr);
/* \param cache NULL: translate every buffer through reg_ops->vtophys. */
int nvme_pcie_build_prps(struct sl_nvme_ctrlr *ctrlr, struct nvme_iova_cache *cache,
			 struct nvme_tracker *tr, const struct iovec *iov, int iovcnt,
			 uint32_t len);
int nvme_pcie_build_sgl(struct sl_nvme_ctrlr *ctrlr, struct nvme_iova_cache *cache,
			struct nvme_tracker *tr, const struct iovec *iov, int iovcnt, uint32_t len);

/* --- nvme_ns.c --- */
void nvme_ns_construct(struct sl_nvme_ns *ns, struct sl_nvme_ctrlr *ctrlr, uint32_t nsid);
void nvme_ns_update(struct sl_nvme_ns *ns);
void nvme_ns_parse_id_descs(struct sl_nvme_ns *ns, const void *buf, size_t len);

/* --- nvme_quirks.c --- */
#define NVME_QUIRK_DELAY_BEFORE_CHK_RDY    (1ull << 0)
#define NVME_QUIRK_MMIO_32BIT_ONLY         (1ull << 1)
#define NVME_QUIRK_READ_ZERO_AFTER_DEALLOC (1ull << 2)
#define NVME_QUIRK_NO_SGL_FOR_IO           (1ull << 3)
#define NVME_QUIRK_IDENTIFY_CNS            (1ull << 4)
#define NVME_QUIRK_NO_DEALLOCATE           (1ull << 5)
#define NVME_QUIRK_SHST_COMPLETE           (1ull << 6)
uint64_t nvme_quirks_get(const struct sl_pci_id *id);
const char *nvme_quirk_str(uint64_t quirk);

/* --- nvme_status.c --- */
void nvme_qpair_log_error(const struct sl_nvme_qpair *qpair, const struct sl_nvme_cmd *cmd,
			  const struct sl_nvme_cpl *cpl);

#endif /* SLUICE_NVME_INTERNAL_H */
