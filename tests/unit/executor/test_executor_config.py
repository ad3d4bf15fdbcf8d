"""Executor ages are market time: candles and market ms; the older second-based names still work."""

from __future__ import annotations

import pytest

from services.executor.config import ExecutorSettings
from shared.settings import load_settings


def test_the_signal_allowance_is_counted_in_candles_of_the_timeframe() -> None:
    assert ExecutorSettings(SIGNAL_MAX_AGE_CANDLES="2", TIMEFRAME="5m").signal_max_age_ms == 2 * 300_000
    assert ExecutorSettings().max_data_age_ms == 30_000


def test_the_older_names_are_read_as_market_seconds() -> None:
    settings = ExecutorSettings(SIGNAL_MAX_AGE_S="90", MAX_DATA_AGE_S="12", TIMEFRAME="1m")
    assert settings.signal_max_age_candles == 1.5 and settings.signal_max_age_ms == 90_000
    assert settings.max_data_age_ms == 12_000


@pytest.mark.parametrize(
    ("old", "new"), [("SIGNAL_MAX_AGE_S", "SIGNAL_MAX_AGE_CANDLES"), ("MAX_DATA_AGE_S", "MAX_DATA_AGE_MS")]
)
def test_an_older_name_set_with_its_replacement_is_refused_by_name(
    old: str, new: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(old, "30")
    monkeypatch.setenv(new, "3")
    with pytest.raises(SystemExit):
        load_settings(ExecutorSettings, _env_file=None)
    err = capsys.readouterr().err
    assert f"{old}: {old} is replaced by {new}" in err


def test_the_entry_feed_silence_bound_is_not_market_datas_reconnect_watchdog(monkeypatch: pytest.MonkeyPatch) -> None:
    # A watchdog tuned to reconnect after 2 s of silence must not stop entries after 2 s.
    monkeypatch.setenv("MARKET_STALE_AFTER_S", "2")
    assert load_settings(ExecutorSettings, _env_file=None).entry_max_feed_silence_s == 10.0
    monkeypatch.setenv("ENTRY_MAX_FEED_SILENCE_S", "30")
    assert load_settings(ExecutorSettings, _env_file=None).entry_max_feed_silence_s == 30.0
