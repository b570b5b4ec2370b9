# PMFS — the two commands of the README are `make demo` and `make test`.
# Both build .venv from nothing: torch 2.13.0 first (the CPU wheel where that is what pip finds),
# then the package with every dependency pinned by constraints.txt.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TORCH_VERSION := 2.13.0
PYTEST_ARGS ?=

.PHONY: venv browser test test-slow test-all check lint format typecheck demo constraints clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

## browser: Debian's Chromium + chromedriver, for the web page's browser test (tests/test_app.py);
## as root with apt-get they are installed, otherwise a note says how (the test then skips)
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's chromium + chromium-driver (the browser test's)"; \
	  apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; }; \
	else echo "note: no Chromium and no root apt-get: tests/test_app.py will skip" \
	  "(sudo apt-get install chromium chromium-driver)"; fi

## test: lint, format check, type check, then the fast test suite (pytest exit 5, no tests, fails)
test: check browser
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
