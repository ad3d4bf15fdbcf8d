// Order history, newest first, with each closed trade's % result. Loaded once; each order
// event carries its `Order` row, which is put in place (the first page only).

import { api } from "./api.js";
import { fmtTime } from "./clock.js";
import { $, el, replace } from "./dom.js";
import { fmtPct, fmtPrice, fmtQty, fmtQuote, tone } from "./format.js";
import { orderPrice, orderType, priceNote } from "./order-price.js";

const PAGE = 15;

export class OrdersPanel {
  constructor() {
    this.box = $("#orders");
    this.offset = 0;
    this.total = 0;
    this.items = [];
    $("#orders-prev").addEventListener("click", () => this.page(-PAGE));
    $("#orders-next").addEventListener("click", () => this.page(PAGE));
  }

  page(delta) {
    this.offset = Math.max(0, this.offset + delta);
    this.load();
  }

  async load() {
    this.box.setAttribute("aria-busy", "true");
    try {
      const data = await api(`/api/orders?limit=${PAGE}&offset=${this.offset}`);
      this.total = data.total;
      this.items = data.items;
      this.render(data.items);
    } catch (error) {
      replace(this.box, el("p", { className: "muted" }, error.status === 503 ? "Order history is not available yet." : `Orders unavailable: ${error.message}`));
    } finally {
      this.box.removeAttribute("aria-busy");
      this.updatePager();
    }
  }

  updatePager() {
    $("#orders-prev").disabled = this.offset === 0;
    $("#orders-next").disabled = this.offset + PAGE >= this.total;
    $("#orders-page").textContent = this.total ? `${this.offset + 1}–${Math.min(this.offset + PAGE, this.total)} of ${this.total}` : "";
  }

  /** An `order_update` event's `Order` row: updated in place, or added on top of the first page. */
  onOrder(order) {
    if (!order) return;
    const index = this.items.findIndex((o) => o.client_order_id === order.client_order_id);
    if (index !== -1) this.items[index] = order;
    else {
      this.total += 1;
      if (this.offset !== 0) return this.updatePager();
      this.items.unshift(order);
      this.items.length = Math.min(this.items.length, PAGE);
    }
    this.render(this.items);
    this.updatePager();
  }

  render(items) {
    if (!items.length) {
      replace(this.box, el("p", { className: "muted" }, "No orders yet."));
      return;
    }
    const columns = [["Market time", ""], ["Symbol", "wide"], ["Side", ""], ["Type", "wide"], ["Status", "wide"], ["Quantity", "num wide"],
      ["Price", "num wide"], ["Avg price", "num wide"], ["Quote", "num wide"], ["Fees", "num wide"], ["Result", "num"]];
    const head = el("thead", {}, el("tr", {}, columns.map(([t, className]) => el("th", { scope: "col", className }, t))));
    const body = el("tbody", {}, items.map((o) => {
      const pct = o.return_pct ?? null;
      const s = o.symbol;
      return el("tr", { dataset: { orderId: o.client_order_id } },
        el("td", { title: `recorded ${fmtTime(o.created_at_ms)} (wall clock)` }, fmtTime(o.market_time_ms ?? o.created_at_ms)),
        el("td", { className: "wide" }, s),
        el("td", { className: o.side === "BUY" ? "up" : "down" }, o.side),
        el("td", { className: "wide", title: `${o.purpose} order` }, orderType(o)),
        el("td", { className: "wide", title: o.reason || "" }, o.status),
        el("td", { className: "num wide" }, fmtQty(Number(o.executed_quantity) ? o.executed_quantity : o.requested_quantity, s)),
        el("td", { className: "num wide", title: priceNote(o) }, orderPrice(o)),
        el("td", { className: "num wide" }, fmtPrice(o.average_price, s)),
        el("td", { className: "num wide" }, fmtQuote(o.cumulative_quote, s)),
        el("td", { className: "num wide" }, fmtQuote(o.fees_quote, s)),
        el("td", { className: `num ${tone(pct)}` }, pct === null ? "" : fmtPct(pct)),
      );
    }));
    replace(this.box, el("table", {}, el("caption", { className: "sr-only" }, "Orders, newest first"), head, body));
  }
}
