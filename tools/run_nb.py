#!/usr/bin/env python
"""Execute notebooks in place so their committed outputs (the docs) are fresh — the way `nbdev_test` runs them.

    python tools/run_nb.py nbs/00_math.ipynb [more.ipynb ...] [--flags slow]

Cells flagged with a `tst_flags` directive (`#| slow`, `#| notest`) and `#| eval: false` cells are skipped and keep
their previous outputs, unless the flag is named in `--flags` (then they run too). Stops at the first error.
Run `nbdev_clean` afterwards.
"""
import argparse, sys
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
from fastcore.xtras import working_directory
from nbdev.config import get_config
from nbdev.process import extract_directives


def run_nb(fn, run_flags=()):
    fn = Path(fn).resolve()
    skip = set(get_config().tst_flags.split()) - set(run_flags)
    nb = read_nb(fn)
    def no_eval(cell):
        if cell.cell_type != 'code': return True
        d = extract_directives(cell, remove=False)  # leaves the source as it is
        if d.get('eval:', [''])[0].lower() == 'false': return True
        return bool(skip & d.keys())
    shell = CaptureShell(fn)
    with working_directory(fn.parent): shell.run_all(nb, exc_stop=True, preproc=no_eval)
    write_nb(nb, fn)


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('notebooks', nargs='+')
    ap.add_argument('--flags', nargs='*', default=[], help='flagged cells to run as well (e.g. slow)')
    args = ap.parse_args()
    for f in args.notebooks:
        print('running', f, flush=True)
        run_nb(f, args.flags)
