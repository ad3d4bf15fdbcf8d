"""The strategies the bot can run: the built-ins here, user strategies added by ``shared.strategy_loader``.

``Registry`` maps a name to a strategy instance; ``builtin_registry()`` holds the three built-ins
(``ema_cross_rsi`` is the default).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from shared.trading.strategies.base import Row, Strategy, StrategyModel, parameter
from shared.trading.strategies.donchian_breakout import DonchianBreakout
from shared.trading.strategies.ema_cross_rsi import EmaCrossRsi
from shared.trading.strategies.rsi2_reversion import Rsi2Reversion

DEFAULT_STRATEGY = EmaCrossRsi.name
BUILTINS: tuple[type[Strategy], ...] = (EmaCrossRsi, Rsi2Reversion, DonchianBreakout)


class Registry:
    """Strategies by name; ``get`` raises ``KeyError`` naming the known ones."""

    def __init__(self, strategies: Iterable[Strategy]) -> None:
        self._by_name: dict[str, Strategy] = {}
        for strategy in strategies:
            if strategy.name in self._by_name:
                raise ValueError(f"two strategies are called {strategy.name!r}")
            self._by_name[strategy.name] = strategy

    def get(self, name: str) -> Strategy:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"unknown strategy {name!r}; known: {', '.join(self._by_name)}") from None

    def names(self) -> list[str]:
        return list(self._by_name)

    def __iter__(self) -> Iterator[Strategy]:
        return iter(self._by_name.values())

    def __contains__(self, name: object) -> bool:
        return name in self._by_name


def builtin_registry() -> Registry:
    return Registry(cls() for cls in BUILTINS)


__all__ = [
    "BUILTINS",
    "DEFAULT_STRATEGY",
    "Registry",
    "Row",
    "Strategy",
    "StrategyModel",
    "builtin_registry",
    "parameter",
]
