"""The zcfuse command line: bad input, help, signals, daemonizing, options."""

import contextlib
import errno
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest

import zctest
from zctest import read_file, write_file

J = os.path.join


@pytest.fixture(autouse=True)
def _fuse_needed():
    zctest.require_fuse()


@contextlib.contextmanager
def scratch():
    """Fresh SOURCE and MOUNTPOINT that nothing is mounted on; cleaned up after."""
    m = zctest.Mount()
    m.make_dirs()
    try:
        yield m
    finally:
        leftovers = []
        if zctest.is_mounted(m.mnt):
            leftovers.append('%s was left mounted' % m.mnt)
            zctest.fusermount_unmount(m.mnt, lazy=True)
        for pid in zctest.pids_with_arg(m.mnt):
            leftovers.append('process %d naming %s was left running' % (pid, m.mnt))
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(m.base, ignore_errors=True)
        assert not leftovers, '; '.join(leftovers)


def run_daemon(args, timeout=10):
    """Run zcfuse with args, bounded; return (status, stdout, stderr).

    A daemon still running at the timeout is killed and the test fails.
    """
    proc = subprocess.Popen([zctest.zcfuse_bin()] + args, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for a in args:
            if os.path.isabs(a) and zctest.is_mounted(a):
                zctest.fusermount_unmount(a, lazy=True)
        proc.kill()
        out, err = proc.communicate()
        pytest.fail('zcfuse %r still running after %d s; stderr: %s'
                    % (args, timeout, err.decode(errors='replace')))
    return proc.returncode, out.decode(errors='replace'), err.decode(errors='replace')


def check_rejected(args, keywords, mnt):
    """zcfuse args must fail with one 'zcfuse: ' line naming one of keywords."""
    status, out, err = run_daemon(args)
    assert status > 0, 'zcfuse %r exited with %d (expected a failure status); stderr: %r' % (
        args, status, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, 'expected one line on stderr, got %r' % err
    assert lines[0].startswith('zcfuse: '), lines[0]
    text = lines[0].lower()
    assert any(k.lower() in text for k in keywords), \
        '%r does not mention any of %r' % (lines[0], keywords)
    if mnt is not None:
        assert not zctest.is_mounted(mnt)


# name, function (scratch -> args), words of which the message must name one
BAD_INPUT = [
    ('no-arguments', lambda s: [], ['usage', 'source', 'missing']),
    ('no-mountpoint', lambda s: [s.src], ['usage', 'mountpoint', 'missing']),
    ('source-missing', lambda s: [J(s.base, 'nonexistent'), s.mnt], ['nonexistent']),
    ('source-not-a-directory', lambda s: [J(s.base, 'plainfile'), s.mnt], ['plainfile']),
    ('mountpoint-missing', lambda s: [s.src, J(s.base, 'nowhere')], ['nowhere']),
    ('unknown-option', lambda s: [s.src, s.mnt, '-o', 'bogus_option'], ['bogus_option']),
    ('unknown-option-in-list', lambda s: [s.src, s.mnt, '-o', 'cache=never,frobnicate'],
     ['frobnicate']),
    ('bad-cache-value', lambda s: [s.src, s.mnt, '-o', 'cache=sometimes'],
     ['cache', 'sometimes']),
    ('bad-threads', lambda s: [s.src, s.mnt, '-o', 'threads=many'], ['threads', 'many']),
    ('bad-timeout', lambda s: [s.src, s.mnt, '-o', 'timeout=soon'], ['timeout', 'soon']),
    ('bad-attr-timeout', lambda s: [s.src, s.mnt, '-o', 'attr_timeout=x1'],
     ['attr_timeout', 'x1']),
    ('bad-entry-timeout', lambda s: [s.src, s.mnt, '-o', 'entry_timeout='],
     ['entry_timeout']),
    ('option-without-value', lambda s: [s.src, s.mnt, '-o'], ['-o', 'option', 'argument']),
    ('unknown-flag', lambda s: [s.src, s.mnt, '--frobnicate'], ['frobnicate']),
    # Odd bytes and sizes: still one clear line, control bytes and bytes that
    # are not UTF-8 written as \xNN.
    ('source-missing-newline', lambda s: [J(s.base, 'no\nsuch'), s.mnt], ['no\\x0asuch']),
    ('source-missing-0xff', lambda s: [J(s.base, 'no\udcffsuch'), s.mnt], ['no\\xffsuch']),
    ('source-missing-utf8', lambda s: [J(s.base, 'n\u00f6pe'), s.mnt], ['n\u00f6pe']),
    ('source-name-too-long', lambda s: [J(s.base, 'x' * 300), s.mnt], ['too long']),
    ('source-path-too-long', lambda s: [J(s.base, *['y' * 200] * 30), s.mnt], ['too long']),
    ('mountpoint-missing-newline', lambda s: [s.src, J(s.base, 'mnt\nx')],
     ['mnt\\x0ax']),
    ('option-with-newline', lambda s: [s.src, s.mnt, '-o', 'cache=never\nfoo'],
     ['never\\x0afoo']),
    ('option-with-0xff', lambda s: [s.src, s.mnt, '-o', 'cache=\udcff'], ['cache']),
    ('option-control-byte', lambda s: [s.src, s.mnt, '-o', 'ro,\x01x'], ['\\x01x']),
    ('option-name-too-long', lambda s: [s.src, s.mnt, '-o', 'o' * 100], ['malformed']),
    ('option-empty-name', lambda s: [s.src, s.mnt, '-o', '=x'], ['malformed']),
    ('empty-option', lambda s: [s.src, s.mnt, '-o', 'cache=never,,ro'], ['empty']),
    ('only-commas', lambda s: [s.src, s.mnt, '-o', ',,'], ['empty']),
    ('escaped-comma', lambda s: [s.src, s.mnt, '-o', 'foo\\,bar'], ['foo,bar']),
    ('threads-zero', lambda s: [s.src, s.mnt, '-o', 'threads=0'], ['threads']),
    ('threads-too-many', lambda s: [s.src, s.mnt, '-o', 'threads=257'], ['257']),
    ('threads-negative', lambda s: [s.src, s.mnt, '-o', 'threads=-1'], ['threads']),
    ('threads-trailing', lambda s: [s.src, s.mnt, '-o', 'threads=4x'], ['4x']),
    ('splice-threshold-huge', lambda s: [s.src, s.mnt, '-o', 'splice_threshold=99999999999'],
     ['splice_threshold']),
    ('writeback-ratio-zero', lambda s: [s.src, s.mnt, '-o', 'writeback,writeback_ratio=0'],
     ['writeback_ratio']),
    ('writeback-ratio-over-100', lambda s: [s.src, s.mnt, '-o', 'writeback_ratio=101'],
     ['writeback_ratio', '101']),
    ('writeback-ratio-word', lambda s: [s.src, s.mnt, '-o', 'writeback_ratio=half'],
     ['writeback_ratio']),
    ('timeout-negative', lambda s: [s.src, s.mnt, '-o', 'timeout=-1'], ['timeout']),
    ('timeout-nan', lambda s: [s.src, s.mnt, '-o', 'timeout=nan'], ['timeout']),
    ('cache-empty', lambda s: [s.src, s.mnt, '-o', 'cache='], ['cache']),
    ('flag-with-value', lambda s: [s.src, s.mnt, '-o', 'allow_other=1'], ['allow_other']),
    ('unknown-key-value', lambda s: [s.src, s.mnt, '-o', 'noatime,bogus_key=1'],
     ["unknown option 'bogus_key=1'"]),
    ('mount-flag-with-value', lambda s: [s.src, s.mnt, '-o', 'nosuid=1'],
     ["option 'nosuid' takes no value"]),
    ('fsname-empty', lambda s: [s.src, s.mnt, '-o', 'fsname='], ['fsname']),
    ('user-id-without-remount', lambda s: [s.src, s.mnt, '-o', 'user_id=0'],
     ['user_id', 'remount']),
    ('remount-not-mounted', lambda s: [s.src, s.mnt, '-o', 'remount,ro'],
     ['not a FUSE mount']),
]


@pytest.mark.parametrize('foreground', [True, False], ids=['foreground', 'background'])
@pytest.mark.parametrize('name,make_args,keywords', BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input(name, make_args, keywords, foreground):
    with scratch() as s:
        write_file(J(s.base, 'plainfile'), b'not a directory')
        args = make_args(s) + (['-f'] if foreground else [])
        check_rejected(args, keywords, s.mnt)


def test_mountpoint_already_mounted():
    with zctest.Mount() as m:
        write_file(J(m.mnt, 'f'), b'first mount')
        other = J(m.base, 'other')
        os.mkdir(other)
        for extra in (['-f'], []):
            check_rejected([other, m.mnt] + extra, [m.mnt, 'mounted', 'mount point'], None)
            assert len(zctest.mount_entries(m.mnt)) == 1
            assert read_file(J(m.mnt, 'f')) == b'first mount'


@pytest.mark.parametrize('flag', ['--help', '-h'])
def test_help(flag):
    status, out, err = run_daemon([flag])
    assert status == 0, err
    text = out + err
    assert 'MOUNTPOINT' in text or 'usage' in text.lower()
    for opt in ('cache=', 'writeback', 'allow_other', 'threads='):
        assert opt in text, opt


@pytest.mark.parametrize('flag', ['--version', '-V'])
def test_version(flag):
    status, out, err = run_daemon([flag])
    assert status == 0, err
    text = (out + err).strip()
    assert 'zcfuse' in text and any(c.isdigit() for c in text), text


# ------------------------------------------------------------------- signals

@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT], ids=['SIGTERM', 'SIGINT'])
def test_signal_unmounts(sig):
    with zctest.Mount() as m:
        write_file(J(m.mnt, 'f'), b'kept')
        os.kill(m.proc.pid, sig)
        status = m.proc.wait(timeout=10)
        assert status == 0, m.stderr_text()
        assert not zctest.is_mounted(m.mnt)
        assert read_file(J(m.src, 'f')) == b'kept'


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT], ids=['SIGTERM', 'SIGINT'])
def test_signal_unmounts_while_busy(sig):
    with zctest.Mount() as m:
        fd = os.open(J(m.mnt, 'f'), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.write(fd, b'busy')
            os.kill(m.proc.pid, sig)
            status = m.proc.wait(timeout=10)
            assert status == 0, m.stderr_text()
            assert not zctest.is_mounted(m.mnt)
            # The open file answers from the page cache or reports the dead
            # connection; it must not hang.
            assert zctest.attempt(os.pread, fd, 4, 0) in (b'busy', zctest.Err(errno.ENOTCONN),
                                                          zctest.Err(errno.ECONNABORTED))
        finally:
            # close sends a flush, which the dead connection may refuse.
            zctest.attempt(os.close, fd)


_READER = r'''
import errno, os, sys
out = []
for op in (lambda p: os.stat(p), lambda p: os.listdir(p),
           lambda p: open(os.path.join(p, 'f'), 'rb').read()):
    try:
        op(sys.argv[1])
        out.append('ok')
    except OSError as e:
        out.append(errno.errorcode[e.errno])
print(' '.join(out))
'''


def test_sigkill_leaves_dead_mount():
    with zctest.Mount(expected_exit=-signal.SIGKILL) as m:
        write_file(J(m.mnt, 'f'), b'x')
        os.kill(m.proc.pid, signal.SIGKILL)
        m.proc.wait(timeout=10)
        assert zctest.is_mounted(m.mnt)
        r = subprocess.run([sys.executable, '-c', _READER, m.mnt], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=10)
        assert r.returncode == 0, r.stderr
        assert r.stdout.decode().split() == ['ENOTCONN'] * 3
        ok, msg = zctest.fusermount_unmount(m.mnt, lazy=True)
        assert ok, msg
        assert not zctest.is_mounted(m.mnt)


# ---------------------------------------------------------------- daemonizing

def test_background_mount():
    with zctest.Mount(foreground=False) as m:
        pid = m.bg_pid
        assert zctest.pid_alive(pid)
        assert pid != m.proc.pid
        write_file(J(m.mnt, 'f'), b'from the background')
        assert read_file(J(m.src, 'f')) == b'from the background'
    # Leaving the block unmounted and waited for the daemon to exit.
    assert not zctest.pid_alive(pid)
    assert not zctest.is_mounted(m.mnt)


def test_background_mount_signal():
    with zctest.Mount(foreground=False) as m:
        os.kill(m.bg_pid, signal.SIGTERM)
        zctest.wait_until(lambda: not zctest.pid_alive(m.bg_pid), 10, 'daemon exit on SIGTERM')
        assert not zctest.is_mounted(m.mnt)


# -------------------------------------------------------------- flags, options

def workload(m):
    """A little of everything; checks the results in SOURCE."""
    data = os.urandom(1 << 20) + b'tail'
    write_file(J(m.mnt, 'f'), data)
    assert read_file(J(m.mnt, 'f')) == data
    os.mkdir(J(m.mnt, 'd'))
    os.rename(J(m.mnt, 'f'), J(m.mnt, 'd', 'g'))
    os.symlink('g', J(m.mnt, 'd', 'l'))
    assert sorted(os.listdir(J(m.mnt, 'd'))) == ['g', 'l']
    assert read_file(J(m.src, 'd', 'g')) == data
    assert os.stat(J(m.mnt, 'd', 'l')).st_size == len(data)
    os.unlink(J(m.mnt, 'd', 'l'))
    os.truncate(J(m.mnt, 'd', 'g'), 10)
    assert read_file(J(m.src, 'd', 'g')) == data[:10]
    assert sorted(os.listdir(m.src)) == ['d']


OPTION_SETS = ['cache=never', 'cache=auto', 'cache=always', 'timeout=0', 'timeout=2.5',
               'attr_timeout=0,entry_timeout=5', 'writeback', 'nowriteback', 'direct_io',
               'threads=1', 'threads=4', 'clone_fd', 'default_permissions',
               'nodefault_permissions', 'allow_other', 'allow_other,nodefault_permissions',
               'cache=always,writeback,clone_fd,threads=2', 'cache=never,direct_io,writeback']


@pytest.mark.parametrize('opts', OPTION_SETS)
def test_option_accepted(opts):
    with zctest.Mount(opts=opts.split(',')) as m:
        workload(m)
        sup = zctest.mount_entries(m.mnt)[-1]['super'].split(',')
        words = opts.split(',')
        assert ('allow_other' in sup) == ('allow_other' in words)
        want_dp = ('default_permissions' in words
                   or ('allow_other' in words and 'nodefault_permissions' not in words))
        assert ('default_permissions' in sup) == want_dp, sup


def test_debug_flag_implies_foreground():
    with zctest.Mount(args=['-d'], add_f=False, check_stderr=False) as m:
        assert m.proc.poll() is None
        write_file(J(m.mnt, 'f'), b'x')
        assert os.listdir(m.mnt) == ['f']
        assert zctest.attempt(os.getxattr, J(m.mnt, 'f'), 'user.none') == \
            zctest.Err(errno.ENODATA)
        zctest.wait_until(lambda: 'opcode: RELEASE' in m.stderr_text() and
                          'opcode: GETXATTR' in m.stderr_text(), 5, 'debug output')
        text = m.stderr_text()
        # Every request as it arrives, and its reply with its result and latency.
        assert re.search(r'^unique: \d+, opcode: INIT \(26\), nodeid: 0, insize: \d+, pid: \d+$',
                         text, re.M), text
        assert re.search(r'^unique: \d+, opcode: CREATE \(35\), nodeid: 1, ', text, re.M), text
        assert re.search(r'^   unique: \d+, success, outsize: \d+, \d+ us$', text, re.M), text
        # A GETXATTR of a missing attribute: an error with its name.
        assert re.search(r'^   unique: \d+, error: -61 \(No data available\), '
                         r'outsize: 16, \d+ us$', text, re.M), text


def test_single_threaded():
    with zctest.Mount(args=['-s']) as m:
        workload(m)
        tasks = os.listdir('/proc/%d/task' % m.proc.pid)
        assert len(tasks) == 1, 'with -s the daemon runs %d threads' % len(tasks)


def test_zero_timeout_sees_source_changes():
    with zctest.Mount(opts=['timeout=0']) as m:
        assert zctest.attempt(os.stat, J(m.mnt, 'late')) == zctest.Err(errno.ENOENT)
        write_file(J(m.src, 'late'), b'12345')
        assert os.stat(J(m.mnt, 'late')).st_size == 5
        write_file(J(m.src, 'late'), b'1234567890')
        assert os.stat(J(m.mnt, 'late')).st_size == 10
        os.unlink(J(m.src, 'late'))
        assert zctest.attempt(os.stat, J(m.mnt, 'late')) == zctest.Err(errno.ENOENT)


# Names with bytes that /proc/self/mountinfo and mount options escape. (Bytes
# that are not UTF-8 are left out here: a mount whose source holds one makes
# /proc/self/mountinfo undecodable for every reader on the machine.)
ODD_NAMES = ['new\nline', 'com,ma', 'sp ace', 'tab\there', 'back\\slash', 'h\u00e9', '#hash']


@pytest.mark.parametrize('name', ODD_NAMES, ids=['newline', 'comma', 'space', 'tab', 'backslash',
                                                 'utf8', 'hash'])
def test_odd_paths_mount(name):
    m = zctest.Mount()
    m.make_dirs()
    try:
        for attr in ('src', 'mnt'):
            odd = J(m.base, attr + '-' + name)
            os.rename(getattr(m, attr), odd)
            setattr(m, attr, odd)
        write_file(J(m.src, name), b'odd')
        m.start()
        assert zctest.is_mounted(m.mnt)
        assert os.listdir(m.mnt) == [name]
        assert read_file(J(m.mnt, name)) == b'odd'
        write_file(J(m.mnt, name + '2'), b'two')
        assert read_file(J(m.src, name + '2')) == b'two'
        source = zctest.mount_entries(m.mnt)[-1]['source']
        assert zctest.unescape(source) == m.src, source
    finally:
        m.stop()
