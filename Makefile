# Two commands: `make run` (embedded demo on SQLite) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
export FLASK_APP = wsgi:app

.PHONY: run test translations extract-messages bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

translations: $(VENV)/.runtime
	$(BIN)/pybabel compile -f -d translations 2>/dev/null

## run: migrate the SQLite database, load the demo once, serve on http://127.0.0.1:5000
run: $(VENV)/.runtime translations
	$(BIN)/flask db upgrade
	$(BIN)/flask seed-demo
	$(BIN)/flask run --host 127.0.0.1 --port 5000

## test: the whole suite against the local PostgreSQL and Redis
test: $(VENV)/.dev translations
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## extract-messages: refresh the message catalogue after changing user-facing strings
extract-messages: $(VENV)/.runtime
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --ignore-dirs=".venv tests bench migrations" -o translations/messages.pot .
	$(BIN)/pybabel update -i translations/messages.pot -d translations

clean:
	rm -rf $(VENV) instance/tingjian.db .pytest_cache
