/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * The application framework: flags, start-up in order (env, reactors, app thread, RPC
 * server, config start-up phase, subsystems, config runtime phase), and an orderly
 * stop. Signals are taken synchronously through a signalfd served on the app thread:
 * SIGINT/SIGTERM are blocked in every thread (the mask is set before the EAL and the
 * reactors spawn theirs), so no work ever runs in a signal handler.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "app_internal.h"
#include "sluice/app.h"
#include "sluice/cpuset.h"
#include "sluice/log.h"
#include "sluice/rpc.h"
#include "sluice/subsystem.h"
#include "sluice/thread.h"
#include "sluice/util.h"

enum app_state {
	APP_IDLE = 0,     /* sl_app_start not called (or returned) */
	APP_STARTING,     /* start-up phase of the config */
	APP_WAIT_RPC,     /* --wait-for-rpc: until framework_start_init */
	APP_INITIALIZING, /* subsystems and the runtime phase of the config */
	APP_RUNNING,
	APP_STOPPING,
};

struct app_waiter {
	void (*cb)(int rc, void *ctx);
	void *ctx;
	struct app_waiter *next;
};

static struct sl_app_opts g_opts;
static enum app_state g_state;
static int g_rc;
static bool g_stop_pending;
static struct sl_thread *g_app_thread;
static struct sl_poller *g_signal_poller;
static int g_signal_fd = -1;
static struct sl_json_config *g_config;
static sl_app_start_fn g_start_fn;
static void *g_start_ctx;
static struct app_waiter *g_waiters;
static struct app_waiter g_start_init_waiter;
static bool g_pid_file_written;

static void app_do_stop(void);

void
sl_app_opts_init(struct sl_app_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->name = "sluice";
	opts->rpc_addr = SL_DEFAULT_RPC_ADDR;
	opts->shm_id = -1;
	opts->mode = SL_REACTOR_ADAPTIVE;
}

bool
sl_app_is_running(void)
{
	return g_state == APP_RUNNING;
}

/* ---- Waiters for the end of start-up --------------------------------------------- */

static void
app_notify_waiters(int rc)
{
	struct app_waiter *w;

	if (g_start_init_waiter.cb != NULL) {
		w = &g_start_init_waiter;
		w->cb(rc, w->ctx);
		w->cb = NULL;
	}
	while (g_waiters != NULL) {
		w = g_waiters;
		g_waiters = w->next;
		w->cb(rc, w->ctx);
		free(w);
	}
}

void
sl_app_wait_init(void (*cb)(int rc, void *ctx), void *ctx)
{
	struct app_waiter *w;

	if (g_state == APP_RUNNING) {
		cb(0, ctx);
		return;
	}
	if (g_state == APP_STOPPING || g_state == APP_IDLE) {
		cb(-ECANCELED, ctx);
		return;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		cb(-ENOMEM, ctx);
		return;
	}
	w->cb = cb;
	w->ctx = ctx;
	w->next = g_waiters;
	g_waiters = w;
}

/* ---- Start-up chain (app thread) ------------------------------------------------- */

static void
app_fail(int rc, const char *what)
{
	SL_ERRLOG("%s\n", what);
	if (g_rc == 0) {
		g_rc = rc;
	}
	app_do_stop();
}

/* A JSON config entry failed: stop, naming the file and what the loader said. */
static void
app_config_fail(int rc)
{
	char msg[640];

	snprintf(msg, sizeof(msg), "JSON config %s: %s", g_opts.json_config,
		 sl_json_config_error(g_config));
	app_fail(rc, msg);
}

static void
app_runtime_config_done(int rc, void *ctx)
{
	if (rc != 0) {
		app_config_fail(rc);
		return;
	}
	g_state = APP_RUNNING;
	SL_NOTICELOG("%s is running (RPC socket %s)\n", g_opts.name,
		     g_opts.rpc_addr != NULL ? g_opts.rpc_addr : "none");
	if (g_start_fn != NULL) {
		g_start_fn(g_start_ctx);
	}
	app_notify_waiters(0);
	if (g_stop_pending) {
		app_do_stop();
	}
}

static void
app_subsystems_done(int rc)
{
	char msg[128];

	if (rc != 0) {
		snprintf(msg, sizeof(msg), "subsystem initialisation failed: %s", strerror(-rc));
		app_fail(rc, msg);
		return;
	}
	sl_rpc_set_state(SL_RPC_RUNTIME);
	if (g_stop_pending) {
		app_do_stop();
		return;
	}
	if (g_config == NULL) {
		app_runtime_config_done(0, NULL);
		return;
	}
	sl_json_config_run(g_config, SL_RPC_RUNTIME, g_opts.json_ignore_init_errors,
			   app_runtime_config_done, NULL);
}

static void
app_init_subsystems(void)
{
	g_state = APP_INITIALIZING;
	sl_subsystem_init_all(app_subsystems_done);
}

void
sl_app_start_init(void (*cb)(int rc, void *ctx), void *ctx)
{
	if (g_state != APP_WAIT_RPC) {
		cb(g_state == APP_RUNNING ? -EALREADY : -EBUSY, ctx);
		return;
	}
	g_start_init_waiter.cb = cb;
	g_start_init_waiter.ctx = ctx;
	app_init_subsystems();
}

static void
app_startup_config_done(int rc, void *ctx)
{
	if (rc != 0) {
		app_config_fail(rc);
		return;
	}
	if (g_stop_pending) {
		app_do_stop();
		return;
	}
	if (g_opts.wait_for_rpc) {
		g_state = APP_WAIT_RPC;
		SL_NOTICELOG("waiting for framework_start_init on %s\n", g_opts.rpc_addr);
		return;
	}
	app_init_subsystems();
}

/* ---- Signals ------------------------------------------------------------------- */

static int
app_signal_poll(void *arg)
{
	struct signalfd_siginfo si;

	while (read(g_signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (g_state == APP_STOPPING) {
			SL_NOTICELOG("received SIG%s while shutting down; still waiting for I/O "
				     "to drain\n",
				     sigabbrev_np((int)si.ssi_signo));
			continue;
		}
		SL_NOTICELOG("received SIG%s, shutting down\n", sigabbrev_np((int)si.ssi_signo));
		sl_app_stop(0);
	}
	return SL_POLLER_BUSY;
}

static int
app_signals_block(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	return -pthread_sigmask(SIG_BLOCK, set, NULL);
}

static int
app_signals_start(void)
{
	sigset_t set;
	int rc;

	rc = app_signals_block(&set);
	if (rc != 0) {
		return rc;
	}
	g_signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (g_signal_fd < 0) {
		return -errno;
	}
	g_signal_poller =
		sl_poller_register_fd(g_signal_fd, EPOLLIN, app_signal_poll, NULL, "app_signals");
	if (g_signal_poller == NULL) {
		rc = -errno;
		close(g_signal_fd);
		g_signal_fd = -1;
		return rc != 0 ? rc : -ENOMEM;
	}
	return 0;
}

/* ---- Pid file ------------------------------------------------------------------ */

static int
app_pid_file_write(const char *path)
{
	char buf[32];
	int fd, len;
	ssize_t n;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		return -errno;
	}
	len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	n = write(fd, buf, (size_t)len);
	close(fd);
	if (n != len) {
		unlink(path);
		return -EIO;
	}
	g_pid_file_written = true;
	return 0;
}

/* ---- Start and stop ------------------------------------------------------------ */

static void
app_start_msg(void *ctx)
{
	char msg[PATH_MAX + 128];
	int rc;

	rc = app_signals_start();
	if (rc != 0) {
		snprintf(msg, sizeof(msg), "cannot watch signals: %s", strerror(-rc));
		app_fail(rc, msg);
		return;
	}
	if (g_opts.rpc_addr != NULL) {
		rc = sl_rpc_server_start(g_opts.rpc_addr);
		if (rc != 0) {
			snprintf(msg, sizeof(msg), "cannot listen on RPC socket %s: %s%s",
				 g_opts.rpc_addr, strerror(-rc),
				 rc == -EADDRINUSE ? " (is another sluiced running? use -r)" : "");
			app_fail(rc, msg);
			return;
		}
	}
	if (g_opts.pid_file != NULL) {
		rc = app_pid_file_write(g_opts.pid_file);
		if (rc != 0) {
			snprintf(msg, sizeof(msg), "cannot write pid file %s: %s", g_opts.pid_file,
				 strerror(-rc));
			app_fail(rc, msg);
			return;
		}
	}
	sl_rpc_set_state(SL_RPC_STARTUP);
	if (g_config == NULL) {
		app_startup_config_done(0, NULL);
		return;
	}
	sl_json_config_run(g_config, SL_RPC_STARTUP, g_opts.json_ignore_init_errors,
			   app_startup_config_done, NULL);
}

static void
app_fini_done(int rc)
{
	sl_poller_unregister(&g_signal_poller);
	if (g_signal_fd >= 0) {
		close(g_signal_fd);
		g_signal_fd = -1;
	}
	sl_thread_exit(g_app_thread);
	sl_reactors_stop();
}

/* Stop in order: no new requests, then subsystems in reverse (exports stop, their
 * in-flight I/O completes, then bdevs close), then the threads and reactors. */
static void
app_do_stop(void)
{
	if (g_state == APP_STOPPING) {
		return;
	}
	g_state = APP_STOPPING;
	app_notify_waiters(-ECANCELED);
	sl_rpc_server_stop();
	sl_subsystem_fini_all(app_fini_done);
}

static void
app_stop_msg(void *ctx)
{
	int rc = (int)(intptr_t)ctx;

	if (g_rc == 0) {
		g_rc = rc;
	}
	/* A subsystem or a config call is in flight: stop when it answers. */
	if (g_state == APP_STARTING || g_state == APP_INITIALIZING) {
		g_stop_pending = true;
		return;
	}
	app_do_stop();
}

void
sl_app_stop(int rc)
{
	if (g_app_thread == NULL) {
		return;
	}
	if (sl_thread_send_msg(g_app_thread, app_stop_msg, (void *)(intptr_t)rc) != 0) {
		SL_ERRLOG("cannot reach the app thread to stop\n");
	}
}

static int
app_env_init(const struct sl_app_opts *opts)
{
	struct sl_env_opts env_opts;
	char hexmask[SL_CPUSET_SIZE / 4 + 8];
	struct sl_cpuset set;

	sl_env_opts_init(&env_opts);
	env_opts.name = opts->name;
	/* The EAL's -c wants hex; the reactors also take lists ("[0-1]"): normalise. */
	if (opts->reactor_mask != NULL && sl_cpuset_parse(&set, opts->reactor_mask) == 0) {
		env_opts.core_mask = sl_cpuset_fmt(&set, hexmask, sizeof(hexmask));
	}
	env_opts.mem_size_mb = opts->mem_size_mb;
	env_opts.no_huge = opts->no_huge;
	env_opts.shm_id = opts->shm_id;
	return sl_env_init(&env_opts);
}

static int
app_reactors_init(const struct sl_app_opts *opts)
{
	struct sl_reactors_opts ropts = {
		.cpumask = opts->reactor_mask,
		.mode = opts->mode,
	};
	struct sl_cpuset app_mask;
	int rc;

	rc = sl_reactors_init(&ropts);
	if (rc != 0) {
		SL_ERRLOG("cannot start reactors on core mask %s: %s\n",
			  opts->reactor_mask != NULL ? opts->reactor_mask : "(default)",
			  strerror(-rc));
		return rc;
	}
	/* The app thread (RPC, config, subsystems) lives on the first reactor. */
	sl_cpuset_zero(&app_mask);
	sl_cpuset_set_cpu(&app_mask, sl_reactor_core(0), true);
	g_app_thread = sl_thread_create("app_thread", &app_mask);
	if (g_app_thread == NULL) {
		SL_ERRLOG("cannot create the app thread\n");
		sl_reactors_fini();
		return -ENOMEM;
	}
	return 0;
}

static int
app_prepare(const struct sl_app_opts *opts)
{
	char err[640];
	sigset_t set;
	int rc;

	if (opts->json_config != NULL) {
		/* Before the env: a bad config fails fast and touches nothing. */
		g_config = sl_json_config_load_file(opts->json_config, err, sizeof(err));
		if (g_config == NULL) {
			SL_ERRLOG("%s\n", err);
			return -EINVAL;
		}
	}
	/* Block before any thread exists (EAL's, the reactors'), so every thread
	 * inherits the mask and the signals reach only the signalfd. */
	rc = app_signals_block(&set);
	if (rc != 0) {
		return rc;
	}
	signal(SIGPIPE, SIG_IGN);
	rc = sl_subsystem_sort();
	if (rc != 0) {
		return rc;
	}
	return 0;
}

int
sl_app_start(const struct sl_app_opts *opts, sl_app_start_fn start_fn, void *ctx)
{
	cpu_set_t affinity;
	bool have_affinity;
	int rc;

	if (g_state != APP_IDLE) {
		return -EALREADY;
	}
	app_rpc_link();
	g_opts = *opts;
	g_start_fn = start_fn;
	g_start_ctx = ctx;
	g_rc = 0;
	g_stop_pending = false;
	rc = app_prepare(opts);
	if (rc != 0) {
		goto free_config;
	}
	/* The EAL pins the calling thread to its main lcore; the reactors check the core
	 * mask against this thread's affinity, so give the original one back. */
	have_affinity = sched_getaffinity(0, sizeof(affinity), &affinity) == 0;
	rc = app_env_init(opts);
	if (rc == 0 && have_affinity) {
		sched_setaffinity(0, sizeof(affinity), &affinity);
	}
	if (rc != 0) {
		/* sl_env_init already said why (hugepages: the fix is named). */
		SL_ERRLOG("environment initialisation failed: %s\n", strerror(-rc));
		goto free_config;
	}
	if (opts->mlockall && mlockall(MCL_CURRENT | MCL_FUTURE) != 0) {
		rc = -errno;
		SL_ERRLOG("--mlockall: %s (raise RLIMIT_MEMLOCK or run as root)\n", strerror(-rc));
		goto env_fini;
	}
	rc = app_reactors_init(opts);
	if (rc != 0) {
		goto env_fini;
	}
	g_state = APP_STARTING;
	rc = sl_thread_send_msg(g_app_thread, app_start_msg, NULL);
	if (rc != 0) {
		sl_reactors_fini();
		goto env_fini;
	}
	sl_reactors_start();
	rc = g_rc;
	sl_reactors_fini();
	g_app_thread = NULL;
env_fini:
	sl_env_fini();
free_config:
	if (g_pid_file_written) {
		unlink(opts->pid_file);
		g_pid_file_written = false;
	}
	sl_json_config_free(g_config);
	g_config = NULL;
	g_state = APP_IDLE;
	return rc;
}

/* ---- Flags --------------------------------------------------------------------- */

enum {
	APP_OPT_NO_HUGE = 0x1000,
	APP_OPT_WAIT_FOR_RPC,
	APP_OPT_BUSY_POLL,
	APP_OPT_LOG_LEVEL,
	APP_OPT_MLOCKALL,
	APP_OPT_PID_FILE,
	APP_OPT_VERSION,
	APP_OPT_IGNORE_INIT_ERRORS,
};

#define APP_GETOPT_STR "c:hi:L:m:r:s:"

static const struct option g_app_long_opts[] = {
	{"json", required_argument, NULL, 'c'},
	{"config", required_argument, NULL, 'c'},
	{"help", no_argument, NULL, 'h'},
	{"shm-id", required_argument, NULL, 'i'},
	{"logflag", required_argument, NULL, 'L'},
	{"cpumask", required_argument, NULL, 'm'},
	{"rpc-socket", required_argument, NULL, 'r'},
	{"mem-size", required_argument, NULL, 's'},
	{"no-huge", no_argument, NULL, APP_OPT_NO_HUGE},
	{"wait-for-rpc", no_argument, NULL, APP_OPT_WAIT_FOR_RPC},
	{"busy-poll", no_argument, NULL, APP_OPT_BUSY_POLL},
	{"log-level", required_argument, NULL, APP_OPT_LOG_LEVEL},
	{"mlockall", no_argument, NULL, APP_OPT_MLOCKALL},
	{"pid-file", required_argument, NULL, APP_OPT_PID_FILE},
	{"version", no_argument, NULL, APP_OPT_VERSION},
	{"json-ignore-init-errors", no_argument, NULL, APP_OPT_IGNORE_INIT_ERRORS},
};

static void
app_usage(const char *prog, sl_app_usage_fn usage_fn)
{
	printf("Usage: %s [options]\n\n", prog);
	printf("Options:\n"
	       " -c, --json FILE          JSON config (SPDK format) to load at start\n"
	       " -m, --cpumask MASK       reactor core mask (\"0x3\", \"[0-1]\"); default: "
	       "first allowed core\n"
	       " -r, --rpc-socket PATH    JSON-RPC Unix socket (default %s, mode 0600)\n"
	       " -s, --mem-size SIZE      memory to reserve, MiB (suffix M or G allowed)\n"
	       "     --no-huge            run without hugepages (no DMA-capable devices)\n"
	       " -i, --shm-id ID          shared-memory id for multi-process use\n"
	       "     --wait-for-rpc       stop before subsystem init until "
	       "framework_start_init\n"
	       " -L, --logflag FLAG       enable a debug log flag (repeatable; \"all\")\n"
	       "     --log-level LEVEL    print level: error, warning, notice, info, debug\n"
	       "     --busy-poll          poll without sleeping (default: adaptive)\n"
	       "     --mlockall           lock all memory (no paging of I/O paths)\n"
	       "     --pid-file PATH      write the process id to PATH\n"
	       "     --json-ignore-init-errors  log failing config entries and go on\n"
	       " -h, --help               show this help\n"
	       "     --version            print the version\n",
	       SL_DEFAULT_RPC_ADDR);
	if (usage_fn != NULL) {
		usage_fn();
	}
}

static int
app_parse_mem_size(const char *arg, uint32_t *mb)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno != 0 || end == arg || arg[0] == '-') {
		return -EINVAL;
	}
	if (*end == 'G' || *end == 'g') {
		v *= 1024;
		end++;
	} else if (*end == 'M' || *end == 'm') {
		end++;
	}
	if ((*end == 'B' || *end == 'b') && end[1] == '\0') {
		end++;
	}
	if (*end != '\0' || v > UINT32_MAX) {
		return -EINVAL;
	}
	*mb = (uint32_t)v;
	return 0;
}

static int
app_parse_int(const char *arg, int min, int max, int *out)
{
	long v;
	char *end;

	errno = 0;
	v = strtol(arg, &end, 0);
	if (errno != 0 || end == arg || *end != '\0' || v < min || v > max) {
		return -EINVAL;
	}
	*out = (int)v;
	return 0;
}

static int
app_parse_one(int ch, const char *arg, struct sl_app_opts *opts)
{
	struct sl_cpuset set;
	int level;

	switch (ch) {
	case 'c':
		opts->json_config = arg;
		return 0;
	case 'i':
		return app_parse_int(arg, 0, INT32_MAX, &opts->shm_id) == 0 ? 0 : -EINVAL;
	case 'L':
		if (sl_log_set_flag(arg, true) != 0) {
			fprintf(stderr, "-L: unknown log flag '%s'\n", arg);
			return -EINVAL;
		}
		if (!opts->log_level_set) {
			sl_log_set_print_level(SL_LOG_DEBUG);
		}
		return 0;
	case 'm':
		if (sl_cpuset_parse(&set, arg) != 0 || sl_cpuset_count(&set) == 0) {
			fprintf(stderr, "-m: invalid core mask '%s'\n", arg);
			return -EINVAL;
		}
		opts->reactor_mask = arg;
		return 0;
	case 'r':
		opts->rpc_addr = arg;
		return 0;
	case 's':
		if (app_parse_mem_size(arg, &opts->mem_size_mb) != 0) {
			fprintf(stderr, "-s: invalid memory size '%s' (MiB, or with M/G)\n", arg);
			return -EINVAL;
		}
		return 0;
	case APP_OPT_NO_HUGE:
		opts->no_huge = true;
		return 0;
	case APP_OPT_WAIT_FOR_RPC:
		opts->wait_for_rpc = true;
		return 0;
	case APP_OPT_BUSY_POLL:
		opts->mode = SL_REACTOR_BUSY_POLL;
		return 0;
	case APP_OPT_LOG_LEVEL:
		level = sl_log_level_from_str(arg);
		if (level < 0) {
			fprintf(stderr,
				"--log-level: unknown level '%s' "
				"(error, warning, notice, info, debug)\n",
				arg);
			return -EINVAL;
		}
		opts->log_level = arg;
		opts->log_level_set = true;
		sl_log_set_print_level((enum sl_log_level)level);
		return 0;
	case APP_OPT_MLOCKALL:
		opts->mlockall = true;
		return 0;
	case APP_OPT_PID_FILE:
		opts->pid_file = arg;
		return 0;
	case APP_OPT_IGNORE_INIT_ERRORS:
		opts->json_ignore_init_errors = true;
		return 0;
	default:
		return -ENOENT;
	}
}

static struct option *
app_merge_long_opts(const struct option *app_long_opts)
{
	size_t n = 0, base = SL_COUNTOF(g_app_long_opts);
	struct option *all;

	while (app_long_opts != NULL && app_long_opts[n].name != NULL) {
		n++;
	}
	all = calloc(base + n + 1, sizeof(*all));
	if (all == NULL) {
		return NULL;
	}
	memcpy(all, g_app_long_opts, sizeof(g_app_long_opts));
	if (n > 0) {
		memcpy(all + base, app_long_opts, n * sizeof(*all));
	}
	return all;
}

int
sl_app_parse_args(int argc, char **argv, struct sl_app_opts *opts, const char *app_getopt_str,
		  const struct option *app_long_opts, sl_app_parse_arg_fn parse_fn,
		  sl_app_usage_fn usage_fn)
{
	char optstr[128];
	struct option *longopts;
	int ch, rc = 0;

	snprintf(optstr, sizeof(optstr), "%s%s", APP_GETOPT_STR,
		 app_getopt_str != NULL ? app_getopt_str : "");
	longopts = app_merge_long_opts(app_long_opts);
	if (longopts == NULL) {
		return -ENOMEM;
	}
	/* 0, not 1: glibc then re-initialises its scanner, so parsing twice works. */
	optind = 0;
	while (rc == 0 && (ch = getopt_long(argc, argv, optstr, longopts, NULL)) != -1) {
		if (ch == 'h') {
			app_usage(argv[0], usage_fn);
			rc = 1;
		} else if (ch == APP_OPT_VERSION) {
			printf("%s\n", SL_VERSION_STRING);
			rc = 1;
		} else if (ch == '?' || ch == ':') {
			fprintf(stderr, "Try '%s --help' for more information.\n", argv[0]);
			rc = -EINVAL;
		} else {
			rc = app_parse_one(ch, optarg, opts);
			if (rc == -ENOENT) {
				rc = parse_fn != NULL ? parse_fn(ch, optarg) : -EINVAL;
			}
			if (rc == -EINVAL && (ch == 'i')) {
				fprintf(stderr, "-i: invalid shm id '%s'\n", optarg);
			}
		}
	}
	if (rc == 0 && optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", argv[0], argv[optind]);
		rc = -EINVAL;
	}
	free(longopts);
	return rc;
}
