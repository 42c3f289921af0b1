/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * sluice-nvme-perf: drive NVMe namespaces with polled I/O and report IOPS, bandwidth,
 * latency (average, min, max, percentiles) and CPU cost per I/O.
 *
 * It takes spdk_nvme_perf's flags for the same things (-q -o -w -M -t -c -r -P -L)
 * and prints the same "Device Information" table and final "Total" line, so scripts
 * written for one run the other.
 *
 * With -i <shm id> it shares the controllers with the other processes of that id (a
 * sluiced, another perf): it attaches to the state the first one brought up and takes
 * its own I/O queues. --verify and --lba-range let several of them check their data on
 * one namespace at once, each on its own range.
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "sluice/env.h"
#include "sluice/log.h"
#include "sluice/nvme.h"
#include "sluice/thread.h"

#define MAX_TRIDS     16
#define MAX_NS        64
#define MAX_WORKERS   64
#define HIST_SUB_BITS 6
#define HIST_BUCKETS  (64 << HIST_SUB_BITS)

struct perf_ns {
	struct sl_nvme_ctrlr *ctrlr;
	struct sl_nvme_ns *ns;
	char name[300];
	uint64_t size_in_ios;
	uint32_t io_sectors;
	/* --lba-range: first LBA of the range I/O goes to (0: the whole namespace). */
	uint64_t lba_start;
	uint32_t sector_size;
	/* --verify: I/O slots on this namespace (all workers), each owning a stripe. */
	uint32_t num_slots;
	/* --verify: write generation of each I/O-sized block of the range (0: not yet). */
	uint8_t *gens;
};

struct perf_task {
	struct perf_ns_ctx *ctx;
	void *buf;
	uint64_t submit_tsc;
	bool is_read;
	/* --verify: the read-back buffer, this slot's stripe and where it is in it. */
	void *rbuf;
	uint32_t slot;
	uint64_t vcursor;
	uint64_t vidx;
	int vstate;
	uint64_t vsubmit_tsc;
};

/* One namespace on one worker: its qpairs, tasks and counters. */
struct perf_ns_ctx {
	struct perf_ns *entry;
	struct perf_worker *worker;
	struct sl_nvme_qpair **qpairs;
	uint32_t num_qpairs;
	uint32_t next_qpair;
	struct perf_task *tasks;
	uint64_t offset; /* sequential cursor, in I/Os */
	uint64_t current_queue_depth;
	_Atomic uint64_t io_completed;
	uint64_t io_errors;
	uint64_t total_tsc;
	uint64_t min_tsc;
	uint64_t max_tsc;
	uint64_t *histogram;
	bool draining;
	/* --verify counters. */
	uint64_t verify_blocks;
	uint64_t verify_mismatches;
	uint64_t verify_errors;
};

struct perf_worker {
	pthread_t thread;
	uint32_t core;
	/* The clock, read once per poll that completes something (see worker_now). */
	uint64_t now;
	bool now_valid;
	struct perf_ns_ctx *ctxs[MAX_NS];
	uint32_t num_ctxs;
	uint64_t rng;
};

static struct {
	uint32_t queue_depth;
	uint32_t io_size;
	const char *workload;
	bool is_random;
	int rw_percentage; /* reads, 0..100 */
	uint32_t time_s;
	const char *core_mask;
	uint32_t num_qpairs;
	int latency_tracking;
	struct sl_nvme_transport_id trids[MAX_TRIDS];
	uint32_t num_trids;
	uint32_t nsid;
	uint32_t io_queue_size;
	bool transport_stats;
	bool no_shadow_doorbell;
	int shm_id;
	bool verify;
	bool have_lba_range;
	uint64_t lba_range_start;
	uint64_t lba_range_count;
	uint64_t seed;
} g_cfg = {
	.shm_id = -1,
	.queue_depth = 0,
	.io_size = 0,
	.rw_percentage = -1,
	.time_s = 0,
	.core_mask = "0x1",
	.num_qpairs = 1,
	.io_queue_size = 0,
};

static struct perf_ns g_ns[MAX_NS];
static uint32_t g_num_ns;
static struct sl_nvme_ctrlr *g_ctrlrs[MAX_TRIDS * 4];
static uint32_t g_num_ctrlrs;
static struct perf_worker g_workers[MAX_WORKERS];
static uint32_t g_num_workers;
static _Atomic bool g_exit;
static uint64_t g_tsc_hz;

static void
usage(const char *prog)
{
	printf("usage: %s -q <depth> -o <io size> -w <workload> -t <seconds> [options]\n"
	       "  -q  queue depth per namespace per core\n"
	       "  -o  I/O size in bytes\n"
	       "  -w  read, write, randread, randwrite, rw, randrw\n"
	       "  -M  read percentage for rw/randrw\n"
	       "  -t  time in seconds\n"
	       "  -c  core mask (default 0x1)\n"
	       "  -r  transport ID, e.g. 'trtype:PCIe traddr:0000:00:04.0' (repeatable;\n"
	       "      an 'ns:<id>' key picks one namespace)\n"
	       "  -P  I/O qpairs per namespace per core (default 1)\n"
	       "  -L  latency tracking: -L summary, -LL histogram too (percentiles always)\n"
	       "  --transport-stats  print each qpair's poll and doorbell counters\n"
	       "  --no-shadow-doorbell  doorbell registers only (no Doorbell Buffer Config)\n"
	       "  -i  shm id: share controllers with the processes of that id\n"
	       "  --verify  write a pattern (LBA + per-run seed), read it back, compare;\n"
	       "      every I/O is a write then a read; -w rand* picks blocks at random, the\n"
	       "      others in order; exits 1 on a mismatch or an I/O error\n"
	       "  --lba-range START:COUNT  all I/O inside these blocks (LBAs)\n"
	       "  --seed N  the pattern seed for --verify (default: from the time and pid)\n"
	       "  -s, -e, -N, -T, -G  accepted for compatibility, ignored\n",
	       prog);
}

/* spdk_nvme_perf accepts "ns:N" inside -r; take it out before parsing the trid. */
static int
parse_trid(const char *arg)
{
	char buf[1024];
	char *ns;
	struct sl_nvme_transport_id *trid;

	if (g_cfg.num_trids == MAX_TRIDS || strlen(arg) >= sizeof(buf)) {
		return -EINVAL;
	}
	strcpy(buf, arg);
	ns = strcasestr(buf, "ns:");
	if (ns != NULL && (ns == buf || ns[-1] == ' ')) {
		g_cfg.nsid = (uint32_t)strtoul(ns + 3, NULL, 0);
		memset(ns, ' ', strcspn(ns, " "));
	}
	trid = &g_cfg.trids[g_cfg.num_trids];
	if (sl_nvme_transport_id_parse(trid, buf) != 0) {
		return -EINVAL;
	}
	g_cfg.num_trids++;
	return 0;
}

static int
parse_workload(void)
{
	const char *w = g_cfg.workload;

	if (w == NULL) {
		fprintf(stderr, "-w is required\n");
		return -EINVAL;
	}
	g_cfg.is_random = strncmp(w, "rand", 4) == 0;
	if (g_cfg.is_random) {
		w += 4;
	}
	if (strcmp(w, "read") == 0) {
		g_cfg.rw_percentage = 100;
	} else if (strcmp(w, "write") == 0) {
		g_cfg.rw_percentage = 0;
	} else if (strcmp(w, "rw") == 0) {
		if (g_cfg.rw_percentage < 0 || g_cfg.rw_percentage > 100) {
			fprintf(stderr, "-M (0..100) is required for %s\n", g_cfg.workload);
			return -EINVAL;
		}
	} else {
		fprintf(stderr, "unknown workload '%s'\n", g_cfg.workload);
		return -EINVAL;
	}
	return 0;
}

/* Parses a strictly decimal or 0x number that fills all of str. */
static int
parse_u64(const char *str, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(str, &end, 0);
	return errno != 0 || end == str || *end != '\0' || str[0] == '-' ? -EINVAL : 0;
}

/* The options for several processes on one controller: -i, --verify, --lba-range, --seed. */
static int
parse_mp_arg(int c, const char *arg)
{
	char start[32];
	const char *colon;
	uint64_t v;

	switch (c) {
	case 'i':
		if (parse_u64(arg, &v) != 0 || v > INT32_MAX) {
			fprintf(stderr, "-i: invalid shm id '%s'\n", arg);
			return -EINVAL;
		}
		g_cfg.shm_id = (int)v;
		return 0;
	case 'V':
		g_cfg.verify = true;
		return 0;
	case 'E':
		if (parse_u64(arg, &g_cfg.seed) != 0 || g_cfg.seed == 0) {
			fprintf(stderr, "--seed: invalid seed '%s' (a non-zero number)\n", arg);
			return -EINVAL;
		}
		return 0;
	default:
		break;
	}
	colon = strchr(arg, ':');
	if (colon == NULL || (size_t)(colon - arg) >= sizeof(start)) {
		fprintf(stderr, "--lba-range: '%s' is not START:COUNT\n", arg);
		return -EINVAL;
	}
	memcpy(start, arg, (size_t)(colon - arg));
	start[colon - arg] = '\0';
	if (parse_u64(start, &g_cfg.lba_range_start) != 0 ||
	    parse_u64(colon + 1, &g_cfg.lba_range_count) != 0 || g_cfg.lba_range_count == 0) {
		fprintf(stderr, "--lba-range: '%s' is not START:COUNT (blocks, COUNT > 0)\n", arg);
		return -EINVAL;
	}
	g_cfg.have_lba_range = true;
	return 0;
}

static int
parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"transport-stats", no_argument, NULL, 'S'},
		{"no-shadow-doorbell", no_argument, NULL, 'D'},
		{"verify", no_argument, NULL, 'V'},
		{"lba-range", required_argument, NULL, 'R'},
		{"seed", required_argument, NULL, 'E'},
		{NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "q:o:w:M:t:c:r:P:Ls:i:e:NT:G:Q:hn:", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'S':
			g_cfg.transport_stats = true;
			break;
		case 'D':
			g_cfg.no_shadow_doorbell = true;
			break;
		case 'V':
		case 'R':
		case 'E':
		case 'i':
			if (parse_mp_arg(c, optarg) != 0) {
				return -EINVAL;
			}
			break;
		case 'q':
			g_cfg.queue_depth = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'o':
			g_cfg.io_size = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'w':
			g_cfg.workload = optarg;
			break;
		case 'M':
			g_cfg.rw_percentage = atoi(optarg);
			break;
		case 't':
			g_cfg.time_s = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'c':
			g_cfg.core_mask = optarg;
			break;
		case 'r':
			if (parse_trid(optarg) != 0) {
				fprintf(stderr, "invalid transport ID '%s'\n", optarg);
				return -EINVAL;
			}
			break;
		case 'P':
			g_cfg.num_qpairs = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'L':
			g_cfg.latency_tracking++;
			break;
		case 'n':
			g_cfg.nsid = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 's':
		case 'e':
		case 'N':
		case 'T':
		case 'G':
		case 'Q':
			break;
		case 'h':
			usage(argv[0]);
			exit(0);
		default:
			usage(argv[0]);
			return -EINVAL;
		}
	}
	if (g_cfg.queue_depth == 0 || g_cfg.io_size == 0 || g_cfg.time_s == 0 ||
	    g_cfg.num_qpairs == 0) {
		usage(argv[0]);
		return -EINVAL;
	}
	return parse_workload();
}

/* --- Latency histogram: log-linear buckets of TSC ticks ------------------------------- */

static uint32_t
hist_index(uint64_t v)
{
	uint32_t msb;

	if (v < (1u << HIST_SUB_BITS)) {
		return (uint32_t)v;
	}
	msb = 63u - (uint32_t)__builtin_clzll(v);
	return ((msb - HIST_SUB_BITS + 1) << HIST_SUB_BITS) |
	       (uint32_t)((v >> (msb - HIST_SUB_BITS)) & ((1u << HIST_SUB_BITS) - 1));
}

static uint64_t
hist_value(uint32_t idx)
{
	uint32_t range = idx >> HIST_SUB_BITS;
	uint64_t sub = idx & ((1u << HIST_SUB_BITS) - 1);

	if (range == 0) {
		return sub;
	}
	return ((1ull << HIST_SUB_BITS) | sub) << (range - 1);
}

/* --- I/O ------------------------------------------------------------------------------- */

static uint64_t
rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static void io_complete(void *arg, const struct sl_nvme_cpl *cpl);
static int verify_submit(struct perf_task *task);

/*
 * The time for latencies: read once per poll that completes something, and shared by
 * the completions of that poll and the submissions their callbacks make. The ticks are
 * the TSC on x86 (also in a TCG guest, see sl_get_ticks), but where they come from
 * clock_gettime and the guest's clocksource is the HPET (SLUICE_TICKS=clock, other
 * architectures) each read is a trap into the emulator, and two per I/O cost more
 * than the I/O itself.
 */
static inline uint64_t
worker_now(struct perf_worker *w)
{
	if (!w->now_valid) {
		w->now = sl_get_ticks();
		w->now_valid = true;
	}
	return w->now;
}

static int
submit_task(struct perf_task *task)
{
	struct perf_ns_ctx *ctx = task->ctx;
	struct perf_worker *w = ctx->worker;
	struct sl_nvme_qpair *qpair = ctx->qpairs[ctx->next_qpair];
	uint64_t offset;
	int rc;

	if (g_cfg.verify) {
		return verify_submit(task);
	}
	if (++ctx->next_qpair == ctx->num_qpairs) {
		ctx->next_qpair = 0;
	}
	if (g_cfg.is_random) {
		offset = rng_next(&w->rng) % ctx->entry->size_in_ios;
	} else {
		offset = ctx->offset++;
		if (ctx->offset == ctx->entry->size_in_ios) {
			ctx->offset = 0;
		}
	}
	task->is_read =
		g_cfg.rw_percentage == 100 ||
		(g_cfg.rw_percentage != 0 && (int)(rng_next(&w->rng) % 100) < g_cfg.rw_percentage);
	task->submit_tsc = worker_now(w);
	if (task->is_read) {
		rc = sl_nvme_ns_cmd_read(ctx->entry->ns, qpair, task->buf,
					 ctx->entry->lba_start + offset * ctx->entry->io_sectors,
					 ctx->entry->io_sectors, io_complete, task, 0);
	} else {
		rc = sl_nvme_ns_cmd_write(ctx->entry->ns, qpair, task->buf,
					  ctx->entry->lba_start + offset * ctx->entry->io_sectors,
					  ctx->entry->io_sectors, io_complete, task, 0);
	}
	if (rc == 0) {
		ctx->current_queue_depth++;
	} else {
		fprintf(stderr, "%s: submit failed: %s\n", ctx->entry->name, strerror(-rc));
	}
	return rc;
}

/* One completed I/O of ctx: its latency and the count the reporter reads. */
static void
ctx_account_io(struct perf_ns_ctx *ctx, uint64_t tsc)
{
	ctx->total_tsc += tsc;
	ctx->min_tsc = tsc < ctx->min_tsc ? tsc : ctx->min_tsc;
	ctx->max_tsc = tsc > ctx->max_tsc ? tsc : ctx->max_tsc;
	ctx->histogram[hist_index(tsc)]++;
	atomic_store_explicit(&ctx->io_completed,
			      atomic_load_explicit(&ctx->io_completed, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

static void
io_complete(void *arg, const struct sl_nvme_cpl *cpl)
{
	struct perf_task *task = arg;
	struct perf_ns_ctx *ctx = task->ctx;
	uint64_t tsc = worker_now(ctx->worker) - task->submit_tsc;

	ctx->current_queue_depth--;
	if (sl_unlikely(sl_nvme_cpl_is_error(cpl))) {
		ctx->io_errors++;
	}
	ctx_account_io(ctx, tsc);
	if (!ctx->draining) {
		submit_task(task);
	}
}

/* --- Verify mode ------------------------------------------------------------------------ */

/*
 * Each I/O slot (a task: -q of them per namespace per worker) owns a stripe of the
 * range: the I/O-sized blocks whose index is its slot number modulo the number of
 * slots, so no two I/Os in flight in this process ever overlap, and processes given
 * disjoint --lba-range never touch each other's data. A slot writes its block, reads it
 * back and compares; when it comes back to a block it wrote before, it first reads it
 * and checks the previous write is still there (nobody else wrote it, no write was lost).
 *
 * Every 8-byte word of a logical block is a function of (LBA, seed, generation, word):
 * the first three words hold those plainly, so a mismatch says whose data was found.
 * The generation counts this run's writes to the block (mod 255, never 0).
 */
enum verify_state {
	VERIFY_PRE_READ = 0,
	VERIFY_WRITE,
	VERIFY_READ,
};

#define VERIFY_MAX_PRINTED 20
/* Range sizes, in I/Os, up to which generations are kept (a byte each). */
#define VERIFY_MAX_GENS (1ull << 28)

static _Atomic uint32_t g_verify_printed;

static uint64_t
verify_mix(uint64_t x)
{
	/* splitmix64's finaliser: every input bit reaches every output bit. */
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t
verify_word(uint64_t lba, uint8_t gen, uint32_t k)
{
	switch (k) {
	case 0:
		return lba;
	case 1:
		return g_cfg.seed;
	case 2:
		return gen;
	default:
		return verify_mix(g_cfg.seed ^ verify_mix(lba ^ ((uint64_t)gen << 56)) ^ k);
	}
}

static void
verify_fill(const struct perf_ns *e, uint64_t lba, uint8_t gen, uint64_t *buf)
{
	uint32_t words = e->sector_size / 8, b, k;

	for (b = 0; b < e->io_sectors; b++) {
		for (k = 0; k < words; k++) {
			buf[b * words + k] = verify_word(lba + b, gen, k);
		}
	}
}

static bool
verify_print_slot(void)
{
	uint32_t n = atomic_fetch_add(&g_verify_printed, 1);

	if (n == VERIFY_MAX_PRINTED) {
		fprintf(stderr, "verify: more errors, not printed\n");
	}
	return n < VERIFY_MAX_PRINTED;
}

/* Compare the blocks read into task->rbuf with generation gen; count and report. */
static void
verify_check(struct perf_task *task, uint64_t lba, uint8_t gen)
{
	struct perf_ns_ctx *ctx = task->ctx;
	const struct perf_ns *e = ctx->entry;
	const uint64_t *got = task->rbuf;
	uint32_t words = e->sector_size / 8, b, k;
	uint64_t want;

	for (b = 0; b < e->io_sectors; b++) {
		ctx->verify_blocks++;
		for (k = 0; k < words; k++) {
			want = verify_word(lba + b, gen, k);
			if (got[b * words + k] == want) {
				continue;
			}
			ctx->verify_mismatches++;
			if (verify_print_slot()) {
				fprintf(stderr,
					"verify: %s: mismatch at LBA %" PRIu64 " byte %u: expected "
					"0x%016" PRIx64 ", got 0x%016" PRIx64
					" (the block says LBA %" PRIu64 ", seed 0x%" PRIx64
					", generation %" PRIu64 "; expected seed 0x%" PRIx64
					", generation %u)\n",
					e->name, lba + b, k * 8, want, got[b * words + k],
					got[b * words], got[b * words + 1], got[b * words + 2],
					g_cfg.seed, gen);
			}
			break;
		}
	}
}

static void
verify_io_error(struct perf_task *task, uint64_t lba, const struct sl_nvme_cpl *cpl)
{
	struct perf_ns_ctx *ctx = task->ctx;
	char status[128];

	ctx->verify_errors++;
	ctx->io_errors++;
	if (verify_print_slot()) {
		sl_nvme_cpl_fmt(status, sizeof(status), cpl);
		fprintf(stderr, "verify: %s: %s of LBA %" PRIu64 "+%u failed: %s\n",
			ctx->entry->name, task->vstate == VERIFY_WRITE ? "write" : "read", lba,
			ctx->entry->io_sectors, status);
	}
}

/* The next block of the slot's stripe, in I/Os from the start of the range. */
static uint64_t
verify_next_idx(struct perf_task *task)
{
	const struct perf_ns *e = task->ctx->entry;
	uint64_t count = (e->size_in_ios - task->slot + e->num_slots - 1) / e->num_slots;
	uint64_t n;

	if (g_cfg.is_random) {
		n = rng_next(&task->ctx->worker->rng) % count;
	} else {
		n = task->vcursor++ % count;
	}
	return task->slot + n * e->num_slots;
}

static void verify_io_done(void *arg, const struct sl_nvme_cpl *cpl);

static int
verify_issue(struct perf_task *task)
{
	struct perf_ns_ctx *ctx = task->ctx;
	const struct perf_ns *e = ctx->entry;
	struct sl_nvme_qpair *qpair = ctx->qpairs[ctx->next_qpair];
	uint64_t lba = e->lba_start + task->vidx * e->io_sectors;
	int rc;

	if (++ctx->next_qpair == ctx->num_qpairs) {
		ctx->next_qpair = 0;
	}
	task->vsubmit_tsc = sl_get_ticks();
	if (task->vstate == VERIFY_WRITE) {
		rc = sl_nvme_ns_cmd_write(e->ns, qpair, task->buf, lba, e->io_sectors,
					  verify_io_done, task, 0);
	} else {
		/* Poison: a read that moved no data must not pass on the last one's. */
		memset(task->rbuf, 0xa5, (size_t)e->io_sectors * e->sector_size);
		rc = sl_nvme_ns_cmd_read(e->ns, qpair, task->rbuf, lba, e->io_sectors,
					 verify_io_done, task, 0);
	}
	if (rc == 0) {
		ctx->current_queue_depth++;
	} else {
		ctx->verify_errors++;
		fprintf(stderr, "%s: submit failed at LBA %" PRIu64 ": %s\n", e->name, lba,
			strerror(-rc));
	}
	return rc;
}

/* Start a slot on its next block: read first if this run wrote it before. */
static int
verify_submit(struct perf_task *task)
{
	struct perf_ns *e = task->ctx->entry;

	task->vidx = verify_next_idx(task);
	if (e->gens != NULL && e->gens[task->vidx] != 0) {
		task->vstate = VERIFY_PRE_READ;
	} else {
		task->vstate = VERIFY_WRITE;
		verify_fill(e, e->lba_start + task->vidx * e->io_sectors, e->gens != NULL ? 1 : 0,
			    task->buf);
	}
	return verify_issue(task);
}

static void
verify_io_done(void *arg, const struct sl_nvme_cpl *cpl)
{
	struct perf_task *task = arg;
	struct perf_ns_ctx *ctx = task->ctx;
	struct perf_ns *e = ctx->entry;
	uint64_t lba = e->lba_start + task->vidx * e->io_sectors;
	uint64_t tsc = sl_get_ticks() - task->vsubmit_tsc;
	uint8_t gen = e->gens != NULL ? e->gens[task->vidx] : 0;
	uint8_t next_gen = gen == UINT8_MAX ? 1 : (uint8_t)(gen + 1);

	ctx->current_queue_depth--;
	ctx_account_io(ctx, tsc);
	if (sl_nvme_cpl_is_error(cpl)) {
		verify_io_error(task, lba, cpl);
		/* What is on the media is unknown now: do not check it on a revisit. */
		if (e->gens != NULL) {
			e->gens[task->vidx] = 0;
		}
	} else if (task->vstate == VERIFY_PRE_READ) {
		verify_check(task, lba, gen);
		if (e->gens != NULL) {
			verify_fill(e, lba, next_gen, task->buf);
		}
		task->vstate = VERIFY_WRITE;
		verify_issue(task);
		return;
	} else if (task->vstate == VERIFY_WRITE) {
		if (e->gens != NULL) {
			e->gens[task->vidx] = gen == 0 ? 1 : next_gen;
		}
		/* The read-back finishes the check even while draining. */
		task->vstate = VERIFY_READ;
		verify_issue(task);
		return;
	} else {
		verify_check(task, lba, gen);
	}
	if (!ctx->draining) {
		verify_submit(task);
	}
}

/* Sizes the stripes once every worker's slots are known, and reports what runs where. */
static int
verify_setup(void)
{
	uint32_t i;

	if (g_cfg.seed == 0) {
		g_cfg.seed = verify_mix((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32));
	}
	for (i = 0; i < g_num_ns; i++) {
		struct perf_ns *e = &g_ns[i];

		if (e->num_slots == 0) {
			continue;
		}
		if (e->size_in_ios < e->num_slots) {
			fprintf(stderr,
				"%s: --verify: the range holds %" PRIu64
				" I/Os of %u blocks, fewer "
				"than the %u I/O slots (-q times the workers on it): widen "
				"--lba-range or lower -q\n",
				e->name, e->size_in_ios, e->io_sectors, e->num_slots);
			return -EINVAL;
		}
		if (e->size_in_ios <= VERIFY_MAX_GENS) {
			e->gens = calloc(e->size_in_ios, 1);
			if (e->gens == NULL) {
				return -ENOMEM;
			}
		}
		printf("verify: %s: LBAs %" PRIu64 "..%" PRIu64 ", %u slots, seed 0x%016" PRIx64
		       "%s\n",
		       e->name, e->lba_start, e->lba_start + e->size_in_ios * e->io_sectors - 1,
		       e->num_slots, g_cfg.seed,
		       e->gens == NULL ? " (range too large to re-check old writes)" : "");
	}
	return 0;
}

/* Prints the verify line; \return whether everything verified. */
static bool
verify_report(void)
{
	uint64_t blocks = 0, mismatches = 0, errors = 0;
	uint32_t i, j;

	for (i = 0; i < g_num_workers; i++) {
		for (j = 0; j < g_workers[i].num_ctxs; j++) {
			blocks += g_workers[i].ctxs[j]->verify_blocks;
			mismatches += g_workers[i].ctxs[j]->verify_mismatches;
			errors += g_workers[i].ctxs[j]->verify_errors;
		}
	}
	printf("verify: %" PRIu64 " blocks checked, %" PRIu64 " mismatches, %" PRIu64
	       " I/O errors\n",
	       blocks, mismatches, errors);
	return mismatches == 0 && errors == 0 && blocks > 0;
}

static void *
worker_run(void *arg)
{
	struct perf_worker *w = arg;
	cpu_set_t set;
	uint32_t i, q, t;
	bool busy;

	CPU_ZERO(&set);
	CPU_SET(w->core, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	for (i = 0; i < w->num_ctxs; i++) {
		for (t = 0; t < g_cfg.queue_depth; t++) {
			submit_task(&w->ctxs[i]->tasks[t]);
		}
	}
	while (!atomic_load_explicit(&g_exit, memory_order_relaxed)) {
		for (i = 0; i < w->num_ctxs; i++) {
			for (q = 0; q < w->ctxs[i]->num_qpairs; q++) {
				w->now_valid = false;
				sl_nvme_qpair_process_completions(w->ctxs[i]->qpairs[q], 0);
			}
		}
	}
	/* Drain: what is in flight completes, nothing new goes out. */
	do {
		busy = false;
		for (i = 0; i < w->num_ctxs; i++) {
			w->ctxs[i]->draining = true;
			for (q = 0; q < w->ctxs[i]->num_qpairs; q++) {
				w->now_valid = false;
				if (sl_nvme_qpair_process_completions(w->ctxs[i]->qpairs[q], 0) <
				    0) {
					w->ctxs[i]->current_queue_depth = 0;
				}
			}
			busy |= w->ctxs[i]->current_queue_depth != 0;
		}
	} while (busy);
	return NULL;
}

/* --- Setup ------------------------------------------------------------------------------- */

/* --lba-range inside the namespace, and at least one I/O long. */
static bool
lba_range_fits(struct sl_nvme_ctrlr *ctrlr, struct sl_nvme_ns *ns, uint32_t nsid)
{
	uint64_t nblocks = sl_nvme_ns_get_num_sectors(ns);
	uint32_t io_sectors = g_cfg.io_size / sl_nvme_ns_get_sector_size(ns);

	if (g_cfg.lba_range_start >= nblocks ||
	    g_cfg.lba_range_count > nblocks - g_cfg.lba_range_start ||
	    g_cfg.lba_range_count < io_sectors) {
		printf("WARNING: %s NSID %u: --lba-range %" PRIu64 ":%" PRIu64
		       " is not inside its %" PRIu64 " blocks, or shorter than one I/O (%u "
		       "blocks); skipped\n",
		       sl_nvme_ctrlr_get_transport_id(ctrlr)->traddr, nsid, g_cfg.lba_range_start,
		       g_cfg.lba_range_count, nblocks, io_sectors);
		return false;
	}
	return true;
}

static void
add_ns(struct sl_nvme_ctrlr *ctrlr, uint32_t nsid)
{
	struct sl_nvme_ns *ns = sl_nvme_ctrlr_get_ns(ctrlr, nsid);
	struct perf_ns *e;
	uint32_t ss = sl_nvme_ns_get_sector_size(ns);

	if (g_num_ns == MAX_NS) {
		return;
	}
	if (g_cfg.io_size % ss != 0 || g_cfg.io_size > sl_nvme_ns_get_max_io_xfer_size(ns)) {
		printf("WARNING: %s NSID %u: I/O size %u is not a multiple of the sector size %u "
		       "or above the transfer limit %u; skipped\n",
		       sl_nvme_ctrlr_get_transport_id(ctrlr)->traddr, nsid, g_cfg.io_size, ss,
		       sl_nvme_ns_get_max_io_xfer_size(ns));
		return;
	}
	if (g_cfg.have_lba_range && !lba_range_fits(ctrlr, ns, nsid)) {
		return;
	}
	e = &g_ns[g_num_ns++];
	e->ctrlr = ctrlr;
	e->ns = ns;
	e->io_sectors = g_cfg.io_size / ss;
	e->sector_size = ss;
	e->size_in_ios = sl_nvme_ns_get_size(ns) / g_cfg.io_size;
	if (g_cfg.have_lba_range) {
		e->lba_start = g_cfg.lba_range_start;
		e->size_in_ios = g_cfg.lba_range_count / e->io_sectors;
	}
	snprintf(e->name, sizeof(e->name), "PCIE (%s) NSID %u",
		 sl_nvme_ctrlr_get_transport_id(ctrlr)->traddr, nsid);
}

static void
attach_cb(void *cb_ctx, const struct sl_nvme_transport_id *trid, struct sl_nvme_ctrlr *ctrlr,
	  const struct sl_nvme_ctrlr_opts *opts)
{
	const struct sl_pci_id *id = sl_nvme_ctrlr_get_pci_id(ctrlr);
	uint32_t nsid;

	printf("Attached to NVMe Controller at %s [%04x:%04x]\n", trid->traddr, id->vendor_id,
	       id->device_id);
	g_ctrlrs[g_num_ctrlrs++] = ctrlr;
	for (nsid = sl_nvme_ctrlr_get_first_active_ns(ctrlr); nsid != 0;
	     nsid = sl_nvme_ctrlr_get_next_active_ns(ctrlr, nsid)) {
		if (g_cfg.nsid == 0 || g_cfg.nsid == nsid) {
			add_ns(ctrlr, nsid);
		}
	}
}

static bool
probe_cb(void *cb_ctx, const struct sl_nvme_transport_id *trid, struct sl_nvme_ctrlr_opts *opts)
{
	/* Room for the whole queue depth on the controller, and then some. */
	opts->io_queue_size = SL_MAX(opts->io_queue_size, g_cfg.queue_depth + 1);
	opts->io_queue_requests = SL_MAX(opts->io_queue_requests, g_cfg.queue_depth * 2);
	opts->num_io_queues = SL_MAX(opts->num_io_queues, g_num_workers * g_cfg.num_qpairs);
	opts->use_shadow_doorbell = !g_cfg.no_shadow_doorbell;
	return g_num_ctrlrs < SL_COUNTOF(g_ctrlrs);
}

static int
setup_workers(void)
{
	unsigned long long mask = strtoull(g_cfg.core_mask, NULL, 16);
	uint32_t core;

	for (core = 0; core < 64 && g_num_workers < MAX_WORKERS; core++) {
		if (mask & (1ull << core)) {
			g_workers[g_num_workers].core = core;
			g_workers[g_num_workers].rng = 0x9e3779b97f4a7c15ull * (core + 1);
			g_num_workers++;
		}
	}
	return g_num_workers ? 0 : -EINVAL;
}

static struct perf_ns_ctx *
ctx_create(struct perf_ns *entry, struct perf_worker *w)
{
	struct perf_ns_ctx *ctx = calloc(1, sizeof(*ctx));
	uint32_t i;

	if (ctx == NULL) {
		return NULL;
	}
	ctx->entry = entry;
	ctx->worker = w;
	ctx->min_tsc = UINT64_MAX;
	ctx->num_qpairs = g_cfg.num_qpairs;
	ctx->qpairs = calloc(ctx->num_qpairs, sizeof(*ctx->qpairs));
	ctx->tasks = calloc(g_cfg.queue_depth, sizeof(*ctx->tasks));
	ctx->histogram = calloc(HIST_BUCKETS, sizeof(uint64_t));
	if (ctx->qpairs == NULL || ctx->tasks == NULL || ctx->histogram == NULL) {
		return NULL;
	}
	for (i = 0; i < ctx->num_qpairs; i++) {
		ctx->qpairs[i] = sl_nvme_ctrlr_alloc_io_qpair(entry->ctrlr, NULL);
		if (ctx->qpairs[i] == NULL) {
			fprintf(stderr, "%s: cannot allocate an I/O qpair: %s\n", entry->name,
				strerror(errno));
			return NULL;
		}
	}
	for (i = 0; i < g_cfg.queue_depth; i++) {
		ctx->tasks[i].ctx = ctx;
		ctx->tasks[i].buf = sl_dma_zmalloc(g_cfg.io_size, 4096, NULL);
		if (ctx->tasks[i].buf == NULL) {
			return NULL;
		}
		memset(ctx->tasks[i].buf, (int)i, g_cfg.io_size);
		if (g_cfg.verify) {
			ctx->tasks[i].slot = entry->num_slots++;
			ctx->tasks[i].rbuf = sl_dma_zmalloc(g_cfg.io_size, 4096, NULL);
			if (ctx->tasks[i].rbuf == NULL) {
				return NULL;
			}
		}
	}
	return ctx;
}

/* As spdk_nvme_perf: namespaces and workers paired round robin over the larger set. */
static int
associate_workers(void)
{
	uint32_t count = SL_MAX(g_num_ns, g_num_workers);
	uint32_t i;

	for (i = 0; i < count; i++) {
		struct perf_worker *w = &g_workers[i % g_num_workers];
		struct perf_ns *e = &g_ns[i % g_num_ns];
		struct perf_ns_ctx *ctx = ctx_create(e, w);

		if (ctx == NULL || w->num_ctxs == MAX_NS) {
			return -ENOMEM;
		}
		printf("Associating %s with lcore %u\n", e->name, w->core);
		w->ctxs[w->num_ctxs++] = ctx;
	}
	return 0;
}

/* --- Reporting -------------------------------------------------------------------------- */

static uint64_t
total_completed(void)
{
	uint64_t n = 0;
	uint32_t i, j;

	for (i = 0; i < g_num_workers; i++) {
		for (j = 0; j < g_workers[i].num_ctxs; j++) {
			n += atomic_load_explicit(&g_workers[i].ctxs[j]->io_completed,
						  memory_order_relaxed);
		}
	}
	return n;
}

static double
tsc_to_us(uint64_t tsc)
{
	return (double)tsc * 1000000.0 / (double)g_tsc_hz;
}

static void
print_percentiles(const struct perf_ns_ctx *ctx)
{
	static const double cutoffs[] = {0.01, 0.10, 0.25,  0.50,  0.75,   0.90,   0.95,
					 0.98, 0.99, 0.995, 0.999, 0.9999, 0.99999};
	uint64_t total = atomic_load(&ctx->io_completed);
	uint64_t so_far = 0;
	uint32_t idx = 0, c = 0;

	printf("Summary latency data for %s from core %u:\n", ctx->entry->name, ctx->worker->core);
	printf("================================================================================="
	       "\n");
	for (idx = 0; idx < HIST_BUCKETS && c < SL_COUNTOF(cutoffs) && total > 0; idx++) {
		so_far += ctx->histogram[idx];
		while (c < SL_COUNTOF(cutoffs) && (double)so_far >= cutoffs[c] * (double)total) {
			printf("%9.5f%% : %9.3fus\n", cutoffs[c] * 100,
			       tsc_to_us(hist_value(idx + 1)));
			c++;
		}
	}
	printf("\n");
	if (g_cfg.latency_tracking < 2) {
		return;
	}
	printf("Latency histogram for %s from core %u:\n", ctx->entry->name, ctx->worker->core);
	printf("==============================================================================\n");
	printf("       Range in us     Cumulative    IO count\n");
	so_far = 0;
	for (idx = 0; idx < HIST_BUCKETS; idx++) {
		if (ctx->histogram[idx] == 0) {
			continue;
		}
		so_far += ctx->histogram[idx];
		printf("%9.3f - %9.3f: %9.4f%%  (%9" PRIu64 ")\n", tsc_to_us(hist_value(idx)),
		       tsc_to_us(hist_value(idx + 1)), (double)so_far * 100 / (double)total,
		       ctx->histogram[idx]);
	}
	printf("\n");
}

/* As spdk_nvme_perf --transport-stats prints its PCIe counters. */
static void
print_transport_stats(void)
{
	struct sl_nvme_qpair_stats st;
	uint32_t i, j, q;

	printf("==================\n");
	printf("NVMe transport statistics\n");
	for (i = 0; i < g_num_workers; i++) {
		for (j = 0; j < g_workers[i].num_ctxs; j++) {
			const struct perf_ns_ctx *ctx = g_workers[i].ctxs[j];

			for (q = 0; q < ctx->num_qpairs; q++) {
				sl_nvme_qpair_get_stats(ctx->qpairs[q], &st);
				printf("%s qpair %u from core %u:\n", ctx->entry->name,
				       sl_nvme_qpair_get_id(ctx->qpairs[q]), g_workers[i].core);
				printf("\tpolls:              %" PRIu64 "\n", st.polls);
				printf("\tidle_polls:         %" PRIu64 "\n", st.idle_polls);
				printf("\tcompletions:        %" PRIu64 "\n", st.completions);
				printf("\tsubmitted_requests: %" PRIu64 "\n",
				       st.submitted_requests);
				printf("\tqueued_requests:    %" PRIu64 "\n", st.queued_requests);
				printf("\tsq_mmio_doorbell_updates:   %" PRIu64 "\n",
				       st.sq_mmio_doorbell_updates);
				printf("\tsq_shadow_doorbell_updates: %" PRIu64 "\n",
				       st.sq_shadow_doorbell_updates);
				printf("\tcq_mmio_doorbell_updates:   %" PRIu64 "\n",
				       st.cq_mmio_doorbell_updates);
				printf("\tcq_shadow_doorbell_updates: %" PRIu64 "\n",
				       st.cq_shadow_doorbell_updates);
			}
		}
	}
	printf("\n");
}

static void
print_performance(double seconds, const struct rusage *ru0, const struct rusage *ru1)
{
	double total_iops = 0, total_mbps = 0, total_lat = 0;
	double min_lat = 1e300, max_lat = 0;
	uint64_t total_ios = 0, total_errors = 0;
	size_t max_strlen = 0;
	double cpu_us;
	uint32_t i, j;

	for (i = 0; i < g_num_ns; i++) {
		max_strlen = SL_MAX(max_strlen, strlen(g_ns[i].name));
	}
	printf("========================================================\n");
	printf("%*s\n", (int)max_strlen + 60, "Latency(us)");
	printf("%-*s: %10s %10s %10s %10s %10s\n", (int)max_strlen + 13, "Device Information",
	       "IOPS", "MiB/s", "Average", "min", "max");
	for (i = 0; i < g_num_workers; i++) {
		for (j = 0; j < g_workers[i].num_ctxs; j++) {
			const struct perf_ns_ctx *ctx = g_workers[i].ctxs[j];
			uint64_t n = atomic_load(&ctx->io_completed);
			double iops = (double)n / seconds;
			double mbps = iops * g_cfg.io_size / (1024 * 1024);
			double avg = n ? tsc_to_us(ctx->total_tsc) / (double)n : 0;
			double mn = n ? tsc_to_us(ctx->min_tsc) : 0;
			double mx = tsc_to_us(ctx->max_tsc);

			printf("%-*.*s from core %2u: %10.2f %10.2f %10.2f %10.2f %10.2f\n",
			       (int)max_strlen, (int)max_strlen, ctx->entry->name,
			       g_workers[i].core, iops, mbps, avg, mn, mx);
			total_iops += iops;
			total_mbps += mbps;
			total_lat += avg * (double)n;
			total_ios += n;
			total_errors += ctx->io_errors;
			min_lat = n && mn < min_lat ? mn : min_lat;
			max_lat = mx > max_lat ? mx : max_lat;
		}
	}
	printf("========================================================\n");
	printf("%-*s: %10.2f %10.2f %10.2f %10.2f %10.2f\n", (int)max_strlen + 13, "Total",
	       total_iops, total_mbps, total_ios ? total_lat / (double)total_ios : 0,
	       total_ios ? min_lat : 0, max_lat);
	printf("\n");
	cpu_us = (double)(ru1->ru_utime.tv_sec - ru0->ru_utime.tv_sec) * 1e6 +
		 (double)(ru1->ru_utime.tv_usec - ru0->ru_utime.tv_usec) +
		 (double)(ru1->ru_stime.tv_sec - ru0->ru_stime.tv_sec) * 1e6 +
		 (double)(ru1->ru_stime.tv_usec - ru0->ru_stime.tv_usec);
	printf("CPU cost: %.3f us per I/O (%.2f CPU-seconds for %" PRIu64 " I/Os, %" PRIu64
	       " errors)\n\n",
	       total_ios ? cpu_us / (double)total_ios : 0, cpu_us / 1e6, total_ios, total_errors);
	for (i = 0; i < g_num_workers; i++) {
		for (j = 0; j < g_workers[i].num_ctxs; j++) {
			print_percentiles(g_workers[i].ctxs[j]);
		}
	}
}

static void
sleep_ms(uint32_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/*
 * The main thread: admin queues (timeouts, health, resets, and reaping the ledger's dead
 * processes) every PERF_ADMIN_POLL_MS, and progress once a second.
 */
#define PERF_ADMIN_POLL_MS 50

static double
run_and_report_progress(void)
{
	uint64_t start = sl_get_ticks(), last_tick = start, last_n = 0, now, n;
	uint64_t end = start + (uint64_t)g_cfg.time_s * g_tsc_hz;
	uint32_t i, sec = 0;

	do {
		sleep_ms(PERF_ADMIN_POLL_MS);
		for (i = 0; i < g_num_ctrlrs; i++) {
			sl_nvme_ctrlr_process_admin_completions(g_ctrlrs[i]);
		}
		now = sl_get_ticks();
		if (now - last_tick >= g_tsc_hz) {
			n = total_completed();
			sec++;
			printf("[%4u s] %12.2f IOPS %10.2f MiB/s\n", sec,
			       (double)(n - last_n) * (double)g_tsc_hz / (double)(now - last_tick),
			       (double)(n - last_n) * g_cfg.io_size / (1024.0 * 1024.0) *
				       (double)g_tsc_hz / (double)(now - last_tick));
			fflush(stdout);
			last_n = n;
			last_tick = now;
		}
	} while (now < end);
	atomic_store(&g_exit, true);
	return (double)(now - start) / (double)g_tsc_hz;
}

int
main(int argc, char **argv)
{
	struct sl_env_opts env_opts;
	struct rusage ru0, ru1;
	double seconds;
	uint32_t i, t;
	int rc;

	if (parse_args(argc, argv) != 0 || setup_workers() != 0) {
		return 2;
	}
	sl_env_opts_init(&env_opts);
	env_opts.name = "sluice-nvme-perf";
	env_opts.core_mask = g_cfg.core_mask;
	env_opts.shm_id = g_cfg.shm_id;
	rc = sl_env_init(&env_opts);
	if (rc != 0) {
		fprintf(stderr, "cannot initialise the environment: %s\n", strerror(-rc));
		return 1;
	}
	g_tsc_hz = sl_get_ticks_hz();
	printf("Initializing NVMe Controllers\n");
	if (g_cfg.num_trids == 0) {
		rc = sl_nvme_probe(NULL, NULL, probe_cb, attach_cb);
	}
	for (i = 0; i < g_cfg.num_trids && rc == 0; i++) {
		rc = sl_nvme_probe(&g_cfg.trids[i], NULL, probe_cb, attach_cb);
	}
	if (rc != 0 || g_num_ns == 0) {
		fprintf(stderr, "no namespace to run on (probe: %s)\n", strerror(-rc));
		rc = 1;
		goto out;
	}
	if (associate_workers() != 0 || (g_cfg.verify && verify_setup() != 0)) {
		rc = 1;
		goto out;
	}
	printf("Initialization complete. Launching workers.\n");
	fflush(stdout);
	getrusage(RUSAGE_SELF, &ru0);
	for (i = 0; i < g_num_workers; i++) {
		pthread_create(&g_workers[i].thread, NULL, worker_run, &g_workers[i]);
	}
	seconds = run_and_report_progress();
	for (i = 0; i < g_num_workers; i++) {
		pthread_join(g_workers[i].thread, NULL);
	}
	getrusage(RUSAGE_SELF, &ru1);
	print_performance(seconds, &ru0, &ru1);
	if (g_cfg.transport_stats) {
		print_transport_stats();
	}
	rc = 0;
	for (i = 0; i < g_num_workers; i++) {
		for (t = 0; t < g_workers[i].num_ctxs; t++) {
			struct perf_ns_ctx *ctx = g_workers[i].ctxs[t];
			uint32_t q;

			rc |= ctx->io_errors != 0;
			for (q = 0; q < ctx->num_qpairs; q++) {
				sl_nvme_ctrlr_free_io_qpair(ctx->qpairs[q]);
			}
		}
	}
	if (g_cfg.verify && !verify_report()) {
		rc = 1;
	}
out:
	for (i = 0; i < g_num_ctrlrs; i++) {
		sl_nvme_detach(g_ctrlrs[i]);
	}
	sl_env_fini();
	return rc;
}
