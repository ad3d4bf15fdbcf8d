"""The executor and the trading core stay readable: no module over 300 lines, no function over 60.

Measured on the source as written (blank lines and docstrings count), by parsing it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("services/executor", "shared/trading")
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60


def modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def test_the_scanned_packages_hold_the_executor_and_the_core() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in modules()}
    assert {"services/executor/service.py", "services/executor/core/finals.py", "shared/trading/lifecycle.py"} <= names


@pytest.mark.parametrize("path", modules(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_module_is_at_most_300_lines(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has {lines} lines"


@pytest.mark.parametrize("path", modules(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_function_is_at_most_60_lines(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    long = [
        f"{node.name} ({node.lineno}-{node.end_lineno}: {node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{path.relative_to(ROOT)}: {', '.join(long)}"
