"""Hostile input: nothing leads out of SOURCE, other users get what the kernel gives them.

- A directory of SOURCE is swapped for a symlink that leads outside, over
  and over, while clients look names up, read, create and remove under it
  through the mount: nothing outside SOURCE is ever read, created or changed.
- A non-root user on an allow_other,default_permissions mount gets exactly
  the results (and errno) the same user gets on a plain directory, and
  setuid and setgid bits are cleared on writes and truncates by a non-owner
  as the kernel clears them.

These tests set their own mount options.
"""

import contextlib
import errno
import os
import select
import signal
import stat
import subprocess
import sys
import time

import pytest

import zctest
from zctest import attempt, read_file, write_file

J = os.path.join
UID = GID = 40124
RENAME_EXCHANGE = 2


@pytest.fixture(autouse=True)
def _fuse_needed():
    zctest.require_fuse()
    if os.geteuid() != 0:
        pytest.skip('needs root')


# ------------------------------------------------------ a directory becomes a symlink

_SWAPPER = r'''
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
src, seconds = sys.argv[1].encode(), float(sys.argv[2])
a, link = os.path.join(src, b'a'), os.path.join(src, b'a_link')
deadline = time.monotonic() + seconds
n = 0
while time.monotonic() < deadline:
    if libc.renameat2(-100, a, -100, link, 2) != 0:
        sys.exit('renameat2: errno %d' % ctypes.get_errno())
    n += 1
print(n)
'''

_CLIENT = r'''
import errno, os, sys, time
mnt, seconds, tag = sys.argv[1], float(sys.argv[2]), sys.argv[3]
a = os.path.join(mnt, 'a')
deadline = time.monotonic() + seconds
seen, ops, i = set(), 0, 0
def attempt(fn, *args):
    global ops
    ops += 1
    try:
        return fn(*args)
    except OSError as e:
        return errno.errorcode.get(e.errno, e.errno)
while time.monotonic() < deadline:
    i += 1
    r = attempt(lambda: open(os.path.join(a, 'file'), 'rb').read())
    seen.add(r if isinstance(r, str) else r.decode(errors='replace'))
    attempt(os.stat, os.path.join(a, 'file'))
    attempt(os.listdir, a)
    new = os.path.join(a, 'new-%s-%d' % (tag, i))
    r = attempt(lambda: os.close(os.open(new, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)))
    attempt(os.rename, new, new + '.r')
    attempt(os.unlink, new + '.r')
    attempt(os.unlink, new)
    attempt(os.mkdir, new + '.d')
    attempt(os.rmdir, new + '.d')
    r = attempt(lambda: os.open(os.path.join(a, 'file'), os.O_WRONLY | os.O_APPEND))
    if isinstance(r, int):
        os.close(r)
    attempt(os.symlink, '/etc/passwd', new + '.l')
    attempt(os.unlink, new + '.l')
print(repr(sorted(seen)))
print(ops)
'''


def snapshot_outside(path):
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = J(dirpath, name)
            st = os.lstat(p)
            out[os.path.relpath(p, path)] = (st.st_mode, st.st_size, st.st_mtime_ns,
                                             st.st_ctime_ns, st.st_nlink)
    return out


@pytest.mark.timeout(120)
@pytest.mark.parametrize('opts', ['cache=never', 'cache=auto'])
def test_directory_swapped_for_symlink(opts):
    m = zctest.Mount(opts=opts.split(','))
    m.make_dirs()
    # SOURCE is base/src: in SOURCE, a_link -> ../out leads to base/out (the
    # secret). The mount sits deeper, at base/d1/d2/mnt, so the same link
    # followed by the kernel on the mount side leads to base/d1/d2/out (a
    # decoy). Reading the secret through the mount means the daemon
    # followed a link inside SOURCE.
    outside = J(m.base, 'out')
    os.makedirs(J(outside, 'sub'))
    write_file(J(outside, 'file'), b'OUTSIDE SECRET')
    decoy = J(m.base, 'd1', 'd2', 'out')
    os.makedirs(decoy)
    write_file(J(decoy, 'file'), b'decoy')
    os.rmdir(m.mnt)
    m.mnt = J(m.base, 'd1', 'd2', 'mnt')
    os.mkdir(m.mnt)
    os.mkdir(J(m.src, 'a'))
    write_file(J(m.src, 'a', 'file'), b'inside')
    os.symlink('../out', J(m.src, 'a_link'))
    before = snapshot_outside(outside)
    seconds = 8
    try:
        m.start()
        swapper = subprocess.Popen([sys.executable, '-c', _SWAPPER, m.src, str(seconds)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        clients = [subprocess.Popen([sys.executable, '-c', _CLIENT, m.mnt, str(seconds), str(i)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                   for i in range(4)]
        swaps, serr = swapper.communicate(timeout=seconds + 30)
        assert swapper.returncode == 0, serr
        seen, ops = set(), 0
        for c in clients:
            out, err = c.communicate(timeout=seconds + 30)
            assert c.returncode == 0, err
            lines = out.decode().split('\n')
            seen |= set(eval(lines[0]))
            ops += int(lines[1])
        print('swap race: %s: %d swaps, %d operations through the mount; reads gave %r'
              % (opts, int(swaps), ops, sorted(seen)))
        assert 'OUTSIDE SECRET' not in seen
        # Which of the two the kernel's names showed depends on when they
        # were looked up (with cache=auto a name is kept for a second, and
        # may be the link in every lookup): the race ran through the mount,
        # and once it is over the mount shows SOURCE's directory again.
        assert seen & {'inside', 'decoy'}, seen
        if os.path.islink(J(m.src, 'a')):
            zctest.renameat2(J(m.src, 'a'), J(m.src, 'a_link'), zctest.RENAME_EXCHANGE)
        zctest.wait_until(lambda: attempt(lambda: read_file(J(m.mnt, 'a', 'file'))) == b'inside',
                          5, 'the mount to show SOURCE\'s a/file after the race')
        assert snapshot_outside(outside) == before
        assert read_file(J(outside, 'file')) == b'OUTSIDE SECRET'
        assert m.proc.poll() is None
    finally:
        m.stop()


# ----------------------------------------------------------- other users' rights

def prepare_tree(root):
    for name, mode in [('suid_w', 0o4777), ('suid_t', 0o4777), ('suid_o', 0o4777),
                       ('sgid_w', 0o2777), ('sgid_t', 0o2777), ('sgid_noexec_w', 0o2766),
                       ('both_w', 0o6777), ('plain_w', 0o666)]:
        write_file(J(root, name), b'0123456789')
        os.chmod(J(root, name), mode)
    write_file(J(root, 'sgid_noexec_ingroup'), b'0123456789')
    os.chown(J(root, 'sgid_noexec_ingroup'), 0, GID)
    os.chmod(J(root, 'sgid_noexec_ingroup'), 0o2766)
    os.mkdir(J(root, 'noexec'), 0o744)
    os.chmod(J(root, 'noexec'), 0o744)
    write_file(J(root, 'noexec', 'f'), b'f')
    os.mkdir(J(root, 'xonly'), 0o711)
    os.chmod(J(root, 'xonly'), 0o711)
    write_file(J(root, 'xonly', 'known'), b'known')
    os.chmod(J(root, 'xonly', 'known'), 0o644)
    os.mkdir(J(root, 'nowrite'), 0o755)
    os.mkdir(J(root, 'open'), 0o777)
    os.chmod(J(root, 'open'), 0o777)
    os.mkdir(J(root, 'sticky'), 0o1777)
    os.chmod(J(root, 'sticky'), 0o1777)
    write_file(J(root, 'sticky', 'roots'), b'r')
    os.chmod(J(root, 'sticky', 'roots'), 0o666)
    write_file(J(root, 'unreadable'), b'u')
    os.chmod(J(root, 'unreadable'), 0o600)
    write_file(J(root, 'other_owned'), b'o')
    os.chown(J(root, 'other_owned'), 40999, 40999)
    os.chmod(J(root, 'other_owned'), 0o666)


STAT = 'stat'
CASES = [
    ['write', 'suid_w', 'x'], [STAT, 'suid_w'],
    ['truncate', 'suid_t', 3], [STAT, 'suid_t'],
    ['open', 'suid_o', 'O_WRONLY|O_TRUNC'], [STAT, 'suid_o'],
    ['write', 'sgid_w', 'x'], [STAT, 'sgid_w'],
    ['truncate', 'sgid_t', 1], [STAT, 'sgid_t'],
    ['write', 'sgid_noexec_w', 'x'], [STAT, 'sgid_noexec_w'],
    ['write', 'sgid_noexec_ingroup', 'x'], [STAT, 'sgid_noexec_ingroup'],
    ['write', 'both_w', 'x'], [STAT, 'both_w'],
    ['write', 'plain_w', 'x'], [STAT, 'plain_w'],
    [STAT, 'noexec/f'], ['read', 'noexec/f'], ['listdir', 'noexec'],
    ['create', 'noexec/new', 0o644],
    ['listdir', 'xonly'], ['read', 'xonly/known'], [STAT, 'xonly/known'],
    ['create', 'xonly/new', 0o644],
    ['create', 'nowrite/new', 0o644], ['mkdir', 'nowrite/d', 0o755],
    ['symlink', 'x', 'nowrite/l'], ['rename', 'open/../plain_w', 'open/stolen'],
    ['create', 'open/mine', 0o644, 'data'], ['link', 'unreadable', 'open/hard'],
    ['link', 'other_owned', 'open/hard2'],
    ['chmod', 'other_owned', 0o777], ['chown', 'other_owned', UID, GID],
    ['utime', 'other_owned', 1, 1], ['utime_now', 'other_owned'],
    ['setxattr', 'other_owned', 'user.x', 'v'], ['getxattr', 'unreadable', 'user.x'],
    ['unlink', 'sticky/roots'], ['rename', 'sticky/roots', 'sticky/mine'],
    ['create', 'sticky/mine', 0o600], ['unlink', 'sticky/mine'],
    ['read', 'unreadable'], ['access', 'unreadable', os.R_OK], ['access', 'noexec', os.X_OK],
    ['access', 'xonly', os.R_OK], ['access', 'open', os.W_OK | os.X_OK],
    ['rmdir', 'open'], ['unlink', 'plain_w'],
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize('opts', ['allow_other,default_permissions',
                                  'allow_other,default_permissions,cache=never'])
def test_non_root_user_as_on_source(opts):
    with zctest.Mount(opts=opts.split(',')) as m:
        for root in (m.mnt, m.ref):
            prepare_tree(root)
        res = zctest.run_as(UID, GID, (m.mnt, m.ref), CASES)
        got, want = res[m.mnt], res[m.ref]
        diffs = ['%r: mount %r, plain directory %r' % (op, g, w)
                 for op, g, w in zip(CASES, got, want) if g != w]
        assert not diffs, 'as uid %d:\n  ' % UID + '\n  '.join(diffs)
        denied = sum(1 for w in want if w[0] == 'err')
        print('permissions: %s: %d operations as uid %d, %d denied, all as on a plain '
              'directory' % (opts, len(CASES), UID, denied))
        # The kernel's rules, spelled out: setuid always goes on a write or
        # truncate by someone without CAP_FSETID, setgid when group-executable.
        modes = {op[1]: w[1][0] & 0o7777 for op, w in zip(CASES, want)
                 if op[0] == STAT and w[0] == 'ok'}
        assert modes['suid_w'] == 0o777 and modes['suid_t'] == 0o777
        assert modes['suid_o'] == 0o777
        assert modes['sgid_w'] == 0o777 and modes['sgid_t'] == 0o777
        # Not group-executable: setgid goes only for a caller outside the group.
        assert modes['sgid_noexec_w'] == 0o766
        assert modes['sgid_noexec_ingroup'] == 0o2766
        assert modes['both_w'] == 0o777
        # And in SOURCE itself.
        for name in ('suid_w', 'suid_t', 'sgid_w', 'both_w'):
            assert os.stat(J(m.src, name)).st_mode & 0o7777 == 0o777, name
        assert read_file(J(m.src, 'suid_w')) == b'0123456789x'


# ----------------------------------------------------- a user's lock waiters stall nobody

LOCKERS = 50
# One second for each of root's operations while a user's lockers wait.
PROMPT = 1.0
# -o options and arguments: /dev/fuse, /dev/fuse on one thread (-s), io_uring.
TRANSPORTS = {'dev': ([], []), 'single': ([], ['-s']), 'uring': (['io_uring=strict'], [])}
# flock(2) in /proc/PID/syscall, to see that a process waits in it.
FLOCK_NR = {'x86_64': 73, 'aarch64': 32, 'riscv64': 32}.get(os.uname().machine)

# As the user: take the lock, say so, unlock after one line on stdin, exit after another.
_HOLDER = r'''
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX)
print('locked', flush=True)
sys.stdin.readline()
fcntl.flock(fd, fcntl.LOCK_UN)
print('unlocked', flush=True)
sys.stdin.readline()
'''

# As the user: a child waits for the lock on an open file its parent keeps,
# so that a lock taken for the child after all would outlive it. The parent
# prints the child's pid, then its wait status, and exits after one line.
_WAITER = r'''
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
pid = os.fork()
if pid == 0:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except KeyboardInterrupt:
        os._exit(3)
    os._exit(0)
print(pid, flush=True)
print(os.waitpid(pid, 0)[1], flush=True)
sys.stdin.readline()
'''

# As root: one operation per line on stdin ("OP NAME"), answered "ok" or the errno's name.
_ROOT_OPS = r'''
import errno, fcntl, os, sys
mnt = sys.argv[1]
for line in sys.stdin:
    op, name = line.split()
    path = os.path.join(mnt, name)
    try:
        if op == 'read':
            with open(path, 'rb') as f:
                f.read()
        elif op == 'write':
            with open(path, 'r+b') as f:
                f.write(b'root' * 1024)
        elif op == 'stat':
            os.stat(path)
        elif op == 'create':
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        elif op == 'lock_nb':
            fd = os.open(path, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        print('ok', flush=True)
    except OSError as e:
        print(errno.errorcode.get(e.errno, str(e.errno)), flush=True)
'''


def read_line(proc, timeout, what):
    """The next line proc prints within timeout seconds; fails the test otherwise."""
    fd = proc.stdout.fileno()
    buf = b''
    deadline = time.monotonic() + timeout
    while not buf.endswith(b'\n'):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError('%s: nothing within %.1f s' % (what, timeout))
        chunk = os.read(fd, 1)
        if not chunk:
            raise AssertionError('%s: the process exited (%r)' % (what, proc.wait()))
        buf += chunk
    return buf.decode().strip()


def in_flock(pid):
    """True when pid waits in flock(2), or has exited."""
    try:
        with open('/proc/%d/syscall' % pid) as f:
            nr = f.read().split()[0]
    except (OSError, IndexError):
        return True
    if FLOCK_NR is None:
        return True
    return nr == str(FLOCK_NR) or not zctest.pid_alive(pid)


class LockScene:
    """A mount with allow_other and every request reaching the daemon, a file
    that the user holds locked, and root's operations served on request."""

    def __init__(self, transport):
        self.opts = ['allow_other', 'cache=never'] + TRANSPORTS[transport][0]
        self.args = TRANSPORTS[transport][1]
        self.transport = transport
        self.procs = []

    def __enter__(self):
        self.stack = contextlib.ExitStack()
        if self.transport == 'uring':
            param = self.stack.enter_context(zctest.UringParam(True))
            if param.skip_reason:
                self.stack.close()
                pytest.skip(param.skip_reason)
        self.m = self.stack.enter_context(zctest.Mount(opts=self.opts, args=self.args))
        self.stack.callback(self._end_processes)
        try:
            self.lockfile = J(self.m.mnt, 'lockme')
            write_file(self.lockfile, b'')
            write_file(J(self.m.mnt, 'data'), b'data' * 1024)
            self.root = self.spawn([sys.executable, '-c', _ROOT_OPS, self.m.mnt],
                                   as_user=False)
            self.holder = self.spawn([sys.executable, '-c', _HOLDER, self.lockfile])
            assert read_line(self.holder, 10, 'the holder') == 'locked'
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def spawn(self, args, as_user=True, **kwargs):
        ids = dict(user=UID, group=GID, extra_groups=[]) if as_user else {}
        p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, cwd='/', **ids, **kwargs)
        self.procs.append(p)
        return p

    def ask(self, op, name):
        """Root's op on name through the mount: its answer, within PROMPT seconds."""
        t0 = time.monotonic()
        self.root.stdin.write(('%s %s\n' % (op, name)).encode())
        self.root.stdin.flush()
        answer = read_line(self.root, PROMPT, 'root\'s %s of %s on %s while the user\'s locks '
                           'wait' % (op, name, self.transport))
        return answer, time.monotonic() - t0

    def _end_processes(self):
        # Processes still stuck in the mount only leave once it is aborted.
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        deadline = time.monotonic() + 3
        if not all(wait_exit(p, max(deadline - time.monotonic(), 0.01)) for p in self.procs):
            self.m.abort('processes stuck in the mount')
        for p in self.procs:
            p.wait()

    def __exit__(self, exc_type, exc, tb):
        try:
            self.stack.close()
        except Exception:
            if exc_type is None:
                raise
        return False


def wait_exit(p, timeout):
    try:
        p.wait(timeout=timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


@pytest.mark.timeout(120)
@pytest.mark.parametrize('transport', sorted(TRANSPORTS))
def test_user_lock_waiters_stall_nobody(transport):
    with LockScene(transport) as sc:
        lockers = [sc.spawn(['flock', '-x', sc.lockfile, 'true']) for _ in range(LOCKERS)]
        # Those that wait for a thread of the daemon never get as far as flock().
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not all(in_flock(p.pid) for p in lockers):
            time.sleep(0.05)
        time.sleep(0.2)
        times = {}
        for op, name in [('read', 'data'), ('write', 'data'), ('stat', 'data'),
                         ('create', 'new'), ('read', 'new')]:
            answer, times[op] = sc.ask(op, name)
            assert answer == 'ok', (op, name, answer)
        for p in lockers:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
        t0 = time.monotonic()
        for p in lockers:
            assert wait_exit(p, max(PROMPT - (time.monotonic() - t0), 0.01)), \
                'a locker killed with SIGKILL still waits after %.1f s' % PROMPT
        c = zctest.counters(sc.m.mnt)
        # Past the bounds the lockers were refused, and the killed waiters interrupted.
        waits = c['locks.waits']
        assert waits and c['locks.refused'] and waits + c['locks.refused'] == LOCKERS, c
        zctest.wait_until(lambda: zctest.counters(sc.m.mnt)['locks.interrupted'] == waits,
                          5, 'every waiter interrupted')
        # The holder lets go and ends: nothing keeps the mount busy.
        sc.holder.stdin.close()
        assert wait_exit(sc.holder, 10)
        sc.root.stdin.close()
        assert wait_exit(sc.root, 10)
        t0 = time.monotonic()
        r = subprocess.run(['fusermount3', '-u', sc.m.mnt], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=PROMPT)
        unmount = time.monotonic() - t0
        assert r.returncode == 0, r.stdout
        print('lock waiters: %s: %d of %d lockers waited; root: %s; unmount %.3f s'
              % (transport, waits, LOCKERS,
                 ', '.join('%s %.3f s' % kv for kv in times.items()), unmount))


# A second unprivileged user, for what one user's waiters leave the others.
OTHER_UID = OTHER_GID = 40125
MANY_WAITERS = 20


@pytest.mark.timeout(120)
@pytest.mark.parametrize('transport', sorted(TRANSPORTS))
def test_one_users_lock_waiters_leave_others_theirs(transport):
    # One user parks MANY_WAITERS blocking flock()s, each of which native
    # lets wait; then another user's blocking flock() on a file of its own
    # must wait for its holder too, and get the lock, not ENOLCK.
    with LockScene(transport) as sc:
        lockers = [sc.spawn(['flock', '-x', sc.lockfile, 'true']) for _ in range(MANY_WAITERS)]
        zctest.wait_until(lambda: all(in_flock(p.pid) for p in lockers), 10,
                          'the lockers to wait in flock()')
        time.sleep(0.5)
        refused = [p.returncode for p in lockers if p.poll() is not None]
        assert not refused, '%d of %d waiters of one user refused on %s' % (
            len(refused), MANY_WAITERS, transport)
        other_file = J(sc.m.mnt, 'others')
        write_file(other_file, b'')
        os.chown(other_file, OTHER_UID, OTHER_GID)
        ids = dict(user=OTHER_UID, group=OTHER_GID, extra_groups=[])
        holder = sc.spawn([sys.executable, '-c', _HOLDER, other_file], as_user=False, **ids)
        assert read_line(holder, 10, 'the other user\'s holder') == 'locked'
        waiter = sc.spawn(['flock', '-x', other_file, 'true'], as_user=False, **ids)
        zctest.wait_until(lambda: in_flock(waiter.pid), 10, 'the other user to wait in flock()')
        time.sleep(0.5)
        assert waiter.poll() is None, 'the other user\'s flock() ended with %d' % waiter.returncode
        holder.stdin.write(b'\n')
        holder.stdin.flush()
        assert read_line(holder, 10, 'the other user\'s holder') == 'unlocked'
        assert wait_exit(waiter, 10) and waiter.returncode == 0
        assert all(p.poll() is None for p in lockers)
        c = zctest.counters(sc.m.mnt)
        assert c['locks.refused'] == 0, c


@pytest.mark.timeout(60)
@pytest.mark.parametrize('sig', ['SIGKILL', 'SIGINT'])
@pytest.mark.parametrize('transport', sorted(TRANSPORTS))
def test_signalled_lock_waiter_released(transport, sig):
    with LockScene(transport) as sc:
        waiter = sc.spawn([sys.executable, '-c', _WAITER, sc.lockfile])
        child = int(read_line(waiter, 10, 'the waiter'))
        zctest.wait_until(lambda: in_flock(child), 10, 'the waiter to wait in flock()')
        time.sleep(0.2)
        assert waiter.poll() is None and zctest.pid_alive(child)
        t0 = time.monotonic()
        os.kill(child, getattr(signal, sig))
        status = int(read_line(waiter, PROMPT, 'the waiter after %s' % sig))
        took = time.monotonic() - t0
        if sig == 'SIGKILL':
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status
        else:
            # flock() failed with EINTR and Python raised KeyboardInterrupt.
            assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3, status
        # The lock was not taken for the waiter, whose open file lives on.
        sc.holder.stdin.write(b'\n')
        sc.holder.stdin.flush()
        assert read_line(sc.holder, 10, 'the holder') == 'unlocked'
        answer, _ = sc.ask('lock_nb', 'lockme')
        assert answer == 'ok', 'the lock is held after its waiter got %s: %s' % (sig, answer)
        print('lock waiter: %s: %s released it in %.3f s' % (transport, sig, took))
