# Two commands on a fresh machine: `make run` (demo lab) and `make test` (the whole suite).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-pg lint bench clean system-deps

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
test: $(STAMP) system-deps
	$(BIN)/ruff check .
	$(BIN)/pytest -q

## System packages the tests drive for real: Debian's Chromium (browser tests), nginx (the deploy recipe).
## Best effort: without them those tests skip with the reason.
system-deps:
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	test -x /usr/sbin/nginx || command -v nginx >/dev/null 2>&1 || missing="$$missing nginx"; \
	if [ -n "$$missing" ]; then \
	  (apt-get install -y --no-install-recommends $$missing >/dev/null 2>&1 || \
	   (apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends $$missing >/dev/null 2>&1)) || \
	  echo "warning: could not install$$missing; the tests that need it will be skipped"; fi

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) instance *.egg-info .pytest_cache .ruff_cache
