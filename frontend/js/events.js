// The live feed: one EventSource on /api/events, a connection indicator, reconnection that
// resumes from the last event id so nothing is missed.

import { api } from "./api.js";

const STATES = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline — retrying",
};

export class LiveEvents {
  constructor(indicator) {
    this.indicator = indicator;
    this.handlers = new Map();
    this.lastId = null;
    this.source = null;
    this.retryMs = 1000;
    this.timer = null;
    this.interrupted = false;
    this.onReconnected = () => {};
  }

  /** Call `fn(data)` for every event named `name`. */
  on(name, fn) {
    if (!this.handlers.has(name)) {
      this.handlers.set(name, []);
      if (this.source) this.listen(this.source, name);
    }
    this.handlers.get(name).push(fn);
  }

  start() {
    this.stop();
    this.setState("connecting");
    const url = this.lastId ? `/api/events?last_event_id=${encodeURIComponent(this.lastId)}` : "/api/events";
    const source = new EventSource(url);
    this.source = source;
    for (const name of this.handlers.keys()) this.listen(source, name);
    source.onopen = () => {
      window.dispatchEvent(new CustomEvent("server-reachable"));
      this.setState("live");
      this.retryMs = 1000;
      if (this.interrupted) this.onReconnected();
      this.interrupted = false;
    };
    source.onerror = () => {
      this.interrupted = true;
      if (source.readyState === EventSource.CLOSED) {
        this.setState("offline");
        this.scheduleRestart();
      } else {
        this.setState("reconnecting");
      }
    };
  }

  stop() {
    clearTimeout(this.timer);
    if (this.source) this.source.close();
    this.source = null;
  }

  listen(source, name) {
    source.addEventListener(name, (event) => {
      if (event.lastEventId) this.lastId = event.lastEventId;
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      for (const fn of this.handlers.get(name) || []) {
        try {
          fn(data);
        } catch (error) {
          console.error(`handler of ${name} failed`, error);
        }
      }
    });
  }

  async scheduleRestart() {
    this.stop();
    try {
      // A closed stream may mean the session ended; that shows the login instead.
      const session = await api("/api/session");
      if (!session.authenticated) {
        window.dispatchEvent(new CustomEvent("unauthorized"));
        return;
      }
    } catch {
      // Server unreachable: keep retrying.
    }
    this.timer = setTimeout(() => this.start(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, 15000);
  }

  setState(state) {
    this.indicator.dataset.state = state;
    this.indicator.querySelector(".connection-text").textContent = STATES[state];
  }
}
