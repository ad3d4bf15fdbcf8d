// Live logs of every service: filter by service and level; auto-scroll that pauses while the
// reader looks at older lines. Times are the wall clock. An executor alert is also a log line
// of the executor: whichever arrives first is shown, the other is dropped.

import { api } from "./api.js";
import { fmtClockTime } from "./clock.js";
import { $, el } from "./dom.js";

const LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];
const MAX_LINES = 500;
// Every service that logs to the bus, listed before any of its lines arrives (the services
// whose Redis user may write the logs stream; tests/unit/test_log_services.py compares them).
const SERVICES = ["api", "market_data", "strategy", "executor", "notifier"];
const SEEN_KEEP = 200;

/** The text the executor logs for an alert (services/executor/notify.py). */
const alertText = (alert) => `${alert.symbol ? `${alert.symbol} ` : ""}${alert.code}: ${alert.message}`;

export class LogPanel {
  constructor() {
    this.box = $("#logs");
    this.resume = $("#logs-resume");
    this.service = $("#log-service");
    this.level = $("#log-level");
    this.lines = [];
    this.services = new Set();
    this.seen = []; // texts of recent alerts and executor lines, to show each once
    for (const name of SERVICES) this.addService(name);
    this.follow = true;
    this.unseen = 0;
    this.box.addEventListener("scroll", () => {
      const atBottom = this.box.scrollHeight - this.box.scrollTop - this.box.clientHeight < 24;
      if (atBottom !== this.follow) {
        this.follow = atBottom;
        if (atBottom) this.unseen = 0;
        this.updateResume();
      }
    });
    this.resume.addEventListener("click", () => {
      this.follow = true;
      this.unseen = 0;
      this.scrollDown();
      this.updateResume();
    });
    this.service.addEventListener("change", () => this.renderAll());
    this.level.addEventListener("change", () => this.renderAll());
  }

  async load() {
    try {
      const items = await api("/api/logs?limit=200");
      this.lines = items.map((item) => ({ ...item.data, ts_ms: item.ts_ms }));
      for (const line of this.lines) this.addService(line.service);
      this.renderAll();
    } catch (error) {
      this.box.replaceChildren(el("p", { className: "muted" }, `Logs unavailable: ${error.message}`));
    }
  }

  addService(name) {
    if (!name || this.services.has(name)) return;
    this.services.add(name);
    this.service.append(el("option", { value: name }, name));
  }

  visible(line) {
    const floor = LEVELS.indexOf(this.level.value);
    const rank = LEVELS.indexOf(line.level);
    return (!this.service.value || line.service === this.service.value) && (rank === -1 || rank >= floor);
  }

  row(line) {
    return el("div", { className: "log-line", dataset: { level: line.level } },
      el("time", { title: "wall clock" }, fmtClockTime(line.ts_ms)),
      el("span", { className: "log-level" }, line.level),
      el("span", { className: "log-service" }, line.service),
      el("span", { className: "log-message" }, line.message),
    );
  }

  renderAll() {
    this.box.replaceChildren(...this.lines.filter((line) => this.visible(line)).map((line) => this.row(line)));
    this.follow = true;
    this.scrollDown();
    this.updateResume();
  }

  /** True when `text` was shown already (an alert and its log line); remembers it otherwise. */
  shownBefore(text) {
    const index = this.seen.indexOf(text);
    if (index !== -1) {
      this.seen.splice(index, 1);
      return true;
    }
    this.seen.push(text);
    if (this.seen.length > SEEN_KEEP) this.seen.shift();
    return false;
  }

  /** An executor alert: shown as the executor's log line unless that line came first. */
  onAlert(data) {
    const message = alertText(data);
    if (this.shownBefore(message)) return;
    this.addLine({ ...data, service: "executor", logger: "alert", level: String(data.level).toUpperCase(), message });
  }

  /** A log record from the live feed. */
  onLog(data) {
    if (data.service === "executor" && data.message.includes(": ") && this.shownBefore(data.message)) return;
    this.addLine(data);
  }

  addLine(data) {
    const line = { ts_ms: Date.now(), ...data };
    this.lines.push(line);
    this.addService(line.service);
    if (this.lines.length > MAX_LINES) {
      this.lines.splice(0, this.lines.length - MAX_LINES);
      while (this.box.childElementCount > MAX_LINES) this.box.firstElementChild.remove();
    }
    if (!this.visible(line)) return;
    this.box.append(this.row(line));
    if (this.follow) this.scrollDown();
    else {
      this.unseen += 1;
      this.updateResume();
    }
  }

  scrollDown() {
    this.box.scrollTop = this.box.scrollHeight;
  }

  updateResume() {
    this.resume.hidden = this.follow;
    this.resume.textContent = this.unseen ? `Resume auto-scroll (${this.unseen} new)` : "Resume auto-scroll";
  }
}
