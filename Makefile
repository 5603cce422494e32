# `make demo` runs the main job on the built-in default scene; `make test` runs the test suite;
# `make lint` checks formatting, lint and types (ruff, mypy; settings in pyproject.toml).
# Both install what they need first (see scripts/setup.sh).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.gsseg-installed
DEMO_OUT ?= demo_out

.PHONY: setup demo test lint format clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	GSSEG_VENV=$(VENV) bash scripts/setup.sh
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/gsseg demo --out $(DEMO_OUT)

test: $(STAMP)
	$(PY) -m pytest -q tests

LINT_PATHS := gsseg tests benchmarks scripts

lint: $(STAMP)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format $(LINT_PATHS)
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)

clean:
	rm -rf $(DEMO_OUT) .pytest_cache
