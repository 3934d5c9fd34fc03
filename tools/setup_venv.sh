#!/usr/bin/env bash
# Create (or reuse) .venv with the package installed editable plus its dev tools.
# Reuse is safe: torch is installed once; the package and its dev tools are reinstalled when settings.ini or setup.py
# change or when something fails to import. Override the torch pair with TORCH_SPEC,
# e.g. TORCH_SPEC="torch==2.9.1 torchvision==0.24.1" (aarch64).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
quiet() { grep -v -e 'is ignored: it is neither a file nor a directory' -e '^ *$' || true; }  # this machine's pip index noise
if ! { [ -x .venv/bin/python ] && .venv/bin/python -c "import torch, torchvision" 2>/dev/null; }; then
  "$PY" -c 'import sys; assert sys.version_info >= (3, 10), "Python >= 3.10 needed, found " + sys.version'
  echo "setup: creating .venv (first time: torch is large, this takes a few minutes)"
  rm -rf .venv
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | quiet
  # On these machines pip is capped at the torch/torchvision pair that lies on disk; elsewhere pip picks a matching pair.
  .venv/bin/python -m pip install -q ${TORCH_SPEC:-torch torchvision} 2>&1 | quiet
fi
stamp_want=$(cat settings.ini setup.py | sha256sum | cut -c1-16)
if [ "$(cat .venv/.stamp 2>/dev/null)" != "$stamp_want" ] \
   || ! .venv/bin/python -c "import nbdev, execnb, sklearn, scipy, tqdm, matplotlib, pytest, torch_scae_nb" 2>/dev/null; then
  echo "setup: installing torch_scae_nb (editable) and its dev tools into .venv"
  .venv/bin/python -m pip install -q -e '.[dev]' 2>&1 | quiet
  echo "$stamp_want" > .venv/.stamp
else
  echo "setup: reusing .venv"
fi
echo "setup: $(.venv/bin/python -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__)')"
