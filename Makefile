# The two commands a newcomer types: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3
STAMP := $(VENV)/.installed

.PHONY: run test setup system store clean-store

run: setup store
	$(BIN)/cockpit demo --if-empty
	$(BIN)/cockpit serve --host 127.0.0.1 --port 8050

test: setup store
	scripts/ensure-system.sh --browser
	$(BIN)/pytest

setup: system $(STAMP)

system:
	@scripts/ensure-system.sh

# Re-install only when the dependency list changes: a second `make run` does no pip work.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

# The managed local cluster, unless COCKPIT_DATABASE_URL names a store; then the schema.
store:
	@if [ -z "$$COCKPIT_DATABASE_URL" ]; then $(BIN)/cockpit db up; fi
	$(BIN)/cockpit migrate

clean-store:
	-$(BIN)/cockpit db down
	rm -rf .cockpit
