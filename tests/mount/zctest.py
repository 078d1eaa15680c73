"""Harness for the zcfuse mount tests.

Mount starts the daemon in the foreground on fresh temporary directories,
waits for the mount to appear in /proc/self/mountinfo, and in every outcome
unmounts it and reaps the daemon, failing when the daemon crashed, exited
non-zero, or printed error lines.  What it shares with the benchmark (the
mountinfo parser, the counters, the daemon's start and stop) is in
tests/lib/zcmount.py.  Watchdog bounds a test: when it expires it
kills every daemon this process started, which aborts the FUSE connection so
that a request stuck in the kernel returns, and then raises in the main
thread.

The daemon is one of the backends built on libzcfuse: the passthrough
daemon zcfuse (SOURCE MOUNTPOINT), or an example program: memfs
(MOUNTPOINT, data in memory) or blobstore (BACKING_FILE MOUNTPOINT, data in
one file).  Only zcfuse has a SOURCE directory that tests can look into;
for the others Mount.src is None and Mount.has_source is False.

Environment:
  ZCFUSE_BACKEND        zcfuse (default), memfs or blobstore
  ZCFUSE_STORE          file (default) or rados: where blobstore keeps a store;
                        rados starts a one-node Ceph cluster for the session
                        (tests/lib/cephcluster.py) and names stores
                        rados://POOL/NAME
  ZCFUSE_BIN            its executable (default: this tree's build directory)
  ZCFUSE_MOUNT_OPTS     comma separated -o options for every mount
  ZCFUSE_TRANSPORT      'default' to mount as users do: FUSE over io_uring where
                        the kernel allows it. Otherwise a mount whose options
                        name no transport gets noio_uring, so that the suites
                        test /dev/fuse whatever the machine allows.
  ZCFUSE_TEST_TMPDIR    where the temporary directories go (default: tempfile's)
  ZCFUSE_TEST_TIMEOUT   default per-test limit in seconds (default 60)
  ZCFUSE_TEST_KEEP      if set, keep the temporary directories
"""

import atexit
import ctypes
import errno
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# What the mount tests share with the benchmark: tests/lib.
_LIB = os.path.join(TOP, 'tests', 'lib')
if _LIB not in sys.path:
    sys.path.insert(0, _LIB)

import zcmount  # noqa: E402

# Used by the tests as zctest.NAME.
DaemonError = zcmount.DaemonError
TimeLimitExceeded = zcmount.TimeLimitExceeded
unescape = zcmount.unescape
mount_entries = zcmount.mount_entries
is_mounted = zcmount.is_mounted
wait_until = zcmount.wait_until
fusermount_unmount = zcmount.fusermount_unmount
parse_counters = zcmount.parse_counters
counters = zcmount.counters
backend_counters = zcmount.backend_counters
counter_delta = zcmount.counter_delta

BACKEND_BINS = {
    'zcfuse': os.path.join(TOP, 'build', 'daemon', 'zcfuse'),
    'memfs': os.path.join(TOP, 'build', 'examples', 'memfs'),
    'blobstore': os.path.join(TOP, 'build', 'examples', 'blobstore'),
}
DEFAULT_BIN = BACKEND_BINS['zcfuse']

# What a backend does not implement, so tests that need it are skipped with
# that reason (pytest.mark.needs('feature') in the tests).
BACKEND_LACKS = {
    'zcfuse': {},
    'memfs': {
        'xattr': 'memfs keeps no extended attributes',
        'seek_hole': 'memfs files have no holes (SEEK_DATA/SEEK_HOLE)',
        'punch_frees_blocks': 'memfs keeps a file\'s buffer when a hole is punched',
    },
    'blobstore': {},
}
# Read at every mount: test_valgrind.py raises them.
MOUNT_TIMEOUT = zcmount.MOUNT_TIMEOUT
EXIT_TIMEOUT = zcmount.EXIT_TIMEOUT

# Lines on the daemon's stderr that fail a test unless the test allows them.
ERROR_RE = re.compile(r'error|warning|fatal|abort|assert|sanitizer|segmentation|'
                      r'leak|panic|traceback|\bbug\b|corrupt|overflow', re.IGNORECASE)


def current_backend():
    """The backend under test: zcfuse, memfs or blobstore (ZCFUSE_BACKEND)."""
    name = os.environ.get('ZCFUSE_BACKEND') or 'zcfuse'
    if name not in BACKEND_BINS:
        raise ValueError('ZCFUSE_BACKEND=%s: expected one of %s'
                         % (name, ', '.join(sorted(BACKEND_BINS))))
    return name


def backend_bin(name):
    """The executable of backend name (zcfuse, memfs, blobstore): ZCFUSE_<NAME>_BIN,
    else the one built beside ZCFUSE_BIN (a sanitizer build's examples for its
    daemon), else this tree's build directory."""
    given = os.environ.get('ZCFUSE_%s_BIN' % name.upper())
    if given:
        return given
    daemon = os.environ.get('ZCFUSE_BIN')
    if daemon:
        if name == current_backend():
            return daemon
        build = os.path.dirname(os.path.dirname(os.path.realpath(daemon)))
        beside = os.path.join(build, 'daemon' if name == 'zcfuse' else 'examples', name)
        if os.access(beside, os.X_OK):
            return beside
    return BACKEND_BINS[name]


def store_kind():
    """Where blobstore keeps a store: file (default) or rados (ZCFUSE_STORE)."""
    kind = os.environ.get('ZCFUSE_STORE') or 'file'
    if kind not in ('file', 'rados'):
        raise ValueError('ZCFUSE_STORE=%s: expected file or rados' % kind)
    return kind


# The cluster of a session with ZCFUSE_STORE=rados (conftest.py starts it).
ceph_cluster = None


def new_store_name(base):
    """A fresh store for a mount whose temporary directory is base."""
    if store_kind() == 'rados':
        return 'rados://%s/%s' % (ceph_cluster.pool, os.path.basename(base))
    return os.path.join(base, 'store.blob')


def zcfuse_bin():
    return os.environ.get('ZCFUSE_BIN') or BACKEND_BINS[current_backend()]


def backend_lacks(feature, name=None):
    """Why the backend lacks feature, or None when it has it."""
    return BACKEND_LACKS[name or current_backend()].get(feature)


def env_mount_opts():
    raw = os.environ.get('ZCFUSE_MOUNT_OPTS', '')
    return [o.strip() for o in raw.split(',') if o.strip()]


def env_backend_opts():
    raw = os.environ.get('ZCFUSE_BACKEND_OPTS', '')
    return [o.strip() for o in raw.split(',') if o.strip()]


def tmp_root():
    return os.path.realpath(os.environ.get('ZCFUSE_TEST_TMPDIR') or tempfile.gettempdir())


def default_test_timeout():
    return float(os.environ.get('ZCFUSE_TEST_TIMEOUT', '60'))


def require_fuse():
    """Skip when FUSE cannot work here; fail when the daemon is missing."""
    import pytest
    if not os.path.exists('/dev/fuse'):
        pytest.skip('/dev/fuse does not exist')
    if shutil.which('fusermount3') is None:
        pytest.skip('fusermount3 is not installed')
    if not os.access(zcfuse_bin(), os.X_OK):
        pytest.fail('daemon %s is not an executable (set ZCFUSE_BIN)' % zcfuse_bin())


# ------------------------------------------------------------- FUSE io_uring

URING_PARAM = '/sys/module/fuse/parameters/enable_uring'


def wants_uring(opts):
    """True when the -o options ask for the io_uring transport."""
    return any(o.split('=', 1)[0] == 'io_uring' for o in opts)


def with_transport(opts):
    """opts, plus noio_uring where they name no transport, and nopassthrough
    where they name no data path, so that a suite tests the daemon's own
    /dev/fuse data path unless it asks for another; ZCFUSE_TRANSPORT=default
    leaves the daemon's defaults (the ring and kernel passthrough where the
    kernel allows them)."""
    opts = list(opts)
    if os.environ.get('ZCFUSE_TRANSPORT') == 'default':
        return opts
    names = [o.split('=', 1)[0] for o in opts]
    if not any(n in ('io_uring', 'noio_uring') for n in names):
        opts.append('noio_uring')
    if not any(n in ('passthrough', 'nopassthrough') for n in names):
        opts.append('nopassthrough')
    return opts


class UringParam:
    """Set the fuse module's enable_uring parameter; restore it on exit.

    skip_reason says why it could not be set (then nothing changed).
    """

    def __init__(self, enable=True):
        self.value = 'Y' if enable else 'N'
        self.old = None
        self.skip_reason = None

    def __enter__(self):
        try:
            with open(URING_PARAM) as f:
                old = f.read().strip()
        except FileNotFoundError:
            self.skip_reason = ('this kernel has no FUSE over io_uring (%s does not exist)'
                                % URING_PARAM)
            return self
        except OSError as e:
            self.skip_reason = 'cannot read %s: %s' % (URING_PARAM, e.strerror)
            return self
        try:
            with open(URING_PARAM, 'w') as f:
                f.write(self.value)
        except OSError as e:
            self.skip_reason = 'cannot set %s to %s: %s (needs root)' % (URING_PARAM, self.value,
                                                                         e.strerror)
            return self
        self.old = old
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            with open(URING_PARAM, 'w') as f:
                f.write(self.old)
            self.old = None
        return False


def drop_caches(what=3):
    """Write back dirty data and drop clean caches (what: 1 pages, 2 names, 3 both)."""
    os.sync()
    with open('/proc/sys/vm/drop_caches', 'w') as f:
        f.write('%d\n' % what)


def possible_cpus():
    """How many CPUs the kernel counts as possible: one ring queue each."""
    with open('/sys/devices/system/cpu/possible') as f:
        text = f.read().strip()
    count = 0
    for part in text.split(','):
        lo, _, hi = part.partition('-')
        count += (int(hi) if hi else int(lo)) - int(lo) + 1
    return count


def _system_libraries():
    """{soname: real path} of the libraries the loader finds by itself (ldconfig's cache)."""
    ldconfig = shutil.which('ldconfig') or '/sbin/ldconfig'
    r = subprocess.run([ldconfig, '-p'], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                       text=True)
    found = {}
    for line in r.stdout.splitlines():
        m = re.match(r'\s*(\S+) \(.*\) => (\S+)$', line)
        if m:
            found.setdefault(m.group(1), set()).add(os.path.realpath(m.group(2)))
    return found


def copy_program(binary, dest):
    """Copy binary, and the libraries it loads that the loader would not find
    without the binary's own RUNPATH (libzcfuse from the build tree), into
    the directory dest. Returns (the copy's path, the environment to run it
    with). A user who cannot reach the build tree (a clone in root's 0700
    home) can run the copy."""
    r = subprocess.run(['ldd', binary], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    if r.returncode != 0:
        raise AssertionError('ldd %s: %s' % (binary, r.stdout))
    system = _system_libraries()
    copied = False
    for line in r.stdout.splitlines():
        m = re.match(r'\s*(\S+) => (/\S+) \(', line)
        if not m or os.path.realpath(m.group(2)) in system.get(m.group(1), ()):
            continue
        shutil.copy(m.group(2), os.path.join(dest, m.group(1)))
        os.chmod(os.path.join(dest, m.group(1)), 0o755)
        copied = True
    path = os.path.join(dest, os.path.basename(binary))
    shutil.copy(binary, path)
    os.chmod(path, 0o755)
    env = dict(os.environ)
    if copied:
        # Searched before the copy's RUNPATH, which leads nowhere from dest.
        old = env.get('LD_LIBRARY_PATH')
        env['LD_LIBRARY_PATH'] = dest + (':' + old if old else '')
    return path, env


def user_can(uid, gid, test_flag, path):
    """Whether uid/gid, without supplementary groups, passes test(1)'s test_flag on path."""
    return subprocess.run(['test', test_flag, path], user=uid, group=gid, extra_groups=[],
                          cwd='/').returncode == 0


def user_python(uid, gid):
    """A python3 that uid can run: this one, or Debian's where this one lies
    out of its reach (a virtual environment in root's home)."""
    if user_can(uid, gid, '-x', sys.executable) or not os.path.exists('/usr/bin/python3'):
        return sys.executable
    return '/usr/bin/python3'


class UserMount(zcmount.FuseDaemon):
    """The daemon run by the unprivileged user "nobody" (mounting through
    fusermount3) on a fresh SOURCE and MOUNTPOINT it owns. Skips the test
    where that cannot be done. /dev/fuse, 0600 on some machines, is opened
    to users meanwhile and put back after. The daemon runs from a copy in
    the test's temporary directory (copy_program), since the user may not
    reach the build tree. Attributes: mnt, src, uid, gid, proc, python (a
    python3 the user can run); log() is what the daemon printed (kept after
    the block, when everything else is removed)."""

    def __init__(self, opts):
        super().__init__()
        self.opts = opts
        self.base = None
        self.dev_mode = None
        self.saved_log = None

    def __enter__(self):
        import pwd
        import pytest
        require_fuse()
        try:
            user = pwd.getpwnam('nobody')  # fusermount3 wants the user in the database
        except KeyError:
            pytest.skip('no user "nobody" to mount as')
        self.uid, self.gid = user.pw_uid, user.pw_gid
        mode = os.stat('/dev/fuse').st_mode & 0o7777
        if mode & 0o006 != 0o006:
            try:
                os.chmod('/dev/fuse', mode | 0o666)
            except OSError as e:
                pytest.skip('/dev/fuse is mode %o and cannot be opened to users: %s'
                            % (mode, e))
        self.dev_mode = mode
        try:
            self.base = tempfile.mkdtemp(prefix='zcfuse-test-', dir=tmp_root())
            os.chmod(self.base, 0o755)
            self.log_file = os.path.join(self.base, 'daemon.log')
            self.src, self.mnt = os.path.join(self.base, 'src'), os.path.join(self.base, 'mnt')
            for d in (self.src, self.mnt):
                os.mkdir(d)
                os.chown(d, self.uid, self.gid)
            bindir = os.path.join(self.base, 'bin')
            os.mkdir(bindir)
            os.chmod(bindir, 0o755)
            binary, env = copy_program(zcfuse_bin(), bindir)
            self.python = user_python(self.uid, self.gid)
            self.spawn([binary, self.src, self.mnt, '-f', '-o',
                        ','.join(with_transport(self.opts))],
                       user=self.uid, group=self.gid, extra_groups=[], cwd='/', env=env)
            try:
                self.wait_mounted(10)
            except DaemonError as e:
                raise DaemonError('the unprivileged mount: %s:\n%s' % (e, self.log())) from None
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def log(self):
        return self.saved_log if self.saved_log is not None else self.log_text()

    def run(self, args, timeout=60):
        """Run args as the user (only it can look into its mount)."""
        return subprocess.run(args, user=self.uid, group=self.gid, extra_groups=[],
                              capture_output=True, text=True, timeout=timeout, cwd='/')

    def __exit__(self, exc_type, exc, tb):
        try:
            self.stop()
        finally:
            if self.dev_mode is not None:
                os.chmod('/dev/fuse', self.dev_mode)
            if self.base:
                self.saved_log = self.log()
                shutil.rmtree(self.base, ignore_errors=True)
        return False


# ------------------------------------------------------------ process scans

def pids_with_arg(arg):
    """PIDs (other than ours) whose command line has arg as one argument."""
    arg = arg.encode()
    found = []
    for name in os.listdir('/proc'):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open('/proc/%s/cmdline' % name, 'rb') as f:
                args = f.read().split(b'\0')
        except OSError:
            continue
        if arg in args:
            found.append(int(name))
    return found


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            data = f.read()
    except OSError:
        return False
    state = data.rpartition(')')[2].split()[0]
    return state not in ('Z', 'X')


def kernel_stack(pid):
    """The kernel functions pid's threads are in, innermost first ([] when gone)."""
    frames = []
    try:
        tids = os.listdir('/proc/%d/task' % pid)
    except OSError:
        return frames
    for tid in tids:
        try:
            with open('/proc/%d/task/%s/stack' % (pid, tid)) as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        frames += [line.split()[-1].split('+')[0] for line in lines if line.strip()]
    return frames


def waits_in_fuse(pid):
    """The kernel frames when pid waits in the kernel's FUSE code, else None."""
    frames = kernel_stack(pid)
    if any('fuse' in f or f == 'request_wait_answer' for f in frames):
        return frames
    return None


# ------------------------------------------------------------------- mounts

_active = set()
_lock = threading.Lock()


class Mount(zcmount.FuseDaemon):
    """A zcfuse mount on temporary directories.

    Attributes after entering: base, src (SOURCE; None for a backend without
    one), mnt (MOUNTPOINT), ref (a plain directory on the same file system as
    src), store (blobstore's backing file), proc (the daemon).

    backend: zcfuse, memfs or blobstore (default: ZCFUSE_BACKEND); binary:
    its executable (default: ZCFUSE_BIN or this tree's build).  store: the
    backing file for blobstore (default: a fresh one under base), so that a
    test can mount the same store again.

    opts: -o options (default: ZCFUSE_MOUNT_OPTS); extra_opts are appended.
    args: further command line arguments (for example ['-s']).
    populate: called with src before the daemon starts (zcfuse only).
    allowed_stderr: regexes for stderr lines that are not errors.
    check_stderr: False to ignore stderr (debug output).
    expected_exit: the daemon's expected exit status (negative: signal).
    foreground: False to start without -f and expect the command to return
    after the mount exists.
    add_f: False to leave -f out while still expecting a foreground daemon
    (for -d, which implies it).
    """

    def __init__(self, opts=None, extra_opts=(), args=(), populate=None,
                 allowed_stderr=(), check_stderr=True, expected_exit=0, foreground=True,
                 add_f=True, backend=None, binary=None, store=None, umask=0o077):
        super().__init__()
        self.backend = backend or current_backend()
        self.binary = binary or (zcfuse_bin() if backend is None else backend_bin(backend))
        self.has_source = self.backend == 'zcfuse'
        self.store = store
        if populate is not None and not self.has_source:
            raise ValueError('populate needs a SOURCE directory (zcfuse)')
        self.src = None
        self.opts = with_transport(list(env_mount_opts() if opts is None else opts)
                                   + list(extra_opts))
        # Options of the passthrough daemon alone, for every mount of a suite
        # (ZCFUSE_BACKEND_OPTS, e.g. max_fds=64), also where a test sets opts.
        if self.backend == 'zcfuse':
            self.opts += [o for o in env_backend_opts() if o not in self.opts]
        self.args = list(args)
        self.populate = populate
        self.allowed_stderr = [re.compile(p) for p in allowed_stderr]
        self.check_stderr = check_stderr
        self.expected_exit = expected_exit
        self.foreground = foreground
        self.add_f = add_f
        # The daemon's umask, unlike any caller's: it must never matter.
        self.umask = umask
        self.bg_pid = None
        self.aborted = None
        self.base = None

    # The command line, without -f when running in the background.
    def command(self):
        if self.backend == 'zcfuse':
            cmd = [self.binary, self.src, self.mnt]
        elif self.backend == 'blobstore':
            cmd = [self.binary, self.store, self.mnt]
        else:
            cmd = [self.binary, self.mnt]
        if self.foreground and self.add_f:
            cmd.append('-f')
        cmd += self.args
        if self.opts:
            cmd += ['-o', ','.join(self.opts)]
        return cmd

    def make_dirs(self):
        self.base = tempfile.mkdtemp(prefix='zcfuse-test-', dir=tmp_root())
        os.chmod(self.base, 0o755)
        self.mnt = os.path.join(self.base, 'mnt')
        self.ref = os.path.join(self.base, 'ref')
        dirs = [self.mnt, self.ref]
        if self.has_source:
            self.src = os.path.join(self.base, 'src')
            dirs.append(self.src)
        if self.backend == 'blobstore' and self.store is None:
            self.store = new_store_name(self.base)
        for d in dirs:
            os.mkdir(d)
            os.chmod(d, 0o755)
        self.log_file = os.path.join(self.base, 'daemon.log')

    def __enter__(self):
        self.make_dirs()
        try:
            if self.populate:
                self.populate(self.src)
            self.start()
        except BaseException:
            self._cleanup_quietly()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        self.stop(raise_errors=exc_type is None)
        return False

    def start(self):
        with _lock:
            _active.add(self)
        self.spawn(self.command(), umask=self.umask)
        if self.foreground:
            try:
                self.wait_mounted(MOUNT_TIMEOUT)
            except DaemonError as e:
                raise DaemonError('%s:\n%s' % (e, self.stderr_text())) from None
        else:
            self._wait_daemonized()

    def _wait_daemonized(self):
        try:
            rc = self.proc.wait(timeout=MOUNT_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise DaemonError('command without -f did not return within %.0f s:\n%s'
                              % (MOUNT_TIMEOUT, self.stderr_text()))
        # Find the daemon before judging, so that cleanup can reach it.
        pids = pids_with_arg(self.mnt)
        if pids:
            self.bg_pid = pids[0]
        if rc != 0:
            raise DaemonError('command without -f exited with status %d:\n%s'
                              % (rc, self.stderr_text()))
        if not is_mounted(self.mnt):
            raise DaemonError('command without -f returned before the mount existed:\n%s'
                              % self.stderr_text())
        if len(pids) != 1:
            raise DaemonError('expected one daemon process for %s, found %r'
                              % (self.mnt, pids))

    def stderr_text(self):
        return self.log_text()

    def connection_id(self):
        """The FUSE connection number (the device minor) from mountinfo."""
        entries = mount_entries(self.mnt)
        if not entries:
            return None
        return entries[-1]['dev'].split(':')[1]

    def abort(self, reason):
        """Kill the daemon now (and abort the connection): unblocks waiters."""
        self.aborted = reason
        conn = self.connection_id()
        if conn is not None:
            try:
                with open('/sys/fs/fuse/connections/%s/abort' % conn, 'w') as f:
                    f.write('1')
            except OSError:
                pass
        for pid in (self.proc.pid if self.proc else None, self.bg_pid):
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    def settle_releases(self, timeout=1.0):
        """Wait (a little) until the daemon has seen a release for every open.

        The kernel sends RELEASE and RELEASEDIR after close() has returned,
        and drops what it has not delivered when the file system is
        unmounted; a test that closes a file and ends at once would race its
        own release against the unmount, and the daemon would keep (and the
        leak checker report) a handle nobody can release any more.
        """
        if self.proc is None or self.proc.poll() is not None or not is_mounted(self.mnt):
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                c = counters(self.mnt)
            except OSError:
                return
            opens = c.get('requests.OPEN', 0) + c.get('requests.CREATE', 0)
            if c.get('requests.OPENDIR', 0) <= c.get('requests.RELEASEDIR', 0) and \
                    opens <= c.get('requests.RELEASE', 0):
                return
            time.sleep(0.01)

    def unmount(self):
        """Unmount (plain, lazy as fallback); return a list of problems."""
        self.settle_releases()
        return super().unmount()

    def stop(self, raise_errors=True):
        """Unmount, reap the daemon, check its exit and stderr; raise
        DaemonError, or return the report when raise_errors is False."""
        with _alarm_blocked():
            report = self._stop()
        if report and raise_errors:
            raise DaemonError(report)
        return report

    def _stop(self):
        """The work of stop(); returns a failure report or None."""
        problems = self.unmount()
        hard = []
        if self.proc is not None and self.foreground:
            rc, hard = self.reap(EXIT_TIMEOUT)
            if self.aborted:
                hard.append('daemon killed: %s' % self.aborted)
            elif rc != self.expected_exit:
                if rc < 0:
                    hard.append('daemon died from signal %d (expected exit %d)'
                                % (-rc, self.expected_exit))
                else:
                    hard.append('daemon exited with status %d (expected %d)'
                                % (rc, self.expected_exit))
        elif self.bg_pid is not None:
            try:
                wait_until(lambda: not pid_alive(self.bg_pid), EXIT_TIMEOUT,
                           'background daemon %d exit after unmount' % self.bg_pid)
            except TimeLimitExceeded as e:
                hard.append(str(e))
                try:
                    os.kill(self.bg_pid, signal.SIGKILL)
                except OSError:
                    pass
            if self.aborted:
                hard.append('daemon killed: %s' % self.aborted)
        if self.check_stderr:
            bad = self.unexpected_stderr()
            if bad:
                hard.append('unexpected lines on the daemon\'s stderr:\n  ' + '\n  '.join(bad))
        with _lock:
            _active.discard(self)
        text = self.stderr_text()
        self.last_stderr = text  # for tests that look at it after unmount
        self._remove_dirs()
        if hard:
            return '\n'.join(hard + problems) + '\n--- daemon stderr ---\n' + text
        return None

    def unexpected_stderr(self):
        bad = []
        for line in self.stderr_text().splitlines():
            if not ERROR_RE.search(line):
                continue
            if any(p.search(line) for p in self.allowed_stderr):
                continue
            bad.append(line)
        return bad

    def _remove_dirs(self):
        if self.base is None or os.environ.get('ZCFUSE_TEST_KEEP'):
            return
        if self.mnt and is_mounted(self.mnt):
            return
        shutil.rmtree(self.base, ignore_errors=True)
        self.base = None

    def _cleanup_quietly(self):
        try:
            self.stop(raise_errors=False)
        except Exception:
            pass
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# Mounts belong to the process that made them: a forked child (a
# multiprocessing worker, say) that exits or is terminated must not unmount
# its parent's mounts.
_owner_pid = os.getpid()


def _cleanup_all():
    if os.getpid() != _owner_pid:
        return
    with _lock:
        mounts = list(_active)
    for m in mounts:
        if m.mnt and is_mounted(m.mnt):
            fusermount_unmount(m.mnt, lazy=True)
        m.abort('test process exiting')
        if m.proc is not None:
            try:
                m.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


atexit.register(_cleanup_all)


def _on_terminate(signum, frame):
    _cleanup_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


if threading.current_thread() is threading.main_thread():
    for _sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(_sig) == signal.SIG_DFL:
            signal.signal(_sig, _on_terminate)


# ----------------------------------------------------------------- watchdog

class _alarm_blocked:
    """Hold back SIGALRM (the watchdog's) in the main thread for a while."""

    def __enter__(self):
        self.main = threading.current_thread() is threading.main_thread()
        if self.main:
            self.old = signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])

    def __exit__(self, *exc):
        if self.main:
            signal.pthread_sigmask(signal.SIG_SETMASK, self.old)
        return False


class Watchdog:
    """Bound a block of code: on expiry kill the daemons, then raise.

    A FUSE request whose daemon does not answer blocks the caller in the
    kernel, and only a fatal signal ends that wait; killing the daemon,
    which aborts the connection, ends it too.  So on expiry the timer thread
    first kills every daemon of this process (the blocked call then fails
    with ENOTCONN or ECONNABORTED), and only if the block is still running
    GRACE seconds later (a hang outside FUSE) sends SIGALRM to the main
    thread, whose handler raises TimeLimitExceeded.  Raising at once could
    land the exception in the test runner's own code instead of the test.
    Leaving the block after expiry raises TimeLimitExceeded.
    """

    GRACE = 5.0

    def __init__(self, seconds, what='test'):
        self.seconds = seconds
        self.what = what
        self.fired = False
        self.raised = False
        self.timer = None
        self.old_handler = None
        self.in_main = False
        self.done = threading.Event()

    def message(self):
        return '%s exceeded its time limit of %.0f s' % (self.what, self.seconds)

    def _fire(self):
        self.fired = True
        with _lock:
            mounts = list(_active)
        for m in mounts:
            m.abort('watchdog: ' + self.message())
        if self.done.wait(self.GRACE) or not self.in_main:
            return
        signal.pthread_kill(threading.main_thread().ident, signal.SIGALRM)

    def _on_alarm(self, signum, frame):
        if self.fired and not self.raised:
            self.raised = True
            raise TimeLimitExceeded(self.message())

    def __enter__(self):
        self.in_main = threading.current_thread() is threading.main_thread()
        if self.in_main:
            self.old_handler = signal.signal(signal.SIGALRM, self._on_alarm)
        self.timer = threading.Timer(self.seconds, self._fire)
        self.timer.daemon = True
        self.timer.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.done.set()
        self.timer.cancel()
        self.timer.join()
        if self.in_main:
            signal.signal(signal.SIGALRM, self.old_handler or signal.SIG_DFL)
        if self.fired and not self.raised and exc_type is None:
            self.raised = True
            raise TimeLimitExceeded(self.message())
        return False


# ------------------------------------------------------ comparing outcomes

class Err:
    """An OSError outcome, compared by errno."""

    def __init__(self, code):
        self.errno = code

    def __eq__(self, other):
        return isinstance(other, Err) and other.errno == self.errno

    def __hash__(self):
        return hash(self.errno)

    def __repr__(self):
        return 'Err(%s)' % errno.errorcode.get(self.errno, self.errno)


def attempt(fn, *args, **kwargs):
    """fn(*args) or Err(errno) if it raised OSError."""
    try:
        return fn(*args, **kwargs)
    except OSError as e:
        return Err(e.errno)


def stat_key(st, with_size=True):
    """The stat fields a passthrough must carry: type and mode, nlink, owner, size."""
    key = [st.st_mode, st.st_nlink, st.st_uid, st.st_gid]
    if with_size and not stat.S_ISDIR(st.st_mode):
        key.append(st.st_size)
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        key.append(st.st_rdev)
    return tuple(key)


def stat_or_err(path, follow=False):
    r = attempt(os.stat, path, follow_symlinks=follow)
    return r if isinstance(r, Err) else stat_key(r)


def read_file(path):
    with open(path, 'rb') as f:
        return f.read()


def write_file(path, data, mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    finally:
        os.close(fd)


def first_difference(a, b):
    """Offset of the first differing byte of a and b, or None if equal."""
    if a == b:
        return None
    n = min(len(a), len(b))
    lo = 0
    step = 1 << 16
    while lo < n and a[lo:lo + step] == b[lo:lo + step]:
        lo += step
    for i in range(lo, min(lo + step, n)):
        if a[i] != b[i]:
            return i
    return n


def all_xattrs(path):
    """{name: value or Err} of path itself (links not followed)."""
    names = attempt(os.listxattr, path, follow_symlinks=False)
    if isinstance(names, Err):
        return names
    return {n: attempt(os.getxattr, path, n, follow_symlinks=False) for n in names}


def tree_snapshot(root):
    """{relative path: description} of everything under root, not following links."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            desc = {'stat': stat_key(st)}
            if stat.S_ISLNK(st.st_mode):
                desc['target'] = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                desc['data'] = read_file(path)
            xattrs = all_xattrs(path)
            if xattrs:
                desc['xattrs'] = xattrs
            snap[rel] = desc
    return snap


def assert_same_tree(a, b):
    """Assert that trees a and b hold the same names, types, modes, owners, data."""
    sa, sb = tree_snapshot(a), tree_snapshot(b)
    missing = sorted(set(sb) - set(sa))
    extra = sorted(set(sa) - set(sb))
    assert not missing and not extra, \
        'trees differ: only in %s: %r; only in %s: %r' % (b, missing, a, extra)
    for rel in sorted(sa):
        da, db = sa[rel], sb[rel]
        if da == db:
            continue
        for k in sorted(set(da) | set(db)):
            va, vb = da.get(k), db.get(k)
            if va == vb:
                continue
            if k == 'data':
                raise AssertionError('%s: contents differ (sizes %d, %d) at offset %s'
                                     % (rel, len(va), len(vb), first_difference(va, vb)))
            raise AssertionError('%s: %s differs: %r (%s) vs %r (%s)' % (rel, k, va, a, vb, b))


# ----------------------------------------------------------- ctypes calls

libc = ctypes.CDLL(None, use_errno=True)

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
FALLOC_FL_KEEP_SIZE = 1
FALLOC_FL_PUNCH_HOLE = 2
FALLOC_FL_ZERO_RANGE = 0x10
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2

libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                           ctypes.c_uint]
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]


class Timespec(ctypes.Structure):
    _fields_ = [('tv_sec', ctypes.c_long), ('tv_nsec', ctypes.c_long)]


libc.utimensat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(Timespec), ctypes.c_int]


def _check(ret, what):
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, '%s: %s' % (what, os.strerror(e)))


def renameat2(old, new, flags):
    _check(libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD, os.fsencode(new), flags),
           'renameat2')


def fallocate(fd, mode, offset, length):
    _check(libc.fallocate(fd, mode, offset, length), 'fallocate')


def punch_hole(fd, offset, length):
    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length)


STATX_MODE, STATX_MTIME, STATX_CTIME = 0x2, 0x40, 0x80


def statx_times(path, mask=STATX_MTIME | STATX_CTIME):
    """statx asking for mask alone, as stat -c %Y %Z does: the kernel answers
    from its cache unless one of those attributes was dropped. Returns
    (mode, mtime, ctime) with times in nanoseconds."""
    buf = ctypes.create_string_buffer(256)
    _check(libc.statx(AT_FDCWD, os.fsencode(path), AT_SYMLINK_NOFOLLOW, mask, buf), 'statx')
    sec = lambda off: (int.from_bytes(buf.raw[off:off + 8], 'little', signed=True) * 10**9 +
                       int.from_bytes(buf.raw[off + 8:off + 12], 'little'))
    return int.from_bytes(buf.raw[28:30], 'little'), sec(112), sec(96)


def utimensat(path, atime, mtime, follow=True):
    """atime, mtime: (sec, nsec) tuples, or UTIME_NOW / UTIME_OMIT."""
    ts = (Timespec * 2)()
    for i, t in enumerate((atime, mtime)):
        if t in (UTIME_NOW, UTIME_OMIT):
            ts[i].tv_sec, ts[i].tv_nsec = 0, t
        else:
            ts[i].tv_sec, ts[i].tv_nsec = t
    flags = 0 if follow else AT_SYMLINK_NOFOLLOW
    _check(libc.utimensat(AT_FDCWD, os.fsencode(path), ts, flags), 'utimensat')


class Dirent(ctypes.Structure):
    # glibc's struct dirent on 64-bit Linux.
    _fields_ = [('d_ino', ctypes.c_uint64), ('d_off', ctypes.c_int64),
                ('d_reclen', ctypes.c_ushort), ('d_type', ctypes.c_ubyte),
                ('d_name', ctypes.c_char * 256)]


libc.opendir.argtypes = [ctypes.c_char_p]
libc.opendir.restype = ctypes.c_void_p
libc.readdir.argtypes = [ctypes.c_void_p]
libc.readdir.restype = ctypes.POINTER(Dirent)
libc.closedir.argtypes = [ctypes.c_void_p]

DT_NAMES = {0: 'unknown', 1: 'fifo', 2: 'chr', 4: 'dir', 6: 'blk', 8: 'reg', 10: 'lnk',
            12: 'sock'}


def raw_readdir(path):
    """{name: (d_ino, d_type name)} as readdir(3) returns them, without . and .."""
    d = libc.opendir(os.fsencode(path))
    if not d:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)
    out = {}
    try:
        while True:
            ctypes.set_errno(0)
            ent = libc.readdir(d)
            if not ent:
                e = ctypes.get_errno()
                if e:
                    raise OSError(e, os.strerror(e), path)
                break
            name = os.fsdecode(ent.contents.d_name)
            if name in ('.', '..'):
                continue
            if name in out:
                raise AssertionError('readdir of %s returned %r twice' % (path, name))
            out[name] = (ent.contents.d_ino, DT_NAMES.get(ent.contents.d_type,
                                                          ent.contents.d_type))
    finally:
        libc.closedir(d)
    return out


def mount_options_of(path):
    """The options of the mount that holds path (its own, not the file system's)."""
    out = subprocess.run(['findmnt', '-n', '-o', 'VFS-OPTIONS', '-T', path], check=True,
                         stdout=subprocess.PIPE).stdout.decode()
    return set(out.strip().split(','))


# ------------------------------------------------ running as another user

_CHILD_SCRIPT = r'''
import errno, json, os, sys

def run(root, op, a):
    p = lambda rel: os.path.join(root, rel)
    if op == 'read':
        fd = os.open(p(a[0]), os.O_RDONLY)
        try:
            return os.read(fd, 65536).decode('latin-1')
        finally:
            os.close(fd)
    if op == 'write':
        fd = os.open(p(a[0]), os.O_WRONLY | os.O_APPEND)
        try:
            return os.write(fd, a[1].encode())
        finally:
            os.close(fd)
    if op == 'create':
        fd = os.open(p(a[0]), os.O_WRONLY | os.O_CREAT | os.O_EXCL, a[1])
        try:
            if len(a) > 2:
                os.write(fd, a[2].encode())
        finally:
            os.close(fd)
        return None
    if op == 'open':
        flags = 0
        for name in a[1].split('|'):
            flags |= getattr(os, name)
        os.close(os.open(p(a[0]), flags, 0o644))
        return None
    if op == 'mkdir':
        return os.mkdir(p(a[0]), a[1])
    if op == 'mkfifo':
        return os.mkfifo(p(a[0]), a[1])
    if op == 'symlink':
        return os.symlink(a[0], p(a[1]))
    if op == 'link':
        return os.link(p(a[0]), p(a[1]))
    if op == 'unlink':
        return os.unlink(p(a[0]))
    if op == 'rmdir':
        return os.rmdir(p(a[0]))
    if op == 'rename':
        return os.rename(p(a[0]), p(a[1]))
    if op == 'stat':
        st = os.lstat(p(a[0]))
        # A directory's size is the file system's own business (as in stat_key).
        size = None if (st.st_mode & 0o170000) == 0o040000 else st.st_size
        return [st.st_mode, st.st_uid, st.st_gid, size, st.st_nlink]
    if op == 'stat_mode':
        # statx asking for the mode alone, as stat -c %a does: the kernel
        # answers from its cache unless the mode itself was invalidated.
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        buf = ctypes.create_string_buffer(256)
        if libc.statx(-100, p(a[0]).encode(), 0x100, 0x2, buf) != 0:  # SYMLINK_NOFOLLOW, MODE
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        return int.from_bytes(buf.raw[28:30], 'little')  # stx_mode
    if op == 'listdir':
        return sorted(os.listdir(p(a[0])))
    if op == 'chmod':
        return os.chmod(p(a[0]), a[1])
    if op == 'chown':
        return os.chown(p(a[0]), a[1], a[2])
    if op == 'truncate':
        return os.truncate(p(a[0]), a[1])
    if op == 'utime_now':
        return os.utime(p(a[0]), None)
    if op == 'utime':
        return os.utime(p(a[0]), ns=(a[1], a[2]))
    if op == 'access':
        return os.access(p(a[0]), a[1])
    if op == 'setxattr':
        return os.setxattr(p(a[0]), a[1], a[2].encode())
    if op == 'getxattr':
        return os.getxattr(p(a[0]), a[1]).decode('latin-1')
    if op == 'getxattr_raw':
        return os.getxattr(p(a[0]), a[1], follow_symlinks=False).hex()
    if op == 'setxattr_raw':
        return os.setxattr(p(a[0]), a[1], bytes.fromhex(a[2]), follow_symlinks=False)
    if op == 'removexattr':
        return os.removexattr(p(a[0]), a[1], follow_symlinks=False)
    if op == 'listxattr':
        return sorted(os.listxattr(p(a[0]), follow_symlinks=False))
    if op == 'exec':
        import subprocess
        return subprocess.run([p(a[0])] + a[1:], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL).stdout.decode('latin-1')
    if op == 'append':
        fd = os.open(p(a[0]), os.O_WRONLY | os.O_APPEND)
        try:
            return os.write(fd, a[1].encode())
        finally:
            os.close(fd)
    if op == 'pwrite':
        # a[2]: open flags beside O_WRONLY (O_DIRECT writes a page).
        flags = os.O_WRONLY
        for name in a[2].split('|') if len(a) > 2 and a[2] else []:
            flags |= getattr(os, name)
        fd = os.open(p(a[0]), flags)
        try:
            if flags & os.O_DIRECT:
                import mmap
                buf = mmap.mmap(-1, 4096)
                buf.write(a[1].encode().ljust(4096, b'.'))
                return os.pwrite(fd, buf, 0)
            return os.pwrite(fd, a[1].encode(), 0)
        finally:
            os.close(fd)
    if op == 'fallocate':
        # a[1]: mode (0, or FALLOC_FL_* bits), a[2], a[3]: offset, length.
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
        fd = os.open(p(a[0]), os.O_WRONLY)
        try:
            if libc.fallocate(fd, a[1], a[2], a[3]) != 0:
                e = ctypes.get_errno()
                raise OSError(e, os.strerror(e))
            return None
        finally:
            os.close(fd)
    if op == 'tmpfile':
        # An O_TMPFILE file in a[0], mode a[1], data a[2], then linked as a[3]
        # through its /proc link: [mode, nlink, then the linked file's].
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(p(a[0]), os.O_TMPFILE | os.O_RDWR, a[1])
        try:
            os.write(fd, a[2].encode())
            st = os.fstat(fd)
            if libc.linkat(-100, ('/proc/self/fd/%d' % fd).encode(), -100,
                           os.fsencode(p(a[3])), 0x400) != 0:
                e = ctypes.get_errno()
                raise OSError(e, os.strerror(e))
            st2 = os.stat(p(a[3]))
            with open(p(a[3]), 'rb') as f:
                data = f.read().decode('latin-1')
            return [st.st_mode, st.st_nlink, st2.st_mode, st2.st_nlink, st2.st_uid, data]
        finally:
            os.close(fd)
    if op == 'mode_after_umask':
        # Create a[1] ('file', 'dir' or 'fifo') named a[0] with mode a[2].
        if a[1] == 'file':
            os.close(os.open(p(a[0]), os.O_WRONLY | os.O_CREAT | os.O_EXCL, a[2]))
        elif a[1] == 'dir':
            os.mkdir(p(a[0]), a[2])
        else:
            os.mkfifo(p(a[0]), a[2])
        return os.lstat(p(a[0])).st_mode
    raise ValueError('unknown op ' + op)

req = json.load(sys.stdin)
out = {}
for root in req['roots']:
    res = []
    for op in req['ops']:
        try:
            res.append(['ok', run(root, op[0], op[1:])])
        except OSError as e:
            res.append(['err', errno.errorcode.get(e.errno, str(e.errno))])
    out[root] = res
json.dump(out, sys.stdout)
'''


def run_as(uid, gid, roots, ops, timeout=30, umask=0o022, groups=(), no_caps=False,
           own_userns=False):
    """Run ops (lists [name, args...]) under each root as uid/gid.

    groups: supplementary groups (default none); umask: the caller's;
    no_caps: without any capability, also for uid 0 (setpriv);
    own_userns: in a user namespace of its own where it is root with every
    capability (unshare -Ur), which count for nothing outside it.
    Returns {root: [['ok', value] or ['err', 'ENAME'], ...]}.
    """
    cmd = [user_python(uid, gid), '-c', _CHILD_SCRIPT]
    if no_caps:
        cmd = ['setpriv', '--bounding-set=-all', '--inh-caps=-all', '--ambient-caps=-all',
               '--'] + cmd
    if own_userns:
        cmd = ['unshare', '--user', '--map-root-user', '--'] + cmd
    r = subprocess.run(cmd,
                       input=json.dumps({'roots': list(roots), 'ops': ops}).encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       user=uid, group=gid, extra_groups=list(groups), umask=umask, cwd='/')
    if r.returncode != 0:
        raise AssertionError('child as uid %d failed (%d): %s'
                             % (uid, r.returncode, r.stderr.decode(errors='replace')))
    return json.loads(r.stdout)
