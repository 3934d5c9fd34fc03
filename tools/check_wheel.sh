#!/usr/bin/env bash
# Build the wheel, install it into a fresh venv and import every module from there (not from the source tree).
# The heavy dependencies (torch, ...) are borrowed from .venv through a .pth file so this takes seconds, but the
# package itself must come from the wheel: a module missing from the wheel fails here.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
.venv/bin/python -m pip wheel -q --no-deps --no-build-isolation -w "$tmp/dist" . >/dev/null
python3 -m venv "$tmp/venv"
site=$("$tmp/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
deps=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$tmp/venv/bin/python" -m pip install -q --no-deps "$tmp"/dist/*.whl
echo "$deps" > "$site/zz_borrowed_deps.pth"
cd "$tmp"   # away from the source tree
"$tmp/venv/bin/python" - <<'PY'
import importlib, pkgutil, sys, pathlib
import torch_scae_nb
where = pathlib.Path(torch_scae_nb.__file__).resolve()
assert str(where).startswith(sys.prefix), f'torch_scae_nb imported from {where}, not from the wheel'
mods = sorted(m.name for m in pkgutil.iter_modules(torch_scae_nb.__path__))
for m in mods: importlib.import_module(f'torch_scae_nb.{m}')
print(f'wheel ok: torch_scae_nb {torch_scae_nb.__version__}, modules: {", ".join(mods)}')
PY
for s in $(ls "$tmp/venv/bin" | grep '^scae_' || true); do "$tmp/venv/bin/$s" --help >/dev/null && echo "console script ok: $s"; done
