# Everything a new user needs: `make demo` (render a real MP4 offline) and `make test`.
# Only Python 3.11 and access to the package registry are required; the venv is created on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: venv test lint types unit demo bench dist test-integration test-compat clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints/airflow-3.3.2-py3.11.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints/airflow-3.3.2-py3.11.txt -e ".[emulator,amazon,dev,integration,release,openlineage]"
	@touch $@

lint: $(STAMP)
	$(BIN)/ruff check airflow_provider_magicvideo tests dags bench tooling scripts

types: $(STAMP)
	$(BIN)/mypy

# Two pytest-xdist workers (one per core here); JOBS=0 runs in one process.
JOBS ?= 2
unit: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(JOBS) --dist loadfile --cov --cov-report=term

test: lint types unit

# The real-deployment tier (tests/integration, issue #7): needs PostgreSQL on 127.0.0.1:5432 (trust auth) and
# Redis on 127.0.0.1:6379; starts and stops every Airflow process itself; writes docs/reliability.md.
test-integration: $(STAMP)
	MAGICVIDEO_DEPLOYMENT_TIER=1 $(BIN)/python -m pytest tests/integration -q -p no:cacheprovider -m deployment -rfE

# Version matrix (issue #18): a venv per Airflow line x Python under .compat/ (reused while its constraints
# are unchanged), the version-sensitive tests against a non-editable install; writes docs/compatibility.md.
# Runs every cell, then fails if any cell failed. One cell: make test-compat CELLS=airflow-3.0.6-py3.11
test-compat:
	$(PYTHON) scripts/compat.py run $(CELLS)

# The wheel and the sdist under dist/, from the pinned hatchling (no build isolation: nothing downloaded),
# checked as a package index would render and accept them.
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --no-isolation --outdir dist .
	$(BIN)/python -m twine check --strict dist/*

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

# Benchmarks print tables (not timed tests) and write bench/results/: the campaign in a real deployment
# (about two hours on 2 cores), trigger scale, then the others.
# Run as modules from the repository root, so `bench` and `tooling` (shared with the tests) import from here.
bench: $(STAMP)
	$(BIN)/python -m bench.campaign --paths three_tasks,two_tasks,render_operator,batch_operator \
		--sizes 100,500,1000 --render-seconds 120 --poll-interval 10 --parallelism 16
	$(BIN)/python -m bench.trigger_scale
	$(BIN)/python -m bench.emulator_load
	$(BIN)/python -m bench.delivery

clean:
	rm -rf dist .demo .pytest_cache .mypy_cache .ruff_cache .coverage
