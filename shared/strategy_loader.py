"""User strategies: every ``*.py`` file of ``STRATEGY_PATH`` (default ``strategies/`` at the repo root)
that defines ``Strategy`` subclasses, added to the built-ins.

All or nothing: a file that does not compile or raises while it runs, a class that does not
instantiate or whose default parameters are invalid, or a name used twice, raises
``StrategyLoadError`` naming the file, the line and the error, and no user strategy is returned.
"""

from __future__ import annotations

import importlib.util
import inspect
import traceback
from pathlib import Path

from shared.trading.strategies import BUILTINS, Registry
from shared.trading.strategies.base import Strategy

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "strategies"


class StrategyLoadError(ValueError):
    """A user strategy file is broken; the message is ``file:line: error``."""


def _line_in(error: BaseException, path: Path) -> int | None:
    if isinstance(error, SyntaxError) and error.lineno is not None:
        return error.lineno
    lines = [frame.lineno for frame in traceback.extract_tb(error.__traceback__) if Path(frame.filename) == path]
    return lines[-1] if lines else None


def _fail(path: Path, error: BaseException) -> StrategyLoadError:
    line = _line_in(error, path)
    return StrategyLoadError(f"{path}:{line if line is not None else '?'}: {type(error).__name__}: {error}")


def _strategies_of(path: Path, index: int) -> list[Strategy]:
    spec = importlib.util.spec_from_file_location(f"user_strategies_{index}_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise StrategyLoadError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        found = []
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Strategy) and cls.__module__ == module.__name__ and not inspect.isabstract(cls):
                strategy = cls()
                for attribute in ("name", "description", "Parameters"):
                    if not hasattr(cls, attribute):
                        raise TypeError(f"{cls.__name__} has no {attribute}")
                defaults = strategy.parameters()
                strategy.indicators(defaults)
                found.append(strategy)
    except StrategyLoadError:
        raise
    except Exception as e:  # noqa: BLE001 - any error of user code stops the start, named
        raise _fail(path, e) from e
    return found


def load_registry(folder: str | Path | None = None) -> Registry:
    """The built-ins plus the strategies of ``folder`` (``DEFAULT_PATH`` when empty; a missing
    default folder adds none, a missing folder given explicitly is an error)."""
    path = Path(folder) if folder else DEFAULT_PATH
    strategies: list[Strategy] = [cls() for cls in BUILTINS]
    if not path.is_dir():
        if folder:
            raise StrategyLoadError(f"{path}: STRATEGY_PATH is not a folder")
        return Registry(strategies)
    for index, file in enumerate(sorted(path.glob("*.py"))):
        if file.name.startswith("_"):
            continue
        for strategy in _strategies_of(file.resolve(), index):
            if any(s.name == strategy.name for s in strategies):
                raise StrategyLoadError(f"{file}: a strategy called {strategy.name!r} already exists")
            strategies.append(strategy)
    return Registry(strategies)
