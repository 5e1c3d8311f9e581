# The two commands of the README, and what they need. Everything is installed by the project:
# Python packages into .venv, Kafka's jars, the FerretDB build and kustomize into var/ (git-ignored).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
AIMMS := $(BIN)/aimms
PACKAGES := shared/pyproject.toml deploy/pyproject.toml $(wildcard services/*/pyproject.toml)

.PHONY: up down test unit lint install infra tools browser deploy-test faults

## Run the whole platform locally (infrastructure, the four services, demo data).
up: install
	$(AIMMS) up

down: install
	$(AIMMS) down

## Run every test against the real Kafka, FerretDB (or $$MONGODB_URI) and the SMTP sink.
test: install tools browser infra
	eval "$$($(AIMMS) local env)" && $(BIN)/pytest

## The fault suite at full size (2,000 interests and registrations, services killed, Kafka and the store
## restarted, 1,000 poison messages); `make test` runs it reduced. Prints its figures, the last line JSON.
faults: install tools infra
	eval "$$($(AIMMS) local env)" && AIMMS_FAULTS=full $(BIN)/pytest tests/faults -s -q

unit: install
	$(BIN)/pytest tests/unit tests/component

## ruff, the import contracts of pyproject.toml (services independent, shared imports no service, domain pure),
## and known vulnerabilities of the installed dependencies (our own editable packages are not on PyPI).
lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports
	$(BIN)/pip-audit --local --skip-editable --progress-spinner off

infra: install
	$(AIMMS) local start

## Validate docker-compose.yml, the Dockerfiles and the Kubernetes manifests (offline, no Docker).
deploy-test: install tools
	$(BIN)/pytest tests/deploy

# tests/e2e/test_pages.py drives Debian's chromium with Playwright (no browser download from elsewhere).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

# kustomize builds the Kubernetes overlays in tests/deploy; the real one, from the Go module proxy.
KUSTOMIZE_VERSION := v5.8.2
KUSTOMIZE := var/tools/bin/kustomize

tools: $(KUSTOMIZE)

$(KUSTOMIZE): Makefile
	GOBIN=$(CURDIR)/var/tools/bin go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	touch $@

install: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.txt $(PACKAGES)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@
