"""The notifier's Prometheus families (served by ``shared.metrics``)."""

from __future__ import annotations

from prometheus_client import Counter

DELIVERIES = Counter(
    "bot_notifications_total",
    "Delivery attempts to one target, by kind and outcome (sent, failed)",
    ["kind", "outcome"],
)
