// The candle chart (lightweight-charts): candles, EMA lines, an RSI pane with its bounds,
// signal and trade markers, stop-loss / take-profit lines. Values come from /api/candles and
// the live feed; nothing is computed here.

import { api } from "./api.js";
import { $, debounce } from "./dom.js";

const COLORS = {
  up: "#22c55e",
  down: "#ef4444",
  emaShort: "#38bdf8",
  emaLong: "#f59e0b",
  emaFilter: "#a78bfa",
  rsi: "#e879f9",
  text: "#cbd5e1",
  grid: "#1e293b",
};
const seconds = (ms) => Math.floor(ms / 1000);

export class CandleChart {
  constructor(app) {
    this.app = app;
    this.container = $("#chart");
    this.message = $("#chart-message");
    this.chart = null;
    this.lines = [];
    this.lastTime = 0;
    this.reloadSoon = debounce(() => this.load(), 500);
  }

  ensureChart() {
    if (this.chart) return true;
    const LC = window.LightweightCharts;
    if (!LC) {
      this.message.textContent = "The chart library did not load.";
      return false;
    }
    this.chart = LC.createChart(this.container, {
      autoSize: true,
      layout: { background: { color: "transparent" }, textColor: COLORS.text, panes: { separatorColor: COLORS.grid } },
      grid: { vertLines: { color: COLORS.grid }, horzLines: { color: COLORS.grid } },
      timeScale: { timeVisible: true, secondsVisible: false, borderColor: COLORS.grid },
      rightPriceScale: { borderColor: COLORS.grid },
      crosshair: { mode: LC.CrosshairMode.Normal },
    });
    this.candles = this.chart.addSeries(LC.CandlestickSeries, {
      upColor: COLORS.up, downColor: COLORS.down, borderVisible: false, wickUpColor: COLORS.up, wickDownColor: COLORS.down,
    });
    // Named in the legend above the chart; no titles on the price axis.
    const line = (color, pane = 0) =>
      this.chart.addSeries(LC.LineSeries, { color, lineWidth: 2, priceLineVisible: false, lastValueVisible: false }, pane);
    this.emaShort = line(COLORS.emaShort);
    this.emaLong = line(COLORS.emaLong);
    this.emaFilter = line(COLORS.emaFilter);
    this.rsi = line(COLORS.rsi, 1);
    this.chart.panes()[0].setStretchFactor(3);
    this.chart.panes()[1].setStretchFactor(1);
    this.markers = LC.createSeriesMarkers(this.candles, []);
    return true;
  }

  async load() {
    if (!this.ensureChart()) return;
    const symbol = this.app.symbol;
    if (!symbol) return;
    this.message.textContent = this.lastTime ? "" : "Loading candles…";
    let data;
    try {
      data = await api(`/api/candles?symbol=${encodeURIComponent(symbol)}&limit=500`);
    } catch (error) {
      this.message.textContent = `Chart unavailable: ${error.message}`;
      return;
    }
    if (symbol !== this.app.symbol) return;
    this.interval = data.interval;
    const rows = data.candles;
    this.candles.setData(rows.map((c) => ({ time: seconds(c.time_ms), open: +c.open, high: +c.high, low: +c.low, close: +c.close })));
    const series = (key) => rows.filter((c) => c[key] !== null && c.closed).map((c) => ({ time: seconds(c.time_ms), value: c[key] }));
    this.emaShort.setData(series("ema_short"));
    this.emaLong.setData(series("ema_long"));
    this.emaFilter.setData(series("ema_filter"));
    this.rsi.setData(series("rsi"));
    this.lastTime = rows.length ? rows[rows.length - 1].time_ms : 0;
    this.setBounds(data.rsi_overbought, data.rsi_oversold);
    this.setMarkers(data.markers);
    this.setPositionLines(data.position);
    this.message.textContent = rows.length ? "" : "No candles yet: waiting for market data.";
    this.container.setAttribute("aria-label", `${symbol} ${data.interval} candle chart, ${rows.length} candles`);
  }

  setBounds(overbought, oversold) {
    for (const line of this.boundLines ?? []) this.rsi.removePriceLine(line);
    const bound = (price, title) => this.rsi.createPriceLine({ price, color: "#64748b", lineWidth: 1, lineStyle: 2, axisLabelVisible: true, title });
    this.boundLines = [bound(overbought, "overbought"), bound(oversold, "oversold")];
  }

  setMarkers(markers) {
    this.markerList = markers.map((m) => ({
      time: seconds(m.time_ms),
      position: m.side === "BUY" ? "belowBar" : "aboveBar",
      color: m.kind === "signal" ? (m.side === "BUY" ? "#86efac" : "#fca5a5") : m.side === "BUY" ? COLORS.up : COLORS.down,
      shape: m.side === "BUY" ? "arrowUp" : "arrowDown",
      text: m.kind === "signal" ? `${m.side} signal` : m.text,
    }));
    this.markers.setMarkers(this.markerList);
  }

  setPositionLines(position) {
    for (const line of this.lines) this.candles.removePriceLine(line);
    this.lines = [];
    if (!position) return;
    const add = (price, color, title) => {
      if (price !== null && price !== undefined) {
        this.lines.push(this.candles.createPriceLine({ price: +price, color, lineWidth: 1, lineStyle: 1, axisLabelVisible: true, title }));
      }
    };
    add(position.entry_price, "#94a3b8", "entry");
    add(position.stop_loss, COLORS.down, "SL");
    add(position.take_profit, COLORS.up, "TP");
  }

  /** A candle from the live feed (forming or just closed). */
  onCandle(data) {
    if (!this.chart || data.symbol !== this.app.symbol || (this.interval && data.interval !== this.interval)) return;
    if (data.open_time_ms < this.lastTime) return;
    try {
      this.candles.update({ time: seconds(data.open_time_ms), open: +data.open, high: +data.high, low: +data.low, close: +data.close });
      this.lastTime = data.open_time_ms;
      if (this.message.textContent.startsWith("No candles")) this.message.textContent = "";
    } catch {
      this.reloadSoon();
    }
  }

  /** A decision carries the indicator values of the candle it was made on. */
  onDecision(data) {
    if (!this.chart || data.symbol !== this.app.symbol || data.interval !== this.interval) return;
    const time = seconds(data.candle_open_time_ms);
    const values = data.indicators ?? {};
    try {
      for (const [key, series] of [["ema_short", this.emaShort], ["ema_long", this.emaLong], ["ema_filter", this.emaFilter], ["rsi", this.rsi]]) {
        if (values[key] !== null && values[key] !== undefined) series.update({ time, value: Number(values[key]) });
      }
    } catch {
      this.reloadSoon();
    }
  }

  onSignal(data) {
    if (!this.chart || data.symbol !== this.app.symbol) return;
    this.markerList = [...(this.markerList ?? []), {
      time: seconds(data.candle_open_time_ms),
      position: data.side === "BUY" ? "belowBar" : "aboveBar",
      color: data.side === "BUY" ? "#86efac" : "#fca5a5",
      shape: data.side === "BUY" ? "arrowUp" : "arrowDown",
      text: `${data.side} signal`,
    }].sort((a, b) => a.time - b.time);
    this.markers.setMarkers(this.markerList);
  }
}
