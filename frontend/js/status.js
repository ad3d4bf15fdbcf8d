// The status panel: mode, bot state, live price, balances, position and the control buttons.

import { api } from "./api.js";
import { $, confirmAction, el, fmtAge, fmtAmount, fmtPct, fmtPrice, fmtTime, replace } from "./dom.js";
import { fmtAsset, fmtSignedQuote } from "./format.js";

const STATE_LABELS = {
  running: "Running",
  stopped: "Stopped",
  entries_paused: "Entries paused",
  error: "Error",
  unknown: "Unknown",
};
const MODE_LABELS = { sim: "SIM", testnet: "TESTNET", live: "LIVE" };
// Where the stop-loss and take-profit are held: what protects the position while the bot is down.
const PROTECTION = {
  exchange: "on the exchange (OCO)",
  exchange_stop: "stop on the exchange, take-profit watched by the bot",
  bot: "watched by the bot",
};

export class StatusPanel {
  constructor(app) {
    this.app = app;
    this.status = null;
    this.priceAt = null; // local clock time of the last price shown
    this.priceAgeAtLoad = null;
    $("#btn-start").addEventListener("click", () => this.command("start"));
    $("#btn-stop").addEventListener("click", () => this.command("stop"));
    $("#btn-pause").addEventListener("click", () => this.command("pause-entries"));
    $("#btn-close").addEventListener("click", () => this.closePosition());
    $("#btn-close-all").addEventListener("click", () => this.closeAll());
    $("#btn-reset-breaker").addEventListener("click", () => this.resetBreaker());
    setInterval(() => this.tick(), 1000);
  }

  market() {
    return this.status?.markets.find((m) => m.symbol === this.app.symbol) ?? null;
  }

  async refresh() {
    try {
      this.status = await api("/api/status");
    } catch (error) {
      // An unreachable server is shown (and cleared) by the header's notice.
      if (error.status !== 0) $("#control-message").textContent = `Status unavailable: ${error.message}`;
      return;
    }
    this.app.onStatus?.(this.status);
    this.app.setSymbols(this.status.symbols);
    this.render();
  }

  render() {
    const s = this.status;
    if (!s) return;
    const mode = $("#mode");
    mode.textContent = MODE_LABELS[s.mode] ?? s.mode.toUpperCase();
    mode.dataset.mode = s.mode;
    mode.title = s.mode === "live" ? "Trading with real money" : s.mode === "testnet" ? "Binance testnet" : "Simulated exchange";
    const banner = $("#banner");
    banner.hidden = s.mode !== "live";
    banner.textContent = s.mode === "live" ? "LIVE TRADING — orders use real money." : "";

    const state = $("#bot-state");
    state.textContent = STATE_LABELS[s.bot.state] ?? s.bot.state;
    state.dataset.state = s.bot.state;
    $("#bot-reason").textContent = s.bot.reason ? `${s.bot.reason}${s.bot.changed_at_ms ? ` · ${fmtTime(s.bot.changed_at_ms)} (wall clock)` : ""}` : "";
    $("#bot-meaning").textContent = s.state_meanings?.[s.bot.state] ?? "";
    $("#timeframe").textContent = s.timeframe;
    this.renderBreaker(s.breaker);

    const market = this.market();
    $("#price-label").textContent = market ? `${market.symbol} last price` : "Last price";
    this.priceAt = market?.price_age_ms != null ? Date.now() - market.price_age_ms : null;
    this.showPrice(market?.price ?? null);
    this.renderFreshness();
    const signal = market?.last_signal;
    $("#last-signal").textContent = signal
      ? `${signal.side} at ${fmtPrice(signal.price)} · candle ${fmtTime(signal.candle_open_time_ms)} · ${signal.reason}`
      : "none yet";
    this.renderBalances(market);
    this.renderPosition(market?.position ?? null);
    this.renderButtons(market);
  }

  /** Which circuit-breaker limit stopped entries, with its figures (hidden while none is tripped). */
  renderBreaker(breaker) {
    const node = $("#breaker");
    const tripped = breaker?.tripped;
    node.hidden = !tripped;
    node.dataset.tripped = tripped ?? "";
    if (!tripped) {
      node.textContent = "";
      return;
    }
    const figures = Object.entries(breaker.figures ?? {})
      .map(([name, value]) => `${name.replaceAll("_", " ")} ${value}`)
      .join(", ");
    const at = breaker.tripped_at_ms ? ` at ${fmtTime(breaker.tripped_at_ms)} (market time)` : "";
    node.textContent = `Circuit breaker tripped on ${tripped.replaceAll("_", " ")}${at}: ${figures}. ` +
      `New entries are paused; exits continue. Clears ${breaker.clears}.`;
  }

  async resetBreaker() {
    const tripped = this.status?.breaker?.tripped;
    const text = (tripped ? `Reset the circuit breaker (tripped on ${tripped.replaceAll("_", " ")})? ` : "Reset the circuit breaker? ") +
      "Entries are allowed again and every limit is measured afresh from now.";
    if (!(await confirmAction(text + this.liveWarning(), "Reset breaker"))) return;
    await this.send("/api/breaker/reset", "reset-breaker");
  }

  showPrice(price, direction = "") {
    const node = $("#price");
    node.textContent = price === null ? "—" : fmtPrice(price);
    node.dataset.raw = price ?? "";
    node.dataset.direction = direction;
  }

  renderFreshness() {
    const market = this.market();
    const age = this.priceAt === null ? null : Date.now() - this.priceAt;
    $("#price-meta").textContent = age === null ? "no price yet" : `updated ${fmtAge(age)} ago`;
    const status = this.status?.market_status;
    const stale = age === null || age > 60000;
    const freshness = $("#freshness");
    freshness.textContent = `${status ? `${status.state} · ` : ""}${age === null ? "no data yet" : `last data ${fmtAge(age)} ago`}`;
    freshness.dataset.stale = String(stale && Boolean(market));
  }

  renderBalances(market) {
    const container = $("#balances");
    const balances = this.status?.balances ?? {};
    const assets = market ? [market.quote_asset, market.base_asset] : Object.keys(balances);
    replace(
      container,
      assets
        .filter((asset) => balances[asset])
        .map((asset) =>
          el("div", { className: "balance" },
            el("span", { className: "asset" }, asset),
            el("span", { className: "amount" }, fmtAsset(balances[asset].free, asset)),
            Number(balances[asset].locked) > 0 ? el("span", { className: "muted small" }, `${fmtAsset(balances[asset].locked, asset)} locked`) : null,
          ),
        ),
    );
  }

  renderPosition(position) {
    const container = $("#position");
    if (!position) {
      replace(container, el("p", { className: "muted" }, "No open position."));
      return;
    }
    const pct = this.unrealised(position);
    const row = (label, value, props = {}) => el("div", {}, el("dt", {}, label), el("dd", props, value));
    replace(
      container,
      el("h3", {}, `Position · ${position.status.toLowerCase()}`),
      el("dl", { className: "facts position-facts" },
        row("Entry price", fmtPrice(position.entry_price)),
        row("Quantity", fmtAmount(position.quantity)),
        row("Opened (market time)", fmtTime(position.entry_time_ms)),
        row("Stop-loss", fmtPrice(position.stop_loss), { className: "sl" }),
        row("Take-profit", fmtPrice(position.take_profit), { className: "tp" }),
        position.protection == null ? null : row("Protection", PROTECTION[position.protection] ?? position.protection, { id: "protection" }),
        row("Unrealised", fmtPct(pct), { id: "unrealised", className: pct === null ? "" : Number(pct) >= 0 ? "up" : "down" }),
        position.unrealised_quote == null ? null : row("Unrealised P&L", fmtSignedQuote(position.unrealised_quote), { id: "unrealised-quote" }),
      ),
    );
  }

  unrealised(position) {
    const price = Number($("#price").dataset.raw || NaN);
    const entry = Number(position.entry_price);
    if (!Number.isFinite(price) || !Number.isFinite(entry) || entry <= 0) return position.unrealised_pct;
    return (((price - entry) / entry) * 100).toFixed(2);
  }

  renderButtons(market) {
    const state = this.status?.bot.state;
    $("#btn-start").disabled = state === "running";
    $("#btn-stop").disabled = state === "stopped";
    $("#btn-pause").disabled = state === "entries_paused" || state === "stopped";
    // Close stays available in every state: a refusal ("no position", ...) is answered beside it.
    $("#btn-close").disabled = !market;
  }

  /** "BTCUSDT 0.01 at 100,000.00 (stop-loss 98,000.00, take-profit 105,000.00)" per open position. */
  openPositions() {
    return (this.status?.markets ?? [])
      .filter((m) => m.position)
      .map((m) => {
        const p = m.position;
        const levels = p.stop_loss ? ` (stop-loss ${fmtPrice(p.stop_loss)}, take-profit ${fmtPrice(p.take_profit)})` : "";
        return `${m.symbol} ${p.status === "OPEN" ? `${fmtAmount(p.quantity)} at ${fmtPrice(p.entry_price)}${levels}` : p.status.toLowerCase()}`;
      });
  }

  positionsText() {
    const open = this.openPositions();
    return open.length ? ` Open positions: ${open.join("; ")}.` : " No position is open.";
  }

  /** A live tick from the event stream. */
  onPrice(data) {
    if (data.symbol !== this.app.symbol) return;
    const previous = Number($("#price").dataset.raw || NaN);
    const price = Number(data.price);
    this.showPrice(data.price, price > previous ? "up" : price < previous ? "down" : "");
    this.priceAt = Date.now();
    const market = this.market();
    if (market) market.price = data.price;
    if (market?.position) {
      const pct = this.unrealised(market.position);
      const node = $("#unrealised");
      if (node) {
        node.textContent = fmtPct(pct);
        node.className = Number(pct) >= 0 ? "up" : "down";
      }
    }
    this.renderFreshness();
  }

  tick() {
    if (this.status) this.renderFreshness();
  }

  async command(name) {
    const texts = {
      start: ["Start trading? running: the bot opens and closes positions.", "Start", "start"],
      stop: [
        "Stop? stopped: no new entries and no strategy exits, but stop-loss, take-profit and manual close " +
          `keep working while a position is open.${this.positionsText()}`,
        "Stop", "stop",
      ],
      "pause-entries": [
        "Pause entries? entries paused: no new entries; strategy exits, stop-loss, take-profit and manual close work." +
          this.positionsText(),
        "Pause entries", "pause",
      ],
    };
    const [text, label, answer] = texts[name];
    if (!(await confirmAction(text + this.liveWarning(), label))) return;
    await this.send(`/api/bot/${name}`, answer);
  }

  liveWarning() {
    return this.status?.mode === "live" ? " This is LIVE trading with real money." : "";
  }

  async closePosition() {
    const symbol = this.app.symbol;
    const text = `Close the ${symbol} position now at market price? Works in every bot state.${this.positionsText()}`;
    if (!(await confirmAction(text + this.liveWarning(), "Close position"))) return;
    await this.send(`/api/positions/${encodeURIComponent(symbol)}/close`, "close");
  }

  async closeAll() {
    const text = "Close all and stop? The bot stops at once (no new entries, no strategy exits) and sells every " +
      `open position at market; each exit's outcome is shown here.${this.positionsText()}`;
    if (!(await confirmAction(text + this.liveWarning(), "Close all and stop"))) return;
    await this.send("/api/bot/close-all", "close-all");
  }

  async send(path, answer) {
    const message = $("#control-message");
    message.textContent = "Sending…";
    try {
      const sent = await api(path, { method: "POST" });
      message.textContent = `${sent.command.replaceAll("_", " ")} requested.`;
      this.app.answers.track(sent.command_id, $(`#answer-${answer}`));
    } catch (error) {
      message.textContent = `Command failed: ${error.message}`;
    }
    await this.refresh();
  }
}
