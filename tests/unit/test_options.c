/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Mount option parsing: accepted values, rejected ones, and their messages. */
#include <errno.h>

#include "zc_test.h"
#include "zcfuse_i.h"

static const struct zc_backend_ops no_ops;

static struct zc_session *new_session(void)
{
	struct zc_session *s = zc_session_new(&no_ops, sizeof(no_ops), NULL);

	CHECK(s);
	return s;
}

static void test_defaults(void)
{
	struct zc_session *s = new_session();

	CHECK_EQ(s->opts.cache, ZC_CACHE_AUTO);
	CHECK(zc_opts_entry_timeout(&s->opts) == 1.0);
	CHECK(!zc_opts_default_permissions(&s->opts));
	CHECK(!s->opts.writeback);
	zc_session_destroy(s);
}

static void test_cache_modes(void)
{
	struct zc_session *s = new_session();

	CHECK_EQ(zc_session_set_option(s, "cache=never"), 0);
	CHECK_EQ(s->opts.cache, ZC_CACHE_NEVER);
	CHECK(zc_opts_attr_timeout(&s->opts) == 0.0);
	CHECK_EQ(zc_session_set_option(s, "cache=always"), 0);
	CHECK(zc_opts_attr_timeout(&s->opts) == 86400.0);
	CHECK_EQ(zc_session_set_option(s, "cache=sometimes"), -EINVAL);
	CHECK_STR_CONTAINS(zc_session_error(s), "'cache'");
	CHECK_STR_CONTAINS(zc_session_error(s), "sometimes");
	CHECK_EQ(zc_session_set_option(s, "cache"), -EINVAL);
	CHECK_STR_CONTAINS(zc_session_error(s), "needs a value");
	zc_session_destroy(s);
}

static void test_timeouts(void)
{
	struct zc_session *s = new_session();

	CHECK_EQ(zc_session_set_option(s, "cache=never"), 0);
	CHECK_EQ(zc_session_set_option(s, "attr_timeout=2.5"), 0);
	CHECK(zc_opts_attr_timeout(&s->opts) == 2.5);
	CHECK(zc_opts_entry_timeout(&s->opts) == 0.0);
	CHECK_EQ(zc_session_set_option(s, "timeout=7"), 0);
	CHECK(zc_opts_entry_timeout(&s->opts) == 7.0);
	CHECK(zc_opts_attr_timeout(&s->opts) == 7.0);
	CHECK_EQ(zc_session_set_option(s, "timeout=-1"), -EINVAL);
	CHECK_EQ(zc_session_set_option(s, "timeout=1x"), -EINVAL);
	CHECK_EQ(zc_session_set_option(s, "timeout=nan"), -EINVAL);
	CHECK_EQ(zc_session_set_option(s, "entry_timeout="), -EINVAL);
	CHECK_STR_CONTAINS(zc_session_error(s), "entry_timeout");
	zc_session_destroy(s);
}

static void test_threads(void)
{
	struct zc_session *s = new_session();

	CHECK_EQ(zc_session_set_option(s, "threads=4"), 0);
	CHECK_EQ(s->opts.threads, 4);
	CHECK_EQ(zc_session_set_option(s, "threads=0"), -EINVAL);
	CHECK_EQ(zc_session_set_option(s, "threads=-3"), -EINVAL);
	CHECK_EQ(zc_session_set_option(s, "threads=99999999999999999999"), -EINVAL);
	CHECK_EQ(zc_session_set_option(s, "threads=four"), -EINVAL);
	CHECK_EQ(s->opts.threads, 4);
	zc_session_destroy(s);
}

static void test_flags(void)
{
	struct zc_session *s = new_session();

	CHECK_EQ(zc_session_set_option(s, "allow_other"), 0);
	CHECK(zc_opts_default_permissions(&s->opts));
	CHECK_EQ(zc_session_set_option(s, "nodefault_permissions"), 0);
	CHECK(!zc_opts_default_permissions(&s->opts));
	CHECK_EQ(zc_session_set_option(s, "writeback"), 0);
	CHECK(s->opts.writeback);
	CHECK_EQ(zc_session_set_option(s, "nowriteback"), 0);
	CHECK(!s->opts.writeback);
	CHECK_EQ(zc_session_set_option(s, "ro"), 0);
	CHECK(s->opts.ro);
	CHECK_EQ(zc_session_set_option(s, "ro=1"), -EINVAL);
	CHECK_STR_CONTAINS(zc_session_error(s), "takes no value");
	CHECK_EQ(zc_session_set_option(s, "frobnicate"), -EINVAL);
	CHECK_STR_CONTAINS(zc_session_error(s), "unknown option 'frobnicate'");
	zc_session_destroy(s);
}

static void test_option_lists(void)
{
	struct zc_session *s = new_session();

	CHECK_EQ(zc_session_set_options(s, "cache=never,writeback,threads=3"), 0);
	CHECK_EQ(s->opts.cache, ZC_CACHE_NEVER);
	CHECK(s->opts.writeback);
	CHECK_EQ(s->opts.threads, 3);
	CHECK_EQ(zc_session_set_options(s, "direct_io,,ro"), -EINVAL);
	CHECK_STR_CONTAINS(zc_session_error(s), "empty option");
	CHECK_EQ(zc_session_set_options(s, "direct_io,bogus,ro"), -EINVAL);
	CHECK_STR_CONTAINS(zc_session_error(s), "bogus");
	/* An escaped comma stays inside the value and makes it malformed. */
	CHECK_EQ(zc_session_set_options(s, "cache=never\\,auto"), -EINVAL);
	CHECK_STR_CONTAINS(zc_session_error(s), "never,auto");
	CHECK_EQ(zc_session_set_options(s, ""), -EINVAL);
	zc_session_destroy(s);
}

static void test_ops_size(void)
{
	struct zc_backend_ops ops = { 0 };
	struct zc_session *s;

	/* Fields beyond the size the caller passed must read as NULL. */
	memset(&ops, 0xff, sizeof(ops));
	s = zc_session_new(&ops, offsetof(struct zc_backend_ops, lookup), NULL);
	CHECK(s);
	CHECK(s->ops.lookup == NULL);
	CHECK(s->ops.flock == NULL);
	CHECK(s->ops.init != NULL);
	zc_session_destroy(s);
	CHECK(zc_session_new(NULL, 0, NULL) == NULL);
}

static void test_io_uring(void)
{
	struct zc_session *s = new_session();

	CHECK(!s->opts.io_uring);
	CHECK_EQ(s->opts.uring.depth, ZC_URING_DEPTH_DEFAULT);
	CHECK(s->opts.uring.pin);
	CHECK(s->opts.uring.idle);
	CHECK_EQ(zc_session_set_option(s, "io_uring"), 0);
	CHECK(s->opts.io_uring && !s->opts.uring.strict);
	CHECK_EQ(zc_session_set_option(s, "io_uring=strict"), 0);
	CHECK(s->opts.io_uring && s->opts.uring.strict);
	CHECK_EQ(zc_session_set_option(s, "io_uring=fallback"), 0);
	CHECK(s->opts.io_uring && !s->opts.uring.strict);
	CHECK_EQ(zc_session_set_option(s, "io_uring=maybe"), -EINVAL);
	CHECK_STR_CONTAINS(zc_session_error(s), "strict or fallback");
	CHECK_EQ(zc_session_set_option(s, "noio_uring"), 0);
	CHECK(!s->opts.io_uring);
	CHECK_EQ(zc_session_set_option(s, "uring_depth=32"), 0);
	CHECK_EQ(s->opts.uring.depth, 32);
	CHECK_EQ(zc_session_set_option(s, "uring_depth=0"), -EINVAL);
	CHECK_EQ(zc_session_set_option(s, "uring_depth=129"), -EINVAL);
	CHECK_STR_CONTAINS(zc_session_error(s), "uring_depth");
	CHECK_EQ(zc_session_set_option(s, "nouring_pin"), 0);
	CHECK(!s->opts.uring.pin);
	CHECK_EQ(zc_session_set_option(s, "nouring_idle"), 0);
	CHECK(!s->opts.uring.idle);
	CHECK_EQ(zc_session_set_option(s, "uring_idle"), 0);
	CHECK(s->opts.uring.idle);
	zc_session_destroy(s);
}

int main(void)
{
	test_defaults();
	test_cache_modes();
	test_timeouts();
	test_threads();
	test_flags();
	test_option_lists();
	test_ops_size();
	test_io_uring();
	return 0;
}
