# The README's two commands: `make demo` and `make test`. Everything runs from a local virtualenv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PORT ?= 8000
# The database-layer tests, run a second time on SQLite when DATABASE_URL points at PostgreSQL.
SQLITE_TESTS := tests/fleet tests/alerting tests/latency tests/capacity tests/wall tests/rules tests/azure tests/emulator

.PHONY: demo test lint bench install install-dev emulator clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt requirements.txt $(VENV)/.installed
	$(PIP) install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

# One command: venv, pinned install, migrate, then the emulator, a Celery worker, beat and the web
# server. Ctrl-C stops every process it started.
demo: $(VENV)/.installed
	PORT=$(PORT) $(PY) manage.py demo

# Style and types first (seconds), then the whole suite, on DATABASE_URL/REDIS_URL when set
# (PostgreSQL/Redis), then the database-layer tests once more on SQLite so both engines are covered.
lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	env -u DATABASE_URL -u REDIS_URL HRW_VAR_DIR=$$(mktemp -d) $(VENV)/bin/mypy workers dashboard

test: lint
	$(PY) -m pytest
	@if [ -n "$$DATABASE_URL" ]; then \
		echo "--- database-layer tests again on SQLite"; \
		env -u DATABASE_URL HRW_VAR_DIR=$$(mktemp -d) $(PY) -m pytest $(SQLITE_TESTS) -q -m "not redis and not browser and not postgres"; \
	fi

bench: $(VENV)/.installed
	$(PY) -m tests.bench $(BENCH_ARGS)

emulator: $(VENV)/.installed
	$(PY) manage.py azure_emulator --connection-file var/emulator.json

clean:
	rm -rf var/ .pytest_cache
