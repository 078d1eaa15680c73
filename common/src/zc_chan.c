/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The connection to the kernel: its limits and its state, set up and torn down. */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "fuse_kernel_ext.h"
#include "zc_chan.h"
#include "zc_opts.h"
#include "zc_util.h"

int zc_chan_init(struct zc_chan *c, const struct zc_opts *opts, const struct zc_backend *backend,
		 const struct zc_notifier *notifier)
{
	memset(c, 0, sizeof(*c));
	c->opts = opts;
	c->backend = backend;
	c->notifier = notifier;
	c->dev_fd = -1;
	/*
	 * cache=never and direct_io files can still be mapped shared. Node
	 * ids live only as long as the kernel's lookups of them, so handles
	 * of the mount could not be opened once it forgot a node or after a
	 * remount: none are offered. Creates carry the parent's group when
	 * the caller is in it (zc_ctx_create_group()).
	 */
	c->want_flags2 =
	    ZC_FUSE_DIRECT_IO_ALLOW_MMAP | ZC_FUSE_NO_EXPORT_SUPPORT | ZC_FUSE_CREATE_SUPP_GROUP;
	zc_data_policy_init(&c->policy, opts->splice, opts->splice_threshold, &c->max_write,
			    &c->stats);
	c->bufsize = c->max_write + ZC_PAGE;
	zc_data_reads_init(&c->reads);
	if (sem_init(&c->stop, 0, 0) < 0)
		return -errno;
	return 0;
}

void zc_chan_fini(struct zc_chan *c)
{
	sem_destroy(&c->stop);
	zc_data_reads_fini(&c->reads);
}

void zc_chan_stop(struct zc_chan *c, int error)
{
	if (__atomic_exchange_n(&c->exiting, 1, __ATOMIC_ACQ_REL) == 0) {
		c->error = error;
		sem_post(&c->stop);
	}
}

static struct zc_chan *zc_signal_chan;

static void on_stop_signal(int sig)
{
	(void)sig;
	if (zc_signal_chan)
		zc_chan_stop(zc_signal_chan, 0);
}

static void on_wake_signal(int sig)
{
	(void)sig;
}

int zc_chan_signals_install(struct zc_chan *c, struct sigaction old[4])
{
	static const int stop_signals[3] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa;
	int i;

	zc_signal_chan = c;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop_signal; /* no SA_RESTART: blocking calls return EINTR */
	for (i = 0; i < 3; i++)
		if (sigaction(stop_signals[i], &sa, &old[i]) < 0)
			return -errno;
	sa.sa_handler = on_wake_signal;
	if (sigaction(ZC_STOP_SIGNAL, &sa, &old[3]) < 0)
		return -errno;
	return 0;
}

void zc_chan_signals_restore(struct sigaction old[4])
{
	sigaction(SIGINT, &old[0], NULL);
	sigaction(SIGTERM, &old[1], NULL);
	sigaction(SIGHUP, &old[2], NULL);
	sigaction(ZC_STOP_SIGNAL, &old[3], NULL);
	zc_signal_chan = NULL;
}
