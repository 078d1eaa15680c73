/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The /dev/fuse transport: a pool of worker threads, each receiving one
 * request at a time (spliced into its pipe, or read into memory, as the
 * data policy says) into a struct zc_req whose route sends replies back on
 * the descriptor the request came from, and handing it to dispatch.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "zc_chan.h"
#include "zc_data.h"
#include "zc_dev.h"
#include "zc_dispatch.h"
#include "zc_iter.h"
#include "zc_opts.h"
#include "zc_req.h"
#include "zc_util.h"
#include "zc_waiter.h"

#ifndef FUSE_DEV_IOC_CLONE
#define FUSE_DEV_IOC_CLONE _IOR(229, 0, uint32_t)
#endif

/* The worker threads, under lock; idle counts those waiting for a request. */
struct zc_dev_pool {
	pthread_mutex_t lock;
	struct zc_worker *workers;
	unsigned int nr_workers;
	unsigned int max_workers;
	unsigned int idle;
};

struct zc_worker {
	struct zc_chan *chan;
	struct zc_worker *next;
	pthread_t thread;
	int dev_fd;
	bool own_dev_fd;
	bool spliceable;
	int req_pipe[2];
	char *buf;
};

static void close_pair(int p[2])
{
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	p[0] = p[1] = -1;
}

static bool make_pipe(int p[2], size_t size)
{
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
		p[0] = p[1] = -1;
		return false;
	}
	/* Fails with EPERM past fs.pipe-max-size or pipe-user-pages-soft. */
	if (fcntl(p[1], F_SETPIPE_SZ, (int)size) < (int)size) {
		close_pair(p);
		return false;
	}
	return true;
}

static void worker_free(struct zc_worker *w)
{
	close_pair(w->req_pipe);
	if (w->own_dev_fd)
		close(w->dev_fd);
	free(w->buf);
	free(w);
}

static struct zc_worker *worker_new(struct zc_chan *c)
{
	struct zc_worker *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->chan = c;
	w->req_pipe[0] = w->req_pipe[1] = -1;
	w->dev_fd = c->dev_fd;
	if (posix_memalign((void **)&w->buf, ZC_PAGE, c->bufsize)) {
		free(w);
		return NULL;
	}
	if (c->opts->clone_fd) {
		uint32_t master = (uint32_t)c->dev_fd;
		int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);

		if (fd >= 0 && ioctl(fd, FUSE_DEV_IOC_CLONE, &master) == 0) {
			w->dev_fd = fd;
			w->own_dev_fd = true;
		} else if (fd >= 0) {
			close(fd);
		}
	}
	if (c->policy.splice) {
		w->spliceable = make_pipe(w->req_pipe, c->policy.pipe_size);
		if (!w->spliceable)
			zc_stat_fallback(&c->stats, ZC_FALLBACK_PIPE_SIZE);
	}
	return w;
}

/* Replies from memory to /dev/fuse, in one write. */
static ssize_t dev_send(struct zc_req *req, const struct iovec *iov, int count)
{
	return zc_send_msg(req->dev_fd, iov, count, &req->chan->stats);
}

/* A reply that lies in the worker's pipe, spliced to /dev/fuse in one call. */
static ssize_t dev_send_pipe(struct zc_req *req, size_t len)
{
	struct zc_iter dev, reply;

	zc_iter_pipe(&reply, req->pipe[0], len);
	zc_iter_stream(&dev, req->dev_fd, len);
	return zc_move(&dev, &reply, len, ZC_MOVE_ONCE, &req->chan->stats);
}

/* Replies go back on the descriptor the request came from. */
static const struct zc_route dev_route = {
	.kind = ZC_ROUTE_DEV,
	.send = dev_send,
};

static const struct zc_route dev_splice_route = {
	.kind = ZC_ROUTE_DEV_SPLICE,
	.send = dev_send,
	.send_pipe = dev_send_pipe,
};

static void maybe_spawn(struct zc_chan *c);

/* Receive one request and serve it; -errno when receiving failed. */
static int worker_serve_one(struct zc_worker *w)
{
	struct zc_chan *c = w->chan;
	struct zc_iter dev, in, src;
	bool via_pipe = zc_data_receive_into_pipe(&c->policy, w->spliceable);
	struct zc_req req = {
		.chan = c,
		.route = w->spliceable ? &dev_splice_route : &dev_route,
		.transport = w,
		.dev_fd = w->dev_fd,
		.pipe = { w->req_pipe[0], w->req_pipe[1] },
		.reply_buf = w->buf,
		.reply_room = c->bufsize - sizeof(struct fuse_out_header),
		.buf = w->buf,
		.src = &src,
	};
	uint64_t t0;
	ssize_t n;

	zc_iter_stream(&dev, w->dev_fd, c->bufsize);
	if (via_pipe)
		zc_iter_pipe(&in, w->req_pipe[1], c->policy.pipe_size);
	else
		zc_iter_mem(&in, w->buf, c->bufsize);
	n = zc_move(&in, &dev, c->bufsize, ZC_MOVE_ONCE, &c->stats);
	if (n < 0)
		return (int)n;
	if (n == 0)
		return -ENODEV;
	t0 = zc_now_usec();
	zc_stat_add(&c->stats.dev_requests, 1);
	if (__atomic_sub_fetch(&c->pool->idle, 1, __ATOMIC_ACQ_REL) == 0)
		maybe_spawn(c);

	if (via_pipe) {
		zc_iter_pipe(&src, w->req_pipe[0], (size_t)n);
		/* Too small to splice onwards: one read takes all of it. */
		if (!zc_data_keep_in_pipe(&c->policy, (size_t)n)) {
			zc_iter_mem(&in, w->buf, (size_t)n);
			if (zc_move(&in, &src, (size_t)n, 0, &c->stats) != n) {
				zc_iter_discard(&src, &c->stats);
				goto out;
			}
			zc_iter_mem(&src, w->buf, (size_t)n);
		}
	} else {
		zc_iter_mem(&src, w->buf, (size_t)n);
	}
	zc_dispatch(&req, (size_t)n);
	zc_stats_latency(&c->stats, zc_now_usec() - t0);
out:
	__atomic_add_fetch(&c->pool->idle, 1, __ATOMIC_ACQ_REL);
	return 0;
}

static void *worker_main(void *arg)
{
	struct zc_worker *w = arg;
	struct zc_chan *c = w->chan;
	int r;

	/* Names show in top -H and /proc/PID/task/TID/comm. */
	pthread_setname_np(pthread_self(), "zcfuse-dev");
	while (!__atomic_load_n(&c->exiting, __ATOMIC_ACQUIRE)) {
		r = worker_serve_one(w);
		if (r == 0 || r == -EINTR || r == -EAGAIN)
			continue;
		if (r == -ENOENT)
			continue; /* the request was interrupted before it was read */
		/* ENODEV: unmounted. Anything else is fatal for the mount. */
		zc_chan_stop(c, r == -ENODEV ? 0 : r);
		break;
	}
	return NULL;
}

/*
 * Start a worker thread unless the limit is reached or the transport is
 * stopping. The thread is created under the lock, so that the list never
 * holds a worker without a thread and stop_workers() sees every one.
 */
static int start_worker(struct zc_chan *c)
{
	struct zc_dev_pool *p = c->pool;
	struct zc_worker *w;
	sigset_t all, old;
	bool room;
	int r = 0;

	/* Cheap check first: a worker costs a buffer and a pipe to set up. */
	pthread_mutex_lock(&p->lock);
	room = p->nr_workers < p->max_workers;
	pthread_mutex_unlock(&p->lock);
	if (!room)
		return 0;
	w = worker_new(c);
	if (!w)
		return -ENOMEM;
	/* Workers take only the stop signal; SIGINT and friends go to the main thread. */
	sigfillset(&all);
	sigdelset(&all, ZC_STOP_SIGNAL);
	pthread_mutex_lock(&p->lock);
	if (__atomic_load_n(&c->exiting, __ATOMIC_ACQUIRE) || p->nr_workers >= p->max_workers) {
		pthread_mutex_unlock(&p->lock);
		worker_free(w);
		return 0;
	}
	__atomic_add_fetch(&p->idle, 1, __ATOMIC_ACQ_REL);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r == 0) {
		w->next = p->workers;
		p->workers = w;
		p->nr_workers++;
	} else {
		__atomic_sub_fetch(&p->idle, 1, __ATOMIC_ACQ_REL);
	}
	pthread_mutex_unlock(&p->lock);
	if (r < 0)
		worker_free(w);
	return r;
}

/* All workers are busy: start another, up to the limit. */
static void maybe_spawn(struct zc_chan *c)
{
	start_worker(c);
}

/*
 * Wake every worker out of its blocking receive until all have ended, then
 * the lock waiters, which may reply to a worker's cloned descriptor.
 */
static void stop_workers(struct zc_chan *c)
{
	struct zc_dev_pool *p = c->pool;
	struct zc_worker *list, *w, *next;

	/* exiting is set: from here on no worker is added. */
	pthread_mutex_lock(&p->lock);
	list = p->workers;
	p->workers = NULL;
	p->nr_workers = 0;
	pthread_mutex_unlock(&p->lock);
	for (w = list; w; w = w->next)
		zc_stop_thread(w->thread);
	zc_waiter_stop_all(c);
	for (w = list; w; w = next) {
		next = w->next;
		worker_free(w);
	}
}

/* The pool of @c, for at most @max_workers threads. */
static int pool_new(struct zc_chan *c, unsigned int max_workers)
{
	struct zc_dev_pool *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	p->max_workers = max_workers ? max_workers : 1;
	c->pool = p;
	return 0;
}

static void pool_free(struct zc_chan *c)
{
	if (!c->pool)
		return;
	pthread_mutex_destroy(&c->pool->lock);
	free(c->pool);
	c->pool = NULL;
}

int zc_dev_run(struct zc_chan *c, bool single)
{
	struct zc_worker *w;
	int r;

	r = pool_new(c, single ? 1 : c->opts->threads);
	if (r < 0)
		return r;
	zc_waiter_enable(c);
	if (single) {
		w = worker_new(c);
		if (!w) {
			r = -ENOMEM;
			goto out;
		}
		c->pool->nr_workers = 1;
		c->pool->idle = 1;
		worker_main(w);
		zc_waiter_stop_all(c);
		worker_free(w);
		c->pool->nr_workers = 0;
	} else {
		r = start_worker(c);
		if (r < 0)
			goto out;
		while (sem_wait(&c->stop) < 0 && errno == EINTR)
			;
		stop_workers(c);
	}
	r = c->error;
out:
	pool_free(c);
	return r;
}

/*
 * One worker served on the calling thread, one request per call, as -s
 * would: for tests and the fuzz target, which feed the device descriptor
 * themselves.
 */
struct zc_worker *zc_dev_worker_new(struct zc_chan *c)
{
	struct zc_worker *w;

	if (pool_new(c, 1) < 0)
		return NULL;
	w = worker_new(c);
	if (!w) {
		pool_free(c);
		return NULL;
	}
	c->pool->nr_workers = 1;
	return w;
}

int zc_dev_worker_serve_one(struct zc_worker *w)
{
	w->chan->pool->idle = 1;
	return worker_serve_one(w);
}

void zc_dev_worker_free(struct zc_worker *w)
{
	struct zc_chan *c = w->chan;

	worker_free(w);
	pool_free(c);
}
