"""zcfuse as a service: systemd's readiness protocol and the system log.

Readiness: the test plays systemd. It binds an AF_UNIX datagram socket,
starts the daemon with NOTIFY_SOCKET naming it, and reads what arrives with
the sender's credentials. READY=1 must come once the mount is in
/proc/self/mountinfo, from the process systemd tracks (with -f the daemon
itself; without -f its parent, which names the detached child in MAINPID=
before it exits), and STOPPING=1 from that main process on the way out.
A build without libsystemd (ZCFUSE_SYSTEMD=0) must mount and say nothing.

Logging: the daemon runs in a private mount namespace whose /dev is a
tmpfs holding /dev/null, /dev/fuse and, bound over /dev/log, a datagram
socket of the test: the system log as syslog(3) reaches it. The notice
provoked is the one a mount with passthrough and writeback gives when the
kernel's INIT arrives, after the daemon has detached.
"""

import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

import pytest

import zctest

J = os.path.join

WITH_LIBSYSTEMD = os.environ.get('ZCFUSE_SYSTEMD', '1') == '1'
# The notice a passthrough mount with writeback caching gives at INIT.
NOTICE = 'writeback caching is off for this mount'
NOTICE_OPTS = ['-o', 'passthrough,writeback']
# On /dev/fuse and the daemon's own data path, so that the lines naming the
# default transport (FUSE over io_uring where the kernel allows it) and
# data path (kernel passthrough) are not among the messages looked at.
TRANSPORT_OPTS = ['-o', 'noio_uring,nopassthrough']
# syslog(3) priority of a notice from facility daemon: LOG_DAEMON | LOG_NOTICE.
DAEMON_NOTICE = 3 * 8 + 5


@pytest.fixture(autouse=True)
def _fuse_needed():
    zctest.require_fuse()


@contextlib.contextmanager
def scratch():
    """SOURCE and MOUNTPOINT; in every outcome no daemon for them survives."""
    base = tempfile.mkdtemp(prefix='zcfuse-test-', dir=zctest.tmp_root())
    src, mnt = J(base, 'src'), J(base, 'mnt')
    os.mkdir(src)
    os.mkdir(mnt)
    try:
        yield base, src, mnt
    finally:
        leftovers = []
        for pid in zctest.pids_with_arg(mnt):
            leftovers.append('process %d naming %s was left running' % (pid, mnt))
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if zctest.is_mounted(mnt):
            leftovers.append('%s was left mounted' % mnt)
            zctest.fusermount_unmount(mnt, lazy=True)
        shutil.rmtree(base, ignore_errors=True)
        assert not leftovers, '; '.join(leftovers)


class DatagramSink:
    """An AF_UNIX datagram socket at path; a thread keeps what arrives.

    Each message is kept as a dict: text, the sender's pid (SO_PASSCRED),
    and what on_message(text) returned when it arrived. Descriptors that
    come along (sd_notify_barrier()'s pipe) are closed once read, which is
    how the barrier learns the message was taken in.
    """

    def __init__(self, path, on_message=None):
        self.path = path
        self.on_message = on_message
        self.messages = []
        self.cond = threading.Condition()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.bind(path)
        os.chmod(path, 0o666)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.settimeout(0.1)
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        anc = socket.CMSG_SPACE(struct.calcsize('iII')) + socket.CMSG_SPACE(16 * 4)
        while not self.stopping:
            try:
                data, cmsgs, _, _ = self.sock.recvmsg(65536, anc)
            except socket.timeout:
                continue
            except OSError:
                return
            pid = None
            for level, kind, payload in cmsgs:
                if level != socket.SOL_SOCKET:
                    continue
                if kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack('iII', payload[:12])[0]
                elif kind == socket.SCM_RIGHTS:
                    n = len(payload) // 4
                    for fd in struct.unpack('%di' % n, payload[:n * 4]):
                        os.close(fd)
            text = data.decode(errors='replace')
            seen = self.on_message(text) if self.on_message else None
            with self.cond:
                self.messages.append({'text': text, 'pid': pid, 'seen': seen})
                self.cond.notify_all()

    def wait_for(self, pred, timeout, what):
        """The first message pred accepts; fails after timeout seconds."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for m in self.messages:
                    if pred(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail('no %s within %.0f s; received %r'
                                % (what, timeout, [m['text'] for m in self.messages]))
                self.cond.wait(left)

    def texts(self):
        with self.cond:
            return [m['text'] for m in self.messages]

    def close(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


def fields(text):
    """A notify message's KEY=VALUE lines as a dict."""
    return dict(line.split('=', 1) for line in text.splitlines() if '=' in line)


def has_field(key, value=None):
    def pred(m):
        f = fields(m['text'])
        return key in f and (value is None or f[key] == value)
    return pred


def daemon_pid(mnt, timeout=10):
    """The one zcfuse process serving mnt."""
    found = []

    def one():
        found[:] = [p for p in zctest.pids_with_arg(mnt) if zctest.pid_alive(p)]
        return len(found) == 1
    zctest.wait_until(one, timeout, 'one daemon process for %s' % mnt)
    return found[0]


def start(cmd, env=None, stderr_path=None):
    err = open(stderr_path, 'wb') if stderr_path else subprocess.DEVNULL
    try:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, env=env, start_new_session=True)
    finally:
        if stderr_path:
            err.close()


def read_text(path):
    with open(path, 'rb') as f:
        return f.read().decode(errors='replace')


# -------------------------------------------------------------- readiness

@pytest.mark.parametrize('stop', ['unmount', 'sigterm'])
@pytest.mark.parametrize('foreground', [True, False], ids=['foreground', 'detached'])
def test_ready_after_mount_stopping_at_exit(foreground, stop):
    with scratch() as (base, src, mnt):
        started = []
        # Looked at in the socket's thread the moment a message arrives.
        sink = DatagramSink(J(base, 'notify'),
                            lambda text: {'mounted': zctest.is_mounted(mnt, 'fuse'),
                                          'parent_alive': all(zctest.pid_alive(p.pid)
                                                              for p in started)})
        proc = None
        try:
            env = dict(os.environ, NOTIFY_SOCKET=sink.path)
            cmd = [zctest.zcfuse_bin(), src, mnt] + TRANSPORT_OPTS
            cmd += ['-f'] if foreground else []
            proc = start(cmd, env, J(base, 'stderr'))
            started.append(proc)
            if not WITH_LIBSYSTEMD:
                check_silent(proc, sink, foreground, mnt, base)
                return
            ready = sink.wait_for(has_field('READY', '1'), 10, 'READY=1')
            assert ready['seen']['mounted'], \
                'READY=1 arrived before %s was in /proc/self/mountinfo' % mnt
            assert ready['pid'] == proc.pid, \
                'READY=1 came from pid %r, not from the process started (%d)' % (
                    ready['pid'], proc.pid)
            if foreground:
                main = proc.pid
            else:
                # Still alive: the service manager reads MAINPID= before it
                # sees the process it started exit.
                assert ready['seen']['parent_alive'], \
                    'the parent exited before its READY=1 was read'
                assert proc.wait(10) == 0, read_text(J(base, 'stderr'))
                main = daemon_pid(mnt)
                assert fields(ready['text']).get('MAINPID') == str(main), \
                    '%r does not name the detached daemon %d' % (ready['text'], main)
            assert not any('STOPPING' in t for t in sink.texts()), sink.texts()
            zctest.write_file(J(mnt, 'f'), b'served')
            assert zctest.read_file(J(src, 'f')) == b'served'

            if stop == 'unmount':
                zctest.fusermount_unmount(mnt)
            else:
                os.kill(main, signal.SIGTERM)
            stopping = sink.wait_for(has_field('STOPPING', '1'), 10, 'STOPPING=1')
            assert stopping['pid'] == main, \
                'STOPPING=1 came from pid %r, not from the main process %d' % (
                    stopping['pid'], main)
            zctest.wait_until(lambda: not zctest.pid_alive(main), 10, 'daemon exit')
            if foreground:
                assert proc.wait(10) == 0, read_text(J(base, 'stderr'))
            assert not zctest.is_mounted(mnt)
            texts = sink.texts()
            assert [t for t in texts if 'READY=1' in t or 'STOPPING=1' in t] == \
                [ready['text'], stopping['text']], texts
            assert read_text(J(base, 'stderr')) == ''
        finally:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
            sink.close()


def check_silent(proc, sink, foreground, mnt, base):
    """Without libsystemd: the daemon mounts and serves, and notifies nothing."""
    if foreground:
        zctest.wait_until(lambda: zctest.is_mounted(mnt, 'fuse'), 10, 'mount')
        main = proc.pid
    else:
        assert proc.wait(10) == 0, read_text(J(base, 'stderr'))
        main = daemon_pid(mnt)
    os.listdir(mnt)
    os.kill(main, signal.SIGTERM)
    zctest.wait_until(lambda: not zctest.pid_alive(main), 10, 'daemon exit')
    if foreground:
        assert proc.wait(10) == 0
    time.sleep(0.2)
    assert sink.texts() == [], 'a build without libsystemd sent %r' % sink.texts()


def test_no_ready_when_mount_fails():
    if not WITH_LIBSYSTEMD:
        pytest.skip('built without libsystemd: nothing is ever sent')
    with scratch() as (base, src, mnt):
        sink = DatagramSink(J(base, 'notify'))
        try:
            env = dict(os.environ, NOTIFY_SOCKET=sink.path)
            for extra in (['-f'], []):
                proc = start([zctest.zcfuse_bin(), src, J(mnt, 'missing')] + TRANSPORT_OPTS + extra,
                             env)
                assert proc.wait(10) == 1
            time.sleep(0.2)
            assert not any('READY' in t for t in sink.texts()), sink.texts()
        finally:
            sink.close()


# ---------------------------------------------------------------- logging

# Runs "$@" in a mount namespace of its own whose /dev has only null, fuse
# and, at /dev/log, the socket $1.
NAMESPACE_SCRIPT = r'''
set -e
log=$1
shift
mount -t tmpfs -o mode=0755,size=64k zcfuse-test-dev /dev
mknod -m 0666 /dev/null c 1 3
mknod -m 0666 /dev/fuse c $FUSE_MAJOR $FUSE_MINOR
touch /dev/log
mount --bind "$log" /dev/log
exec "$@"
'''


def in_namespace(cmd, log_sock, stderr_path):
    rdev = os.stat('/dev/fuse').st_rdev
    env = dict(os.environ, FUSE_MAJOR=str(os.major(rdev)), FUSE_MINOR=str(os.minor(rdev)))
    env.pop('NOTIFY_SOCKET', None)
    return start(['unshare', '--mount', '--propagation', 'private', 'sh', '-c',
                  NAMESPACE_SCRIPT, 'sh', log_sock] + cmd, env, stderr_path)


def ns_mounted(pid, mnt):
    """Is mnt mounted in the mount namespace of pid?"""
    try:
        with open('/proc/%d/mountinfo' % pid) as f:
            text = f.read()
    except OSError:
        return False
    return any(zctest.unescape(line.split()[4]) == mnt and ' - fuse' in line
               for line in text.splitlines())


@pytest.fixture(scope='module')
def namespaces_work():
    if shutil.which('unshare') is None:
        pytest.skip('unshare (util-linux) is not installed')
    r = subprocess.run(['unshare', '--mount', '--propagation', 'private', 'true'],
                       stderr=subprocess.PIPE, timeout=10)
    if r.returncode != 0:
        pytest.skip('cannot make a mount namespace: %s' % r.stderr.decode(errors='replace'))


CASES = [
    # -f?, -o log=..., where the notice must go
    (False, None, 'syslog'),
    (False, 'syslog', 'syslog'),
    (False, 'stderr', 'stderr'),
    (True, None, 'stderr'),
    (True, 'syslog', 'syslog'),
    (True, 'stderr', 'stderr'),
]


@pytest.mark.parametrize('foreground,log,where', CASES,
                         ids=['%s-%s' % ('f' if c[0] else 'detached', c[1] or 'default')
                              for c in CASES])
def test_notice_destination(namespaces_work, foreground, log, where):
    with scratch() as (base, src, mnt):
        sink = DatagramSink(J(base, 'log'))
        stderr_path = J(base, 'stderr')
        proc = None
        try:
            cmd = [zctest.zcfuse_bin(), src, mnt] + TRANSPORT_OPTS + NOTICE_OPTS
            cmd += ['-f'] if foreground else []
            cmd += ['-o', 'log=' + log] if log else []
            proc = in_namespace(cmd, sink.path, stderr_path)
            if foreground:
                main = proc.pid
            else:
                assert proc.wait(10) == 0, read_text(stderr_path)
                main = daemon_pid(mnt)
            zctest.wait_until(lambda: ns_mounted(main, mnt), 10, 'mount in the namespace')
            if where == 'syslog':
                line = sink.wait_for(lambda m: NOTICE in m['text'], 10, 'notice in the log')
                m = re.match(r'<(\d+)>.*?zcfuse\[(\d+)\]: (.*)$', line['text'], re.S)
                assert m, 'not a syslog(3) line: %r' % line['text']
                assert int(m.group(1)) == DAEMON_NOTICE, line['text']
                assert int(m.group(2)) == main, \
                    '%r does not name the daemon %d' % (line['text'], main)
                assert m.group(3).startswith(NOTICE), line['text']
            else:
                zctest.wait_until(lambda: NOTICE in read_text(stderr_path), 10,
                                  'notice on stderr')
            os.kill(main, signal.SIGTERM)
            zctest.wait_until(lambda: not zctest.pid_alive(main), 10, 'daemon exit')
            if foreground:
                assert proc.wait(10) == 0, read_text(stderr_path)
            err = read_text(stderr_path)
            logged = sink.texts()
            if where == 'syslog':
                assert err == '', 'stderr: %r' % err
                assert len(logged) == 1, logged
            else:
                assert logged == [], 'the system log got %r' % logged
                lines = err.splitlines()
                assert len(lines) == 1 and lines[0].startswith('zcfuse: ' + NOTICE), err
        finally:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
            sink.close()


def test_before_and_after_detaching(namespaces_work):
    """Detached by default: notices said while mounting (the line naming the
    default transport) and later ones reach the system log, and the caller's
    terminal stays quiet, as after mount(8) of any file system."""
    with scratch() as (base, src, mnt):
        sink = DatagramSink(J(base, 'log'))
        stderr_path = J(base, 'stderr')
        proc = None
        try:
            proc = in_namespace([zctest.zcfuse_bin(), src, mnt] + NOTICE_OPTS, sink.path,
                                stderr_path)
            assert proc.wait(10) == 0, read_text(stderr_path)
            main = daemon_pid(mnt)
            sink.wait_for(lambda m: NOTICE in m['text'], 10, 'notice in the log')
            os.kill(main, signal.SIGTERM)
            zctest.wait_until(lambda: not zctest.pid_alive(main), 10, 'daemon exit')
            err = read_text(stderr_path)
            assert err == '', err
            logged = sink.texts()
            assert len(logged) == 2, logged
            assert 'transport: ' in logged[0] and NOTICE in logged[1], logged
        finally:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
            sink.close()


def test_error_before_detaching_stays_on_stderr(namespaces_work):
    """A daemon that cannot mount says so where its caller sees it."""
    with scratch() as (base, src, mnt):
        sink = DatagramSink(J(base, 'log'))
        stderr_path = J(base, 'stderr')
        try:
            proc = in_namespace([zctest.zcfuse_bin(), src, J(mnt, 'missing')] + TRANSPORT_OPTS,
                                sink.path, stderr_path)
            assert proc.wait(10) == 1
            err = read_text(stderr_path)
            assert re.fullmatch(r"zcfuse: mountpoint '.*missing': No such file or directory\n",
                                err), err
            assert sink.texts() == []
        finally:
            sink.close()


# ------------------------------------------------------------- the unit

def unit_lines(text):
    """The unit's KEY=VALUE lines, by key, comments left out."""
    keys = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(('#', ';', '[')):
            key, value = line.split('=', 1)
            keys.setdefault(key, []).append(value)
    return keys


def expand_exec(line, path, instance, env):
    """ExecStart= as systemd expands it: specifiers, ${VAR} one word, $VAR split."""
    words = []
    for word in shlex.split(line):
        word = word.replace('%f', path).replace('%i', instance)
        m = re.fullmatch(r'\$\{(\w+)\}|\$(\w+)', word)
        if m and m.group(1):
            words.append(env.get(m.group(1), ''))
        elif m:
            words += env.get(m.group(2), '').split()
        else:
            words.append(word)
    return words


def test_unit_template():
    """zcfuse@.service is a valid unit whose command mounts as Type=notify wants."""
    unit_path = os.environ.get('ZCFUSE_UNIT')
    if not unit_path:
        pytest.skip('ZCFUSE_UNIT is not set (meson test sets it)')
    for tool in ('systemd-analyze', 'systemd-escape'):
        if shutil.which(tool) is None:
            pytest.skip('%s (package systemd) is not installed' % tool)
    text = read_text(unit_path)
    keys = unit_lines(text)
    assert keys['Type'] == ['notify' if WITH_LIBSYSTEMD else 'exec']
    conf_file = keys['EnvironmentFile'][0]
    assert conf_file.endswith('/zcfuse/%i.conf'), conf_file
    with scratch() as (base, src, mnt):
        instance = subprocess.run(['systemd-escape', '--path', mnt], check=True,
                                  stdout=subprocess.PIPE, text=True).stdout.strip()
        # The unit as installed, with the daemon and configuration of this tree.
        exec_start = keys['ExecStart'][0]
        program = exec_start.split()[0]
        assert os.path.basename(program) == 'zcfuse', exec_start
        conf_dir = J(base, 'zcfuse')
        os.mkdir(conf_dir)
        local = text.replace(program, zctest.zcfuse_bin()).replace(
            os.path.dirname(conf_file), conf_dir)
        with open(J(base, 'zcfuse@.service'), 'w') as f:
            f.write(local)
        with open(J(conf_dir, instance + '.conf'), 'w') as f:
            f.write('SOURCE=%s\nOPTIONS=-o cache=auto,allow_other\n' % src)
        r = subprocess.run(['systemd-analyze', 'verify', '--man=no',
                            J(base, 'zcfuse@%s.service' % instance)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=30)
        assert r.returncode == 0 and r.stdout == '', r.stdout

        env = {'SOURCE': src, 'OPTIONS': '-o cache=auto,allow_other'}
        cmd = expand_exec(unit_lines(local)['ExecStart'][0], mnt, instance, env)
        sink = DatagramSink(J(base, 'notify'),
                            lambda text: zctest.is_mounted(mnt, 'fuse'))
        proc = None
        try:
            proc = start(cmd, dict(os.environ, NOTIFY_SOCKET=sink.path), J(base, 'stderr'))
            if WITH_LIBSYSTEMD:
                ready = sink.wait_for(has_field('READY', '1'), 10, 'READY=1')
                assert ready['seen'] and ready['pid'] == proc.pid
            else:
                zctest.wait_until(lambda: zctest.is_mounted(mnt, 'fuse'), 10, 'mount')
            assert 'allow_other' in zctest.mount_entries(mnt)[-1]['super']
            zctest.write_file(J(mnt, 'f'), b'from the unit')
            assert zctest.read_file(J(src, 'f')) == b'from the unit'
            # systemctl stop: SIGTERM to the main process, then ExecStopPost.
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0, read_text(J(base, 'stderr'))
            if WITH_LIBSYSTEMD:
                stopping = sink.wait_for(has_field('STOPPING', '1'), 10, 'STOPPING=1')
                assert stopping['pid'] == proc.pid
            else:
                assert sink.texts() == []
            assert not zctest.is_mounted(mnt)
            stop_post = keys['ExecStopPost'][0]
            assert stop_post.startswith('-'), 'ExecStopPost= must ignore failure: %s' % stop_post
            r = subprocess.run(expand_exec(stop_post[1:], mnt, instance, env),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=10)
            assert r.stdout == '', 'ExecStopPost= is not quiet: %r' % r.stdout
        finally:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
            sink.close()


@pytest.mark.parametrize('opt,message', [
    ('log=journal', "zcfuse: bad value for option 'log': 'journal'"),
    ('log', "zcfuse: option 'log' needs a value (log=...)"),
])
def test_bad_log_option(opt, message):
    with scratch() as (base, src, mnt):
        r = subprocess.run([zctest.zcfuse_bin(), src, mnt, '-o', opt], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=10)
        assert r.returncode == 2
        assert r.stderr == message + '\n'
        assert not zctest.is_mounted(mnt)
