# The two commands a fresh machine needs: `make setup` then `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
VCPL := $(VENV)/bin/vcpl
export PATH := $(CURDIR)/.tools/bin:$(PATH)

VENUE ?=
ENV ?=

.PHONY: help setup setup-rehearsal setup-sessions rehearse-sessions tools test test-venue bench mutation-table check policy-matrix promote drift runbook-docs scaffold validate generate build build-all stats kind-up

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(VENV)/.installed tools ## install pinned Python packages and tools (idempotent)

setup-rehearsal: ## build the pinned cluster-rehearsal toolchain (etcd, kube-apiserver, kwok, Flux, Kyverno, kind) into .tools/rehearsal/bin
	python3 scripts/rehearsal/setup.py

.PHONY: rehearse
rehearse: ## cluster rehearsal (tests/rehearsal): Flux syncs every overlay into a local control plane + kwok; FAILS without the toolchain; BACKEND=kind uses a kind control plane
	VCPL_REHEARSAL_REQUIRED=1 VCPL_REHEARSAL_BACKEND=$(BACKEND) $(PY) -m pytest tests/rehearsal -p no:cacheprovider

QUICKFIX := 1.16.0
WHEELS := .tools/wheels
setup-sessions: $(VENV)/.installed ## the session rehearsal's FIX engine (quickfix from PyPI: a ~7 min source build, its wheel kept in .tools/wheels) and libfaketime
	python3 scripts/rehearsal/setup.py --only libfaketime
	@ls $(WHEELS)/quickfix-$(QUICKFIX)-*.whl >/dev/null 2>&1 || $(VENV)/bin/pip wheel --quiet --disable-pip-version-check --no-deps -w $(WHEELS) quickfix==$(QUICKFIX)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-index --no-deps --find-links $(WHEELS) quickfix==$(QUICKFIX)

rehearse-sessions: ## every overlay's rendered session settings against its venue simulator (VENUE=, ENV= for one); FAILS when anything disagrees
	$(VCPL) rehearse-sessions $(if $(VENUE),--venue $(VENUE)) $(if $(ENV),--env $(ENV)) --json build/sessions/findings.json --logs build/sessions/logs

$(VENV)/.installed: requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-input -r requirements.txt
	# The vcpl package itself, editable, built with the pinned setuptools already in the venv.
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-input --no-build-isolation --no-deps -e .
	touch $@

tools: $(VENV)/.installed ## build the pinned kustomize, conftest and kyverno into .tools/bin
	$(VCPL) tools

test: check ## the policy gate, then every test (run books, renders, schemas, policy suites, agreement)
	$(PY) -m pytest --durations=15

check: ## the policy gate over every overlay's effective model; VENUE= and ENV= judge only those
	$(VCPL) check $(if $(VENUE),--venue $(VENUE)) $(if $(ENV),--env $(ENV))

test-venue: ## one venue: its gate, then the tests parametrized by it: make test-venue VENUE=cme
	@test -n "$(VENUE)" || { echo "usage: make test-venue VENUE=<venue>" >&2; exit 2; }
	$(VCPL) check --venue $(VENUE)
	$(PY) -m pytest --venue $(VENUE)

mutation-table: ## run the mutation suite and regenerate policies/MUTATIONS.md
	$(PY) -m tests.mutation --write

bench: ## time render-only against the full gate on 24, 96 and 384 synthesized overlays
	$(VCPL) bench $(if $(SIZES),--sizes $(SIZES))

policy-matrix: ## regenerate policies/MATRIX.md (rules x fixtures)
	$(VCPL) policy-matrix

promote: ## promote a venue: make promote VENUE=cme FROM=cert TO=prod
	@test -n "$(VENUE)" -a -n "$(FROM)" -a -n "$(TO)" || { echo "usage: make promote VENUE=<venue> FROM=<dev|cert> TO=<cert|prod>" >&2; exit 2; }
	$(VCPL) promote $(VENUE) $(FROM) $(TO)

validate: ## check every run book
	$(VCPL) validate

generate: ## regenerate everything derived (VENUE= for one venue's profiles and run-book doc only)
ifeq ($(VENUE),)
	$(VCPL) generate
	$(VCPL) dashboards
	$(VCPL) runbook-docs
	$(VCPL) catalog
	$(VCPL) runbook-reference
	$(VCPL) archetypes
	$(VCPL) policy-matrix
	$(VCPL) gitops
	$(VCPL) simulators
else
	$(VCPL) generate --venue $(VENUE)
	$(VCPL) runbook-docs --venue $(VENUE)
endif

runbook-docs: ## regenerate docs/runbooks/<venue>.md from the run books and rendered overlays
	$(VCPL) runbook-docs

scaffold: ## start a venue from an archetype: make scaffold VENUE=eurex ARCHETYPE=fix-cross-connect
	@test -n "$(VENUE)" -a -n "$(ARCHETYPE)" || { echo "usage: make scaffold VENUE=<id> ARCHETYPE=<fix-cross-connect|binary-order-entry-multicast|fix-tls-internet|websocket-internet|fix-vpn> (docs/archetypes.md)" >&2; exit 2; }
	$(VCPL) scaffold $(VENUE) --archetype $(ARCHETYPE)

drift: ## compare an overlay with the live cluster: make drift VENUE=cme ENV=prod
	@test -n "$(VENUE)" -a -n "$(ENV)" || { echo "usage: make drift VENUE=<venue> ENV=<dev|cert|prod>" >&2; exit 2; }
	$(VCPL) drift $(VENUE) $(ENV)

build: ## render one overlay: make build VENUE=cme ENV=prod
	@test -n "$(VENUE)" -a -n "$(ENV)" || { echo "usage: make build VENUE=<venue> ENV=<dev|cert|prod>" >&2; exit 2; }
	@$(VCPL) build $(VENUE) $(ENV)

build-all: ## render every overlay into build/rendered/<env>/<venue>.yaml
	$(VCPL) build-all --output build/rendered

stats: ## lines authored per venue versus lines rendered
	$(VCPL) stats

kind-up: ## optional: an empty local kind cluster (needs a container engine; `make rehearse BACKEND=kind` makes its own)
	@test -x .tools/rehearsal/bin/kind || { echo "kind is not installed: run make setup-rehearsal" >&2; exit 2; }
	@docker info >/dev/null 2>&1 || podman info >/dev/null 2>&1 || { echo "no container engine is running: kind cannot start here" >&2; exit 2; }
	.tools/rehearsal/bin/kind create cluster --name vcpl
