# The verbs of the project. `make up` and `make test` are the quickstart.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
MONOLITH_PORT ?= 8000
# STAGE (default: the newest stage of this tree, stages/table.py) and MODE
# choose what `make up` runs.
STAGE ?=
export MONOLITH_PORT
# >>> stage 1: the gateway's port
GATEWAY_PORT ?= 8080
export GATEWAY_PORT
# <<< stage 1
export PYTHONUNBUFFERED := 1

.PHONY: help venv up migrate seed test test-fast parity lint fmt bench bench-profile stage-tags stage-check clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# Two layers in one virtualenv. The runtime layer (requirements/runtime.txt):
# what `make up`, `make migrate` and `make seed` run. The dev layer
# (requirements/dev.txt, and the node tools): what the tests, linters, parity
# runs and benchmarks add.
RUNTIME_REQUIREMENTS = requirements/runtime.txt requirements/monolith.txt libs/pyproject.toml
# >>> stage 2: the comments service's runtime
RUNTIME_REQUIREMENTS += services/comments/requirements-runtime.txt
# <<< stage 2
# >>> stage 4: the posts service's runtime
RUNTIME_REQUIREMENTS += services/posts/requirements-runtime.txt
# <<< stage 4

$(VENV)/.runtime: $(RUNTIME_REQUIREMENTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -r requirements/runtime.txt
	@touch $@

$(VENV)/.installed: $(VENV)/.runtime requirements/dev.txt requirements/deploy.txt
	@$(PY) -m pip install --quiet -r requirements/dev.txt
	@touch $@

NODE_TOOLS = tools/node/node_modules/.installed

$(NODE_TOOLS): tools/node/package.json tools/node/package-lock.json
	@npm ci --prefix tools/node --no-audit --no-fund --loglevel=error
	@touch $@

venv: $(VENV)/.installed $(NODE_TOOLS) ## create .venv with both layers (make up's, then the test and deploy tools) and the node tools

migrate: $(VENV)/.runtime ## apply the monolith's migrations (SQLite under .data/ unless DATABASE_URL)
	@$(PY) manage.py migrate --noinput -v0

up: migrate ## the stage STAGE (default: the newest of this tree; MODE where it offers one)
	@$(PY) scripts/up.py $(if $(STAGE),--stage $(STAGE))

SEED_ARGS ?= --reset
seed: migrate ## the demo set (200 posts, 2,000 comments) in the monolith, and in STAGE's stores
	@$(PY) scripts/seed.py $(if $(STAGE),--stage $(STAGE)) $(SEED_ARGS)

# The suites with settings of their own (libs, each service).
SERVICE_TESTS = $(BIN)/pytest libs/blogweb/tests --ds=blogweb.tests.settings -p no:cacheprovider $(PYTEST_ARGS)
# >>> stage 2: the comments service's own suite
SERVICE_TESTS += && $(BIN)/pytest -c services/comments/pyproject.toml --rootdir services/comments services/comments/comments/tests $(PYTEST_ARGS)
# <<< stage 2
# >>> stage 3: the event plumbing's own suite
SERVICE_TESTS += && $(BIN)/pytest libs/tests --ds=libs.tests.settings -p no:cacheprovider $(PYTEST_ARGS)
# <<< stage 3
# >>> stage 4: the posts service's own suite
SERVICE_TESTS += && $(BIN)/pytest -c services/posts/pyproject.toml services/posts $(PYTEST_ARGS)
# <<< stage 4

test: venv ## every suite (the servers they talk to must run: .ci/run starts them)
	@$(BIN)/pytest $(PYTEST_ARGS)
	@$(SERVICE_TESTS)

test-fast: venv ## the suites without the browser and system tests
	@$(BIN)/pytest -m "not e2e" --ignore=tests/system $(PYTEST_ARGS)
	@$(SERVICE_TESTS)

parity: venv ## contract suite + browser test against every stage and mode (STAGE=N: one stage)
	@$(PY) scripts/parity.py $(if $(STAGE),--stage $(STAGE)) $(PARITY_ARGS)

lint: venv ## ruff (lint + format check) and import-linter (the app boundaries)
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/lint-imports --no-cache
# >>> stage 2: the comments service's boundaries
	@cd services/comments && $(abspath $(BIN))/lint-imports --no-cache
# <<< stage 2
# >>> stage 4: the posts service's boundaries
	@cd services/posts && $(abspath $(BIN))/lint-imports --no-cache
# <<< stage 4

fmt: venv ## format and autofix
	@$(BIN)/ruff format .
	@$(BIN)/ruff check --fix .

bench: venv ## gunicorn (2 sync workers) on PostgreSQL, 1,000 posts / 10,000 comments, wrk
	@$(PY) bench/run.py $(BENCH_ARGS)

bench-profile: venv ## where a read request's time goes (in-process: SQL, Python, cProfile)
	@$(PY) bench/profile_endpoints.py $(PROFILE_ARGS)

# >>> stage 1: the gateway
.PHONY: gateway gateway-conf gateway-nginx
GATEWAY_STAGE = $(or $(STAGE),$(shell $(PYTHON) -c 'from stages import table; print(table.newest_with_gateway())'))

# Its upstreams are where `make up` runs them, unless their URLs are set.
GATEWAY_ENV = MONOLITH_URL=$${MONOLITH_URL:-http://127.0.0.1:$(MONOLITH_PORT)}
# >>> stage 2: the comments service
GATEWAY_ENV += COMMENTS_URL=$${COMMENTS_URL:-http://127.0.0.1:$${COMMENTS_PORT:-8002}}
# <<< stage 2
# >>> stage 4: the posts service
GATEWAY_ENV += POSTS_URL=$${POSTS_URL:-http://127.0.0.1:$${POSTS_PORT:-8001}}
# <<< stage 4

gateway: $(VENV)/.runtime ## the dev router for STAGE on :8080 (embedded profile, no nginx)
	@$(GATEWAY_ENV) $(PY) -m gateway.devrouter --stage $(GATEWAY_STAGE) --listen 127.0.0.1:$(GATEWAY_PORT)

gateway-conf: $(VENV)/.runtime ## render nginx.conf for STAGE into .data/gateway/
	@mkdir -p .data/gateway
	@$(GATEWAY_ENV) $(PY) -m gateway.render --stage $(GATEWAY_STAGE) --listen 127.0.0.1:$(GATEWAY_PORT) --user $$(id -un) --out .data/gateway/nginx.conf

gateway-nginx: gateway-conf ## real nginx with the rendered config (foreground, Ctrl-C stops)
	@nginx -p $(CURDIR)/.data/gateway -c $(CURDIR)/.data/gateway/nginx.conf
# <<< stage 1

# >>> stage 2: data migrations between stages
.PHONY: migrate-stage
ifeq (migrate-stage,$(firstword $(MAKECMDGOALS)))
MIGRATE_STAGE_N := $(word 2,$(MAKECMDGOALS))
ifneq ($(MIGRATE_STAGE_N),)
$(eval $(MIGRATE_STAGE_N):;@:)
endif
endif
migrate-stage: $(VENV)/.runtime ## the data migration into stage N: make migrate-stage 2; MIGRATE_ARGS=--verify-only
	@$(PY) scripts/migrate_stage.py $(or $(MIGRATE_STAGE_N),$(STAGE)) $(MIGRATE_ARGS)
# <<< stage 2

# >>> stage 3: events
.PHONY: bench-relay
bench-relay: venv ## outbox relay: throughput with publisher confirms, commit->queue lag
	@$(PY) bench/relay.py $(BENCH_ARGS)

.PHONY: bench-deleted-window
bench-deleted-window: venv ## async mode: how long a deleted post still takes comments (DELETE 204 -> first 404)
	@$(PY) -m bench.deleted_window $(BENCH_ARGS)
# <<< stage 3

# >>> stage 4: microservices
.PHONY: bench-events
bench-events: venv ## stage 4 async: commit-to-effect lag at a fixed event rate, burst throughput (chart)
	@$(PY) bench/events.py $(BENCH_ARGS)

.PHONY: compare
compare: venv ## stage 0 vs stage 4 side by side: req/s, p50/p90/p99, CPU by component, memory (HTML + JSON)
	@$(PY) bench/compare.py $(COMPARE_ARGS)

# The workshop (docs/workshop/): exercises on the stage history, ./exercise.
.PHONY: exercises exercises-check
exercises: ## the workshop's exercises and which pass (then ./exercise start N.M)
	@$(PYTHON) exercise list

exercises-check: venv ## CI: every exercise fails blank for the intended reason and passes solved
	@$(PY) exercise prove $(EXERCISES)
# <<< stage 4

stage-tags: ## build the stage history from this commit: one commit and tag per stage
	@$(PYTHON) -m stages.history $(STAGE_TAGS_ARGS)

stage-check: venv ## CI: build the history twice, then lint, test and contract-test each stage's tree
	@$(PY) -m stages.verify $(STAGE_CHECK_ARGS)

clean: ## remove local state (.data/) and caches, keep .venv
	rm -rf .data .pytest_cache .ruff_cache staticfiles
