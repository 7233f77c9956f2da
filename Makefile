# Nattero: the two commands a new user needs are `make demo` and `make test`.
# Everything else here is what those two need; each step is skipped when already done.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
NATTERO := $(VENV)/bin/nattero
PYTEST_ARGS ?=

.PHONY: help demo test test-fast install system venv lint bench clean-state

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /  \1\t/' | expand -t 14

demo: install ## run the stack, five simulated sites and the live board
	$(NATTERO) demo

test: install lint ## lint, then the whole test suite against real services
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: venv ## the pure tests only (no database, broker or browser; < 30 s)
	$(PY) -m pytest -m pure -q -p no:cacheprovider $(PYTEST_ARGS)

install: system venv dashboard/node_modules/.installed tests/oidc/node_modules/.installed

dashboard/node_modules/.installed: dashboard/package.json dashboard/package-lock.json
	npm ci --prefix dashboard --no-audit --no-fund
	touch $@

# The real OpenID Connect provider of the single sign-on tests (tests/test_sso.py).
tests/oidc/node_modules/.installed: tests/oidc/package.json tests/oidc/package-lock.json
	npm ci --prefix tests/oidc --no-audit --no-fund
	touch $@

system: ## Debian packages and TimescaleDB (built once from Debian 13 sources)
	bash deploy/install.sh

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

lint: venv ## ruff and mypy (strict; tests with typed bodies) on the packages and the tests
	$(VENV)/bin/ruff check core provisioning nattero gateway ingest rules api simulators deploy evaluation backtest dashboard bench tests
	$(VENV)/bin/mypy core provisioning nattero gateway ingest rules api simulators deploy evaluation backtest dashboard tests

bench: install
	for b in bench/*.py; do $(PY) $$b; done

clean-state: ## stop the local stacks (demo, tests, $NATTERO_STATE_DIR) and delete their data
	for dir in .nattero .nattero-test $${NATTERO_STATE_DIR:-}; do \
	  NATTERO_STATE_DIR=$$dir $(NATTERO) down || true; rm -rf "$$dir"; done
