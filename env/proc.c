/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * Processes by /proc/<pid>/stat: their start time (an identity that survives pid
 * reuse) and whether they still run. No DPDK here: the NVMe driver's unit tests
 * compile this file in.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/env.h"
#include "env_internal.h"

/* The fields after comm (field 2), which may hold spaces and parentheses: they start
 * after the last ')'. \return NULL when the line is malformed. */
static const char *
env_proc_stat_fields(const char *line)
{
	const char *p = strrchr(line, ')');

	return p != NULL ? p + 1 : NULL;
}

uint64_t
env_proc_stat_start_time(const char *line)
{
	const char *p = env_proc_stat_fields(line);
	char *end;
	uint64_t value;
	int field;

	if (p == NULL) {
		return 0;
	}
	for (field = 3; field < 22; field++) {
		p += strspn(p, " ");
		if (*p == '\0') {
			return 0;
		}
		p += strcspn(p, " ");
	}
	p += strspn(p, " ");
	if (*p < '0' || *p > '9') {
		return 0;
	}
	errno = 0;
	value = strtoull(p, &end, 10);
	if (errno != 0 || (*end != ' ' && *end != '\n' && *end != '\0')) {
		return 0;
	}
	return value;
}

/* Read /proc/<pid>/stat into buf. \return 0, or -ENOENT (no such process). */
static int
env_proc_stat_read(int pid, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	if (pid <= 0) {
		return -ENOENT;
	}
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return -ENOENT;
	}
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0) {
		return -ENOENT;
	}
	buf[n] = '\0';
	return 0;
}

uint64_t
sl_env_proc_start_time(int pid)
{
	char buf[1024];

	return env_proc_stat_read(pid, buf, sizeof(buf)) == 0 ? env_proc_stat_start_time(buf) : 0;
}

bool
sl_env_proc_alive(int pid, uint64_t start_time)
{
	const char *state;
	char buf[1024];

	if (env_proc_stat_read(pid, buf, sizeof(buf)) != 0 ||
	    env_proc_stat_start_time(buf) != start_time) {
		return false;
	}
	/* Field 3, the state: a zombie has released its memory and file descriptors. */
	state = env_proc_stat_fields(buf);
	state += strspn(state, " ");
	return *state != 'Z' && *state != 'X' && *state != 'x';
}
