# The two commands of the README, and what they need. Everything is installed by the project:
# Python packages into .venv, Kafka's jars and the FerretDB build into var/ (git-ignored).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
AIMMS := $(BIN)/aimms
PACKAGES := shared/pyproject.toml deploy/pyproject.toml $(wildcard services/*/pyproject.toml)

.PHONY: up down test unit lint install infra

## Run the whole platform locally (infrastructure, the four services, demo data).
up: install
	$(AIMMS) up

down: install
	$(AIMMS) down

## Run every test against the real Kafka, FerretDB (or $$MONGODB_URI) and the SMTP sink.
test: install infra
	eval "$$($(AIMMS) local env)" && $(BIN)/pytest

unit: install
	$(BIN)/pytest tests/unit

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

infra: install
	$(AIMMS) local start

install: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.txt $(PACKAGES)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@
