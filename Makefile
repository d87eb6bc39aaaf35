PYTHON ?= python3

.PHONY: install test bench lint model eval

install:  ## the package and its test and benchmark extras
	$(PYTHON) -m pip install -e ".[test,bench]"

test:
	$(PYTHON) -m pytest -q

bench:
	$(PYTHON) bench/train_step.py
	$(PYTHON) bench/complete.py

lint:
	$(PYTHON) -m ruff check rnnac tests bench || echo "ruff not installed: pip install ruff"

model:  ## retrain the bundled model from configs/default.yaml
	rnnac train configs/default.yaml --quiet
	cp runs/default/best.npz rnnac/models/en.npz

eval:
	$(PYTHON) bench/evaluate.py
