# Two commands matter: `make run` (paper trading on the simulator) and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)

.PHONY: run stop test restart reset-password backtest bench compose-check install system clean help

help:
	@echo "make run                      start redis, the simulator and every service; prints the dashboard URL"
	@echo "make test                     the whole test suite"
	@echo "make stop                     stop a running 'make run' (from any terminal)"
	@echo "make restart SERVICE=name     restart one service of a running 'make run'"
	@echo "make reset-password           a new dashboard password, printed once"
	@echo "make backtest DATA=file.csv.gz [PARAMS=\"EMA_SHORT_PERIOD=12 FEE=0.001\"] [JSON=out.json] [REPORT=out.html]"
	@echo "make bench                    benchmarks (tables printed, nothing asserted)"
	@echo "make compose-check            validate docker-compose.yml with the real Compose binary"

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
	@[ -f .env ] || { cp .env.example .env; echo "created .env from .env.example"; }
	exec $(PY) scripts/supervisor.py

stop:
	@$(PY) scripts/supervisor.py stop

restart:
	@[ -n "$(SERVICE)" ] || { echo "usage: make restart SERVICE=exchange_sim|market_data|strategy|executor|api"; exit 2; }
	@$(PY) scripts/supervisor.py restart "$(SERVICE)"

reset-password:
	@$(PY) scripts/reset_password.py

test: install
	@scripts/ensure-system.sh redis chromium postgres
	@$(PY) -m pytest -q $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "no tests were collected"; exit 1; fi; exit $$status

backtest: install
	@[ -n "$(DATA)" ] || { echo "usage: make backtest DATA=path/to/candles.csv.gz [PARAMS=\"...\"] [JSON=out.json] [REPORT=out.html]"; exit 2; }
	$(PY) -m backtest --data "$(DATA)" --params "$(PARAMS)" $(if $(JSON),--json "$(JSON)") $(if $(REPORT),--report "$(REPORT)")

bench: install system
	$(PY) bench/bench_pipeline.py
	$(PY) bench/bench_backtest.py
	$(PY) bench/bench_exchange_sim.py
	$(PY) bench/bench_api.py

compose-check: install
	@scripts/compose-check.sh

clean:
	rm -rf var .pytest_cache
