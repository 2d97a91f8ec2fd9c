# Everything runs in ./.venv, created and refreshed by these targets (pyproject.toml changes
# trigger a reinstall). `make demo` and `make test` are the two commands the README gives.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXAMPLE := examples/advdistill-example

.PHONY: venv demo test test-all test-slow test-cuda lint docs clean

# the venv has the tracker packages (the test extra): their tests must run, never skip
export ADVDISTILL_REQUIRE_EXTRAS := 1

$(STAMP): pyproject.toml $(EXAMPLE)/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	# a reference implementation for tests; --no-deps: see the comment on the test extra in pyproject.toml
	$(PY) -m pip install --quiet --no-deps 'torchattacks>=3.5'
	# the example third-party plugin package, installed like any user's plugin (tests use it)
	$(PY) -m pip install --quiet --no-deps -e $(EXAMPLE)
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/advdistill demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# the default suite: fast tests (<~15 min on 2 cores); fails if no test ran
test: lint
	$(PY) -m pytest -m "not slow and not cuda"

test-slow: $(STAMP)
	$(PY) -m pytest -m "slow and not cuda"

# on a machine with a CUDA GPU
test-cuda: $(STAMP)
	$(PY) -m pytest -m cuda

test-all: lint
	$(PY) -m pytest -m "not cuda"

# rewrite the generated key tables of docs/recipes.md from the config classes (a test fails when stale)
docs: $(STAMP)
	$(PY) -m advdistill.recipe.reference docs/recipes.md

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
