/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The backend's contract, checked where a backend's answer is used: a
 * broken rule answers the request EIO and gives one notice per rule,
 * naming the operation and the rule, so that a backend's bug is seen.
 */
#ifndef ZC_CONTRACT_H
#define ZC_CONTRACT_H

#include <stdbool.h>
#include <stddef.h>

#include "zcfuse/zcfuse.h"

struct zc_chan;

enum zc_rule {
	ZC_RULE_EXTENTS_TOO_MANY, /* more extents than max_ext */
	ZC_RULE_EXTENTS_TOO_LONG, /* longer in all than the request */
	ZC_RULE_EXTENT_RESERVED,  /* reserved is not 0 */
	ZC_RULE_EXTENT_NO_DATA,	  /* a write extent with no fd and no mem */
	ZC_RULE_HOLE_TOO_LONG,	  /* a hole longer than the largest request */
	ZC_RULE_EXTENT_BAD_FD,	  /* an extent's fd is not an open descriptor */
	ZC_RULE_NR,
};

/* Once per mount and rule: which rules were reported. */
struct zc_contract {
	bool said[ZC_RULE_NR];
};

/*
 * Check @n_ext extents a read or write (@op) returned for a request of
 * @size bytes: 0, or -EIO after the rule's notice.
 */
int zc_contract_extents(struct zc_chan *c, const char *op, const struct zc_extent *ext, int n_ext,
			size_t size, bool reading);

/* Rule @rule broken by operation @op: its notice, once. Returns -EIO. */
int zc_contract_broken(struct zc_chan *c, enum zc_rule rule, const char *op);

#endif /* ZC_CONTRACT_H */
