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

import errno
import os
import stat
import subprocess
import sys
import time

import pytest

import zctest
from zctest import read_file, write_file

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
        assert 'inside' in seen
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
