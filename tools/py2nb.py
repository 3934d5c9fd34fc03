#!/usr/bin/env python
"""Authoring helper: turn a percent-format script (`# %%` code cells, `# %% [markdown]` prose cells) into a notebook.

    python tools/py2nb.py draft.py nbs/02_templates.ipynb

The notebook is the source of truth once written; this only saves typing JSON by hand. Markdown cells are written
as `# `-prefixed comment lines in the draft (the prefix is stripped).
"""
import json, re, sys
from pathlib import Path


def cells_from_percent(text):
    cells, kind, buf = [], None, []

    def flush():
        if kind is None: return
        lines = buf[:]
        while lines and not lines[-1].strip(): lines.pop()
        while lines and not lines[0].strip(): lines.pop(0)
        if kind == 'markdown': lines = [re.sub(r'^# ?', '', l) for l in lines]
        src = '\n'.join(lines)
        cell = dict(cell_type=kind, metadata={}, source=src)
        if kind == 'code': cell.update(execution_count=None, outputs=[])
        cells.append(cell)

    for line in text.splitlines():
        m = re.match(r'^# %%( \[markdown\])?\s*$', line)
        if m:
            flush()
            kind, buf = ('markdown' if m.group(1) else 'code'), []
        elif kind is not None: buf.append(line)
    flush()
    return cells


def main(src, dst):
    nb = dict(cells=cells_from_percent(Path(src).read_text()), nbformat=4, nbformat_minor=5,
              metadata=dict(kernelspec=dict(display_name='python3', language='python', name='python3')))
    Path(dst).write_text(json.dumps(nb, indent=1) + '\n')


if __name__ == '__main__': main(*sys.argv[1:3])
