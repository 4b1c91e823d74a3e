# Two commands on a fresh machine: `make demo` and `make test`. Everything else is optional.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

# Local state lives in git-ignored folders of the repo; override any of these from the environment.
export DAGSTER_HOME ?= $(CURDIR)/.dagster
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/.mlflow/mlflow.db
export TOUCHPOINT_CHURN_DATA ?= $(CURDIR)/data
# MLflow's download bars would fill the run log each time it checks the logged model's input example
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR ?= false
# local (default), production or kubernetes: picks the Dagster instance file here (dagster.yaml, or
# dagster.<env>.yaml) and the resources in pipelines/config.py; docs/deployment.md
export TOUCHPOINT_CHURN_ENV ?= local
# Run settings without code: `make run HORIZON_DAYS=180 AS_OF=1998-01-01` (any ChurnSettings field can
# also go in <data root>/touchpoint_churn.toml; these variables win over the file)
ifneq ($(HORIZON_DAYS),)
export TOUCHPOINT_CHURN_HORIZON_DAYS := $(HORIZON_DAYS)
endif
ifneq ($(AS_OF),)
export TOUCHPOINT_CHURN_AS_OF := $(AS_OF)
endif
ifneq ($(TRAIN_CUTOFFS),)
export TOUCHPOINT_CHURN_TRAIN_CUTOFFS := $(TRAIN_CUTOFFS)
endif
INSTANCE_YAML := $(if $(filter production kubernetes,$(TOUCHPOINT_CHURN_ENV)),dagster.$(TOUCHPOINT_CHURN_ENV).yaml,dagster.yaml)

.PHONY: help setup instance chromium postgres demo run real forget lint format test production-test heavy bench truth voice-methods dev notebook mlflow lock clean

# the targets with a `## description` on their line, in the order they appear here
help:  ## list the targets and what each does
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
	  sed -E 's/^([a-zA-Z_-]+):.*## (.*)$$/\1\t\2/' | \
	  awk -F '\t' '{ printf "  make %-10s %s\n", $$1, $$2 }'

# uv installs the locked stack in ~20 s where pip takes ~110 s; it is itself one pip install away.
$(VENV)/.installed: pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $@

# copied on every call, so switching TOUCHPOINT_CHURN_ENV switches the instance too
instance:
	@mkdir -p $(DAGSTER_HOME)
	@cp $(INSTANCE_YAML) $(DAGSTER_HOME)/dagster.yaml

setup: $(VENV)/.installed instance  ## install the locked stack into .venv and the Dagster instance file

# The report test renders report.html in headless Chromium (Debian's package); install it when missing.
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { echo "installing chromium for the report test"; (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	    echo "could not install chromium (needs root and Debian's apt); the report test will be skipped"; }

# The production test runs Debian's PostgreSQL (its programs in /usr/lib/postgresql/<version>/bin,
# not on PATH); install it when missing.
postgres:
	@command -v postgres >/dev/null || ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || \
	  { echo "installing postgresql for the production test"; (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) || \
	    echo "could not install postgresql (needs root and Debian's apt); the production test will be skipped"; }

# VERBOSE=1: Dagster's full errors and stack traces in the log (by default a failure is one line, explained at the end)
VERBOSE ?=
CLI := $(BIN)/python -m pipelines.cli$(if $(VERBOSE), --verbose)

# CUSTOMERS= (also the benchmark's) sizes the demo world: `make demo CUSTOMERS=5000`
CUSTOMERS ?=
demo: setup  ## generate the demo world (CUSTOMERS= to size it) and run the whole pipeline through Dagster
	$(CLI) demo$(if $(CUSTOMERS), --customers $(CUSTOMERS))

run: setup  ## run the whole pipeline on what is in $(TOUCHPOINT_CHURN_DATA)/landing
	$(CLI) run

# what CI enforces: the format, the lint rules and the types (all configured in pyproject.toml)
lint: $(VENV)/.installed  ## ruff format --check, ruff check and pyright, as CI runs them
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/pyright

format: $(VENV)/.installed  ## reformat and apply the safe lint fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# PYTEST_ARGS='-m "not e2e"' runs the quick tests only. Two pytest-xdist workers: much of a test's
# time is one-threaded (Dagster's runs, spawned processes, kernels), so two at once take ~2/3 of the
# time on CI's two cores; the modules on the session's pipeline run share one worker (tests/conftest.py).
PYTEST_ARGS ?=
TEST_WORKERS ?= 2
test: setup chromium postgres lint  ## the lint, then every test (PYTEST_ARGS='-m "not e2e"': the quick ones)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

CUSTOMER ?=
forget: setup  ## make forget CUSTOMER=<id>: erase one customer everywhere, then run again
	@test -n "$(CUSTOMER)" || { echo "usage: make forget CUSTOMER=<the customer's id>"; exit 2; }
	$(CLI) forget --customer "$(CUSTOMER)"

production-test: setup postgres  ## the production test alone (make test runs it too): PostgreSQL, an MLflow server, dagster-daemon (~2 min)
	$(BIN)/python -m pytest -m production -n 0

heavy: setup  ## the tests too long for CI: make run killed at several points, then recovering
	$(BIN)/python -m pytest -m heavy

EVENTS ?=
bench: setup  ## make run's Dagster assets on a simulated world of EVENTS events (default 10M) or CUSTOMERS customers (both: the activity follows), then a daily run: seconds and peak memory per step
	$(BIN)/python -m benchmarks.bench $(if $(EVENTS),--events $(EVENTS)) $(if $(CUSTOMERS),--customers $(CUSTOMERS))

truth: setup  ## the pipeline on 12 worlds with rules drawn from their seeds, scored against each one's future and oracle (~20 min)
	$(BIN)/python -m benchmarks.truth --readme

voice-methods: setup  ## the comment-theme method against counting word pairs, on a simulated world and the Olist reviews
	$(BIN)/python -m benchmarks.voice_methods

# A public dataset mapped into its own data root (data/real/<dataset>), Dagster instance and MLflow
# store, then the whole pipeline, scored against what really happened after UNTIL
DATASET ?= cdnow
DATASETS ?= $(CURDIR)/../shared/datasets
UNTIL ?=
real: setup  ## make real DATASET=cdnow|olist [UNTIL=1998-01-01]: a real dataset end to end
	@mkdir -p $(CURDIR)/.dagster/real-$(DATASET) && cp $(INSTANCE_YAML) $(CURDIR)/.dagster/real-$(DATASET)/dagster.yaml
	DAGSTER_HOME=$(CURDIR)/.dagster/real-$(DATASET) TOUCHPOINT_CHURN_DATA=$(CURDIR)/data/real/$(DATASET) \
	  MLFLOW_TRACKING_URI=sqlite:///$(CURDIR)/.mlflow/real-$(DATASET).db \
	  $(CLI) real --dataset $(DATASET) --datasets $(DATASETS)$(if $(UNTIL), --until $(UNTIL))

dev: setup  ## the Dagster UI on http://127.0.0.1:3000, with the daemon that runs schedules and the landing sensor
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000

# JupyterLab is the `notebook` extra, installed here only: the notebook test needs just nbclient and
# ipykernel, which the lock has, so `make test` stays lean
notebook: setup  ## JupyterLab on http://127.0.0.1:8888 over notebooks/, in the project's environment
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r pyproject.toml --extra notebook
	$(BIN)/jupyter lab --ip 127.0.0.1 --port 8888 --no-browser --notebook-dir $(CURDIR)/notebooks

mlflow: setup  ## the MLflow UI on http://127.0.0.1:5000
	@$(BIN)/python -c "from models.tracking import LOCAL_UI, Tracking, ui_path; \
	  print(f'training runs: {LOCAL_UI}/{ui_path(Tracking(\"$(MLFLOW_TRACKING_URI)\"))}')"
	$(BIN)/mlflow ui --backend-store-uri "$(MLFLOW_TRACKING_URI)" --host 127.0.0.1 --port 5000

# The lock is one flat file that setup syncs for everyone: the dev extra, which holds production's
# dagster-postgres and dagster-k8s too (the production test runs them).
lock: $(VENV)/.installed  ## re-resolve requirements.lock after changing dependencies in pyproject.toml
	$(BIN)/uv pip compile --quiet pyproject.toml --extra dev -o requirements.lock

clean:  ## delete .venv and the local Dagster and MLflow state
	rm -rf $(VENV) .dagster .mlflow .pytest_cache
