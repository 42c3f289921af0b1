/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The Sluice Authors */

/*
 * sluice-nvme-identify: print what NVMe controllers say about themselves (Identify
 * Controller and Namespace, SMART, firmware slots, error log), readable or as JSON.
 * The JSON keys are nvme-cli's (`nvme id-ctrl -o json`, `nvme id-ns -o json`), so the
 * two can be compared key by key on the same device.
 *
 * With -i <shm id> it joins the processes sharing the controllers under that id;
 * --ledger then prints the controller's ledger (who holds what) instead, and
 * --hold-lock keeps the controller lock for a while so that a test can kill it there.
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/env.h"
#include "sluice/log.h"
#include "sluice/nvme.h"
#include "sluice/util.h"

struct identify_opts {
	struct sl_nvme_transport_id trid;
	bool have_trid;
	bool json;
	uint32_t nsid; /* 0 = all active */
	int shm_id;
	bool ledger;
	uint32_t hold_lock_ms;
	/* --forge-entry PID:START:NQIDS */
	bool forge;
	int forge_pid;
	uint64_t forge_start;
	uint32_t forge_qids;
};

static struct identify_opts g_opts = {
	.shm_id = -1,
};
static json_t *g_json_ctrlrs;
static int g_rc;

static void
usage(const char *prog)
{
	printf("usage: %s [-r 'trtype:PCIe traddr:<BDF>'] [-n nsid] [--json] [-L flag]\n"
	       "       [-i shm_id] [--ledger] [--hold-lock MS] [--forge-entry PID:START:NQIDS]\n"
	       "  -r, --trid   controller to identify (default: every one bound to vfio-pci)\n"
	       "  -n, --nsid   only this namespace\n"
	       "  -j, --json   JSON output, with nvme-cli's id-ctrl / id-ns key names\n"
	       "  -L, --log    enable a debug log flag (e.g. nvme)\n"
	       "  -i, --shm-id share the controllers of the processes with this id\n"
	       "  --ledger     print each controller's ledger (processes, queues) as JSON\n"
	       "               instead of the identify data\n"
	       "  --forge-entry PID:START:NQIDS  add a ledger entry for pid PID with start time\n"
	       "                  START holding NQIDS queue IDs, as a process that died (or\n"
	       "                  whose pid was reused) would leave it (tests of the reaper)\n"
	       "  --hold-lock MS  take the controller lock and keep it MS ms (crash tests),\n"
	       "               then go on (identify data not printed)\n",
	       prog);
}

/* Identify strings are space-padded, not NUL-terminated. */
static void
copy_str(char *dst, const char *src, size_t len)
{
	memcpy(dst, src, len);
	dst[len] = '\0';
	while (len > 0 && (dst[len - 1] == ' ' || dst[len - 1] == '\0')) {
		dst[--len] = '\0';
	}
}

static void
hex_str(char *dst, const uint8_t *src, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		sprintf(dst + 2 * i, "%02x", src[i]);
	}
	dst[2 * len] = '\0';
}

/* 128-bit little-endian counters as decimal (as nvme-cli prints them). */
static void
u128_str(char *dst, size_t len, const uint8_t *src)
{
	unsigned __int128 v = 0;
	char tmp[48];
	int i, n = 0;

	for (i = 15; i >= 0; i--) {
		v = (v << 8) | src[i];
	}
	do {
		tmp[n++] = (char)('0' + (int)(v % 10));
		v /= 10;
	} while (v != 0);
	for (i = 0; i < n && (size_t)i + 1 < len; i++) {
		dst[i] = tmp[n - 1 - i];
	}
	dst[i] = '\0';
}

struct sync_ctx {
	bool done;
	struct sl_nvme_cpl cpl;
};

static void
sync_cpl(void *arg, const struct sl_nvme_cpl *cpl)
{
	struct sync_ctx *ctx = arg;

	ctx->cpl = *cpl;
	ctx->done = true;
}

static int
wait_admin(struct sl_nvme_ctrlr *ctrlr, struct sync_ctx *ctx, int rc)
{
	if (rc != 0) {
		return rc;
	}
	while (!ctx->done) {
		if (sl_nvme_ctrlr_process_admin_completions(ctrlr) < 0) {
			return -ENXIO;
		}
	}
	return sl_nvme_cpl_is_error(&ctx->cpl) ? -EIO : 0;
}

static int
get_log(struct sl_nvme_ctrlr *ctrlr, uint8_t lid, void *buf, uint32_t len)
{
	struct sync_ctx ctx = {.done = false};

	return wait_admin(ctrlr, &ctx,
			  sl_nvme_ctrlr_cmd_get_log_page(ctrlr, lid, UINT32_MAX, buf, len, 0,
							 sync_cpl, &ctx));
}

static json_t *
ctrlr_json(struct sl_nvme_ctrlr *ctrlr)
{
	const struct sl_nvme_ctrlr_data *cd = sl_nvme_ctrlr_get_data(ctrlr);
	char sn[21], mn[41], fr[9], subnqn[257], buf[64];
	json_t *j = json_object();

	copy_str(sn, cd->sn, sizeof(cd->sn));
	copy_str(mn, cd->mn, sizeof(cd->mn));
	copy_str(fr, cd->fr, sizeof(cd->fr));
	copy_str(subnqn, cd->subnqn, sizeof(cd->subnqn));
	json_object_set_new(j, "traddr",
			    json_string(sl_nvme_ctrlr_get_transport_id(ctrlr)->traddr));
	json_object_set_new(j, "vid", json_integer(cd->vid));
	json_object_set_new(j, "ssvid", json_integer(cd->ssvid));
	json_object_set_new(j, "sn", json_string(sn));
	json_object_set_new(j, "mn", json_string(mn));
	json_object_set_new(j, "fr", json_string(fr));
	json_object_set_new(j, "rab", json_integer(cd->rab));
	json_object_set_new(j, "ieee",
			    json_integer(cd->ieee[0] | cd->ieee[1] << 8 | cd->ieee[2] << 16));
	json_object_set_new(j, "cmic", json_integer(cd->cmic));
	json_object_set_new(j, "mdts", json_integer(cd->mdts));
	json_object_set_new(j, "cntlid", json_integer(cd->cntlid));
	json_object_set_new(j, "ver", json_integer(cd->ver));
	json_object_set_new(j, "rtd3r", json_integer(cd->rtd3r));
	json_object_set_new(j, "rtd3e", json_integer(cd->rtd3e));
	json_object_set_new(j, "oaes", json_integer(cd->oaes));
	json_object_set_new(j, "ctratt", json_integer(cd->ctratt));
	json_object_set_new(j, "rrls", json_integer(cd->rrls));
	json_object_set_new(j, "cntrltype", json_integer(cd->cntrltype));
	hex_str(buf, cd->fguid, sizeof(cd->fguid));
	json_object_set_new(j, "fguid", json_string(buf));
	json_object_set_new(j, "crdt1", json_integer(cd->crdt[0]));
	json_object_set_new(j, "crdt2", json_integer(cd->crdt[1]));
	json_object_set_new(j, "crdt3", json_integer(cd->crdt[2]));
	json_object_set_new(j, "oacs", json_integer(cd->oacs));
	json_object_set_new(j, "acl", json_integer(cd->acl));
	json_object_set_new(j, "aerl", json_integer(cd->aerl));
	json_object_set_new(j, "frmw", json_integer(cd->frmw));
	json_object_set_new(j, "lpa", json_integer(cd->lpa));
	json_object_set_new(j, "elpe", json_integer(cd->elpe));
	json_object_set_new(j, "npss", json_integer(cd->npss));
	json_object_set_new(j, "avscc", json_integer(cd->avscc));
	json_object_set_new(j, "apsta", json_integer(cd->apsta));
	json_object_set_new(j, "wctemp", json_integer(cd->wctemp));
	json_object_set_new(j, "cctemp", json_integer(cd->cctemp));
	json_object_set_new(j, "mtfa", json_integer(cd->mtfa));
	json_object_set_new(j, "hmpre", json_integer(cd->hmpre));
	json_object_set_new(j, "hmmin", json_integer(cd->hmmin));
	u128_str(buf, sizeof(buf), cd->tnvmcap);
	json_object_set_new(j, "tnvmcap", json_string(buf));
	u128_str(buf, sizeof(buf), cd->unvmcap);
	json_object_set_new(j, "unvmcap", json_string(buf));
	json_object_set_new(j, "rpmbs", json_integer(cd->rpmbs));
	json_object_set_new(j, "edstt", json_integer(cd->edstt));
	json_object_set_new(j, "dsto", json_integer(cd->dsto));
	json_object_set_new(j, "fwug", json_integer(cd->fwug));
	json_object_set_new(j, "kas", json_integer(cd->kas));
	json_object_set_new(j, "hctma", json_integer(cd->hctma));
	json_object_set_new(j, "mntmt", json_integer(cd->mntmt));
	json_object_set_new(j, "mxtmt", json_integer(cd->mxtmt));
	json_object_set_new(j, "sanicap", json_integer(cd->sanicap));
	json_object_set_new(j, "anatt", json_integer(cd->anatt));
	json_object_set_new(j, "anacap", json_integer(cd->anacap));
	json_object_set_new(j, "anagrpmax", json_integer(cd->anagrpmax));
	json_object_set_new(j, "nanagrpid", json_integer(cd->nanagrpid));
	json_object_set_new(j, "pels", json_integer(cd->pels));
	json_object_set_new(j, "sqes", json_integer(cd->sqes));
	json_object_set_new(j, "cqes", json_integer(cd->cqes));
	json_object_set_new(j, "maxcmd", json_integer(cd->maxcmd));
	json_object_set_new(j, "nn", json_integer(cd->nn));
	json_object_set_new(j, "oncs", json_integer(cd->oncs));
	json_object_set_new(j, "fuses", json_integer(cd->fuses));
	json_object_set_new(j, "fna", json_integer(cd->fna));
	json_object_set_new(j, "vwc", json_integer(cd->vwc));
	json_object_set_new(j, "awun", json_integer(cd->awun));
	json_object_set_new(j, "awupf", json_integer(cd->awupf));
	json_object_set_new(j, "icsvscc", json_integer(cd->icsvscc));
	json_object_set_new(j, "nwpc", json_integer(cd->nwpc));
	json_object_set_new(j, "acwu", json_integer(cd->acwu));
	json_object_set_new(j, "sgls", json_integer(cd->sgls));
	json_object_set_new(j, "mnan", json_integer(cd->mnan));
	json_object_set_new(j, "subnqn", json_string(subnqn));
	return j;
}

static json_t *
ns_json(const struct sl_nvme_ns *ns)
{
	const struct sl_nvme_ns_data *d = sl_nvme_ns_get_data(ns);
	json_t *j = json_object();
	json_t *lbafs = json_array();
	char buf[64];
	int i;

	json_object_set_new(j, "nsid", json_integer(sl_nvme_ns_get_id(ns)));
	json_object_set_new(j, "nsze", json_integer((json_int_t)d->nsze));
	json_object_set_new(j, "ncap", json_integer((json_int_t)d->ncap));
	json_object_set_new(j, "nuse", json_integer((json_int_t)d->nuse));
	json_object_set_new(j, "nsfeat", json_integer(d->nsfeat));
	json_object_set_new(j, "nlbaf", json_integer(d->nlbaf));
	json_object_set_new(j, "flbas", json_integer(d->flbas));
	json_object_set_new(j, "mc", json_integer(d->mc));
	json_object_set_new(j, "dpc", json_integer(d->dpc));
	json_object_set_new(j, "dps", json_integer(d->dps));
	json_object_set_new(j, "nmic", json_integer(d->nmic));
	json_object_set_new(j, "rescap", json_integer(d->rescap));
	json_object_set_new(j, "fpi", json_integer(d->fpi));
	json_object_set_new(j, "dlfeat", json_integer(d->dlfeat));
	json_object_set_new(j, "nawun", json_integer(d->nawun));
	json_object_set_new(j, "nawupf", json_integer(d->nawupf));
	json_object_set_new(j, "nacwu", json_integer(d->nacwu));
	json_object_set_new(j, "nabsn", json_integer(d->nabsn));
	json_object_set_new(j, "nabo", json_integer(d->nabo));
	json_object_set_new(j, "nabspf", json_integer(d->nabspf));
	json_object_set_new(j, "noiob", json_integer(d->noiob));
	u128_str(buf, sizeof(buf), d->nvmcap);
	json_object_set_new(j, "nvmcap", json_string(buf));
	json_object_set_new(j, "npwg", json_integer(d->npwg));
	json_object_set_new(j, "npwa", json_integer(d->npwa));
	json_object_set_new(j, "npdg", json_integer(d->npdg));
	json_object_set_new(j, "npda", json_integer(d->npda));
	json_object_set_new(j, "nows", json_integer(d->nows));
	json_object_set_new(j, "anagrpid", json_integer(d->anagrpid));
	json_object_set_new(j, "nsattr", json_integer(d->nsattr));
	json_object_set_new(j, "nvmsetid", json_integer(d->nvmsetid));
	json_object_set_new(j, "endgid", json_integer(d->endgid));
	hex_str(buf, d->nguid, sizeof(d->nguid));
	json_object_set_new(j, "nguid", json_string(buf));
	hex_str(buf, d->eui64, sizeof(d->eui64));
	json_object_set_new(j, "eui64", json_string(buf));
	for (i = 0; i <= d->nlbaf && i < 16; i++) {
		json_t *f = json_object();

		json_object_set_new(f, "ms", json_integer(d->lbaf[i].ms));
		json_object_set_new(f, "ds", json_integer(d->lbaf[i].lbads));
		json_object_set_new(f, "rp", json_integer(d->lbaf[i].rp));
		json_array_append_new(lbafs, f);
	}
	json_object_set_new(j, "lbafs", lbafs);
	return j;
}

static json_t *
smart_json(const struct sl_nvme_health_information_page *h)
{
	json_t *j = json_object();
	char buf[64];

	json_object_set_new(j, "critical_warning", json_integer(h->critical_warning));
	json_object_set_new(j, "temperature", json_integer(h->temperature));
	json_object_set_new(j, "avail_spare", json_integer(h->available_spare));
	json_object_set_new(j, "spare_thresh", json_integer(h->available_spare_threshold));
	json_object_set_new(j, "percent_used", json_integer(h->percentage_used));
	u128_str(buf, sizeof(buf), (const uint8_t *)h + 32);
	json_object_set_new(j, "data_units_read", json_string(buf));
	u128_str(buf, sizeof(buf), (const uint8_t *)h + 48);
	json_object_set_new(j, "data_units_written", json_string(buf));
	u128_str(buf, sizeof(buf), (const uint8_t *)h + 64);
	json_object_set_new(j, "host_read_commands", json_string(buf));
	u128_str(buf, sizeof(buf), (const uint8_t *)h + 80);
	json_object_set_new(j, "host_write_commands", json_string(buf));
	u128_str(buf, sizeof(buf), (const uint8_t *)h + 112);
	json_object_set_new(j, "power_cycles", json_string(buf));
	u128_str(buf, sizeof(buf), (const uint8_t *)h + 128);
	json_object_set_new(j, "power_on_hours", json_string(buf));
	u128_str(buf, sizeof(buf), (const uint8_t *)h + 160);
	json_object_set_new(j, "media_errors", json_string(buf));
	u128_str(buf, sizeof(buf), (const uint8_t *)h + 176);
	json_object_set_new(j, "num_err_log_entries", json_string(buf));
	return j;
}

static void
print_ctrlr(struct sl_nvme_ctrlr *ctrlr)
{
	const struct sl_nvme_ctrlr_data *cd = sl_nvme_ctrlr_get_data(ctrlr);
	const struct sl_pci_id *id = sl_nvme_ctrlr_get_pci_id(ctrlr);
	union sl_nvme_cap_register cap = sl_nvme_ctrlr_get_regs_cap(ctrlr);
	union sl_nvme_vs_register vs = sl_nvme_ctrlr_get_regs_vs(ctrlr);
	char sn[21], mn[41], fr[9], subnqn[257];

	copy_str(sn, cd->sn, sizeof(cd->sn));
	copy_str(mn, cd->mn, sizeof(cd->mn));
	copy_str(fr, cd->fr, sizeof(cd->fr));
	copy_str(subnqn, cd->subnqn, sizeof(cd->subnqn));
	printf("=====================================================\n");
	printf("NVMe Controller at %s [%04x:%04x]\n", sl_nvme_ctrlr_get_transport_id(ctrlr)->traddr,
	       id->vendor_id, id->device_id);
	printf("=====================================================\n");
	printf("Controller Capabilities/Features\n");
	printf("================================\n");
	printf("Vendor ID:                             %04x\n", cd->vid);
	printf("Subsystem Vendor ID:                   %04x\n", cd->ssvid);
	printf("Serial Number:                         %s\n", sn);
	printf("Model Number:                          %s\n", mn);
	printf("Firmware Version:                      %s\n", fr);
	printf("Recommended Arb Burst:                 %u\n", cd->rab);
	printf("IEEE OUI Identifier:                   %02x %02x %02x\n", cd->ieee[0], cd->ieee[1],
	       cd->ieee[2]);
	printf("Controller ID:                         %u\n", cd->cntlid);
	printf("NVMe Specification Version (VS):       %u.%u.%u\n", vs.bits.mjr, vs.bits.mnr,
	       vs.bits.ter);
	printf("Max Data Transfer Size:                %u bytes (MDTS %u)\n",
	       sl_nvme_ctrlr_get_max_xfer_size(ctrlr), cd->mdts);
	printf("Maximum Queue Entries:                 %u\n", cap.bits.mqes + 1);
	printf("Doorbell Stride:                       %u bytes\n", 4u << cap.bits.dstrd);
	printf("Ready Timeout:                         %u ms\n", 500u * cap.bits.to);
	printf("Memory Page Size Minimum:              %u bytes\n", 1u << (12 + cap.bits.mpsmin));
	printf("Memory Page Size Maximum:              %u bytes\n", 1u << (12 + cap.bits.mpsmax));
	printf("I/O Queue Pairs Granted:               %u\n",
	       sl_nvme_ctrlr_get_num_io_queues(ctrlr));
	printf("SGL Supported:                         %s\n",
	       sl_nvme_ctrlr_sgl_supported(ctrlr) ? "Yes" : "No");
	printf("Optional Admin Commands (OACS):        0x%04x\n", cd->oacs);
	printf("Abort Command Limit:                   %u\n", cd->acl + 1);
	printf("Async Event Request Limit:             %u\n", cd->aerl + 1);
	printf("Error Log Page Entries:                %u\n", cd->elpe + 1);
	printf("Optional NVM Commands (ONCS):          0x%04x\n", cd->oncs);
	printf("  Compare:                             %s\n",
	       cd->oncs & SL_NVME_ONCS_COMPARE ? "Supported" : "Not Supported");
	printf("  Write Zeroes:                        %s\n",
	       cd->oncs & SL_NVME_ONCS_WRITE_ZEROES ? "Supported" : "Not Supported");
	printf("  Dataset Management:                  %s\n",
	       cd->oncs & SL_NVME_ONCS_DSM ? "Supported" : "Not Supported");
	printf("Volatile Write Cache:                  %s\n",
	       cd->vwc & 1 ? "Present" : "Not Present");
	printf("Number of Namespaces:                  %u\n", cd->nn);
	printf("Submission Queue Entry Size:           %u (max %u)\n", 1u << (cd->sqes & 0xf),
	       1u << (cd->sqes >> 4));
	printf("Completion Queue Entry Size:           %u (max %u)\n", 1u << (cd->cqes & 0xf),
	       1u << (cd->cqes >> 4));
	printf("NVM Subsystem NQN:                     %s\n", subnqn);
	printf("\n");
}

static void
print_ns(const struct sl_nvme_ns *ns)
{
	const struct sl_nvme_ns_data *d = sl_nvme_ns_get_data(ns);
	const uint8_t *uuid = sl_nvme_ns_get_uuid(ns);
	char nguid[33], eui64[17];
	int i;

	hex_str(nguid, d->nguid, sizeof(d->nguid));
	hex_str(eui64, d->eui64, sizeof(d->eui64));
	printf("Namespace ID:%u\n", sl_nvme_ns_get_id(ns));
	printf("  Size (in LBAs):                      %" PRIu64 " (%" PRIu64 " MiB)\n", d->nsze,
	       sl_nvme_ns_get_size(ns) >> 20);
	printf("  Capacity (in LBAs):                  %" PRIu64 "\n", d->ncap);
	printf("  Utilization (in LBAs):               %" PRIu64 "\n", d->nuse);
	printf("  Thin Provisioning:                   %s\n",
	       d->nsfeat & 1 ? "Supported" : "Not Supported");
	printf("  NGUID:                               %s\n", nguid);
	printf("  EUI64:                               %s\n", eui64);
	if (uuid != NULL) {
		printf("  UUID:                                "
		       "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x\n",
		       uuid[0], uuid[1], uuid[2], uuid[3], uuid[4], uuid[5], uuid[6], uuid[7],
		       uuid[8], uuid[9], uuid[10], uuid[11], uuid[12], uuid[13], uuid[14],
		       uuid[15]);
	}
	printf("  Command Set Identifier:              %u\n", sl_nvme_ns_get_csi(ns));
	printf("  Number of LBA Formats:               %u\n", d->nlbaf + 1);
	printf("  Current LBA Format:                  LBA Format #%02u\n", d->flbas & 0xf);
	for (i = 0; i <= d->nlbaf && i < 16; i++) {
		printf("  LBA Format #%02d: Data Size: %5u  Metadata Size: %5u\n", i,
		       1u << d->lbaf[i].lbads, d->lbaf[i].ms);
	}
	printf("\n");
}

static void
print_logs(struct sl_nvme_ctrlr *ctrlr, json_t *j)
{
	struct sl_nvme_health_information_page *h = sl_dma_zmalloc(sizeof(*h), 4096, NULL);
	struct sl_nvme_firmware_page *fw = sl_dma_zmalloc(sizeof(*fw), 4096, NULL);
	char buf[64], rev[9];
	int slot;

	if (h != NULL && get_log(ctrlr, SL_NVME_LOG_HEALTH_INFORMATION, h, sizeof(*h)) == 0) {
		if (j != NULL) {
			json_object_set_new(j, "smart_log", smart_json(h));
		} else {
			printf("Health Information\n==================\n");
			printf("Critical Warnings:                     0x%02x\n",
			       h->critical_warning);
			printf("Current Temperature:                   %u Kelvin (%d Celsius)\n",
			       h->temperature, (int)h->temperature - 273);
			printf("Available Spare:                       %u%%\n", h->available_spare);
			printf("Percentage Used:                       %u%%\n", h->percentage_used);
			u128_str(buf, sizeof(buf), (const uint8_t *)h + 32);
			printf("Data Units Read:                       %s\n", buf);
			u128_str(buf, sizeof(buf), (const uint8_t *)h + 48);
			printf("Data Units Written:                    %s\n", buf);
			u128_str(buf, sizeof(buf), (const uint8_t *)h + 64);
			printf("Host Read Commands:                    %s\n", buf);
			u128_str(buf, sizeof(buf), (const uint8_t *)h + 80);
			printf("Host Write Commands:                   %s\n", buf);
			u128_str(buf, sizeof(buf), (const uint8_t *)h + 176);
			printf("Error Information Log Entries:         %s\n\n", buf);
		}
	}
	if (fw != NULL && get_log(ctrlr, SL_NVME_LOG_FIRMWARE_SLOT, fw, sizeof(*fw)) == 0) {
		json_t *slots = json_array();

		if (j == NULL) {
			printf("Firmware Slot Information\n=========================\n");
			printf("Active slot:                           %u\n", fw->afi & 7);
		}
		for (slot = 0; slot < 7; slot++) {
			copy_str(rev, fw->revision[slot], 8);
			if (rev[0] == '\0') {
				continue;
			}
			if (j == NULL) {
				printf("Slot %d Firmware Revision:              %s\n", slot + 1,
				       rev);
			}
			json_array_append_new(slots, json_string(rev));
		}
		if (j != NULL) {
			json_object_set_new(j, "fw_active_slot", json_integer(fw->afi & 7));
			json_object_set_new(j, "fw_slots", slots);
		} else {
			json_decref(slots);
			printf("\n");
		}
	}
	sl_dma_free(h);
	sl_dma_free(fw);
}

/* The ledger as JSON: bdev_nvme_get_controllers's "ledger" object has the same keys. */
static json_t *
ledger_json(struct sl_nvme_ctrlr *ctrlr)
{
	struct sl_nvme_ledger_info *info = calloc(1, sizeof(*info));
	json_t *j = json_object(), *procs = json_array(), *p, *qids;
	uint32_t i, q;
	int rc;

	json_object_set_new(j, "traddr",
			    json_string(sl_nvme_ctrlr_get_transport_id(ctrlr)->traddr));
	rc = info != NULL ? sl_nvme_ctrlr_get_ledger(ctrlr, info) : -ENOMEM;
	if (rc != 0) {
		fprintf(stderr, "%s: cannot read the ledger: %s\n",
			sl_nvme_ctrlr_get_transport_id(ctrlr)->traddr, strerror(-rc));
		json_object_set_new(j, "error", json_string(strerror(-rc)));
		json_decref(procs);
		free(info);
		g_rc = 1;
		return j;
	}
	for (i = 0; i < info->num_procs && i < SL_NVME_LEDGER_MAX_PROCS; i++) {
		const struct sl_nvme_ledger_proc *lp = &info->procs[i];

		qids = json_array();
		for (q = 0; q < lp->num_qids && q < SL_COUNTOF(lp->qids); q++) {
			json_array_append_new(qids, json_integer(lp->qids[q]));
		}
		p = json_object();
		json_object_set_new(p, "pid", json_integer(lp->pid));
		json_object_set_new(p, "start_time", json_integer((json_int_t)lp->start_time));
		json_object_set_new(p, "primary", json_boolean(lp->primary));
		json_object_set_new(p, "self", json_boolean(lp->self));
		json_object_set_new(p, "refs", json_integer(lp->refs));
		json_object_set_new(p, "admin_outstanding", json_integer(lp->admin_outstanding));
		json_object_set_new(p, "qids", qids);
		json_array_append_new(procs, p);
	}
	json_object_set_new(j, "shared", json_boolean(info->shared));
	json_object_set_new(j, "processes", procs);
	json_object_set_new(j, "queues_in_use", json_integer(info->queues_in_use));
	json_object_set_new(j, "queues_total", json_integer(info->queues_total));
	json_object_set_new(j, "reaped", json_integer((json_int_t)info->reaped));
	json_object_set_new(j, "lock_recoveries", json_integer((json_int_t)info->lock_recoveries));
	free(info);
	return j;
}

/* --hold-lock and --ledger: what a multi-process test asks of a controller. */
static void
ledger_attach(struct sl_nvme_ctrlr *ctrlr)
{
	int rc;

	if (g_opts.forge) {
		rc = sl_nvme_ctrlr_forge_ledger_entry(ctrlr, g_opts.forge_pid, g_opts.forge_start,
						      g_opts.forge_qids);
		if (rc != 0) {
			fprintf(stderr, "--forge-entry: %s\n", strerror(-rc));
			g_rc = 1;
		}
	}
	if (g_opts.hold_lock_ms != 0) {
		printf("pid %d: holding the lock of %s for %u ms\n", (int)getpid(),
		       sl_nvme_ctrlr_get_transport_id(ctrlr)->traddr, g_opts.hold_lock_ms);
		fflush(stdout);
		sl_nvme_ctrlr_hold_lock(ctrlr, g_opts.hold_lock_ms);
	}
	if (g_opts.ledger) {
		json_array_append_new(g_json_ctrlrs, ledger_json(ctrlr));
	}
	if (sl_nvme_detach(ctrlr) != 0) {
		g_rc = 1;
	}
}

static void
attach_cb(void *cb_ctx, const struct sl_nvme_transport_id *trid, struct sl_nvme_ctrlr *ctrlr,
	  const struct sl_nvme_ctrlr_opts *opts)
{
	json_t *j = g_opts.json ? ctrlr_json(ctrlr) : NULL;
	json_t *nss = j ? json_array() : NULL;
	uint32_t nsid;

	if (g_opts.ledger || g_opts.hold_lock_ms != 0 || g_opts.forge) {
		json_decref(j);
		json_decref(nss);
		ledger_attach(ctrlr);
		return;
	}
	if (j == NULL) {
		print_ctrlr(ctrlr);
	}
	print_logs(ctrlr, j);
	for (nsid = sl_nvme_ctrlr_get_first_active_ns(ctrlr); nsid != 0;
	     nsid = sl_nvme_ctrlr_get_next_active_ns(ctrlr, nsid)) {
		if (g_opts.nsid != 0 && nsid != g_opts.nsid) {
			continue;
		}
		if (j != NULL) {
			json_array_append_new(nss, ns_json(sl_nvme_ctrlr_get_ns(ctrlr, nsid)));
		} else {
			print_ns(sl_nvme_ctrlr_get_ns(ctrlr, nsid));
		}
	}
	if (j != NULL) {
		json_object_set_new(j, "namespaces", nss);
		json_array_append_new(g_json_ctrlrs, j);
	}
	if (sl_nvme_detach(ctrlr) != 0) {
		g_rc = 1;
	}
}

static int
parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"trid", required_argument, NULL, 'r'},
		{"nsid", required_argument, NULL, 'n'},
		{"json", no_argument, NULL, 'j'},
		{"log", required_argument, NULL, 'L'},
		{"help", no_argument, NULL, 'h'},
		{"shm-id", required_argument, NULL, 'i'},
		{"ledger", no_argument, NULL, 'l'},
		{"hold-lock", required_argument, NULL, 'H'},
		{"forge-entry", required_argument, NULL, 'F'},
		{NULL, 0, NULL, 0},
	};
	unsigned long v;
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "r:n:jL:hi:", longopts, NULL)) != -1) {
		switch (c) {
		case 'i':
		case 'H':
			errno = 0;
			v = strtoul(optarg, &end, 0);
			if (errno != 0 || end == optarg || *end != '\0' || optarg[0] == '-' ||
			    v > INT32_MAX) {
				fprintf(stderr, "%s: invalid value '%s'\n",
					c == 'i' ? "-i" : "--hold-lock", optarg);
				return -EINVAL;
			}
			if (c == 'i') {
				g_opts.shm_id = (int)v;
			} else {
				g_opts.hold_lock_ms = (uint32_t)v;
			}
			break;
		case 'l':
			g_opts.ledger = true;
			break;
		case 'F':
			if (sscanf(optarg, "%d:%" SCNu64 ":%" SCNu32, &g_opts.forge_pid,
				   &g_opts.forge_start, &g_opts.forge_qids) != 3 ||
			    g_opts.forge_pid <= 0 || g_opts.forge_qids > 64) {
				fprintf(stderr,
					"--forge-entry: expected PID:START:NQIDS, got '%s'\n",
					optarg);
				return -EINVAL;
			}
			g_opts.forge = true;
			break;
		case 'r':
			if (sl_nvme_transport_id_parse(&g_opts.trid, optarg) != 0) {
				fprintf(stderr, "invalid transport ID '%s'\n", optarg);
				return -EINVAL;
			}
			g_opts.have_trid = true;
			break;
		case 'n':
			g_opts.nsid = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'j':
			g_opts.json = true;
			break;
		case 'L':
			if (sl_log_set_flag(optarg, true) != 0) {
				fprintf(stderr, "unknown log flag '%s'\n", optarg);
				return -EINVAL;
			}
			break;
		case 'h':
			usage(argv[0]);
			exit(0);
		default:
			usage(argv[0]);
			return -EINVAL;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct sl_env_opts env_opts;
	int rc;

	if (parse_args(argc, argv) != 0) {
		return 2;
	}
	sl_env_opts_init(&env_opts);
	env_opts.name = "sluice-nvme-identify";
	env_opts.shm_id = g_opts.shm_id;
	rc = sl_env_init(&env_opts);
	if (rc != 0) {
		fprintf(stderr, "cannot initialise the environment: %s\n", strerror(-rc));
		return 1;
	}
	g_json_ctrlrs = json_array();
	rc = sl_nvme_probe(g_opts.have_trid ? &g_opts.trid : NULL, NULL, NULL, attach_cb);
	if (rc != 0) {
		fprintf(stderr, "probe failed: %s\n", strerror(-rc));
		g_rc = 1;
	} else if (json_array_size(g_json_ctrlrs) == 0 && (g_opts.json || g_opts.ledger)) {
		fprintf(stderr, "no NVMe controller found (bind one to vfio-pci)\n");
		g_rc = 1;
	}
	if (g_opts.json || g_opts.ledger) {
		json_dumpf(g_json_ctrlrs, stdout, JSON_INDENT(2));
		printf("\n");
	}
	json_decref(g_json_ctrlrs);
	sl_env_fini();
	return g_rc;
}
