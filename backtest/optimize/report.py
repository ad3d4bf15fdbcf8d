"""Self-contained HTML report of a study: verdict, best vs defaults, overfitting figures, walk-forward,
equity curves, trial history, parameter importance and parallel coordinates.

Inline SVG and CSS only (no script, no external URL), like the backtest report.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from backtest.optimize.run import Outcome
from backtest.report import CSS

W, H, PAD = 900, 260, 40
# Where every run also leaves its document and report, named by the study (the dashboard lists them).
REPORT_DIR = Path("var") / "optimize" / "reports"


def report_files(folder: Path, study: str) -> tuple[Path, Path]:
    """``<folder>/<study>.json`` and ``.html``, the study name reduced to file-safe characters."""
    stem = re.sub(r"[^A-Za-z0-9._+-]", "_", study)
    return folder / f"{stem}.json", folder / f"{stem}.html"


CURVE_COLORS = {"best": "#2563eb", "defaults": "#9333ea", "buy_and_hold": "#6b7280", "walk_forward": "#16a34a"}
VERDICT_COLORS = {"likely overfit": "#dc2626", "inconclusive": "#d97706", "promising": "#16a34a"}


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return html.escape(str(value))


def _scale(
    values: npt.NDArray[np.float64], low: float, high: float, size: float, flip: bool
) -> npt.NDArray[np.float64]:
    span = (high - low) or 1.0
    unit = (values - low) / span
    scaled: npt.NDArray[np.float64] = PAD + (1.0 - unit if flip else unit) * (size - 2 * PAD)
    return scaled


def equity_chart(curves: dict[str, npt.NDArray[np.float64]]) -> str:
    """Daily equity curves on one chart, each from the same starting balance; a shorter curve
    (the stitched walk-forward, which covers the test windows only) is drawn against the last days."""
    shown = {k: v for k, v in curves.items() if len(v)}
    if not shown:
        return ""
    low = min(float(v.min()) for v in shown.values())
    high = max(float(v.max()) for v in shown.values())
    longest = max(len(v) for v in shown.values())
    lines, legend = [], []
    for number, (name, curve) in enumerate(shown.items()):
        offset = longest - len(curve)
        xs = _scale(np.arange(offset, longest, dtype=np.float64), 0, max(longest - 1, 1), W, False)
        ys = _scale(curve, low, high, H, True)
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs.tolist(), ys.tolist(), strict=True))
        color = CURVE_COLORS.get(name, "#111")
        lines.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{points}"/>')
        legend.append(
            f'<text class="axis" x="{PAD + 160 * number}" y="16" fill="{color}">{name.replace("_", " ")}</text>'
        )
    axis = (
        f'<text class="axis" x="4" y="{PAD}">{high:,.0f}</text><text class="axis" x="4" y="{H - PAD}">{low:,.0f}</text>'
    )
    return f'<svg data-testid="equity-chart" width="{W}" height="{H}">{axis}{"".join(legend)}{"".join(lines)}</svg>'


def history_chart(history: list[dict[str, Any]]) -> str:
    """First objective of each complete trial by trial number, with the running best."""
    points = [(t["number"], t["values"][0]) for t in history if t["values"]]
    if not points:
        return ""
    numbers = np.array([p[0] for p in points], dtype=np.float64)
    values = np.array([p[1] for p in points], dtype=np.float64)
    xs = _scale(numbers, 0, max(float(numbers.max()), 1.0), W, False)
    ys = _scale(values, float(values.min()), float(values.max()), H, True)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.2" fill="#2563eb"/>' for x, y in zip(xs, ys, strict=True))
    best = _scale(np.maximum.accumulate(values), float(values.min()), float(values.max()), H, True)
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs.tolist(), best.tolist(), strict=True))
    return (
        f'<svg data-testid="history-chart" width="{W}" height="{H}">{dots}'
        f'<polyline fill="none" stroke="#16a34a" stroke-width="1.5" points="{line}"/></svg>'
    )


def parallel_chart(history: list[dict[str, Any]], names: list[str]) -> str:
    """Parallel coordinates: one axis per searched parameter and one for the objective, a line per trial."""
    trials = [t for t in history if t["values"] and all(n in t["params"] for n in names)]
    if not trials or not names:
        return ""
    axes = [*names, "objective"]
    table = np.array(
        [[float(t["params"][n]) for n in names] + [float(t["values"][0])] for t in trials], dtype=np.float64
    )
    xs = np.linspace(PAD, W - PAD, len(axes))
    lows, highs = table.min(axis=0), table.max(axis=0)
    scores = (table[:, -1] - lows[-1]) / ((highs[-1] - lows[-1]) or 1.0)
    lines = []
    for row, s in zip(table, scores, strict=True):
        ys = [_scale(np.array([v]), lo, hi, H, True)[0] for v, lo, hi in zip(row, lows, highs, strict=True)]
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
        color = f"rgb({int(220 * (1 - s))},{int(60 + 120 * s)},{int(235 * s)})"
        lines.append(f'<polyline fill="none" stroke="{color}" stroke-opacity="0.5" points="{points}"/>')
    labels = "".join(
        f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{PAD}" y2="{H - PAD}" stroke="#999"/>'
        f'<text class="axis" x="{x:.1f}" y="{H - 8}" text-anchor="middle">{html.escape(a)}</text>'
        for x, a in zip(xs, axes, strict=True)
    )
    return f'<svg data-testid="parallel-chart" width="{W}" height="{H}">{"".join(lines)}{labels}</svg>'


def _metrics_table(rows: list[tuple[str, dict[str, Any] | None]]) -> str:
    keys = ["sharpe", "sortino", "calmar", "total_return_pct", "profit_factor", "max_drawdown_pct", "trades"]
    head = "".join(f"<th>{k}</th>" for k in ["", *keys])
    body = "".join(
        f"<tr><td>{html.escape(label)}</td>" + "".join(f"<td>{_num((m or {}).get(k))}</td>" for k in keys) + "</tr>"
        for label, m in rows
    )
    return f'<table data-testid="metrics-table"><tr>{head}</tr>{body}</table>'


def walk_forward_table(walk: dict[str, Any] | None) -> str:
    if not walk:
        return '<p class="note">No walk-forward was run (--walk-forward K).</p>'
    rows = []
    for w in walk["windows"]:
        ins, out = w.get("in_sample") or {}, w.get("out_of_sample") or {}
        params = " ".join(f"{k}={_num(v, 4)}" for k, v in (w["params"] or {}).items())
        rows.append(
            f"<tr><td>{w['window']}</td><td>{w['train'][0]} .. {w['train'][1]}</td>"
            f"<td>{w['test'][0]} .. {w['test'][1]}</td>"
            f"<td>{html.escape(params)}</td><td>{_num(ins.get('sharpe'))}</td><td>{_num(out.get('sharpe'))}</td>"
            f"<td>{_num(out.get('total_return_pct'), 2)}</td><td>{_num(out.get('trades'))}</td></tr>"
        )
    return (
        '<table data-testid="walk-forward-table"><tr><th>window</th><th>train (UTC)</th><th>test (UTC)</th>'
        "<th>chosen parameters</th><th>in-sample Sharpe</th><th>out-of-sample Sharpe</th><th>OOS return %</th>"
        f"<th>OOS trades</th></tr>{''.join(rows)}</table>"
        f"<p>Stitched out-of-sample: return {_num(walk['stitched_return_pct'], 2)} %, "
        f"Sharpe {_num(walk['stitched_sharpe'])} ({walk['mode']}, train = {walk['train_ratio']} x test).</p>"
    )


def render_study_report(outcome: Outcome) -> str:
    d = outcome.document
    v = d["verdict"]
    figures = d["overfitting"]
    names = [dim["name"] for dim in d["space"]]
    importance = "".join(
        f'<tr><td>{html.escape(k)}</td><td><svg width="{int(300 * x) + 1}" height="10">'
        f'<rect width="{int(300 * x) + 1}" height="10" fill="#2563eb"/></svg> {x:.3f}</td></tr>'
        for k, x in d["importance"].items()
    )
    curves = dict(outcome.curves)
    if d["walk_forward"]:
        curves["walk_forward"] = np.asarray(d["walk_forward"]["stitched_curve"], dtype=np.float64)
    best = d["best"]
    chosen = " ".join(f"{k}={_num(v, 4)}" for k, v in (best or {}).get("params", {}).items()) or "no feasible trial"
    color = VERDICT_COLORS.get(v["verdict"], "#111")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Study {html.escape(d["study"]["name"])}</title>
<style>{CSS}</style></head><body>
<h1>Study {html.escape(d["study"]["name"])}</h1>
<p>{html.escape(d["strategy"])} on {html.escape(", ".join(d["symbols"]))} {html.escape(str(d["interval"]))},
{d["period"][0]} .. {d["period"][1]}; {d["study"]["trials"]} trials ({d["study"]["feasible"]} feasible),
objective {html.escape(", ".join(d["objectives"]))}, seed {d["seed"]}.</p>
<h2>Verdict</h2>
<p data-testid="verdict" style="font-weight:bold;color:{color}">{html.escape(v["verdict"])}</p>
<ul>{"".join(f"<li>{html.escape(r)}</li>" for r in v["reasons"])}</ul>
<table data-testid="overfitting-table"><tr><th>figure</th><th>value</th><th>meaning</th></tr>
<tr><td>PBO (CSCV, {_num(figures.get("blocks"))} blocks)</td><td>{_num(figures.get("pbo"))}</td>
<td>share of in-sample/out-of-sample splits where the in-sample best is at or below the median out of sample</td></tr>
<tr><td>Deflated Sharpe ratio</td><td>{_num(figures.get("deflated_sharpe"))}</td>
<td>probability that the best trial's Sharpe ratio beats the best of {figures.get("trials")}
unskilled trials</td></tr></table>
<h2>Best parameters</h2>
<p data-testid="best-params">{html.escape(chosen)}</p>
{_metrics_table([("best", (best or {}).get("metrics")), ("defaults", d["defaults"])])}
<h2>Equity (daily closes)</h2>{equity_chart(curves)}
<h2>Walk-forward</h2>{walk_forward_table(d["walk_forward"])}
<h2>Trial history (first objective, green: best so far)</h2>{history_chart(d["history"])}
<h2>Parameter importance</h2><table data-testid="importance-table">{importance}</table>
<h2>Parallel coordinates (blue: better)</h2>{parallel_chart(d["history"], names)}
</body></html>
"""
