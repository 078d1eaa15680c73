"""FUSE mounts for the tests and the benchmark: the parts they share.

- /proc/self/mountinfo: mount_entries(), is_mounted();
- wait_until(), fusermount_unmount();
- the counters a libzcfuse daemon shows as extended attributes of its mount
  root: counters() (user.zcfuse.stats), backend_counters()
  (user.zcfuse.backend), counter_delta();
- FuseDaemon: one daemon started in the foreground; waits for its mount
  while checking that it still runs, and unmounts and reaps it in every
  outcome, keeping what it printed in a log file.

tests/mount/zctest.py (the mount tests) and tests/bench/bench.py (the
benchmark) put this directory on sys.path and import it.  Only the process
running them reads it: what they run as another user (a copy of the daemon,
inline scripts) never imports it, so it serves as well from a tree that user
cannot reach (a clone in root's 0700 home).  Standard library only.
"""

import os
import re
import subprocess
import time

MOUNT_TIMEOUT = 10.0
EXIT_TIMEOUT = 10.0
STATS_XATTR = 'user.zcfuse.stats'
BACKEND_XATTR = 'user.zcfuse.backend'


class DaemonError(AssertionError):
    """The daemon failed to mount, crashed, or reported errors."""


class TimeLimitExceeded(AssertionError):
    """A wait or a time limit expired."""


# ---------------------------------------------------------------- mountinfo

def unescape(field):
    """A mountinfo field with its octal escapes (\\040 for a space...) undone."""
    return re.sub(r'\\([0-7]{3})', lambda m: chr(int(m.group(1), 8)), field)


def mount_entries(path, mountinfo='/proc/self/mountinfo'):
    """Entries of /proc/self/mountinfo (or another process's, mountinfo)
    whose mount point is path (a real path).

    Each entry is a dict with keys dev ('major:minor'), fstype, source, opts
    (per-mount options) and super (super block options).
    """
    found = []
    # Names are bytes: one that is not UTF-8 must not break every reader.
    with open(mountinfo, errors='surrogateescape') as f:
        for line in f:
            left, _, right = line.partition(' - ')
            fields = left.split()
            if len(fields) < 6 or unescape(fields[4]) != path:
                continue
            rfields = right.split()
            found.append({'dev': fields[2], 'opts': fields[5],
                          'fstype': rfields[0] if rfields else '',
                          'source': rfields[1] if len(rfields) > 1 else '',
                          'super': rfields[2] if len(rfields) > 2 else ''})
    return found


def is_mounted(path, fstype_prefix=''):
    """Whether path is a mount point (of a type starting with fstype_prefix)."""
    return any(e['fstype'].startswith(fstype_prefix) for e in mount_entries(path))


def wait_until(cond, timeout, what):
    """Poll cond() with short, growing waits; raise TimeLimitExceeded."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        if cond():
            return
        if time.monotonic() > deadline:
            raise TimeLimitExceeded('%s: not done after %.1f s' % (what, timeout))
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def fusermount_unmount(path, lazy=False):
    """Run fusermount3 -u (or -uz); return (ok, message)."""
    flag = '-uz' if lazy else '-u'
    try:
        r = subprocess.run(['fusermount3', flag, path], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
    except subprocess.TimeoutExpired:
        return False, 'fusermount3 %s %s timed out' % (flag, path)
    return r.returncode == 0, r.stdout.decode(errors='replace').strip()


# ----------------------------------------------------------------- counters

def parse_counters(text):
    """Counter lines ("name value") as a dict."""
    out = {}
    for line in text.splitlines():
        name, value = line.rsplit(' ', 1)
        out[name] = int(value)
    return out


def counters(mnt):
    """The daemon's counters (user.zcfuse.stats of the mount root) as a dict."""
    return parse_counters(os.getxattr(mnt, STATS_XATTR).decode())


def backend_counters(mnt):
    """The passthrough backend's counters (user.zcfuse.backend): inodes,
    descriptors, reopens, open files."""
    return parse_counters(os.getxattr(mnt, BACKEND_XATTR).decode())


def counter_delta(after, before, name):
    """How much counter name grew from before to after (absent counts as 0)."""
    return after.get(name, 0) - before.get(name, 0)


# ------------------------------------------------------------------ daemons

class FuseDaemon:
    """One FUSE daemon started in the foreground, mounted at mnt.

    spawn() runs a command line with its stdout and stderr in the file
    log_file; wait_mounted() waits for the mount; stop() unmounts and reaps
    it, killing it when it does not exit.  A subclass says what to run and
    how to judge the outcome.
    """

    def __init__(self, mnt=None, log_file=None):
        self.mnt = mnt
        self.log_file = log_file
        self.proc = None

    def spawn(self, cmd, append=False, **popen_args):
        """Start cmd (its own session, no stdin); append to the log or start it anew."""
        log = open(self.log_file, 'ab' if append else 'wb')
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True, **popen_args)
        finally:
            log.close()

    def wait_mounted(self, timeout=MOUNT_TIMEOUT):
        """Wait until the mount appears; raise DaemonError when the daemon
        exits first or timeout seconds pass."""
        deadline = time.monotonic() + timeout
        delay = 0.001
        while not is_mounted(self.mnt, 'fuse'):
            if self.proc.poll() is not None:
                raise DaemonError('daemon exited with status %d before mounting'
                                  % self.proc.returncode)
            if time.monotonic() > deadline:
                raise DaemonError('mount did not appear within %.0f s' % timeout)
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def alive(self):
        """The daemon runs and its mount is there."""
        return self.proc is not None and self.proc.poll() is None and \
            is_mounted(self.mnt, 'fuse')

    def unmount(self):
        """Unmount (plain, lazy as fallback); return a list of problems."""
        problems = []
        if is_mounted(self.mnt):
            ok, msg = fusermount_unmount(self.mnt)
            if not ok:
                problems.append('fusermount3 -u failed: %s' % msg)
                fusermount_unmount(self.mnt, lazy=True)
        return problems

    def reap(self, timeout=EXIT_TIMEOUT):
        """Wait for the daemon to exit, killing it after timeout seconds (its
        mount detached first). Returns (exit status, problems)."""
        try:
            return self.proc.wait(timeout=timeout), []
        except subprocess.TimeoutExpired:
            pass
        if is_mounted(self.mnt):
            fusermount_unmount(self.mnt, lazy=True)
        self.proc.kill()
        return self.proc.wait(), ['daemon did not exit within %.0f s after unmount' % timeout]

    def stop(self, timeout=EXIT_TIMEOUT):
        """Unmount and reap; never leaves the mount or the process behind.
        Returns (exit status or None when not started, problems)."""
        if self.proc is None:
            return None, []
        problems = self.unmount()
        rc, more = self.reap(timeout)
        if is_mounted(self.mnt):
            fusermount_unmount(self.mnt, lazy=True)
        return rc, problems + more

    def log_text(self):
        """What the daemon printed so far ('' when there is no log)."""
        try:
            with open(self.log_file, 'rb') as f:
                return f.read().decode(errors='replace')
        except OSError:
            return ''
