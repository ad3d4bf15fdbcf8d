"""Two guards against a lucky backtest: the probability of backtest overfitting and the deflated Sharpe ratio.

Pure functions over the daily returns of the trials (no I/O).

PBO, combinatorially symmetric cross-validation (Bailey, Borwein, López de Prado, Zhu, "The
Probability of Backtest Overfitting", J. Computational Finance 2017 / SSRN 2326253, 2015):
the T x N matrix of returns (T periods, N trials) is cut into S equal blocks of rows; for each of
the C(S, S/2) ways to pick half the blocks as in-sample (the rest out-of-sample), the trial with
the best in-sample Sharpe is found and its out-of-sample rank r among the N trials (1 = worst)
gives w = r / (N + 1) and the logit l = ln(w / (1 - w)). PBO is the share of splits with l <= 0:
how often the in-sample winner is at or below the median out of sample.

Deflated Sharpe ratio (Bailey & López de Prado, "The Deflated Sharpe Ratio", J. Portfolio
Management 40(5), 2014): with SR the best trial's Sharpe per period, T its number of returns,
g3 their skewness and g4 their kurtosis (3 for a normal law), N trials whose Sharpe ratios
have variance V, and g = 0.5772... (Euler-Mascheroni),

    SR0 = sqrt(V) * ((1 - g) * Z^-1(1 - 1/N) + g * Z^-1(1 - 1/(N e)))
    DSR = Z((SR - SR0) * sqrt(T - 1) / sqrt(1 - g3 * SR + (g4 - 1) / 4 * SR^2))

the probability that the true Sharpe ratio is above zero once the selection among N trials is
accounted for (SR0 is the Sharpe ratio the best of N trials of no skill is expected to reach).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

EULER_GAMMA = 0.5772156649015329
NORMAL = NormalDist()


@dataclass(frozen=True)
class PboResult:
    """``pbo`` in [0, 1], the logit of every split, and how the matrix was cut."""

    pbo: float
    logits: tuple[float, ...]
    blocks: int
    trials: int
    periods: int


def block_sharpe(
    sums: npt.NDArray[np.float64], squares: npt.NDArray[np.float64], counts: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Sharpe ratio (mean / sample standard deviation) from sums, sums of squares and counts; 0 where flat."""
    mean = sums / counts
    variance = (squares - counts * mean**2) / np.maximum(counts - 1, 1)
    spread = np.sqrt(np.maximum(variance, 0.0))
    flat = spread <= 1e-12 * np.maximum(np.abs(mean), 1.0)
    return np.where(flat, 0.0, mean / np.where(flat, 1.0, spread))


def probability_of_overfitting(returns: npt.ArrayLike, blocks: int = 16) -> PboResult:
    """PBO by CSCV of a T x N matrix of per-period returns (one column per trial).

    ``blocks`` (S) must be even, at least 2 and at most T; rows beyond a multiple of S are
    dropped from the end so that every block has the same length.
    """
    matrix = np.asarray(returns, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] < 2:
        raise ValueError("returns must be a T x N matrix with N >= 2 trials")
    periods, trials = matrix.shape
    if blocks < 2 or blocks % 2 or blocks > periods:
        raise ValueError(f"blocks must be even, >= 2 and <= the {periods} periods, got {blocks}")
    length = periods // blocks
    cut = matrix[: length * blocks].reshape(blocks, length, trials)
    sums, squares = cut.sum(axis=1), (cut**2).sum(axis=1)  # blocks x trials
    chosen = np.array([[b in combo for b in range(blocks)] for combo in combinations(range(blocks), blocks // 2)])
    inside = chosen.astype(np.float64)
    outside = 1.0 - inside
    count = float(length * blocks // 2)
    in_sharpe = block_sharpe(inside @ sums, inside @ squares, np.full((len(chosen), trials), count))
    out_sharpe = block_sharpe(outside @ sums, outside @ squares, np.full((len(chosen), trials), count))
    best = np.argmax(in_sharpe, axis=1)
    best_out = out_sharpe[np.arange(len(chosen)), best]
    # Rank 1 = worst out of sample; ties count the winner below the trials it ties with.
    rank = (out_sharpe < best_out[:, None]).sum(axis=1) + 1
    share = rank / (trials + 1.0)
    logits = np.log(share / (1.0 - share))
    return PboResult(float(np.mean(logits <= 0)), tuple(float(x) for x in logits), blocks, trials, periods)


def expected_max_sharpe(variance: float, trials: int) -> float:
    """SR0: the Sharpe ratio the best of ``trials`` unskilled trials reaches, given the variance
    of their Sharpe ratios."""
    if trials < 2:
        return 0.0
    first = NORMAL.inv_cdf(1.0 - 1.0 / trials)
    second = NORMAL.inv_cdf(1.0 - 1.0 / (trials * math.e))
    return math.sqrt(max(variance, 0.0)) * ((1.0 - EULER_GAMMA) * first + EULER_GAMMA * second)


def deflated_sharpe(
    sharpe: float, periods: int, skewness: float, kurtosis: float, trials: int, sharpe_variance: float
) -> float:
    """DSR of a best trial: ``sharpe`` per period (not annualised), ``kurtosis`` not excess (normal = 3)."""
    if periods < 2:
        raise ValueError("the deflated Sharpe ratio needs at least two returns")
    benchmark = expected_max_sharpe(sharpe_variance, trials)
    spread = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if spread <= 0:
        raise ValueError("skewness and kurtosis give a non-positive variance of the Sharpe ratio")
    return NORMAL.cdf((sharpe - benchmark) * math.sqrt(periods - 1) / math.sqrt(spread))


@dataclass(frozen=True)
class Moments:
    """Sharpe ratio per period, skewness and (non-excess) kurtosis of one return series."""

    sharpe: float
    skewness: float
    kurtosis: float
    periods: int


def moments(returns: npt.ArrayLike) -> Moments:
    """The moments the deflated Sharpe ratio reads; a flat series has Sharpe 0, skewness 0, kurtosis 3."""
    values = np.asarray(returns, dtype=np.float64)
    n = len(values)
    spread = float(np.std(values, ddof=1)) if n > 1 else 0.0
    if not spread > 0:
        return Moments(0.0, 0.0, 3.0, n)
    centred = values - values.mean()
    population = float(np.sqrt(np.mean(centred**2)))
    return Moments(
        float(values.mean()) / spread,
        float(np.mean(centred**3)) / population**3,
        float(np.mean(centred**4)) / population**4,
        n,
    )


def deflated_sharpe_of(best: npt.ArrayLike, all_returns: npt.ArrayLike) -> float:
    """DSR of the column ``best`` given every trial's returns (T x N): N and V come from the columns."""
    matrix = np.asarray(all_returns, dtype=np.float64)
    sharpes = [moments(matrix[:, j]).sharpe for j in range(matrix.shape[1])]
    m = moments(best)
    variance = float(np.var(sharpes, ddof=1)) if len(sharpes) > 1 else 0.0
    return deflated_sharpe(m.sharpe, m.periods, m.skewness, m.kurtosis, len(sharpes), variance)
