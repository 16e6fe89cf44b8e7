# heliostat — developer entry points. `make demo` and `make test` are the two that matter.
SHELL := /bin/bash
# Heavy, reusable things (virtualenv, wheels, jars, base images) live here, keyed on versions.
CACHE ?= /var/cache/heliostat-dev
export HELIOSTAT_DEV_CACHE := $(CACHE)
PYTHON ?= python3
VENV_KEY := $(shell cat pyproject.toml | sha256sum | cut -c1-12)
VENV := $(CACHE)/venv-$(VENV_KEY)
PY := $(VENV)/bin/python
PYTEST := $(PY) -m pytest

.PHONY: venv zipapp test test-unit testbed lint demo docs clean

venv: $(VENV)/.done
$(VENV)/.done: pyproject.toml
	@start=$$(date +%s); \
	$(PYTHON) -m venv $(VENV) && \
	$(PYTHON) tools/project_requirements.py > $(VENV)/requirements.txt && \
	PIP_CACHE_DIR=$(CACHE)/pip $(VENV)/bin/pip install -q -r $(VENV)/requirements.txt && \
	touch $@ && echo "setup: python venv ready in $$(( $$(date +%s) - start ))s ($(VENV))"

zipapp: venv
	$(PY) tools/build_zipapp.py --cache $(CACHE)/zipapp-wheels --out dist/heliostat.pyz

lint: venv
	$(PY) -m ruff check .

docs: venv
	PYTHONPATH=installer $(PY) -m heliostat schema --markdown > docs/platform-yaml.md

test-unit: venv
	$(PYTEST) -m unit -q

testbed: venv
	bash tests/infra/provision.sh

test: venv testbed zipapp
	$(PYTEST) -q

clean:
	rm -rf dist build
