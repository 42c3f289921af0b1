/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * I/O devices and their per-thread channels.
 *
 * A channel is the state one thread keeps for one device (an NVMe qpair, a socket
 * group); it is created on the first get on that thread and destroyed after the last
 * put, by a message, so that a put followed by a get in the same callback reuses it.
 *
 * g_devlist_lock protects the device list, the device counters and every thread's
 * channel list (which sl_for_each_channel reads from other threads). It is taken on
 * the control path only (get, put, iterate, unregister); I/O reaches its channel
 * context by pointer arithmetic. Lock order: g_devlist_lock, then g_threads_lock.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/log.h"
#include "sluice/thread.h"
#include "sluice/util.h"
#include "thread_internal.h"

#define IO_DEVICE_NAME_LEN 64

struct io_device {
	void *io_device;
	sl_io_channel_create_cb create_cb;
	sl_io_channel_destroy_cb destroy_cb;
	sl_io_device_unregister_cb unregister_cb;
	struct sl_thread *unregister_thread;
	uint32_t ctx_size;
	/* Channels alive, including one being created or destroyed right now. */
	uint32_t channel_count;
	uint32_t for_each_count;
	bool unregistered;
	bool unregister_done;
	char name[IO_DEVICE_NAME_LEN];
	TAILQ_ENTRY(io_device) tailq;
};

struct sl_io_channel_iter {
	struct io_device *dev;
	sl_channel_msg fn;
	sl_channel_for_each_cpl cpl;
	void *ctx;
	struct sl_thread *orig;
	struct sl_thread *cur;
	struct sl_io_channel *ch;
	int status;
};

static pthread_mutex_t g_devlist_lock = PTHREAD_MUTEX_INITIALIZER;
static TAILQ_HEAD(, io_device) g_io_devices = TAILQ_HEAD_INITIALIZER(g_io_devices);

static struct io_device *
io_device_find_locked(const void *io_device)
{
	struct io_device *dev;

	TAILQ_FOREACH (dev, &g_io_devices, tailq) {
		if (dev->io_device == io_device) {
			return dev;
		}
	}
	return NULL;
}

static struct sl_io_channel *
io_channel_find_locked(struct sl_thread *thread, const struct io_device *dev)
{
	struct sl_io_channel *ch;

	TAILQ_FOREACH (ch, &thread->io_channels, tailq) {
		if (ch->dev == dev) {
			return ch;
		}
	}
	return NULL;
}

/* \return whether the unregistration may complete now (and claims it). Lock held. */
static bool
io_device_unregister_ready_locked(struct io_device *dev)
{
	if (!dev->unregistered || dev->unregister_done || dev->channel_count > 0 ||
	    dev->for_each_count > 0) {
		return false;
	}
	dev->unregister_done = true;
	return true;
}

static void
io_device_unregister_done(void *arg)
{
	struct io_device *dev = arg;

	if (dev->unregister_cb != NULL) {
		dev->unregister_cb(dev->io_device);
	}
	if (dev->unregister_thread != NULL) {
		thread_cpl_release(dev->unregister_thread);
	}
	free(dev);
}

/* Run the unregister callback on the thread that asked for it (here if none did). */
static void
io_device_unregister_complete(struct io_device *dev)
{
	struct sl_thread *thread = dev->unregister_thread;

	if (thread == NULL) {
		io_device_unregister_done(dev);
		return;
	}
	if (thread_cpl_send(thread, io_device_unregister_done, dev) != 0) {
		SL_ERRLOG("io_device %s: thread %s, which unregistered it, was forced to exit: "
			  "unregister callback dropped\n",
			  dev->name, thread->name);
		free(dev);
		thread_cpl_release(thread);
	}
}

void
sl_io_device_register(void *io_device, sl_io_channel_create_cb create_cb,
		      sl_io_channel_destroy_cb destroy_cb, uint32_t ctx_size, const char *name)
{
	struct io_device *dev;

	dev = calloc(1, sizeof(*dev));
	if (dev == NULL) {
		SL_ERRLOG("io_device %s: out of memory\n", name ? name : "");
		return;
	}
	dev->io_device = io_device;
	dev->create_cb = create_cb;
	dev->destroy_cb = destroy_cb;
	dev->ctx_size = ctx_size;
	if (name != NULL) {
		snprintf(dev->name, sizeof(dev->name), "%s", name);
	} else {
		snprintf(dev->name, sizeof(dev->name), "%p", io_device);
	}
	pthread_mutex_lock(&g_devlist_lock);
	if (io_device_find_locked(io_device) != NULL) {
		pthread_mutex_unlock(&g_devlist_lock);
		SL_ERRLOG("io_device %s (%p) is already registered\n", dev->name, io_device);
		free(dev);
		return;
	}
	TAILQ_INSERT_TAIL(&g_io_devices, dev, tailq);
	pthread_mutex_unlock(&g_devlist_lock);
}

void
sl_io_device_unregister(void *io_device, sl_io_device_unregister_cb unregister_cb)
{
	struct io_device *dev;
	bool ready;

	pthread_mutex_lock(&g_devlist_lock);
	dev = io_device_find_locked(io_device);
	if (dev == NULL) {
		pthread_mutex_unlock(&g_devlist_lock);
		SL_ERRLOG("io_device %p is not registered\n", io_device);
		return;
	}
	/* Out of the list: new gets fail; live channels keep their pointer to dev. */
	TAILQ_REMOVE(&g_io_devices, dev, tailq);
	dev->unregistered = true;
	dev->unregister_cb = unregister_cb;
	dev->unregister_thread = sl_get_thread();
	if (dev->unregister_thread != NULL) {
		/* It must not exit before the completion is sent to it. */
		thread_cpl_hold(dev->unregister_thread);
	}
	ready = io_device_unregister_ready_locked(dev);
	pthread_mutex_unlock(&g_devlist_lock);
	if (ready) {
		io_device_unregister_complete(dev);
	}
}

static struct sl_io_channel *
io_channel_alloc_locked(struct sl_thread *thread, struct io_device *dev)
{
	struct sl_io_channel *ch;
	size_t size = SL_ALIGN_UP(sizeof(*ch) + dev->ctx_size, SL_CACHE_LINE);

	ch = aligned_alloc(SL_CACHE_LINE, size);
	if (ch == NULL) {
		return NULL;
	}
	memset(ch, 0, size);
	ch->thread = thread;
	ch->dev = dev;
	ch->ref = 1;
	TAILQ_INSERT_TAIL(&thread->io_channels, ch, tailq);
	dev->channel_count++;
	return ch;
}

/* Take a channel out of its thread and its device's count; free it. */
static void
io_channel_release(struct sl_io_channel *ch)
{
	struct io_device *dev = ch->dev;
	bool ready;

	pthread_mutex_lock(&g_devlist_lock);
	dev->channel_count--;
	ready = io_device_unregister_ready_locked(dev);
	pthread_mutex_unlock(&g_devlist_lock);
	free(ch);
	if (ready) {
		io_device_unregister_complete(dev);
	}
}

struct sl_io_channel *
sl_get_io_channel(void *io_device)
{
	struct sl_thread *thread = sl_get_thread();
	struct sl_io_channel *ch;
	struct io_device *dev;
	int rc;

	if (thread == NULL) {
		SL_ERRLOG("io_device %p: channel requested off any thread\n", io_device);
		return NULL;
	}
	pthread_mutex_lock(&g_devlist_lock);
	dev = io_device_find_locked(io_device);
	if (dev == NULL) {
		pthread_mutex_unlock(&g_devlist_lock);
		SL_ERRLOG("io_device %p is not registered\n", io_device);
		return NULL;
	}
	ch = io_channel_find_locked(thread, dev);
	if (ch != NULL) {
		/* Revives a channel whose deferred destruction is queued, too. */
		ch->ref++;
		pthread_mutex_unlock(&g_devlist_lock);
		return ch;
	}
	ch = io_channel_alloc_locked(thread, dev);
	pthread_mutex_unlock(&g_devlist_lock);
	if (ch == NULL) {
		return NULL;
	}
	/* Outside the lock: create_cb may get channels to other devices. */
	rc = dev->create_cb != NULL ? dev->create_cb(io_device, ch->ctx) : 0;
	if (rc != 0) {
		SL_ERRLOG("io_device %s: channel creation on thread %s failed: %s\n", dev->name,
			  thread->name, strerror(-rc));
		pthread_mutex_lock(&g_devlist_lock);
		TAILQ_REMOVE(&thread->io_channels, ch, tailq);
		pthread_mutex_unlock(&g_devlist_lock);
		io_channel_release(ch);
		return NULL;
	}
	return ch;
}

static void
io_channel_put_deferred(void *arg)
{
	struct sl_io_channel *ch = arg;
	struct io_device *dev = ch->dev;

	pthread_mutex_lock(&g_devlist_lock);
	ch->destroy_pending = false;
	if (ch->ref > 0) {
		/* Got again since the last put. */
		pthread_mutex_unlock(&g_devlist_lock);
		return;
	}
	TAILQ_REMOVE(&ch->thread->io_channels, ch, tailq);
	pthread_mutex_unlock(&g_devlist_lock);
	/* dev->channel_count still counts ch: unregistration waits for this call. */
	if (dev->destroy_cb != NULL) {
		dev->destroy_cb(dev->io_device, ch->ctx);
	}
	io_channel_release(ch);
}

void
sl_put_io_channel(struct sl_io_channel *ch)
{
	bool defer;

	if (ch == NULL) {
		return;
	}
	if (ch->thread != sl_get_thread()) {
		SL_ERRLOG("io_device %s: channel of thread %s put on another thread\n",
			  ch->dev->name, ch->thread->name);
	}
	pthread_mutex_lock(&g_devlist_lock);
	if (ch->ref == 0) {
		pthread_mutex_unlock(&g_devlist_lock);
		SL_ERRLOG("io_device %s: channel put once too often\n", ch->dev->name);
		return;
	}
	ch->ref--;
	defer = ch->ref == 0 && !ch->destroy_pending;
	if (defer) {
		ch->destroy_pending = true;
	}
	pthread_mutex_unlock(&g_devlist_lock);
	if (defer && sl_thread_send_msg(ch->thread, io_channel_put_deferred, ch) != 0) {
		io_channel_put_deferred(ch);
	}
}

void *
sl_io_channel_get_ctx(struct sl_io_channel *ch)
{
	return ch->ctx;
}

struct sl_io_channel *
sl_io_channel_from_ctx(void *ctx)
{
	return SL_CONTAINEROF(ctx, struct sl_io_channel, ctx);
}

struct sl_thread *
sl_io_channel_get_thread(struct sl_io_channel *ch)
{
	return ch->thread;
}

void *
sl_io_channel_get_io_device(struct sl_io_channel *ch)
{
	return ch->dev->io_device;
}

/* --- for_each_channel ----------------------------------------------------------- */

/* The iteration is over: its device's unregistration may go on. */
static void
for_each_channel_end(struct sl_io_channel_iter *i)
{
	struct io_device *dev = i->dev;
	bool ready;

	thread_cpl_release(i->orig);
	pthread_mutex_lock(&g_devlist_lock);
	dev->for_each_count--;
	ready = io_device_unregister_ready_locked(dev);
	pthread_mutex_unlock(&g_devlist_lock);
	free(i);
	if (ready) {
		io_device_unregister_complete(dev);
	}
}

static void
for_each_channel_cpl(void *arg)
{
	struct sl_io_channel_iter *i = arg;

	i->cpl(i, i->status);
	for_each_channel_end(i);
}

static void
for_each_channel_finish(struct sl_io_channel_iter *i, int status)
{
	i->status = status;
	i->ch = NULL;
	if (thread_cpl_send(i->orig, for_each_channel_cpl, i) != 0) {
		SL_ERRLOG("io_device %s: thread %s, which started a for_each_channel, was forced "
			  "to exit: completion dropped\n",
			  i->dev->name, i->orig->name);
		for_each_channel_end(i);
	}
}

static void for_each_channel_step(void *arg);

/* Send the iteration to the next thread after prev holding a live channel to the
 * device. \return whether it was sent. Both locks keep the target alive meanwhile. */
static bool
for_each_channel_next(struct sl_io_channel_iter *i, struct sl_thread *prev)
{
	struct sl_io_channel *ch;
	struct sl_thread *t;
	bool sent = false;

	pthread_mutex_lock(&g_devlist_lock);
	pthread_mutex_lock(&g_threads_lock);
	for (t = thread_next_locked(prev); t != NULL && !sent; t = thread_next_locked(t)) {
		ch = io_channel_find_locked(t, i->dev);
		if (ch != NULL && ch->ref > 0) {
			i->cur = t;
			sent = sl_thread_send_msg(t, for_each_channel_step, i) == 0;
		}
	}
	pthread_mutex_unlock(&g_threads_lock);
	pthread_mutex_unlock(&g_devlist_lock);
	return sent;
}

static void
for_each_channel_step(void *arg)
{
	struct sl_io_channel_iter *i = arg;
	struct sl_io_channel *ch;

	pthread_mutex_lock(&g_devlist_lock);
	ch = io_channel_find_locked(i->cur, i->dev);
	pthread_mutex_unlock(&g_devlist_lock);
	if (ch == NULL || ch->ref == 0) {
		/* Put since the step was sent: skip this thread. */
		sl_for_each_channel_continue(i, 0);
		return;
	}
	i->ch = ch;
	i->fn(i);
}

void
sl_for_each_channel(void *io_device, sl_channel_msg fn, void *ctx, sl_channel_for_each_cpl cpl)
{
	struct sl_io_channel_iter *i;
	struct io_device *dev;

	i = calloc(1, sizeof(*i));
	if (i == NULL || sl_get_thread() == NULL) {
		SL_ERRLOG("sl_for_each_channel: %s\n", i ? "not called on a thread" : "no memory");
		free(i);
		return;
	}
	i->fn = fn;
	i->cpl = cpl;
	i->ctx = ctx;
	i->orig = sl_get_thread();
	pthread_mutex_lock(&g_devlist_lock);
	dev = io_device_find_locked(io_device);
	if (dev != NULL) {
		dev->for_each_count++;
	}
	pthread_mutex_unlock(&g_devlist_lock);
	if (dev == NULL) {
		SL_ERRLOG("io_device %p is not registered\n", io_device);
		free(i);
		return;
	}
	i->dev = dev;
	thread_cpl_hold(i->orig);
	if (!for_each_channel_next(i, NULL)) {
		for_each_channel_finish(i, 0);
	}
}

void
sl_for_each_channel_continue(struct sl_io_channel_iter *i, int status)
{
	if (status != 0 || !for_each_channel_next(i, i->cur)) {
		for_each_channel_finish(i, status);
	}
}

void *
sl_io_channel_iter_get_ctx(struct sl_io_channel_iter *i)
{
	return i->ctx;
}

struct sl_io_channel *
sl_io_channel_iter_get_channel(struct sl_io_channel_iter *i)
{
	return i->ch;
}

void *
sl_io_channel_iter_get_io_device(struct sl_io_channel_iter *i)
{
	return i->dev->io_device;
}

/* --- Threads that exit -------------------------------------------------------- */

void
io_channel_thread_log(struct sl_thread *thread)
{
	struct sl_io_channel *ch;

	pthread_mutex_lock(&g_devlist_lock);
	TAILQ_FOREACH (ch, &thread->io_channels, tailq) {
		SL_ERRLOG("thread %s still holds a channel to %s (%u references)\n", thread->name,
			  ch->dev->name, ch->ref);
	}
	pthread_mutex_unlock(&g_devlist_lock);
}

void
io_channel_thread_release(struct sl_thread *thread)
{
	struct sl_io_channel *ch;

	/* Only a forced exit leaves channels: their owners leaked them, so their
	 * destroy callbacks are not run (the device may be gone); the memory is freed
	 * and the devices' unregistration may complete. */
	for (;;) {
		pthread_mutex_lock(&g_devlist_lock);
		ch = TAILQ_FIRST(&thread->io_channels);
		if (ch != NULL) {
			TAILQ_REMOVE(&thread->io_channels, ch, tailq);
		}
		pthread_mutex_unlock(&g_devlist_lock);
		if (ch == NULL) {
			break;
		}
		SL_ERRLOG("thread %s: releasing leaked channel to %s\n", thread->name,
			  ch->dev->name);
		io_channel_release(ch);
	}
}
