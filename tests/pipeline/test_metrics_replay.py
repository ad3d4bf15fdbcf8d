"""Prometheus metrics of every service during a replay of real candles through the simulator.

Each service's /metrics answers in the text format; the series move with what happened: the
executor's fills counter equals the ledger's fills, orders and exchange calls are counted, a
breaker trip sets its gauge, a stopped strategy shows as backlog in the api's view of its
consumer group, and every metric the Grafana dashboard queries is exported by some service.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.pipeline.ledger import REPLAYS
from tests.pipeline.test_breaker_replay import BUSY, LIMITS
from tests.support.ports import free_port
from tests.support.receiver import Receiver
from tests.support.stack import Stack, prepare_data, start_stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "monitoring" / "grafana" / "dashboards" / "bot.json"
SYMBOL, START, SPEED, HISTORY, ROWS = "BTCUSDT", 1450, 240, 70, 500
SERVICES = ("market_data", "strategy", "executor", "notifier", "api")
BREAKER_REFUSAL = "circuit breaker tripped on daily_loss"
PORT_VARIABLE = {name: f"{name.upper()}_METRICS_PORT" for name in SERVICES}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> tuple[set[str], Samples]:
    """Family names and samples (name, sorted labels) -> value of one /metrics answer."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = response.read().decode()
    families, samples = set(), {}
    for family in text_string_to_metric_families(text):
        families.add(family.name)
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return families, samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))


def ledger_fills(stack: Stack) -> int:
    with sqlite3.connect(stack.folder / "bot.sqlite3") as connection:
        return int(connection.execute("SELECT COUNT(*) FROM fills").fetchone()[0])


def dashboard_metric_names() -> set[str]:
    """Every metric name the dashboard's queries name (bot_* and process_*, histogram and counter
    suffixes stripped to the family name the exposition declares)."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    assert exprs, "the dashboard has queries"
    names = {m for e in exprs for m in re.findall(r"\b(?:bot|process)_[a-z0-9_]+", e)}
    return {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in names}


def test_every_service_exports_metrics_that_move_with_the_replay(tmp_path: Path) -> None:
    data = [prepare_data(tmp_path, REPLAYS[SYMBOL][0], SYMBOL, START, ROWS)]
    ports = {name: free_port() for name in SERVICES}
    receiver = Receiver().start()
    env = {**BUSY, **LIMITS, "NOTIFY_URLS": receiver.url, **{PORT_VARIABLE[n]: str(p) for n, p in ports.items()}}
    stack = start_stack(
        tmp_path / "stack",
        data=data,
        symbols=[SYMBOL],
        speed=SPEED,
        history=HISTORY,
        services=SERVICES,
        extra_env=env,
        exchange_last=True,
    )
    try:
        # Market data and signals flow: a strategy stopped for a while leaves klines behind it,
        # which the api's view of the group shows (the strategy itself cannot say so).
        stack.wait_for(lambda: total(scrape(ports["strategy"])[1], "bot_decisions_total") > 0, 120, "decisions")
        strategy = stack.processes["strategy"][-1].process
        os.kill(strategy.pid, signal.SIGSTOP)
        try:
            stack.wait_for(
                lambda: total(scrape(ports["api"])[1], "bot_consumer_backlog_entries", group="strategy") >= 2,
                60,
                "the api to see the stopped strategy's backlog",
            )
        finally:
            os.kill(strategy.pid, signal.SIGCONT)
        stack.wait_for(
            lambda: total(scrape(ports["api"])[1], "bot_consumer_backlog_entries", group="strategy") == 0,
            60,
            "the strategy to catch up",
        )

        # The breaker trips on the first losses; by then orders, fills and exits happened.
        stack.wait_for(
            lambda: total(scrape(ports["executor"])[1], "bot_breaker_tripped", limit="daily_loss") == 1,
            180,
            "the breaker gauge to show the trip",
        )
        stack.wait_for(
            lambda: total(scrape(ports["executor"])[1], "bot_fills_total") == ledger_fills(stack) > 0,
            30,
            "the fills counter to equal the ledger's fills",
        )
        _, executor = scrape(ports["executor"])
        assert total(executor, "bot_orders_total", purpose="entry", status="FILLED") >= 1
        assert total(executor, "bot_orders_total", purpose="exit", status="FILLED") >= 1
        assert total(executor, "bot_exchange_requests_total", endpoint="order", outcome="ok") >= 2
        assert total(executor, "bot_exchange_weight_used_1m") > 0
        assert total(executor, "bot_signal_to_order_seconds_count", purpose="entry") >= 1
        assert total(executor, "bot_realized_loss_quote_total") > 0
        assert total(executor, "bot_equity_quote") > 0
        assert total(executor, "bot_lease_owned", service="executor", symbol=SYMBOL) == 1
        assert total(executor, "bot_bus_events_total", group="executor", type="ticker", outcome="handled") > 0
        _, strategy_samples = scrape(ports["strategy"])
        assert total(strategy_samples, "bot_signals_total", symbol=SYMBOL) >= 2
        assert total(strategy_samples, "bot_kline_to_signal_seconds_count") >= 2
        assert total(strategy_samples, "bot_bus_handler_seconds_count", group="strategy", family="market:kline") > 0
        _, market = scrape(ports["market_data"])
        assert total(market, "bot_market_published_total", kind="kline", symbol=SYMBOL) >= HISTORY
        assert total(market, "bot_market_status_total", state="connected") >= 1
        _, notifier = scrape(ports["notifier"])
        assert total(notifier, "bot_bus_events_total", group="notifier", outcome="handled") > 0
        assert total(notifier, "bot_notifications_total", kind="entry_fill", outcome="sent") >= 1
        # Entries refused while tripped are counted by reason.
        stack.wait_for(
            lambda: total(scrape(ports["executor"])[1], "bot_entries_skipped_total", reason=BREAKER_REFUSAL) >= 1,
            120,
            "an entry refused by the breaker",
        )

        # Every metric the Grafana dashboard queries is declared by a service's live scrape.
        exported = set().union(*(scrape(port)[0] for port in ports.values()))
        missing = dashboard_metric_names() - exported
        assert not missing, f"the dashboard queries metrics no service exports: {sorted(missing)}"
    finally:
        stack.stop_all()
        receiver.stop()
