/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * sluice-bdevperf: drive bdevs from a JSON config with a fixed queue depth and report
 * IOPS, bandwidth and latency. It takes SPDK bdevperf's flags for the same things
 * (-q -o -w -t -M -T -S -C -f -l -z, and the framework's -m -c/--json -s --no-huge),
 * and prints SPDK's results table (with p50/p99/p99.9 columns added), so scripts
 * written for one run the other.
 *
 * Jobs: as in SPDK, one job per bdev, the bdevs dealt round-robin to the reactors;
 * with -C one job per (bdev, reactor), each on its own slice of the bdev. Every job
 * runs on its own lightweight thread, keeps queue-depth tasks in flight, and submits a
 * new I/O from each completion callback.
 *
 * The I/O path allocates nothing and reads the tick counter once per reactor iteration
 * (perf_job_now): the completion time of one I/O is the submit time of the next one on
 * the same task.
 * Latencies go to a log-linear histogram (64 sub-buckets per power of two of ticks:
 * under 1.6% error) that costs an index computation and an increment.
 *
 * verify: each task writes a pattern (the block's LBA and a per-write tag stamped
 * through every block), reads it back into a second buffer and compares; offsets are
 * sequential and never shared by two tasks in flight (a bitmap), as in SPDK. A null
 * bdev keeps no data, so there verify checks that reads return zeroes.
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "sluice/app.h"
#include "sluice/bdev.h"
#include "sluice/cpuset.h"
#include "sluice/env.h"
#include "sluice/log.h"
#include "sluice/reactor.h"
#include "sluice/rpc.h"
#include "sluice/thread.h"
#include "sluice/util.h"

#define PERF_HIST_SUB_BITS 6
#define PERF_HIST_SUB      (1u << PERF_HIST_SUB_BITS)
#define PERF_HIST_BUCKETS  ((64 - PERF_HIST_SUB_BITS + 1) * PERF_HIST_SUB)
#define PERF_BUF_ALIGN     4096
#define PERF_US_PER_SEC    1000000ull

enum perf_workload {
	PERF_READ,
	PERF_WRITE,
	PERF_RANDREAD,
	PERF_RANDWRITE,
	PERF_RW,
	PERF_RANDRW,
	PERF_VERIFY,
	PERF_UNMAP,
	PERF_FLUSH,
	PERF_WRITE_ZEROES,
};

static const char *const g_workload_names[] = {
	[PERF_READ] = "read",
	[PERF_WRITE] = "write",
	[PERF_RANDREAD] = "randread",
	[PERF_RANDWRITE] = "randwrite",
	[PERF_RW] = "rw",
	[PERF_RANDRW] = "randrw",
	[PERF_VERIFY] = "verify",
	[PERF_UNMAP] = "unmap",
	[PERF_FLUSH] = "flush",
	[PERF_WRITE_ZEROES] = "write_zeroes",
};

struct perf_job;

struct perf_task {
	struct perf_job *job;
	void *buf;
	/* verify: the read-back buffer. */
	void *rbuf;
	uint64_t offset_blocks;
	uint64_t submit_tsc;
	uint64_t tag;
	enum sl_bdev_io_type type;
	/* verify: the write is done and the read-back is in flight. */
	bool reading;
	struct sl_bdev_io_wait_entry wait;
};

/* The histogram and the counters a job's thread writes; the app thread reads them. */
struct perf_stats {
	uint64_t io_completed;
	uint64_t io_failed;
	uint64_t lat_total;
	uint64_t lat_min;
	uint64_t lat_max;
	uint64_t hist[PERF_HIST_BUCKETS];
};

struct perf_job {
	char name[SL_BDEV_MAX_NAME_LEN];
	char bdev_name[SL_BDEV_MAX_NAME_LEN];
	uint32_t reactor;
	struct sl_thread *thread;
	struct sl_bdev *bdev;
	struct sl_bdev_desc *desc;
	struct sl_io_channel *ch;
	struct sl_poller *run_timer;
	/* Clears now once per reactor iteration. */
	struct sl_poller *tick_poller;
	/* Tick count of this iteration's completions (0: not read yet), see perf_job_now. */
	uint64_t now;

	uint64_t io_blocks;
	uint64_t ios_base;
	uint64_t size_in_ios;
	uint64_t offset_in_ios;
	/* Range in blocks given at creation (-C slices); 0 = the whole bdev. */
	uint64_t range_blocks;
	uint64_t rand_state;
	uint64_t *outstanding;
	uint32_t current_qd;
	/* I/O this job may still submit (--io-count; UINT64_MAX = bounded by -t only). */
	uint64_t io_left;
	/* randread, randwrite, randrw: random offsets. */
	bool random;
	/* The type of every I/O, unless rw_pct >= 0 (rw, randrw: read share in %). */
	enum sl_bdev_io_type io_type;
	int rw_pct;
	/* verify on a bdev that keeps no data (null): reads must return zeroes. */
	bool expect_zeroes;
	bool draining;
	/* perf_job_drain ran (it runs once). */
	bool drained;
	bool verify;
	int rc;

	uint64_t start_tsc;
	uint64_t end_tsc;
	struct perf_task *tasks;
	struct perf_stats stats;
	TAILQ_ENTRY(perf_job) link;
};

/* Command line. */
static int g_queue_depth;
static int g_io_size;
static const char *g_workload_str;
static enum perf_workload g_workload;
static int g_time_sec;
static int g_rw_pct = -1;
static const char *g_bdev_filter;
static uint64_t g_progress_us = PERF_US_PER_SEC;
static bool g_wait_for_tests;
static bool g_every_core;
static bool g_continue_on_failure;
static int g_latency_level;
static const char *g_json_out;
/* --io-count: stop each job after this many I/O (0 = run for -t seconds). */
static uint64_t g_io_count;

/* Run state (app thread). */
static TAILQ_HEAD(, perf_job) g_jobs = TAILQ_HEAD_INITIALIZER(g_jobs);
static uint32_t g_jobs_pending;
static int g_run_rc;
static struct sl_thread *g_app_thread;
static struct sl_poller *g_progress_poller;
static uint64_t g_start_tsc;
static uint64_t g_last_progress_tsc;
static uint64_t g_last_progress_ios;
static struct sl_jsonrpc_request *g_request;
/* The jobs started I/O (a failed set-up prints no table). */
static bool g_running;

static void perf_task_issue(void *arg);
static void perf_job_drain(struct perf_job *job);
static void perf_job_drain_msg(void *arg);

/* ---- Small helpers ------------------------------------------------------------------- */

static inline uint64_t
perf_rand(struct perf_job *job)
{
	/* xorshift64*: a multiply and three shifts, good enough to spread offsets. */
	uint64_t x = job->rand_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	job->rand_state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static inline uint32_t
perf_hist_index(uint64_t v)
{
	uint32_t shift;

	if (v < PERF_HIST_SUB) {
		return (uint32_t)v;
	}
	shift = (uint32_t)(63 - __builtin_clzll(v)) - PERF_HIST_SUB_BITS;
	return ((shift + 1) << PERF_HIST_SUB_BITS) + (uint32_t)((v >> shift) - PERF_HIST_SUB);
}

/* Highest value that falls in bucket idx. */
static uint64_t
perf_hist_bucket_high(uint32_t idx)
{
	uint32_t shift;

	if (idx < PERF_HIST_SUB) {
		return idx;
	}
	shift = (idx >> PERF_HIST_SUB_BITS) - 1;
	return ((((uint64_t)(idx & (PERF_HIST_SUB - 1)) + PERF_HIST_SUB) << shift) +
		((1ull << shift) - 1));
}

static inline void
perf_stats_add_latency(struct perf_stats *s, uint64_t ticks)
{
	s->hist[perf_hist_index(ticks)]++;
	s->lat_total += ticks;
	if (sl_unlikely(ticks < s->lat_min)) {
		s->lat_min = ticks;
	}
	if (sl_unlikely(ticks > s->lat_max)) {
		s->lat_max = ticks;
	}
}

/* Tick count under which a fraction q of the I/O completed. */
static uint64_t
perf_hist_percentile(const struct perf_stats *s, double q)
{
	uint64_t total = 0, seen = 0, want;
	uint32_t i;

	for (i = 0; i < PERF_HIST_BUCKETS; i++) {
		total += s->hist[i];
	}
	if (total == 0) {
		return 0;
	}
	want = (uint64_t)(q * (double)total + 0.5);
	want = SL_MAX(want, 1ull);
	for (i = 0; i < PERF_HIST_BUCKETS; i++) {
		seen += s->hist[i];
		if (seen >= want) {
			return SL_MIN(perf_hist_bucket_high(i), s->lat_max);
		}
	}
	return s->lat_max;
}

static double
perf_ticks_to_us(uint64_t ticks)
{
	return (double)ticks * 1e6 / (double)sl_get_ticks_hz();
}

static bool
perf_is_write_type(enum perf_workload w)
{
	return w != PERF_READ && w != PERF_RANDREAD && w != PERF_FLUSH;
}

static bool
perf_is_random(enum perf_workload w)
{
	return w == PERF_RANDREAD || w == PERF_RANDWRITE || w == PERF_RANDRW;
}

/* The type of the I/O of a workload (rw and randrw: see perf_next_type). */
static enum sl_bdev_io_type
perf_workload_type(enum perf_workload w)
{
	switch (w) {
	case PERF_READ:
	case PERF_RANDREAD:
		return SL_BDEV_IO_TYPE_READ;
	case PERF_UNMAP:
		return SL_BDEV_IO_TYPE_UNMAP;
	case PERF_FLUSH:
		return SL_BDEV_IO_TYPE_FLUSH;
	case PERF_WRITE_ZEROES:
		return SL_BDEV_IO_TYPE_WRITE_ZEROES;
	default:
		return SL_BDEV_IO_TYPE_WRITE;
	}
}

/* ---- Verify pattern ------------------------------------------------------------------ */

/* Stamp every 8-byte word of each block with a value derived from (LBA, tag, index). */
static void
perf_pattern_fill(uint64_t *words, uint64_t lba, uint64_t nblocks, uint32_t blocklen, uint64_t tag)
{
	uint64_t b, w, seed, per_block = blocklen / sizeof(uint64_t);

	for (b = 0; b < nblocks; b++, lba++) {
		seed = (lba * 0x9E3779B97F4A7C15ull) ^ tag;
		words[0] = lba;
		words[1] = tag;
		for (w = 2; w < per_block; w++) {
			words[w] = seed + w;
		}
		words += per_block;
	}
}

static bool
perf_verify_task(struct perf_task *task)
{
	struct perf_job *job = task->job;
	uint64_t len = job->io_blocks * sl_bdev_get_block_size(job->bdev);
	const uint64_t *want = task->buf, *got = task->rbuf;
	uint64_t i;

	if (sl_unlikely(job->expect_zeroes)) {
		/* All zero: the first byte is 0 and every byte equals the next. */
		if (((const uint8_t *)got)[0] == 0 &&
		    memcmp(task->rbuf, (const uint8_t *)task->rbuf + 1, len - 1) == 0) {
			return true;
		}
		want = NULL;
	} else if (sl_likely(memcmp(task->buf, task->rbuf, len) == 0)) {
		return true;
	}
	for (i = 0; i < len / sizeof(uint64_t) && (want ? want[i] : 0) == got[i]; i++) {
	}
	printf("Buffer mismatch! Target: %s Disk Offset: %" PRIu64 "\n", job->name,
	       task->offset_blocks);
	printf("   byte %" PRIu64 ": expected 0x%016" PRIx64 " got 0x%016" PRIx64 "\n",
	       i * sizeof(uint64_t), want ? want[i] : 0, got[i]);
	return false;
}

static inline void
perf_bit_set(uint64_t *map, uint64_t bit, bool on)
{
	if (on) {
		map[bit / 64] |= 1ull << (bit % 64);
	} else {
		map[bit / 64] &= ~(1ull << (bit % 64));
	}
}

static inline bool
perf_bit_get(const uint64_t *map, uint64_t bit)
{
	return (map[bit / 64] >> (bit % 64)) & 1;
}

/* ---- The I/O loop (job thread) ------------------------------------------------------- */

static void
perf_task_retire(struct perf_job *job)
{
	job->current_qd--;
	if (job->draining && job->current_qd == 0) {
		job->end_tsc = sl_get_ticks();
		sl_thread_send_msg(sl_get_thread(), perf_job_drain_msg, job);
	}
}

static void
perf_job_fail(struct perf_job *job, int rc)
{
	if (job->rc == 0) {
		job->rc = rc;
	}
	if (!g_continue_on_failure) {
		job->draining = true;
	}
}

static void perf_io_done(void *arg, int status);

/* Types other than read and write, one I/O each. */
static int
perf_task_issue_other(struct perf_task *task)
{
	struct perf_job *job = task->job;
	uint32_t blocklen;

	switch (task->type) {
	case SL_BDEV_IO_TYPE_UNMAP:
		return sl_bdev_unmap_blocks(job->desc, job->ch, task->offset_blocks, job->io_blocks,
					    perf_io_done, task);
	case SL_BDEV_IO_TYPE_WRITE_ZEROES:
		return sl_bdev_write_zeroes_blocks(job->desc, job->ch, task->offset_blocks,
						   job->io_blocks, perf_io_done, task);
	default:
		blocklen = sl_bdev_get_block_size(job->bdev);
		return sl_bdev_flush(job->desc, job->ch, task->offset_blocks * blocklen,
				     job->io_blocks * blocklen, perf_io_done, task);
	}
}

/* The submit failed: wait for a descriptor on -ENOMEM, else stop the job. */
static void
perf_task_issue_failed(struct perf_task *task, int rc)
{
	struct perf_job *job = task->job;

	if (rc == -ENOMEM) {
		task->wait.bdev = job->bdev;
		task->wait.cb_fn = perf_task_issue;
		task->wait.cb_arg = task;
		rc = sl_bdev_queue_io_wait(job->bdev, job->ch, &task->wait);
		if (rc == 0) {
			return;
		}
		/* The pool has room again: go round once more. */
		sl_thread_send_msg(sl_get_thread(), perf_task_issue, task);
		return;
	}
	printf("Failed to submit I/O on %s: %s\n", job->name, strerror(-rc));
	perf_job_fail(job, rc);
	job->draining = true;
	perf_task_retire(job);
}

/* Inlined into the completion callback, which is the loop of a run. */
static inline __attribute__((always_inline)) void
perf_task_issue_inline(struct perf_task *task)
{
	struct perf_job *job = task->job;
	int rc;

	if (task->type == SL_BDEV_IO_TYPE_READ) {
		rc = sl_bdev_read_blocks(job->desc, job->ch, task->reading ? task->rbuf : task->buf,
					 task->offset_blocks, job->io_blocks, perf_io_done, task);
	} else if (task->type == SL_BDEV_IO_TYPE_WRITE) {
		rc = sl_bdev_write_blocks(job->desc, job->ch, task->buf, task->offset_blocks,
					  job->io_blocks, perf_io_done, task);
	} else {
		rc = perf_task_issue_other(task);
	}
	if (sl_unlikely(rc != 0)) {
		perf_task_issue_failed(task, rc);
	}
}

static void
perf_task_issue(void *arg)
{
	perf_task_issue_inline(arg);
}

static uint64_t
perf_next_seq_offset(struct perf_job *job)
{
	uint64_t idx;

	do {
		idx = job->offset_in_ios++;
		if (job->offset_in_ios == job->size_in_ios) {
			job->offset_in_ios = 0;
		}
	} while (job->verify && perf_bit_get(job->outstanding, idx));
	if (job->verify) {
		perf_bit_set(job->outstanding, idx, true);
	}
	return idx;
}

static inline uint64_t
perf_next_offset(struct perf_job *job)
{
	if (sl_likely(job->random)) {
		/* Map a 64-bit random number onto [0, size) without a division. */
		return (uint64_t)(((unsigned __int128)perf_rand(job) * job->size_in_ios) >> 64);
	}
	return perf_next_seq_offset(job);
}

static inline enum sl_bdev_io_type
perf_next_type(struct perf_job *job)
{
	if (sl_likely(job->rw_pct < 0)) {
		return job->io_type;
	}
	/* rw, randrw: a read with probability rw_pct %, from the top 32 random bits. */
	return ((perf_rand(job) >> 32) * 100 >> 32) < (uint64_t)job->rw_pct ? SL_BDEV_IO_TYPE_READ
									    : SL_BDEV_IO_TYPE_WRITE;
}

static inline __attribute__((always_inline)) void
perf_submit(struct perf_job *job, struct perf_task *task, uint64_t now)
{
	task->offset_blocks = (perf_next_offset(job) + job->ios_base) * job->io_blocks;
	task->type = perf_next_type(job);
	task->submit_tsc = now;
	if (sl_unlikely(job->verify)) {
		task->reading = false;
		task->tag++;
		perf_pattern_fill(task->buf, task->offset_blocks, job->io_blocks,
				  sl_bdev_get_block_size(job->bdev), task->tag);
	}
	perf_task_issue_inline(task);
}

/* verify: the write landed, read it back (one I/O from the user's view). */
static void
perf_verify_read_back(struct perf_task *task)
{
	struct perf_job *job = task->job;

	task->reading = true;
	task->type = SL_BDEV_IO_TYPE_READ;
	if (job->expect_zeroes) {
		/* Poisoned, so a read that fills nothing cannot pass. */
		memset(task->rbuf, 0xff, job->io_blocks * sl_bdev_get_block_size(job->bdev));
	}
	perf_task_issue(task);
}

static void
perf_io_failed(struct perf_task *task, int status)
{
	struct perf_job *job = task->job;

	__atomic_store_n(&job->stats.io_failed, job->stats.io_failed + 1, __ATOMIC_RELAXED);
	if (!g_continue_on_failure) {
		printf("task offset: %" PRIu64 " on job bdev=%s fails: %s\n", task->offset_blocks,
		       job->name, strerror(-status));
	}
	perf_job_fail(job, status);
}

/* verify: check the data read back and free its range for the next write. */
static void
perf_verify_done(struct perf_task *task, int status)
{
	struct perf_job *job = task->job;

	if (status == 0 && !perf_verify_task(task)) {
		perf_job_fail(job, -EILSEQ);
	}
	perf_bit_set(job->outstanding, task->offset_blocks / job->io_blocks - job->ios_base, false);
}

/*
 * The tick count for the completions of this reactor iteration: read at the first one,
 * reused by the rest (the job's tick poller clears it every iteration). A tick read
 * costs 10-30 ns (rdtsc, more in some VMs): once per I/O it was a third of a null
 * bdev's cost per I/O. Latencies are then measured between the iterations an I/O was
 * submitted and completed in, which is what the histogram resolves anyway (a batch of
 * completions runs in a few microseconds).
 */
static inline uint64_t
perf_job_now(struct perf_job *job)
{
	if (sl_unlikely(job->now == 0)) {
		job->now = sl_get_ticks();
	}
	return job->now;
}

static int
perf_tick_poll(void *arg)
{
	struct perf_job *job = arg;

	job->now = 0;
	return SL_POLLER_IDLE;
}

/* The completion time of this I/O is the submit time of the next one on the task. */
static void
perf_io_done(void *arg, int status)
{
	struct perf_task *task = arg;
	struct perf_job *job = task->job;
	uint64_t now;

	if (sl_unlikely(job->verify) && status == 0 && !task->reading) {
		perf_verify_read_back(task);
		return;
	}
	now = perf_job_now(job);
	perf_stats_add_latency(&job->stats, now - task->submit_tsc);
	if (sl_unlikely(status != 0)) {
		perf_io_failed(task, status);
	} else {
		__atomic_store_n(&job->stats.io_completed, job->stats.io_completed + 1,
				 __ATOMIC_RELAXED);
	}
	if (sl_unlikely(job->verify)) {
		perf_verify_done(task, status);
	}
	if (sl_likely(!job->draining && job->io_left > 0)) {
		job->io_left--;
		perf_submit(job, task, now);
	} else {
		/* --io-count reached: the run ends when the last I/O is in. */
		job->draining = true;
		perf_task_retire(job);
	}
}

/* ---- Job life cycle ----------------------------------------------------------------- */

static void perf_job_done_msg(void *arg);

static int
perf_run_timer(void *arg)
{
	struct perf_job *job = arg;

	if (sl_get_ticks() - job->start_tsc < (uint64_t)g_time_sec * sl_get_ticks_hz()) {
		return SL_POLLER_IDLE;
	}
	sl_poller_unregister(&job->run_timer);
	job->draining = true;
	if (job->current_qd == 0) {
		job->end_tsc = sl_get_ticks();
		perf_job_drain(job);
	}
	return SL_POLLER_BUSY;
}

/* Runs once the job has no I/O left: release everything on the job thread. */
static void
perf_job_drain(struct perf_job *job)
{
	uint32_t i;

	if (job->drained) {
		return;
	}
	job->drained = true;
	sl_poller_unregister(&job->run_timer);
	sl_poller_unregister(&job->tick_poller);
	for (i = 0; job->tasks != NULL && i < (uint32_t)g_queue_depth; i++) {
		if (job->tasks[i].buf != NULL) {
			sl_dma_free(job->tasks[i].buf);
		}
		if (job->tasks[i].rbuf != NULL) {
			sl_dma_free(job->tasks[i].rbuf);
		}
	}
	free(job->tasks);
	job->tasks = NULL;
	free(job->outstanding);
	job->outstanding = NULL;
	if (job->ch != NULL) {
		sl_put_io_channel(job->ch);
		job->ch = NULL;
	}
	if (job->desc != NULL) {
		sl_bdev_close(job->desc);
		job->desc = NULL;
	}
	sl_thread_send_msg(g_app_thread, perf_job_done_msg, job);
	sl_thread_exit(sl_get_thread());
}

static void
perf_job_drain_msg(void *arg)
{
	perf_job_drain(arg);
}

static void
perf_thread_exit_msg(void *arg)
{
	(void)arg;
	sl_thread_exit(sl_get_thread());
}

static void
perf_job_start(void *arg)
{
	struct perf_job *job = arg;
	uint64_t now;
	int i;

	job->run_timer = sl_poller_register(perf_run_timer, job, 10000, "bdevperf_timer");
	now = sl_get_ticks();
	job->start_tsc = now;
	job->current_qd = (uint32_t)g_queue_depth;
	job->io_left = g_io_count != 0 ? g_io_count : UINT64_MAX;
	for (i = 0; i < g_queue_depth && !job->draining && job->io_left > 0; i++) {
		job->io_left--;
		perf_submit(job, &job->tasks[i], now);
	}
	/* Tasks never started are retired at once. */
	for (; i < g_queue_depth; i++) {
		perf_task_retire(job);
	}
}

static void
perf_bdev_event(enum sl_bdev_event_type type, struct sl_bdev *bdev, void *ctx)
{
	struct perf_job *job = ctx;

	if (type == SL_BDEV_EVENT_REMOVE && !job->draining) {
		printf("Job %s: bdev removed, stopping\n", job->name);
		job->draining = true;
		if (job->current_qd == 0 && job->tasks != NULL) {
			job->end_tsc = sl_get_ticks();
			perf_job_drain(job);
		}
	}
}

static int
perf_job_alloc_tasks(struct perf_job *job)
{
	uint64_t len = (uint64_t)g_io_size;
	int i;

	job->tasks = calloc((size_t)g_queue_depth, sizeof(*job->tasks));
	if (job->tasks == NULL) {
		return -ENOMEM;
	}
	for (i = 0; i < g_queue_depth; i++) {
		struct perf_task *t = &job->tasks[i];

		t->job = job;
		t->tag = (uint64_t)i << 40;
		t->buf = sl_dma_zmalloc(len, PERF_BUF_ALIGN, NULL);
		if (t->buf == NULL) {
			return -ENOMEM;
		}
		if (job->verify && (t->rbuf = sl_dma_zmalloc(len, PERF_BUF_ALIGN, NULL)) == NULL) {
			return -ENOMEM;
		}
	}
	if (job->verify) {
		job->outstanding = calloc((job->size_in_ios + 63) / 64, sizeof(uint64_t));
		if (job->outstanding == NULL) {
			return -ENOMEM;
		}
	}
	return 0;
}

static int
perf_job_setup(struct perf_job *job)
{
	uint32_t blocklen;
	uint64_t blocks;
	int rc;

	rc = sl_bdev_open(job->bdev_name, perf_is_write_type(g_workload), perf_bdev_event, job,
			  &job->desc);
	if (rc != 0) {
		fprintf(stderr, "Could not open bdev %s: %s\n", job->bdev_name, strerror(-rc));
		return rc;
	}
	job->bdev = sl_bdev_desc_get_bdev(job->desc);
	blocklen = sl_bdev_get_block_size(job->bdev);
	if (job->verify && strcmp(sl_bdev_get_module_name(job->bdev), "null") == 0) {
		struct sl_bdev_extent ext;

		/* Created with zero_reads false, it does not even return zeroes. */
		if (sl_bdev_get_allocation(job->desc, 0, blocklen, &ext, 1) == 1 &&
		    (ext.flags & SL_BDEV_EXTENT_ZERO) == 0) {
			fprintf(stderr,
				"verify on %s: a null bdev with zero_reads false returns neither "
				"data nor zeroes, there is nothing to check\n",
				job->name);
			return -EINVAL;
		}
		printf("%s keeps no data: verify checks that reads return zeroes\n", job->name);
		job->expect_zeroes = true;
	}
	if ((uint32_t)g_io_size % blocklen != 0) {
		fprintf(stderr,
			"I/O size %d is not a multiple of the block size %" PRIu32 " of %s\n",
			g_io_size, blocklen, job->bdev_name);
		return -EINVAL;
	}
	job->io_blocks = (uint64_t)g_io_size / blocklen;
	blocks = job->range_blocks ? job->range_blocks : sl_bdev_get_num_blocks(job->bdev);
	job->size_in_ios = blocks / job->io_blocks;
	job->ios_base /= job->io_blocks;
	if (job->size_in_ios == 0) {
		fprintf(stderr, "%s is smaller than one I/O of %d bytes\n", job->name, g_io_size);
		return -EINVAL;
	}
	if (job->verify && job->size_in_ios < (uint64_t)g_queue_depth) {
		fprintf(stderr, "verify on %s needs at least %d I/O of room (has %" PRIu64 ")\n",
			job->name, g_queue_depth, job->size_in_ios);
		return -EINVAL;
	}
	job->ch = sl_bdev_get_io_channel(job->desc);
	if (job->ch == NULL) {
		fprintf(stderr, "Could not get an I/O channel to %s\n", job->bdev_name);
		return -ENOMEM;
	}
	job->tick_poller = sl_poller_register(perf_tick_poll, job, 0, "bdevperf_tick");
	if (job->tick_poller == NULL) {
		return -ENOMEM;
	}
	return perf_job_alloc_tasks(job);
}

static void perf_job_ready_msg(void *arg);

static void
perf_job_init(void *arg)
{
	struct perf_job *job = arg;

	job->rc = perf_job_setup(job);
	sl_thread_send_msg(g_app_thread, perf_job_ready_msg, job);
}

/* ---- Results (app thread) ----------------------------------------------------------- */

struct perf_result {
	double runtime_s;
	double iops;
	double mibps;
	double fail_s;
	double avg_us;
	double min_us;
	double max_us;
	double p50_us;
	double p99_us;
	double p999_us;
};

static void
perf_result_of(const struct perf_stats *s, uint64_t ticks, struct perf_result *r)
{
	uint64_t ios = s->io_completed + s->io_failed;

	memset(r, 0, sizeof(*r));
	r->runtime_s = (double)ticks / (double)sl_get_ticks_hz();
	if (r->runtime_s > 0) {
		r->iops = (double)s->io_completed / r->runtime_s;
		r->mibps = r->iops * g_io_size / (1024.0 * 1024.0);
		r->fail_s = (double)s->io_failed / r->runtime_s;
	}
	if (ios > 0) {
		r->avg_us = perf_ticks_to_us(s->lat_total) / (double)ios;
		r->min_us = perf_ticks_to_us(s->lat_min);
		r->max_us = perf_ticks_to_us(s->lat_max);
		r->p50_us = perf_ticks_to_us(perf_hist_percentile(s, 0.50));
		r->p99_us = perf_ticks_to_us(perf_hist_percentile(s, 0.99));
		r->p999_us = perf_ticks_to_us(perf_hist_percentile(s, 0.999));
	}
}

static void
perf_stats_merge(struct perf_stats *dst, const struct perf_stats *src)
{
	uint32_t i;

	dst->io_completed += src->io_completed;
	dst->io_failed += src->io_failed;
	dst->lat_total += src->lat_total;
	dst->lat_min = SL_MIN(dst->lat_min, src->lat_min);
	dst->lat_max = SL_MAX(dst->lat_max, src->lat_max);
	for (i = 0; i < PERF_HIST_BUCKETS; i++) {
		dst->hist[i] += src->hist[i];
	}
}

static void
perf_print_row(const char *name, const struct perf_result *r, bool total)
{
	char runtime[16] = "";

	if (!total) {
		snprintf(runtime, sizeof(runtime), "%10.2f", r->runtime_s);
	}
	printf("%s %-*s: %10s %10.2f %10.2f %10.2f %8.2f %10.2f %10.2f %10.2f %10.2f %10.2f "
	       "%10.2f\n",
	       total ? "" : "\t", total ? 28 : 20, name, runtime, r->iops, r->mibps, r->fail_s, 0.0,
	       r->avg_us, r->min_us, r->max_us, r->p50_us, r->p99_us, r->p999_us);
}

static const char *
perf_job_mask(const struct perf_job *job, char *buf, size_t len)
{
	snprintf(buf, len, "0x%llx", 1ull << (sl_reactor_core(job->reactor) % 64));
	return buf;
}

static void
perf_print_latency_summary(void)
{
	static const double cutoffs[] = {0.01, 0.10, 0.25, 0.50,  0.75,  0.90,
					 0.95, 0.98, 0.99, 0.995, 0.999, 0.9999};
	struct perf_job *job;
	char mask[32];
	size_t i;

	printf("\n Latency summary\n");
	TAILQ_FOREACH (job, &g_jobs, link) {
		printf(" =============================================\n");
		printf(" Job: %s (Core Mask %s)\n", job->name,
		       perf_job_mask(job, mask, sizeof(mask)));
		for (i = 0; i < SL_COUNTOF(cutoffs); i++) {
			printf("%9.5f%% : %9.3fus\n", cutoffs[i] * 100,
			       perf_ticks_to_us(perf_hist_percentile(&job->stats, cutoffs[i])));
		}
		printf("\n");
	}
}

static json_t *
perf_result_json(const char *name, const char *mask, const struct perf_result *r,
		 const struct perf_job *job)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:f, s:f, s:f, s:I, s:I, s:f, s:f, s:f, "
			 "s:f, s:f, s:f}",
			 "job", name, "core_mask", mask, "workload", g_workload_names[g_workload],
			 "status", job != NULL && job->rc != 0 ? "failed" : "finished",
			 "queue_depth", g_queue_depth, "io_size", g_io_size, "runtime",
			 r->runtime_s, "iops", r->iops, "mibps", r->mibps, "io_failed",
			 (json_int_t)(job != NULL ? job->stats.io_failed : 0), "io_timeout",
			 (json_int_t)0, "avg_latency_us", r->avg_us, "min_latency_us", r->min_us,
			 "max_latency_us", r->max_us, "p50_latency_us", r->p50_us, "p99_latency_us",
			 r->p99_us, "p999_latency_us", r->p999_us);
}

static void
perf_write_json(json_t *root)
{
	FILE *out;

	if (g_json_out == NULL || root == NULL) {
		return;
	}
	out = strcmp(g_json_out, "-") == 0 ? stdout : fopen(g_json_out, "w");
	if (out == NULL) {
		fprintf(stderr, "cannot write %s: %s\n", g_json_out, strerror(errno));
		return;
	}
	json_dumpf(root, out, JSON_INDENT(2));
	fputc('\n', out);
	if (out != stdout) {
		fclose(out);
	}
}

static void
perf_print_results(void)
{
	struct perf_stats *total;
	struct perf_result r;
	struct perf_job *job;
	uint64_t max_ticks = 0;
	json_t *root, *results;
	char mask[32];

	total = calloc(1, sizeof(*total));
	if (total == NULL) {
		return;
	}
	total->lat_min = UINT64_MAX;
	root = json_object();
	results = json_array();
	printf("\n%*s\n", 140, "Latency(us)");
	printf(" %-28s: %10s %10s %10s %10s %8s %10s %10s %10s %10s %10s %10s\n",
	       "Device Information", "runtime(s)", "IOPS", "MiB/s", "Fail/s", "TO/s", "Average",
	       "min", "max", "p50", "p99", "p99.9");
	TAILQ_FOREACH (job, &g_jobs, link) {
		perf_job_mask(job, mask, sizeof(mask));
		perf_result_of(&job->stats, job->end_tsc - job->start_tsc, &r);
		printf(" Job: %s (Core Mask %s)\n", job->name, mask);
		if (job->rc != 0) {
			printf(" Job: %s ended in about %.2f seconds with error\n", job->name,
			       r.runtime_s);
		}
		perf_print_row(job->name, &r, false);
		json_array_append_new(results, perf_result_json(job->name, mask, &r, job));
		perf_stats_merge(total, &job->stats);
		max_ticks = SL_MAX(max_ticks, job->end_tsc - job->start_tsc);
	}
	/* Total IOPS is the sum of the jobs' rates, as in SPDK. */
	memset(&r, 0, sizeof(r));
	TAILQ_FOREACH (job, &g_jobs, link) {
		struct perf_result jr;

		perf_result_of(&job->stats, job->end_tsc - job->start_tsc, &jr);
		r.iops += jr.iops;
		r.mibps += jr.mibps;
		r.fail_s += jr.fail_s;
	}
	{
		struct perf_result lat;

		perf_result_of(total, max_ticks, &lat);
		r.avg_us = lat.avg_us;
		r.min_us = lat.min_us;
		r.max_us = lat.max_us;
		r.p50_us = lat.p50_us;
		r.p99_us = lat.p99_us;
		r.p999_us = lat.p999_us;
		r.runtime_s = lat.runtime_s;
	}
	printf(" =================================================================================="
	       "=="
	       "=============================================================\n");
	perf_print_row("Total", &r, true);
	fflush(stdout);
	if (g_latency_level > 0 && total->io_completed > 0) {
		perf_print_latency_summary();
	}
	if (root != NULL && results != NULL) {
		json_object_set_new(root, "results", results);
		json_object_set_new(root, "core_count", json_integer(sl_reactor_count()));
		json_object_set_new(root, "total", perf_result_json("Total", "", &r, NULL));
		perf_write_json(root);
	}
	json_decref(root);
	free(total);
}

/* ---- Orchestration (app thread) ------------------------------------------------------ */

static int
perf_progress(void *arg)
{
	uint64_t now = sl_get_ticks(), ios = 0, dt;
	struct perf_job *job;
	double iops;

	TAILQ_FOREACH (job, &g_jobs, link) {
		ios += __atomic_load_n(&job->stats.io_completed, __ATOMIC_RELAXED);
	}
	dt = now - g_last_progress_tsc;
	if (dt == 0) {
		return SL_POLLER_IDLE;
	}
	iops = (double)(ios - g_last_progress_ios) * (double)sl_get_ticks_hz() / (double)dt;
	printf("[%8.2f s] %12.2f IOPS %10.2f MiB/s\n",
	       (double)(now - g_start_tsc) / (double)sl_get_ticks_hz(), iops,
	       iops * g_io_size / (1024.0 * 1024.0));
	fflush(stdout);
	g_last_progress_tsc = now;
	g_last_progress_ios = ios;
	return SL_POLLER_BUSY;
}

static void
perf_free_jobs(void)
{
	struct perf_job *job;

	while ((job = TAILQ_FIRST(&g_jobs)) != NULL) {
		TAILQ_REMOVE(&g_jobs, job, link);
		free(job);
	}
}

static void
perf_finish(void)
{
	int rc = g_run_rc;

	sl_poller_unregister(&g_progress_poller);
	if (g_running) {
		perf_print_results();
	}
	g_running = false;
	perf_free_jobs();
	if (g_request != NULL) {
		if (rc == 0) {
			sl_jsonrpc_send_result(g_request, json_integer(0));
		} else {
			sl_jsonrpc_send_error(g_request, SL_JSONRPC_ERROR_INTERNAL_ERROR,
					      "bdevperf failed with error %s", strerror(-rc));
		}
		g_request = NULL;
		g_run_rc = 0;
		if (rc == 0) {
			return;
		}
	}
	sl_app_stop(rc);
}

static void
perf_job_done_msg(void *arg)
{
	struct perf_job *job = arg;

	if (job->rc != 0 && g_run_rc == 0) {
		g_run_rc = job->rc;
	}
	if (--g_jobs_pending == 0) {
		perf_finish();
	}
}

static void
perf_all_ready(void)
{
	struct perf_job *job;
	bool failed = false;

	TAILQ_FOREACH (job, &g_jobs, link) {
		failed |= job->rc != 0;
	}
	g_jobs_pending = 0;
	TAILQ_FOREACH (job, &g_jobs, link) {
		g_jobs_pending++;
		if (failed) {
			/* Tear every job down without running any. */
			job->draining = true;
			sl_thread_send_msg(job->thread, perf_job_drain_msg, job);
		}
	}
	if (failed) {
		g_run_rc = -EINVAL;
		TAILQ_FOREACH (job, &g_jobs, link) {
			if (job->rc != 0) {
				g_run_rc = job->rc;
			}
		}
		return;
	}
	g_running = true;
	printf("Running I/O for %d seconds...\n", g_time_sec);
	fflush(stdout);
	g_start_tsc = g_last_progress_tsc = sl_get_ticks();
	g_last_progress_ios = 0;
	if (g_progress_us > 0) {
		g_progress_poller =
			sl_poller_register(perf_progress, NULL, g_progress_us, "bdevperf_progress");
	}
	TAILQ_FOREACH (job, &g_jobs, link) {
		sl_thread_send_msg(job->thread, perf_job_start, job);
	}
}

static void
perf_job_ready_msg(void *arg)
{
	(void)arg;
	if (--g_jobs_pending == 0) {
		perf_all_ready();
	}
}

static int
perf_add_job(const char *bdev_name, uint32_t reactor, uint64_t base, uint64_t range)
{
	struct perf_job *job;

	job = calloc(1, sizeof(*job));
	if (job == NULL) {
		return -ENOMEM;
	}
	snprintf(job->bdev_name, sizeof(job->bdev_name), "%s", bdev_name);
	snprintf(job->name, sizeof(job->name), "%s", bdev_name);
	job->reactor = reactor;
	job->ios_base = base;
	job->range_blocks = range;
	job->verify = g_workload == PERF_VERIFY;
	job->random = perf_is_random(g_workload);
	job->io_type = perf_workload_type(g_workload);
	job->rw_pct = g_workload == PERF_RW || g_workload == PERF_RANDRW ? g_rw_pct : -1;
	job->stats.lat_min = UINT64_MAX;
	job->rand_state = 0x9E3779B97F4A7C15ull ^ ((uint64_t)getpid() << 16) ^
			  ((uint64_t)reactor << 48) ^ (uint64_t)(uintptr_t)job;
	TAILQ_INSERT_TAIL(&g_jobs, job, link);
	return 0;
}

static int
perf_add_bdev_jobs(struct sl_bdev *bdev, uint32_t *next_reactor)
{
	uint32_t n = sl_reactor_count(), i;
	uint64_t blocks = sl_bdev_get_num_blocks(bdev), per = blocks / n;
	int rc = 0;

	if (!g_every_core) {
		rc = perf_add_job(sl_bdev_get_name(bdev), *next_reactor, 0, 0);
		*next_reactor = (*next_reactor + 1) % n;
		return rc;
	}
	/* -C: every reactor on its own slice of the bdev (base in blocks, fixed up later). */
	for (i = 0; i < n && rc == 0; i++) {
		rc = perf_add_job(sl_bdev_get_name(bdev), i, per * i, per);
	}
	return rc;
}

static int
perf_build_jobs(void)
{
	struct sl_bdev *bdev;
	uint32_t next = 0;
	int rc = 0;

	if (g_bdev_filter != NULL) {
		bdev = sl_bdev_get_by_name(g_bdev_filter);
		if (bdev == NULL) {
			fprintf(stderr, "Unable to find bdev '%s'\n", g_bdev_filter);
			return -ENODEV;
		}
		return perf_add_bdev_jobs(bdev, &next);
	}
	for (bdev = sl_bdev_first(); bdev != NULL && rc == 0; bdev = sl_bdev_next(bdev)) {
		/* Claimed bdevs are the base of another (SPDK runs on leaves only). */
		if (sl_bdev_get_claim_owner(bdev) == NULL) {
			rc = perf_add_bdev_jobs(bdev, &next);
		}
	}
	if (rc == 0 && TAILQ_EMPTY(&g_jobs)) {
		fprintf(stderr, "No bdevs to run on: give a config with -c/--json\n");
		rc = -ENODEV;
	}
	return rc;
}

static void
perf_start_tests(void)
{
	struct perf_job *job;
	char name[SL_BDEV_MAX_NAME_LEN + 32];
	int rc;

	g_run_rc = 0;
	rc = perf_build_jobs();
	if (rc == 0) {
		g_jobs_pending = 0;
		TAILQ_FOREACH (job, &g_jobs, link) {
			snprintf(name, sizeof(name), "bdevperf_%s_%u", job->name, job->reactor);
			job->thread = sl_reactor_thread_create(job->reactor, name);
			if (job->thread == NULL) {
				rc = -ENOMEM;
				break;
			}
			g_jobs_pending++;
		}
	}
	if (rc != 0) {
		/* Threads already made have nothing to do but exit; nothing has started. */
		TAILQ_FOREACH (job, &g_jobs, link) {
			if (job->thread != NULL) {
				sl_thread_send_msg(job->thread, perf_thread_exit_msg, NULL);
			}
		}
		g_jobs_pending = 0;
		g_run_rc = rc;
		perf_finish();
		return;
	}
	TAILQ_FOREACH (job, &g_jobs, link) {
		sl_thread_send_msg(job->thread, perf_job_init, job);
	}
}

static void
perf_app_start(void *ctx)
{
	g_app_thread = sl_get_thread();
	if (!g_wait_for_tests) {
		perf_start_tests();
	}
}

static void
rpc_perform_tests(struct sl_jsonrpc_request *req, const json_t *params)
{
	if (params != NULL && json_object_size(params) > 0) {
		sl_jsonrpc_send_error(req, SL_JSONRPC_ERROR_INVALID_PARAMS,
				      "perform_tests method requires no parameters");
		return;
	}
	if (g_request != NULL || !TAILQ_EMPTY(&g_jobs)) {
		sl_jsonrpc_send_errno(req, -EINPROGRESS, "perform_tests");
		return;
	}
	g_request = req;
	perf_start_tests();
}
SL_RPC_REGISTER("perform_tests", rpc_perform_tests, SL_RPC_RUNTIME)

/* ---- Command line -------------------------------------------------------------------- */

enum {
	PERF_OPT_JSON_OUTPUT = 0x2000,
	PERF_OPT_IO_COUNT,
};

static const struct option g_perf_long_opts[] = {
	{"json-output", required_argument, NULL, PERF_OPT_JSON_OUTPUT},
	{"io-count", required_argument, NULL, PERF_OPT_IO_COUNT},
	{NULL, 0, NULL, 0},
};

static int
perf_parse_int(int ch, const char *arg, int *out)
{
	long v;
	char *end;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v < 0 || v >= INT_MAX) {
		fprintf(stderr, "-%c: invalid value '%s'\n", ch, arg);
		return -EINVAL;
	}
	*out = (int)v;
	return 0;
}

static int
perf_parse_count(const char *arg, uint64_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v == 0 || arg[0] == '-') {
		fprintf(stderr, "--io-count: invalid value '%s' (a positive count)\n", arg);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int
perf_parse_arg(int ch, const char *arg)
{
	int v;

	switch (ch) {
	case 'w':
		g_workload_str = arg;
		return 0;
	case 'T':
		g_bdev_filter = arg;
		return 0;
	case 'z':
		g_wait_for_tests = true;
		return 0;
	case 'C':
		g_every_core = true;
		return 0;
	case 'f':
		g_continue_on_failure = true;
		return 0;
	case 'l':
		g_latency_level++;
		return 0;
	case PERF_OPT_JSON_OUTPUT:
		g_json_out = arg;
		return 0;
	case PERF_OPT_IO_COUNT:
		return perf_parse_count(arg, &g_io_count);
	case 'q':
		return perf_parse_int(ch, arg, &g_queue_depth);
	case 'o':
		return perf_parse_int(ch, arg, &g_io_size);
	case 't':
		return perf_parse_int(ch, arg, &g_time_sec);
	case 'M':
		return perf_parse_int(ch, arg, &g_rw_pct);
	case 'S':
		if (perf_parse_int(ch, arg, &v) != 0) {
			return -EINVAL;
		}
		g_progress_us = (uint64_t)v * PERF_US_PER_SEC;
		return 0;
	default:
		return -EINVAL;
	}
}

static void
perf_usage(void)
{
	printf("\nsluice-bdevperf options (as SPDK bdevperf):\n"
	       " -q <depth>                queue depth per job\n"
	       " -o <size>                 I/O size in bytes\n"
	       " -w <type>                 read, write, randread, randwrite, rw, randrw, verify,\n"
	       "                           unmap, flush, write_zeroes\n"
	       " -t <time>                 run time in seconds\n"
	       " -M <percent>              read share of rw/randrw (100 = all reads)\n"
	       " -T <bdev>                 run on this bdev only (default: every unclaimed bdev)\n"
	       " -C                        every core runs a job on each bdev (own slice)\n"
	       " -S <period>               progress line every <period> seconds (0 = none; "
	       "default 1)\n"
	       " -f                        continue after I/O failures\n"
	       " -l                        print a latency summary (percentiles) per job\n"
	       " -z                        start, then wait for the perform_tests RPC\n"
	       "     --json-output FILE    also write the results as JSON (\"-\" = stdout)\n"
	       "     --io-count N          stop each job after N I/O (or -t, whichever is first):\n"
	       "                           a fixed amount of work, for instruction counts\n");
}

static int
perf_check_params(struct sl_app_opts *opts)
{
	size_t i;

	if (g_queue_depth <= 0 || g_io_size <= 0 || g_workload_str == NULL || g_time_sec <= 0) {
		fprintf(stderr, "bdevperf needs -q, -o, -w and -t (see --help)\n");
		return -EINVAL;
	}
	for (i = 0; i < SL_COUNTOF(g_workload_names); i++) {
		if (strcmp(g_workload_str, g_workload_names[i]) == 0) {
			break;
		}
	}
	if (i == SL_COUNTOF(g_workload_names)) {
		fprintf(stderr, "-w: unknown workload '%s'\n", g_workload_str);
		return -EINVAL;
	}
	g_workload = (enum perf_workload)i;
	if (g_workload == PERF_RW || g_workload == PERF_RANDRW) {
		if (g_rw_pct < 0 || g_rw_pct > 100) {
			fprintf(stderr, "-M must be specified to value from 0 to 100 for rw or "
					"randrw.\n");
			return -EINVAL;
		}
	} else if (g_rw_pct >= 0) {
		fprintf(stderr, "Ignoring -M option... Please use -M option only when using rw or "
				"randrw.\n");
	}
	if (g_io_size % 512 != 0) {
		fprintf(stderr, "-o: I/O size %d is not a multiple of 512\n", g_io_size);
		return -EINVAL;
	}
	if (g_wait_for_tests && opts->rpc_addr == NULL) {
		opts->rpc_addr = SL_DEFAULT_RPC_ADDR;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct sl_app_opts opts;
	int rc;

	sl_app_opts_init(&opts);
	opts.name = "bdevperf";
	/* No RPC server unless asked for (-r, or -z which needs one). */
	opts.rpc_addr = NULL;
	rc = sl_app_parse_args(argc, argv, &opts, "q:o:w:t:M:T:S:zCfl", g_perf_long_opts,
			       perf_parse_arg, perf_usage);
	if (rc != 0) {
		return rc > 0 ? 0 : 2;
	}
	if (perf_check_params(&opts) != 0) {
		return 2;
	}
	rc = sl_app_start(&opts, perf_app_start, NULL);
	return rc == 0 ? 0 : 1;
}
