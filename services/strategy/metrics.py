"""strategy's Prometheus families (served by ``shared.metrics``)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Histogram

from shared import metrics, streams
from shared.events import Envelope, Signal

SIGNALS = Counter("bot_signals_total", "Signals published to the executor", ["symbol", "side"])
DECISIONS = Counter("bot_decisions_total", "Decision records published (one per evaluated candle)", ["symbol"])
KLINE_TO_SIGNAL = Histogram(
    "bot_kline_to_signal_seconds",
    "From the closed kline's append to the bus (Redis time) to its signal's publication",
    ["symbol"],
    buckets=metrics.LATENCY_BUCKETS,
)


def published(items: Iterable[tuple[str, Envelope]], kline_entry_id: str | None) -> None:
    """Count what one evaluation published; a signal's latency from its candle's bus entry."""
    for stream, event in items:
        payload = event.payload
        if stream == streams.DECISIONS:
            DECISIONS.labels(getattr(payload, "symbol", "")).inc()
        elif stream == streams.SIGNALS and isinstance(payload, Signal):
            SIGNALS.labels(payload.symbol, payload.side).inc()
            latency = metrics.since_entry_s(kline_entry_id)
            if latency is not None:
                KLINE_TO_SIGNAL.labels(payload.symbol).observe(latency)
