# airflow-provider-bria: everything a newcomer needs is `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export UV_COMPILE_BYTECODE := 1
export UV_LINK_MODE := copy
PYTEST_ARGS ?=

# Supported Airflow lines: one lock each (requirements/airflow-<line>.lock, from requirements/airflow-<line>.in).
# The newest line's lock is the development venv (.venv); the older ones are the compatibility matrix.
MAIN_LINE := 3.3
COMPAT_LINES ?= 3.0 3.1 3.2
LOCK := requirements/airflow-$(MAIN_LINE).lock
COMPAT_DIR := .venv-compat
COMPAT_RESULTS := tests/artifacts/compat
# Older lines are resolved with the packages that existed shortly after that Airflow release (what its users
# run; "newest everything" breaks e.g. universal-pathlib on 3.0). The newest line is resolved as of today.
EXCLUDE_NEWER_3.0 := 2025-09-01
EXCLUDE_NEWER_3.1 := 2026-03-14
EXCLUDE_NEWER_3.2 := 2026-06-01
# Test oracles newer than an old line's cut-off (Bria's SDK was first published after it): taken as of today.
ORACLES_NEWER := --exclude-newer-package bria-client=2026-12-01
# Tests that need the newest line's services (system tests) or timing (benchmarks, the perf gate) are not in the matrix.
# The demo's signal handling (a killed `make demo` stops its emulator: process groups, no Airflow API) runs once too.
# Tests of the emulator server itself, of the spec extract and of Bria's SDK against the emulator import no
# Airflow: they run once, on the newest line, not again per line. `--dist worksteal`: the long whole-DAG tests
# would otherwise leave one worker idle while the other still has a queue behind them.
COMPAT_PYTEST := -p no:cacheprovider -p no:randomly -q -n 2 --dist worksteal --ignore=tests/emulator \
	--ignore=tests/perf_gate \
	--ignore=tests/contract/test_emulator_fuzz.py --ignore=tests/contract/test_emulator_workflow.py \
	--ignore=tests/contract/test_sdk_emulator.py --ignore=tests/contract/test_spec_extract.py \
	--deselect tests/dags/test_demo.py::test_killing_the_demo_during_a_dag_run_stops_the_emulator
# The real-triggerer deferral test run on the oldest line (Airflow's own triggerer process, no dag.test()).
COMPAT_TRIGGERER_TEST := tests/triggerer

.PHONY: venv test unit-test lint typecheck demo airflow dev celery bench system-test celery-test docs lock clean \
	test-compat \
	compat-venvs compat-report dist

venv: $(STAMP)

$(STAMP): $(LOCK) pyproject.toml
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	@test -x $(VPY) || $(PYTHON) -m uv venv --quiet --python $(PYTHON) $(VENV)
	$(PYTHON) -m uv pip sync --quiet --python $(VPY) $(LOCK)
	$(PYTHON) -m uv pip install --quiet --python $(VPY) --no-deps -e .
	@touch $(STAMP)

# The whole suite: lint, unit and emulator-backed tests, then the system tests (real Airflow services,
# Chromium from Debian's packages), then the Celery deployment tests (PostgreSQL and Redis from Debian's
# packages, S3 through moto, two Celery workers). `make unit-test` runs everything but the last two.
test: unit-test system-test celery-test

# Two xdist workers (the suite is xdist-safe: the matrix runs it the same way); worksteal keeps both busy behind
# the long whole-DAG tests.
UNIT_PYTEST := -n 2 --dist worksteal

unit-test: venv lint
	@mkdir -p $(COMPAT_RESULTS)
	$(VPY) -m pytest $(UNIT_PYTEST) --junitxml=$(COMPAT_RESULTS)/$(MAIN_LINE).xml $(PYTEST_ARGS)

lint: venv typecheck
	$(VENV)/bin/ruff check .

typecheck: venv
	$(VENV)/bin/mypy

demo: venv
	$(VPY) -m airflow_provider_bria.demo

airflow: venv
	$(VPY) -m airflow_provider_bria.demo --serve

# Your own DAGs: `make dev DAGS=~/my-bria-dags` serves that folder with the emulator (docs/your-first-dag.md).
DAGS ?= my_dags
dev: venv
	@mkdir -p "$(DAGS)"
	$(VPY) -m airflow_provider_bria.demo --serve --dags "$(DAGS)" --home .airflow/dev --data .demo/dev

# A distributed Airflow to click through: CeleryExecutor, PostgreSQL, Redis, S3 (moto), two workers.
celery: venv
	$(VPY) -m airflow_provider_bria.devstack

bench: venv
	$(VPY) -m pytest tests/benchmarks -p no:cacheprovider -o addopts="" -s $(PYTEST_ARGS)

system-test: venv
	$(VPY) -m pytest tests/system -p no:cacheprovider -o addopts="" $(PYTEST_ARGS)

celery-test: venv
	$(VPY) -m pytest tests/celery -p no:cacheprovider -o addopts="" $(PYTEST_ARGS)

docs: venv
	$(VENV)/bin/mkdocs build --strict --site-dir .site

# One venv per older Airflow line, from its lock, with the provider installed editable.
$(COMPAT_DIR)/%/.installed: requirements/airflow-%.lock pyproject.toml
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	@test -x $(COMPAT_DIR)/$*/bin/python || $(PYTHON) -m uv venv --quiet --python $(PYTHON) $(COMPAT_DIR)/$*
	$(PYTHON) -m uv pip sync --quiet --python $(COMPAT_DIR)/$*/bin/python $<
	$(PYTHON) -m uv pip install --quiet --python $(COMPAT_DIR)/$*/bin/python --no-deps -e .
	@touch $@

compat-venvs: $(foreach line,$(COMPAT_LINES),$(COMPAT_DIR)/$(line)/.installed)

# The unit, emulator-backed and DAG suites on every older line (junit per line), one real-triggerer deferral
# and the clean-venv wheel install (plain pip, needs the package index) on the oldest, then
# docs/compatibility.md from the results (this line's from `make unit-test`, if present).
# Every line runs even when one fails; the target fails at the end if any did.
test-compat: venv compat-venvs
	@mkdir -p $(COMPAT_RESULTS); status=0; \
	for line in $(COMPAT_LINES); do \
		echo "== Airflow $$line: unit, emulator and DAG suites"; started=$$SECONDS; \
		$(COMPAT_DIR)/$$line/bin/python -m pytest $(COMPAT_PYTEST) --junitxml=$(COMPAT_RESULTS)/$$line.xml \
			$(PYTEST_ARGS) || status=1; \
		echo "== Airflow $$line: $$((SECONDS - started)) s"; \
	done; \
	oldest=$(firstword $(COMPAT_LINES)); \
	echo "== Airflow $$oldest: real triggerer deferral"; \
	$(COMPAT_DIR)/$$oldest/bin/python -m pytest -p no:cacheprovider -o addopts="" -q \
		--junitxml=$(COMPAT_RESULTS)/$$oldest-triggerer.xml $(COMPAT_TRIGGERER_TEST) || status=1; \
	echo "== Airflow $$oldest: the wheel installed with plain pip into a clean venv"; \
	$(VPY) -m pytest -p no:cacheprovider -o addopts="" -q --junitxml=$(COMPAT_RESULTS)/$$oldest-wheel.xml \
		tests/packaging || status=1; \
	$(MAKE) --no-print-directory compat-report || status=1; \
	exit $$status

compat-report: venv
	$(VPY) tests/compat/matrix_report.py $(COMPAT_RESULTS) docs/compatibility.md

# sdist + wheel in dist/, checked with twine (the wheel must hold the package and py.typed only).
dist: venv
	rm -rf dist build
	$(VPY) -m build --sdist --wheel --outdir dist .
	$(VENV)/bin/twine check --strict dist/*

# Re-pin every dependency of every supported line (needs the package registry).
lock:
	for line in $(COMPAT_LINES) $(MAIN_LINE); do \
		case $$line in 3.0) exclude="$(EXCLUDE_NEWER_3.0)";; 3.1) exclude="$(EXCLUDE_NEWER_3.1)";; \
			3.2) exclude="$(EXCLUDE_NEWER_3.2)";; *) exclude="";; esac; \
		$(PYTHON) -m uv pip compile pyproject.toml --extra emulator --extra dev --python-version 3.11 \
			--constraint requirements/airflow-$$line.in $${exclude:+--exclude-newer $$exclude $(ORACLES_NEWER)} \
			--quiet -o requirements/airflow-$$line.lock || exit 1; \
	done

clean:
	rm -rf $(VENV) $(COMPAT_DIR) .airflow .site .pytest_cache dist build
