"""A short seeded run of integrity.py on the mount (options from ZCFUSE_MOUNT_OPTS)."""

import os

import pytest

import integrity

OPS = int(os.environ.get('ZCFUSE_INTEGRITY_OPS', integrity.DEFAULT_OPS))


@pytest.mark.timeout(600)
@pytest.mark.parametrize('seed', [integrity.DEFAULT_SEED, 20240607])
def test_integrity(mount, seed):
    summary = integrity.run(mount.mnt, mount.ref, seed=seed, ops=OPS, src=mount.src)
    print(integrity.summary_line(summary))
    assert summary['ops'] == OPS
