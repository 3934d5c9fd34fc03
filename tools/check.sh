#!/usr/bin/env bash
# Every check CI runs, in order. Run it through `make test` (which sets up .venv first).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" MPLBACKEND=Agg OMP_NUM_THREADS=1  # 2 notebooks at once on 2 cores: one thread each
step() { printf '\n== %s\n' "$*"; }
dirty() { [ -n "$(git status --porcelain -- "$@")" ]; }

step "package in sync with the notebooks (nbdev_export leaves no diff)"
before=$(git status --porcelain -- torch_scae_nb | sha256sum)
nbdev_export
if [ "$before" != "$(git status --porcelain -- torch_scae_nb | sha256sum)" ] || dirty torch_scae_nb; then
  git status --short -- torch_scae_nb; echo "FAIL: run nbdev_export and commit torch_scae_nb/"; exit 1; fi

step "notebooks clean (nbdev_clean leaves no diff)"
nbdev_clean
if dirty nbs; then git status --short -- nbs; echo "FAIL: run nbdev_clean and commit nbs/"; exit 1; fi

step "notebooks as tests (nbdev_test, 2 workers)"
nbdev_test --n_workers 2

step "pytest tests/"
set +e; if [ -d tests ]; then python -m pytest -q tests; rc=$?; else rc=5; fi; set -e
if [ $rc -ne 0 ] && [ $rc -ne 5 ]; then exit $rc; fi   # 5 = no tests collected
[ $rc -eq 5 ] && echo "(no tests collected)"

step "docs and README rebuild with no diff"
if [ -f tools/build_docs.py ]; then
  python tools/build_docs.py
  if dirty docs README.md; then git status --short -- docs README.md; echo "FAIL: run make docs and commit docs/ README.md"; exit 1; fi
fi

step "the built wheel installs into a clean venv and every module imports"
bash tools/check_wheel.sh

printf '\nall checks passed\n'
