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

double zc_opts_entry_timeout(const struct zc_opts *opts)
{
	return opts->entry_timeout_set ? opts->entry_timeout : cache_timeout(opts);
}

double zc_opts_attr_timeout(const struct zc_opts *opts)
{
	return opts->attr_timeout_set ? opts->attr_timeout : cache_timeout(opts);
}
