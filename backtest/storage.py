"""Where reports go, and how a parameter set names them.

``report_key(params)`` is a stable 16-hex-digit hash of the strategy parameters (the same set
gives the same key in every process and version of Python). ``--report-dir DIR`` writes
``DIR/<key>.html`` and ``DIR/<key>.json``; a later run with the same parameters replaces them,
so ``latest_report_path(DIR, params)`` is the latest report for those parameters. Files are
written to a temporary name first and then renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from shared.parameters import StrategyParameters
from shared.trading.sizing import format_decimal
from shared.trading.strategies import DEFAULT_STRATEGY


def _canonical(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, float):
        return format_decimal(Decimal(repr(value)))
    return str(value)


def report_key(params: StrategyParameters, strategy: str | None = None, strategy_params: Any = None) -> str:
    """Stable hash of a parameter set; equal values give equal keys (``0.010`` and ``0.01`` alike).

    A strategy other than ema_cross_rsi adds its name and its own parameters (``strategy_params``,
    a pydantic model), so its reports never replace the default strategy's."""
    canonical = ";".join(f"{name}={_canonical(value)}" for name, value in sorted(params.model_dump().items()))
    if strategy and strategy != DEFAULT_STRATEGY:
        own = sorted(strategy_params.model_dump().items()) if strategy_params is not None else []
        canonical += f";STRATEGY={strategy};" + ";".join(f"{name}={_canonical(value)}" for name, value in own)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def report_paths(
    reports_dir: str | os.PathLike[str],
    params: StrategyParameters,
    strategy: str | None = None,
    strategy_params: Any = None,
) -> tuple[Path, Path]:
    """``(html, json)`` paths of the report of ``params`` (and the strategy, see ``report_key``) in ``reports_dir``."""
    key = report_key(params, strategy, strategy_params)
    folder = Path(reports_dir)
    return folder / f"{key}.html", folder / f"{key}.json"


def latest_report_path(reports_dir: str | os.PathLike[str], params: StrategyParameters) -> Path | None:
    """The HTML report of the latest run with ``params`` in ``reports_dir``, or None when there is none."""
    html, _ = report_paths(reports_dir, params)
    return html if html.is_file() else None


def write_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def json_bytes(document: dict[str, Any]) -> bytes:
    """Indented UTF-8 JSON of a result document (numpy numbers allowed)."""
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY) + b"\n"
