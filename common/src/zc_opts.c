/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the options mean for the layers below the session: permissions and timeouts. */
#include "zc_opts.h"

bool zc_opts_default_permissions(const struct zc_opts *opts)
{
	if (opts->default_permissions < 0)
		return opts->allow_other;
	return opts->default_permissions;
}

static double cache_timeout(const struct zc_opts *opts)
{
	switch (opts->cache) {
	case ZC_CACHE_NEVER:
		return 0.0;
	case ZC_CACHE_ALWAYS:
		return 86400.0;
	case ZC_CACHE_AUTO:
	default:
		return 1.0;
	}
}

/*
 * Names are not kept by default when the backend alone checks permissions
 * on a mount that several users share: the kernel walks a kept name without
 * asking anyone, so a user could reach a directory below one it may not
 * search because another user looked it up a moment before.
 */
double zc_opts_entry_timeout(const struct zc_opts *opts)
{
	if (opts->entry_timeout_set)
		return opts->entry_timeout;
	if (opts->allow_other && !zc_opts_default_permissions(opts))
		return 0.0;
	return cache_timeout(opts);
}

double zc_opts_attr_timeout(const struct zc_opts *opts)
{
	return opts->attr_timeout_set ? opts->attr_timeout : cache_timeout(opts);
}

double zc_opts_negative_timeout(const struct zc_opts *opts)
{
	return opts->negative_timeout_set ? opts->negative_timeout : zc_opts_entry_timeout(opts);
}
