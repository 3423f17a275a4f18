# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# axe-core, from the npm registry, for the browser tests' accessibility pass.
AXE := tests/browser/node_modules/axe-core/axe.min.js

.PHONY: run test test-fast lint typecheck djangocheck pytest worker bench screenshots clean

# The versions the tests passed with (constraints.txt; README.md, "Dependencies").
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev,bench]"
	touch $(STAMP)

## Set up and serve the site on http://localhost:8000 (bound to 127.0.0.1) with the embedded defaults.
## DEBUG is off unless set, so development is asked for here (a DEBUG already set wins).
run: export DEBUG ?= True
run: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py runserver 127.0.0.1:8000

## Everything CI runs: lint, format, types, Django checks, migrations, tests.
test: lint typecheck djangocheck pytest

## The fast tiers only, unit and db (no server, no processes, no browser): under a minute.
## The tiers are set in tests/conftest.py; `make pytest` runs them all.
test-fast: $(STAMP)
	$(BIN)/pytest -q -m "unit or db"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy passwordless accounts config tests bench tools

djangocheck: $(STAMP)
	DEBUG=True $(BIN)/python manage.py check --fail-level WARNING
	DEBUG=True $(BIN)/python manage.py makemigrations --check --dry-run

pytest: $(STAMP) $(AXE)
	$(BIN)/pytest

$(AXE): tests/browser/package.json tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
	touch $(AXE)

## The load benchmark (needs wrk, PostgreSQL and Redis) against its floors and its peers (the
## bench extra: django-allauth, django-sesame, installed with the rest), and the scale figures.
bench: $(STAMP)
	$(BIN)/python -m bench.load
	$(BIN)/python -m bench.scale

## Screenshots of every page in docs/screenshots/, at phone and desktop width.
screenshots: $(STAMP) $(AXE)
	$(BIN)/python -m tests.browser.screenshots

## A Celery worker for the mail path (needs CELERY_BROKER_URL or REDIS_URL).
worker: $(STAMP)
	DEBUG=$${DEBUG:-True} PYTHON=$(BIN)/python sh bin/worker

clean:
	rm -rf $(VENV) var tests/browser/node_modules
