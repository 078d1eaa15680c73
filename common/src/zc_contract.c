/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The backend's contract: see zc_contract.h. */
#include <errno.h>

#include "zc_chan.h"
#include "zc_contract.h"
#include "zc_data.h"
#include "zc_notice.h"
#include "zc_util.h"

static const char *const rule_text[ZC_RULE_NR] = {
	[ZC_RULE_EXTENTS_TOO_MANY] = "it returned more extents than max_ext",
	[ZC_RULE_EXTENTS_TOO_LONG] = "its extents are longer in all than the request",
	[ZC_RULE_EXTENT_RESERVED] = "an extent's reserved field is not 0",
	[ZC_RULE_EXTENT_NO_DATA] = "a write extent has neither fd nor mem",
	[ZC_RULE_HOLE_TOO_LONG] = "a hole (fd < 0, mem NULL) is longer than the largest request",
	[ZC_RULE_EXTENT_BAD_FD] = "an extent's fd is not an open descriptor (or not open "
				  "for reading a read's data, or writing a write's)",
};

int zc_contract_broken(struct zc_chan *c, enum zc_rule rule, const char *op)
{
	if (!__atomic_exchange_n(&c->contract.said[rule], true, __ATOMIC_RELAXED))
		zc_notify(c->notifier,
			  "backend broke its contract in %s: %s; such requests get EIO (said once)",
			  op, rule_text[rule]);
	zc_stat_add(&c->stats.contract_broken, 1);
	return -EIO;
}

int zc_contract_extents(struct zc_chan *c, const char *op, const struct zc_extent *ext, int n_ext,
			size_t size, bool reading)
{
	size_t total = 0;
	int i;

	if (n_ext > ZC_MAX_EXTENTS)
		return zc_contract_broken(c, ZC_RULE_EXTENTS_TOO_MANY, op);
	for (i = 0; i < n_ext; i++) {
		if (ext[i].reserved)
			return zc_contract_broken(c, ZC_RULE_EXTENT_RESERVED, op);
		if (ext[i].fd < 0 && !ext[i].mem && !reading)
			return zc_contract_broken(c, ZC_RULE_EXTENT_NO_DATA, op);
		if (ext[i].fd < 0 && !ext[i].mem && ext[i].length > ZC_DATA_ZEROS)
			return zc_contract_broken(c, ZC_RULE_HOLE_TOO_LONG, op);
		total += ext[i].length;
	}
	if (total > size)
		return zc_contract_broken(c, ZC_RULE_EXTENTS_TOO_LONG, op);
	return 0;
}
