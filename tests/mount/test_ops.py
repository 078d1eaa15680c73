"""Every file system operation through the mount, compared with a plain directory.

Each test does the same thing under the mount (m.mnt) and under a reference
directory on the same file system as SOURCE (m.ref), and compares results and
errno; where it matters it also checks that the effect landed in SOURCE
(m.src).  Options of the mount come from ZCFUSE_MOUNT_OPTS.

The same tests run against the example backends (ZCFUSE_BACKEND=memfs or
blobstore), which have no SOURCE: there the checks of the stored result look
through the mount instead (store(m)), tests that are about SOURCE itself are
marked pytest.mark.source, and a feature a backend lacks is named with
pytest.mark.needs (see zctest.BACKEND_LACKS).
"""

import errno
import fcntl
import json
import mmap
import os
import random
import shutil
import socket
import stat
import subprocess
import sys
import time

import pytest

import zctest
from zctest import Err, attempt, read_file, stat_key, write_file

J = os.path.join
MiB = 1 << 20
# Linux's CLOCK_REALTIME_COARSE, the clock that stamps inodes; Python 3.11 lacks the name.
CLOCK_REALTIME_COARSE = getattr(time, 'CLOCK_REALTIME_COARSE', 5)


def roots(m):
    return (m.mnt, m.ref)


def on_both(m, fn, key=None):
    """fn(root) on the mount and on the reference: (mount outcome, reference outcome)."""
    out = []
    for root in roots(m):
        r = attempt(fn, root)
        if key is not None and not isinstance(r, Err):
            r = key(r)
        out.append(r)
    return tuple(out)


def same(m, fn, key=None, what=None):
    """Assert that fn(root) has the same outcome on mount and reference; return it."""
    got, want = on_both(m, fn, key)
    if got != want:
        raise AssertionError('%smount gave %s, plain directory gave %s'
                             % (what + ': ' if what else '', short(got), short(want)))
    return got


def short(value, limit=300):
    text = repr(value)
    if len(text) <= limit:
        return text
    if isinstance(value, (bytes, bytearray)):
        return '<%d bytes: %s...>' % (len(value), text[:limit])
    return text[:limit] + '...'


def each(m, fn):
    """Run fn(root) on both roots; it must succeed."""
    for root in roots(m):
        fn(root)


def store(m):
    """Where the stored result is looked at: SOURCE, or the mount without one."""
    return m.src if m.has_source else m.mnt


def check_tree(m):
    """SOURCE (or the mount) must now hold exactly what the reference holds."""
    zctest.assert_same_tree(store(m), m.ref)


def skey(path):
    return stat_key(os.lstat(path))


def mount_vs_source(m, rel, fields=('st_mode', 'st_nlink', 'st_uid', 'st_gid', 'st_size',
                                    'st_rdev', 'st_mtime_ns')):
    if not m.has_source:
        return
    a = os.lstat(J(m.mnt, rel))
    b = os.lstat(J(store(m), rel))
    for f in fields:
        assert getattr(a, f) == getattr(b, f), \
            '%s: %s through the mount is %r, in SOURCE %r' % (rel, f, getattr(a, f), getattr(b, f))


def pattern(n, seed=0):
    return random.Random(seed).randbytes(n)


def wait_clock_past(ns):
    """Wait until the coarse clock (which stamps inodes) is past ns."""
    zctest.wait_until(lambda: time.clock_gettime_ns(CLOCK_REALTIME_COARSE) > ns, 5,
                      'clock to pass a timestamp')


# ------------------------------------------------------------ lookup, getattr

def test_root_starts_empty(mount):
    m = mount
    assert os.listdir(m.mnt) == []
    a, b = os.stat(m.mnt), os.stat(m.src if m.has_source else m.ref)
    assert (a.st_mode, a.st_nlink, a.st_uid, a.st_gid) == (b.st_mode, b.st_nlink, b.st_uid,
                                                           b.st_gid)


def test_lookup_existing_and_missing(mount):
    m = mount
    each(m, lambda r: write_file(J(r, 'file'), b'abc'))
    each(m, lambda r: os.mkdir(J(r, 'dir')))
    assert same(m, lambda r: skey(J(r, 'file')))[-1] == 3
    same(m, lambda r: skey(J(r, 'dir')))
    assert same(m, lambda r: os.stat(J(r, 'missing'))) == Err(errno.ENOENT)
    assert same(m, lambda r: os.stat(J(r, 'dir', 'missing'))) == Err(errno.ENOENT)
    assert same(m, lambda r: os.stat(J(r, 'nodir', 'x'))) == Err(errno.ENOENT)
    assert same(m, lambda r: os.stat(J(r, 'file', 'x'))) == Err(errno.ENOTDIR)
    # A failed lookup must not leave anything behind.
    assert same(m, lambda r: os.stat(J(r, 'missing'))) == Err(errno.ENOENT)
    assert same(m, lambda r: os.access(J(r, 'missing'), os.F_OK)) is False
    check_tree(m)


def test_missing_names_are_kept_missing(mount):
    # A missing name is an entry the kernel keeps for the entry timeout:
    # six stat()s of it are one LOOKUP, except where nothing is kept.
    m = mount
    opts = zctest.env_mount_opts()
    kept = 'cache=never' not in opts and not (
        'nodefault_permissions' in opts and 'allow_other' in opts)
    before = zctest.counters(m.mnt).get('requests.LOOKUP', 0)
    for _ in range(6):
        assert attempt(lambda: os.stat(J(m.mnt, 'absent'))) == Err(errno.ENOENT)
    lookups = zctest.counters(m.mnt).get('requests.LOOKUP', 0) - before
    assert lookups == (1 if kept else 6), (opts, lookups)
    # Made through the mount, it is there at once.
    write_file(J(m.mnt, 'absent'), b'here')
    assert read_file(J(m.mnt, 'absent')) == b'here'


@pytest.mark.source
def test_lookup_after_create_in_source(mount):
    m = mount
    write_file(J(store(m), 'direct'), b'made in SOURCE')
    assert read_file(J(m.mnt, 'direct')) == b'made in SOURCE'
    mount_vs_source(m, 'direct')


def test_getattr_matches_source(mount):
    m = mount
    write_file(J(m.mnt, 'f'), pattern(12345))
    os.chmod(J(m.mnt, 'f'), 0o640)
    os.chown(J(m.mnt, 'f'), 1000, 2000)
    os.utime(J(m.mnt, 'f'), ns=(1_100_000_000_123_456_789, 1_200_000_000_987_654_321))
    # ctime is left out: no call sets it, and with writeback the kernel keeps its own.
    mount_vs_source(m, 'f', ('st_mode', 'st_nlink', 'st_uid', 'st_gid', 'st_size',
                             'st_atime_ns', 'st_mtime_ns', 'st_blocks'))
    st = os.stat(J(m.mnt, 'f'))
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_size) == (0o640, 1000, 2000,
                                                                           12345)
    fd = os.open(J(m.mnt, 'f'), os.O_RDONLY)
    try:
        assert stat_key(os.fstat(fd)) == stat_key(st)
    finally:
        os.close(fd)
    os.mkdir(J(m.mnt, 'd'))
    mount_vs_source(m, 'd')


def test_inode_numbers_stable(mount):
    m = mount
    write_file(J(m.mnt, 'f'), b'x')
    os.mkdir(J(m.mnt, 'd'))
    for name in ('f', 'd'):
        a = os.stat(J(m.mnt, name)).st_ino
        b = os.stat(J(m.mnt, name)).st_ino
        assert a == b
    assert os.stat(J(m.mnt, 'f')).st_ino != os.stat(J(m.mnt, 'd')).st_ino


def test_inode_numbers_stable_after_forget(mount):
    m = mount
    write_file(J(m.mnt, 'f'), b'x')
    os.mkdir(J(m.mnt, 'd'))
    write_file(J(m.mnt, 'd', 'g'), b'y')
    before = {n: os.stat(J(m.mnt, n)).st_ino for n in ('f', 'd', 'd/g')}
    try:
        zctest.drop_caches(2)
    except OSError as e:
        pytest.skip('cannot drop caches: %s' % e)
    after = {n: os.stat(J(m.mnt, n)).st_ino for n in ('f', 'd', 'd/g')}
    assert after == before
    assert read_file(J(m.mnt, 'd', 'g')) == b'y'


def test_hard_links_share_inode(mount):
    m = mount
    each(m, lambda r: write_file(J(r, 'a'), b'data'))
    assert same(m, lambda r: os.stat(J(r, 'a')).st_nlink) == 1
    each(m, lambda r: os.link(J(r, 'a'), J(r, 'b')))
    each(m, lambda r: os.link(J(r, 'b'), J(r, 'c')))
    assert same(m, lambda r: [os.stat(J(r, n)).st_nlink for n in 'abc']) == [3, 3, 3]
    inos = {os.stat(J(m.mnt, n)).st_ino for n in 'abc'}
    assert len(inos) == 1
    each(m, lambda r: os.unlink(J(r, 'a')))
    assert same(m, lambda r: [os.stat(J(r, n)).st_nlink for n in 'bc']) == [2, 2]
    assert same(m, lambda r: read_file(J(r, 'c'))) == b'data'
    check_tree(m)


# ------------------------------------------------------------------- setattr

def test_chmod(mount):
    m = mount
    each(m, lambda r: write_file(J(r, 'f'), b'x'))
    each(m, lambda r: os.mkdir(J(r, 'd')))
    for mode in (0o600, 0o000, 0o4755, 0o2711, 0o777):
        each(m, lambda r: os.chmod(J(r, 'f'), mode))
        got = same(m, lambda r: skey(J(r, 'f')))
        assert stat.S_IMODE(got[0]) == mode
        assert stat.S_IMODE(os.lstat(J(store(m), 'f')).st_mode) == mode
    each(m, lambda r: os.chmod(J(r, 'd'), 0o1777))
    assert stat.S_IMODE(same(m, lambda r: skey(J(r, 'd')))[0]) == 0o1777
    fd = os.open(J(m.mnt, 'f'), os.O_RDONLY)
    try:
        os.fchmod(fd, 0o640)
    finally:
        os.close(fd)
    os.chmod(J(m.ref, 'f'), 0o640)
    assert same(m, lambda r: oct(os.stat(J(r, 'f')).st_mode)) == oct(stat.S_IFREG | 0o640)
    check_tree(m)


def test_chown(mount):
    m = mount
    each(m, lambda r: write_file(J(r, 'f'), b'x'))
    each(m, lambda r: os.mkdir(J(r, 'd')))
    each(m, lambda r: os.chown(J(r, 'f'), 1234, 5678))
    assert same(m, lambda r: skey(J(r, 'f')))[2:4] == (1234, 5678)
    each(m, lambda r: os.chown(J(r, 'f'), -1, 42))
    assert same(m, lambda r: skey(J(r, 'f')))[2:4] == (1234, 42)
    each(m, lambda r: os.chown(J(r, 'f'), 77, -1))
    assert same(m, lambda r: skey(J(r, 'f')))[2:4] == (77, 42)
    each(m, lambda r: os.chown(J(r, 'd'), 99, 98))
    same(m, lambda r: skey(J(r, 'd')))
    # chown of a setuid/setgid file by root clears the bits on a regular file.
    each(m, lambda r: os.chmod(J(r, 'f'), 0o6755))
    each(m, lambda r: os.chown(J(r, 'f'), 5, 6))
    same(m, lambda r: skey(J(r, 'f')))
    st = os.lstat(J(store(m), 'f'))
    assert (st.st_uid, st.st_gid) == (5, 6)
    check_tree(m)


def test_truncate_path(mount):
    m = mount
    data = pattern(100000)
    each(m, lambda r: write_file(J(r, 'f'), data))
    for size in (200000, 150000, 4096, 0, 1, 3 * MiB + 17):
        each(m, lambda r: os.truncate(J(r, 'f'), size))
        assert same(m, lambda r: os.stat(J(r, 'f')).st_size) == size
        content = same(m, lambda r: read_file(J(r, 'f')))
        assert len(content) == size
        assert read_file(J(store(m), 'f')) == content
    assert same(m, lambda r: os.truncate(J(r, 'missing'), 0)) == Err(errno.ENOENT)
    assert same(m, lambda r: os.truncate(r, 0)) == Err(errno.EISDIR)
    check_tree(m)


def test_ftruncate_grow_and_shrink(mount):
    m = mount
    data = pattern(50000, 1)
    for root in roots(m):
        fd = os.open(J(root, 'f'), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            os.ftruncate(fd, 70000)
            assert os.fstat(fd).st_size == 70000
            assert os.pread(fd, 70000, 0) == data + bytes(20000)
            os.ftruncate(fd, 1000)
            assert os.pread(fd, 70000, 0) == data[:1000]
            os.ftruncate(fd, 5000)
            assert os.pread(fd, 70000, 0) == data[:1000] + bytes(4000)
            os.pwrite(fd, b'end', 4997)
        finally:
            os.close(fd)
    assert same(m, lambda r: read_file(J(r, 'f'))) == data[:1000] + bytes(3997) + b'end'
    check_tree(m)


def test_ftruncate_readonly_fd(mount):
    m = mount
    each(m, lambda r: write_file(J(r, 'f'), b'abc'))

    def trunc_ro(root):
        fd = os.open(J(root, 'f'), os.O_RDONLY)
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)
    assert same(m, trunc_ro) == Err(errno.EINVAL)
    assert same(m, lambda r: read_file(J(r, 'f'))) == b'abc'


def test_utime_explicit(mount):
    m = mount
    each(m, lambda r: write_file(J(r, 'f'), b'x'))
    each(m, lambda r: os.mkdir(J(r, 'd')))
    atime, mtime = 1_000_000_001_111_111_111, 1_500_000_000_222_222_222
    for name in ('f', 'd'):
        each(m, lambda r: os.utime(J(r, name), ns=(atime, mtime)))
        for root in (m.mnt, store(m), m.ref):
            st = os.stat(J(root, name))
            assert (st.st_atime_ns, st.st_mtime_ns) == (atime, mtime), root
    # Times before the epoch work too.
    each(m, lambda r: os.utime(J(r, 'f'), ns=(-1_000_000_000, -2_000_000_500)))
    assert same(m, lambda r: (os.stat(J(r, 'f')).st_atime_ns, os.stat(J(r, 'f')).st_mtime_ns)) \
        == (-1_000_000_000, -2_000_000_500)
    assert os.stat(J(store(m), 'f')).st_mtime_ns == -2_000_000_500


def test_utime_now_and_omit(mount):
    m = mount
    old = (1_000_000_000, 123)
    write_file(J(m.mnt, 'f'), b'x')
    zctest.utimensat(J(m.mnt, 'f'), old, old)
    start = time.clock_gettime_ns(CLOCK_REALTIME_COARSE)
    # atime now, mtime untouched.
    zctest.utimensat(J(m.mnt, 'f'), zctest.UTIME_NOW, zctest.UTIME_OMIT)
    for root in (m.mnt, store(m)):
        st = os.stat(J(root, 'f'))
        assert st.st_mtime_ns == 1_000_000_000_000_000_123, root
        assert st.st_atime_ns >= start, root
    # mtime now, atime untouched.
    zctest.utimensat(J(m.mnt, 'f'), old, old)
    zctest.utimensat(J(m.mnt, 'f'), zctest.UTIME_OMIT, zctest.UTIME_NOW)
    for root in (m.mnt, store(m)):
        st = os.stat(J(root, 'f'))
        assert st.st_atime_ns == 1_000_000_000_000_000_123, root
        assert st.st_mtime_ns >= start, root
    # Both omitted: nothing changes.
    zctest.utimensat(J(m.mnt, 'f'), old, old)
    zctest.utimensat(J(m.mnt, 'f'), zctest.UTIME_OMIT, zctest.UTIME_OMIT)
    st = os.stat(J(store(m), 'f'))
    assert (st.st_atime_ns, st.st_mtime_ns) == (1_000_000_000_000_000_123,) * 2


def test_setattr_missing(mount):
    m = mount
    assert same(m, lambda r: os.chmod(J(r, 'nope'), 0o644)) == Err(errno.ENOENT)
    assert same(m, lambda r: os.chown(J(r, 'nope'), 1, 1)) == Err(errno.ENOENT)
    assert same(m, lambda r: os.utime(J(r, 'nope'), ns=(1, 1))) == Err(errno.ENOENT)


# -------------------------------------------------------- symlink, readlink

LONG_TARGET = 'x' * 200 + '/' + 'y' * 3800


@pytest.mark.parametrize('target', ['plain', '/etc', '../..', 'a/../../b', 'dangling/none',
                                    LONG_TARGET])
def test_symlink_readlink(mount, target):
    m = mount
    each(m, lambda r: os.symlink(target, J(r, 'link')))
    assert same(m, lambda r: os.readlink(J(r, 'link'))) == target
    assert os.readlink(J(store(m), 'link')) == target
    assert stat.S_ISLNK(same(m, lambda r: skey(J(r, 'link')))[0])
    assert same(m, lambda r: os.lstat(J(r, 'link')).st_size) == len(target)
    check_tree(m)


def test_symlink_errors(mount):
    m = mount
    each(m, lambda r: write_file(J(r, 'f'), b'x'))
    each(m, lambda r: os.symlink('f', J(r, 'link')))
    assert same(m, lambda r: os.symlink('other', J(r, 'link'))) == Err(errno.EEXIST)
    assert same(m, lambda r: os.symlink('other', J(r, 'f'))) == Err(errno.EEXIST)
    assert same(m, lambda r: os.symlink('x', J(r, 'nodir', 'l'))) == Err(errno.ENOENT)
    assert same(m, lambda r: os.readlink(J(r, 'f'))) == Err(errno.EINVAL)
    assert same(m, lambda r: os.readlink(J(r, 'missing'))) == Err(errno.ENOENT)
    # Following a link to a file gives the file; a dangling one ENOENT.
    assert same(m, lambda r: read_file(J(r, 'link'))) == b'x'
    each(m, lambda r: os.symlink('nowhere', J(r, 'dangling')))
    assert same(m, lambda r: os.stat(J(r, 'dangling'))) == Err(errno.ENOENT)
    each(m, lambda r: os.symlink('loop', J(r, 'loop')))
    assert same(m, lambda r: os.stat(J(r, 'loop'))) == Err(errno.ELOOP)
    check_tree(m)


# --------------------------------------------------------------------- mknod

def test_mknod_special_files(mount):
    m = mount

    def make(root):
        os.mkfifo(J(root, 'fifo'), 0o640)
        os.mknod(J(root, 'fifo2'), stat.S_IFIFO | 0o600)
        os.mknod(J(root, 'sock'), stat.S_IFSOCK | 0o755)
        os.mknod(J(root, 'null'), stat.S_IFCHR | 0o666, os.makedev(1, 3))
        os.mknod(J(root, 'blk'), stat.S_IFBLK | 0o600, os.makedev(7, 200))
        os.mknod(J(root, 'reg'), stat.S_IFREG | 0o604)
    each(m, make)
    for name, kind in (('fifo', stat.S_ISFIFO), ('fifo2', stat.S_ISFIFO),
                       ('sock', stat.S_ISSOCK), ('null', stat.S_ISCHR),
                       ('blk', stat.S_ISBLK), ('reg', stat.S_ISREG)):
        key = same(m, lambda r: skey(J(r, name)))
        assert kind(key[0]), name
        mount_vs_source(m, name)
    assert os.major(os.stat(J(m.mnt, 'null')).st_rdev) == 1
    assert os.minor(os.stat(J(store(m), 'null')).st_rdev) == 3
    assert os.minor(os.stat(J(m.mnt, 'blk')).st_rdev) == 200
    # The device node works through the mount, unless it is mounted nodev.
    if 'nodev' in zctest.mount_entries(m.mnt)[-1]['opts'].split(','):
        assert attempt(os.open, J(m.mnt, 'null'), os.O_WRONLY) == Err(errno.EACCES)
    else:
        fd = os.open(J(m.mnt, 'null'), os.O_WRONLY)
        try:
            assert os.write(fd, b'gone') == 4
        finally:
            os.close(fd)
    check_tree(m)


def test_mknod_errors(mount):
    m = mount
    each(m, lambda r: os.mkfifo(J(r, 'fifo')))
    assert same(m, lambda r: os.mkfifo(J(r, 'fifo'))) == Err(errno.EEXIST)
    assert same(m, lambda r: os.mknod(J(r, 'nodir', 'x'), stat.S_IFIFO | 0o600)) \
        == Err(errno.ENOENT)


def test_fifo_through_mount(mount):
    m = mount
    os.mkfifo(J(m.mnt, 'fifo'))
    rfd = os.open(J(m.mnt, 'fifo'), os.O_RDONLY | os.O_NONBLOCK)
    try:
        wfd = os.open(J(m.mnt, 'fifo'), os.O_WRONLY)
        try:
            os.write(wfd, b'through the fifo')
        finally:
            os.close(wfd)
        assert os.read(rfd, 100) == b'through the fifo'
    finally:
        os.close(rfd)


def test_unix_socket_through_mount(mount):
    m = mount
    path = J(m.mnt, 's')
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        srv.bind(path)
        srv.listen(1)
        assert stat.S_ISSOCK(os.lstat(J(store(m), 's')).st_mode)
        cli = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            cli.settimeout(5)
            cli.connect(path)
            conn, _ = srv.accept()
            with conn:
                cli.sendall(b'ping')
                assert conn.recv(4) == b'ping'
        finally:
            cli.close()
    finally:
        srv.close()


# --------------------------------------------------------- mkdir, rmdir, unlink

def test_mkdir(mount):
    m = mount
    for name, mode in (('a', 0o755), ('b', 0o700), ('c', 0o1777), ('d', 0o2750)):
        each(m, lambda r: os.mkdir(J(r, name), mode))
        same(m, lambda r: skey(J(r, name)))
        mount_vs_source(m, name, ('st_mode', 'st_nlink', 'st_uid', 'st_gid'))
    each(m, lambda r: os.makedirs(J(r, 'x', 'y', 'z')))
    assert same(m, lambda r: os.stat(r).st_nlink) == 7
    assert same(m, lambda r: os.stat(J(r, 'x')).st_nlink) == 3
    assert same(m, lambda r: os.mkdir(J(r, 'a'))) == Err(errno.EEXIST)
    assert same(m, lambda r: os.mkdir(J(r, 'nodir', 'a'))) == Err(errno.ENOENT)
    check_tree(m)


def test_unlink(mount):
    m = mount
    each(m, lambda r: write_file(J(r, 'f'), b'x'))
    each(m, lambda r: os.symlink('f', J(r, 'l')))
    each(m, lambda r: os.mkdir(J(r, 'd')))
    each(m, lambda r: os.unlink(J(r, 'l')))
    assert same(m, lambda r: read_file(J(r, 'f'))) == b'x'
    assert same(m, lambda r: os.lstat(J(r, 'l'))) == Err(errno.ENOENT)
    each(m, lambda r: os.unlink(J(r, 'f')))
    assert same(m, lambda r: os.lstat(J(r, 'f'))) == Err(errno.ENOENT)
    assert not os.path.lexists(J(store(m), 'f'))
    assert same(m, lambda r: os.unlink(J(r, 'f'))) == Err(errno.ENOENT)
    assert same(m, lambda r: os.unlink(J(r, 'd'))) == Err(errno.EISDIR)
    assert same(m, lambda r: os.unlink(J(r, 'nodir', 'f'))) == Err(errno.ENOENT)
    check_tree(m)


def test_unlink_open_file(mount):
    m = mount
    for root in roots(m):
        fd = os.open(J(root, 'f'), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.write(fd, b'before')
            os.unlink(J(root, 'f'))
            assert not os.path.lexists(J(root, 'f'))
            os.write(fd, b' after')
            assert os.pread(fd, 100, 0) == b'before after'
            assert os.fstat(fd).st_nlink == 0
        finally:
            os.close(fd)
    assert os.listdir(store(m)) == []
    check_tree(m)


def test_rmdir(mount):
    m = mount
    each(m, lambda r: os.makedirs(J(r, 'full', 'sub')))
    each(m, lambda r: os.mkdir(J(r, 'empty')))
    each(m, lambda r: write_file(J(r, 'f'), b'x'))
    each(m, lambda r: os.rmdir(J(r, 'empty')))
    assert same(m, lambda r: os.lstat(J(r, 'empty'))) == Err(errno.ENOENT)
    assert same(m, lambda r: os.rmdir(J(r, 'full'))) == Err(errno.ENOTEMPTY)
    assert same(m, lambda r: os.rmdir(J(r, 'f'))) == Err(errno.ENOTDIR)
    assert same(m, lambda r: os.rmdir(J(r, 'missing'))) == Err(errno.ENOENT)
    assert same(m, lambda r: os.rmdir(J(r, 'full', 'sub', '.'))) == Err(errno.EINVAL)
    assert same(m, lambda r: os.stat(r).st_nlink) == 3
    check_tree(m)


# -------------------------------------------------------------------- rename

def test_rename_plain(mount):
    m = mount
    each(m, lambda r: write_file(J(r, 'f'), b'file'))
    each(m, lambda r: os.makedirs(J(r, 'd1', 'sub')))
    each(m, lambda r: write_file(J(r, 'd1', 'sub', 'inner'), b'inner'))
    each(m, lambda r: os.mkdir(J(r, 'd2')))
    ino = os.stat(J(m.mnt, 'f')).st_ino
    each(m, lambda r: os.rename(J(r, 'f'), J(r, 'g')))
    assert os.stat(J(m.mnt, 'g')).st_ino == ino
    each(m, lambda r: os.rename(J(r, 'g'), J(r, 'd2', 'h')))
    each(m, lambda r: os.rename(J(r, 'd1'), J(r, 'd2', 'moved')))
    assert same(m, lambda r: read_file(J(r, 'd2', 'moved', 'sub', 'inner'))) == b'inner'
    assert same(m, lambda r: os.lstat(J(r, 'd1'))) == Err(errno.ENOENT)
    assert same(m, lambda r: sorted(os.listdir(J(r, 'd2')))) == ['h', 'moved']
    same(m, lambda r: (os.stat(r).st_nlink, os.stat(J(r, 'd2')).st_nlink))
    # Renaming onto itself does nothing.
    each(m, lambda r: os.rename(J(r, 'd2', 'h'), J(r, 'd2', 'h')))
    assert same(m, lambda r: read_file(J(r, 'd2', 'h'))) == b'file'
    check_tree(m)


def test_rename_over_existing_file(mount):
    m = mount
    each(m, lambda r: write_file(J(r, 'a'), b'aaa'))
    each(m, lambda r: write_file(J(r, 'b'), b'bbbbbb'))
    ino = os.stat(J(m.mnt, 'a')).st_ino
    each(m, lambda r: os.rename(J(r, 'a'), J(r, 'b')))
    assert same(m, lambda r: read_file(J(r, 'b'))) == b'aaa'
    assert same(m, lambda r: os.lstat(J(r, 'a'))) == Err(errno.ENOENT)
    assert os.stat(J(m.mnt, 'b')).st_ino == ino
    assert read_file(J(store(m), 'b')) == b'aaa'
    check_tree(m)


def test_rename_noreplace(mount):
    m = mount
    each(m, lambda r: write_file(J(r, 'a'), b'aaa'))
    each(m, lambda r: write_file(J(r, 'b'), b'bbb'))
    assert same(m, lambda r: zctest.renameat2(J(r, 'a'), J(r, 'b'), zctest.RENAME_NOREPLACE)) \
        == Err(errno.EEXIST)
    assert same(m, lambda r: (read_file(J(r, 'a')), read_file(J(r, 'b')))) == (b'aaa', b'bbb')
    each(m, lambda r: zctest.renameat2(J(r, 'a'), J(r, 'c'), zctest.RENAME_NOREPLACE))
    assert same(m, lambda r: sorted(os.listdir(r))) == ['b', 'c']
    check_tree(m)


def test_rename_exchange(mount):
    m = mount
    each(m, lambda r: write_file(J(r, 'a'), b'aaa'))
    each(m, lambda r: os.mkdir(J(r, 'd')))
    each(m, lambda r: write_file(J(r, 'd', 'in'), b'in d'))
    each(m, lambda r: write_file(J(r, 'b'), b'bbb'))
    each(m, lambda r: zctest.renameat2(J(r, 'a'), J(r, 'b'), zctest.RENAME_EXCHANGE))
    assert same(m, lambda r: (read_file(J(r, 'a')), read_file(J(r, 'b')))) == (b'bbb', b'aaa')
    # A file and a directory trade places.
    each(m, lambda r: zctest.renameat2(J(r, 'a'), J(r, 'd'), zctest.RENAME_EXCHANGE))
    assert same(m, lambda r: read_file(J(r, 'd'))) == b'bbb'
    assert same(m, lambda r: read_file(J(r, 'a', 'in'))) == b'in d'
    assert same(m, lambda r: zctest.renameat2(J(r, 'a'), J(r, 'missing'),
                                              zctest.RENAME_EXCHANGE)) == Err(errno.ENOENT)
    assert same(m, lambda r: zctest.renameat2(J(r, 'b'), J(r, 'c'),
                                              zctest.RENAME_EXCHANGE | zctest.RENAME_NOREPLACE)) \
        == Err(errno.EINVAL)
    check_tree(m)


def test_rename_directory_errors(mount):
    m = mount
    each(m, lambda r: os.makedirs(J(r, 'src', 'x')))
    each(m, lambda r: os.makedirs(J(r, 'full', 'y')))
    each(m, lambda r: os.mkdir(J(r, 'empty')))
    each(m, lambda r: write_file(J(r, 'file'), b'f'))
    assert same(m, lambda r: os.rename(J(r, 'src'), J(r, 'full'))) == Err(errno.ENOTEMPTY)
    assert same(m, lambda r: os.rename(J(r, 'file'), J(r, 'empty'))) == Err(errno.EISDIR)
    assert same(m, lambda r: os.rename(J(r, 'src'), J(r, 'file'))) == Err(errno.ENOTDIR)
    assert same(m, lambda r: os.rename(J(r, 'src'), J(r, 'src', 'x', 'in'))) == Err(errno.EINVAL)
    assert same(m, lambda r: os.rename(J(r, 'missing'), J(r, 'z'))) == Err(errno.ENOENT)
    assert same(m, lambda r: os.rename(J(r, 'file'), J(r, 'nodir', 'z'))) == Err(errno.ENOENT)
    # A directory may replace an empty directory.
    each(m, lambda r: os.rename(J(r, 'src'), J(r, 'empty')))
    assert same(m, lambda r: sorted(os.listdir(r))) == ['empty', 'file', 'full']
    assert same(m, lambda r: os.listdir(J(r, 'empty'))) == ['x']
    check_tree(m)


def test_rename_open_file(mount):
    m = mount
    for root in roots(m):
        fd = os.open(J(root, 'a'), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.write(fd, b'one')
            os.rename(J(root, 'a'), J(root, 'b'))
            os.write(fd, b' two')
            os.fsync(fd)
        finally:
            os.close(fd)
    assert same(m, lambda r: read_file(J(r, 'b'))) == b'one two'
    check_tree(m)


# ---------------------------------------------------------------------- link

def test_link_errors(mount):
    m = mount
    each(m, lambda r: write_file(J(r, 'a'), b'x'))
    each(m, lambda r: write_file(J(r, 'b'), b'y'))
    each(m, lambda r: os.mkdir(J(r, 'd')))
    assert same(m, lambda r: os.link(J(r, 'a'), J(r, 'b'))) == Err(errno.EEXIST)
    assert same(m, lambda r: os.link(J(r, 'd'), J(r, 'd2'))) == Err(errno.EPERM)
    assert same(m, lambda r: os.link(J(r, 'missing'), J(r, 'c'))) == Err(errno.ENOENT)
    assert same(m, lambda r: os.link(J(r, 'a'), J(r, 'nodir', 'c'))) == Err(errno.ENOENT)
    assert same(m, lambda r: os.stat(J(r, 'a')).st_nlink) == 1
    each(m, lambda r: os.link(J(r, 'a'), J(r, 'd', 'a2')))
    assert same(m, lambda r: os.stat(J(r, 'a')).st_nlink) == 2
    assert os.stat(J(store(m), 'a')).st_ino == os.stat(J(store(m), 'd', 'a2')).st_ino
    # Writing through one name shows through the other.
    for root in roots(m):
        with open(J(root, 'd', 'a2'), 'ab') as f:
            f.write(b'z')
    assert same(m, lambda r: read_file(J(r, 'a'))) == b'xz'
    check_tree(m)


# ------------------------------------------------------------ open and create

def test_create_mode_and_umask(mount):
    m = mount
    old = os.umask(0o027)
    try:
        for name, mode in (('a', 0o777), ('b', 0o600), ('c', 0o4777)):
            each(m, lambda r: os.close(os.open(J(r, name), os.O_CREAT | os.O_WRONLY, mode)))
            got = same(m, lambda r: skey(J(r, name)))
            assert stat.S_IMODE(got[0]) == mode & ~0o027
        each(m, lambda r: os.mkdir(J(r, 'd'), 0o777))
        assert stat.S_IMODE(same(m, lambda r: skey(J(r, 'd')))[0]) == 0o750
    finally:
        os.umask(old)
    check_tree(m)


def test_open_trunc(mount):
    m = mount
    each(m, lambda r: write_file(J(r, 'f'), pattern(10000)))
    each(m, lambda r: os.close(os.open(J(r, 'f'), os.O_WRONLY | os.O_TRUNC)))
    assert same(m, lambda r: os.stat(J(r, 'f')).st_size) == 0
    assert os.stat(J(store(m), 'f')).st_size == 0
    each(m, lambda r: write_file(J(r, 'f'), b'abc'))
    each(m, lambda r: os.close(os.open(J(r, 'f'), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)))
    assert same(m, lambda r: read_file(J(r, 'f'))) == b''
    check_tree(m)


def test_open_append(mount):
    m = mount
    for root in roots(m):
        write_file(J(root, 'f'), b'start')
        fd = os.open(J(root, 'f'), os.O_WRONLY | os.O_APPEND)
        other = os.open(J(root, 'f'), os.O_WRONLY)
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, b'-one')
            # Another descriptor extends the file; the append still lands at the end.
            os.pwrite(other, b'XXXXXXXXXXXX', 20)
            os.write(fd, b'-two')
        finally:
            os.close(fd)
            os.close(other)
    expected = b'start-one' + bytes(11) + b'XXXXXXXXXXXX' + b'-two'
    assert same(m, lambda r: read_file(J(r, 'f'))) == expected
    assert read_file(J(store(m), 'f')) == expected
    check_tree(m)


def test_open_append_two_appenders(mount):
    m = mount
    each(m, lambda r: write_file(J(r, 'f'), b''))
    for root in roots(m):
        a = os.open(J(root, 'f'), os.O_WRONLY | os.O_APPEND)
        b = os.open(J(root, 'f'), os.O_WRONLY | os.O_APPEND)
        try:
            for i in range(50):
                os.write(a if i % 2 else b, b'%03d;' % i)
        finally:
            os.close(a)
            os.close(b)
    expected = b''.join(b'%03d;' % i for i in range(50))
    assert same(m, lambda r: read_file(J(r, 'f'))) == expected


def test_open_excl(mount):
    m = mount
    each(m, lambda r: write_file(J(r, 'f'), b'x'))
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY
    assert same(m, lambda r: os.open(J(r, 'f'), flags, 0o644)) == Err(errno.EEXIST)
    each(m, lambda r: os.symlink('nowhere', J(r, 'dangling')))
    assert same(m, lambda r: os.open(J(r, 'dangling'), flags, 0o644)) == Err(errno.EEXIST)
    each(m, lambda r: os.close(os.open(J(r, 'g'), flags, 0o640)))
    assert same(m, lambda r: read_file(J(r, 'f'))) == b'x'
    check_tree(m)


def test_open_direct(mount):
    m = mount
    size = 256 * 1024
    data = pattern(size, 7)
    for root in roots(m):
        wbuf = mmap.mmap(-1, size)
        rbuf = mmap.mmap(-1, size)
        try:
            wbuf[:] = data
            fd = os.open(J(root, 'f'), os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
            try:
                assert os.pwrite(fd, wbuf, 0) == size
                assert os.pwrite(fd, memoryview(wbuf)[:4096], size + 8192) == 4096
                assert os.preadv(fd, [rbuf], 0) == size
                assert rbuf[:] == data, root
                assert os.preadv(fd, [memoryview(rbuf)[:8192]], size) == 8192
                assert rbuf[:8192] == bytes(8192)
            finally:
                os.close(fd)
        finally:
            wbuf.close()
            rbuf.close()
    expected = data + bytes(8192) + data[:4096]
    assert same(m, lambda r: read_file(J(r, 'f'))) == expected
    assert read_file(J(store(m), 'f')) == expected


def test_open_direct_reads_buffered_writes(mount):
    m = mount
    data = pattern(64 * 1024, 8)
    write_file(J(m.mnt, 'f'), data)
    buf = mmap.mmap(-1, 64 * 1024)
    try:
        fd = os.open(J(m.mnt, 'f'), os.O_RDONLY | os.O_DIRECT)
        try:
            assert os.preadv(fd, [buf], 0) == len(data)
        finally:
            os.close(fd)
        assert buf[:] == data
    finally:
        buf.close()


def test_mmap_shared_read_write(mount):
    m = mount
    size = 3 * 4096 + 100
    data = pattern(size, 11)
    for root in roots(m):
        write_file(J(root, 'f'), data)
        fd = os.open(J(root, 'f'), os.O_RDWR)
        try:
            with mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) as mm:
                assert mm[:] == data, root
                mm[4090:4106] = b'M' * 16
                mm.flush()
            assert os.pread(fd, 32, 4080) == data[4080:4090] + b'M' * 16 + data[4106:4112]
        finally:
            os.close(fd)
    expected = data[:4090] + b'M' * 16 + data[4106:]
    assert same(m, lambda r: read_file(J(r, 'f'))) == expected
    assert read_file(J(store(m), 'f')) == expected


def test_mmap_sees_writes_through_another_fd(mount):
    m = mount
    data = pattern(8192, 12)
    for root in roots(m):
        write_file(J(root, 'f'), data)
        rfd = os.open(J(root, 'f'), os.O_RDONLY)
        wfd = os.open(J(root, 'f'), os.O_WRONLY)
        try:
            with mmap.mmap(rfd, 8192, mmap.MAP_SHARED, mmap.PROT_READ) as mm:
                assert mm[100:110] == data[100:110]
                assert os.pwrite(wfd, b'0123456789', 100) == 10
                assert mm[100:110] == b'0123456789', root
        finally:
            os.close(rfd)
            os.close(wfd)


def test_concurrent_opens_of_one_file(mount):
    m = mount
    for root in roots(m):
        write_file(J(root, 'f'), b'a' * 10000)
        modes = [os.O_RDONLY, os.O_WRONLY, os.O_RDWR, os.O_RDONLY, os.O_RDWR | os.O_APPEND]
        fds = [os.open(J(root, 'f'), mode) for mode in modes]
        try:
            assert os.pwrite(fds[1], b'W' * 100, 0) == 100
            assert os.pread(fds[0], 100, 0) == b'W' * 100, root
            assert os.pwrite(fds[2], b'R' * 100, 5000) == 100
            assert os.pread(fds[3], 102, 4999) == b'a' + b'R' * 100 + b'a', root
            assert os.write(fds[4], b'tail') == 4
            assert os.fstat(fds[0]).st_size == 10004
            assert os.pread(fds[2], 8, 9996) == b'aaaatail', root
        finally:
            for fd in fds:
                os.close(fd)
    assert same(m, lambda r: read_file(J(r, 'f')))[-4:] == b'tail'
    check_tree(m)


def test_truncate_while_open(mount):
    m = mount
    for root in roots(m):
        write_file(J(root, 'f'), pattern(100000, 13))
        fd = os.open(J(root, 'f'), os.O_RDWR)
        try:
            assert len(os.pread(fd, 200000, 0)) == 100000
            os.truncate(J(root, 'f'), 5000)
            assert os.fstat(fd).st_size == 5000, root
            assert len(os.pread(fd, 200000, 0)) == 5000, root
            assert os.pread(fd, 10, 4995) == pattern(100000, 13)[4995:5000]
            os.ftruncate(fd, 8000)
            assert os.pread(fd, 3000, 5000) == bytes(3000), root
            assert os.pwrite(fd, b'end', 20000) == 3
        finally:
            os.close(fd)
    expected = pattern(100000, 13)[:5000] + bytes(15000) + b'end'
    assert same(m, lambda r: read_file(J(r, 'f'))) == expected
    assert read_file(J(store(m), 'f')) == expected


def test_open_errors(mount):
    m = mount
    each(m, lambda r: os.mkdir(J(r, 'd')))
    each(m, lambda r: write_file(J(r, 'f'), b'x'))
    each(m, lambda r: os.symlink('f', J(r, 'l')))
    assert same(m, lambda r: os.open(J(r, 'd'), os.O_WRONLY)) == Err(errno.EISDIR)
    assert same(m, lambda r: os.open(J(r, 'd'), os.O_RDWR)) == Err(errno.EISDIR)
    assert same(m, lambda r: os.open(J(r, 'd'), os.O_WRONLY | os.O_CREAT, 0o644)) \
        == Err(errno.EISDIR)
    assert same(m, lambda r: os.open(J(r, 'missing'), os.O_RDONLY)) == Err(errno.ENOENT)
    assert same(m, lambda r: os.open(J(r, 'nodir', 'f'), os.O_CREAT | os.O_WRONLY, 0o644)) \
        == Err(errno.ENOENT)
    assert same(m, lambda r: os.open(J(r, 'l'), os.O_RDONLY | os.O_NOFOLLOW)) == Err(errno.ELOOP)
    assert same(m, lambda r: os.open(J(r, 'f'), os.O_RDONLY | os.O_DIRECTORY)) \
        == Err(errno.ENOTDIR)
    assert same(m, lambda r: os.open(J(r, 'f', 'x'), os.O_RDONLY)) == Err(errno.ENOTDIR)
    check_tree(m)


def test_write_on_readonly_fd(mount):
    m = mount
    each(m, lambda r: write_file(J(r, 'f'), b'x'))

    def write_ro(root):
        fd = os.open(J(root, 'f'), os.O_RDONLY)
        try:
            return os.write(fd, b'y')
        finally:
            os.close(fd)

    def read_wo(root):
        fd = os.open(J(root, 'f'), os.O_WRONLY)
        try:
            return os.read(fd, 1)
        finally:
            os.close(fd)
    assert same(m, write_ro) == Err(errno.EBADF)
    assert same(m, read_wo) == Err(errno.EBADF)


# -------------------------------------------------------- read, write, sync

def test_read_write_offsets(mount):
    m = mount
    chunks = [(0, pattern(100, 1)), (5000, pattern(3000, 2)), (4090, pattern(20, 3)),
              (1 << 20, pattern(70000, 4)), (50, pattern(1, 5)), (3 * MiB - 1, b'\xff')]
    for root in roots(m):
        fd = os.open(J(root, 'f'), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            for off, data in chunks:
                assert os.pwrite(fd, data, off) == len(data)
        finally:
            os.close(fd)

    def reads(root):
        fd = os.open(J(root, 'f'), os.O_RDONLY)
        try:
            out = [os.pread(fd, n, off) for off, n in
                   ((0, 10), (95, 10), (4000, 2000), (3 * MiB - 2, 100), (3 * MiB, 10),
                    (10 * MiB, 10), ((1 << 20) + 69990, 20))]
            os.lseek(fd, 4090, os.SEEK_SET)
            out.append(os.read(fd, 20))
            out.append(os.lseek(fd, 0, os.SEEK_CUR))
            out.append(os.lseek(fd, 0, os.SEEK_END))
            return out
        finally:
            os.close(fd)
    got = same(m, reads)
    assert got[5] == b'' and got[4] == b''
    assert same(m, lambda r: read_file(J(r, 'f'))) == read_file(J(store(m), 'f'))
    check_tree(m)


def test_large_write_and_read(mount):
    m = mount
    data = pattern(9 * MiB + 12345, 11)
    each(m, lambda r: write_file(J(r, 'big'), data))
    assert read_file(J(m.mnt, 'big')) == data
    assert read_file(J(store(m), 'big')) == data
    # Reads with odd sizes and offsets.
    fd = os.open(J(m.mnt, 'big'), os.O_RDONLY)
    try:
        for off, n in ((1, 2 * MiB), (MiB - 1, 3), (4 * MiB + 7, MiB + 9), (len(data) - 5, 100)):
            assert os.pread(fd, n, off) == data[off:off + n], (off, n)
    finally:
        os.close(fd)
    check_tree(m)


def test_close_flushes_to_source(mount):
    m = mount
    fd = os.open(J(m.mnt, 'f'), os.O_WRONLY | os.O_CREAT, 0o644)
    dup = os.dup(fd)
    try:
        os.write(fd, b'written before close')
    finally:
        os.close(fd)
    try:
        os.write(dup, b' and after the first close')
    finally:
        os.close(dup)
    assert read_file(J(store(m), 'f')) == b'written before close and after the first close'


def test_fsync_and_fdatasync(mount):
    m = mount
    fd = os.open(J(m.mnt, 'f'), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b'synced data')
        os.fsync(fd)
        assert read_file(J(store(m), 'f')) == b'synced data'
        os.pwrite(fd, b'DATA', 7)
        os.fdatasync(fd)
        assert read_file(J(store(m), 'f')) == b'synced DATA'
    finally:
        os.close(fd)

    def sync_ro(root):
        fd = os.open(J(root, 'f'), os.O_RDONLY)
        try:
            os.fsync(fd)
            os.fdatasync(fd)
        finally:
            os.close(fd)
    write_file(J(m.ref, 'f'), b'synced DATA')
    same(m, sync_ro)


def test_fsync_directory(mount):
    m = mount
    each(m, lambda r: os.mkdir(J(r, 'd')))
    each(m, lambda r: write_file(J(r, 'd', 'f'), b'x'))

    def sync_dir(root):
        fd = os.open(J(root, 'd'), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
            os.fdatasync(fd)
            return os.listdir(fd)
        finally:
            os.close(fd)
    assert same(m, sync_dir) == ['f']
    fd = os.open(m.mnt, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------- readdir

def scan(path):
    out = {}
    with os.scandir(path) as it:
        for e in it:
            out[e.name] = (e.is_dir(follow_symlinks=False), e.is_file(follow_symlinks=False),
                           e.is_symlink())
    return out


def test_readdir_types(mount):
    m = mount

    def make(root):
        write_file(J(root, 'file'), b'x')
        os.mkdir(J(root, 'dir'))
        os.symlink('file', J(root, 'link'))
        os.symlink('dir', J(root, 'dirlink'))
        os.mkfifo(J(root, 'fifo'))
        os.mknod(J(root, 'sock'), stat.S_IFSOCK | 0o644)
        os.mknod(J(root, 'chr'), stat.S_IFCHR | 0o644, os.makedev(1, 3))
    each(m, make)
    assert same(m, lambda r: sorted(os.listdir(r))) == sorted(
        ['file', 'dir', 'link', 'dirlink', 'fifo', 'sock', 'chr'])
    same(m, scan)
    types = same(m, lambda r: {n: t for n, (ino, t) in zctest.raw_readdir(r).items()})
    assert types == {'file': 'reg', 'dir': 'dir', 'link': 'lnk', 'dirlink': 'lnk',
                     'fifo': 'fifo', 'sock': 'sock', 'chr': 'chr'}
    assert os.listdir(m.mnt) == os.listdir(m.mnt)


def test_readdir_inode_numbers_match_stat(mount):
    m = mount
    for i in range(20):
        write_file(J(m.mnt, 'f%d' % i), b'')
    os.mkdir(J(m.mnt, 'd'))
    for name, (ino, _) in zctest.raw_readdir(m.mnt).items():
        assert ino == os.lstat(J(m.mnt, name)).st_ino, name


def test_readdir_many_entries(mount):
    m = mount
    names = ['entry-%04d-%s' % (i, 'n' * (i % 97)) for i in range(1000)]

    def make(root):
        os.mkdir(J(root, 'big'))
        for i, name in enumerate(names):
            if i % 10 == 0:
                os.mkdir(J(root, 'big', name))
            else:
                os.close(os.open(J(root, 'big', name), os.O_CREAT | os.O_WRONLY, 0o644))
    each(m, make)
    listed = same(m, lambda r: sorted(os.listdir(J(r, 'big'))))
    assert listed == sorted(names)
    raw = zctest.raw_readdir(J(m.mnt, 'big'))
    assert len(raw) == 1000
    same(m, lambda r: scan(J(r, 'big')))
    assert sorted(os.listdir(J(store(m), 'big'))) == sorted(names)
    assert same(m, lambda r: os.stat(J(r, 'big')).st_nlink) == 102


def test_readdir_while_deleting(mount):
    m = mount

    def make(root):
        os.mkdir(J(root, 'tree'))
        for i in range(600):
            write_file(J(root, 'tree', 'file-with-a-longish-name-%d' % i), b'x')
        for i in range(10):
            os.makedirs(J(root, 'tree', 'sub%d' % i, 'deeper'))
    each(m, make)
    # rmtree reads the directory while removing its entries.
    each(m, lambda r: shutil.rmtree(J(r, 'tree')))
    assert same(m, lambda r: os.listdir(r)) == []
    assert os.listdir(store(m)) == []


def test_readdir_errors(mount):
    m = mount
    each(m, lambda r: write_file(J(r, 'f'), b'x'))
    assert same(m, lambda r: os.listdir(J(r, 'f'))) == Err(errno.ENOTDIR)
    assert same(m, lambda r: os.listdir(J(r, 'missing'))) == Err(errno.ENOENT)


# ---------------------------------------------------------------------- statfs

@pytest.mark.source
def test_statfs(mount):
    m = mount
    a, b = os.statvfs(m.mnt), os.statvfs(m.src)
    for f in ('f_bsize', 'f_frsize', 'f_blocks', 'f_files', 'f_namemax'):
        assert getattr(a, f) == getattr(b, f), f
    # Free counts move with other activity; they must still be close.
    assert abs(a.f_bfree - b.f_bfree) <= max(b.f_blocks // 100, 1024)
    fd = os.open(m.mnt, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert os.fstatvfs(fd).f_blocks == b.f_blocks
    finally:
        os.close(fd)


# ---------------------------------------------------------------------- xattrs

@pytest.mark.needs('xattr')
def test_xattr_user(mount):
    m = mount
    each(m, lambda r: write_file(J(r, 'f'), b'x'))
    each(m, lambda r: os.setxattr(J(r, 'f'), 'user.one', b'1'))
    each(m, lambda r: os.setxattr(J(r, 'f'), 'user.two', b'second value'))
    each(m, lambda r: os.setxattr(J(r, 'f'), 'user.empty', b''))
    assert same(m, lambda r: os.getxattr(J(r, 'f'), 'user.two')) == b'second value'
    assert same(m, lambda r: os.getxattr(J(r, 'f'), 'user.empty')) == b''
    assert os.getxattr(J(store(m), 'f'), 'user.one') == b'1'
    names = same(m, lambda r: sorted(os.listxattr(J(r, 'f'))))
    assert {'user.one', 'user.two', 'user.empty'} <= set(names)
    assert same(m, lambda r: os.getxattr(J(r, 'f'), 'user.missing')) == Err(errno.ENODATA)
    each(m, lambda r: os.removexattr(J(r, 'f'), 'user.one'))
    assert same(m, lambda r: os.getxattr(J(r, 'f'), 'user.one')) == Err(errno.ENODATA)
    assert same(m, lambda r: os.removexattr(J(r, 'f'), 'user.one')) == Err(errno.ENODATA)
    assert 'user.one' not in os.listxattr(J(store(m), 'f'))
    assert same(m, lambda r: os.getxattr(J(r, 'missing'), 'user.one')) == Err(errno.ENOENT)
    check_tree(m)


@pytest.mark.needs('xattr')
def test_xattr_create_replace(mount):
    m = mount
    each(m, lambda r: write_file(J(r, 'f'), b'x'))
    each(m, lambda r: os.setxattr(J(r, 'f'), 'user.a', b'v1', os.XATTR_CREATE))
    assert same(m, lambda r: os.setxattr(J(r, 'f'), 'user.a', b'v2', os.XATTR_CREATE)) \
        == Err(errno.EEXIST)
    assert same(m, lambda r: os.setxattr(J(r, 'f'), 'user.b', b'v', os.XATTR_REPLACE)) \
        == Err(errno.ENODATA)
    each(m, lambda r: os.setxattr(J(r, 'f'), 'user.a', b'v3', os.XATTR_REPLACE))
    assert same(m, lambda r: os.getxattr(J(r, 'f'), 'user.a')) == b'v3'
    assert same(m, lambda r: os.getxattr(J(r, 'f'), 'user.b')) == Err(errno.ENODATA)
    check_tree(m)


@pytest.mark.needs('xattr')
def test_xattr_large_and_many(mount):
    m = mount
    each(m, lambda r: write_file(J(r, 'f'), b'x'))
    big = pattern(1500, 3)
    each(m, lambda r: os.setxattr(J(r, 'f'), 'user.big', big))
    assert same(m, lambda r: os.getxattr(J(r, 'f'), 'user.big')) == big
    for i in range(30):
        each(m, lambda r: os.setxattr(J(r, 'f'), 'user.attribute-number-%02d' % i, b'%d' % i))
    names = same(m, lambda r: sorted(os.listxattr(J(r, 'f'))))
    assert len([n for n in names if n.startswith('user.attribute-number-')]) == 30
    assert same(m, lambda r: os.setxattr(J(r, 'f'), 'user.' + 'n' * 300, b'x')) \
        == Err(errno.ERANGE)
    check_tree(m)


@pytest.mark.needs('xattr')
def test_xattr_dir_symlink_and_special(mount):
    m = mount
    each(m, lambda r: os.mkdir(J(r, 'd')))
    each(m, lambda r: write_file(J(r, 'f'), b'x'))
    each(m, lambda r: os.symlink('f', J(r, 'l')))
    each(m, lambda r: os.setxattr(J(r, 'd'), 'user.dir', b'on dir'))
    assert same(m, lambda r: os.getxattr(J(r, 'd'), 'user.dir')) == b'on dir'
    # user.* is not allowed on a symlink itself; following it reaches the file.
    assert same(m, lambda r: os.setxattr(J(r, 'l'), 'user.x', b'1', follow_symlinks=False)) \
        == Err(errno.EPERM)
    each(m, lambda r: os.setxattr(J(r, 'l'), 'user.via', b'link'))
    assert same(m, lambda r: os.getxattr(J(r, 'f'), 'user.via')) == b'link'
    same(m, lambda r: sorted(os.listxattr(J(r, 'l'), follow_symlinks=False)))
    assert same(m, lambda r: os.getxattr(J(r, 'f'), 'bogus.ns')) == Err(errno.EOPNOTSUPP)
    # Root may use the trusted namespace.
    each(m, lambda r: os.setxattr(J(r, 'f'), 'trusted.t', b'root only'))
    assert same(m, lambda r: os.getxattr(J(r, 'f'), 'trusted.t')) == b'root only'
    assert os.getxattr(J(store(m), 'f'), 'trusted.t') == b'root only'
    check_tree(m)


# ------------------------------------------------------------------- fallocate

def test_posix_fallocate(mount):
    m = mount

    def alloc(root):
        fd = os.open(J(root, 'f'), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.write(fd, b'head')
            os.posix_fallocate(fd, 0, MiB)
            os.posix_fallocate(fd, 2 * MiB, 4096)
            return os.fstat(fd).st_size
        finally:
            os.close(fd)
    assert same(m, alloc) == 2 * MiB + 4096
    assert same(m, lambda r: read_file(J(r, 'f'))) == b'head' + bytes(2 * MiB + 4092)
    assert os.stat(J(store(m), 'f')).st_blocks * 512 >= MiB + 4096
    check_tree(m)


def test_fallocate_keep_size(mount):
    m = mount
    data = b'\xaa' * (256 * 1024)

    def alloc(root):
        fd = os.open(J(root, 'f'), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            zctest.fallocate(fd, zctest.FALLOC_FL_KEEP_SIZE, 0, MiB)
            return os.fstat(fd).st_size, os.fstat(fd).st_blocks * 512 >= MiB
        finally:
            os.close(fd)
    assert same(m, alloc) == (len(data), True)
    assert same(m, lambda r: read_file(J(r, 'f'))) == data
    assert os.stat(J(store(m), 'f')).st_blocks * 512 >= MiB


def test_fallocate_zero_range(mount):
    m = mount
    data = b'\xaa' * (256 * 1024)
    each(m, lambda r: write_file(J(r, 'f'), data))

    def zero(root):
        fd = os.open(J(root, 'f'), os.O_RDWR)
        try:
            zctest.fallocate(fd, zctest.FALLOC_FL_ZERO_RANGE, 4096, 8192)
            zctest.fallocate(fd, zctest.FALLOC_FL_ZERO_RANGE, len(data) - 100, 1000)
            return os.fstat(fd).st_size
        finally:
            os.close(fd)
    got = same(m, zero)
    if got == Err(errno.EOPNOTSUPP):
        pytest.skip('the file system under the test directory has no FALLOC_FL_ZERO_RANGE')
    assert got == len(data) + 900
    expected = data[:4096] + bytes(8192) + data[12288:-100] + bytes(1000)
    assert same(m, lambda r: read_file(J(r, 'f'))) == expected
    assert read_file(J(store(m), 'f')) == expected


def test_punch_hole(mount):
    m = mount
    data = b'\xff' * MiB
    each(m, lambda r: write_file(J(r, 'f'), data))
    blocks_before = os.stat(J(store(m), 'f')).st_blocks

    def punch(root):
        fd = os.open(J(root, 'f'), os.O_RDWR)
        try:
            zctest.punch_hole(fd, 64 * 1024, 128 * 1024)
            zctest.punch_hole(fd, 1000, 10)
            return os.pread(fd, MiB + 10, 0)
        finally:
            os.close(fd)
    content = same(m, punch)
    expected = bytearray(data)
    expected[64 * 1024:192 * 1024] = bytes(128 * 1024)
    expected[1000:1010] = bytes(10)
    assert content == bytes(expected)
    assert read_file(J(store(m), 'f')) == bytes(expected)
    assert os.stat(J(m.mnt, 'f')).st_size == MiB
    if not zctest.backend_lacks('punch_frees_blocks', m.backend):
        assert os.stat(J(store(m), 'f')).st_blocks < blocks_before
    assert same(m, lambda r: os.stat(J(r, 'f')).st_size) == MiB


# ------------------------------------------------------------- copy_file_range

def test_copy_file_range(mount):
    m = mount
    data = pattern(3 * MiB + 1234, 21)
    write_file(J(m.mnt, 'a'), data)
    write_file(J(m.mnt, 'b'), b'B' * 100)
    fa = os.open(J(m.mnt, 'a'), os.O_RDONLY)
    fb = os.open(J(m.mnt, 'b'), os.O_WRONLY)
    try:
        done = 0
        while done < len(data):
            n = os.copy_file_range(fa, fb, len(data) - done, done, 50 + done)
            assert n > 0
            done += n
        n = os.copy_file_range(fa, fb, 4096, len(data) + 10, 0)
        assert n == 0
        # Without explicit offsets the file positions are used and advanced.
        os.lseek(fa, 10, os.SEEK_SET)
        os.lseek(fb, 0, os.SEEK_SET)
        assert os.copy_file_range(fa, fb, 5) == 5
        assert os.lseek(fa, 0, os.SEEK_CUR) == 15
        assert os.lseek(fb, 0, os.SEEK_CUR) == 5
    finally:
        os.close(fa)
        os.close(fb)
    expected = data[10:15] + b'B' * 45 + data
    assert read_file(J(m.mnt, 'b')) == expected
    assert read_file(J(store(m), 'b')) == expected
    assert read_file(J(store(m), 'a')) == data


def test_copy_file_range_errors(mount):
    m = mount
    each(m, lambda r: write_file(J(r, 'a'), b'abc'))

    def overlap(root):
        fa = os.open(J(root, 'a'), os.O_RDWR)
        try:
            return os.copy_file_range(fa, fa, 3, 0, 1)
        finally:
            os.close(fa)

    def ro_dest(root):
        fa = os.open(J(root, 'a'), os.O_RDONLY)
        fb = os.open(J(root, 'a'), os.O_RDONLY)
        try:
            return os.copy_file_range(fa, fb, 3, 0, 10)
        finally:
            os.close(fa)
            os.close(fb)
    assert same(m, overlap) == Err(errno.EINVAL)
    assert same(m, ro_dest) == Err(errno.EBADF)


# ------------------------------------------------------------------------ lseek

@pytest.mark.needs('seek_hole')
def test_seek_data_hole(mount):
    m = mount

    def make(root):
        fd = os.open(J(root, 'sparse'), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, b'\x01' * 65536, 0)
            os.pwrite(fd, b'\x02' * 65536, MiB)
            os.ftruncate(fd, 4 * MiB)
            os.fsync(fd)
        finally:
            os.close(fd)
    make(m.mnt)
    if not m.has_source:
        make(m.ref)

    def seeks(path):
        fd = os.open(path, os.O_RDONLY)
        try:
            out = []
            for whence, off in ((os.SEEK_HOLE, 0), (os.SEEK_DATA, 0), (os.SEEK_DATA, 65536),
                                (os.SEEK_DATA, 200000), (os.SEEK_HOLE, MiB + 100),
                                (os.SEEK_DATA, MiB + 65536), (os.SEEK_HOLE, 4 * MiB - 1),
                                (os.SEEK_DATA, 4 * MiB), (os.SEEK_HOLE, 4 * MiB),
                                (os.SEEK_HOLE, 5 * MiB)):
                out.append(attempt(os.lseek, fd, off, whence))
            return out
        finally:
            os.close(fd)
    got = seeks(J(m.mnt, 'sparse'))
    want = seeks(J(m.src if m.has_source else m.ref, 'sparse'))
    assert got == want
    assert want[0] == 65536 and want[3] == MiB
    assert want[7] == Err(errno.ENXIO) and want[8] == Err(errno.ENXIO)


# ------------------------------------------------------------------------ locks

_LOCK_CHILD = r'''
import errno, fcntl, json, os, struct, sys
path, start, length, kind = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
fd = os.open(path, os.O_RDWR)
out = {}
ltype = fcntl.F_WRLCK if kind == 'ex' else fcntl.F_RDLCK
res = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack('hhqqi4x', ltype, 0, start, length, 0))
t, w, s, l, pid = struct.unpack('hhqqi4x', res)
out['getlk'] = [t, s, l, pid]
try:
    fcntl.lockf(fd, (fcntl.LOCK_EX if kind == 'ex' else fcntl.LOCK_SH) | fcntl.LOCK_NB,
                length, start)
    out['setlk'] = 'ok'
except OSError as e:
    out['setlk'] = errno.errorcode[e.errno]
json.dump(out, sys.stdout)
'''


def lock_probe(path, start, length, kind):
    r = subprocess.run([sys.executable, '-c', _LOCK_CHILD, path, str(start), str(length), kind],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(r.stdout)


def test_posix_locks(mount):
    m = mount
    results = {}
    for root in roots(m):
        path = J(root, 'locked')
        write_file(path, bytes(1000))
        fd = os.open(path, os.O_RDWR)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX, 100, 0)
            held = lock_probe(path, 10, 10, 'ex')
            free = lock_probe(path, 200, 10, 'ex')
            fcntl.lockf(fd, fcntl.LOCK_UN, 100, 0)
            fcntl.lockf(fd, fcntl.LOCK_SH, 100, 0)
            shared_sh = lock_probe(path, 0, 50, 'sh')
            shared_ex = lock_probe(path, 0, 50, 'ex')
            fcntl.lockf(fd, fcntl.LOCK_UN, 100, 0)
            released = lock_probe(path, 10, 10, 'ex')
        finally:
            os.close(fd)
        results[root] = [held, free, shared_sh, shared_ex, released]
    got, want = results[m.mnt], results[m.ref]
    assert got == want
    held, free, shared_sh, shared_ex, released = got
    assert held['getlk'] == [fcntl.F_WRLCK, 0, 100, os.getpid()]
    assert held['setlk'] in ('EAGAIN', 'EACCES')
    assert free['getlk'][0] == fcntl.F_UNLCK and free['setlk'] == 'ok'
    assert shared_sh['setlk'] == 'ok'
    assert shared_ex['getlk'][0] == fcntl.F_RDLCK and shared_ex['setlk'] in ('EAGAIN', 'EACCES')
    assert released['getlk'][0] == fcntl.F_UNLCK and released['setlk'] == 'ok'


def test_flock(mount):
    m = mount

    def flocks(root):
        path = J(root, 'f')
        write_file(path, b'x')
        a = os.open(path, os.O_RDWR)
        b = os.open(path, os.O_RDWR)
        out = []
        try:
            fcntl.flock(a, fcntl.LOCK_EX)
            out.append(attempt(fcntl.flock, b, fcntl.LOCK_EX | fcntl.LOCK_NB))
            out.append(attempt(fcntl.flock, b, fcntl.LOCK_SH | fcntl.LOCK_NB))
            fcntl.flock(a, fcntl.LOCK_UN)
            out.append(attempt(fcntl.flock, b, fcntl.LOCK_EX | fcntl.LOCK_NB))
            fcntl.flock(b, fcntl.LOCK_SH)
            out.append(attempt(fcntl.flock, a, fcntl.LOCK_SH | fcntl.LOCK_NB))
            out.append(attempt(fcntl.flock, a, fcntl.LOCK_EX | fcntl.LOCK_NB))
        finally:
            os.close(a)
            os.close(b)
        # Closing the holder releases the lock. On a FUSE mount that happens
        # when the kernel's RELEASE reaches the daemon, just after close()
        # returns, so give it a moment.
        c = os.open(path, os.O_RDWR)
        try:
            deadline = time.monotonic() + 5
            while True:
                r = attempt(fcntl.flock, c, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if r is None or time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            out.append(r)
        finally:
            os.close(c)
        return out
    got = same(m, flocks)
    would_block = Err(errno.EWOULDBLOCK)
    assert got == [would_block, would_block, None, None, would_block, None]


# ----------------------------------------------------------------------- access

def test_access_as_root(mount):
    m = mount
    for mode in (0o000, 0o400, 0o644, 0o100, 0o010, 0o001, 0o755):
        each(m, lambda r: write_file(J(r, 'f%o' % mode), b'x'))
        each(m, lambda r: os.chmod(J(r, 'f%o' % mode), mode))
    each(m, lambda r: os.mkdir(J(r, 'd'), 0o000))
    for name in os.listdir(m.ref):
        for bit in (os.F_OK, os.R_OK, os.W_OK, os.X_OK, os.R_OK | os.W_OK | os.X_OK):
            same(m, lambda r: os.access(J(r, name), bit), what='access(%s, %d)' % (name, bit))
    assert os.access(J(m.mnt, 'f0'), os.R_OK | os.W_OK)
    assert not os.access(J(m.mnt, 'f644'), os.X_OK)
    assert os.access(J(m.mnt, 'f1'), os.X_OK)
    assert same(m, lambda r: os.access(J(r, 'missing'), os.F_OK)) is False


# ----------------------------------------------- symlinks cannot lead outside

@pytest.mark.source
def test_symlinks_in_source_are_not_followed(mount):
    m = mount
    outside = J(m.base, 'outside')
    write_file(outside, b'outside data', 0o644)
    os.utime(outside, ns=(10**18, 10**18))
    before = os.lstat(outside)
    os.symlink('/etc', J(store(m), 'etc-link'))
    os.symlink('../..', J(store(m), 'up-link'))
    os.symlink(outside, J(store(m), 'out-link'))
    os.mkdir(J(store(m), 'd'))
    write_file(J(store(m), 'd', 'inside'), b'inside')
    assert sorted(os.listdir(m.mnt)) == ['d', 'etc-link', 'out-link', 'up-link']
    assert os.readlink(J(m.mnt, 'etc-link')) == '/etc'
    assert os.readlink(J(m.mnt, 'up-link')) == '../..'
    for name in ('etc-link', 'up-link', 'out-link'):
        assert stat.S_ISLNK(os.lstat(J(m.mnt, name)).st_mode), name
    # Operations on the link itself change the link, never its target.
    os.chown(J(m.mnt, 'out-link'), 4321, 4321, follow_symlinks=False)
    os.utime(J(m.mnt, 'out-link'), ns=(5, 5), follow_symlinks=False)
    assert os.lstat(J(store(m), 'out-link')).st_uid == 4321
    assert os.lstat(J(store(m), 'out-link')).st_mtime_ns == 5
    assert attempt(os.setxattr, J(m.mnt, 'out-link'), 'user.x', b'1',
                   follow_symlinks=False) == Err(errno.EPERM)
    os.link(J(m.mnt, 'out-link'), J(m.mnt, 'hard-link'), follow_symlinks=False)
    assert stat.S_ISLNK(os.lstat(J(store(m), 'hard-link')).st_mode)
    assert os.readlink(J(m.mnt, 'hard-link')) == outside
    os.rename(J(m.mnt, 'up-link'), J(m.mnt, 'd', 'moved-link'))
    assert os.readlink(J(store(m), 'd', 'moved-link')) == '../..'
    os.unlink(J(m.mnt, 'hard-link'))
    after = os.lstat(outside)
    assert (after.st_uid, after.st_mtime_ns, after.st_nlink) == \
        (before.st_uid, before.st_mtime_ns, before.st_nlink)
    assert os.listxattr(outside) == []
    assert read_file(outside) == b'outside data'


@pytest.mark.source
def test_dotdot_stays_inside(mount):
    m = mount
    write_file(J(m.base, 'marker'), b'outside')
    write_file(J(store(m), 'marker'), b'inside')
    os.makedirs(J(store(m), 'a', 'b'))
    assert read_file(J(m.mnt, 'a', 'b', '..', '..', 'marker')) == b'inside'
    assert os.stat(J(m.mnt, 'a', '..')).st_ino == os.stat(m.mnt).st_ino
    assert sorted(os.listdir(J(m.mnt, 'a', 'b', '..', '..'))) == ['a', 'marker']
    assert os.path.samefile(J(m.mnt, 'a', 'b', '..'), J(m.mnt, 'a'))


# ------------------------------------------------------------------- timestamps

def test_write_advances_source_times(mount):
    m = mount
    old = 1_000_000_000_000_000_000
    write_file(J(m.mnt, 'f'), b'abc')
    os.utime(J(m.mnt, 'f'), ns=(old, old))
    st0 = os.stat(J(store(m), 'f'))
    assert st0.st_mtime_ns == old
    wait_clock_past(st0.st_ctime_ns)
    fd = os.open(J(m.mnt, 'f'), os.O_WRONLY)
    try:
        os.pwrite(fd, b'XY', 1)
    finally:
        os.close(fd)
    st1 = os.stat(J(store(m), 'f'))
    assert st1.st_mtime_ns > old
    assert st1.st_ctime_ns > st0.st_ctime_ns
    assert read_file(J(store(m), 'f')) == b'aXY'
    mnt = os.stat(J(m.mnt, 'f'))
    assert mnt.st_mtime_ns == st1.st_mtime_ns


def test_truncate_advances_source_times(mount):
    m = mount
    old = 1_000_000_000_000_000_000
    write_file(J(m.mnt, 'f'), b'abcdef')
    os.utime(J(m.mnt, 'f'), ns=(old, old))
    st0 = os.stat(J(store(m), 'f'))
    wait_clock_past(st0.st_ctime_ns)
    os.truncate(J(m.mnt, 'f'), 2)
    st1 = os.stat(J(store(m), 'f'))
    assert st1.st_size == 2
    assert st1.st_mtime_ns > old
    assert st1.st_ctime_ns > st0.st_ctime_ns


def test_directory_times_follow_changes(mount):
    m = mount
    old = 1_000_000_000_000_000_000
    os.mkdir(J(m.mnt, 'd'))
    for change in (lambda: write_file(J(m.mnt, 'd', 'f'), b''),
                   lambda: os.rename(J(m.mnt, 'd', 'f'), J(m.mnt, 'd', 'g')),
                   lambda: os.unlink(J(m.mnt, 'd', 'g')),
                   lambda: os.mkdir(J(m.mnt, 'd', 'sub'))):
        os.utime(J(m.mnt, 'd'), ns=(old, old))
        assert os.stat(J(store(m), 'd')).st_mtime_ns == old
        change()
        assert os.stat(J(store(m), 'd')).st_mtime_ns > old
        assert os.stat(J(m.mnt, 'd')).st_mtime_ns > old


# ------------------------------------------------- permissions of other users

UID = GID = 40123
GROUP = 4242


def prepare_permission_tree(root):
    write_file(J(root, 'secret'), b'secret', 0o600)
    os.chmod(J(root, 'secret'), 0o600)
    os.mkdir(J(root, 'rootdir'), 0o755)
    write_file(J(root, 'rootdir', 'existing'), b'e', 0o644)
    os.mkdir(J(root, 'private'), 0o700)
    write_file(J(root, 'private', 'file'), b'p')
    os.mkdir(J(root, 'pub'))
    os.chmod(J(root, 'pub'), 0o777)
    os.mkdir(J(root, 'sticky'))
    os.chmod(J(root, 'sticky'), 0o1777)
    write_file(J(root, 'sticky', 'rootfile'), b'r')
    os.chmod(J(root, 'sticky', 'rootfile'), 0o666)
    write_file(J(root, 'ro_file'), b'readable')
    os.chmod(J(root, 'ro_file'), 0o644)
    write_file(J(root, 'rw_file'), b'writable')
    os.chmod(J(root, 'rw_file'), 0o666)
    write_file(J(root, 'exec_file'), b'#!/bin/sh\n')
    os.chmod(J(root, 'exec_file'), 0o755)
    os.mkdir(J(root, 'sg'))
    os.chown(J(root, 'sg'), 0, GROUP)
    os.chmod(J(root, 'sg'), 0o2777)


EACCES = ['err', 'EACCES']
EPERM = ['err', 'EPERM']
OK = ['ok', None]

# (operation as run by the unprivileged child, outcome the plain directory
# must show, or None where only mount and plain directory are compared).
PERMISSION_CASES = [
    (['read', 'secret'], EACCES),
    (['read', 'ro_file'], ['ok', 'readable']),
    (['open', 'ro_file', 'O_WRONLY'], EACCES),
    (['open', 'secret', 'O_RDONLY'], EACCES),
    (['create', 'rootdir/new', 0o644], EACCES),
    (['mkdir', 'rootdir/newdir', 0o755], EACCES),
    (['unlink', 'rootdir/existing'], EACCES),
    (['rename', 'rootdir/existing', 'pub/stolen'], EACCES),
    (['rmdir', 'rootdir'], EACCES),
    (['stat', 'private/file'], EACCES),
    (['listdir', 'private'], EACCES),
    (['listdir', 'rootdir'], ['ok', ['existing']]),
    (['truncate', 'ro_file', 0], EACCES),
    (['chmod', 'ro_file', 0o666], EPERM),
    (['chown', 'ro_file', UID, UID], EPERM),
    (['utime_now', 'ro_file'], EACCES),
    (['utime', 'rw_file', 10**18, 10**18], EPERM),
    (['utime_now', 'rw_file'], OK),
    (['write', 'rw_file', '+more'], ['ok', 5]),
    (['setxattr', 'ro_file', 'user.x', 'v'], EACCES),
    (['access', 'ro_file', os.R_OK], ['ok', True]),
    (['access', 'ro_file', os.W_OK], ['ok', False]),
    (['access', 'ro_file', os.X_OK], ['ok', False]),
    (['access', 'exec_file', os.X_OK], ['ok', True]),
    (['access', 'secret', os.R_OK], ['ok', False]),
    (['create', 'pub/mine', 0o644, 'hello'], OK),
    (['mkdir', 'pub/mydir', 0o777], OK),
    (['symlink', 'target', 'pub/mylink'], OK),
    (['mkfifo', 'pub/myfifo', 0o666], OK),
    (['link', 'ro_file', 'pub/hardlink'], None),
    (['create', 'sticky/mine', 0o644], OK),
    (['unlink', 'sticky/rootfile'], EPERM),
    (['rename', 'sticky/rootfile', 'sticky/renamed'], EPERM),
    (['write', 'sticky/rootfile', 'y'], ['ok', 1]),
    (['unlink', 'sticky/mine'], OK),
    (['create', 'sg/file', 0o666], OK),
    (['mkdir', 'sg/dir', 0o777], OK),
    (['create', 'sg/sgidfile', 0o2755], OK),
    (['chown', 'pub/mine', 0, -1], EPERM),
    (['chown', 'pub/mine', -1, GROUP], EPERM),
    # A write by an unprivileged user clears the setuid and setgid bits.
    (['chmod', 'pub/mine', 0o4755], OK),
    (['write', 'pub/mine', ' world'], ['ok', 6]),
    (['stat', 'pub/mine'], ['ok', [stat.S_IFREG | 0o755, UID, GID, 11, 1]]),
    (['chmod', 'pub/mine', 0o2755], OK),
    (['stat', 'pub/mine'], ['ok', [stat.S_IFREG | 0o2755, UID, GID, 11, 1]]),
    (['write', 'pub/mine', '!'], ['ok', 1]),
    (['stat', 'pub/mine'], ['ok', [stat.S_IFREG | 0o755, UID, GID, 12, 1]]),
    # So do truncate and an open with O_TRUNC.
    (['create', 'pub/trunc', 0o644, 'some data'], OK),
    (['chmod', 'pub/trunc', 0o6755], OK),
    (['truncate', 'pub/trunc', 4], OK),
    (['stat', 'pub/trunc'], ['ok', [stat.S_IFREG | 0o755, UID, GID, 4, 1]]),
    (['chmod', 'pub/trunc', 0o6755], OK),
    (['open', 'pub/trunc', 'O_WRONLY|O_TRUNC'], OK),
    (['stat', 'pub/trunc'], ['ok', [stat.S_IFREG | 0o755, UID, GID, 0, 1]]),
    # Without group execute, setgid is not a privilege and stays.
    (['chmod', 'pub/trunc', 0o6744], OK),
    (['write', 'pub/trunc', 'x'], ['ok', 1]),
    (['stat', 'pub/trunc'], ['ok', [stat.S_IFREG | 0o2744, UID, GID, 1, 1]]),
    (['stat', 'sg/file'], ['ok', [stat.S_IFREG | 0o644, UID, GROUP, 0, 1]]),
    (['stat', 'sg/dir'], None),
    # Not a member of the directory's group: the new file loses setgid.
    (['stat', 'sg/sgidfile'], ['ok', [stat.S_IFREG | 0o755, UID, GROUP, 0, 1]]),
    (['read', 'pub/mine'], ['ok', 'hello world!']),
]


def test_unprivileged_permissions(mount_allow_other):
    m = mount_allow_other
    each(m, prepare_permission_tree)
    ops = [op for op, _ in PERMISSION_CASES]
    res = zctest.run_as(UID, GID, roots(m), ops)
    got, want = res[m.mnt], res[m.ref]
    diffs = ['%r: mount %r, plain %r' % (op, g, w) for op, g, w in zip(ops, got, want) if g != w]
    assert not diffs, 'as uid %d:\n  ' % UID + '\n  '.join(diffs)
    for (op, outcome), w in zip(PERMISSION_CASES, want):
        assert outcome is None or w == outcome, 'plain directory: %r gave %r' % (op, w)
    # What the user made through the mount is the user's, in SOURCE.
    for rel in ('pub/mine', 'pub/mydir', 'pub/mylink', 'pub/myfifo'):
        st = os.lstat(J(store(m), rel))
        assert (st.st_uid, st.st_gid) == (UID, GID), rel
    # Directories with the setgid bit pass their group on.
    for rel in ('sg/file', 'sg/dir', 'sg/sgidfile'):
        st = os.lstat(J(store(m), rel))
        assert (st.st_uid, st.st_gid) == (UID, GROUP), rel
    assert os.lstat(J(store(m), 'sg/dir')).st_mode == stat.S_IFDIR | 0o2755
    assert read_file(J(store(m), 'rw_file')) == b'writable+more'
    check_tree(m)


@pytest.fixture
def mount_allow_other():
    zctest.require_fuse()
    with zctest.Mount(extra_opts=['allow_other']) as m:
        yield m


# -------------------------------------------------------------------- read-only

@pytest.mark.source
def test_readonly_mount():
    zctest.require_fuse()

    def populate(src):
        write_file(J(src, 'f'), b'data')
        os.mkdir(J(src, 'd'))

    with zctest.Mount(extra_opts=['ro'], populate=populate) as m:
        assert 'ro' in zctest.mount_entries(m.mnt)[-1]['opts'].split(',')
        assert read_file(J(m.mnt, 'f')) == b'data'
        assert sorted(os.listdir(m.mnt)) == ['d', 'f']
        erofs = Err(errno.EROFS)
        assert attempt(os.open, J(m.mnt, 'new'), os.O_CREAT | os.O_WRONLY, 0o644) == erofs
        assert attempt(os.open, J(m.mnt, 'f'), os.O_WRONLY) == erofs
        assert attempt(os.open, J(m.mnt, 'f'), os.O_RDWR) == erofs
        assert attempt(os.mkdir, J(m.mnt, 'nd')) == erofs
        assert attempt(os.unlink, J(m.mnt, 'f')) == erofs
        assert attempt(os.rmdir, J(m.mnt, 'd')) == erofs
        assert attempt(os.rename, J(m.mnt, 'f'), J(m.mnt, 'g')) == erofs
        assert attempt(os.symlink, 'x', J(m.mnt, 'l')) == erofs
        assert attempt(os.chmod, J(m.mnt, 'f'), 0o600) == erofs
        assert attempt(os.truncate, J(m.mnt, 'f'), 0) == erofs
        assert attempt(os.utime, J(m.mnt, 'f'), ns=(1, 1)) == erofs
        assert attempt(os.setxattr, J(m.mnt, 'f'), 'user.x', b'1') == erofs
        assert read_file(J(store(m), 'f')) == b'data'
        assert sorted(os.listdir(store(m))) == ['d', 'f']


# ---------------------------------------------------- space of removed files

def daemon_fds_on_removed(m, name):
    """The daemon's descriptors of SOURCE's file @name after it was removed."""
    fddir = '/proc/%d/fd' % m.proc.pid
    held = []
    for fd in os.listdir(fddir):
        try:
            target = os.readlink(J(fddir, fd))
        except OSError:
            continue
        if target == J(m.src, name) + ' (deleted)':
            held.append(fd)
    return held


@pytest.mark.source
def test_removed_file_frees_its_space_at_once(mount):
    """A file removed through the mount (unlink, or a rename over it) is
    not kept alive by the daemon: its space is free once nothing uses it,
    as on SOURCE, not when the kernel forgets the inode (which it may do
    only later, or not at all while something holds the inode)."""
    m = mount
    for name in ('gone', 'open-gone', 'replaced'):
        write_file(J(m.mnt, name), b"x" * (256 << 10))
    write_file(J(m.mnt, 'other'), b'y')
    # An O_PATH descriptor holds the kernel's inode (so no FORGET comes)
    # without opening the file in the daemon, as a cwd or a bind does.
    held = [os.open(J(m.mnt, name), os.O_PATH) for name in ('gone', 'replaced')]
    try:
        os.unlink(J(m.mnt, 'gone'))
        assert daemon_fds_on_removed(m, 'gone') == []
        os.rename(J(m.mnt, 'other'), J(m.mnt, 'replaced'))
        assert daemon_fds_on_removed(m, 'replaced') == []
    finally:
        for fd in held:
            os.close(fd)
    # Open while removed: kept until the last close, then let go.
    fd = os.open(J(m.mnt, 'open-gone'), os.O_RDONLY)
    try:
        os.unlink(J(m.mnt, 'open-gone'))
        assert os.pread(fd, 4, 0) == b'xxxx'
    finally:
        os.close(fd)
    zctest.wait_until(lambda: daemon_fds_on_removed(m, 'open-gone') == [], 5,
                      'the daemon lets go of a removed file after its last close')
    # Another name keeps the file: it is still served through both.
    write_file(J(m.mnt, 'linked'), b'z' * 100)
    os.link(J(m.mnt, 'linked'), J(m.mnt, 'second'))
    os.unlink(J(m.mnt, 'linked'))
    assert read_file(J(m.mnt, 'second')) == b'z' * 100
