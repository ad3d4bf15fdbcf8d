// Entry point: sign-in, then every panel loaded from the REST API once and kept current by the
// live event feed (feed.js).

import { api } from "./api.js";
import { BacktestPanel } from "./backtest.js";
import { StudiesPanel } from "./studies.js";
import { CandleChart } from "./chart.js";
import { onTimeZone } from "./clock.js";
import { CommandAnswers } from "./commands.js";
import { DecisionsPanel } from "./decisions.js";
import { $, el } from "./dom.js";
import { EquityChart } from "./equity.js";
import { LiveEvents } from "./events.js";
import { wireFeed } from "./feed.js";
import { selectSymbol, setSymbolInfo } from "./format.js";
import { MarketHeader } from "./header.js";
import { HealthPanel } from "./health.js";
import { LogPanel } from "./logs.js";
import { applyRole, logout, showLogin } from "./login.js";
import { OrdersPanel } from "./orders.js";
import { ParametersForm } from "./parameters.js";
import { PeriodsPanel } from "./periods.js";
import { ProfitPanel } from "./profit.js";
import { StatusPanel } from "./status.js";
import { TradesPanel } from "./trades.js";

class Dashboard {
  constructor(readOnly = false) {
    this.readOnly = readOnly;
    this.symbol = null;
    this.symbols = [];
    this.answers = new CommandAnswers();
    this.header = new MarketHeader();
    this.status = new StatusPanel(this);
    this.chart = new CandleChart(this);
    this.profit = new ProfitPanel(this);
    this.equity = new EquityChart();
    this.trades = new TradesPanel(this);
    this.periods = new PeriodsPanel();
    this.parameters = new ParametersForm(this.answers, readOnly, () => this.symbol);
    this.parameters.onSwitched = () => this.chart.load(); // the new strategy's indicator lines
    this.orders = new OrdersPanel();
    this.decisions = new DecisionsPanel(this);
    this.logs = new LogPanel();
    this.health = new HealthPanel();
    this.backtest = new BacktestPanel(() => this.symbol);
    this.studies = new StudiesPanel(this.answers);
    this.events = new LiveEvents($("#connection"));
    $("#symbol").addEventListener("change", (event) => this.selectSymbol(event.target.value));
    $("#logout").addEventListener("click", () => logout());
    onTimeZone(() => this.render());
    wireFeed(this);
  }

  /** Every `/api/status` answer: symbol precisions and the market clock. */
  onStatus(status) {
    for (const market of status.markets ?? []) {
      setSymbolInfo(market.symbol, { base_asset: market.base_asset, quote_asset: market.quote_asset, ...(market.precision ?? {}) });
    }
    this.header.seed(status.market);
  }

  setSymbols(symbols) {
    if (symbols.join() === this.symbols.join()) return;
    this.symbols = symbols;
    const select = $("#symbol");
    select.replaceChildren(...symbols.map((s) => el("option", { value: s }, s)));
    $("#symbol-field").hidden = symbols.length < 2;
    const saved = localStorage.getItem("dashboard.symbol");
    this.symbol = symbols.includes(this.symbol) ? this.symbol : symbols.includes(saved) ? saved : symbols[0];
    selectSymbol(this.symbol);
    select.value = this.symbol;
  }

  selectSymbol(symbol) {
    this.symbol = symbol;
    selectSymbol(symbol);
    localStorage.setItem("dashboard.symbol", symbol);
    this.status.render();
    this.chart.load();
    this.trades.load();
    this.decisions.load();
    this.parameters.load();
    this.backtest.load();
  }

  /** Redraw what shows times after a time-zone change (no refetch). */
  render() {
    this.status.render();
    this.chart.render();
    this.trades.render();
    this.orders.render(this.orders.items);
    this.decisions.render();
    this.logs.renderAll();
  }

  async loadAll() {
    await this.status.refresh();
    await Promise.all([
      this.chart.load(), this.profit.load(), this.equity.load(), this.trades.load(), this.periods.load(),
      this.parameters.load(), this.orders.load(), this.decisions.load(), this.logs.load(), this.backtest.load(), this.studies.load(),
    ]);
  }

  async start() {
    this.health.start();
    // Asked before the snapshot: the feed resumes from here, so an event (a command's answer, a
    // fill) that happens while the panels load still arrives.
    try {
      this.events.lastId = (await api("/api/events/position")).last_event_id;
    } catch {
      // Unreachable now: the feed starts fresh, as it would have.
    }
    await this.loadAll();
    this.events.start();
  }
}

async function boot() {
  window.addEventListener("unauthorized", () => {
    if ($("#login").hidden) window.location.reload();
  });
  let session = { authenticated: false };
  try {
    session = await api("/api/session");
  } catch {
    // Shown as a login error below if the server stays unreachable.
  }
  if (!session.authenticated) session = await showLogin();
  // A report link opened without a session came here to sign in: go on to it (same-site paths only).
  const next = new URLSearchParams(window.location.search).get("next");
  if (next && /^\/api\/[\w/.-]*$/.test(next)) {
    window.location.replace(next);
    return;
  }
  $("#login").hidden = true;
  $("#app").hidden = false;
  const dashboard = new Dashboard(applyRole(session));
  window.dashboard = dashboard;
  await dashboard.start();
}

boot();
