# Two commands do everything on a fresh machine:  `make demo`  and  `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export FIFTYONE_DO_NOT_TRACK ?= true
export FIFTYONE_DATABASE_VALIDATION ?= false
export HF_HUB_OFFLINE ?= 1

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -U pip
	$(VENV)/bin/pip install -q -e '.[all,dev]'
	$(PY) -m rorem_data.doctor --fix
	touch $(STAMP)

.PHONY: setup demo test test-fast bench
setup: $(STAMP)

demo: setup
	$(VENV)/bin/rorem-data demo demo-project

test: setup
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q

test-fast: setup
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q -m "not slow and not browser"

bench: setup
	$(PY) benchmarks/ingest.py
	$(PY) benchmarks/generate.py
	$(PY) benchmarks/finetune.py
	$(PY) benchmarks/featurize.py
	$(PY) benchmarks/score.py
	$(PY) benchmarks/bench_select.py
	$(PY) benchmarks/active_inference.py
	$(PY) benchmarks/active_learning.py
	$(PY) benchmarks/paper_scale.py
	$(PY) benchmarks/real_size.py
