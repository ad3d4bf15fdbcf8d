// The header's clock: the market time (the exchange's, which a replay runs ahead of the wall
// clock), a REPLAY ×N badge during a replay, the time zone shown and its UTC / local switch,
// and a notice while the dashboard server cannot be reached, cleared when it answers again.

import { fmtTime, MarketClock, onTimeZone, setTimeZone, timeZone, zoneLabel } from "./clock.js";
import { $ } from "./dom.js";

export class MarketHeader {
  constructor() {
    this.clock = new MarketClock();
    this.zone = $("#timezone");
    this.zone.value = timeZone();
    this.zone.addEventListener("change", () => setTimeZone(this.zone.value));
    onTimeZone(() => this.render());
    window.addEventListener("server-unreachable", () => this.reachable(false));
    window.addEventListener("server-reachable", () => this.reachable(true));
    setInterval(() => this.render(), 1000);
    this.render();
  }

  /** `/api/status`'s `market` block. */
  seed(market) {
    this.clock.seed(market);
    this.render();
  }

  /** An exchange event time seen on the live feed (a price tick or a candle update). */
  observe(marketMs) {
    this.clock.observe(marketMs);
  }

  render() {
    const now = this.clock.now();
    const clock = $("#market-clock");
    clock.textContent = now === null ? "market time —" : `market ${fmtTime(now)}`;
    clock.dataset.marketMs = now === null ? "" : String(Math.floor(now));
    $("#zone-label").textContent = zoneLabel();
    const badge = $("#replay-badge");
    badge.hidden = !this.clock.replaying;
    const speed = this.clock.shownSpeed;
    badge.textContent = speed && speed > 1 ? `REPLAY ×${speed.toLocaleString("en-US")}` : "REPLAY";
    badge.title = "The market is replayed from recorded candles, faster than the wall clock; times shown are market time";
  }

  reachable(ok) {
    const notice = $("#offline");
    notice.hidden = ok;
    notice.textContent = ok ? "" : "The dashboard server cannot be reached — retrying…";
  }
}
