// Live logs of every service: filter by service and level; auto-scroll that pauses while the
// reader looks at older lines.

import { api } from "./api.js";
import { $, el, fmtTime } from "./dom.js";

const LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];
const MAX_LINES = 500;

export class LogPanel {
  constructor() {
    this.box = $("#logs");
    this.resume = $("#logs-resume");
    this.service = $("#log-service");
    this.level = $("#log-level");
    this.lines = [];
    this.services = new Set();
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
      el("time", {}, fmtTime(line.ts_ms).slice(11)),
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

  /** A log record from the live feed. */
  onLog(data) {
    const line = { ...data };
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
