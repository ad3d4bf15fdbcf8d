"""The versioned parameter sets in Redis: each symbol's own (``control:parameters:current:<SYMBOL>``)
and the shared ema_cross_rsi set (``control:parameters:current``) the ema_cross_rsi symbols
without one follow.

Every write is a compare-and-set under WATCH with its ``ParametersChanged`` event appended in
the same transaction, so the stored set and the event announcing it never disagree and two
writers never share a version. Records carry the bus MAC (``shared.signing``); a forged record
is never built upon.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import WatchError

from shared import signing, streams
from shared.bus import stream_fields
from shared.codec import dumps, loads
from shared.events import ParametersChanged, make_event, now_ms
from shared.parameter_sets import SymbolSet, executor_fields, risk_of, set_model, validate_set
from shared.parameters import Danger, DangerousParameters, History, StrategyParameters, unconfirmed_dangers
from shared.trading.strategies import DEFAULT_STRATEGY, Registry, builtin_registry

_MAX_CAS_ATTEMPTS = 50


class SwitchError(ValueError):
    """A strategy switch without a symbol."""


def set_key(symbol: str) -> str:
    """A symbol's own set, or (no symbol) the shared set every ema_cross_rsi symbol without one follows."""
    return streams.parameters_key(symbol) if symbol else streams.PARAMETERS


def _as_set(default: StrategyParameters | SymbolSet) -> SymbolSet:
    if isinstance(default, SymbolSet):
        return default
    return SymbolSet("", DEFAULT_STRATEGY, 0, default)


async def parameters_record(redis: Redis, symbol: str = "", strategy: str = DEFAULT_STRATEGY) -> dict[str, Any] | None:
    """The stored record ``{"version", "strategy", "parameters", "changed_at_ms", "changed_by", ...}``
    of ``symbol`` (the shared set when it has none and its ``strategy`` is ema_cross_rsi), or None."""
    own = await redis.get(set_key(symbol))
    falls_back = loads(own) is None and symbol and strategy == DEFAULT_STRATEGY
    return record_of(own, await redis.get(streams.PARAMETERS) if falls_back else None, symbol, strategy)


def ask_set(pipe: Any, symbol: str) -> None:
    """Queue the two reads ``record_of`` chooses from on a pipeline (one round trip with the rest)."""
    pipe.get(set_key(symbol))
    pipe.get(streams.PARAMETERS)


def record_of(own: object, shared: object, symbol: str, strategy: str = DEFAULT_STRATEGY) -> dict[str, Any] | None:
    """``parameters_record`` from the raw values of ``symbol``'s key and the shared set's key."""
    record = loads(own if isinstance(own, str | bytes) else None)
    if record is None and symbol and strategy == DEFAULT_STRATEGY:
        record = loads(shared if isinstance(shared, str | bytes) else None)
    return record if isinstance(record, dict) else None


def set_of(record: dict[str, Any] | None, default: SymbolSet, registry: Registry) -> SymbolSet:
    """The set a stored record (``record_of``) holds; version 0 is ``default`` (nothing stored)."""
    return _parse_record(record, default, registry)


def _parse_record(record: object, default: SymbolSet, registry: Registry) -> SymbolSet:
    if not isinstance(record, dict) or not record:
        return default
    strategy = str(record.get("strategy") or DEFAULT_STRATEGY)
    model = set_model(registry.get(strategy))
    return SymbolSet(default.symbol, strategy, int(record["version"]), model.model_validate(record["parameters"]))


async def current_set(redis: Redis, default: SymbolSet, registry: Registry | None = None) -> SymbolSet:
    """The set in force for ``default.symbol``; version 0 is ``default`` (nothing stored yet)."""
    record = await parameters_record(redis, default.symbol, default.strategy)
    return _parse_record(record, default, registry or builtin_registry())


async def current_parameters(redis: Redis, default: StrategyParameters) -> tuple[int, StrategyParameters]:
    """The shared set in force and its version; version 0 is ``default`` (nothing stored yet)."""
    found = await current_set(redis, _as_set(default))
    return found.version, found.parameters


async def update_parameters(
    redis: Redis,
    values: dict[str, Any],
    changed_by: str,
    default: StrategyParameters | SymbolSet,
    source: str = "api",
    *,
    history: History | None = None,
    confirm_dangerous: bool = False,
    command_id: str = "",
    registry: Registry | None = None,
) -> tuple[int, Any]:
    """Merge ``values`` over the current set, validate the whole, store it as the next version.

    ``default`` is a ``SymbolSet`` (that symbol's set, validated with its strategy's model) or
    the shared ema_cross_rsi set's start values. Raises ``ParameterError`` (every offending
    field) and writes nothing when the merged set is invalid (``history``: periods longer than
    the candles the strategy can have are invalid); raises ``DangerousParameters`` and writes
    nothing when the change makes a dangerous setting and ``confirm_dangerous`` is false. The
    key is compare-and-set under WATCH, and the ``ParametersChanged`` event is appended in the
    same transaction, so two concurrent updates never share a version. A change that leaves
    the set identical is not a new version.
    """
    known = registry or builtin_registry()

    def change(current: SymbolSet) -> tuple[SymbolSet, list[Danger]] | None:
        merged = validate_set(known.get(current.strategy), values, current.parameters, history)
        if merged == current.parameters:
            return None
        risky = unconfirmed_dangers(risk_of(merged), risk_of(current.parameters))
        if risky and not confirm_dangerous:
            raise DangerousParameters(risky)
        return SymbolSet(current.symbol, current.strategy, current.version + 1, merged), risky

    found = await _write_set(redis, _as_set(default), known, change, changed_by, source, command_id)
    return found.version, found.parameters


async def switch_strategy(
    redis: Redis,
    strategy: str,
    changed_by: str,
    default: SymbolSet,
    source: str = "api",
    *,
    history: History | None = None,
    command_id: str = "",
    registry: Registry | None = None,
) -> SymbolSet:
    """Give ``default.symbol`` another strategy: the new strategy's default parameters with the
    executor's fields (risk, SL/TP) of the set in force, stored as the symbol's next version.

    Raises ``KeyError`` for an unknown strategy and ``ParameterError`` when the new set is invalid
    (a warm-up longer than the history); switching to the strategy in force changes nothing."""
    known = registry or builtin_registry()
    target = known.get(strategy)

    def change(current: SymbolSet) -> tuple[SymbolSet, list[Danger]] | None:
        if current.strategy == target.name:
            return None
        kept = {name: getattr(current.parameters, name) for name in executor_fields()}
        new = validate_set(target, kept, None, history)
        return SymbolSet(current.symbol, target.name, current.version + 1, new), []

    if not default.symbol:
        raise SwitchError("a strategy switch needs a symbol")
    return await _write_set(redis, default, known, change, changed_by, source, command_id)


async def _write_set(
    redis: Redis,
    default: SymbolSet,
    registry: Registry,
    change: Callable[[SymbolSet], tuple[SymbolSet, list[Danger]] | None],
    changed_by: str,
    source: str,
    command_id: str,
) -> SymbolSet:
    """Compare-and-set of one set's key with its announcing event, in one transaction."""
    key = set_key(default.symbol)
    async with redis.pipeline(transaction=True) as pipe:
        for _ in range(_MAX_CAS_ATTEMPTS):
            try:
                await pipe.watch(key, streams.PARAMETERS)
                raw = loads(await pipe.get(key))
                if raw is None and default.symbol and default.strategy == DEFAULT_STRATEGY:
                    raw = loads(await pipe.get(streams.PARAMETERS))  # it followed the shared set so far
                current = _parse_record(raw, default, registry)
                if not signing.record_trusted(raw):
                    # never seal again what the bot did not write (a forged set)
                    current = SymbolSet(default.symbol, default.strategy, current.version, default.parameters)
                try:
                    outcome = change(current)
                except BaseException:
                    await pipe.unwatch()  # type: ignore[no-untyped-call]  # redis-py leaves Pipeline.unwatch unannotated
                    raise
                if outcome is None:
                    await pipe.unwatch()  # type: ignore[no-untyped-call]  # redis-py leaves Pipeline.unwatch unannotated
                    return current
                new, risky = outcome
                pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves Pipeline.multi unannotated
                pipe.set(key, dumps(signing.seal_record(_record(new, changed_by, command_id, risky))))
                event = make_event(
                    ParametersChanged(
                        parameters_version=new.version,
                        parameters=new.parameters.model_dump(mode="json"),
                        previous=current.parameters.model_dump(mode="json"),
                        changed_by=changed_by,
                        command_id=command_id,
                        symbol=new.symbol,
                        strategy=new.strategy,
                    ),
                    source,
                )
                pipe.xadd(
                    streams.CONTROL_PARAMETERS,
                    stream_fields(event),
                    maxlen=streams.maxlen_for(streams.CONTROL_PARAMETERS),
                    approximate=True,
                )
                await pipe.execute()
                return new
            except WatchError:
                continue
            finally:
                await pipe.reset()  # type: ignore[no-untyped-call]  # redis-py leaves Pipeline.reset unannotated
    raise RuntimeError("parameters kept changing concurrently; try again")


def _record(new: SymbolSet, changed_by: str, command_id: str, risky: list[Danger]) -> dict[str, Any]:
    record: dict[str, Any] = {
        "version": new.version,
        "parameters": new.parameters.model_dump(mode="json"),
        "changed_at_ms": now_ms(),
        "changed_by": changed_by,
        "command_id": command_id,
        "confirmed_dangers": [danger.text() for danger in risky],
    }
    if new.symbol:
        record |= {"symbol": new.symbol, "strategy": new.strategy}
    return record
