"""``python -m tests.support.warm_start NAME READY_FILE``: import ``services.NAME``, touch
READY_FILE, then run the service once a line arrives on stdin.

A test that SIGKILLs a service and restarts it means to test the restart (state rebuilt from
Redis and the ledger), not how long a loaded machine takes to import numpy and pandas: at 240x
those seconds are dozens of candles. The process started this way is still a fresh one; it
opens nothing (no settings, no Redis, no socket) before the line arrives.
"""

from __future__ import annotations

import importlib
import runpy
import sys
from pathlib import Path


def main() -> None:
    name, ready = sys.argv[1], Path(sys.argv[2])
    importlib.import_module(f"services.{name}.__main__")
    ready.touch()
    sys.stdin.readline()
    sys.argv = [f"services.{name}"]
    runpy.run_module(f"services.{name}", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
