#!/usr/bin/env python3
"""Metadata workload of the zcfuse benchmark.

Usage: meta.py DIR [--seconds S] [--batch N]
       meta.py DIR --walk stat|find [--expect N]

In DIR (which must exist and be empty), repeat batches until S seconds have
passed: create N small files (open O_CREAT|O_EXCL, write 64 bytes, close),
stat each, list the directory once, rename each, unlink each.  A batch is
always finished, so at most N inodes are live at any time.

One operation is the create, stat, rename or unlink of one file, or one
listing of the directory: a batch is 4 * N + 1 operations.  Prints one JSON
line: {"ops": ..., "seconds": ..., "batches": ...}.  Exits 1 on any error
(a wrong listing counts as one).

With --walk, visit every file of the tree at DIR once instead (listing and
lstat of each, or find -type f): one operation per file.
"""

import argparse
import json
import os
import stat
import subprocess
import sys
import time

PAYLOAD = b'x' * 64


def run_batch(d, n):
    names = ['f%05d' % i for i in range(n)]
    paths = [os.path.join(d, name) for name in names]
    for p in paths:
        fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, PAYLOAD)
        finally:
            os.close(fd)
    for p in paths:
        if os.stat(p).st_size != len(PAYLOAD):
            raise OSError('%s: wrong size after create' % p)
    listed = os.listdir(d)
    if len(listed) != n:
        raise OSError('%s: listing shows %d entries, expected %d' % (d, len(listed), n))
    for p in paths:
        os.rename(p, p + '.r')
    for p in paths:
        os.unlink(p + '.r')
    return 4 * n + 1


def walk_tree(top, mode):
    """Visit every file under top once: 'stat' lists each directory and
    lstat()s each entry; 'find' runs find(1) -type f. Returns the count."""
    if mode == 'find':
        r = subprocess.run(['find', top, '-type', 'f'], capture_output=True)
        if r.returncode != 0:
            raise OSError('find: %s' % r.stderr.decode(errors='replace').strip()[-200:])
        return r.stdout.count(b'\n')
    n, dirs = 0, [top]
    while dirs:
        d = dirs.pop()
        for name in os.listdir(d):
            p = os.path.join(d, name)
            st = os.lstat(p)
            if stat.S_ISDIR(st.st_mode):
                dirs.append(p)
            else:
                n += 1
    return n


def main():
    ap = argparse.ArgumentParser(description='metadata workload (create, stat, readdir, '
                                 'rename, unlink of small files), or one walk of a tree')
    ap.add_argument('dir')
    ap.add_argument('--seconds', type=float, default=2.0)
    ap.add_argument('--batch', type=int, default=1000)
    ap.add_argument('--walk', choices=['stat', 'find'],
                    help='walk the tree at DIR once instead (one operation per file)')
    ap.add_argument('--expect', type=int, help='with --walk: the number of files')
    a = ap.parse_args()

    if a.walk:
        start = time.monotonic()
        try:
            n = walk_tree(a.dir, a.walk)
        except OSError as e:
            print('meta: %s' % e, file=sys.stderr)
            return 1
        elapsed = time.monotonic() - start
        if a.expect is not None and n != a.expect:
            print('meta: found %d files, expected %d' % (n, a.expect), file=sys.stderr)
            return 1
        print(json.dumps({'ops': n, 'seconds': elapsed, 'batches': 1}))
        return 0

    ops = batches = 0
    start = time.monotonic()
    try:
        while True:
            ops += run_batch(a.dir, a.batch)
            batches += 1
            if time.monotonic() - start >= a.seconds:
                break
    except OSError as e:
        print('meta: %s' % e, file=sys.stderr)
        return 1
    elapsed = time.monotonic() - start
    print(json.dumps({'ops': ops, 'seconds': elapsed, 'batches': batches}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
