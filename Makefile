# Two commands set up everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
SCALE  ?= small
PORT   ?= 3000

.PHONY: install demo ui test test-slow bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/concord demo

# the Dagster UI over the demo's firm (served while it runs) and its runs: http://127.0.0.1:$(PORT)
ui: install
	$(BIN)/concord ui --port $(PORT)

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

bench: install
	$(BIN)/python -m benchmarks --scale $(SCALE)

clean:
	rm -rf $(VENV) data benchmarks/results
