"""Who may import whom, read from the source (every import statement, also inside functions).

The layers: ``shared/trading/`` is the pure core (no I/O, no clock); ``shared/`` imports no
service and not the backtester; ``backtest/`` is a library over ``shared/`` (the api runs it);
a service imports only ``shared/``, ``backtest/`` and its own package; nothing outside a
service's package imports its modules (tests excepted: they drive the services).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE_FOLDERS = ("shared", "services", "backtest", "scripts", "bench")
PROJECT_ROOTS = frozenset({"shared", "services", "backtest"})
CORE = "shared.trading"

# Modules that talk to the outside world or schedule work: none of them in the pure core.
IO_MODULES = frozenset(
    {
        "redis",
        "hiredis",
        "httpx",
        "aiohttp",
        "requests",
        "websockets",
        "binance",
        "ccxt",
        "fastapi",
        "starlette",
        "uvicorn",
        "sqlalchemy",
        "sqlite3",
        "aiosqlite",
        "psycopg",
        "alembic",
        "asyncio",
        "socket",
        "ssl",
        "select",
        "selectors",
        "subprocess",
        "threading",
        "multiprocessing",
        "urllib.request",
        "http.client",
        "http.server",
    }
)
CLOCK_FUNCTIONS = frozenset(
    {
        "time",
        "time_ns",
        "monotonic",
        "monotonic_ns",
        "perf_counter",
        "perf_counter_ns",
        "process_time",
        "now",
        "utcnow",
        "today",
    }
)
CLOCK_OWNERS = frozenset(
    {"time", "datetime", "date", "datetime.datetime", "datetime.date", "pd.Timestamp", "pandas.Timestamp", "Timestamp"}
)


@dataclass(frozen=True)
class Import:
    module: str  # the imported module, absolute (``from x import y`` gives ``x`` and ``x.y``)
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> list[Path]:
    return sorted(path for folder in SOURCE_FOLDERS for path in (ROOT / folder).rglob("*.py"))


@cache
def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def imports_of(path: Path) -> list[Import]:
    """Every module ``path`` imports, relative imports resolved."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.Import):
            found += [Import(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.append(Import(module, node.lineno))
            found += [Import(f"{module}.{alias.name}", node.lineno) for alias in node.names if alias.name != "*"]
    return found


def project_files() -> dict[str, Path]:
    return {module_name(path): path for path in source_files() if path.parts[len(ROOT.parts)] in PROJECT_ROOTS}


def project_imports(path: Path, files: dict[str, Path]) -> set[str]:
    """The project modules ``path`` imports (``from pkg import name`` counts ``pkg.name`` only when a module)."""
    return {i.module for i in imports_of(path) if i.module in files}


def closure(start: set[str], files: dict[str, Path]) -> dict[str, str]:
    """Every project module reachable from ``start``, each with the module that first imported it."""
    reached: dict[str, str] = {module: module for module in start}
    todo = list(start)
    while todo:
        module = todo.pop()
        for imported in sorted(project_imports(files[module], files)):
            for parent in _parents(imported):  # importing a.b.c runs a/__init__ and a/b/__init__ too
                if parent in files and parent not in reached:
                    reached[parent] = module
                    todo.append(parent)
    return reached


def _parents(module: str) -> Iterator[str]:
    parts = module.split(".")
    for end in range(1, len(parts) + 1):
        yield ".".join(parts[:end])


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _chain(module: str, reached: dict[str, str]) -> str:
    path = [module]
    while reached[path[-1]] != path[-1]:
        path.append(reached[path[-1]])
    return " <- ".join(path)


def test_the_trading_core_imports_no_io_and_no_service() -> None:
    files = project_files()
    core = {module for module in files if _within(module, CORE)}
    assert core, "no trading core found"
    reached = closure(core, files)
    problems = []
    for module in sorted(reached):
        for imported in imports_of(files[module]):
            if any(_within(imported.module, forbidden) for forbidden in IO_MODULES):
                problems.append(f"{_chain(module, reached)}:{imported.line} imports {imported.module}")
            if imported.module.split(".")[0] in ("services", "backtest"):
                problems.append(f"{_chain(module, reached)}:{imported.line} imports {imported.module}")
    assert not problems, "the trading core must stay pure:\n" + "\n".join(problems)


def clock_reads(tree: ast.Module, where: str) -> list[str]:
    """Calls reading a clock: ``time.time()``, ``datetime.now()``, ``monotonic()`` imported by name..."""
    by_name = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module in ("time", "datetime")
        for alias in node.names
        if alias.name in CLOCK_FUNCTIONS
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in CLOCK_FUNCTIONS and ast.unparse(func.value) in CLOCK_OWNERS:
            found.append(f"{where}:{node.lineno} {ast.unparse(func)}()")
        elif isinstance(func, ast.Name) and func.id in by_name:
            found.append(f"{where}:{node.lineno} {func.id}()")
    return found


def test_the_trading_core_reads_no_clock() -> None:
    files = project_files()
    reached = closure({module for module in files if _within(module, CORE)}, files)
    found = [read for module in sorted(reached) for read in clock_reads(parsed(files[module]), module)]
    assert not found, "the trading core reasons in market time given to it, never a clock:\n" + "\n".join(found)


def test_the_clock_check_sees_each_form() -> None:
    text = (
        "import time\nfrom time import monotonic as mono\nfrom datetime import datetime, UTC\n"
        "time.time()\nmono()\ndatetime.now(UTC)\ndatetime.fromtimestamp(0)\n"
    )
    assert [read.split(" ", 1)[1] for read in clock_reads(ast.parse(text), "sample")] == [
        "time.time()",
        "mono()",
        "datetime.now()",
    ]


def _owner(module: str) -> str:
    """The layer a project module belongs to: ``services.<x>``, ``shared``, ``backtest``, or its folder."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "services" and len(parts) > 1 else parts[0]


def test_services_import_only_shared_backtest_and_themselves() -> None:
    allowed = {
        "shared": ("shared",),
        "backtest": ("shared", "backtest"),
    }
    problems = []
    for path in source_files():
        module = module_name(path)
        owner = _owner(module)
        for imported in imports_of(path):
            root = imported.module.split(".")[0]
            if root not in PROJECT_ROOTS or imported.module == "services":
                continue
            target = _owner(imported.module)
            if owner in allowed:
                ok = target in allowed[owner]
            elif owner.startswith("services."):
                ok = target in ("shared", "backtest", owner)
            else:  # scripts and benchmarks: any layer but a service's insides
                ok = not target.startswith("services.")
            line = f"{path.relative_to(ROOT)}:{imported.line} imports {target}"
            if not ok and line not in problems:
                problems.append(line)
    assert not problems, "imports across the layers:\n" + "\n".join(problems)


def test_no_path_of_imports_leads_from_one_service_into_another() -> None:
    files = project_files()
    services = sorted({_owner(module) for module in files if module.startswith("services.")})
    assert len(services) >= 5
    problems = []
    for service in services:
        reached = closure({module for module in files if _within(module, service)}, files)
        problems += [
            f"{service}: {_chain(module, reached)}"
            for module in sorted(reached)
            if module.startswith("services.") and _owner(module) != service
        ]
    assert not problems, "a service reaches another service's code:\n" + "\n".join(problems)
