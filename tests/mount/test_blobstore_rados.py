"""The blob store on a Ceph RADOS pool: durability, one writer, errors.

Runs with ZCFUSE_BACKEND=blobstore and ZCFUSE_STORE=rados: conftest.py
starts a one-node cluster (tests/lib/cephcluster.py) for the session, with
operations of client.zcfuse timing out after cephcluster.OP_TIMEOUT
seconds.

- Everything fsynced is there after a clean unmount and mount, and after
  the daemon is killed with SIGKILL (whose lock is then broken: its holder
  is gone).
- A second mount of the same store is refused with one line naming the
  holder; a mount whose lock was broken (its client blocklisted) fails
  writes with EIO and writes nothing more.
- Superblock objects that fail their checksum, or hold no superblock,
  are refused with one line.
- A cluster that cannot be reached fails the mount with one line naming
  it, within the connection timeout; conf= and id= (or CEPH_CONF and
  CEPH_ARGS) say which cluster and client.
- A mount in the background (no -f) works, and its refusals still reach
  the caller.
- The OSD stopped while mounted: requests fail with EIO within the
  operation timeout, and once it is back everything committed is there
  and the mount works again.
"""

import errno
import json
import os
import random
import subprocess
import tempfile
import time

import pytest

import zctest
from zctest import read_file, write_file
from test_blobstore import fsync_path, kill9_cycles, populate, snapshot, sync_all

J = os.path.join
MiB = 1 << 20
COMMIT_ERROR = r'cannot commit at unmount: Input/output error'


@pytest.fixture(autouse=True)
def only_rados():
    if zctest.current_backend() != 'blobstore' or zctest.store_kind() != 'rados':
        pytest.skip('these tests are about blobstore on RADOS '
                    '(ZCFUSE_BACKEND=blobstore ZCFUSE_STORE=rados)')
    zctest.require_fuse()


@pytest.fixture
def cluster():
    return zctest.ceph_cluster


@pytest.fixture
def store(cluster):
    return 'rados://%s/%s' % (cluster.pool, 'store-%d-%d' % (os.getpid(), random.randrange(1 << 30)))


def object_name(store, suffix):
    return store.rsplit('/', 1)[1] + suffix


def rados(cluster, *args, input=None):
    return cluster.run('rados', '-p', cluster.pool, *args, input=input)


def run_refused(store, timeout=60, env=None):
    """Start the daemon on store; it must refuse: (stderr lines, seconds taken)."""
    mnt = tempfile.mkdtemp(prefix='zcfuse-rados-', dir=zctest.tmp_root())
    t0 = time.monotonic()
    try:
        r = subprocess.run([zctest.zcfuse_bin(), store, mnt, '-f'], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=timeout, env=env)
    finally:
        if zctest.is_mounted(mnt):
            zctest.fusermount_unmount(mnt, lazy=True)
            pytest.fail('the store was mounted')
        os.rmdir(mnt)
    err = r.stderr.decode(errors='replace')
    assert r.returncode == 1, (r.returncode, err)
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith('blobstore: %s: ' % store), err
    return lines[0], time.monotonic() - t0


def test_clean_remount_keeps_everything(store, cluster):
    with zctest.Mount(store=store) as m:
        populate(m.mnt, 1)
        sync_all(m.mnt)
        write_file(J(m.mnt, 'unsynced'), b'written last')
        before = snapshot(m.mnt)
    # The data is in the pool: superblock slots and 4 MiB objects.
    names = rados(cluster, 'ls').split()
    mine = [n for n in names if n.startswith(object_name(store, '.'))]
    assert object_name(store, '.sb0') in mine and object_name(store, '.sb1') in mine
    assert len(mine) >= 3, mine
    with zctest.Mount(store=store) as m:
        assert snapshot(m.mnt) == before
        os.unlink(J(m.mnt, 'dir', 'big'))
        write_file(J(m.mnt, 'small'), b'rewritten')
        before = snapshot(m.mnt)
    with zctest.Mount(store=store) as m:
        assert snapshot(m.mnt) == before
        assert read_file(J(m.mnt, 'dir', 'hardlink')) == b'rewritten'


def test_kill9_keeps_fsynced_data(store):
    # Files of up to 9 MiB span objects: their pieces are in flight together.
    # The last mount shows that a dead daemon's lock does not keep the store
    # from being mounted.
    kill9_cycles(store, 9 * MiB)


def test_second_mount_is_refused(store):
    with zctest.Mount(store=store) as m:
        write_file(J(m.mnt, 'a'), b'first writer')
        line, _ = run_refused(store)
        assert 'in use by another mount' in line, line
        assert '%s:%d' % (os.uname().nodename, m.proc.pid) in line, line
        # The first mount is unharmed.
        assert read_file(J(m.mnt, 'a')) == b'first writer'
    with zctest.Mount(store=store) as m:
        assert read_file(J(m.mnt, 'a')) == b'first writer'


def put_object(cluster, name, data):
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        rados(cluster, 'put', name, f.name)


def get_object(cluster, name):
    with tempfile.NamedTemporaryFile() as f:
        rados(cluster, 'get', name, f.name)
        return open(f.name, 'rb').read()


def test_damaged_superblock_is_refused(store, cluster):
    with zctest.Mount(store=store) as m:
        write_file(J(m.mnt, 'a'), b'kept')
    for slot in (0, 1):
        name = object_name(store, '.sb%d' % slot)
        sb = bytearray(get_object(cluster, name))
        assert sb[:8] == b'zcfsblob'
        sb[20] ^= 0xff  # the generation: the checksum no longer matches
        put_object(cluster, name, bytes(sb))
    line, _ = run_refused(store)
    assert 'superblock checksum mismatch' in line, line


def test_not_a_store_is_refused(store, cluster):
    put_object(cluster, object_name(store, '.sb0'), b'hello, this is not a store\n' * 10)
    line, _ = run_refused(store)
    assert 'not a blob store' in line, line


def test_unreachable_cluster_fails_within_the_timeout(tmp_path):
    # A monitor address where nothing listens, the client's timeout left to blobstore.
    import cephcluster
    port = cephcluster.free_port()
    conf = tmp_path / 'ceph.conf'
    conf.write_text('[global]\nmon host = v2:127.0.0.1:%d\nauth client required = none\n' % port)
    env = dict(os.environ, CEPH_CONF=str(conf))
    env.pop('CEPH_ARGS', None)
    line, seconds = run_refused('rados://pool/name', env=env, timeout=60)
    assert 'cannot connect to the cluster (v2:127.0.0.1:%d)' % port in line, line
    assert seconds < 20, seconds  # client_mount_timeout is 10 s unless configured


def test_missing_pool_is_refused():
    line, _ = run_refused('rados://no-such-pool/name')
    assert 'pool no-such-pool: no such pool' in line, line


def test_conf_and_id_options(cluster):
    # Without CEPH_CONF and CEPH_ARGS: the cluster is found through conf= and
    # the client is named by id= (the pool is missing, so it stops there).
    env = {k: v for k, v in os.environ.items() if not k.startswith('CEPH_')}
    store = 'rados://no-such-pool/name'
    mnt = tempfile.mkdtemp(prefix='zcfuse-rados-', dir=zctest.tmp_root())
    try:
        r = subprocess.run([zctest.zcfuse_bin(), store, mnt, '-f', '-o',
                            'conf=%s,id=%s' % (cluster.conf, cluster.client)],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60, env=env)
    finally:
        os.rmdir(mnt)
    err = r.stderr.decode(errors='replace')
    assert r.returncode == 1 and 'pool no-such-pool: no such pool' in err, err
    # An id the cluster has no key for is refused at connecting.
    line, _ = run_refused(store, env=dict(env, CEPH_CONF=cluster.conf, CEPH_ARGS='--id nobody'))
    assert 'cannot connect to the cluster' in line, line


def test_background_mount(store):
    # Without -f: librados's threads are started after going to the background.
    with zctest.Mount(store=store, foreground=False) as m:
        write_file(J(m.mnt, 'bg'), b'from a daemon in the background' * 1000)
        fsync_path(J(m.mnt, 'bg'))
        assert read_file(J(m.mnt, 'bg')) == b'from a daemon in the background' * 1000
    with zctest.Mount(store=store) as m:
        assert read_file(J(m.mnt, 'bg')) == b'from a daemon in the background' * 1000
    # A refusal in the background still reaches the caller: status 1, one line.
    mnt = tempfile.mkdtemp(prefix='zcfuse-rados-', dir=zctest.tmp_root())
    try:
        r = subprocess.run([zctest.zcfuse_bin(), 'rados://no-such-pool/x', mnt],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    finally:
        os.rmdir(mnt)
    err = r.stderr.decode(errors='replace').splitlines()
    assert r.returncode == 1 and len(err) == 1 and 'no such pool' in err[0], (r.returncode, err)


def test_bad_url_is_refused():
    line, _ = run_refused('rados://only-a-pool')
    assert 'expected rados://POOL/NAME' in line, line


def locker(cluster, store):
    """(client name, cookie, address) of the store's lock."""
    info = json.loads(rados(cluster, 'lock', 'info', object_name(store, '.sb0'), 'blobstore',
                            '--format=json'))
    holder = info['lockers'][0]
    return holder['name'], holder['cookie'], holder['addr']


def test_broken_lock_stops_writing(store, cluster):
    with zctest.Mount(store=store, allowed_stderr=[COMMIT_ERROR]) as m:
        write_file(J(m.mnt, 'kept'), b'committed before the lock was broken')
        fsync_path(J(m.mnt, 'kept'))
        name, cookie, addr = locker(cluster, store)
        assert cookie == '%s:%d' % (os.uname().nodename, m.proc.pid)
        # What another host taking the store over does: blocklist, then break.
        cluster.ceph('osd', 'blocklist', 'add', addr)
        rados(cluster, 'lock', 'break', object_name(store, '.sb0'), 'blobstore', name,
              '--lock-cookie', cookie)
        deadline = time.monotonic() + 30
        failed = None
        while failed is None and time.monotonic() < deadline:
            try:
                write_file(J(m.mnt, 'late'), b'x' * 10000)
                fsync_path(J(m.mnt, 'late'))
            except OSError as e:
                failed = e
            time.sleep(0.2)
        assert failed is not None and failed.errno == errno.EIO, failed
        # Fenced for good: nothing more is written.
        with pytest.raises(OSError) as e:
            write_file(J(m.mnt, 'later'), b'y' * 10000)
            fsync_path(J(m.mnt, 'later'))
        assert e.value.errno == errno.EIO
    with zctest.Mount(store=store) as m:
        assert read_file(J(m.mnt, 'kept')) == b'committed before the lock was broken'


def pread(path, size, off):
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, size, off)
    finally:
        os.close(fd)


@pytest.mark.timeout(180)
def test_osd_restart_while_mounted(store, cluster):
    rng = random.Random(3)
    committed = rng.randbytes(5 * MiB)
    with zctest.Mount(store=store, allowed_stderr=[COMMIT_ERROR]) as m:
        write_file(J(m.mnt, 'committed'), committed)
        fsync_path(J(m.mnt, 'committed'))
        cluster.stop_osd()
        try:
            # Each request fails with EIO once the operation timeout passed;
            # none hangs. A write lands in a buffer first: fsync reports it.
            t0 = time.monotonic()
            with pytest.raises(OSError) as e:
                write_file(J(m.mnt, 'during'), b'd' * 4096)
                fsync_path(J(m.mnt, 'during'))
            assert e.value.errno == errno.EIO
            with pytest.raises(OSError) as e:
                pread(J(m.mnt, 'committed'), 4096, 3 * MiB)
            assert e.value.errno == errno.EIO
            assert time.monotonic() - t0 < 4 * cluster.op_timeout + 10
        finally:
            cluster.start_osd()
        # Back: what was committed is there and the mount works again.
        assert read_file(J(m.mnt, 'committed')) == committed
        write_file(J(m.mnt, 'after'), b'after the restart')
        fsync_path(J(m.mnt, 'after'))
    with zctest.Mount(store=store) as m:
        assert read_file(J(m.mnt, 'committed')) == committed
        assert read_file(J(m.mnt, 'after')) == b'after the restart'
