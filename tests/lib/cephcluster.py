#!/usr/bin/python3
"""A one-node Ceph cluster on 127.0.0.1 for the tests and the benchmark.

One monitor and one OSD (memstore: objects in the OSD's memory) from
Debian's packages (ceph-mon, ceph-osd, ceph-common), no manager, cephx
with a client key, a pool; everything in one directory: the ceph.conf a
client uses, the keyring, the daemons' data, logs and PID files.  A
private monitor port and fsid keep it apart from any other cluster.

    cluster = Cluster(directory)
    cluster.start()          # returns when the pool takes writes
    ...  cluster.conf, cluster.pool, cluster.client ...
    cluster.stop_osd(); cluster.start_osd()
    cluster.stop()           # kills what it started, removes the directory

From a shell:

    cephcluster.py start DIR    # prints CEPH_CONF=... and the pool name
    cephcluster.py stop DIR

start() cleans up after itself when it fails; stop() is safe to call in
any state.  Standard library only.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

POOL = 'zcfuse'
CLIENT = 'zcfuse'  # the client key's name: client.zcfuse
READY_TIMEOUT = 60.0
OP_TIMEOUT = 5
PACKAGES = ('ceph-mon', 'ceph-osd', 'ceph-common')


def missing_programs():
    """The Ceph programs this needs that are not installed (empty: all there)."""
    return [p for p in ('ceph-mon', 'ceph-osd', 'ceph', 'ceph-authtool', 'monmaptool', 'rados')
            if not shutil.which(p)]


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on, with the next one free too."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
        if port < 65000:
            try:
                with socket.socket() as s2:
                    s2.bind(('127.0.0.1', port + 1))
                return port
            except OSError:
                continue
    raise RuntimeError('no free pair of TCP ports on 127.0.0.1')


class ClusterError(RuntimeError):
    """The cluster did not come up, with what its logs said."""


class Cluster:
    def __init__(self, directory, pool=POOL):
        self.dir = os.path.abspath(directory)
        self.pool = pool
        self.client = CLIENT
        self.conf = os.path.join(self.dir, 'ceph.conf')
        self.keyring = os.path.join(self.dir, 'keyring')
        self.start_seconds = None
        self.stop_seconds = None
        # How long a client of client.zcfuse waits for an operation before it fails.
        self.op_timeout = OP_TIMEOUT

    # ------------------------------------------------------------ helpers

    def pidfile(self, name):
        return os.path.join(self.dir, name + '.pid')

    def log(self, name):
        return os.path.join(self.dir, name + '.log')

    def env(self):
        env = dict(os.environ)
        env['CEPH_CONF'] = self.conf
        env.pop('CEPH_ARGS', None)
        return env

    def run(self, *args, timeout=30, input=None):
        """Run a Ceph tool as client.admin; its output, or ClusterError."""
        try:
            p = subprocess.run(list(args), env=self.env(), stdin=subprocess.DEVNULL
                               if input is None else None, input=input,
                               capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ClusterError('%s did not finish within %d s' % (' '.join(args), timeout))
        if p.returncode != 0:
            raise ClusterError('%s failed (status %d): %s'
                               % (' '.join(args), p.returncode, p.stderr.strip()[-2000:]))
        return p.stdout

    def ceph(self, *args, timeout=30):
        return self.run('ceph', '--connect-timeout', '10', *args, timeout=timeout)

    def spawn(self, name, args):
        """Start a daemon in the foreground, in a session of its own; its PID goes to a file."""
        with open(self.log(name + '.out'), 'ab') as out:
            p = subprocess.Popen(args + ['-f', '-c', self.conf], stdin=subprocess.DEVNULL,
                                 stdout=out, stderr=out, env=self.env(),
                                 start_new_session=True, close_fds=True)
        with open(self.pidfile(name), 'w') as f:
            f.write('%d\n' % p.pid)
        return p

    def daemon_pid(self, name):
        try:
            with open(self.pidfile(name)) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def kill(self, name, sig=signal.SIGKILL):
        """Kill the daemon this cluster started as name, and reap it if it is ours."""
        pid = self.daemon_pid(name)
        if pid is None:
            return
        try:
            # Only the process this cluster started: its command line names our conf.
            with open('/proc/%d/cmdline' % pid, 'rb') as f:
                mine = self.conf.encode() in f.read()
        except OSError:
            mine = False
        if mine:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    if os.waitpid(pid, os.WNOHANG)[0] == pid:
                        break
                except ChildProcessError:
                    if not os.path.exists('/proc/%d' % pid):
                        break
                    try:  # a zombie of a process that is not our child: gone enough
                        with open('/proc/%d/stat' % pid) as f:
                            if f.read().split(')')[-1].split()[0] == 'Z':
                                break
                    except OSError:
                        break
                time.sleep(0.05)
        os.unlink(self.pidfile(name))

    def tail(self, name, lines=15):
        text = ''
        for f in (self.log(name + '.out'), self.log(name)):
            try:
                with open(f, errors='replace') as fh:
                    text += ''.join(fh.readlines()[-lines:])
            except OSError:
                pass
        return text

    # -------------------------------------------------------- the cluster

    def write_conf(self, port):
        fsid = str(uuid.uuid4())
        with open(self.conf, 'w') as f:
            f.write(f'''[global]
fsid = {fsid}
mon host = v2:127.0.0.1:{port}
public addr = 127.0.0.1
keyring = {self.keyring}
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
run dir = {self.dir}
admin socket = {self.dir}/$name.asok
log file = {self.dir}/$name.log
pid file = {self.dir}/$name.daemon.pid
crash dir = {self.dir}/crash
mon data = {self.dir}/mon.$id
osd data = {self.dir}/osd.$id
osd objectstore = memstore
memstore device bytes = 4294967296
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon osd down out interval = 0
auth allow insecure global id reclaim = false
osd heartbeat grace = 60
osd client watch timeout = 5
osd fast shutdown = false
osd max object name len = 460
osd max object namespace len = 64
debug ms = 0

[osd]
keyring = {self.dir}/osd.$id/keyring

[mds]
keyring = {self.dir}/mds.$id/keyring
mds data = {self.dir}/mds.$id

[client.{self.client}]
client mount timeout = 10
rados osd op timeout = {self.op_timeout}
rados mon op timeout = {self.op_timeout}
''')
        return fsid

    def start(self):
        t0 = time.monotonic()
        missing = missing_programs()
        if missing:
            raise ClusterError('Ceph programs missing: %s (install %s)'
                               % (', '.join(missing), ' '.join(PACKAGES)))
        os.makedirs(self.dir, exist_ok=True)
        try:
            self._start()
        except BaseException:
            self.stop(remove=False)
            raise
        self.start_seconds = time.monotonic() - t0

    def _start(self):
        port = free_port()
        fsid = self.write_conf(port)
        os.makedirs(os.path.join(self.dir, 'crash'), exist_ok=True)
        kr = self.keyring
        self.run('ceph-authtool', '--create-keyring', kr, '--gen-key', '-n', 'mon.',
                 '--cap', 'mon', 'allow *')
        self.run('ceph-authtool', kr, '--gen-key', '-n', 'client.admin',
                 '--cap', 'mon', 'allow *', '--cap', 'osd', 'allow *',
                 '--cap', 'mds', 'allow *', '--cap', 'mgr', 'allow *')
        monmap = os.path.join(self.dir, 'monmap')
        self.run('monmaptool', '--create', '--fsid', fsid, '--addv', 'a',
                 '[v2:127.0.0.1:%d]' % port, monmap)
        self.run('ceph-mon', '-c', self.conf, '--mkfs', '-i', 'a', '--monmap', monmap,
                 '--keyring', kr)
        self.spawn('mon.a', ['ceph-mon', '-i', 'a'])
        self.wait(lambda: self.ceph('mon', 'stat', timeout=15), 'the monitor to answer', 'mon.a')
        self.osd_uuid = str(uuid.uuid4())
        osd_dir = os.path.join(self.dir, 'osd.0')
        os.makedirs(osd_dir, exist_ok=True)
        osd_id = self.ceph('osd', 'new', self.osd_uuid).strip()
        if osd_id != '0':
            raise ClusterError('expected OSD id 0, the monitor gave %r' % osd_id)
        self.run('ceph-osd', '-c', self.conf, '-i', '0', '--mkfs', '--mkkey', '--no-mon-config',
                 '--osd-uuid', self.osd_uuid, timeout=60)
        self.ceph('auth', 'add', 'osd.0', 'osd', 'allow *', 'mon', 'allow profile osd',
                  '-i', os.path.join(osd_dir, 'keyring'))
        self.start_osd(wait=False)
        self.ceph('osd', 'pool', 'create', self.pool, '8', '8')
        self.ceph('osd', 'pool', 'application', 'enable', self.pool, 'rados')
        key = self.ceph('auth', 'get-or-create', 'client.' + self.client, 'mon', 'allow r, allow command "osd blocklist"',
                        'osd', 'allow rwx pool=%s' % self.pool)
        with open(kr, 'a') as f:
            f.write(key if key.endswith('\n') else key + '\n')
        self.wait_writable()

    def wait(self, probe, what, daemon, timeout=READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                return probe()
            except ClusterError as e:
                last = e
            if time.monotonic() > deadline:
                raise ClusterError('waited %.0f s for %s: %s\n%s'
                                   % (timeout, what, last, self.tail(daemon)))
            time.sleep(0.3)

    def wait_writable(self, timeout=READY_TIMEOUT):
        """Return when an object of the pool can be written and removed."""
        def probe():
            self.run('rados', '--rados-osd-op-timeout', '5', '-p', self.pool, 'put',
                     'zcfuse-probe', '/dev/null', timeout=15)
            self.run('rados', '--rados-osd-op-timeout', '5', '-p', self.pool, 'rm',
                     'zcfuse-probe', timeout=15)
        self.wait(probe, 'the pool %s to take writes' % self.pool, 'osd.0', timeout)

    def start_osd(self, wait=True):
        self.spawn('osd.0', ['ceph-osd', '-i', '0'])
        if wait:
            self.wait_writable()

    def stop_osd(self):
        """Kill the OSD. Its objects live in its memory (memstore): memstore
        keeps them in its data directory when it stops cleanly, so stop it
        with SIGTERM and wait."""
        self.kill('osd.0', signal.SIGTERM)

    def start_cephfs(self, timeout=READY_TIMEOUT):
        """CephFS on the cluster: two pools, a file system, one MDS (ceph-mds);
        returns when the MDS is active. ceph-fuse mounts it as client.admin."""
        if not shutil.which('ceph-mds'):
            raise ClusterError('ceph-mds is not installed (install ceph-mds ceph-fuse)')
        mds_dir = os.path.join(self.dir, 'mds.a')
        os.makedirs(mds_dir, exist_ok=True)
        key = self.ceph('auth', 'get-or-create', 'mds.a', 'mon', 'allow profile mds',
                        'osd', 'allow rwx', 'mds', 'allow')
        with open(os.path.join(mds_dir, 'keyring'), 'w') as f:
            f.write(key)
        for pool in ('cephfs_metadata', 'cephfs_data'):
            self.ceph('osd', 'pool', 'create', pool, '8', '8')
        self.ceph('fs', 'new', 'cephfs', 'cephfs_metadata', 'cephfs_data')
        self.spawn('mds.a', ['ceph-mds', '-i', 'a'])

        def active():
            out = self.ceph('mds', 'stat', timeout=15)
            if 'up:active' not in out:
                raise ClusterError('MDS not active yet: %s' % out.strip())
        self.wait(active, 'the MDS to become active', 'mds.a', timeout)

    def env_for_client(self):
        """The environment of a program that is to use this cluster as client.zcfuse."""
        env = dict(os.environ)
        env['CEPH_CONF'] = self.conf
        env['CEPH_ARGS'] = '--id %s' % self.client
        return env

    def stop(self, remove=True):
        t0 = time.monotonic()
        for name in ('mds.a', 'osd.0', 'mon.a'):
            self.kill(name)
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.stop_seconds = time.monotonic() - t0


def main(argv):
    if len(argv) != 3 or argv[1] not in ('start', 'stop'):
        sys.stderr.write('usage: cephcluster.py start|stop DIR\n')
        return 2
    c = Cluster(argv[2])
    if argv[1] == 'start':
        try:
            c.start()
        except ClusterError as e:
            sys.stderr.write('cephcluster.py: %s\n' % e)
            c.stop()
            return 1
        print('CEPH_CONF=%s' % c.conf)
        print('CEPH_ARGS="--id %s"' % c.client)
        print('pool=%s' % c.pool, flush=True)
        print('started in %.1f s' % c.start_seconds, file=sys.stderr)
    else:
        c.stop()
        print('stopped in %.1f s' % c.stop_seconds, file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
