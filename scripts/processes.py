"""What `make run` needs to know about the machine's processes (Linux ``/proc``, no root needed):
who listens on a port, whether a pid is still the process it was, dying with the parent."""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
PR_SET_PDEATHSIG = 1
_LISTEN = "0A"


@dataclass(frozen=True)
class Port:
    """A port `make run` binds: which service, and the variable that moves it."""

    service: str
    host: str
    port: int
    variable: str


def port_free(host: str, port: int) -> bool:
    """Whether a server could bind ``host:port`` now (SO_REUSEADDR, as redis and uvicorn do)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            if e.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def listening_inodes(port: int) -> set[str]:
    """Socket inodes in LISTEN state on ``port`` (any address, IPv4 and IPv6)."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 9 and parts[3] == _LISTEN and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(parts[9])
    return inodes


def listeners(port: int) -> list[int]:
    """Pids of the processes holding a listening socket on ``port`` (those this user may see)."""
    inodes = {f"socket:[{inode}]" for inode in listening_inodes(port)}
    if not inodes:
        return []
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    found.append(int(entry.name))
                    break
        except OSError:
            continue
    return sorted(found)


def command_line(pid: int) -> str:
    """The process's command line, or "" when it is gone or hidden."""
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def environment(pid: int) -> dict[str, str]:
    """The environment the process was started with (empty when not readable)."""
    try:
        raw = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {key.decode(errors="replace"): value.decode(errors="replace") for key, value in pairs}


def start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot: with the pid, it names one process."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def parent_of(pid: int) -> int:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def holder_text(port: int) -> str:
    """'pid 123 (redis-server *:6380)' for each listener, or a hint when none is visible."""
    pids = listeners(port)
    if not pids:
        return "a process this user cannot see (try `sudo ss -ltnp`)"
    return ", ".join(f"pid {pid} ({command_line(pid)[:80] or '?'})" for pid in pids)


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie waiting for its parent has ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def die_with_parent(parent: int | None = None, sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent (pid ``parent``) dies.

    Linux ``prctl(PR_SET_PDEATHSIG)``; in a freshly forked child pass the parent's pid, so a
    parent that died before the request took effect is noticed too.
    """
    parent = os.getppid() if parent is None else parent
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), sig)
