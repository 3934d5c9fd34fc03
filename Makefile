# The two commands a newcomer needs:
#   make demo   set up .venv and run the main job on the offline default
#   make test   set up .venv and run every check CI runs
.PHONY: setup demo test docs

setup:
	@bash tools/setup_venv.sh

demo: setup
	rm -rf runs/demo  # the demo's own folder: each `make demo` starts afresh
	OMP_NUM_THREADS=1 .venv/bin/scae_train --dataset digits --config mnist_cpu --steps 800 --out runs/demo  # the CPU recipe (issue 11), 2-3 min on 2 cores
	OMP_NUM_THREADS=1 .venv/bin/scae_eval --checkpoint runs/demo --n_max 400 --no_progress  # LIN-MATCH / LIN-PRED + figures in runs/demo

test: setup
	@bash tools/check.sh

docs: setup
	.venv/bin/python tools/build_docs.py
