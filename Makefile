# NanoBanana: every command a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_VERSION := 3.11
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
WEB_CONCURRENCY ?= 2
WORKER_CONCURRENCY ?= 3
# Postgres connections per web worker (a pool; see config/settings.py)
WEB_DB_POOL ?= 10

.PHONY: help install run test faults lint format typecheck check bench web worker beat release seed worktree clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(UV):
	python3 -m pip install --quiet --user "uv==$(UV_VERSION)"

install: $(UV) ## Install the locked dependencies into .venv
	@$(UV) sync --frozen --python $(PYTHON_VERSION) --quiet

run: install ## Start everything on one machine (SQLite, file broker, sandbox chat at http://127.0.0.1:8000/sandbox/)
	@$(BIN)/python manage.py migrate --noinput -v 0
	@$(BIN)/python manage.py setup_defaults
	@echo "NanoBanana is starting: open http://127.0.0.1:$(PORT)/sandbox/ (Ctrl-C stops everything)"
	@# honcho gives each process its own PORT (from 5000 unless PORT is set);
	@# WEB_PORT keeps them all, the web one too, pointed at the web port
	@WEB_PORT=$(PORT) PORT=$(PORT) $(BIN)/python -m config.devrun -f deploy/Procfile.dev start

test: install ## Run the whole test suite (real PostgreSQL and Redis on 127.0.0.1)
	@$(BIN)/pytest -q -p no:randomly $(PYTEST_ARGS)

faults: install ## The fault suite: real processes on its own PostgreSQL and Redis, kills, outages, injected faults; writes docs/reliability.md
	@$(BIN)/pytest -q -p no:randomly -m faults tests/faults $(PYTEST_ARGS)

lint: install ## ruff (lint + format check) and mypy
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy .

format: install ## Apply ruff's formatting and safe fixes
	@$(BIN)/ruff check --fix .
	@$(BIN)/ruff format .

check: install ## Django system checks and the migrations-are-committed check
	@DJANGO_SETTINGS_MODULE=config.settings_test $(BIN)/python manage.py check
	@DJANGO_SETTINGS_MODULE=config.settings_test $(BIN)/python manage.py makemigrations --check --dry-run

bench: install ## Run the benchmarks and write docs/benchmarks.md
	@$(BIN)/python -m bench

# --- The processes: deploy/process.sh starts each (Docker, Railway and compose call it too)
web: ## The web process: webhook, health, admin, sandbox (ASGI)
	@PORT=$(PORT) WEB_CONCURRENCY=$(WEB_CONCURRENCY) WEB_DB_POOL=$(WEB_DB_POOL) VENV_BIN=$(BIN) deploy/process.sh web

worker: ## The Celery worker: updates, generation and delivery queues
	@WORKER_CONCURRENCY=$(WORKER_CONCURRENCY) VENV_BIN=$(BIN) deploy/process.sh worker

beat: ## Celery beat on the database scheduler
	@VENV_BIN=$(BIN) deploy/process.sh beat

release: ## One-off release step: migrations, catalog and schedules
	@VENV_BIN=$(BIN) deploy/process.sh release

seed: install ## Load the model catalog and beat schedules into the database
	@$(BIN)/python manage.py setup_defaults

clean: ## Remove local data (database, broker, media) and the venv
	rm -rf .data $(VENV)

worktree: ## Create a worktree for one agent from origin/staging: make worktree NAME=feat/short-name
	@test -n "$(NAME)" || (echo "usage: make worktree NAME=feat/short-name" && exit 2)
	git fetch origin staging
	git worktree add -b "$(NAME)" "../$(subst /,-,$(NAME))" origin/staging
	@echo "worktree ready in ../$(subst /,-,$(NAME)); run 'make install' there"

-include deploy/deploy.mk
