#!/usr/bin/env python3
"""The library's layers call one way, and know one way.

Reads the symbols of every object file of libzcfuse (nm on the static
library) and fails when a file calls a function of a file in a layer above
its own, when two files call each other (directly or round a longer
circle), or when a file of the library belongs to no layer. Then reads the
library's sources and fails when a file (or a header) includes the header
of a layer above its own: a transport that sees the session's struct
reaches up through it without calling anything.

Usage: layers.py LIBZCFUSE_STATIC.a SOURCE_DIR
"""

import collections
import os
import re
import subprocess
import sys

# Lowest first. A file may call files of its own layer and of the layers
# below; replies reach the transports through the route's function
# pointers, never by a call.
LAYERS = [
    ('base', ['zc_util', 'zc_iter', 'zc_stats', 'zc_req', 'zc_proto', 'zc_notice']),
    ('state', ['zc_opts', 'zc_contract', 'zc_data', 'zc_chan']),
    ('services', ['zc_ctx', 'zc_backing', 'zc_waiter']),
    ('dispatch', ['zc_init', 'zc_ops', 'zc_dispatch']),
    ('transports', ['zc_dev', 'zc_uring_probe', 'zc_watchdog', 'zc_uring_ent', 'zc_uring_queue',
                    'zc_uring', 'zc_uring_none']),
    ('session', ['zc_error', 'zc_mount', 'zc_options', 'zc_cmdline', 'zc_session']),
]

# Headers that are no file's own: the layer whose state or definitions they hold.
HEADER_LAYERS = {
    'fuse_kernel_ext': 'base',
    'zc_backend': 'state',
    'zc_uring_i': 'transports',
    'zcfuse_i': 'session',
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)\.h"', re.M)


def include_failures(src_dir, layer_of):
    """Files and headers that include the header of a layer above their own."""
    names = [name for name, _ in LAYERS]
    rank_of_header = dict((h, names.index(l)) for h, l in HEADER_LAYERS.items())
    failures = []
    for entry in sorted(os.listdir(src_dir)):
        stem, ext = os.path.splitext(entry)
        if ext not in ('.c', '.h'):
            continue
        own = layer_of.get(stem, rank_of_header.get(stem))
        if own is None:
            if ext == '.c':
                continue  # reported by the symbol check when it is in the library
            failures.append('%s is a header of no layer (add it to HEADER_LAYERS)' % entry)
            continue
        with open(os.path.join(src_dir, entry)) as f:
            text = f.read()
        for header in INCLUDE.findall(text):
            if header.startswith('zcfuse/'):
                continue  # the public API, below everything
            rank = layer_of.get(header, rank_of_header.get(header))
            if rank is None:
                failures.append('%s includes %s.h, a header of no layer' % (entry, header))
            elif rank > own:
                failures.append('%s (%s) includes %s.h (%s), a layer above' % (
                    entry, names[own], header, names[rank]))
    return failures


def object_name(path):
    base = os.path.basename(path.rstrip(':'))
    m = re.fullmatch(r'(?:src_)?(\w+)\.c\.o', base)
    return m.group(1) if m else base


def read_symbols(archive):
    out = subprocess.run(['nm', archive], capture_output=True, text=True, check=True).stdout
    defined, undefined = {}, collections.defaultdict(set)
    current = None
    for line in out.splitlines():
        if line.endswith('.o:'):
            current = object_name(line)
            continue
        parts = line.split()
        if current is None:
            continue
        if len(parts) == 3 and parts[1] in 'TDBRV':
            defined[parts[2]] = current
        elif len(parts) == 2 and parts[0] == 'U':
            undefined[current].add(parts[1])
    return defined, undefined


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    defined, undefined = read_symbols(argv[1])
    layer_of = {}
    for rank, (_, files) in enumerate(LAYERS):
        for f in files:
            layer_of[f] = rank
    objects = set(defined.values()) | set(undefined)
    failures = []
    for o in sorted(objects - set(layer_of)):
        failures.append('%s.c is in no layer (add it to LAYERS in %s)' % (o, argv[0]))

    calls = collections.defaultdict(set)
    for caller, syms in undefined.items():
        for sym in syms:
            callee = defined.get(sym)
            if callee is None or callee == caller:
                continue
            calls[caller].add(callee)
            if caller in layer_of and callee in layer_of and layer_of[callee] > layer_of[caller]:
                failures.append('%s.c (%s) calls %s() of %s.c (%s), a layer above' % (
                    caller, LAYERS[layer_of[caller]][0], sym, callee,
                    LAYERS[layer_of[callee]][0]))

    # No circles at all, within a layer either.
    state = {}

    def visit(node, path):
        state[node] = 'open'
        for nxt in sorted(calls.get(node, ())):
            if state.get(nxt) == 'open':
                circle = path[path.index(nxt):] + [nxt]
                failures.append('circle: ' + ' -> '.join(c + '.c' for c in circle))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 'done'

    for o in sorted(objects):
        if o not in state:
            visit(o, [o])

    for rank, (name, files) in enumerate(LAYERS):
        present = [f for f in files if f in objects]
        print('%-10s %s' % (name, ' '.join(present)))
    for o in sorted(calls):
        print('  %s.c -> %s' % (o, ', '.join(c + '.c' for c in sorted(calls[o]))))
    failures += include_failures(argv[2], layer_of)
    if not calls:
        failures.append('no calls between object files found: is %s the library?' % argv[1])
    for f in failures:
        print('FAIL: ' + f)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
