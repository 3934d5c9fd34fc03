# The two commands a newcomer needs:
#   make demo   set up .venv and run the main job on the offline default
#   make test   set up .venv and run every check CI runs
.PHONY: setup demo test docs

# the demo's data: real Fashion-MNIST when Debian's dataset-fashion-mnist is installed, else the bundled digits (offline)
DEMO_DATA = $$([ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && echo fashion_mnist || echo digits)

setup:
	@bash tools/setup_venv.sh

demo: setup
	@bash tools/get_fashion_mnist.sh
	rm -rf runs/demo  # the demo's own folder: each `make demo` starts afresh
	OMP_NUM_THREADS=1 .venv/bin/scae_train --dataset $(DEMO_DATA) --config mnist_cpu --steps 800 --out runs/demo  # the CPU recipe, about 3.5 min on one thread
	OMP_NUM_THREADS=1 .venv/bin/scae_eval --checkpoint runs/demo --n_max 400 --no_progress  # LIN-MATCH / LIN-PRED + figures in runs/demo

test: setup
	@bash tools/check.sh

docs: setup
	.venv/bin/python tools/build_docs.py
