/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/* Transport IDs in their string form, "trtype:PCIe traddr:0000:00:04.0", as SPDK
 * writes them, so that scripts and configs move between the two unchanged. */

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "nvme_internal.h"

const char *
sl_nvme_transport_type_str(enum sl_nvme_transport_type trtype)
{
	switch (trtype) {
	case SL_NVME_TRANSPORT_PCIE:
		return "PCIe";
	case SL_NVME_TRANSPORT_TCP:
		return "TCP";
	case SL_NVME_TRANSPORT_RDMA:
		return "RDMA";
	}
	return NULL;
}

static int
nvme_trtype_parse(enum sl_nvme_transport_type *trtype, const char *val)
{
	if (strcasecmp(val, "PCIe") == 0) {
		*trtype = SL_NVME_TRANSPORT_PCIE;
	} else if (strcasecmp(val, "TCP") == 0) {
		*trtype = SL_NVME_TRANSPORT_TCP;
	} else if (strcasecmp(val, "RDMA") == 0) {
		*trtype = SL_NVME_TRANSPORT_RDMA;
	} else {
		SL_ERRLOG("unknown trtype '%s' (PCIe, TCP, RDMA)\n", val);
		return -EINVAL;
	}
	return 0;
}

static int
nvme_trid_set(char *dst, size_t cap, const char *key, const char *val)
{
	if (strlen(val) >= cap) {
		SL_ERRLOG("transport ID %s '%s' is longer than %zu characters\n", key, val,
			  cap - 1);
		return -EINVAL;
	}
	strcpy(dst, val);
	return 0;
}

static int
nvme_trid_parse_pair(struct sl_nvme_transport_id *trid, const char *key, const char *val)
{
	if (strcasecmp(key, "trtype") == 0) {
		return nvme_trtype_parse(&trid->trtype, val);
	}
	if (strcasecmp(key, "adrfam") == 0) {
		return nvme_trid_set(trid->adrfam, sizeof(trid->adrfam), key, val);
	}
	if (strcasecmp(key, "traddr") == 0) {
		return nvme_trid_set(trid->traddr, sizeof(trid->traddr), key, val);
	}
	if (strcasecmp(key, "trsvcid") == 0) {
		return nvme_trid_set(trid->trsvcid, sizeof(trid->trsvcid), key, val);
	}
	if (strcasecmp(key, "subnqn") == 0) {
		return nvme_trid_set(trid->subnqn, sizeof(trid->subnqn), key, val);
	}
	SL_ERRLOG("unknown transport ID key '%s'\n", key);
	return -EINVAL;
}

/* Split one "key:value" (or "key=value") token; the value may itself hold colons. */
static int
nvme_trid_parse_token(struct sl_nvme_transport_id *trid, char *tok)
{
	char *sep = strpbrk(tok, ":=");

	if (sep == NULL || sep == tok || sep[1] == '\0') {
		SL_ERRLOG("transport ID token '%s' is not key:value\n", tok);
		return -EINVAL;
	}
	*sep = '\0';
	return nvme_trid_parse_pair(trid, tok, sep + 1);
}

static int
nvme_trid_normalise_pci(struct sl_nvme_transport_id *trid)
{
	struct sl_pci_addr addr;

	if (trid->traddr[0] == '\0') {
		return 0;
	}
	if (sl_pci_addr_parse(&addr, trid->traddr) != 0) {
		SL_ERRLOG("traddr '%s' is not a PCI address (dddd:bb:dd.f)\n", trid->traddr);
		return -EINVAL;
	}
	return sl_pci_addr_fmt(trid->traddr, sizeof(trid->traddr), &addr);
}

int
sl_nvme_transport_id_parse(struct sl_nvme_transport_id *trid, const char *str)
{
	char buf[1024];
	char *save = NULL;
	char *tok;
	bool have_trtype = false;
	int rc;

	if (trid == NULL || str == NULL || strlen(str) >= sizeof(buf)) {
		return -EINVAL;
	}
	memset(trid, 0, sizeof(*trid));
	trid->trtype = SL_NVME_TRANSPORT_PCIE;
	strcpy(buf, str);
	for (tok = strtok_r(buf, " \t\n", &save); tok != NULL;
	     tok = strtok_r(NULL, " \t\n", &save)) {
		rc = nvme_trid_parse_token(trid, tok);
		if (rc != 0) {
			return rc;
		}
		have_trtype |= strncasecmp(tok, "trtype", 6) == 0;
	}
	if (!have_trtype && trid->traddr[0] == '\0') {
		SL_ERRLOG("transport ID '%s' has neither trtype nor traddr\n", str);
		return -EINVAL;
	}
	if (trid->trtype == SL_NVME_TRANSPORT_PCIE) {
		return nvme_trid_normalise_pci(trid);
	}
	return 0;
}

int
sl_nvme_transport_id_fmt(char *buf, size_t len, const struct sl_nvme_transport_id *trid)
{
	const char *trtype = sl_nvme_transport_type_str(trid->trtype);
	int n;

	n = snprintf(buf, len, "trtype:%s", trtype ? trtype : "?");
	if (trid->adrfam[0] != '\0') {
		n += snprintf(buf + SL_MIN((size_t)n, len), len - SL_MIN((size_t)n, len),
			      " adrfam:%s", trid->adrfam);
	}
	if (trid->traddr[0] != '\0') {
		n += snprintf(buf + SL_MIN((size_t)n, len), len - SL_MIN((size_t)n, len),
			      " traddr:%s", trid->traddr);
	}
	if (trid->trsvcid[0] != '\0') {
		n += snprintf(buf + SL_MIN((size_t)n, len), len - SL_MIN((size_t)n, len),
			      " trsvcid:%s", trid->trsvcid);
	}
	if (trid->subnqn[0] != '\0') {
		n += snprintf(buf + SL_MIN((size_t)n, len), len - SL_MIN((size_t)n, len),
			      " subnqn:%s", trid->subnqn);
	}
	return (size_t)n < len ? 0 : -ENOSPC;
}

int
sl_nvme_transport_id_compare(const struct sl_nvme_transport_id *a,
			     const struct sl_nvme_transport_id *b)
{
	int rc;

	if (a->trtype != b->trtype) {
		return a->trtype < b->trtype ? -1 : 1;
	}
	rc = strcasecmp(a->traddr, b->traddr);
	if (rc != 0) {
		return rc;
	}
	rc = strcasecmp(a->trsvcid, b->trsvcid);
	if (rc != 0) {
		return rc;
	}
	return strcmp(a->subnqn, b->subnqn);
}
