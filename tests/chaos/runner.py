"""One replay of real candles through the whole stack, clean or under a chaos schedule.

Built on ``tests.support.stack`` (the processes) and ``tests.pipeline`` (the data and the
replay settings of the parity tests). While it runs, a monitor thread records every published
ticker price (the executor's view of the market: the stream is trimmed, the record is not), when
each restarted process is ready again, and when each armed exchange fault was consumed. At the
end the ledger, the exchange's state and the bus are read into one JSON-able record, which
``tests.chaos.verdict`` judges.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import redis

from shared import streams
from tests.chaos.plan import SLOT_OF, Action, ActionKind, Fault, Sizes, schedule
from tests.pipeline.ledger import MINUTE, REPLAYS
from tests.support.drain import groups_drained
from tests.support.stack import ROOT, ServiceProcess, Stack, prepare_data, start_stack

RISK = {"STOP_LOSS_PERCENTAGE": "0.002", "TAKE_PROFIT_PERCENTAGE": "0.004"}
# The strategy publishes a signal up to 12 candles late and the executor acts on it up to 12
# candles after its candle closed (market time); the stack's wall-clock ages are unset for that.
ENV: dict[str, str | None] = {
    **RISK,
    "SIGNAL_MAX_LAG_CANDLES": "12",
    "SIGNAL_MAX_AGE_CANDLES": "12",
    "SIGNAL_MAX_AGE_S": None,
    "MAX_DATA_AGE_S": None,
    "RECONNECT_MAX_DELAY_S": "1",
    "MARKET_STALE_AFTER_S": "2",
}
SERVICES_RUN = ("market_data", "strategy", "executor", "api")
STUCK_AFTER_S = 30.0
ABORT = threading.Event()  # set on Ctrl-C: both replays of a parallel run stop and clean up


class Aborted(Exception):
    """The run was interrupted."""


def check_abort() -> None:
    if ABORT.is_set():
        raise Aborted()


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Monitor(threading.Thread):
    """Polls the stack every 0.2 s; every Redis or HTTP error (a crash in progress) is retried."""

    def __init__(self, stack: Stack, symbols: list[str]) -> None:
        super().__init__(daemon=True, name="chaos-monitor")
        self.stack, self.symbols = stack, symbols
        self.ticks: dict[str, list[tuple[str, int, str]]] = {s: [] for s in symbols}  # (entry id, market ms, price)
        self.last_id = dict.fromkeys(symbols, "0-0")
        self.waiting: list[dict] = []  # restart records waiting for readiness
        self.slots: dict[str, dict] = {}  # slot -> fault record armed in it
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.client = redis.Redis.from_url(stack.redis_url, decode_responses=True, socket_timeout=2)

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.poll()
            self.stop_event.wait(0.2)
        self.poll()

    def poll(self) -> None:
        try:
            for symbol in self.symbols:
                while True:
                    entries = self.client.xrange(
                        streams.ticker_stream(symbol), f"({self.last_id[symbol]}", "+", count=5000
                    )
                    if not entries:
                        break
                    for entry_id, fields in entries:
                        self.ticks[symbol].append((entry_id, int(fields["ts_event_ms"]), fields["price"]))
                    self.last_id[symbol] = entries[-1][0]
            with self.lock:
                for record in list(self.waiting):
                    if self._ready(record):
                        record["ready_ms"] = wall_ms()
                        self.waiting.remove(record)
        except (redis.RedisError, OSError):
            pass
        with self.lock:
            if self.slots:
                try:
                    armed = sim_get(self.stack, "faults")
                except OSError:
                    return
                for slot, record in list(self.slots.items()):
                    if not armed.get(slot):
                        record["consumed_ms"] = wall_ms()
                        del self.slots[slot]

    def _ready(self, record: dict) -> bool:
        name, instance = record["target"], record.get("instance")
        if name in ("strategy", "executor"):
            return all(self.client.get(streams.lease_key(name, s)) == instance for s in self.symbols)
        if name == "redis":  # restored keys prove nothing: wait for prices published after the restart
            # (the services killed meanwhile have windows of their own)
            return all(t and int(t[-1][0].split("-")[0]) > record["restart_ms"] for t in self.ticks.values())
        return bool(self.client.exists(streams.health_key(name, instance)))


def sim_get(stack: Stack, path: str) -> Any:
    with urllib.request.urlopen(f"{stack.sim_url}/_sim/{path}", timeout=10) as response:
        return json.loads(response.read())


def sim_post(stack: Stack, path: str, body: dict | None = None) -> Any:
    request = urllib.request.Request(
        f"{stack.sim_url}/_sim/{path}",
        data=json.dumps(body or {}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


FAULT_PATHS = {
    Fault.FAIL_BEFORE: "faults/fail",
    Fault.FAIL_AFTER: "faults/fail",
    Fault.THROTTLE_429: "faults/throttle",
    Fault.BAN_418: "faults/throttle",
    Fault.DELAY_BEFORE: "faults/delay",
    Fault.DELAY_AFTER: "faults/delay",
    Fault.TIMESTAMP_COUNT: "faults/timestamp",
    Fault.STALL: "faults/stall",
    Fault.WS_DROP: "ws/drop",
    Fault.USER_DATA_END: "ws/terminate",
    Fault.SERVER_SHUTDOWN: "ws/shutdown",
}


REST_ANY = "/api/"
RETARGET_S = 8.0


class Chaos:
    """Executes a schedule against a running stack and keeps the timeline of what happened."""

    def __init__(self, stack: Stack, monitor: Monitor, seed: int, zygotes: Zygotes) -> None:
        self.stack, self.monitor = stack, monitor
        self.timeline: list[dict] = []
        self.deferred: list[Action] = []
        self.later: list[tuple[float, object]] = []  # (seconds from start, call): the end of a clock offset
        self.start = time.monotonic()
        self.rng = random.Random(seed ^ 0x5EED)
        self.running = {name: stack.processes[name][-1] for name in SERVICES_RUN}
        self.zygotes = zygotes

    def run(self, actions: list[Action], start: float, until_s: float) -> None:
        """Execute ``actions`` at their times from ``start`` (monotonic); a fault whose slot is
        still armed waits for it to be consumed, until ``until_s``."""
        queue = list(actions)
        while queue or self.deferred or self.later:
            check_abort()
            now = time.monotonic() - start
            for due, call in [item for item in self.later if item[0] <= now]:
                self.later.remove((due, call))
                call()
            if now > until_s and not self.later:
                # Faults still waiting are dropped (and shown); kills late behind schedule still run.
                for action in self.deferred + [a for a in queue if a.kind is ActionKind.FAULT]:
                    self.timeline.append(
                        {
                            "kind": "fault",
                            "target": action.target,
                            "start_ms": wall_ms(),
                            "params": action.params,
                            "skipped": "its slot stayed armed until the quiet tail",
                        }
                    )
                for action in queue:
                    if action.kind is not ActionKind.FAULT:
                        self.do(action)
                break
            self.retarget()
            for action in list(self.deferred):
                if not self.slot_busy(action):
                    self.deferred.remove(action)
                    self.do(action)
            if queue and queue[0].at_s <= now:
                action = queue.pop(0)
                if action.kind is ActionKind.KILL and self.all_starting() and action.params.get("waited", 0) < 30:
                    # Every service is still coming back: this kill waits (up to 30 s), the faults do not.
                    waited = action.params.get("waited", 0) + 1
                    queue.append(Action(now + 1, action.kind, action.target, {**action.params, "waited": waited}))
                    queue.sort(key=lambda a: a.at_s)
                    continue
                self.do(action)
                continue
            time.sleep(0.1)

    def retarget(self) -> None:
        """A fault armed on the order path that no order hit within ``RETARGET_S`` is armed
        again on every REST path: a chaos executor sends a few orders a minute, and a slot held
        by one waiting fault kept every later fault of that slot (and kind) from firing."""
        now = wall_ms()
        with self.monitor.lock:
            waiting = [
                (slot, record)
                for slot, record in self.monitor.slots.items()
                if record["params"].get("path_prefix", REST_ANY) != REST_ANY
                and now - record["start_ms"] > RETARGET_S * 1000
            ]
        if not waiting:
            return
        try:
            armed = sim_get(self.stack, "faults")
            for slot, record in waiting:
                if armed.get(slot):  # still armed, not consumed meanwhile
                    body = {**record["params"], "path_prefix": REST_ANY}
                    sim_post(self.stack, FAULT_PATHS[Fault(record["target"])], body)
                    record["retargeted_ms"] = wall_ms()
                    record["params"] = body
        except OSError:
            pass  # the next round tries again

    def slot_busy(self, action: Action) -> bool:
        slot = SLOT_OF.get(Fault(action.target)) if action.kind is ActionKind.FAULT else None
        with self.monitor.lock:
            return slot is not None and slot in self.monitor.slots

    def do(self, action: Action) -> None:
        if action.kind is ActionKind.KILL:
            self.kill(action)
        elif action.kind is ActionKind.REDIS_CRASH:
            self.redis_crash(action)
        else:
            self.fault(action)

    def kill(self, action: Action) -> None:
        name = self.pick(action.target)
        record = {"kind": "kill", "target": name, "start_ms": wall_ms()}
        running = self.running[name]
        running.process.send_signal(signal.SIGKILL)
        running.process.wait(10)
        time.sleep(action.params["down_s"])
        fresh = self.zygotes.fork(name)
        self.running[name] = fresh
        record.update(restart_ms=wall_ms(), instance=fresh.instance)
        self._track(record)

    def starting(self) -> set[str]:
        """Services coming back from their last kill."""
        with self.monitor.lock:
            return {r["target"] for r in self.monitor.waiting}

    def all_starting(self) -> bool:
        return all(s in self.starting() for s in SERVICES_RUN)

    def pick(self, planned: str) -> str:
        """The planned service, unless it is still coming back from its last kill: then another
        one that is up (the run loop holds a kill back while none is). On a busy machine a
        service takes longer to start than the schedule leaves between kills, and one killed
        again and again before it is ready would only measure how long it takes to start. One
        kill in ten hits a starting process anyway (a crash during start-up and reconciliation)."""
        if self.rng.random() < 0.1:
            return planned
        starting = self.starting()
        if planned not in starting:
            return planned
        ready = [s for s in SERVICES_RUN if s not in starting]
        return self.rng.choice(ready) if ready else planned

    def redis_crash(self, action: Action) -> None:
        record = {"kind": "redis_crash", "target": "redis", "start_ms": wall_ms()}
        self.stack.redis.kill()
        time.sleep(action.params["down_s"])
        self.stack.redis.restart()
        record.update(restart_ms=wall_ms())
        self._track(record)

    def _track(self, record: dict) -> None:
        with self.monitor.lock:
            self.timeline.append(record)
            # A process killed before it was ready never will be: its successor's readiness counts.
            self.monitor.waiting = [r for r in self.monitor.waiting if r["target"] != record["target"]]
            self.monitor.waiting.append(record)

    def fault(self, action: Action) -> None:
        fault = Fault(action.target)
        params = dict(action.params)
        slot = SLOT_OF.get(fault)
        if self.slot_busy(action):
            self.deferred.append(action)
            return
        record = {"kind": "fault", "target": fault.value, "start_ms": wall_ms(), "params": params}
        try:
            if fault is Fault.TIMESTAMP_CLOCK:
                sim_post(self.stack, "faults/clock", {"offset_ms": params["offset_ms"]})

                def back(record: dict = record) -> None:
                    sim_post(self.stack, "faults/clock", {"offset_ms": 0})
                    record["end_ms"] = wall_ms()

                self.later.append((time.monotonic() - self.start + params["hold_s"], back))
            else:
                body = {k: v for k, v in params.items() if k != "hold_s"}
                sim_post(self.stack, FAULT_PATHS[fault], body)
                if fault is Fault.STALL:
                    record["end_ms"] = record["start_ms"] + int(params["seconds"] * 1000)
        except OSError as exc:
            record["error"] = str(exc)
        with self.monitor.lock:
            self.timeline.append(record)
            if slot is not None and "error" not in record:
                self.monitor.slots[slot] = record


class Forked:
    """A service process forked by a zygote, with the part of ``subprocess.Popen`` the stack uses."""

    def __init__(self, pid: int, log: Path) -> None:
        self.pid, self.exit_file = pid, log.with_name(log.name + ".exit")

    def poll(self) -> int | None:
        try:
            return int(self.exit_file.read_text())
        except (OSError, ValueError):
            return None

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        while (code := self.poll()) is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0)
            time.sleep(0.02)
        return code


class Zygotes:
    """One zygote per service (tests/support/zygote.py): the process that replaces a killed one
    is forked from it, its imports already done. Started before the stack, so their imports do
    not compete with the replay."""

    def __init__(self, folder: Path, names: tuple[str, ...]) -> None:
        self.folder = folder
        self.stack: Stack | None = None
        self.processes: dict[str, subprocess.Popen[str]] = {}
        if not names:
            return
        folder.mkdir(parents=True, exist_ok=True)
        base = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            # No thread pools before the fork (a child would inherit them broken).
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "NUMBA_NUM_THREADS": "1",
            "JE_ARROW_MALLOC_CONF": "background_thread:false",  # pyarrow's jemalloc thread
        }
        try:
            for name in names:
                with (folder / f"{name}.log").open("wb") as errors:
                    self.processes[name] = subprocess.Popen(
                        [sys.executable, "-m", "tests.support.zygote", name],
                        cwd=ROOT,
                        env=base,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=errors,
                        text=True,
                    )
            for name, process in self.processes.items():
                assert process.stdout is not None
                line = process.stdout.readline()  # its imports may take a minute on a loaded machine
                if line.strip() != "ready":
                    raise RuntimeError(f"zygote of {name} did not start: {(folder / f'{name}.log').read_text()[-800:]}")
        except BaseException:
            self.stop()
            raise

    def fork(self, name: str) -> ServiceProcess:
        """A fresh process of ``name`` on the stack, as ``Stack.start`` would start it."""
        stack = self.stack
        assert stack is not None
        replicas = stack.processes.setdefault(name, [])
        log = stack.folder / f"{name}-{len(replicas)}-{int(time.time() * 1000)}.log"
        instance = f"{name}-{len(replicas)}-{time.monotonic_ns()}"
        env = {**stack.env, "REDIS_URL": stack.redis.user_url(name), "INSTANCE_ID": instance}
        process = self.processes[name]
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps({"log": str(log), "env": env}) + "\n")
        process.stdin.flush()
        pid = int(process.stdout.readline())
        service = ServiceProcess(name, Forked(pid, log), log, instance)  # type: ignore[arg-type]
        replicas.append(service)
        return service

    def stop(self) -> None:
        for process in self.processes.values():
            if process.stdin is not None:
                process.stdin.close()
            process.kill()
            process.wait(10)
            if process.stdout is not None:
                process.stdout.close()


def replay_files(folder: Path, symbols: list[str], rows: int) -> list[Path]:
    return [prepare_data(folder, REPLAYS[s][0], s, REPLAYS[s][1], rows) for s in symbols]


def run_replay(folder: Path, symbols: list[str], sizes: Sizes, seed: int | None, log=print) -> dict:
    """Replay ``sizes.rows`` candles of each symbol; with a ``seed``, under the chaos schedule of
    that seed, which starts once every service is up (None: a clean run)."""
    label = "chaos" if seed is not None else "clean"
    folder.mkdir(parents=True, exist_ok=True)
    data = replay_files(folder, symbols, sizes.rows)
    zygotes = Zygotes(folder / "zygotes", SERVICES_RUN if seed is not None else ())
    try:
        return replay(folder, symbols, sizes, seed, log, label, data, zygotes)
    finally:
        zygotes.stop()


def replay(
    folder: Path,
    symbols: list[str],
    sizes: Sizes,
    seed: int | None,
    log,
    label: str,
    data: list[Path],
    zygotes: Zygotes,
) -> dict:
    stack = start_stack(
        folder / "stack",
        data=data,
        symbols=symbols,
        speed=sizes.speed,
        history=sizes.history,
        services=SERVICES_RUN,
        extra_env=ENV,
        appendonly=True,
        exchange_last=True,
    )
    zygotes.stack = stack
    monitor = Monitor(stack, symbols)
    chaos = Chaos(stack, monitor, seed or 0, zygotes)
    try:
        monitor.start()
        anchor = sim_get(stack, "state")
        live_at = (
            time.monotonic()
            - (anchor["market"]["market_time"] - live_open(anchor, symbols, sizes.history)) / sizes.speed / 1000
        )
        wait_ready(stack, monitor, symbols, sizes)
        ready_at = time.monotonic()
        span = live_at + sizes.live_s - sizes.quiet_tail_s - ready_at
        log(f"{label}: every service up {ready_at - live_at:.0f} s into the replay; {span:.0f} s of faults follow")
        if seed is not None:
            actions = schedule(seed, sizes, span)
            chaos.start = ready_at
            chaos.run(actions, ready_at, span)
            with monitor.lock:  # still armed: nothing hit them, the reset clears them
                for record in monitor.slots.values():
                    record["skipped"] = "armed, never hit before the quiet tail"
                monitor.slots.clear()
                sim_post(stack, "faults/reset")
        last_action_ms = wall_ms()
        # Faults end when the last killed process is up again: how long Python takes to import on
        # a busy machine is not the bot's recovery time, which the 30 s below bound.
        recovered = time.monotonic() + 120
        while time.monotonic() < recovered:
            with monitor.lock:
                if not monitor.waiting:
                    break
            time.sleep(0.2)
        faults_end_ms = wall_ms()
        log(
            f"{label}: faults over, every process up {(faults_end_ms - last_action_ms) / 1000:.0f} s after the last;"
            f" stuck check in {STUCK_AFTER_S:.0f} s"
        )
        while time.time() < faults_end_ms / 1000 + STUCK_AFTER_S:
            check_abort()
            time.sleep(0.2)
        stuck = stuck_items(stack, symbols, faults_end_ms)
        wait_replay_end(stack, symbols, sizes)
        drained(stack, symbols)
        monitor.stop_event.set()
        monitor.join(10)
        record = collect(stack, symbols, sizes, monitor, chaos.timeline, stuck, faults_end_ms)
        record["label"] = label
        record["last_action_ms"] = last_action_ms
        record["data"] = [str(p) for p in data]
        return record
    finally:
        monitor.stop_event.set()
        stack.stop_all()


def wait_ready(stack: Stack, monitor: Monitor, symbols: list[str], sizes: Sizes) -> None:
    """Until prices flow for every symbol, strategy and executor hold every lease and the api
    answers: faults before that would only hit a stack still starting."""
    client = stack.client()
    since = wall_ms()

    def ready() -> bool:
        check_abort()
        with monitor.lock:
            flowing = all(monitor.ticks[s] and int(monitor.ticks[s][-1][0].split("-")[0]) > since for s in symbols)
        leases = all(client.get(streams.lease_key(n, s)) for n in ("strategy", "executor") for s in symbols)
        api = client.exists(*[streams.health_key("api", p.instance) for p in stack.processes["api"]])
        return flowing and leases and bool(api)

    stack.wait_for(ready, sizes.live_s, "every service to be up")


def live_open(state: dict, symbols: list[str], history: int) -> int:
    """Market open time of the first live candle (the one after the warm-up history)."""
    rows = state["market"]["symbols"]
    return min(int(rows[s]["candle_open_time"]) - (int(rows[s]["candle_index"]) - history) * MINUTE for s in symbols)


def wait_replay_end(stack: Stack, symbols: list[str], sizes: Sizes) -> None:
    client = stack.client()

    def done() -> bool:
        check_abort()
        try:
            state = sim_get(stack, "state")
            last = [client.hget(streams.KLINE_LAST_OPEN, s) for s in symbols]
        except (OSError, redis.RedisError):
            return False
        firsts = [client.xrange(streams.kline_stream(s), count=1) for s in symbols]
        ends = state["market"]["symbols"]
        return all(ends[s]["finished"] for s in symbols) and all(
            last_open and first and int(last_open) >= int(first[0][1]["open_time_ms"]) + (sizes.rows - 2) * MINUTE
            for last_open, first in zip(last, firsts, strict=True)
        )

    stack.wait_for(done, sizes.live_s + 120, "the end of the replay")


def drained(stack: Stack, symbols: list[str], timeout: float = 90) -> None:
    client = stack.client()

    def idle() -> bool:
        check_abort()
        for symbol in symbols:
            for stream in (
                streams.executor_inbox(symbol),
                streams.ticker_stream(symbol),
                streams.kline_stream(symbol),
                streams.executions_stream(symbol),
            ):
                if not groups_drained(client, stream):
                    return False
        return True

    try:
        stack.wait_for(idle, timeout, "every consumer group to drain")
    except AssertionError:
        pass  # left pending: reported as stuck by the verdict
    time.sleep(2.0)


def stuck_items(stack: Stack, symbols: list[str], faults_end_ms: int) -> dict:
    """What is still unfinished ``STUCK_AFTER_S`` after the last fault (brief item 7)."""
    client = stack.client()
    claim_idle_ms = max(int(stack.env.get("LEASE_TTL_MS", "5000")) * 2, 30_000)
    pending = []
    alive = {p.instance for replicas in stack.processes.values() for p in replicas if p.alive()}
    for key in (
        sorted(client.scan_iter("market:*"))
        + sorted(client.scan_iter("executor:inbox:*"))
        + sorted(client.scan_iter("account:executions:*"))
    ):
        if client.type(key) != "stream":
            continue
        for group in client.xinfo_groups(key):
            for entry in client.xpending_range(key, group["name"], "-", "+", 1000):
                if entry["time_since_delivered"] >= claim_idle_ms:
                    pending.append(
                        f"{key} {entry['message_id']} idle {entry['time_since_delivered']} ms, "
                        f"delivered {entry['times_delivered']}x to {entry['consumer']}"
                        f" ({'alive' if entry['consumer'] in alive else 'dead'})"
                    )
    dead = {key: client.xlen(key) for key in client.scan_iter("deadletter:*")}
    database = stack.folder / "bot.sqlite3"
    with sqlite3.connect(database) as connection:
        positions = [
            f"{s} position {i} {st}"
            for i, s, st in connection.execute(
                "SELECT id, symbol, status FROM positions WHERE status IN ('OPENING', 'CLOSING')"
            )
        ]
        orders = [
            f"{s} order {c} {st}"
            for c, s, st in connection.execute(
                "SELECT client_order_id, symbol, status FROM orders WHERE status IN ('INTENT', 'SUBMITTED', 'UNKNOWN')"
                " AND created_at_ms < ?",
                (faults_end_ms,),
            )
        ]
    return {
        "pending": pending,
        "dead_letters": {k: v for k, v in dead.items() if v},
        "positions": positions,
        "orders": orders,
        "at_ms": wall_ms(),
    }


def collect(
    stack: Stack,
    symbols: list[str],
    sizes: Sizes,
    monitor: Monitor,
    timeline: list[dict],
    stuck: dict,
    faults_end_ms: int,
) -> dict:
    client = stack.client()
    state = sim_get(stack, "state")
    database = stack.folder / "bot.sqlite3"
    with sqlite3.connect(database) as connection:
        connection.row_factory = sqlite3.Row
        positions = [dict(r) for r in connection.execute("SELECT * FROM positions ORDER BY id")]
        fills = [dict(r) for r in connection.execute("SELECT * FROM fills ORDER BY id")]
        orders = [dict(r) for r in connection.execute("SELECT * FROM orders ORDER BY id")]

    def entries(stream: str) -> list[tuple[str, dict]]:
        return [(i, f) for i, f in client.xrange(stream)]

    per_symbol = {}
    for symbol in symbols:
        per_symbol[symbol] = {
            "first_open": int(client.xrange(streams.kline_stream(symbol), count=1)[0][1]["open_time_ms"]),
            "kline_opens": [int(f["open_time_ms"]) for _, f in entries(streams.kline_stream(symbol))],
            "inbox": [
                {
                    "id": i,
                    "type": f.get("type"),
                    "side": f.get("side"),
                    "command": f.get("command"),
                    "candle": int(f["candle_open_time_ms"]) if f.get("candle_open_time_ms") else None,
                    "event_id": f.get("event_id"),
                }
                for i, f in entries(streams.executor_inbox(symbol))
            ],
            "ticks": monitor.ticks[symbol],
        }
    decisions = [
        {
            "id": i,
            "symbol": f["symbol"],
            "candle": int(f["candle_open_time_ms"]),
            "entry": f["entry"] == "true",
            "exit": f["exit"] == "true",
            "history": bool(json.loads(f.get("indicators") or "{}").get("history")),
            "note": f.get("note", ""),
        }
        for i, f in entries(streams.DECISIONS)
    ]
    signals = [
        {
            "id": i,
            "symbol": f["symbol"],
            "side": f["side"],
            "candle": int(f["candle_open_time_ms"]),
            "event_id": f["event_id"],
        }
        for i, f in entries(streams.SIGNALS)
    ]
    alerts = [
        {
            "id": i,
            "code": f.get("code"),
            "message": f.get("message"),
            "symbol": f.get("symbol"),
            "level": f.get("level"),
        }
        for i, f in entries(streams.EXECUTOR_EVENTS)
        if f.get("type") == "executor_alert"
    ]
    return {
        "symbols": symbols,
        "speed": sizes.speed,
        "history": sizes.history,
        "rows": sizes.rows,
        "calibration": {"wall_ms": state["wall_time"], "market_ms": state["market"]["market_time"]},
        "per_symbol": per_symbol,
        "decisions": decisions,
        "signals": signals,
        "alerts": alerts,
        "positions": positions,
        "fills": fills,
        "orders": orders,
        "allowance_candles": allowance_candles(stack.env),
        "min_fired": sizes.min_fired,
        "requests": state["requests"],
        "exchange": {
            "trades": state["trades"],
            "balances": state["balances"],
            "orders": state["orders"],
            "client_order_ids": state["client_order_ids"],
        },
        "initial_balances": {"USDT": "10000"},
        "timeline": timeline,
        "stuck": stuck,
        "faults_end_ms": faults_end_ms,
        "crashes": crashes(stack),
    }


def allowance_candles(env: dict[str, str]) -> float:
    """How many candles after its candle's close a BUY may still be acted on, as configured: the
    strategy publishes it up to SIGNAL_MAX_LAG_CANDLES late, the executor acts up to
    SIGNAL_MAX_AGE_CANDLES (market time) after the close when it knows that setting."""
    lag = float(env.get("SIGNAL_MAX_LAG_CANDLES", "3"))
    return float(env["SIGNAL_MAX_AGE_CANDLES"]) if "SIGNAL_MAX_AGE_CANDLES" in env else lag


def crashes(stack: Stack) -> list[str]:
    """Processes that exited by themselves (anything but the harness's SIGKILL): a finding."""
    found = []
    for name, replicas in stack.processes.items():
        for service in replicas:
            code = service.process.poll()
            if code is not None and code != -9:
                text = service.log.read_text(errors="replace")
                found.append(f"{name} {service.instance} exited {code}: {text[-600:]}")
    return found
