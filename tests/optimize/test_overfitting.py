"""PBO (CSCV) and the deflated Sharpe ratio on examples whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backtest.optimize.overfitting import (
    deflated_sharpe,
    deflated_sharpe_of,
    expected_max_sharpe,
    moments,
    probability_of_overfitting,
)


def test_deflated_sharpe_reproduces_the_papers_numerical_example() -> None:
    # Bailey & López de Prado (2014), section 4: annualised SR 2.5 over 5 years of daily returns
    # (T = 1250), N = 100 trials whose annualised Sharpe ratios have variance 0.5, skewness -3,
    # kurtosis 10 -> SR0 = 0.1132 per day and DSR = 0.9004.
    per_day = 250
    sharpe = 2.5 / math.sqrt(per_day)
    variance = 0.5 / per_day
    assert expected_max_sharpe(variance, 100) == pytest.approx(0.1132, abs=5e-5)
    assert deflated_sharpe(sharpe, 1250, -3.0, 10.0, 100, variance) == pytest.approx(0.9004, abs=5e-4)


def test_more_trials_deflate_the_same_sharpe_ratio_more() -> None:
    few = deflated_sharpe(0.1, 500, 0.0, 3.0, 10, 0.001)
    many = deflated_sharpe(0.1, 500, 0.0, 3.0, 1000, 0.001)
    assert many < few


def test_one_trial_is_the_probabilistic_sharpe_ratio_against_zero() -> None:
    # With N = 1 nothing is deflated: DSR = Z(SR sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1)/4 SR^2)).
    expected = 0.5 * (1 + math.erf(0.05 * math.sqrt(99) / math.sqrt(1 + 0.5 * 0.05**2) / math.sqrt(2)))
    assert deflated_sharpe(0.05, 100, 0.0, 3.0, 1, 0.0) == pytest.approx(expected, rel=1e-12)


def test_moments_of_a_hand_computed_series() -> None:
    m = moments([1.0, -1.0, 1.0, -1.0])
    # mean 0 -> Sharpe 0; symmetric -> skewness 0; two-point law -> kurtosis 1.
    assert (m.sharpe, m.skewness, m.kurtosis, m.periods) == (0.0, 0.0, 1.0, 4)
    m = moments([1.0, 2.0, 3.0])
    assert m.sharpe == pytest.approx(2.0)  # mean 2, sample std 1


def test_pbo_of_a_hand_worked_two_by_two_case() -> None:
    # Blocks of two rows; trial A wins the first block in-sample and loses the second out of
    # sample, trial B the other way round, so each split's in-sample winner ranks last (1 of 2):
    # w = 1/3, logit ln(1/2) < 0 in both splits -> PBO 1.
    a = [1.0, 3.0, -1.0, 1.0]  # block Sharpe ratios 1.414 and 0
    b = [0.0, 2.0, 1.0, 2.0]  # 0.707 and 2.121
    result = probability_of_overfitting(np.array([a, b]).T, blocks=2)
    assert result.pbo == 1.0
    assert result.logits == pytest.approx((math.log(0.5), math.log(0.5)))
    # B better in both blocks: the in-sample winner is the best out of sample too (rank 2 of 2).
    c = [-1.0, 2.0, 0.0, 1.0]  # 0.236 and 0.707: below B in both blocks
    result = probability_of_overfitting(np.array([c, b]).T, blocks=2)
    assert result.pbo == 0.0
    assert result.logits == pytest.approx((math.log(2.0), math.log(2.0)))


def test_pure_noise_overfits_about_half_the_time() -> None:
    # With no skill anywhere the in-sample winner is a random draw out of sample: PBO averages
    # 0.5 (a single matrix scatters around it, hence the mean over several seeds).
    found, deflated = [], []
    for seed in range(10):
        returns = np.random.default_rng(seed).normal(0.0, 0.01, size=(480, 100))
        result = probability_of_overfitting(returns, blocks=16)
        found.append(result.pbo)
        best = int(np.argmax(returns.mean(axis=0) / returns.std(axis=0, ddof=1)))
        deflated.append(deflated_sharpe_of(returns[:, best], returns))
    assert len(result.logits) == 12870  # C(16, 8)
    assert 0.4 <= float(np.mean(found)) <= 0.6
    # SR0 is the expected best of N unskilled trials: the best one is deflated to a coin flip.
    assert float(np.mean(deflated)) < 0.7


def test_a_planted_edge_is_not_overfit() -> None:
    rng = np.random.default_rng(7)
    returns = rng.normal(0.0, 0.01, size=(480, 100))
    returns[:, 42] += 0.004  # Sharpe ~0.4 per period against noise
    result = probability_of_overfitting(returns, blocks=16)
    assert result.pbo < 0.05
    assert deflated_sharpe_of(returns[:, 42], returns) > 0.95


def test_bad_shapes_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="N >= 2"):
        probability_of_overfitting(np.zeros((10, 1)))
    with pytest.raises(ValueError, match="even"):
        probability_of_overfitting(np.zeros((10, 3)), blocks=3)
    with pytest.raises(ValueError, match="at least two"):
        deflated_sharpe(0.1, 1, 0.0, 3.0, 10, 0.01)
