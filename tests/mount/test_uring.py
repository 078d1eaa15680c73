"""The io_uring transport: requests really arrive over the ring, refusals
fall back to /dev/fuse with one line that says why (or end the daemon with
io_uring=strict), and unmount, signals and a killed daemon never hang.

Every test sets /sys/module/fuse/parameters/enable_uring itself and restores
it; a test skips, with the reason, where that cannot be done.
"""

import contextlib
import errno
import os
import signal
import subprocess
import sys
import time

import pytest

import zctest
from zctest import counter_delta as delta, read_file, write_file

J = os.path.join
MIB = 1 << 20
# Pool threads per queue (ZC_URING_POOL in zc_uring.c).
POOL_THREADS = 4


@pytest.fixture
def uring_on():
    zctest.require_fuse()
    with zctest.UringParam(True) as p:
        if p.skip_reason:
            pytest.skip(p.skip_reason)
        yield


@pytest.fixture
def uring_off():
    zctest.require_fuse()
    with zctest.UringParam(False) as p:
        if p.skip_reason:
            pytest.skip(p.skip_reason)
        yield


def small_workload(mnt, rounds=50):
    data = os.urandom(MIB) + b'tail'
    write_file(J(mnt, 'f'), data)
    assert read_file(J(mnt, 'f')) == data
    os.mkdir(J(mnt, 'd'))
    for i in range(rounds):
        write_file(J(mnt, 'd', 'n%d' % i), b'%d' % i)
        os.stat(J(mnt, 'd', 'n%d' % i))
    assert len(os.listdir(J(mnt, 'd'))) == rounds
    for i in range(rounds):
        os.unlink(J(mnt, 'd', 'n%d' % i))
    os.rmdir(J(mnt, 'd'))
    return data


@pytest.mark.parametrize('opts', [['cache=never'], ['cache=never', 'nosplice'],
                                  ['cache=auto', 'writeback'], ['cache=never', 'nouring_pin']],
                         ids=['cache-never', 'nosplice', 'writeback', 'unpinned'])
def test_requests_arrive_over_the_ring(uring_on, opts):
    with zctest.Mount(opts=opts + ['io_uring=strict']) as m:
        before = zctest.counters(m.mnt)
        data = small_workload(m.mnt)
        after = zctest.counters(m.mnt)
        ring = delta(after, before, 'transport.uring.requests')
        dev = delta(after, before, 'transport.dev.requests')
        assert after['transport.uring.queues'] == zctest.possible_cpus()
        # Everything but FORGET (which the kernel always sends on /dev/fuse).
        assert ring >= 300, after
        assert dev <= delta(after, before, 'requests.FORGET') + \
            delta(after, before, 'requests.BATCH_FORGET') + 2, after
        # File data went through the ring's payload buffers, both ways.
        assert delta(after, before, 'transport.uring.payload_in') >= len(data)
        assert delta(after, before, 'transport.uring.payload_out') >= len(data) or \
            'writeback' in opts
        assert delta(after, before, 'data.written') >= len(data)
        assert delta(after, before, 'transport.uring.commits') >= ring - 1
        assert read_file(J(m.src, 'f')) == data


def test_ring_depth_one_and_single_threaded(uring_on):
    # One entry per queue, and the /dev/fuse side on the main thread only.
    with zctest.Mount(opts=['cache=never', 'io_uring=strict', 'uring_depth=1'],
                      args=['-s']) as m:
        small_workload(m.mnt, rounds=10)
        assert zctest.counters(m.mnt)['transport.uring.requests'] > 30


def daemon_threads(pid):
    """{thread id: name} of the daemon's threads."""
    threads = {}
    for tid in os.listdir('/proc/%d/task' % pid):
        try:
            with open('/proc/%d/task/%s/comm' % (pid, tid)) as f:
                threads[int(tid)] = f.read().strip()
        except FileNotFoundError:
            pass  # a thread that just ended
    return threads


def ring_threads(pid, idle=True, timeout=10):
    """({queue: thread id}, [pool thread ids]) once every queue thread runs
    under its name (and at SCHED_IDLE, or normal priority, unless idle is
    None) and its pool threads under theirs."""
    deadline = time.monotonic() + timeout
    while True:
        threads = daemon_threads(pid)
        rings = {int(name[len('zcfuse-ring'):]): tid for tid, name in threads.items()
                 if name.startswith('zcfuse-ring')}
        pools = [tid for tid, name in threads.items() if name.startswith('zcfuse-pool')]
        policy = os.SCHED_IDLE if idle else os.SCHED_OTHER
        try:
            ready = (sorted(rings) == list(range(zctest.possible_cpus())) and
                     len(pools) == POOL_THREADS * len(rings) and
                     (idle is None or
                      all(os.sched_getscheduler(t) == policy for t in rings.values())))
        except ProcessLookupError:
            ready = False
        if ready:
            return rings, pools
        assert time.monotonic() < deadline, 'ring threads never all started: %s' % threads
        time.sleep(0.05)


@pytest.mark.parametrize('idle', [True, False], ids=['idle', 'nouring_idle'])
def test_queue_threads_pinned_and_at_idle_priority(uring_on, idle):
    # One thread per queue, on that queue's CPU, at SCHED_IDLE unless
    # -o nouring_idle; the pool threads run anywhere at normal priority.
    opts = ['cache=never', 'io_uring=strict'] + ([] if idle else ['nouring_idle'])
    with zctest.Mount(opts=opts) as m:
        small_workload(m.mnt, rounds=5)
        rings, pools = ring_threads(m.proc.pid, idle)
        for qid, tid in rings.items():
            assert os.sched_getscheduler(tid) == (os.SCHED_IDLE if idle else os.SCHED_OTHER)
            assert os.sched_getaffinity(tid) == {qid}
        for tid in pools:
            assert os.sched_getscheduler(tid) == os.SCHED_OTHER
            assert len(os.sched_getaffinity(tid)) == len(os.sched_getaffinity(0))


_HOG = '''
import os
os.sched_setaffinity(0, {0})
print('spinning', flush=True)
while True:
    pass
'''

_STAT_LOOP = '''
import os, sys, time
os.sched_setaffinity(0, {0})
path, seconds = sys.argv[1], float(sys.argv[2])
n, end = 0, time.monotonic() + seconds
while time.monotonic() < end:
    os.stat(path)
    n += 1
print(n)
'''


AUTOGROUP = '/proc/sys/kernel/sched_autogroup_enabled'


@pytest.fixture
def one_scheduling_group():
    """Sessions started now share one scheduling group: with autogroups, a
    busy loop in another session could not starve the daemon's threads."""
    try:
        with open(AUTOGROUP) as f:
            old = f.read().strip()
    except FileNotFoundError:
        yield
        return
    try:
        with open(AUTOGROUP, 'w') as f:
            f.write('0')
    except OSError as e:
        pytest.skip('cannot turn autogroups off: %s' % e)
    try:
        yield
    finally:
        with open(AUTOGROUP, 'w') as f:
            f.write(old)


def test_starved_queue_thread_is_lifted(uring_on, one_scheduling_group):
    # A busy loop on CPU 0 starves queue 0's thread at SCHED_IDLE: without
    # the watchdog a stat() loop on that CPU made about 200 calls in 2 s
    # here, with it 47 000. The watchdog lifts the thread to normal
    # priority, and lets it down again once the CPU is free.
    hog = subprocess.Popen([sys.executable, '-c', _HOG], stdout=subprocess.PIPE,
                           start_new_session=True)
    try:
        assert hog.stdout.readline().strip() == b'spinning'
        with zctest.Mount(opts=['cache=never', 'io_uring=strict']) as m:
            path = J(m.mnt, 'f')
            write_file(path, b'x')
            rings, _ = ring_threads(m.proc.pid, idle=None)
            r = subprocess.run([sys.executable, '-c', _STAT_LOOP, path, '2'],
                               stdout=subprocess.PIPE, timeout=60, check=True,
                               start_new_session=True)
            calls = int(r.stdout)
            assert zctest.counters(m.mnt)['transport.uring.promotions'] >= 1
            assert calls >= 2000, calls
            hog.kill()
            hog.wait()
            # Back to SCHED_IDLE once the hold (1 s, doubled while starved
            # again soon after) has run out.
            deadline = time.monotonic() + 20
            while os.sched_getscheduler(rings[0]) != os.SCHED_IDLE:
                assert time.monotonic() < deadline, 'queue thread stayed at normal priority'
                time.sleep(0.1)
    finally:
        if hog.poll() is None:
            hog.kill()
            hog.wait()


_USER_WORKLOAD = '''
import os, sys
mnt = sys.argv[1]
data = os.urandom(1 << 20)
with open(os.path.join(mnt, 'f'), 'wb') as f:
    f.write(data)
with open(os.path.join(mnt, 'f'), 'rb') as f:
    assert f.read() == data
sys.stdout.write(os.getxattr(mnt, 'user.zcfuse.stats').decode())
'''


def test_unprivileged_daemon_keeps_normal_priority(uring_on):
    # Without CAP_SYS_NICE (and with the usual RLIMIT_NICE of 0) a thread
    # cannot leave SCHED_IDLE again, so the watchdog could not lift it.
    with zctest.UserMount(['cache=never', 'io_uring']) as m:
        out = m.run([m.python, '-c', _USER_WORKLOAD, m.mnt])
        assert out.returncode == 0, out.stderr
        c = zctest.parse_counters(out.stdout)
        assert c['transport.uring.requests'] > 0, m.log()
        rings, _ = ring_threads(m.proc.pid, idle=False)
        assert len(rings) == zctest.possible_cpus()
    lines = [l for l in m.log().splitlines() if 'normal priority' in l]
    assert len(lines) == 1, m.log()
    assert 'io_uring: queue threads run at normal priority' in lines[0]
    assert 'CAP_SYS_NICE' in lines[0]


def test_small_and_lone_requests_stay_on_the_queue_thread(uring_on):
    # Handing a request to the pool costs two wake-ups: 4 KiB reads, and a
    # large WRITE an application waits for alone, are served where they land.
    with zctest.Mount(opts=['cache=never', 'io_uring=strict']) as m:
        path = J(m.mnt, 'f')
        data = os.urandom(4 * MIB)
        write_file(path, data)
        before = zctest.counters(m.mnt)
        fd = os.open(path, os.O_RDWR)
        try:
            for i in range(0, len(data), 4096):
                assert os.pread(fd, 4096, i) == data[i:i + 4096]
            for i in range(0, len(data), MIB):
                os.pwrite(fd, data[i:i + MIB], i)
        finally:
            os.close(fd)
        after = zctest.counters(m.mnt)
        assert delta(after, before, 'transport.uring.requests') >= 1024 + 4
        assert delta(after, before, 'transport.uring.pool') == 0
        assert read_file(path) == data


def test_writeback_writes_go_to_the_pool(uring_on):
    # Writeback WRITEs go to the pool, which commits them on its own rings:
    # the next ones come in there, copied in beside the queue thread.
    with zctest.Mount(opts=['cache=auto', 'writeback', 'io_uring=strict']) as m:
        path = J(m.mnt, 'f')
        data = os.urandom(64 * MIB)
        before = zctest.counters(m.mnt)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            for i in range(0, len(data), MIB):
                os.write(fd, data[i:i + MIB])
            os.fsync(fd)
        finally:
            os.close(fd)
        after = zctest.counters(m.mnt)
        writes = delta(after, before, 'requests.WRITE')
        pool = delta(after, before, 'transport.uring.pool')
        pool_ring = delta(after, before, 'transport.uring.pool_ring')
        assert writes > 0
        # Every writeback WRITE is served by the pool.
        assert pool >= writes, (pool, writes)
        # Only those that land on an entry the queue thread committed are
        # handed over; the rest come in on the pool's rings.
        assert pool_ring >= writes // 2, (pool_ring, writes)
        zctest.drop_caches()
        assert read_file(path) == data


def test_entries_come_home_after_writeback(uring_on):
    # Writeback leaves entries on the pool threads' rings, where the kernel
    # hands the next request to the entry that came back last. Once the
    # burst is over, a small request that lands there is committed by the
    # queue thread, which takes the entry back: later ones stay on the
    # queue thread, whatever the number.
    depth = 8
    with zctest.Mount(opts=['cache=auto', 'writeback', 'io_uring=strict',
                            'uring_depth=%d' % depth]) as m:
        path = J(m.mnt, 'f')
        before = zctest.counters(m.mnt)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            chunk = os.urandom(MIB)
            for _ in range(32):
                os.write(fd, chunk)
            os.fsync(fd)
        finally:
            os.close(fd)
        mid = zctest.counters(m.mnt)
        assert delta(mid, before, 'transport.uring.pool_ring') > 0
        time.sleep(0.3)     # past the pool threads' 100 ms linger
        rounds = 1000
        for i in range(rounds):
            os.mkdir(J(m.mnt, 'd'))
            os.rmdir(J(m.mnt, 'd'))
        after = zctest.counters(m.mnt)
        assert delta(after, mid, 'transport.uring.requests') >= 2 * rounds
        # At most once per entry, on its way home.
        assert delta(after, mid, 'transport.uring.pool') <= depth * zctest.possible_cpus()


def test_fallback_when_the_parameter_is_off(uring_off):
    with zctest.Mount(opts=['cache=never', 'io_uring']) as m:
        small_workload(m.mnt, rounds=5)
        c = zctest.counters(m.mnt)
        assert c['transport.uring.requests'] == 0
        assert c['transport.uring.queues'] == 0
        assert c['transport.dev.requests'] > 20
    lines = [l for l in m_stderr(m).splitlines() if 'io_uring' in l]
    assert len(lines) == 1, lines
    assert 'enable_uring is N' in lines[0] and 'through /dev/fuse' in lines[0], lines


def m_stderr(m):
    # The harness removes the directories after unmount: read what it kept.
    return m.last_stderr


def default_mount():
    """A mount with no transport option: the daemon's own choice."""
    return zctest.Mount(opts=['cache=never'], extra_opts=())


def transport_lines(m):
    return [l for l in m_stderr(m).splitlines() if 'transport' in l or 'io_uring' in l]


def test_default_is_the_ring_where_the_kernel_allows_it(uring_on, monkeypatch):
    monkeypatch.setenv('ZCFUSE_TRANSPORT', 'default')
    with default_mount() as m:
        assert not any(o in ('io_uring', 'noio_uring') for o in m.opts), m.opts
        small_workload(m.mnt, rounds=5)
        c = zctest.counters(m.mnt)
        assert c['transport.uring.queues'] == zctest.possible_cpus()
        assert c['transport.uring.requests'] > 20
        # /dev/fuse keeps INIT, FORGETs and INTERRUPTs alone.
        assert c['transport.uring.requests'] > 4 * c['transport.dev.requests'], c
    lines = transport_lines(m)
    assert len(lines) == 1, lines
    assert 'FUSE over io_uring' in lines[0] and 'noio_uring' in lines[0], lines


def test_default_is_dev_fuse_with_the_reason_where_the_kernel_refuses(uring_off, monkeypatch):
    monkeypatch.setenv('ZCFUSE_TRANSPORT', 'default')
    with default_mount() as m:
        small_workload(m.mnt, rounds=5)
        c = zctest.counters(m.mnt)
        assert c['transport.uring.requests'] == 0
        assert c['transport.uring.queues'] == 0
        assert c['transport.dev.requests'] > 20
    lines = transport_lines(m)
    assert len(lines) == 1, lines
    assert '/dev/fuse' in lines[0] and 'enable_uring is N' in lines[0], lines


def test_noio_uring_keeps_dev_fuse_silently(uring_on):
    with zctest.Mount(opts=['cache=never', 'noio_uring']) as m:
        small_workload(m.mnt, rounds=5)
        c = zctest.counters(m.mnt)
        assert c['transport.uring.requests'] == 0
        assert c['transport.dev.requests'] > 20
    assert transport_lines(m) == []


def test_strict_exits_when_refused(uring_off, tmp_path):
    src, mnt = tmp_path / 'src', tmp_path / 'mnt'
    src.mkdir()
    mnt.mkdir()
    r = subprocess.run([zctest.zcfuse_bin(), str(src), str(mnt), '-f', '-o', 'io_uring=strict'],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=20)
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert not zctest.is_mounted(str(mnt))
    assert 'io_uring=strict' in err and 'enable_uring is N' in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_bad_depth_is_refused(uring_on, tmp_path):
    r = subprocess.run([zctest.zcfuse_bin(), str(tmp_path), str(tmp_path), '-o',
                        'io_uring,uring_depth=0'], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    assert r.returncode == 2
    assert 'uring_depth' in r.stderr.decode()


# A reader that never stops on its own: stat and read, over and over. (No
# directory listing: a directory open when the daemon goes away is a handle
# nobody releases, which the leak checker of the sanitizer build reports.)
_BUSY = r'''
import errno, os, sys
p = sys.argv[1]
print('started', flush=True)
while True:
    try:
        os.stat(p)
        with open(os.path.join(p, 'f'), 'rb') as f:
            f.read()
    except OSError as e:
        print(errno.errorcode[e.errno], flush=True)
        sys.exit(0)
'''


def start_busy(mnt):
    proc = subprocess.Popen([sys.executable, '-c', _BUSY, mnt], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b'started'
    time.sleep(0.3)  # requests in flight on the ring
    return proc


def end_busy(proc, expect):
    try:
        out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail('a process using the mount hung after the daemon went away')
    assert proc.returncode == 0, err
    assert out.decode().split()[-1] in expect, out


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT], ids=['SIGTERM', 'SIGINT'])
def test_signal_unmounts_while_busy(uring_on, sig):
    with zctest.Mount(opts=['cache=never', 'io_uring=strict']) as m:
        write_file(J(m.mnt, 'f'), b'x' * 100000)
        busy = start_busy(m.mnt)
        try:
            assert zctest.counters(m.mnt)['transport.uring.requests'] > 0
            os.kill(m.proc.pid, sig)
            status = m.proc.wait(timeout=10)
            assert status == 0, m.stderr_text()
            assert not zctest.is_mounted(m.mnt)
        finally:
            if busy.poll() is None:
                end_busy(busy, ('ENOTCONN', 'ECONNABORTED', 'ECANCELED', 'ENOENT'))


def test_unmount_while_busy(uring_on):
    with zctest.Mount(opts=['cache=never', 'io_uring=strict']) as m:
        write_file(J(m.mnt, 'f'), b'x' * 100000)
        busy = start_busy(m.mnt)
        try:
            ok, msg = zctest.fusermount_unmount(m.mnt, lazy=True)
            assert ok, msg
            assert m.proc.wait(timeout=10) == 0, m.stderr_text()
        finally:
            if busy.poll() is None:
                end_busy(busy, ('ENOTCONN', 'ECONNABORTED', 'ECANCELED', 'ENOENT'))


def test_sigkill_while_busy_does_not_hang(uring_on):
    with zctest.Mount(opts=['cache=never', 'io_uring=strict'],
                      expected_exit=-signal.SIGKILL) as m:
        write_file(J(m.mnt, 'f'), b'x' * 100000)
        busy = start_busy(m.mnt)
        try:
            os.kill(m.proc.pid, signal.SIGKILL)
            m.proc.wait(timeout=10)
            end_busy(busy, ('ENOTCONN', 'ECONNABORTED', 'ECANCELED'))
            assert zctest.attempt(os.stat, m.mnt) in (zctest.Err(errno.ENOTCONN),
                                                      zctest.Err(errno.ECONNABORTED))
        finally:
            if busy.poll() is None:
                busy.kill()
                busy.wait()
            ok, msg = zctest.fusermount_unmount(m.mnt, lazy=True)
            assert ok, msg


def test_background_daemon_on_the_ring(uring_on):
    with zctest.Mount(opts=['io_uring=strict'], foreground=False) as m:
        write_file(J(m.mnt, 'f'), b'from the background')
        assert read_file(J(m.src, 'f')) == b'from the background'
        assert zctest.counters(m.mnt)['transport.uring.requests'] > 0


# Holds an exclusive flock on argv[1] until a line arrives on stdin.
_HOLDER = r'''
import fcntl, os, sys
os.sched_setaffinity(0, {0})
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
print('locked', flush=True)
sys.stdin.readline()
fcntl.flock(fd, fcntl.LOCK_UN)
print('unlocked', flush=True)
sys.stdin.readline()
'''

# Waits for the same lock, on the same CPU (so on the same ring queue).
_WAITER = r'''
import fcntl, os, sys
os.sched_setaffinity(0, {0})
fd = os.open(sys.argv[1], os.O_RDWR)
print('waiting', flush=True)
fcntl.flock(fd, fcntl.LOCK_EX)
print('got it', flush=True)
'''


@contextlib.contextmanager
def flock_waiting(mnt):
    """(holder, waiter): the holder has a lock on a file of mnt, and the
    waiter's request for it is blocked in the daemon. Both are ended after."""
    path = J(mnt, 'lock')
    write_file(path, b'')
    holder = subprocess.Popen([sys.executable, '-c', _HOLDER, path], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE)
    waiter = None
    try:
        assert holder.stdout.readline().strip() == b'locked'
        waiter = subprocess.Popen([sys.executable, '-c', _WAITER, path],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert waiter.stdout.readline().strip() == b'waiting'
        time.sleep(0.3)  # the waiter's request is in the daemon now
        yield holder, waiter
    finally:
        for p in (holder, waiter):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()


def test_blocking_flock_does_not_block_the_queue(uring_on):
    # The waiter's FLOCK blocks in the daemon; the holder's unlock arrives on
    # the same queue and must still be served, or neither ever returns.
    with zctest.Mount(opts=['cache=never', 'io_uring=strict']) as m:
        with flock_waiting(m.mnt) as (holder, waiter):
            holder.stdin.write(b'\n')
            holder.stdin.flush()
            assert holder.stdout.readline().strip() == b'unlocked'
            out, _ = waiter.communicate(timeout=10)
            assert out.strip() == b'got it'


def test_sigterm_with_a_flock_waiting(uring_on):
    # A FLOCK blocked in the daemon must not keep the daemon from exiting.
    with zctest.Mount(opts=['cache=never', 'io_uring=strict']) as m:
        with flock_waiting(m.mnt) as (_, waiter):
            os.kill(m.proc.pid, signal.SIGTERM)
            assert m.proc.wait(timeout=10) == 0, m.stderr_text()
            waiter.communicate(timeout=10)
