"""Reliability: faults of the backing store, a daemon killed under load, many clients.

- ENOSPC from a size-limited tmpfs as SOURCE, EIO from an ext4 file system
  (on a loop device, mounted inside SOURCE) that is shut down under the
  daemon: the application gets the errno, the daemon lives on, other files
  are untouched.
- SIGKILL during heavy reads and writes: every blocked process gets an error
  within seconds, a fresh mount on the same SOURCE works, and what was
  fsynced before the kill is there. SIGTERM under load: a clean unmount, and
  the same for fsynced data.
- 64 concurrent clients running integrity.py's checked random operations;
  the daemon's open descriptors and resident memory stay flat.

These tests set their own mount options. The figures they measure are
printed (run pytest with -s to see them); ZCFUSE_LOAD_SECONDS sets the
length of the load test (default 30).
"""

import contextlib
import errno
import fcntl
import json
import multiprocessing
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

import pytest

import integrity
import zctest
from zctest import Err, attempt, read_file, write_file

J = os.path.join
KiB = 1 << 10
MiB = 1 << 20
LOAD_SECONDS = float(os.environ.get('ZCFUSE_LOAD_SECONDS', '30'))
LOAD_CLIENTS = int(os.environ.get('ZCFUSE_LOAD_CLIENTS', '64'))
DEAD_CONNECTION = (errno.ENOTCONN, errno.ECONNABORTED)


@pytest.fixture(autouse=True)
def _fuse_needed():
    zctest.require_fuse()
    if os.geteuid() != 0:
        pytest.skip('needs root')


def run_quiet(cmd):
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=60)


@contextlib.contextmanager
def mounted(fstype, target, opts, device=None):
    """mount(8) a file system at target for the block; skip when that fails."""
    cmd = ['mount', '-t', fstype, '-o', opts, device or fstype, target]
    r = run_quiet(cmd)
    if r.returncode != 0:
        pytest.skip('cannot mount %s here: %s' % (fstype, r.stdout.decode(errors='replace')))
    try:
        yield target
    finally:
        if run_quiet(['umount', target]).returncode != 0:
            run_quiet(['umount', '-l', target])


def daemon_alive(m):
    return m.proc.poll() is None


def sanitized(pid):
    """True when the process runs with AddressSanitizer."""
    with open('/proc/%d/maps' % pid) as f:
        return 'libasan' in f.read()


def daemon_figures(pid):
    """(open descriptors, VmRSS in KiB, threads) of a process."""
    fds = len(os.listdir('/proc/%d/fd' % pid))
    rss = threads = None
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                rss = int(line.split()[1])
            elif line.startswith('Threads:'):
                threads = int(line.split()[1])
    return fds, rss, threads


# ----------------------------------------------------------------------- ENOSPC

def fill_until_error(path, chunk=64 * KiB, limit=64 * MiB):
    """Write path until an error; return (bytes written, errno, where it came)."""
    data = os.urandom(chunk)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    done = 0
    try:
        while done < limit:
            try:
                done += os.write(fd, data)
            except OSError as e:
                return done, e.errno, 'write'
        try:
            os.fsync(fd)
        except OSError as e:
            return done, e.errno, 'fsync'
    finally:
        try:
            os.close(fd)
        except OSError as e:
            return done, e.errno, 'close'
    return done, None, None


@pytest.mark.timeout(120)
@pytest.mark.parametrize('opts', ['cache=auto', 'cache=never', 'cache=auto,writeback',
                                  'cache=never,nosplice'])
def test_enospc_from_full_source(opts):
    base = tempfile.mkdtemp(prefix='zcfuse-enospc-', dir=zctest.tmp_root())
    src = J(base, 'fs')
    os.mkdir(src)
    try:
        with mounted('tmpfs', src, 'size=4m,nr_inodes=200,mode=0755'):
            keep = os.urandom(300 * KiB)
            m = zctest.Mount(opts=opts.split(','))
            m.make_dirs()
            shutil.rmtree(m.src)
            m.src = src
            write_file(J(src, 'keep'), keep)
            m.start()
            try:
                written, err, where = fill_until_error(J(m.mnt, 'big'))
                print('ENOSPC: %s after %d KiB, at %s' % (opts, written // KiB, where))
                assert err == errno.ENOSPC, (written, err, where)
                assert daemon_alive(m)
                # Out of inodes: creating gives ENOSPC as well.
                made = 0
                for i in range(400):
                    r = attempt(os.mkdir, J(m.mnt, 'd%d' % i))
                    if isinstance(r, Err):
                        assert r == Err(errno.ENOSPC), r
                        break
                    made += 1
                else:
                    pytest.fail('200 inodes and never ENOSPC')
                assert daemon_alive(m)
                # Other files are untouched; freeing space makes writing work again.
                assert read_file(J(m.mnt, 'keep')) == keep
                assert read_file(J(src, 'keep')) == keep
                os.unlink(J(m.mnt, 'big'))
                for i in range(made):
                    os.rmdir(J(m.mnt, 'd%d' % i))
                write_file(J(m.mnt, 'after'), b'x' * (1 * MiB))
                assert os.path.getsize(J(src, 'after')) == 1 * MiB
                assert read_file(J(m.mnt, 'keep')) == keep
            finally:
                m.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


# -------------------------------------------------------------------------- EIO

FS_IOC_SHUTDOWN = 0x8004587d  # _IOR('X', 125, __u32)
SHUTDOWN_NOLOGFLUSH = 2


@pytest.mark.timeout(120)
@pytest.mark.parametrize('opts', ['cache=auto', 'cache=never,nosplice'])
def test_eio_from_backing_store(opts):
    """An ext4 inside SOURCE is shut down: its files give EIO, the rest works."""
    if shutil.which('mkfs.ext4') is None or not os.path.exists('/dev/loop-control'):
        pytest.skip('needs mkfs.ext4 and loop devices')
    keep = os.urandom(200 * KiB)
    good = os.urandom(256 * KiB)

    def populate(src):
        write_file(J(src, 'keep'), keep)

    with zctest.Mount(opts=opts.split(','), populate=populate) as m:
        image = J(m.base, 'disk.img')
        with open(image, 'wb') as f:
            f.truncate(64 * MiB)
        r = run_quiet(['mkfs.ext4', '-q', '-F', image])
        assert r.returncode == 0, r.stdout
        disk = J(m.src, 'disk')
        os.mkdir(disk)
        with mounted('ext4', disk, 'loop', device=image):
            write_file(J(m.mnt, 'disk', 'written-before'), good)
            write_file(J(m.mnt, 'disk', 'unread'), good)
            fd = os.open(J(m.mnt, 'disk', 'open-file'), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                os.write(fd, b'first')
                os.fsync(fd)
                dfd = os.open(disk, os.O_RDONLY)
                try:
                    fcntl.ioctl(dfd, FS_IOC_SHUTDOWN, struct.pack('I', SHUTDOWN_NOLOGFLUSH))
                finally:
                    os.close(dfd)
                results = {
                    'write': attempt(os.pwrite, fd, b'x' * (64 * KiB), 0),
                    'fsync': attempt(os.fsync, fd),
                    'open': attempt(os.open, J(m.mnt, 'disk', 'unread'), os.O_RDONLY),
                    'create': attempt(os.open, J(m.mnt, 'disk', 'new'),
                                      os.O_WRONLY | os.O_CREAT, 0o644),
                    'mkdir': attempt(os.mkdir, J(m.mnt, 'disk', 'newdir')),
                }
            finally:
                zctest.attempt(os.close, fd)
            print('EIO: %s: %r' % (opts, results))
            for op in ('fsync', 'open', 'create', 'mkdir'):
                assert results[op] == Err(errno.EIO), (op, results[op])
            # The write may land in the page cache (cache=auto); fsync reports it.
            assert results['write'] in (Err(errno.EIO), 64 * KiB), results['write']
            assert daemon_alive(m)
            # Everything outside the broken file system works as before.
            assert read_file(J(m.mnt, 'keep')) == keep
            write_file(J(m.mnt, 'new-outside'), good)
            assert read_file(J(m.src, 'new-outside')) == good
            assert sorted(os.listdir(m.mnt)) == ['disk', 'keep', 'new-outside']
            # The daemon holds the broken file system's inodes: it goes first.
            m.unmount()
            assert m.proc.wait(timeout=10) == 0


# ----------------------------------------------------- killed or stopped under load

_LOAD_CLIENT = r'''
import errno, os, sys, time
role, root, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
deadline = time.monotonic() + float(sys.argv[4])
name = os.path.join(root, '%s-%d' % (role, n))
chunk = bytes([n % 251]) * (1 << 20)
def report(what, e=None):
    print('%s %s' % (what, errno.errorcode.get(e.errno, e.errno) if e else ''), flush=True)
try:
    if role == 'writer':
        fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        off = 0
        while time.monotonic() < deadline:
            os.pwrite(fd, chunk, off)
            off = (off + len(chunk)) % (32 << 20)
    elif role == 'reader':
        fd = os.open(os.path.join(root, 'big'), os.O_RDONLY)
        while time.monotonic() < deadline:
            for off in range(0, 16 << 20, 1 << 20):
                os.pread(fd, 1 << 20, off)
    elif role == 'meta':
        # Names relative to a descriptor of the mount's root: once a stopped
        # daemon has unmounted, a path would lead to the directory under it.
        dfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        i = 0
        while time.monotonic() < deadline:
            p = '%s-%d.%d' % (role, n, i % 50)
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, dir_fd=dfd)
            os.write(fd, b'm')
            os.close(fd)
            os.stat(p, dir_fd=dfd)
            os.listdir(dfd)
            os.rename(p, p + '.r', src_dir_fd=dfd, dst_dir_fd=dfd)
            os.unlink(p + '.r', dir_fd=dfd)
            i += 1
    elif role == 'syncer':
        # Records of 4 KiB, each fsynced; "synced N" once record N is durable.
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        i = 0
        while time.monotonic() < deadline:
            os.write(fd, (b'%08d' % i) * 512)
            os.fsync(fd)
            print('synced %d' % i, flush=True)
            i += 1
    report('done')
except OSError as e:
    report('error', e)
'''

ROLES = ['writer'] * 4 + ['reader'] * 4 + ['meta'] * 2 + ['syncer'] * 2


def start_load(m, seconds=120):
    procs = []
    for i, role in enumerate(ROLES):
        p = subprocess.Popen([sys.executable, '-c', _LOAD_CLIENT, role, m.mnt, str(i),
                              str(seconds)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        procs.append((role, i, p))
    return procs


def reap_load(procs, within, patience=60):
    """Wait for every client; {index: (role, last line, output)}.

    A client still running within seconds after the daemon went is blocked
    by the mount only if it waits in the kernel's FUSE code (seen so in
    every sample over two seconds): that fails the test at once. On a busy
    machine a client may merely not have run yet; it gets patience seconds
    more, and its state is reported if it still has not finished."""
    deadline = time.monotonic() + within
    out = {}
    hung = []
    for role, i, p in procs:
        try:
            text, _ = p.communicate(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            text, why = finish_or_blame(p, deadline + patience)
            if why:
                hung.append('%s-%d %s' % (role, i, why))
        lines = text.decode(errors='replace').split('\n')
        last = [line for line in lines if line and not line.startswith('synced')]
        out[i] = (role, last[-1] if last else '', lines)
    assert not hung, 'clients blocked after the daemon went: %s' % '; '.join(hung)
    return out


def finish_or_blame(p, give_up):
    """(output, None) once p ends; (output, why) if it waits in FUSE or outlasts give_up."""
    in_fuse = 0
    while True:
        try:
            text, _ = p.communicate(timeout=0.5)
            return text, None
        except subprocess.TimeoutExpired:
            pass
        frames = zctest.waits_in_fuse(p.pid)
        in_fuse = in_fuse + 1 if frames else 0
        why = None
        if in_fuse >= 4:
            why = 'waits in FUSE: %s' % ' < '.join(frames[:8])
        elif time.monotonic() > give_up:
            why = 'still running, not in FUSE (%s)' % ' < '.join(zctest.kernel_stack(p.pid)[:8])
        if why:
            p.kill()
            return p.communicate()[0], why


def check_synced(src, results):
    """Every record a syncer saw fsynced is in SOURCE, whole. Returns the count."""
    total = 0
    for i, (role, _, lines) in results.items():
        if role != 'syncer':
            continue
        synced = [int(line.split()[1]) for line in lines if line.startswith('synced ')]
        if not synced:
            continue
        data = read_file(J(src, 'syncer-%d' % i))
        last = max(synced)
        assert len(data) >= (last + 1) * 4096, \
            'syncer-%d: record %d was fsynced, SOURCE holds %d bytes' % (i, last, len(data))
        for n in range(last + 1):
            assert data[n * 4096:(n + 1) * 4096] == (b'%08d' % n) * 512, \
                'syncer-%d: fsynced record %d differs in SOURCE' % (i, n)
        total += last + 1
    return total


def populate_big(src):
    with open(J(src, 'big'), 'wb') as f:
        for i in range(16):
            f.write(bytes([i]) * MiB)


@pytest.mark.timeout(150)
@pytest.mark.parametrize('opts', ['cache=never', 'cache=auto,writeback', 'cache=never,nosplice'])
def test_sigkill_under_load(opts):
    fsynced = os.urandom(3 * MiB + 123)
    with zctest.Mount(opts=opts.split(','), populate=populate_big,
                      expected_exit=-signal.SIGKILL) as m:
        write_file(J(m.mnt, 'before-kill'), fsynced)
        fd = os.open(J(m.mnt, 'before-kill'), os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        procs = start_load(m)
        time.sleep(3)
        assert all(p.poll() is None for _, _, p in procs), 'a client ended early'
        killed = time.monotonic()
        os.kill(m.proc.pid, signal.SIGKILL)
        m.proc.wait(timeout=10)
        results = reap_load(procs, within=10)
        took = time.monotonic() - killed
        codes = {}
        for i, (role, last, _) in results.items():
            assert last.startswith('error '), '%s-%d ended with %r' % (role, i, last)
            codes[last.split()[1]] = codes.get(last.split()[1], 0) + 1
        # With writeback, data the kernel still held fails to reach the dead
        # daemon: fsync and close report that as EIO.
        allowed = {'ENOTCONN', 'ECONNABORTED'}
        if 'writeback' in opts:
            allowed.add('EIO')
        assert set(codes) <= allowed, codes
        records = check_synced(m.src, results)
        print('SIGKILL: %s: %d clients got %r within %.2f s; %d fsynced records intact'
              % (opts, len(results), codes, took, records))
        ok, msg = zctest.fusermount_unmount(m.mnt, lazy=True)
        assert ok, msg
        assert read_file(J(m.src, 'before-kill')) == fsynced
        # A fresh mount of the same SOURCE works and shows the fsynced data.
        m2 = zctest.Mount(opts=opts.split(','))
        m2.make_dirs()
        m2.src = m.src
        m2.start()
        try:
            assert read_file(J(m2.mnt, 'before-kill')) == fsynced
            write_file(J(m2.mnt, 'after'), b'works')
            assert read_file(J(m.src, 'after')) == b'works'
            check_synced(m2.mnt, results)
        finally:
            m2.stop()


# Unmount within this once every writer is gone (measured: 0.02 s with
# kernel passthrough, 0.3 s through the daemon, 1.7 s with writeback
# caching and 1.9 GB dirty; see README "Unmounting a busy mount").
UNMOUNT_BOUND = 30


@pytest.mark.timeout(120)
@pytest.mark.parametrize('opts', [None, 'nopassthrough,writeback'])
def test_unmount_right_after_killed_writers(opts):
    # Writers of 1 MiB blocks, killed with SIGKILL while the page cache
    # holds their dirty data: once they are gone, nothing of the daemon's
    # keeps the mount busy (what the kernel still writes back included).
    base = zctest.env_mount_opts() if opts is None else opts.split(',')
    writers = []
    with zctest.Mount(opts=base) as m:
        try:
            for i in range(4):
                writers.append(subprocess.Popen(
                    ['dd', 'if=/dev/zero', 'of=%s' % J(m.mnt, 'w%d' % i), 'bs=1M',
                     'count=100000'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(3)
            for w in writers:
                w.kill()
            for w in writers:
                w.wait(timeout=UNMOUNT_BOUND)
            t0 = time.monotonic()
            while True:
                r = subprocess.run(['fusermount3', '-u', m.mnt], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT)
                if r.returncode == 0 or time.monotonic() - t0 > UNMOUNT_BOUND:
                    break
                time.sleep(0.1)
            took = time.monotonic() - t0
            assert r.returncode == 0, 'still busy %.0f s after the writers died: %s' % (
                took, r.stdout.decode())
            print('unmount after killed writers: %s: %.2f s' % (opts or 'default', took))
        finally:
            for w in writers:
                if w.poll() is None:
                    w.kill()


@pytest.mark.timeout(150)
@pytest.mark.parametrize('opts', ['cache=never', 'cache=auto,writeback'])
def test_sigterm_under_load(opts):
    fsynced = os.urandom(2 * MiB + 7)
    with zctest.Mount(opts=opts.split(','), populate=populate_big) as m:
        write_file(J(m.mnt, 'before-term'), fsynced)
        fd = os.open(J(m.mnt, 'before-term'), os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        procs = start_load(m)
        time.sleep(3)
        stopped = time.monotonic()
        os.kill(m.proc.pid, signal.SIGTERM)
        status = m.proc.wait(timeout=20)
        took = time.monotonic() - stopped
        assert status == 0, m.stderr_text()
        assert not zctest.is_mounted(m.mnt)
        results = reap_load(procs, within=10)
        codes = {}
        for i, (role, last, _) in results.items():
            key = last.split()[1] if last.startswith('error ') else last
            codes[key] = codes.get(key, 0) + 1
        allowed = {'ENOTCONN', 'ECONNABORTED', 'ENOENT', 'done'}
        # With writeback, data the kernel still held when the mount went away
        # cannot be written: fsync and close report that as EIO.
        if 'writeback' in opts:
            allowed.add('EIO')
        assert set(codes) <= allowed, codes
        records = check_synced(m.src, results)
        assert read_file(J(m.src, 'before-term')) == fsynced
        print('SIGTERM: %s: daemon exited 0 in %.2f s, clients %r; %d fsynced records intact'
              % (opts, took, codes, records))


# ------------------------------------------------------------------------ load

def _load_client(args):
    """One client: integrity.py's checked random operations until the deadline."""
    mnt, ref, seed, deadline = args
    os.makedirs(mnt, exist_ok=True)
    os.makedirs(ref, exist_ok=True)
    r = integrity.Run(mnt, ref, seed, max_end=768 * KiB, max_write=256 * KiB)
    try:
        r.run(None, deadline=deadline)
        r.check(full=True)
        while r.handles:
            h = r.handles.pop()
            r.both('close', lambda: os.close(h.mfd), lambda: os.close(h.rfd))
        r.check(full=True)
    except Exception as e:  # reported to the parent, which fails the test
        r.close_all()
        return {'seed': seed, 'error': '%s: %s' % (type(e).__name__, e)}
    return {'seed': seed, 'ops': r.ops_done, 'bytes': r.bytes_written,
            'counts': dict(r.counts)}


def run_load(m, clients, seconds, sample):
    deadline = time.monotonic() + seconds
    jobs = [(J(m.mnt, 'c%02d' % i), J(m.ref, 'c%02d' % i), 1000 + i, deadline)
            for i in range(clients)]
    ctx = multiprocessing.get_context('fork')
    pool = ctx.Pool(clients)
    try:
        res = pool.map_async(_load_client, jobs)
        while not res.ready():
            res.wait(1.0)
            sample()
        return res.get(timeout=60)
    finally:
        pool.close()
        pool.join()


@pytest.mark.timeout(LOAD_SECONDS * 3 + 240)
def test_load_64_clients():
    """LOAD_CLIENTS clients of mixed, checked operations; descriptors and memory stay flat."""
    with zctest.Mount(opts=['cache=auto']) as m:
        pid = m.proc.pid
        samples = []

        def sample():
            samples.append((time.monotonic(),) + daemon_figures(pid))

        before = daemon_figures(pid)
        # Warm up: every client once, so that all worker threads exist.
        run_load(m, LOAD_CLIENTS, 8, lambda: None)
        for i in range(LOAD_CLIENTS):
            shutil.rmtree(J(m.mnt, 'c%02d' % i))
            shutil.rmtree(J(m.ref, 'c%02d' % i))
        warm = daemon_figures(pid)
        start = time.monotonic()
        results = run_load(m, LOAD_CLIENTS, LOAD_SECONDS, sample)
        elapsed = time.monotonic() - start
        errors = [r for r in results if 'error' in r]
        assert not errors, errors[:3]
        during = samples[len(samples) // 4:]
        loaded = daemon_figures(pid)
        # The tree goes: the kernel forgets its inodes and the daemon closes them.
        for i in range(LOAD_CLIENTS):
            shutil.rmtree(J(m.mnt, 'c%02d' % i))
        # A worker thread started since the warm-up holds two pipe ends.
        def fd_limit():
            return warm[0] + 4 + 2 * max(daemon_figures(pid)[2] - warm[2], 0)

        with contextlib.suppress(zctest.TimeLimitExceeded):
            zctest.wait_until(lambda: daemon_figures(pid)[0] <= fd_limit(), 10,
                              'descriptors back to the warm level')
        after = daemon_figures(pid)
        ops = sum(r['ops'] for r in results)
        written = sum(r['bytes'] for r in results)
        figures = {
            'clients': LOAD_CLIENTS, 'seconds': round(elapsed, 1), 'operations': ops,
            'ops_per_second': round(ops / elapsed), 'MiB_written_per_side': written // MiB,
            'fds': {'before': before[0], 'warm': warm[0], 'max_during': max(s[1] for s in samples),
                    'end_of_load': loaded[0], 'after': after[0]},
            'rss_kib': {'before': before[1], 'warm': warm[1],
                        'first_quarter_end': during[0][2] if during else None,
                        'max_during': max(s[2] for s in samples), 'end_of_load': loaded[1],
                        'after': after[1]},
            'threads': {'warm': warm[2], 'after': after[2]},
        }
        print('LOAD: ' + json.dumps(figures, sort_keys=True))
        assert daemon_alive(m)
        # Flat: no descriptor is left behind, and memory does not grow with the
        # work done once the threads exist (allowing allocator noise).
        assert after[0] <= fd_limit(), figures
        if sanitized(pid):
            # ASan holds freed memory in its quarantine (256 MiB): its RSS
            # grows by design. The plain build checks memory.
            return
        tolerance = max(16 * 1024, warm[1] // 4)
        assert after[1] <= warm[1] + tolerance, figures
        if during:
            assert max(s[2] for s in during) <= during[0][2] + tolerance, figures


_STAT_CLIENT = r'''
import os, sys
try:
    os.stat(sys.argv[1])
    print('ok')
except OSError as e:
    print(e.errno)
'''


@pytest.mark.timeout(150)
def test_request_timeout_releases_callers_of_a_stopped_daemon(monkeypatch):
    """A daemon that stops answering (SIGSTOP here; a deadlocked backend
    alike) with request_timeout=1: the kernel aborts the mount, the caller
    gets ECONNABORTED within the timeout and the kernel's 15 s checks
    (instead of waiting in D state for ever), and the mount is cleanly dead:
    every later call fails at once, the daemon exits when it runs again,
    and the mount point unmounts. By default (the ring where the kernel
    allows it) the timeout takes /dev/fuse, whose waiting requests the
    kernel ends when it aborts (so this is the /dev/fuse case too)."""
    monkeypatch.setenv('ZCFUSE_TRANSPORT', 'default')
    with zctest.Mount(opts=['request_timeout=1']) as m:
        write_file(J(m.mnt, 'f'), b'x')
        os.kill(m.proc.pid, signal.SIGSTOP)
        try:
            start = time.monotonic()
            client = subprocess.Popen([sys.executable, '-c', _STAT_CLIENT, J(m.mnt, 'new')],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
            try:
                out, _ = client.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                pytest.fail('the caller still waits 60 s after the daemon stopped')
            took = time.monotonic() - start
        finally:
            os.kill(m.proc.pid, signal.SIGCONT)
        print('request_timeout=1: the caller got %s after %.1f s' % (out.decode().strip(), took))
        assert int(out) in DEAD_CONNECTION, out
        assert attempt(os.stat, J(m.mnt, 'f')) in [Err(e) for e in DEAD_CONNECTION]
        assert 'since request_timeout is set' in m.stderr_text()
