# Each target is self-contained on a fresh machine: it creates .venv if missing, installs the
# project (editable) with the pinned constraints, then runs.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install test demo lint clean-runs

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c 'import sys; assert sys.version_info >= (3, 11), "gan-bench needs Python >= 3.11"'
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# ruff (style, imports, bugbear) on the package and tests; mypy on the package
lint: $(STAMP)
	$(VENV)/bin/ruff check benchmark tests
	$(VENV)/bin/mypy

demo: $(STAMP)
	$(VENV)/bin/gan-bench run suites/quickstart.yaml

clean-runs:
	rm -rf runs mlruns mlflow.db optuna.db
