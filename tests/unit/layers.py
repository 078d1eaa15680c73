#!/usr/bin/env python3
"""The library's layers call one way.

Reads the symbols of every object file of libzcfuse (nm on the static
library) and fails when a file calls a function of a file in a layer above
its own, when two files call each other (directly or round a longer
circle), or when a file of the library belongs to no layer.

Usage: layers.py LIBZCFUSE_STATIC.a
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
    ('state', ['zc_options', 'zc_data', 'zc_chan']),
    ('services', ['zc_ctx', 'zc_backing', 'zc_waiter']),
    ('dispatch', ['zc_init', 'zc_ops', 'zc_dispatch']),
    ('transports', ['zc_dev', 'zc_uring_probe', 'zc_watchdog', 'zc_uring_ent', 'zc_uring_queue',
                    'zc_uring', 'zc_uring_none']),
    ('session', ['zc_mount', 'zc_cmdline', 'zc_session']),
]


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
    if len(argv) != 2:
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
    if not calls:
        failures.append('no calls between object files found: is %s the library?' % argv[1])
    for f in failures:
        print('FAIL: ' + f)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
