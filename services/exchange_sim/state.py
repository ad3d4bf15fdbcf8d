"""Persistence of the account and the replay anchor in ``EXCHANGE_SIM_STATE_FILE`` (JSON).

Written atomically (temporary file, fsync, rename) after every change of the account, so a
SIGKILL loses at most the change being written. The replay anchor is kept only while the data
files, speed and history are unchanged; otherwise the market is re-based at the next start.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from .config import SimSettings

log = logging.getLogger(__name__)
VERSION = 1


def fingerprint(settings: SimSettings) -> dict[str, Any]:
    """What must not change for a saved replay anchor to stay meaningful."""
    return {
        "data": [p.name for p in settings.data_paths],
        "speed": settings.speed,
        "history": settings.history,
        "start_ms": settings.start_ms,
        "scale_symbols": settings.scale_symbols,
    }


def load(path: Path) -> dict[str, Any] | None:
    """The saved state, or None when there is none yet."""
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    if data.get("version") != VERSION:
        raise ValueError(f"{path}: unsupported state version {data.get('version')!r}")
    return data


def save(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` so that a reader sees either the old or the new file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as handle:
        json.dump({"version": VERSION, **data}, handle, separators=(",", ":"))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
