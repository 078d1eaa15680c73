#!/usr/bin/env python3
"""Figures of a zcfuse benchmark run, drawn with gnuplot from its summary.csv.

Usage: plots.py SUMMARY_CSV [--out DIR]

Per backing and workload, BACKING-WORKLOAD.png and .svg: the settings
(cached, direct, writeback) along the axis, one bar per system in each,
coloured by family (plain libfuse blue, zcfuse's default and its /dev/fuse
modes green, kernel passthrough purple, io_uring orange, the example
backends pink; variants in shades of their family's colour), min-max
whiskers, the native file system as a dashed line, and the daemon's CPU time
per unit below.
Per backing, BACKING-summary.png and .svg: every system's median divided
by plain libfuse's in the same setting, one panel per setting, every
workload along the axis, on a log scale with 1.0 marked.

DIR defaults to plots/ beside SUMMARY_CSV; the gnuplot scripts are left
there too.  tests/bench/bench.py calls draw() at the end of a run; run this
by hand to redraw the figures of an earlier run.  Exits 1 with one line on
a summary it cannot read or when gnuplot fails.
"""

import argparse
import csv
import math
import os
import shutil
import subprocess
import sys

NATIVE = 'native'
LIBFUSE = 'libfuse'
SETTINGS = ['cached', 'direct', 'writeback']
FIELDS = ['backing', 'workload', 'system', 'setting', 'status', 'unit', 'median', 'min', 'max',
          'cpu_per_unit', 'cpu_unit', 'reason']

# Family, its colours from dark to light (variants take the next shade),
# and which systems belong to it, in the order the bars are drawn.
FAMILIES = [
    ('native', ['#4d4d4d']),
    ('libfuse', ['#2166ac', '#67a9cf']),
    ('zcfuse', ['#1b7837', '#5aae61', '#a6dba0', '#00441b']),
    ('passthrough', ['#762a83', '#c2a5cf']),
    ('io_uring', ['#d95f02', '#fdae61', '#a63603', '#fee0b6']),
    ('examples', ['#c51b7d', '#f1b6da']),
    ('other', ['#8c510a', '#bf812d', '#dfc27d']),
]
FAMILY_ORDER = [f for f, _ in FAMILIES]
EXAMPLES = ('blobstore', 'memfs', 'blobstore-rados')

GNUPLOT_TIMEOUT = 60


class PlotError(Exception):
    pass


def family(system):
    if system == NATIVE:
        return 'native'
    if system == LIBFUSE:
        return 'libfuse'
    if system.startswith('zcfuse-passthrough'):
        return 'passthrough'
    if system.startswith('zcfuse-uring'):
        return 'io_uring'
    if system.startswith('zcfuse'):
        return 'zcfuse'
    if system in EXAMPLES:
        return 'examples'
    return 'other'


def colours(systems):
    """system -> colour: its family's colour, the next shade for each variant."""
    used = {}
    out = {}
    palette = dict(FAMILIES)
    for s in systems:
        f = family(s)
        n = used.get(f, 0)
        used[f] = n + 1
        out[s] = palette[f][n % len(palette[f])]
    return out


def bar_order(systems):
    """Systems grouped by family (stable within one), so that shades sit together."""
    return sorted(systems, key=lambda s: FAMILY_ORDER.index(family(s)))


def number(text):
    if text in ('', None):
        return None
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def read_summary(path):
    """The cells of a summary.csv: a list of dicts with numbers parsed."""
    try:
        with open(path, newline='') as f:
            reader = csv.DictReader(f)
            missing = [k for k in FIELDS if k not in (reader.fieldnames or [])]
            if missing:
                raise PlotError('%s: not a benchmark summary (no column %s)' % (
                    path, ', '.join(missing)))
            rows = list(reader)
    except OSError as e:
        raise PlotError('%s: %s' % (path, e.strerror))
    cells = []
    for r in rows:
        c = dict(r)
        c['ok'] = r['status'] == 'ok' and number(r['median']) is not None
        for k in ('median', 'min', 'max', 'cpu_per_unit'):
            c[k] = number(r[k])
        cells.append(c)
    if not cells:
        raise PlotError('%s: no cells' % path)
    return cells


def unique(seq):
    out = []
    for x in seq:
        if x not in out:
            out.append(x)
    return out


def short(v):
    """A value as a bar's label: three or so significant digits."""
    if v is None:
        return ''
    a = abs(v)
    if a >= 1e6:
        return '%.2fM' % (v / 1e6)
    if a >= 1e5:
        return '%.0fk' % (v / 1e3)
    if a >= 10:
        return '%.0f' % v
    if a >= 1:
        return '%.1f' % v
    return '%.2g' % v


def quote(text):
    """A gnuplot single-quoted string."""
    return "'" + str(text).replace("'", "''") + "'"


def field(text):
    """A string column of a datablock."""
    return '"' + str(text).replace('"', "'") + '"'


def key_rows(titles, width):
    """Rows the key takes: gnuplot fits as many columns as the widest title allows."""
    column = 7 * max([len(t) for t in titles] + [1]) + 80
    columns = max(1, int((width - 120) / column))
    return max(1, math.ceil(len(titles) / columns))


def reason_word(reason):
    """FAIL, or FAIL (EMFILE) when the reason names an errno."""
    for word in ('EMFILE', 'ENFILE', 'ENOSPC', 'EIO', 'ENOTCONN', 'ENOMEM'):
        if word in (reason or ''):
            return 'FAIL (%s)' % word
    return 'FAIL'


class Script:
    """A gnuplot script drawn twice: PNG, then SVG."""

    def __init__(self, width, height):
        self.width, self.height = width, height
        self.lines = []

    def add(self, *lines):
        self.lines.extend(lines)

    def block(self, name, rows):
        self.add('$%s << EOD' % name)
        self.add(*(' '.join(str(x) for x in row) for row in rows))
        self.add('EOD')

    def render(self, base):
        """Writes BASE.gp and draws BASE.png and BASE.svg; returns both paths."""
        gp = base + '.gp'
        body = '\n'.join(self.lines) + '\n'
        terminals = [
            ('png', "set terminal pngcairo noenhanced size %d,%d font 'sans,10'"),
            ('svg', "set terminal svg noenhanced size %d,%d dynamic font 'sans,10' "
                    "background rgb 'white'"),
        ]
        made = []
        with open(gp, 'w') as f:
            f.write('# Drawn by tests/bench/plots.py; gnuplot -e "set terminal ...; '
                    'set output ..." %s\n' % os.path.basename(gp))
            f.write(body)
        for ext, term in terminals:
            out = '%s.%s' % (base, ext)
            pre = '%s; set output %s' % (term % (self.width, self.height), quote(out))
            try:
                r = subprocess.run(['gnuplot', '-e', pre, gp], capture_output=True, text=True,
                                   timeout=GNUPLOT_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise PlotError('gnuplot took more than %d s on %s' % (GNUPLOT_TIMEOUT, gp))
            if r.returncode != 0 or not os.path.getsize(out):
                err = (r.stderr.strip().splitlines() or ['no output'])[-1]
                raise PlotError('gnuplot failed on %s: %s' % (gp, err))
            made.append(out)
        return made


def workload_figure(base, backing, workload, cells, colour):
    """Settings along the axis, one bar per system; native as a line; CPU below."""
    by = {(c['system'], c['setting']): c for c in cells}
    unit = cells[0]['unit']
    cpu_unit = cells[0]['cpu_unit']
    native = by.get((NATIVE, '-'))
    systems = bar_order(unique(c['system'] for c in cells if c['system'] != NATIVE))
    settings = [s for s in SETTINGS if any(c['setting'] == s for c in cells)]
    settings += unique(c['setting'] for c in cells
                       if c['setting'] not in settings and c['system'] != NATIVE)
    n = max(1, len(systems))
    width = 0.84 / n

    top = max([c['max'] or c['median'] for c in cells
               if c['ok'] and c['system'] != NATIVE] + [0.0])
    native_v = native['median'] if native and native['ok'] else None
    ymax = max(top, native_v or 0.0) * 1.22
    native_off = native_v is not None and top > 0 and native_v > 2.5 * top
    if native_off:
        ymax = top * 1.22        # keep the bars readable; the key gives native's value
    ymax = ymax or 1.0
    cpu_top = max([c['cpu_per_unit'] for c in cells
                   if c['ok'] and c['cpu_per_unit'] is not None] + [0.0])
    cpu_max = cpu_top * 1.3 or 1.0

    # the key over the top panel; the figure grows with it
    native_title = None
    if native_v is not None:
        native_title = 'native %s%s' % (short(native_v), ' (off the scale)' if native_off else '')
    elif native is not None:
        native_title = 'native ' + reason_word(native['reason'])
    fig_width = max(900, 160 + 46 * n * len(settings) + 60 * len(settings))
    key_lines = key_rows(systems + ([native_title] if native_title else []), fig_width)
    height = 680 + 18 * key_lines
    sc = Script(fig_width, height)
    key_top = 1.0 - 40.0 / height
    panel_top = 1.0 - (48.0 + 18 * key_lines) / height
    cpu_h = 250.0 / height
    bars, cpus, fails = {}, {}, []
    for i, s in enumerate(systems):
        rows, cpu_rows = [], []
        for k, st in enumerate(settings):
            c = by.get((s, st))
            if c is None:
                continue
            x = k + 1 - 0.42 + width * (i + 0.5)
            if not c['ok']:
                fails.append((x, reason_word(c['reason'])))
                continue
            lo = c['min'] if c['min'] is not None else c['median']
            hi = c['max'] if c['max'] is not None else c['median']
            xlo, xhi = '%.4f' % (x - width / 2 * 0.92), '%.4f' % (x + width / 2 * 0.92)
            rows.append(['%.4f' % x, '%g' % c['median'], xlo, xhi, '%g' % lo, '%g' % hi,
                         field(short(c['median']))])
            if c['cpu_per_unit'] is not None:
                cpu_rows.append(['%.4f' % x, '%g' % c['cpu_per_unit'], xlo, xhi,
                                 field(short(c['cpu_per_unit']))])
        bars[s] = rows
        cpus[s] = cpu_rows
        # gnuplot 5.4 crashes on a labels plot with no defined point: no empty blocks
        if rows:
            sc.block('s%d' % i, rows)
        if cpu_rows:
            sc.block('c%d' % i, cpu_rows)
    if fails:
        sc.block('fail', [['%.4f' % x, field(w)] for x, w in fails])

    xtics = ', '.join('%s %d' % (quote(st), k + 1) for k, st in enumerate(settings))
    title = '%s, %s (%s)' % (workload, backing, unit)
    sc.add('set multiplot title %s font \',13\'' % quote(title),
           'set style fill solid 0.95 border rgb \'#333333\'',
           'set style textbox opaque noborder margins 0.5, 0.5',
           'set xrange [0.5:%g]' % (len(settings) + 0.5),
           'set xtics (%s) scale 0 font \',11\'' % xtics,
           'set grid ytics lc rgb \'#dddddd\'', 'set border 3', 'set ytics nomirror',
           'set lmargin 12', 'set rmargin 3',
           'set key at screen 0.5, screen %g center top horizontal maxrows %d samplen 3 '
           'width 2 font \',10\'' % (key_top, key_lines),
           # top panel: throughput
           'set origin 0, %g' % cpu_h, 'set size 1, %g' % (panel_top - cpu_h),
           'set tmargin 1.5',
           'set bmargin 2',
           'set yrange [0:%g]' % ymax,
           'set format y %s' % quote('%.1s%c' if ymax >= 1e4 else '%g'),
           'set ylabel %s' % quote('%s (median, min-max)' % unit))
    plot = []
    if native_title:
        plot.append('%s with lines dt 2 lw 2 lc rgb %s title %s' % (
            '%g' % native_v if native_v is not None else 'NaN', quote(colour[NATIVE]),
            quote(native_title)))
    for i, s in enumerate(systems):
        if not bars[s]:
            plot.append('NaN with boxes lc rgb %s title %s' % (quote(colour[s]), quote(s)))
            continue
        plot += ['$s%d using 1:2:3:4:(0):2 with boxxyerror lc rgb %s title %s' % (
                     i, quote(colour[s]), quote(s)),
                 '$s%d using 1:5:(0):($6 - $5) with vectors nohead lc rgb \'#222222\' lw 1.2 '
                 'notitle' % i,
                 '$s%d using 1:($6 > $2 ? $6 : $2):7 with labels boxed rotate by 90 left '
                 'offset 0, 0.5 font \',8\' notitle' % i]
    if fails:
        plot.append('$fail using 1:(0):2 with labels rotate by 90 left offset 0, 0.5 '
                    'font \',8\' tc rgb \'#b2182b\' notitle')
    sc.add('plot ' + ', \\\n     '.join(plot))

    # bottom panel: the daemon's CPU time
    sc.add('unset key', 'set origin 0, 0', 'set size 1, %g' % cpu_h, 'set tmargin 1',
           'set bmargin 3', 'set yrange [0:%g]' % cpu_max, 'set format y \'%g\'',
           'set ylabel %s' % quote('daemon CPU %s' % cpu_unit))
    plot = ['NaN notitle']
    for i, s in enumerate(systems):
        if cpus[s]:
            plot += ['$c%d using 1:2:3:4:(0):2 with boxxyerror lc rgb %s notitle' % (
                         i, quote(colour[s])),
                     '$c%d using 1:2:5 with labels rotate by 90 left offset 0, 0.5 '
                     'font \',8\' notitle' % i]
    sc.add('plot ' + ', \\\n     '.join(plot), 'unset multiplot')
    return sc.render(base)


def summary_figure(base, backing, cells, colour):
    """Median / plain libfuse's median in the same setting, per workload and system."""
    workloads = unique(c['workload'] for c in cells)
    by = {(c['workload'], c['system'], c['setting']): c for c in cells}
    systems = bar_order(unique(c['system'] for c in cells
                               if c['system'] not in (NATIVE, LIBFUSE)))
    settings = [s for s in SETTINGS if any(c['setting'] == s for c in cells)]
    settings += unique(c['setting'] for c in cells
                       if c['setting'] not in settings and c['system'] != NATIVE)
    n = max(1, len(systems))
    width = 0.84 / n

    panels = []
    ratios = []
    for st in settings:
        ws = [w for w in workloads if any(c['workload'] == w and c['setting'] == st
                                          for c in cells)]
        rows = {s: [] for s in systems}
        notes = []
        for k, w in enumerate(ws):
            lib = by.get((w, LIBFUSE, st))
            lib_ok = lib is not None and lib['ok'] and lib['median']
            if lib is not None and not lib_ok:
                notes.append((k + 1, 'libfuse ' + reason_word(lib['reason'])))
            for i, s in enumerate(systems):
                c = by.get((w, s, st))
                x = k + 1 - 0.42 + width * (i + 0.5)
                if c is None:
                    continue
                if not lib_ok:
                    continue        # no ratios here: the note says why
                if not c['ok']:
                    notes.append((x, reason_word(c['reason'])))
                    continue
                r = c['median'] / lib['median']
                if r <= 0:
                    continue
                ratios.append(r)
                rows[s].append(['%.4f' % x, '%g' % r, '%.4f' % (x - width / 2 * 0.92),
                                '%.4f' % (x + width / 2 * 0.92), field('%.2f' % r)])
        panels.append((st, ws, rows, notes))

    lo = min(ratios + [0.5]) / 1.5
    hi = max(ratios + [2.0]) * 1.9
    tics = []
    t = 2.0 ** math.floor(math.log2(lo))
    while t <= hi:
        tics.append('%s %g' % (quote('%gx' % t), t))
        t *= 2
    panel_h = 260
    most = max([len(ws) for _, ws, _, _ in panels] + [1])
    fig_width = max(900, 140 + most * (24 * n + 30))
    rows_of_key = key_rows(systems + ['plain libfuse = 1.0'], fig_width)
    key_h = 48 + 18 * rows_of_key
    height = key_h + 10 + panel_h * len(panels)
    sc = Script(fig_width, height)
    sc.add('set multiplot title %s font \',13\'' % quote(
               '%s: median / plain libfuse\'s median in the same setting (above 1 = faster)'
               % backing),
           'set style fill solid 0.95 border rgb \'#333333\'',
           'set logscale y 2', 'set yrange [%g:%g]' % (lo, hi), 'set ytics (%s)' % ', '.join(tics),
           'set grid ytics lc rgb \'#dddddd\'', 'set border 3', 'set ytics nomirror',
           'set lmargin 10', 'set rmargin 3', 'set tmargin 1.5', 'set bmargin 2.5')
    top = 1.0 - key_h / height
    for p, (st, ws, rows, notes) in enumerate(panels):
        size = (panel_h / height)
        sc.add('set origin 0, %g' % (top - size * (p + 1)), 'set size 1, %g' % size,
               'set xrange [0.5:%g]' % (most + 0.5),
               'set xtics (%s) scale 0 font \',10\'' % ', '.join(
                   '%s %d' % (quote(w), k + 1) for k, w in enumerate(ws)),
               'set ylabel %s' % quote(st + ': x libfuse'))
        if p == 0:
            sc.add('set key at screen 0.5, screen %g center top horizontal maxrows %d '
                   'samplen 2 width 2 font \',10\'' % (1.0 - 40.0 / height, rows_of_key))
        else:
            sc.add('unset key')
        plot = []
        for i, s in enumerate(systems):
            name = 'b%d_%d' % (p, i)
            if rows[s]:
                sc.block(name, rows[s])
                plot.append('$%s using 1:2:3:4:(1):2 with boxxyerror lc rgb %s title %s' % (
                    name, quote(colour[s]), quote(s)))
                # labels above bars that rise, below those that fall (no empty blocks:
                # gnuplot 5.4 crashes on a labels plot with no defined point)
                for suffix, keep, y, align in (('u', lambda r: r >= 1, '$2 * 1.03', 'left'),
                                               ('d', lambda r: r < 1, '$2 / 1.03', 'right')):
                    lab = [row for row in rows[s] if keep(float(row[1]))]
                    if lab:
                        sc.block(name + suffix, lab)
                        plot.append('$%s using 1:(%s):5 with labels rotate by 90 %s '
                                    'font \',7\' notitle' % (name + suffix, y, align))
            else:
                plot.append('NaN with boxes lc rgb %s title %s' % (quote(colour[s]), quote(s)))
        plot.append('1 with lines lw 2 lc rgb %s title %s' % (
            quote(colour[LIBFUSE]), quote('plain libfuse = 1.0')))
        if notes:
            nb = 'n%d' % p
            sc.block(nb, [['%.4f' % x, field(w)] for x, w in notes])
            plot.append('$%s using 1:(1.08):2 with labels rotate by 90 left font \',7\' '
                        'tc rgb \'#b2182b\' notitle' % nb)
        sc.add('plot ' + ', \\\n     '.join(plot))
    sc.add('unset multiplot')
    return sc.render(base)


def draw(summary_csv, out_dir):
    """Every figure of one run; returns the files made.  Raises PlotError."""
    if not shutil.which('gnuplot'):
        raise PlotError('gnuplot is not installed: no figures')
    cells = read_summary(summary_csv)
    os.makedirs(out_dir, exist_ok=True)
    colour = colours(unique(c['system'] for c in cells))
    made = []
    for b in unique(c['backing'] for c in cells):
        bc = [c for c in cells if c['backing'] == b]
        for w in unique(c['workload'] for c in bc):
            wc = [c for c in bc if c['workload'] == w]
            made += workload_figure(os.path.join(out_dir, '%s-%s' % (b, w)), b, w, wc, colour)
        if any(c['system'] == LIBFUSE for c in bc):
            made += summary_figure(os.path.join(out_dir, '%s-summary' % b), b, bc, colour)
    return made


def main(argv):
    ap = argparse.ArgumentParser(description='Draw the figures of a zcfuse benchmark run '
                                 'from its summary.csv.')
    ap.add_argument('summary', metavar='SUMMARY_CSV')
    ap.add_argument('--out', help='where the figures go (default: plots/ beside SUMMARY_CSV)')
    a = ap.parse_args(argv)
    out = a.out or os.path.join(os.path.dirname(os.path.abspath(a.summary)), 'plots')
    try:
        made = draw(a.summary, out)
    except PlotError as e:
        print('plots: %s' % e, file=sys.stderr)
        return 1
    print('%d figures (PNG and SVG) in %s' % (len(made) // 2, out))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
