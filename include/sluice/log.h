/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/** \file
 * Logging with levels and per-component flags.
 *
 * Errors, warnings and notices always print (subject to the print level); debug
 * lines print only when their component's flag is on (`-L nbd`, `log_set_flag`).
 * Components declare a flag with SL_LOG_REGISTER_COMPONENT(name) in one .c file.
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

enum sl_log_level {
	SL_LOG_DISABLED = -1,
	SL_LOG_ERROR = 0,
	SL_LOG_WARN = 1,
	SL_LOG_NOTICE = 2,
	SL_LOG_INFO = 3,
	SL_LOG_DEBUG = 4,
};

/** A per-component debug flag; defined by SL_LOG_REGISTER_COMPONENT. */
struct sl_log_flag {
	const char *name;
	bool enabled;
	struct sl_log_flag *next;
};

/** Register a log flag (used by SL_LOG_REGISTER_COMPONENT's constructor). */
void sl_log_register_flag(struct sl_log_flag *flag);

#define SL_LOG_REGISTER_COMPONENT(FLAG)                                            \
	struct sl_log_flag SL_LOG_FLAG_##FLAG = {.name = #FLAG, .enabled = false}; \
	__attribute__((constructor)) static void sl_log_flag_register_##FLAG(void) \
	{                                                                          \
		sl_log_register_flag(&SL_LOG_FLAG_##FLAG);                         \
	}

/**
 * Write one log line. Use the SL_ERRLOG/SL_WARNLOG/SL_NOTICELOG/SL_INFOLOG/SL_DEBUGLOG
 * macros rather than calling this directly.
 */
void sl_log(enum sl_log_level level, const char *file, int line, const char *func, const char *fmt,
	    ...) __attribute__((format(printf, 5, 6)));
/** va_list variant of sl_log(). */
void sl_vlog(enum sl_log_level level, const char *file, int line, const char *func, const char *fmt,
	     va_list ap) __attribute__((format(printf, 5, 0)));

#define SL_ERRLOG(...)    sl_log(SL_LOG_ERROR, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define SL_WARNLOG(...)   sl_log(SL_LOG_WARN, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define SL_NOTICELOG(...) sl_log(SL_LOG_NOTICE, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define SL_INFOLOG(...)   sl_log(SL_LOG_INFO, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define SL_DEBUGLOG(FLAG, ...)                                                           \
	do {                                                                             \
		extern struct sl_log_flag SL_LOG_FLAG_##FLAG;                            \
		if (SL_LOG_FLAG_##FLAG.enabled) {                                        \
			sl_log(SL_LOG_DEBUG, __FILE__, __LINE__, __func__, __VA_ARGS__); \
		}                                                                        \
	} while (0)

/** Set the level at or below which lines are printed (default NOTICE). */
void sl_log_set_print_level(enum sl_log_level level);
/** \return the current print level. */
enum sl_log_level sl_log_get_print_level(void);
/**
 * Enable or disable a component's debug flag; "all" matches every flag.
 * \return 0, or -EINVAL if no flag has that name.
 */
int sl_log_set_flag(const char *name, bool enabled);
/**
 * What `-L name` does: enable the flag (or "all") and raise the print level to DEBUG.
 * \return 0, or -EINVAL if no flag has that name.
 */
int sl_log_enable_debug(const char *name);
/** \return whether the named flag is enabled (false if it does not exist). */
bool sl_log_get_flag(const char *name);
/** Iterate the registered flags: NULL gives the first. */
struct sl_log_flag *sl_log_flag_next(struct sl_log_flag *prev);
/** Parse "error|warning|notice|info|debug" (case-insensitive). \return the level or -1. */
int sl_log_level_from_str(const char *s);
/** \return the name of a level. */
const char *sl_log_level_to_str(enum sl_log_level level);

/**
 * Hook to capture log output (tests, syslog). line is the whole formatted line
 * ("[date time] thread LEVEL file.c:12 func: message") without the trailing newline.
 * Calls are serialised by a lock, so a hook needs no locking of its own. A line logged
 * from inside the hook (on the hook's thread) does not reach the hook again: it is
 * written straight to stderr. A hook must not call sl_log_set_output() (it is ignored).
 */
typedef void (*sl_log_output_cb)(enum sl_log_level level, const char *line, void *ctx);
/** Send lines to cb instead of stderr; NULL restores stderr. */
void sl_log_set_output(sl_log_output_cb cb, void *ctx);

#endif /* SLUICE_LOG_H */
