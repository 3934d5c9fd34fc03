#!/usr/bin/env bash
# Create (or reuse) .venv with the package installed editable plus its dev tools.
# Reuse is safe: the venv is rebuilt when settings.ini or setup.py change or when it cannot import what it needs.
# Override the torch pair with TORCH_SPEC, e.g. TORCH_SPEC="torch==2.9.1 torchvision==0.24.1" (aarch64).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp_want=$(cat settings.ini setup.py | sha256sum | cut -c1-16)
if [ -x .venv/bin/python ] && [ "$(cat .venv/.stamp 2>/dev/null)" = "$stamp_want" ] \
   && .venv/bin/python -c "import torch, torchvision, nbdev, execnb, sklearn, scipy, tqdm, matplotlib, pytest, torch_scae_nb" 2>/dev/null; then
  echo "setup: reusing .venv"
  exit 0
fi
"$PY" -c 'import sys; assert sys.version_info >= (3, 10), "Python >= 3.10 needed, found " + sys.version' 
echo "setup: creating .venv (first time: torch is large, this takes a few minutes)"
[ -d .venv ] && rm -rf .venv
"$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v 'is ignored' || true
# On these machines pip is capped at the torch/torchvision pair that lies on disk; elsewhere pip picks a matching pair.
quiet() { grep -v -e 'is ignored: it is neither a file nor a directory' -e '^ *$' || true; }  # this machine's pip index noise
.venv/bin/python -m pip install -q ${TORCH_SPEC:-torch torchvision} 2>&1 | quiet
.venv/bin/python -m pip install -q -e '.[dev]' 2>&1 | quiet
echo "$stamp_want" > .venv/.stamp
echo "setup: done ($(.venv/bin/python -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__)'))"
