"""Per-symbol strategies: STRATEGIES parsing, each symbol's set versioned on its own, the switch."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from redis.asyncio import Redis

from shared import signing, streams
from shared.codec import decode
from shared.control import ControlReader, current_set, switch_strategy, update_parameters
from shared.parameter_sets import SymbolSet, describe, risk_of, set_model, validate_set
from shared.parameters import History, ParameterError, StrategyParameters
from shared.settings import ParameterSettings, load_settings
from shared.trading.strategies import builtin_registry

REGISTRY = builtin_registry()
HISTORY = History(1000, 1000)


def _settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> ParameterSettings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings(ParameterSettings, _env_file=None)


def test_strategies_choose_per_symbol_and_the_rest_run_strategy(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(
        monkeypatch,
        SYMBOLS="BTCUSDT,ETHUSDT,DOGEUSDT",
        STRATEGY="donchian_breakout",
        STRATEGY_PARAMS="ENTRY_PERIOD=30",
        STRATEGIES="BTCUSDT:ema_cross_rsi, ethusdt:rsi2_reversion",
        STOP_LOSS_PERCENTAGE="0.03",
    )
    assert settings.strategy_names() == {
        "BTCUSDT": "ema_cross_rsi",
        "ETHUSDT": "rsi2_reversion",
        "DOGEUSDT": "donchian_breakout",
    }
    sets = settings.initial_sets()
    assert {s.version for s in sets.values()} == {0}
    assert isinstance(sets["BTCUSDT"].parameters, StrategyParameters)
    assert sets["ETHUSDT"].parameters.TREND_PERIOD == 200
    assert sets["DOGEUSDT"].parameters.ENTRY_PERIOD == 30  # STRATEGY_PARAMS are STRATEGY's
    # Every set carries the executor's fields from the environment.
    assert {risk_of(s.parameters).STOP_LOSS_PERCENTAGE for s in sets.values()} == {Decimal("0.03")}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ETHUSDT:rsi2_reversion", "STRATEGIES: ETHUSDT is not a traded symbol"),
        ("BTCUSDT:turtle_soup", "STRATEGIES: unknown strategy 'turtle_soup' for BTCUSDT"),
        ("BTCUSDT=rsi2_reversion", "STRATEGIES: 'BTCUSDT=rsi2_reversion' is not SYMBOL:strategy"),
    ],
)
def test_a_bad_strategies_entry_stops_the_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    monkeypatch.setenv("STRATEGIES", value)
    with pytest.raises(SystemExit) as exit_info:
        load_settings(ParameterSettings, _env_file=None)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_set_model_holds_the_strategy_fields_and_the_executor_fields() -> None:
    model = set_model(REGISTRY.get("rsi2_reversion"))
    assert {"ENTRY_RSI", "TREND_PERIOD", "RISK_PER_TRADE", "STOP_LOSS_PERCENTAGE"} <= set(model.model_fields)
    assert "EMA_SHORT_PERIOD" not in model.model_fields
    with pytest.raises(ParameterError) as error:
        validate_set(REGISTRY.get("rsi2_reversion"), {"ENTRY_RSI": 120, "STOP_LOSS_PERCENTAGE": "0.2", "X": 1})
    assert {field for field, _ in error.value.problems} == {"X", "ENTRY_RSI"}
    with pytest.raises(ParameterError) as error:  # the executor's cross-field rule holds in every set
        validate_set(REGISTRY.get("rsi2_reversion"), {"STOP_LOSS_PERCENTAGE": "0.2"})
    assert [field for field, _ in error.value.problems] == ["STOP_LOSS_PERCENTAGE"]
    with pytest.raises(ParameterError) as error:  # longer than the history: named, never warms up
        validate_set(REGISTRY.get("rsi2_reversion"), {"TREND_PERIOD": 1500}, history=HISTORY)
    assert [field for field, _ in error.value.problems] == ["TREND_PERIOD"]


def test_the_schema_gives_labels_units_bounds_help_and_live_safe() -> None:
    rsi2 = describe(REGISTRY.get("rsi2_reversion"))["parameters"]["properties"]
    assert rsi2["ENTRY_RSI"]["title"] == "Entry RSI" and rsi2["ENTRY_RSI"]["exclusiveMaximum"] == 100
    assert rsi2["TREND_PERIOD"]["unit"] == "candles" and rsi2["TREND_PERIOD"]["live_safe"] is False
    assert rsi2["RISK_PER_TRADE"]["title"] == "Risk per trade" and rsi2["RISK_PER_TRADE"]["group"] == "risk"
    ema = describe(REGISTRY.get("ema_cross_rsi"))
    assert ema["parameters"]["properties"]["EMA_SHORT_PERIOD"]["minimum"] == 2
    assert [o["column"] for o in ema["overlays"]] == ["ema_short", "ema_long", "ema_filter", "rsi"]
    donchian = describe(REGISTRY.get("donchian_breakout"))["overlays"]
    assert [(o["column"], o["pane"]) for o in donchian] == [("channel_high", "price"), ("channel_low", "price")]


def _start(symbol: str, strategy: str) -> SymbolSet:
    return SymbolSet(symbol, strategy, 0, validate_set(REGISTRY.get(strategy), {}))


async def test_each_symbols_set_has_its_own_version(redis_client: Redis) -> None:
    btc, eth = _start("BTCUSDT", "ema_cross_rsi"), _start("ETHUSDT", "rsi2_reversion")
    assert (await update_parameters(redis_client, {"RSI_PERIOD": 10}, "ops", btc, registry=REGISTRY))[0] == 1
    assert (await update_parameters(redis_client, {"RSI_PERIOD": 12}, "ops", btc, registry=REGISTRY))[0] == 2
    version, eth_set = await update_parameters(redis_client, {"ENTRY_RSI": 5}, "ops", eth, registry=REGISTRY)
    assert version == 1 and eth_set.ENTRY_RSI == 5
    assert (await current_set(redis_client, btc, REGISTRY)).version == 2
    with pytest.raises(ParameterError):  # an ema_cross_rsi field is unknown to rsi2_reversion
        await update_parameters(redis_client, {"EMA_SHORT_PERIOD": 5}, "ops", eth, registry=REGISTRY)
    events = [decode(f).payload for _, f in await redis_client.xrange(streams.CONTROL_PARAMETERS)]
    assert [(e.symbol, e.strategy, e.parameters_version) for e in events] == [
        ("BTCUSDT", "ema_cross_rsi", 1),
        ("BTCUSDT", "ema_cross_rsi", 2),
        ("ETHUSDT", "rsi2_reversion", 1),
    ]
    assert not await redis_client.exists(streams.PARAMETERS)  # the shared set is untouched


async def test_a_symbol_follows_the_shared_set_until_it_has_its_own(redis_client: Redis) -> None:
    btc = _start("BTCUSDT", "ema_cross_rsi")
    await update_parameters(redis_client, {"RSI_PERIOD": 10}, "ops", StrategyParameters())
    assert (await current_set(redis_client, btc, REGISTRY)).parameters.RSI_PERIOD == 10
    version, own = await update_parameters(redis_client, {"EMA_LONG_PERIOD": 30}, "ops", btc, registry=REGISTRY)
    assert version == 2 and own.RSI_PERIOD == 10  # continues from the set it followed
    await update_parameters(redis_client, {"RSI_PERIOD": 11}, "ops", StrategyParameters())
    assert (await current_set(redis_client, btc, REGISTRY)).parameters.RSI_PERIOD == 10


async def test_a_switch_keeps_the_executor_fields_and_bumps_only_that_symbol(redis_client: Redis) -> None:
    btc, eth = _start("BTCUSDT", "ema_cross_rsi"), _start("ETHUSDT", "ema_cross_rsi")
    await update_parameters(redis_client, {"STOP_LOSS_PERCENTAGE": "0.015"}, "ops", btc, registry=REGISTRY)
    switched = await switch_strategy(redis_client, "rsi2_reversion", "ops", btc, registry=REGISTRY, history=HISTORY)
    assert (switched.strategy, switched.version) == ("rsi2_reversion", 2)
    assert Decimal("0.015") == switched.parameters.STOP_LOSS_PERCENTAGE and switched.parameters.ENTRY_RSI == 10
    assert (await current_set(redis_client, eth, REGISTRY)).version == 0
    again = await switch_strategy(redis_client, "rsi2_reversion", "ops", btc, registry=REGISTRY)
    assert again.version == 2  # the strategy in force: nothing written
    with pytest.raises(KeyError):
        await switch_strategy(redis_client, "nope", "ops", btc, registry=REGISTRY)


async def test_a_reader_follows_each_symbol_and_its_switch(redis_client: Redis) -> None:
    btc, eth = _start("BTCUSDT", "ema_cross_rsi"), _start("ETHUSDT", "donchian_breakout")
    reader = ControlReader(
        redis_client,
        key=signing.installed_key(),
        history=HISTORY,
        sets={"BTCUSDT": btc, "ETHUSDT": eth},
        registry=REGISTRY,
    )
    await reader.load()
    stop = asyncio.Event()
    task = asyncio.create_task(reader.follow(stop, block_ms=50))
    try:
        await update_parameters(redis_client, {"ENTRY_PERIOD": 25}, "ops", eth, registry=REGISTRY)
        await switch_strategy(redis_client, "rsi2_reversion", "ops", btc, registry=REGISTRY)
        for _ in range(200):
            if reader.set_of("BTCUSDT").strategy == "rsi2_reversion" and reader.set_of("ETHUSDT").version == 1:
                break
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    assert (reader.set_of("BTCUSDT").strategy, reader.set_of("BTCUSDT").version) == ("rsi2_reversion", 1)
    assert reader.set_of("ETHUSDT").parameters.ENTRY_PERIOD == 25
    assert Decimal("0.02") == reader.risk("BTCUSDT").STOP_LOSS_PERCENTAGE


def test_a_cross_field_check_is_reported_on_the_field_its_message_names() -> None:
    with pytest.raises(ParameterError) as error:
        validate_set(REGISTRY.get("rsi2_reversion"), {"EXIT_PERIOD": 300})
    assert error.value.problems == [("EXIT_PERIOD", "EXIT_PERIOD must be smaller than TREND_PERIOD")]


def test_no_strategy_parameter_takes_the_name_of_an_executor_field() -> None:
    # A symbol's set is the strategy's fields plus the executor's: a strategy field with an
    # executor field's name (donchian_breakout's ATR_PERIOD once met the stop's) would be passed
    # twice to the backtester and read by the executor as its own.
    from pathlib import Path

    from shared.parameter_sets import executor_fields
    from shared.strategy_loader import load_registry

    registry = load_registry(Path(__file__).resolve().parents[3] / "strategies")
    for name in registry.names():
        own = registry.get(name).Parameters
        if not issubclass(own, StrategyParameters):
            assert not set(own.model_fields) & set(executor_fields()), name
