#!/usr/bin/python3
"""Checks of the manual pages (man/).

    check_man.py render PAGE...
        Each page formats without a single warning: groff -man -ww -z
        (every warning on) and mandoc -T lint (every message, style ones
        included) print nothing and succeed.

    check_man.py options ZCFUSE_1 ZC_OPTIONS_C ZCFUSE_BIN
        Every mount option of the option table in zc_options.c (names and
        negated names), and every -o option `zcfuse --help` lists (the
        daemon's own, such as max_fds), is an item of zcfuse(1)'s OPTIONS
        section.

    check_man.py symbols LIBZCFUSE_3 MAP INCLUDE_DIR
        Every symbol the version script exports is in libzcfuse(3)'s
        SYNOPSIS and is an item of its DESCRIPTION; every struct, typedef
        and macro of the public headers (INCLUDE_DIR/*.h) is named in the
        page.

Exit status 0 when every check holds, 1 with one line per problem when one
does not.  Standard library only.
"""

import glob
import os
import re
import shlex
import subprocess
import sys


def fail(problems):
    for p in problems:
        print('man pages: %s' % p, file=sys.stderr)
    return 1 if problems else 0


# --------------------------------------------------------------- rendering

def run_quiet(cmd):
    """Run cmd; return '' when it succeeded silently, else what it said."""
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    except FileNotFoundError:
        return '%s is not installed (.ci/install-deps installs it)' % cmd[0]
    said = (r.stdout + r.stderr).decode(errors='replace').strip()
    if r.returncode != 0:
        return 'exit status %d: %s' % (r.returncode, said)
    return said


def check_render(pages):
    problems = []
    for page in pages:
        for cmd in (['groff', '-man', '-ww', '-z', page],
                    ['mandoc', '-T', 'lint', '-W', 'style', page]):
            said = run_quiet(cmd)
            if said:
                problems.append('%s: %s' % (' '.join(cmd[:-1]), said.replace('\n', ' | ')))
    return problems


# ---------------------------------------------------------- roff as text

FONT_RE = re.compile(r'\\f(?:[BIRP]|\[[A-Z]*\])')


def roff_text(line):
    """The text of one roff line: macro arguments joined, escapes undone."""
    if line.startswith('.\\"'):
        return ''
    if line.startswith('.'):
        macro, _, rest = line.partition(' ')
        try:
            args = shlex.split(rest.replace('\\', '\\\\'), posix=True)
        except ValueError:
            args = rest.split()
        sep = '' if macro in ('.BR', '.RB', '.BI', '.IB', '.IR', '.RI') else ' '
        line = sep.join(a.replace('\\\\', '\\') for a in args)
    line = FONT_RE.sub('', line)
    line = line.replace('\\-', '-').replace('\\&', '').replace('\\e', '\\')
    line = line.replace('\\(dq', '"').replace('\\(em', '-')
    return line


def sections(path):
    """{section name: [roff lines]}."""
    out, current = {}, None
    with open(path) as f:
        for line in f:
            line = line.rstrip('\n')
            if line.startswith('.SH '):
                current = roff_text(line).strip('"')
                out[current] = []
            elif current is not None:
                out[current].append(line)
    return out


def item_tags(lines):
    """Text of each item tag (.TP/.TQ and the line after it)."""
    tags = []
    for i, line in enumerate(lines[:-1]):
        if line in ('.TP', '.TQ'):
            tags.append(roff_text(lines[i + 1]))
    return tags


def tag_names(tag):
    """Option names in a tag: 'writeback, nowriteback' -> both;
    'cache=never|auto|always' -> cache; 'x-*' stays x-*."""
    names = set()
    for part in tag.split(','):
        part = part.strip()
        if part:
            names.add(part.split('=', 1)[0].split()[0])
    return names


# ----------------------------------------------------------------- options

def table_options(source):
    """The names and negated names of the option table in zc_options.c."""
    with open(source) as f:
        text = f.read()
    m = re.search(r'zc_opt_table\[\]\s*=\s*\{(.*?)\n\};', text, re.S)
    if not m:
        return None
    names = set(re.findall(r'\.(?:neg_)?name\s*=\s*"([^"]+)"', m.group(1)))
    # An entry that matches a prefix (x-) stands for every name it starts (x-*).
    for prefix in re.findall(r'\.name\s*=\s*"([^"]+)"[^}]*\.prefix\s*=\s*true', m.group(1)):
        names.discard(prefix)
        names.add(prefix + '*')
    return names


def help_options(binary):
    """The -o options `zcfuse --help` lists."""
    r = subprocess.run([binary, '--help'], stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=30)
    if r.returncode != 0:
        return None
    names = set()
    for line in r.stdout.decode(errors='replace').splitlines():
        m = re.match(r'\s+-o ([A-Za-z_][\w-]*)', line)
        if m:
            names.add(m.group(1))
    return names


def check_options(page, source, binary):
    table = table_options(source)
    if not table or len(table) < 10:
        return ['%s: could not read the option table (found %r)' % (source, table)]
    listed = help_options(binary)
    if listed is None or len(listed) < 10:
        return ['%s --help: could not read its options (found %r)' % (binary, listed)]
    options = sections(page).get('OPTIONS')
    if options is None:
        return ['%s has no OPTIONS section' % page]
    documented = set()
    for tag in item_tags(options):
        documented |= tag_names(tag)
    problems = []
    for name in sorted(table - documented):
        problems.append('%s: option %s of the option table (%s) is not described'
                        % (page, name, source))
    for name in sorted(listed - table - documented):
        problems.append('%s: option %s of `zcfuse --help` is not described' % (page, name))
    return problems


# ----------------------------------------------------------------- symbols

def map_symbols(path):
    with open(path) as f:
        return re.findall(r'^\s*(zc_\w+);', f.read(), re.M)


def header_names(path):
    """Structs, typedefs and macros a public header defines."""
    with open(path) as f:
        text = f.read()
    names = set(re.findall(r'^struct (\w+) \{', text, re.M))
    names |= set(re.findall(r'^typedef [^;(]*?\b(\w+);', text, re.M))
    names |= set(re.findall(r'^typedef [^;]*?\(\*(\w+)\)', text, re.M))
    guard = re.search(r'^#ifndef (\w+)\n#define \1$', text, re.M)
    for name in re.findall(r'^#define (\w+)', text, re.M):
        if not guard or name != guard.group(1):
            names.add(name)
    return names


def check_symbols(page, mapfile, include_dir):
    headers = sorted(glob.glob(os.path.join(include_dir, '*.h')))
    if not headers:
        return ['%s: no public headers there' % include_dir]
    secs = sections(page)
    synopsis = '\n'.join(roff_text(l) for l in secs.get('SYNOPSIS', []))
    described = set()
    for tag in item_tags(secs.get('DESCRIPTION', [])):
        described |= set(re.findall(r'\b(\w+)\s*\(\)', tag))
    whole = '\n'.join(roff_text(l) for lines in secs.values() for l in lines)
    symbols = map_symbols(mapfile)
    if len(symbols) < 10:
        return ['%s: could not read the exported symbols (found %r)' % (mapfile, symbols)]
    problems = []
    for sym in symbols:
        if not re.search(r'\b%s\(' % sym, synopsis):
            problems.append('%s: %s (exported by %s) is not in the SYNOPSIS'
                            % (page, sym, mapfile))
        if sym not in described:
            problems.append('%s: %s (exported by %s) is not described' % (page, sym, mapfile))
    for header in headers:
        for name in sorted(header_names(header)):
            if not re.search(r'\b%s\b' % re.escape(name), whole):
                problems.append('%s: %s of %s is not named' % (page, name, header))
    return problems


def main(argv):
    if len(argv) >= 3 and argv[1] == 'render':
        return fail(check_render(argv[2:]))
    if len(argv) == 5 and argv[1] == 'options':
        return fail(check_options(*argv[2:]))
    if len(argv) == 5 and argv[1] == 'symbols':
        return fail(check_symbols(*argv[2:]))
    print('usage: check_man.py render PAGE... | options ZCFUSE_1 ZC_OPTIONS_C ZCFUSE_BIN | '
          'symbols LIBZCFUSE_3 MAP INCLUDE_DIR', file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv))
