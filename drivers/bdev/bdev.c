/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/* The bdev registry: modules, register/unregister, descriptors, claims, aliases,
 * and the "bdev" subsystem. Control path only; the I/O path is in bdev_io.c. */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <uuid/uuid.h>

#include "sluice/env.h"
#include "sluice/log.h"
#include "sluice/subsystem.h"
#include "sluice/util.h"

#include "bdev_internal.h"

SL_LOG_REGISTER_COMPONENT(bdev)

/* Open/close may run on any thread: the lists below are guarded by this mutex.
 * Nothing on the I/O path takes it. */
pthread_mutex_t g_bdev_mutex = PTHREAD_MUTEX_INITIALIZER;

static TAILQ_HEAD(sl_bdev_list, sl_bdev) g_bdevs = TAILQ_HEAD_INITIALIZER(g_bdevs);
static TAILQ_HEAD(, sl_bdev_module) g_modules = TAILQ_HEAD_INITIALIZER(g_modules);
static bool g_bdev_initialized;

/* ---- Modules ----------------------------------------------------------------- */

void
sl_bdev_module_list_add(struct sl_bdev_module *module)
{
	if (sl_bdev_module_find(module->name) != NULL) {
		SL_ERRLOG("bdev module %s registered twice\n", module->name);
		abort();
	}
	TAILQ_INSERT_TAIL(&g_modules, module, link);
}

struct sl_bdev_module *
sl_bdev_module_find(const char *name)
{
	struct sl_bdev_module *m;

	TAILQ_FOREACH (m, &g_modules, link) {
		if (strcmp(m->name, name) == 0) {
			return m;
		}
	}
	return NULL;
}

static void
bdev_modules_fini(struct sl_bdev_module *upto)
{
	struct sl_bdev_module *m;

	TAILQ_FOREACH (m, &g_modules, link) {
		if (m == upto) {
			break;
		}
		if (m->module_fini != NULL) {
			m->module_fini();
		}
	}
}

int
sl_bdev_initialize(void)
{
	struct sl_bdev_module *m;
	int rc;

	if (g_bdev_initialized) {
		return -EALREADY;
	}
	/* Zeroes for write-zeroes emulation: DMA-safe, so any module can take it. */
	g_bdev_zero_buf = sl_dma_zmalloc(BDEV_ZERO_BUF_SIZE, 4096, NULL);
	if (g_bdev_zero_buf == NULL) {
		SL_ERRLOG("bdev: cannot allocate the %u-byte zero buffer\n", BDEV_ZERO_BUF_SIZE);
		return -ENOMEM;
	}
	TAILQ_FOREACH (m, &g_modules, link) {
		if (m->module_init == NULL) {
			continue;
		}
		rc = m->module_init();
		if (rc != 0) {
			SL_ERRLOG("bdev module %s failed to initialise: %s\n", m->name,
				  strerror(-rc));
			bdev_modules_fini(m);
			sl_dma_free(g_bdev_zero_buf);
			g_bdev_zero_buf = NULL;
			return rc;
		}
	}
	g_bdev_initialized = true;
	return 0;
}

struct bdev_finish_ctx {
	sl_bdev_op_done_cb cb;
	void *cb_arg;
};

static void bdev_finish_next(void *arg, int rc);

static void
bdev_finish_done(struct bdev_finish_ctx *ctx)
{
	bdev_modules_fini(NULL);
	sl_dma_free(g_bdev_zero_buf);
	g_bdev_zero_buf = NULL;
	g_bdev_initialized = false;
	if (ctx->cb != NULL) {
		ctx->cb(ctx->cb_arg, 0);
	}
	free(ctx);
}

static void
bdev_finish_retry(void *arg)
{
	bdev_finish_next(arg, 0);
}

/* Unregister bdevs one at a time, newest first: a bdev built on another (a future
 * virtual bdev) goes before its base. */
static void
bdev_finish_next(void *arg, int rc)
{
	struct bdev_finish_ctx *ctx = arg;
	struct sl_bdev *bdev;
	bool empty;

	if (rc != 0) {
		SL_WARNLOG("bdev: unregister during finish: %s\n", strerror(-rc));
	}
	pthread_mutex_lock(&g_bdev_mutex);
	TAILQ_FOREACH_REVERSE(bdev, &g_bdevs, sl_bdev_list, link)
	{
		if (!bdev->removing) {
			break;
		}
	}
	empty = TAILQ_EMPTY(&g_bdevs);
	pthread_mutex_unlock(&g_bdev_mutex);
	if (bdev != NULL) {
		sl_bdev_unregister(bdev, bdev_finish_next, ctx);
	} else if (empty) {
		bdev_finish_done(ctx);
	} else if (sl_thread_send_msg(sl_get_thread(), bdev_finish_retry, ctx) != 0) {
		/* Removals started by others are still running: look again shortly. */
		SL_ERRLOG("bdev: finish cannot wait for pending removals\n");
		bdev_finish_done(ctx);
	}
}

void
sl_bdev_finish(sl_bdev_op_done_cb cb, void *cb_arg)
{
	struct bdev_finish_ctx *ctx = calloc(1, sizeof(*ctx));

	if (ctx == NULL) {
		if (cb != NULL) {
			cb(cb_arg, -ENOMEM);
		}
		return;
	}
	ctx->cb = cb;
	ctx->cb_arg = cb_arg;
	bdev_finish_next(ctx, 0);
}

/* ---- Lookup ------------------------------------------------------------------ */

static bool
bdev_has_name(struct sl_bdev *bdev, const char *name)
{
	struct bdev_alias *a;
	char uuid[SL_BDEV_UUID_STR_LEN];

	if (strcmp(bdev->name, name) == 0) {
		return true;
	}
	TAILQ_FOREACH (a, &bdev->priv->aliases, link) {
		if (strcmp(a->name, name) == 0) {
			return true;
		}
	}
	/* As in SPDK, a bdev answers to its UUID too. */
	sl_bdev_uuid_fmt(bdev->uuid, uuid, sizeof(uuid));
	return strcasecmp(uuid, name) == 0;
}

struct sl_bdev *
bdev_get_by_name_locked(const char *name)
{
	struct sl_bdev *bdev;

	TAILQ_FOREACH (bdev, &g_bdevs, link) {
		if (bdev_has_name(bdev, name)) {
			return bdev;
		}
	}
	return NULL;
}

struct sl_bdev *
sl_bdev_get_by_name(const char *name)
{
	struct sl_bdev *bdev;

	if (name == NULL) {
		return NULL;
	}
	pthread_mutex_lock(&g_bdev_mutex);
	bdev = bdev_get_by_name_locked(name);
	pthread_mutex_unlock(&g_bdev_mutex);
	return bdev;
}

struct sl_bdev *
sl_bdev_first(void)
{
	return TAILQ_FIRST(&g_bdevs);
}

struct sl_bdev *
sl_bdev_next(struct sl_bdev *prev)
{
	return TAILQ_NEXT(prev, link);
}

/* ---- Register ---------------------------------------------------------------- */

static int
bdev_check_fields(const struct sl_bdev *bdev)
{
	if (bdev->name == NULL || bdev->name[0] == '\0' ||
	    strlen(bdev->name) >= SL_BDEV_MAX_NAME_LEN) {
		SL_ERRLOG("bdev register: missing or too long name\n");
		return -EINVAL;
	}
	if (bdev->fn_table == NULL || bdev->module == NULL ||
	    bdev->fn_table->submit_request == NULL || bdev->fn_table->get_io_channel == NULL) {
		SL_ERRLOG("bdev %s: no module or incomplete fn_table\n", bdev->name);
		return -EINVAL;
	}
	if (!SL_IS_POW2(bdev->blocklen) || bdev->blocklen < 512) {
		SL_ERRLOG("bdev %s: block size %" PRIu32 " is not a power of two >= 512\n",
			  bdev->name, bdev->blocklen);
		return -EINVAL;
	}
	if (bdev->blockcnt == 0 || bdev->blockcnt > UINT64_MAX / bdev->blocklen) {
		SL_ERRLOG("bdev %s: block count %" PRIu64 " is zero or too large\n", bdev->name,
			  bdev->blockcnt);
		return -EINVAL;
	}
	if (bdev->required_alignment > 1 && !SL_IS_POW2(bdev->required_alignment)) {
		SL_ERRLOG("bdev %s: alignment %" PRIu32 " is not a power of two\n", bdev->name,
			  bdev->required_alignment);
		return -EINVAL;
	}
	return 0;
}

static bool
bdev_uuid_is_null(const uint8_t uuid[16])
{
	static const uint8_t zero[16];

	return memcmp(uuid, zero, 16) == 0;
}

static struct sl_bdev *
bdev_get_by_uuid_locked(const uint8_t uuid[16])
{
	struct sl_bdev *bdev;

	TAILQ_FOREACH (bdev, &g_bdevs, link) {
		if (memcmp(bdev->uuid, uuid, 16) == 0) {
			return bdev;
		}
	}
	return NULL;
}

/* Cache what the I/O path asks for on every I/O. */
static void
bdev_cache_io_params(struct sl_bdev *bdev)
{
	const struct sl_bdev_fn_table *fn = bdev->fn_table;
	int t;

	bdev->blocklen_shift = (uint8_t)__builtin_ctz(bdev->blocklen);
	bdev->rw_split_check =
		bdev->max_transfer_blocks != 0 || bdev->max_segments != 0 ||
		(bdev->split_on_optimal_io_boundary && bdev->optimal_io_boundary != 0);
	bdev->bounce_check = bdev->required_alignment > 1 || bdev->needs_dma;
	for (t = 0; t < SL_BDEV_NUM_IO_TYPES; t++) {
		bdev->io_native[t] = false;
	}
	bdev->io_native[SL_BDEV_IO_TYPE_READ] = true;
	bdev->io_native[SL_BDEV_IO_TYPE_WRITE] = true;
	if (fn->io_type_supported != NULL) {
		for (t = SL_BDEV_IO_TYPE_FLUSH; t < SL_BDEV_NUM_IO_TYPES; t++) {
			bdev->io_native[t] = fn->io_type_supported(bdev->ctxt, t);
		}
	}
}

static struct sl_bdev_priv *
bdev_priv_alloc(struct sl_bdev *bdev)
{
	struct sl_bdev_priv *priv = calloc(1, sizeof(*priv));
	int ctx_size;

	if (priv == NULL) {
		return NULL;
	}
	priv->bdev = bdev;
	TAILQ_INIT(&priv->descs);
	TAILQ_INIT(&priv->aliases);
	sl_bdev_io_stat_init(&priv->retired_stat);
	ctx_size = bdev->module->get_ctx_size ? bdev->module->get_ctx_size() : 0;
	priv->driver_ctx_size = SL_ALIGN_UP((uint32_t)SL_MAX(ctx_size, 0), 64u);
	return priv;
}

int
sl_bdev_register(struct sl_bdev *bdev)
{
	char uuid[SL_BDEV_UUID_STR_LEN];
	int rc;

	rc = bdev_check_fields(bdev);
	if (rc != 0) {
		return rc;
	}
	if (bdev_uuid_is_null(bdev->uuid)) {
		uuid_generate(bdev->uuid);
	}
	sl_bdev_uuid_fmt(bdev->uuid, uuid, sizeof(uuid));
	bdev->priv = bdev_priv_alloc(bdev);
	if (bdev->priv == NULL) {
		return -ENOMEM;
	}
	bdev->removing = false;
	bdev_cache_io_params(bdev);

	pthread_mutex_lock(&g_bdev_mutex);
	if (bdev_get_by_name_locked(bdev->name) != NULL) {
		SL_ERRLOG("bdev %s already exists\n", bdev->name);
		rc = -EEXIST;
	} else if (bdev_get_by_uuid_locked(bdev->uuid) != NULL) {
		SL_ERRLOG("bdev %s: a bdev with UUID %s already exists\n", bdev->name, uuid);
		rc = -EEXIST;
	} else {
		TAILQ_INSERT_TAIL(&g_bdevs, bdev, link);
	}
	pthread_mutex_unlock(&g_bdev_mutex);
	if (rc != 0) {
		free(bdev->priv);
		bdev->priv = NULL;
		return rc;
	}
	/* The bdev itself is the io_device: one channel per thread that does I/O. */
	sl_io_device_register(bdev, bdev_channel_create, bdev_channel_destroy,
			      sizeof(struct bdev_channel_ctx), bdev->name);
	bdev->priv->io_device_registered = true;
	SL_DEBUGLOG(bdev, "registered bdev %s (%s, %" PRIu64 " x %" PRIu32 ")\n", bdev->name,
		    bdev->module->name, bdev->blockcnt, bdev->blocklen);
	return 0;
}

/* ---- Unregister -------------------------------------------------------------- */

static void
bdev_priv_free(struct sl_bdev_priv *priv)
{
	struct bdev_alias *a;

	while ((a = TAILQ_FIRST(&priv->aliases)) != NULL) {
		TAILQ_REMOVE(&priv->aliases, a, link);
		free(a->name);
		free(a);
	}
	free(priv->claim_owner);
	free(priv);
}

static void
bdev_unregister_finish(struct sl_bdev_priv *priv, int rc)
{
	sl_bdev_op_done_cb cb = priv->unregister_cb;
	void *cb_arg = priv->unregister_arg;

	bdev_priv_free(priv);
	if (cb != NULL) {
		cb(cb_arg, rc);
	}
}

void
sl_bdev_destruct_done(struct sl_bdev *bdev, int rc)
{
	bdev_unregister_finish(bdev->priv, rc);
}

/* Last step, on the unregistering thread: no descriptor, channel or I/O is left. */
static void
bdev_destruct(void *arg)
{
	struct sl_bdev *bdev = arg;
	struct sl_bdev_priv *priv = bdev->priv;
	int rc = 0;

	pthread_mutex_lock(&g_bdev_mutex);
	TAILQ_REMOVE(&g_bdevs, bdev, link);
	pthread_mutex_unlock(&g_bdev_mutex);
	SL_DEBUGLOG(bdev, "destructing bdev %s\n", bdev->name);
	if (bdev->fn_table->destruct != NULL) {
		/* The module may free bdev in there: only priv is used afterwards. */
		rc = bdev->fn_table->destruct(bdev->ctxt);
		if (rc > 0) {
			return;
		}
		if (rc < 0) {
			SL_WARNLOG("bdev destruct failed: %s\n", strerror(-rc));
		}
	}
	bdev_unregister_finish(priv, rc < 0 ? rc : 0);
}

static void
bdev_destruct_if_idle(struct sl_bdev *bdev)
{
	struct sl_bdev_priv *priv = bdev->priv;
	bool expected = false;

	if (!priv->io_device_gone || atomic_load(&priv->live_channels) != 0) {
		return;
	}
	if (!atomic_compare_exchange_strong(&priv->destructing, &expected, true)) {
		return;
	}
	if (sl_get_thread() == priv->unregister_thread ||
	    sl_thread_send_msg(priv->unregister_thread, bdev_destruct, bdev) != 0) {
		bdev_destruct(bdev);
	}
}

static void
bdev_io_device_gone(void *io_device)
{
	struct sl_bdev *bdev = io_device;

	bdev->priv->io_device_gone = true;
	bdev_destruct_if_idle(bdev);
}

void
bdev_channel_retired(struct sl_bdev *bdev, const struct sl_bdev_io_stat *stat)
{
	struct sl_bdev_priv *priv = bdev->priv;

	pthread_mutex_lock(&g_bdev_mutex);
	sl_bdev_io_stat_add(&priv->retired_stat, stat);
	pthread_mutex_unlock(&g_bdev_mutex);
	if (atomic_fetch_sub(&priv->live_channels, 1) == 1 && priv->io_device_gone) {
		bdev_destruct_if_idle(bdev);
	}
}

/* Every descriptor is closed: drop the io_device, which waits for the channels. */
static void
bdev_unregister_continue(void *arg)
{
	struct sl_bdev *bdev = arg;

	sl_io_device_unregister(bdev, bdev_io_device_gone);
}

static void
bdev_desc_free(struct sl_bdev_desc *desc)
{
	free(desc);
}

/*
 * On the descriptor's thread: deliver an event unless the descriptor was closed since,
 * and free a closed descriptor once its last event message has run.
 */
static void
bdev_desc_deliver(struct sl_bdev_desc *desc, enum sl_bdev_event_type type)
{
	bool closed;

	pthread_mutex_lock(&g_bdev_mutex);
	closed = desc->closed;
	pthread_mutex_unlock(&g_bdev_mutex);
	if (!closed) {
		desc->event_cb(type, desc->bdev, desc->event_ctx);
	}
	pthread_mutex_lock(&g_bdev_mutex);
	desc->pending_events--;
	closed = desc->closed && desc->pending_events == 0;
	pthread_mutex_unlock(&g_bdev_mutex);
	if (closed) {
		bdev_desc_free(desc);
	}
}

static void
bdev_desc_remove_msg(void *arg)
{
	bdev_desc_deliver(arg, SL_BDEV_EVENT_REMOVE);
}

static void
bdev_desc_resize_msg(void *arg)
{
	bdev_desc_deliver(arg, SL_BDEV_EVENT_RESIZE);
}

/* Send msg_fn (one of the two above) to every descriptor of bdev. */
static void
bdev_notify_descs_locked(struct sl_bdev *bdev, sl_msg_fn msg_fn, const char *what)
{
	struct sl_bdev_desc *desc;

	TAILQ_FOREACH (desc, &bdev->priv->descs, link) {
		desc->pending_events++;
		if (sl_thread_send_msg(desc->thread, msg_fn, desc) != 0) {
			desc->pending_events--;
			SL_ERRLOG("bdev %s: cannot notify a descriptor of the %s\n", bdev->name,
				  what);
		}
	}
}

void
sl_bdev_unregister(struct sl_bdev *bdev, sl_bdev_op_done_cb cb, void *cb_arg)
{
	struct sl_bdev_priv *priv = bdev->priv;
	bool idle;

	pthread_mutex_lock(&g_bdev_mutex);
	if (bdev->removing) {
		pthread_mutex_unlock(&g_bdev_mutex);
		if (cb != NULL) {
			cb(cb_arg, -EBUSY);
		}
		return;
	}
	bdev->removing = true;
	priv->unregister_cb = cb;
	priv->unregister_arg = cb_arg;
	priv->unregister_thread = sl_get_thread();
	bdev_notify_descs_locked(bdev, bdev_desc_remove_msg, "removal");
	idle = TAILQ_EMPTY(&priv->descs);
	pthread_mutex_unlock(&g_bdev_mutex);
	SL_DEBUGLOG(bdev, "unregistering bdev %s\n", bdev->name);
	if (idle) {
		bdev_unregister_continue(bdev);
	}
}

int
sl_bdev_unregister_by_name(const char *name, struct sl_bdev_module *module, sl_bdev_op_done_cb cb,
			   void *cb_arg)
{
	struct sl_bdev *bdev;
	bool removing = false;

	pthread_mutex_lock(&g_bdev_mutex);
	bdev = bdev_get_by_name_locked(name);
	if (bdev != NULL && bdev->module != module) {
		bdev = NULL;
	}
	if (bdev != NULL) {
		removing = bdev->removing;
	}
	pthread_mutex_unlock(&g_bdev_mutex);
	if (bdev == NULL) {
		SL_ERRLOG("no %s bdev named %s\n", module->name, name);
		return -ENODEV;
	}
	if (removing) {
		return -EBUSY;
	}
	sl_bdev_unregister(bdev, cb, cb_arg);
	return 0;
}

/* ---- Descriptors ------------------------------------------------------------- */

int
sl_bdev_open(const char *name, bool write, sl_bdev_event_cb event_cb, void *event_ctx,
	     struct sl_bdev_desc **descp)
{
	struct sl_bdev_desc *desc;
	struct sl_bdev *bdev;
	int rc = 0;

	if (event_cb == NULL || sl_get_thread() == NULL || name == NULL) {
		return -EINVAL;
	}
	desc = calloc(1, sizeof(*desc));
	if (desc == NULL) {
		return -ENOMEM;
	}
	pthread_mutex_lock(&g_bdev_mutex);
	bdev = bdev_get_by_name_locked(name);
	if (bdev == NULL || bdev->removing) {
		rc = -ENODEV;
	} else if (write && bdev->priv->claim_owner != NULL) {
		SL_ERRLOG("bdev %s is claimed by %s: cannot open it for writing\n", name,
			  bdev->priv->claim_owner);
		rc = -EPERM;
	} else {
		desc->bdev = bdev;
		desc->thread = sl_get_thread();
		desc->event_cb = event_cb;
		desc->event_ctx = event_ctx;
		desc->write = write;
		TAILQ_INSERT_TAIL(&bdev->priv->descs, desc, link);
	}
	pthread_mutex_unlock(&g_bdev_mutex);
	if (rc != 0) {
		free(desc);
		return rc;
	}
	*descp = desc;
	return 0;
}

static void
bdev_release_claim_locked(struct sl_bdev_desc *desc)
{
	struct sl_bdev_priv *priv = desc->bdev->priv;

	if (priv->claim_desc == desc) {
		free(priv->claim_owner);
		priv->claim_owner = NULL;
		priv->claim_desc = NULL;
	}
}

void
sl_bdev_close(struct sl_bdev_desc *desc)
{
	struct sl_bdev *bdev = desc->bdev;
	bool last, free_now;

	if (desc->thread != sl_get_thread()) {
		SL_ERRLOG("bdev %s: descriptor closed off its thread\n", bdev->name);
	}
	pthread_mutex_lock(&g_bdev_mutex);
	TAILQ_REMOVE(&bdev->priv->descs, desc, link);
	bdev_release_claim_locked(desc);
	desc->closed = true;
	free_now = desc->pending_events == 0;
	last = bdev->removing && TAILQ_EMPTY(&bdev->priv->descs);
	pthread_mutex_unlock(&g_bdev_mutex);
	if (free_now) {
		bdev_desc_free(desc);
	}
	if (last) {
		struct sl_thread *t = bdev->priv->unregister_thread;

		if (t == sl_get_thread() ||
		    sl_thread_send_msg(t, bdev_unregister_continue, bdev) != 0) {
			bdev_unregister_continue(bdev);
		}
	}
}

struct sl_bdev *
sl_bdev_desc_get_bdev(struct sl_bdev_desc *desc)
{
	return desc->bdev;
}

struct sl_io_channel *
sl_bdev_get_io_channel(struct sl_bdev_desc *desc)
{
	return sl_get_io_channel(desc->bdev);
}

/* ---- Claims ------------------------------------------------------------------ */

static int
bdev_claim(struct sl_bdev *bdev, struct sl_bdev_desc *desc, const char *owner)
{
	struct sl_bdev_priv *priv = bdev->priv;
	char *copy;
	int rc = 0;

	copy = strdup(owner);
	if (copy == NULL) {
		return -ENOMEM;
	}
	pthread_mutex_lock(&g_bdev_mutex);
	if (priv->claim_owner != NULL) {
		SL_ERRLOG("bdev %s already claimed by %s\n", bdev->name, priv->claim_owner);
		rc = -EPERM;
	} else {
		priv->claim_owner = copy;
		priv->claim_desc = desc;
		copy = NULL;
	}
	pthread_mutex_unlock(&g_bdev_mutex);
	free(copy);
	return rc;
}

int
sl_bdev_claim(struct sl_bdev_desc *desc, const char *owner)
{
	if (!desc->write) {
		SL_ERRLOG("bdev %s: a claim needs a writable descriptor\n", desc->bdev->name);
		return -EBADF;
	}
	return bdev_claim(desc->bdev, desc, owner);
}

void
sl_bdev_release_claim(struct sl_bdev_desc *desc)
{
	pthread_mutex_lock(&g_bdev_mutex);
	bdev_release_claim_locked(desc);
	pthread_mutex_unlock(&g_bdev_mutex);
}

int
sl_bdev_module_claim_bdev(struct sl_bdev *bdev, struct sl_bdev_desc *desc,
			  struct sl_bdev_module *module)
{
	return bdev_claim(bdev, desc, module->name);
}

void
sl_bdev_module_release_bdev(struct sl_bdev *bdev)
{
	pthread_mutex_lock(&g_bdev_mutex);
	free(bdev->priv->claim_owner);
	bdev->priv->claim_owner = NULL;
	bdev->priv->claim_desc = NULL;
	pthread_mutex_unlock(&g_bdev_mutex);
}

const char *
sl_bdev_get_claim_owner(const struct sl_bdev *bdev)
{
	return bdev->priv->claim_owner;
}

/* ---- Aliases and resize ------------------------------------------------------ */

int
sl_bdev_alias_add(struct sl_bdev *bdev, const char *alias)
{
	struct bdev_alias *a;
	int rc = 0;

	if (alias == NULL || alias[0] == '\0' || strlen(alias) >= SL_BDEV_MAX_NAME_LEN) {
		return -EINVAL;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL || (a->name = strdup(alias)) == NULL) {
		free(a);
		return -ENOMEM;
	}
	pthread_mutex_lock(&g_bdev_mutex);
	if (bdev_get_by_name_locked(alias) != NULL) {
		SL_ERRLOG("bdev %s: alias %s already exists\n", bdev->name, alias);
		rc = -EEXIST;
	} else {
		TAILQ_INSERT_TAIL(&bdev->priv->aliases, a, link);
	}
	pthread_mutex_unlock(&g_bdev_mutex);
	if (rc != 0) {
		free(a->name);
		free(a);
	}
	return rc;
}

int
sl_bdev_alias_del(struct sl_bdev *bdev, const char *alias)
{
	struct bdev_alias *a;

	pthread_mutex_lock(&g_bdev_mutex);
	TAILQ_FOREACH (a, &bdev->priv->aliases, link) {
		if (strcmp(a->name, alias) == 0) {
			TAILQ_REMOVE(&bdev->priv->aliases, a, link);
			break;
		}
	}
	pthread_mutex_unlock(&g_bdev_mutex);
	if (a == NULL) {
		return -ENOENT;
	}
	free(a->name);
	free(a);
	return 0;
}

int
sl_bdev_for_each_alias(const struct sl_bdev *bdev, void (*fn)(const char *alias, void *ctx),
		       void *ctx)
{
	struct bdev_alias *a;
	int n = 0;

	pthread_mutex_lock(&g_bdev_mutex);
	TAILQ_FOREACH (a, &bdev->priv->aliases, link) {
		fn(a->name, ctx);
		n++;
	}
	pthread_mutex_unlock(&g_bdev_mutex);
	return n;
}

int
sl_bdev_notify_blockcnt_change(struct sl_bdev *bdev, uint64_t blockcnt)
{
	if (blockcnt == 0 || blockcnt > UINT64_MAX / bdev->blocklen) {
		return -EINVAL;
	}
	pthread_mutex_lock(&g_bdev_mutex);
	bdev->blockcnt = blockcnt;
	bdev_notify_descs_locked(bdev, bdev_desc_resize_msg, "resize");
	pthread_mutex_unlock(&g_bdev_mutex);
	return 0;
}

/* ---- Getters ----------------------------------------------------------------- */

const char *
sl_bdev_get_name(const struct sl_bdev *bdev)
{
	return bdev->name;
}

const char *
sl_bdev_get_product_name(const struct sl_bdev *bdev)
{
	return bdev->product_name ? bdev->product_name : "";
}

const char *
sl_bdev_get_module_name(const struct sl_bdev *bdev)
{
	return bdev->module->name;
}

uint32_t
sl_bdev_get_block_size(const struct sl_bdev *bdev)
{
	return bdev->blocklen;
}

uint64_t
sl_bdev_get_num_blocks(const struct sl_bdev *bdev)
{
	return bdev->blockcnt;
}

uint64_t
sl_bdev_get_size(const struct sl_bdev *bdev)
{
	return bdev->blockcnt * bdev->blocklen;
}

const uint8_t *
sl_bdev_get_uuid(const struct sl_bdev *bdev)
{
	return bdev->uuid;
}

void
sl_bdev_get_uuid_str(const struct sl_bdev *bdev, char *buf, size_t len)
{
	sl_bdev_uuid_fmt(bdev->uuid, buf, len);
}

uint32_t
sl_bdev_get_buf_align(const struct sl_bdev *bdev)
{
	return bdev->required_alignment > 1 ? bdev->required_alignment : 1;
}

uint32_t
sl_bdev_get_optimal_io_boundary(const struct sl_bdev *bdev)
{
	return bdev->optimal_io_boundary;
}

uint32_t
sl_bdev_get_max_transfer_blocks(const struct sl_bdev *bdev)
{
	return bdev->max_transfer_blocks;
}

bool
sl_bdev_has_write_cache(const struct sl_bdev *bdev)
{
	return bdev->write_cache;
}

bool
sl_bdev_io_type_supported_native(struct sl_bdev *bdev, enum sl_bdev_io_type type)
{
	if (type <= SL_BDEV_IO_TYPE_INVALID || type >= SL_BDEV_NUM_IO_TYPES) {
		return false;
	}
	return bdev->io_native[type];
}

bool
sl_bdev_io_type_supported(struct sl_bdev *bdev, enum sl_bdev_io_type type)
{
	if (type == SL_BDEV_IO_TYPE_WRITE_ZEROES) {
		return true; /* emulated with writes of zeroes */
	}
	return sl_bdev_io_type_supported_native(bdev, type);
}

const char *
sl_bdev_io_type_name(enum sl_bdev_io_type type)
{
	static const char *const names[SL_BDEV_NUM_IO_TYPES] = {
		[SL_BDEV_IO_TYPE_READ] = "read",
		[SL_BDEV_IO_TYPE_WRITE] = "write",
		[SL_BDEV_IO_TYPE_FLUSH] = "flush",
		[SL_BDEV_IO_TYPE_UNMAP] = "unmap",
		[SL_BDEV_IO_TYPE_WRITE_ZEROES] = "write_zeroes",
		[SL_BDEV_IO_TYPE_RESET] = "reset",
	};

	if (type <= SL_BDEV_IO_TYPE_INVALID || type >= SL_BDEV_NUM_IO_TYPES) {
		return "invalid";
	}
	return names[type];
}

/* ---- The "bdev" subsystem ---------------------------------------------------- */

static void
bdev_subsystem_init(sl_subsystem_done_fn done)
{
	done(sl_bdev_initialize());
}

static void
bdev_subsystem_fini_done(void *arg, int rc)
{
	sl_subsystem_done_fn done = (sl_subsystem_done_fn)(uintptr_t)arg;

	done(rc);
}

static void
bdev_subsystem_fini(sl_subsystem_done_fn done)
{
	if (!g_bdev_initialized) {
		done(0);
		return;
	}
	sl_bdev_finish(bdev_subsystem_fini_done, (void *)(uintptr_t)done);
}

/* SPDK's layout: options first, then each module's options, then one create call
 * per bdev in registration order (bases before what is built on them). */
static void
bdev_subsystem_write_config(json_t *config)
{
	struct sl_bdev_module *m;
	struct sl_bdev *bdev;

	bdev_write_opts_json(config);
	TAILQ_FOREACH (m, &g_modules, link) {
		if (m->config_json != NULL) {
			m->config_json(config);
		}
	}
	pthread_mutex_lock(&g_bdev_mutex);
	TAILQ_FOREACH (bdev, &g_bdevs, link) {
		if (!bdev->removing && bdev->fn_table->write_config_json != NULL) {
			bdev->fn_table->write_config_json(bdev, config);
		}
	}
	pthread_mutex_unlock(&g_bdev_mutex);
}

static struct sl_subsystem g_bdev_subsystem = {
	.name = "bdev",
	.init = bdev_subsystem_init,
	.fini = bdev_subsystem_fini,
	.write_config_json = bdev_subsystem_write_config,
};
SL_SUBSYSTEM_REGISTER(g_bdev_subsystem)
