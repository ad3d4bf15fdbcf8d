// How an order's type and price read in the orders panel and a trade's detail: a limit entry
// shows its limit (and, on hover, the best bid it was priced from), an OCO leg its limit or stop.

import { fmtPrice } from "./format.js";

/** The order's type as a trader reads it: "entry LIMIT_MAKER", "exit MARKET", "protect STOP_LOSS". */
export function orderType(o) {
  return `${o.purpose} ${o.order_type ?? "MARKET"}`;
}

/** The price the order was placed at: a limit (a limit entry, an OCO leg) or a stop's trigger; "market" for MARKET. */
export function orderPrice(o) {
  if (o.limit_price) return fmtPrice(o.limit_price, o.symbol);
  if (o.stop_price) return `stop ${fmtPrice(o.stop_price, o.symbol)}`;
  return (o.order_type ?? "MARKET") === "MARKET" ? "market" : "";
}

/** Where the price came from: the best bid a limit entry was priced from, a stop-limit's trigger. */
export function priceNote(o) {
  const notes = [];
  if (o.best_bid) notes.push(`priced from the best bid ${fmtPrice(o.best_bid, o.symbol)}`);
  if (o.limit_price && o.stop_price) notes.push(`triggered at ${fmtPrice(o.stop_price, o.symbol)}`);
  return notes.join("; ");
}
