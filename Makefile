# Two commands do all the set-up on a fresh machine:
#   make build   creates .venv, installs modelbuild, runs `doit build:ffdnet`
#   make test    creates .venv, installs modelbuild with its test extra, runs pytest
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: build test venv clean docs

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

build: $(STAMP)
	$(BIN)/doit build:ffdnet

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf artifacts .doit.db*

docs: $(STAMP)  ## regenerate docs/recipe-reference.md and docs/surgery-reference.md from the schema
	$(BIN)/python -m modelbuild.recipe.reference docs
