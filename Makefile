# pointsnet: the two commands of the README's quick start, and their parts.
#   make run   set up everything, start devnet + contracts (+ gateway), print URLs
#   make test  set up everything and run the whole suite (lint, import layers, types,
#              contracts, slither, tests)

SHELL := /bin/bash
VENV := .venv/bin
PYTEST_ARGS ?=

.PHONY: run test setup setup-test lint typecheck contracts-check slither pytest build clean

run: setup
	$(VENV)/pointsnet demo

test: setup-test lint typecheck contracts-check slither pytest

setup:
	@scripts/setup.sh

setup-test:
	@scripts/setup.sh --browser --slither

lint:
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/lint-imports

typecheck:
	$(VENV)/mypy

contracts-check:
	$(VENV)/pointsnet contracts check

slither:
	scripts/slither.sh

pytest:
	$(VENV)/pytest $(PYTEST_ARGS)

build: setup
	$(VENV)/pointsnet contracts build

clean:
	-$(VENV)/pointsnet devnet stop
	rm -rf .pointsnet test-output
