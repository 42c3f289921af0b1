/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/** \file
 * NVMe register and command layouts, per the NVM Express Base Specification 1.4
 * (with the 2.0 additions a host driver needs). Section numbers cite 1.4 unless said.
 * Every struct carries a static assert on its size; all fields are little-endian.
 */
#ifndef SLUICE_NVME_SPEC_H
#define SLUICE_NVME_SPEC_H

#include <stdint.h>

#include "sluice/util.h"

/* --- Controller registers (section 3.1) ------------------------------------------- */

enum sl_nvme_reg_offset {
	SL_NVME_REG_CAP = 0x00,    /* Controller Capabilities, 64 bits */
	SL_NVME_REG_VS = 0x08,     /* Version */
	SL_NVME_REG_INTMS = 0x0c,  /* Interrupt Mask Set */
	SL_NVME_REG_INTMC = 0x10,  /* Interrupt Mask Clear */
	SL_NVME_REG_CC = 0x14,     /* Controller Configuration */
	SL_NVME_REG_CSTS = 0x1c,   /* Controller Status */
	SL_NVME_REG_NSSR = 0x20,   /* NVM Subsystem Reset */
	SL_NVME_REG_AQA = 0x24,    /* Admin Queue Attributes */
	SL_NVME_REG_ASQ = 0x28,    /* Admin SQ Base Address, 64 bits */
	SL_NVME_REG_ACQ = 0x30,    /* Admin CQ Base Address, 64 bits */
	SL_NVME_REG_CMBLOC = 0x38, /* Controller Memory Buffer Location */
	SL_NVME_REG_CMBSZ = 0x3c,  /* Controller Memory Buffer Size */
	SL_NVME_REG_DBS = 0x1000,  /* first doorbell (SQ 0 tail) */
};

/** CAP (3.1.1). */
union sl_nvme_cap_register {
	uint64_t raw;
	struct {
		uint32_t mqes : 16; /* maximum queue entries supported, 0's based */
		uint32_t cqr : 1;   /* contiguous queues required */
		uint32_t ams : 2;   /* arbitration mechanisms supported */
		uint32_t rsvd1 : 5;
		uint32_t to : 8;     /* worst-case ready timeout, 500 ms units */
		uint32_t dstrd : 4;  /* doorbell stride: 2 ^ (2 + dstrd) bytes */
		uint32_t nssrs : 1;  /* NVM subsystem reset supported */
		uint32_t css : 8;    /* command sets supported */
		uint32_t bps : 1;    /* boot partition support */
		uint32_t rsvd2 : 2;  /* bits 47:46 */
		uint32_t mpsmin : 4; /* minimum memory page size: 2 ^ (12 + mpsmin) */
		uint32_t mpsmax : 4; /* maximum memory page size */
		uint32_t pmrs : 1;   /* persistent memory region supported */
		uint32_t cmbs : 1;   /* controller memory buffer supported */
		uint32_t rsvd3 : 6;
	} bits;
};
SL_STATIC_ASSERT(sizeof(union sl_nvme_cap_register) == 8, "CAP is 64 bits");

/** CAP.CSS bits. */
#define SL_NVME_CAP_CSS_NVM  (1u << 0)
#define SL_NVME_CAP_CSS_IOCS (1u << 6)
#define SL_NVME_CAP_CSS_NOIO (1u << 7)

/** VS (3.1.2). */
union sl_nvme_vs_register {
	uint32_t raw;
	struct {
		uint32_t ter : 8; /* tertiary version */
		uint32_t mnr : 8; /* minor version */
		uint32_t mjr : 16;
	} bits;
};
SL_STATIC_ASSERT(sizeof(union sl_nvme_vs_register) == 4, "VS is 32 bits");

#define SL_NVME_VERSION(mjr, mnr, ter) (((uint32_t)(mjr) << 16) | ((uint32_t)(mnr) << 8) | (ter))

/** CC (3.1.5). */
union sl_nvme_cc_register {
	uint32_t raw;
	struct {
		uint32_t en : 1;
		uint32_t rsvd1 : 3;
		uint32_t css : 3;    /* I/O command set selected */
		uint32_t mps : 4;    /* memory page size: 2 ^ (12 + mps) */
		uint32_t ams : 3;    /* arbitration mechanism selected */
		uint32_t shn : 2;    /* shutdown notification */
		uint32_t iosqes : 4; /* I/O SQ entry size, log2: 6 for 64 bytes */
		uint32_t iocqes : 4; /* I/O CQ entry size, log2: 4 for 16 bytes */
		uint32_t rsvd2 : 8;
	} bits;
};
SL_STATIC_ASSERT(sizeof(union sl_nvme_cc_register) == 4, "CC is 32 bits");

enum sl_nvme_shn {
	SL_NVME_SHN_NONE = 0,
	SL_NVME_SHN_NORMAL = 1,
	SL_NVME_SHN_ABRUPT = 2,
};

/** CSTS (3.1.6). */
union sl_nvme_csts_register {
	uint32_t raw;
	struct {
		uint32_t rdy : 1;
		uint32_t cfs : 1;   /* controller fatal status */
		uint32_t shst : 2;  /* shutdown status */
		uint32_t nssro : 1; /* NVM subsystem reset occurred */
		uint32_t pp : 1;    /* processing paused */
		uint32_t rsvd : 26;
	} bits;
};
SL_STATIC_ASSERT(sizeof(union sl_nvme_csts_register) == 4, "CSTS is 32 bits");

enum sl_nvme_shst {
	SL_NVME_SHST_NORMAL = 0,
	SL_NVME_SHST_OCCURRING = 1,
	SL_NVME_SHST_COMPLETE = 2,
};

/** AQA (3.1.8). */
union sl_nvme_aqa_register {
	uint32_t raw;
	struct {
		uint32_t asqs : 12; /* admin SQ size, 0's based */
		uint32_t rsvd1 : 4;
		uint32_t acqs : 12; /* admin CQ size, 0's based */
		uint32_t rsvd2 : 4;
	} bits;
};
SL_STATIC_ASSERT(sizeof(union sl_nvme_aqa_register) == 4, "AQA is 32 bits");

/* --- Commands and completions (section 4) ----------------------------------------- */

/** PSDT: how the data pointer is to be read (4.2). */
enum sl_nvme_psdt {
	SL_NVME_PSDT_PRP = 0,
	SL_NVME_PSDT_SGL_MPTR_CONTIG = 1,
	SL_NVME_PSDT_SGL_MPTR_SGL = 2,
};

/** SGL descriptor types (4.4, figure 112). */
enum sl_nvme_sgl_type {
	SL_NVME_SGL_TYPE_DATA_BLOCK = 0x0,
	SL_NVME_SGL_TYPE_BIT_BUCKET = 0x1,
	SL_NVME_SGL_TYPE_SEGMENT = 0x2,
	SL_NVME_SGL_TYPE_LAST_SEGMENT = 0x3,
	SL_NVME_SGL_TYPE_KEYED_DATA_BLOCK = 0x4,
	SL_NVME_SGL_TYPE_TRANSPORT_DATA_BLOCK = 0x5,
};

enum sl_nvme_sgl_subtype {
	SL_NVME_SGL_SUBTYPE_ADDRESS = 0x0,
	SL_NVME_SGL_SUBTYPE_OFFSET = 0x1,
};

/** An SGL descriptor (4.4): 8-byte address, 4-byte length, identifier in byte 15. */
struct sl_nvme_sgl_desc {
	uint64_t address;
	uint32_t length;
	uint8_t rsvd[3];
	uint8_t subtype : 4;
	uint8_t type : 4;
};
SL_STATIC_ASSERT(sizeof(struct sl_nvme_sgl_desc) == 16, "SGL descriptor is 16 bytes");

/** A submission queue entry (4.2, figure 105). */
struct sl_nvme_cmd {
	/* dword 0 */
	uint16_t opc : 8;
	uint16_t fuse : 2;
	uint16_t rsvd1 : 4;
	uint16_t psdt : 2;
	uint16_t cid;
	uint32_t nsid;
	uint32_t cdw2;
	uint32_t cdw3;
	uint64_t mptr;
	union {
		struct {
			uint64_t prp1;
			uint64_t prp2;
		} prp;
		struct sl_nvme_sgl_desc sgl1;
	} dptr;
	uint32_t cdw10;
	uint32_t cdw11;
	uint32_t cdw12;
	uint32_t cdw13;
	uint32_t cdw14;
	uint32_t cdw15;
};
SL_STATIC_ASSERT(sizeof(struct sl_nvme_cmd) == 64, "SQE is 64 bytes");

/** The status field of a completion (4.6.1, figure 124), phase tag included. */
struct sl_nvme_status {
	uint16_t p : 1;   /* phase tag */
	uint16_t sc : 8;  /* status code */
	uint16_t sct : 3; /* status code type */
	uint16_t crd : 2; /* command retry delay */
	uint16_t m : 1;   /* more */
	uint16_t dnr : 1; /* do not retry */
};
SL_STATIC_ASSERT(sizeof(struct sl_nvme_status) == 2, "status field is 16 bits");

/** A completion queue entry (4.6, figure 121). */
struct sl_nvme_cpl {
	uint32_t cdw0;
	uint32_t cdw1;
	uint16_t sqhd;
	uint16_t sqid;
	uint16_t cid;
	struct sl_nvme_status status;
};
SL_STATIC_ASSERT(sizeof(struct sl_nvme_cpl) == 16, "CQE is 16 bytes");

/** Status code types (4.6.1.2). */
enum sl_nvme_sct {
	SL_NVME_SCT_GENERIC = 0x0,
	SL_NVME_SCT_COMMAND_SPECIFIC = 0x1,
	SL_NVME_SCT_MEDIA_ERROR = 0x2,
	SL_NVME_SCT_PATH = 0x3,
	SL_NVME_SCT_VENDOR_SPECIFIC = 0x7,
};

/** Generic command status (4.6.1.2.1). */
enum sl_nvme_generic_sc {
	SL_NVME_SC_SUCCESS = 0x00,
	SL_NVME_SC_INVALID_OPCODE = 0x01,
	SL_NVME_SC_INVALID_FIELD = 0x02,
	SL_NVME_SC_COMMAND_ID_CONFLICT = 0x03,
	SL_NVME_SC_DATA_TRANSFER_ERROR = 0x04,
	SL_NVME_SC_ABORTED_POWER_LOSS = 0x05,
	SL_NVME_SC_INTERNAL_DEVICE_ERROR = 0x06,
	SL_NVME_SC_ABORTED_BY_REQUEST = 0x07,
	SL_NVME_SC_ABORTED_SQ_DELETION = 0x08,
	SL_NVME_SC_ABORTED_FAILED_FUSED = 0x09,
	SL_NVME_SC_ABORTED_MISSING_FUSED = 0x0a,
	SL_NVME_SC_INVALID_NAMESPACE_OR_FORMAT = 0x0b,
	SL_NVME_SC_COMMAND_SEQUENCE_ERROR = 0x0c,
	SL_NVME_SC_INVALID_SGL_SEG_DESCRIPTOR = 0x0d,
	SL_NVME_SC_INVALID_NUM_SGL_DESCIRPTORS = 0x0e,
	SL_NVME_SC_DATA_SGL_LENGTH_INVALID = 0x0f,
	SL_NVME_SC_METADATA_SGL_LENGTH_INVALID = 0x10,
	SL_NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID = 0x11,
	SL_NVME_SC_INVALID_CONTROLLER_MEM_BUF = 0x12,
	SL_NVME_SC_INVALID_PRP_OFFSET = 0x13,
	SL_NVME_SC_ATOMIC_WRITE_UNIT_EXCEEDED = 0x14,
	SL_NVME_SC_OPERATION_DENIED = 0x15,
	SL_NVME_SC_INVALID_SGL_OFFSET = 0x16,
	SL_NVME_SC_HOSTID_INCONSISTENT_FORMAT = 0x18,
	SL_NVME_SC_KEEP_ALIVE_EXPIRED = 0x19,
	SL_NVME_SC_KEEP_ALIVE_INVALID = 0x1a,
	SL_NVME_SC_ABORTED_PREEMPT = 0x1b,
	SL_NVME_SC_SANITIZE_FAILED = 0x1c,
	SL_NVME_SC_SANITIZE_IN_PROGRESS = 0x1d,
	SL_NVME_SC_SGL_DATA_BLOCK_GRANULARITY_INVALID = 0x1e,
	SL_NVME_SC_COMMAND_INVALID_IN_CMB = 0x1f,
	SL_NVME_SC_NAMESPACE_IS_WRITE_PROTECTED = 0x20,
	SL_NVME_SC_COMMAND_INTERRUPTED = 0x21,
	SL_NVME_SC_TRANSIENT_TRANSPORT_ERROR = 0x22,
	SL_NVME_SC_LBA_OUT_OF_RANGE = 0x80,
	SL_NVME_SC_CAPACITY_EXCEEDED = 0x81,
	SL_NVME_SC_NAMESPACE_NOT_READY = 0x82,
	SL_NVME_SC_RESERVATION_CONFLICT = 0x83,
	SL_NVME_SC_FORMAT_IN_PROGRESS = 0x84,
};

/** Command specific status (4.6.1.2.2, 5.x, 6.x). */
enum sl_nvme_command_specific_sc {
	SL_NVME_SC_COMPLETION_QUEUE_INVALID = 0x00,
	SL_NVME_SC_INVALID_QUEUE_IDENTIFIER = 0x01,
	SL_NVME_SC_INVALID_QUEUE_SIZE = 0x02,
	SL_NVME_SC_ABORT_COMMAND_LIMIT_EXCEEDED = 0x03,
	SL_NVME_SC_ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED = 0x05,
	SL_NVME_SC_INVALID_FIRMWARE_SLOT = 0x06,
	SL_NVME_SC_INVALID_FIRMWARE_IMAGE = 0x07,
	SL_NVME_SC_INVALID_INTERRUPT_VECTOR = 0x08,
	SL_NVME_SC_INVALID_LOG_PAGE = 0x09,
	SL_NVME_SC_INVALID_FORMAT = 0x0a,
	SL_NVME_SC_FIRMWARE_REQ_CONVENTIONAL_RESET = 0x0b,
	SL_NVME_SC_INVALID_QUEUE_DELETION = 0x0c,
	SL_NVME_SC_FEATURE_ID_NOT_SAVEABLE = 0x0d,
	SL_NVME_SC_FEATURE_NOT_CHANGEABLE = 0x0e,
	SL_NVME_SC_FEATURE_NOT_NAMESPACE_SPECIFIC = 0x0f,
	SL_NVME_SC_FIRMWARE_REQ_NVM_RESET = 0x10,
	SL_NVME_SC_FIRMWARE_REQ_RESET = 0x11,
	SL_NVME_SC_FIRMWARE_REQ_MAX_TIME_VIOLATION = 0x12,
	SL_NVME_SC_FIRMWARE_ACTIVATION_PROHIBITED = 0x13,
	SL_NVME_SC_OVERLAPPING_RANGE = 0x14,
	SL_NVME_SC_NAMESPACE_INSUFFICIENT_CAPACITY = 0x15,
	SL_NVME_SC_NAMESPACE_ID_UNAVAILABLE = 0x16,
	SL_NVME_SC_NAMESPACE_ALREADY_ATTACHED = 0x18,
	SL_NVME_SC_NAMESPACE_IS_PRIVATE = 0x19,
	SL_NVME_SC_NAMESPACE_NOT_ATTACHED = 0x1a,
	SL_NVME_SC_THINPROVISIONING_NOT_SUPPORTED = 0x1b,
	SL_NVME_SC_CONTROLLER_LIST_INVALID = 0x1c,
	SL_NVME_SC_CONFLICTING_ATTRIBUTES = 0x80,
	SL_NVME_SC_INVALID_PROTECTION_INFO = 0x81,
	SL_NVME_SC_ATTEMPTED_WRITE_TO_RO_RANGE = 0x82,
};

/** Media and data integrity errors (4.6.1.2.3). */
enum sl_nvme_media_error_sc {
	SL_NVME_SC_WRITE_FAULTS = 0x80,
	SL_NVME_SC_UNRECOVERED_READ_ERROR = 0x81,
	SL_NVME_SC_GUARD_CHECK_ERROR = 0x82,
	SL_NVME_SC_APPLICATION_TAG_CHECK_ERROR = 0x83,
	SL_NVME_SC_REFERENCE_TAG_CHECK_ERROR = 0x84,
	SL_NVME_SC_COMPARE_FAILURE = 0x85,
	SL_NVME_SC_ACCESS_DENIED = 0x86,
	SL_NVME_SC_DEALLOCATED_OR_UNWRITTEN_BLOCK = 0x87,
};

/** Path related status (4.6.1.2.4). */
enum sl_nvme_path_sc {
	SL_NVME_SC_INTERNAL_PATH_ERROR = 0x00,
	SL_NVME_SC_ASYMMETRIC_ACCESS_PERSISTENT_LOSS = 0x01,
	SL_NVME_SC_ASYMMETRIC_ACCESS_INACCESSIBLE = 0x02,
	SL_NVME_SC_ASYMMETRIC_ACCESS_TRANSITION = 0x03,
	SL_NVME_SC_CONTROLLER_PATH_ERROR = 0x60,
	SL_NVME_SC_HOST_PATH_ERROR = 0x70,
	SL_NVME_SC_ABORTED_BY_HOST = 0x71,
};

/** Admin command opcodes (5, figure 139). */
enum sl_nvme_admin_opcode {
	SL_NVME_OPC_DELETE_IO_SQ = 0x00,
	SL_NVME_OPC_CREATE_IO_SQ = 0x01,
	SL_NVME_OPC_GET_LOG_PAGE = 0x02,
	SL_NVME_OPC_DELETE_IO_CQ = 0x04,
	SL_NVME_OPC_CREATE_IO_CQ = 0x05,
	SL_NVME_OPC_IDENTIFY = 0x06,
	SL_NVME_OPC_ABORT = 0x08,
	SL_NVME_OPC_SET_FEATURES = 0x09,
	SL_NVME_OPC_GET_FEATURES = 0x0a,
	SL_NVME_OPC_ASYNC_EVENT_REQUEST = 0x0c,
	SL_NVME_OPC_NS_MANAGEMENT = 0x0d,
	SL_NVME_OPC_FIRMWARE_COMMIT = 0x10,
	SL_NVME_OPC_FIRMWARE_IMAGE_DOWNLOAD = 0x11,
	SL_NVME_OPC_DEVICE_SELF_TEST = 0x14,
	SL_NVME_OPC_NS_ATTACHMENT = 0x15,
	SL_NVME_OPC_KEEP_ALIVE = 0x18,
	SL_NVME_OPC_DIRECTIVE_SEND = 0x19,
	SL_NVME_OPC_DIRECTIVE_RECEIVE = 0x1a,
	SL_NVME_OPC_VIRTUALIZATION_MANAGEMENT = 0x1c,
	SL_NVME_OPC_NVME_MI_SEND = 0x1d,
	SL_NVME_OPC_NVME_MI_RECEIVE = 0x1e,
	SL_NVME_OPC_DOORBELL_BUFFER_CONFIG = 0x7c,
	SL_NVME_OPC_FORMAT_NVM = 0x80,
	SL_NVME_OPC_SECURITY_SEND = 0x81,
	SL_NVME_OPC_SECURITY_RECEIVE = 0x82,
	SL_NVME_OPC_SANITIZE = 0x84,
	SL_NVME_OPC_GET_LBA_STATUS = 0x86,
};

/** NVM command set opcodes (NVM command set 1.0, figure 18; base 1.4 section 6). */
enum sl_nvme_nvm_opcode {
	SL_NVME_OPC_FLUSH = 0x00,
	SL_NVME_OPC_WRITE = 0x01,
	SL_NVME_OPC_READ = 0x02,
	SL_NVME_OPC_WRITE_UNCORRECTABLE = 0x04,
	SL_NVME_OPC_COMPARE = 0x05,
	SL_NVME_OPC_WRITE_ZEROES = 0x08,
	SL_NVME_OPC_DATASET_MANAGEMENT = 0x09,
	SL_NVME_OPC_VERIFY = 0x0c,
	SL_NVME_OPC_RESERVATION_REGISTER = 0x0d,
	SL_NVME_OPC_RESERVATION_REPORT = 0x0e,
	SL_NVME_OPC_RESERVATION_ACQUIRE = 0x11,
	SL_NVME_OPC_RESERVATION_RELEASE = 0x15,
	SL_NVME_OPC_COPY = 0x19,
};

/** Read/write/compare/write-zeroes cdw12 flags (NVM 6.9, 6.15, 6.16). */
#define SL_NVME_RW_FUA  (1u << 30)
#define SL_NVME_RW_LR   (1u << 31)
#define SL_NVME_WZ_DEAC (1u << 25)

/** Identify CNS values (5.15.1, figure 244). */
enum sl_nvme_identify_cns {
	SL_NVME_CNS_NS = 0x00,
	SL_NVME_CNS_CTRLR = 0x01,
	SL_NVME_CNS_ACTIVE_NS_LIST = 0x02,
	SL_NVME_CNS_NS_ID_DESCRIPTOR_LIST = 0x03,
	SL_NVME_CNS_NVM_SET_LIST = 0x04,
	SL_NVME_CNS_ALLOCATED_NS_LIST = 0x10,
	SL_NVME_CNS_ALLOCATED_NS = 0x11,
	SL_NVME_CNS_ATTACHED_CTRLR_LIST = 0x12,
	SL_NVME_CNS_CTRLR_LIST = 0x13,
};

/** Feature identifiers (5.21.1, figure 271). */
enum sl_nvme_feat {
	SL_NVME_FEAT_ARBITRATION = 0x01,
	SL_NVME_FEAT_POWER_MANAGEMENT = 0x02,
	SL_NVME_FEAT_LBA_RANGE_TYPE = 0x03,
	SL_NVME_FEAT_TEMPERATURE_THRESHOLD = 0x04,
	SL_NVME_FEAT_ERROR_RECOVERY = 0x05,
	SL_NVME_FEAT_VOLATILE_WRITE_CACHE = 0x06,
	SL_NVME_FEAT_NUMBER_OF_QUEUES = 0x07,
	SL_NVME_FEAT_INTERRUPT_COALESCING = 0x08,
	SL_NVME_FEAT_INTERRUPT_VECTOR_CONFIGURATION = 0x09,
	SL_NVME_FEAT_WRITE_ATOMICITY = 0x0a,
	SL_NVME_FEAT_ASYNC_EVENT_CONFIGURATION = 0x0b,
	SL_NVME_FEAT_AUTONOMOUS_POWER_STATE_TRANSITION = 0x0c,
	SL_NVME_FEAT_HOST_MEM_BUFFER = 0x0d,
	SL_NVME_FEAT_TIMESTAMP = 0x0e,
	SL_NVME_FEAT_KEEP_ALIVE_TIMER = 0x0f,
	SL_NVME_FEAT_HOST_IDENTIFIER = 0x81,
};

/** Get Features select field (5.14, figure 238). */
enum sl_nvme_feat_sel {
	SL_NVME_FEAT_SEL_CURRENT = 0,
	SL_NVME_FEAT_SEL_DEFAULT = 1,
	SL_NVME_FEAT_SEL_SAVED = 2,
	SL_NVME_FEAT_SEL_SUPPORTED = 3,
};

/** Asynchronous Event Configuration bits (5.21.1.11, figure 294). */
#define SL_NVME_AER_CFG_SMART_MASK    0xffu
#define SL_NVME_AER_CFG_NS_ATTR       (1u << 8)
#define SL_NVME_AER_CFG_FW_ACTIVATION (1u << 9)
#define SL_NVME_AER_CFG_TELEMETRY     (1u << 10)
#define SL_NVME_AER_CFG_ANA_CHANGE    (1u << 11)

/** Log page identifiers (5.14.1, figure 191). */
enum sl_nvme_log_page {
	SL_NVME_LOG_ERROR = 0x01,
	SL_NVME_LOG_HEALTH_INFORMATION = 0x02,
	SL_NVME_LOG_FIRMWARE_SLOT = 0x03,
	SL_NVME_LOG_CHANGED_NS_LIST = 0x04,
	SL_NVME_LOG_COMMAND_EFFECTS = 0x05,
	SL_NVME_LOG_DEVICE_SELF_TEST = 0x06,
	SL_NVME_LOG_TELEMETRY_HOST = 0x07,
	SL_NVME_LOG_ANA = 0x0c,
};

/** Asynchronous event types, completion dword 0 bits 2:0 (5.2, figure 142). */
enum sl_nvme_async_event_type {
	SL_NVME_ASYNC_EVENT_TYPE_ERROR = 0x0,
	SL_NVME_ASYNC_EVENT_TYPE_SMART = 0x1,
	SL_NVME_ASYNC_EVENT_TYPE_NOTICE = 0x2,
	SL_NVME_ASYNC_EVENT_TYPE_IO = 0x6,
	SL_NVME_ASYNC_EVENT_TYPE_VENDOR = 0x7,
};

/** Notice event information (figure 145). */
enum sl_nvme_async_event_notice {
	SL_NVME_ASYNC_EVENT_NS_ATTR_CHANGED = 0x0,
	SL_NVME_ASYNC_EVENT_FW_ACTIVATION_START = 0x1,
	SL_NVME_ASYNC_EVENT_TELEMETRY_LOG_CHANGED = 0x2,
	SL_NVME_ASYNC_EVENT_ANA_CHANGE = 0x3,
};

/** Asynchronous event completion dword 0 (5.2.1, figure 141). */
union sl_nvme_async_event_completion {
	uint32_t raw;
	struct {
		uint32_t async_event_type : 3;
		uint32_t rsvd1 : 5;
		uint32_t async_event_info : 8;
		uint32_t log_page_identifier : 8;
		uint32_t rsvd2 : 8;
	} bits;
};
SL_STATIC_ASSERT(sizeof(union sl_nvme_async_event_completion) == 4, "AER cdw0 is 32 bits");

/* --- Identify data structures ------------------------------------------------------ */

/** Power state descriptor (5.15.2.2, figure 250). */
struct sl_nvme_power_state {
	uint16_t mp; /* maximum power, centiwatts (or 0.0001 W with mps) */
	uint8_t rsvd2;
	uint8_t mps : 1;
	uint8_t nops : 1;
	uint8_t rsvd3 : 6;
	uint32_t enlat; /* entry latency, us */
	uint32_t exlat; /* exit latency, us */
	uint8_t rrt : 5;
	uint8_t rsvd12 : 3;
	uint8_t rrl : 5;
	uint8_t rsvd13 : 3;
	uint8_t rwt : 5;
	uint8_t rsvd14 : 3;
	uint8_t rwl : 5;
	uint8_t rsvd15 : 3;
	uint16_t idlp;
	uint8_t rsvd18 : 6;
	uint8_t ips : 2;
	uint8_t rsvd19;
	uint16_t actp;
	uint8_t apw : 3;
	uint8_t rsvd22 : 3;
	uint8_t aps : 2;
	uint8_t rsvd23[9];
};
SL_STATIC_ASSERT(sizeof(struct sl_nvme_power_state) == 32, "power state is 32 bytes");

/** Identify Controller data structure (5.15.2.2, figure 249). */
struct sl_nvme_ctrlr_data {
	/* controller capabilities and features */
	uint16_t vid;
	uint16_t ssvid;
	char sn[20];
	char mn[40];
	char fr[8];
	uint8_t rab;
	uint8_t ieee[3];
	uint8_t cmic;
	uint8_t mdts; /* max data transfer, 2 ^ mdts * CAP.MPSMIN; 0 = no limit */
	uint16_t cntlid;
	uint32_t ver;
	uint32_t rtd3r;
	uint32_t rtd3e;
	uint32_t oaes;
	uint32_t ctratt;
	uint16_t rrls;
	uint8_t rsvd102[9];
	uint8_t cntrltype;
	uint8_t fguid[16];
	uint16_t crdt[3];
	uint8_t rsvd134[106];
	uint8_t nvmi[16]; /* NVMe-MI management endpoint area */

	/* admin command set attributes and optional controller capabilities */
	uint16_t oacs;
	uint8_t acl;  /* abort command limit, 0's based */
	uint8_t aerl; /* async event request limit, 0's based */
	uint8_t frmw;
	uint8_t lpa;
	uint8_t elpe; /* error log page entries, 0's based */
	uint8_t npss;
	uint8_t avscc;
	uint8_t apsta;
	uint16_t wctemp;
	uint16_t cctemp;
	uint16_t mtfa;
	uint32_t hmpre;
	uint32_t hmmin;
	uint8_t tnvmcap[16];
	uint8_t unvmcap[16];
	uint32_t rpmbs;
	uint16_t edstt;
	uint8_t dsto;
	uint8_t fwug;
	uint16_t kas;
	uint16_t hctma;
	uint16_t mntmt;
	uint16_t mxtmt;
	uint32_t sanicap;
	uint32_t hmminds;
	uint16_t hmmaxd;
	uint16_t nsetidmax;
	uint16_t endgidmax;
	uint8_t anatt;
	uint8_t anacap;
	uint32_t anagrpmax;
	uint32_t nanagrpid;
	uint32_t pels;
	uint8_t rsvd356[156];

	/* NVM command set attributes */
	uint8_t sqes;
	uint8_t cqes;
	uint16_t maxcmd;
	uint32_t nn;
	uint16_t oncs;
	uint16_t fuses;
	uint8_t fna;
	uint8_t vwc;
	uint16_t awun;
	uint16_t awupf;
	uint8_t icsvscc;
	uint8_t nwpc;
	uint16_t acwu;
	uint16_t rsvd534;
	uint32_t sgls;
	uint32_t mnan;
	uint8_t rsvd544[224];
	char subnqn[256];
	uint8_t rsvd1024[768];

	/* NVMe over Fabrics attributes */
	uint32_t ioccsz;
	uint32_t iorcsz;
	uint16_t icdoff;
	uint8_t fcatt;
	uint8_t msdbd;
	uint16_t ofcs;
	uint8_t rsvd1806[242];

	struct sl_nvme_power_state psd[32];
	uint8_t vs[1024];
};
SL_STATIC_ASSERT(sizeof(struct sl_nvme_ctrlr_data) == 4096, "identify controller is 4 KiB");
SL_STATIC_ASSERT(offsetof(struct sl_nvme_ctrlr_data, oacs) == 256, "oacs at 256");
SL_STATIC_ASSERT(offsetof(struct sl_nvme_ctrlr_data, sqes) == 512, "sqes at 512");
SL_STATIC_ASSERT(offsetof(struct sl_nvme_ctrlr_data, sgls) == 536, "sgls at 536");
SL_STATIC_ASSERT(offsetof(struct sl_nvme_ctrlr_data, subnqn) == 768, "subnqn at 768");
SL_STATIC_ASSERT(offsetof(struct sl_nvme_ctrlr_data, psd) == 2048, "psd at 2048");

/** OACS bits. */
#define SL_NVME_OACS_SECURITY      (1u << 0)
#define SL_NVME_OACS_FORMAT        (1u << 1)
#define SL_NVME_OACS_FIRMWARE      (1u << 2)
#define SL_NVME_OACS_NS_MANAGE     (1u << 3)
#define SL_NVME_OACS_SELF_TEST     (1u << 4)
#define SL_NVME_OACS_DIRECTIVES    (1u << 5)
#define SL_NVME_OACS_NVME_MI       (1u << 6)
#define SL_NVME_OACS_VIRT_MGMT     (1u << 7)
#define SL_NVME_OACS_DB_BUF_CONFIG (1u << 8)

/** ONCS bits. */
#define SL_NVME_ONCS_COMPARE      (1u << 0)
#define SL_NVME_ONCS_WRITE_UNC    (1u << 1)
#define SL_NVME_ONCS_DSM          (1u << 2)
#define SL_NVME_ONCS_WRITE_ZEROES (1u << 3)
#define SL_NVME_ONCS_SAVE_SELECT  (1u << 4)
#define SL_NVME_ONCS_RESERVATIONS (1u << 5)
#define SL_NVME_ONCS_TIMESTAMP    (1u << 6)
#define SL_NVME_ONCS_VERIFY       (1u << 7)

/** OAES bits. */
#define SL_NVME_OAES_NS_ATTR       (1u << 8)
#define SL_NVME_OAES_FW_ACTIVATION (1u << 9)

/** SGLS bits 1:0: SGL support (0 none, 1 any alignment, 2 dword-aligned). */
#define SL_NVME_SGLS_SUPPORTED_MASK 0x3u

/** LBA format (5.15.2.1, figure 247). */
struct sl_nvme_lbaf {
	uint32_t ms : 16;   /* metadata size */
	uint32_t lbads : 8; /* LBA data size, log2 */
	uint32_t rp : 2;    /* relative performance */
	uint32_t rsvd : 6;
};
SL_STATIC_ASSERT(sizeof(struct sl_nvme_lbaf) == 4, "LBA format is 4 bytes");

/** Identify Namespace data structure (5.15.2.1, figure 245). */
struct sl_nvme_ns_data {
	uint64_t nsze;
	uint64_t ncap;
	uint64_t nuse;
	uint8_t nsfeat;
	uint8_t nlbaf; /* number of LBA formats, 0's based */
	uint8_t flbas; /* bits 3:0 format index, bit 4 metadata at end of LBA */
	uint8_t mc;
	uint8_t dpc;
	uint8_t dps;
	uint8_t nmic;
	uint8_t rescap;
	uint8_t fpi;
	uint8_t dlfeat;
	uint16_t nawun;
	uint16_t nawupf;
	uint16_t nacwu;
	uint16_t nabsn;
	uint16_t nabo;
	uint16_t nabspf;
	uint16_t noiob;
	uint8_t nvmcap[16];
	uint16_t npwg;
	uint16_t npwa;
	uint16_t npdg;
	uint16_t npda;
	uint16_t nows;
	uint8_t rsvd74[18];
	uint32_t anagrpid;
	uint8_t rsvd96[3];
	uint8_t nsattr;
	uint16_t nvmsetid;
	uint16_t endgid;
	uint8_t nguid[16];
	uint8_t eui64[8];
	struct sl_nvme_lbaf lbaf[16];
	uint8_t rsvd192[192];
	uint8_t vs[3712];
};
SL_STATIC_ASSERT(sizeof(struct sl_nvme_ns_data) == 4096, "identify namespace is 4 KiB");
SL_STATIC_ASSERT(offsetof(struct sl_nvme_ns_data, nguid) == 104, "nguid at 104");
SL_STATIC_ASSERT(offsetof(struct sl_nvme_ns_data, lbaf) == 128, "lbaf at 128");

/** NSFEAT bits. */
#define SL_NVME_NSFEAT_THIN_PROV (1u << 0)
#define SL_NVME_NSFEAT_NSABP     (1u << 1)
#define SL_NVME_NSFEAT_DAE       (1u << 2)

/** Namespace identification descriptor header (5.15.2.3, figure 251). */
struct sl_nvme_ns_id_desc {
	uint8_t nidt;
	uint8_t nidl;
	uint16_t rsvd;
	uint8_t nid[];
};
SL_STATIC_ASSERT(sizeof(struct sl_nvme_ns_id_desc) == 4, "NS ID descriptor header is 4 bytes");

enum sl_nvme_nidt {
	SL_NVME_NIDT_EUI64 = 0x1,
	SL_NVME_NIDT_NGUID = 0x2,
	SL_NVME_NIDT_UUID = 0x3,
	SL_NVME_NIDT_CSI = 0x4, /* 2.0 */
};

/** Number of namespace IDs in an active namespace list page. */
#define SL_NVME_NS_LIST_ENTRIES 1024

/* --- Log pages ---------------------------------------------------------------------- */

/** Error information log entry (5.14.1.1, figure 194). */
struct sl_nvme_error_information_entry {
	uint64_t error_count;
	uint16_t sqid;
	uint16_t cid;
	struct sl_nvme_status status;
	uint16_t error_location;
	uint64_t lba;
	uint32_t nsid;
	uint8_t vendor_specific;
	uint8_t trtype;
	uint8_t rsvd30[2];
	uint64_t command_specific;
	uint16_t trtype_specific;
	uint8_t rsvd42[22];
};
SL_STATIC_ASSERT(sizeof(struct sl_nvme_error_information_entry) == 64, "error entry is 64 bytes");

/** SMART / health information log page (5.14.1.2, figure 196). */
struct __attribute__((packed)) sl_nvme_health_information_page {
	uint8_t critical_warning;
	uint16_t temperature; /* composite temperature, kelvin */
	uint8_t available_spare;
	uint8_t available_spare_threshold;
	uint8_t percentage_used;
	uint8_t endurance_group_critical_warning;
	uint8_t rsvd7[25];
	/* 128-bit counters, little-endian: [0] low, [1] high */
	uint64_t data_units_read[2];
	uint64_t data_units_written[2];
	uint64_t host_read_commands[2];
	uint64_t host_write_commands[2];
	uint64_t controller_busy_time[2];
	uint64_t power_cycles[2];
	uint64_t power_on_hours[2];
	uint64_t unsafe_shutdowns[2];
	uint64_t media_errors[2];
	uint64_t num_error_info_log_entries[2];
	uint32_t warning_temp_time;
	uint32_t critical_temp_time;
	uint16_t temp_sensor[8];
	uint32_t thermal_mgmt_temp1_transitions;
	uint32_t thermal_mgmt_temp2_transitions;
	uint32_t thermal_mgmt_temp1_time;
	uint32_t thermal_mgmt_temp2_time;
	uint8_t rsvd232[280];
};
SL_STATIC_ASSERT(sizeof(struct sl_nvme_health_information_page) == 512, "SMART page is 512 bytes");
SL_STATIC_ASSERT(offsetof(struct sl_nvme_health_information_page, data_units_read) == 32,
		 "data units read at 32");

/** Firmware slot information log page (5.14.1.3, figure 197). */
struct sl_nvme_firmware_page {
	uint8_t afi; /* bits 2:0 active slot, 6:4 next slot */
	uint8_t rsvd1[7];
	char revision[7][8];
	uint8_t rsvd64[448];
};
SL_STATIC_ASSERT(sizeof(struct sl_nvme_firmware_page) == 512, "firmware page is 512 bytes");

/** Dataset management range (NVM 1.0 3.2.3, figure 39). */
struct sl_nvme_dsm_range {
	uint32_t attributes;
	uint32_t length; /* in logical blocks, 1's based */
	uint64_t starting_lba;
};
SL_STATIC_ASSERT(sizeof(struct sl_nvme_dsm_range) == 16, "DSM range is 16 bytes");

/** Dataset management cdw11 attributes. */
#define SL_NVME_DSM_ATTR_INTEGRAL_READ  (1u << 0)
#define SL_NVME_DSM_ATTR_INTEGRAL_WRITE (1u << 1)
#define SL_NVME_DSM_ATTR_DEALLOCATE     (1u << 2)

/** PCI class code of an NVMe controller (mass storage, NVM, NVMe I/O). */
#define SL_NVME_PCI_CLASS 0x010802u

#endif /* SLUICE_NVME_SPEC_H */
