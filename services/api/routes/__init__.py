"""One router per concern; ``ROUTERS`` is what the app includes."""

from services.api.routes import (
    access,
    backtest,
    candles,
    control,
    events,
    feeds,
    health,
    history,
    metrics,
    parameters,
    profit,
    session,
    status,
    strategies,
    studies,
)

ROUTERS = [
    health.router,
    session.router,
    access.router,
    status.router,
    parameters.router,
    strategies.router,
    control.router,
    history.router,
    profit.router,
    feeds.router,
    candles.router,
    backtest.router,
    studies.router,
    events.router,
    metrics.router,
]
