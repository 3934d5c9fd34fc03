"""The offline docs build (tools/build_docs.py): deterministic, hides `#| hide` cells, renders what nbdev renders.

A small synthetic notebook set is built twice into temporary folders (byte-identical output, every feature checked);
the repository's own notebooks are built once (hidden cells absent, internal links and anchors resolve, README
figures are files, not inline base64). Nothing is written into the repository.
"""
import base64, filecmp, html, json, re, struct, sys, zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'tools'))
import build_docs  # noqa: E402

HIDDEN_MARKER = 'SECRET_HIDDEN_MARKER_8c1f'


def _png(w=8, h=6) -> str:
    "A tiny valid PNG (grey gradient), base64 — stands in for a committed matplotlib figure"
    raw = b''.join(b'\x00' + bytes((x * 30 + y * 10) % 256 for x in range(w)) for y in range(h))
    def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    png = (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 0, 0, 0, 0))
           + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
    return base64.b64encode(png).decode()


def _nb(cells, ids=True) -> dict:
    res = []
    for i, (kind, src, *outs) in enumerate(cells):
        c = {'cell_type': kind, 'metadata': {}, 'source': src, **({'id': f'c{i}'} if ids else {})}
        if kind == 'code': c.update(execution_count=None, outputs=outs[0] if outs else [])
        res.append(c)
    return {'cells': res, 'nbformat': 4, 'nbformat_minor': 5,
            'metadata': {'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'}}}


def _write_synthetic(nbs: Path):
    nbs.mkdir(parents=True)
    fig = {'output_type': 'display_data', 'metadata': {},
           'data': {'image/png': _png(), 'text/plain': '<Figure size 80x60 with 1 Axes>'}}
    index = _nb([
        ('markdown', '# Synthetic project\n> One-line description of the synthetic project'),
        ('code', f'#| hide\nprint("{HIDDEN_MARKER} index")'),
        ('markdown', 'Read [the tool notebook](01_tool.ipynb#the-density) first.\n\n$$a^2 + b^2 = c^2$$'),
        ('code', '1 + 1', [{'output_type': 'execute_result', 'execution_count': 1, 'metadata': {},
                            'data': {'text/plain': '2'}}]),
        ('code', 'plot_something()', [fig]),
    ], ids=False)  # notebooks without cell ids must not get random ones
    tool = _nb([
        ('code', '#| default_exp synthetic_tool'),
        ('markdown', '# The tool\n> A function, documented'),
        ('code', "#| hide\n# Colab: install this package when the notebook runs there (does nothing elsewhere)\nimport sys\n"
                 f"if 'google.colab' in sys.modules: print('{HIDDEN_MARKER} colab')"),
        ('code', '#| export\nimport math'),
        ('markdown', '## The density\n\nInline $\\mathcal{N}(x \\mid \\mu, \\sigma^2)$ and `gauss_pdf`.'),
        ('code', '#| export\ndef gauss_pdf(x:float, # where\n              mu:float=0. # mean\n             ) -> float:\n'
                 '    "Standard normal density at `x`"\n    return math.exp(-(x - mu) ** 2 / 2) / math.sqrt(2 * math.pi)'),
        ('code', '#| echo: false\nprint("visible output of a hidden-input cell")',
         [{'output_type': 'stream', 'name': 'stdout', 'text': 'visible output of a hidden-input cell\n'}]),
        ('code', 'gauss_pdf(0.)', [{'output_type': 'execute_result', 'execution_count': 2, 'metadata': {},
                                     'data': {'text/plain': '0.3989422804014327'}}]),
        ('code', 'import math\nprint(math.pi)  # mixed cell: imports + code; keeps its committed output, is not re-run',
         [{'output_type': 'stream', 'name': 'stdout', 'text': 'committed output\n'}]),
        ('code', f'#| hide\n{HIDDEN_MARKER} = 1'),
    ])
    (nbs / 'index.ipynb').write_text(json.dumps(index, indent=1))
    (nbs / '01_tool.ipynb').write_text(json.dumps(tool, indent=1))


class _Text(HTMLParser):
    "Visible text and ids/links of an HTML page (scripts and styles skipped)"
    def __init__(self):
        super().__init__(); self.parts, self.ids, self.links, self._skip = [], set(), [], 0
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ('script', 'style'): self._skip += 1
        if a.get('id'): self.ids.add(a['id'])
        for k in ('href', 'src'):
            if a.get(k): self.links.append(a[k])
    def handle_endtag(self, tag):
        if tag in ('script', 'style'): self._skip -= 1
    def handle_data(self, d):
        if not self._skip: self.parts.append(d)
    @property
    def text(self): return re.sub(r'\s+', ' ', ''.join(self.parts))


def _parse(f: Path) -> _Text:
    p = _Text(); p.feed(f.read_text(encoding='utf-8')); return p


def _norm(s): return re.sub(r'\s+', ' ', s).strip()


def _hidden_sources(nb_path: Path) -> list[str]:
    "Sources of `#| hide` cells, without the directive, that appear in no other cell of the notebook"
    cells = json.loads(nb_path.read_text())['cells']
    src = lambda c: ''.join(c['source']) if isinstance(c['source'], list) else c['source']
    hidden = [c for c in cells if c['cell_type'] == 'code' and re.match(r'\s*#\|\s*hide\s*$', src(c).split('\n')[0])]
    others = ' '.join(_norm(src(c)) for c in cells if c not in hidden)
    res = []
    for c in hidden:
        body = _norm('\n'.join(l for l in src(c).splitlines() if not l.lstrip().startswith('#|')))
        if len(body) >= 20 and body not in others: res.append(body)  # short ones could occur in prose by chance
    return res


def _check_links(docs: Path, allowed_missing=()):
    "Every relative link/src in docs/*.html resolves to a file, and `page.html#id` to an id on that page"
    pages = {f.name: _parse(f) for f in docs.glob('*.html')}
    bad = []
    for name, p in pages.items():
        for url in p.links:
            url = html.unescape(url)
            if re.match(r'^[a-z][a-z0-9+.-]*:', url) or url.startswith('//'): continue
            path, _, frag = url.partition('#')
            path = path.split('?')[0]
            target = name if not path else path
            if path and not (docs / path).exists():
                if path not in allowed_missing: bad.append(f'{name}: {url}')
                continue
            if frag and target in pages and frag not in pages[target].ids: bad.append(f'{name}: {url} (no such id)')
    assert not bad, 'broken links:\n' + '\n'.join(bad)


@pytest.fixture(scope='module')
def synthetic(tmp_path_factory):
    base = tmp_path_factory.mktemp('docs_synth')
    _write_synthetic(base / 'nbs')
    for out in ('a', 'b'):
        if (ROOT / 'docs' / 'mathjax').exists():  # the committed MathJax copy: no system libjs-mathjax needed
            import shutil; shutil.copytree(ROOT / 'docs' / 'mathjax', base / out / 'docs' / 'mathjax')
        build_docs.build(base / out, nbs=base / 'nbs', quiet=True)
    return base


def test_deterministic(synthetic):
    a, b = synthetic / 'a', synthetic / 'b'
    files = sorted(f.relative_to(a) for f in a.rglob('*') if f.is_file())
    assert files == sorted(f.relative_to(b) for f in b.rglob('*') if f.is_file())
    assert Path('README.md') in files and Path('docs/index.html') in files and Path('docs/tool.html') in files
    diff = [str(f) for f in files if not filecmp.cmp(a / f, b / f, shallow=False)]
    assert not diff, f'two builds differ: {diff}'


def test_synthetic_content(synthetic):
    docs = synthetic / 'a' / 'docs'
    raw = {f.name: f.read_text(encoding='utf-8') for f in docs.glob('*.html')}
    for name, s in raw.items():
        assert HIDDEN_MARKER not in s, f'hidden cell leaked into {name}'
        assert 'google.colab' not in s
        assert 'mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe' in s and 'cdnjs' not in s and 'require.js' not in s
        assert '#|' not in s, f'cell options left in {name}'
    tool = _parse(docs / 'tool.html')
    assert 'gauss_pdf' in tool.ids and 'Standard normal density' in tool.text          # show_doc rendered
    assert 'visible output of a hidden-input cell' in tool.text and 'print("visible' not in raw['tool.html']
    assert 'committed output' in tool.text                                             # mixed cell not re-run
    assert 'The tool' in tool.text and 'A function, documented' in tool.text           # front matter -> title
    assert r'\mathcal{N}(x \mid \mu, \sigma^2)' in raw['tool.html']                    # maths left for MathJax
    index = raw['index.html']
    assert 'href="tool.html#the-density"' in index                                      # notebook link rewritten
    assert 'data:image/png;base64,' in index                                           # figure embedded
    assert (docs / 'mathjax' / 'MathJax.js').exists() and (docs / 'static' / 'lab.css').exists()
    assert (docs / 'mathjax' / 'fonts' / 'HTML-CSS' / 'TeX' / 'woff' / 'MathJax_Main-Regular.woff').exists()
    _check_links(docs)
    readme = (synthetic / 'a' / 'README.md').read_text()
    assert readme.startswith('# Synthetic project') and HIDDEN_MARKER not in readme
    assert 'base64' not in readme and '](nbs/01_tool.ipynb#the-density)' in readme
    figs = re.findall(r'!\[[^\]]*\]\(([^)]+)\)', readme)
    assert figs and all((synthetic / 'a' / f).is_file() for f in figs)


def test_docs_size_is_lean(synthetic):
    docs = synthetic / 'a' / 'docs'
    assert sum(f.stat().st_size for f in (docs / 'mathjax').rglob('*') if f.is_file()) < 3e6


@pytest.fixture(scope='module')
def repo_build(tmp_path_factory):
    out = tmp_path_factory.mktemp('docs_repo')
    if (ROOT / 'docs' / 'mathjax').exists():  # as CI does: reuse the committed MathJax copy
        import shutil; shutil.copytree(ROOT / 'docs' / 'mathjax', out / 'docs' / 'mathjax')
    build_docs.build(out, quiet=True)
    return out


def test_repo_hidden_cells_absent(repo_build):
    docs = repo_build / 'docs'
    pages = {p.name: p for p in build_docs.list_notebooks(ROOT / 'nbs')}
    assert pages, 'no notebooks'
    for name, nb in pages.items():
        page = docs / build_docs._nbdev_html_name(nb)
        assert page.exists(), f'{name} not rendered'
        text = _norm(_parse(page).text)
        for src in _hidden_sources(nb):
            assert src not in text, f'{name}: hidden cell visible in {page.name}:\n{src}'


def test_repo_links_and_readme(repo_build):
    import yaml
    def pages(items):                          # the sidebar's notebooks, sections included
        for it in items or []:
            if isinstance(it, str): yield it
            elif isinstance(it, dict): yield from pages(it.get('contents'))
    sidebar = list(pages(yaml.safe_load((ROOT / 'nbs' / 'sidebar.yml').read_text())['website']['sidebar']['contents']))
    assert len(sidebar) == len(list((ROOT / 'nbs').glob('[0-9]*.ipynb'))) + 1, 'every notebook is in the sidebar'
    not_yet = {build_docs._nbdev_html_name(Path(n)) for n in sidebar if not (ROOT / 'nbs' / n).exists()}
    _check_links(repo_build / 'docs', allowed_missing=not_yet)
    readme = repo_build / 'README.md'
    if (ROOT / 'nbs' / 'index.ipynb').exists():
        s = readme.read_text()
        assert 'data:image' not in s and 'base64' not in s
        for f in re.findall(r'!\[[^\]]*\]\(([^)\s]+)\)', s):
            if '://' not in f: assert (repo_build / f).is_file() or (ROOT / f).is_file(), f


def test_readme_python_examples_run():
    "Every ```python block of the README (the public API the front page shows) runs as written, and its loss is finite"
    import torch
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / 'README.md').read_text(), re.S)
    assert blocks, 'the README shows no Python example'
    for i, block in enumerate(blocks):
        scope = {}
        exec(compile(block, f'README.md python block {i}', 'exec'), scope)
        if 'total' in scope: assert torch.isfinite(scope['total']), scope['total']
