// The decision log: on each closed candle, whether the strategy signalled and which rule
// conditions held or failed (the reason it did not trade).

import { api } from "./api.js";
import { $, el, fmtPrice, fmtTime, replace } from "./dom.js";
import { fmtFixed, precisionOf } from "./format.js";

const KEEP = 30;

// Indicator values (EMAs are prices, RSI and ratios are not) with the symbol's price decimals.
const number = (value) => (value === null || value === undefined ? "—" : fmtFixed(value, precisionOf().price));

export class DecisionsPanel {
  constructor(app) {
    this.app = app;
    this.box = $("#decisions");
    this.items = [];
  }

  async load() {
    const symbol = this.app.symbol;
    if (!symbol) return;
    try {
      const items = await api(`/api/decisions?symbol=${encodeURIComponent(symbol)}&limit=${KEEP}`);
      this.items = items.map((item) => item.data);
      this.render();
    } catch (error) {
      replace(this.box, el("li", { className: "muted" }, `Decisions unavailable: ${error.message}`));
    }
  }

  onDecision(data) {
    if (data.symbol !== this.app.symbol) return;
    this.items.unshift(data);
    this.items.length = Math.min(this.items.length, KEEP);
    this.render();
  }

  outcome(d) {
    if (!d.warm) return ["warming up", "muted"];
    if (d.entry) return ["entry signal", "up"];
    if (d.exit) return ["exit signal", "down"];
    return ["no trade", "muted"];
  }

  render() {
    if (!this.items.length) {
      replace(this.box, el("li", { className: "muted" }, "No decisions yet: they appear as candles close."));
      return;
    }
    replace(this.box, this.items.map((d) => {
      const [label, tone] = this.outcome(d);
      const conditions = (d.conditions ?? []).map((c) =>
        el("li", { className: c.passed ? "cond pass" : "cond fail", title: c.threshold === null ? "" : `value ${number(c.value)}, threshold ${number(c.threshold)}` },
          el("span", { "aria-hidden": "true" }, c.passed ? "✓ " : "✗ "),
          el("span", { className: "sr-only" }, c.passed ? "passed: " : "failed: "),
          c.name,
          c.value === null || c.value === undefined ? "" : ` ${number(c.value)}${c.threshold === null || c.threshold === undefined ? "" : ` / ${number(c.threshold)}`}`,
        ));
      return el("li", { className: "decision" },
        el("div", { className: "decision-head" },
          el("time", {}, fmtTime(d.candle_open_time_ms)),
          el("span", { className: "muted" }, `close ${fmtPrice(d.close)}`),
          d.strategy ? el("span", { className: "muted small", dataset: { testid: "decision-strategy" } }, `${d.strategy} v${d.parameters_version}`) : null,
          el("span", { className: `badge tone-${tone}` }, label),
        ),
        conditions.length ? el("ul", { className: "conditions" }, conditions) : null,
      );
    }));
  }
}
