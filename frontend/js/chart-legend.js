// The values under the cursor: time, OHLC, volume and the values of the strategy's lines on that candle
// (the newest candle when the cursor is off the chart).

import { fmtTime, fromChartTime } from "./clock.js";
import { el, replace } from "./dom.js";
import { fmtFixed, fmtPrice, fmtQty } from "./format.js";

export class CrosshairLegend {
  constructor(node, chart) {
    this.node = node;
    this.rows = new Map(); // chart time → aggregated candle row
    this.last = null;
    this.overlays = []; // the symbol's strategy's lines: {column, label, pane, color}
    chart.subscribeCrosshairMove((param) => this.show(param.time === undefined ? this.last : this.rows.get(param.time)));
  }

  setOverlays(overlays) {
    this.overlays = overlays;
    this.show(this.last);
  }

  /** Candle rows keyed by their chart time; the newest is shown while the cursor is away. */
  setRows(rows) {
    this.rows = new Map(rows.map((row) => [row.chartTime, row]));
    this.last = rows[rows.length - 1] ?? null;
    this.show(this.last);
  }

  update(row) {
    this.rows.set(row.chartTime, row);
    if (!this.last || row.chartTime >= this.last.chartTime) this.last = row;
    this.show(this.last);
  }

  show(row) {
    if (!row) {
      replace(this.node);
      return;
    }
    const item = (label, value, className) => el("span", { className }, el("span", { className: "muted" }, `${label} `), value);
    const number = (value, digits) => (value === null || value === undefined ? "—" : fmtFixed(value, digits));
    replace(this.node,
      el("span", { className: "muted" }, fmtTime(fromChartTime(row.chartTime), { seconds: false })),
      item("O", fmtPrice(row.open)), item("H", fmtPrice(row.high)), item("L", fmtPrice(row.low)), item("C", fmtPrice(row.close)),
      item("Vol", fmtQty(row.volume)),
      this.overlays.map((o) => {
        const value = row.lines?.[o.column] ?? row[o.column] ?? null;
        const node = item(o.label, o.pane === "oscillator" ? number(value, 2) : value === null ? "—" : fmtPrice(value), "overlay");
        node.style.color = o.color;
        node.dataset.column = o.column;
        return node;
      }),
    );
  }
}
