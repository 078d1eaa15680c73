"""zcfuse-stat: a mount's counters as a table, and as rates per interval.

The table must list every counter the mount shows, with values read at
that moment. The rates must account for the I/O done while they ran: N MiB
written or read through the mount add up, over the rows, to N MiB (within
a factor of two) in the read or write column and in the column of the
mechanism that moved them, and no row shows more in one interval. Bad
input gets one line and a non-zero status.
"""

import os
import queue
import signal
import subprocess
import threading
import time

import pytest

import zctest

MIB = 1 << 20
# A row's rates are its counters' growth over the time between two readings,
# which is INTERVAL give or take the scheduler's delays (the readings keep
# to a fixed clock, so a late one makes the next interval shorter): summed
# over rows, rate * INTERVAL gives the amount moved within a factor well
# below 2 even on a loaded machine.
INTERVAL = 1.0
FACTOR = 2.0
TOTAL_MIB = 48


def stat_bin():
    return os.environ.get('ZCFUSE_STAT_BIN') or os.path.join(
        os.path.dirname(zctest.zcfuse_bin()), 'zcfuse-stat')


@pytest.fixture(autouse=True)
def _fuse_needed():
    zctest.require_fuse()


def run_stat(args, timeout=20):
    r = subprocess.run([stat_bin()] + args, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout)
    return r.returncode, r.stdout.decode(errors='replace'), r.stderr.decode(errors='replace')


def parse_table(text):
    lines = text.splitlines()
    assert lines[0].split() == ['counter', 'value'], lines[0]
    table = {}
    for line in lines[1:]:
        name, value = line.split()
        assert name not in table, 'counter %s listed twice' % name
        table[name] = int(value)
    return table


class Watch:
    """zcfuse-stat MNT INTERVAL running, its rows read as they come."""

    def __init__(self, mnt, interval=INTERVAL):
        self.interval = interval
        self.proc = subprocess.Popen([stat_bin(), mnt, str(interval)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.header = self.next_line().split()
        assert self.header[0] == 'req/s' and self.header[-1] == 'fallbacks', self.header

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.decode())
        self.lines.put(None)

    def next_line(self, timeout=10):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail('zcfuse-stat printed nothing for %d s' % timeout)
        if line is None:
            pytest.fail('zcfuse-stat ended: status %s, stderr %r'
                        % (self.proc.wait(), self.proc.stderr.read().decode()))
        return line

    def next_row(self):
        """The next row: numeric columns as floats, 'fallbacks' as a dict cause -> count."""
        fields = self.next_line().split()
        n = len(self.header) - 1
        assert len(fields) >= len(self.header), fields
        row = dict(zip(self.header[:n], (float(f) for f in fields[:n])))
        causes = fields[n:]
        row['fallbacks'] = {} if causes == ['-'] else \
            {c.rsplit(':', 1)[0]: int(c.rsplit(':', 1)[1]) for c in causes}
        return row

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


def watch_io(mnt, do_io, quiet_rows=2):
    """Rows of zcfuse-stat from before do_io() until quiet_rows quiet rows after it."""
    w = Watch(mnt)
    try:
        do_io()
        # Rows printed while do_io() ran cover it; once it returned, wait
        # for quiet rows (the kernel sends RELEASE after close() returns).
        # zcfuse-stat's own reads are two GETXATTRs a row.
        rows = [w.next_row() for _ in range(w.lines.qsize())]
        quiet = 0
        deadline = time.monotonic() + 30
        while quiet < quiet_rows:
            if time.monotonic() > deadline:
                pytest.fail('no quiet rows within 30 s of the I/O: %r' % rows[-5:])
            rows.append(w.next_row())
            quiet = quiet + 1 if rows[-1]['req/s'] * w.interval <= 6 else 0
        return w.interval, rows
    finally:
        w.stop()


def write_mib(path, mib):
    chunk = bytes(range(256)) * (MIB // 256)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for _ in range(mib):
            assert os.write(fd, chunk) == MIB
        os.fsync(fd)
    finally:
        os.close(fd)


def read_all(path):
    n = 0
    with open(path, 'rb', buffering=0) as f:
        while True:
            b = f.read(MIB)
            if not b:
                return n
            n += len(b)


def total_mib(rows, interval, column):
    """MiB a MiB/s column adds up to over the rows."""
    return sum(r[column] for r in rows) * interval


def check_amount(rows, interval, column, mib, low=1 / FACTOR, high=FACTOR):
    got = total_mib(rows, interval, column)
    assert low * mib <= got <= high * mib, \
        '%s adds up to %.1f MiB over %d rows; %d MiB moved' % (column, got, len(rows), mib)
    # No single interval can show more than all of it.
    peak = max(r[column] for r in rows) * interval
    assert peak <= high * mib, '%s shows %.1f MiB in one interval of %d MiB' % (column, peak, mib)


def test_table_lists_every_counter():
    with zctest.Mount(opts=['cache=never']) as m:
        zctest.write_file(os.path.join(m.mnt, 'f'), b'x' * 100000)
        before = zctest.counters(m.mnt)
        status, out, err = run_stat([m.mnt])
        after = zctest.counters(m.mnt)
        backend = zctest.backend_counters(m.mnt)
    assert status == 0 and err == '', (status, err)
    table = parse_table(out)
    for name in after:
        # Some (latency buckets, requests per opcode) show once non-zero.
        assert name in table or name not in before, 'counter %s missing from the table' % name
        assert before.get(name, 0) <= table.get(name, 0) <= after[name], \
            (name, before.get(name), table.get(name), after[name])
    for name in backend:
        assert 'backend.' + name in table, 'backend counter %s missing' % name
    unknown = set(table) - set(after) - {'backend.' + n for n in backend}
    assert not unknown, 'counters the mount does not have: %s' % sorted(unknown)
    assert table['requests.WRITE'] >= 1 and table['data.written'] == 100000


@pytest.mark.timeout(120)
@pytest.mark.parametrize('opts,mechanism', [
    (['cache=never'], 'spliced'),
    (['cache=never', 'nosplice'], 'copied'),
], ids=['splice', 'nosplice'])
def test_rates_add_up_to_the_io(opts, mechanism):
    with zctest.Mount(opts=opts) as m:
        path = os.path.join(m.mnt, 'big')
        interval, rows = watch_io(m.mnt, lambda: write_mib(path, TOTAL_MIB))
        check_amount(rows, interval, 'wr_MiB/s', TOTAL_MIB)
        check_amount(rows, interval, mechanism, TOTAL_MIB)
        assert total_mib(rows, interval, 'rd_MiB/s') == 0
        # 1 MiB writes: at least one WRITE request per MiB, at most eight.
        writes = sum(r['WRITE'] for r in rows) * interval
        assert TOTAL_MIB / FACTOR <= writes <= TOTAL_MIB * 8 * FACTOR, writes
        assert sum(r['OPEN'] for r in rows) * interval >= 0.5

        interval, rows = watch_io(m.mnt, lambda: read_all(path))
        check_amount(rows, interval, 'rd_MiB/s', TOTAL_MIB)
        check_amount(rows, interval, mechanism, TOTAL_MIB)
        assert total_mib(rows, interval, 'wr_MiB/s') == 0
        assert sum(r['READ'] for r in rows) * interval >= TOTAL_MIB / FACTOR


@pytest.mark.timeout(120)
def test_fallbacks_named_as_they_happen():
    """The fallbacks column names each cause with its count in the interval."""
    def small_reads():
        # READs below splice_threshold take the copy path ...
        fd = os.open(big, os.O_RDONLY)
        try:
            for i in range(10):
                assert len(os.pread(fd, 4096, i * 8192)) == 4096
        finally:
            os.close(fd)
        # ... and a READ past the end of a file comes up short in the pipe.
        assert read_all(small) == 1000

    with zctest.Mount(opts=['cache=never']) as m:
        big = os.path.join(m.mnt, 'big')
        small = os.path.join(m.mnt, 'small')
        zctest.write_file(big, b'x' * (1 << 20))
        zctest.write_file(small, b'y' * 1000)
        before = zctest.counters(m.mnt)
        interval, rows = watch_io(m.mnt, small_reads)
        after = zctest.counters(m.mnt)
    seen = {}
    for r in rows:
        for cause, n in r['fallbacks'].items():
            seen[cause] = seen.get(cause, 0) + n
    assert seen.get('below_threshold', 0) >= 10, rows
    assert seen.get('short_read', 0) >= 1, rows
    expected = {}
    for name in after:
        for prefix, short in (('fallback.', ''), ('passthrough.fallback.', 'pt.')):
            if name.startswith(prefix) and zctest.counter_delta(after, before, name):
                expected[short + name[len(prefix):]] = zctest.counter_delta(after, before, name)
    assert seen == expected
    assert all(not r['fallbacks'] for r in rows if r['req/s'] == 0)


@pytest.mark.timeout(120)
def test_other_backend_and_passthrough_causes():
    """memfs has no counters of its own and no file to pass through: the
    table has no backend lines, and the rows name the cause after 'pt.'."""
    memfs = os.environ.get('ZCFUSE_MEMFS_BIN') or zctest.BACKEND_BINS['memfs']
    with zctest.Mount(opts=['passthrough'], backend='memfs', binary=memfs,
                      allowed_stderr=[r'passthrough: the backend offers no backing file']) as m:
        path = os.path.join(m.mnt, 'f')
        zctest.write_file(path, b'data')
        status, out, err = run_stat([m.mnt])
        assert status == 0 and err == '', (status, err)
        table = parse_table(out)
        assert not [n for n in table if n.startswith('backend.')], sorted(table)
        assert table['passthrough.fallback.no_backing'] >= 1

        def opens():
            for _ in range(5):
                with open(path, 'rb') as f:
                    assert f.read() == b'data'

        before = zctest.counters(m.mnt)
        interval, rows = watch_io(m.mnt, opens)
        after = zctest.counters(m.mnt)
    seen = sum(r['fallbacks'].get('pt.no_backing', 0) for r in rows)
    assert seen == zctest.counter_delta(after, before, 'passthrough.fallback.no_backing') == 5
    assert sum(r['pt_opens'] for r in rows) == 0


@pytest.mark.timeout(120)
def test_passthrough_opens():
    with zctest.Mount(opts=['cache=auto', 'passthrough']) as m:
        path = os.path.join(m.mnt, 'f')
        zctest.write_file(path, b'z' * 4096)

        def opens():
            for _ in range(20):
                with open(path, 'rb') as f:
                    f.read()

        interval, rows = watch_io(m.mnt, opens)
    got = sum(r['pt_opens'] for r in rows) * interval
    assert 20 / FACTOR <= got <= 20 * FACTOR, rows


@pytest.mark.timeout(120)
def test_ring_bytes():
    with zctest.UringParam(True) as p:
        if p.skip_reason:
            pytest.skip(p.skip_reason)
        with zctest.Mount(opts=['cache=never', 'io_uring=strict']) as m:
            path = os.path.join(m.mnt, 'big')
            interval, rows = watch_io(m.mnt, lambda: write_mib(path, TOTAL_MIB))
    # The ring carries the data and each request's header and arguments.
    check_amount(rows, interval, 'ring', TOTAL_MIB)
    check_amount(rows, interval, 'wr_MiB/s', TOTAL_MIB)
    assert total_mib(rows, interval, 'spliced') == 0


def test_unmounted_while_watching():
    with zctest.Mount() as m:
        w = Watch(m.mnt, interval=0.2)
        try:
            w.next_row()
            ok, msg = zctest.fusermount_unmount(m.mnt)
            assert ok, msg
            status = w.proc.wait(timeout=10)
            err = w.proc.stderr.read().decode()
        finally:
            w.stop()
    assert status == 1, status
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith('zcfuse-stat: ') and m.mnt in lines[0], err
    assert 'no longer' in lines[0], err


def bad_input_cases():
    return [
        # name, args (from mnt, a plain directory, a subdirectory), status, words
        ('no-arguments', lambda mnt, plain, sub: [], 2, ['missing', 'MOUNTPOINT']),
        ('too-many', lambda mnt, plain, sub: [mnt, '1', '2', '3'], 2, ['too many']),
        ('unknown-option', lambda mnt, plain, sub: ['--frob', mnt], 2, ['--frob']),
        ('missing-path', lambda mnt, plain, sub: [plain + '/nope'], 1, ['nope', 'No such']),
        ('plain-directory', lambda mnt, plain, sub: [plain], 1, ['not a zcfuse mount']),
        ('a-file', lambda mnt, plain, sub: [sub + '/file'], 1, ['not a directory']),
        ('subdirectory', lambda mnt, plain, sub: [sub], 1, ['not the root of a zcfuse mount']),
        ('interval-word', lambda mnt, plain, sub: [mnt, 'soon'], 2, ['interval', 'soon']),
        ('interval-zero', lambda mnt, plain, sub: [mnt, '0'], 2, ['interval', "'0'"]),
        ('interval-negative', lambda mnt, plain, sub: [mnt, '-1'], 2, ['interval', "'-1'"]),
        ('interval-nan', lambda mnt, plain, sub: [mnt, 'nan'], 2, ['interval', 'nan']),
        ('interval-inf', lambda mnt, plain, sub: [mnt, 'inf'], 2, ['interval', 'inf']),
        ('interval-empty', lambda mnt, plain, sub: [mnt, ''], 2, ['interval']),
        ('interval-unit', lambda mnt, plain, sub: [mnt, '1s'], 2, ['interval', '1s']),
        ('count-zero', lambda mnt, plain, sub: [mnt, '1', '0'], 2, ['count', "'0'"]),
        ('count-word', lambda mnt, plain, sub: [mnt, '1', 'many'], 2, ['count', 'many']),
        ('count-fraction', lambda mnt, plain, sub: [mnt, '1', '1.5'], 2, ['count', '1.5']),
        ('count-negative', lambda mnt, plain, sub: [mnt, '1', '-2'], 2, ['count', '-2']),
        ('control-byte', lambda mnt, plain, sub: [plain + '/a\nb'], 1, ['a\\x0ab']),
    ]


@pytest.fixture(scope='module')
def bad_input_mount():
    zctest.require_fuse()
    with zctest.Mount() as m:
        os.mkdir(os.path.join(m.mnt, 'sub'))
        zctest.write_file(os.path.join(m.mnt, 'sub', 'file'), b'x')
        yield m


@pytest.mark.parametrize('name,args,status,words', bad_input_cases(),
                         ids=[c[0] for c in bad_input_cases()])
def test_bad_input(bad_input_mount, name, args, status, words):
    m = bad_input_mount
    argv = args(m.mnt, m.ref, os.path.join(m.mnt, 'sub'))
    got, out, err = run_stat(argv)
    assert got == status, (argv, got, err)
    assert out == '', out
    lines = err.splitlines()
    assert len(lines) == 1, 'expected one line, got %r' % err
    assert lines[0].startswith('zcfuse-stat: '), lines[0]
    for w in words:
        assert w in lines[0], '%r does not name %r' % (lines[0], w)


def test_count_rows():
    with zctest.Mount() as m:
        start = time.monotonic()
        status, out, err = run_stat([m.mnt, '0.2', '3'])
        took = time.monotonic() - start
    assert status == 0 and err == '', (status, err)
    lines = out.splitlines()
    assert len(lines) == 4, out
    assert lines[0].split()[0] == 'req/s'
    assert 0.5 <= took <= 5, took


def test_help_and_version():
    status, out, err = run_stat(['--help'])
    assert status == 0 and out.startswith('usage: zcfuse-stat MOUNTPOINT') and err == ''
    status, out, err = run_stat(['-V'])
    assert status == 0 and out.startswith('zcfuse-stat ') and err == ''
