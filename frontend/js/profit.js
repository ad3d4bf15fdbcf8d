// The profit summary: realised and unrealised P&L, equity, fees, win rate, profit factor,
// expectancy, durations, drawdown, best and worst trade. The figures are the api's
// (`/api/profit`, computed once over the ledger); each `profit` event carries them anew.

import { api } from "./api.js";
import { $, el, replace } from "./dom.js";
import { fmtCount, fmtDuration, fmtPct, fmtQuote, fmtRatio, fmtSignedQuote, tone } from "./format.js";

// [field, label, format, tone?]; `field` is the key of `/api/profit`'s figures (data-field).
const FIGURES = [
  ["realised_quote", "Realised P&L", fmtSignedQuote, true],
  ["realised_pct", "Realised %", fmtPct, true],
  ["unrealised_quote", "Unrealised P&L", fmtSignedQuote, true],
  ["equity_quote", "Equity", fmtQuote],
  ["fees_quote", "Fees paid", fmtQuote],
  ["trades", "Closed trades", fmtCount],
  ["open_trades", "Open trades", fmtCount],
  ["win_rate_pct", "Win rate", (v) => (v === null ? "—" : `${fmtRatio(v)} %`)],
  ["profit_factor", "Profit factor", fmtRatio],
  ["expectancy_quote", "Expectancy / trade", fmtSignedQuote, true],
  ["avg_duration_ms", "Avg duration", fmtDuration],
  ["max_duration_ms", "Max duration", fmtDuration],
  ["max_drawdown_quote", "Max drawdown", fmtQuote],
  ["max_drawdown_pct", "Max drawdown %", (v) => (v === null ? "—" : `${fmtRatio(v)} %`)],
  ["dust_quote", "Fee dust", fmtQuote],
];

export class ProfitPanel {
  constructor(app) {
    this.app = app;
    this.box = $("#profit");
    this.data = null;
  }

  async load() {
    try {
      this.render(await api("/api/profit"));
    } catch (error) {
      replace(this.box, el("p", { className: "muted" }, error.status === 503 ? "No ledger yet." : `Profit unavailable: ${error.message}`));
    }
  }

  /** A `profit` event: the whole `/api/profit` answer as of that moment. */
  onProfit(data) {
    this.render(data);
  }

  render(data) {
    if (!data?.total) return;
    this.data = data;
    const figures = data.total;
    const quote = data.quote_asset ?? "";
    const item = (field, label, value, className = "") =>
      el("div", {}, el("dt", {}, label), el("dd", { className, dataset: { field } }, value));
    const trade = (t) => (t ? `#${t.id} ${fmtSignedQuote(t.profit_quote)} (${fmtPct(t.profit_pct)})` : "—");
    replace(this.box,
      el("dl", { className: "facts profit-facts" },
        FIGURES.map(([field, label, format, toned]) => item(field, label.replace("P&L", `P&L (${quote})`), format(figures[field] ?? null), toned ? tone(figures[field]) : "")),
        item("best_trade", "Best trade", trade(figures.best_trade), "up"),
        item("worst_trade", "Worst trade", trade(figures.worst_trade), "down"),
      ),
      el("p", { className: "muted small" }, `All symbols, in ${quote}; fees include the base-asset commission at its fill price.`),
    );
  }
}
