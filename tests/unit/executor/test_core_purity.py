"""The executor's decision core and the trading core are pure: no I/O library, no clock.

Found by parsing the sources: every import of ``services/executor/core`` is from a short list
of pure modules, and no module there or in ``shared/trading`` imports an I/O library or reads a
clock (``now_ms``, ``time.time``, ``monotonic``, ``datetime.now``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CORE = [*sorted((ROOT / "services/executor/core").glob("*.py")), ROOT / "services/executor/errors.py"]
TRADING = sorted((ROOT / "shared/trading").rglob("*.py"))
CORE_MAY_IMPORT = (
    "__future__",
    "collections",
    "dataclasses",
    "decimal",
    "enum",
    "typing",
    "shared.events",
    "shared.parameters",
    "shared.trading",
    "services.executor.core",
    "services.executor.errors",
)
NEVER = (
    "redis",
    "sqlalchemy",
    "aiohttp",
    "binance",
    "asyncio",
    "socket",
    "time",
    "shared.bus",
    "shared.store",
    "shared.clock",
    "services.executor.exchange",
    "services.executor.store",
)
CLOCK_READS = {"now_ms", "monotonic", "time_ns", "perf_counter", "now", "utcnow", "today"}


def imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def clock_reads(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in CLOCK_READS:
                found.append(f"{name}() line {node.lineno}")
    return found


def within(module: str, roots: tuple[str, ...]) -> bool:
    return any(module == root or module.startswith(root + ".") for root in roots)


def test_the_scan_sees_the_core() -> None:
    assert {p.name for p in CORE} >= {"finals.py", "sending.py", "refusals.py", "exits.py", "ticks.py", "errors.py"}
    assert "lifecycle.py" in {p.name for p in TRADING}


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.name)
def test_the_executor_core_imports_only_pure_modules(path: Path) -> None:
    impure = [name for name in imports(path) if not within(name, CORE_MAY_IMPORT)]
    assert not impure, f"{path.name} imports {impure}"


@pytest.mark.parametrize("path", CORE + TRADING, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_io_library_and_no_clock(path: Path) -> None:
    assert not [name for name in imports(path) if within(name, NEVER)]
    assert not clock_reads(path), f"{path.relative_to(ROOT)} reads a clock: {clock_reads(path)}"
