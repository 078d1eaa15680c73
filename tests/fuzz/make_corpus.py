#!/usr/bin/python3
"""Write the fuzz target's seed corpus: FUSE requests as the kernel sends them.

Each file is one input of fuzz_request.c: a configuration byte, then
requests laid out byte for byte like the kernel's (protocol 7.38, the
installed <linux/fuse.h>), in sequences a real mount produces (lookup, open,
read, write, release; directories; xattrs; ...), with the node ids and file
handles the fuzz target's fresh session hands out (the first name looked up
is node 2, the first open is handle 0). With RING in the configuration byte,
two bytes before each request say how it is split into an io_uring ring
entry: the argument struct's length (above 128: the opcode's own, as the
kernel splits it) and a signed skew of the payload size.

  make_corpus.py [DIR]     (default: corpus/ next to this file)

The files are committed; rerun after changing this script.
"""

import os
import struct
import sys

# fuzz_request.c's configuration bits
NOSPLICE, THRESHOLD_0, WRITEBACK, CACHE_NEVER, DEFAULT_PERMS, OLD_KERNEL, PASSTHROUGH, RING = \
    (1 << i for i in range(8))
# A ring entry's split: the argument struct as the kernel puts it in op_in.
KERNEL_SPLIT = 0xff

OP = dict(LOOKUP=1, FORGET=2, GETATTR=3, SETATTR=4, READLINK=5, SYMLINK=6, MKNOD=8, MKDIR=9,
          UNLINK=10, RMDIR=11, RENAME=12, LINK=13, OPEN=14, READ=15, WRITE=16, STATFS=17,
          RELEASE=18, FSYNC=20, SETXATTR=21, GETXATTR=22, LISTXATTR=23, REMOVEXATTR=24,
          FLUSH=25, INIT=26, OPENDIR=27, READDIR=28, RELEASEDIR=29, FSYNCDIR=30, GETLK=31,
          SETLK=32, SETLKW=33, ACCESS=34, CREATE=35, INTERRUPT=36, BMAP=37, DESTROY=38,
          IOCTL=39, POLL=40, NOTIFY_REPLY=41, BATCH_FORGET=42, FALLOCATE=43, READDIRPLUS=44,
          RENAME2=45, LSEEK=46, COPY_FILE_RANGE=47, SETUPMAPPING=48, REMOVEMAPPING=49,
          SYNCFS=50, TMPFILE=51)

O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND = 0, 1, 2, 0o100, 0o200, 0o1000, \
    0o2000
O_DIRECTORY, O_NOFOLLOW = 0o200000, 0o400000
S_IFREG, S_IFDIR = 0o100000, 0o040000
FATTR_MODE, FATTR_UID, FATTR_GID, FATTR_SIZE, FATTR_ATIME, FATTR_MTIME, FATTR_FH = \
    1, 2, 4, 8, 16, 32, 64
FATTR_ATIME_NOW, FATTR_MTIME_NOW, FATTR_CTIME, FATTR_KILL_SUIDGID = 128, 256, 1024, 2048
FUSE_WRITE_CACHE, FUSE_WRITE_KILL_SUIDGID = 1, 4
FUSE_OPEN_KILL_SUIDGID = 1
FUSE_LK_FLOCK = 1
FUSE_GETATTR_FH = 1
ROOT = 1


class Seq:
    """A sequence of requests with increasing unique ids."""

    def __init__(self, uid=0, gid=0):
        self.parts = []
        self.splits = []
        self.unique = 100
        self.uid, self.gid = uid, gid

    def req(self, opcode, nodeid=0, body=b'', uid=None, gid=None, unique=None, ext=b'',
            extlen=None):
        """ext: extensions after the arguments (extlen 8-byte units of them by default)."""
        if unique is None:
            self.unique += 2
            unique = self.unique
        uid = self.uid if uid is None else uid
        gid = self.gid if gid is None else gid
        if extlen is None:
            extlen = len(ext) // 8
        body += ext
        hdr = struct.pack('<IIQQIIIHH', 40 + len(body), OP[opcode] if isinstance(opcode, str)
                          else opcode, unique, nodeid, uid, gid, 4242, extlen, 0)
        self.parts.append(hdr + body)
        self.splits.append((KERNEL_SPLIT, 0))
        return self

    def raw(self, data):
        self.parts.append(data)
        self.splits.append((KERNEL_SPLIT, 0))
        return self

    def split(self, op_in, skew=0):
        """As a ring entry, the last request: op_in bytes of argument struct, payload size
        off by skew."""
        self.splits[-1] = (op_in, skew)
        return self

    def bytes(self, cfg):
        if not cfg & RING:
            return bytes([cfg]) + b''.join(self.parts)
        return bytes([cfg]) + b''.join(struct.pack('<Bb', op_in, skew) + part
                                       for part, (op_in, skew) in zip(self.parts, self.splits))

    # one method per request, arguments as the kernel lays them out
    def lookup(self, parent, name, **kw):
        return self.req('LOOKUP', parent, z(name), **kw)

    def forget(self, node, n=1):
        return self.req('FORGET', node, struct.pack('<Q', n))

    def batch_forget(self, pairs):
        body = struct.pack('<II', len(pairs), 0) + b''.join(struct.pack('<QQ', a, b)
                                                             for a, b in pairs)
        return self.req('BATCH_FORGET', 0, body)

    def getattr(self, node, fh=None):
        return self.req('GETATTR', node, struct.pack('<IIQ', FUSE_GETATTR_FH if fh is not None
                                                     else 0, 0, fh or 0))

    def setattr(self, node, valid, fh=0, size=0, mode=0, uid=0, gid=0, atime=0, mtime=0, **kw):
        body = struct.pack('<IIQQQQQQIIIIIIII', valid, 0, fh, size, 0, atime, mtime, 0, 0, 0, 0,
                           mode, 0, uid, gid, 0)
        return self.req('SETATTR', node, body, **kw)

    def readlink(self, node):
        return self.req('READLINK', node)

    def symlink(self, parent, name, target, **kw):
        return self.req('SYMLINK', parent, z(name) + z(target), **kw)

    def mknod(self, parent, name, mode, rdev=0, **kw):
        return self.req('MKNOD', parent, struct.pack('<IIII', mode, rdev, 0o022, 0) + z(name),
                        **kw)

    def mkdir(self, parent, name, mode=0o755, **kw):
        return self.req('MKDIR', parent, struct.pack('<II', mode, 0o022) + z(name), **kw)

    def unlink(self, parent, name):
        return self.req('UNLINK', parent, z(name))

    def rmdir(self, parent, name):
        return self.req('RMDIR', parent, z(name))

    def rename(self, parent, name, newparent, newname):
        return self.req('RENAME', parent, struct.pack('<Q', newparent) + z(name) + z(newname))

    def rename2(self, parent, name, newparent, newname, flags):
        return self.req('RENAME2', parent, struct.pack('<QII', newparent, flags, 0) + z(name)
                        + z(newname))

    def link(self, node, newparent, newname):
        return self.req('LINK', newparent, struct.pack('<Q', node) + z(newname))

    def open(self, node, flags, open_flags=0, **kw):
        return self.req('OPEN', node, struct.pack('<II', flags, open_flags), **kw)

    def read(self, node, fh, off, size, op='READ'):
        return self.req(op, node, struct.pack('<QQIIQII', fh, off, size, 0, 0, O_RDWR, 0))

    def write(self, node, fh, off, data, write_flags=0, **kw):
        return self.req('WRITE', node, struct.pack('<QQIIQII', fh, off, len(data), write_flags, 0,
                                                   O_RDWR, 0) + data, **kw)

    def statfs(self, node=ROOT):
        return self.req('STATFS', node)

    def release(self, node, fh, op='RELEASE'):
        return self.req(op, node, struct.pack('<QIIQ', fh, 0, 0, 0))

    def fsync(self, node, fh, datasync=0, op='FSYNC'):
        return self.req(op, node, struct.pack('<QII', fh, datasync, 0))

    def setxattr(self, node, name, value, flags=0):
        return self.req('SETXATTR', node, struct.pack('<II', len(value), flags) + z(name) + value)

    def getxattr(self, node, name, size):
        return self.req('GETXATTR', node, struct.pack('<II', size, 0) + z(name))

    def listxattr(self, node, size):
        return self.req('LISTXATTR', node, struct.pack('<II', size, 0))

    def removexattr(self, node, name):
        return self.req('REMOVEXATTR', node, z(name))

    def flush(self, node, fh):
        return self.req('FLUSH', node, struct.pack('<QIIQ', fh, 0, 0, 0))

    def opendir(self, node):
        return self.req('OPENDIR', node, struct.pack('<II', O_RDONLY | O_DIRECTORY, 0))

    def lk(self, node, fh, start, end, typ, flags=0, op='SETLK'):
        body = struct.pack('<QQQQIIII', fh, 0x1234, start, end, typ, 4242, flags, 0)
        return self.req(op, node, body)

    def access(self, node, mask, **kw):
        return self.req('ACCESS', node, struct.pack('<II', mask, 0), **kw)

    def create(self, parent, name, flags, mode, open_flags=0, **kw):
        return self.req('CREATE', parent, struct.pack('<IIII', flags, mode, 0o022, open_flags)
                        + z(name), **kw)

    def interrupt(self, unique):
        return self.req('INTERRUPT', 0, struct.pack('<Q', unique))

    def fallocate(self, node, fh, off, length, mode=0):
        return self.req('FALLOCATE', node, struct.pack('<QQQII', fh, off, length, mode, 0))

    def lseek(self, node, fh, off, whence):
        return self.req('LSEEK', node, struct.pack('<QQII', fh, off, whence, 0))

    def copy_file_range(self, node, fh_in, off_in, node_out, fh_out, off_out, length):
        return self.req('COPY_FILE_RANGE', node, struct.pack('<QQQQQQQ', fh_in, off_in, node_out,
                                                             fh_out, off_out, length, 0))


def z(name):
    return (name.encode() if isinstance(name, str) else name) + b'\0'


def ext_groups(*gids, size=None, nr=None):
    """A FUSE_EXT_GROUPS extension (type 32): its size, the count, the gids, padded to 8."""
    body = struct.pack('<I', len(gids) if nr is None else nr) + \
        b''.join(struct.pack('<I', g) for g in gids)
    body += bytes(-(8 + len(body)) % 8)
    return struct.pack('<II', 8 + len(body) if size is None else size, 32) + body


def corpus():
    """{name: (Seq, [cfg, ...])}"""
    out = {}
    splice_cfgs = [0, NOSPLICE, THRESHOLD_0, CACHE_NEVER | DEFAULT_PERMS]

    # Node ids in the fresh session: the first name looked up is 2.
    s = Seq().lookup(ROOT, 'f').open(2, O_RDONLY).read(2, 0, 0, 4096).read(2, 0, 0, 65536) \
        .read(2, 0, 90000, 65536).read(2, 0, 200000, 4096).getattr(2, fh=0).flush(2, 0) \
        .release(2, 0).forget(2)
    out['read'] = (s, splice_cfgs + [PASSTHROUGH, RING, RING | PASSTHROUGH])

    s = Seq().lookup(ROOT, 'f').open(2, O_RDWR).write(2, 0, 0, b'hello') \
        .write(2, 0, 5000, bytes(range(256)) * 160).write(2, 0, 1 << 20, b'x' * 40000) \
        .fsync(2, 0).fsync(2, 0, datasync=1).setattr(2, FATTR_SIZE | FATTR_FH, fh=0, size=1234) \
        .read(2, 0, 0, 8192).flush(2, 0).release(2, 0)
    out['write'] = (s, splice_cfgs + [WRITEBACK, PASSTHROUGH, PASSTHROUGH | WRITEBACK, RING,
                                      RING | WRITEBACK])

    s = Seq().mkdir(ROOT, 'nd').create(2, 'new', O_RDWR | O_CREAT | O_EXCL, S_IFREG | 0o644) \
        .write(3, 0, 0, b'data').release(3, 0).rename(2, 'new', ROOT, 'moved') \
        .link(3, 2, 'hard').rename2(ROOT, 'moved', 2, 'hard', 2).unlink(2, 'hard') \
        .unlink(ROOT, 'moved').rmdir(ROOT, 'nd').mknod(ROOT, 'node', S_IFREG | 0o600) \
        .unlink(ROOT, 'node')
    out['namespace'] = (s, [0, DEFAULT_PERMS, RING])

    # Creates with the parent's group (FUSE_CREATE_SUPP_GROUP), well and badly formed.
    s = Seq(uid=1000, gid=1000).mkdir(ROOT, 'gd', ext=ext_groups(0)) \
        .create(ROOT, 'gf', O_RDWR | O_CREAT, S_IFREG | 0o2775, ext=ext_groups(0)) \
        .mknod(ROOT, 'gn', S_IFREG | 0o600, ext=ext_groups(0, 7)) \
        .symlink(ROOT, 'gs', 't', ext=ext_groups(0, size=4096)) \
        .mkdir(ROOT, 'gx', ext=ext_groups(0), extlen=400) \
        .mkdir(ROOT, 'gy', ext=ext_groups(nr=0x40000000)) \
        .mkdir(ROOT, 'gz', ext=struct.pack('<II', 16, 31) + bytes(8) + ext_groups(0)) \
        .req('TMPFILE', ROOT, struct.pack('<IIII', O_RDWR, S_IFREG | 0o600, 0o022, 0),
             ext=ext_groups(0))
    out['supp-group'] = (s, [0, DEFAULT_PERMS, RING])

    s = Seq().opendir(ROOT).req('READDIR', ROOT, struct.pack('<QQIIQII', 0, 0, 4096, 0, 0, 0, 0)) \
        .req('READDIRPLUS', ROOT, struct.pack('<QQIIQII', 0, 0, 4096, 0, 0, 0, 0)) \
        .req('READDIRPLUS', ROOT, struct.pack('<QQIIQII', 0, 3, 200, 0, 0, 0, 0)) \
        .fsync(ROOT, 0, op='FSYNCDIR').release(ROOT, 0, op='RELEASEDIR')
    out['readdir'] = (s, [0, CACHE_NEVER, RING])

    s = Seq().symlink(ROOT, 'sl', '../../etc/passwd').readlink(2).lookup(ROOT, 'l').readlink(3) \
        .lookup(ROOT, 'up').open(4, O_RDONLY).lookup(ROOT, 'd').lookup(5, 'g').getattr(6)
    out['symlinks'] = (s, [0])

    s = Seq().lookup(ROOT, 'small').setxattr(2, 'user.a', b'value').getxattr(2, 'user.a', 0) \
        .getxattr(2, 'user.a', 64).getxattr(2, 'user.a', 2).listxattr(2, 0).listxattr(2, 256) \
        .removexattr(2, 'user.a').getxattr(ROOT, 'user.zcfuse.stats', 0) \
        .getxattr(ROOT, 'user.zcfuse.stats', 65536).setxattr(ROOT, 'trusted.t', b'1')
    out['xattr'] = (s, [0, RING])

    s = Seq().statfs().access(ROOT, 7).lookup(ROOT, 'f').access(2, 4, uid=1000, gid=1000) \
        .open(2, O_RDWR).lseek(2, 0, 0, 3).lseek(2, 0, 4096, 4).fallocate(2, 0, 0, 1 << 20) \
        .fallocate(2, 0, 4096, 8192, 3).copy_file_range(2, 0, 0, 2, 0, 300000, 5000) \
        .lk(2, 0, 0, 0, 1, FUSE_LK_FLOCK).lk(2, 0, 0, 0, 2, FUSE_LK_FLOCK) \
        .lk(2, 0, 0, 100, 1, op='GETLK').release(2, 0)
    out['misc'] = (s, [0, RING])

    s = Seq().lookup(ROOT, 'f').lookup(ROOT, 'f').lookup(ROOT, 'd').forget(2, 1) \
        .batch_forget([(2, 1), (3, 1), (99, 5)]).interrupt(12345).req('DESTROY') \
        .lookup(ROOT, 'f')
    out['forget'] = (s, [0])

    # Names the kernel never sends: the backend must refuse them.
    s = Seq()
    for name in ('..', '.', '', 'a/b', '../etc', 'x' * 300, b'\xff\xfe\n,'):
        s.lookup(ROOT, name).mkdir(ROOT, name).create(ROOT, name, O_RDWR | O_CREAT, S_IFREG
                                                      | 0o644)
    s.rename(ROOT, 'f', ROOT, '..').link(ROOT, ROOT, '..').symlink(ROOT, '..', '/')
    out['bad-names'] = (s, [0])

    # A non-owner writes to a setuid file; chmod and truncate ask to kill privileges.
    s = Seq().lookup(ROOT, 'suid').open(2, O_RDWR, FUSE_OPEN_KILL_SUIDGID, uid=1000, gid=1000) \
        .write(2, 0, 0, b'x', FUSE_WRITE_KILL_SUIDGID, uid=1000, gid=1000) \
        .setattr(2, FATTR_MODE, mode=S_IFREG | 0o6755) \
        .setattr(2, FATTR_SIZE | FATTR_KILL_SUIDGID, size=1, uid=1000, gid=1000).getattr(2) \
        .setattr(2, FATTR_ATIME | FATTR_MTIME | FATTR_UID | FATTR_GID, atime=5, mtime=6,
                 uid=4000, gid=4000).setattr(2, FATTR_ATIME_NOW | FATTR_MTIME_NOW | FATTR_CTIME) \
        .release(2, 0)
    out['killpriv'] = (s, [0, DEFAULT_PERMS])

    # Malformed messages: short, lying lengths, unknown opcodes, wrong handles.
    s = Seq().raw(struct.pack('<I', 12) + b'\x01' * 8).req('LOOKUP', ROOT, b'f') \
        .req('GETATTR', ROOT, b'').req('READ', ROOT, b'\x00' * 8).req('WRITE', ROOT, b'') \
        .write(ROOT, 7, 0, b'zz').read(ROOT, 31, 0, 4096).read(ROOT, 0, 0, 1 << 30) \
        .req(9999, ROOT).req('INIT', 0, b'\x07' * 64).req('BMAP', ROOT, b'\x00' * 16) \
        .req('IOCTL', ROOT, b'\x00' * 32).req('POLL', ROOT, b'\x00' * 24) \
        .req('SYNCFS', ROOT, b'\x00' * 8).req('TMPFILE', ROOT, b'\x00' * 16 + b'x\0') \
        .req('SETUPMAPPING', ROOT, b'\x00' * 40).req('NOTIFY_REPLY', 0, b'\x00' * 24) \
        .release(ROOT, 5).release(ROOT, 0, op='RELEASEDIR')
    out['malformed'] = (s, [0, NOSPLICE, OLD_KERNEL, RING])

    # Ring entries: writeback WRITEs large enough for a queue's pool (32 KiB).
    s = Seq().lookup(ROOT, 'f').open(2, O_RDWR).write(2, 0, 0, b'w' * 65536, FUSE_WRITE_CACHE) \
        .write(2, 0, 65536, b'v' * 4096, FUSE_WRITE_CACHE).read(2, 0, 0, 131072).flush(2, 0) \
        .release(2, 0)
    out['ring-writeback'] = (s, [RING | WRITEBACK])

    # Ring entries split anywhere (the same request put together), and with payload
    # sizes that disagree with the header: too large, too small, past the argument
    # struct's room, past the payload buffer, wrapped round.
    s = Seq().lookup(ROOT, 'f').split(0).open(2, O_RDWR).split(0) \
        .read(2, 0, 0, 4096).split(0).read(2, 0, 0, 4096).split(128) \
        .write(2, 0, 0, b'hello').split(16).write(2, 0, 0, b'abc' * 10).split(KERNEL_SPLIT, 8) \
        .write(2, 0, 0, b'zz' * 8).split(KERNEL_SPLIT, -8).read(2, 0, 0, 100).split(0, -40) \
        .getattr(2).split(KERNEL_SPLIT, -128).getattr(2).split(KERNEL_SPLIT, 8) \
        .lookup(ROOT, 'small').split(0, -100).lookup(ROOT, 'small').split(0, 127) \
        .setattr(2, FATTR_SIZE, size=10).split(KERNEL_SPLIT, -48) \
        .raw(struct.pack('<I', 12) + b'\x01' * 8).statfs().split(128).release(2, 0)
    out['ring-splits'] = (s, [RING, RING | NOSPLICE])

    return out


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(
        os.path.abspath(__file__)), 'corpus')
    os.makedirs(d, exist_ok=True)
    n = 0
    for name, (seq, cfgs) in sorted(corpus().items()):
        for cfg in cfgs:
            with open(os.path.join(d, 'seed-%s-%02x' % (name, cfg)), 'wb') as f:
                f.write(seq.bytes(cfg))
            n += 1
        # Each request alone, too: short inputs mutate well.
        if name.startswith('ring-'):
            continue
        for i, part in enumerate(seq.parts):
            with open(os.path.join(d, 'seed-%s-req%02d' % (name, i)), 'wb') as f:
                f.write(bytes([0]) + part)
            n += 1
    print('%d seed inputs in %s' % (n, d))


if __name__ == '__main__':
    main()
