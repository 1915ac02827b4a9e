# The few commands people type. `make run` and `make test` are the README's quick start.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Slither (static analysis of the contract, tests/contracts/test_slither.py) needs web3 < 8, Lotline web3 8:
# it gets a virtual environment of its own, made for `make test`.
SLITHER_VENV := .venv-slither
SLITHER_VERSION := 0.11.6

.PHONY: setup run demo serve test lint bench artifacts clean i18n screenshots

$(BIN)/lotline: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

$(SLITHER_VENV)/bin/slither: Makefile
	$(PYTHON) -m venv $(SLITHER_VENV)
	$(SLITHER_VENV)/bin/pip install --quiet --upgrade pip
	$(SLITHER_VENV)/bin/pip install --quiet 'slither-analyzer==$(SLITHER_VERSION)'
	@touch $@

setup: $(BIN)/lotline node_modules/.package-lock.json

run: setup  ## set up, seed the demo scenario (fresh) and serve it on http://127.0.0.1:8000
	$(BIN)/lotline demo --reset
	$(BIN)/lotline serve

test: setup $(SLITHER_VENV)/bin/slither  ## set up and run the whole test suite
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check supply_chain app tests scripts
	$(BIN)/lint-imports

bench: setup
	$(BIN)/lotline bench --json docs/bench-latest.json

artifacts: setup  ## recompile contracts/ into supply_chain/chain/artifacts/
	$(BIN)/python scripts/compile_contracts.py

clean:
	rm -rf $(VENV) $(SLITHER_VENV) node_modules instance .pytest_cache

i18n: setup  ## extract the translatable texts, update and compile the catalogues (docs/i18n.md)
	$(BIN)/python scripts/i18n.py all

screenshots: setup  ## walk the five journeys in English and Chinese and refresh docs/screenshots/journeys/
	LOTLINE_UPDATE_DOC_SCREENSHOTS=1 $(BIN)/python -m pytest tests/browser/test_journeys_both_languages.py -q
