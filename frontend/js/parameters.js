// The parameters form of the selected symbol, generated from its strategy's schema (labels,
// units, bounds, help: GET /api/strategies), with per-field validation and the server's 422
// messages shown beside each field, and the per-symbol strategy switch. Only changed fields are
// sent; the server validates the whole set with the symbol's strategy's model.
// A dangerous-but-valid change (409) is applied only after the trader ticks the confirmation;
// the executor's answer to an applied change is shown under the form.

import { api, ApiError } from "./api.js";
import { $, confirmAction, el, fmtTime, replace } from "./dom.js";
import { checkValue, fieldsOf, groupsOf, valueOf } from "./param-schema.js";

export class ParametersForm {
  constructor(answers, readOnly = false, symbolOf = () => null) {
    this.answers = answers;
    this.readOnly = readOnly; // a viewer sees the values, with nothing to edit or apply
    this.symbolOf = symbolOf; // the dashboard's selected symbol: its set is the one shown
    this.form = $("#parameters");
    this.current = null;
    this.version = 0;
    this.strategies = null; // GET /api/strategies: every strategy's schema, loaded once
    this.meta = {};
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.form.addEventListener("reset", (event) => {
      event.preventDefault();
      this.render();
      this.say("Changes discarded.");
    });
    this.form.addEventListener("input", (event) => this.onInput(event.target));
    $("#strategy-switch").addEventListener("click", () => this.switchStrategy());
  }

  get symbol() {
    return this.symbolOf() ?? "";
  }

  query(extra = "") {
    const symbol = this.symbol;
    const parts = [symbol ? `symbol=${encodeURIComponent(symbol)}` : "", extra].filter(Boolean);
    return parts.length ? `?${parts.join("&")}` : "";
  }

  async load() {
    try {
      if (!this.strategies) this.strategies = await api("/api/strategies");
      const data = await api(`/api/parameters${this.query()}`);
      this.current = data.parameters;
      this.version = data.version;
      this.strategy = data.strategy;
      const known = this.strategies.strategies.find((s) => s.name === data.strategy);
      if (!known) this.strategies = await api("/api/strategies"); // a strategy this page has not seen
      this.schema = (known ?? this.strategies.strategies.find((s) => s.name === data.strategy))?.parameters;
      this.fields = fieldsOf(this.schema);
      this.meta = Object.fromEntries(this.fields.map((f) => [f.name, f]));
      $("#params-version").textContent = `${data.symbol ?? ""} ${data.strategy} · ` + (data.version
        ? `version ${data.version} · ${fmtTime(data.changed_at_ms)} (wall clock) · ${data.changed_by}`
        : "version 0 · start-up values");
      this.renderSwitch();
      this.render();
    } catch (error) {
      this.say(`Parameters unavailable: ${error.message}`, true);
    }
    this.loadHistory();
  }

  renderSwitch() {
    const select = $("#strategy-select");
    const options = (this.strategies?.strategies ?? []).map((s) => el("option", { value: s.name, title: s.description }, s.name));
    select.replaceChildren(...options);
    select.value = this.strategy;
    const described = this.strategies?.strategies.find((s) => s.name === this.strategy);
    $("#strategy-description").textContent = described?.description ?? "";
    select.disabled = this.readOnly;
    $("#strategy-switch").hidden = this.readOnly;
  }

  render() {
    if (!this.current || !this.fields) return;
    const groups = groupsOf(this.fields, this.strategy).map(([title, fields]) =>
      el("fieldset", {}, el("legend", {}, title), fields.map((field) => this.field(field))),
    );
    replace($("#params-fields"), groups);
    if (this.readOnly) for (const input of this.form.querySelectorAll("#params-fields input, #params-fields select")) input.disabled = true;
    this.dirty = false;
    this.showDangers([]);
  }

  field(meta) {
    const name = meta.name;
    const id = `p-${name}`;
    const value = this.current[name];
    const help = meta.liveSafe ? meta.help : `${meta.help} (a change rebuilds the indicators)`;
    const hint = el("p", { id: `h-${name}`, className: "hint" }, help);
    const error = el("p", { id: `e-${name}`, className: "field-error", dataset: { testid: `error-${name}` } });
    if (meta.kind === "bool") {
      const box = el("input", { id, name, type: "checkbox", checked: Boolean(value), "aria-describedby": `h-${name} e-${name}` });
      return el("div", { className: "field checkbox" }, el("div", { className: "input-row" }, box, el("label", { for: id }, meta.label)), hint, error);
    }
    if (meta.kind === "choice") {
      const options = meta.options.map((option) => el("option", { value: option, selected: option === value }, option));
      const select = el("select", { id, name, "aria-describedby": `h-${name} e-${name}` }, options);
      return el("div", { className: "field" }, el("label", { for: id }, meta.label), el("div", { className: "input-row" }, select), hint, error);
    }
    const input = el("input", {
      id, name, type: "text", value: String(value), autocomplete: "off", spellcheck: false,
      inputMode: meta.kind === "integer" ? "numeric" : "decimal", "aria-describedby": `h-${name} e-${name}`,
    });
    const unit = el("span", { className: "unit", id: `u-${name}` }, this.unitText(meta, value));
    return el("div", { className: "field" }, el("label", { for: id }, meta.label), el("div", { className: "input-row" }, input, unit), hint, error);
  }

  unitText(meta, value) {
    if (meta.unit !== "fraction") return meta.unit;
    const number = Number(value);
    return Number.isFinite(number) ? `= ${+(number * 100).toFixed(4)} %` : "ratio";
  }

  onInput(input) {
    if (!input.name || !this.meta[input.name]) return;
    this.showDangers([]);
    this.dirty = true;
    if (input.type !== "checkbox") {
      const unit = $(`#u-${input.name}`); // a choice has none
      if (unit) unit.textContent = this.unitText(this.meta[input.name], input.value);
      this.showError(input.name, checkValue(this.meta[input.name], input.value));
    }
  }

  showError(name, message) {
    const node = $(`#e-${name}`);
    const input = $(`#p-${name}`);
    if (!node || !input) return false;
    node.textContent = message;
    input.setAttribute("aria-invalid", message ? "true" : "false");
    return true;
  }

  changes() {
    const values = {};
    for (const [name, meta] of Object.entries(this.meta)) {
      const input = this.form.elements[name];
      if (!input) continue;
      if (meta.kind === "bool") {
        if (input.checked !== Boolean(this.current[name])) values[name] = input.checked;
        continue;
      }
      const text = input.value.trim();
      if (text === String(this.current[name])) continue;
      values[name] = valueOf(meta, text);
    }
    return values;
  }

  /** Run another strategy on the selected symbol (confirmed; again if it holds a position). */
  async switchStrategy() {
    const target = $("#strategy-select").value;
    const answer = $("#strategy-answer");
    if (!target || target === this.strategy) {
      answer.textContent = `${this.symbol} already runs ${this.strategy}.`;
      return;
    }
    const text = `Switch ${this.symbol} from ${this.strategy} to ${target}? Its parameters become ${target}'s defaults; ` +
      "risk, stop-loss and take-profit settings are kept.";
    if (!(await confirmAction(text, "Switch strategy"))) {
      $("#strategy-select").value = this.strategy;
      return;
    }
    const send = (keepExits) => api(`/api/parameters/strategy${this.query()}`, { method: "PUT", body: { strategy: target, keep_exits: keepExits } });
    try {
      let data;
      try {
        data = await send(false);
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 409)) throw error;
        const again = `${error.body?.detail ?? "The symbol has an open position."} The open position keeps its ` +
          "stop-loss and take-profit; the new strategy's exit signals apply to it. Switch anyway?";
        if (!(await confirmAction(again, "Switch, keep its exits"))) {
          answer.textContent = "Not switched: the position is open.";
          $("#strategy-select").value = this.strategy;
          return;
        }
        data = await send(true);
      }
      answer.textContent = `Switched to ${data.strategy} (version ${data.version}).`;
      await this.load();
      this.onSwitched?.(data);
      if (data.command_id && this.answers) this.answers.track(data.command_id, $("#params-answer"));
    } catch (error) {
      const detail = error instanceof ApiError && Array.isArray(error.body?.detail) ? error.body.detail.map((p) => `${p.label}: ${p.message}`).join("; ") : error.message;
      answer.textContent = `Not switched: ${detail}`;
      $("#strategy-select").value = this.strategy;
    }
  }

  async submit() {
    let firstInvalid = null;
    for (const [name, meta] of Object.entries(this.meta)) {
      const input = this.form.elements[name];
      if (!input || input.type === "checkbox") continue;
      const problem = checkValue(meta, input.value);
      this.showError(name, problem);
      if (problem && !firstInvalid) firstInvalid = input;
    }
    if (firstInvalid) {
      firstInvalid.focus();
      this.say("Fix the highlighted fields.", true);
      return;
    }
    const values = this.changes();
    if (!Object.keys(values).length) {
      this.say("Nothing changed.");
      return;
    }
    this.say("Saving…");
    const confirmed = !$("#params-danger").hidden && $("#params-confirm").checked;
    try {
      const path = `/api/parameters${this.query(confirmed ? "confirm_dangerous=true" : "")}`;
      const data = await api(path, { method: "PUT", body: values });
      await this.load();
      this.say(`Saved as version ${data.version}.`);
      if (data.command_id && this.answers) this.answers.track(data.command_id, $("#params-answer"));
    } catch (error) {
      if (error instanceof ApiError && error.status === 409 && Array.isArray(error.body?.dangers)) {
        this.showDangers(error.body.dangers);
        this.say("Not applied: dangerous settings need your confirmation below.", true);
      } else if (error instanceof ApiError && error.status === 422 && Array.isArray(error.body?.detail)) {
        const general = [];
        for (const problem of error.body.detail) {
          const field = problem.field ?? String(problem.loc?.at(-1) ?? "");
          const message = problem.message ?? problem.msg ?? "invalid";
          const label = problem.label && problem.label !== field ? `${problem.label} (${field})` : field;
          if (!this.showError(field, message)) general.push(`${label}: ${message}`);
        }
        this.say(general.length ? general.join("; ") : "Not applied: see the fields.", true);
        const bad = this.form.querySelector("[aria-invalid='true']");
        if (bad) bad.focus();
      } else {
        this.say(`Not applied: ${error.message}`, true);
      }
    }
  }

  /** The 409's dangers with the confirmation box; none hides both. */
  showDangers(dangers) {
    const box = $("#params-danger");
    box.hidden = !dangers.length;
    $("#params-confirm").checked = false;
    replace($("#params-dangers"), dangers.map((d) =>
      el("li", {}, `${d.labels.map((label, i) => `${label} (${d.fields[i]})`).join(", ")}: ${d.message}`)));
  }

  /** Another dashboard or replica changed the parameters. */
  onChanged(data) {
    if ((data.symbol || "") !== (this.symbol || "") && data.symbol) return; // another symbol's set
    if (data.version === this.version && (!data.strategy || data.strategy === this.strategy)) return;
    if (this.dirty) this.say(`Parameters were changed elsewhere (version ${data.version}); discard to see them.`, true);
    else this.load();
  }

  async loadHistory() {
    try {
      const items = await api(`/api/parameters/history${this.query("limit=20")}`);
      replace($("#params-history"), items.length ? items.map((item) =>
        el("li", {},
          el("strong", {}, `v${item.version}`), ` · ${item.strategy} · ${fmtTime(item.changed_at_ms)} · ${item.changed_by}: `,
          item.changes.map((c) => `${c.field} ${c.old} → ${c.new}`).join(", "),
        )) : [el("li", { className: "muted" }, "No changes yet.")]);
    } catch {
      // The history is secondary; the form stays usable.
    }
  }

  say(text, error = false) {
    const node = $("#params-message");
    node.textContent = text;
    node.dataset.error = String(error);
  }
}
