/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * Poll groups: one epoll fd per group, registered on the owning sl_thread as a single
 * fd poller, so a group whose sockets are quiet costs the thread nothing. Sockets are
 * level-triggered: a callback that leaves data unread is called again next poll.
 *
 * Callbacks may close or remove any socket of the group, including their own, and may
 * close the group itself once it is empty. A removed socket's later entries in the
 * batch being dispatched are cleared (the batch is at most SOCK_GROUP_MAX_EVENTS long,
 * so the scan is cheap, and removals are rare), and a group closed mid-batch is freed
 * when the batch ends.
 */

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "sluice/log.h"
#include "sluice/sock.h"
#include "sluice/thread.h"
#include "sock_internal.h"

static int
sock_group_poller(void *arg)
{
	struct sl_sock_group *group = arg;

	return sl_sock_group_poll(group, SOCK_GROUP_MAX_EVENTS) > 0 ? SL_POLLER_BUSY
								    : SL_POLLER_IDLE;
}

struct sl_sock_group *
sl_sock_group_create(void *ctx)
{
	struct sl_sock_group *group;

	group = calloc(1, sizeof(*group));
	if (group == NULL) {
		return NULL;
	}
	group->ctx = ctx;
	TAILQ_INIT(&group->socks);
	group->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (group->epfd < 0) {
		SL_ERRLOG("epoll_create1: %m\n");
		free(group);
		return NULL;
	}
	/* Without a current thread the group is polled by hand (tools, fuzzers). */
	if (sl_get_thread() != NULL) {
		group->poller = sl_poller_register_fd(group->epfd, EPOLLIN, sock_group_poller,
						      group, "sock_group");
		if (group->poller == NULL) {
			SL_ERRLOG("cannot register the poll group's fd poller: %m\n");
			close(group->epfd);
			free(group);
			return NULL;
		}
	}
	return group;
}

void *
sl_sock_group_get_ctx(struct sl_sock_group *group)
{
	return group->ctx;
}

int
sl_sock_group_add_sock(struct sl_sock_group *group, struct sl_sock *sock, uint32_t events,
		       sl_sock_cb cb, void *cb_arg)
{
	struct epoll_event ev = {.events = events, .data.ptr = sock};

	if (group == NULL || sock == NULL || cb == NULL) {
		return -EINVAL;
	}
	if (sock->group != NULL) {
		return -EBUSY;
	}
	if (epoll_ctl(group->epfd, EPOLL_CTL_ADD, sock->fd, &ev) != 0) {
		return -errno;
	}
	sock->group = group;
	sock->cb = cb;
	sock->cb_arg = cb_arg;
	sock->events = events;
	TAILQ_INSERT_TAIL(&group->socks, sock, link);
	group->nsocks++;
	return 0;
}

int
sl_sock_group_set_events(struct sl_sock_group *group, struct sl_sock *sock, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = sock};

	if (sock == NULL || sock->group != group || group == NULL) {
		return -EINVAL;
	}
	if (events == sock->events) {
		return 0;
	}
	if (epoll_ctl(group->epfd, EPOLL_CTL_MOD, sock->fd, &ev) != 0) {
		return -errno;
	}
	sock->events = events;
	return 0;
}

static void
sock_group_scrub_batch(struct sl_sock_group *group, const struct sl_sock *sock)
{
	for (int i = 0; i < group->batch_len; i++) {
		if (group->batch[i].data.ptr == sock) {
			group->batch[i].data.ptr = NULL;
		}
	}
}

void
sock_group_detach(struct sl_sock *sock)
{
	struct sl_sock_group *group = sock->group;

	if (group == NULL) {
		return;
	}
	/* Fails only if the fd was closed behind our back; the list is what matters. */
	epoll_ctl(group->epfd, EPOLL_CTL_DEL, sock->fd, NULL);
	TAILQ_REMOVE(&group->socks, sock, link);
	group->nsocks--;
	if (group->polling) {
		sock_group_scrub_batch(group, sock);
	}
	sock->group = NULL;
	sock->cb = NULL;
	sock->cb_arg = NULL;
	sock->events = 0;
}

int
sl_sock_group_remove_sock(struct sl_sock_group *group, struct sl_sock *sock)
{
	if (sock == NULL || group == NULL || sock->group != group) {
		return -EINVAL;
	}
	sock_group_detach(sock);
	return 0;
}

static void
sock_group_free(struct sl_sock_group *group)
{
	close(group->epfd);
	free(group);
}

int
sl_sock_group_poll(struct sl_sock_group *group, int max_events)
{
	int n, count = 0;

	if (group == NULL || group->polling) {
		/* Re-entering the batch being dispatched would double-deliver its events. */
		return -EINVAL;
	}
	if (max_events <= 0 || max_events > SOCK_GROUP_MAX_EVENTS) {
		max_events = SOCK_GROUP_MAX_EVENTS;
	}
	n = epoll_wait(group->epfd, group->batch, max_events, 0);
	if (n < 0) {
		return errno == EINTR ? 0 : -errno;
	}
	group->batch_len = n;
	group->polling = true;
	for (int i = 0; i < n; i++) {
		struct sl_sock *sock = group->batch[i].data.ptr;

		if (sock == NULL) {
			continue;
		}
		sock->cb(sock->cb_arg, group, sock, group->batch[i].events);
		count++;
	}
	group->polling = false;
	group->batch_len = 0;
	if (group->close_pending) {
		sock_group_free(group);
	}
	return count;
}

int
sl_sock_group_close(struct sl_sock_group **pgroup)
{
	struct sl_sock_group *group;

	if (pgroup == NULL || *pgroup == NULL) {
		return 0;
	}
	group = *pgroup;
	if (group->nsocks != 0) {
		return -EBUSY;
	}
	sl_poller_unregister(&group->poller);
	*pgroup = NULL;
	if (group->polling) {
		group->close_pending = true;
	} else {
		sock_group_free(group);
	}
	return 0;
}
