// Every number a person reads goes through here: prices with the symbol's tick precision,
// quantities with its step, quote amounts with 2 decimals (or the quote asset's precision),
// percentages with 2, thousands separators everywhere. Input is decimal text (or a number).

const FALLBACK = { price: 2, quantity: 5, quote: 2 };
const symbols = new Map();
let selected = null;

/** Decimals of a step such as "0.01000000" (2) or "1" (0); null when it is not a number. */
export function decimalsOf(step) {
  if (step === null || step === undefined || step === "") return null;
  const text = String(step);
  if (!/^\d*\.?\d+$/.test(text)) return null;
  const fraction = text.includes(".") ? text.split(".")[1].replace(/0+$/, "") : "";
  return fraction.length;
}

/** Record a symbol's assets and exchange precision: `{base_asset, quote_asset, tick_size, step_size, quote_precision}`. */
export function setSymbolInfo(symbol, info = {}) {
  const pick = (...values) => values.find((value) => value !== null && value !== undefined);
  const current = symbols.get(symbol) ?? { ...FALLBACK };
  symbols.set(symbol, {
    price: pick(decimalsOf(info.tick_size), info.price_decimals, current.price),
    quantity: pick(decimalsOf(info.step_size), info.quantity_decimals, current.quantity),
    quote: Math.min(pick(info.quote_decimals, info.quote_precision, current.quote), 8),
    baseAsset: pick(info.base_asset, current.baseAsset),
    quoteAsset: pick(info.quote_asset, current.quoteAsset),
  });
}

/** The symbol the page shows; numbers without an explicit symbol use its precision. */
export function selectSymbol(symbol) {
  selected = symbol;
}

export function precisionOf(symbol = selected) {
  return symbols.get(symbol) ?? FALLBACK;
}

function number(value) {
  if (value === null || value === undefined || value === "") return null;
  const parsed = Number(value);
  return Number.isFinite(parsed) ? parsed : null;
}

/** `value` with exactly `digits` decimals and thousands separators. */
export function fmtFixed(value, digits, { sign = false } = {}) {
  const parsed = number(value);
  if (parsed === null) return value === null || value === undefined || value === "" ? "—" : String(value);
  const text = parsed.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  return sign && parsed > 0 ? `+${text}` : text;
}

export const fmtPrice = (value, symbol) => fmtFixed(value, precisionOf(symbol).price);
/** Decimal text cut (not rounded) to `digits` decimals: a quantity is never shown larger than held. */
export function truncate(value, digits) {
  const text = typeof value === "number" ? value.toFixed(12) : String(value ?? "");
  const match = /^(-?\d*)(?:\.(\d*))?$/.exec(text.trim());
  if (!match) return value;
  return digits > 0 ? `${match[1] || "0"}.${(match[2] ?? "").padEnd(digits, "0").slice(0, digits)}` : match[1] || "0";
}

export const fmtQty = (value, symbol) => (number(value) === null ? fmtFixed(value, 0) : fmtFixed(truncate(value, precisionOf(symbol).quantity), precisionOf(symbol).quantity));
export const fmtQuote = (value, symbol, options) => fmtFixed(value, precisionOf(symbol).quote, options);
export const fmtSignedQuote = (value, symbol) => fmtQuote(value, symbol, { sign: true });

/** An amount of `asset`: a symbol's quote asset with the quote precision, its base asset with the step. */
export function fmtAsset(value, asset) {
  for (const [symbol, info] of symbols) {
    if (info.quoteAsset === asset) return fmtQuote(value, symbol);
    if (info.baseAsset === asset) return fmtQty(value, symbol);
  }
  return fmtFixed(value, FALLBACK.quote);
}

/** A percentage with sign, e.g. "+2.35 %". */
export function fmtPct(value) {
  const parsed = number(value);
  if (parsed === null) return "—";
  return `${fmtFixed(parsed, 2, { sign: true })} %`;
}

/** A plain ratio such as a profit factor: two decimals, no sign. */
export const fmtRatio = (value) => (number(value) === null ? "—" : fmtFixed(value, 2));

/** A count with thousands separators. */
export const fmtCount = (value) => (number(value) === null ? "—" : fmtFixed(value, 0));

/** A duration in ms: "45 s", "12 min", "3 h 05 min", "2 d 4 h". */
export function fmtDuration(ms) {
  const parsed = number(ms);
  if (parsed === null) return "—";
  const minutes = Math.round(parsed / 60000);
  if (parsed < 90000) return `${Math.round(parsed / 1000)} s`;
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${String(minutes % 60).padStart(2, "0")} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** How long ago, from a duration in ms: "3 s", "4 min", "2 h". */
export function fmtAge(ms) {
  if (ms === null || ms === undefined) return "never";
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 90) return `${seconds} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 3600)} h`;
}

/** "up" / "down" / "" for colouring a signed amount. */
export function tone(value) {
  const parsed = number(value);
  return parsed === null || parsed === 0 ? "" : parsed > 0 ? "up" : "down";
}
