# The few commands people type. `make run` and `make test` are the README's quick start.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run demo serve test lint bench artifacts clean

$(BIN)/lotline: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

setup: $(BIN)/lotline node_modules/.package-lock.json

run: setup  ## set up, seed the demo scenario (fresh) and serve it on http://127.0.0.1:8000
	$(BIN)/lotline demo --reset
	$(BIN)/lotline serve

test: setup  ## set up and run the whole test suite
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check supply_chain app tests scripts
	$(BIN)/lint-imports

bench: setup
	$(BIN)/lotline bench --json docs/bench-latest.json

artifacts: setup  ## recompile contracts/ into supply_chain/chain/artifacts/
	$(BIN)/python scripts/compile_contracts.py

clean:
	rm -rf $(VENV) node_modules instance .pytest_cache
