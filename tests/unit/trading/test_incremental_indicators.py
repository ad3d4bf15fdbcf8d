"""Incremental indicators: hand cases, equal to the vectorised pandas-ta values on every shared file,
and the same after a restart mid-file (a state rebuilt from the window's candles)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from shared.candles import load_candles
from shared.trading.incremental import (
    Atr,
    Ema,
    Extreme,
    IndicatorSpec,
    IndicatorState,
    Rsi,
    Sma,
)
from shared.trading.indicators import vectorised
from shared.trading.strategies import builtin_registry
from shared.trading.vocabulary import IndicatorKind

WINDOW = 1000


def every_builtin_spec() -> tuple[IndicatorSpec, ...]:
    specs: dict[str, IndicatorSpec] = {}
    for strategy in builtin_registry():
        for spec in strategy.indicators(strategy.parameters()):
            specs[f"{strategy.name}.{spec.name}"] = IndicatorSpec(
                f"{strategy.name}.{spec.name}", spec.kind, spec.period, spec.source
            )
    return tuple(specs.values())


def run(state: IndicatorState, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    rows = [state.update(candle) for candle in frame[["open", "high", "low", "close", "volume"]].to_dict("records")]
    return {name: np.array([row[name] for row in rows]) for name in rows[0]} if rows else {}


def assert_close(ours: np.ndarray, reference: np.ndarray, label: str, scale: float) -> None:
    assert (np.isnan(ours) == np.isnan(reference)).all(), f"{label}: warm-up differs"
    known = ~np.isnan(reference)
    # Relative 1e-9; a reference of (almost) zero, e.g. the volume average over a run of
    # zero-volume candles, is compared absolutely against the series' own scale.
    tolerance = 1e-9 * np.maximum(np.abs(reference[known]), 1e-6 * scale)
    worst = np.max(np.abs(ours[known] - reference[known]) - tolerance, initial=-1.0)
    assert worst <= 0, f"{label}: off by more than 1e-9 relative"


def test_hand_cases() -> None:
    ema = Ema(3)
    values = [ema.update(x) for x in (1.0, 2.0, 3.0, 7.0)]
    assert math.isnan(values[0]) and math.isnan(values[1]) and values[2] == 2.0 and values[3] == 4.5
    sma = Sma(2)
    assert [sma.update(x) for x in (4.0, 6.0, 0.0, 0.0)][1:] == [5.0, 3.0, 0.0]
    rsi = Rsi(2)
    values = [rsi.update(x) for x in (10.0, 11.0, 10.0, 12.0)]
    # gains 1, 0, 2 and losses 0, 1, 0 with alpha 1/2: gain avg 0.5 then 1.25, loss avg 0.5 then 0.25
    assert math.isnan(values[1]) and values[2] == 50.0 and math.isclose(values[3], 100 * 1.25 / 1.5)
    atr = Atr(2)
    values = [atr.update(h, lo, c) for h, lo, c in ((10, 8, 9), (12, 9, 11), (11, 10, 10))]
    assert math.isnan(values[0]) and values[1] == 2.5 and values[2] == (2.5 + 1) / 2
    highest, lowest = Extreme(3, highest=True), Extreme(3, highest=False)
    assert [highest.update(x) for x in (1.0, 5.0, 2.0, 3.0, 1.0)][2:] == [5.0, 5.0, 3.0]
    assert [lowest.update(x) for x in (4.0, 1.0, 2.0, 3.0, 5.0)][2:] == [1.0, 1.0, 2.0]


def test_incremental_equals_vectorised_on_every_shared_file(shared_data) -> None:
    specs = every_builtin_spec()
    assert {spec.kind for spec in specs} == set(IndicatorKind)
    for path in shared_data.all_files(expected=6):
        frame = load_candles(path)
        reference = vectorised(frame, specs)
        ours = run(IndicatorState(specs), frame)
        for spec in specs:
            scale = float(
                np.nanmedian(
                    np.abs(
                        frame[
                            spec.source if spec.kind in (IndicatorKind.EMA, IndicatorKind.SMA) else "close"
                        ].to_numpy()
                    )
                )
            )
            assert_close(ours[spec.name], reference[spec.name].to_numpy(), f"{path.name} {spec.name}", scale)


def test_a_state_rebuilt_from_the_window_after_a_restart_matches(shared_data) -> None:
    specs = every_builtin_spec()
    frame = load_candles(shared_data.all_files(expected=6)[0]).iloc[:20_000].reset_index(drop=True)
    restart = 12_345
    continuous = run(IndicatorState(specs), frame)
    # After the restart the service rebuilds its state from the window's last WINDOW candles.
    rebuilt = run(IndicatorState(specs), frame.iloc[restart - WINDOW :])
    for spec in specs:
        ours = rebuilt[spec.name][WINDOW:]
        reference = continuous[spec.name][restart:]
        assert_close(ours, reference, spec.name, float(np.nanmedian(np.abs(reference))))
