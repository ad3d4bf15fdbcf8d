"""``python -m tests.support.zygote NAME``: import ``services.NAME`` once, then fork a fresh
process of it for every request line on stdin.

A request is one JSON line ``{"log": path, "env": {...}}``; the answer on stdout is the child's
pid. The child runs with exactly ``env`` as its environment, writes its output to ``log`` and runs
the service as ``python -m services.NAME`` would; when it exits, the zygote writes its exit code
(negative: the signal that ended it, as ``subprocess`` reports it) to ``<log>.exit``.

A chaos run SIGKILLs a hundred processes in a few minutes; on a loaded 2-core machine each cold
start spends 2-5 CPU seconds and up to a minute of wall time importing numpy, pandas and
FastAPI, which measures the machine, not the restart. A forked child shares the zygote's
imports and still starts fresh: nothing is opened (no settings read, no Redis, no socket, no
event loop) before the fork.
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
import signal
import sys
from pathlib import Path

logs: dict[int, Path] = {}


def reap(signum: int, frame: object) -> None:
    """Record the exit code of every child that ended."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        log = logs.pop(pid, None)
        if log is not None:
            log.with_name(log.name + ".exit").write_text(str(code))


def child(name: str, log: Path, env: dict[str, str]) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.environ.clear()  # exactly the environment a cold start would get
    os.environ.update(env)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    code = 0
    try:
        sys.argv = [f"services.{name}"]
        sys.modules.pop(f"services.{name}.__main__", None)  # imported for its imports; run afresh
        runpy.run_module(f"services.{name}", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - a crash is reported as the exit code a crash gives
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def main() -> None:
    name = sys.argv[1]
    importlib.import_module(f"services.{name}.__main__")
    signal.signal(signal.SIGCHLD, reap)
    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        log = Path(request["log"])
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})  # the pid is known before its exit is
        pid = os.fork()
        if pid == 0:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
            child(name, log, request["env"])
        logs[pid] = log
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        print(pid, flush=True)


if __name__ == "__main__":
    main()
