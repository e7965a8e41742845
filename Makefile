# The two commands of the README: `make run` (the node) and `make test` (everything CI checks).
# Both set up .venv and node_modules on a fresh machine and are idempotent.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
DATA_DIR ?= ./data

.PHONY: run test setup browser lint typecheck layers forge-test unit clean bench

run: setup
	$(BIN)/creditnet up --port $(PORT) --data-dir $(DATA_DIR)

# The static checks are independent and mostly single-threaded: they run side by side.
test: setup browser
	$(MAKE) --no-print-directory --output-sync=target -j4 lint typecheck layers forge-test
	$(BIN)/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

setup: $(VENV)/.stamp node_modules/.package-lock.json build/console.stamp

# Headless Chromium renders /docs in tests/e2e/test_docs_browser.py (mandatory under CI=true).
# Installed from Debian's packages when run as root; otherwise that test says it was skipped.
browser:
	@test -x /usr/bin/chromium || [ "$$(id -u)" != 0 ] || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

$(VENV)/.stamp: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --config-settings editable_mode=compat -e .
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

# The web console (console/: TypeScript, Preact, ECharts, viem, built by Vite from pinned npm
# packages) into build/console/, which the node serves at /console/. Incremental: npm ci runs
# when the console's lockfile changes, the build when a source does.
CONSOLE_SOURCES := $(shell find console/src -type f 2>/dev/null) console/index.html \
	console/vite.config.ts console/tsconfig.json
console/node_modules/.package-lock.json: console/package.json console/package-lock.json
	cd console && npm ci --no-audit --no-fund --loglevel=error

build/console.stamp: console/node_modules/.package-lock.json $(CONSOLE_SOURCES)
	cd console && npm run --silent build
	touch $@

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

# The import rules of ARCHITECTURE.md (contracts in pyproject.toml).
layers: setup
	$(BIN)/lint-imports

# Solidity unit and invariant tests of contracts/ (tests/foundry/, foundry.toml), with forge
# from npm and the npm solcjs compiler: nothing is downloaded, nothing goes on the network.
# The default profile is CI's (about a minute on 2 cores) with a fixed fuzz seed, so a red run
# replays; `make forge-test FOUNDRY_PROFILE=thorough` fuzzes far longer with fresh seeds.
FORGE := node_modules/.bin/forge
FOUNDRY_PROFILE ?= default
FORGE_SEED ?= $(if $(filter default,$(FOUNDRY_PROFILE)),0x2026)
forge-test: node_modules/.package-lock.json
	FOUNDRY_PROFILE=$(FOUNDRY_PROFILE) $(FORGE) test --offline \
		$(if $(FORGE_SEED),--fuzz-seed $(FORGE_SEED)) $(FORGE_ARGS)

clean:
	rm -rf $(VENV) node_modules console/node_modules build .pytest_cache .mypy_cache .hypothesis
