"""The single-file store (examples/blobstore): durability and refusal of bad stores.

Runs with ZCFUSE_BACKEND=blobstore and ZCFUSE_BIN pointing at the example.

- Everything that was fsynced is there after a clean unmount and mount, and
  after the daemon is killed with SIGKILL and the store mounted again.
- A store that is corrupt, truncated, of another version or not a store at
  all is refused before anything is mounted: exit status 1 and one line on
  stderr that says what is wrong, never a crash.
- Damage inside the index behind checksums that match (which only a bug
  or a deliberate edit makes) is refused as well, or harmless: the parser
  never crashes.
- An empty backing file is a new, empty store (that is how a store is made).
- A torn superblock write (the newest slot fails its checksum) falls back
  to the other slot, the previous commit.
"""

import os
import random
import shutil
import signal
import stat
import struct
import subprocess
import tempfile

import pytest

import zctest
from zctest import read_file, write_file

J = os.path.join
MiB = 1 << 20
BLOCK = 4096
MAGIC = b'zcfsblob'


@pytest.fixture(autouse=True)
def only_blobstore():
    if zctest.current_backend() != 'blobstore':
        pytest.skip('these tests are about the blobstore example (ZCFUSE_BACKEND=blobstore)')
    zctest.require_fuse()


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix='zcfuse-blob-', dir=zctest.tmp_root())
    yield d
    shutil.rmtree(d, ignore_errors=True)


def blob_mount(store, **kwargs):
    return zctest.Mount(store=store, **kwargs)


def fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def snapshot(root):
    """The tree with times too: what a remount must give back."""
    snap = zctest.tree_snapshot(root)
    for rel in snap:
        st = os.lstat(J(root, rel))
        snap[rel]['times'] = (st.st_mtime_ns, st.st_atime_ns)
    return snap


def populate(root, seed):
    """Files of several sizes, a sparse one, directories, links, xattrs, modes, owners."""
    rng = random.Random(seed)
    os.makedirs(J(root, 'dir', 'sub'))
    write_file(J(root, 'empty'), b'')
    write_file(J(root, 'small'), b'small file %d' % seed)
    write_file(J(root, 'dir', 'big'), rng.randbytes(3 * MiB + 123))
    write_file(J(root, 'dir', 'sub', 'page'), rng.randbytes(BLOCK))
    fd = os.open(J(root, 'sparse'), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, b'head', 0)
        os.pwrite(fd, rng.randbytes(10000), 5 * MiB)
    finally:
        os.close(fd)
    os.symlink('dir/big', J(root, 'link'))
    os.link(J(root, 'small'), J(root, 'dir', 'hardlink'))
    os.mkfifo(J(root, 'fifo'), 0o640)
    os.chmod(J(root, 'dir', 'sub'), 0o2750)
    os.chown(J(root, 'small'), 1234, 5678)
    os.setxattr(J(root, 'small'), 'user.note', b'kept with the file')
    os.utime(J(root, 'dir', 'big'), ns=(1_000_000_000_123, 1_500_000_000_456))


def sync_all(root):
    """fsync every file and directory (each commits the whole store)."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            path = J(dirpath, name)
            if os.path.isfile(path) and not os.path.islink(path):
                fsync_path(path)
        fd = os.open(dirpath, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def test_clean_remount_keeps_everything(workdir):
    store = J(workdir, 'store.blob')
    with blob_mount(store) as m:
        populate(m.mnt, 1)
        sync_all(m.mnt)
        # Not fsynced, but a clean unmount commits it too.
        write_file(J(m.mnt, 'unsynced'), b'written last')
        before = snapshot(m.mnt)
    assert os.path.getsize(store) > 3 * MiB
    with blob_mount(store) as m:
        after = snapshot(m.mnt)
        assert after == before
        # The store keeps working: change, remove, remount again.
        os.unlink(J(m.mnt, 'dir', 'big'))
        write_file(J(m.mnt, 'small'), b'rewritten')
        before = snapshot(m.mnt)
    with blob_mount(store) as m:
        assert snapshot(m.mnt) == before
        assert read_file(J(m.mnt, 'dir', 'hardlink')) == b'rewritten'


def kill_daemon(m):
    """SIGKILL the daemon, then remove the dead mount."""
    m.proc.send_signal(signal.SIGKILL)
    m.proc.wait(timeout=10)
    ok, msg = zctest.fusermount_unmount(m.mnt)
    if not ok:
        zctest.fusermount_unmount(m.mnt, lazy=True)


def kill9_cycles(store, max_size, cycles=3):
    """Write, fsync and SIGKILL the daemon, cycles times; then everything
    fsynced is there. Returns what was fsynced (name: data)."""
    rng = random.Random(7)
    expected = {}
    for cycle in range(cycles):
        with blob_mount(store, expected_exit=-signal.SIGKILL) as m:
            # What the previous cycles fsynced is all there.
            for name, data in expected.items():
                assert read_file(J(m.mnt, name)) == data, (cycle, name)
            # A new file, fsynced.
            name = 'f%d' % cycle
            expected[name] = rng.randbytes(rng.randint(1, max_size))
            write_file(J(m.mnt, name), expected[name])
            if cycle:
                # Overwrite part of last cycle's file in place.
                old = 'f%d' % (cycle - 1)
                piece = rng.randbytes(5000)
                fd = os.open(J(m.mnt, old), os.O_WRONLY)
                try:
                    os.pwrite(fd, piece, 100)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                data = bytearray(expected[old].ljust(5100, b'\0'))
                data[100:5100] = piece
                expected[old] = bytes(data)
            fsync_path(J(m.mnt, name))
            # Not fsynced: may or may not survive, but must not break the store.
            write_file(J(m.mnt, 'unsynced%d' % cycle), rng.randbytes(300000))
            kill_daemon(m)
    with blob_mount(store) as m:
        for name, data in expected.items():
            assert read_file(J(m.mnt, name)) == data, name
        names = set(os.listdir(m.mnt))
        assert set(expected) <= names
        # Whatever of the unsynced files survived is readable.
        for name in names - set(expected):
            read_file(J(m.mnt, name))
    return expected


def test_kill9_keeps_fsynced_data(workdir):
    kill9_cycles(J(workdir, 'store.blob'), 2 * MiB)


# ------------------------------------------------------------- bad stores

_CRC_TABLE = []


def crc32c(data):
    if not _CRC_TABLE:
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            _CRC_TABLE.append(c)
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def read_slots(store):
    """[(slot, generation, index_block, index_len)] of the slots with the magic."""
    out = []
    with open(store, 'rb') as f:
        for slot in (0, 1):
            f.seek(slot * BLOCK)
            raw = f.read(64)
            if raw[:8] != MAGIC:
                continue
            gen, iblock, ilen = struct.unpack_from('<QQQ', raw, 16)
            out.append((slot, gen, iblock, ilen))
    return out


def newest(store):
    return max(read_slots(store), key=lambda s: s[1])


def patch(store, offset, data):
    with open(store, 'r+b') as f:
        f.seek(offset)
        f.write(data)


def flip(store, offset):
    with open(store, 'r+b') as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x5A]))


def make_store(store):
    with blob_mount(store) as m:
        write_file(J(m.mnt, 'data'), os.urandom(MiB))
        os.mkdir(J(m.mnt, 'd'))
        sync_all(m.mnt)


def wrong_magic(store):
    for slot in (0, 1):
        patch(store, slot * BLOCK, b'notablob')


def bad_superblock_checksum(store):
    for slot, *_ in read_slots(store):
        flip(store, slot * BLOCK + 20)


def bad_index_checksum(store):
    _, _, iblock, ilen = newest(store)
    flip(store, iblock * BLOCK + ilen // 2)


def truncated_index(store):
    _, _, iblock, ilen = newest(store)
    os.truncate(store, iblock * BLOCK + ilen // 2)


def truncated_to_superblocks(store):
    os.truncate(store, 2 * BLOCK)


def truncated_in_superblock(store):
    os.truncate(store, 30)


def random_bytes(store):
    with open(store, 'wb') as f:
        f.write(os.urandom(MiB))


def foreign_file(store):
    shutil.copyfile('/bin/true', store)


def text_file(store):
    with open(store, 'w') as f:
        f.write('just some text\n' * 1000)


def future_version(store):
    for slot, *_ in read_slots(store):
        with open(store, 'r+b') as f:
            f.seek(slot * BLOCK)
            raw = bytearray(f.read(64))
            struct.pack_into('<I', raw, 8, 99)
            struct.pack_into('<I', raw, 60, crc32c(bytes(raw[:60])))
            f.seek(slot * BLOCK)
            f.write(raw)


BAD_STORES = [
    # corruption, what the one line must say
    (wrong_magic, 'not a blob store'),
    (bad_superblock_checksum, 'superblock checksum mismatch'),
    (bad_index_checksum, 'index checksum mismatch'),
    (truncated_index, 'truncated'),
    (truncated_to_superblocks, 'truncated'),
    (truncated_in_superblock, 'not a blob store'),
    (random_bytes, 'not a blob store'),
    (foreign_file, 'not a blob store'),
    (text_file, 'not a blob store'),
    (future_version, 'format version 99 is not supported'),
]


@pytest.mark.parametrize('corrupt,message', BAD_STORES, ids=[c.__name__ for c, _ in BAD_STORES])
def test_bad_store_is_refused(workdir, corrupt, message):
    store = J(workdir, 'store.blob')
    mnt = J(workdir, 'mnt')
    os.mkdir(mnt)
    make_store(store)
    corrupt(store)
    try:
        r = subprocess.run([zctest.zcfuse_bin(), store, mnt, '-f'], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    finally:
        if zctest.is_mounted(mnt):
            zctest.fusermount_unmount(mnt, lazy=True)
            pytest.fail('a bad store was mounted')
    err = r.stderr.decode(errors='replace')
    assert r.returncode == 1, (r.returncode, err)
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith('blobstore: %s: ' % store), err
    assert message in lines[0], err


def read_head(path):
    """The first 64 KiB of a regular file (a damaged size may claim a terabyte)."""
    if not stat.S_ISREG(os.lstat(path).st_mode):
        return None     # a FIFO would wait for a writer
    with open(path, 'rb') as f:
        return f.read(65536)


def rewrite_checksums(store, slot, index):
    """Write @index as the index of superblock @slot with checksums that match."""
    with open(store, 'r+b') as f:
        f.seek(slot * BLOCK)
        raw = bytearray(f.read(64))
        iblock = struct.unpack_from('<Q', raw, 24)[0]
        f.seek(iblock * BLOCK)
        f.write(index)
        struct.pack_into('<I', raw, 40, crc32c(index))
        struct.pack_into('<I', raw, 60, crc32c(bytes(raw[:60])))
        f.seek(slot * BLOCK)
        f.write(raw)


@pytest.mark.timeout(300)
def test_index_damage_behind_valid_checksums_never_crashes(workdir):
    """Damage the index and fix the checksums up: the parser itself must hold.

    Each damaged store is either refused (exit 1, one line) or, when the
    damage happens to be harmless (a timestamp, a mode bit), mounted and
    readable; the daemon never dies from a signal.
    """
    store = J(workdir, 'store.blob')
    mnt = J(workdir, 'mnt')
    os.mkdir(mnt)
    with blob_mount(store) as m:
        populate(m.mnt, 3)
    pristine = J(workdir, 'pristine.blob')
    shutil.copyfile(store, pristine)
    slot, _, iblock, ilen = newest(pristine)
    with open(pristine, 'rb') as f:
        f.seek(iblock * BLOCK)
        index = f.read(ilen)
    rng = random.Random(11)
    outcomes = {'refused': 0, 'mounted': 0}
    for case in range(40):
        shutil.copyfile(pristine, store)
        damaged = bytearray(index)
        kind = case % 4
        if kind == 0:       # a few random bytes
            for _ in range(rng.randint(1, 4)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        elif kind == 1:     # a count or length turned huge
            at = rng.randrange(len(damaged) - 4)
            damaged[at:at + 4] = b'\xff\xff\xff\x7f'
        elif kind == 2:     # cut short
            damaged = damaged[:rng.randrange(len(damaged))]
        else:               # a run of bytes repeated elsewhere
            a, b = rng.randrange(len(damaged)), rng.randrange(len(damaged))
            n = rng.randint(8, 64)
            damaged[b:b + n] = damaged[a:a + n]
        rewrite_checksums(store, slot, bytes(damaged))
        # noio_uring: no line naming the default transport on stderr.
        proc = subprocess.Popen([zctest.zcfuse_bin(), store, mnt, '-f', '-o', 'noio_uring'],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            zctest.wait_until(lambda: proc.poll() is not None or zctest.is_mounted(mnt), 20,
                              'blobstore to mount or exit')
            if zctest.is_mounted(mnt):
                outcomes['mounted'] += 1
                for dirpath, dirnames, filenames in os.walk(mnt):
                    for name in filenames:
                        zctest.attempt(read_head, J(dirpath, name))
                ok, msg = zctest.fusermount_unmount(mnt)
                assert ok, msg
            _, err = proc.communicate(timeout=20)
        finally:
            if zctest.is_mounted(mnt):
                zctest.fusermount_unmount(mnt, lazy=True)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        err = err.decode(errors='replace')
        assert proc.returncode in (0, 1), 'case %d: exit %d: %s' % (case, proc.returncode, err)
        if proc.returncode == 1:
            outcomes['refused'] += 1
            lines = err.splitlines()
            assert len(lines) == 1 and lines[0].startswith('blobstore: '), (case, err)
        else:
            assert not err, (case, err)
    assert outcomes['refused'] >= 20, outcomes


def test_empty_file_is_a_new_store(workdir):
    store = J(workdir, 'store.blob')
    open(store, 'wb').close()
    with blob_mount(store) as m:
        assert os.listdir(m.mnt) == []
        write_file(J(m.mnt, 'first'), b'into a new store')
    with blob_mount(store) as m:
        assert read_file(J(m.mnt, 'first')) == b'into a new store'


def test_torn_superblock_falls_back_to_the_previous_commit(workdir):
    store = J(workdir, 'store.blob')
    with blob_mount(store) as m:
        write_file(J(m.mnt, 'a'), b'committed first')
        fsync_path(J(m.mnt, 'a'))
        # The state of the file after this commit, as a crash during the next one leaves it.
        shutil.copyfile(store, J(workdir, 'copy.blob'))
        slot, gen, _, _ = newest(store)
        write_file(J(m.mnt, 'b'), b'committed second')
        fsync_path(J(m.mnt, 'b'))
    # The next commit writes the other slot; tear that write.
    copy = J(workdir, 'copy.blob')
    other = 1 - slot
    patch(copy, other * BLOCK, MAGIC + struct.pack('<IIQ', 1, BLOCK, gen + 1) + os.urandom(40))
    with blob_mount(copy) as m:
        assert sorted(os.listdir(m.mnt)) == ['a']
        assert read_file(J(m.mnt, 'a')) == b'committed first'
    with blob_mount(store) as m:
        assert sorted(os.listdir(m.mnt)) == ['a', 'b']


def test_store_in_use_is_refused(workdir):
    store = J(workdir, 'store.blob')
    mnt2 = J(workdir, 'mnt2')
    os.mkdir(mnt2)
    with blob_mount(store):
        r = subprocess.run([zctest.zcfuse_bin(), store, mnt2, '-f'], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        if zctest.is_mounted(mnt2):
            zctest.fusermount_unmount(mnt2, lazy=True)
        assert r.returncode == 1
        assert 'in use by another process' in r.stderr.decode()
