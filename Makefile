# airflow-provider-bria: everything a newcomer needs is `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export UV_COMPILE_BYTECODE := 1
export UV_LINK_MODE := copy
PYTEST_ARGS ?=

.PHONY: venv test unit-test lint demo airflow dev celery bench system-test celery-test docs lock clean

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	@test -x $(VPY) || $(PYTHON) -m uv venv --quiet --python $(PYTHON) $(VENV)
	$(PYTHON) -m uv pip sync --quiet --python $(VPY) requirements.lock
	$(PYTHON) -m uv pip install --quiet --python $(VPY) --no-deps -e .
	@touch $(STAMP)

# The whole suite: lint, unit and emulator-backed tests, then the system tests (real Airflow services,
# Chromium from Debian's packages), then the Celery deployment tests (PostgreSQL and Redis from Debian's
# packages, S3 through moto, two Celery workers). `make unit-test` runs everything but the last two.
test: unit-test system-test celery-test

unit-test: venv
	$(VENV)/bin/ruff check .
	$(VPY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .

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

# Re-pin every dependency (needs the package registry).
lock:
	$(PYTHON) -m uv pip compile pyproject.toml --extra emulator --extra dev --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) .airflow .site .pytest_cache
