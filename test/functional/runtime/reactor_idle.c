/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * reactor_idle: run reactors with nothing to do but a 10 ms timed poller for a while
 * and report the CPU they used, so that a test can check that an adaptive reactor
 * sleeps and a busy-polling one spins. Also a short example of the reactor API.
 *
 *   reactor_idle [-m mask] [-b] [-n] [-t seconds]
 *     -m  core mask (default: the first core this process may use)
 *     -b  busy polling (default: adaptive)
 *     -n  do not pin the reactors
 *     -t  seconds to run (default 10)
 *
 * Prints one line: mode=... seconds=... cpu_pct=... run_pct=... ticks=... sleeps=...
 * cpu_pct is CPU time over wall time; run_pct is CPU time over the time the process
 * could run, i.e. wall time minus the time its threads waited on a run queue
 * (schedstat), which tells a spinning reactor from a starved one on a loaded machine.
 */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "sluice/reactor.h"
#include "sluice/thread.h"

struct idle_run {
	struct sl_poller *timer;
	uint64_t end_tick;
	uint64_t ticks;
};

static int
idle_tick(void *arg)
{
	struct idle_run *run = arg;

	run->ticks++;
	if (sl_get_ticks() >= run->end_tick) {
		sl_poller_unregister(&run->timer);
		sl_reactors_stop();
	}
	return SL_POLLER_BUSY;
}

static void
idle_start(void *arg)
{
	struct idle_run *run = arg;

	run->timer = sl_poller_register(idle_tick, run, 10000, "idle_tick");
	if (run->timer == NULL) {
		sl_reactors_stop();
	}
}

static double
cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

/* Seconds the calling thread (reactor 0) waited on a run queue: schedstat field 2. */
static double
runqueue_seconds(void)
{
	unsigned long long on_cpu, waited = 0;
	FILE *f = fopen("/proc/thread-self/schedstat", "r");

	if (f == NULL) {
		return 0;
	}
	if (fscanf(f, "%llu %llu", &on_cpu, &waited) != 2) {
		waited = 0;
	}
	fclose(f);
	return (double)waited / 1e9;
}

static double
wall_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	struct sl_reactors_opts opts = {.mode = SL_REACTOR_ADAPTIVE};
	struct idle_run run = {0};
	struct sl_reactor_info info;
	uint64_t sleeps = 0;
	double seconds = 10, cpu0, wall0, wait0, cpu, wall, wait;
	struct sl_thread *thread;
	uint32_t i;
	int ch;

	while ((ch = getopt(argc, argv, "m:bnt:")) != -1) {
		switch (ch) {
		case 'm':
			opts.cpumask = optarg;
			break;
		case 'b':
			opts.mode = SL_REACTOR_BUSY_POLL;
			break;
		case 'n':
			opts.no_pin = true;
			break;
		case 't':
			seconds = atof(optarg);
			break;
		default:
			fprintf(stderr, "usage: %s [-m mask] [-b] [-n] [-t seconds]\n", argv[0]);
			return 2;
		}
	}
	if (sl_reactors_init(&opts) != 0) {
		fprintf(stderr, "reactor_idle: cannot initialise the reactors\n");
		return 1;
	}
	thread = sl_thread_create("idle", NULL);
	if (thread == NULL) {
		sl_reactors_fini();
		return 1;
	}
	run.end_tick = sl_get_ticks() + (uint64_t)(seconds * (double)sl_get_ticks_hz());
	sl_thread_send_msg(thread, idle_start, &run);

	cpu0 = cpu_seconds();
	wall0 = wall_seconds();
	wait0 = runqueue_seconds();
	sl_reactors_start();
	cpu = cpu_seconds() - cpu0;
	wall = wall_seconds() - wall0;
	wait = runqueue_seconds() - wait0;

	for (i = 0; i < sl_reactor_count(); i++) {
		if (sl_reactor_get_info(i, &info) == 0) {
			sleeps += info.sleeps;
		}
	}
	printf("mode=%s reactors=%u seconds=%.2f cpu_pct=%.2f run_pct=%.2f ticks=%llu "
	       "sleeps=%llu\n",
	       opts.mode == SL_REACTOR_BUSY_POLL ? "busy" : "adaptive", sl_reactor_count(), wall,
	       100.0 * cpu / wall, 100.0 * cpu / (wall - wait > 0 ? wall - wait : wall),
	       (unsigned long long)run.ticks, (unsigned long long)sleeps);
	sl_reactors_fini();
	return 0;
}
