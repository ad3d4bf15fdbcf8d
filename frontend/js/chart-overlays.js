// What the chart draws over the candles: signal markers, an entry and an exit marker for every
// trade (the exit with its reason and result), and the open position's entry / stop-loss /
// take-profit lines, which the price scale always includes.

import { bucketOf } from "./candles.js";
import { chartTime } from "./clock.js";
import { fmtPct, fmtPrice } from "./format.js";

const COLORS = { entry: "#22c55e", exit: "#ef4444", buySignal: "#86efac", sellSignal: "#fca5a5", line: "#94a3b8" };

export class ChartOverlays {
  constructor(series, LC) {
    this.series = series;
    this.plugin = LC.createSeriesMarkers(series, []);
    this.items = new Map(); // "signal:…" | "entry:<trade id>" | "exit:<trade id>" → marker data (market time)
    this.lines = [];
    this.levels = [];
    this.bucketMs = 60000;
    series.applyOptions({ autoscaleInfoProvider: (base) => this.autoscale(base()) });
  }

  /** Price range of the candles widened to the open position's lines. */
  autoscale(info) {
    if (!info || !info.priceRange || !this.levels.length) return info;
    const { minValue, maxValue } = info.priceRange;
    return { ...info, priceRange: { minValue: Math.min(minValue, ...this.levels), maxValue: Math.max(maxValue, ...this.levels) } };
  }

  /** Markers of /api/candles: signals, and each trade's entry and exit (with `trade_id`). */
  setMarkers(markers) {
    this.items = new Map();
    for (const m of markers) this.items.set(m.kind === "signal" ? `signal:${m.time_ms}:${m.side}` : `${m.kind}:${m.trade_id}`, m);
  }

  addSignal(signal) {
    this.items.set(`signal:${signal.candle_open_time_ms}:${signal.side}`, { time_ms: signal.candle_open_time_ms, kind: "signal", side: signal.side, text: signal.reason });
    this.draw();
  }

  /** A `Trade` row from the live feed: its entry marker, and its exit marker once closed. */
  upsertTrade(t) {
    if (t.entry_price !== null && t.entry_price !== undefined) {
      this.items.set(`entry:${t.id}`, { time_ms: t.entry_candle_open_ms ?? t.entry_time_ms, kind: "entry", side: "BUY", price: t.entry_price, trade_id: t.id });
    }
    if (t.status === "CLOSED" && t.exit_time_ms) {
      const result = t.profit_pct === null || t.profit_pct === undefined ? "" : ` ${fmtPct(t.profit_pct)}`;
      this.items.set(`exit:${t.id}`, { time_ms: t.exit_candle_open_ms ?? t.exit_time_ms, kind: "exit", side: "SELL", price: t.exit_price,
        trade_id: t.id, exit_reason: t.exit_reason, text: `${t.exit_reason || "exit"}${result}` });
    }
    this.draw();
  }

  /** Every marker, in chart order; `kind` and `tradeId` are kept for tests and the trades panel. */
  markers() {
    const list = [...this.items.values()].filter((m) => m.time_ms).map((m) => {
      const base = { time: chartTime(bucketOf(m.time_ms, this.bucketMs)), kind: m.kind, tradeId: m.trade_id === undefined ? undefined : String(m.trade_id) };
      if (m.kind === "signal") {
        const buy = m.side === "BUY";
        return { ...base, position: buy ? "belowBar" : "aboveBar", color: buy ? COLORS.buySignal : COLORS.sellSignal, shape: buy ? "arrowUp" : "arrowDown", size: 0.6, text: "" };
      }
      if (m.kind === "entry") return { ...base, position: "belowBar", color: COLORS.entry, shape: "arrowUp", text: `buy ${fmtPrice(m.price)}` };
      return { ...base, position: "aboveBar", color: COLORS.exit, shape: "arrowDown", text: m.text || m.exit_reason || "exit" };
    });
    return list.sort((a, b) => a.time - b.time);
  }

  draw(bucketMs = this.bucketMs) {
    this.bucketMs = bucketMs;
    this.plugin.setMarkers(this.markers());
  }

  /** The entry, SL and TP lines of the open position (null: none). */
  setPosition(position) {
    for (const line of this.lines) this.series.removePriceLine(line);
    this.lines = [];
    this.levels = [];
    if (!position || !["OPEN", "CLOSING", "OPENING"].includes(position.status ?? "OPEN")) return;
    const add = (price, color, title) => {
      if (price === null || price === undefined || !Number.isFinite(Number(price))) return;
      this.levels.push(Number(price));
      this.lines.push(this.series.createPriceLine({ price: Number(price), color, lineWidth: 1, lineStyle: 1, axisLabelVisible: true, title }));
    };
    add(position.entry_price, COLORS.line, "entry");
    add(position.stop_loss, COLORS.exit, "SL");
    add(position.take_profit, COLORS.entry, "TP");
  }
}
