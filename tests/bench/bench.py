#!/usr/bin/env python3
"""Benchmark zcfuse against plain libfuse and the native file system.

Usage: bench.py [--quick|--full|--smoke] [--out DIR] [--workloads a,b] [--systems a,b]
                [--backings tmpfs,disk] [--reps N] [--runtime SECS] [--estimate]

For each backing store (a tmpfs of our own, a directory on the root disk) it
lays out the data files, mounts every system in every setting over the same
directory, warms each mount up once, then runs every workload: run 1 of every
cell, then run 2, and so on, so that drift spreads evenly over the systems.
A cell is one (backing, workload, system, setting); it reports the median,
minimum and maximum of its runs, the daemon's CPU time per GiB (or per 1000
metadata operations) from /proc/PID/stat, and its ratios to native and to
libfuse in the same setting.  A run that failed (mount, fio error, daemon
death, no data moved) makes its cell FAIL, never a number.

Writes table.md, summary.csv, results.csv (one row per run, with zcfuse's
counter deltas), logs/ and the figures (plots.py: PNG and SVG in plots/) into
the results folder.  Exits 1 when
any cell failed, 77 when fio is missing.  tests/bench/run installs what is
needed and builds zcfuse, then runs this.

The example backends built on libzcfuse are systems too, measured only when
named with --systems: blobstore (examples/blobstore: the data in one backing
file on the same backing store) and memfs (examples/memfs: in memory).  They
keep their own data, so their files are laid out through each of their
mounts.  For example, sequential 1 MiB reads and writes of the single-file
store next to the passthrough daemon:

    tests/bench/run --quick --systems zcfuse-splice,blobstore --workloads seqread-1m,seqwrite-1m

Two systems run on a one-node Ceph cluster the benchmark starts on
127.0.0.1 (tests/lib/cephcluster.py: a monitor and a memstore OSD, so the
objects are in the OSD's memory): blobstore-rados (the blob store in a
RADOS pool, one store per setting) and cephfs (CephFS through ceph-fuse,
with one MDS, in its default caching only): what a Ceph user would mount
instead. Their CPU column is the FUSE daemon's alone (blobstore or
ceph-fuse), not the OSD's, monitor's or MDS's:

    tests/bench/run --quick --systems blobstore,blobstore-rados,cephfs

Environment: ZCFUSE_BIN (daemon executable), ZCFUSE_BENCH_TMPDIR (where the
scratch directory goes, default /var/tmp: it must be on the root disk),
ZCFUSE_EXAMPLES_DIR (where the example programs are, default build/examples).
"""

import argparse
import csv
import datetime
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
# What the benchmark shares with the mount tests: tests/lib.
sys.path.insert(0, os.path.join(TOP, 'tests', 'lib'))

import cephcluster  # noqa: E402
import plots  # noqa: E402
import zcmount  # noqa: E402
from zcmount import is_mounted  # noqa: E402

PLL_SRC_DIR = '/usr/share/doc/libfuse3-dev/examples'

MOUNT_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
BUSY_LIMIT = 0.25       # mark a cell when something else used more of the CPUs than this
RUN_SLACK = 60.0        # a run may take this much longer than its runtime
LAYOUT_TIMEOUT = 300.0
META_BATCH = 1000       # live inodes at most, per metadata run


# ------------------------------------------------------------------ the matrix

@dataclass
class System:
    name: str
    kind: str                   # 'native', 'libfuse' (passthrough_ll), 'zcfuse', or an
                                # example backend: 'blobstore', 'memfs'
    opts: list = field(default_factory=list)   # -o options added in every setting
    default: bool = True        # measured when --systems does not name the systems
    binary: str = ''            # zcfuse: another build's daemon (--baseline-bin)

    @property
    def own_data(self):
        """An example backend (or CephFS) keeps its own data: files are laid out through its mount."""
        return self.kind in EXAMPLE_KINDS or self.kind == 'cephfs'

    @property
    def on_ceph(self):
        return self.kind in CEPH_KINDS


EXAMPLE_KINDS = ('blobstore', 'memfs', 'blobstore-rados')
LIBZCFUSE_KINDS = ('zcfuse',) + EXAMPLE_KINDS
CEPH_KINDS = ('blobstore-rados', 'cephfs')

# One row per system; a new zcfuse mode is one more row here.
SYSTEMS = [
    System('native', 'native'),
    System('libfuse', 'libfuse'),
    # No options beyond the setting's own: what a user gets (FUSE over
    # io_uring where the kernel allows it, which the run switches on when
    # it measures a ring row, else /dev/fuse; kernel passthrough where the
    # kernel and the daemon's privileges allow it, except under writeback).
    System('zcfuse-default', 'zcfuse'),
    # The daemon's own data path: every read and write reaches it.
    System('zcfuse-splice', 'zcfuse', ['noio_uring', 'nopassthrough']),
    System('zcfuse-copy', 'zcfuse', ['noio_uring', 'nopassthrough', 'nosplice']),
    # Kernel passthrough: open files served by the kernel, under writeback
    # too (which it turns off: the kernel refuses both at once).
    System('zcfuse-passthrough', 'zcfuse', ['noio_uring', 'passthrough']),
    System('blobstore', 'blobstore', default=False),
    System('memfs', 'memfs', default=False),
    # On a local Ceph cluster: the blob store in a RADOS pool, and CephFS (ceph-fuse).
    System('blobstore-rados', 'blobstore-rados', default=False),
    System('cephfs', 'cephfs', default=False),
    # FUSE over io_uring; strict, so that a refused ring shows as FAIL.
    System('zcfuse-uring', 'zcfuse', ['io_uring=strict', 'nopassthrough']),
    System('zcfuse-uring-nopin', 'zcfuse', ['io_uring=strict', 'nopassthrough', 'nouring_pin']),
    # Queue threads at normal priority rather than SCHED_IDLE.
    System('zcfuse-uring-noidle', 'zcfuse', ['io_uring=strict', 'nopassthrough', 'nouring_idle'],
           default=False),
]

URING_PARAM = '/sys/module/fuse/parameters/enable_uring'


def uses_ring(system):
    """Asks for FUSE over io_uring, or gets it by default (this tree's libzcfuse)."""
    if system.kind not in LIBZCFUSE_KINDS or 'noio_uring' in system.opts:
        return False
    return not system.binary or any(o.startswith('io_uring') for o in system.opts)

# -o options per daemon kind and setting.  cached: page cache on the mount;
# direct: every request reaches the daemon (FUSE direct_io, buffered fio);
# writeback: writeback caching (write workloads only).
SETTING_OPTS = {
    'libfuse': {'cached': [], 'direct': ['cache=never'], 'writeback': ['writeback']},
    'zcfuse': {'cached': ['cache=auto'], 'direct': ['cache=never'],
               'writeback': ['cache=auto', 'writeback']},
}
for _kind in EXAMPLE_KINDS:
    SETTING_OPTS[_kind] = SETTING_OPTS['zcfuse']
# ceph-fuse in its own default (client cache on): no direct or writeback setting.
SETTING_OPTS['cephfs'] = {'cached': []}
NATIVE_SETTING = '-'


@dataclass
class Workload:
    name: str
    group: str                  # workloads of one group share a plot
    kind: str                   # 'fio', 'meta', or 'tree' (one walk of TREE_FILES files)
    rw: str = ''
    bs: str = ''
    jobs: int = 1
    fileset: str = ''           # fio files are FILESET.0 .. FILESET.<jobs-1>
    fsync_per_pass: bool = False  # fsync(2) after each pass over the file

    @property
    def writes(self):
        return 'write' in self.rw

    @property
    def unit(self):
        if self.kind in ('meta', 'tree'):
            return 'ops/s'
        return 'IOPS' if self.bs == '4k' else 'MiB/s'

    @property
    def cpu_unit(self):
        return 's/1k ops' if self.kind in ('meta', 'tree') else 's/GiB'


WORKLOADS = [
    Workload('seqread-1m', 'seqread', 'fio', 'read', '1m', 1, 'seqr'),
    Workload('seqread-128k', 'seqread', 'fio', 'read', '128k', 1, 'seqr'),
    Workload('seqwrite-1m', 'seqwrite', 'fio', 'write', '1m', 1, 'seqw'),
    Workload('seqwrite-128k', 'seqwrite', 'fio', 'write', '128k', 1, 'seqw'),
    # fsync after each pass over the file: what reaches the daemon, not
    # what the page cache takes in (writeback caching holds up to the
    # mount's share of the dirty-page limit).
    Workload('seqwrite-1m-fsync', 'seqwrite', 'fio', 'write', '1m', 1, 'seqw',
             fsync_per_pass=True),
    Workload('randread-4k-1j', 'randread', 'fio', 'randread', '4k', 1, 'randr'),
    Workload('randread-4k-4j', 'randread', 'fio', 'randread', '4k', 4, 'randr'),
    Workload('randwrite-4k-1j', 'randwrite', 'fio', 'randwrite', '4k', 1, 'randw'),
    Workload('randwrite-4k-4j', 'randwrite', 'fio', 'randwrite', '4k', 4, 'randw'),
    Workload('metadata', 'metadata', 'meta'),
    # A tree of TREE_FILES files, more than a daemon's open-file limit:
    # lstat of every file, and find -type f, on a mount with cold caches.
    Workload('tree-stat', 'tree', 'tree', 'stat'),
    Workload('tree-find', 'tree', 'tree', 'find'),
]
TREE_DIRS, TREE_FILES_PER_DIR = 200, 1000
TREE_FILES = TREE_DIRS * TREE_FILES_PER_DIR
WORKLOAD_BY_NAME = {w.name: w for w in WORKLOADS}
SEQ_FILESETS = ('seqr', 'seqw')

PROFILES = {
    'full': dict(backings=['tmpfs', 'disk'], workloads=[w.name for w in WORKLOADS],
                 reps=3, runtime=2.0, warmup=0.5, seq_mib=256, rand_mib=64),
    'quick': dict(backings=['tmpfs'],
                  workloads=['seqread-1m', 'seqwrite-1m', 'randread-4k-4j', 'metadata'],
                  reps=3, runtime=1.0, warmup=0.3, seq_mib=256, rand_mib=64),
    'smoke': dict(backings=['tmpfs'], workloads=['seqread-1m', 'randwrite-4k-4j'],
                  reps=1, runtime=1.0, warmup=0.2, seq_mib=64, rand_mib=16),
}

# zcfuse counters whose deltas go into results.csv.
COUNTERS = ['bytes.splice', 'bytes.vmsplice', 'bytes.copy', 'data.read', 'data.written',
            'data.read.pipe', 'data.read.mem', 'data.written.pipe', 'data.written.mem',
            'requests.READ', 'requests.WRITE', 'fallback.below_threshold', 'passthrough.opens',
            'transport.dev.requests', 'transport.uring.requests']


def settings_for(w):
    return ['cached', 'direct', 'writeback'] if w.writes else ['cached', 'direct']


def system_settings(w, s):
    """The settings system s is measured in for workload w."""
    return [st for st in settings_for(w) if st in SETTING_OPTS[s.kind]]


def cells_for(w, systems):
    """The (system, setting) pairs measured for workload w, in run order."""
    cells = []
    for s in systems:
        if s.kind == 'native':
            cells.append((s, NATIVE_SETTING))
        else:
            cells.extend((s, st) for st in system_settings(w, s))
    return cells


# What a run costs besides its own runtime, for the estimate of how long the
# benchmark takes (--estimate, and the progress line until runs are timed).
# Measured on the 2-core VM in a --quick run of seven systems: set-up 43 s,
# 174 runs of 1 s in 3 min 48 s (1.31 s each); stopping the daemons at the
# end takes a second or so, at most STOP_TIMEOUT.
RUN_OVERHEAD = 0.3          # per timed run: starting fio or meta.py, sync(2), counters
PROCESS_OVERHEAD = 0.3      # per warm-up process
MOUNT_SECS = 0.3            # per mount
START_SECS = 5.0            # the idle-load probe and compiling passthrough_ll
LAYOUT_MIB_S = 1000.0       # laying out the data files
TREE_LAYOUT_SECS = 15.0     # creating the tree of TREE_FILES files
# Files per second of one tree walk, per setting: guesses from the README's
# table (a mount walks stat at 5 000 to 97 000 files/s, find at over 600 000).
TREE_RATES = {'stat': {NATIVE_SETTING: 500000.0, 'cached': 35000.0, 'direct': 10000.0},
              'find': {NATIVE_SETTING: 2000000.0, 'cached': 600000.0, 'direct': 600000.0}}


def estimate(args):
    """(cells, runs, seconds) that a run of this configuration should take."""
    cells = sum(len(cells_for(w, args.systems)) for w in args.workloads)
    runs = cells * args.reps * len(args.backings)
    per_backing = 0.0
    for w in args.workloads:
        for s, st in cells_for(w, args.systems):
            if w.kind == 'tree':
                took = TREE_FILES / TREE_RATES[w.rw].get(st, 10000.0)
            else:
                took = args.runtime
            per_backing += args.reps * (took + RUN_OVERHEAD)
    filesets = {}
    for w in args.workloads:
        if w.kind == 'fio':
            filesets[w.fileset] = max(filesets.get(w.fileset, 0), w.jobs)
    layout_mib = sum((args.seq_mib if f in SEQ_FILESETS else args.rand_mib) * jobs
                     for f, jobs in filesets.items())
    settings = set()
    for w in args.workloads:
        settings.update(settings_for(w))
    mounts = len([s for s in args.systems if s.kind != 'native']) * len(settings)
    warm = len(filesets) * args.warmup + (PROCESS_OVERHEAD if filesets else 0.0)
    if any(w.kind == 'meta' for w in args.workloads):
        warm += args.warmup + PROCESS_OVERHEAD
    per_backing += layout_mib / LAYOUT_MIB_S + mounts * MOUNT_SECS + (mounts + 1) * warm
    if any(w.kind == 'tree' for w in args.workloads):
        per_backing += TREE_LAYOUT_SECS
    return cells * len(args.backings), runs, START_SECS + per_backing * len(args.backings)


# ------------------------------------------------------------------ helpers

def parse_size(text):
    """fio's block size ('4k', '1m', '128k') in bytes."""
    units = {'k': 2**10, 'm': 2**20, 'g': 2**30}
    text = text.lower()
    if text[-1:] in units:
        return int(text[:-1]) * units[text[-1]]
    return int(text)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def fmt_duration(secs):
    secs = int(round(secs))
    return '%dm %02ds' % (secs // 60, secs % 60) if secs >= 60 else '%ds' % secs


def cpu_seconds(pid):
    """utime + stime of the whole process (all threads, live and exited), or None."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            fields = f.read().rpartition(')')[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def machine_cpu():
    """(busy, steal) CPU seconds of the whole machine so far, from /proc/stat."""
    with open('/proc/stat') as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = v
    tick = os.sysconf('SC_CLK_TCK')
    return (user + nice + system + irq + softirq) / tick, steal / tick


def idle_load(seconds=2.0):
    """The share of the CPUs busy while we sit still: other people's work."""
    busy0, _ = machine_cpu()
    time.sleep(seconds)
    busy1, _ = machine_cpu()
    return (busy1 - busy0) / (seconds * (os.cpu_count() or 1))


def children_cpu():
    """CPU seconds of the child processes we have waited for (fio, meta.py)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def tail(path, n=3):
    try:
        with open(path, errors='replace') as f:
            lines = [l.strip() for l in f if l.strip() and not l.startswith('== start')]
        return ' | '.join(lines[-n:])
    except OSError:
        return ''


def command_output(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ''


# ------------------------------------------------------------------ daemons

class Daemon(zcmount.FuseDaemon):
    """One FUSE daemon we started in the foreground, mounted at mnt."""

    def __init__(self, bench, system, setting, source, mnt):
        self.logname = 'logs/%s-%s-%s.log' % (bench.backing, system.name, setting)
        super().__init__(mnt, os.path.join(bench.out, self.logname))
        self.bench = bench
        self.system = system
        self.setting = setting
        self.source = source
        self.starts = 0
        # blobstore's backing file, on the backing store next to the data directory.
        self.store = os.path.join(os.path.dirname(source), '%s-%s.blob' % (system.name, setting))

    def command(self):
        opts = self.system.opts + SETTING_OPTS[self.system.kind][self.setting]
        if self.system.kind == 'zcfuse':
            cmd = [self.system.binary or self.bench.zcfuse_bin, self.source, self.mnt, '-f']
            return cmd + (['-o', ','.join(opts)] if opts else [])
        if self.system.kind == 'blobstore':
            cmd = [self.bench.example_bin('blobstore'), self.store, self.mnt, '-f']
            return cmd + (['-o', ','.join(opts)] if opts else [])
        if self.system.kind == 'memfs':
            cmd = [self.bench.example_bin('memfs'), self.mnt, '-f']
            return cmd + (['-o', ','.join(opts)] if opts else [])
        c = self.bench.ceph
        if self.system.kind == 'blobstore-rados':
            store = 'rados://%s/bench-%s-%s' % (c.pool, self.bench.backing, self.setting)
            opts = opts + ['conf=' + c.conf, 'id=' + c.client]
            return [self.bench.example_bin('blobstore'), store, self.mnt, '-f',
                    '-o', ','.join(opts)]
        if self.system.kind == 'cephfs':
            return ['ceph-fuse', '-f', '-c', c.conf, '-n', 'client.admin', self.mnt]
        return [self.bench.pll_bin, '-f', '-o', ','.join(['source=' + self.source] + opts),
                self.mnt]

    def start(self):
        """Mount; returns None, or why it failed."""
        os.makedirs(self.mnt, exist_ok=True)
        if self.system.kind == 'libfuse' and not self.bench.pll_bin:
            return 'passthrough_ll was not built'
        if self.system.on_ceph and self.bench.ceph_error:
            return self.bench.ceph_error
        self.starts += 1
        with open(self.log_file, 'a') as logf:
            logf.write('== start %d: %s\n' % (self.starts, ' '.join(self.command())))
        try:
            self.spawn(self.command(), append=True)
        except OSError as e:
            return 'cannot start daemon: %s' % e
        try:
            self.wait_mounted(MOUNT_TIMEOUT)
        except zcmount.DaemonError:
            if self.proc.poll() is not None:
                return 'mount failed: daemon exited with %s (%s)' % (
                    self.proc.returncode, tail(self.log_file))
            self.stop()
            return 'mount failed: not mounted after %.0f s' % MOUNT_TIMEOUT
        return None

    def exit_status(self):
        if self.proc is None:
            return 'not started'
        rc = self.proc.poll()
        if rc is None:
            return 'still running, mount gone' if not is_mounted(self.mnt) else 'running'
        return 'killed by signal %d' % -rc if rc < 0 else 'exit status %d' % rc

    def stop(self):
        """Unmount and reap; never leaves the mount or the process behind."""
        super().stop(STOP_TIMEOUT)
        self.proc = None


# ------------------------------------------------------------------ the bench

class Bench:
    def __init__(self, args):
        self.args = args
        self.out = args.out
        self.systems = args.systems
        self.workloads = args.workloads
        self.zcfuse_bin = args.zcfuse_bin
        self.examples_dir = args.examples_dir
        self.pll_bin = None
        self.scratch = None
        self.tmpfs_dir = None
        self.backing = None
        self.daemons = {}           # (system name, setting) -> Daemon
        self.rows = []              # one dict per run
        self.notes = []             # problems outside any cell
        self.total_runs = 0
        self.done_runs = 0
        self.run_secs = 0.0         # time spent in runs, for the estimate of what is left
        self.run_count = 0
        self.setup_secs = []        # time each backing took to set up
        self.teardown_secs = 0.0    # unmounting and stopping the daemons
        self.started = time.monotonic()
        self.meta_seq = 0
        self.csv_file = None
        self.csv_writer = None
        self.ceph = None            # the local Ceph cluster, for the systems on it
        self.ceph_error = None      # why it is not there

    # ---- set-up and tear-down

    def start_ceph(self):
        """The local cluster (and CephFS), where a system needs them."""
        kinds = {s.kind for s in self.systems}
        if not kinds & set(CEPH_KINDS):
            return
        t0 = time.monotonic()
        log('bench: starting a local Ceph cluster')
        self.ceph = cephcluster.Cluster(os.path.join(self.scratch, 'ceph'))
        try:
            self.ceph.start()
            if 'cephfs' in kinds:
                self.ceph.start_cephfs()
        except cephcluster.ClusterError as e:
            self.ceph_error = 'no local Ceph cluster: %s' % str(e).splitlines()[0]
            self.notes.append(self.ceph_error)
            log('bench: ' + self.ceph_error)
            return
        log('bench: the cluster started in %.1f s' % (time.monotonic() - t0))

    def setup(self):
        os.makedirs(os.path.join(self.out, 'logs'), exist_ok=True)
        base = os.environ.get('ZCFUSE_BENCH_TMPDIR', '/var/tmp')
        self.scratch = tempfile.mkdtemp(prefix='zcfuse-bench.', dir=base)
        self.build_pll()
        self.csv_file = open(os.path.join(self.out, 'results.csv'), 'w', newline='')
        self.csv_writer = csv.DictWriter(self.csv_file, fieldnames=RESULT_FIELDS)
        self.csv_writer.writeheader()
        self.start_ceph()

    def example_bin(self, name):
        return os.path.join(self.examples_dir, name)

    def build_pll(self):
        """Compile libfuse's own passthrough_ll example into the scratch folder."""
        src = os.path.join(PLL_SRC_DIR, 'passthrough_ll.c')
        out = os.path.join(self.scratch, 'passthrough_ll')
        flags = command_output(['pkg-config', '--cflags', '--libs', 'fuse3']).split()
        r = subprocess.run(['cc', '-O2', '-Wall', '-I', PLL_SRC_DIR, src] + flags + ['-o', out],
                           capture_output=True, text=True)
        if r.returncode != 0 or not os.access(out, os.X_OK):
            self.notes.append('passthrough_ll did not compile: %s' % r.stderr.strip()[-300:])
            log('bench: passthrough_ll did not compile:\n' + r.stderr)
            return
        self.pll_bin = out

    def cleanup(self):
        self.stop_daemons()
        if self.ceph:
            self.ceph.stop()
            self.ceph = None
        self.umount_tmpfs()
        if self.scratch and os.path.isdir(self.scratch):
            if any(is_mounted(os.path.join(dp, d)) for dp, ds, _ in os.walk(self.scratch)
                   for d in ds):
                log('bench: something is still mounted under %s, not removing it' % self.scratch)
            else:
                shutil.rmtree(self.scratch, ignore_errors=True)
        if self.csv_file:
            self.csv_file.close()
            self.csv_file = None

    def stop_daemons(self):
        """Unmount every mount, then reap the daemons within one STOP_TIMEOUT: one
        at a time, a daemon slow to exit would hold up every one after it."""
        running = [d for d in self.daemons.values() if d.proc is not None]
        problems = {}
        for d in running:
            try:
                problems[d] = d.unmount()
            except Exception as e:      # keep unmounting the others
                problems[d] = ['unmount: %s' % e]
        deadline = time.monotonic() + STOP_TIMEOUT
        for d in running:
            try:
                _, late = d.reap(max(0.1, deadline - time.monotonic()))
                if late:
                    problems[d].append('the daemon did not exit within %.0f s of the unmounts '
                                       'and was killed' % STOP_TIMEOUT)
                if is_mounted(d.mnt):
                    zcmount.fusermount_unmount(d.mnt, lazy=True)
            except Exception as e:
                problems[d].append('stop: %s' % e)
            d.proc = None
            if problems[d] and self.backing:
                self.notes.append('%s: %s %s at the end: %s' % (
                    self.backing, d.system.name, d.setting, '; '.join(problems[d])))
        self.daemons = {}

    def backing_dir(self, backing):
        """Create the backing store; returns the data directory."""
        root = os.path.join(self.scratch, backing)
        os.makedirs(root)
        if backing == 'tmpfs':
            r = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=6G,mode=0755',
                                'zcfuse-bench', root], capture_output=True, text=True)
            if r.returncode:
                raise RuntimeError('cannot mount tmpfs: ' + r.stderr.strip())
            self.tmpfs_dir = root
        data = os.path.join(root, 'data')
        os.makedirs(data)
        return data

    def drop_backing(self, data):
        self.stop_daemons()
        if self.tmpfs_dir:
            self.umount_tmpfs()
        else:
            shutil.rmtree(data, ignore_errors=True)

    def umount_tmpfs(self):
        if self.tmpfs_dir and is_mounted(self.tmpfs_dir):
            if subprocess.run(['umount', self.tmpfs_dir], capture_output=True).returncode:
                subprocess.run(['umount', '-l', self.tmpfs_dir], capture_output=True)
        self.tmpfs_dir = None

    # ---- fio

    def file_mib(self, fileset):
        return self.args.seq_mib if fileset in SEQ_FILESETS else self.args.rand_mib

    def fio_job(self, w, directory, runtime):
        extra = []
        if w.fsync_per_pass:
            blocks = self.file_mib(w.fileset) * 2**20 // parse_size(w.bs)
            extra.append('--fsync=%d' % max(blocks, 1))
        return ['--name=' + w.name, '--directory=' + directory,
                '--filename_format=%s.$jobnum' % w.fileset, '--numjobs=%d' % w.jobs,
                '--rw=' + w.rw, '--bs=' + w.bs, '--size=%dM' % self.file_mib(w.fileset),
                '--ioengine=psync', '--iomem_align=4k', '--invalidate=0', '--fallocate=none',
                '--norandommap', '--group_reporting',
                '--time_based', '--runtime=%dms' % int(runtime * 1000)] + extra

    def layout(self, data):
        """Write every data file once, natively, before any timed run."""
        sets = {}
        for w in self.workloads:
            if w.kind == 'fio':
                sets[w.fileset] = max(sets.get(w.fileset, 0), w.jobs)
        for fileset, jobs in sets.items():
            cmd = ['fio', '--name=layout-' + fileset, '--directory=' + data,
                   '--filename_format=%s.$jobnum' % fileset, '--numjobs=%d' % jobs,
                   '--rw=write', '--bs=1m', '--size=%dM' % self.file_mib(fileset),
                   '--ioengine=psync', '--iomem_align=4k', '--output-format=terse']
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=LAYOUT_TIMEOUT)
            if r.returncode:
                raise RuntimeError('layout of %s failed: %s' % (fileset, r.stderr.strip()))
        if any(w.kind == 'tree' for w in self.workloads):
            flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC
            for i in range(TREE_DIRS):
                d = os.path.join(data, 'tree', 'd%03d' % i)
                os.makedirs(d)
                for j in range(TREE_FILES_PER_DIR):
                    os.close(os.open(os.path.join(d, 'f%04d' % j), flags, 0o644))
        os.sync()

    def warmup(self, directory):
        """One untimed short run of each file set the timed runs use."""
        seen = set()
        cmd = ['fio', '--output-format=terse']
        for w in self.workloads:
            if w.kind == 'fio' and w.fileset not in seen:
                seen.add(w.fileset)
                cmd += self.fio_job(w, directory, self.args.warmup) + ['--stonewall']
        if len(cmd) > 2:
            subprocess.run(cmd, capture_output=True, timeout=LAYOUT_TIMEOUT)
        if any(w.kind == 'meta' for w in self.workloads):
            self.run_meta(directory, self.args.warmup)

    def run_fio(self, w, directory):
        """Returns (metrics dict, None) or (None, why it failed)."""
        cmd = ['fio', '--output-format=json'] + self.fio_job(w, directory, self.args.runtime)
        try:
            r = subprocess.run(cmd, capture_output=True, text=True,
                               timeout=self.args.runtime + RUN_SLACK)
        except subprocess.TimeoutExpired:
            return None, 'fio did not finish within %.0f s' % (self.args.runtime + RUN_SLACK)
        try:
            job = json.loads(r.stdout[r.stdout.index('{'):])['jobs'][0]
        except (ValueError, KeyError, IndexError):
            job = None
        err = (r.stderr.strip().splitlines() or [''])[-1]
        if r.returncode != 0 or job is None or job.get('error'):
            return None, 'fio error (status %d, error %s): %s' % (
                r.returncode, job.get('error') if job else '?', err)
        d = job['write' if w.writes else 'read']
        if d['io_bytes'] == 0:
            return None, 'no data moved (fio io_bytes 0)'
        secs = d['runtime'] / 1000.0
        m = {'io_bytes': d['io_bytes'], 'seconds': secs,
             'mib_s': d['bw_bytes'] / 2**20, 'iops': d['iops']}
        m['value'] = m['iops'] if w.unit == 'IOPS' else m['mib_s']
        return m, None

    def run_tree(self, w, directory):
        """One walk of the tree, after the kernel dropped its dentries and
        inodes (the mount's cold; a tmpfs backing keeps its own)."""
        with open('/proc/sys/vm/drop_caches', 'w') as f:
            f.write('2\n')
        r = subprocess.run([sys.executable, os.path.join(HERE, 'meta.py'),
                            os.path.join(directory, 'tree'), '--walk', w.rw,
                            '--expect', str(TREE_FILES)],
                           capture_output=True, text=True, timeout=LAYOUT_TIMEOUT)
        if r.returncode != 0:
            return None, 'tree walk failed: ' + (r.stderr.strip().splitlines() or ['?'])[-1]
        try:
            res = json.loads(r.stdout)
        except ValueError:
            return None, 'tree walk printed no result'
        m = {'ops': res['ops'], 'seconds': res['seconds'], 'ops_s': res['ops'] / res['seconds']}
        m['value'] = m['ops_s']
        return m, None

    def run_meta(self, directory, seconds):
        self.meta_seq += 1
        d = os.path.join(directory, 'meta.%d' % self.meta_seq)
        try:
            os.mkdir(d)
        except OSError as e:
            return None, 'cannot create the metadata directory: %s' % e
        m, why = None, None
        try:
            r = subprocess.run([sys.executable, os.path.join(HERE, 'meta.py'), d,
                                '--seconds', str(seconds), '--batch', str(META_BATCH)],
                               capture_output=True, text=True, timeout=seconds + RUN_SLACK)
            if r.returncode != 0:
                why = 'metadata workload failed: ' + (r.stderr.strip().splitlines() or ['?'])[-1]
            else:
                res = json.loads(r.stdout)
                if res['ops'] == 0:
                    why = 'no operations done'
                else:
                    m = {'ops': res['ops'], 'seconds': res['seconds'],
                         'ops_s': res['ops'] / res['seconds']}
                    m['value'] = m['ops_s']
        except subprocess.TimeoutExpired:
            why = 'metadata workload did not finish within %.0f s' % (seconds + RUN_SLACK)
        except ValueError:
            why = 'metadata workload printed no result'
        try:
            os.rmdir(d)
        except OSError:
            shutil.rmtree(d, ignore_errors=True)
        return m, why

    # ---- one run

    def run_once(self, backing, data, w, system, setting, rep):
        row = {'backing': backing, 'workload': w.name, 'system': system.name,
               'setting': setting, 'rep': rep, 'unit': w.unit, 'status': 'FAIL', 'reason': ''}
        daemon = self.daemons.get((system.name, setting))
        directory = data if daemon is None else daemon.mnt
        if daemon is not None and not daemon.alive():
            daemon.stop()
            why = daemon.start()
            if why:
                row['reason'] = why
                return row
            self.notes.append('%s: %s %s was remounted (start %d) before %s run %d' % (
                backing, system.name, setting, daemon.starts, w.name, rep))
        pid = daemon.proc.pid if daemon else None
        zc = daemon is not None and system.kind in LIBZCFUSE_KINDS
        try:
            c0 = zcmount.counters(directory) if zc else None
        except OSError:
            c0 = None
        cpu0 = cpu_seconds(pid) if pid else None
        busy0, steal0 = machine_cpu()
        child0 = children_cpu()
        wall0 = time.monotonic()

        if w.kind == 'meta':
            m, why = self.run_meta(directory, self.args.runtime)
        elif w.kind == 'tree':
            m, why = self.run_tree(w, directory)
        else:
            m, why = self.run_fio(w, directory)

        wall = time.monotonic() - wall0
        busy1, steal1 = machine_cpu()
        child = children_cpu() - child0
        cpu1 = cpu_seconds(pid) if pid else None
        if pid:
            if not daemon.alive():
                why = 'daemon died during the run (%s; see %s)%s' % (
                    daemon.exit_status(), daemon.logname, ': ' + why if why else '')
        if why:
            row['reason'] = why
            return row
        row.update(m)
        row['status'] = 'ok'
        # Whatever else ran meanwhile (other people's jobs, kernel threads).
        if cpu0 is None or cpu1 is None:
            cpu0 = cpu1 = None
        daemon_cpu = cpu1 - cpu0 if cpu1 is not None else 0.0
        ncpu = os.cpu_count() or 1
        row['other_load'] = max(0.0, busy1 - busy0 - daemon_cpu - child) / (wall * ncpu)
        row['steal'] = (steal1 - steal0) / (wall * ncpu)
        if cpu1 is not None:
            row['cpu_s'] = cpu1 - cpu0
            per = m['ops'] / 1000.0 if w.kind in ('meta', 'tree') else m['io_bytes'] / 2**30
            row['cpu_per_unit'] = row['cpu_s'] / per
        if zc and c0 is not None:
            try:
                c1 = zcmount.counters(directory)
                for k in COUNTERS:
                    row[k.replace('.', '_')] = c1.get(k, 0) - c0.get(k, 0)
            except OSError:
                pass
        return row

    # ---- the whole matrix

    def count_runs(self):
        return sum(len(cells_for(w, self.systems)) for w in self.workloads) * \
            self.args.reps * len(self.args.backings)

    def progress(self, what):
        """Print which run starts now and how long the rest should take."""
        self.done_runs += 1
        if self.run_count:
            per_run = self.run_secs / self.run_count
            setup = statistics.mean(self.setup_secs)
            backings_left = len(self.args.backings) - len(self.setup_secs)
            left = per_run * (self.total_runs - self.done_runs + 1) + setup * backings_left
        else:
            left = max(0.0, estimate(self.args)[2] - (time.monotonic() - self.started))
        line = '[%d/%d] %s, ~%s left' % (self.done_runs, self.total_runs, what,
                                          fmt_duration(left))
        if sys.stderr.isatty():
            sys.stderr.write('\r\033[K' + line)
            sys.stderr.flush()
        else:
            log(line)

    def run(self):
        self.total_runs = self.count_runs()
        for backing in self.args.backings:
            self.backing = backing
            t0 = time.monotonic()
            log('bench: %s: laying out files' % backing)
            data = self.backing_dir(backing)
            self.layout(data)
            for s in self.systems:
                if s.kind == 'native':
                    continue
                needed = set()
                for w in self.workloads:
                    needed.update(system_settings(w, s))
                for st in sorted(needed):
                    mnt = os.path.join(self.scratch, 'mnt', '%s-%s-%s' % (backing, s.name, st))
                    d = Daemon(self, s, st, data, mnt)
                    self.daemons[(s.name, st)] = d
                    why = d.start()
                    if why:
                        log('bench: %s %s on %s: %s' % (s.name, st, backing, why))
                    elif s.own_data:
                        log('bench: %s: laying out files in %s %s' % (backing, s.name, st))
                        try:
                            self.layout(mnt)
                        except (RuntimeError, subprocess.TimeoutExpired) as e:
                            log('bench: %s %s on %s: %s' % (s.name, st, backing, e))
            log('bench: %s: warming up %d mounts' % (backing, len(self.daemons) + 1))
            self.warmup(data)
            for d in self.daemons.values():
                if d.alive():
                    self.warmup(d.mnt)
            self.setup_secs.append(time.monotonic() - t0)
            for w in self.workloads:
                for rep in range(1, self.args.reps + 1):
                    for system, setting in cells_for(w, self.systems):
                        what = '%s %s %s %s run %d/%d' % (
                            system.name, setting if setting != NATIVE_SETTING else '',
                            w.name, backing, rep, self.args.reps)
                        self.progress(what.replace('  ', ' '))
                        t0 = time.monotonic()
                        row = self.run_once(backing, data, w, system, setting, rep)
                        if w.writes:
                            # Do not let one run's dirty pages slow the next:
                            # a writeback mount keeps them even over tmpfs.
                            os.sync()
                        self.run_secs += time.monotonic() - t0
                        self.run_count += 1
                        self.rows.append(row)
                        self.csv_writer.writerow(row)
                        self.csv_file.flush()
                        if row['status'] != 'ok':
                            log('\nbench: FAIL %s: %s' % (what, row['reason']))
            t0 = time.monotonic()
            self.drop_backing(data)
            self.teardown_secs += time.monotonic() - t0
        if sys.stderr.isatty():
            sys.stderr.write('\n')


RESULT_FIELDS = ['backing', 'workload', 'system', 'setting', 'rep', 'status', 'reason', 'unit',
                 'value', 'mib_s', 'iops', 'ops_s', 'io_bytes', 'ops', 'seconds', 'cpu_s',
                 'cpu_per_unit', 'other_load', 'steal'] + [k.replace('.', '_') for k in COUNTERS]


# ------------------------------------------------------------------ report

@dataclass
class Cell:
    backing: str
    workload: Workload
    system: str
    setting: str
    runs: int = 0
    failed: str = ''            # reason of the first failed run
    median: float = None
    lo: float = None
    hi: float = None
    cpu: float = None           # median daemon CPU per GiB / per 1000 ops
    pipe_share: float = None    # zcfuse: share of data moved through pipes
    x_native: float = None
    x_libfuse: float = None
    other_max: float = 0.0      # the most CPU share anything else took during one run

    @property
    def ok(self):
        return self.runs > 0 and not self.failed


def summarize(rows, backings, workloads, systems):
    cells = {}
    for b in backings:
        for w in workloads:
            for s, st in cells_for(w, systems):
                rs = [r for r in rows if (r['backing'], r['workload'], r['system'],
                                          r['setting']) == (b, w.name, s.name, st)]
                c = Cell(b, w, s.name, st, runs=len(rs))
                bad = [r for r in rs if r['status'] != 'ok']
                if not rs:
                    c.failed = 'not run'
                elif bad:
                    c.failed = 'run %s: %s' % (bad[0]['rep'], bad[0]['reason'])
                else:
                    vals = [r['value'] for r in rs]
                    c.median, c.lo, c.hi = statistics.median(vals), min(vals), max(vals)
                    cpus = [r['cpu_per_unit'] for r in rs if r.get('cpu_per_unit') is not None]
                    c.cpu = statistics.median(cpus) if cpus else None
                    moved = sum(r.get('data_read', 0) + r.get('data_written', 0) for r in rs)
                    piped = sum(r.get('data_read_pipe', 0) + r.get('data_written_pipe', 0)
                                for r in rs)
                    if moved:
                        c.pipe_share = piped / moved
                    c.other_max = max(r.get('other_load', 0.0) for r in rs)
                cells[(b, w.name, s.name, st)] = c
    for (b, wn, sn, st), c in cells.items():
        if not c.ok:
            continue
        nat = cells.get((b, wn, 'native', NATIVE_SETTING))
        lib = cells.get((b, wn, 'libfuse', st))
        if nat and nat.ok and nat.median:
            c.x_native = c.median / nat.median
        if lib and lib.ok and lib.median and sn != 'native':
            c.x_libfuse = c.median / lib.median
    return cells


def fmt_num(v, digits=0):
    if v is None:
        return ''
    return '%.*f' % (digits, v)


def fmt_median(c):
    return fmt_num(c.median) + (' †' if c.other_max > BUSY_LIMIT else '')


def fmt_cpu(c):
    if c.cpu is None:
        return ''
    return fmt_num(c.cpu, 3 if c.workload.kind in ('meta', 'tree') or c.cpu < 0.1 else 2)


def machine_info(bench):
    info = {}
    cpu = '?'
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    info['CPU'] = '%s, %d cores' % (cpu, os.cpu_count() or 0)
    info['kernel'] = os.uname().release
    try:
        with open('/proc/meminfo') as f:
            kb = int(f.readline().split()[1])
        info['memory'] = '%.1f GiB' % (kb / 2**20)
    except (OSError, ValueError, IndexError):
        info['memory'] = '?'
    info['fio'] = command_output(['fio', '--version']) or '?'
    info['libfuse'] = command_output(['pkg-config', '--modversion', 'fuse3']) or '?'
    try:
        with open('/proc/sys/fs/pipe-max-size') as f:
            info['fs.pipe-max-size'] = f.read().strip()
    except OSError:
        pass
    ver = command_output([bench.zcfuse_bin, '--version']).splitlines()
    git = command_output(['git', '-C', TOP, 'describe', '--always', '--dirty'])
    info['zcfuse'] = '%s%s (%s)' % (ver[0] if ver else '?', ', git ' + git if git else '',
                                    bench.zcfuse_bin)
    return info


def markdown(bench, cells, took, interrupted):
    a = bench.args
    out = ['# zcfuse benchmark (%s)' % a.profile, '']
    if interrupted:
        out += ['**Interrupted: the tables below are incomplete.**', '']
    for k, v in machine_info(bench).items():
        out.append('- %s: %s' % (k, v))
    out.append('- run: %s, took %s; %d run(s) per cell, %s s each, interleaved over the systems; '
               'files: sequential %d MiB, random one file per job of %d MiB' % (
                   datetime.datetime.now().strftime('%Y-%m-%d %H:%M'), fmt_duration(took),
                   a.reps, ('%g' % a.runtime), a.seq_mib, a.rand_mib))
    if bench.run_count:
        out.append('- time: set-up of the backings %s, %d runs %s (%.2f s a run), tear-down %s; '
                   'estimated beforehand %s' % (
                       fmt_duration(sum(bench.setup_secs)), bench.run_count,
                       fmt_duration(bench.run_secs), bench.run_secs / bench.run_count,
                       fmt_duration(bench.teardown_secs), fmt_duration(estimate(a)[2])))
    ok_rows = [r for r in bench.rows if r['status'] == 'ok']
    load = statistics.mean(r['other_load'] for r in ok_rows) if ok_rows else 0.0
    steal = statistics.mean(r['steal'] for r in ok_rows) if ok_rows else 0.0
    out += ['',
            'Method: fio ioengine=psync, buffered, iomem_align=4k, invalidate=0 (the backing\'s '
            'page cache is kept), time-based; files laid out natively before the timed runs and '
            'overwritten; one untimed warm-up per mount; all mounts of a backing serve the same '
            'directory; sync(2) after every write run, outside its time. Settings: *cached* = '
            'page cache on the mount (zcfuse cache=auto, which keeps a file\'s cached pages '
            'across opens while the file is unchanged, and passthrough_ll\'s default, which '
            'drops them at every open); *direct* = FUSE direct_io, '
            'every request reaches the daemon (cache=never for both); *writeback* = writeback '
            'caching. Where zcfuse uses kernel passthrough (zcfuse-default as root, '
            'zcfuse-passthrough), the kernel reads and writes open files straight from the '
            'backing file in every setting, and writeback caching is off. Values: median of the runs, with min and max. CPU: the daemon\'s '
            'utime+stime (all threads, /proc/PID/stat) per GiB moved by fio, or per 1000 '
            'metadata operations. x native, x libfuse: the median divided by native\'s, and by '
            'libfuse\'s in the same setting. via pipe: the share of file data zcfuse moved '
            'through pipes (counters data.*.pipe / data.*). Metadata: one operation is the '
            'create (open, write 64 bytes, close), stat, rename or unlink of one file, or one '
            'listing of a %d-file directory. FAIL: a run failed; the reason is listed below '
            'the table.' % META_BATCH, '',
            'Other load: programs other than fio, the metadata program and the daemon under '
            'test used %.0f%% of the CPUs on average during the runs (hypervisor steal %.0f%%); '
            '† marks a cell in which one run saw more than %.0f%%.' % (
                100 * load, 100 * steal, 100 * BUSY_LIMIT), '']
    if bench.notes:
        out += ['Notes:', ''] + ['- ' + n for n in bench.notes] + ['']

    for b in a.backings:
        out += ['## %s' % b, '', '### Overview (median)', '']
        rows_order = []
        for w in bench.workloads:
            for s, st in cells_for(w, bench.systems):
                if (s.name, st) not in rows_order:
                    rows_order.append((s.name, st))
        out.append('| system | setting | ' + ' | '.join('%s (%s)' % (w.name, w.unit)
                                                       for w in bench.workloads) + ' |')
        out.append('|---|---|' + '---:|' * len(bench.workloads))
        for sn, st in rows_order:
            vals = []
            for w in bench.workloads:
                c = cells.get((b, w.name, sn, st))
                vals.append('' if c is None else ('FAIL' if not c.ok else fmt_median(c)))
            out.append('| %s | %s | %s |' % (sn, st, ' | '.join(vals)))
        out.append('')
        for w in bench.workloads:
            out += ['### %s: %s (%s)' % (b, w.name, w.unit), '',
                    '| system | setting | median | min | max | CPU %s | x native | x libfuse '
                    '| via pipe |' % w.cpu_unit,
                    '|---|---|---:|---:|---:|---:|---:|---:|---:|']
            fails = []
            for s, st in cells_for(w, bench.systems):
                c = cells[(b, w.name, s.name, st)]
                if not c.ok:
                    out.append('| %s | %s | FAIL | | | | | | |' % (s.name, st))
                    fails.append('%s %s: %s' % (s.name, st, c.failed))
                    continue
                out.append('| %s | %s | %s | %s | %s | %s | %s | %s | %s |' % (
                    s.name, st, fmt_median(c), fmt_num(c.lo), fmt_num(c.hi), fmt_cpu(c),
                    fmt_num(c.x_native, 2), fmt_num(c.x_libfuse, 2),
                    '' if c.pipe_share is None else '%.0f%%' % (100 * c.pipe_share)))
            out.append('')
            if fails:
                out += ['- FAIL ' + f for f in fails] + ['']
    return '\n'.join(out)


def write_summary_csv(path, cells):
    fields = ['backing', 'workload', 'system', 'setting', 'status', 'unit', 'median', 'min',
              'max', 'cpu_per_unit', 'cpu_unit', 'x_native', 'x_libfuse', 'pipe_share', 'runs',
              'reason']
    with open(path, 'w', newline='') as f:
        wr = csv.writer(f)
        wr.writerow(fields)
        for c in cells.values():
            wr.writerow([c.backing, c.workload.name, c.system, c.setting,
                         'ok' if c.ok else 'FAIL', c.workload.unit, c.median, c.lo, c.hi,
                         c.cpu, c.workload.cpu_unit, c.x_native, c.x_libfuse, c.pipe_share,
                         c.runs, c.failed])


# ------------------------------------------------------------------ plots

def figures(bench, summary_csv):
    """The figures of this run (plots.py), in plots/; returns the files made."""
    try:
        return plots.draw(summary_csv, os.path.join(bench.out, 'plots'))
    except plots.PlotError as e:
        bench.notes.append(str(e))
        log('bench: %s' % e)
        return []


# ------------------------------------------------------------------ main

def parse_args(argv):
    ap = argparse.ArgumentParser(description='Benchmark zcfuse against plain libfuse '
                                 '(passthrough_ll) and the native file system.')
    mode = ap.add_mutually_exclusive_group()
    for p in ('quick', 'full', 'smoke'):
        mode.add_argument('--' + p, dest='profile', action='store_const', const=p)
    ap.add_argument('--out', help='results folder (default: results/<timestamp> at the top '
                    'of the tree)')
    ap.add_argument('--workloads', help='comma separated: ' +
                    ','.join(w.name for w in WORKLOADS))
    ap.add_argument('--systems', help='comma separated: ' + ','.join(s.name for s in SYSTEMS))
    ap.add_argument('--backings', help='comma separated: tmpfs,disk')
    ap.add_argument('--reps', type=int, help='runs per cell')
    ap.add_argument('--runtime', type=float, help='seconds per run')
    ap.add_argument('--estimate', action='store_true',
                    help='print how many runs this would make and how long it should take, '
                    'and exit')
    ap.add_argument('--baseline-bin', metavar='ZCFUSE',
                    help='another build of the zcfuse daemon, measured beside this one in '
                    'the same run: as system zcfuse-baseline (default options), and as '
                    'SYSTEM-baseline for every other zcfuse system named (same options)')
    a = ap.parse_args(argv)
    a.profile = a.profile or 'full'
    prof = PROFILES[a.profile]
    for k, v in prof.items():
        if getattr(a, k, None) is None:
            setattr(a, k, v)
    if isinstance(a.backings, str):
        a.backings = a.backings.split(',')
    if isinstance(a.workloads, str):
        a.workloads = a.workloads.split(',')
    for b in a.backings:
        if b not in ('tmpfs', 'disk'):
            ap.error('unknown backing %r' % b)
    for n in a.workloads:
        if n not in WORKLOAD_BY_NAME:
            ap.error('unknown workload %r' % n)
    a.workloads = [WORKLOAD_BY_NAME[n] for n in a.workloads]
    names = a.systems.split(',') if a.systems else [s.name for s in SYSTEMS if s.default]
    by_name = {s.name: s for s in SYSTEMS}
    if a.baseline_bin:
        base_bin = os.path.abspath(a.baseline_bin)
        by_name['zcfuse-baseline'] = System('zcfuse-baseline', 'zcfuse', binary=base_bin)
        # Every zcfuse system named, also as the other build: SYSTEM-baseline.
        for s in [by_name[n] for n in names if n in by_name]:
            if s.kind == 'zcfuse' and not s.binary and s.name != 'zcfuse-default':
                twin = s.name + '-baseline'
                by_name[twin] = System(twin, 'zcfuse', list(s.opts), binary=base_bin)
                if twin not in names:
                    names.append(twin)
        if 'zcfuse-baseline' not in names:
            names.append('zcfuse-baseline')
    for n in names:
        if n not in by_name:
            ap.error('unknown system %r' % n)
    if 'native' not in names:
        names.insert(0, 'native')     # the limit every ratio is taken against
    a.systems = [by_name[n] for n in names]
    if a.reps < 1 or a.runtime <= 0:
        ap.error('--reps and --runtime must be positive')
    if not a.out:
        a.out = os.path.join(TOP, 'results', datetime.datetime.now().strftime('%Y%m%d-%H%M%S'))
    a.out = os.path.abspath(a.out)
    a.zcfuse_bin = os.path.abspath(os.environ.get('ZCFUSE_BIN') or
                                   os.path.join(TOP, 'build', 'daemon', 'zcfuse'))
    a.examples_dir = os.path.abspath(os.environ.get('ZCFUSE_EXAMPLES_DIR') or
                                     os.path.join(TOP, 'build', 'examples'))
    return a


def main(argv):
    a = parse_args(argv)
    if a.estimate:
        cells, runs, secs = estimate(a)
        print('%s: %d cells, %d runs of %g s, about %s' % (
            a.profile, cells, runs, a.runtime, fmt_duration(secs)))
        return 0
    if not shutil.which('fio'):
        log('bench: fio is not installed')
        return 77
    if os.geteuid() != 0:
        log('bench: must run as root (it mounts a tmpfs)')
        return 1
    if not os.access(a.zcfuse_bin, os.X_OK):
        log('bench: no zcfuse at %s (build it, or set ZCFUSE_BIN)' % a.zcfuse_bin)
        return 1
    os.makedirs(a.out, exist_ok=True)

    def on_signal(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    bench = Bench(a)
    interrupted = False
    status = 0
    log('bench: %s run into %s' % (a.profile, a.out))
    load = idle_load()
    if load > BUSY_LIMIT:
        msg = ('the machine was busy before the run started (%.0f%% of the CPUs in use by other '
               'programs): expect noisy numbers' % (100 * load))
        log('bench: warning: ' + msg)
        bench.notes.append(msg)
    uring_old = None
    if any(uses_ring(s) for s in a.systems):
        # The io_uring rows (and libzcfuse's default) need the fuse module's
        # enable_uring; put it back after.
        try:
            with open(URING_PARAM) as f:
                uring_old = f.read().strip()
            with open(URING_PARAM, 'w') as f:
                f.write('Y')
        except OSError as e:
            uring_old = None
            bench.notes.append('cannot enable FUSE over io_uring (%s: %s): its rows fail'
                               % (URING_PARAM, e.strerror))
    try:
        bench.setup()
        bench.total_runs = bench.count_runs()
        bench.run()
    except KeyboardInterrupt:
        interrupted, status = True, 130
        log('\nbench: interrupted, cleaning up')
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        bench.notes.append('the run stopped early: %s' % e)
        log('\nbench: %s' % e)
        interrupted, status = True, 1
    finally:
        bench.cleanup()
        if uring_old is not None:
            with open(URING_PARAM, 'w') as f:
                f.write(uring_old)
    took = time.monotonic() - bench.started

    cells = summarize(bench.rows, a.backings, a.workloads, a.systems)
    summary_csv = os.path.join(a.out, 'summary.csv')
    write_summary_csv(summary_csv, cells)
    made = figures(bench, summary_csv)
    md = markdown(bench, cells, took, interrupted)
    with open(os.path.join(a.out, 'table.md'), 'w') as f:
        f.write(md + '\n')
    print(md)
    failed = [c for c in cells.values() if not c.ok]
    print('\nResults in %s: table.md, summary.csv, results.csv, plots/ (%d figures, PNG and SVG), '
          'logs/ (took %s)' % (a.out, len(made) // 2, fmt_duration(took)))
    if failed:
        print('%d of %d cells FAILED' % (len(failed), len(cells)))
    return status or (1 if failed else 0)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
