"""The plain-words verdict of a study, from its overfitting figures and the walk-forward result.

``likely overfit`` when the probability of backtest overfitting is 0.5 or more, the deflated
Sharpe ratio of the best trial is below 0.5 (more likely luck than skill), or the stitched
out-of-sample return of the walk-forward is not positive; ``promising`` when PBO is below 0.2,
the deflated Sharpe ratio at least 0.95 and any walk-forward made money out of sample;
``inconclusive`` otherwise (including when a figure could not be computed).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    LIKELY_OVERFIT = "likely overfit"
    INCONCLUSIVE = "inconclusive"
    PROMISING = "promising"


def verdict(document: dict[str, Any]) -> dict[str, Any]:
    """``{"verdict": ..., "reasons": [...]}`` for a study document (see the module docstring)."""
    figures = document.get("overfitting") or {}
    walk = document.get("walk_forward") or {}
    pbo, dsr = figures.get("pbo"), figures.get("deflated_sharpe")
    oos = walk.get("stitched_return_pct")
    reasons = []
    if pbo is not None and pbo >= 0.5:
        reasons.append(f"PBO {pbo:.2f}: the in-sample best is at or below the median out of sample in most splits")
    if dsr is not None and dsr < 0.5:
        reasons.append(
            f"deflated Sharpe {dsr:.2f}: the best Sharpe ratio is within what luck gives over this many trials"
        )
    if walk and oos is not None and oos <= 0:
        reasons.append(f"walk-forward out-of-sample return {oos:.2f} %")
    if reasons:
        return {"verdict": Verdict.LIKELY_OVERFIT.value, "reasons": reasons}
    if pbo is not None and dsr is not None and pbo < 0.2 and dsr >= 0.95 and (not walk or (oos or 0) > 0):
        return {"verdict": Verdict.PROMISING.value, "reasons": [f"PBO {pbo:.2f}, deflated Sharpe {dsr:.2f}"]}
    return {"verdict": Verdict.INCONCLUSIVE.value, "reasons": ["the figures are neither clearly good nor clearly bad"]}
