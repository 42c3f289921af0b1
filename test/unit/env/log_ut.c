/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/* Logging: levels, component flags, the output hook, and whole lines under threads. */

#include <CUnit/Basic.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sl_ut.h"
#include "sluice/log.h"
#include "sluice/thread.h"

SL_LOG_REGISTER_COMPONENT(ut_alpha)
SL_LOG_REGISTER_COMPONENT(ut_beta)

struct captured {
	int count;
	enum sl_log_level level;
	char line[2048];
};

static void
capture_cb(enum sl_log_level level, const char *line, void *ctx)
{
	struct captured *cap = ctx;

	cap->count++;
	cap->level = level;
	snprintf(cap->line, sizeof(cap->line), "%s", line);
}

static void
test_levels(void)
{
	struct captured cap = {};

	CU_ASSERT_EQUAL(sl_log_get_print_level(), SL_LOG_NOTICE);
	sl_log_set_output(capture_cb, &cap);
	SL_ERRLOG("e %d\n", 1);
	CU_ASSERT_EQUAL(cap.count, 1);
	CU_ASSERT_EQUAL(cap.level, SL_LOG_ERROR);
	CU_ASSERT(strstr(cap.line, " ERROR log_ut.c:") != NULL);
	CU_ASSERT(strstr(cap.line, "test_levels: e 1") != NULL);
	/* The trailing newline is the logger's, not part of the line given to hooks. */
	CU_ASSERT(cap.line[strlen(cap.line) - 1] == '1');
	/* No current thread: "-" stands for the thread name. */
	CU_ASSERT(strstr(cap.line, "] - ERROR") != NULL);
	CU_ASSERT(cap.line[0] == '[');

	SL_NOTICELOG("n\n");
	CU_ASSERT_EQUAL(cap.count, 2);
	SL_INFOLOG("i\n");
	CU_ASSERT_EQUAL(cap.count, 2);
	sl_log_set_print_level(SL_LOG_INFO);
	SL_INFOLOG("i\n");
	CU_ASSERT_EQUAL(cap.count, 3);
	sl_log_set_print_level(SL_LOG_ERROR);
	SL_WARNLOG("w\n");
	CU_ASSERT_EQUAL(cap.count, 3);
	sl_log_set_print_level(SL_LOG_DISABLED);
	SL_ERRLOG("e\n");
	CU_ASSERT_EQUAL(cap.count, 3);
	sl_log_set_print_level(SL_LOG_NOTICE);
	sl_log_set_output(NULL, NULL);

	CU_ASSERT_EQUAL(sl_log_level_from_str("Warning"), SL_LOG_WARN);
	CU_ASSERT_EQUAL(sl_log_level_from_str("debug"), SL_LOG_DEBUG);
	CU_ASSERT_EQUAL(sl_log_level_from_str("bogus"), -1);
	CU_ASSERT_STRING_EQUAL(sl_log_level_to_str(SL_LOG_NOTICE), "NOTICE");
}

static void
test_flags(void)
{
	struct captured cap = {};
	struct sl_log_flag *flag;
	int n = 0;

	sl_log_set_output(capture_cb, &cap);
	CU_ASSERT_FALSE(sl_log_get_flag("ut_alpha"));
	CU_ASSERT_EQUAL(sl_log_set_flag("nosuchflag", true), -EINVAL);
	sl_log_set_print_level(SL_LOG_DEBUG);
	SL_DEBUGLOG(ut_alpha, "hidden\n");
	CU_ASSERT_EQUAL(cap.count, 0);

	CU_ASSERT_EQUAL(sl_log_set_flag("ut_alpha", true), 0);
	SL_DEBUGLOG(ut_alpha, "shown\n");
	SL_DEBUGLOG(ut_beta, "hidden\n");
	CU_ASSERT_EQUAL(cap.count, 1);
	CU_ASSERT(strstr(cap.line, "DEBUG") != NULL && strstr(cap.line, "shown") != NULL);

	/* A debug line also needs the print level to reach DEBUG. */
	sl_log_set_print_level(SL_LOG_NOTICE);
	SL_DEBUGLOG(ut_alpha, "hidden\n");
	CU_ASSERT_EQUAL(cap.count, 1);

	CU_ASSERT_EQUAL(sl_log_set_flag("all", true), 0);
	CU_ASSERT(sl_log_get_flag("ut_beta"));
	CU_ASSERT_EQUAL(sl_log_set_flag("all", false), 0);
	CU_ASSERT_FALSE(sl_log_get_flag("ut_alpha"));

	/* What -L does. */
	CU_ASSERT_EQUAL(sl_log_enable_debug("ut_beta"), 0);
	CU_ASSERT_EQUAL(sl_log_get_print_level(), SL_LOG_DEBUG);
	SL_DEBUGLOG(ut_beta, "now\n");
	CU_ASSERT_EQUAL(cap.count, 2);
	CU_ASSERT_EQUAL(sl_log_enable_debug("nope"), -EINVAL);
	sl_log_set_flag("ut_beta", false);
	sl_log_set_print_level(SL_LOG_NOTICE);
	sl_log_set_output(NULL, NULL);

	/* The flags are listed sorted by name. */
	for (flag = sl_log_flag_next(NULL); flag != NULL; flag = sl_log_flag_next(flag)) {
		if (flag->next != NULL) {
			CU_ASSERT(strcmp(flag->name, flag->next->name) < 0);
		}
		n++;
	}
	CU_ASSERT(n >= 2);
}

static void
test_thread_name_and_long_line(void)
{
	struct captured cap = {};
	struct sl_thread *thread;
	char *big = malloc(5000);

	CU_ASSERT_FATAL(sl_thread_lib_init(NULL, 0) == 0);
	thread = sl_thread_create("logthr", NULL);
	CU_ASSERT_FATAL(thread != NULL);
	sl_set_thread(thread);
	sl_log_set_output(capture_cb, &cap);
	SL_ERRLOG("x\n");
	CU_ASSERT(strstr(cap.line, "] logthr ERROR") != NULL);

	/* Longer than the stack buffer: formatted on the heap, not cut. */
	memset(big, 'z', 4999);
	big[4999] = '\0';
	SL_ERRLOG("%s", big);
	CU_ASSERT_EQUAL(cap.count, 2);
	CU_ASSERT(strstr(cap.line, "zzz") != NULL);
	sl_log_set_output(NULL, NULL);
	free(big);

	CU_ASSERT(sl_ut_thread_end(thread) == 0);
	sl_thread_lib_fini();
}

static void
logging_hook(enum sl_log_level level, const char *line, void *ctx)
{
	struct captured *cap = ctx;

	capture_cb(level, line, ctx);
	/* Both would take the hook lock again on this thread. */
	SL_ERRLOG("from the hook %d\n", cap->count);
	sl_log_set_output(NULL, NULL);
}

static void
test_hook_that_logs(void)
{
	char path[] = "/tmp/sl_log_ut.XXXXXX";
	int fd = mkstemp(path);
	int saved = dup(STDERR_FILENO);
	struct captured cap = {};
	char out[4096] = "";
	ssize_t n;

	CU_ASSERT_FATAL(fd >= 0 && saved >= 0);
	dup2(fd, STDERR_FILENO);
	sl_log_set_output(logging_hook, &cap);
	SL_ERRLOG("outer\n");
	/* Returned, the hook saw only the outer line, and the hook stayed installed. */
	CU_ASSERT_EQUAL(cap.count, 1);
	CU_ASSERT(strstr(cap.line, "outer") != NULL);
	SL_ERRLOG("second\n");
	CU_ASSERT_EQUAL(cap.count, 2);
	sl_log_set_output(NULL, NULL);
	dup2(saved, STDERR_FILENO);
	close(saved);

	/* The nested lines went straight to stderr, whole. */
	n = pread(fd, out, sizeof(out) - 1, 0);
	CU_ASSERT(n > 0);
	CU_ASSERT(strstr(out, "logging_hook: from the hook 1\n") != NULL);
	CU_ASSERT(strstr(out, "logging_hook: from the hook 2\n") != NULL);
	CU_ASSERT(strstr(out, "sl_log_set_output called from inside the log output hook") != NULL);
	CU_ASSERT(strstr(out, "outer") == NULL);
	close(fd);
	unlink(path);
}

#define LINES_PER_THREAD 2000

static void *
log_thread(void *arg)
{
	const char *tag = arg;

	for (int i = 0; i < LINES_PER_THREAD; i++) {
		SL_ERRLOG("%s %04d %s\n", tag, i,
			  "padding padding padding padding padding padding padding padding");
	}
	return NULL;
}

static void
test_line_atomicity(void)
{
	char path[] = "/tmp/sl_log_ut.XXXXXX";
	int fd = mkstemp(path);
	int saved = dup(STDERR_FILENO);
	pthread_t t1, t2;
	char line[512];
	int count = 0, bad = 0;
	FILE *f;

	CU_ASSERT_FATAL(fd >= 0 && saved >= 0);
	/* O_APPEND, as a log file opened by a shell redirection would be. */
	fcntl(fd, F_SETFL, O_APPEND);
	dup2(fd, STDERR_FILENO);
	static char tag_a[] = "AAAA", tag_b[] = "BBBB";

	pthread_create(&t1, NULL, log_thread, tag_a);
	pthread_create(&t2, NULL, log_thread, tag_b);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	dup2(saved, STDERR_FILENO);
	close(saved);

	f = fdopen(fd, "r");
	rewind(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		count++;
		/* Each line: one prefix, one tag, one padding, ending in a newline. */
		if (line[0] != '[' || strstr(line, "padding\n") == NULL ||
		    (strstr(line, "AAAA") == NULL) == (strstr(line, "BBBB") == NULL) ||
		    strchr(line + 1, '[') != NULL) {
			bad++;
		}
	}
	fclose(f);
	unlink(path);
	CU_ASSERT_EQUAL(count, 2 * LINES_PER_THREAD);
	CU_ASSERT_EQUAL(bad, 0);
}

int
main(void)
{
	CU_pSuite suite = sl_ut_suite("log", NULL, NULL);

	CU_add_test(suite, "levels", test_levels);
	CU_add_test(suite, "flags", test_flags);
	CU_add_test(suite, "thread_name_and_long_line", test_thread_name_and_long_line);
	CU_add_test(suite, "line_atomicity", test_line_atomicity);
	CU_add_test(suite, "hook_that_logs", test_hook_that_logs);
	return sl_ut_run();
}
