"""Writeback caching: the mount's share of the dirty-page limit.

The kernel lets a FUSE mount hold 1 % of the system's dirty-page limit,
strictly; under writeback caching zcfuse (as root) raises its own mount's
share to writeback_ratio percent (default 20), so that writes are taken
at page-cache speed as on a local file system. Varied: the transport, the
option given or not, the daemon being root or a user, writeback on or off.
"""

import os

import pytest

import zctest

J = os.path.join
MIB = 1 << 20
KERNEL_FUSE_SHARE = 1  # the kernel's max_ratio for a FUSE mount


@pytest.fixture(autouse=True)
def _fuse_needed():
    zctest.require_fuse()


def bdi_file(mnt, name, dev=None):
    """A value of the mount's bdi; dev: its st_dev, where root may not stat it."""
    if dev is None:
        dev = os.stat(mnt).st_dev
    path = '/sys/class/bdi/%d:%d/%s' % (os.major(dev), os.minor(dev), name)
    with open(path) as f:
        return int(f.read())


# Run as the user who owns the mount: only it can look in.
USER_STAT = 'import os, sys; os.listdir(sys.argv[1]); print(os.stat(sys.argv[1]).st_dev)'


def user_mount_share(m):
    out = m.run([m.python, '-c', USER_STAT, m.mnt])
    assert out.returncode == 0, out.stderr
    return bdi_file(m.mnt, 'max_ratio', int(out.stdout))


@pytest.fixture(params=['noio_uring', 'io_uring=strict'], ids=['dev-fuse', 'io_uring'])
def transport(request):
    """The mount's transport; the ring with the fuse module's enable_uring on."""
    if request.param == 'noio_uring':
        yield [request.param]
        return
    with zctest.UringParam(True) as p:
        if p.skip_reason:
            pytest.skip(p.skip_reason)
        yield [request.param]


@pytest.mark.parametrize('opts,share', [
    (['writeback'], 20),
    (['writeback', 'writeback_ratio=5'], 5),
    (['writeback', 'writeback_ratio=100'], 100),
    ([], KERNEL_FUSE_SHARE),
    (['writeback_ratio=30'], KERNEL_FUSE_SHARE),
], ids=['writeback', 'ratio-5', 'ratio-100', 'no-writeback', 'ratio-without-writeback'])
def test_share_of_the_dirty_limit(transport, opts, share):
    with zctest.Mount(opts=['cache=auto'] + opts + transport) as m:
        # INIT has been answered once the mount answers anything.
        os.listdir(m.mnt)
        assert bdi_file(m.mnt, 'max_ratio') == share
        # The kernel's strict limit stays: the mount never holds more than its share.
        assert bdi_file(m.mnt, 'strict_limit') == 1
        log = m.stderr_text()
    assert 'writeback_ratio' not in log, log


def test_dirty_data_is_written_at_unmount(transport):
    """More dirty pages held is more to write back at unmount: all of it
    reaches SOURCE, without an fsync, and a reopened file reads it back."""
    data = b''.join(bytes([i % 251]) * MIB for i in range(96))
    with zctest.Mount(opts=['cache=auto', 'writeback'] + transport) as m:
        with open(J(m.mnt, 'big'), 'wb') as f:
            for off in range(0, len(data), 3 * MIB + 4096):
                f.write(data[off:off + 3 * MIB + 4096])
        assert not m.unmount()
        with open(J(m.src, 'big'), 'rb') as f:
            assert f.read() == data


def test_user_daemon_keeps_the_kernel_share_and_says_so():
    """Only root may change a bdi's share; a user's daemon says so when the
    option was given, and is silent when it was not."""
    with zctest.UserMount(['writeback', 'writeback_ratio=7']) as m:
        assert user_mount_share(m) == KERNEL_FUSE_SHARE
    assert "cannot set writeback_ratio=7 on this mount" in m.log(), m.log()
    with zctest.UserMount(['writeback']) as m:
        assert user_mount_share(m) == KERNEL_FUSE_SHARE
    assert 'writeback_ratio' not in m.log(), m.log()
