// Trades of the selected symbol, open ones first: entry and exit (market time and price),
// quantity, fees, result in quote and %, exit reason, duration, the parameter version that
// opened it. Rows follow the live feed (`trade` rows of position events, `position` snapshots);
// clicking one centres the chart on it and opens its orders, fills and entry indicators.

import { api } from "./api.js";
import { fmtTime } from "./clock.js";
import { $, el, replace } from "./dom.js";
import { fmtDuration, fmtPct, fmtPrice, fmtQty, fmtQuote, fmtSignedQuote, tone } from "./format.js";
import { TradeDetail } from "./trade-detail.js";

const PAGE = 20;
const REASONS = { signal: "signal", stop_loss: "stop-loss", take_profit: "take-profit", manual: "manual" };
const OPEN = new Set(["OPENING", "OPEN", "CLOSING"]);

/** Open trades first, then the most recently closed. */
const order = (a, b) => (OPEN.has(b.status) - OPEN.has(a.status)) || (b.exit_time_ms ?? 0) - (a.exit_time_ms ?? 0) || b.id - a.id;

export class TradesPanel {
  constructor(app) {
    this.app = app;
    this.box = $("#trades");
    this.items = [];
    this.total = 0;
    this.offset = 0;
    this.selected = null;
    this.detail = new TradeDetail($("#trade-detail"));
    $("#trades-prev").addEventListener("click", () => this.page(-PAGE));
    $("#trades-next").addEventListener("click", () => this.page(PAGE));
  }

  page(delta) {
    this.offset = Math.max(0, this.offset + delta);
    this.load();
  }

  async load() {
    const symbol = this.app.symbol;
    if (!symbol) return;
    try {
      const data = await api(`/api/trades?symbol=${encodeURIComponent(symbol)}&status=all&limit=${PAGE}&offset=${this.offset}`);
      this.items = data.items;
      this.total = data.total;
      this.render();
    } catch (error) {
      replace(this.box, el("p", { className: "muted" }, error.status === 503 ? "No trades yet." : `Trades unavailable: ${error.message}`));
    }
  }

  /** A `Trade` row carried by a position event. */
  onTrade(trade) {
    if (trade.symbol !== this.app.symbol) return;
    const index = this.items.findIndex((t) => t.id === trade.id);
    if (index !== -1) this.items[index] = { ...this.items[index], ...trade };
    else if (this.offset === 0) {
      this.items.push(trade);
      this.total += 1;
    } else this.total += 1;
    this.items.sort(order);
    if (this.items.length > PAGE) this.items.length = PAGE;
    this.render();
    if (this.selected === trade.id) this.detail.refresh();
  }

  /** A position snapshot: the open trade's unrealised result at the last price. */
  onPosition(position) {
    const trade = this.items.find((t) => t.id === position.trade_id && OPEN.has(t.status));
    if (!trade) return;
    // A snapshot without a price (null unrealised figures) keeps the last known ones.
    for (const key of ["unrealised_quote", "unrealised_pct", "stop_loss", "take_profit", "status"]) {
      if (position[key] !== null && position[key] !== undefined) trade[key] = position[key];
    }
    this.render();
  }

  /** An order of the selected trade changed: its detail follows. */
  onOrder(order) {
    if (order && this.selected !== null && order.trade_id === this.selected) this.detail.refresh();
  }

  select(trade) {
    this.selected = trade.id;
    const shown = this.app.chart.scrollTo(trade.entry_candle_open_ms ?? trade.entry_time_ms);
    this.detail.show(trade, shown);
    for (const row of this.box.querySelectorAll("tr[data-trade-id]")) row.setAttribute("aria-selected", String(row.dataset.tradeId === String(trade.id)));
  }

  render() {
    $("#trades-prev").disabled = this.offset === 0;
    $("#trades-next").disabled = this.offset + PAGE >= this.total;
    $("#trades-page").textContent = this.total ? `${this.offset + 1}–${Math.min(this.offset + PAGE, this.total)} of ${this.total}` : "";
    if (!this.items.length) {
      replace(this.box, el("p", { className: "muted" }, "No trades yet."));
      return;
    }
    const columns = [["#", "wide"], ["Entry (market time)", ""], ["Entry price", "num wide"], ["Exit", "wide"], ["Exit price", "num wide"],
      ["Qty", "num wide"], ["Fees", "num wide"], ["Result", "num"], ["%", "num"], ["Reason", ""], ["Duration", "wide"], ["Params", "wide"]];
    const head = el("thead", {}, el("tr", {}, columns.map(([title, className]) => el("th", { scope: "col", className }, title))));
    const body = el("tbody", {}, this.items.map((t) => this.row(t)));
    replace(this.box, el("table", { className: "trades-table" }, el("caption", { className: "sr-only" }, "Trades, open first, then most recently closed"), head, body));
  }

  row(t) {
    const open = OPEN.has(t.status);
    const profit = open ? t.unrealised_quote : t.profit_quote;
    const pct = open ? t.unrealised_pct : t.profit_pct;
    const s = t.symbol;
    const row = el("tr", { className: open ? "open-trade" : "", tabIndex: 0, dataset: { tradeId: String(t.id) }, "aria-selected": String(this.selected === t.id) },
      el("td", { className: "wide" }, `${t.id}`),
      el("td", {}, fmtTime(t.entry_time_ms, { seconds: false })),
      el("td", { className: "num wide" }, fmtPrice(t.entry_price, s)),
      el("td", { className: "wide" }, open ? t.status.toLowerCase() : fmtTime(t.exit_time_ms, { seconds: false })),
      el("td", { className: "num wide" }, open ? "—" : fmtPrice(t.exit_price, s)),
      el("td", { className: "num wide" }, fmtQty(t.quantity, s)),
      el("td", { className: "num wide" }, fmtQuote(t.fees_quote, s)),
      el("td", { className: `num ${tone(profit)}`, title: open ? "unrealised, at the last price" : "" }, fmtSignedQuote(profit, s)),
      el("td", { className: `num ${tone(pct)}` }, fmtPct(pct)),
      el("td", {}, open ? "open" : REASONS[t.exit_reason] ?? t.exit_reason ?? "—"),
      el("td", { className: "wide" }, fmtDuration(t.duration_ms)),
      el("td", { className: "wide" }, t.parameters_version === null || t.parameters_version === undefined ? "—" : `v${t.parameters_version}`),
    );
    row.addEventListener("click", () => this.select(t));
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        this.select(t);
      }
    });
    return row;
  }
}
