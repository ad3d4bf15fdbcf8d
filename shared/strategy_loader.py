"""User strategies: every ``*.py`` file of ``STRATEGY_PATH`` (default ``strategies/`` at the repo root)
that defines ``Strategy`` subclasses, added to the built-ins.

All or nothing: a file that does not compile or raises while it runs, a class that does not
instantiate or whose default parameters are invalid, or a name used twice, raises
``StrategyLoadError`` naming the file, the line and the error, and no user strategy is returned.
"""

from __future__ import annotations

import ast
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


def _fail(path: Path, error: BaseException, cls: type | None = None) -> StrategyLoadError:
    line = _line_in(error, path)
    if line is None and cls is not None:
        # Raised outside the file (e.g. pydantic refusing a default): the class's own line.
        line = next(
            (
                node.lineno
                for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.ClassDef) and node.name == cls.__name__
            ),
            None,
        )
    return StrategyLoadError(f"{path}:{line if line is not None else '?'}: {type(error).__name__}: {error}")


def _strategies_of(path: Path, index: int) -> list[Strategy]:
    spec = importlib.util.spec_from_file_location(f"user_strategies_{index}_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise StrategyLoadError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    current: type | None = None
    try:
        spec.loader.exec_module(module)
        found = []
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Strategy) and cls.__module__ == module.__name__ and not inspect.isabstract(cls):
                current = cls
                strategy = cls()
                for attribute in ("name", "description", "Parameters"):
                    if not hasattr(cls, attribute):
                        raise TypeError(f"{cls.__name__} has no {attribute}")
                defaults = strategy.parameters()
                strategy.indicators(defaults)
                found.append(strategy)
    except StrategyLoadError:
        raise
    except Exception as e:
        raise _fail(path, e, current) from e
    return found


_LOADED: dict[tuple[object, ...], Registry] = {}


def load_registry(folder: str | Path | None = None) -> Registry:
    """The built-ins plus the strategies of ``folder`` (``DEFAULT_PATH`` when empty; a missing
    default folder adds none, a missing folder given explicitly is an error).

    A folder whose files did not change is loaded once per process (every settings object of a
    service asks), so all of them see the same classes."""
    path = Path(folder) if folder else DEFAULT_PATH
    if not path.is_dir():
        if folder:
            raise StrategyLoadError(f"{path}: STRATEGY_PATH is not a folder")
        return Registry(cls() for cls in BUILTINS)
    files = [file for file in sorted(path.glob("*.py")) if not file.name.startswith("_")]
    key = (str(path.resolve()), *((file.name, file.stat().st_mtime_ns, file.stat().st_size) for file in files))
    if key not in _LOADED:
        _LOADED[key] = _load(files)
    return _LOADED[key]


def _load(files: list[Path]) -> Registry:
    strategies: list[Strategy] = [cls() for cls in BUILTINS]
    for index, file in enumerate(files):
        for strategy in _strategies_of(file.resolve(), index):
            if any(s.name == strategy.name for s in strategies):
                raise StrategyLoadError(f"{file}: a strategy called {strategy.name!r} already exists")
            strategies.append(strategy)
    return Registry(strategies)
