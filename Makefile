# Two commands: `make run` (embedded demo on SQLite) and `make test` (the whole suite); `make lint` checks the code.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
export FLASK_APP = wsgi:app

# requirements.txt and requirements-dev.txt name the direct dependencies; `make lock` resolves them
# into requirements.lock and requirements-dev.lock (every package pinned, with hashes), which are what
# gets installed. The dev lock is constrained by the runtime lock, so both agree on shared versions.
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links --no-emit-trusted-host

# The tests run on two pytest-xdist workers, each with its own database and redis-server;
# PYTEST_WORKERS=0 runs them in one process (quicker to start for a few tests, and prints with -s).
PYTEST_WORKERS ?= 2

.PHONY: run test lint lock translations extract-messages bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime: requirements.lock | $(BIN)/python
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	touch $@

$(VENV)/.dev: requirements.lock requirements-dev.lock | $(BIN)/python
	$(BIN)/pip install -q --require-hashes -r requirements-dev.lock
	touch $@ $(VENV)/.runtime

## lock: resolve requirements*.txt into the hashed lock files (LOCK_ARGS=--upgrade to take newer
## versions of the indirect dependencies too); then `make test` installs them
lock: $(VENV)/.dev
	$(PIP_COMPILE) $(LOCK_ARGS) --output-file requirements.lock requirements.txt
	$(PIP_COMPILE) $(LOCK_ARGS) --output-file requirements-dev.lock requirements-dev.txt

translations: $(VENV)/.runtime
	$(BIN)/pybabel compile -f -d translations 2>/dev/null

## run: migrate the SQLite database, load the demo once, serve on http://127.0.0.1:5000
run: $(VENV)/.runtime translations
	$(BIN)/flask db upgrade
	$(BIN)/flask install-templates
	$(BIN)/flask seed-calendar
	$(BIN)/flask seed-demo
	$(BIN)/flask serve --host 127.0.0.1 --port 5000

## test: the whole suite against the local PostgreSQL (or a throw-away cluster when there is none) and a
## throw-away redis-server (tests/throwaway.py)
test: $(VENV)/.dev translations
	@$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure for this project" >&2; fi; \
	exit $$rc

## lint: ruff over the whole repository, mypy over core/ and the service modules (files listed in pyproject.toml)
lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/mypy

## extract-messages: refresh the message catalogue after changing user-facing strings
# No fuzzy matching: `make translations` compiles with -f, so a fuzzy guess would ship as the
# translation (and a guessed %(placeholder)s that the new id lacks crashes at runtime). A changed
# string comes back empty and its old translation stays in the .po as an obsolete #~ entry.
# notice_text (core.notify) marks the message ids of staff notices, shown in each reader's language.
extract-messages: $(VENV)/.runtime
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -k notice_text --ignore-dirs=".venv tests bench migrations" -o translations/messages.pot .
	$(BIN)/pybabel update --no-fuzzy-matching -i translations/messages.pot -d translations

## bench: the benchmark scripts against the local PostgreSQL and Redis (figures: docs/benchmarks.md)
bench: $(VENV)/.dev translations
	$(BIN)/python bench/submit.py
	$(BIN)/python bench/complaints.py

clean:
	rm -rf $(VENV) instance/tingjian.db .pytest_cache .mypy_cache .ruff_cache
