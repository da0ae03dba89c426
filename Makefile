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

# The test extras, installed again only when pyproject.toml changes.
$(VENV)/.test-extras: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

# What CI runs: lint, formatting, every test and every docstring example in zdevents/.
check: $(VENV)/.test-extras
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

# The fast subset while you work (under a minute): no slow, end-to-end or notebook tests.
test: $(VENV)/.test-extras
	$(BIN)/python -m pytest -m "not slow and not e2e and not notebooks"

# Benchmarks (not part of check); results go to BENCHMARKS.md by hand.
bench: $(VENV)/.test-extras
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) reports .pytest_cache .ruff_cache
