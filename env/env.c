/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * Environment init/fini over DPDK's EAL.
 *
 * The EAL is told to keep its hands off PCI (--no-pci): Sluice enumerates functions
 * through sysfs and opens them with rte_vfio_setup_device() (DESIGN.md, "Memory and
 * devices"). Private processes run --in-memory, so two daemons on one host never share
 * (or clash over) hugepage files or runtime directories; processes with a shm id share
 * the file prefix "sluice<id>".
 */

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_log.h>

#include "sluice/env.h"
#include "sluice/log.h"
#include "sluice/util.h"
#include "env_internal.h"

#define ENV_MAX_ARGS 64
/*
 * A fixed base keeps DPDK's memory at the same address in every process of a shm
 * group, and above the ranges ASan reserves for its shadow memory.
 */
#define ENV_BASE_VIRTADDR "0x200000000000"

enum env_state {
	ENV_STATE_NONE = 0,
	ENV_STATE_UP,
	ENV_STATE_DOWN,
};

struct env_args {
	int argc;
	/* Handed to rte_eal_init(), which reorders it and overwrites entries (getopt). */
	char *argv[ENV_MAX_ARGS + 1];
	/* The same strings, for freeing. */
	char *owned[ENV_MAX_ARGS];
};

static enum env_state g_env_state;
static int g_env_shm_id = -1;
static bool g_env_hugepages;
static bool g_env_remove_files;
static char g_env_prefix[32];
/* Joined the secondaries of a primary that is gone (env_attaching). */
static bool g_env_adopting;
static char g_env_huge_dir[PATH_MAX];
/* rte_eal_init() may keep pointers into argv: the strings live until fini. */
static struct env_args g_env_args;
static char g_env_sysfs_root[PATH_MAX];
static FILE *g_env_log_stream;

const char *
env_sysfs_root(void)
{
	const char *root;

	if (g_env_sysfs_root[0] != '\0') {
		return g_env_sysfs_root;
	}
	/* secure_getenv: a setuid tool must not be pointed at a forged tree. */
	root = secure_getenv("SLUICE_SYSFS_ROOT");
	return (root != NULL && root[0] != '\0') ? root : "/sys";
}

void
env_set_sysfs_root(const char *root)
{
	if (root == NULL) {
		g_env_sysfs_root[0] = '\0';
		return;
	}
	snprintf(g_env_sysfs_root, sizeof(g_env_sysfs_root), "%s", root);
}

bool
env_eal_is_up(void)
{
	return g_env_state == ENV_STATE_UP;
}

void
sl_env_opts_init(struct sl_env_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->name = "sluice";
	opts->shm_id = -1;
	opts->proc_type = SL_PROC_AUTO;
	opts->iova_mode = SL_IOVA_DEFAULT;
	opts->no_shconf = true;
}

static int
env_read_u64(const char *path, uint64_t *value)
{
	char buf[32];
	char *end;
	FILE *f;

	f = fopen(path, "re");
	if (f == NULL) {
		return -errno;
	}
	if (fgets(buf, sizeof(buf), f) == NULL) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	errno = 0;
	*value = strtoull(buf, &end, 10);
	if (errno != 0 || end == buf) {
		return -EINVAL;
	}
	return 0;
}

uint64_t
env_hugepages_free_bytes(void)
{
	char dir[PATH_MAX], path[PATH_MAX + 300];
	struct dirent *de;
	uint64_t total = 0, nfree = 0, kb;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/kernel/mm/hugepages", env_sysfs_root());
	d = opendir(dir);
	if (d == NULL) {
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		if (sscanf(de->d_name, "hugepages-%" SCNu64 "kB", &kb) != 1) {
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s/free_hugepages", dir, de->d_name);
		if (env_read_u64(path, &nfree) == 0) {
			total += nfree * kb * 1024;
		}
	}
	closedir(d);
	return total;
}

static bool
env_hugetlbfs_mounted(void)
{
	char line[1024];
	bool found = false;
	FILE *f;

	f = fopen("/proc/mounts", "re");
	if (f == NULL) {
		return false;
	}
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		found = strstr(line, " hugetlbfs ") != NULL;
	}
	fclose(f);
	return found;
}

/* DPDK's runtime directory (eal_create_runtime_dir() in DPDK 22.11). */
static void
env_runtime_dir(char *buf, size_t len, const char *prefix)
{
	const char *base = "/var/run";

	if (getuid() != 0) {
		base = secure_getenv("XDG_RUNTIME_DIR");
		if (base == NULL) {
			base = "/tmp";
		}
	}
	snprintf(buf, len, "%s/dpdk/%s", base, prefix);
}

enum env_primary_state {
	ENV_PRIMARY_NONE, /* no config file: no primary ever ran with this prefix */
	ENV_PRIMARY_ALIVE,
	ENV_PRIMARY_GONE, /* config left by a primary that exited or died */
};

static enum env_primary_state
env_primary_state(const char *prefix)
{
	char dir[PATH_MAX], path[PATH_MAX + 16];

	env_runtime_dir(dir, sizeof(dir), prefix);
	snprintf(path, sizeof(path), "%s/config", dir);
	if (access(path, F_OK) != 0) {
		return ENV_PRIMARY_NONE;
	}
	/* The primary holds a write lock on its config file while it lives. */
	return rte_eal_primary_proc_alive(path) != 0 ? ENV_PRIMARY_ALIVE : ENV_PRIMARY_GONE;
}

/*
 * The secondaries of a group that are still running: DPDK 22.11 names each one's
 * message socket "mp_socket_<pid>_<tsc>" in the runtime dir. \return how many live
 * ones were found; their pids (up to max) in pids.
 */
static int
env_live_secondaries(const char *prefix, int *pids, int max)
{
	char dir[PATH_MAX];
	struct dirent *de;
	int n = 0, pid;
	DIR *d;

	env_runtime_dir(dir, sizeof(dir), prefix);
	d = opendir(dir);
	if (d == NULL) {
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		if (sscanf(de->d_name, "mp_socket_%d_", &pid) != 1 || pid <= 0) {
			continue;
		}
		if (pid == getpid() || sl_env_proc_start_time(pid) == 0) {
			continue;
		}
		if (n < max) {
			pids[n] = pid;
		}
		n++;
	}
	closedir(d);
	return n;
}

/* \return whether this process will map an existing primary's memory, or -ENODEV. */
static int
env_attaching(const struct sl_env_opts *opts)
{
	enum env_primary_state state;
	int pids[8], n, i;
	char list[96] = "";
	size_t off = 0;

	if (opts->shm_id < 0 || opts->proc_type == SL_PROC_PRIMARY) {
		return 0;
	}
	state = env_primary_state(g_env_prefix);
	if (opts->proc_type == SL_PROC_AUTO && state == ENV_PRIMARY_GONE) {
		/*
		 * The primary died but its secondaries run on in its memory: a new primary
		 * would re-create (and break) the memory they use. Join them instead: the
		 * memory, the shared devices and their state are all still there.
		 */
		n = env_live_secondaries(g_env_prefix, pids, (int)SL_COUNTOF(pids));
		if (n > 0) {
			for (i = 0; i < n && i < (int)SL_COUNTOF(pids) && off < sizeof(list) - 12;
			     i++) {
				off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%d",
							i ? ", " : "", pids[i]);
			}
			SL_WARNLOG("the primary process of shm id %d is gone but %d of its "
				   "secondaries run on (pid %s%s): joining their memory as a "
				   "secondary",
				   opts->shm_id, n, list, n > (int)SL_COUNTOF(pids) ? ", ..." : "");
			g_env_adopting = true;
			return 1;
		}
	}
	if (opts->proc_type == SL_PROC_AUTO) {
		/* DPDK's auto detection takes the same lock: no live primary, we are it. */
		return state == ENV_PRIMARY_ALIVE;
	}
	if (state == ENV_PRIMARY_NONE) {
		SL_ERRLOG("no primary process with shm id %d is running", opts->shm_id);
		return -ENODEV;
	}
	if (state == ENV_PRIMARY_GONE) {
		SL_WARNLOG("the primary process of shm id %d is gone: attaching to its memory",
			   opts->shm_id);
	}
	return 1;
}

static int
env_opts_check(const struct sl_env_opts *opts)
{
	if (opts->shm_id < -1) {
		SL_ERRLOG("invalid shm id %d: use -1 (private) or a value >= 0", opts->shm_id);
		return -EINVAL;
	}
	if (opts->proc_type > SL_PROC_SECONDARY || opts->proc_type < SL_PROC_AUTO) {
		SL_ERRLOG("invalid process type %d", (int)opts->proc_type);
		return -EINVAL;
	}
	if (opts->iova_mode > SL_IOVA_PA || opts->iova_mode < SL_IOVA_DEFAULT) {
		SL_ERRLOG("invalid IOVA mode %d", (int)opts->iova_mode);
		return -EINVAL;
	}
	if (opts->shm_id < 0 && opts->proc_type == SL_PROC_SECONDARY) {
		SL_ERRLOG("a secondary process needs a shm id (the primary's)");
		return -EINVAL;
	}
	if (opts->core_mask != NULL && opts->core_mask[0] == '\0') {
		SL_ERRLOG("empty core mask");
		return -EINVAL;
	}
	if (opts->no_huge && opts->shm_id >= 0) {
		SL_WARNLOG(
			"--no-huge memory is private: processes with shm id %d will not share it",
			opts->shm_id);
	}
	return 0;
}

/* Fail early with the fix named: rte_eal_init() fails obscurely and cannot be retried. */
static int
env_check_hugepages(const struct sl_env_opts *opts, bool attaching)
{
	uint64_t nfree;

	if (opts->no_huge || attaching) {
		/* A secondary maps the primary's pages; it needs none free. */
		return 0;
	}
	nfree = env_hugepages_free_bytes();
	if (nfree == 0) {
		SL_ERRLOG("no free hugepages: %s", ENV_HUGEPAGE_FIX);
		return -ENOMEM;
	}
	if (opts->mem_size_mb != 0 && nfree < (uint64_t)opts->mem_size_mb << 20) {
		SL_ERRLOG("%" PRIu32 " MiB requested but only %" PRIu64
			  " MiB of hugepages are free: %s (HUGEMEM=<MiB>)",
			  opts->mem_size_mb, nfree >> 20, ENV_HUGEPAGE_FIX);
		return -ENOMEM;
	}
	if (opts->shm_id >= 0 && opts->huge_dir == NULL && !env_hugetlbfs_mounted()) {
		SL_ERRLOG("shared memory needs a mounted hugetlbfs and none is mounted: %s",
			  ENV_HUGEPAGE_FIX);
		return -ENOMEM;
	}
	return 0;
}

static int __attribute__((format(printf, 2, 3)))
env_args_add(struct env_args *args, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int rc;

	if (args->argc >= ENV_MAX_ARGS) {
		SL_ERRLOG("too many EAL arguments (at most %d)", ENV_MAX_ARGS);
		return -E2BIG;
	}
	va_start(ap, fmt);
	rc = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (rc < 0) {
		return -ENOMEM;
	}
	args->owned[args->argc] = s;
	args->argv[args->argc++] = s;
	args->argv[args->argc] = NULL;
	return 0;
}

static void
env_args_free(struct env_args *args)
{
	int i;

	for (i = 0; i < args->argc; i++) {
		free(args->owned[i]);
		args->owned[i] = NULL;
		args->argv[i] = NULL;
	}
	args->argc = 0;
}

static void
env_args_log(const struct env_args *args, enum sl_log_level level)
{
	char line[1024];
	size_t used = 0;
	int i, n;

	for (i = 0; i < args->argc && used < sizeof(line); i++) {
		n = snprintf(line + used, sizeof(line) - used, " %s", args->owned[i]);
		used += n > 0 ? (size_t)n : 0;
	}
	sl_log(level, __FILE__, __LINE__, __func__, "EAL arguments:%s", line);
}

static const char *
env_eal_log_level(void)
{
	switch (sl_log_get_print_level()) {
	case SL_LOG_DEBUG:
		return "debug";
	case SL_LOG_INFO:
		return "info";
	case SL_LOG_NOTICE:
		return "notice";
	case SL_LOG_WARN:
		return "warning";
	default:
		return "error";
	}
}

static int
env_args_add_cores(struct env_args *args, const char *core_mask)
{
	cpu_set_t set;
	int cpu;

	if (core_mask != NULL) {
		return env_args_add(args, "-c%s", core_mask);
	}
	/* The first CPU the caller may run on: deterministic, unlike sched_getcpu(). */
	if (sched_getaffinity(0, sizeof(set), &set) != 0) {
		return env_args_add(args, "-l0");
	}
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (CPU_ISSET(cpu, &set)) {
			break;
		}
	}
	return env_args_add(args, "-l%d", cpu == CPU_SETSIZE ? 0 : cpu);
}

static int
env_args_add_extra(struct env_args *args, const char *extra)
{
	char *copy, *tok, *save = NULL;
	int rc = 0;

	if (extra == NULL) {
		return 0;
	}
	copy = strdup(extra);
	if (copy == NULL) {
		return -ENOMEM;
	}
	for (tok = strtok_r(copy, " \t", &save); tok != NULL && rc == 0;
	     tok = strtok_r(NULL, " \t", &save)) {
		rc = env_args_add(args, "%s", tok);
	}
	free(copy);
	return rc;
}

static const char *
env_proc_type_arg(const struct sl_env_opts *opts)
{
	if (opts->shm_id < 0 || opts->proc_type == SL_PROC_PRIMARY) {
		return "primary";
	}
	if (g_env_adopting) {
		return "secondary";
	}
	return opts->proc_type == SL_PROC_SECONDARY ? "secondary" : "auto";
}

static int
env_args_build(struct env_args *args, const struct sl_env_opts *opts)
{
	int rc;

	rc = env_args_add(args, "%s", opts->name != NULL ? opts->name : "sluice");
	rc = rc ?: env_args_add_cores(args, opts->core_mask);
	rc = rc ?: env_args_add(args, "--no-pci");
	rc = rc ?: env_args_add(args, "--no-telemetry");
	rc = rc ?: env_args_add(args, "--log-level=%s", env_eal_log_level());
	rc = rc ?: env_args_add(args, "--base-virtaddr=%s", ENV_BASE_VIRTADDR);
	rc = rc ?: env_args_add(args, "--proc-type=%s", env_proc_type_arg(opts));
	rc = rc ?: env_args_add(args, "--file-prefix=%s", g_env_prefix);
	if (opts->shm_id < 0) {
		/* --in-memory implies --no-shconf but the EAL refuses it with --no-huge. */
		rc = rc ?: env_args_add(args, opts->no_huge ? "--no-shconf" : "--in-memory");
	}
	if (opts->mem_size_mb != 0) {
		rc = rc ?: env_args_add(args, "-m%" PRIu32, opts->mem_size_mb);
	}
	if (opts->no_huge) {
		rc = rc ?: env_args_add(args, "--no-huge");
	}
	if (opts->iova_mode != SL_IOVA_DEFAULT) {
		rc = rc
			     ?: env_args_add(args, "--iova-mode=%s",
					     opts->iova_mode == SL_IOVA_VA ? "va" : "pa");
	}
	if (opts->huge_dir != NULL) {
		rc = rc ?: env_args_add(args, "--huge-dir=%s", opts->huge_dir);
	}
	return rc ?: env_args_add_extra(args, opts->eal_args);
}

/*
 * EAL messages that are normal for Sluice's set-up (several hugepage sizes, only one
 * reserved; --in-memory needing no mount) and would alarm users at the default level.
 */
static const char *const g_env_log_demoted[] = {
	"hugepages reported on node",
	"but no mounted hugetlbfs found for that size",
};

/* What the EAL says when a secondary joins a group whose primary is gone (expected:
 * env_attaching explained it once, in its own words). */
static const char *const g_env_log_demoted_adopting[] = {
	"mp_socket) due to Connection refused", "Fail to send request",
	"Failed to request vdev from primary",  "Cannot request default VFIO container fd",
	"Cannot request VFIO container fd",     "VFIO support could not be initialized",
};

static bool
env_log_matches(const char *msg, size_t len, const char *const *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (memmem(msg, len, list[i], strlen(list[i])) != NULL) {
			return true;
		}
	}
	return false;
}

static enum sl_log_level
env_log_level(int rte_level, const char *msg, size_t len)
{
	if (env_log_matches(msg, len, g_env_log_demoted, SL_COUNTOF(g_env_log_demoted)) ||
	    (g_env_adopting && env_log_matches(msg, len, g_env_log_demoted_adopting,
					       SL_COUNTOF(g_env_log_demoted_adopting)))) {
		return SL_LOG_INFO;
	}
	if (rte_level <= (int)RTE_LOG_ERR) {
		return SL_LOG_ERROR;
	}
	if (rte_level == (int)RTE_LOG_WARNING) {
		return SL_LOG_WARN;
	}
	if (rte_level == (int)RTE_LOG_NOTICE) {
		return SL_LOG_NOTICE;
	}
	return rte_level == (int)RTE_LOG_INFO ? SL_LOG_INFO : SL_LOG_DEBUG;
}

/* DPDK writes each message with one vfprintf + fflush: one call here is one line. */
static ssize_t
env_log_write(void *cookie, const char *buf, size_t size)
{
	size_t len = size;

	while (len > 0 && buf[len - 1] == '\n') {
		len--;
	}
	if (len > 0) {
		sl_log(env_log_level(rte_log_cur_msg_loglevel(), buf, len), "dpdk", 0, "eal",
		       "%.*s", (int)len, buf);
	}
	return (ssize_t)size;
}

/* Route DPDK's log into Sluice's (stderr or the capture hook), not stdout + syslog. */
static void
env_log_stream_open(void)
{
	cookie_io_functions_t io = {.write = env_log_write};

	if (g_env_log_stream == NULL) {
		g_env_log_stream = fopencookie(NULL, "w", io);
		if (g_env_log_stream == NULL) {
			return;
		}
	}
	rte_openlog_stream(g_env_log_stream);
}

static void
env_unlink_prefixed(const char *dir, const char *prefix, bool all)
{
	size_t plen = strlen(prefix);
	char path[PATH_MAX + 300];
	struct dirent *de;
	DIR *d;

	d = opendir(dir);
	if (d == NULL) {
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || (!all && strncmp(de->d_name, prefix, plen) != 0)) {
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
}

static void
env_remove_runtime_dir(void)
{
	char dir[PATH_MAX];

	env_runtime_dir(dir, sizeof(dir), g_env_prefix);
	env_unlink_prefixed(dir, "", true);
	rmdir(dir);
}

/*
 * Remove the primary's hugepage files ("<prefix>map_<n>", DPDK 22.11's naming) and
 * runtime directory. Processes still mapping them keep their mappings; new ones can no
 * longer attach, which is right once the primary is gone.
 */
static void
env_remove_files(void)
{
	char line[1024], dir[PATH_MAX], prefix[64];
	FILE *f;

	snprintf(prefix, sizeof(prefix), "%smap_", g_env_prefix);
	if (g_env_huge_dir[0] != '\0') {
		env_unlink_prefixed(g_env_huge_dir, prefix, false);
	} else if ((f = fopen("/proc/mounts", "re")) != NULL) {
		while (fgets(line, sizeof(line), f) != NULL) {
			if (sscanf(line, "%*s %4095s hugetlbfs", dir) == 1 &&
			    strstr(line, " hugetlbfs ") != NULL) {
				env_unlink_prefixed(dir, prefix, false);
			}
		}
		fclose(f);
	}
	env_remove_runtime_dir();
}

static int
env_eal_start(const struct sl_env_opts *opts)
{
	int rc;

	rc = env_args_build(&g_env_args, opts);
	if (rc != 0) {
		env_args_free(&g_env_args);
		return rc;
	}
	env_log_stream_open();
	env_args_log(&g_env_args, SL_LOG_INFO);
	if (rte_eal_init(g_env_args.argc, g_env_args.argv) >= 0) {
		return 0;
	}
	rc = rte_errno != 0 ? rte_errno : EIO;
	if (rc == EALREADY) {
		SL_ERRLOG("DPDK's EAL was already initialised in this process (outside Sluice, "
			  "or an earlier attempt failed half-way): it cannot be initialised again");
	} else if (!opts->no_huge && (rc == ENOMEM || rc == EACCES)) {
		SL_ERRLOG("EAL init failed (%s): hugepages unusable: %s", rte_strerror(rc),
			  ENV_HUGEPAGE_FIX);
	} else {
		SL_ERRLOG("EAL init failed: %s", rte_strerror(rc));
	}
	env_args_log(&g_env_args, SL_LOG_ERROR);
	env_args_free(&g_env_args);
	return -rc;
}

int
sl_env_init(const struct sl_env_opts *opts)
{
	struct sl_env_opts defaults;
	int rc;

	if (g_env_state == ENV_STATE_UP) {
		SL_ERRLOG("the environment is already initialised");
		return -EALREADY;
	}
	if (g_env_state == ENV_STATE_DOWN) {
		SL_ERRLOG("the environment cannot be initialised again after sl_env_fini(): "
			  "DPDK's EAL initialises once per process");
		return -EALREADY;
	}
	if (opts == NULL) {
		sl_env_opts_init(&defaults);
		opts = &defaults;
	}
	rc = env_opts_check(opts);
	if (rc != 0) {
		return rc;
	}
	if (opts->shm_id >= 0) {
		snprintf(g_env_prefix, sizeof(g_env_prefix), "sluice%d", opts->shm_id);
	} else {
		/* Private: nothing is shared, and the EAL's (empty) runtime dir is per pid. */
		snprintf(g_env_prefix, sizeof(g_env_prefix), "sluice_pid%d", (int)getpid());
	}
	rc = env_attaching(opts);
	if (rc < 0) {
		return rc;
	}
	rc = env_check_hugepages(opts, rc == 1);
	if (rc != 0) {
		return rc;
	}
	rc = env_eal_start(opts);
	if (rc != 0) {
		if (opts->shm_id < 0) {
			env_remove_runtime_dir();
		}
		return rc;
	}
	g_env_state = ENV_STATE_UP;
	g_env_shm_id = opts->shm_id;
	g_env_hugepages = !opts->no_huge;
	g_env_remove_files = opts->shm_id >= 0 && !opts->no_shconf && !opts->no_huge;
	snprintf(g_env_huge_dir, sizeof(g_env_huge_dir), "%s",
		 opts->huge_dir != NULL ? opts->huge_dir : "");
	env_mem_eal_up();
	return 0;
}

void
sl_env_fini(void)
{
	bool primary;

	if (g_env_state != ENV_STATE_UP) {
		return;
	}
	primary = rte_eal_process_type() == RTE_PROC_PRIMARY;
	env_mem_eal_down();
	rte_eal_cleanup();
	g_env_state = ENV_STATE_DOWN;
	if (g_env_remove_files && primary) {
		env_remove_files();
	} else if (g_env_shm_id < 0) {
		env_remove_runtime_dir();
	}
	env_args_free(&g_env_args);
	g_env_shm_id = -1;
}

bool
sl_env_is_initialized(void)
{
	return g_env_state == ENV_STATE_UP;
}

bool
sl_env_has_hugepages(void)
{
	return g_env_state == ENV_STATE_UP && g_env_hugepages;
}

bool
sl_env_is_primary(void)
{
	if (g_env_state != ENV_STATE_UP) {
		return true;
	}
	return rte_eal_process_type() == RTE_PROC_PRIMARY;
}

int
sl_env_shm_id(void)
{
	return g_env_shm_id;
}
