"""The comparison of a clean run and a chaos run of the same candles (pure, no I/O).

Every difference between the two runs' trades must be explained by one of the rules below,
each checked against the data of both runs; whatever no rule explains is a real difference.
Besides, the chaos run alone must satisfy:

* **own inputs** - its trades are what ``tests.chaos.walk`` derives from what its executor
  received (arrival order, levels from the fill, nothing before the fill), so a fault may change
  what the executor was given, never how it acts on it;
* **no duplicate**: no client order id reached the exchange twice, no two orders share one;
* **nothing lost**: every BUY is a position or a recorded skip, no candle lacks its decision,
  the kline stream has no gap or duplicate;
* **ledger = exchange**: the same fills by trade id (price, quantity, commission) and the same
  balances (the starting balance plus the ledger's fills equals the exchange's account);
* **nothing stuck** 30 s after the last fault: no pending entry older than the claim idle time,
  no dead letter, no position OPENING/CLOSING, no order INTENT/SUBMITTED/UNKNOWN;
* **the chaos happened**: each simulator fault kind fired at least ``min_fired`` times.
"""

from __future__ import annotations

import csv
import gzip
import itertools
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from pathlib import Path

from tests.chaos.plan import Fault
from tests.chaos.walk import MINUTE, STEPS, Candle, Trade, Walked, ledger_trades, walk_symbol


class Rule(StrEnum):
    """The allowed differences; each value is the rule as the table prints it."""

    SKIPPED_STALE = (
        "entry skipped: the executor could not act within the signal's allowance "
        "(its record says so, and an executor/Redis outage, an exchange fault or a strategy-path outage "
        "lies between the candle's close and the end of its allowance)"
    )
    SIGNAL_LATE = (
        "no signal: the candle reached the strategy after SIGNAL_MAX_LAG_CANDLES "
        "(its decision is marked history, and a strategy/market_data/Redis outage or a stream fault lies "
        "between the candle's close and the end of that allowance)"
    )
    OTHER_FILL = (
        "exit from another fill: the entry filled at another walk step, both within the signal's allowance, "
        "so its levels and the prices after the fill differ; the chaos exit is what those prices give"
    )
    PRICES_UNPUBLISHED = (
        "exit at another price: a price that crossed a level in the clean run was never published "
        "in the chaos run, during a market_data/Redis outage or a stream fault"
    )
    SELL_LATE = (
        "exit signal missing or late: the SELL's candle reached the strategy late or after later prices "
        "(an outage or stream fault overlaps it); the chaos exit is what the executor was given"
    )
    POSITION_STATE = (
        "entry met another position state: its BUY arrived in both runs, but one run still held (or no "
        "longer held) a position that itself differs by an allowed rule"
    )


PUBLISH_PATH = {"market_data", "redis", Fault.WS_DROP.value, Fault.STALL.value, Fault.SERVER_SHUTDOWN.value}
STRATEGY_PATH = PUBLISH_PATH | {"strategy"}
EXECUTOR_PATH = {"executor", "redis"} | {f.value for f in Fault}


@dataclass
class Difference:
    symbol: str
    clean: Trade | None
    chaos: Trade | None
    rule: Rule | None
    evidence: str

    def row(self) -> str:
        return f"{self.symbol} clean {self.clean or '-'} | chaos {self.chaos or '-'}: {self.evidence}"


@dataclass
class Report:
    kills: Counter = field(default_factory=Counter)
    faults: Counter = field(default_factory=Counter)
    faults_unfired: Counter = field(default_factory=Counter)
    trades_clean: int = 0
    trades_chaos: int = 0
    identical: int = 0
    allowed: list[Difference] = field(default_factory=list)
    real: list[Difference] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    too_few_faults: list[str] = field(default_factory=list)
    clean_problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not (
            self.real
            or self.duplicates
            or self.lost
            or self.mismatches
            or self.stuck
            or self.crashes
            or self.too_few_faults
            or self.clean_problems
        )


# -- reading a run -------------------------------------------------------------------------------


def load_candles(path: str) -> list[Candle]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as handle:
        rows = list(csv.DictReader(handle))
    return [Candle(Decimal(r["open"]), Decimal(r["high"]), Decimal(r["low"]), Decimal(r["close"])) for r in rows]


class Run:
    """One run's record with the derived views the rules need."""

    def __init__(self, record: dict) -> None:
        self.record = record
        self.symbols: list[str] = record["symbols"]
        self.speed: float = record["speed"]
        self.candles = {s: load_candles(p) for s, p in zip(self.symbols, record["data"], strict=True)}
        self.first_open = {s: record["per_symbol"][s]["first_open"] for s in self.symbols}
        self.windows = disruption_windows(record)
        self.walked: dict[str, Walked] = {}
        self.ledger: dict[str, list[Trade]] = {}
        for symbol in self.symbols:
            first = self.first_open[symbol]
            positions = [p for p in record["positions"] if p["symbol"] == symbol]
            fill_times = {
                (p["entry_candle_open_ms"] - first) // MINUTE: t
                for p in positions
                if (t := self.fill_time(p)) is not None
            }
            data = record["per_symbol"][symbol]
            self.walked[symbol] = walk_symbol(
                self.candles[symbol], first, data["ticks"], data["inbox"], positions, fill_times
            )
            self.ledger[symbol] = ledger_trades(positions, first)

    def market_ms(self, wall: int) -> int:
        calibration = self.record["calibration"]
        return calibration["market_ms"] + int((wall - calibration["wall_ms"]) * self.speed)

    def wall_ms(self, market: int) -> int:
        calibration = self.record["calibration"]
        return calibration["wall_ms"] + int((market - calibration["market_ms"]) / self.speed)

    def allowance_wall_ms(self) -> int:
        """The signal allowance (candles) in wall milliseconds at the run's speed."""
        return int(self.record["allowance_candles"] * MINUTE / self.speed)

    def fill_time(self, position: dict) -> int | None:
        """The exchange (market) time of a position's entry fill, as the simulator stamped it: the
        walk's time when the order executed (the injected clock offset moves serverTime only)."""
        times = [
            f["time_ms"] for f in self.record["fills"] if f["client_order_id"] == position["entry_client_order_id"]
        ]
        return times[0] if times else None

    def candle_wall(self, symbol: str, candle: int) -> int:
        """Wall time at which candle ``candle`` of ``symbol`` closed."""
        return self.wall_ms(self.first_open[symbol] + (candle + 1) * MINUTE)

    def overlapping(self, start_ms: int, end_ms: int, kinds: set[str]) -> list[dict]:
        return [w for w in self.windows if w["target"] in kinds and w["start"] <= end_ms and w["end"] >= start_ms]

    def decision(self, symbol: str, candle: int) -> dict | None:
        open_ms = self.first_open[symbol] + candle * MINUTE
        found = [
            d
            for d in self.record["decisions"]
            if d["symbol"] == symbol and d["candle"] == open_ms and not d.get("note")
        ]  # the strategy's own, not an executor note on its signal
        return found[-1] if found else None

    def inbox_signal(self, symbol: str, candle: int, side: str) -> dict | None:
        open_ms = self.first_open[symbol] + candle * MINUTE
        for entry in self.record["per_symbol"][symbol]["inbox"]:
            if entry["type"] == "signal" and entry["side"] == side and entry["candle"] == open_ms:
                return entry
        return None

    def skip_records(self, symbol: str, candle: int) -> list[str]:
        open_ms = self.first_open[symbol] + candle * MINUTE
        found = [
            a["message"]
            for a in self.record["alerts"]
            if a["code"] == "entry_skipped" and a.get("symbol") == symbol and f"candle {open_ms} " in a["message"]
        ]
        found += [
            f"decision log: {d['note']}"
            for d in self.record["decisions"]
            if d["symbol"] == symbol and d["candle"] == open_ms and d.get("note", "").startswith("skipped")
        ]
        found += [
            f"position {p['id']} {p['entry_client_order_id']} FAILED (intent abandoned)"
            for p in self.record["positions"]
            if p["symbol"] == symbol and p["status"] == "FAILED" and p["entry_candle_open_ms"] == open_ms
        ]
        return found


def disruption_windows(record: dict) -> list[dict]:
    """Every kill, crash and fault as a wall interval [start, end]: a kill lasts until the new
    process was ready, a slot fault until a request consumed it, a stream fault until the next
    price of every symbol was published."""
    ticks = {s: sorted(int(i.split("-")[0]) for i, _, _ in record["per_symbol"][s]["ticks"]) for s in record["symbols"]}
    end_of_all = record.get("faults_end_ms", 0) + 60_000

    def next_tick(after: int) -> int:
        import bisect

        ends = []
        for times in ticks.values():
            k = bisect.bisect_right(times, after)
            ends.append(times[k] if k < len(times) else end_of_all)
        return max(ends)

    # A process killed again before it was ready is down until its successor is ready.
    kills: dict[str, list[dict]] = {}
    for event in record["timeline"]:
        if event["kind"] in ("kill", "redis_crash"):
            kills.setdefault(event["target"], []).append(event)
    ready_after: dict[int, int] = {}
    for events in kills.values():
        later = end_of_all
        for event in reversed(events):
            later = event.get("ready_ms") or later
            ready_after[id(event)] = later
    windows = []
    for event in record["timeline"]:
        if event.get("skipped") or event.get("error"):
            continue
        start = event["start_ms"]
        if event["kind"] in ("kill", "redis_crash"):
            end = ready_after[id(event)]
            if event["target"] in ("market_data", "redis"):
                end = max(end, next_tick(event["restart_ms"]))
        elif event["target"] in (
            Fault.WS_DROP.value,
            Fault.SERVER_SHUTDOWN.value,
            Fault.STALL.value,
            Fault.USER_DATA_END.value,
        ):
            end = next_tick(event.get("end_ms", start))
        elif "consumed_ms" in event:
            end = event["consumed_ms"]
        elif "end_ms" in event:
            end = event["end_ms"]
        else:
            end = end_of_all  # armed and never consumed: it could have hit anything until the reset
        windows.append({"target": event["target"], "start": start, "end": end})
    return windows


# -- the rules -----------------------------------------------------------------------------------


def explain_missing_entry(symbol: str, clean: Run, chaos: Run, trade: Trade, allowed: dict) -> tuple[Rule, str] | None:
    """A clean trade whose entry the chaos run does not have."""
    e = trade.entry
    walked = chaos.walked[symbol]
    signal = chaos.inbox_signal(symbol, e, "BUY")
    if signal is None:
        decision = chaos.decision(symbol, e)
        if decision is None or not decision["entry"] or not decision["history"]:
            return None
        # What made the candle history happened while it could still be traded: between its
        # close and the end of the lag allowance (a window anywhere before the late decision
        # would explain any loss in a run this dense with faults).
        close = clean_close_wall(chaos, symbol, e)
        causes = chaos.overlapping(close - 1000, close + chaos.allowance_wall_ms(), STRATEGY_PATH)
        if not causes:
            return None
        return Rule.SIGNAL_LATE, f"decision of candle {e} marked history; during its allowance: {describe(causes)}"
    if e in walked.blocked:
        holder = walked.blocked[e]
        if (symbol, "chaos", holder) in allowed:
            return (
                Rule.POSITION_STATE,
                f"chaos BUY {e} met the chaos position of {holder} ({allowed[(symbol, 'chaos', holder)].name})",
            )
        return None
    if e in walked.skipped:
        records = chaos.skip_records(symbol, e)
        if not records:
            return None
        # The executor (or what feeds it) was disrupted while the BUY could still be acted on:
        # from the candle's close to the end of its allowance, or to the signal's arrival.
        close = clean_close_wall(chaos, symbol, e)
        end = max(int(signal["id"].split("-")[0]), close + chaos.allowance_wall_ms())
        causes = chaos.overlapping(close - 1000, end, EXECUTOR_PATH | STRATEGY_PATH)
        if not causes:
            return None
        return Rule.SKIPPED_STALE, f"{records[0]}; during its allowance: {describe(causes)}"
    return None


def explain_extra_entry(symbol: str, clean: Run, chaos: Run, trade: Trade, allowed: dict) -> tuple[Rule, str] | None:
    """A chaos trade whose entry the clean run does not have."""
    e = trade.entry
    walked = clean.walked[symbol]
    if clean.inbox_signal(symbol, e, "BUY") is None or e not in walked.blocked:
        return None
    holder = walked.blocked[e]
    if (symbol, "clean", holder) in allowed:
        return (
            Rule.POSITION_STATE,
            f"clean BUY {e} met the clean position of {holder} ({allowed[(symbol, 'clean', holder)].name})",
        )
    return None


def explain_other_exit(
    symbol: str, clean: Run, chaos: Run, ours: Trade, theirs: Trade, allowance: float
) -> tuple[Rule, str] | None:
    """Same entry candle, another exit: the chaos trade follows its own inputs (checked apart);
    the inputs differ from the clean run's in a way a fault explains."""
    e = ours.entry
    fill_clean, fill_chaos = clean.walked[symbol].fills.get(e), chaos.walked[symbol].fills.get(e)
    if fill_clean is None or fill_chaos is None:
        return None
    first = chaos.first_open[symbol]
    late_chaos = (fill_chaos - first) // MINUTE - e
    late_clean = (fill_clean - clean.first_open[symbol]) // MINUTE - e
    if fill_chaos - first != fill_clean - clean.first_open[symbol]:
        late = (
            lateness(chaos, symbol, e, chaos.walked[symbol].fill_times[e]),
            lateness(clean, symbol, e, clean.walked[symbol].fill_times[e]),
        )
        if max(late) > allowance:
            return None
        return Rule.OTHER_FILL, (
            f"entry filled at walk step {(fill_chaos - first) * STEPS // MINUTE % STEPS} of candle "
            f"{e + late_chaos} (clean: step {(fill_clean - clean.first_open[symbol]) * STEPS // MINUTE % STEPS}"
            f" of candle {e + late_clean})"
        )
    # Same fill step: what differs is the prices or the SELL signals after it.
    end = max(t for t in (ours.exit, theirs.exit, e + 1) if t is not None)
    missing = missing_steps(clean, chaos, symbol, e, end)
    if theirs.reason in ("stop_loss", "take_profit") and missing:
        windows = [chaos.overlapping(chaos.wall_ms(m) - 50, chaos.wall_ms(m) + 50, PUBLISH_PATH) for m in missing]
        if all(windows):
            return (
                Rule.PRICES_UNPUBLISHED,
                f"{len(missing)} walk step(s) of candles {e}-{end} unpublished; {describe(windows[0])}",
            )
        return None
    if "signal" in (ours.reason, theirs.reason):
        k = theirs.exit if theirs.reason == "signal" else ours.exit
        decision = chaos.decision(symbol, k) if k is not None else None
        late_causes = (
            chaos.overlapping(chaos.candle_wall(symbol, k) - 1000, int(decision["id"].split("-")[0]), STRATEGY_PATH)
            if decision
            else []
        )
        if decision and late_causes:
            return Rule.SELL_LATE, f"SELL of candle {k}: {describe(late_causes)}"
    return None


def lateness(run: Run, symbol: str, entry: int, fill_ms: int) -> float:
    """Candles from the close of the signal candle ``entry`` to the entry fill."""
    return (fill_ms - run.first_open[symbol] - (entry + 1) * MINUTE) / MINUTE


def missing_steps(clean: Run, chaos: Run, symbol: str, start: int, end: int) -> list[int]:
    """Market times (chaos clock) of walk steps of candles start..end published in the clean run
    but not in the chaos run."""

    def steps(run: Run) -> set[int]:
        first = run.first_open[symbol]
        return {
            (ts - first) // (MINUTE // STEPS)
            for _, ts, _ in run.record["per_symbol"][symbol]["ticks"]
            if start * MINUTE <= ts - first < (end + 1) * MINUTE
        }

    first = chaos.first_open[symbol]
    return [first + s * (MINUTE // STEPS) for s in sorted(steps(clean) - steps(chaos))]


def clean_close_wall(run: Run, symbol: str, candle: int) -> int:
    return run.candle_wall(symbol, candle)


def describe(windows: list[dict]) -> str:
    return ", ".join(sorted({w["target"] for w in windows}))


# -- the comparison ------------------------------------------------------------------------------


def compare(clean_record: dict, chaos_record: dict) -> Report:
    clean, chaos = Run(clean_record), Run(chaos_record)
    allowance = chaos_record["allowance_candles"]
    report = Report()
    for event in chaos_record["timeline"]:
        if event["kind"] == "kill":
            report.kills[event["target"]] += 1
        elif event["kind"] == "redis_crash":
            report.kills["redis (SIGKILL + AOF restart)"] += 1
        elif (
            event.get("skipped")
            or event.get("error")
            or (
                event["target"]
                in (
                    Fault.FAIL_BEFORE,
                    Fault.FAIL_AFTER,
                    Fault.THROTTLE_429,
                    Fault.BAN_418,
                    Fault.DELAY_BEFORE,
                    Fault.DELAY_AFTER,
                    Fault.TIMESTAMP_COUNT,
                )
                and "consumed_ms" not in event
            )
        ):
            report.faults_unfired[event["target"]] += 1
        else:
            report.faults[event["target"]] += 1

    minimum = chaos_record.get("min_fired", 0)
    report.too_few_faults = [
        f"{fault.value} fired {report.faults[fault.value]} times (at least {minimum} required)"
        for fault in Fault
        if report.faults[fault.value] < minimum
    ]
    for symbol in clean.symbols:
        for problem in own_inputs(clean, symbol):
            report.clean_problems.append(f"clean run: {problem}")
        for problem in own_inputs(chaos, symbol):
            report.real.append(Difference(symbol, None, None, None, problem))
        compare_symbol(symbol, clean, chaos, report, allowance)

    report.duplicates = duplicates(chaos_record)
    report.lost = lost(chaos)
    report.mismatches = ledger_vs_exchange(chaos_record)
    stuck = chaos_record["stuck"]
    report.stuck = (
        stuck["pending"]
        + [f"{k}: {v} dead letter(s)" for k, v in stuck["dead_letters"].items()]
        + stuck["positions"]
        + stuck["orders"]
    )
    report.crashes = chaos_record.get("crashes", [])
    for label, run in (("clean", clean), ("chaos", chaos)):
        lags = sorted(signal_lag(run))
        if lags:
            report.notes.append(
                f"{label}: signal reached the executor p50 {lags[len(lags) // 2]:.1f}, "
                f"max {lags[-1]:.1f} candles after its candle closed ({len(lags)} signals)"
            )
        unlocated = {s: run.walked[s].unlocated for s in run.symbols if run.walked[s].unlocated}
        if unlocated:
            report.notes.append(f"{label}: fills on no walk step (levels still from the ledger): {unlocated}")
    report.clean_problems += [
        f"clean run: {d}" for d in duplicates(clean_record) + lost(clean) + ledger_vs_exchange(clean_record)
    ]
    return report


def signal_lag(run: Run) -> list[float]:
    """Candles from each signal candle's close to the signal's arrival in the executor inbox."""
    lags = []
    for symbol in run.symbols:
        for entry in run.record["per_symbol"][symbol]["inbox"]:
            if entry["type"] == "signal":
                arrived = run.market_ms(int(entry["id"].split("-")[0]))
                lags.append((arrived - entry["candle"] - MINUTE) / MINUTE)
    return lags


def own_inputs(run: Run, symbol: str) -> list[str]:
    """Trades the run made that its own inputs do not give (the executor broke a rule), and
    entries filled after their allowance (an entry is abandoned then, never filled late)."""
    allowance = run.record["allowance_candles"]
    problems = [
        f"{symbol}: entry {e} filled {lateness(run, symbol, e, fill):.2f} candles after its candle closed "
        f"(allowance {allowance:g})"
        for e, fill in sorted(run.walked[symbol].fill_times.items())
        if lateness(run, symbol, e, fill) > allowance
    ]
    expected, actual = run.walked[symbol].trades, run.ledger[symbol]
    if expected != actual:
        extra = [t for t in actual if t not in expected]
        missing = [t for t in expected if t not in actual]
        problems.append(
            f"{symbol}: the executor's inputs give {', '.join(map(str, missing)) or '-'}, "
            f"the ledger has {', '.join(map(str, extra)) or '-'}"
        )
    return problems


def compare_symbol(symbol: str, clean: Run, chaos: Run, report: Report, allowance: float) -> None:
    ours, theirs = clean.ledger[symbol], chaos.ledger[symbol]
    report.trades_clean += len(ours)
    report.trades_chaos += len(theirs)
    same = [t for t in theirs if t in ours]
    report.identical += len(same)
    only_clean = [t for t in ours if t not in theirs]
    only_chaos = [t for t in theirs if t not in ours]
    allowed: dict[tuple[str, str, int], Rule] = {}
    # Differences in entry order: an allowed difference can make a later entry differ.
    chaos_by_entry = {t.entry: t for t in only_chaos}
    pairs = [(t, chaos_by_entry.pop(t.entry, None)) for t in only_clean]
    pairs += [(None, t) for t in chaos_by_entry.values()]
    pairs.sort(key=lambda pair: (pair[0] or pair[1]).entry)
    for mine, yours in pairs:
        if mine is not None and yours is not None:
            found = explain_other_exit(symbol, clean, chaos, mine, yours, allowance)
        elif mine is not None:
            found = explain_missing_entry(symbol, clean, chaos, mine, allowed)
        else:
            found = explain_extra_entry(symbol, clean, chaos, yours, allowed)
        if found is None:
            report.real.append(Difference(symbol, mine, yours, None, "no rule explains it"))
            continue
        rule, evidence = found
        if mine is not None:
            allowed[(symbol, "clean", mine.entry)] = rule
        if yours is not None:
            allowed[(symbol, "chaos", yours.entry)] = rule
        report.allowed.append(Difference(symbol, mine, yours, rule, evidence))


def duplicates(record: dict) -> list[str]:
    sent = Counter(record["exchange"]["client_order_ids"])
    found = [f"client id {c} sent {n} times" for c, n in sent.items() if n > 1]
    placed = Counter(o["clientOrderId"] for o in record["exchange"]["orders"])
    found += [f"{n} orders with client id {c}" for c, n in placed.items() if n > 1]
    return found


def lost(run: Run) -> list[str]:
    record = run.record
    found = []
    for symbol in run.symbols:
        opens = record["per_symbol"][symbol]["kline_opens"]
        gaps = [(a, b) for a, b in itertools.pairwise(opens) if b - a != MINUTE]
        if gaps:
            found.append(f"{symbol}: kline stream gaps or duplicates at {gaps[:5]}")
        first = run.first_open[symbol]
        decided = {d["candle"] for d in record["decisions"] if d["symbol"] == symbol and not d.get("note")}
        history = record["history"]
        undecided = [(o - first) // MINUTE for o in opens if o not in decided and (o - first) // MINUTE >= history]
        if undecided:
            found.append(f"{symbol}: candles without a decision: {undecided[:10]}")
        for candle in run.walked[symbol].skipped:
            if not run.skip_records(symbol, candle):
                found.append(f"{symbol}: BUY of candle {candle} neither traded nor recorded as skipped")
    inbox_ids = {e["event_id"] for s in run.symbols for e in record["per_symbol"][s]["inbox"]}
    found += [
        f"signal {s['event_id']} not in the executor inbox" for s in record["signals"] if s["event_id"] not in inbox_ids
    ]
    return found


def ledger_vs_exchange(record: dict) -> list[str]:
    found = []
    ours = {(f["symbol"], int(f["trade_id"])): f for f in record["fills"]}
    theirs = {(t["symbol"], int(t["id"])): t for t in record["exchange"]["trades"]}
    for key in sorted(set(ours) ^ set(theirs)):
        found.append(f"trade {key} only in the {'ledger' if key in ours else 'exchange'}")
    for key in sorted(set(ours) & set(theirs)):
        a, b = ours[key], theirs[key]
        if (Decimal(a["price"]), Decimal(a["quantity"]), Decimal(a["commission"])) != (
            Decimal(b["price"]),
            Decimal(b["qty"]),
            Decimal(b["commission"]),
        ):
            found.append(
                f"trade {key}: ledger {a['price']} x {a['quantity']} fee {a['commission']}, "
                f"exchange {b['price']} x {b['qty']} fee {b['commission']}"
            )
    balances: Counter = Counter({k: Decimal(v) for k, v in record["initial_balances"].items()})
    sides = {o["client_order_id"]: o["side"] for o in record["orders"]}
    for f in record["fills"]:
        base, quote = f["symbol"][:-4], f["symbol"][-4:]
        sign = 1 if sides.get(f["client_order_id"]) == "BUY" else -1
        balances[base] += sign * Decimal(f["quantity"])
        balances[quote] -= sign * Decimal(f["quote_quantity"])
        if f["commission_asset"]:
            balances[f["commission_asset"]] -= Decimal(f["commission"])
    exchange = {a: Decimal(v["free"]) + Decimal(v["locked"]) for a, v in record["exchange"]["balances"].items()}
    for asset in sorted(set(balances) | set(exchange)):
        if balances.get(asset, Decimal(0)) != exchange.get(asset, Decimal(0)):
            found.append(f"balance {asset}: ledger {balances.get(asset, 0)}, exchange {exchange.get(asset, 0)}")
    return found


# -- the table -----------------------------------------------------------------------------------


def table(report: Report, title: str = "") -> str:
    lines = [f"### {title}" if title else "", "", "| what | count | detail |", "|---|---|---|"]

    def row(what: str, count: object, detail: str = "") -> None:
        lines.append(f"| {what} | {count} | {detail} |")

    row("SIGKILLs", sum(report.kills.values()), ", ".join(f"{k} {v}" for k, v in sorted(report.kills.items())))
    row(
        "simulator faults (fired)",
        sum(report.faults.values()),
        ", ".join(f"{fault.value} {report.faults[fault.value]}" for fault in Fault),
    )
    if report.too_few_faults:
        row("fault kinds fired too rarely", len(report.too_few_faults), "; ".join(report.too_few_faults))
    if report.faults_unfired:
        row(
            "faults not applied (never hit, or dropped at the quiet tail)",
            sum(report.faults_unfired.values()),
            ", ".join(f"{k} {v}" for k, v in sorted(report.faults_unfired.items())),
        )
    row("trades clean / chaos", f"{report.trades_clean} / {report.trades_chaos}")
    row("identical", report.identical)
    by_rule = Counter(d.rule.name for d in report.allowed if d.rule)
    row("allowed differences", len(report.allowed), ", ".join(f"{k} {v}" for k, v in sorted(by_rule.items())))
    row("real differences", len(report.real))
    row("duplicate orders (client id sent twice)", len(report.duplicates))
    row("lost signals / klines", len(report.lost))
    row("ledger != exchange (fills by trade id, balances)", len(report.mismatches))
    row("stuck 30 s after the last fault", len(report.stuck))
    row("crashes (exits other than the kills)", len(report.crashes))
    if report.clean_problems:
        row("clean run not as its own inputs give", len(report.clean_problems))
    lines.append("")
    lines.append(f"**{'PASS' if report.passed else 'FAIL'}**")
    for name, items in (
        ("allowed", [f"{d.rule.name}: {d.row()}" for d in report.allowed if d.rule]),
        ("real", [d.row() for d in report.real]),
        ("duplicate", report.duplicates),
        ("lost", report.lost),
        ("mismatch", report.mismatches),
        ("stuck", report.stuck),
        ("crash", report.crashes),
        ("too few", report.too_few_faults),
        ("clean", report.clean_problems),
        ("note", report.notes),
    ):
        for item in items[:40]:
            lines.append(f"- {name}: {item}")
        if len(items) > 40:
            lines.append(f"- {name}: ... {len(items) - 40} more")
    return "\n".join(lines)


def rules_text() -> str:
    return "\n".join(f"- `{rule.name}`: {rule.value}" for rule in Rule)


def load(path: Path) -> dict:
    import json

    return json.loads(path.read_text())
