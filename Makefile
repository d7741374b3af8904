# The two commands a newcomer needs: `make demo` and `make test`.
# Everything else here is what those two are made of.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8501
CUSTOMERS ?= 20000

.PHONY: demo test install install-test browser lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

## demo: create the venv, install, generate and load the demo store, serve on 127.0.0.1:8501
demo: install
	STUDIO_PORT=$(PORT) $(BIN)/studio demo --customers $(CUSTOMERS)

## browser: make sure Chromium is there for the real-browser tests (apt-get when root)
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "Chromium is missing: run 'sudo apt-get install chromium' (the browser tests need /usr/bin/chromium)."; exit 1; \
	  fi; \
	fi

## test: install what the tests need and run every tier (unit, app, browser)
test: install-test browser
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: install-test
	$(BIN)/ruff check studio etl models pages tests benchmarks

## bench: the ETL benchmark at full size (1M customers, 20M events, 3M orders)
bench: install
	$(BIN)/python benchmarks/etl_load.py

clean:
	rm -rf $(VENV) .studio test-artifacts
