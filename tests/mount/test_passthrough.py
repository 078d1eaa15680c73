"""Kernel passthrough (-o passthrough): the kernel serves open files' data.

With passthrough on, reads and writes of an open file go from the kernel to
the backing file and never reach the daemon: its counters show no READ or
WRITE requests while the metadata requests still arrive. Where passthrough
is refused (writeback caching, a daemon without CAP_SYS_ADMIN, a
setuid file) the data takes the splice path and the counters say why.
"""

import contextlib
import os
import random
import subprocess
import sys

import pytest

import zctest
from zctest import counter_delta as delta, counters, drop_caches, parse_counters

MIB = 1 << 20
TOTAL = 64 * MIB
UID = GID = 40123


def pattern(seed, size):
    return random.Random(seed).randbytes(size)


def write_and_read_back(m, data, fsync=False):
    """Write @data to f through the mount, then read it back through the
    mount and on SOURCE; the counters before and after."""
    before = counters(m.mnt)
    with open(os.path.join(m.mnt, 'f'), 'wb') as f:
        f.write(data)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    with open(os.path.join(m.src, 'f'), 'rb') as f:
        assert f.read() == data
    with open(os.path.join(m.mnt, 'f'), 'rb') as f:
        assert f.read() == data
    return before, counters(m.mnt)


def write_and_read_64m(mnt, src, settle=None):
    """Write 64 MiB in 1 MiB writes, fsync, drop the caches, read it back.

    settle: called between the two opens (to wait for the first one's
    RELEASE, which the kernel sends after close() returns)."""
    chunk = pattern(1, MIB)
    fd = os.open(os.path.join(mnt, 'big'), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for i in range(TOTAL // MIB):
            assert os.write(fd, chunk[i:] + chunk[:i]) == MIB
        os.fsync(fd)
    finally:
        os.close(fd)
    if settle:
        settle()
    drop_caches()
    fd = os.open(os.path.join(mnt, 'big'), os.O_RDONLY)
    try:
        for i in range(TOTAL // MIB):
            assert os.read(fd, MIB) == chunk[i:] + chunk[:i], 'MiB %d differs' % i
        assert os.read(fd, MIB) == b''
    finally:
        os.close(fd)
    assert os.path.getsize(os.path.join(src, 'big')) == TOTAL
    with open(os.path.join(src, 'big'), 'rb') as f:
        assert f.read(MIB) == chunk


@pytest.mark.timeout(300)
@pytest.mark.parametrize('passthrough,transport', [(True, 'dev'), (False, 'dev'), (True, 'uring')],
                         ids=['passthrough', 'splice', 'passthrough-io_uring'])
def test_data_bypasses_the_daemon(passthrough, transport):
    zctest.require_fuse()
    opts = ['cache=auto', 'attr_timeout=0', 'entry_timeout=0']
    opts.append('passthrough' if passthrough else 'nopassthrough')
    with contextlib.ExitStack() as stack:
        if transport == 'uring':
            param = stack.enter_context(zctest.UringParam())
            if param.skip_reason:
                pytest.skip(param.skip_reason)
            opts.append('io_uring=strict')
        m = stack.enter_context(zctest.Mount(opts=opts))
        before = counters(m.mnt)
        # Each open registers its own backing id once the one before it
        # was released; a late RELEASE would let the second share the first.
        write_and_read_64m(m.mnt, m.src, settle=m.settle_releases)
        st = os.stat(os.path.join(m.mnt, 'big'))
        assert st.st_size == TOTAL
        after = counters(m.mnt)
    if transport == 'uring':
        # The OPEN and CREATE replies that carried the backing ids went over the ring.
        assert delta(after, before, 'transport.uring.requests') > 0
    reads = delta(after, before, 'requests.READ')
    writes = delta(after, before, 'requests.WRITE')
    # Metadata still reaches the daemon either way.
    assert delta(after, before, 'requests.CREATE') == 1
    assert delta(after, before, 'requests.OPEN') >= 1
    assert delta(after, before, 'requests.GETATTR') + delta(after, before, 'requests.LOOKUP') > 0
    assert delta(after, before, 'requests.FSYNC') >= 1
    if passthrough:
        assert reads == 0 and writes == 0, (reads, writes)
        assert delta(after, before, 'data.read') == 0
        assert delta(after, before, 'data.written') == 0
        assert delta(after, before, 'passthrough.opens') == 2
        assert delta(after, before, 'passthrough.backing_ids') == 2
    else:
        assert reads > 0 and writes > 0, (reads, writes)
        assert delta(after, before, 'data.written') == TOTAL
        assert delta(after, before, 'data.read') >= TOTAL
        assert delta(after, before, 'passthrough.opens') == 0


def test_one_backing_id_for_concurrent_opens():
    zctest.require_fuse()
    with zctest.Mount(opts=['passthrough']) as m:
        path = os.path.join(m.mnt, 'f')
        with open(path, 'wb') as f:
            f.write(b'x' * 5000)
        before = counters(m.mnt)
        fds = [os.open(path, flags) for flags in (os.O_RDONLY, os.O_WRONLY, os.O_RDWR)]
        try:
            mid = counters(m.mnt)
            assert os.pwrite(fds[1], b'abc', 10) == 3
            assert os.pread(fds[0], 5, 9) == b'xabcx'
        finally:
            for fd in fds:
                os.close(fd)
        after = counters(m.mnt)
        assert delta(mid, before, 'passthrough.opens') == 3
        # The kernel wants one backing file per inode: the opens share it.
        assert delta(mid, before, 'passthrough.backing_ids') == 1
        assert delta(after, before, 'requests.READ') == 0
        assert delta(after, before, 'requests.WRITE') == 0
        with open(path, 'rb') as f:
            assert f.read(16) == b'xxxxxxxxxxabcxxx'


# Every cache mode, and the data options, beside passthrough: the kernel
# takes FOPEN_PASSTHROUGH only with DIRECT_IO, PARALLEL_DIRECT_WRITES and
# NOFLUSH (an open with FOPEN_KEEP_CACHE too fails with EIO).
CAT_OPTS = [
    ['cache=always'],
    ['cache=never', 'passthrough'],
    ['cache=auto', 'passthrough'],
    ['cache=always', 'passthrough'],
    ['cache=always', 'direct_io', 'passthrough'],
    ['direct_io', 'passthrough'],
    ['nosplice', 'passthrough'],
]


@pytest.mark.parametrize('opts', CAT_OPTS, ids=[','.join(o) for o in CAT_OPTS])
def test_cat_of_an_existing_file(opts):
    zctest.require_fuse()
    data = pattern(4, MIB + 123)
    with zctest.Mount(opts=opts) as m:
        with open(os.path.join(m.src, 'f'), 'wb') as f:
            f.write(data)
        before = counters(m.mnt)
        for _ in range(2):  # the second open meets the first one's cache
            r = subprocess.run(['cat', os.path.join(m.mnt, 'f')], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=30)
            assert r.returncode == 0, r.stderr.decode(errors='replace')
            assert r.stdout == data
        after = counters(m.mnt)
    if 'passthrough' in opts:
        assert delta(after, before, 'requests.READ') == 0
        assert delta(after, before, 'data.read') == 0
        assert delta(after, before, 'passthrough.opens') == 2
    else:
        assert delta(after, before, 'requests.READ') > 0
        assert delta(after, before, 'passthrough.opens') == 0


def test_setuid_file_falls_back_and_loses_its_bit():
    zctest.require_fuse()
    with zctest.Mount(opts=['passthrough', 'allow_other']) as m:
        src = os.path.join(m.src, 'suid')
        with open(src, 'wb') as f:
            f.write(b'#!/bin/sh\n')
        os.chown(src, UID, GID)
        os.chmod(src, 0o4755)
        before = counters(m.mnt)
        res = zctest.run_as(UID, GID, [m.mnt], [['write', 'suid', 'more']])
        assert res[m.mnt] == [['ok', 4]], res
        after = counters(m.mnt)
        assert delta(after, before, 'passthrough.fallback.setid') == 1
        assert delta(after, before, 'requests.WRITE') == 1
        assert os.stat(src).st_mode & 0o7777 == 0o755
        assert 'passthrough: setuid and setgid files are served by the daemon' \
            in m.stderr_text()


@pytest.mark.timeout(120)
def test_passthrough_wins_over_writeback():
    """The kernel takes the two only apart: passthrough serves the open
    files (their own page cache caches the writes) and the mount says once
    that writeback caching is off."""
    zctest.require_fuse()
    with zctest.Mount(opts=['cache=auto', 'writeback', 'passthrough']) as m:
        before, after = write_and_read_back(m, pattern(2, 4 * MIB), fsync=True)
        assert delta(after, before, 'passthrough.opens') == 2
        assert delta(after, before, 'passthrough.fallback.writeback') == 0
        assert delta(after, before, 'requests.WRITE') == 0
        assert delta(after, before, 'requests.READ') == 0
        log = m.stderr_text()
    assert 'writeback caching is off for this mount: kernel passthrough' in log, log
    assert 'passthrough is off' not in log, log


# Run as the unprivileged user: the mount belongs to it, so only it can look in.
USER_SCRIPT = r'''
import os, sys
mnt = sys.argv[1]
data = bytes(range(256)) * 4096
with open(os.path.join(mnt, 'f'), 'wb') as f:
    f.write(data)
    os.fsync(f.fileno())
with open(os.path.join(mnt, 'f'), 'rb') as f:
    assert f.read() == data
sys.stdout.write(os.getxattr(mnt, 'user.zcfuse.stats').decode())
'''


@pytest.mark.timeout(120)
def test_unprivileged_mount_falls_back():
    with zctest.UserMount(['passthrough']) as m:
        out = m.run([m.python, '-c', USER_SCRIPT, m.mnt])
        assert out.returncode == 0, out.stderr
        c = parse_counters(out.stdout)
        assert c['passthrough.opens'] == 0
        assert c['passthrough.fallback.not_permitted'] == 2
        assert c['data.written'] == 1 << 20
        with open(os.path.join(m.src, 'f'), 'rb') as f:
            assert f.read() == bytes(range(256)) * 4096
    assert 'passthrough is off for this mount: the daemon lacks CAP_SYS_ADMIN' in m.log(), \
        m.log()


def test_backend_without_backing_file_falls_back():
    """memfs keeps data in memory: it has no file to pass through."""
    zctest.require_fuse()
    memfs = zctest.backend_bin('memfs')
    with zctest.Mount(opts=['passthrough'], backend='memfs', binary=memfs) as m:
        before = counters(m.mnt)
        data = pattern(3, 3 * MIB)
        with open(os.path.join(m.mnt, 'f'), 'wb') as f:
            f.write(data)
        with open(os.path.join(m.mnt, 'f'), 'rb') as f:
            assert f.read() == data
        after = counters(m.mnt)
        assert delta(after, before, 'passthrough.opens') == 0
        assert delta(after, before, 'passthrough.fallback.no_backing') == 2
        assert delta(after, before, 'passthrough.fallback.mode_conflict') == 0
        assert delta(after, before, 'data.written') == 3 * MIB
        log = m.stderr_text()
    assert 'passthrough: the backend offers no backing file' in log, log


def test_no_backing_file_is_the_cause_while_the_file_is_open():
    """An open of an inode still open without passthrough falls back, since
    the kernel keeps one mode per inode; the kernel sends RELEASE after
    close() returns, so the daemon may count an open that is already closed.
    The cause counted is still the open's own: a file the backend offers no
    backing file for falls back for that reason, however many are open."""
    zctest.require_fuse()
    memfs = zctest.backend_bin('memfs')
    with zctest.Mount(opts=['passthrough'], backend='memfs', binary=memfs) as m:
        path = os.path.join(m.mnt, 'f')
        zctest.write_file(path, b'data')
        before = counters(m.mnt)
        fds = [os.open(path, os.O_RDONLY) for _ in range(3)]
        try:
            assert [os.pread(fd, 4, 0) for fd in fds] == [b'data'] * 3
        finally:
            for fd in fds:
                os.close(fd)
        after = counters(m.mnt)
        assert delta(after, before, 'passthrough.fallback.no_backing') == 3
        assert delta(after, before, 'passthrough.fallback.mode_conflict') == 0


def test_open_beside_an_open_without_passthrough_falls_back():
    """A setuid file is served by the daemon; an open made after the bit is
    gone, while the first is still open, must not be passed through (the
    kernel would refuse it with EIO) and counts mode_conflict. Once both are
    closed (and released), the next open is passed through."""
    zctest.require_fuse()
    with zctest.Mount(opts=['passthrough']) as m:
        path, src = os.path.join(m.mnt, 'f'), os.path.join(m.src, 'f')
        zctest.write_file(src, b'x' * 100)
        os.chmod(src, 0o4755)
        before = counters(m.mnt)
        fd1 = os.open(path, os.O_RDONLY)
        try:
            os.chmod(src, 0o755)
            fd2 = os.open(path, os.O_RDWR)
            try:
                assert os.pwrite(fd2, b'y', 0) == 1
                assert os.pread(fd1, 2, 0) == b'yx'
            finally:
                os.close(fd2)
        finally:
            os.close(fd1)
        mid = counters(m.mnt)
        assert delta(mid, before, 'passthrough.fallback.setid') == 1
        assert delta(mid, before, 'passthrough.fallback.mode_conflict') == 1
        assert delta(mid, before, 'passthrough.opens') == 0
        # The RELEASEs come after close() returned: wait until the daemon has
        # no open left, then the file goes through the kernel.
        def passed_through():
            with open(path, 'rb') as f:
                data = f.read()
            assert data == b'y' + b'x' * 99
            return delta(counters(m.mnt), before, 'passthrough.opens') > 0
        zctest.wait_until(passed_through, 10, 'a passthrough open after the releases')


# ------------------------------------------------ the daemon's default

@pytest.fixture
def daemon_defaults(monkeypatch):
    """Mounts keep zcfuse's own defaults (zctest.with_transport() adds nothing)."""
    monkeypatch.setenv('ZCFUSE_TRANSPORT', 'default')


AUTO_ON = 'passthrough: the kernel reads and writes open files straight from their backing files'


@pytest.fixture(params=['noio_uring', 'io_uring=strict'], ids=['dev-fuse', 'io_uring'])
def transport(request):
    """The mount's transport; the ring with the fuse module's enable_uring on."""
    if request.param == 'noio_uring':
        yield request.param
        return
    with zctest.UringParam(True) as p:
        if p.skip_reason:
            pytest.skip(p.skip_reason)
        yield request.param


@pytest.mark.parametrize('cache', ['cache=never', 'cache=always'])
def test_default_is_passthrough(daemon_defaults, transport, cache):
    """With cache=never or cache=always and no option naming the data path,
    every open is passed through, on both transports, and one line says so
    (cache=always would keep pages a write passed through made stale)."""
    with zctest.Mount(opts=[cache, transport]) as m:
        before, after = write_and_read_back(m, pattern(4, 3 * MIB + 123))
        assert delta(after, before, 'passthrough.opens') == 2
        assert delta(after, before, 'passthrough.cached_opens') == 0
        assert delta(after, before, 'requests.READ') == 0
        assert delta(after, before, 'requests.WRITE') == 0
        log = m.stderr_text()
    assert log.count(AUTO_ON) == 1, log
    assert 'read-only opens use the mount' not in log, log


def read_file_settled(m, name):
    """The file's data through the mount, once the open's RELEASE is in."""
    with open(os.path.join(m.mnt, name), 'rb') as f:
        data = f.read()
    m.settle_releases()
    return data


def test_default_reads_from_the_page_cache(daemon_defaults, transport):
    """With cache=auto, opens for writing are passed through, and
    read-only opens use the mount's page cache: the first read reaches the
    daemon, a reopen of the unchanged file does not, and a change, through
    the mount or on SOURCE, is seen at the next open."""
    with zctest.Mount(opts=['cache=auto', transport]) as m:
        path = os.path.join(m.mnt, 'f')
        one, two, three = pattern(7, 2 * MIB), pattern(8, 2 * MIB), pattern(9, MIB + 5)
        before = counters(m.mnt)
        with open(path, 'wb') as f:
            f.write(one)
        m.settle_releases()
        mid = counters(m.mnt)
        assert delta(mid, before, 'passthrough.opens') == 1
        assert delta(mid, before, 'requests.WRITE') == 0

        assert read_file_settled(m, 'f') == one
        first = counters(m.mnt)
        assert delta(first, mid, 'passthrough.cached_opens') == 1
        assert delta(first, mid, 'passthrough.opens') == 0
        assert delta(first, mid, 'requests.READ') > 0

        assert read_file_settled(m, 'f') == one
        again = counters(m.mnt)
        assert delta(again, first, 'passthrough.cached_opens') == 1
        assert delta(again, first, 'requests.READ') == 0

        # Rewritten through the mount: passed through (the reader's RELEASE
        # is in), and the next read-only open drops the stale pages.
        with open(path, 'r+b') as f:
            f.write(two)
        m.settle_releases()
        written = counters(m.mnt)
        assert delta(written, again, 'passthrough.opens') == 1
        assert delta(written, again, 'requests.WRITE') == 0
        assert read_file_settled(m, 'f') == two

        # Changed on SOURCE behind the mount's back: seen at the next open
        # once the attributes the kernel holds have expired.
        with open(os.path.join(m.src, 'f'), 'wb') as f:
            f.write(three)
        zctest.wait_until(lambda: read_file_settled(m, 'f') == three, 5,
                          'the change on SOURCE seen through the mount')
        log = m.stderr_text()
    assert log.count(AUTO_ON) == 1, log
    assert 'read-only opens use the mount' in log, log


def test_default_wins_over_writeback(daemon_defaults, transport):
    """Writeback caching asks for fast buffered writes: passthrough's files
    have them from their own page cache, and the kernel takes the two only
    apart. Passthrough serves the files; one line says writeback is off."""
    with zctest.Mount(opts=['cache=auto', 'writeback', transport]) as m:
        data = pattern(6, 5 * MIB)
        before = counters(m.mnt)
        with open(os.path.join(m.mnt, 'f'), 'wb') as f:
            f.write(data)
        with open(os.path.join(m.src, 'f'), 'rb') as f:
            assert f.read() == data
        after = counters(m.mnt)
        assert delta(after, before, 'passthrough.opens') == 1
        assert delta(after, before, 'requests.WRITE') == 0
        log = m.stderr_text()
    assert 'writeback caching is off for this mount: kernel passthrough' in log, log
    assert log.count(AUTO_ON) == 1, log


def test_default_yields_to_direct_io(daemon_defaults):
    """direct_io asks for every read and write to reach the daemon: they do,
    and one line says why passthrough is off."""
    why = 'passthrough: off, since direct_io was asked for'
    with zctest.Mount(opts=['cache=auto', 'direct_io', 'noio_uring']) as m:
        data = pattern(5, 2 * MIB)
        before = counters(m.mnt)
        with open(os.path.join(m.mnt, 'f'), 'wb') as f:
            f.write(data)
            os.fsync(f.fileno())
        with open(os.path.join(m.src, 'f'), 'rb') as f:
            assert f.read() == data
        after = counters(m.mnt)
        assert delta(after, before, 'passthrough.opens') == 0
        assert delta(after, before, 'requests.WRITE') > 0
        assert not any(k.startswith('passthrough.fallback.') and delta(after, before, k)
                       for k in after), after
        log = m.stderr_text()
    assert why in log, log
    assert AUTO_ON not in log, log


def test_nopassthrough_is_silent(daemon_defaults):
    with zctest.Mount(opts=['cache=auto', 'noio_uring', 'nopassthrough']) as m:
        before = counters(m.mnt)
        with open(os.path.join(m.mnt, 'f'), 'wb') as f:
            f.write(b'daemon')
        after = counters(m.mnt)
        assert delta(after, before, 'requests.WRITE') == 1
        log = m.stderr_text()
    assert 'passthrough' not in log, log


@pytest.mark.timeout(120)
def test_default_for_a_user_daemon_is_the_daemon_path(daemon_defaults):
    """A user's daemon may not register backing files: passthrough is off
    from the start (no per-open fallbacks), and one line says why."""
    with zctest.UserMount(['noio_uring']) as m:
        out = m.run([m.python, '-c', USER_SCRIPT, m.mnt])
        assert out.returncode == 0, out.stderr
        c = parse_counters(out.stdout)
        assert c['passthrough.opens'] == 0
        assert c['passthrough.fallback.not_permitted'] == 0
        assert c['data.written'] == 1 << 20
    assert 'passthrough: off, since the daemon lacks CAP_SYS_ADMIN' in m.log(), m.log()
