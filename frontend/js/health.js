// Service health: heartbeats (up/down, age) and consumer-group lag, polled every few seconds.

import { api } from "./api.js";
import { $, el, fmtAge, replace } from "./dom.js";

export class HealthPanel {
  constructor() {
    this.box = $("#health");
    this.summary = $("#health-summary");
  }

  start(everyMs = 5000) {
    this.load();
    setInterval(() => this.load(), everyMs);
  }

  async load() {
    let data;
    try {
      data = await api("/api/health");
    } catch (error) {
      data = error.body && "redis" in error.body ? error.body : null;
      if (!data) {
        this.summary.textContent = "unreachable";
        this.summary.dataset.state = "error";
        return;
      }
    }
    this.summary.textContent = data.status;
    this.summary.dataset.state = data.status === "ok" ? "running" : "error";
    const services = data.services.length
      ? el("table", {},
          el("caption", { className: "sr-only" }, "Services"),
          el("thead", {}, el("tr", {}, ["Service", "Instance", "State", "Heartbeat"].map((t) => el("th", { scope: "col" }, t)))),
          el("tbody", {}, data.services.map((s) => el("tr", {},
            el("td", {}, s.service),
            el("td", { className: "muted small" }, s.instance),
            el("td", {}, el("span", { className: "badge", dataset: { state: s.up ? "running" : "error" } }, s.up ? "up" : "down")),
            el("td", {}, `${fmtAge(s.age_ms)} ago`),
          ))))
      : el("p", { className: "muted" }, "No service heartbeat.");
    const groups = data.groups.length
      ? el("table", {},
          el("caption", { className: "sr-only" }, "Stream lag"),
          el("thead", {}, el("tr", {}, ["Stream", "Group", "Lag", "Pending"].map((t) => el("th", { scope: "col" }, t)))),
          el("tbody", {}, data.groups.map((g) => el("tr", {},
            el("td", {}, g.stream), el("td", {}, g.group),
            el("td", { className: "num" }, g.lag ?? "?"), el("td", { className: "num" }, g.pending),
          ))))
      : null;
    replace(this.box, el("p", { className: "small" }, `Redis ${data.redis ? "reachable" : "NOT reachable"}`), services, groups);
  }
}
