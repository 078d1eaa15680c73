"""pytest glue for the mount tests: per-test watchdog and the mount fixture."""

import os
import tempfile

import pytest

import zctest


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'timeout(seconds): time limit of one test (default ZCFUSE_TEST_TIMEOUT or 60)')
    config.addinivalue_line(
        'markers', 'source: the test looks into SOURCE directly; runs for zcfuse only')
    config.addinivalue_line(
        'markers', 'needs(feature): skipped for a backend that lacks feature '
        '(zctest.BACKEND_LACKS)')


def pytest_runtest_setup(item):
    backend = zctest.current_backend()
    if item.get_closest_marker('source') and backend != 'zcfuse':
        pytest.skip('looks into SOURCE, which %s has not' % backend)
    for marker in item.iter_markers('needs'):
        for feature in marker.args:
            why = zctest.backend_lacks(feature)
            if why:
                pytest.skip(why)


@pytest.fixture(autouse=True)
def zc_watchdog(request):
    """Bound every test, its fixtures included."""
    marker = request.node.get_closest_marker('timeout')
    seconds = marker.args[0] if marker else zctest.default_test_timeout()
    with zctest.Watchdog(seconds, request.node.nodeid) as wd:
        request.node.zc_watchdog = wd
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # A test whose watchdog expired has failed, whatever its body saw.
    outcome = yield
    report = outcome.get_result()
    wd = getattr(item, 'zc_watchdog', None)
    if report.when == 'call' and report.passed and wd is not None and wd.fired:
        report.outcome = 'failed'
        report.longrepr = wd.message()


@pytest.fixture(scope='session', autouse=True)
def zc_uring_param():
    """Suites that mount with io_uring: enable_uring=Y for the run, restored after."""
    if not zctest.wants_uring(zctest.env_mount_opts()):
        yield None
        return
    with zctest.UringParam(True) as p:
        if p.skip_reason:
            pytest.skip(p.skip_reason)
        yield p


@pytest.fixture
def mount():
    """A zcfuse mount with the options of ZCFUSE_MOUNT_OPTS."""
    zctest.require_fuse()
    with zctest.Mount() as m:
        yield m


def pytest_sessionfinish(session, exitstatus):
    # Tell meson "skipped" (77) when every test that ran was skipped.
    reporter = session.config.pluginmanager.get_plugin('terminalreporter')
    if reporter is None or exitstatus != 0:
        return
    stats = reporter.stats
    if stats.get('skipped') and not stats.get('passed') and not stats.get('failed') \
            and not stats.get('error'):
        session.exitstatus = 77


@pytest.fixture(scope='session', autouse=True)
def zc_ceph_cluster():
    """ZCFUSE_STORE=rados: a one-node Ceph cluster for the whole session."""
    if zctest.store_kind() != 'rados':
        yield None
        return
    import cephcluster
    missing = cephcluster.missing_programs()
    if missing:
        pytest.skip('Ceph is not installed (%s missing; the packages are %s)'
                    % (', '.join(missing), ' '.join(cephcluster.PACKAGES)))
    cluster = cephcluster.Cluster(tempfile.mkdtemp(prefix='zcfuse-ceph-',
                                                   dir=zctest.tmp_root()))
    cluster.start()
    saved = {k: os.environ.get(k) for k in ('CEPH_CONF', 'CEPH_ARGS')}
    os.environ.update(CEPH_CONF=cluster.conf, CEPH_ARGS='--id %s' % cluster.client)
    zctest.ceph_cluster = cluster
    try:
        yield cluster
    finally:
        zctest.ceph_cluster = None
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        cluster.stop()
