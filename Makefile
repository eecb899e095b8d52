# identlab: `make sweep` (the main job) and `make test` work from a fresh clone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export HYPOTHESIS_PROFILE ?= ci
export OMP_NUM_THREADS ?= 2

.PHONY: install test test-all lint docs sweep reproduce reproduce-spot bench teach clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip >/dev/null
	$(PY) -m pip install -e ".[dev,slurm,pixels,docs,track,completion]"
	sh .ci/gl-deps
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)            ## the test suite without the slow end-to-end runs
	$(PY) -m pytest -q -m "not slow"

test-all: $(STAMP)        ## everything, slow end-to-end runs included
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check identlab tests

docs: $(STAMP)            ## the documentation site -> site/ (strict: a broken link fails)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site

sweep: $(STAMP)           ## the default phase-diagram sweeps -> reports/
	$(PY) -m identlab sweep-all --out runs/sweeps --reports reports

reproduce: $(STAMP)       ## the paper's experiments side by side -> reports/paper/
	$(PY) -m identlab reproduce --out runs/paper --reports reports

reproduce-spot: $(STAMP)  ## paper-size spot checks, one process per core -> reports/paper/
	OMP_NUM_THREADS=1 $(PY) -m identlab reproduce --preset spot --out runs/paper-spot \
	  --reports reports --workers $$(nproc)

teach: $(STAMP)           ## the teaching walkthrough -> reports/teaching/
	$(PY) -m identlab teach --out reports/teaching

bench: $(STAMP)           ## speed benchmark -> reports/bench.md
	$(PY) -m identlab bench --out reports/bench.md

clean:
	rm -rf $(VENV) runs site .pytest_cache .hypothesis
