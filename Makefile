# The two commands: `make run` and `make test`. Everything they need is set up here.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SW     := $(BIN)/sitewatch
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench setup clean

run: setup
	@scripts/ensure-system.sh run
	$(SW) db start
	$(SW) db migrate
	$(SW) demo --if-empty
	$(SW) serve --announce

test: setup lint
	@scripts/ensure-system.sh test
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check geo layers maps api tests bench
	$(BIN)/mypy

bench: setup
	@scripts/ensure-system.sh run
	$(BIN)/python -m bench

setup: $(STAMP)

$(STAMP): pyproject.toml
	@PYTHON=$(PYTHON) scripts/ensure-system.sh venv
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

clean:
	-$(SW) db stop
	rm -rf $(VENV) build *.egg-info
