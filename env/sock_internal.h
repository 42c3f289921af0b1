/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/** \file
 * Private layout of sockets and poll groups, shared by sock.c and sock_group.c.
 */
#ifndef SLUICE_SOCK_INTERNAL_H
#define SLUICE_SOCK_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "sluice/sock.h"

/* Most events one sl_sock_group_poll() call handles. */
#define SOCK_GROUP_MAX_EVENTS 64

struct sl_sock {
	int fd;
	bool is_unix;
	bool is_listener;
	/* Options handed down to accepted sockets. */
	struct sl_sock_opts opts;
	void *ctx;

	/* Poll group membership. */
	struct sl_sock_group *group;
	sl_sock_cb cb;
	void *cb_arg;
	uint32_t events;
	TAILQ_ENTRY(sl_sock) link;

	/* A Unix listener removes its file on close, if the file is still the one it made. */
	char *unix_path;
	dev_t unix_dev;
	ino_t unix_ino;
};

struct sl_sock_group {
	int epfd;
	struct sl_poller *poller;
	void *ctx;
	TAILQ_HEAD(, sl_sock) socks;
	unsigned int nsocks;

	/*
	 * The batch being dispatched by sl_sock_group_poll(). A socket removed or closed by
	 * a callback has its later entries cleared here, so no callback sees a freed socket.
	 */
	struct epoll_event batch[SOCK_GROUP_MAX_EVENTS];
	int batch_len;
	bool polling;
	/* sl_sock_group_close() ran inside a callback: free when the poll returns. */
	bool close_pending;
};

/** Detach sock from its group (no-op if none). Called by sl_sock_close(). */
void sock_group_detach(struct sl_sock *sock);

#endif /* SLUICE_SOCK_INTERNAL_H */
