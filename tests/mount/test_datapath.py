"""The data path: splice really moves the data, and every path keeps it intact.

The counters come from the daemon (user.zcfuse.stats on the mount root); the
independent measure is the daemon's /proc/PID/io, where read() and write()
bytes count as rchar/wchar and splice() bytes do not.
"""

import errno
import mmap
import os
import random
import threading

import pytest

import zctest
from zctest import counter_delta as delta, counters

MIB = 1 << 20
TOTAL = 64 * MIB

# Every data path: splice (default threshold), copy mode, splice for every
# size, and the page cache with and without writeback.
DATA_MODES = [
    ['cache=never'],
    ['cache=never', 'nosplice'],
    ['cache=never', 'splice_threshold=0'],
    ['cache=auto'],
    ['cache=auto', 'writeback'],
    # FUSE over io_uring: memory iterators over the ring's payload buffers.
    ['cache=never', 'io_uring=strict'],
    ['cache=auto', 'writeback', 'io_uring=strict'],
]


@pytest.fixture(scope='module')
def uring_param():
    """enable_uring = Y for the io_uring modes of this module, restored after."""
    with zctest.UringParam(True) as p:
        yield p


def skip_without_uring(opts, param):
    if zctest.wants_uring(opts) and param.skip_reason:
        pytest.skip(param.skip_reason)


def mode_id(opts):
    return ','.join(opts)


def proc_io(pid):
    out = {}
    with open('/proc/%d/io' % pid) as f:
        for line in f:
            name, value = line.split(':')
            out[name] = int(value)
    return out


@pytest.mark.timeout(300)
@pytest.mark.parametrize('splice', [True, False], ids=['splice', 'copy'])
def test_splice_moves_the_data(splice):
    """64 MiB written and read through a cache=never mount: with splice on,
    at least 99 % of the file data goes through pipes and the daemon's
    read()/write() byte counts stay far below the data; in copy mode every
    byte goes through memory, twice each way."""
    opts = ['cache=never'] + ([] if splice else ['nosplice'])
    chunk = bytes(random.Random(64).getrandbits(8) for _ in range(4096)) * 256
    with zctest.Mount(opts=opts) as m:
        path = os.path.join(m.mnt, 'big')
        pid = m.proc.pid
        before, io_before = counters(m.mnt), proc_io(pid)
        with open(path, 'wb', buffering=0) as f:
            for _ in range(TOTAL // MIB):
                assert f.write(chunk) == MIB
        with open(path, 'rb', buffering=0) as f:
            for i in range(TOTAL // MIB):
                assert f.read(MIB) == chunk, 'block %d differs' % i
            assert f.read(MIB) == b''
        after, io_after = counters(m.mnt), proc_io(pid)

        with open(os.path.join(m.src, 'big'), 'rb') as f:
            for i in range(TOTAL // MIB):
                assert f.read(MIB) == chunk, 'SOURCE block %d differs' % i

    data = delta(after, before, 'data.read') + delta(after, before, 'data.written')
    assert data == 2 * TOTAL
    via_pipe = delta(after, before, 'data.read.pipe') + delta(after, before, 'data.written.pipe')
    spliced = delta(after, before, 'bytes.splice')
    copied = delta(after, before, 'bytes.copy')
    chars = delta(io_after, io_before, 'rchar') + delta(io_after, io_before, 'wchar')
    detail = ('pipe %d of %d data bytes; bytes.splice %d, bytes.copy %d; rchar+wchar %d'
              % (via_pipe, data, spliced, copied, chars))
    if splice:
        assert via_pipe >= 0.99 * data, detail
        # Each byte is spliced twice: into a pipe and out of it.
        assert spliced >= 1.95 * data, detail
        assert copied <= 0.02 * data, detail
        assert chars <= 0.02 * data, detail
        assert delta(after, before, 'fallback.splice_refused') == 0, detail
    else:
        assert via_pipe == 0, detail
        assert spliced == 0, detail
        assert copied >= 2 * data, detail
        assert chars >= 2 * data, detail


def pattern(seed, size):
    rnd = random.Random(seed)
    return rnd.getrandbits(8 * size).to_bytes(size, 'little') if size else b''


def compare_files(a, b):
    da, db = zctest.read_file(a), zctest.read_file(b)
    assert len(da) == len(db), '%s: %d bytes, %s: %d bytes' % (a, len(da), b, len(db))
    off = zctest.first_difference(da, db)
    assert off is None, '%s and %s differ first at offset %s' % (a, b, off)


@pytest.mark.timeout(240)
@pytest.mark.parametrize('opts', DATA_MODES, ids=mode_id)
def test_misaligned_sparse_and_eof(opts, uring_param):
    skip_without_uring(opts, uring_param)
    """Writes at odd offsets and sizes, far beyond the end (holes), reads
    past the end: the mount, SOURCE and a plain file agree byte for byte."""
    rnd = random.Random(7)
    with zctest.Mount(opts=opts) as m:
        targets = [os.path.join(m.mnt, 'f'), os.path.join(m.ref, 'f')]
        fds = [os.open(t, os.O_RDWR | os.O_CREAT, 0o644) for t in targets]
        try:
            for i in range(300):
                off = rnd.choice([0, 1, 4095, 4097, 65535, 3 * MIB + 5, 9 * MIB - 3,
                                  rnd.randrange(12 * MIB)])
                size = rnd.choice([1, 3, 511, 4095, 4097, 40000, 131071, MIB + 17,
                                   rnd.randrange(1, 2 * MIB)])
                data = pattern(i, size)
                for fd in fds:
                    assert os.pwrite(fd, data, off) == size
                if i % 10 == 0:
                    # Read across the end and past it.
                    end = os.fstat(fds[1]).st_size
                    for where in (end - 100, end, end + 4096, rnd.randrange(end + 1)):
                        where = max(where, 0)
                        got = [os.pread(fd, 300000, where) for fd in fds]
                        assert got[0] == got[1], 'read of 300000 at %d differs' % where
                if i % 50 == 0:
                    newsize = rnd.randrange(10 * MIB)
                    for fd in fds:
                        os.ftruncate(fd, newsize)
            for fd in fds:
                os.fsync(fd)
        finally:
            for fd in fds:
                os.close(fd)
        compare_files(targets[0], targets[1])
        compare_files(os.path.join(m.src, 'f'), targets[1])
        # A file whose size is not a multiple of the page size, read whole.
        for d in (m.mnt, m.ref):
            zctest.write_file(os.path.join(d, 'odd'), pattern(99, 3 * 4096 + 123))
        compare_files(os.path.join(m.mnt, 'odd'), os.path.join(m.ref, 'odd'))
        compare_files(os.path.join(m.src, 'odd'), os.path.join(m.ref, 'odd'))


@pytest.mark.timeout(240)
@pytest.mark.parametrize('opts', DATA_MODES, ids=mode_id)
def test_o_direct_open(opts, uring_param):
    skip_without_uring(opts, uring_param)
    """An application's O_DIRECT open works through the mount with aligned
    buffers, and what it wrote is what SOURCE holds."""
    with zctest.Mount(opts=opts) as m:
        path = os.path.join(m.mnt, 'direct')
        buf = mmap.mmap(-1, 2 * MIB)
        want = pattern(5, 2 * MIB)
        buf[:] = want
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
        except OSError as e:
            pytest.fail('O_DIRECT open through the mount failed: %s' % os.strerror(e.errno))
        try:
            assert os.pwritev(fd, [buf], 4096) == 2 * MIB
            back = mmap.mmap(-1, 2 * MIB)
            assert os.preadv(fd, [back], 4096) == 2 * MIB
            assert back[:] == want
            # Past the end: nothing.
            assert os.preadv(fd, [back], 4096 + 2 * MIB) == 0
        finally:
            os.close(fd)
        with open(os.path.join(m.src, 'direct'), 'rb') as f:
            assert f.read(4096) == bytes(4096)
            assert f.read() == want


@pytest.mark.timeout(240)
@pytest.mark.parametrize('opts', DATA_MODES, ids=mode_id)
def test_concurrent_readers_and_writers(opts, uring_param):
    skip_without_uring(opts, uring_param)
    """Four writers own interleaved blocks of one file and rewrite them while
    four readers read it; afterwards every block holds its last version."""
    block = 256 * 1024 + 512  # not a multiple of the page size
    blocks = 32
    rounds = 6
    with zctest.Mount(opts=opts) as m:
        path = os.path.join(m.mnt, 'shared')
        with open(path, 'wb') as f:
            f.truncate(block * blocks)
        errors = []
        stop = threading.Event()

        def writer(w):
            try:
                fd = os.open(path, os.O_WRONLY)
                try:
                    for r in range(rounds):
                        for b in range(w, blocks, 4):
                            data = pattern(b * 100 + r, block)
                            assert os.pwrite(fd, data, b * block) == block
                finally:
                    os.close(fd)
            except Exception as e:  # reported below
                errors.append('writer %d: %r' % (w, e))

        def reader(rd):
            rnd = random.Random(rd)
            try:
                fd = os.open(path, os.O_RDONLY)
                try:
                    while not stop.is_set():
                        b = rnd.randrange(blocks)
                        got = os.pread(fd, block, b * block)
                        assert len(got) == block, 'short read of block %d' % b
                finally:
                    os.close(fd)
            except Exception as e:
                errors.append('reader %d: %r' % (rd, e))

        writers = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        readers = [threading.Thread(target=reader, args=(r,)) for r in range(4)]
        for t in readers + writers:
            t.start()
        for t in writers:
            t.join(180)
        stop.set()
        for t in readers:
            t.join(60)
        assert not errors, errors
        expect = b''.join(pattern(b * 100 + rounds - 1, block) for b in range(blocks))
        for where in (path, os.path.join(m.src, 'shared')):
            got = zctest.read_file(where)
            assert len(got) == len(expect)
            off = zctest.first_difference(got, expect)
            assert off is None, '%s differs first at %d' % (where, off)


@pytest.mark.timeout(120)
def test_write_error_reaches_the_caller():
    """A write the backing file system refuses (EFBIG past the file size
    limit of the backing store) returns that errno, and the daemon lives on."""
    with zctest.Mount(opts=['cache=never']) as m:
        path = os.path.join(m.mnt, 'huge')
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            with pytest.raises(OSError) as e:
                os.pwrite(fd, b'x' * 8192, (1 << 63) - 4096)
            assert e.value.errno in (errno.EFBIG, errno.EINVAL)
            assert os.pwrite(fd, b'still fine', 0) == 10
        finally:
            os.close(fd)
        assert zctest.read_file(os.path.join(m.src, 'huge')) == b'still fine'


def read_through(path):
    with open(path, 'rb') as f:
        return f.read()


# The page cache across opens: the default cache mode, with writeback, and
# over the ring. (cache=always keeps pages whatever changes; cache=never has
# none.)
CACHE_MODES = [
    ['cache=auto'],
    # Attributes trusted for a minute: the open that finds a change drops them.
    ['cache=auto', 'attr_timeout=60'],
    ['cache=auto', 'writeback'],
    ['cache=auto', 'io_uring=strict'],
]


@pytest.mark.parametrize('opts', CACHE_MODES, ids=mode_id)
def test_unchanged_file_keeps_its_pages(opts, uring_param):
    """A file read through the mount and opened again unchanged is read from
    the kernel's page cache (no READ reaches the daemon); once SOURCE changes
    it (same size, then longer, then shorter), the next open shows the new
    data at once, and its size."""
    skip_without_uring(opts, uring_param)
    rng = random.Random(5)
    first = bytes(rng.getrandbits(8) for _ in range(256 * 1024))
    with zctest.Mount(opts=opts) as m:
        src, mnt = os.path.join(m.src, 'f'), os.path.join(m.mnt, 'f')
        zctest.write_file(src, first)
        assert read_through(mnt) == first
        before = counters(m.mnt)
        for _ in range(3):
            assert read_through(mnt) == first
        after = counters(m.mnt)
        assert delta(after, before, 'requests.READ') == 0, 'unchanged file read again'

        # Same size, other bytes, written on SOURCE behind the mount's back.
        second = bytes(b ^ 0x5a for b in first)
        with open(src, 'r+b') as f:
            f.write(second)
        assert read_through(mnt) == second
        expect = second
        if 'writeback' not in opts:
            # Longer, then shorter: the size is the new one at the next
            # open. (With writeback caching the kernel keeps its own size
            # of a file it caches, whatever the daemon says.)
            third = second + b'tail' * 1000
            with open(src, 'ab') as f:
                f.write(b'tail' * 1000)
            assert read_through(mnt) == third
            assert os.stat(mnt).st_size == len(third)
            os.truncate(src, 1000)
            expect = third[:1000]
            assert read_through(mnt) == expect

        # A change through the mount is seen too, and the next open of the
        # unchanged file is served from the cache again.
        with open(mnt, 'r+b') as f:
            f.write(b'X' * 10)
        expect = b'X' * 10 + expect[10:]
        assert read_through(mnt) == expect
        before = counters(m.mnt)
        assert read_through(mnt) == expect
        assert delta(counters(m.mnt), before, 'requests.READ') == 0


PIPE_MAX = '/proc/sys/fs/pipe-max-size'


@pytest.fixture
def pipe_max_2mib():
    """fs.pipe-max-size at 2 MiB for one test, and put back after."""
    try:
        with open(PIPE_MAX) as f:
            old = f.read().strip()
        with open(PIPE_MAX, 'w') as f:
            f.write(str(2 * MIB))
    except OSError as e:
        pytest.skip('cannot raise %s: %s' % (PIPE_MAX, e.strerror))
    try:
        yield
    finally:
        with open(PIPE_MAX, 'w') as f:
            f.write(old)


@pytest.mark.parametrize('opts', [['cache=never'], ['cache=never', 'nosplice']],
                         ids=mode_id)
def test_whole_mib_requests_with_larger_pipes(opts, pipe_max_2mib):
    """Where fs.pipe-max-size allows 2 MiB pipes, max_write is the kernel's
    256 pages: a 1 MiB direct write or read is one request, not 1020 KiB +
    4 KiB, and every byte of it goes through the pipes (or memory, in copy
    mode) intact."""
    n = 8
    chunk = bytes(random.Random(9).getrandbits(8) for _ in range(4096)) * 256
    # Page-aligned buffers: an unaligned one spans 257 pages, which the
    # kernel splits however large max_write is.
    buf = mmap.mmap(-1, MIB)
    with zctest.Mount(opts=opts) as m:
        path = os.path.join(m.mnt, 'f')
        before = counters(m.mnt)
        buf[:] = chunk
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            for _ in range(n):
                assert os.write(fd, buf) == MIB
        finally:
            os.close(fd)
        mid = counters(m.mnt)
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            for i in range(n):
                buf[:] = bytes(MIB)
                assert os.readv(fd, [buf]) == MIB
                assert buf[:] == chunk, 'block %d differs' % i
        finally:
            os.close(fd)
        after = counters(m.mnt)
    buf.close()
    assert delta(mid, before, 'requests.WRITE') == n
    # The last read may ask once more past the end.
    assert n <= delta(after, mid, 'requests.READ') <= n + 1
    moved = delta(after, before, 'data.read') + delta(after, before, 'data.written')
    assert moved == 2 * n * MIB
    via_pipe = delta(after, before, 'data.read.pipe') + delta(after, before, 'data.written.pipe')
    assert via_pipe == (0 if 'nosplice' in opts else moved)
