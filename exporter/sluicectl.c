/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * sluicectl: the command-line JSON-RPC client of sluiced.
 *
 *   sluicectl [-s socket] [-t secs] [--json] <method> [--param value ...] [positional ...]
 *   sluicectl [-s socket] -r '{"method": ...}'      (raw request; "-r -" reads stdin)
 *
 * Any method is sent: "--some-param value" becomes "some_param": value, typed by the
 * table of known methods below or, for others, inferred (integers, true/false, null,
 * JSON objects and arrays; "@<json>" forces a JSON literal, e.g. --name=@'"123"').
 * Known methods also take rpc.py's positional shorthands and print tables.
 *
 * Exit codes: 0 ok, 1 the RPC answered an error, 2 usage, 3 connection or protocol.
 */

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#define CTL_DEFAULT_SOCKET "/var/tmp/sluice.sock"
#define CTL_VERSION        "sluicectl (Sluice v0.1.0)"

enum ctl_exit {
	CTL_EXIT_OK = 0,
	CTL_EXIT_RPC = 1,
	CTL_EXIT_USAGE = 2,
	CTL_EXIT_CONN = 3,
};

enum ctl_type {
	CTL_STR,
	CTL_INT,
	CTL_BOOL,
	CTL_FLAG, /* boolean that needs no value: --current */
	CTL_JSON,
	CTL_NUM, /* a number that may have a fraction (rpc.py's total_size in MiB) */
};

struct ctl_param {
	const char *name; /* JSON key; "--name-with-dashes" on the command line */
	enum ctl_type type;
	char short_opt;
	bool required;
	const char *help;
};

struct ctl_method;
typedef void (*ctl_print_fn)(const json_t *result);
/* Turn shorthand parameters (total_size) into wire ones; return a usage message or NULL. */
typedef const char *(*ctl_fixup_fn)(json_t *params);

struct ctl_method {
	const char *name;
	const char *summary;
	const struct ctl_param *params;
	const char *const *positional; /* names, in order; NULL-terminated */
	ctl_fixup_fn fixup;
	ctl_print_fn print;
};

struct ctl_opts {
	const char *socket;
	double timeout_s;
	bool json_out;
	bool verbose;
	const char *raw;
};

static void __attribute__((format(printf, 1, 2), noreturn)) ctl_usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "sluicectl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'sluicectl --help'.\n");
	exit(CTL_EXIT_USAGE);
}

/* ---- Output ---------------------------------------------------------------------- */

static void
ctl_print_json(const json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);

	if (s != NULL) {
		printf("%s\n", s);
		free(s);
	}
}

struct ctl_column {
	const char *header;
	const char *key; /* a key of each row, or "a.b" one level down */
};

static const json_t *
ctl_lookup(const json_t *row, const char *key)
{
	char first[64];
	const char *dot = strchr(key, '.');

	if (dot == NULL || (size_t)(dot - key) >= sizeof(first)) {
		return json_object_get(row, key);
	}
	memcpy(first, key, (size_t)(dot - key));
	first[dot - key] = '\0';
	return json_object_get(json_object_get(row, first), dot + 1);
}

static void
ctl_cell(const json_t *v, char *buf, size_t len)
{
	char *s;

	if (v == NULL || json_is_null(v)) {
		snprintf(buf, len, "-");
	} else if (json_is_string(v)) {
		snprintf(buf, len, "%s", json_string_value(v));
	} else {
		s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		snprintf(buf, len, "%s", s != NULL ? s : "?");
		free(s);
	}
}

static void
ctl_print_table(const json_t *rows, const struct ctl_column *cols, size_t ncols)
{
	size_t widths[16] = {0}, i, c;
	const json_t *row;
	char cell[256];

	if (!json_is_array(rows) || ncols > 16) {
		ctl_print_json(rows);
		return;
	}
	for (c = 0; c < ncols; c++) {
		widths[c] = strlen(cols[c].header);
	}
	json_array_foreach (rows, i, row) {
		for (c = 0; c < ncols; c++) {
			ctl_cell(ctl_lookup(row, cols[c].key), cell, sizeof(cell));
			if (strlen(cell) > widths[c]) {
				widths[c] = strlen(cell);
			}
		}
	}
	for (c = 0; c < ncols; c++) {
		printf("%-*s%s", (int)widths[c], cols[c].header, c + 1 < ncols ? "  " : "\n");
	}
	json_array_foreach (rows, i, row) {
		for (c = 0; c < ncols; c++) {
			ctl_cell(ctl_lookup(row, cols[c].key), cell, sizeof(cell));
			printf("%-*s%s", (int)widths[c], cell, c + 1 < ncols ? "  " : "\n");
		}
	}
}

static void
ctl_print_bdevs(const json_t *result)
{
	static const struct ctl_column cols[] = {
		{"NAME", "name"},
		{"PRODUCT", "product_name"},
		{"BLOCK_SIZE", "block_size"},
		{"NUM_BLOCKS", "num_blocks"},
		{"SIZE_MIB", "size_mib"},
		{"CLAIMED", "claimed"},
		{"UUID", "uuid"},
	};
	json_t *rows = json_deep_copy(result), *row;
	size_t i;

	/* A derived column: the size people think in. */
	json_array_foreach (rows, i, row) {
		double mib = (double)json_integer_value(json_object_get(row, "block_size")) *
			     (double)json_integer_value(json_object_get(row, "num_blocks")) /
			     (1024.0 * 1024.0);
		char buf[32];

		snprintf(buf, sizeof(buf), "%.1f", mib);
		json_object_set_new(row, "size_mib", json_string(buf));
	}
	ctl_print_table(rows, cols, sizeof(cols) / sizeof(cols[0]));
	json_decref(rows);
}

static void
ctl_print_iostat(const json_t *result)
{
	static const struct ctl_column cols[] = {
		{"NAME", "name"},
		{"READ_OPS", "num_read_ops"},
		{"READ_BYTES", "bytes_read"},
		{"WRITE_OPS", "num_write_ops"},
		{"WRITE_BYTES", "bytes_written"},
		{"UNMAP_OPS", "num_unmap_ops"},
	};
	const json_t *bdevs = json_object_get(result, "bdevs");

	ctl_print_table(bdevs != NULL ? bdevs : result, cols, sizeof(cols) / sizeof(cols[0]));
}

static double
ctl_percent(const json_t *row)
{
	double busy = (double)json_integer_value(json_object_get(row, "busy"));
	double idle = (double)json_integer_value(json_object_get(row, "idle"));

	return busy + idle > 0 ? 100.0 * busy / (busy + idle) : 0.0;
}

static void
ctl_print_reactors(const json_t *result)
{
	static const struct ctl_column cols[] = {
		{"LCORE", "lcore"},   {"BUSY%", "busy_pct"}, {"SLEEPING", "in_interrupt"},
		{"SLEEPS", "sleeps"}, {"HOT", "is_hot"},     {"THREADS", "names"},
	};
	json_t *rows = json_deep_copy(json_object_get(result, "reactors")), *row, *t;
	char buf[256], pct[16];
	size_t i, j, off;

	json_array_foreach (rows, i, row) {
		off = 0;
		buf[0] = '\0';
		json_array_foreach (json_object_get(row, "lw_threads"), j, t) {
			off += (size_t)snprintf(
				buf + off, off < sizeof(buf) ? sizeof(buf) - off : 0, "%s%s",
				j ? "," : "", json_string_value(json_object_get(t, "name")));
			if (off >= sizeof(buf)) {
				break;
			}
		}
		snprintf(pct, sizeof(pct), "%.1f", ctl_percent(row));
		json_object_set_new(row, "busy_pct", json_string(pct));
		json_object_set_new(row, "names", json_string(buf));
	}
	printf("mode: %s, tick rate: %lld Hz\n",
	       json_string_value(json_object_get(result, "mode")) ?: "?",
	       (long long)json_integer_value(json_object_get(result, "tick_rate")));
	ctl_print_table(rows, cols, sizeof(cols) / sizeof(cols[0]));
	json_decref(rows);
}

static void
ctl_print_threads(const json_t *result)
{
	static const struct ctl_column cols[] = {
		{"NAME", "name"},      {"ID", "id"},     {"CPUMASK", "cpumask"}, {"LCORE", "lcore"},
		{"BUSY%", "busy_pct"}, {"BUSY", "busy"}, {"IDLE", "idle"},
	};
	json_t *rows = json_deep_copy(json_object_get(result, "threads")), *row;
	char pct[16];
	size_t i;

	json_array_foreach (rows, i, row) {
		snprintf(pct, sizeof(pct), "%.1f", ctl_percent(row));
		json_object_set_new(row, "busy_pct", json_string(pct));
	}
	ctl_print_table(rows, cols, sizeof(cols) / sizeof(cols[0]));
	json_decref(rows);
}

/* "1,2,3" from [1,2,3]; "-" when empty. */
static json_t *
ctl_join_ints(const json_t *array)
{
	char buf[256];
	size_t i, off = 0;
	const json_t *v;

	buf[0] = '\0';
	json_array_foreach (array, i, v) {
		off += (size_t)snprintf(buf + off, off < sizeof(buf) ? sizeof(buf) - off : 0,
					"%s%lld", i ? "," : "", (long long)json_integer_value(v));
		if (off >= sizeof(buf)) {
			break;
		}
	}
	return json_string(buf[0] != '\0' ? buf : "-");
}

/* One row per controller path, then one per process in its ledger. */
static void
ctl_print_nvme_ctrlrs(const json_t *result)
{
	static const struct ctl_column cols[] = {
		{"NAME", "name"},     {"TRADDR", "traddr"},      {"STATE", "state"},
		{"CNTLID", "cntlid"}, {"RESETS", "reset_count"}, {"QUEUES", "queues"},
		{"PROCS", "procs"},   {"REAPED", "reaped"},      {"LOCK_RECOVERIES", "lock_rec"},
	};
	static const struct ctl_column pcols[] = {
		{"NAME", "name"},     {"PID", "pid"},   {"START_TIME", "start_time"},
		{"ROLE", "role"},     {"REFS", "refs"}, {"ADMIN_OUTSTANDING", "admin_outstanding"},
		{"QIDS", "qids_str"},
	};
	json_t *rows = json_array(), *prows = json_array(), *row, *p;
	const json_t *c, *path, *ledger, *proc;
	char buf[64];
	size_t i, j, k;

	json_array_foreach (result, i, c) {
		json_array_foreach (json_object_get(c, "ctrlrs"), j, path) {
			ledger = json_object_get(path, "ledger");
			row = json_pack("{s:O, s:O, s:O, s:O, s:O}", "name",
					json_object_get(c, "name"), "traddr",
					json_object_get(json_object_get(path, "trid"), "traddr"),
					"state", json_object_get(path, "state"), "cntlid",
					json_object_get(path, "cntlid"), "reset_count",
					json_object_get(path, "reset_count"));
			if (row == NULL) {
				continue;
			}
			if (ledger != NULL) {
				snprintf(buf, sizeof(buf), "%lld/%lld",
					 (long long)json_integer_value(
						 json_object_get(ledger, "queues_in_use")),
					 (long long)json_integer_value(
						 json_object_get(ledger, "queues_total")));
				json_object_set_new(row, "queues", json_string(buf));
				json_object_set_new(row, "procs",
						    json_integer((json_int_t)json_array_size(
							    json_object_get(ledger, "processes"))));
				json_object_set(row, "reaped", json_object_get(ledger, "reaped"));
				json_object_set(row, "lock_rec",
						json_object_get(ledger, "lock_recoveries"));
			}
			json_array_append_new(rows, row);
			json_array_foreach (json_object_get(ledger, "processes"), k, proc) {
				p = json_deep_copy(proc);
				snprintf(buf, sizeof(buf), "%s%s",
					 json_is_true(json_object_get(proc, "primary"))
						 ? "primary"
						 : "secondary",
					 json_is_true(json_object_get(proc, "self")) ? ",self"
										     : "");
				json_object_set(p, "name", json_object_get(c, "name"));
				json_object_set_new(p, "role", json_string(buf));
				json_object_set_new(p, "qids_str",
						    ctl_join_ints(json_object_get(proc, "qids")));
				json_array_append_new(prows, p);
			}
		}
	}
	ctl_print_table(rows, cols, sizeof(cols) / sizeof(cols[0]));
	if (json_array_size(prows) != 0) {
		printf("\n");
		ctl_print_table(prows, pcols, sizeof(pcols) / sizeof(pcols[0]));
	}
	json_decref(rows);
	json_decref(prows);
}

static void
ctl_print_lines(const json_t *result)
{
	const json_t *v;
	size_t i;

	json_array_foreach (result, i, v) {
		printf("%s\n", json_string_value(v) ?: "?");
	}
}

static void
ctl_print_subsystems(const json_t *result)
{
	const json_t *row, *dep;
	size_t i, j;

	printf("%-16s  %s\n", "SUBSYSTEM", "DEPENDS_ON");
	json_array_foreach (result, i, row) {
		printf("%-16s  ", json_string_value(json_object_get(row, "subsystem")) ?: "?");
		json_array_foreach (json_object_get(row, "depends_on"), j, dep) {
			printf("%s%s", j ? "," : "", json_string_value(dep));
		}
		printf("%s\n", json_array_size(json_object_get(row, "depends_on")) ? "" : "-");
	}
}

static void
ctl_print_flags(const json_t *result)
{
	const char *key;
	const json_t *v;

	printf("%-20s  %s\n", "FLAG", "ENABLED");
	json_object_foreach ((json_t *)(uintptr_t)result, key, v) {
		printf("%-20s  %s\n", key, json_is_true(v) ? "yes" : "no");
	}
}

static void
ctl_print_version(const json_t *result)
{
	printf("%s\n", json_string_value(json_object_get(result, "version")) ?: "?");
}

static void
ctl_print_default(const json_t *result)
{
	if (json_is_true(result)) {
		return; /* success says it all, as with rpc.py */
	}
	if (json_is_string(result)) {
		printf("%s\n", json_string_value(result));
		return;
	}
	ctl_print_json(result);
}

/* ---- Known methods ------------------------------------------------------------- */

static const char *
ctl_fixup_total_size(json_t *params)
{
	json_t *total = json_object_get(params, "total_size");
	json_t *bs = json_object_get(params, "block_size");
	double bytes;

	if (total == NULL) {
		return NULL;
	}
	if (!json_is_integer(bs) || json_integer_value(bs) <= 0) {
		return "total_size needs a positive block_size";
	}
	/* rpc.py: total_size is in MiB; num_blocks = total_size MiB / block_size. */
	bytes = json_number_value(total) * 1024.0 * 1024.0;
	if (bytes < 0) {
		return "total_size must not be negative";
	}
	json_object_set_new(params, "num_blocks",
			    json_integer((json_int_t)(bytes / (double)json_integer_value(bs))));
	json_object_del(params, "total_size");
	return NULL;
}

static const struct ctl_param g_p_none[] = {{0}};
static const struct ctl_param g_p_get_methods[] = {
	{"current", CTL_FLAG, 0, false, "only methods callable in the current state"},
	{"include_aliases", CTL_FLAG, 0, false, "list deprecated aliases too"},
	{0},
};
static const struct ctl_param g_p_name_opt[] = {
	{"name", CTL_STR, 'b', false, "bdev name (all when omitted)"},
	{0},
};
static const struct ctl_param g_p_name_req[] = {
	{"name", CTL_STR, 'b', true, "bdev name"},
	{0},
};
static const struct ctl_param g_p_nvme_name_opt[] = {
	{"name", CTL_STR, 'n', false, "controller name (all when omitted)"},
	{0},
};
static const struct ctl_param g_p_subsys_name[] = {
	{"name", CTL_STR, 0, true, "subsystem name"},
	{0},
};
static const struct ctl_param g_p_level[] = {
	{"level", CTL_STR, 0, true, "ERROR, WARNING, NOTICE, INFO or DEBUG"},
	{0},
};
static const struct ctl_param g_p_flag[] = {
	{"flag", CTL_STR, 0, true, "log flag name (see log_get_flags), or \"all\""},
	{0},
};
static const struct ctl_param g_p_kill[] = {
	{"sig_name", CTL_STR, 0, true, "SIGINT, SIGTERM, SIGQUIT, SIGHUP or SIGKILL"},
	{0},
};
static const struct ctl_param g_p_malloc_create[] = {
	{"name", CTL_STR, 'b', false, "bdev name (default: generated)"},
	{"uuid", CTL_STR, 'u', false, "bdev UUID"},
	{"total_size", CTL_NUM, 0, false, "size in MiB (positional, as rpc.py)"},
	{"block_size", CTL_INT, 0, true, "block size in bytes"},
	{"num_blocks", CTL_INT, 0, false, "size in blocks (instead of total_size)"},
	{0},
};
static const struct ctl_param g_p_null_create[] = {
	{"name", CTL_STR, 'b', true, "bdev name"},
	{"total_size", CTL_NUM, 0, false, "size in MiB (positional, as rpc.py)"},
	{"block_size", CTL_INT, 0, true, "block size in bytes"},
	{"num_blocks", CTL_INT, 0, false, "size in blocks (instead of total_size)"},
	{"uuid", CTL_STR, 'u', false, "bdev UUID"},
	{0},
};
static const struct ctl_param g_p_file_create[] = {
	{"filename", CTL_STR, 0, true, "path of the file or block device"},
	{"name", CTL_STR, 'b', true, "bdev name"},
	{"block_size", CTL_INT, 0, false, "block size in bytes (default: detected)"},
	{0},
};

static const char *const g_pos_name[] = {"name", NULL};
static const char *const g_pos_level[] = {"level", NULL};
static const char *const g_pos_flag[] = {"flag", NULL};
static const char *const g_pos_kill[] = {"sig_name", NULL};
static const char *const g_pos_malloc[] = {"total_size", "block_size", NULL};
static const char *const g_pos_null[] = {"name", "total_size", "block_size", NULL};
static const char *const g_pos_file[] = {"filename", "name", "block_size", NULL};

static const struct ctl_method g_methods[] = {
	{"rpc_get_methods", "list the RPC methods", g_p_get_methods, NULL, NULL, ctl_print_lines},
	{"spdk_get_version", "daemon version (SPDK name)", g_p_none, NULL, NULL, ctl_print_version},
	{"sluice_get_version", "daemon version", g_p_none, NULL, NULL, ctl_print_version},
	{"framework_start_init", "initialise subsystems (after --wait-for-rpc)", g_p_none, NULL,
	 NULL, NULL},
	{"framework_wait_init", "wait until subsystems are initialised", g_p_none, NULL, NULL,
	 NULL},
	{"framework_get_reactors", "reactors and their threads", g_p_none, NULL, NULL,
	 ctl_print_reactors},
	{"framework_get_subsystems", "subsystems in init order", g_p_none, NULL, NULL,
	 ctl_print_subsystems},
	{"framework_get_config", "one subsystem's config", g_p_subsys_name, g_pos_name, NULL,
	 ctl_print_json},
	{"save_config", "the running config, loadable with sluiced -c", g_p_none, NULL, NULL,
	 ctl_print_json},
	{"load_config", "apply a config: load_config [-j FILE] (stdin by default; client side)",
	 g_p_none, NULL, NULL, NULL},
	{"thread_get_stats", "per-thread busy/idle ticks", g_p_none, NULL, NULL, ctl_print_threads},
	{"log_set_level", "set the log level", g_p_level, g_pos_level, NULL, NULL},
	{"log_get_level", "get the log level", g_p_none, NULL, NULL, NULL},
	{"log_set_print_level", "set the print level", g_p_level, g_pos_level, NULL, NULL},
	{"log_get_print_level", "get the print level", g_p_none, NULL, NULL, NULL},
	{"log_set_flag", "enable a debug log flag", g_p_flag, g_pos_flag, NULL, NULL},
	{"log_clear_flag", "disable a debug log flag", g_p_flag, g_pos_flag, NULL, NULL},
	{"log_get_flags", "list the log flags", g_p_none, NULL, NULL, ctl_print_flags},
	{"spdk_kill_instance", "send a signal to the daemon", g_p_kill, g_pos_kill, NULL, NULL},
	{"bdev_get_bdevs", "list bdevs", g_p_name_opt, NULL, NULL, ctl_print_bdevs},
	{"bdev_get_iostat", "bdev I/O statistics", g_p_name_opt, NULL, NULL, ctl_print_iostat},
	{"bdev_malloc_create", "create a RAM bdev: [-b NAME] TOTAL_SIZE_MIB BLOCK_SIZE",
	 g_p_malloc_create, g_pos_malloc, ctl_fixup_total_size, NULL},
	{"bdev_malloc_delete", "delete a RAM bdev: NAME", g_p_name_req, g_pos_name, NULL, NULL},
	{"bdev_null_create", "create a null bdev: NAME TOTAL_SIZE_MIB BLOCK_SIZE", g_p_null_create,
	 g_pos_null, ctl_fixup_total_size, NULL},
	{"bdev_null_delete", "delete a null bdev: NAME", g_p_name_req, g_pos_name, NULL, NULL},
	{"bdev_aio_create", "create a bdev on a file (libaio): FILENAME NAME [BLOCK_SIZE]",
	 g_p_file_create, g_pos_file, NULL, NULL},
	{"bdev_aio_delete", "delete an aio bdev: NAME", g_p_name_req, g_pos_name, NULL, NULL},
	{"bdev_uring_create", "create a bdev on a file (io_uring): FILENAME NAME [BLOCK_SIZE]",
	 g_p_file_create, g_pos_file, NULL, NULL},
	{"bdev_uring_delete", "delete a uring bdev: NAME", g_p_name_req, g_pos_name, NULL, NULL},
	{"bdev_nvme_get_controllers", "NVMe controllers, and the processes sharing each",
	 g_p_nvme_name_opt, NULL, NULL, ctl_print_nvme_ctrlrs},
};

static const struct ctl_method *
ctl_method_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(g_methods) / sizeof(g_methods[0]); i++) {
		if (strcmp(g_methods[i].name, name) == 0) {
			return &g_methods[i];
		}
	}
	return NULL;
}

static const struct ctl_param *
ctl_param_find(const struct ctl_method *m, const char *key, char short_opt)
{
	const struct ctl_param *p;

	for (p = m != NULL ? m->params : NULL; p != NULL && p->name != NULL; p++) {
		if ((key != NULL && strcmp(p->name, key) == 0) ||
		    (short_opt != 0 && p->short_opt == short_opt)) {
			return p;
		}
	}
	return NULL;
}

static bool
ctl_is_positional(const struct ctl_method *m, const char *key)
{
	const char *const *pos;

	for (pos = m != NULL ? m->positional : NULL; pos != NULL && *pos != NULL; pos++) {
		if (strcmp(*pos, key) == 0) {
			return true;
		}
	}
	return false;
}

static void
ctl_opt_name(const char *key, char *buf, size_t len)
{
	size_t i;

	snprintf(buf, len, "--%s", key);
	for (i = 2; buf[i] != '\0'; i++) {
		if (buf[i] == '_') {
			buf[i] = '-';
		}
	}
}

static void
ctl_method_help(const struct ctl_method *m)
{
	static const char *const type_names[] = {
		[CTL_STR] = "string", [CTL_INT] = "integer", [CTL_BOOL] = "true|false",
		[CTL_FLAG] = "flag",  [CTL_JSON] = "json",   [CTL_NUM] = "number",
	};
	const struct ctl_param *p;
	const char *const *pos;
	char opt[64];

	printf("%s: %s\n\nUsage: sluicectl %s", m->name, m->summary, m->name);
	for (p = m->params; p->name != NULL; p++) {
		if (!ctl_is_positional(m, p->name)) {
			ctl_opt_name(p->name, opt, sizeof(opt));
			printf(p->required ? " %s VALUE" : " [%s%s]", opt,
			       p->type == CTL_FLAG ? "" : " VALUE");
		}
	}
	for (pos = m->positional; pos != NULL && *pos != NULL; pos++) {
		size_t k;

		p = ctl_param_find(m, *pos, 0);
		for (k = 0; (*pos)[k] != '\0' && k + 1 < sizeof(opt); k++) {
			opt[k] = (char)toupper((unsigned char)(*pos)[k]);
		}
		opt[k] = '\0';
		printf(p != NULL && p->required ? " %s" : " [%s]", opt);
	}
	printf("\n\nParameters:\n");
	if (m->params[0].name == NULL) {
		printf("  (none)\n");
	}
	for (p = m->params; p->name != NULL; p++) {
		ctl_opt_name(p->name, opt, sizeof(opt));
		if (p->short_opt != 0) {
			snprintf(opt + strlen(opt), sizeof(opt) - strlen(opt), ", -%c",
				 p->short_opt);
		}
		printf("  %-22s %-10s %s%s%s\n", opt, type_names[p->type],
		       p->required ? "(required) " : "", p->help,
		       ctl_is_positional(m, p->name) ? " [positional]" : "");
	}
}

static void
ctl_usage(void)
{
	size_t i;

	printf("Usage: sluicectl [options] <method> [--param value ...] [positional ...]\n"
	       "       sluicectl [options] -r '<json request>'   (\"-r -\": read stdin)\n"
	       "       sluicectl <method> --help\n\n"
	       "Options:\n"
	       "  -s, --socket PATH   RPC socket (default $SLUICE_RPC_SOCKET or %s)\n"
	       "  -t, --timeout SECS  give up waiting for the answer (default 60)\n"
	       "  -j, --json          print results as JSON instead of tables\n"
	       "  -r, --raw JSON      send a raw JSON-RPC request, print the raw response\n"
	       "  -v, --verbose       print the request sent\n"
	       "  -h, --help          this help;  --version: the version\n\n"
	       "Any method name is sent; \"--some-param value\" becomes \"some_param\": value\n"
	       "(integers, true/false, null, {...} and [...] are typed; \"@<json>\" forces a\n"
	       "JSON literal). Exit: 0 ok, 1 RPC error, 2 usage, 3 connection.\n\n"
	       "Known methods:\n",
	       CTL_DEFAULT_SOCKET);
	for (i = 0; i < sizeof(g_methods) / sizeof(g_methods[0]); i++) {
		printf("  %-26s %s\n", g_methods[i].name, g_methods[i].summary);
	}
}

/* ---- Building the params ------------------------------------------------------- */

static json_t *
ctl_infer(const char *v)
{
	json_error_t jerr;
	json_t *j;
	char *end;
	long long n;

	if (v[0] == '@') {
		j = json_loads(v + 1, JSON_DECODE_ANY, &jerr);
		if (j == NULL) {
			ctl_usage_error("invalid JSON literal '%s': %s", v + 1, jerr.text);
		}
		return j;
	}
	if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0) {
		return json_boolean(v[0] == 't');
	}
	if (strcmp(v, "null") == 0) {
		return json_null();
	}
	errno = 0;
	n = strtoll(v, &end, 0);
	if (v[0] != '\0' && *end == '\0' && errno == 0) {
		return json_integer(n);
	}
	if (v[0] == '{' || v[0] == '[') {
		j = json_loads(v, 0, &jerr);
		if (j != NULL) {
			return j;
		}
	}
	return json_string(v);
}

static json_t *
ctl_convert(const struct ctl_param *p, const char *opt, const char *v)
{
	char *end;
	long long n;
	double d;

	if (p == NULL || p->type == CTL_JSON || v[0] == '@') {
		return ctl_infer(v);
	}
	switch (p->type) {
	case CTL_STR:
		return json_string(v);
	case CTL_INT:
		errno = 0;
		n = strtoll(v, &end, 0);
		if (v[0] == '\0' || *end != '\0' || errno != 0) {
			ctl_usage_error("%s: '%s' is not an integer", opt, v);
		}
		return json_integer(n);
	case CTL_NUM:
		errno = 0;
		d = strtod(v, &end);
		if (v[0] == '\0' || *end != '\0' || errno != 0) {
			ctl_usage_error("%s: '%s' is not a number", opt, v);
		}
		return d == (double)(long long)d ? json_integer((long long)d) : json_real(d);
	case CTL_BOOL:
	case CTL_FLAG:
		if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0) {
			ctl_usage_error("%s: '%s' is not true or false", opt, v);
		}
		return json_boolean(v[0] == 't');
	default:
		return ctl_infer(v);
	}
}

static void
ctl_key_from_opt(const char *opt, char *key, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len && opt[i] != '\0'; i++) {
		key[i] = opt[i];
	}
	key[i] = '\0';
	for (i = 0; key[i] != '\0'; i++) {
		if (key[i] == '-') {
			key[i] = '_';
		}
	}
}

static bool
ctl_is_number(const char *s)
{
	char *end;

	strtod(s, &end);
	return s[0] != '\0' && *end == '\0';
}

/* Parse "--key value", "--key=value", "-b value" and positionals into params. */
static json_t *
ctl_build_params(const struct ctl_method *m, int argc, char **argv)
{
	const char *const *pos = m != NULL ? m->positional : NULL;
	const struct ctl_param *p;
	json_t *params = json_object();
	char key[128], opt[140];
	const char *val, *eq;
	int i;

	for (i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (strncmp(a, "--", 2) == 0 && a[2] != '\0') {
			eq = strchr(a + 2, '=');
			snprintf(opt, sizeof(opt), "%.*s", (int)(eq ? (size_t)(eq - a) : strlen(a)),
				 a);
			ctl_key_from_opt(opt + 2, key, sizeof(key));
			p = ctl_param_find(m, key, 0);
			if (eq != NULL) {
				val = eq + 1;
			} else if ((p == NULL || p->type != CTL_FLAG) && i + 1 < argc &&
				   (strncmp(argv[i + 1], "--", 2) != 0)) {
				val = argv[++i];
			} else if (p == NULL || p->type == CTL_FLAG || p->type == CTL_BOOL) {
				val = "true";
			} else {
				ctl_usage_error("%s needs a value", opt);
			}
		} else if (a[0] == '-' && a[1] != '\0' && a[2] == '\0' && !ctl_is_number(a)) {
			p = ctl_param_find(m, NULL, a[1]);
			if (p == NULL) {
				ctl_usage_error("%s: unknown option %s", m ? m->name : "method", a);
			}
			if (i + 1 >= argc) {
				ctl_usage_error("%s needs a value", a);
			}
			snprintf(opt, sizeof(opt), "%s", a);
			snprintf(key, sizeof(key), "%s", p->name);
			val = argv[++i];
		} else {
			if (pos == NULL || *pos == NULL) {
				ctl_usage_error("%s: unexpected argument '%s'",
						m ? m->name : "method", a);
			}
			snprintf(key, sizeof(key), "%s", *pos++);
			snprintf(opt, sizeof(opt), "%s", key);
			p = ctl_param_find(m, key, 0);
			val = a;
		}
		json_object_set_new(params, key, ctl_convert(p, opt, val));
	}
	return params;
}

static void
ctl_check_required(const struct ctl_method *m, json_t *params)
{
	const struct ctl_param *p;
	char opt[64];

	for (p = m->params; p->name != NULL; p++) {
		if (p->required && json_object_get(params, p->name) == NULL) {
			if (ctl_is_positional(m, p->name)) {
				ctl_usage_error("%s: missing %s (see 'sluicectl %s --help')",
						m->name, p->name, m->name);
			}
			ctl_opt_name(p->name, opt, sizeof(opt));
			ctl_usage_error("%s: missing %s (see 'sluicectl %s --help')", m->name, opt,
					m->name);
		}
	}
}

/* ---- The wire ------------------------------------------------------------------- */

static double
ctl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void __attribute__((noreturn))
ctl_conn_error(const struct ctl_opts *o, const char *what, int err)
{
	fprintf(stderr, "sluicectl: %s %s: %s%s\n", what, o->socket, strerror(err),
		err == ENOENT || err == ECONNREFUSED ? " (is sluiced running? use -s PATH)" : "");
	exit(CTL_EXIT_CONN);
}

static int
ctl_connect(const struct ctl_opts *o)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(o->socket) >= sizeof(addr.sun_path)) {
		ctl_usage_error("socket path too long: %s", o->socket);
	}
	strcpy(addr.sun_path, o->socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ctl_conn_error(o, "socket for", errno);
	}
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		ctl_conn_error(o, "cannot connect to", errno);
	}
	return fd;
}

static void
ctl_send_all(const struct ctl_opts *o, int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			ctl_conn_error(o, "cannot send to", errno);
		}
		buf += n;
		len -= (size_t)n;
	}
}

/* Read until the bytes parse as one JSON value, as rpc.py does. */
static json_t *
ctl_recv_response(const struct ctl_opts *o, int fd)
{
	double deadline = ctl_now() + o->timeout_s;
	size_t len = 0, cap = 0;
	char *buf = NULL, *grown;
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	json_error_t jerr;
	json_t *resp;
	ssize_t n;
	int ms;

	for (;;) {
		ms = (int)((deadline - ctl_now()) * 1000.0);
		if (ms <= 0 || poll(&pfd, 1, ms) == 0) {
			fprintf(stderr, "sluicectl: no answer from %s within %.0f s\n", o->socket,
				o->timeout_s);
			exit(CTL_EXIT_CONN);
		}
		if (len + 4096 > cap) {
			cap = cap ? cap * 2 : 65536;
			grown = realloc(buf, cap);
			if (grown == NULL) {
				fprintf(stderr, "sluicectl: out of memory\n");
				exit(CTL_EXIT_CONN);
			}
			buf = grown;
		}
		n = recv(fd, buf + len, cap - len, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
			continue;
		}
		if (n < 0) {
			ctl_conn_error(o, "cannot read from", errno);
		}
		if (n == 0) {
			fprintf(stderr, "sluicectl: %s closed the connection without a %s answer\n",
				o->socket, len ? "complete" : "");
			exit(CTL_EXIT_CONN);
		}
		len += (size_t)n;
		resp = json_loadb(buf, len, 0, &jerr);
		if (resp != NULL) {
			free(buf);
			return resp;
		}
	}
}

static int
ctl_report_error(const json_t *resp)
{
	const json_t *err = json_object_get(resp, "error");

	fprintf(stderr, "error %lld: %s\n",
		(long long)json_integer_value(json_object_get(err, "code")),
		json_string_value(json_object_get(err, "message")) ?: "(no message)");
	return CTL_EXIT_RPC;
}

static json_t *
ctl_call(const struct ctl_opts *o, json_t *req)
{
	char *text = json_dumps(req, JSON_COMPACT);
	json_t *resp;
	int fd;

	if (o->verbose) {
		fprintf(stderr, "request: %s\n", text);
	}
	fd = ctl_connect(o);
	/* No trailing newline: the server must frame by JSON value, like rpc.py sends. */
	ctl_send_all(o, fd, text, strlen(text));
	free(text);
	resp = ctl_recv_response(o, fd);
	close(fd);
	if (!json_is_object(resp)) {
		fprintf(stderr,
			"sluicectl: %s answered something that is not a JSON-RPC response\n",
			o->socket);
		exit(CTL_EXIT_CONN);
	}
	return resp;
}

static int
ctl_raw(const struct ctl_opts *o)
{
	json_error_t jerr;
	json_t *req, *resp;
	int rc;

	req = strcmp(o->raw, "-") == 0 ? json_loadf(stdin, 0, &jerr) : json_loads(o->raw, 0, &jerr);
	if (req == NULL) {
		ctl_usage_error("raw request is not JSON: line %d column %d: %s", jerr.line,
				jerr.column, jerr.text);
	}
	if (json_is_object(req)) {
		/* Fill in the envelope so '{"method":"x"}' is enough. */
		if (json_object_get(req, "jsonrpc") == NULL) {
			json_object_set_new(req, "jsonrpc", json_string("2.0"));
		}
		if (json_object_get(req, "id") == NULL) {
			json_object_set_new(req, "id", json_integer(1));
		}
	}
	resp = ctl_call(o, req);
	ctl_print_json(resp);
	rc = json_object_get(resp, "error") != NULL ? CTL_EXIT_RPC : CTL_EXIT_OK;
	json_decref(req);
	json_decref(resp);
	return rc;
}

/* ---- load_config (client side, as rpc.py's) ------------------------------------- */

static json_t *
ctl_simple_call(const struct ctl_opts *o, const char *method, json_t *params)
{
	json_t *req = json_pack("{s:s, s:s, s:i}", "jsonrpc", "2.0", "method", method, "id", 1);
	json_t *resp;

	if (params != NULL) {
		json_object_set(req, "params", params);
	}
	resp = ctl_call(o, req);
	json_decref(req);
	return resp;
}

static bool
ctl_in_list(const json_t *list, const char *name)
{
	const json_t *v;
	size_t i;

	json_array_foreach (list, i, v) {
		if (strcmp(json_string_value(v), name) == 0) {
			return true;
		}
	}
	return false;
}

static json_t *
ctl_current_methods(const struct ctl_opts *o)
{
	json_t *p = json_pack("{s:b}", "current", 1);
	json_t *resp = ctl_simple_call(o, "rpc_get_methods", p);
	json_t *list = json_incref(json_object_get(resp, "result"));

	json_decref(p);
	json_decref(resp);
	return list;
}

/* Run the entries callable now; keep the others. \return exit code. */
static int
ctl_load_pass(const struct ctl_opts *o, json_t *entries, json_t *deferred)
{
	json_t *current = ctl_current_methods(o), *e, *resp;
	const char *method, *subsystem;
	size_t i;
	int rc = CTL_EXIT_OK;

	json_array_foreach (entries, i, e) {
		method = json_string_value(json_object_get(e, "method"));
		subsystem = json_string_value(json_object_get(e, "subsystem"));
		if (!ctl_in_list(current, method)) {
			json_array_append(deferred, e);
			continue;
		}
		resp = ctl_simple_call(o, method, json_object_get(e, "params"));
		if (json_object_get(resp, "error") != NULL) {
			fprintf(stderr, "subsystem '%s', method '%s': ", subsystem, method);
			rc = ctl_report_error(resp);
		}
		json_decref(resp);
		if (rc != CTL_EXIT_OK) {
			break;
		}
	}
	json_decref(current);
	return rc;
}

static int
ctl_load_config(const struct ctl_opts *o, int argc, char **argv)
{
	json_t *cfg, *entries = json_array(), *later = json_array(), *sub, *e, *all, *resp;
	const char *path = NULL;
	json_error_t jerr;
	size_t i, j;
	int rc;

	if (argc == 2 && (strcmp(argv[0], "-j") == 0 || strcmp(argv[0], "--json") == 0)) {
		path = argv[1];
	} else if (argc != 0) {
		ctl_usage_error("load_config [-j FILE]   (default: the config on stdin)");
	}
	cfg = path != NULL ? json_load_file(path, 0, &jerr) : json_loadf(stdin, 0, &jerr);
	if (cfg == NULL) {
		ctl_usage_error("config %s: line %d: %s", path ?: "(stdin)", jerr.line, jerr.text);
	}
	all = ctl_simple_call(o, "rpc_get_methods", NULL);
	json_array_foreach (json_object_get(cfg, "subsystems"), i, sub) {
		json_array_foreach (json_object_get(sub, "config"), j, e) {
			const char *m = json_string_value(json_object_get(e, "method"));

			if (m == NULL) {
				continue;
			}
			if (!ctl_in_list(json_object_get(all, "result"), m)) {
				fprintf(stderr,
					"warning: %s: method '%s' not offered by the daemon; "
					"skipped\n",
					json_string_value(json_object_get(sub, "subsystem")), m);
				continue;
			}
			json_array_append_new(entries,
					      json_pack("{s:O, s:s, s:O*}", "subsystem",
							json_object_get(sub, "subsystem"), "method",
							m, "params", json_object_get(e, "params")));
		}
	}
	/* Options first, then start the framework if it waits, then the rest. */
	rc = ctl_load_pass(o, entries, later);
	if (rc == CTL_EXIT_OK && json_array_size(later) > 0) {
		json_t *current = ctl_current_methods(o);

		if (ctl_in_list(current, "framework_start_init")) {
			resp = ctl_simple_call(o, "framework_start_init", NULL);
			rc = json_object_get(resp, "error") != NULL ? ctl_report_error(resp) : rc;
			json_decref(resp);
		}
		json_decref(current);
		json_array_clear(entries);
		if (rc == CTL_EXIT_OK) {
			rc = ctl_load_pass(o, later, entries);
		}
		json_array_foreach (entries, i, e) {
			fprintf(stderr, "method '%s' is not callable in the daemon's state\n",
				json_string_value(json_object_get(e, "method")));
			rc = CTL_EXIT_RPC;
		}
	}
	json_decref(all);
	json_decref(cfg);
	json_decref(entries);
	json_decref(later);
	return rc;
}

/* "-j/--json" after the method still selects JSON output, unless the method itself
 * has such a parameter. \return the remaining argc (argv is compacted). */
static int
ctl_take_output_opts(struct ctl_opts *o, const struct ctl_method *m, int argc, char **argv)
{
	int i, n = 0;

	for (i = 0; i < argc; i++) {
		bool is_json = strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0;

		if (is_json && ctl_param_find(m, "json", 'j') == NULL) {
			o->json_out = true;
			continue;
		}
		argv[n++] = argv[i];
	}
	return n;
}

static int
ctl_method(struct ctl_opts *o, const char *name, int argc, char **argv)
{
	const struct ctl_method *m = ctl_method_find(name);
	const char *msg;
	json_t *req, *params, *resp;
	int i, rc = CTL_EXIT_OK;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			if (m == NULL) {
				printf("%s: no help (not a method sluicectl knows); it is sent as "
				       "given:\n\"--some-param value\" becomes \"some_param\": "
				       "value.\n",
				       name);
				return CTL_EXIT_OK;
			}
			ctl_method_help(m);
			return CTL_EXIT_OK;
		}
	}
	if (strcmp(name, "load_config") == 0) {
		return ctl_load_config(o, argc, argv);
	}
	argc = ctl_take_output_opts(o, m, argc, argv);
	params = ctl_build_params(m, argc, argv);
	if (m != NULL) {
		if (m->fixup != NULL && (msg = m->fixup(params)) != NULL) {
			ctl_usage_error("%s: %s", m->name, msg);
		}
		ctl_check_required(m, params);
	}
	req = json_pack("{s:s, s:s, s:i}", "jsonrpc", "2.0", "method", name, "id", 1);
	if (json_object_size(params) > 0) {
		json_object_set(req, "params", params);
	}
	resp = ctl_call(o, req);
	if (json_object_get(resp, "error") != NULL) {
		rc = ctl_report_error(resp);
	} else if (o->json_out) {
		ctl_print_json(json_object_get(resp, "result"));
	} else if (m != NULL && m->print != NULL) {
		m->print(json_object_get(resp, "result"));
	} else {
		ctl_print_default(json_object_get(resp, "result"));
	}
	json_decref(params);
	json_decref(req);
	json_decref(resp);
	return rc;
}

int
main(int argc, char **argv)
{
	struct ctl_opts o = {
		.socket = getenv("SLUICE_RPC_SOCKET") ?: CTL_DEFAULT_SOCKET,
		.timeout_s = 60.0,
	};
	char *end;
	int i;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		bool has_next = i + 1 < argc;

		if ((strcmp(a, "-s") == 0 || strcmp(a, "--socket") == 0) && has_next) {
			o.socket = argv[++i];
		} else if ((strcmp(a, "-t") == 0 || strcmp(a, "--timeout") == 0) && has_next) {
			o.timeout_s = strtod(argv[++i], &end);
			if (*end != '\0' || o.timeout_s <= 0) {
				ctl_usage_error("invalid timeout '%s'", argv[i]);
			}
		} else if ((strcmp(a, "-r") == 0 || strcmp(a, "--raw") == 0) && has_next) {
			o.raw = argv[++i];
		} else if (strcmp(a, "-j") == 0 || strcmp(a, "--json") == 0) {
			o.json_out = true;
		} else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
			o.verbose = true;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			ctl_usage();
			return CTL_EXIT_OK;
		} else if (strcmp(a, "--version") == 0) {
			printf("%s\n", CTL_VERSION);
			return CTL_EXIT_OK;
		} else {
			ctl_usage_error("unknown option or missing value: %s", a);
		}
	}
	if (o.raw != NULL) {
		if (i < argc) {
			ctl_usage_error("-r takes the whole request; unexpected '%s'", argv[i]);
		}
		return ctl_raw(&o);
	}
	if (i >= argc) {
		ctl_usage_error("no method given");
	}
	return ctl_method(&o, argv[i], argc - i - 1, argv + i + 1);
}
