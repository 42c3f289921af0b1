/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * Logging. Each call formats one whole line and hands it to the kernel with a single
 * write(2), so lines from several threads never interleave (a pipe keeps writes of up
 * to PIPE_BUF bytes atomic; files opened O_APPEND and ttys keep a whole write together
 * in practice). The flag list is built by constructors before main() and only read
 * afterwards, so walking it takes no lock.
 */

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "sluice/log.h"
#include "sluice/thread.h"

/* Lines longer than this are formatted on the heap. */
#define LOG_LINE_STACK 1024

static struct sl_log_flag *g_log_flags;
static _Atomic int g_log_print_level = SL_LOG_NOTICE;
static pthread_mutex_t g_log_hook_lock = PTHREAD_MUTEX_INITIALIZER;
static sl_log_output_cb g_log_output_cb;
static void *g_log_output_ctx;
/*
 * Set while this thread runs the output hook. The hook lock is not recursive, so a
 * line logged from inside the hook (directly, or by some function it calls) must not
 * come back through log_emit's lock: it bypasses the hook and goes to stderr instead.
 * Dropping it would hide the very error a failing hook (say, syslog) wants to report.
 */
static _Thread_local bool tl_log_in_output;

static const char *const g_log_level_names[] = {
	[SL_LOG_ERROR] = "ERROR", [SL_LOG_WARN] = "WARNING", [SL_LOG_NOTICE] = "NOTICE",
	[SL_LOG_INFO] = "INFO",   [SL_LOG_DEBUG] = "DEBUG",
};

void
sl_log_register_flag(struct sl_log_flag *flag)
{
	struct sl_log_flag **pos;

	/* Keep the list sorted by name so listings (log_get_flags) are stable. */
	for (pos = &g_log_flags; *pos != NULL; pos = &(*pos)->next) {
		int cmp = strcmp((*pos)->name, flag->name);

		if (cmp == 0) {
			fprintf(stderr, "sluice: log flag '%s' registered twice\n", flag->name);
			abort();
		}
		if (cmp > 0) {
			break;
		}
	}
	flag->next = *pos;
	*pos = flag;
}

struct sl_log_flag *
sl_log_flag_next(struct sl_log_flag *prev)
{
	return prev == NULL ? g_log_flags : prev->next;
}

static struct sl_log_flag *
log_flag_find(const char *name)
{
	struct sl_log_flag *flag;

	for (flag = g_log_flags; flag != NULL; flag = flag->next) {
		if (strcasecmp(flag->name, name) == 0) {
			return flag;
		}
	}
	return NULL;
}

int
sl_log_set_flag(const char *name, bool enabled)
{
	struct sl_log_flag *flag;

	if (name == NULL) {
		return -EINVAL;
	}
	if (strcasecmp(name, "all") == 0) {
		for (flag = g_log_flags; flag != NULL; flag = flag->next) {
			flag->enabled = enabled;
		}
		return 0;
	}
	flag = log_flag_find(name);
	if (flag == NULL) {
		return -EINVAL;
	}
	flag->enabled = enabled;
	return 0;
}

bool
sl_log_get_flag(const char *name)
{
	struct sl_log_flag *flag = name != NULL ? log_flag_find(name) : NULL;

	return flag != NULL && flag->enabled;
}

int
sl_log_enable_debug(const char *name)
{
	int rc = sl_log_set_flag(name, true);

	if (rc == 0) {
		sl_log_set_print_level(SL_LOG_DEBUG);
	}
	return rc;
}

void
sl_log_set_print_level(enum sl_log_level level)
{
	if (level < SL_LOG_DISABLED) {
		level = SL_LOG_DISABLED;
	} else if (level > SL_LOG_DEBUG) {
		level = SL_LOG_DEBUG;
	}
	atomic_store_explicit(&g_log_print_level, level, memory_order_relaxed);
}

enum sl_log_level
sl_log_get_print_level(void)
{
	return atomic_load_explicit(&g_log_print_level, memory_order_relaxed);
}

int
sl_log_level_from_str(const char *s)
{
	if (s == NULL) {
		return -1;
	}
	if (strcasecmp(s, "warn") == 0) {
		return SL_LOG_WARN;
	}
	if (strcasecmp(s, "disabled") == 0) {
		return SL_LOG_DISABLED;
	}
	for (int i = SL_LOG_ERROR; i <= SL_LOG_DEBUG; i++) {
		if (strcasecmp(s, g_log_level_names[i]) == 0) {
			return i;
		}
	}
	return -1;
}

const char *
sl_log_level_to_str(enum sl_log_level level)
{
	if (level >= SL_LOG_ERROR && level <= SL_LOG_DEBUG) {
		return g_log_level_names[level];
	}
	return "DISABLED";
}

void
sl_log_set_output(sl_log_output_cb cb, void *ctx)
{
	if (tl_log_in_output) {
		/* We hold g_log_hook_lock already: taking it again would deadlock. */
		SL_ERRLOG("sl_log_set_output called from inside the log output hook: ignored\n");
		return;
	}
	pthread_mutex_lock(&g_log_hook_lock);
	g_log_output_cb = cb;
	g_log_output_ctx = ctx;
	pthread_mutex_unlock(&g_log_hook_lock);
}

static const char *
log_basename(const char *file)
{
	const char *slash = file != NULL ? strrchr(file, '/') : NULL;

	return slash != NULL ? slash + 1 : (file != NULL ? file : "?");
}

/* "[2026-05-01 12:34:56.123456] app_thread ERROR file.c:12 func: " */
static int
log_format_prefix(char *buf, size_t len, enum sl_log_level level, const char *file, int line,
		  const char *func)
{
	struct sl_thread *thread = sl_get_thread();
	struct timespec ts;
	struct tm tm;
	char date[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
	return snprintf(buf, len, "[%s.%06ld] %s %s %s:%d %s: ", date, ts.tv_nsec / 1000,
			thread != NULL ? sl_thread_get_name(thread) : "-",
			sl_log_level_to_str(level), log_basename(file), line,
			func != NULL ? func : "?");
}

static void
log_write_all(const char *buf, size_t len)
{
	/* One write in the common case; the loop only covers a signal or a full pipe. */
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, buf, len);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

static void
log_emit(enum sl_log_level level, char *line, size_t len)
{
	sl_log_output_cb cb;
	void *ctx;

	if (tl_log_in_output) {
		log_write_all(line, len);
		return;
	}
	pthread_mutex_lock(&g_log_hook_lock);
	cb = g_log_output_cb;
	ctx = g_log_output_ctx;
	if (cb != NULL) {
		/* Called under the lock so a hook needs no locking of its own. */
		line[len - 1] = '\0';
		tl_log_in_output = true;
		cb(level, line, ctx);
		tl_log_in_output = false;
		line[len - 1] = '\n';
	}
	pthread_mutex_unlock(&g_log_hook_lock);
	if (cb == NULL) {
		log_write_all(line, len);
	}
}

void
sl_vlog(enum sl_log_level level, const char *file, int line, const char *func, const char *fmt,
	va_list ap)
{
	char stack_buf[LOG_LINE_STACK];
	char *buf = stack_buf;
	int saved_errno = errno;
	int prefix_len, msg_len;
	size_t len;
	va_list ap2;

	if (level > sl_log_get_print_level() || level < SL_LOG_ERROR) {
		return;
	}
	prefix_len = log_format_prefix(stack_buf, sizeof(stack_buf), level, file, line, func);
	if (prefix_len < 0 || (size_t)prefix_len >= sizeof(stack_buf) / 2) {
		prefix_len = 0;
	}
	va_copy(ap2, ap);
	msg_len = vsnprintf(buf + prefix_len, sizeof(stack_buf) - (size_t)prefix_len, fmt, ap2);
	va_end(ap2);
	if (msg_len < 0) {
		msg_len = 0;
	}
	len = (size_t)prefix_len + (size_t)msg_len;
	if (len + 2 > sizeof(stack_buf)) {
		buf = malloc(len + 2);
		if (buf == NULL) {
			/* Keep the truncated line rather than losing it. */
			buf = stack_buf;
			len = sizeof(stack_buf) - 2;
		} else {
			memcpy(buf, stack_buf, (size_t)prefix_len);
			vsnprintf(buf + prefix_len, (size_t)msg_len + 1, fmt, ap);
		}
	}
	/* Messages often end in '\n' by habit: one line per call either way. */
	while (len > (size_t)prefix_len && buf[len - 1] == '\n') {
		len--;
	}
	buf[len++] = '\n';
	buf[len] = '\0';
	log_emit(level, buf, len);
	if (buf != stack_buf) {
		free(buf);
	}
	errno = saved_errno;
}

void
sl_log(enum sl_log_level level, const char *file, int line, const char *func, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sl_vlog(level, file, line, func, fmt, ap);
	va_end(ap);
}
