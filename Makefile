# Charter guardrails: the two commands are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
PY := $(CURDIR)/$(VENV)/bin/python
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed

# Local state of an install: ledger, keys, sample data, reports; Airflow under its own home.
export CHARTER_HOME ?= $(CURDIR)/.charter
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
# The configuration the package does not ship: the checkout's policies, suites and reference distributions
# (a deployment sets these, or `[charter] policies_dir` etc. in airflow.cfg; see docs/deployment.md).
export CHARTER_POLICIES_DIR ?= $(CURDIR)/include/policies
export CHARTER_EXPECTATIONS_DIR ?= $(CURDIR)/expectations
export CHARTER_REFERENCE_DIR ?= $(CURDIR)/include/reference
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
# No plugins folder: the governance view's plugin comes from the project's `airflow.plugins` entry point (the
# editable install of `make venv`); pointing the folder at plugins/ as well would load it twice.
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__UNIT_TEST_MODE := False
export AIRFLOW__LOGGING__LOGGING_LEVEL ?= WARNING
# Nothing is fetched at run time: tldextract (used by Presidio) stays offline, codecarbon too.
export TLDEXTRACT_CACHE := $(CURDIR)/.charter/tldextract
export HF_HUB_OFFLINE := 1
export CODECARBON_LOG_LEVEL := error
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help venv install run data test test-deploy lint test-unit test-dags test-e2e schema airflow clean bench-smoke

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): requirements.txt pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip check
	@touch $(STAMP)

venv install: $(STAMP) ## create .venv and install the pinned dependencies and the project

run: $(STAMP) ## the main job: init Airflow (SQLite), ledger, keys, sample data; run the guardrail DAGs; print verdicts
	$(PY) scripts/run_main.py

data: $(STAMP) ## generate the sample datasets and their bad variants
	$(BIN)/charter data generate

schema: $(STAMP) ## regenerate include/policies/schema.json from the policy model
	$(BIN)/charter policy schema --write include/policies/schema.json

lint: $(STAMP) ## ruff (rules and format); mypy, strict on the library (pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy include/charter_guardrails plugins/charter_airflow

test-unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

test-dags: $(STAMP)
	$(BIN)/pytest tests/dags -q

test-e2e: $(STAMP)
	$(BIN)/pytest tests/e2e -q

# Test files are spread over pytest-xdist workers, one more than the cores (a file stays on one worker, so its
# module fixtures are built once); each worker has its own Airflow home, and ledger tests their own database.
# Many tests spend much of their time waiting on Airflow processes (api-server, scheduler, CLI runs), so a
# worker per core leaves the cores part idle: on 2 cores, 533 s with 2 workers, 463 s with 3 (same day).
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))

test: $(STAMP) lint ui-deps ## lint, then every test tier (unit, dags, e2e, ui, deploy, hardening) on every core but the topology tests; prints the 25 slowest
	$(BIN)/pytest tests -q -p no:cacheprovider --durations=25 -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not topology"

# The topology tests take minutes each: a fresh virtual environment installed from the wheel, the Celery cluster on
# Redis and PostgreSQL, a team's onboarding from `charter init` to its first batch on real Airflow processes.
# CI (.ci/run) runs them after make test, so that make test stays quick feedback.
# One worker per core: these keep the cores busy themselves (a Celery cluster, pip installing a wheel).
DEPLOY_WORKERS ?= auto

test-deploy: $(STAMP) ## the topology tests: the wheel in a fresh environment, the native Celery cluster, a team's onboarding
	$(BIN)/pytest tests -q -p no:cacheprovider --durations=10 -n $(DEPLOY_WORKERS) --dist loadfile -m topology

# CI runs the benchmarks at their smoke size after the tests: each must still run end to end, and prints its
# figures (targets are judged at full size only, on a quiet machine).
bench-smoke: $(STAMP) ## every benchmark at its CI size (a few minutes): integrity, personal data, quality, audit chain
	BENCH_SIZE_MIB=16 BENCH_RUNS=1 $(MAKE) --no-print-directory bench-integrity
	$(MAKE) --no-print-directory bench-pii-smoke bench-quality-smoke bench-audit-smoke bench-sources-smoke bench-objects-smoke

airflow: $(STAMP) ## start the Airflow UI (airflow standalone) with the project's settings
	$(BIN)/airflow standalone

clean: ## remove local state (keeps .venv)
	rm -rf .charter .airflow artifacts

-include mk/*.mk
