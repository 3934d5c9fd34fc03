# The two commands a newcomer needs:
#   make demo   set up .venv and run the main job on the offline default
#   make test   set up .venv and run every check CI runs
.PHONY: setup demo test docs

setup:
	@bash tools/setup_venv.sh

demo: setup
	.venv/bin/nbdev_test --do_print --path nbs/00_math.ipynb  # until training lands: the math notebook as the demo

test: setup
	@bash tools/check.sh

docs: setup
	.venv/bin/python tools/build_docs.py
