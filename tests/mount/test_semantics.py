"""Exactly as SOURCE for every caller.

Each test does the same thing through the mount and on a plain directory
beside SOURCE (on the same file system), as root, as an unprivileged user
of an allow_other mount, as root without capabilities and as a user who
is root of a user namespace of its own, and compares
the results, errno and modes one by one. The daemon runs with a umask
(077) unlike any caller's. Covered: the caller's umask and default ACLs
on create and O_TMPFILE; POSIX ACLs in permission checks, getfacl and setfacl (who may,
the mode they change, setgid clearing), seen at once through the mount;
extended attribute listings that hide trusted.* from the unprivileged;
setuid and setgid clearing on writes, O_DIRECT writes, fallocate and
chown; capabilities a root caller dropped; execute-only binaries and
write-only opens under writeback; extended attributes of symlinks;
creates, removals and setgid through supplementary groups (the group the
kernel names with a create, and the ones it does not).

The mount options come from ZCFUSE_MOUNT_OPTS (the suite's mode) plus
allow_other and each test's own.
"""

import mmap
import os
import shutil
import stat
import struct
import subprocess
import time

import pytest

import zctest
from zctest import write_file

J = os.path.join
UID = GID = 40131
OTHER = 40998  # owns files nobody in the tests is

FALLOC_FL_KEEP_SIZE = 1
FALLOC_FL_PUNCH_HOLE = 2
FALLOC_FL_ZERO_RANGE = 0x10

# POSIX ACL xattr format: version 2, then (tag, perm, id) entries.
ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_GROUP, ACL_MASK, ACL_OTHER = 1, 2, 4, 8, 0x10, 0x20
NO_ID = 0xffffffff


def acl_hex(*entries):
    return (struct.pack('<I', 2) +
            b''.join(struct.pack('<HHI', tag, perm, NO_ID if qid is None else qid)
                     for tag, perm, qid in entries)).hex()


@pytest.fixture(autouse=True)
def _root_needed():
    zctest.require_fuse()
    if os.geteuid() != 0:
        pytest.skip('needs root')
    if zctest.current_backend() != 'zcfuse':
        pytest.skip('compares with SOURCE')


def mount(*opts):
    # The suite's mode, then allow_other and the test's own permission model.
    base = [o for o in zctest.env_mount_opts()
            if o not in ('default_permissions', 'nodefault_permissions')]
    if 'writeback' in opts:
        # Modes that writeback caching does not combine with.
        base = [o for o in base if o not in ('cache=never', 'passthrough', 'direct_io')]
    return zctest.Mount(opts=base + ['allow_other'] + list(opts))


def setfacl(path, *args):
    subprocess.run(['setfacl'] + list(args) + [path], check=True)


def compare(m, res, cases, who):
    got, want = res[m.mnt], res[m.ref]
    diffs = ['%r: mount %r, plain directory %r' % (op, g, w)
             for op, g, w in zip(cases, got, want) if g != w]
    assert not diffs, '%s:\n  ' % who + '\n  '.join(diffs)
    return want


PERMS = ['default_permissions', 'nodefault_permissions']

# ------------------------------------------------------------------ umask


@pytest.mark.parametrize('perms', PERMS)
@pytest.mark.parametrize('caller_umask', [0, 0o022, 0o027])
def test_create_modes_follow_the_callers_umask(perms, caller_umask):
    cases = []
    for kind, mode in (('file', 0o666), ('dir', 0o777), ('fifo', 0o666), ('file', 0o4755)):
        name = '%s%o' % (kind, mode)
        cases.append(['mode_after_umask', 'open/' + name, kind, mode])
        cases.append(['mode_after_umask', 'defacl/' + name, kind, mode])
    cases.append(['tmpfile', 'open', 0o666, 'unnamed', 'open/tmp_linked'])
    cases.append(['tmpfile', 'defacl', 0o640, 'unnamed', 'defacl/tmp_linked'])
    cases.append(['getxattr_raw', 'defacl/file666', 'system.posix_acl_access'])
    cases.append(['getxattr_raw', 'defacl/dir777', 'system.posix_acl_default'])
    with mount(perms) as m:
        for root in (m.src, m.ref):
            for d in ('open', 'defacl'):
                os.mkdir(J(root, d))
                os.chmod(J(root, d), 0o777)
            setfacl(J(root, 'defacl'), '-d', '-m', 'u::rwx,g::r-x,o::---,u:%d:rwx' % OTHER)
        for uid in (0, UID):
            res = zctest.run_as(uid, uid, (m.mnt, m.ref), cases, umask=caller_umask)
            want = compare(m, res, cases, 'uid %d, umask %03o' % (uid, caller_umask))
            # What a local file system does, spelled out.
            assert want[0] == ['ok', stat.S_IFREG | (0o666 & ~caller_umask)]
            assert want[2] == ['ok', stat.S_IFDIR | (0o777 & ~caller_umask)]
            # The default ACL replaces the umask: group class from the mask.
            assert want[3] == ['ok', stat.S_IFDIR | 0o770]
            # O_TMPFILE, then a name for it.
            assert want[8][0] == 'ok', want[8]
            assert want[8][1][:2] == [stat.S_IFREG | (0o666 & ~caller_umask), 0]
            assert want[8][1][3:] == [1, uid, 'unnamed']
            for root in (m.src, m.ref):
                for d in ('open', 'defacl'):
                    for name in os.listdir(J(root, d)):
                        p = J(root, d, name)
                        (os.rmdir if os.path.isdir(p) and not os.path.islink(p)
                         else os.unlink)(p)


# ------------------------------------------------------------ POSIX ACLs

def prepare_acl_tree(root):
    def f(name, mode, acl=None, owner=0, data=b'0123456789'):
        write_file(J(root, name), data)
        os.chown(J(root, name), owner, owner)
        os.chmod(J(root, name), mode)
        if acl:
            setfacl(J(root, name), '-m', acl)
    f('denied', 0o644, 'u:%d:---' % UID)
    f('granted', 0o600, 'u:%d:r--' % UID)
    f('readonly', 0o666, 'u:%d:r--' % UID)
    f('by_group', 0o600, 'g:%d:rw-' % GID, owner=OTHER)
    f('masked', 0o600, 'u:%d:rw-,m::r--' % UID)
    f('mine', 0o640, owner=UID)
    f('mine_sgid', 0o640, owner=UID)
    os.chown(J(root, 'mine_sgid'), UID, 0)
    os.chmod(J(root, 'mine_sgid'), 0o2770)
    f('not_mine', 0o666)
    os.mkdir(J(root, 'listonly'))
    os.chmod(J(root, 'listonly'), 0o700)
    setfacl(J(root, 'listonly'), '-m', 'u:%d:r-x' % UID)
    write_file(J(root, 'listonly', 'f'), b'f')
    os.mkdir(J(root, 'writable'))
    os.chmod(J(root, 'writable'), 0o755)
    setfacl(J(root, 'writable'), '-m', 'u:%d:rwx' % UID)


NEW_ACL = acl_hex((ACL_USER_OBJ, 6, None), (ACL_USER, 4, OTHER), (ACL_GROUP_OBJ, 4, None),
                  (ACL_MASK, 6, None), (ACL_OTHER, 0, None))
ACL_CASES = [
    ['read', 'denied'], ['read', 'granted'], ['append', 'readonly', 'x'],
    ['read', 'by_group'], ['append', 'by_group', 'g'], ['append', 'masked', 'x'],
    ['read', 'masked'], ['access', 'denied', os.R_OK], ['access', 'granted', os.R_OK],
    ['listdir', 'listonly'], ['create', 'listonly/new', 0o644], ['read', 'listonly/f'],
    ['create', 'writable/new', 0o644], ['stat', 'writable/new'],
    ['getxattr_raw', 'granted', 'system.posix_acl_access'],
    ['listxattr', 'granted'],
    # setfacl by the owner: the mode follows at once, the ACL reads back.
    ['setxattr_raw', 'mine', 'system.posix_acl_access', NEW_ACL], ['stat', 'mine'],
    ['getxattr_raw', 'mine', 'system.posix_acl_access'], ['read', 'mine'],
    ['chmod', 'mine', 0o600], ['getxattr_raw', 'mine', 'system.posix_acl_access'],
    ['stat', 'mine'],
    # Outside the file's group: setting the ACL clears setgid.
    ['setxattr_raw', 'mine_sgid', 'system.posix_acl_access', NEW_ACL], ['stat', 'mine_sgid'],
    ['removexattr', 'mine', 'system.posix_acl_access'], ['stat', 'mine'],
    # Not the owner: no changing it.
    ['setxattr_raw', 'not_mine', 'system.posix_acl_access', NEW_ACL],
    ['removexattr', 'granted', 'system.posix_acl_access'],
    ['getxattr_raw', 'not_mine', 'system.posix_acl_access'],
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize('perms', PERMS)
def test_posix_acls_as_on_source(perms):
    with mount(perms) as m:
        for root in (m.src, m.ref):
            prepare_acl_tree(root)
        res = zctest.run_as(UID, GID, (m.mnt, m.ref), ACL_CASES)
        want = compare(m, res, ACL_CASES, 'uid %d' % UID)
        by = {tuple(map(str, c)): w for c, w in zip(ACL_CASES, want)}
        assert by[('read', 'denied')] == ['err', 'EACCES']
        assert by[('read', 'granted')] == ['ok', '0123456789']
        assert by[('append', 'readonly', 'x')] == ['err', 'EACCES']
        assert by[('append', 'masked', 'x')] == ['err', 'EACCES']
        assert by[('setxattr_raw', 'not_mine', 'system.posix_acl_access', NEW_ACL)] == \
            ['err', 'EPERM']
        # And in SOURCE itself.
        assert os.getxattr(J(m.src, 'mine_sgid'), 'system.posix_acl_access').hex() == NEW_ACL
        assert stat.S_IMODE(os.stat(J(m.src, 'mine_sgid')).st_mode) == 0o660


# ------------------------------------------------------ extended attributes

XATTR_CASES = [
    ['listxattr', 'f'], ['getxattr_raw', 'f', 'trusted.t'], ['getxattr_raw', 'f', 'user.u'],
    ['setxattr_raw', 'f', 'trusted.t2', '01'], ['listxattr', 'f'],
    ['listxattr', 'link'], ['setxattr_raw', 'link', 'trusted.l', '02'],
    ['getxattr_raw', 'link', 'trusted.l'], ['listxattr', 'link'], ['listxattr', 'f'],
    ['removexattr', 'link', 'trusted.l'], ['listxattr', 'link'],
    ['setxattr_raw', 'link', 'user.l', '03'],
]


@pytest.mark.parametrize('perms', PERMS)
def test_directories_open_and_walk_as_on_source(perms):
    # pjdfstest open/06 and rename/21 under nodefault_permissions.
    with mount(perms) as m:
        for root in (m.src, m.ref):
            os.mkdir(J(root, 'dd'))
            os.chown(J(root, 'dd'), UID, GID)
            os.chmod(J(root, 'dd'), 0o477)  # readable, not searchable, by its owner
            os.mkdir(J(root, 'closed'), 0o700)  # root's, closed to others
            os.mkdir(J(root, 'closed', 'A'), 0o777)
            os.mkdir(J(root, 'closed', 'A', 'x'), 0o700)
        cases = [['open', 'dd', 'O_RDONLY|O_DIRECTORY'], ['listdir', 'dd'],
                 ['rename', 'closed/A/x', 'closed/A/y'], ['stat', 'closed/A']]
        # Root has looked the names up just before: the answers must not
        # depend on what the kernel keeps of that.
        for _ in range(2):
            os.stat(J(m.mnt, 'closed', 'A', 'x'))
            res = zctest.run_as(UID, GID, (m.mnt, m.ref), cases)
            want = compare(m, res, cases, 'uid %d' % UID)
            assert want == [['ok', None], ['ok', []], ['err', 'EACCES'], ['err', 'EACCES']]


@pytest.mark.parametrize('perms', PERMS)
def test_xattrs_as_on_source(perms):
    with mount(perms) as m:
        for root in (m.src, m.ref):
            write_file(J(root, 'f'), b'f')
            os.chmod(J(root, 'f'), 0o666)
            os.setxattr(J(root, 'f'), 'trusted.t', b't')
            os.setxattr(J(root, 'f'), 'user.u', b'u')
            os.symlink('f', J(root, 'link'))
        callers = [(UID, False), (0, True), (0, False)]
        for uid, no_caps in callers:
            res = zctest.run_as(uid, uid, (m.mnt, m.ref), XATTR_CASES, no_caps=no_caps)
            want = compare(m, res, XATTR_CASES, 'uid %d%s' % (uid, ' without caps' * no_caps))
            if uid == 0 and not no_caps:
                assert 'trusted.t' in want[0][1]
                assert want[7] == ['ok', '02']  # a symlink's own trusted.* attribute
            else:
                assert want[0] == ['ok', ['user.u']]
        # As root, on the symlink itself in SOURCE, not on its target.
        assert os.getxattr(J(m.src, 'f'), 'trusted.t2') == b'\x01'
        assert 'trusted.l' not in os.listxattr(J(m.src, 'f'))


# ----------------------------------------------- setuid, setgid, capabilities

def prepare_priv_tree(root):
    names = {'s6_append': 0o6777, 's2_append': 0o2666, 's6_direct': 0o6777,
             's6_falloc': 0o6777, 's6_punch': 0o6777, 's6_zero': 0o6777, 's2x_falloc': 0o2676,
             's4_pwrite': 0o4666}
    for name, mode in names.items():
        write_file(J(root, name), b'0123456789' * 1000)
        os.chmod(J(root, name), mode)
    write_file(J(root, 'others_secret'), b'secret')
    os.chown(J(root, 'others_secret'), OTHER, OTHER)
    os.chmod(J(root, 'others_secret'), 0o600)
    write_file(J(root, 'others_w622'), b'w')
    os.chown(J(root, 'others_w622'), OTHER, OTHER)
    os.chmod(J(root, 'others_w622'), 0o622)
    shutil.copy('/bin/echo', J(root, 'xonly'))
    os.chmod(J(root, 'xonly'), 0o711)
    write_file(J(root, 'sgid_chown'), b'c')
    os.chmod(J(root, 'sgid_chown'), 0o2644)
    write_file(J(root, 'suid_chown'), b'c')
    os.chmod(J(root, 'suid_chown'), 0o4755)


USER_PRIV_CASES = [
    ['append', 's6_append', 'x'], ['stat_mode', 's6_append'], ['stat', 's6_append'],
    ['append', 's2_append', 'x'], ['stat', 's2_append'],
    ['pwrite', 's6_direct', 'direct', 'O_DIRECT'], ['stat', 's6_direct'],
    ['pwrite', 's4_pwrite', 'p'], ['stat_mode', 's4_pwrite'], ['stat', 's4_pwrite'],
    ['fallocate', 's6_falloc', 0, 0, 20000], ['stat_mode', 's6_falloc'], ['stat', 's6_falloc'],
    ['fallocate', 's6_punch', FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096],
    ['stat_mode', 's6_punch'], ['stat', 's6_punch'],
    ['fallocate', 's6_zero', FALLOC_FL_ZERO_RANGE, 0, 4096], ['stat_mode', 's6_zero'],
    ['stat', 's6_zero'],
    ['fallocate', 's2x_falloc', 0, 0, 20000], ['stat_mode', 's2x_falloc'],
    ['stat', 's2x_falloc'],
    ['exec', 'xonly', 'hello'], ['read', 'xonly'],
    ['pwrite', 'others_w622', 'y'], ['read', 'others_w622'],
    ['read', 'others_secret'],
]

ROOT_NOCAPS_CASES = [
    ['read', 'others_secret'], ['append', 'others_secret', 'z'], ['read', 'others_w622'],
    ['chmod', 'others_secret', 0o644], ['chown', 'others_secret', 0, 0],
    ['listxattr', 'others_secret'], ['append', 's6_append', 'r'], ['stat', 's6_append'],
]

ROOT_CASES = [
    ['chown', 'sgid_chown', 0, OTHER], ['stat', 'sgid_chown'],
    ['chown', 'suid_chown', OTHER, 0], ['stat', 'suid_chown'],
    ['append', 's2_append', 'r'], ['stat', 's2_append'],
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize('perms', PERMS)
def test_privileges_as_on_source(perms):
    with mount(perms) as m:
        for root in (m.src, m.ref):
            prepare_priv_tree(root)
        res = zctest.run_as(UID, GID, (m.mnt, m.ref), USER_PRIV_CASES)
        want = compare(m, res, USER_PRIV_CASES, 'uid %d' % UID)
        modes = {c[1]: w[1][0] & 0o7777 for c, w in zip(USER_PRIV_CASES, want)
                 if c[0] == 'stat'}
        assert modes['s6_append'] == 0o777 and modes['s2_append'] == 0o666
        # (s6_direct: ext4 clears both on an O_DIRECT write, tmpfs neither.)
        # A fallocate that succeeded clears them (tmpfs has no zero range).
        for c, w in zip(USER_PRIV_CASES, want):
            if c[0] == 'fallocate' and w[0] == 'ok':
                assert modes[c[1]] == (0o676 if c[1] == 's2x_falloc' else 0o777), c
        got = {tuple(c[:2]): w for c, w in zip(USER_PRIV_CASES, want)}
        assert got[('fallocate', 's6_falloc')] == ['ok', None]
        assert got[('exec', 'xonly')] == ['ok', 'hello\n']  # execute-only binary runs
        assert got[('read', 'xonly')] == ['err', 'EACCES']  # and is not readable
        assert got[('pwrite', 'others_w622')] == ['ok', 1]
        assert got[('read', 'others_w622')] == ['err', 'EACCES']
        # The mode alone, asked right after the fallocate, is already SOURCE's.
        for c, w, full in zip(USER_PRIV_CASES, want, want[1:]):
            if c[0] == 'stat_mode':
                assert w == ['ok', full[1][0]], c
        assert zctest.read_file(J(m.src, 'others_w622')) == b'y'
        # Root that dropped every capability is an ordinary user.
        res = zctest.run_as(0, 0, (m.mnt, m.ref), ROOT_NOCAPS_CASES, no_caps=True)
        want = compare(m, res, ROOT_NOCAPS_CASES, 'uid 0 without capabilities')
        assert want[0] == ['err', 'EACCES'] and want[1] == ['err', 'EACCES']
        assert want[3] == ['err', 'EPERM']
        # Root of a user namespace of its own: its capabilities stay there.
        try:
            res = zctest.run_as(UID, GID, (m.mnt, m.ref), ROOT_NOCAPS_CASES, own_userns=True)
        except AssertionError as e:
            if 'unshare' not in str(e):
                raise
            pytest.skip('no user namespaces for users here: %s' % e)
        want = compare(m, res, ROOT_NOCAPS_CASES, 'uid %d as root of its own namespace' % UID)
        assert want[0] == ['err', 'EACCES'] and want[3] == ['err', 'EPERM']
        res = zctest.run_as(0, 0, (m.mnt, m.ref), ROOT_CASES)
        want = compare(m, res, ROOT_CASES, 'root')
        # chown by root keeps setgid without group execute, clears setuid.
        assert want[1][1][0] & 0o7777 == 0o2644
        assert want[3][1][0] & 0o7777 == 0o755
        for name in ('s6_append', 's6_direct', 's6_falloc', 'sgid_chown'):
            assert os.stat(J(m.src, name)).st_mode == os.stat(J(m.ref, name)).st_mode, name


# security.capability with cap_setuid,cap_setgid+ep (VFS_CAP_REVISION_2).
FILE_CAPS = struct.pack('<IIIII', 0x02000001, 1 << 6 | 1 << 7, 0, 0, 0)
CAP_CASES = [
    ['fallocate', 'cap_falloc', 0, 0, 65536], ['listxattr', 'cap_falloc'],
    ['pwrite', 'cap_pwrite', 'p'], ['listxattr', 'cap_pwrite'],
    ['truncate', 'cap_truncate', 10], ['listxattr', 'cap_truncate'],
    ['removexattr', 'cap_kept', 'security.capability'], ['listxattr', 'cap_kept'],
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize('perms', PERMS)
def test_file_capabilities_go_when_a_user_changes_the_file(perms):
    # xfstests generic/688: the kernel removes security.capability for a
    # user who changes a file (a REMOVEXATTR as that user), as on SOURCE;
    # the user cannot remove it explicitly without CAP_SETFCAP.
    with mount(perms) as m:
        for root in (m.src, m.ref):
            for name in ('cap_falloc', 'cap_pwrite', 'cap_truncate', 'cap_kept'):
                write_file(J(root, name), b'x' * 100)
                os.chmod(J(root, name), 0o777)
                os.setxattr(J(root, name), 'security.capability', FILE_CAPS)
        res = zctest.run_as(UID, GID, (m.mnt, m.ref), CAP_CASES)
        want = compare(m, res, CAP_CASES, 'uid %d' % UID)
        assert want[0] == ['ok', None] and want[1] == ['ok', []], want
        assert want[3] == ['ok', []] and want[5] == ['ok', []], want
        assert want[6] == ['err', 'EPERM'] and want[7] == ['ok', ['security.capability']]
        for name in ('cap_falloc', 'cap_pwrite', 'cap_truncate'):
            assert 'security.capability' not in os.listxattr(J(m.src, name)), name


def test_times_after_a_write_through_a_mapping():
    # xfstests generic/080 and generic/215: a write through a shared
    # mapping moves mtime and ctime; with kernel passthrough it goes to
    # the backing file, which the kernel's FUSE inode does not see. The
    # times are asked for alone (as stat -c '%Y %Z' does), which the kernel
    # answers from its cache when it has not dropped them.
    with mount() as m:
        path, source = J(m.mnt, 'mapped'), J(m.src, 'mapped')
        write_file(path, b'a' * 4096)
        past = time.time() - 100
        for close_first in (False, True):
            os.utime(path, (past, past))
            fd = os.open(path, os.O_RDWR)
            assert os.fstat(fd).st_mtime == past  # attributes the kernel now keeps
            with mmap.mmap(fd, 4096) as mapping:
                assert mapping[0:4] in (b'aaaa', b'bbbb')
                mapping[0:4096] = b'b' * 4096
                if not close_first:
                    # While it is open, SOURCE's times (new ones with
                    # passthrough, where the page is SOURCE's own).
                    assert zctest.statx_times(path)[1:] == zctest.statx_times(source)[1:]
            os.close(fd)
            assert os.stat(source).st_mtime > past
            assert zctest.statx_times(path)[1:] == zctest.statx_times(source)[1:]
        # Created by the open (whose reply carries the attributes), then mapped.
        fd = os.open(J(m.mnt, 'created'), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        os.ftruncate(fd, 4096)
        before = zctest.statx_times(J(m.mnt, 'created'))
        time.sleep(0.01)
        with mmap.mmap(fd, 4096) as mapping:
            mapping[0:4] = b'cccc'
            during = zctest.statx_times(J(m.mnt, 'created'))
            assert during[1:] == zctest.statx_times(J(m.src, 'created'))[1:]
        os.close(fd)
        after = zctest.statx_times(J(m.mnt, 'created'))
        assert after[1:] == zctest.statx_times(J(m.src, 'created'))[1:]
        assert after[1] >= before[1]


ATIME_RULES = [None, 'noatime', 'relatime', 'strictatime', 'ro', 'ro,strictatime']


@pytest.mark.timeout(120)
@pytest.mark.parametrize('rule', ATIME_RULES)
def test_access_times_follow_the_mounts_option(rule):
    # xfstests generic/003 and generic/120: the mount's own noatime,
    # relatime or strictatime decides what reading through it does to
    # SOURCE's access times (none given: SOURCE's mount decides).
    opts = rule.split(',') if rule else []
    now = time.time()
    with mount(*opts) as m:
        for root in (m.src, m.ref):
            write_file(J(root, 'older'), b'x' * 5000)  # atime before mtime
            os.utime(J(root, 'older'), (now - 3600, now - 60))
            # relatime leaves an atime after mtime and ctime alone (ctime is now).
            write_file(J(root, 'newer'), b'x' * 5000)
            os.utime(J(root, 'newer'), (now + 3600, now - 60))
            os.mkdir(J(root, 'dir'))
            os.utime(J(root, 'dir'), (now - 3600, now - 60))
        moved = {}
        for name in ('older', 'newer', 'dir'):
            before = os.stat(J(m.src, name)).st_atime
            if name == 'dir':
                os.listdir(J(m.mnt, name))
            else:
                assert zctest.read_file(J(m.mnt, name)) == b'x' * 5000
            moved[name] = os.stat(J(m.src, name)).st_atime != before
        # A read-only mount changes no access time, as any read-only mount.
        if 'ro' in opts:
            rule = 'noatime'
        source = zctest.mount_options_of(m.src)
        if rule is None:
            rule = ('noatime' if 'noatime' in source else
                    'strictatime' if 'relatime' not in source else 'relatime')
        want = {'noatime': {'older': False, 'newer': False, 'dir': False},
                'relatime': {'older': True, 'newer': False, 'dir': True},
                'strictatime': {'older': True, 'newer': True, 'dir': True}}[rule]
        if not opts and 'nodiratime' in source:
            want['dir'] = False
        assert moved == want, 'SOURCE mounted %s' % ','.join(sorted(source))
        # strictatime: each read moves it again, also of a file whose pages
        # an earlier open left in the kernel (xfstests generic/003).
        if rule == 'strictatime':
            for _ in range(2):
                before = os.stat(J(m.src, 'newer')).st_atime_ns
                time.sleep(0.01)
                assert zctest.read_file(J(m.mnt, 'newer')) == b'x' * 5000
                assert os.stat(J(m.src, 'newer')).st_atime_ns > before


@pytest.mark.timeout(120)
def test_writeback_write_only_open_and_exec():
    # Under writeback the kernel reads through write-only opens; the caller
    # still needs no read permission, with or without default_permissions.
    for perms in PERMS:
        with mount(perms, 'writeback') as m:
            for root in (m.src, m.ref):
                prepare_priv_tree(root)
            cases = [['pwrite', 'others_w622', 'y'], ['append', 'others_w622', 'z'],
                     ['read', 'others_w622'], ['exec', 'xonly', 'wb'],
                     ['append', 's6_append', 'x'], ['stat', 's6_append']]
            res = zctest.run_as(UID, GID, (m.mnt, m.ref), cases)
            want = compare(m, res, cases, 'uid %d, %s,writeback' % (UID, perms))
            assert want[0] == ['ok', 1] and want[2] == ['err', 'EACCES']
            assert want[3] == ['ok', 'wb\n']
            subprocess.run(['sync'], check=True)
            assert zctest.read_file(J(m.src, 'others_w622')) == b'yz'


# -------------------------------------------------------------- file size

_LIMITED = '''#!/bin/sh
# The daemon started from a shell whose soft file size limit is 1000 blocks.
ulimit -S -f 1000 && exec "$ZCFUSE_LIMITED_BIN" "$@"
'''


def test_file_size_limit_is_the_callers(tmp_path):
    wrapper = tmp_path / 'zcfuse-limited'
    wrapper.write_text(_LIMITED)
    wrapper.chmod(0o755)
    os.environ['ZCFUSE_LIMITED_BIN'] = zctest.zcfuse_bin()
    try:
        with zctest.Mount(opts=zctest.env_mount_opts(), binary=str(wrapper)) as m:
            sizes = {}
            for root in (m.mnt, m.ref):
                for limited in (False, True):
                    name = J(root, 'big%d' % limited)
                    cmd = 'dd if=/dev/zero of=%s bs=64k count=32 2>/dev/null' % name
                    if limited:
                        cmd = 'ulimit -S -f 512; ' + cmd
                    subprocess.run(['sh', '-c', cmd])
                    sizes[root, limited] = os.stat(name).st_size
            # The daemon's own limit cuts nothing; the caller's does, as on SOURCE.
            assert sizes[m.mnt, False] == sizes[m.ref, False] == 2 << 20
            assert sizes[m.mnt, True] == sizes[m.ref, True] == 512 * 512  # dash's blocks
            assert m.proc.poll() is None
    finally:
        del os.environ['ZCFUSE_LIMITED_BIN']


_ACCESS_C = r'''
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		printf("%d ", access(argv[i], R_OK) == 0);
	return 0;
}
'''


@pytest.mark.parametrize('perms', PERMS)
def test_access_from_a_setuid_program(perms):
    # access() checks the real uid: a setuid-root program run by a user
    # asks with the user's identity and none of root's capabilities.
    cc = shutil.which('cc') or shutil.which('gcc')
    if not cc:
        pytest.skip('no C compiler')
    with mount(perms) as m:
        # Beside the mount: a directory the user can reach.
        src, prog = J(m.base, 'access.c'), J(m.base, 'access')
        with open(src, 'w') as f:
            f.write(_ACCESS_C)
        subprocess.run([cc, '-o', prog, src], check=True)
        os.chmod(prog, 0o4755)
        for root in (m.src, m.ref):
            prepare_priv_tree(root)
        out = subprocess.run([prog, J(m.mnt, 'others_secret'), J(m.ref, 'others_secret'),
                              J(m.mnt, 's2_append')],
                             stdout=subprocess.PIPE, user=UID, group=GID, extra_groups=[],
                             check=True).stdout.decode().split()
        assert out == ['0', '0', '1'], out


# ------------------------------------------------------ supplementary groups

SG1, SG2, SG3 = 40201, 40202, 40203  # groups of the caller
NOT_MINE = 40299  # a group the caller is not in
GROUP_DIRS = ['sup', 'sup_sgid', 'sup_sgid_open', 'prim_sgid', 'other_sgid', 'acl', 'neg',
              'negacl']


def prepare_group_tree(root):
    """Directories the caller may change through one of its groups only."""
    def d(name, gid, mode, acl=None):
        os.mkdir(J(root, name))
        os.chown(J(root, name), OTHER, gid)
        os.chmod(J(root, name), mode)
        if acl:
            setfacl(J(root, name), '-m', acl)
        write_file(J(root, name, 'victim'), b'v')
        os.chown(J(root, name, 'victim'), OTHER, OTHER)
    d('sup', SG1, 0o775)
    d('sup_sgid', SG1, 0o2775)
    # Anyone may create here: the group decides only whether setgid stays.
    d('sup_sgid_open', SG1, 0o2777)
    d('prim_sgid', GID, 0o2775)
    d('other_sgid', NOT_MINE, 0o2777)
    # Writable through a named group of the ACL alone.
    d('acl', OTHER, 0o2770, 'g:%d:rwx' % SG2)
    # Others may write, the caller's group may not: so neither may the caller.
    d('neg', SG1, 0o757)
    d('negacl', OTHER, 0o777, 'g:%d:r-x' % SG3)
    for name, gid in (('mine_sup', SG1), ('mine_not', NOT_MINE)):
        write_file(J(root, 'sup', name), b'x')
        os.chown(J(root, 'sup', name), UID, gid)
        os.chmod(J(root, 'sup', name), 0o664)


def group_cases(top, dirs=GROUP_DIRS):
    cases = []
    for d in dirs:
        p = lambda name: '%s/%s/%s' % (top, d, name)
        cases += [
            ['create', p('f'), 0o664], ['stat', p('f')],
            ['create', p('fs'), 0o2775], ['stat', p('fs')],
            ['open', p('o'), 'O_WRONLY|O_CREAT'], ['stat', p('o')],
            ['mkdir', p('d'), 0o775], ['stat', p('d')],
            ['mkfifo', p('p'), 0o664], ['stat', p('p')],
            ['symlink', 'target', p('l')], ['stat', p('l')],
            ['tmpfile', '%s/%s' % (top, d), 0o2775, 't', p('t')],
            ['rename', p('f'), p('f2')], ['link', p('f2'), p('f3')],
            ['unlink', p('f3')], ['unlink', p('f2')], ['rmdir', p('d')], ['unlink', p('l')],
            ['unlink', p('victim')],
            ['listdir', '%s/%s' % (top, d)],
        ]
    return cases


def chmod_cases(top):
    return [['chmod', '%s/sup/mine_sup' % top, 0o2664], ['stat', '%s/sup/mine_sup' % top],
            ['chmod', '%s/sup/mine_not' % top, 0o2664], ['stat', '%s/sup/mine_not' % top]]


@pytest.mark.timeout(120)
@pytest.mark.parametrize('perms', PERMS)
def test_supplementary_groups_as_on_source(perms):
    # The directories' group is the caller's through a supplementary group
    # (the kernel names it with the create) or through its primary one;
    # others need a group the kernel does not name (an ACL's), or refuse
    # one the caller is in.
    callers = {'supp': (GID, [SG1, SG2, SG3]), 'prim': (SG1, [GID, SG2, SG3])}
    with mount(perms) as m:
        for top in callers:
            for root in (m.src, m.ref):
                os.mkdir(J(root, top))
                prepare_group_tree(J(root, top))
        for top, (gid, groups) in callers.items():
            cases = group_cases(top) + chmod_cases(top)
            res = zctest.run_as(UID, gid, (m.mnt, m.ref), cases, groups=groups)
            want = compare(m, res, cases, 'uid %d gid %d groups %s' % (UID, gid, groups))
            by = {tuple(map(str, c[:2])): w for c, w in zip(cases, want)}

            def st(d, name):
                w = by[('stat', '%s/%s/%s' % (top, d, name))]
                assert w[0] == 'ok', (d, name, w)
                return w[1]
            # What a local file system does, spelled out.
            for d in ('sup', 'sup_sgid', 'prim_sgid', 'other_sgid', 'acl'):
                assert by[('create', '%s/%s/f' % (top, d))] == ['ok', None], d
            assert st('sup', 'f')[2] == gid
            assert st('sup_sgid', 'f')[2] == SG1 and st('sup_sgid', 'd')[0] & stat.S_ISGID
            assert st('prim_sgid', 'fs')[0] & stat.S_ISGID  # in the group: kept
            assert st('sup_sgid', 'fs')[0] & stat.S_ISGID
            assert st('sup_sgid_open', 'fs')[0] & stat.S_ISGID
            assert not st('other_sgid', 'fs')[0] & stat.S_ISGID  # not in it: cleared
            assert not st('acl', 'fs')[0] & stat.S_ISGID
            assert st('acl', 'd')[2] == OTHER
            for d in ('neg', 'negacl'):
                assert by[('create', '%s/%s/f' % (top, d))] == ['err', 'EACCES'], d
            assert by[('unlink', '%s/sup/f2' % top)] == ['ok', None]
            assert by[('unlink', '%s/acl/victim' % top)] == ['ok', None]
            for d in ('neg', 'negacl'):
                assert by[('unlink', '%s/%s/victim' % (top, d))] == ['err', 'EACCES'], d
            assert st('sup', 'mine_sup')[0] & 0o7777 == 0o2664
            assert st('sup', 'mine_not')[0] & 0o7777 == 0o664
        for top in callers:
            for name in ('sup/mine_sup', 'sup/mine_not', 'acl/fs', 'sup_sgid/o'):
                a, b = os.stat(J(m.src, top, name)), os.stat(J(m.ref, top, name))
                assert (a.st_mode, a.st_gid) == (b.st_mode, b.st_gid), name


CREATE_OPS = ('create', 'open', 'mkdir', 'mkfifo', 'symlink', 'tmpfile')


@pytest.mark.timeout(120)
def test_creates_take_the_group_the_kernel_names():
    # With default_permissions, creates need none of the caller's groups
    # from /proc (the kernel names the parent's group when the caller is in
    # it), nor do removals and renames in a directory the caller may change
    # without a supplementary group. A group the kernel does not name (an
    # ACL's) is read when fewer were refused.
    with mount('default_permissions') as m:
        for root in (m.src, m.ref):
            os.mkdir(J(root, 'g'))
            prepare_group_tree(J(root, 'g'))
        creates_only = [c for c in group_cases('g', ['sup_sgid', 'sup'])
                        if c[0] in CREATE_OPS + ('stat',)]
        acl = group_cases('g', ['acl'])
        for cases, reads, retries in (
                (group_cases('g', ['prim_sgid', 'other_sgid']), 0, 0),
                # (An O_TMPFILE file is then linked: that needs the group.)
                (creates_only, len([c for c in creates_only if c[0] == 'tmpfile']), 0),
                # Each create refused once; the tmpfile's link, the renames
                # and removals need a group: all read at once.
                (acl, len([c for c in acl if c[0] not in ('stat', 'listdir')]) +
                 len([c for c in acl if c[0] == 'tmpfile']),
                 len([c for c in acl if c[0] in CREATE_OPS]))):
            before = zctest.backend_counters(m.mnt)
            res = zctest.run_as(UID, GID, (m.mnt, m.ref), cases, groups=[SG1, SG2, SG3])
            after = zctest.backend_counters(m.mnt)
            want = compare(m, res, cases, 'uid %d' % UID)
            assert all(w[0] == 'ok' for w in want), want
            got = (zctest.counter_delta(after, before, 'groups.read'),
                   zctest.counter_delta(after, before, 'groups.retried'))
            assert got == (reads, retries), (cases[0], got)
