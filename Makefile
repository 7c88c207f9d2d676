# Reserva - the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
SANDBOX_PORT ?= 8443
# Development defaults; anything already in the environment (or .env) wins.
DEV_ENV := DEBUG=$${DEBUG:-true}
# make run: OAuth redirect URIs follow PORT (the sandbox registers them for it, see seed_demo);
# the demo's connection aliases point at the sandbox, which the endpoint allowlist must name.
RUN_ENV := $(DEV_ENV) PUBLIC_BASE_URL=$${PUBLIC_BASE_URL:-http://127.0.0.1:$(PORT)} \
	PROVIDER_ENDPOINT_ALLOWLIST=$${PROVIDER_ENDPOINT_ALLOWLIST:-https://127.0.0.1:$(SANDBOX_PORT)}
PYTEST_ARGS ?=

.PHONY: install run test lint format bench bench-booking bench-export bench-pull bench-insights bench-portal bench-scale screenshots clean

$(STAMP): requirements-dev.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.lock
	@touch $(STAMP)

install: $(STAMP)  ## create the virtual environment with the locked dependencies and the test tools

run: install  ## migrate, load demo data once, start web + Celery worker + beat + EWS listener + provider sandbox
	@mkdir -p var
	$(RUN_ENV) $(BIN)/python manage.py migrate --noinput
	$(RUN_ENV) $(BIN)/python manage.py seed_demo --portal-port $(PORT) --sandbox-port $(SANDBOX_PORT) --sandbox-state-dir var/sandbox
	@echo
	@echo "  Reserva is starting on http://$(HOST):$(PORT)/   (admin: http://$(HOST):$(PORT)/admin/)"
	@echo "  Demo logins: admin / reserva-admin, alice / reserva-alice, bob / reserva-bob, carol / reserva-carol (a contractor at her limit)"
	@echo "  Room display (Thames): http://$(HOST):$(PORT)/display/demo-thames-display/   (a wall tablet's page; try it at 1280x800)"
	@echo "  Provider sandbox (Microsoft Graph, Google Calendar and Exchange EWS emulator): https://127.0.0.1:$(SANDBOX_PORT)/_sandbox/"
	@echo "  Stop everything with Ctrl+C."
	@echo
	@export $(RUN_ENV); exec $(BIN)/python -m config.runstack --host $(HOST) --port $(PORT) \
		--sandbox-port $(SANDBOX_PORT) --sandbox-state-dir var/sandbox --beat-schedule var/celerybeat-schedule

test: install  ## run the whole test suite
	@mkdir -p var
	$(DEV_ENV) $(BIN)/pytest $(PYTEST_ARGS)

lint: install  ## ruff (lint and format) and a check that no model change lacks its migration
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@mkdir -p var
	$(DEV_ENV) $(BIN)/python manage.py makemigrations --check --dry-run

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The quick version of every benchmark (PostgreSQL and Redis as in CI's second leg; a few
# minutes), each recording its figures and targets in bench/results.json (bench/results.py).
BENCH_RESULTS ?= bench/results.json
BENCH_DATABASE ?= postgres://postgres@127.0.0.1:5432/reserva_bench
BENCH_REDIS ?= redis://127.0.0.1:6379/3
# bench/scale.py drops and makes its own database again (a name with "bench" in it only).
BENCH_SCALE_DATABASE ?= postgres://postgres@127.0.0.1:5432/reserva_scale_bench
bench: install  ## quick versions of all benchmarks; figures into bench/results.json
	$(BIN)/python bench/booking.py --quick --results $(BENCH_RESULTS)
	$(BIN)/python bench/portal_pages.py --quick --results $(BENCH_RESULTS)
	$(BIN)/python bench/insights.py --quick --results $(BENCH_RESULTS)
	REDIS_URL=$(BENCH_REDIS) $(BIN)/python bench/export.py --quick --results $(BENCH_RESULTS)
	REDIS_URL=$(BENCH_REDIS) $(BIN)/python bench/export.py --provider ews --quick \
		--results $(BENCH_RESULTS)
	REDIS_URL=$(BENCH_REDIS) $(BIN)/python bench/pull.py --google --quick --results $(BENCH_RESULTS)
	DATABASE_URL=$(BENCH_DATABASE) REDIS_URL=$(BENCH_REDIS) $(DEV_ENV) \
		$(BIN)/python bench/webhook.py --quick --results $(BENCH_RESULTS)
	BENCH_DATABASE_URL=$(BENCH_SCALE_DATABASE) REDIS_URL=$(BENCH_REDIS) \
		$(BIN)/python bench/scale.py --quick --results $(BENCH_RESULTS)

bench-booking: install  ## needs PostgreSQL; see bench/booking.py
	$(BIN)/python bench/booking.py

bench-export: install  ## bulk export against the sandbox (PostgreSQL; Redis if REDIS_URL); see bench/export.py
	$(BIN)/python bench/export.py

bench-pull: install  ## pull requests/queries, no change and 100 changes, against the sandbox; see bench/pull.py
	$(BIN)/python bench/pull.py --google

bench-scale: install  ## 1,000 rooms, steady state, 60x for 10 minutes (PostgreSQL + Redis); see bench/scale.py
	BENCH_DATABASE_URL=$(BENCH_SCALE_DATABASE) REDIS_URL=$${REDIS_URL:-$(BENCH_REDIS)} \
		$(BIN)/python bench/scale.py --results $(BENCH_RESULTS)

# The portal under load runs locust from the development lock (.venv/bin/locust).
# BENCH_PORTAL_ARGS: e.g. --people 10 --duration 60, --pool, --quick.
BENCH_PORTAL_DATABASE ?= postgres://postgres@127.0.0.1:5432/reserva_bench_portal
BENCH_PORTAL_ARGS ?=
bench-portal: install  ## 50 people on gunicorn x3 + PostgreSQL + Redis for 5 min (locust); see bench/portal_load.py
	$(BIN)/python bench/portal_load.py --database-url $(BENCH_PORTAL_DATABASE) \
		--redis-url $(BENCH_REDIS) $(BENCH_PORTAL_ARGS)

bench-insights: install  ## the Insights page over 1,000 spaces x a year of rollup rows (PostgreSQL); see bench/insights.py
	$(BIN)/python bench/insights.py

screenshots: install  ## PNGs of the portal with demo data into docs/screenshots/ (needs /usr/bin/chromium)
	$(BIN)/python docs/screenshots.py

clean:
	rm -rf var .pytest_cache
