// Backtest of the selected symbol's strategy and set in force: run it, follow it, show its
// summary and report link.

import { api } from "./api.js";
import { $, el, fmtPct, fmtTime, replace } from "./dom.js";

const SHOWN = [
  ["total_return_pct", "Total return", fmtPct],
  ["buy_and_hold_return_pct", "Buy and hold", fmtPct],
  ["trades", "Trades", String],
  ["win_rate_pct", "Win rate", (v) => (v === null ? "—" : `${Number(v).toFixed(1)} %`)],
  ["max_drawdown_pct", "Max drawdown", fmtPct],
  ["profit_factor", "Profit factor", (v) => (v === null ? "—" : Number(v).toFixed(2))],
];

export class BacktestPanel {
  constructor(symbolOf = () => null) {
    this.symbolOf = symbolOf;
    this.box = $("#backtest");
    this.button = $("#backtest-run");
    this.link = $("#backtest-link");
    this.timer = null;
    this.button.addEventListener("click", () => this.run());
  }

  get query() {
    const symbol = this.symbolOf();
    return symbol ? `?symbol=${encodeURIComponent(symbol)}` : "";
  }

  async load() {
    let data;
    try {
      data = await api(`/api/backtest/latest${this.query}`);
    } catch (error) {
      replace(this.box, el("p", { className: "muted" }, `Backtest unavailable: ${error.message}`));
      return;
    }
    this.render(data);
    clearTimeout(this.timer);
    if (data.run.state === "running") this.timer = setTimeout(() => this.load(), 1500);
  }

  render(data) {
    const running = data.run.state === "running";
    this.button.disabled = running;
    this.button.textContent = running ? "Running…" : "Run backtest";
    const parts = [el("p", { className: "small muted" }, `Data: ${data.data}`)];
    if (data.run.state === "failed") parts.push(el("p", { className: "field-error" }, `Last run failed: ${data.run.error || "unknown error"}`));
    if (data.report) {
      const s = data.report.summary;
      parts.push(el("p", { className: "small" }, `Report of ${fmtTime(data.report.created_at_ms)} (wall clock) for the current parameters${this.symbolOf() ? ` of ${this.symbolOf()}` : ""}`));
      parts.push(el("dl", { className: "facts" }, SHOWN.filter(([key]) => key in s).map(([key, label, format]) =>
        el("div", {}, el("dt", {}, label), el("dd", {}, format(s[key]))))));
    } else if (!running) {
      parts.push(el("p", { className: "muted" }, "No report for the current parameters yet."));
    }
    replace(this.box, parts);
    this.link.hidden = !data.report?.url;
    if (data.report?.url) this.link.href = `${data.report.url}${this.query}`;
  }

  async run() {
    this.button.disabled = true;
    try {
      await api(`/api/backtest${this.query}`, { method: "POST" });
    } catch (error) {
      replace(this.box, el("p", { className: "field-error" }, `Could not start: ${error.message}`));
    }
    await this.load();
  }
}
