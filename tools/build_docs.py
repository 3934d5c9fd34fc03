#!/usr/bin/env python
"""Offline documentation build: `nbs/*.ipynb` -> `docs/*.html` and `README.md`, with no Quarto and no network.

    python tools/build_docs.py                 # writes docs/ and README.md in the repository
    python tools/build_docs.py --out /tmp/x    # writes /tmp/x/docs/ and /tmp/x/README.md instead
    python tools/build_docs.py --check         # builds into a temporary folder; exit 1 if docs/ or README.md differ

Users with Quarto get nbdev's normal site from `nbdev_docs` (config in `nbs/_quarto.yml`, `nbs/nbdev.yml`,
`nbs/sidebar.yml`). This script is the fallback that runs anywhere the dev requirements are installed:

1. every notebook goes through nbdev's own docs processors (`nbdev.processors.FilterDefaults`, exactly what
   `nbdev.serve.proc_nbs` applies): `#| hide` cells vanish, `#| export` cells show, `show_doc` cells are added and
   rendered. Notebooks are processed in worker processes, into memory (not the mtime-cached `_proc/` folder).
   Nothing else is executed: only what nbdev runs for `show_doc` (exported cells, import-only cells, `show_doc`
   calls; unlike nbdev, cells mixing imports with other code are not re-run). Every other output is the one
   committed in the notebook.
2. what only Quarto understands is translated for nbconvert: cell options (`#| echo: false`, `#| include: false`,
   `#| output: false`, `#| code-fold`, ...), the YAML front-matter raw cell (-> `# title` + `> description`),
   Pandoc attributes on links and images (`[x](u){target="_blank"}`), fenced divs (`:::`).
3. nbconvert renders HTML (lab template, prompts hidden, one shared stylesheet instead of 250 kB of CSS per
   page) with MathJax 2 served from `docs/mathjax/` (a small part of Debian's libjs-mathjax) and a navigation
   sidebar; links to notebooks (`02_templates.ipynb#x`) and nbdev's absolute doc links point to the local pages.
   Page names are nbdev's/Quarto's (`00_math.ipynb` -> `math.html`), so links work the same on both sites.
4. README.md is `nbs/index.ipynb` exported to Markdown the same way; figures go to `docs/readme_files/`.

The output is deterministic (no timestamps, fixed order), so CI can rebuild and check `git status --porcelain`.
Notebook order: `nbs/sidebar.yml` (missing notebooks skipped); notebooks it doesn't list are slotted in by name.
"""
from __future__ import annotations

import argparse, filecmp, html, json, multiprocessing, os, re, shutil, sys, tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MATHJAX_SYSTEM = Path('/usr/share/javascript/mathjax')  # Debian/Ubuntu: apt-get install libjs-mathjax
MATHJAX_URL = 'mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe'
# The part of MathJax 2.7 that the TeX-AMS_CHTML-full configuration (plus the Safe extension) loads:
# the combined config, TeX input autoload extensions, the CommonHTML output and its web fonts (woff only).
MATHJAX_PARTS = ['MathJax.js', 'config/TeX-AMS_CHTML-full.js', 'config/Safe.js', 'extensions',
                 'jax/input/TeX', 'jax/element/mml', 'jax/output/CommonHTML', 'fonts/HTML-CSS/TeX/woff']
KEEP_IN_DOCS = {'CNAME'}  # files in an existing docs/ that the build keeps (everything else is regenerated)
README_FILES = 'readme_files'  # README figures: docs/readme_files/

# --------------------------------------------------------------------------------------------- nbdev processing

def _nbdev_process(src: str) -> str:
    "Apply nbdev's docs processors to the notebook at `src`; return the processed notebook as JSON (runs in a worker)"
    os.chdir(ROOT)  # nbdev reads settings.ini from the working directory
    os.environ['IN_TEST'] = '1'  # as nbdev.serve_drv does
    import matplotlib; matplotlib.use('Agg')
    from execnb.nbio import read_nb, nb2str
    ids = {c.get('id') for c in json.loads(Path(src).read_text(encoding='utf-8'))['cells']} - {None}
    nb = read_nb(src)  # gives random ids to cells that have none
    try: _docs_filter()(nb)
    except Exception as e: raise RuntimeError(f'nbdev could not process {src}: {type(e).__name__}: {e}') from None
    for c in nb.cells:  # drop random ids (read_nb's, and those of cells nbdev inserts): stable ones come later
        if c.get('id') not in ids: c.pop('id', None)
    return nb2str(nb)


def _docs_filter():
    """nbdev's `FilterDefaults` (the processors `proc_nbs` applies), with one change: `exec_show_docs`, which runs the
    cells `show_doc` needs, does not re-run cells that mix imports with other code (nbdev runs those and warns, "See
    FAQ"); such cells keep their committed outputs, so a plotting or training cell that starts with an import never
    runs during a docs build. Exported cells, import-only cells and `show_doc` cells run exactly as in nbdev."""
    import ast
    from nbdev import processors as P

    class exec_show_docs(P.exec_show_docs):
        def __call__(self, cell):
            if cell.cell_type == 'code' and cell.source and not (cell.directives_.keys() & {'export', 'exports', 'exporti', 'exec_doc'}):
                trees = cell.parsed_()
                if trees and not P._show_docs(trees) and not all(isinstance(t, (ast.Import, ast.ImportFrom)) for t in trees):
                    return
            return super().__call__(cell)

    class DocsFilter(P.FilterDefaults):
        def base_procs(self): return [exec_show_docs if o is P.exec_show_docs else o for o in super().base_procs()]
    return DocsFilter()


def process_notebooks(paths: list[Path], n_workers: int) -> list[dict]:
    "nbdev-process `paths` in worker processes (as `proc_nbs` does; each notebook gets its own IPython namespace)"
    # refer to the worker function through the importable module `build_docs`, not `__main__`: IPython (which runs
    # the show_doc cells) replaces `sys.modules['__main__']` in a worker, and a reused worker could not find it there
    if str(Path(__file__).parent) not in sys.path: sys.path.insert(0, str(Path(__file__).parent))
    import importlib
    worker = importlib.import_module('build_docs')._nbdev_process
    ctx = multiprocessing.get_context('spawn')
    with ProcessPoolExecutor(max_workers=max(1, min(n_workers, len(paths))), mp_context=ctx) as ex:
        return [json.loads(s) for s in ex.map(worker, [str(p) for p in paths])]

# ------------------------------------------------------------------------------------------------ notebook list

def _nbdev_html_name(nb_path: Path) -> str:
    "Page name nbdev/Quarto give a notebook: `00_math.ipynb` -> `math.html`"
    return re.sub(r'^\d+[a-zA-Z0-9]*_', '', nb_path.name.lower()).rsplit('.', 1)[0] + '.html'


def list_notebooks(nbs: Path) -> list[Path]:
    "Notebooks in `nbs`: those listed in `sidebar.yml` that exist, in its order; others slotted in by name (index first)"
    import yaml
    found = {p.name: p for p in nbs.glob('*.ipynb') if not p.name.startswith(('_', '.'))}
    order = []
    sb = nbs / 'sidebar.yml'
    if sb.exists():
        def walk(items):
            for it in items or []:
                if isinstance(it, str): order.append(Path(it).name)
                elif isinstance(it, dict):
                    if isinstance(it.get('href'), str): order.append(Path(it['href']).name)
                    walk(it.get('contents'))
        walk(((yaml.safe_load(sb.read_text()) or {}).get('website') or {}).get('sidebar', {}).get('contents'))
    key = lambda n: (n != 'index.ipynb', n)
    names = [n for n in dict.fromkeys(order) if n in found]
    for n in sorted(set(found) - set(names), key=key):  # not in the sidebar: after the listed one it sorts after
        names.insert(max((i + 1 for i, m in enumerate(names) if key(m) < key(n)), default=0), n)
    return [found[n] for n in names]

# ---------------------------------------------------------------------------------------- Quarto -> nbconvert

_re_fm = re.compile(r'^---\s*\n(.*?)\n---\s*$', re.DOTALL)
_re_opt = re.compile(r'^\s*#\|\s*([\w-]+)\s*:\s*(.*?)\s*$')
_re_fdiv = re.compile(r'^\s*:::.*$\n?', re.MULTILINE)
_re_hattr = re.compile(r'^(#{1,6}\s.*?)\s*\{[#.][^{}]*\}\s*$', re.MULTILINE)
# [text](url "title"){attrs} or ![alt](src){attrs}; text may contain one level of brackets (badges)
_re_attr_link = re.compile(r'(!?)\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(([^()\s]+)(?:\s+"([^"]*)")?\)\{([^{}\n]*)\}')
_re_attr_tok = re.compile(r'([.#][\w-]+)|([\w-]+)=(?:"([^"]*)"|\'([^\']*)\'|(\S+))')


def _truthy(v: str) -> bool: return v.strip().strip('"\'').lower() not in ('false', 'no', '0', 'off')


def _pandoc_attrs(s: str) -> list[tuple[str, str]]:
    "`{.cls #id k=v}` -> [('class','cls'), ('id','id'), ('k','v')]"
    res, classes = [], []
    for m in _re_attr_tok.finditer(s):
        if m.group(1):
            if m.group(1)[0] == '.': classes.append(m.group(1)[1:])
            else: res.append(('id', m.group(1)[1:]))
        else: res.append((m.group(2), next(g for g in m.groups()[2:] if g is not None)))
    if classes: res.insert(0, ('class', ' '.join(classes)))
    return res


def _convert_attrs(md: str, to_html: bool) -> str:
    "Pandoc link/image attributes: inline HTML for the docs, dropped (but image widths kept) for the README"
    def sub(m):
        bang, text, url, title, attrs = m.groups()
        kv = _pandoc_attrs(attrs)
        if not to_html:
            keep = [(k, v) for k, v in kv if k in ('width', 'height')]
            if bang and keep:
                return f'<img src="{html.escape(url)}" alt="{html.escape(text)}"' + ''.join(
                    f' {k}="{html.escape(v)}"' for k, v in keep) + '>'
            return f'{bang}[{text}]({url}' + (f' "{title}"' if title else '') + ')'
        a = ''.join(f' {k}="{html.escape(v)}"' for k, v in kv) + (f' title="{html.escape(title)}"' if title else '')
        if bang: return f'<img src="{html.escape(url)}" alt="{html.escape(text)}"{a}>'
        return f'<a href="{html.escape(url)}"{a}>{text}</a>'
    return _re_attr_link.sub(sub, md)


def _src(x) -> str: return ''.join(x) if isinstance(x, list) else (x or '')


def quarto_to_nbconvert(nb: dict, to_html: bool) -> dict:
    "Translate the Quarto-only parts of an nbdev-processed notebook; returns it with `metadata.docs` = front matter"
    import yaml
    cells, fm = [], {}
    for i, cell in enumerate(nb['cells']):
        src = _src(cell.get('source'))
        cell['source'] = src
        tags = list(cell.setdefault('metadata', {}).get('tags', []))
        if cell['cell_type'] == 'raw':
            m = _re_fm.match(src.strip())
            if i == 0 and m:  # nbdev's front matter (title, description, output-file, ...)
                fm = yaml.safe_load(m.group(1)) or {}
                md = f"# {fm.get('title', '')}\n" if fm.get('title') else ''
                if fm.get('description'): md += f"\n> {fm['description']}\n"
                if md: cells.append({'cell_type': 'markdown', 'metadata': {}, 'source': md})
                continue
        elif cell['cell_type'] == 'markdown':  # also `## Heading {#id .unnumbered}` -> `## Heading`
            cell['source'] = _re_hattr.sub(r'\1', _convert_attrs(_re_fdiv.sub('', src), to_html))
        elif cell['cell_type'] == 'code':
            lines, opts = src.splitlines(), {}
            while lines and (m := _re_opt.match(lines[0])):
                opts[m.group(1)] = m.group(2)
                lines.pop(0)
            cell['source'] = '\n'.join(lines).strip('\n')
            if 'include' in opts and not _truthy(opts['include']): continue
            if 'output' in opts and not _truthy(opts['output']): cell['outputs'] = []
            if 'echo' in opts and not _truthy(opts['echo']): tags.append('remove_input')
            if opts.get('code-fold', 'false').strip('"\'').lower() in ('true', 'show'):
                cell['metadata']['docs_fold'] = opts['code-fold'].strip('"\'').lower()
                cell['metadata']['docs_fold_summary'] = opts.get('code-summary', 'Code').strip('"\'')
            for out in cell.get('outputs', []):
                d = out.get('data', {})
                if 'text/markdown' in d: d['text/markdown'] = _convert_attrs(_src(d['text/markdown']), to_html)
            if not cell['source'].strip():
                if not cell.get('outputs'): continue
                tags.append('remove_input')
        if tags: cell['metadata']['tags'] = sorted(set(tags))
        cells.append(cell)
    nb['cells'] = cells
    nb.setdefault('metadata', {})['docs'] = fm
    return nb

# ------------------------------------------------------------------------------------------------------ links

def _site_prefixes() -> list[str]:
    "Absolute URLs of the Quarto site (settings.ini doc_host + doc_baseurl), as nbdev's doc links spell them"
    from nbdev.config import get_config
    cfg = get_config()
    base = (cfg.get('doc_host', '').rstrip('/') + '/' + cfg.get('doc_baseurl', '').strip('/')).rstrip('/') + '/'
    return [base, base.replace('https://', 'http://')] if base != '/' else []


def _rewrite_html_links(s: str, pages: dict[str, str], site: list[str]) -> str:
    "In rendered HTML: `x.ipynb#a` -> page.html#a, site URLs -> relative; fragments lower-cased like Quarto's ids"
    local = set(pages.values()) | {_nbdev_html_name(Path(n)) for n in pages} | {'index.html'}

    def href(m):
        url = html.unescape(m.group(1))
        for pre in site:
            if url.startswith(pre):
                rel = url[len(pre):]
                if rel.split('#')[0] in local or rel.split('#')[0] == '':
                    url = rel or 'index.html'
                break
        mm = re.match(r'^(?:\./)?([^/:#?]+\.ipynb)(#.*)?$', url)
        if mm:  # a notebook not written yet gets the name nbdev will give it
            url = pages.get(mm.group(1)) or _nbdev_html_name(Path(mm.group(1)))
            url += mm.group(2) or ''
        page, _, frag = url.partition('#')
        if frag and ':' not in page and (page == '' or page.endswith('.html')): url = f'{page}#{frag.lower()}'
        return f'href="{html.escape(url)}"'
    s = re.sub(r'href="([^"]*)"', href, s)
    # heading ids as Quarto makes them (lower case) so that nbdev's `page.html#symbol` links land
    return re.sub(r'(<h[1-6][^>]*\bid=")([^"]*)(")', lambda m: m.group(1) + m.group(2).lower() + m.group(3), s)


def _drop_dangling_fragments(site_dir: Path, pages: list[str]):
    "Links to `page.html#x` where the page has no id `x` (nbdev links every backticked `Class.attr`, documented or not) point at the page instead"
    ids = {pg: set(re.findall(r'\bid="([^"]+)"', (site_dir / pg).read_text(encoding='utf-8'))) for pg in pages}
    for pg in pages:
        f = site_dir / pg
        s = f.read_text(encoding='utf-8')
        def fix(m):
            target, frag = m.group(1) or pg, html.unescape(m.group(2))
            return m.group(0) if target not in ids or frag in ids[target] else f'href="{m.group(1) or pg}"'
        new = re.sub(r'href="([^"#:/]*\.html)?#([^"]+)"', fix, s)
        if new != s: f.write_text(new, encoding='utf-8')


def _to_node(nb: dict):
    "nbformat node with multi-line strings joined and stable cell ids (random ids would change every build)"
    import nbformat
    nb = json.loads(json.dumps(nb))
    nb['nbformat'], nb['nbformat_minor'] = 4, 5
    seen = set()
    for i, cell in enumerate(nb['cells']):
        cid = cell.get('id')
        if not cid or cid in seen: cell['id'] = cid = f'docs-{i}'
        seen.add(cid)
    return nbformat.reads(json.dumps(nb), as_version=4)


def _copy_local_files(page_html: str, src_dir: Path, dst_dir: Path):
    "Copy files that a page refers to by a relative path (`![](images/x.png)`) from the notebook folder"
    for m in re.finditer(r'\b(?:src|href)="([^"#?:]+)"', page_html):
        rel = html.unescape(m.group(1))
        if rel.startswith('/') or '..' in Path(rel).parts: continue
        f = src_dir / rel
        if f.is_file() and f.suffix.lower() not in ('.ipynb', '.py', '.html'):
            (dst_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dst_dir / rel)


def _rewrite_md_links(md: str, pages: dict[str, str], nbs: Path) -> str:
    "README (at the repository root): relative links to notebooks and files in nbs/ get the `nbs/` prefix"
    def sub(m):
        url, frag = m.group(2), m.group(3) or ''
        if url.endswith('.ipynb') or (not url.startswith('/') and (nbs / url).is_file()):
            return f'{m.group(1)}{nbs.name}/{url}{frag}'
        return m.group(0)
    md = re.sub(r'(\]\()(?:\./)?([^()\s:#?]+)(#[^()\s]*)?(?=[\s)])', sub, md)
    return re.sub(r'(<img\s[^>]*src=")(?:\./)?([^"\s:#?]+)()(?=")', sub, md)

# ------------------------------------------------------------------------------------------------------- HTML

PAGE_TEMPLATE = r"""{%- extends 'index.html.j2' -%}
{% from 'mathjax.html.j2' import mathjax %}
{%- block html_head -%}
<meta charset="utf-8" />
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{{ resources.docs.page_title | escape_html }}</title>
<link rel="stylesheet" href="static/lab.css">
<link rel="stylesheet" href="static/site.css">
{{ mathjax(resources.mathjax_url) }}
{%- endblock html_head -%}
{%- block body_header -%}
<body class="jp-Notebook" data-jp-theme-light="true" data-jp-theme-name="JupyterLab Light">
<nav class="docs-nav">
{{ resources.docs.nav_html }}
</nav>
<main class="docs-main">
{%- endblock body_header -%}
{% block input %}
{%- if cell.metadata.docs_fold -%}
<details class="docs-fold"{% if cell.metadata.docs_fold == 'show' %} open{% endif %}><summary>{{ cell.metadata.docs_fold_summary | escape_html }}</summary>
{{ super() }}
</details>
{%- else -%}
{{ super() }}
{%- endif -%}
{% endblock input %}
{% block body_footer %}
{{ resources.docs.footer_html }}
</main>
</body>
{% endblock body_footer %}
"""

SITE_CSS = """/* torch-scae-nb offline docs (tools/build_docs.py) */
body.jp-Notebook { margin: 0; padding: 0; overflow: visible; background: #fff; }
.docs-nav { position: fixed; top: 0; left: 0; bottom: 0; width: 240px; overflow-y: auto; box-sizing: border-box;
  padding: 1.2rem 1rem; background: #f7f7f9; border-right: 1px solid #e3e3e8;
  font: 14px/1.45 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
.docs-nav .docs-brand { display: block; font-weight: 700; font-size: 1.1rem; color: #222; text-decoration: none;
  margin-bottom: .8rem; }
.docs-nav ol { list-style: none; margin: 0; padding: 0; }
.docs-nav li a { display: block; padding: .28rem .5rem; border-radius: 4px; color: #2a5db0; text-decoration: none; }
.docs-nav li a:hover { background: #e8eef8; }
.docs-nav li a.active { background: #2a5db0; color: #fff; }
.docs-main { margin-left: 240px; padding: 1.5rem 2.5rem 3rem; max-width: 980px; box-sizing: border-box; }
.docs-main .jp-Cell { padding: 4px 0; }
.jp-RenderedMarkdown h1 + blockquote { border: none; margin: 0 0 1rem; padding: 0; font-style: italic;
  font-size: 125%; opacity: .75; }
.jp-RenderedHTMLCommon h1:first-child, .jp-RenderedHTMLCommon h1 { margin-top: .3em; }
.jp-RenderedHTMLCommon h2, .jp-RenderedHTMLCommon h3 { margin-top: 1.2em; }
.jp-RenderedHTMLCommon a.anchor-link { display: inline; visibility: hidden; margin-left: .3em; text-decoration: none; }
.jp-RenderedHTMLCommon :hover > a.anchor-link { visibility: visible; }
.jp-RenderedHTMLCommon blockquote > pre { font-size: 13px; }
.jp-RenderedHTMLCommon table { font-size: 13px; }
.docs-main .jp-InputArea-editor, .docs-main .jp-OutputArea-output pre { overflow-x: auto; }
.jp-RenderedMarkdown pre { background: var(--jp-cell-editor-background, #f5f5f5); padding: .5em .7em; border-radius: 3px; }
.docs-contents { padding-left: var(--jp-code-padding, 5px); }
details.docs-fold > summary { cursor: pointer; color: #555; font-size: 13px; margin: 2px 0; }
.docs-pager { display: flex; justify-content: space-between; gap: 1rem; margin-top: 2.5rem; padding-top: 1rem;
  border-top: 1px solid #e3e3e8; font: 14px sans-serif; }
.docs-pager a { color: #2a5db0; text-decoration: none; }
.docs-contents dt { margin-top: .6rem; }
.docs-contents dd { margin-left: 1.2rem; color: #555; }
@media (max-width: 800px) {
  .docs-nav { position: static; width: auto; border-right: none; border-bottom: 1px solid #e3e3e8; }
  .docs-main { margin-left: 0; padding: 1rem; }
}
"""


def _lab_css() -> str:
    "nbconvert's JupyterLab stylesheet (light theme) + the syntax colours, written once to docs/static/"
    from nbconvert.exporters.html import HTMLExporter
    from pygments.formatters import HtmlFormatter
    from jupyterlab_pygments import JupyterStyle
    static = next(Path(d) / 'lab' / 'static' for d in HTMLExporter(template_name='lab').template_paths
                  if (Path(d) / 'lab' / 'static' / 'index.css').exists())
    parts = [(static / 'index.css').read_text(encoding='utf-8'), (static / 'theme-light.css').read_text(encoding='utf-8'),
             HtmlFormatter(style=JupyterStyle).get_style_defs('.highlight'),
             'a.anchor-link { display: none; }\n.jp-Collapser { display: none; }\n'
             '.jp-InputArea, .jp-InputArea-editor { overflow: hidden; }\n'
             '.jp-OutputArea-output pre { line-height: inherit; font-family: inherit; }\n'
             '.jp-RenderedText pre { color: var(--jp-content-font-color1); font-size: var(--jp-code-font-size); }\n'
             '.cm-editor.cm-s-jupyter .highlight pre { padding: var(--jp-code-padding) 4px; margin: 0;'
             ' font-family: inherit; font-size: inherit; line-height: inherit; color: inherit; }\n']
    return '\n'.join(p.rstrip('\n') + '\n' for p in parts)


def _html_exporter():
    from jinja2 import DictLoader
    from traitlets.config import Config
    from nbconvert import HTMLExporter
    c = Config()
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_cell_tags = {'remove_cell'}
    c.TagRemovePreprocessor.remove_input_tags = {'remove_input'}
    c.TagRemovePreprocessor.remove_all_outputs_tags = {'remove_output'}
    c.HTMLExporter.exclude_input_prompt = True
    c.HTMLExporter.exclude_output_prompt = True
    # embed_images stays off: nbconvert then re-parses inline HTML and breaks `<a ...>text</a>` (show_doc's source link)
    c.HTMLExporter.mathjax_url = MATHJAX_URL
    c.HTMLExporter.require_js_url = ''
    c.CSSHTMLHeaderPreprocessor.enabled = False  # styles come from docs/static/ (no per-machine custom.css)
    return HTMLExporter(config=c, template_name='lab', template_file='docs_page.html.j2',
                        extra_loaders=[DictLoader({'docs_page.html.j2': PAGE_TEMPLATE})])


def _nav_html(pages: list[tuple[str, str, str]], current: str, title: str) -> str:
    items = '\n'.join(f'<li><a href="{h}"' + (' class="active"' if h == current else '') + f'>{html.escape(t)}</a></li>'
                      for h, t, _ in pages)
    return f'<a class="docs-brand" href="index.html">{html.escape(title)}</a>\n<ol>\n{items}\n</ol>'


def _footer_html(pages: list[tuple[str, str, str]], current: str, is_index: bool) -> str:
    res = ''
    if is_index:
        entries = '\n'.join(f'<dt><a href="{h}">{html.escape(t)}</a></dt>' + (f'<dd>{html.escape(d)}</dd>' if d else '')
                            for h, t, d in pages if h != current)
        if entries:
            res += (f'<div class="jp-RenderedHTMLCommon docs-contents">\n<h2 id="contents">Contents</h2>\n<dl>\n{entries}\n'
                    '</dl>\n</div>\n')
    i = [h for h, _, _ in pages].index(current)
    prev = f'<a href="{pages[i-1][0]}">&larr; {html.escape(pages[i-1][1])}</a>' if i > 0 else '<span></span>'
    nxt = f'<a href="{pages[i+1][0]}">{html.escape(pages[i+1][1])} &rarr;</a>' if i + 1 < len(pages) else '<span></span>'
    return res + f'<div class="docs-pager">{prev}{nxt}</div>'

# ---------------------------------------------------------------------------------------------------- README

def _tidy_md(md: str) -> str:
    "No whitespace-only lines, and no runs of blank lines outside ``` fences"
    res, fence = [], False
    for line in md.strip().splitlines():
        if line.lstrip().startswith('```'): fence = not fence
        if not fence and not line.strip():
            if res and res[-1] == '': continue
            line = ''
        res.append(line)
    return '\n'.join(res) + '\n'


def render_readme(nb: dict, nbs: Path, pages: dict[str, str]) -> tuple[str, dict[str, bytes]]:
    "Markdown for README.md and the figure files it refers to (relative to the repository root)"
    import nbformat
    from traitlets.config import Config
    from nbconvert import MarkdownExporter
    for cell in nb['cells']:
        if cell['cell_type'] == 'markdown': cell['source'] = _rewrite_md_links(cell['source'], pages, nbs)
        for out in cell.get('outputs', []):
            out.get('metadata', {}).pop('filenames', None)
            d = out.get('data', {})
            # keep text and images, drop what GitHub can't show (widgets, javascript, ...)
            for k in [k for k in d if not (k.startswith('text/') or k.startswith('image/'))]: del d[k]
    nb.setdefault('metadata', {}).setdefault('language_info', {}).setdefault('name', 'python')  # ```python fences
    c = Config()
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_cell_tags = {'remove_cell'}
    c.TagRemovePreprocessor.remove_input_tags = {'remove_input'}
    c.TagRemovePreprocessor.remove_all_outputs_tags = {'remove_output'}
    c.MarkdownExporter.exclude_input_prompt = True
    c.MarkdownExporter.exclude_output_prompt = True
    c.ExtractOutputPreprocessor.output_filename_template = 'index_{cell_index}_{index}{extension}'
    body, res = MarkdownExporter(config=c).from_notebook_node(
        _to_node(nb), resources={'metadata': {'name': 'index', 'path': str(nbs)},
                                           'output_files_dir': f'docs/{README_FILES}'})
    body = _tidy_md(body)
    return body, dict(res.get('outputs', {}))

# ----------------------------------------------------------------------------------------------------- build

def _mathjax_source(old_docs: Path) -> Path:
    "The vendored copy already in docs/ if complete (builds don't depend on the system's MathJax), else Debian's"
    for d in (old_docs / 'mathjax', MATHJAX_SYSTEM):
        if all((d / part).exists() for part in MATHJAX_PARTS): return d
    sys.exit('MathJax 2 not found: install it (apt-get install libjs-mathjax) or keep the committed docs/mathjax/')


def _copy_mathjax(src: Path, dst: Path):
    for part in MATHJAX_PARTS:
        s = src / part
        if s.is_dir(): shutil.copytree(s, dst / part, symlinks=False)
        elif s.exists():
            (dst / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(s, dst / part)
        else: sys.exit(f'MathJax file missing: {s}')


def build(out: Path = ROOT, nbs: Path | None = None, n_workers: int = 2, quiet: bool = False) -> list[Path]:
    "Build `out/docs/` and `out/README.md` from the notebooks in `nbs` (default: settings.ini nbs_path)"
    cwd = os.getcwd()
    os.chdir(ROOT)  # nbdev reads settings.ini from the working directory
    try: return _build(Path(out).resolve(), nbs, n_workers, quiet)
    finally: os.chdir(cwd)


def _build(out: Path, nbs: Path | None, n_workers: int, quiet: bool) -> list[Path]:
    from nbdev.config import get_config
    cfg = get_config()
    nbs = Path(nbs or cfg.nbs_path).resolve()
    docs = out / 'docs'
    log = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))

    paths = list_notebooks(nbs)
    if not paths: sys.exit(f'no notebooks in {nbs}')
    log(f'processing {len(paths)} notebooks with nbdev: ' + ' '.join(p.name for p in paths))
    processed = process_notebooks(paths, n_workers)

    pages, site = {}, _site_prefixes()  # notebook file name -> page name
    html_nbs, readme_nb = [], None
    for p, nb in zip(paths, processed):
        readme_src = json.loads(json.dumps(nb)) if p.name == cfg.get('readme_nb', 'index.ipynb') else None
        nb = quarto_to_nbconvert(nb, to_html=True)
        fm = nb['metadata']['docs']
        pages[p.name] = fm.get('output-file') or _nbdev_html_name(p)
        html_nbs.append((p, nb, fm))
        if readme_src is not None: readme_nb = quarto_to_nbconvert(readme_src, to_html=False)
    index_page = 'index.html' if 'index.html' in pages.values() else None

    nav = [(pages[p.name], str(fm.get('title') or p.stem), str(fm.get('description') or '')) for p, nb, fm in html_nbs]
    if index_page is None:  # no index notebook yet: a bare page with the contents list
        nav.insert(0, ('index.html', cfg.get('title', cfg.lib_name), cfg.get('description', '')))
    title = cfg.get('title', cfg.lib_name)

    tmp = Path(tempfile.mkdtemp(prefix='docs_build_'))
    try:
        site_dir = tmp / 'docs'
        (site_dir / 'static').mkdir(parents=True)
        (site_dir / 'static' / 'lab.css').write_text(_lab_css(), encoding='utf-8')
        (site_dir / 'static' / 'site.css').write_text(SITE_CSS, encoding='utf-8')
        (site_dir / '.nojekyll').write_text('', encoding='utf-8')
        _copy_mathjax(_mathjax_source(docs), site_dir / 'mathjax')
        exporter = _html_exporter()
        if index_page is None:
            html_nbs.insert(0, (None, {'cells': [{'cell_type': 'markdown', 'metadata': {},
                                                  'source': f'# {title}\n' + (f'\n> {nav[0][2]}\n' if nav[0][2] else '')}],
                                       'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}, {}))
        for (p, nb, fm), (page, page_title, _) in zip(html_nbs, nav):
            resources = {'metadata': {'name': p.stem if p else 'index', 'path': str(nbs)},
                         'docs': {'page_title': page_title if page == 'index.html' else f'{page_title} – {title}',
                                  'nav_html': _nav_html(nav, page, title),
                                  'footer_html': _footer_html(nav, page, page == 'index.html')}}
            body, _ = exporter.from_notebook_node(_to_node(nb), resources=resources)
            body = _rewrite_html_links(body, pages, site)
            _copy_local_files(body, nbs, site_dir)
            (site_dir / page).write_text(body.rstrip() + '\n', encoding='utf-8')
            log(f'  {p.name if p else "(generated)"} -> docs/{page}')
        _drop_dangling_fragments(site_dir, [page for page, _, _ in nav])

        readme = None
        if readme_nb is not None:
            md, files = render_readme(readme_nb, nbs, pages)
            readme = tmp / 'README.md'
            readme.write_text(md, encoding='utf-8')
            for fn, data in sorted(files.items()):
                f = tmp / fn
                f.parent.mkdir(parents=True, exist_ok=True)
                f.write_bytes(data)
            log(f'  {cfg.get("readme_nb", "index.ipynb")} -> README.md' + (f' (+{len(files)} figures)' if files else ''))
        else: log('  no index.ipynb: README.md left as it is')

        # replace out/docs (keeping CNAME) and out/README.md
        out.mkdir(parents=True, exist_ok=True)
        for k in KEEP_IN_DOCS:
            if (docs / k).exists(): shutil.copyfile(docs / k, site_dir / k)
        if docs.exists(): shutil.rmtree(docs)
        shutil.copytree(site_dir, docs)
        if readme is not None: shutil.copyfile(readme, out / 'README.md')
    finally: shutil.rmtree(tmp, ignore_errors=True)
    written = sorted(f for f in docs.rglob('*') if f.is_file()) + ([out / 'README.md'] if readme_nb is not None else [])
    size = sum(f.stat().st_size for f in docs.rglob('*') if f.is_file())
    log(f'wrote {out/"docs"} ({size/1e6:.2f} MB, {len(written)} files)')
    return written


def _same_tree(a: Path, b: Path) -> list[str]:
    "Relative paths that differ between folders `a` and `b`"
    fa = {f.relative_to(a).as_posix() for f in a.rglob('*') if f.is_file()} if a.exists() else set()
    fb = {f.relative_to(b).as_posix() for f in b.rglob('*') if f.is_file()} if b.exists() else set()
    return sorted((fa ^ fb) | {f for f in fa & fb if not filecmp.cmp(a / f, b / f, shallow=False)})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', type=Path, default=ROOT, help='write OUT/docs/ and OUT/README.md (default: the repository)')
    ap.add_argument('--nbs', type=Path, default=None, help='notebook folder (default: nbs_path from settings.ini)')
    ap.add_argument('--n-workers', type=int, default=2, help='parallel nbdev processing workers')
    ap.add_argument('--check', action='store_true', help='build into a temp folder; exit 1 if OUT/docs/ or OUT/README.md differ')
    ap.add_argument('-q', '--quiet', action='store_true')
    a = ap.parse_args(argv)
    if not a.check: return build(a.out, a.nbs, a.n_workers, a.quiet) and 0
    ref = Path(a.out).resolve()  # --check compares a fresh build with what is in OUT (default: the repository)
    with tempfile.TemporaryDirectory() as t:
        t = Path(t)
        if (ref / 'docs' / 'mathjax').exists(): shutil.copytree(ref / 'docs' / 'mathjax', t / 'docs' / 'mathjax')
        for k in KEEP_IN_DOCS:
            if (ref / 'docs' / k).exists(): shutil.copyfile(ref / 'docs' / k, t / 'docs' / k)
        build(t, a.nbs, a.n_workers, a.quiet)
        diff = [f'docs/{d}' for d in _same_tree(ref / 'docs', t / 'docs')]
        if (t / 'README.md').exists() and (not (ref / 'README.md').exists()
                                           or (ref / 'README.md').read_bytes() != (t / 'README.md').read_bytes()):
            diff.append('README.md')
        if diff:
            print('docs out of date (run `make docs`):\n  ' + '\n  '.join(diff[:50]))
            return 1
        print('docs and README.md are up to date')
        return 0


if __name__ == '__main__': sys.exit(main())
