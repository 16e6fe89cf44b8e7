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

.PHONY: venv zipapp images bundle test test-unit testbed lint demo docs golden clean

venv: $(VENV)/.done
$(VENV)/.done: pyproject.toml
	@start=$$(date +%s); \
	$(PYTHON) -m venv $(VENV) && \
	$(PYTHON) tools/project_requirements.py > $(VENV)/requirements.txt && \
	PIP_CACHE_DIR=$(CACHE)/pip $(VENV)/bin/pip install -q -r $(VENV)/requirements.txt && \
	touch $@ && echo "setup: python venv ready in $$(( $$(date +%s) - start ))s ($(VENV))"

zipapp: venv
	$(PY) tools/build_zipapp.py --cache $(CACHE)/zipapp-wheels --out dist/heliostat.pyz

# Every platform image, built hermetically from bundles/*/images (docs/images.md); needs the
# test bed's Docker engine and debootstrap. Unchanged recipes are kept as they are.
images: venv testbed
	$(PY) -m tools.images build

# The air-gapped bundle: dist/heliostat-<version>.bundle (installer + every image).
bundle: images zipapp
	PYTHONPATH=installer $(PY) -m heliostat bundle build --cache-dir $(CACHE)/bundle-parts

lint: venv
	$(PY) -m ruff check .

# The README's first command: build what is needed (the test bed starts the Docker engine
# here), install the embedded default platform on the local engine, show how to reach it.
demo: zipapp images
	bash tools/demo.sh

# Regenerate what is generated from the code: the platform.yaml reference, golden renders.
docs: venv
	PYTHONPATH=installer $(PY) -m heliostat schema --markdown > docs/platform-yaml.md

golden: venv
	HELIOSTAT_UPDATE_GOLDEN=1 $(PYTEST) -q tests/unit/heliostat/test_render.py -k golden

test-unit: venv
	$(PYTEST) -m unit -q

testbed: venv
	bash tests/infra/provision.sh

test: venv testbed zipapp images
	$(PYTEST) -q --durations=40 -n 2 --dist loadfile

clean:
	rm -rf dist build
