"""What a chaos run does and when: a seeded schedule of SIGKILLs, Redis crashes and exchange faults.

Pure: the same seed and sizes give the same schedule. Times are wall seconds from the moment the
replay goes live (the end of the warm-up history); the runner executes the actions in order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum

SERVICES = ("market_data", "strategy", "executor", "api")


class Fault(StrEnum):
    """The simulator faults of ``/_sim`` (docs/exchange_sim.md), one name per kind counted."""

    FAIL_BEFORE = "5xx before execution"
    FAIL_AFTER = "5xx after execution"
    THROTTLE_429 = "429 Retry-After"
    BAN_418 = "418 IP ban"
    TIMESTAMP_COUNT = "-1021 by count"
    TIMESTAMP_CLOCK = "-1021 by clock"
    DELAY_BEFORE = "delay before"
    DELAY_AFTER = "delay after"
    WS_DROP = "websocket drop"
    STALL = "stream stall"
    USER_DATA_END = "user-data end"
    SERVER_SHUTDOWN = "serverShutdown"


# Faults held in one slot of the simulator: armed only when the slot is free, counted once
# consumed by a request (a fault nobody hit changed nothing).
SLOT_OF = {
    Fault.FAIL_BEFORE: "fail",
    Fault.FAIL_AFTER: "fail",
    Fault.THROTTLE_429: "throttle",
    Fault.BAN_418: "throttle",
    Fault.DELAY_BEFORE: "delay",
    Fault.DELAY_AFTER: "delay",
    Fault.TIMESTAMP_COUNT: "timestamp_errors",
}


class ActionKind(StrEnum):
    KILL = "kill"
    REDIS_CRASH = "redis_crash"
    FAULT = "fault"


@dataclass(frozen=True)
class Action:
    at_s: float
    kind: ActionKind
    target: str  # a service, "redis", or a Fault value
    params: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Sizes:
    """How much chaos: the long run of ``make chaos`` and the short one of ``make test``."""

    rows: int  # candles replayed per symbol, history included
    kills: int
    redis_crashes: int
    faults_per_type: int
    history: int = 70
    # 60x: on the 2-core development machine two stacks at 240x fall behind the simulator (the
    # clean run's feed lagged up to 80 candles), at 120x still up to 47 under load, which no
    # comparison can use as a baseline; and a restart's wall seconds (a dead owner's lease runs
    # out after LEASE_TTL_MS, 5 s) are candles: 10 at 120x, of a signal allowance of 12.
    speed: float = 60
    quiet_tail_s: float = 45.0  # no fault in the last seconds: the stuck check runs 30 s after the last
    # Each fault kind must have fired this often (the verdict fails otherwise): more are armed,
    # since a counted fault fires only when a request hits it and the last ones may not.
    min_fired: int = 0

    @property
    def live_s(self) -> float:
        return (self.rows - self.history) * 60 / self.speed


MIN_SPAN_S = 12.0
LONG = Sizes(rows=1250, kills=104, redis_crashes=2, faults_per_type=16, min_fired=10)
# The short run stays at 120x: make test has a couple of minutes for it.
SHORT = Sizes(rows=260, kills=20, redis_crashes=1, faults_per_type=1, quiet_tail_s=32.0, speed=120)


def schedule(seed: int, sizes: Sizes, span: float) -> list[Action]:
    """Kills spread evenly over ``span`` seconds with seeded jitter and targets, Redis crashes at
    fixed fractions, and ``faults_per_type`` of each fault at seeded times. The span is what is
    left of the replay once every service is up, less the quiet tail."""
    rng = random.Random(seed)
    if span < MIN_SPAN_S:
        raise ValueError(
            f"only {span:.0f} s of the replay are left for faults (at least {MIN_SPAN_S:.0f} s needed): "
            "the stack took too long to start; replay more rows"
        )
    start = 0.0
    actions: list[Action] = []
    targets = [SERVICES[i % len(SERVICES)] for i in range(sizes.kills)]
    rng.shuffle(targets)
    gap = span / max(1, sizes.kills)
    for i, target in enumerate(targets):
        actions.append(
            Action(
                start + gap * (i + rng.uniform(0.1, 0.9)),
                ActionKind.KILL,
                target,
                {"down_s": round(rng.uniform(0.1, 1.5), 2)},
            )
        )
    for i in range(sizes.redis_crashes):
        actions.append(
            Action(
                start + span * (i + 1) / (sizes.redis_crashes + 1) + rng.uniform(-1, 1),
                ActionKind.REDIS_CRASH,
                "redis",
                {"down_s": round(rng.uniform(0.5, 2.0), 2)},
            )
        )
    for fault in Fault:
        for i in range(sizes.faults_per_type):
            at = start + span * (i + rng.uniform(0.05, 0.95)) / sizes.faults_per_type
            actions.append(Action(at, ActionKind.FAULT, fault.value, fault_params(fault, rng)))
    return sorted(actions, key=lambda a: a.at_s)


def fault_params(fault: Fault, rng: random.Random) -> dict:
    """The admin request body of one fault (order path or any REST path, short Retry-After)."""
    prefix = rng.choice(["/api/v3/order", "/api/", "/api/"])
    if fault in (Fault.FAIL_BEFORE, Fault.FAIL_AFTER):
        return {
            "count": 1,
            "status": rng.choice([500, 502, 503, 504]),
            "execute": fault is Fault.FAIL_AFTER,
            "path_prefix": prefix,
        }
    if fault in (Fault.THROTTLE_429, Fault.BAN_418):
        return {
            "count": 1,
            "status": 429 if fault is Fault.THROTTLE_429 else 418,
            "retry_after": 1,
            "path_prefix": prefix,
        }
    if fault in (Fault.DELAY_BEFORE, Fault.DELAY_AFTER):
        return {"count": 1, "ms": rng.randint(300, 2500), "path_prefix": prefix, "after": fault is Fault.DELAY_AFTER}
    if fault is Fault.TIMESTAMP_COUNT:
        return {"count": 1}
    if fault is Fault.TIMESTAMP_CLOCK:
        return {"offset_ms": rng.choice([-1, 1]) * rng.randint(6_000, 20_000), "hold_s": round(rng.uniform(1, 3), 2)}
    if fault is Fault.STALL:
        return {"seconds": round(rng.uniform(1, 4), 2)}
    return {}
