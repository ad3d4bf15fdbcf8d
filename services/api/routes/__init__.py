"""One router per concern; ``ROUTERS`` is what the app includes."""

from services.api.routes import (
    backtest,
    candles,
    control,
    events,
    feeds,
    health,
    history,
    parameters,
    session,
    status,
)

ROUTERS = [
    health.router,
    session.router,
    status.router,
    parameters.router,
    control.router,
    history.router,
    feeds.router,
    candles.router,
    backtest.router,
    events.router,
]
