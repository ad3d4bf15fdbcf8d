// The candle chart (lightweight-charts): candles, the lines the symbol's strategy declares
// (overlays of /api/candles: EMAs, averages, channels), an RSI pane with its bounds, trade
// markers and position lines (chart-overlays.js), the values under the cursor (chart-legend.js)
// and a timeframe switch that aggregates the stored candles (candles.js). Times are market
// time in the page's zone; values come from /api/candles and the live feed.

import { api } from "./api.js";
import { makeChart } from "./charting.js";
import { BucketTail, bucketOf, numeric, TIMEFRAMES } from "./candles.js";
import { CrosshairLegend } from "./chart-legend.js";
import { ChartOverlays } from "./chart-overlays.js";
import { chartTime } from "./clock.js";
import { $, debounce, el, replace } from "./dom.js";
import { fmtPrice, setSymbolInfo } from "./format.js";

const COLORS = { up: "#22c55e", down: "#ef4444", rsi: "#e879f9" };
// Price-pane lines in the order the strategy declares them (ema_cross_rsi: short, long, filter).
const PALETTE = ["#38bdf8", "#f59e0b", "#a78bfa", "#34d399", "#f472b6", "#facc15"];
/** A row's value of an overlay column (rows of the API carry `lines`; ema_cross_rsi's also by name). */
const valueOf = (row, column) => row.lines?.[column] ?? row[column] ?? null;
const SHOWN = 500;
const TF_KEY = "dashboard.timeframe";

export class CandleChart {
  constructor(app) {
    this.app = app;
    this.container = $("#chart");
    this.message = $("#chart-message");
    this.chart = null;
    this.data = null; // the last /api/candles answer, in the chart's timeframe
    this.tail = null; // the newest bucket, kept up to date from the live base candles
    this.baseMs = 60000;
    this.timeframe = localStorage.getItem(TF_KEY) || "1m";
    this.reloadSoon = debounce(() => this.load(), 500);
    for (const button of document.querySelectorAll("#chart-timeframes button")) {
      button.addEventListener("click", () => this.setTimeframe(button.dataset.timeframe));
    }
  }

  ensureChart() {
    if (this.chart) return true;
    const LC = window.LightweightCharts;
    this.chart = makeChart(this.container, { priceFormatter: (price) => fmtPrice(price), crosshair: { mode: LC?.CrosshairMode.Normal } });
    if (!this.chart) {
      this.message.textContent = "The chart library did not load.";
      return false;
    }
    this.candles = this.chart.addSeries(LC.CandlestickSeries, {
      upColor: COLORS.up, downColor: COLORS.down, borderVisible: false, wickUpColor: COLORS.up, wickDownColor: COLORS.down,
    });
    // Named in the legend above the chart; no titles on the price axis.
    this.line = (color, pane = 0, format = undefined) =>
      this.chart.addSeries(LC.LineSeries, { color, lineWidth: 2, priceLineVisible: false, lastValueVisible: false, priceFormat: format }, pane);
    this.series = new Map(); // overlay column → its line series (the symbol's strategy's)
    this.overlayList = [];
    this.rsi = this.line(COLORS.rsi, 1, { type: "price", precision: 2, minMove: 0.01 });
    this.chart.panes()[0].setStretchFactor(3);
    this.chart.panes()[1].setStretchFactor(1);
    this.overlays = new ChartOverlays(this.candles, LC);
    this.legend = new CrosshairLegend($("#chart-legend"), this.chart);
    return true;
  }

  get bucketMs() {
    return Math.max(TIMEFRAMES[this.timeframe] ?? this.baseMs, this.baseMs);
  }

  setTimeframe(timeframe) {
    if (!TIMEFRAMES[timeframe]) return;
    this.timeframe = timeframe;
    localStorage.setItem(TF_KEY, timeframe);
    this.load();
  }

  fetch = (symbol, timeframe, limit) => api(`/api/candles?symbol=${encodeURIComponent(symbol)}&timeframe=${timeframe}&limit=${limit}`);

  async load() {
    if (!this.ensureChart()) return;
    const symbol = this.app.symbol;
    if (!symbol) return;
    if (!this.rows?.length) this.message.textContent = "Loading candles…";
    let data;
    let tail = null;
    try {
      // The bot's timeframe is the stored one; longer ones are aggregated by the api.
      const base = this.app.status.status?.timeframe ?? "1m";
      this.baseMs = TIMEFRAMES[base] ?? 60000;
      data = await this.fetch(symbol, this.timeframe, SHOWN);
      // The newest bucket is kept up to date from the live base candles: fetch those it holds.
      if (this.bucketMs > this.baseMs) tail = await this.fetch(symbol, base, Math.ceil(this.bucketMs / this.baseMs) + 1);
    } catch (error) {
      if (error.status === 422 && this.timeframe !== "1m") return this.setTimeframe("1m");
      this.message.textContent = `Chart unavailable: ${error.message}`;
      return;
    }
    if (symbol !== this.app.symbol) return;
    this.interval = this.app.status.status?.timeframe ?? data.interval;
    if (data.precision) setSymbolInfo(symbol, data.precision);
    this.data = data;
    const last = data.candles[data.candles.length - 1];
    const start = last ? bucketOf(last.time_ms, this.bucketMs) : 0;
    this.tail = new BucketTail(this.baseMs, this.bucketMs, (tail ?? data).candles.filter((c) => c.time_ms >= start));
    this.setOverlays(data.overlays ?? []);
    this.setBounds(data.rsi_overbought, data.rsi_oversold);
    this.overlays.setMarkers(data.markers);
    this.overlays.setPosition(data.position);
    this.render();
    this.message.textContent = data.candles.length ? "" : "No candles yet: waiting for market data.";
  }

  /** Redraw everything from the last answer (after a load or a time-zone change). */
  render() {
    if (!this.chart || !this.data) return;
    for (const button of document.querySelectorAll("#chart-timeframes button")) {
      button.setAttribute("aria-pressed", String(button.dataset.timeframe === this.timeframe));
      button.disabled = (TIMEFRAMES[button.dataset.timeframe] ?? 0) < this.baseMs;
    }
    const rows = numeric(this.data.candles).map((row) => ({ ...row, chartTime: chartTime(row.time_ms) }));
    this.rows = rows;
    this.candles.setData(rows.map((r) => ({ time: r.chartTime, open: r.open, high: r.high, low: r.low, close: r.close })));
    for (const [column, series] of this.series) {
      series.setData(rows.filter((r) => valueOf(r, column) !== null).map((r) => ({ time: r.chartTime, value: valueOf(r, column) })));
    }
    this.legend.setRows(rows);
    this.overlays.draw(this.bucketMs);
    this.container.setAttribute("aria-label", `${this.app.symbol} ${this.timeframe} candle chart, ${rows.length} candles`);
  }

  /** The lines the symbol's strategy declares: price-pane ones each in a series, the oscillator in the lower pane. */
  setOverlays(overlays) {
    const key = overlays.map((o) => `${o.column}:${o.pane}`).join();
    if (key === this.overlayKey) return;
    this.overlayKey = key;
    this.overlayList = overlays;
    for (const [column, series] of this.series) if (series !== this.rsi) this.chart.removeSeries(series);
    this.series = new Map();
    let colour = 0;
    for (const overlay of overlays) {
      if (overlay.pane === "oscillator") {
        if (![...this.series.values()].includes(this.rsi)) this.series.set(overlay.column, this.rsi);
        continue;
      }
      this.series.set(overlay.column, this.line(PALETTE[colour++ % PALETTE.length]));
    }
    if (![...this.series.values()].includes(this.rsi)) this.rsi.setData([]);
    const coloured = overlays.map((o, i) => ({ ...o, color: o.pane === "oscillator" ? COLORS.rsi : PALETTE[overlays.slice(0, i).filter((x) => x.pane !== "oscillator").length % PALETTE.length] }));
    this.legend.setOverlays(coloured);
    replace($("#chart-swatches"), coloured.map((o) => {
      const swatch = el("span", { className: "swatch" });
      swatch.style.background = o.color;
      return el("li", { dataset: { column: o.column } }, swatch, o.label);
    }));
  }

  setBounds(overbought, oversold) {
    for (const line of this.boundLines ?? []) this.rsi.removePriceLine(line);
    const bound = (price, title) => this.rsi.createPriceLine({ price, color: "#64748b", lineWidth: 1, lineStyle: 2, axisLabelVisible: true, title });
    this.boundLines = overbought === null || overbought === undefined ? [] : [bound(overbought, "overbought"), bound(oversold, "oversold")];
  }

  /** Draw `row` (an aggregated candle) as the newest or a current bar. */
  drawRow(row) {
    row.chartTime = chartTime(row.time_ms);
    const index = this.rows.findIndex((r) => r.time_ms === row.time_ms);
    if (index === -1) this.rows.push(row);
    else this.rows[index] = row;
    // A bar before a series' last one is a historical update (a late decision's indicator values).
    const put = (series, point) => {
      try {
        series.update(point);
      } catch {
        series.update(point, true);
      }
    };
    try {
      put(this.candles, { time: row.chartTime, open: row.open, high: row.high, low: row.low, close: row.close });
      for (const [column, series] of this.series) if (valueOf(row, column) !== null) put(series, { time: row.chartTime, value: valueOf(row, column) });
      this.legend.update(row);
    } catch {
      this.reloadSoon(); // a bar the series does not hold: redraw from the API
    }
  }

  /** A base candle from the live feed (forming or just closed), folded into its bucket. */
  onCandle(data) {
    if (!this.chart || !this.tail || data.symbol !== this.app.symbol || (this.interval && data.interval !== this.interval)) return;
    const row = this.tail.fold({ time_ms: data.open_time_ms, open: data.open, high: data.high, low: data.low, close: data.close, volume: data.volume, closed: data.closed });
    if (row) this.drawRow(row);
    if (row && this.message.textContent.startsWith("No candles")) this.message.textContent = "";
  }

  /** A decision carries the indicator values of the candle it was made on. */
  onDecision(data) {
    if (!this.chart || !this.tail || data.symbol !== this.app.symbol || data.interval !== this.interval) return;
    const lines = {};
    for (const [key, value] of Object.entries(data.indicators ?? {})) if (typeof value === "number") lines[key] = value;
    const values = { lines };
    const row = this.tail.indicators(data.candle_open_time_ms, values);
    if (row) return this.drawRow(row);
    // An older bucket shows the values of its last base candle.
    const old = this.rows.find((r) => r.time_ms === bucketOf(data.candle_open_time_ms, this.bucketMs));
    if (old && data.candle_open_time_ms + this.baseMs === old.time_ms + this.bucketMs) this.drawRow({ ...old, lines: { ...old.lines, ...lines } });
  }

  /** Trade markers and position lines from the live feed. */
  onTrade(trade) {
    if (this.chart && trade.symbol === this.app.symbol) this.overlays.upsertTrade(trade);
  }

  onPosition(position, symbol) {
    if (this.chart && symbol === this.app.symbol) this.overlays.setPosition(position);
  }

  /** New RSI bounds after a parameter change. */
  onParameters(data) {
    if (data.symbol && data.symbol !== this.app.symbol) return;
    if (data.strategy && this.data && data.strategy !== this.data.strategy) return this.load(); // its lines change
    const p = data.parameters ?? {};
    if (this.chart && p.RSI_OVERBOUGHT !== undefined && p.RSI_OVERSOLD !== undefined) this.setBounds(Number(p.RSI_OVERBOUGHT), Number(p.RSI_OVERSOLD));
  }

  onSignal(data) {
    if (this.chart && data.symbol === this.app.symbol) this.overlays.addSignal(data);
  }

  /** Centre the visible range on `timeMs` (a trade's entry), keeping the zoom. */
  scrollTo(timeMs) {
    if (!this.chart || !this.rows?.length) return false;
    const target = chartTime(bucketOf(timeMs, this.bucketMs));
    let index = this.rows.findIndex((row) => row.chartTime >= target);
    if (index === -1) index = this.rows.length - 1;
    const range = this.chart.timeScale().getVisibleLogicalRange();
    const half = range ? Math.max(10, (range.to - range.from) / 2) : 60;
    this.chart.timeScale().setVisibleLogicalRange({ from: index - half, to: index + half });
    return this.rows[0].time_ms <= timeMs;
  }
}
