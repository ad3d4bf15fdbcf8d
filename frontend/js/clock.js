// One clock for the page. Market and trade times (candles, decisions, orders, trades) are the
// exchange's market time; in a replay that runs N times faster than the wall clock, so the
// header shows a REPLAY ×N badge and the market's current time. Wall-clock times (logs,
// sign-in) are labelled as such. Every time is shown in one zone, UTC or local, remembered.

const ZONE_KEY = "dashboard.timezone";
const listeners = new Set();
let zone = localStorage.getItem(ZONE_KEY) === "local" ? "local" : "UTC";

export const timeZone = () => zone;

/** The zone's name as shown: "UTC" or the browser's zone, e.g. "Europe/Paris". */
export function zoneLabel() {
  if (zone === "UTC") return "UTC";
  const offset = -new Date().getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const hours = String(Math.floor(Math.abs(offset) / 60)).padStart(2, "0");
  const name = Intl.DateTimeFormat().resolvedOptions().timeZone || "local";
  return `${name} (UTC${sign}${hours}:${String(Math.abs(offset) % 60).padStart(2, "0")})`;
}

export function setTimeZone(value) {
  zone = value === "local" ? "local" : "UTC";
  localStorage.setItem(ZONE_KEY, zone);
  for (const fn of listeners) fn(zone);
}

/** Call `fn(zone)` whenever the zone changes. */
export const onTimeZone = (fn) => listeners.add(fn);

const pad = (n) => String(n).padStart(2, "0");

/** Date parts of epoch ms in the shown zone. */
export function parts(ms) {
  const d = new Date(ms);
  return zone === "UTC"
    ? { y: d.getUTCFullYear(), mo: d.getUTCMonth() + 1, d: d.getUTCDate(), h: d.getUTCHours(), mi: d.getUTCMinutes(), s: d.getUTCSeconds() }
    : { y: d.getFullYear(), mo: d.getMonth() + 1, d: d.getDate(), h: d.getHours(), mi: d.getMinutes(), s: d.getSeconds() };
}

/** Epoch ms as "2025-05-20 14:03:07" in the shown zone. */
export function fmtTime(ms, { seconds = true } = {}) {
  if (!ms) return "—";
  const p = parts(ms);
  return `${p.y}-${pad(p.mo)}-${pad(p.d)} ${pad(p.h)}:${pad(p.mi)}${seconds ? `:${pad(p.s)}` : ""}`;
}

export const fmtDate = (ms) => (ms ? fmtTime(ms).slice(0, 10) : "—");
export const fmtClockTime = (ms) => (ms ? fmtTime(ms).slice(11) : "—");

/** Seconds that lightweight-charts shows as the shown zone's wall time (it draws UTC). */
export function chartTime(ms) {
  const shift = zone === "UTC" ? 0 : -new Date(ms).getTimezoneOffset() * 60000;
  return Math.floor((ms + shift) / 1000);
}

/** Epoch ms of a chart time made by `chartTime`. */
export function fromChartTime(seconds) {
  const guess = seconds * 1000;
  return zone === "UTC" ? guess : guess + new Date(guess).getTimezoneOffset() * 60000;
}

/**
 * The market's clock as the page sees it: the newest exchange event time, and the speed of the
 * market against the wall clock, measured from the events themselves (1 on a live market).
 */
export class MarketClock {
  constructor() {
    this.samples = []; // [wall ms, market ms]
    this.marketMs = null;
    this.seenAt = null;
    this.speed = null;
    this.replay = false;
  }

  /** The api's view from `/api/status`: `{time_ms, rate, replay}` (rate measured by the api). */
  seed(market, wallMs = Date.now()) {
    if (!market) return;
    if (market.rate !== null && market.rate !== undefined) this.speed = Number(market.rate);
    this.replay = Boolean(market.replay);
    if (market.time_ms && (this.marketMs === null || market.time_ms > this.marketMs)) {
      this.marketMs = market.time_ms;
      this.seenAt = wallMs;
    }
  }

  /** An exchange event time (a tick or a candle update) seen now. */
  observe(marketMs, wallMs = Date.now()) {
    if (!marketMs || (this.marketMs !== null && marketMs <= this.marketMs)) return;
    this.marketMs = marketMs;
    this.seenAt = wallMs;
    this.samples.push([wallMs, marketMs]);
    while (this.samples.length > 2 && wallMs - this.samples[1][0] > 20000) this.samples.shift();
    const [wall0, market0] = this.samples[0];
    if (wallMs - wall0 >= 4000) this.speed = (marketMs - market0) / (wallMs - wall0);
  }

  /** True in a replay: the api says so, or the market clock runs clearly faster than the wall clock. */
  get replaying() {
    return this.replay || (this.speed !== null && this.speed > 1.5);
  }

  /** The replay speed as shown: two significant digits (×60, ×600, ×2.5). */
  get shownSpeed() {
    if (this.speed === null) return null;
    return Number(this.speed.toPrecision(2));
  }

  /** Market time now: the last event time advanced at the measured speed for up to 5 s. */
  now(wallMs = Date.now()) {
    if (this.marketMs === null) return null;
    const gap = Math.min(Math.max(wallMs - this.seenAt, 0), 5000);
    return this.marketMs + gap * (this.speed ?? 1);
  }
}
