/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/** \file
 * NBD wire layouts and constants, from the NBD project's doc/proto.md ("The NBD
 * protocol"): the fixed newstyle handshake, option haggling, and the transmission
 * phase with simple and structured replies. Every field is big-endian on the wire;
 * the structs are packed so that they can be read and written in place.
 *
 * Names carry an SL_ prefix so that this header can sit beside <linux/nbd.h> (the
 * kernel export includes both), which defines some of the same names.
 */
#ifndef SLUICE_NBD_SPEC_H
#define SLUICE_NBD_SPEC_H

#include <stdint.h>

#include "sluice/util.h"

/* ---- Magic numbers ------------------------------------------------------------ */

#define SL_NBD_MAGIC                  0x4e42444d41474943ULL /* "NBDMAGIC" */
#define SL_NBD_OPTS_MAGIC             0x49484156454f5054ULL /* "IHAVEOPT" */
#define SL_NBD_REP_MAGIC              0x0003e889045565a9ULL /* option reply */
#define SL_NBD_REQUEST_MAGIC          0x25609513u
#define SL_NBD_SIMPLE_REPLY_MAGIC     0x67446698u
#define SL_NBD_STRUCTURED_REPLY_MAGIC 0x668e33efu

/** The default TCP port (IANA "nbd"). */
#define SL_NBD_DEFAULT_PORT 10809

/* ---- Handshake flags (server, 16 bits) and client flags (32 bits) -------------- */

#define SL_NBD_FLAG_FIXED_NEWSTYLE   (1u << 0)
#define SL_NBD_FLAG_NO_ZEROES        (1u << 1)
#define SL_NBD_FLAG_C_FIXED_NEWSTYLE (1u << 0)
#define SL_NBD_FLAG_C_NO_ZEROES      (1u << 1)

/* ---- Transmission flags (16 bits) ---------------------------------------------- */

#define SL_NBD_FLAG_HAS_FLAGS          (1u << 0)
#define SL_NBD_FLAG_READ_ONLY          (1u << 1)
#define SL_NBD_FLAG_SEND_FLUSH         (1u << 2)
#define SL_NBD_FLAG_SEND_FUA           (1u << 3)
#define SL_NBD_FLAG_ROTATIONAL         (1u << 4)
#define SL_NBD_FLAG_SEND_TRIM          (1u << 5)
#define SL_NBD_FLAG_SEND_WRITE_ZEROES  (1u << 6)
#define SL_NBD_FLAG_SEND_DF            (1u << 7)
#define SL_NBD_FLAG_CAN_MULTI_CONN     (1u << 8)
#define SL_NBD_FLAG_SEND_RESIZE        (1u << 9)
#define SL_NBD_FLAG_SEND_CACHE         (1u << 10)
#define SL_NBD_FLAG_SEND_FAST_ZERO     (1u << 11)
#define SL_NBD_FLAG_BLOCK_STAT_PAYLOAD (1u << 12)

/* ---- Options ------------------------------------------------------------------ */

enum sl_nbd_opt {
	SL_NBD_OPT_EXPORT_NAME = 1,
	SL_NBD_OPT_ABORT = 2,
	SL_NBD_OPT_LIST = 3,
	SL_NBD_OPT_PEEK_EXPORT = 4, /* withdrawn */
	SL_NBD_OPT_STARTTLS = 5,
	SL_NBD_OPT_INFO = 6,
	SL_NBD_OPT_GO = 7,
	SL_NBD_OPT_STRUCTURED_REPLY = 8,
	SL_NBD_OPT_LIST_META_CONTEXT = 9,
	SL_NBD_OPT_SET_META_CONTEXT = 10,
	SL_NBD_OPT_EXTENDED_HEADERS = 11,
};

/* Option reply types; errors have bit 31 set. */
#define SL_NBD_REP_ACK                 1u
#define SL_NBD_REP_SERVER              2u
#define SL_NBD_REP_INFO                3u
#define SL_NBD_REP_META_CONTEXT        4u
#define SL_NBD_REP_FLAG_ERROR          (1u << 31)
#define SL_NBD_REP_ERR_UNSUP           (SL_NBD_REP_FLAG_ERROR | 1u)
#define SL_NBD_REP_ERR_POLICY          (SL_NBD_REP_FLAG_ERROR | 2u)
#define SL_NBD_REP_ERR_INVALID         (SL_NBD_REP_FLAG_ERROR | 3u)
#define SL_NBD_REP_ERR_PLATFORM        (SL_NBD_REP_FLAG_ERROR | 4u)
#define SL_NBD_REP_ERR_TLS_REQD        (SL_NBD_REP_FLAG_ERROR | 5u)
#define SL_NBD_REP_ERR_UNKNOWN         (SL_NBD_REP_FLAG_ERROR | 6u)
#define SL_NBD_REP_ERR_SHUTDOWN        (SL_NBD_REP_FLAG_ERROR | 7u)
#define SL_NBD_REP_ERR_BLOCK_SIZE_REQD (SL_NBD_REP_FLAG_ERROR | 8u)
#define SL_NBD_REP_ERR_TOO_BIG         (SL_NBD_REP_FLAG_ERROR | 9u)

/* NBD_REP_INFO types (NBD_OPT_INFO and NBD_OPT_GO). */
enum sl_nbd_info {
	SL_NBD_INFO_EXPORT = 0,
	SL_NBD_INFO_NAME = 1,
	SL_NBD_INFO_DESCRIPTION = 2,
	SL_NBD_INFO_BLOCK_SIZE = 3,
};

/** Longest string the spec allows (export names, queries, messages). */
#define SL_NBD_MAX_STRING 4096

/** The one metadata context of the spec. */
#define SL_NBD_CONTEXT_BASE_ALLOCATION "base:allocation"
#define SL_NBD_STATE_HOLE              (1u << 0)
#define SL_NBD_STATE_ZERO              (1u << 1)

/* ---- Commands, command flags, reply types, errors ----------------------------- */

enum sl_nbd_cmd {
	SL_NBD_CMD_READ = 0,
	SL_NBD_CMD_WRITE = 1,
	SL_NBD_CMD_DISC = 2,
	SL_NBD_CMD_FLUSH = 3,
	SL_NBD_CMD_TRIM = 4,
	SL_NBD_CMD_CACHE = 5,
	SL_NBD_CMD_WRITE_ZEROES = 6,
	SL_NBD_CMD_BLOCK_STATUS = 7,
	SL_NBD_CMD_RESIZE = 8,
};

#define SL_NBD_CMD_FLAG_FUA         (1u << 0)
#define SL_NBD_CMD_FLAG_NO_HOLE     (1u << 1)
#define SL_NBD_CMD_FLAG_DF          (1u << 2)
#define SL_NBD_CMD_FLAG_REQ_ONE     (1u << 3)
#define SL_NBD_CMD_FLAG_FAST_ZERO   (1u << 4)
#define SL_NBD_CMD_FLAG_PAYLOAD_LEN (1u << 5)

#define SL_NBD_REPLY_FLAG_DONE (1u << 0)

enum sl_nbd_reply_type {
	SL_NBD_REPLY_TYPE_NONE = 0,
	SL_NBD_REPLY_TYPE_OFFSET_DATA = 1,
	SL_NBD_REPLY_TYPE_OFFSET_HOLE = 2,
	SL_NBD_REPLY_TYPE_BLOCK_STATUS = 5,
	SL_NBD_REPLY_TYPE_ERROR = (1 << 15) + 1,
	SL_NBD_REPLY_TYPE_ERROR_OFFSET = (1 << 15) + 2,
};

/* The error values of the spec (those of Linux errno, but a fixed set). */
enum sl_nbd_error {
	SL_NBD_OK = 0,
	SL_NBD_EPERM = 1,
	SL_NBD_EIO = 5,
	SL_NBD_ENOMEM = 12,
	SL_NBD_EINVAL = 22,
	SL_NBD_ENOSPC = 28,
	SL_NBD_EOVERFLOW = 75,
	SL_NBD_ENOTSUP = 95,
	SL_NBD_ESHUTDOWN = 108,
};

/* ---- Wire structs ------------------------------------------------------------- */

/** S: the first message of the fixed newstyle handshake. */
struct sl_nbd_hello {
	uint64_t magic;      /* SL_NBD_MAGIC */
	uint64_t opts_magic; /* SL_NBD_OPTS_MAGIC */
	uint16_t flags;      /* handshake flags */
} __attribute__((packed));
SL_STATIC_ASSERT(sizeof(struct sl_nbd_hello) == 18, "NBD hello is 18 bytes");

/** C: an option request header; length bytes of data follow. */
struct sl_nbd_option {
	uint64_t magic; /* SL_NBD_OPTS_MAGIC */
	uint32_t option;
	uint32_t length;
} __attribute__((packed));
SL_STATIC_ASSERT(sizeof(struct sl_nbd_option) == 16, "NBD option header is 16 bytes");

/** S: an option reply header; length bytes of data follow. */
struct sl_nbd_option_reply {
	uint64_t magic; /* SL_NBD_REP_MAGIC */
	uint32_t option;
	uint32_t type;
	uint32_t length;
} __attribute__((packed));
SL_STATIC_ASSERT(sizeof(struct sl_nbd_option_reply) == 20, "NBD option reply is 20 bytes");

/** S: the answer to NBD_OPT_EXPORT_NAME (124 zero bytes follow unless NO_ZEROES). */
struct sl_nbd_export_name_reply {
	uint64_t size;
	uint16_t flags; /* transmission flags */
} __attribute__((packed));
SL_STATIC_ASSERT(sizeof(struct sl_nbd_export_name_reply) == 10, "export name reply is 10 bytes");
#define SL_NBD_EXPORT_NAME_PAD 124

/** S: NBD_REP_INFO payload of type NBD_INFO_EXPORT. */
struct sl_nbd_info_export {
	uint16_t type; /* SL_NBD_INFO_EXPORT */
	uint64_t size;
	uint16_t flags;
} __attribute__((packed));
SL_STATIC_ASSERT(sizeof(struct sl_nbd_info_export) == 12, "NBD_INFO_EXPORT is 12 bytes");

/** S: NBD_REP_INFO payload of type NBD_INFO_BLOCK_SIZE. */
struct sl_nbd_info_block_size {
	uint16_t type; /* SL_NBD_INFO_BLOCK_SIZE */
	uint32_t minimum;
	uint32_t preferred;
	uint32_t maximum;
} __attribute__((packed));
SL_STATIC_ASSERT(sizeof(struct sl_nbd_info_block_size) == 14, "NBD_INFO_BLOCK_SIZE is 14 bytes");

/** C: a transmission request; a WRITE is followed by length bytes of data. */
struct sl_nbd_request {
	uint32_t magic;  /* SL_NBD_REQUEST_MAGIC */
	uint16_t flags;  /* command flags */
	uint16_t type;   /* enum sl_nbd_cmd */
	uint64_t cookie; /* "handle": opaque, echoed in the reply */
	uint64_t offset;
	uint32_t length;
} __attribute__((packed));
SL_STATIC_ASSERT(sizeof(struct sl_nbd_request) == 28, "NBD request is 28 bytes");

/** S: a simple reply; a successful READ is followed by its data. */
struct sl_nbd_simple_reply {
	uint32_t magic; /* SL_NBD_SIMPLE_REPLY_MAGIC */
	uint32_t error; /* enum sl_nbd_error */
	uint64_t cookie;
} __attribute__((packed));
SL_STATIC_ASSERT(sizeof(struct sl_nbd_simple_reply) == 16, "NBD simple reply is 16 bytes");

/** S: a structured reply chunk header; length bytes of payload follow. */
struct sl_nbd_structured_reply {
	uint32_t magic; /* SL_NBD_STRUCTURED_REPLY_MAGIC */
	uint16_t flags; /* SL_NBD_REPLY_FLAG_DONE */
	uint16_t type;  /* enum sl_nbd_reply_type */
	uint64_t cookie;
	uint32_t length;
} __attribute__((packed));
SL_STATIC_ASSERT(sizeof(struct sl_nbd_structured_reply) == 20, "NBD chunk header is 20 bytes");

/** S: payload of NBD_REPLY_TYPE_ERROR: a message of msg_length bytes follows. */
struct sl_nbd_reply_error {
	uint32_t error;
	uint16_t msg_length;
} __attribute__((packed));
SL_STATIC_ASSERT(sizeof(struct sl_nbd_reply_error) == 6, "NBD error chunk payload is 6 bytes");

/** S: one NBD_REPLY_TYPE_BLOCK_STATUS descriptor (after a 32-bit context id). */
struct sl_nbd_block_descriptor {
	uint32_t length;
	uint32_t status_flags;
} __attribute__((packed));
SL_STATIC_ASSERT(sizeof(struct sl_nbd_block_descriptor) == 8, "NBD block descriptor is 8 bytes");

#endif /* SLUICE_NBD_SPEC_H */
