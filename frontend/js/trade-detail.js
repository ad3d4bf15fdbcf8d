// One trade opened from the trades table: its orders, its fills and the indicator values and
// rule checks of the candle it was entered on (the decision log), from `/api/trades/{id}`.

import { api } from "./api.js";
import { fmtTime } from "./clock.js";
import { debounce, el, replace } from "./dom.js";
import { fmtAsset, fmtFixed, fmtPrice, fmtQty, fmtQuote, precisionOf } from "./format.js";
import { orderPrice, orderType, priceNote } from "./order-price.js";

const INDICATOR_LABELS = { ema_short: "EMA short", ema_long: "EMA long", ema_filter: "EMA filter", rsi: "RSI", volume_avg: "Volume avg", atr: "ATR" };

function table(caption, columns, rows) {
  return el("div", { className: "table-wrap" }, el("table", {},
    el("caption", { className: "table-caption" }, caption),
    el("thead", {}, el("tr", {}, columns.map(([title, className]) => el("th", { scope: "col", className }, title)))),
    el("tbody", {}, rows)));
}

export class TradeDetail {
  constructor(box) {
    this.box = box;
    this.trade = null;
    this.refresh = debounce(() => this.load(), 300);
  }

  show(trade, inChart = true) {
    this.trade = trade;
    this.inChart = inChart;
    this.box.hidden = false;
    replace(this.box, el("p", { className: "muted" }, `Loading trade #${trade.id}…`));
    this.load();
  }

  async load() {
    if (!this.trade) return;
    const id = this.trade.id;
    try {
      const data = await api(`/api/trades/${encodeURIComponent(id)}`);
      if (this.trade?.id === id) this.render(data);
    } catch (error) {
      replace(this.box, el("p", { className: "muted" }, `Trade #${id} unavailable: ${error.message}`));
    }
  }

  render(t) {
    const s = t.symbol;
    const orders = (t.orders ?? []).map((o) => el("tr", {},
      el("td", {}, fmtTime(o.market_time_ms ?? o.created_at_ms)),
      el("td", { className: o.side === "BUY" ? "up" : "down" }, `${o.side} ${orderType(o)}`),
      el("td", {}, o.status),
      el("td", { className: "num", title: priceNote(o) }, orderPrice(o)),
      el("td", { className: "num" }, fmtQty(o.executed_quantity, s)),
      el("td", { className: "num" }, fmtPrice(o.average_price, s)),
      el("td", { className: "num" }, fmtQuote(o.cumulative_quote, s)),
      el("td", { className: "num" }, fmtQuote(o.fees_quote, s)),
    ));
    const fills = (t.fills ?? []).map((f) => el("tr", {},
      el("td", {}, fmtTime(f.exchange_ms ?? f.time_ms)),
      el("td", { className: "num" }, fmtPrice(f.price, s)),
      el("td", { className: "num" }, fmtQty(f.quantity, s)),
      el("td", { className: "num" }, fmtQuote(f.quote_quantity, s)),
      el("td", { className: "num" }, `${fmtAsset(f.commission, f.commission_asset)} ${f.commission_asset ?? ""}`),
      el("td", { className: "num" }, fmtQuote(f.fee_quote, s)),
    ));
    const parts = [
      el("h3", {}, `Trade #${t.id} · ${t.symbol} · ${t.status.toLowerCase()}`),
      this.inChart ? null : el("p", { className: "muted small" }, "This trade is older than the candles the chart holds."),
      table("Orders", [["Market time", ""], ["Order", ""], ["Status", ""], ["Price", "num"], ["Qty", "num"], ["Avg price", "num"], ["Quote", "num"], ["Fees", "num"]], orders),
      table("Fills", [["Exchange time", ""], ["Price", "num"], ["Qty", "num"], ["Quote", "num"], ["Commission", "num"], ["Fee (quote)", "num"]], fills),
      this.decision(t.entry_decision),
    ];
    replace(this.box, parts);
  }

  decision(d) {
    if (!d) return el("p", { className: "muted small" }, "No decision record of the entry candle (older than the decision log keeps).");
    const digits = precisionOf().price;
    const value = (key, v) => (v === null || v === undefined ? "—" : key.startsWith("ema") || key === "atr" ? fmtPrice(v) : fmtFixed(v, Math.min(2, digits)));
    const indicators = Object.entries(d.indicators ?? {}).map(([key, v]) => el("div", {}, el("dt", {}, INDICATOR_LABELS[key] ?? key), el("dd", {}, value(key, v))));
    const conditions = (d.conditions ?? []).map((c) => el("li", { className: c.passed ? "cond pass" : "cond fail" },
      el("span", { "aria-hidden": "true" }, c.passed ? "✓ " : "✗ "), el("span", { className: "sr-only" }, c.passed ? "passed: " : "failed: "), c.name));
    return el("div", { className: "entry-decision" },
      el("h3", {}, `Entry candle ${fmtTime(d.candle_open_time_ms, { seconds: false })} · parameters v${d.parameters_version ?? "?"}`),
      el("dl", { className: "facts", dataset: { testid: "entry-indicators" } }, indicators),
      conditions.length ? el("ul", { className: "conditions" }, conditions) : null);
  }
}
