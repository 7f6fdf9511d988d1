# Two commands on a fresh machine: `make run` (demo lab) and `make test` (the whole suite).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-pg lint bench clean system-deps test-deps

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Set up, create the demo lab on SQLite and run it (web app, worker, broker, simulated machines).
run: $(STAMP)
	$(BIN)/fablab demo

## Set up and run every check: ruff, then the tests (SQLite; PostgreSQL too when FABLAB_TEST_DATABASE_URL is set).
## The tests include import-linter's layer contracts and mypy (tests/test_architecture.py).
test: $(STAMP) system-deps test-deps
	$(BIN)/ruff check .
	$(BIN)/pytest -q

## System packages the tests drive for real: Debian's Chromium (browser tests), nginx (the deploy recipe).
## Best effort: without them those tests skip with the reason.
system-deps:
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	test -x /usr/sbin/nginx || command -v nginx >/dev/null 2>&1 || missing="$$missing nginx"; \
	test -x /usr/sbin/slapd || missing="$$missing slapd ldap-utils"; \
	if [ -n "$$missing" ]; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  (apt-get install -y --no-install-recommends $$missing >/dev/null 2>&1 || \
	   (apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends $$missing >/dev/null 2>&1)) || \
	  echo "warning: could not install$$missing; the tests that need it will be skipped"; fi

## Servers the tests start for real that come from other registries: the OpenID provider (npm's
## oidc-provider, run with the machine's Node.js) and OctoPrint (its own virtualenv: its Flask pin conflicts
## with ours). Best effort like system-deps: without them those tests skip with the reason.
OIDC_DIR := tests/support/oidc
OCTO_VENV := .venv-octoprint
test-deps:
	@if [ -f $(OIDC_DIR)/package.json ] && [ ! -f $(OIDC_DIR)/node_modules/.installed ]; then \
	  (cd $(OIDC_DIR) && npm install --no-audit --no-fund --silent >/dev/null 2>&1 && touch node_modules/.installed) || \
	  echo "warning: could not install the OpenID provider; the OIDC tests will be skipped"; fi
	@if [ -f tests/support/octoprint/requirements.txt ] && [ ! -f $(OCTO_VENV)/.installed ]; then \
	  ($(PY) -m venv $(OCTO_VENV) && $(OCTO_VENV)/bin/pip install --quiet -r tests/support/octoprint/requirements.txt \
	   > $(OCTO_VENV)/install.log 2>&1 && touch $(OCTO_VENV)/.installed) || \
	  echo "warning: could not install OctoPrint (see $(OCTO_VENV)/install.log); its tests will be skipped"; fi

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(OCTO_VENV) $(OIDC_DIR)/node_modules instance *.egg-info .pytest_cache .ruff_cache
