# `make demo` runs the main job on the built-in default scene; `make test` runs the test suite.
# Both install what they need first (see scripts/setup.sh).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.gsseg-installed
DEMO_OUT ?= demo_out

.PHONY: setup demo test clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	GSSEG_VENV=$(VENV) bash scripts/setup.sh
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/gsseg demo --out $(DEMO_OUT)

test: $(STAMP)
	$(PY) -m pytest -q tests

clean:
	rm -rf $(DEMO_OUT) .pytest_cache
