#!/usr/bin/python3
"""Seeded random file operations on a zcfuse mount and on a plain directory.

The same operations run side by side on the mount and on a reference
directory, and the files are compared byte for byte after every few
operations and at the end.  A run is reproducible from its seed.

  integrity.py [--seed N] [--ops N | --long] [--opts cache=never,...]
  integrity.py --dirs MOUNTED_DIR REFERENCE_DIR ...   (use an existing mount)

Without --dirs it mounts zcfuse (ZCFUSE_BIN) itself with --opts or
ZCFUSE_MOUNT_OPTS.  Exit status 0 when everything matched, 1 on a mismatch.
"""

import argparse
import collections
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import zctest  # noqa: E402

KiB = 1 << 10
MiB = 1 << 20
NAMES = ['f%d' % i for i in range(8)]
MAX_HANDLES = 12
MAX_END = 6 * MiB
CHECK_EVERY = 8
DEFAULT_SEED = 1234
DEFAULT_OPS = 2000
LONG_OPS = 100000


class Mismatch(AssertionError):
    pass


class Handle:
    """One open file on both sides."""

    def __init__(self, name, mfd, rfd, append):
        self.name = name          # None once its name was unlinked or replaced
        self.mfd = mfd
        self.rfd = rfd
        self.append = append


class Run:
    def __init__(self, mnt, ref, seed, src=None, log=None, max_end=MAX_END, max_write=2 * MiB):
        self.mnt = mnt
        self.ref = ref
        self.src = src
        self.seed = seed
        self.rng = random.Random(seed)
        # Written data comes from a pool, at random offsets: fast and varied.
        self.pool = random.Random(seed ^ 0x5eed).randbytes(4 * MiB)
        self.handles = []
        self.existing = set()
        self.dirty = set()
        self.index = 0
        self.recent = collections.deque(maxlen=20)
        self.log = log
        self.counts = collections.Counter()
        self.bytes_written = 0
        # Files end below max_end; writes are at most max_write bytes.
        self.max_end = max_end
        self.max_write = max_write

    # ------------------------------------------------------------ helpers

    def fail(self, what):
        lines = ['integrity mismatch: seed %d, op %d: %s' % (self.seed, self.index, what),
                 'last operations:'] + ['  ' + r for r in self.recent]
        lines.append('reproduce: integrity.py --seed %d --ops %d' % (self.seed, self.index + 1))
        raise Mismatch('\n'.join(lines))

    def both(self, what, fn_m, fn_r):
        """Run an operation on both sides; outcomes (value or errno) must match."""
        a = zctest.attempt(fn_m)
        b = zctest.attempt(fn_r)
        if a != b:
            self.fail('%s: mount gave %s, plain directory gave %s' % (what, short(a), short(b)))
        return a

    def data(self, n):
        off = self.rng.randrange(0, len(self.pool) - n + 1) if n < len(self.pool) else 0
        out = self.pool[off:off + n]
        while len(out) < n:
            out += self.pool[:n - len(out)]
        return out

    def pick_size(self):
        r = self.rng.random()
        if r < 0.55:
            n = self.rng.randint(1, 4 * KiB)
        elif r < 0.80:
            n = self.rng.randint(4 * KiB, 128 * KiB)
        elif r < 0.95:
            n = self.rng.randint(128 * KiB, MiB)
        else:
            n = self.rng.randint(MiB, 2 * MiB)
        return min(n, self.max_write)

    def pick_offset(self, size_now, length):
        r = self.rng.random()
        limit = max(self.max_end - length, 0)
        if r < 0.3:
            off = self.rng.randint(0, max(size_now, 1))
        elif r < 0.5:
            off = self.rng.randrange(0, limit + 1, 4 * KiB)
        elif r < 0.65:
            off = max(size_now - self.rng.randint(0, 8 * KiB), 0)
        else:
            off = self.rng.randint(0, limit)
        return min(off, limit)

    def size_of(self, h):
        return os.fstat(h.rfd).st_size

    # ---------------------------------------------------------- operations

    def op_open(self):
        if len(self.handles) >= MAX_HANDLES:
            return self.op_close()
        name = self.rng.choice(NAMES)
        trunc = self.rng.random() < 0.1
        append = self.rng.random() < 0.15
        flags = os.O_RDWR | os.O_CREAT | (os.O_TRUNC if trunc else 0) | \
            (os.O_APPEND if append else 0)
        self.note('open %s%s%s' % (name, ' trunc' if trunc else '', ' append' if append else ''))
        mfd = zctest.attempt(os.open, os.path.join(self.mnt, name), flags, 0o644)
        rfd = zctest.attempt(os.open, os.path.join(self.ref, name), flags, 0o644)
        if isinstance(mfd, zctest.Err) or isinstance(rfd, zctest.Err):
            for fd in (mfd, rfd):
                if not isinstance(fd, zctest.Err):
                    os.close(fd)
            self.fail('open %s: mount %r, plain directory %r' % (name, mfd, rfd))
        self.handles.append(Handle(name, mfd, rfd, append))
        self.existing.add(name)
        self.dirty.add(name)

    def op_close(self):
        if not self.handles:
            return self.op_open()
        h = self.handles.pop(self.rng.randrange(len(self.handles)))
        self.note('close %s' % h.name)
        if h.name is None:
            self.compare_handle(h)
        self.both('close', lambda: os.close(h.mfd), lambda: os.close(h.rfd))

    def mark(self, h):
        if h.name is not None:
            self.dirty.add(h.name)

    def any_handle(self):
        if not self.handles:
            self.op_open()
        return self.rng.choice(self.handles)

    def op_write(self):
        h = self.any_handle()
        n = self.pick_size()
        off = self.pick_offset(self.size_of(h), n)
        buf = self.data(n)
        self.bytes_written += n
        if h.append:
            if self.size_of(h) + n > 2 * self.max_end:
                # Keep appended files bounded.
                half = self.max_end // 2
                self.note('ftruncate %s %d' % (h.name, half))
                self.both('ftruncate', lambda: os.ftruncate(h.mfd, half),
                          lambda: os.ftruncate(h.rfd, half))
            self.note('append %s %d' % (h.name, n))
            self.both('append %d bytes to %s' % (n, h.name), lambda: os.write(h.mfd, buf),
                      lambda: os.write(h.rfd, buf))
        else:
            self.note('pwrite %s off=%d len=%d' % (h.name, off, n))
            self.both('pwrite %s off=%d len=%d' % (h.name, off, n),
                      lambda: os.pwrite(h.mfd, buf, off), lambda: os.pwrite(h.rfd, buf, off))
        self.mark(h)

    def op_read(self):
        h = self.any_handle()
        size = self.size_of(h)
        n = self.pick_size()
        off = self.rng.randint(0, size + 4 * KiB)
        self.note('pread %s off=%d len=%d' % (h.name, off, n))
        a = zctest.attempt(os.pread, h.mfd, n, off)
        b = zctest.attempt(os.pread, h.rfd, n, off)
        if a != b:
            if isinstance(a, bytes) and isinstance(b, bytes):
                d = zctest.first_difference(a, b)
                self.fail('pread %s off=%d len=%d: got %d bytes, want %d; first difference at '
                          'file offset %d' % (h.name, off, n, len(a), len(b), off + d))
            self.fail('pread %s: mount %s, plain directory %s' % (h.name, short(a), short(b)))

    def op_truncate(self):
        if self.rng.random() < 0.5 or not self.existing:
            h = self.any_handle()
            n = self.rng.choice([0, self.rng.randint(0, self.max_end), self.size_of(h) // 2,
                                 self.size_of(h) + self.rng.randint(1, MiB)])
            n = min(n, self.max_end)
            self.note('ftruncate %s %d' % (h.name, n))
            self.both('ftruncate %s %d' % (h.name, n), lambda: os.ftruncate(h.mfd, n),
                      lambda: os.ftruncate(h.rfd, n))
            self.mark(h)
        else:
            name = self.rng.choice(sorted(self.existing))
            n = self.rng.randint(0, self.max_end)
            self.note('truncate %s %d' % (name, n))
            self.both('truncate %s %d' % (name, n),
                      lambda: os.truncate(os.path.join(self.mnt, name), n),
                      lambda: os.truncate(os.path.join(self.ref, name), n))
            self.dirty.add(name)

    def op_punch(self):
        h = self.any_handle()
        size = self.size_of(h)
        off = self.rng.randint(0, size + 64 * KiB)
        if self.rng.random() < 0.5:
            off -= off % (4 * KiB)
        n = self.rng.randint(1, 2 * MiB) if self.rng.random() < 0.3 else \
            self.rng.randint(1, 64 * KiB)
        self.note('punch %s off=%d len=%d' % (h.name, off, n))
        self.both('punch hole %s off=%d len=%d' % (h.name, off, n),
                  lambda: zctest.punch_hole(h.mfd, off, n),
                  lambda: zctest.punch_hole(h.rfd, off, n))
        self.mark(h)

    def op_fsync(self):
        h = self.any_handle()
        data_only = self.rng.random() < 0.5
        fn = os.fdatasync if data_only else os.fsync
        self.note('%s %s' % (fn.__name__, h.name))
        self.both(fn.__name__, lambda: fn(h.mfd), lambda: fn(h.rfd))
        if h.name is not None and self.src is not None:
            # After fsync the data must be in SOURCE.
            self.compare_named(h.name, os.path.join(self.src, h.name), 'SOURCE after fsync')

    def op_rename(self):
        if not self.existing:
            return self.op_open()
        old = self.rng.choice(sorted(self.existing))
        new = self.rng.choice(NAMES)
        self.note('rename %s %s' % (old, new))
        self.both('rename %s %s' % (old, new),
                  lambda: os.rename(os.path.join(self.mnt, old), os.path.join(self.mnt, new)),
                  lambda: os.rename(os.path.join(self.ref, old), os.path.join(self.ref, new)))
        if old == new:
            return
        for h in self.handles:
            if h.name == new:
                h.name = None
        for h in self.handles:
            if h.name == old:
                h.name = new
        self.existing.discard(old)
        self.existing.add(new)
        self.dirty.discard(old)
        self.dirty.add(new)

    def op_unlink(self):
        if not self.existing:
            return self.op_open()
        name = self.rng.choice(sorted(self.existing))
        self.note('unlink %s' % name)
        self.both('unlink %s' % name, lambda: os.unlink(os.path.join(self.mnt, name)),
                  lambda: os.unlink(os.path.join(self.ref, name)))
        for h in self.handles:
            if h.name == name:
                h.name = None
        self.existing.discard(name)
        self.dirty.discard(name)

    OPS = [('write', 30), ('read', 15), ('truncate', 6), ('punch', 5), ('fsync', 3),
           ('open', 8), ('close', 7), ('rename', 3), ('unlink', 2)]

    # ----------------------------------------------------------- comparing

    def note(self, text):
        self.recent.append('%d: %s' % (self.index, text))
        if self.log:
            self.log.write('%d: %s\n' % (self.index, text))

    def compare_bytes(self, what, a, b):
        if a != b:
            d = zctest.first_difference(a, b)
            self.fail('%s: %d bytes vs %d in the plain directory; first difference at offset %d'
                      % (what, len(a), len(b), d))

    def compare_named(self, name, path, what='through the mount'):
        a = zctest.read_file(path)
        b = zctest.read_file(os.path.join(self.ref, name))
        self.compare_bytes('%s %s' % (name, what), a, b)

    def compare_handle(self, h):
        a_size, b_size = os.fstat(h.mfd).st_size, os.fstat(h.rfd).st_size
        if a_size != b_size:
            self.fail('open file %s: size %d, plain directory %d' % (h.name, a_size, b_size))
        a = os.pread(h.mfd, a_size + 1, 0)
        b = os.pread(h.rfd, b_size + 1, 0)
        self.compare_bytes('open file (%s)' % h.name, a, b)

    def check(self, full=False):
        listed = sorted(os.listdir(self.mnt))
        want = sorted(os.listdir(self.ref))
        if listed != want:
            self.fail('directory lists %r, plain directory %r' % (listed, want))
        for name in sorted(self.existing if full else self.dirty):
            self.compare_named(name, os.path.join(self.mnt, name))
        self.dirty.clear()
        if full:
            for h in self.handles:
                self.compare_handle(h)

    # --------------------------------------------------------------- run

    def run(self, ops, deadline=None):
        """Run ops operations, or (ops None) until time.monotonic() passes deadline."""
        table = [name for name, weight in self.OPS for _ in range(weight)]
        self.index = 0
        while (self.index < ops) if ops is not None else (time.monotonic() < deadline):
            op = self.rng.choice(table)
            self.counts[op] += 1
            getattr(self, 'op_' + op)()
            if self.index % CHECK_EVERY == CHECK_EVERY - 1:
                self.check()
            self.index += 1
        self.ops_done = self.index
        self.check(full=True)
        while self.handles:
            h = self.handles.pop()
            self.both('close', lambda: os.close(h.mfd), lambda: os.close(h.rfd))
        self.check(full=True)
        if self.src is not None:
            for name in sorted(self.existing):
                self.compare_named(name, os.path.join(self.src, name), 'in SOURCE')
            listed = sorted(os.listdir(self.src))
            if listed != sorted(self.existing):
                self.fail('SOURCE lists %r, expected %r' % (listed, sorted(self.existing)))

    def close_all(self):
        while self.handles:
            h = self.handles.pop()
            for fd in (h.mfd, h.rfd):
                try:
                    os.close(fd)
                except OSError:
                    pass


def short(value, limit=200):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + '...'


def run(mnt, ref, seed=DEFAULT_SEED, ops=DEFAULT_OPS, src=None, log=None):
    """Run ops random operations; return a summary dict, or raise Mismatch."""
    r = Run(mnt, ref, seed, src=src, log=log)
    start = time.monotonic()
    try:
        r.run(ops)
    finally:
        r.close_all()
    return {'seed': seed, 'ops': ops, 'seconds': time.monotonic() - start,
            'counts': dict(r.counts), 'bytes_written': r.bytes_written}


def summary_line(s):
    return 'integrity: seed %d, %d ops, %.1f s, %.0f MiB written per side, ok' % (
        s['seed'], s['ops'], s['seconds'], s['bytes_written'] / MiB)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--seed', type=int, default=DEFAULT_SEED)
    p.add_argument('--ops', type=int, default=DEFAULT_OPS)
    p.add_argument('--long', action='store_true', help='%d operations' % LONG_OPS)
    p.add_argument('--opts', default=None,
                   help='mount options (default: ZCFUSE_MOUNT_OPTS)')
    p.add_argument('--dirs', nargs=2, metavar=('MOUNTED', 'REFERENCE'),
                   help='run on these directories instead of mounting')
    p.add_argument('--log', help='write every operation to this file')
    args = p.parse_args(argv)
    ops = LONG_OPS if args.long else args.ops
    log = open(args.log, 'w') if args.log else None
    try:
        if args.dirs:
            summary = run(args.dirs[0], args.dirs[1], args.seed, ops, log=log)
        else:
            opts = None if args.opts is None else [o for o in args.opts.split(',') if o]
            with zctest.Mount(opts=opts) as m:
                summary = run(m.mnt, m.ref, args.seed, ops, src=m.src, log=log)
    except Mismatch as e:
        print(e, file=sys.stderr)
        return 1
    finally:
        if log:
            log.close()
    print(summary_line(summary))
    return 0


if __name__ == '__main__':
    sys.exit(main())
