# One entry point for the everyday jobs. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install testbed lint test unit demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml emulator/pyproject.toml devstack/pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ./emulator -e ./devstack -e '.[test]'
	touch $@

## install: the package and its test tools into .venv, from PyPI
install: $(VENV)/.installed

## testbed: build (or find in ~/.cache/openai-operator) kube-apiserver, etcd, kube-controller-manager, helm
testbed: install
	$(BIN)/openai-devstack build

## lint: ruff, mypy (strict) and the import-layering contracts
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## test: everything CI checks: lint, then every test on the real test bed
test: lint testbed
	$(BIN)/pytest

## unit: the pure tests only (no servers)
unit: install
	$(BIN)/pytest tests/unit

## demo: the main job on the embedded local stack (DEMO_ARGS=--no-wait stops after the last step)
demo: install
	$(BIN)/openai-devstack demo $(DEMO_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
