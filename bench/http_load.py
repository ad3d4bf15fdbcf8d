"""A cheap HTTP/1.1 load generator for the api benchmarks: raw asyncio streams, keep-alive.

httpx spends about as much CPU per request as the api itself (its connection pool, its models,
anyio): on a 2-core machine a load generator built on it saturates before the server does and
the benchmark measures the client. Here a request is one ``write`` of a prepared header block
and a read of the status line, the headers and ``Content-Length`` bytes, on the uvloop event
loop. Only what the api answers is understood (no chunked bodies, no redirects).

Used in separate processes (``multiprocessing``) by ``bench_api.py``: one for the timed
requests, one for the event-stream readers, so neither's cost delays the other; each reports
its own CPU seconds, so the client's share of the machine is in the table.
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

try:  # the api runs on uvloop (uvicorn's default when it is installed); so does the client
    import uvloop
except ImportError:  # pragma: no cover - uvloop is in the lock
    uvloop = None  # type: ignore[assignment]


def run[T](coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on uvloop when it is installed."""
    if uvloop is not None:
        return uvloop.run(coroutine)
    return asyncio.run(coroutine)


def cpu_seconds() -> float:
    """User + system CPU of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of another process so far (``/proc``; Linux)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_wait_seconds(pid: int) -> float:
    """Seconds the process' main thread was ready to run but waited for a core (Linux schedstat):
    what a busy machine takes from a server that would otherwise be running."""
    with open(f"/proc/{pid}/schedstat") as handle:
        return int(handle.read().split()[1]) / 1e9


def pin(cpu: int | None) -> None:
    """Keep this process on one core (when the machine has more than one), off the server's."""
    if cpu is not None and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {cpu % (os.cpu_count() or 1)})


class Connection:
    """One keep-alive connection issuing GETs one after another."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, cookie: str) -> None:
        self.reader = reader
        self.writer = writer
        self.answered = 0
        self.prefix = f"Host: {host}\r\nCookie: {cookie}\r\nAccept: */*\r\n\r\n".encode()

    @classmethod
    async def open(cls, host: str, port: int, cookie: str) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, f"{host}:{port}", cookie)

    async def get(self, path: str) -> tuple[int, int]:
        """(status, body length) of ``GET path``."""
        self.writer.write(b"GET " + path.encode() + b" HTTP/1.1\r\n" + self.prefix)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
                break
        if length:
            await self.reader.readexactly(length)
        if b"connection: close" in head.lower():
            self.close()
        self.answered += 1
        return status, length

    @property
    def closed(self) -> bool:
        # The server closes a keep-alive connection left idle (uvicorn: after 5 s).
        return self.writer.is_closing() or self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()


@dataclass
class Pool:
    """Idle connections to one server, opened on demand up to ``limit``."""

    host: str
    port: int
    cookie: str
    limit: int
    idle: list[Connection] = field(default_factory=list)
    opened: int = 0
    _free: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def acquire(self) -> Connection:
        while True:
            while self.idle:
                connection = self.idle.pop()
                if not connection.closed:
                    return connection
                self.opened -= 1
            if self.opened < self.limit:
                self.opened += 1
                try:
                    return await Connection.open(self.host, self.port, self.cookie)
                except BaseException:
                    self.opened -= 1
                    raise
            async with self._free:
                await self._free.wait()

    async def release(self, connection: Connection, broken: bool = False) -> None:
        if broken or connection.closed:
            connection.close()
            self.opened -= 1
        else:
            self.idle.append(connection)
        async with self._free:
            self._free.notify()

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()


async def fetch(pool: Pool, path: str) -> int:
    """The status of ``GET path`` on a pooled connection. A request that fails on a reused
    connection before any byte of the answer came is sent again once on a new one: the server
    had closed the idle connection (uvicorn does after 5 s), as every HTTP client allows for."""
    for attempt in (1, 2):
        connection = await pool.acquire()
        try:
            status, _ = await connection.get(path)
        except (OSError, asyncio.IncompleteReadError) as e:
            await pool.release(connection, broken=True)
            nothing_came = not (isinstance(e, asyncio.IncompleteReadError) and e.partial)
            if attempt == 1 and connection.answered > 0 and nothing_came:
                continue
            raise
        except BaseException:
            await pool.release(connection, broken=True)
            raise
        await pool.release(connection)
        return status
    raise AssertionError("unreachable")


async def open_loop(pool: Pool, path: str, seconds: float, rate: float) -> tuple[list[float], dict[str, int]]:
    """Request ``i`` is due at start + i / rate, whether or not earlier ones answered; its latency
    counts from that moment, so waiting for a free connection (the queue) is part of it."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    start = time.perf_counter() + 0.05

    async def one(due: float) -> None:
        try:
            status = await fetch(pool, path)
        except (OSError, asyncio.IncompleteReadError, ValueError) as e:
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
            return
        if status != 200:
            errors[str(status)] = errors.get(str(status), 0) + 1
            return
        latencies.append((time.perf_counter() - due) * 1000)

    tasks = []
    for i in range(int(seconds * rate)):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)
    return latencies, errors


async def closed_loop(
    host: str, port: int, cookie: str, path: str, seconds: float, connections: int
) -> tuple[int, list[float]]:
    """Each of ``connections`` sends its next request when the previous one answered: the
    server's throughput at that concurrency. Returns (answers with 200, their latencies in ms)."""
    latencies: list[float] = []
    until = time.perf_counter() + seconds

    async def worker() -> None:
        connection = await Connection.open(host, port, cookie)
        try:
            while time.perf_counter() < until:
                started = time.perf_counter()
                status, _ = await connection.get(path)
                if status == 200:
                    latencies.append((time.perf_counter() - started) * 1000)
                if connection.closed:
                    connection = await Connection.open(host, port, cookie)
        finally:
            connection.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return len(latencies), latencies


async def event_reader(
    host: str, port: int, cookie: str, path: str, counts: list[int], index: int, stop: asyncio.Event
) -> None:
    """Hold one event stream open, reading everything and counting ``event:`` lines; reconnect
    after half a second when it ends (a dropped client comes back like a browser)."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(0.5)
            continue
        try:
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: {cookie}\r\n"
                "Accept: text/event-stream\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            if head[9:12] != b"200":
                await asyncio.sleep(0.5)
                continue
            pending = b""
            while not stop.is_set():
                chunk = await reader.read(65536)
                if not chunk:
                    break
                # Six bytes carried over cannot hold a whole marker (seven): a marker split
                # across two reads is counted once, and none twice.
                data = pending + chunk
                counts[index] += data.count(b"\nevent:")
                pending = data[-6:]
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            await asyncio.sleep(0.5)
        finally:
            writer.close()
