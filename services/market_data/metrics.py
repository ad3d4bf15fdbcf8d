"""market_data's Prometheus families (served by ``shared.metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

PUBLISHED = Counter(
    "bot_market_published_total", "Market and account entries appended to the bus, by kind", ["kind", "symbol"]
)
STATUS = Counter(
    "bot_market_status_total",
    "Connection changes of the exchange feeds: connected, disconnected (a reconnect follows), "
    "stale (silent past MARKET_STALE_AFTER_S), backfilled, user_data_subscribed, user_data_lost",
    ["state"],
)
LAST_MESSAGE = Gauge(
    "bot_market_last_message_timestamp_seconds", "Wall time of the last market message relayed", ["symbol"]
)
