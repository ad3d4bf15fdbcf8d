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
    parameters,
    profit,
    session,
    status,
)

ROUTERS = [
    health.router,
    session.router,
    access.router,
    status.router,
    parameters.router,
    control.router,
    history.router,
    profit.router,
    feeds.router,
    candles.router,
    backtest.router,
    events.router,
]
