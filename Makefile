# Two commands matter: `make run` (paper trading on the simulator) and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)
# make test's pytest-xdist workers: the replays wait on their clock, so two share two cores.
PYTEST_WORKERS ?= 2

.PHONY: run stop test test-long lint test-component fuzz restart reset-password user token backtest optimize optimise download bench compose-check compose-secrets install system clean help

help:
	@echo "make run                      start redis, the simulator and every service; prints the dashboard URL"
	@echo "make test                     make lint, then the whole test suite (unit, component, integration, ... tiers)"
	@echo "make lint                     ruff check, ruff format --check and mypy (settings in pyproject.toml)"
	@echo "make test-long                the long tier: tests marked long, then make fuzz and make chaos (about an hour)"
	@echo "make test-component           the executor's component tier alone (fake exchange and clock, real Redis)"
	@echo "make stop                     stop a running 'make run' (from any terminal)"
	@echo "make restart SERVICE=name     restart one service of a running 'make run'"
	@echo "make reset-password           a new dashboard password, printed once"
	@echo "make user [ADD=name ROLE=viewer|operator] [NAME=name ROLE=...] [RESET=name] [REMOVE=name]   dashboard accounts"
	@echo "make token [ADD=label ROLE=viewer|operator ACCOUNT=name] [REVOKE=id]   personal API tokens (Authorization: Bearer)"
	@echo "make backtest DATA=file.csv.gz [PARAMS=\"EMA_SHORT_PERIOD=12 FEE=0.001\"] [JSON=out.json] [REPORT=out.html]"
	@echo "make optimize DATA=file SPACE=\"EMA_SHORT_PERIOD=5:30 ...\" [TRIALS=100] [SAMPLER=tpe|random|grid|nsga2] [OBJECTIVE=sharpe] [WALK_FORWARD=K] [SEED=0] [SCHEDULER=tcp://host:8786] [PARAMS=...] [JSON=out.json] [REPORT=out.html]"
	@echo "make download SYMBOLS=BTCUSDT,ETHUSDT INTERVAL=1m START=2024-01-01 [END=2024-03-01] [OUT=data] [SOURCE=rest|archive]"
	@echo "make bench                    benchmarks (tables printed, nothing asserted)"
	@echo "make chaos [SEED=1] [KILLS=104] [JSON=out.json]   long tier: clean vs faulted replay, comparison table"
	@echo "make compose-check            validate docker-compose.yml with the real Compose binary"
	@echo "make fuzz                     schemathesis over the api's OpenAPI document (>= 10,000 requests)"
	@echo "make compose-secrets [ROTATE=1]  write var/compose/ (Redis ACL users, passwords, bus key) for docker compose"

$(STAMP): requirements-dev.lock
	@PYTHON_BIN=$$(scripts/find-python.sh) || exit 1; \
	if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
		echo "creating $(VENV) with $$PYTHON_BIN"; rm -rf $(VENV); "$$PYTHON_BIN" -m venv $(VENV) || exit 1; \
	fi
	$(PY) -m pip install -q --disable-pip-version-check uv
	$(VENV)/bin/uv pip install --python $(PY) --compile-bytecode -q -r requirements-dev.lock
	@touch $(STAMP)

install: $(STAMP)

system:
	@scripts/ensure-system.sh redis

# exec: the supervisor's parent is make itself, so it stops with make (see scripts/supervisor.py).
run: install system
	@scripts/ensure-private.sh
	exec $(PY) scripts/supervisor.py

stop:
	@$(PY) scripts/supervisor.py stop

restart:
	@[ -n "$(SERVICE)" ] || { echo "usage: make restart SERVICE=exchange_sim|market_data|strategy|executor|notifier|api"; exit 2; }
	@$(PY) scripts/supervisor.py restart "$(SERVICE)"

reset-password:
	@$(PY) scripts/reset_password.py

# Accounts and tokens live in the ledger database: no running `make run` needed.
user: install
	@$(PY) scripts/access.py user $(if $(ADD),--add "$(ADD)") $(if $(NAME),--name "$(NAME)") $(if $(ROLE),--role "$(ROLE)") \
		$(if $(RESET),--reset "$(RESET)") $(if $(REMOVE),--remove "$(REMOVE)")

token: install
	@$(PY) scripts/access.py token $(if $(ADD),--add "$(ADD)") $(if $(ROLE),--role "$(ROLE)") $(if $(ACCOUNT),--user "$(ACCOUNT)") \
		$(if $(REVOKE),--revoke "$(REVOKE)")

# Every check runs, so one round shows everything that fails; the status is non-zero if any did.
lint: install
	@status=0; \
	$(VENV)/bin/ruff check . || status=1; \
	$(VENV)/bin/ruff format --check . || status=1; \
	$(VENV)/bin/mypy || status=1; \
	exit $$status

test: install lint
	@scripts/ensure-system.sh redis chromium postgres
	@$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadgroup --durations=25 $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "no tests were collected"; exit 1; fi; exit $$status

# The long tier: what would push make test past its time bound (long replays, the long fuzz,
# the chaos run). Every step runs, so one round shows everything that fails.
test-long: install
	@scripts/ensure-system.sh redis chromium postgres
	@status=0; \
	$(PY) -m pytest -q -m long $(PYTEST_ARGS) || status=1; \
	$(MAKE) --no-print-directory fuzz || status=1; \
	$(MAKE) --no-print-directory chaos || status=1; \
	exit $$status

# tests/component is part of `make test` (pytest's testpaths); this runs that tier alone.
test-component: install
	@scripts/ensure-system.sh redis
	@$(PY) -m pytest -q tests/component $(PYTEST_ARGS)

# The long tier of the api fuzzing; make test runs a short version (tests/api/test_api_fuzz.py).
fuzz: install system
	$(PY) scripts/fuzz_api.py --max-examples $(or $(FUZZ_EXAMPLES),350) --min-requests 10000

backtest: install
	@[ -n "$(DATA)" ] || { echo "usage: make backtest DATA=path/to/candles.csv.gz [PARAMS=\"...\"] [JSON=out.json] [REPORT=out.html]"; exit 2; }
	$(PY) -m backtest --data "$(DATA)" --params "$(PARAMS)" $(if $(JSON),--json "$(JSON)") $(if $(REPORT),--report "$(REPORT)")

# Optuna over the named parameters, trials on Dask (docs/optimize.md); studies in var/optimize/.
optimize: install
	@[ -n "$(DATA)" ] && [ -n "$(SPACE)" ] || { echo "usage: make optimize DATA=file SPACE=\"EMA_SHORT_PERIOD=5:30 EMA_LONG_PERIOD=20:120\" [TRIALS=100] [SAMPLER=tpe|random|grid|nsga2] [OBJECTIVE=sharpe] [WALK_FORWARD=K] [SEED=0] [SYMBOLS=..] [TIMEFRAME=1m] [SCHEDULER=tcp://host:8786] [PARAMS=...] [JSON=out.json] [REPORT=out.html]"; exit 2; }
	$(PY) -m backtest.optimize --data "$(DATA)" --space "$(SPACE)" --params "$(PARAMS)" $(if $(TRIALS),--trials "$(TRIALS)") \
		--objective "$(or $(OBJECTIVE),sharpe)" --seed "$(or $(SEED),0)" $(if $(WALK_FORWARD),--walk-forward $(WALK_FORWARD)) \
		$(if $(SYMBOLS),--symbols "$(SYMBOLS)") $(if $(TIMEFRAME),--timeframe "$(TIMEFRAME)") $(if $(TIMEOUT),--timeout $(TIMEOUT)) \
		$(if $(SAMPLER),--sampler "$(SAMPLER)") $(if $(SCHEDULER),--scheduler "$(SCHEDULER)") $(if $(STUDY),--study "$(STUDY)") $(if $(JSON),--json "$(JSON)") $(if $(REPORT),--report "$(REPORT)")

optimise: optimize

# Candles into the Parquet store (docs/data.md); REST from BINANCE_ENV's exchange or the public archive.
download: install
	@[ -n "$(SYMBOLS)" ] && [ -n "$(START)" ] || { echo "usage: make download SYMBOLS=BTCUSDT,ETHUSDT INTERVAL=1m START=2024-01-01 [END=2024-03-01] [OUT=data] [SOURCE=rest|archive]"; exit 2; }
	$(PY) -m research.data --symbols "$(SYMBOLS)" --interval "$(or $(INTERVAL),1m)" --start "$(START)" $(if $(END),--end "$(END)") --out "$(or $(OUT),data)" --source "$(or $(SOURCE),rest)"

bench: install system
	$(PY) bench/bench_pipeline.py
	$(PY) bench/bench_entry_burst.py
	$(PY) bench/bench_backtest.py
	$(PY) bench/bench_optimize.py
	$(PY) bench/bench_strategy.py
	$(PY) bench/bench_exchange_sim.py
	$(PY) bench/bench_api_burst.py
	$(PY) bench/bench_api.py
	$(PY) bench/bench_metrics.py

# Long tier, not part of make test (about 25 minutes): a clean and a faulted replay of the same
# candles, compared; exits 1 on any difference no rule allows, or a fault kind fired < 10 times (tests/chaos/verdict.py).
.PHONY: chaos
chaos: install system
	$(PY) -m tests.chaos --seed $(or $(SEED),1) $(if $(KILLS),--kills $(KILLS)) $(if $(JSON),--json "$(JSON)")

compose-check: install
	@scripts/compose-check.sh

compose-secrets: install
	$(PY) -m shared.redis_acl compose $(if $(ROTATE),--rotate)

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
