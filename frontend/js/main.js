// Entry point: sign-in, then every panel wired to the REST API and the live event feed.

import { api } from "./api.js";
import { BacktestPanel } from "./backtest.js";
import { CandleChart } from "./chart.js";
import { CommandAnswers } from "./commands.js";
import { DecisionsPanel } from "./decisions.js";
import { $, debounce, el } from "./dom.js";
import { LiveEvents } from "./events.js";
import { HealthPanel } from "./health.js";
import { LogPanel } from "./logs.js";
import { logout, showLogin } from "./login.js";
import { OrdersPanel } from "./orders.js";
import { ParametersForm } from "./parameters.js";
import { StatusPanel } from "./status.js";

class Dashboard {
  constructor() {
    this.symbol = null;
    this.symbols = [];
    this.answers = new CommandAnswers();
    this.status = new StatusPanel(this);
    this.chart = new CandleChart(this);
    this.parameters = new ParametersForm(this.answers);
    this.orders = new OrdersPanel();
    this.decisions = new DecisionsPanel(this);
    this.logs = new LogPanel();
    this.health = new HealthPanel();
    this.backtest = new BacktestPanel();
    this.events = new LiveEvents($("#connection"));
    this.refreshStatus = debounce(() => this.status.refresh(), 250);
    $("#symbol").addEventListener("change", (event) => this.selectSymbol(event.target.value));
    $("#logout").addEventListener("click", () => logout());
    this.wireEvents();
  }

  wireEvents() {
    const ev = this.events;
    ev.on("price", (data) => this.status.onPrice(data));
    ev.on("candle", (data) => this.chart.onCandle(data));
    ev.on("decision", (data) => {
      this.chart.onDecision(data);
      this.decisions.onDecision(data);
    });
    ev.on("signal", (data) => {
      this.chart.onSignal(data);
      this.refreshStatus();
    });
    ev.on("log", (data) => this.logs.onLog(data));
    ev.on("alert", (data) => this.logs.onLog({ ...data, service: "executor", logger: "alert", level: data.level.toUpperCase() }));
    ev.on("status", () => this.refreshStatus());
    ev.on("command", (data) => {
      this.answers.onAnswer(data);
      this.refreshStatus();
    });
    ev.on("orders", (data) => {
      this.orders.refreshSoon();
      this.refreshStatus();
      if (data.type !== "order_update") this.chart.reloadSoon();
    });
    ev.on("parameters", (data) => {
      this.parameters.onChanged(data);
      this.chart.reloadSoon();
      this.backtest.load();
    });
    ev.on("reset", () => this.loadAll());
    ev.onReconnected = () => {
      // Prices and forming candles are not replayed; fetch the current picture.
      this.status.refresh();
      this.chart.load();
    };
  }

  setSymbols(symbols) {
    if (symbols.join() === this.symbols.join()) return;
    this.symbols = symbols;
    const select = $("#symbol");
    select.replaceChildren(...symbols.map((s) => el("option", { value: s }, s)));
    $("#symbol-field").hidden = symbols.length < 2;
    const saved = localStorage.getItem("dashboard.symbol");
    this.symbol = symbols.includes(this.symbol) ? this.symbol : symbols.includes(saved) ? saved : symbols[0];
    select.value = this.symbol;
  }

  selectSymbol(symbol) {
    this.symbol = symbol;
    localStorage.setItem("dashboard.symbol", symbol);
    this.status.render();
    this.chart.load();
    this.decisions.load();
  }

  async loadAll() {
    await this.status.refresh();
    await Promise.all([this.chart.load(), this.parameters.load(), this.orders.load(), this.decisions.load(), this.logs.load(), this.backtest.load()]);
  }

  async start() {
    this.health.start();
    await this.loadAll();
    this.events.start();
    setInterval(() => this.status.refresh(), 15000);
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
  if (!session.authenticated) await showLogin();
  $("#login").hidden = true;
  $("#app").hidden = false;
  const dashboard = new Dashboard();
  window.dashboard = dashboard;
  await dashboard.start();
}

boot();
