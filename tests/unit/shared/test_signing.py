"""The bus MAC: what it covers, what it refuses, which entries get one."""

from __future__ import annotations

import os
import stat
from decimal import Decimal
from pathlib import Path

import pytest

from shared import signing
from shared.codec import decode, dumps, encode, loads
from shared.events import BotCommand, Signal, Ticker, make_event
from shared.settings import ServiceSettings

KEY = signing.parse_key("k" * 40)
OTHER = signing.parse_key("o" * 40)


def signal_fields() -> dict[str, str]:
    payload = Signal(
        symbol="BTCUSDT",
        side="BUY",
        reason="ema_cross_up",
        price=Decimal("100.5"),
        interval="1m",
        candle_open_time_ms=60_000,
        indicators={"rsi": 50.0},
        parameters_version=1,
    )
    return encode(make_event(payload, "strategy", event_id="signal-1"))


def test_a_sealed_entry_verifies_and_any_change_breaks_it() -> None:
    fields = signing.seal_fields({k: v for k, v in signal_fields().items() if k != "mac"}, KEY)
    assert signing.check_fields(fields, KEY) is signing.Seal.VALID
    assert signing.check_fields(fields, OTHER) is signing.Seal.INVALID
    for name in ("side", "price", "symbol", "event_id", "ts_init_ms"):
        assert signing.check_fields({**fields, name: fields[name] + "0"}, KEY) is signing.Seal.INVALID, name
    assert signing.check_fields({**fields, "extra": "1"}, KEY) is signing.Seal.INVALID
    without = {k: v for k, v in fields.items() if k != "mac"}
    assert signing.check_fields(without, KEY) is signing.Seal.MISSING
    # Moving text between fields is a different entry (length-prefixed encoding).
    shifted = {**without, "reason": without["reason"] + without["price"], "price": ""}
    assert signing._canonical_fields(shifted) != signing._canonical_fields(without)


def test_encode_seals_money_moving_types_only_and_decode_ignores_the_mac() -> None:
    # The test session installed a key (tests/conftest.py), as every service's runner does.
    key = signing.installed_key()
    assert key is not None
    fields = signal_fields()
    assert signing.check_fields(fields, key) is signing.Seal.VALID
    command = encode(make_event(BotCommand(command="stop", requested_by="ops"), "api"))
    assert signing.check_fields(command, key) is signing.Seal.VALID
    p = Decimal(1)
    tick = encode(make_event(Ticker(symbol="BTCUSDT", price=p, open=p, high=p, low=p, volume=p, quote_volume=p), "md"))
    assert "mac" not in tick
    assert decode(fields).payload.side == "BUY"


def test_records_survive_the_json_round_trip_and_refuse_changes() -> None:
    record = signing.seal_record(
        {"version": 3, "parameters": {"RISK_PER_TRADE": Decimal("0.01"), "RSI_PERIOD": 14}}, KEY
    )
    stored = loads(dumps(record))
    assert signing.check_record(stored, KEY) is signing.Seal.VALID
    stored["parameters"]["RISK_PER_TRADE"] = "1"
    assert signing.check_record(stored, KEY) is signing.Seal.INVALID
    assert signing.check_record({"version": 3}, KEY) is signing.Seal.MISSING


def test_key_sources_and_refusals(tmp_path: Path) -> None:
    with pytest.raises(signing.SigningKeyError, match="BUS_SIGNING_KEY"):
        signing.parse_key("short")
    path = signing.ensure_key_file(tmp_path / "secrets" / "bus-signing.key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    first = path.read_text()
    assert signing.ensure_key_file(path).read_text() == first  # kept across restarts
    settings = ServiceSettings(BUS_SIGNING_KEY="", BUS_SIGNING_KEY_FILE=str(path))
    assert settings.signing_key() == first.strip().encode()
    with pytest.raises(ValueError, match="BUS_SIGNING_KEY_FILE"):
        ServiceSettings(BUS_SIGNING_KEY="", BUS_SIGNING_KEY_FILE=str(tmp_path / "absent"))
    assert ServiceSettings(BUS_SIGNING_KEY="").signing_key() is None


def test_a_password_file_logs_the_service_in_as_its_user(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    os.chmod(secret, 0o600)
    settings = ServiceSettings(
        REDIS_URL="redis://redis:6379/0", REDIS_USERNAME="executor", REDIS_PASSWORD_FILE=str(secret)
    )
    assert settings.redis_url == "redis://executor:s3cret@redis:6379/0"
    assert ServiceSettings(REDIS_URL="redis://127.0.0.1:6380/0").redis_url == "redis://127.0.0.1:6380/0"


async def test_rotation_seals_the_records_again_and_refuses_forged_ones(redis_url: str, tmp_path: Path) -> None:
    from redis.asyncio import Redis

    from shared import streams
    from shared.bus_key import rotate

    key_file = signing.ensure_key_file(tmp_path / "bus-signing.key")
    old = signing.parse_key(key_file.read_text())
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        await redis.set(
            streams.PARAMETERS, dumps(signing.seal_record({"version": 2, "parameters": {"RSI_PERIOD": 10}}, old))
        )
        await redis.set(streams.BOT_STATE, dumps(signing.seal_record({"state": "stopped", "reason": "ops"}, old)))
        message = await rotate(redis_url, key_file)
        new = signing.parse_key(key_file.read_text())
        assert new != old and "sealed again" in message
        assert signing.parse_key((tmp_path / "bus-signing.key.old").read_text()) == old
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        for key in (streams.PARAMETERS, streams.BOT_STATE):
            assert signing.check_record(loads(await redis.get(key)), new) is signing.Seal.VALID
        # A record the current key does not verify is never laundered.
        await redis.set(streams.BOT_STATE, dumps({"state": "running"}))
        with pytest.raises(SystemExit, match="does not verify"):
            await rotate(redis_url, key_file)
        assert signing.parse_key(key_file.read_text()) == new
    finally:
        await redis.aclose()


async def test_a_forged_parameter_set_is_not_sealed_again_by_the_next_change(redis_client) -> None:
    from shared import streams
    from shared.control import update_parameters
    from shared.parameters import StrategyParameters

    await redis_client.set(streams.PARAMETERS, dumps({"version": 7, "parameters": {"RISK_PER_TRADE": "0.5"}}))
    version, merged = await update_parameters(redis_client, {"RSI_PERIOD": 10}, "ops", StrategyParameters())
    record = loads(await redis_client.get(streams.PARAMETERS))
    assert version == 8 and signing.check_record(record, signing.installed_key()) is signing.Seal.VALID
    assert merged.RSI_PERIOD == 10 and merged.RISK_PER_TRADE == StrategyParameters().RISK_PER_TRADE
