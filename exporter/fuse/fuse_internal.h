/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * Private declarations of the FUSE export, shared by fuse_export.c (mounts, sessions,
 * life cycle), fuse_io.c (the request path on the reactors) and fuse_rpc.c.
 *
 * Objects:
 *   fuse_mnt   one FUSE mount (one libfuse session): a disk or a directory.
 *   fuse_exp   one exported bdev, a file of a mount (a disk has exactly one).
 *   fuse_chan  one clone of the mount's /dev/fuse fd, served by a thread on one
 *              reactor, with its pool of request contexts and buffers.
 *   fuse_io    one request in flight: a context and a buffer from its channel's pool.
 */
#ifndef SLUICE_FUSE_INTERNAL_H
#define SLUICE_FUSE_INTERNAL_H

#define FUSE_USE_VERSION 314

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/uio.h>

#include <fuse_lowlevel.h>

#include "sluice/bdev.h"
#include "sluice/fuse_export.h"
#include "sluice/thread.h"
#include "sluice/util.h"

/* Largest read/write the kernel sends (max_write, and max_pages for reads). */
#define FUSE_IO_MAX_XFER (1u << 20)
/* Largest bdev block size served: unaligned I/O needs two blocks of scratch. */
#define FUSE_IO_MAX_BLOCK (64u << 10)
/*
 * A request is read at FUSE_IO_HDR_ROOM - (in header + write_in), so that a WRITE's
 * payload lands page-aligned at FUSE_IO_HDR_ROOM; read replies are built there too.
 */
#define FUSE_IO_HDR_ROOM  4096u
#define FUSE_IO_WRITE_HDR (sizeof(struct fuse_in_header) + sizeof(struct fuse_write_in))
/* Payload, then the head/tail scratch blocks of read-modify-write. */
#define FUSE_IO_BUF_SIZE (FUSE_IO_HDR_ROOM + FUSE_IO_MAX_XFER + 2 * FUSE_IO_MAX_BLOCK)
/* Requests a channel holds at once; the kernel queues the rest. */
#define FUSE_CHAN_IO_COUNT 128u
/* Requests read per poller call before the reactor gets to run completions. */
#define FUSE_CHAN_READ_BATCH 16u
/* Kernel background requests (async direct I/O is background): QD well above 32. */
#define FUSE_MAX_BACKGROUND 512u

struct fuse_mnt;
struct fuse_exp;
struct fuse_chan;

/* What a request does once its range is held; drives fuse_io_advance(). */
enum fuse_io_type {
	FUSE_IO_READ = 0,
	FUSE_IO_WRITE,
	FUSE_IO_ZERO,  /* fallocate ZERO_RANGE */
	FUSE_IO_PUNCH, /* fallocate PUNCH_HOLE | KEEP_SIZE */
	FUSE_IO_FLUSH, /* fsync, fdatasync, flush (close) */
	FUSE_IO_ALLOC, /* fallocate mode 0: nothing to do on the bdev */
};

/* Steps of a request, done lowest bit first (fuse_io.c). */
enum fuse_io_step {
	FUSE_STEP_HEAD_READ = 1u << 0,  /* read the partial head block */
	FUSE_STEP_HEAD_ZERO = 1u << 1,  /* write it back with its part zeroed */
	FUSE_STEP_TAIL_READ = 1u << 2,  /* read the partial tail block */
	FUSE_STEP_TAIL_ZERO = 1u << 3,  /* write it back with its part zeroed */
	FUSE_STEP_MAIN = 1u << 4,       /* the read/writev/write-zeroes/unmap/flush */
	FUSE_STEP_ZERO_CHECK = 1u << 5, /* punch: write zeroes where unmap left data */
};

/* How a write-type request holds its block range (see the range lock in fuse_io.c). */
enum fuse_range_hold {
	FUSE_RANGE_NONE = 0,
	FUSE_RANGE_FAST,    /* counted in its channel's fast_writes, in no list */
	FUSE_RANGE_WAITING, /* in the export's list, behind an overlapping entry */
	FUSE_RANGE_HELD,    /* in the export's list, granted */
};

struct fuse_io {
	struct fuse_chan *chan;
	struct fuse_exp *exp;
	fuse_req_t req;
	uint8_t *buf; /* FUSE_IO_BUF_SIZE bytes of the channel's pool */
	enum fuse_io_type type;
	uint32_t steps; /* enum fuse_io_step bits still to do */
	uint32_t cur_step;
	int status;
	/* The user's byte range, and the block-aligned range around it [start, end). */
	uint64_t offset;
	uint64_t len;
	uint64_t start;
	uint64_t end;
	/* The part of [start, end) made of whole blocks the user covers: [mid_start, mid_end). */
	uint64_t mid_start;
	uint64_t mid_end;
	const uint8_t *data; /* write payload, inside buf */
	uint8_t *head;       /* scratch blocks, inside buf */
	uint8_t *tail;
	struct iovec iov[3];
	int iovcnt;
	enum fuse_range_hold hold;
	bool needs_drain; /* read-modify-write: fast writes in flight must finish first */
	bool claimed;     /* kept by a handler beyond fuse_session_process_buf() */
	struct sl_bdev_io_wait_entry wait;
	TAILQ_ENTRY(fuse_io) range_link;
	STAILQ_ENTRY(fuse_io) free_link;
};

/* One export's state on one channel; one cache line each (fast_writes is shared). */
struct fuse_exp_chan {
	struct fuse_exp *exp;
	struct fuse_chan *chan;
	struct sl_io_channel *ch;
	uint32_t inflight;       /* requests of this export on this channel */
	bool quiesce_pending;    /* removal waits for inflight to drain */
	atomic_uint fast_writes; /* read by other channels' read-modify-writes */
} __attribute__((aligned(SL_CACHE_LINE)));

struct fuse_exp {
	struct fuse_mnt *mnt;
	char *name; /* file name in a directory mount; NULL for a disk */
	char *bdev_name;
	bool read_only;
	uint64_t attr_ino; /* st_ino */
	struct sl_bdev_desc *desc;
	uint32_t block_size;
	uint64_t size;
	bool has_unmap;
	/* Set on the app thread when removal starts; requests then fail with ENODEV. */
	atomic_bool removing;
	uint32_t quiesced; /* channels done with removal (app thread) */
	sl_fuse_done_cb remove_cb;
	void *remove_cb_arg;
	/* Attributes a user may change (chmod/chown), under mnt->lock. */
	uint32_t mode;
	uint32_t uid;
	uint32_t gid;
	/* Range lock for write-type requests that cannot take the fast path. */
	pthread_mutex_t range_mutex;
	TAILQ_HEAD(, fuse_io) ranges;
	atomic_uint slow_count;
	struct fuse_exp_chan *chans; /* one per channel of the mount */
	TAILQ_ENTRY(fuse_exp) link;
};

enum fuse_mnt_state {
	FUSE_MNT_STARTING = 0,
	FUSE_MNT_RUNNING,
	FUSE_MNT_STOPPING,
};

struct fuse_chan {
	struct fuse_mnt *mnt;
	uint32_t index;
	int fd; /* clone of the session fd */
	struct sl_thread *thread;
	struct sl_poller *poller;
	bool paused;   /* out of request contexts: the poller waits for one */
	bool stopping; /* no more reads; finish once inflight is 0 */
	bool dead;     /* the connection is gone (ENODEV) */
	uint32_t inflight;
	uint8_t *bufs; /* FUSE_CHAN_IO_COUNT * FUSE_IO_BUF_SIZE, mmap'ed */
	struct fuse_io *ios;
	STAILQ_HEAD(, fuse_io) free_ios;
} __attribute__((aligned(SL_CACHE_LINE)));

struct fuse_mnt {
	char *path;
	bool is_dir;
	struct sl_fuse_opts opts;
	enum fuse_mnt_state state;
	bool created_file; /* the disk's file was created by us: remove it at stop */
	struct fuse_session *se;
	uint32_t num_chans;
	struct fuse_chan *chans;
	uint32_t chans_ready; /* start: channels polling; stop: channels finished */
	int start_rc;
	sl_fuse_done_cb start_cb;
	void *start_cb_arg;
	/* Stop requests waiting for the unmount (several callers may ask). */
	uint32_t stop_waiters;
	struct fuse_stop_waiter *waiters;
	uint32_t removals; /* export removals in progress; a stop waits for them */
	bool stop_deferred;
	uint64_t start_time;
	struct fuse_exp *disk; /* a disk's one export (the root inode) */
	/* Guards exports (lookup/readdir read it on reactors) and exp attributes. */
	pthread_mutex_t lock;
	TAILQ_HEAD(, fuse_exp) exports;
	TAILQ_HEAD(, fuse_exp) removed; /* kept until unmount: the kernel may name them */
	uint64_t next_attr_ino;
	TAILQ_ENTRY(fuse_mnt) link;
};

struct fuse_stop_waiter {
	sl_fuse_done_cb cb;
	void *cb_arg;
};

/* ---- fuse_export.c ---- */
/* The low-level operations table (metadata in fuse_export.c, I/O in fuse_io.c). */
extern const struct fuse_lowlevel_ops g_fuse_ops;
/* Start stopping a mount, from any thread (the connection died under a channel). */
void fuse_mnt_stop_async(struct fuse_mnt *mnt);
/* Called on the app thread when a channel finished its removal work for exp. */
void fuse_exp_chan_quiesced(struct fuse_exp *exp);
/* Canonical form of a mount path (malloc'ed), or NULL when its directory does not exist. */
char *fuse_path_canonical(const char *path);
/* Fill st for an export. */
void fuse_exp_fill_attr(struct fuse_exp *exp, struct stat *st);
/* Resolve a nodeid: the export, or NULL (a directory mount's root). */
struct fuse_exp *fuse_ino_to_exp(struct fuse_mnt *mnt, fuse_ino_t ino);

/* ---- fuse_io.c ---- */
/* The custom_io hooks: route replies to the clone fd the request came from. */
extern const struct fuse_custom_io g_fuse_custom_io;
/* Allocate and free a channel's pool; open its clone fd. */
int fuse_chan_init(struct fuse_chan *chan, struct fuse_mnt *mnt, uint32_t index, int session_fd);
void fuse_chan_fini(struct fuse_chan *chan);
/* On the channel's thread: start polling; stop (then calls fuse_chan_finished). */
int fuse_chan_start(struct fuse_chan *chan);
void fuse_chan_stop(struct fuse_chan *chan);
/* On the app thread, once a channel has put its bdev channels and left its thread. */
void fuse_chan_finished(struct fuse_chan *chan);
/* On a channel's thread: let go of exp once its requests there are done. */
void fuse_exp_chan_quiesce(struct fuse_exp *exp, struct fuse_chan *chan);
/* Mark the open reply being sent from this thread for FOPEN_PARALLEL_DIRECT_WRITES. */
void fuse_io_mark_open_reply(void);
/* Range lock of an export. */
void fuse_range_init(struct fuse_exp *exp);
void fuse_range_fini(struct fuse_exp *exp);

/* Handlers (low-level ops) of the I/O path. */
void fuse_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		  struct fuse_file_info *fi);
void fuse_op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv, off_t off,
		       struct fuse_file_info *fi);
void fuse_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fuse_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void fuse_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
		       struct fuse_file_info *fi);
void fuse_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		   struct fuse_file_info *fi);
/* Scratch buffer of the request being processed (readdir builds its reply there). */
uint8_t *fuse_io_scratch(size_t *len);

/* Pure helpers, exposed for the unit tests. */
/* Split [offset, offset+len) over blocks of bs: aligned range and whole-block middle. */
void fuse_io_set_range(struct fuse_io *io, uint64_t offset, uint64_t len, uint32_t bs);
/* SEEK_DATA/SEEK_HOLE over the allocation report: the offset, or -ENXIO / -errno. */
int64_t fuse_seek_extents(struct sl_bdev_desc *desc, uint64_t size, uint64_t off, int whence);

#endif /* SLUICE_FUSE_INTERNAL_H */
