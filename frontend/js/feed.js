// The live feed drives the panels: each event carries what its panels show (order and trade
// rows, position snapshots, profit figures, candles), so nothing is refetched on an event.
// REST is for the first load, a reconnection after a gap, `reset`, and the rare operator
// changes (bot state) whose whole picture the status route holds.

import { debounce } from "./dom.js";

/** The status panel's copy of a market, updated in place by `fn`, then redrawn. */
function patchMarket(app, symbol, fn) {
  const market = app.status.status?.markets.find((m) => m.symbol === symbol);
  if (!market) return;
  fn(market);
  app.status.render();
}

export function wireFeed(app) {
  const ev = app.events;
  const refreshStatus = debounce(() => app.status.refresh(), 250);
  const reloadOrders = debounce(() => app.orders.load(), 300);

  ev.on("price", (data) => {
    app.header.observe(data.time_ms ?? data.ts_ms);
    app.status.onPrice(data);
  });
  ev.on("candle", (data) => {
    if (!data.closed) app.header.observe(data.ts_ms);
    app.chart.onCandle(data);
  });
  ev.on("decision", (data) => {
    app.chart.onDecision(data);
    app.decisions.onDecision(data);
  });
  ev.on("signal", (data) => {
    app.chart.onSignal(data);
    patchMarket(app, data.symbol, (market) => {
      market.last_signal = data;
    });
  });
  ev.on("log", (data) => app.logs.onLog(data));
  ev.on("alert", (data) => app.logs.onAlert(data));
  ev.on("status", (data) => {
    const status = app.status.status;
    if (data.type === "balances" && status) {
      status.balances = { ...(data.full ? {} : status.balances) };
      for (const [asset, amounts] of Object.entries(data.balances ?? {})) status.balances[asset] = { free: "0", locked: "0", ...amounts };
      app.status.render();
    } else if (data.type === "market_status" && status) {
      status.market_status = data;
      app.status.render();
    } else {
      refreshStatus(); // bot state and commands: operator actions, rare
    }
  });
  ev.on("command", (data) => {
    app.answers.onAnswer(data); // a command's outcome, shown beside its button
    refreshStatus();
  });
  ev.on("orders", (data) => {
    if (data.type === "order_update") {
      if (data.order) app.orders.onOrder(data.order);
      else reloadOrders(); // an api without rows in its events
      app.trades.onOrder(data.order);
      return;
    }
    if (!data.trade) return;
    app.trades.onTrade(data.trade);
    app.chart.onTrade(data.trade);
    if (data.type === "position_closed") app.periods.onTradeClosed();
  });
  ev.on("position", (data) => {
    const open = data.status && data.status !== "FLAT";
    patchMarket(app, data.symbol, (market) => {
      market.position = open ? data : null;
    });
    app.chart.onPosition(open ? data : null, data.symbol);
    if (open) app.trades.onPosition(data);
  });
  ev.on("profit", (data) => {
    app.profit.onProfit(data);
    app.equity.onProfit(data);
  });
  ev.on("parameters", (data) => {
    app.parameters.onChanged(data);
    app.chart.onParameters(data);
    app.backtest.load();
  });
  ev.on("reset", () => app.loadAll());
  // After a gap the picture is fetched again; the resumed events then keep it current.
  ev.onReconnected = () => app.loadAll();
}
