// Order history, newest first, with each closed trade's % result; refreshed on order events.

import { api } from "./api.js";
import { $, debounce, el, fmtAmount, fmtPct, fmtPrice, fmtTime, replace } from "./dom.js";

const PAGE = 15;

export class OrdersPanel {
  constructor() {
    this.box = $("#orders");
    this.offset = 0;
    this.total = 0;
    this.refreshSoon = debounce(() => this.load(), 300);
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

  render(items) {
    if (!items.length) {
      replace(this.box, el("p", { className: "muted" }, "No orders yet."));
      return;
    }
    const head = el("thead", {}, el("tr", {}, ["Time", "Symbol", "Side", "Type", "Status", "Quantity", "Avg price", "Quote", "Result"].map((t) => el("th", { scope: "col" }, t))));
    const body = el("tbody", {}, items.map((o) => {
      const pct = o.return_pct;
      return el("tr", { dataset: { orderId: o.client_order_id } },
        el("td", {}, fmtTime(o.created_at_ms)),
        el("td", {}, o.symbol),
        el("td", { className: o.side === "BUY" ? "up" : "down" }, o.side),
        el("td", {}, o.purpose),
        el("td", { title: o.reason || "" }, o.status),
        el("td", { className: "num" }, fmtAmount(o.executed_quantity !== "0" ? o.executed_quantity : o.requested_quantity)),
        el("td", { className: "num" }, fmtPrice(o.average_price)),
        el("td", { className: "num" }, fmtAmount(o.cumulative_quote)),
        el("td", { className: `num ${pct === null ? "" : Number(pct) >= 0 ? "up" : "down"}` }, pct === null ? "" : fmtPct(pct)),
      );
    }));
    replace(this.box, el("table", {}, el("caption", { className: "sr-only" }, "Orders, newest first"), head, body));
  }
}
