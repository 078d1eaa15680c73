"""Trees with more files than the daemon may hold descriptors, and stale inodes.

- A directory of 200 000 entries (more than the open-file limit): ls -l,
  find, stat of every file and du through the mount give what they give on
  SOURCE, while the daemon's descriptors stay under its bound and root's
  reads and creates keep working, during and after.
- A tree of 1 000 000 files walked with find: the count matches, the
  descriptors stay bounded, and the daemon's memory per known inode is small.
- Files and directories deleted, renamed and replaced on SOURCE while the
  kernel knows them, with the idle descriptors closed: what SOURCE says.
- One user holding open files gets EMFILE at its share; root's lookups and
  opens go on.
- No file handles of the mount are offered (they could not be opened once
  the kernel forgot a node), and bad max_fds values fail with one line.

These tests set their own mount options.
"""

import ctypes
import errno
import os
import resource
import shutil
import subprocess
import threading
import time

import pytest

import zctest
from zctest import read_file, write_file

J = os.path.join
UID, GID = 40151, 40151
RESERVED = 256  # pt.c: PT_FDS_RESERVED


@pytest.fixture(autouse=True)
def _fuse_needed():
    zctest.require_fuse()
    if os.geteuid() != 0:
        pytest.skip('needs root')


def daemon_nofile(pid):
    with open('/proc/%d/limits' % pid) as f:
        for line in f:
            if line.startswith('Max open files'):
                return int(line.split()[3])
    raise AssertionError('no open-file limit for %d' % pid)


def default_max_fds(nofile):
    return max(16, min(4096, nofile // 4))


def fd_count(pid):
    return len(os.listdir('/proc/%d/fd' % pid))


def rss_kib(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    raise AssertionError('no VmRSS')


class FdWatch:
    """The most descriptors the daemon held, sampled every 10 ms."""

    def __init__(self, pid):
        self.pid, self.peak, self.stop = pid, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, fd_count(self.pid))
            except FileNotFoundError:
                pass
            time.sleep(0.01)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def make_files(d, n, prefix='f', sizes=False):
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC
    for i in range(n):
        fd = os.open(J(d, '%s%06d' % (prefix, i)), flags, 0o644)
        if sizes and i % 97 == 0:
            os.write(fd, b'x' * (i % 5000))
        os.close(fd)


def run(cmd, cwd=None):
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=600,
                       env=dict(os.environ, LC_ALL='C'))
    assert r.returncode == 0, (cmd, r.stderr)
    return r.stdout


def stat_tuple(st):
    return (st.st_mode, st.st_nlink, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns,
            st.st_ino, st.st_blocks)


class RootClient:
    """Root reads a file and creates files through the mount meanwhile."""

    def __init__(self, mnt):
        self.mnt, self.errors, self.rounds = mnt, [], 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.is_set():
            try:
                assert read_file(J(self.mnt, 'side', 'keep')) == b'kept'
                p = J(self.mnt, 'side', 'new%d' % self.rounds)
                write_file(p, b'new')
                assert read_file(p) == b'new'
                os.unlink(p)
                self.rounds += 1
            except (OSError, AssertionError) as e:
                self.errors.append(repr(e))
                return
            time.sleep(0.005)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


@pytest.mark.timeout(900)
def test_directory_larger_than_the_open_file_limit():
    n = 200000

    def populate(src):
        os.mkdir(J(src, 'big'))
        make_files(J(src, 'big'), n, sizes=True)
        os.mkdir(J(src, 'side'))
        write_file(J(src, 'side', 'keep'), b'kept')

    with zctest.Mount(opts=['cache=auto'], populate=populate) as m:
        pid = m.proc.pid
        nofile = daemon_nofile(pid)
        assert nofile < n, 'the test needs an open-file limit below %d' % n
        bound = default_max_fds(nofile)
        with FdWatch(pid) as watch, RootClient(m.mnt) as client:
            ls_mnt = run(['ls', '-l', '--time-style=full-iso', J(m.mnt, 'big')])
            find_mnt = run(['find', J(m.mnt, 'big'), '-type', 'f'])
            zctest.drop_caches()
            stats_mnt = [stat_tuple(os.lstat(J(m.mnt, 'big', 'f%06d' % i))) for i in range(n)]
            du_mnt = run(['du', '-s', '--block-size=1', '.'], cwd=J(m.mnt, 'big'))
        ls_src = run(['ls', '-l', '--time-style=full-iso', J(m.src, 'big')])
        find_src = run(['find', J(m.src, 'big'), '-type', 'f'])
        stats_src = [stat_tuple(os.lstat(J(m.src, 'big', 'f%06d' % i))) for i in range(n)]
        du_src = run(['du', '-s', '--block-size=1', '.'], cwd=J(m.src, 'big'))

        assert ls_mnt == ls_src
        assert len(find_mnt.splitlines()) == n == len(find_src.splitlines())
        assert stats_mnt == stats_src
        assert du_mnt == du_src
        # The idle descriptors, plus those of requests in flight, open files
        # and the daemon's own (device, pipes, mount descriptors).
        assert watch.peak <= bound + 128, (watch.peak, bound)
        assert not client.errors, client.errors
        assert client.rounds > 0
        # And after: root's reads and creates.
        write_file(J(m.mnt, 'big', 'after'), b'after')
        assert read_file(J(m.mnt, 'big', 'after')) == b'after'
        assert read_file(J(m.src, 'big', 'after')) == b'after'


@pytest.mark.timeout(1500)
def test_million_files_walked():
    if os.environ.get('ZCFUSE_SANITIZED'):
        # Two minutes here, several times that with ASan, whose allocator
        # also makes the memory per inode meaningless: the plain build runs it.
        pytest.skip('a sanitizer build: the plain build walks the million files')
    dirs, per_dir = 1000, 1000

    def populate(src):
        for d in range(dirs):
            p = J(src, 'd%04d' % d)
            os.mkdir(p)
            make_files(p, per_dir)

    with zctest.Mount(opts=['cache=auto'], populate=populate) as m:
        pid = m.proc.pid
        bound = default_max_fds(daemon_nofile(pid))
        rss_before = rss_kib(pid)
        with FdWatch(pid) as watch:
            out = run(['find', m.mnt, '-type', 'f'])
            assert len(out.splitlines()) == dirs * per_dir
            # With the size of each: a lookup of every file.
            out = run(['find', m.mnt, '-type', 'f', '-printf', '%s\\n'])
            assert out.splitlines() == ['0'] * (dirs * per_dir)
        rss_after = rss_kib(pid)
        b = zctest.backend_counters(m.mnt)
        assert watch.peak <= bound + 128, (watch.peak, bound)
        # Every file is a known inode now (the kernel keeps them while it
        # has the memory): the daemon's memory for each is small.
        assert b['inodes'] > dirs * per_dir // 2, b
        per_inode = (rss_after - rss_before) * 1024 / b['inodes']
        print('million files: %d KiB resident before, %d KiB after, %d inodes known, '
              '%.0f bytes per inode, %d descriptors at most'
              % (rss_before, rss_after, b['inodes'], per_inode, watch.peak))
        assert per_inode < 400, per_inode
        assert b['fds.idle'] <= bound
        write_file(J(m.mnt, 'd0000', 'after'), b'after')
        assert read_file(J(m.mnt, 'd0000', 'after')) == b'after'


def evict(m, n=200):
    """Look up other files so the daemon closes the idle descriptors (max_fds=8)."""
    for i in range(n):
        os.lstat(J(m.mnt, 'pad', 'f%06d' % i))


@pytest.mark.parametrize('opts', [
    # Every access asks the daemon by name: results exactly as on SOURCE.
    ['cache=never', 'max_fds=8'],
    # Names trusted for a minute, attributes never: requests carry the node
    # ids the kernel already has, whose inodes are reopened from handles
    # (a deleted or replaced one answers ESTALE, and the kernel looks the
    # name up again). A rename on SOURCE shows only once the name expires.
    ['entry_timeout=60', 'attr_timeout=0', 'max_fds=8'],
], ids=['names-uncached', 'names-cached'])
def test_stale_inodes_changed_on_source(opts):
    names_cached = 'entry_timeout=60' in opts
    def populate(src):
        os.mkdir(J(src, 'pad'))
        make_files(J(src, 'pad'), 200)
        for name in ('deleted', 'renamed', 'replaced', 'open_deleted'):
            write_file(J(src, name), b'old ' + name.encode())
        for name in ('dir_deleted', 'dir_replaced', 'dir_renamed'):
            os.mkdir(J(src, name))
            write_file(J(src, name, 'inner'), b'inner ' + name.encode())

    with zctest.Mount(opts=opts, populate=populate) as m:
        for name in ('deleted', 'renamed', 'replaced', 'open_deleted'):
            assert read_file(J(m.mnt, name)) == b'old ' + name.encode()
        for name in ('dir_deleted', 'dir_replaced', 'dir_renamed'):
            assert os.listdir(J(m.mnt, name)) == ['inner']
        held = os.open(J(m.mnt, 'open_deleted'), os.O_RDONLY)
        kept_dir = os.open(J(m.mnt, 'dir_renamed'), os.O_RDONLY | os.O_DIRECTORY)
        evict(m)
        before = zctest.backend_counters(m.mnt)

        # Behind the mount's back. Recreated files get freed inode numbers
        # back on ext4, so (dev, ino) alone would name the old inode.
        os.unlink(J(m.src, 'deleted'))
        os.rename(J(m.src, 'renamed'), J(m.src, 'renamed_to'))
        os.unlink(J(m.src, 'replaced'))
        for i in range(20):
            write_file(J(m.src, 'filler%d' % i), b'filler')
        write_file(J(m.src, 'replaced'), b'new replaced')
        os.unlink(J(m.src, 'open_deleted'))
        shutil.rmtree(J(m.src, 'dir_deleted'))
        shutil.rmtree(J(m.src, 'dir_replaced'))
        os.mkdir(J(m.src, 'dir_replaced'))
        write_file(J(m.src, 'dir_replaced', 'other'), b'other')
        os.rename(J(m.src, 'dir_renamed'), J(m.src, 'dir_renamed_to'))
        evict(m)

        gone = ['deleted', 'dir_deleted'] + ([] if names_cached else ['renamed', 'dir_renamed'])
        for name in gone:
            with pytest.raises(FileNotFoundError):
                os.lstat(J(m.mnt, name))
            with pytest.raises(FileNotFoundError):
                os.open(J(m.mnt, name), os.O_RDONLY)
        assert read_file(J(m.mnt, 'renamed_to')) == b'old renamed'
        assert read_file(J(m.mnt, 'replaced')) == b'new replaced'
        assert os.lstat(J(m.mnt, 'replaced')).st_ino == os.lstat(J(m.src, 'replaced')).st_ino
        assert os.listdir(J(m.mnt, 'dir_replaced')) == ['other']
        assert read_file(J(m.mnt, 'dir_replaced', 'other')) == b'other'
        assert read_file(J(m.mnt, 'dir_renamed_to', 'inner')) == b'inner dir_renamed'
        # An open file and an open directory keep theirs.
        assert os.pread(held, 100, 0) == b'old open_deleted'
        assert os.fstat(held).st_nlink == 0
        os.close(held)
        assert os.listdir(kept_dir) == ['inner']
        os.close(kept_dir)
        assert sorted(os.listdir(m.mnt)) == sorted(os.listdir(m.src))
        after = zctest.backend_counters(m.mnt)
        assert after['fds.idle'] <= 8
        if names_cached:
            # Old node ids were reopened, and the changed ones found stale.
            assert zctest.counter_delta(after, before, 'reopens') > 0, after
            assert zctest.counter_delta(after, before, 'stale') >= 3, after


_HOLDER = r'''
import errno, os, sys
path, limit = sys.argv[1], int(sys.argv[2])
fds, err = [], 'none'
while len(fds) < limit:
    try:
        fds.append(os.open(path, os.O_RDONLY))
    except OSError as e:
        err = errno.errorcode.get(e.errno, str(e.errno))
        break
print(len(fds), err, flush=True)
sys.stdin.read()
'''


@pytest.mark.timeout(300)
def test_one_users_open_files_leave_room_for_others():
    def populate(src):
        write_file(J(src, 'shared'), b'shared')
        os.chmod(J(src, 'shared'), 0o644)
        os.mkdir(J(src, 'many'))
        make_files(J(src, 'many'), 3000)

    with zctest.Mount(opts=['allow_other', 'cache=never'], populate=populate) as m:
        pid = m.proc.pid
        nofile = daemon_nofile(pid)
        per_user = ((nofile - default_max_fds(nofile) - RESERVED) // 2) // 2
        python = zctest.user_python(UID, GID)
        holder = subprocess.Popen([python, '-c', _HOLDER, J(m.mnt, 'shared'),
                                   str(per_user + 100)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  user=UID, group=GID, extra_groups=[], cwd='/')
        try:
            count, err = holder.stdout.readline().split()
            assert (int(count), err) == (per_user, 'EMFILE')
            # Everyone else goes on: lookups of names the kernel never saw,
            # opens, creates.
            held = []
            for i in range(2000):
                held.append(os.open(J(m.mnt, 'many', 'f%06d' % i), os.O_RDONLY))
            for fd in held:
                os.close(fd)
            write_file(J(m.mnt, 'root_file'), b'root')
            assert read_file(J(m.mnt, 'root_file')) == b'root'
            r = zctest.run_as(UID + 1, GID + 1, [m.mnt], [['read', 'shared']])
            assert r[m.mnt] == [['ok', 'shared']], r
        finally:
            holder.stdin.close()
            holder.wait(timeout=60)
        # The user's share is back once its files are closed.
        m.settle_releases()
        r = zctest.run_as(UID, GID, [m.mnt], [['read', 'shared']])
        assert r[m.mnt] == [['ok', 'shared']], r


def test_no_file_handles_of_the_mount():
    libc = ctypes.CDLL(None, use_errno=True)

    class FileHandle(ctypes.Structure):
        _fields_ = [('handle_bytes', ctypes.c_uint), ('handle_type', ctypes.c_int),
                    ('f_handle', ctypes.c_ubyte * 128)]

    def name_to_handle(path):
        fh, mount_id = FileHandle(), ctypes.c_int()
        fh.handle_bytes = 128
        r = libc.name_to_handle_at(-100, os.fsencode(path), ctypes.byref(fh),
                                   ctypes.byref(mount_id), 0)
        return 0 if r == 0 else ctypes.get_errno()

    def populate(src):
        write_file(J(src, 'f'), b'data')

    with zctest.Mount(opts=['cache=auto'], populate=populate) as m:
        assert name_to_handle(J(m.src, 'f')) == 0  # SOURCE has them
        # Never a handle that open_by_handle_at() could not open later.
        assert name_to_handle(J(m.mnt, 'f')) == errno.EOPNOTSUPP


@pytest.mark.parametrize('value, message', [
    ('0', "bad value for option 'max_fds': '0'"),
    ('-3', "bad value for option 'max_fds': '-3'"),
    ('many', "bad value for option 'max_fds': 'many'"),
    ('', "bad value for option 'max_fds': ''"),
    ('16000000', 'max_fds=16000000 leaves too few descriptors under the open-file limit'),
])
def test_bad_max_fds(value, message):
    base = zctest.Mount(opts=[])
    base.make_dirs()
    try:
        r = subprocess.run([zctest.zcfuse_bin(), base.src, base.mnt, '-f', '-o',
                            'max_fds=' + value], capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, r
        lines = r.stderr.splitlines()
        assert len(lines) == 1 and message in lines[0], r.stderr
        assert not zctest.is_mounted(base.mnt)
    finally:
        shutil.rmtree(base.base)


def test_daemon_without_file_handles_says_so():
    """Run by a user, the daemon cannot open handles: every inode keeps its
    descriptor as before, and it says so once."""
    with zctest.UserMount(['cache=never']) as m:
        r = m.run(['sh', '-c', 'mkdir %s/d && echo x > %s/d/f && ls -l %s/d && cat %s/d/f'
                   % (m.mnt, m.mnt, m.mnt, m.mnt)])
        assert r.returncode == 0, r.stderr
        assert r.stdout.endswith('x\n'), r.stdout
    lines = [line for line in m.log().splitlines() if 'file handles cannot be opened' in line]
    assert len(lines) == 1, m.log()


@pytest.mark.parametrize('nofile', [256, 382])
def test_small_open_file_limit_names_the_limit(nofile):
    """Under an open-file limit too small for the daemon and no max_fds
    given: one line that names the limit and what the daemon needs, and
    exit status 1 (not the bad-command-line status 2 for an option the user
    never gave). The first limit that works starts the daemon."""
    base = zctest.Mount(opts=[])
    base.make_dirs()
    try:
        r = subprocess.run(['prlimit', '--nofile=%d' % nofile, zctest.zcfuse_bin(), base.src,
                            base.mnt, '-f', '-o', 'noio_uring'],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1, r
        lines = r.stderr.splitlines()
        assert len(lines) == 1, r.stderr
        assert 'open-file limit (%d) is too small' % nofile in lines[0], r.stderr
        assert 'needs 383 descriptors' in lines[0] and 'max_fds' not in lines[0], r.stderr
        assert not zctest.is_mounted(base.mnt)
    finally:
        shutil.rmtree(base.base)
    m2 = zctest.Mount(opts=[])
    m2.make_dirs()
    proc = subprocess.Popen(['prlimit', '--nofile=383', zctest.zcfuse_bin(), m2.src, m2.mnt,
                             '-f', '-o', 'noio_uring'], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        zctest.wait_until(lambda: zctest.is_mounted(m2.mnt), 10, 'the mount at 383')
    finally:
        zctest.fusermount_unmount(m2.mnt, lazy=True)
        proc.communicate(timeout=10)
        shutil.rmtree(m2.base, ignore_errors=True)
    assert proc.returncode == 0
