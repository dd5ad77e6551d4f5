# Single entry point. `make demo` and `make test` each set everything up on a fresh machine
# (Python >= 3.10 with pip; torch is installed into the project's virtual environment).
PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch 2.13.0; on a GPU machine use e.g. `make test TORCH=torch==2.14.1`.
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: install demo test test-all bench clean browser

$(BIN)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

install: $(BIN)/.installed

## Main job: rank every model on the bundled German Credit data by 5-fold CV, with an
## ensemble, an HTML report and the refitted best model; tracked in MLflow (./mlflow.db).
demo: $(BIN)/.installed
	$(BIN)/tabular-suite compare credit_g --cv 5 --time-limit 300 \
		--report runs/credit_g_report.html --out runs/credit_g_best.tsm --force --track

## The report's test renders it in headless Chromium: Debian's package, installed when missing
## (or point CHROMIUM at another Chrome/Chromium binary).
CHROMIUM ?= chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v $(CHROMIUM) >/dev/null || { command -v apt-get >/dev/null && $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; } || \
		{ echo "The report test needs Chromium: install it, or set CHROMIUM=/path/to/chrome."; exit 1; }

## Default test suite: house style (ruff lint + format check), then pytest in two worker processes
## (one torch thread each; a test file stays in one worker; long tests excluded).
test: $(BIN)/.installed browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	TABULAR_SUITE_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -q -n 2 --dist loadfile

## Everything, including tests marked slow.
test-all: $(BIN)/.installed browser
	TABULAR_SUITE_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -q -m "slow or not slow"

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/backbones.py && $(BIN)/python benchmarks/backbones.py --write
	$(BIN)/python benchmarks/compare.py && $(BIN)/python benchmarks/compare.py --write

clean:
	rm -rf $(VENV) runs *.egg-info
