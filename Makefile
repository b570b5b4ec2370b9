# PMFS — the two commands of the README are `make demo` and `make test`.
# Both build .venv from nothing: torch 2.13.0 first (the CPU wheel where that is what pip finds),
# then the package with every dependency pinned by constraints.txt.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TORCH_VERSION := 2.13.0
PYTEST_ARGS ?=

.PHONY: venv test test-slow test-all check lint format typecheck demo constraints clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

## test: lint, format check, type check, then the fast test suite (pytest exit 5, no tests, fails)
test: check
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## test-slow: the long tests (training to a target, large benchmarks)
test-slow: venv
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

test-all: check
	$(BIN)/python -m pytest -m "not gpu" $(PYTEST_ARGS)

check: lint typecheck

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: venv
	$(BIN)/mypy

## demo: the main job on the built-in synthetic data
demo: venv
	$(BIN)/python -m pmfs demo --out outputs

## constraints: re-pin from the current .venv (after changing pyproject.toml's ranges) and
## regenerate environment.yml from it
constraints: venv
	{ head -n 3 constraints.txt; $(BIN)/python -m pip freeze --exclude-editable | sed 's/+cpu//'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	$(BIN)/python scripts/sync_environment.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
