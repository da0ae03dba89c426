# One command per job; each creates .venv and installs what it needs from pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo check test lint bench clean notebooks

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Install, then run the whole pipeline on the bundled sample account (charts in reports/demo).
demo: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/zdevents demo

# Install Jupyter (the notebooks extra), then open the notebooks in JupyterLab.
notebooks: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[notebooks]"
	$(BIN)/jupyter lab notebooks/

# Install with the test extras, then lint and run every test (what CI runs).
check: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

test: check

# Benchmarks (not part of check); results go to BENCHMARKS.md by hand.
bench: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) reports .pytest_cache .ruff_cache
