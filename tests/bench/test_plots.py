#!/usr/bin/env python3
"""The benchmark's figures (plots.py), drawn from a summary.csv fixture.

Usage: test_plots.py   (exit 0: pass, 1: fail, 77: gnuplot is not installed)

fixtures/summary.csv is a made-up run of every kind of cell (throughput in
MiB/s, IOPS and ops/s, three settings, a native value far above the rest,
cells that failed, cells without a CPU figure, an example backend).  Checks
that plots.py draws a PNG and an SVG per workload and a summary, that every
system of the CSV is in the legend of the SVGs, that every measured value
and every failure is written on its figure, and that a summary it cannot
read fails with one line naming the problem.
"""

import csv
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import plots  # noqa: E402

FIXTURE = os.path.join(HERE, 'fixtures', 'summary.csv')
SVG = '{http://www.w3.org/2000/svg}'
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print('FAIL: ' + what)


def run_plots(*args):
    return subprocess.run([sys.executable, os.path.join(HERE, 'plots.py')] + list(args),
                          capture_output=True, text=True, timeout=300)


def svg_texts(path):
    """(legend texts, texts written rotated on the plot: the bars' values)."""
    legend, rotated = [], []

    def walk(e, in_plot, rot):
        if e.tag == SVG + 'g':
            in_plot = in_plot or (e.get('id') or '').startswith('gnuplot_plot')
            rot = rot or 'rotate' in (e.get('transform') or '')
        if e.tag == SVG + 'text' and in_plot:
            (rotated if rot else legend).append(''.join(e.itertext()).strip())
        for child in e:
            walk(child, in_plot, rot)

    walk(ET.parse(path).getroot(), False, False)
    return legend, rotated


def in_legend(system, legend):
    """native's entry carries its value: 'native 9032 MiB/s'."""
    return any(t == system or t.startswith(system + ' ') for t in legend)


def check_files(out, base):
    for ext in ('png', 'svg'):
        path = os.path.join(out, '%s.%s' % (base, ext))
        check(os.path.isfile(path) and os.path.getsize(path) > 0, '%s is missing or empty' % path)
    png = os.path.join(out, base + '.png')
    if os.path.isfile(png):
        with open(png, 'rb') as f:
            check(f.read(8) == PNG_MAGIC, '%s is not a PNG' % png)


def test_fixture(tmp):
    with open(FIXTURE, newline='') as f:
        rows = list(csv.DictReader(f))
    out = os.path.join(tmp, 'fixture')
    r = run_plots(FIXTURE, '--out', out)
    check(r.returncode == 0, 'plots.py on the fixture exited %d: %s' % (r.returncode, r.stderr))
    if r.returncode:
        return
    for b in plots.unique(x['backing'] for x in rows):
        for w in plots.unique(x['workload'] for x in rows if x['backing'] == b):
            base = '%s-%s' % (b, w)
            check_files(out, base)
            cells = [x for x in rows if (x['backing'], x['workload']) == (b, w)]
            legend, values = svg_texts(os.path.join(out, base + '.svg'))
            for s in plots.unique(x['system'] for x in cells):
                check(in_legend(s, legend), '%s.svg: %s is not in the legend %s' % (
                    base, s, legend))
            for x in cells:
                if x['system'] == 'native':
                    continue
                if x['status'] == 'ok':
                    v = plots.short(float(x['median']))
                    check(v in values, '%s.svg: %s %s (%s) is not written on its bar' % (
                        base, x['system'], x['setting'], v))
                else:
                    check(any(t.startswith('FAIL') for t in values),
                          '%s.svg: the failed %s %s is not marked' % (base, x['system'],
                                                                       x['setting']))
        check_files(out, '%s-summary' % b)
        legend, values = svg_texts(os.path.join(out, '%s-summary.svg' % b))
        for s in plots.unique(x['system'] for x in rows if x['backing'] == b):
            if s == 'native':
                continue
            check(in_legend(s, legend) or any(s in t and '1.0' in t for t in legend),
                  '%s-summary.svg: %s is not in the legend %s' % (b, s, legend))
        ratios = [float(x['x_libfuse']) for x in rows
                  if x['backing'] == b and x['system'] not in ('native', 'libfuse') and
                  x['status'] == 'ok' and x['x_libfuse']]
        for v in ratios:
            check('%.2f' % v in values, '%s-summary.svg: the ratio %.2f is not written' % (b, v))
        check(any('libfuse FAIL' in t for t in values),
              '%s-summary.svg: the workload where libfuse failed is not marked' % b)


def test_sparse(tmp):
    """One workload, no CPU figures, every ratio above 1: still drawn."""
    path = os.path.join(tmp, 'sparse.csv')
    fields = ['backing', 'workload', 'system', 'setting', 'status', 'unit', 'median', 'min',
              'max', 'cpu_per_unit', 'cpu_unit', 'reason']
    with open(path, 'w', newline='') as f:
        wr = csv.writer(f)
        wr.writerow(fields)
        wr.writerow(['disk', 'seqread-1m', 'native', '-', 'ok', 'MiB/s', 900, 900, 900, '',
                     's/GiB', ''])
        wr.writerow(['disk', 'seqread-1m', 'libfuse', 'direct', 'ok', 'MiB/s', 100, 90, 110,
                     '', 's/GiB', ''])
        wr.writerow(['disk', 'seqread-1m', 'zcfuse-splice', 'direct', 'ok', 'MiB/s', 400, 390,
                     410, '', 's/GiB', ''])
    out = os.path.join(tmp, 'sparse')
    r = run_plots(path, '--out', out)
    check(r.returncode == 0, 'plots.py on a summary without CPU figures exited %d: %s' % (
        r.returncode, r.stderr))
    if r.returncode == 0:
        check_files(out, 'disk-seqread-1m')
        check_files(out, 'disk-summary')


def test_bad_input(tmp):
    path = os.path.join(tmp, 'bad.csv')
    with open(path, 'w') as f:
        f.write('backing,workload,system\ntmpfs,seqread-1m,native\n')
    r = run_plots(path, '--out', os.path.join(tmp, 'bad'))
    lines = r.stderr.strip().splitlines()
    check(r.returncode == 1 and len(lines) == 1 and 'median' in lines[0],
          'a summary without a median column: exit %d, stderr %r' % (r.returncode, r.stderr))
    r = run_plots(os.path.join(tmp, 'missing.csv'))
    lines = r.stderr.strip().splitlines()
    check(r.returncode == 1 and len(lines) == 1 and 'missing.csv' in lines[0],
          'a missing summary: exit %d, stderr %r' % (r.returncode, r.stderr))


def main():
    if not shutil.which('gnuplot'):
        print('gnuplot is not installed: skipping')
        return 77
    tmp = tempfile.mkdtemp(prefix='zcfuse-plots.')
    try:
        test_fixture(tmp)
        test_sparse(tmp)
        test_bad_input(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print('%d check(s) failed' % len(failures))
        return 1
    print('ok')
    return 0


if __name__ == '__main__':
    sys.exit(main())
