"""The daemon under valgrind's memcheck through a short integrity run: no errors, no leaks.

Runs on a build without sanitizers (valgrind and ASan do not mix); skipped
when valgrind is missing. ZCFUSE_VALGRIND (default: valgrind on PATH) names
the program.
"""

import os
import re
import shutil

import pytest

import integrity
import zctest

OPS = int(os.environ.get('ZCFUSE_VALGRIND_OPS', '400'))


class ValgrindMount(zctest.Mount):
    def __init__(self, valgrind, **kw):
        super().__init__(**kw)
        self.valgrind = valgrind

    def command(self):
        self.vg_log = os.path.join(self.base, 'valgrind.log')
        return [self.valgrind, '--tool=memcheck', '--error-exitcode=99', '--leak-check=full',
                '--show-leak-kinds=definite,indirect', '--errors-for-leak-kinds=definite,indirect',
                '--log-file=' + self.vg_log] + super().command()

    def _remove_dirs(self):
        try:
            with open(self.vg_log) as f:
                self.vg_text = f.read()
        except (AttributeError, OSError):
            self.vg_text = ''
        super()._remove_dirs()


@pytest.mark.timeout(600)
@pytest.mark.parametrize('opts', ['cache=never', 'cache=auto,writeback,nosplice'])
def test_integrity_under_valgrind(opts):
    zctest.require_fuse()
    valgrind = os.environ.get('ZCFUSE_VALGRIND') or shutil.which('valgrind')
    if not valgrind:
        pytest.skip('valgrind is not installed')
    zctest.MOUNT_TIMEOUT = max(zctest.MOUNT_TIMEOUT, 60.0)
    zctest.EXIT_TIMEOUT = max(zctest.EXIT_TIMEOUT, 60.0)
    m = ValgrindMount(valgrind, opts=opts.split(','))
    with m:
        summary = integrity.run(m.mnt, m.ref, seed=77, ops=OPS, src=m.src)
        print(integrity.summary_line(summary))
    text = m.vg_text
    errors = re.search(r'ERROR SUMMARY: (\d+) errors', text)
    assert errors, 'no valgrind summary:\n' + text[-3000:]
    print('valgrind: %s: %s; %s' % (opts, errors.group(0), ' '.join(
        re.findall(r'definitely lost: [\d,]+ bytes', text)) or 'no leaks'))
    assert errors.group(1) == '0', text[-6000:]
    assert not re.search(r'definitely lost: [1-9]', text), text[-6000:]
