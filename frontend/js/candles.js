// Candles of a longer timeframe made from the stored ones (1m → 5m, 15m, 1h): open of the
// first, close of the last, extremes and summed volume; the indicator values shown are those
// of the bucket's last candle (the strategy computes them on the stored timeframe).

export const TIMEFRAMES = { "1m": 60000, "3m": 180000, "5m": 300000, "15m": 900000, "30m": 1800000, "1h": 3600000, "4h": 14400000, "1d": 86400000 };
const INDICATORS = ["ema_short", "ema_long", "ema_filter", "rsi"]; // ema_cross_rsi's, also by name

/** Start of the bucket of `bucketMs` that holds `timeMs`. */
export const bucketOf = (timeMs, bucketMs) => timeMs - (timeMs % bucketMs);

function merge(bucket, row) {
  bucket.high = Math.max(bucket.high, Number(row.high));
  bucket.low = Math.min(bucket.low, Number(row.low));
  bucket.close = Number(row.close);
  bucket.volume += Number(row.volume ?? 0);
  bucket.closed = row.closed;
  for (const key of INDICATORS) if (row[key] !== null && row[key] !== undefined) bucket[key] = row[key];
  for (const [key, value] of Object.entries(row.lines ?? {})) if (value !== null && value !== undefined) bucket.lines[key] = value;
}

function open(row, bucketMs) {
  const bucket = {
    time_ms: bucketOf(row.time_ms, bucketMs), open: Number(row.open), high: Number(row.high), low: Number(row.low),
    close: Number(row.close), volume: Number(row.volume ?? 0), closed: row.closed,
  };
  for (const key of INDICATORS) bucket[key] = row[key] ?? null;
  bucket.lines = { ...(row.lines ?? {}) }; // every column of the symbol's strategy, by name
  return bucket;
}

/** Candle rows with their prices as numbers (the API sends decimal text). */
export const numeric = (rows) => rows.map((row) => ({ ...row, open: Number(row.open), high: Number(row.high), low: Number(row.low), close: Number(row.close) }));

/**
 * Rows of `baseMs` candles (oldest first, `{time_ms, open, high, low, close, volume, closed, …}`)
 * aggregated into candles of `bucketMs`. A bucket is closed when its last base candle closes
 * the bucket; the first bucket may be partial when the rows start inside it.
 */
export function aggregate(rows, baseMs, bucketMs) {
  if (bucketMs <= baseMs) return numeric(rows);
  const out = [];
  for (const row of rows) {
    const last = out[out.length - 1];
    if (last && last.time_ms === bucketOf(row.time_ms, bucketMs)) merge(last, row);
    else out.push(open(row, bucketMs));
    const bucket = out[out.length - 1];
    bucket.closed = row.closed && row.time_ms + baseMs >= bucket.time_ms + bucketMs;
  }
  return out;
}

/** The base candles a chart of `bucketMs` needs for `count` candles, within the API's limit. */
export const baseLimit = (count, baseMs, bucketMs, max = 2000) => Math.min(max, count * Math.max(1, Math.round(bucketMs / baseMs)));

/**
 * The newest bucket of a chart kept up to date from live base candles: the base candles it
 * holds (from the API at load, then from the feed), folded again on each update.
 */
export class BucketTail {
  constructor(baseMs, bucketMs, members = []) {
    this.baseMs = baseMs;
    this.bucketMs = bucketMs;
    this.members = members.map((c) => ({ ...c }));
  }

  get start() {
    return this.members.length ? bucketOf(this.members[0].time_ms, this.bucketMs) : null;
  }

  row() {
    return aggregate(this.members, this.baseMs, this.bucketMs)[0] ?? null;
  }

  /** A live base candle `{time_ms, open, …}`; the bucket's new row, or null when it is older. */
  fold(candle) {
    const bucket = bucketOf(candle.time_ms, this.bucketMs);
    if (this.start !== null && bucket < this.start) return null;
    if (this.start !== null && bucket > this.start) this.members = [];
    const known = this.members.find((c) => c.time_ms === candle.time_ms);
    if (known) Object.assign(known, candle);
    else this.members.push({ ema_short: null, ema_long: null, ema_filter: null, rsi: null, ...candle });
    this.members.sort((a, b) => a.time_ms - b.time_ms);
    return this.row();
  }

  /** Indicator values of the base candle at `timeMs`; the bucket's new row, or null when not held. */
  indicators(timeMs, values) {
    const member = this.members.find((c) => c.time_ms === timeMs);
    if (!member) return null;
    Object.assign(member, values);
    return this.row();
  }
}
