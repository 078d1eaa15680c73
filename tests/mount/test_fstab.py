"""mount(8), fstab and remount.

mount -t fuse.zcfuse runs /sbin/mount.fuse (mount.fuse3 of the fuse3
package), which runs 'zcfuse SOURCE MOUNTPOINT -o OPTIONS' through /bin/sh.
mount(8) hands its helpers an environment without PATH, so the shell finds
zcfuse on its own default PATH (/usr/local/sbin:/usr/local/bin:/usr/sbin:...).
To run the built daemon without installing it, each test works in a private
mount namespace where a directory holding a link to it is bound over the
first /usr/local directory of that PATH; nothing changes outside. Commands
run there through nsenter; the test sees the namespace's mounts through
/proc/PID/mountinfo and its files through /proc/PID/root.

The options themselves, given to zcfuse and to the example programs
directly, are checked at the end.
"""

import errno
import os
import re
import pwd
import shutil
import subprocess
import tempfile
import time

import pytest

import zctest
from zctest import read_file, write_file

J = os.path.join


@pytest.fixture(autouse=True)
def _fuse_needed():
    zctest.require_fuse()
    for tool in ('mount', 'umount', 'unshare', 'nsenter', 'setpriv'):
        if shutil.which(tool) is None:
            pytest.fail('%s is not installed (util-linux, mount)' % tool)
    if not os.path.exists('/sbin/mount.fuse3') and not os.path.exists('/usr/sbin/mount.fuse3'):
        pytest.fail('mount.fuse3 is not installed (Debian package fuse3)')


def nobody():
    try:
        user = pwd.getpwnam('nobody')
    except KeyError:
        pytest.skip('no user "nobody"')
    return user.pw_uid, user.pw_gid


def shell_path_dir():
    """The first /usr/local directory on /bin/sh's own PATH (mount(8) passes none)."""
    r = subprocess.run(['env', '-i', '/bin/sh', '-c', 'echo "$PATH"'], stdout=subprocess.PIPE,
                       text=True, check=True)
    for d in r.stdout.strip().split(':'):
        if d.startswith('/usr/local/') and os.path.isdir(d):
            return d
    pytest.fail('/bin/sh has no /usr/local directory on its default PATH: %r' % r.stdout)


def one_line(text, what):
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, '%s: expected one line, got %r' % (what, text)
    return lines[0]


class HelperNamespace:
    """A private mount namespace where mount(8) finds the built zcfuse.

    Attributes: base, src (0755, root's), mnt, holder (the process that
    keeps the namespace). run() runs a command there; entries() reads its
    mountinfo for mnt; path() is where the test reaches a path of it.
    Leaving unmounts, waits for the daemon to exit and fails the test when
    something was left behind.
    """

    def __enter__(self):
        self.holder = None
        self.base = tempfile.mkdtemp(prefix='zcfuse-test-', dir=zctest.tmp_root())
        try:
            os.chmod(self.base, 0o755)
            self.src, self.mnt = J(self.base, 'src'), J(self.base, 'mnt')
            bindir = J(self.base, 'bin')
            for d in (self.src, self.mnt, bindir):
                os.mkdir(d)
                os.chmod(d, 0o755)
            os.symlink(os.path.realpath(zctest.zcfuse_bin()), J(bindir, 'zcfuse'))
            os.symlink(os.path.realpath(zctest.BACKEND_BINS['blobstore']),
                       J(bindir, 'blobstore'))
            self.holder = subprocess.Popen(
                ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c',
                 'mount --bind "$1" "$2" && echo ready && exec sleep 3600', 'sh', bindir,
                 shell_path_dir()],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, start_new_session=True)
            line = self.holder.stdout.readline().strip()
            if line != 'ready':
                raise AssertionError('the mount namespace was not set up: %s'
                                     % self.holder.stderr.read())
        except BaseException:
            self._remove()
            raise
        return self

    def run(self, args, user=None, timeout=30):
        """Run args in the namespace (as user (uid, gid) when given)."""
        cmd = ['nsenter', '--target', str(self.holder.pid), '--mount', '--']
        if user:
            cmd += ['setpriv', '--reuid=%d' % user[0], '--regid=%d' % user[1],
                    '--clear-groups']
        return subprocess.run(cmd + args, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout, cwd='/')

    def mount(self, args):
        """mount(8) there; returns the finished process."""
        return self.run(['mount'] + args)

    def mounted(self, args):
        """mount(8) there, which must succeed and leave one zcfuse daemon."""
        r = self.mount(args)
        assert r.returncode == 0, 'mount %r: status %d: %s' % (args, r.returncode, r.stderr)
        # zcfuse says nothing on the terminal (its notices go to the system
        # log once detached); the example programs, which have no system
        # log, name their transport on stderr.
        said = [l for l in r.stderr.splitlines()
                if not re.match(r'(blobstore|memfs): transport: ', l)]
        assert said == [], r.stderr
        entry = self.entry()
        assert entry is not None, 'mount %r returned but %s is not mounted' % (args, self.mnt)
        assert len(zctest.pids_with_arg(self.mnt)) == 1, zctest.pids_with_arg(self.mnt)
        return entry

    def entries(self):
        return zctest.mount_entries(self.mnt, '/proc/%d/mountinfo' % self.holder.pid)

    def entry(self):
        """The mount on top at mnt in the namespace, or None."""
        entries = self.entries()
        return entries[-1] if entries else None

    def path(self, *parts):
        """Where this process reaches the namespace's mnt/parts."""
        return J('/proc/%d/root' % self.holder.pid + self.mnt, *parts)

    def unmount(self):
        """Unmount mnt there and wait for the daemon to exit; returns problems."""
        problems = []
        pids = zctest.pids_with_arg(self.mnt)
        if self.entries():
            r = self.run(['umount', self.mnt])
            if r.returncode != 0:
                problems.append('umount %s: %s' % (self.mnt, r.stderr.strip()))
                self.run(['umount', '-l', self.mnt])
        deadline = time.monotonic() + 10
        for pid in pids:
            while zctest.pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            if zctest.pid_alive(pid):
                problems.append('daemon %d did not exit after unmount' % pid)
                os.kill(pid, 9)
        return problems

    def _remove(self):
        if self.holder is not None:
            self.holder.kill()
            self.holder.wait()
        shutil.rmtree(self.base, ignore_errors=True)

    def __exit__(self, exc_type, exc, tb):
        try:
            problems = self.unmount()
        finally:
            self._remove()
        if exc_type is None:
            assert not problems, '; '.join(problems)
        return False


def mount_flags(entry):
    return set(entry['opts'].split(','))


def super_flags(entry):
    return set(entry['super'].split(','))


def check_serves(ns):
    """Write through the mount, read back there and in SOURCE."""
    write_file(ns.path('f'), b'through the mount')
    assert read_file(ns.path('f')) == b'through the mount'
    assert read_file(J(ns.src, 'f')) == b'through the mount'
    write_file(J(ns.src, 'g'), b'from SOURCE')
    assert sorted(os.listdir(ns.path())) == ['f', 'g']
    assert read_file(ns.path('g')) == b'from SOURCE'


def statvfs_flags(ns):
    return os.statvfs(ns.path()).f_flag


# ------------------------------------------------------- mount -t, fstab, ro

GENERIC = 'noatime,nosuid,nodev,allow_other'


def check_generic(ns, entry):
    """What 'defaults,noatime,nosuid,nodev,allow_other' must give."""
    assert entry['fstype'] == 'fuse.zcfuse', entry
    assert zctest.unescape(entry['source']) == ns.src, entry
    assert {'rw', 'nosuid', 'nodev', 'noatime'} <= mount_flags(entry), entry
    assert {'allow_other', 'default_permissions'} <= super_flags(entry), entry
    flags = statvfs_flags(ns)
    assert flags & os.ST_NOSUID and flags & os.ST_NODEV and flags & os.ST_NOATIME, flags
    assert not flags & os.ST_RDONLY, flags
    check_serves(ns)
    # allow_other: another user reads it too.
    r = ns.run(['cat', J(ns.mnt, 'f')], user=nobody())
    assert r.returncode == 0 and r.stdout == 'through the mount', r


def test_mount_type():
    with HelperNamespace() as ns:
        entry = ns.mounted(['-t', 'fuse.zcfuse', ns.src, ns.mnt, '-o', GENERIC])
        check_generic(ns, entry)


def test_fstab_line():
    with HelperNamespace() as ns:
        fstab = J(ns.base, 'fstab')
        with open(fstab, 'w') as f:
            f.write('# a test fstab\n%s %s fuse.zcfuse defaults,%s 0 0\n'
                    % (ns.src, ns.mnt, GENERIC))
        entry = ns.mounted(['-T', fstab, ns.mnt])
        check_generic(ns, entry)


def test_ro():
    with HelperNamespace() as ns:
        write_file(J(ns.src, 'f'), b'kept')
        entry = ns.mounted(['-t', 'fuse.zcfuse', ns.src, ns.mnt, '-o', 'ro'])
        assert 'ro' in mount_flags(entry) and 'ro' in super_flags(entry), entry
        assert statvfs_flags(ns) & os.ST_RDONLY
        assert read_file(ns.path('f')) == b'kept'
        assert zctest.attempt(write_file, ns.path('f'), b'x') == zctest.Err(errno.EROFS)
        assert zctest.attempt(os.mkdir, ns.path('d')) == zctest.Err(errno.EROFS)
        assert read_file(J(ns.src, 'f')) == b'kept'


# ------------------------------------------------------------ dev, suid, exec

def setuid_copy_of_id(src):
    """SOURCE/id: id(1) setuid root; run as nobody, 'id -u' prints 0 when honoured."""
    shutil.copy('/usr/bin/id', J(src, 'id'))
    os.chown(J(src, 'id'), 0, 0)
    os.chmod(J(src, 'id'), 0o4755)
    os.mknod(J(src, 'null'), 0o666 | 0o020000, os.makedev(1, 3))


@pytest.mark.parametrize('opts,honoured', [
    ('allow_other', True),             # mount.fuse3 adds dev,suid
    ('allow_other,dev,suid', True),
    ('allow_other,nosuid,nodev', False),
], ids=['default', 'dev-suid', 'nosuid-nodev'])
def test_dev_suid(opts, honoured):
    with HelperNamespace() as ns:
        setuid_copy_of_id(ns.src)
        entry = ns.mounted(['-t', 'fuse.zcfuse', ns.src, ns.mnt, '-o', opts])
        flags = statvfs_flags(ns)
        assert ('nosuid' in mount_flags(entry)) == (not honoured), entry
        assert ('nodev' in mount_flags(entry)) == (not honoured), entry
        assert bool(flags & os.ST_NOSUID) == (not honoured), flags
        assert bool(flags & os.ST_NODEV) == (not honoured), flags
        uid, gid = nobody()
        r = ns.run([J(ns.mnt, 'id'), '-u'], user=(uid, gid))
        assert r.returncode == 0, r
        assert r.stdout.strip() == ('0' if honoured else str(uid)), r.stdout
        # A device node: opened by the kernel with dev, refused with nodev.
        got = zctest.attempt(write_file, ns.path('null'), b'discarded')
        assert got == (None if honoured else zctest.Err(errno.EACCES)), got


def test_noexec():
    with HelperNamespace() as ns:
        setuid_copy_of_id(ns.src)
        entry = ns.mounted(['-t', 'fuse.zcfuse', ns.src, ns.mnt, '-o', 'noexec'])
        assert 'noexec' in mount_flags(entry), entry
        assert statvfs_flags(ns) & os.ST_NOEXEC
        r = ns.run([J(ns.mnt, 'id'), '-u'])
        assert r.returncode != 0 and 'Permission denied' in r.stderr, r


# ------------------------------------------------------------------- remount

def test_remount_ro_rw():
    with HelperNamespace() as ns:
        entry = ns.mounted(['-t', 'fuse.zcfuse', ns.src, ns.mnt, '-o', GENERIC])
        daemon = zctest.pids_with_arg(ns.mnt)
        write_file(ns.path('f'), b'before')

        r = ns.mount(['-o', 'remount,ro', ns.mnt])
        assert r.returncode == 0 and r.stderr == '', r
        entry = ns.entry()
        assert len(ns.entries()) == 1, ns.entries()
        # ro on the mount and its super block; the other flags stay.
        assert {'ro', 'nosuid', 'nodev', 'noatime'} <= mount_flags(entry), entry
        assert 'ro' in super_flags(entry), entry
        assert statvfs_flags(ns) & os.ST_RDONLY
        assert zctest.attempt(write_file, ns.path('f'), b'x') == zctest.Err(errno.EROFS)
        assert read_file(ns.path('f')) == b'before'
        # The same daemon serves on; remount started none.
        assert zctest.pids_with_arg(ns.mnt) == daemon

        r = ns.mount(['-o', 'remount,rw', ns.mnt])
        assert r.returncode == 0 and r.stderr == '', r
        entry = ns.entry()
        assert 'rw' in mount_flags(entry) and 'rw' in super_flags(entry), entry
        assert {'nosuid', 'nodev', 'noatime'} <= mount_flags(entry), entry
        write_file(ns.path('f'), b'after')
        assert read_file(J(ns.src, 'f')) == b'after'
        assert zctest.pids_with_arg(ns.mnt) == daemon

        # The per-mount flags change too, as on other file systems.
        r = ns.mount(['-o', 'remount,exec,suid,strictatime', ns.mnt])
        assert r.returncode == 0 and r.stderr == '', r
        flags = mount_flags(ns.entry())
        assert not flags & {'nosuid', 'noatime', 'relatime'}, flags
        assert 'nodev' in flags, flags


def test_remount_ro_busy():
    with HelperNamespace() as ns:
        ns.mounted(['-t', 'fuse.zcfuse', ns.src, ns.mnt])
        fd = os.open(ns.path('open'), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            r = ns.mount(['-o', 'remount,ro', ns.mnt])
        finally:
            os.close(fd)
        assert r.returncode != 0, r
        line = one_line(r.stderr, 'remount,ro with a file open for writing')
        assert line.startswith('zcfuse: ') and 'open for writing' in line, line
        assert 'rw' in mount_flags(ns.entry())
        write_file(ns.path('open'), b'still writable')


def test_blobstore_type_and_remount():
    """An example program of the library: type fuse.blobstore runs it, and
    its mount is of that type, so that mount(8) finds it again to remount."""
    with HelperNamespace() as ns:
        store = J(ns.base, 'store.blob')
        entry = ns.mounted(['-t', 'fuse.blobstore', store, ns.mnt, '-o', 'nosuid,nodev'])
        assert entry['fstype'] == 'fuse.blobstore', entry
        assert zctest.unescape(entry['source']) == store, entry
        write_file(ns.path('f'), b'in the store')
        r = ns.mount(['-o', 'remount,ro', ns.mnt])
        assert r.returncode == 0 and r.stderr == '', r
        assert {'ro', 'nosuid', 'nodev'} <= mount_flags(ns.entry())
        assert zctest.attempt(write_file, ns.path('f'), b'x') == zctest.Err(errno.EROFS)
        r = ns.mount(['-o', 'remount,rw', ns.mnt])
        assert r.returncode == 0 and r.stderr == '', r
        write_file(ns.path('g'), b'after')
        assert read_file(ns.path('f')) == b'in the store'


# --------------------------------------------------------------- bad options

@pytest.mark.parametrize('opt,named', [
    ('bogus_option', "'bogus_option'"),
    ('allow_other,bogus_key=value', "'bogus_key=value'"),
], ids=['unknown', 'unknown-key-value'])
def test_mount_bad_option(opt, named):
    with HelperNamespace() as ns:
        r = ns.mount(['-t', 'fuse.zcfuse', ns.src, ns.mnt, '-o', opt])
        assert r.returncode != 0, r
        line = one_line(r.stderr, 'mount -o %s' % opt)
        assert line.startswith('zcfuse: unknown option ') and named in line, line
        assert ns.entry() is None
        assert zctest.pids_with_arg(ns.mnt) == []


# ------------------------------------------ the options given to the programs

def mounted_flags(m):
    return mount_flags(zctest.mount_entries(m.mnt)[-1])


@pytest.mark.parametrize('opts,present,absent', [
    ([], {'nosuid', 'nodev', 'relatime'}, {'noexec'}),
    (['suid', 'dev'], {'relatime'}, {'nosuid', 'nodev'}),
    (['noexec', 'noatime', 'nodiratime'], {'noexec', 'noatime', 'nodiratime'}, {'relatime'}),
    (['noatime', 'strictatime'], set(), {'noatime', 'relatime'}),
    (['strictatime', 'relatime'], {'relatime'}, {'noatime'}),
], ids=['default', 'suid-dev', 'noexec-noatime-nodiratime', 'strictatime', 'relatime-last'])
def test_direct_mount_flags(opts, present, absent):
    with zctest.Mount(opts=opts) as m:
        flags = mounted_flags(m)
        assert present <= flags and not absent & flags, flags
        write_file(J(m.mnt, 'f'), b'x')
        assert read_file(J(m.src, 'f')) == b'x'


FSTAB_WORDS = ['defaults', 'auto', 'noauto', 'user', 'users', 'nouser', 'nofail', '_netdev',
               'x-systemd.automount', 'x-systemd.device-timeout=10', 'comment=systemd.x',
               'user=alice', 'rw', 'async', 'atime', 'diratime', 'exec']


@pytest.mark.parametrize('backend', ['zcfuse', 'memfs', 'blobstore'])
def test_fstab_words_and_names(backend):
    """Every program of the library takes fstab's words, fsname= and subtype=."""
    opts = FSTAB_WORDS + ['fsname=my\\,store', 'subtype=mine', 'sync', 'noatime']
    with zctest.Mount(backend=backend, opts=opts) as m:
        entry = zctest.mount_entries(m.mnt)[-1]
        assert entry['fstype'] == 'fuse.mine', entry
        assert zctest.unescape(entry['source']) == 'my,store', entry
        assert 'noatime' in mount_flags(entry) and 'sync' in super_flags(entry), entry
        write_file(J(m.mnt, 'f'), b'served')
        assert read_file(J(m.mnt, 'f')) == b'served'


def run_program(args, user=None, env=None):
    r = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=20, user=user and user[0], group=user and user[1],
                       extra_groups=[] if user else None, env=env, cwd='/')
    return r.returncode, r.stdout, r.stderr


@pytest.mark.parametrize('backend', ['zcfuse', 'memfs', 'blobstore'])
def test_direct_remount(backend):
    """BIN ... MOUNTPOINT -o remount,... changes the mount and serves nothing itself."""
    with zctest.Mount(backend=backend, opts=['allow_other']) as m:
        write_file(J(m.mnt, 'f'), b'before')
        head = {'zcfuse': [m.src], 'memfs': [], 'blobstore': [m.store]}[backend]
        status, out, err = run_program([m.binary] + head + [m.mnt, '-o', 'remount,ro,noexec'])
        assert (status, err) == (0, ''), (status, err)
        entry = zctest.mount_entries(m.mnt)[-1]
        assert len(zctest.mount_entries(m.mnt)) == 1
        assert {'ro', 'noexec', 'nosuid', 'nodev'} <= mount_flags(entry), entry
        assert zctest.attempt(write_file, J(m.mnt, 'f'), b'x') == zctest.Err(errno.EROFS)
        assert read_file(J(m.mnt, 'f')) == b'before'
        status, out, err = run_program([m.binary] + head + [m.mnt, '-o', 'remount,rw'])
        assert (status, err) == (0, ''), (status, err)
        assert not {'ro', 'noexec'} & mounted_flags(m)
        write_file(J(m.mnt, 'f'), b'after')
        assert read_file(J(m.mnt, 'f')) == b'after'
        assert m.proc.poll() is None


def test_remount_refused():
    """Remount of what is not a FUSE mount, and by a user: one line, nothing changed."""
    with zctest.Mount() as m:
        status, out, err = run_program([m.binary, m.src, m.src, '-o', 'remount,ro'])
        assert status == 1, (status, err)
        line = one_line(err, 'remount of a plain directory')
        assert line == "zcfuse: cannot remount '%s': it is not a FUSE mount" % m.src, line
    with zctest.UserMount(['rw', 'suid', 'dev']) as um:
        # fusermount3 mounts a user's file system nosuid,nodev whatever is asked.
        assert {'nosuid', 'nodev'} <= mount_flags(zctest.mount_entries(um.mnt)[-1])
        binary = J(os.path.dirname(um.log_file), 'bin', 'zcfuse')
        env = dict(os.environ, LD_LIBRARY_PATH=os.path.dirname(binary))
        status, out, err = run_program([binary, um.src, um.mnt, '-o', 'remount,ro'],
                                       user=(um.uid, um.gid), env=env)
        assert status == 1, (status, err)
        line = one_line(err, 'remount by a user')
        assert line == ("zcfuse: cannot remount '%s': only root can (fusermount3 cannot "
                        "remount)" % um.mnt), line
        assert 'rw' in mount_flags(zctest.mount_entries(um.mnt)[-1])
        # Flags libfuse cannot pass need the right to change a mount.
        other = J(um.base, 'other')
        os.mkdir(other)
        os.chown(other, um.uid, um.gid)
        status, out, err = run_program([binary, um.src, other, '-o', 'strictatime'],
                                       user=(um.uid, um.gid), env=env)
        assert status == 2, (status, err)
        line = one_line(err, 'strictatime by a user')
        assert line == ("zcfuse: option 'strictatime' needs CAP_SYS_ADMIN (fusermount3 "
                        "cannot set it)"), line
        assert not zctest.is_mounted(other)
