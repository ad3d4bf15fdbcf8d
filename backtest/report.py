"""Self-contained HTML report: summary, candle chart with trades, equity, drawdown, trade table.

Everything is inline (SVG drawn here, a few lines of CSS, no script, no external URL), so the
file opens offline and can be served as is. Long series are bucketed to about ``MAX_POINTS``
points (each bucket keeps its open, high, low and close), which keeps a 130k-candle report
well under 3 MB. Hovering a marker shows the trade.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from backtest.engine import BacktestResult, Trade
from backtest.metrics import drawdown_pct, iso_time
from shared.trading.strategies import DEFAULT_STRATEGY

MAX_POINTS = 900
MAX_TRADES_SHOWN = 5000
WIDTH, LEFT, RIGHT = 1100, 70, 10
COLORS = {"signal": "#2563eb", "stop_loss": "#dc2626", "take_profit": "#16a34a", "end": "#6b7280", "manual": "#9333ea"}
CSS = """body{font:14px system-ui,sans-serif;margin:24px;color:#111;background:#fff}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}table{border-collapse:collapse}
td,th{padding:3px 8px;border-bottom:1px solid #e5e7eb;text-align:right}th{background:#f3f4f6}
td:first-child,th:first-child{text-align:left}.grid{display:flex;gap:40px;flex-wrap:wrap}
svg{background:#fafafa;border:1px solid #e5e7eb}.axis{font-size:11px;fill:#555}
.neg{color:#dc2626}.pos{color:#16a34a}.note{color:#555}"""


def _bucket(n: int) -> npt.NDArray[np.intp]:
    """Start index of each bucket so that there are at most MAX_POINTS of them."""
    size = max(1, -(-n // MAX_POINTS))
    return np.arange(0, n, size)


class _Frame:
    """Maps candle index and value to SVG coordinates of one chart."""

    def __init__(self, n: int, low: float, high: float, height: int) -> None:
        pad = (high - low) * 0.04 or abs(high) * 0.01 or 1.0
        self.n, self.low, self.high, self.height = max(n, 2), low - pad, high + pad, height

    def x(self, index: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * index / (self.n - 1)

    def y(self, value: float) -> float:
        return 8 + (self.height - 30) * (self.high - value) / (self.high - self.low)


def _label(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _axes(frame: _Frame, open_time: npt.NDArray[np.int64], unit: str) -> str:
    parts = []
    for value in np.linspace(frame.low, frame.high, 5)[1:-1]:
        y = frame.y(value)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_label(value)}{unit}</text>'
        )
    ticks = np.linspace(0, len(open_time) - 1, 6).astype(int)
    for number, index in enumerate(ticks):
        label = iso_time(int(open_time[index]))[:16].replace("T", " ")
        anchor = "start" if number == 0 else "end" if number == len(ticks) - 1 else "middle"
        parts.append(
            f'<text class="axis" x="{frame.x(index):.1f}" y="{frame.height - 6}" text-anchor="{anchor}">{label}</text>'
        )
    return "".join(parts)


def _line(
    frame: _Frame,
    index: npt.NDArray[np.intp],
    values: npt.NDArray[np.float64],
    color: str,
    fill_to: float | None = None,
) -> str:
    pairs = zip(index.tolist(), values.tolist(), strict=True)
    points = " ".join(f"{frame.x(i):.1f},{frame.y(v):.1f}" for i, v in pairs)
    if fill_to is None:
        return f'<polyline fill="none" stroke="{color}" stroke-width="1.2" points="{points}"/>'
    base = frame.y(fill_to)
    first, last = frame.x(index[0]), frame.x(index[-1])
    outline = f"{first:.1f},{base:.1f} {points} {last:.1f},{base:.1f}"
    return f'<polygon fill="{color}" fill-opacity="0.35" stroke="{color}" points="{outline}"/>'


def candle_chart(result: BacktestResult, trades: Sequence[Trade], height: int = 380) -> str:
    """Bucketed candles (wick and body) with an up-triangle at each entry and a down-triangle at each exit."""
    c = result.candles
    starts = _bucket(len(c))
    ends = np.append(starts[1:], len(c)) - 1
    opens, closes = c.open[starts], c.close[ends]
    highs, lows = np.maximum.reduceat(c.high, starts), np.minimum.reduceat(c.low, starts)
    frame = _Frame(len(c), float(lows.min()), float(highs.max()), height)
    width = max(1.0, (WIDTH - LEFT - RIGHT) / len(starts) * 0.7)
    body = []
    buckets = zip(
        starts.tolist(), ends.tolist(), opens.tolist(), highs.tolist(), lows.tolist(), closes.tolist(), strict=True
    )
    for s, e, o, h, lo, cl in buckets:
        x = frame.x((s + e) / 2)
        color = "#16a34a" if cl >= o else "#dc2626"
        top, bottom = frame.y(max(o, cl)), frame.y(min(o, cl))
        body.append(
            f'<path stroke="{color}" d="M{x:.1f} {frame.y(h):.1f}V{frame.y(lo):.1f}"/>'
            f'<rect fill="{color}" x="{x - width / 2:.1f}" y="{top:.1f}" width="{width:.1f}" '
            f'height="{max(bottom - top, 0.6):.1f}"/>'
        )
    marks = []
    for number, t in enumerate(trades, 1):
        tip = (
            f"#{number} {iso_time(t.entry_time)} buy {t.entry_price} -> {iso_time(t.exit_time)} "
            f"{t.exit_reason.value} {t.exit_price} ({float(t.return_pct):+.2f}%)"
        )
        marks.append(
            f'<use href="#up" x="{frame.x(t.entry_index):.1f}" y="{frame.y(float(t.entry_price)):.1f}">'
            f"<title>{tip}</title></use>"
            f'<use href="#down" x="{frame.x(t.exit_index):.1f}" y="{frame.y(float(t.exit_price)):.1f}" '
            f'fill="{COLORS[t.exit_reason.value]}"><title>{tip}</title></use>'
        )
    size = 5 if len(trades) <= 200 else 3
    symbols = (
        f'<defs><path id="up" d="M0 0l-{size} {2 * size}h{2 * size}z" fill="#15803d" fill-opacity="0.8"/>'
        f'<path id="down" d="M0 0l-{size} -{2 * size}h{2 * size}z" fill-opacity="0.8"/></defs>'
    )
    return (
        f'<svg width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}">{symbols}'
        f"{_axes(frame, c.open_time, '')}{''.join(body)}{''.join(marks)}</svg>"
    )


def series_chart(
    result: BacktestResult, values: npt.NDArray[np.float64], color: str, unit: str, area: bool, height: int = 220
) -> str:
    """Line of a per-candle series through each bucket's low and high, or an area from 0 down to each bucket's low."""
    starts = _bucket(len(values))
    lows, highs = np.minimum.reduceat(values, starts), np.maximum.reduceat(values, starts)
    if area:
        frame = _Frame(len(values), min(float(lows.min()), 0.0), 0.0, height)
        shape = _line(frame, starts, lows, color, fill_to=0.0)
    else:
        frame = _Frame(len(values), float(lows.min()), float(highs.max()), height)
        shape = _line(frame, np.repeat(starts, 2), np.column_stack((lows, highs)).ravel(), color)
    return (
        f'<svg width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}">'
        f"{_axes(frame, result.candles.open_time, unit)}{shape}</svg>"
    )


def _number(value: object, digits: int = 2, suffix: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        css = ' class="neg"' if value < 0 else ""
        return f"<span{css}>{value:,.{digits}f}{suffix}</span>"
    return html.escape(str(value))


SUMMARY_ROWS = (
    ("Total return", "total_return_pct", "%"),
    ("Buy and hold", "buy_and_hold_return_pct", "%"),
    ("Final equity", "final_equity", ""),
    ("Trades", "trades", ""),
    ("Win rate", "win_rate_pct", "%"),
    ("Profit factor", "profit_factor", ""),
    ("Average trade", "avg_trade_return_pct", "%"),
    ("Best trade", "best_trade_pct", "%"),
    ("Worst trade", "worst_trade_pct", "%"),
    ("Max drawdown", "max_drawdown_pct", "%"),
    ("Exposure", "exposure_pct", "%"),
    ("Sharpe (daily, annualised)", "sharpe_daily", ""),
    ("Fees paid", "fees_paid", ""),
    ("Skipped entries", "skipped_entries", ""),
)


def _table(rows: Sequence[tuple[str, str]], header: tuple[str, str] | None = None) -> str:
    head = f"<tr><th>{header[0]}</th><th>{header[1]}</th></tr>" if header else ""
    return "<table>" + head + "".join(f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in rows) + "</table>"


def trade_table(trades: Sequence[Trade]) -> str:
    """All trades (up to MAX_TRADES_SHOWN) with times in UTC."""
    head = (
        "<tr><th>#</th><th>Entry (UTC)</th><th>Entry price</th><th>Exit (UTC)</th><th>Exit price</th>"
        "<th>Reason</th><th>Quantity</th><th>Return</th></tr>"
    )
    rows = [
        f"<tr><td>{i}</td><td>{iso_time(t.entry_time)}</td><td>{t.entry_price}</td><td>{iso_time(t.exit_time)}</td>"
        f"<td>{t.exit_price}</td><td>{t.exit_reason.value}</td><td>{t.quantity}</td>"
        f"<td>{_number(float(t.return_pct), 3, '%')}</td></tr>"
        for i, t in enumerate(trades[:MAX_TRADES_SHOWN], 1)
    ]
    more = (
        f'<p class="note">{len(trades) - MAX_TRADES_SHOWN} more trades are in the JSON output.</p>'
        if len(trades) > MAX_TRADES_SHOWN
        else ""
    )
    return f"<table>{head}{''.join(rows)}</table>{more}"


def render_report(result: BacktestResult, title: str | None = None) -> str:
    """The whole report as one HTML document."""
    s = result.summary
    title = title or f"Backtest {s.get('symbol') or ''} {s.get('interval') or ''}".strip()
    period = f"{s['start']} .. {s['end']}, {s['candles']:,} candles"
    summary = _table([(label, _number(s.get(key), 2, unit)) for label, key, unit in SUMMARY_ROWS], ("Result", ""))
    own = s.get("strategy_parameters", {}) if s.get("strategy", DEFAULT_STRATEGY) != DEFAULT_STRATEGY else {}
    settings = {
        "STRATEGY": s.get("strategy", DEFAULT_STRATEGY),
        **own,
        **s.get("parameters", {}),
        **s.get("settings", {}),
    }
    parameters = _table([(k, html.escape(str(v))) for k, v in settings.items()], ("Parameter", "Value"))
    reasons = ", ".join(f"{k}: {v}" for k, v in s.get("exit_reasons", {}).items())
    shown = result.trades[:MAX_TRADES_SHOWN]
    legend = " ".join(f'<span style="color:{c}">&#9660; {k}</span>' for k, c in COLORS.items() if k != "manual")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{CSS}</style></head>
<body><h1>{html.escape(title)}</h1><p class="note">{period}. Exit reasons: {reasons}.</p>
<div class="grid">{summary}{parameters}</div>
<h2>Price and trades</h2><p class="note"><span style="color:#15803d">&#9650; entry</span> {legend}</p>
{candle_chart(result, shown)}
<h2>Equity (quote)</h2>{series_chart(result, result.equity, "#2563eb", "", area=False)}
<h2>Drawdown</h2>{series_chart(result, drawdown_pct(result.equity, s["starting_balance"]), "#dc2626", "%", area=True)}
<h2>Trades</h2>{trade_table(result.trades)}
</body></html>
"""
