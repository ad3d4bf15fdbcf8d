// Equity over market time: the cumulative realised P&L (left scale) and the equity (right
// scale), one point per closed trade from `/api/profit/equity`, then one more point per
// `profit` event (the api's figures at that moment: nothing is summed here).

import { api } from "./api.js";
import { makeChart, THEME } from "./charting.js";
import { chartTime, onTimeZone } from "./clock.js";
import { $ } from "./dom.js";
import { fmtQuote } from "./format.js";

const COLORS = { realised: "#38bdf8", equity: "#f59e0b" };

export class EquityChart {
  constructor() {
    this.container = $("#equity");
    this.message = $("#equity-message");
    this.points = []; // [{time_ms, realised_quote, equity_quote}], oldest first
    this.chart = null;
    onTimeZone(() => this.draw());
  }

  ensureChart() {
    if (this.chart) return true;
    this.chart = makeChart(this.container, { priceFormatter: (value) => fmtQuote(value), leftPriceScale: { visible: true, borderColor: THEME.grid } });
    if (!this.chart) return false;
    const LC = window.LightweightCharts;
    const line = (color, priceScaleId, title) =>
      this.chart.addSeries(LC.LineSeries, { color, lineWidth: 2, priceScaleId, title, lastValueVisible: true, priceLineVisible: false });
    this.realised = line(COLORS.realised, "left", "realised P&L");
    this.equity = line(COLORS.equity, "right", "equity");
    return true;
  }

  async load() {
    if (!this.ensureChart()) return;
    try {
      const data = await api("/api/profit/equity");
      this.points = data.points.map((p) => ({ time_ms: p.time_ms, trade_id: p.trade_id, realised_quote: p.realised_quote, equity_quote: p.equity_quote }));
      this.closed = this.points.filter((p) => p.trade_id !== null).length;
      this.quote = data.quote_asset;
    } catch (error) {
      this.message.textContent = error.status === 503 ? "No ledger yet." : `Equity unavailable: ${error.message}`;
      return;
    }
    this.draw();
  }

  /** A `profit` event: the totals at its market time become the newest point. */
  onProfit(data) {
    if (!data?.total || !data.market_time_ms) return;
    // A trade closed since: the point stays; otherwise it replaces the "now" point (trade_id null).
    const closedNow = data.total.trades ?? 0;
    const point = { time_ms: data.market_time_ms, trade_id: closedNow > (this.closed ?? 0) ? "closed" : null,
      realised_quote: data.total.realised_quote, equity_quote: data.total.equity_quote };
    this.closed = closedNow;
    const last = this.points[this.points.length - 1];
    if (last && point.time_ms < last.time_ms) return;
    if (last && last.trade_id === null) this.points.pop();
    this.points.push(point);
    this.draw();
  }

  draw() {
    if (!this.chart) return;
    // One point per chart second, the newest winning (the chart needs strictly rising times).
    const bySecond = new Map();
    for (const p of this.points) bySecond.set(chartTime(p.time_ms), p);
    const rows = [...bySecond.entries()].sort((a, b) => a[0] - b[0]);
    const series = (key) => rows.filter(([, p]) => p[key] !== null && p[key] !== undefined).map(([time, p]) => ({ time, value: Number(p[key]) }));
    this.realised.setData(series("realised_quote"));
    this.equity.setData(series("equity_quote"));
    this.chart.timeScale().fitContent();
    this.message.textContent = rows.length ? `Left: realised P&L, right: equity (${this.quote ?? "quote"}), market time.` : "No closed trade yet.";
  }
}
