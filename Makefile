PYTHON ?= python3

.PHONY: install test bench bench-scale lint model eval configs

install:  ## the package and its test, benchmark, plot and serve extras
	$(PYTHON) -m pip install -e ".[test,bench,plot,serve]"

test:
	$(PYTHON) -m pytest -q

bench: runs/en256/best.npz
	$(PYTHON) bench/train_step.py
	$(PYTHON) bench/complete.py --h256 runs/en256/best.npz
	$(PYTHON) bench/serve.py

bench-scale:  ## word lists of 10k to 1M entries beside marisa-trie, into bench/results/scale.md (not part of bench; long)
	$(PYTHON) bench/scale.py

runs/en256/best.npz:  ## an H = 256 English model for the typo latency benchmark (~2 minutes)
	rnnac train configs/en.yaml --set model.hidden_size=256 --set train.max_steps=10000 --set train.eval_every=2500 \
		--set output.dir=runs/en256 --force --quiet

lint:  ## needs the dev extra: pip install -e ".[dev]"
	$(PYTHON) -m ruff check rnnac tests bench

configs:  ## regenerate the field comments of configs/default.yaml from rnnac/training/config.py
	$(PYTHON) -c "from rnnac.training.config import rewrite_config_text as r; t = r('configs/default.yaml'); open('configs/default.yaml', 'w').write(t)"

model:  ## retrain the bundled model from configs/en.yaml (up to 30 minutes on 2 cores)
	rnnac train configs/en.yaml --force --quiet
	$(PYTHON) -c "from rnnac.storage.checkpoint import export_for_inference as e; e('runs/en/best.npz', 'rnnac/models/en.npz')"

runs/names/best.npz:
	rnnac train configs/names.yaml --force --quiet

runs/identifiers/best.npz:
	rnnac train configs/identifiers.yaml --force --quiet

eval: runs/names/best.npz runs/identifiers/best.npz  ## the README's evaluation tables, into bench/results/
	mkdir -p bench/results
	rnnac evaluate data/words.tsv --weighted > bench/results/eval_words_weighted.md
	rnnac evaluate data/words.tsv > bench/results/eval_words.md
	rnnac evaluate data/words.tsv --weighted --typos 0.3 > bench/results/eval_typos.md
	rnnac evaluate data/names.txt -c runs/names/best.npz > bench/results/eval_names.md
	rnnac evaluate data/identifiers.txt -c runs/identifiers/best.npz > bench/results/eval_identifiers.md
