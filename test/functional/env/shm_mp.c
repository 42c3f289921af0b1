/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * Two processes, one shm id: the primary reserves a region and writes a pattern; a
 * secondary (once with proc type "secondary", once "auto") finds it by name, checks the
 * pattern, sees the same IOVA, writes back, and reserves a region of its own that the
 * primary then finds.
 *
 * Usage: env_shm_mp_ft <shm_id>          (primary; starts the secondaries itself)
 *        env_shm_mp_ft <shm_id> secondary|auto
 * With $SLUICE_FT_KEEP_FILES set, the primary leaves its files (DPDK's default).
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sluice/env.h"

#define REGION     "sl_ft_shared"
#define REGION_LEN (1 << 20)
#define BACK_LEN   4096
#define MAGIC      0x736c7569636521ULL

/* The head of the shared region; the pattern follows, the replies sit at the end. */
struct shared_head {
	uint64_t magic;
	uint64_t primary_iova;
	int32_t primary_pid;
	int32_t reply_pid;
	uint64_t reply_iova;
	uint32_t reply_count;
	char reply[64];
};

static uint8_t
pattern(size_t i)
{
	return (uint8_t)(i * 7 + 13);
}

static int
env_up(int shm_id, enum sl_proc_type type)
{
	struct sl_env_opts opts;
	int rc;

	sl_env_opts_init(&opts);
	opts.name = "env_shm_mp_ft";
	opts.shm_id = shm_id;
	opts.proc_type = type;
	/*
	 * The primary removes its hugepage files and runtime dir when it finishes, unless
	 * the test checks that contrib/setup.sh cleanup removes them instead.
	 */
	opts.no_shconf = type != SL_PROC_PRIMARY || getenv("SLUICE_FT_KEEP_FILES") != NULL;
	rc = sl_env_init(&opts);
	if (rc != 0) {
		fprintf(stderr, "FAIL: sl_env_init(shm id %d): %s\n", shm_id, strerror(-rc));
	}
	return rc;
}

static int
run_secondary(int shm_id, const char *mode)
{
	struct shared_head *head;
	size_t len = 0, i;
	uint8_t *p, *mine;
	int bad = 0;

	if (env_up(shm_id, strcmp(mode, "auto") == 0 ? SL_PROC_AUTO : SL_PROC_SECONDARY) != 0) {
		return 1;
	}
	if (sl_env_is_primary()) {
		fprintf(stderr, "FAIL: %s: this process came up as primary\n", mode);
		bad = 1;
	}
	head = sl_shm_lookup(REGION, &len);
	if (head == NULL || len < REGION_LEN || head->magic != MAGIC) {
		fprintf(stderr, "FAIL: %s: region %s not found or wrong (len %zu)\n", mode, REGION,
			len);
		sl_env_fini();
		return 1;
	}
	p = (uint8_t *)(head + 1);
	for (i = 0; i < REGION_LEN - sizeof(*head) - BACK_LEN; i++) {
		if (p[i] != pattern(i)) {
			fprintf(stderr, "FAIL: %s: byte %zu is %u, not %u\n", mode, i, p[i],
				pattern(i));
			bad = 1;
			break;
		}
	}
	head->reply_pid = (int32_t)getpid();
	head->reply_iova = sl_vtophys(head, NULL);
	head->reply_count++;
	snprintf(head->reply, sizeof(head->reply), "%s %d was here", mode, (int)getpid());
	memset((uint8_t *)head + REGION_LEN - BACK_LEN, 0xa5, BACK_LEN);

	/* A region made by a secondary outlives it and the primary finds it. */
	mine = sl_shm_reserve(mode, 4096, 0);
	if (mine == NULL) {
		fprintf(stderr, "FAIL: %s: reserve from secondary: %s\n", mode, strerror(errno));
		bad = 1;
	} else {
		snprintf((char *)mine, 4096, "made by %s", mode);
	}
	sl_env_fini();
	return bad;
}

static int
spawn(const char *self, int shm_id, const char *mode)
{
	char id[16];
	pid_t pid;
	int status;

	snprintf(id, sizeof(id), "%d", shm_id);
	pid = fork();
	if (pid < 0) {
		return -1;
	}
	if (pid == 0) {
		execl(self, self, id, mode, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
		return -1;
	}
	return WEXITSTATUS(status);
}

static int
check_reply(struct shared_head *head, const char *mode, uint32_t count)
{
	const uint8_t *back = (const uint8_t *)head + REGION_LEN - BACK_LEN;
	char want[80], *mine;
	int bad = 0;
	size_t i;

	snprintf(want, sizeof(want), "%s %d was here", mode, (int)head->reply_pid);
	if (head->reply_count != count || strcmp(head->reply, want) != 0) {
		fprintf(stderr, "FAIL: reply from %s: '%s' (count %u)\n", mode, head->reply,
			head->reply_count);
		bad = 1;
	}
	if (head->reply_iova != head->primary_iova) {
		fprintf(stderr, "FAIL: %s sees IOVA 0x%" PRIx64 ", primary 0x%" PRIx64 "\n", mode,
			head->reply_iova, head->primary_iova);
		bad = 1;
	}
	for (i = 0; i < BACK_LEN; i++) {
		if (back[i] != 0xa5) {
			fprintf(stderr, "FAIL: %s's write-back missing at %zu\n", mode, i);
			bad = 1;
			break;
		}
	}
	snprintf(want, sizeof(want), "made by %s", mode);
	mine = sl_shm_lookup(mode, NULL);
	if (mine == NULL || strcmp(mine, want) != 0) {
		fprintf(stderr, "FAIL: region reserved by %s not found\n", mode);
		bad = 1;
	} else {
		sl_shm_free(mode);
	}
	return bad;
}

static int
run_primary(const char *self, int shm_id)
{
	static const char *const modes[] = {"secondary", "auto"};
	struct shared_head *head;
	uint8_t *p;
	int bad = 0, rc;
	size_t i;

	if (env_up(shm_id, SL_PROC_PRIMARY) != 0) {
		return 1;
	}
	head = sl_shm_reserve(REGION, REGION_LEN, 4096);
	if (head == NULL) {
		fprintf(stderr, "FAIL: reserve %s: %s\n", REGION, strerror(errno));
		sl_env_fini();
		return 1;
	}
	p = (uint8_t *)(head + 1);
	for (i = 0; i < REGION_LEN - sizeof(*head) - BACK_LEN; i++) {
		p[i] = pattern(i);
	}
	head->primary_pid = (int32_t)getpid();
	head->primary_iova = sl_vtophys(head, NULL);
	head->magic = MAGIC;
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		memset((uint8_t *)head + REGION_LEN - BACK_LEN, 0, BACK_LEN);
		rc = spawn(self, shm_id, modes[i]);
		if (rc != 0) {
			fprintf(stderr, "FAIL: %s process exited with %d\n", modes[i], rc);
			bad = 1;
			continue;
		}
		bad |= check_reply(head, modes[i], (uint32_t)i + 1);
		printf("%s: found the region, same IOVA 0x%" PRIx64 ", wrote back\n", modes[i],
		       head->reply_iova);
	}
	if (sl_shm_free(REGION) != 0) {
		fprintf(stderr, "FAIL: free %s\n", REGION);
		bad = 1;
	}
	sl_env_fini();
	return bad;
}

int
main(int argc, char **argv)
{
	int shm_id;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s <shm_id> [secondary|auto]\n", argv[0]);
		return 2;
	}
	shm_id = atoi(argv[1]);
	if (argc == 3) {
		return run_secondary(shm_id, argv[2]);
	}
	return run_primary("/proc/self/exe", shm_id);
}
