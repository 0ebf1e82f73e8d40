# TierOne developer commands. `make demo` and `make test` install what they need first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
# checkov pins packaging<24 (pytest 9 needs >=24), so it gets a venv of its own inside .venv.
TOOLS := $(VENV)/tools
TOOLS_STAMP := $(TOOLS)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: install demo serve test lint bench clean

install: $(PY_STAMP) $(TOOLS_STAMP) $(NODE_STAMP)

$(PY_STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

$(TOOLS_STAMP): infra/requirements-checkov.txt $(PY_STAMP)
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install -q --disable-pip-version-check -r infra/requirements-checkov.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	bash scripts/ensure-node.sh
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: install
	$(PY) -m sandbox.demo

serve: install
	$(PY) -m sandbox.serve

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy .

test: lint
	$(PY) -m pytest

bench: install
	$(PY) -m bench

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
