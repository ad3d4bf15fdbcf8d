// Results per UTC day, week or month: a bar chart of the realised P&L and a table, from
// `/api/profit/periods` (the sums are the api's, in Decimal). A closed trade changes the
// current period, so the panel reloads then — not on other events.

import { api } from "./api.js";
import { makeChart, THEME } from "./charting.js";
import { $, debounce, el, replace } from "./dom.js";
import { fmtCount, fmtPct, fmtQuote, fmtSignedQuote, tone } from "./format.js";

const UNIT_KEY = "dashboard.periods";

export class PeriodsPanel {
  constructor() {
    this.box = $("#periods-table");
    this.container = $("#periods-chart");
    this.unit = $("#periods-unit");
    this.unit.value = localStorage.getItem(UNIT_KEY) || "day";
    this.unit.addEventListener("change", () => {
      localStorage.setItem(UNIT_KEY, this.unit.value);
      this.load();
    });
    this.reloadSoon = debounce(() => this.load(), 1000);
    this.chart = null;
  }

  ensureChart() {
    if (this.chart) return true;
    this.chart = makeChart(this.container, {
      priceFormatter: (value) => fmtSignedQuote(value),
      grid: { vertLines: { visible: false }, horzLines: { color: THEME.grid } },
      timeScale: { borderColor: THEME.grid, fixLeftEdge: true, fixRightEdge: true },
      handleScroll: false,
      handleScale: false,
    });
    if (!this.chart) return false;
    this.bars = this.chart.addSeries(window.LightweightCharts.HistogramSeries, { priceLineVisible: false, lastValueVisible: false });
    return true;
  }

  async load() {
    let data;
    try {
      data = await api(`/api/profit/periods?unit=${encodeURIComponent(this.unit.value)}`);
    } catch (error) {
      replace(this.box, el("p", { className: "muted" }, error.status === 503 ? "No ledger yet." : `Periods unavailable: ${error.message}`));
      return;
    }
    this.render(data);
  }

  /** A trade closed: its period's figures changed. */
  onTradeClosed() {
    this.reloadSoon();
  }

  render(data) {
    const periods = data.periods;
    if (this.ensureChart()) {
      // Periods are UTC days, weeks and months: drawn at their UTC start, whatever the page's zone.
      this.bars.setData(periods.map((p) => ({
        time: Math.floor(p.start_ms / 1000), value: Number(p.realised_quote), color: Number(p.realised_quote) >= 0 ? "#22c55e" : "#ef4444",
      })));
      this.chart.timeScale().fitContent();
    }
    if (!periods.length) {
      replace(this.box, el("p", { className: "muted" }, "No closed trade yet."));
      return;
    }
    const head = el("thead", {}, el("tr", {},
      el("th", { scope: "col" }, `${data.unit} (UTC)`), el("th", { scope: "col", className: "num" }, "Trades"),
      el("th", { scope: "col", className: "num" }, "Wins"), el("th", { scope: "col", className: "num" }, `P&L ${data.quote_asset}`),
      el("th", { scope: "col", className: "num" }, "Fees"), el("th", { scope: "col", className: "num" }, "%")));
    const rows = [...periods].reverse().map((p) => el("tr", { dataset: { period: p.label } },
      el("td", {}, p.label),
      el("td", { className: "num" }, fmtCount(p.trades)),
      el("td", { className: "num" }, fmtCount(p.wins)),
      el("td", { className: `num ${tone(p.realised_quote)}` }, fmtSignedQuote(p.realised_quote)),
      el("td", { className: "num" }, fmtQuote(p.fees_quote)),
      el("td", { className: `num ${tone(p.realised_pct)}` }, fmtPct(p.realised_pct)),
    ));
    replace(this.box, el("table", {}, el("caption", { className: "sr-only" }, `Results per ${data.unit}, newest first`), head, el("tbody", {}, rows)));
  }
}
