/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/* Helpers for modules and users: iovec copies, UUID text, create-parameter checks,
 * and allocation queries (block status, SEEK_HOLE). */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <uuid/uuid.h>

#include "sluice/log.h"
#include "sluice/util.h"

#include "bdev_internal.h"

size_t
sl_bdev_copy_to_iovs(struct iovec *iovs, int iovcnt, const void *buf, size_t len)
{
	const uint8_t *src = buf;
	size_t done = 0;
	int i;

	for (i = 0; i < iovcnt && done < len; i++) {
		size_t n = SL_MIN(iovs[i].iov_len, len - done);

		memcpy(iovs[i].iov_base, src + done, n);
		done += n;
	}
	return done;
}

size_t
sl_bdev_copy_from_iovs(void *buf, struct iovec *iovs, int iovcnt, size_t len)
{
	uint8_t *dst = buf;
	size_t done = 0;
	int i;

	for (i = 0; i < iovcnt && done < len; i++) {
		size_t n = SL_MIN(iovs[i].iov_len, len - done);

		memcpy(dst + done, iovs[i].iov_base, n);
		done += n;
	}
	return done;
}

void
sl_bdev_zero_iovs(struct iovec *iovs, int iovcnt, size_t len)
{
	size_t done = 0;
	int i;

	for (i = 0; i < iovcnt && done < len; i++) {
		size_t n = SL_MIN(iovs[i].iov_len, len - done);

		memset(iovs[i].iov_base, 0, n);
		done += n;
	}
}

int
sl_bdev_uuid_parse(const char *str, uint8_t uuid[16])
{
	return uuid_parse(str, uuid) == 0 ? 0 : -EINVAL;
}

void
sl_bdev_uuid_fmt(const uint8_t uuid[16], char *buf, size_t len)
{
	char tmp[SL_BDEV_UUID_STR_LEN];

	uuid_unparse_lower(uuid, tmp);
	snprintf(buf, len, "%s", tmp);
}

int
sl_bdev_check_create_params(const char *name, uint64_t num_blocks, uint32_t block_size, char *err,
			    size_t errlen)
{
	if (name != NULL && (name[0] == '\0' || strlen(name) >= SL_BDEV_MAX_NAME_LEN)) {
		snprintf(err, errlen, "name must be 1 to %d characters", SL_BDEV_MAX_NAME_LEN - 1);
		return -EINVAL;
	}
	if (!SL_IS_POW2(block_size) || block_size < 512) {
		snprintf(err, errlen, "block_size %" PRIu32 " is not a power of two >= 512",
			 block_size);
		return -EINVAL;
	}
	if (num_blocks == 0) {
		snprintf(err, errlen, "num_blocks must be > 0");
		return -EINVAL;
	}
	if (num_blocks > UINT64_MAX / block_size) {
		snprintf(err, errlen,
			 "num_blocks %" PRIu64 " x block_size %" PRIu32 " overflows 64 bits",
			 num_blocks, block_size);
		return -EINVAL;
	}
	if (name != NULL && sl_bdev_get_by_name(name) != NULL) {
		snprintf(err, errlen, "bdev %s already exists", name);
		return -EEXIST;
	}
	return 0;
}

int
sl_bdev_check_disk_params(const struct sl_bdev_disk_params *p, uint8_t uuid_out[16], char *err,
			  size_t errlen)
{
	if (p->md_size != 0 || p->dif_type != 0 || p->md_interleave || p->dif_is_head_of_md) {
		snprintf(err, errlen,
			 "md_size %" PRIu32 " / dif_type %" PRId32 ": metadata and protection "
			 "information are not supported",
			 p->md_size, p->dif_type);
		return -ENOTSUP;
	}
	if (p->physical_block_size != 0 &&
	    (!SL_IS_POW2(p->physical_block_size) || p->physical_block_size < p->block_size)) {
		snprintf(err, errlen,
			 "physical_block_size %" PRIu32
			 " is not a power of two >= block_size %" PRIu32,
			 p->physical_block_size, p->block_size);
		return -EINVAL;
	}
	if (p->uuid != NULL && sl_bdev_uuid_parse(p->uuid, uuid_out) != 0) {
		snprintf(err, errlen, "uuid '%s' is not a UUID", p->uuid);
		return -EINVAL;
	}
	return 0;
}

/* Clip module extents to [offset, end), merge neighbours with equal flags. */
static int
bdev_extents_tidy(struct sl_bdev_extent *ext, int n, uint64_t offset, uint64_t end)
{
	int i, out = 0;

	for (i = 0; i < n; i++) {
		uint64_t s = SL_MAX(ext[i].offset, offset);
		uint64_t e = SL_MIN(ext[i].offset + ext[i].length, end);

		if (e <= s) {
			continue;
		}
		if (out > 0 && ext[out - 1].flags == ext[i].flags &&
		    ext[out - 1].offset + ext[out - 1].length == s) {
			ext[out - 1].length += e - s;
			continue;
		}
		ext[out].offset = s;
		ext[out].length = e - s;
		ext[out].flags = ext[i].flags;
		out++;
	}
	return out;
}

int
sl_bdev_get_allocation(struct sl_bdev_desc *desc, uint64_t offset, uint64_t nbytes,
		       struct sl_bdev_extent *extents, uint32_t max_extents)
{
	struct sl_bdev *bdev = desc->bdev;
	uint64_t size = sl_bdev_get_size(bdev);
	int n;

	if (max_extents == 0 || nbytes == 0 || offset >= size || nbytes > size - offset) {
		return -EINVAL;
	}
	if (bdev->removing) {
		return -ENODEV;
	}
	if (bdev->fn_table->get_allocation == NULL) {
		extents[0].offset = offset;
		extents[0].length = nbytes;
		extents[0].flags = 0;
		return 1;
	}
	n = bdev->fn_table->get_allocation(bdev->ctxt, offset, nbytes, extents, max_extents);
	if (n < 0) {
		return n;
	}
	n = bdev_extents_tidy(extents, SL_MIN(n, (int)max_extents), offset, offset + nbytes);
	if (n == 0) {
		/* The module described nothing of the range: call it data. */
		extents[0].offset = offset;
		extents[0].length = nbytes;
		extents[0].flags = 0;
		n = 1;
	}
	return n;
}
