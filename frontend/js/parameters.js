// The parameters form: labels, units, per-field validation, and the server's 422 messages
// shown beside each field. Only changed fields are sent; the server validates the whole set.
// A dangerous-but-valid change (409) is applied only after the trader ticks the confirmation;
// the executor's answer to an applied change is shown under the form.

import { api, ApiError } from "./api.js";
import { $, el, fmtTime, replace } from "./dom.js";

const RATIO = { kind: "ratio", unit: "ratio" };
const PERIOD = { kind: "period", unit: "candles" };
const RSI = { kind: "rsi", unit: "RSI 0–100" };
const GROUPS = [
  ["Risk", {
    RISK_PER_TRADE: { ...RATIO, label: "Risk per trade" },
    CAPITAL_ALLOCATION: { ...RATIO, label: "Capital allocation", inclusiveMax: true },
    STOP_LOSS_PERCENTAGE: { ...RATIO, label: "Stop-loss distance" },
    TAKE_PROFIT_PERCENTAGE: { ...RATIO, label: "Take-profit distance" },
  }],
  ["Indicators", {
    EMA_SHORT_PERIOD: { ...PERIOD, label: "EMA short period" },
    EMA_LONG_PERIOD: { ...PERIOD, label: "EMA long period" },
    EMA_FILTER_PERIOD: { ...PERIOD, label: "EMA filter period" },
    RSI_PERIOD: { ...PERIOD, label: "RSI period" },
    VOLUME_AVG_PERIOD: { ...PERIOD, label: "Volume average period" },
  }],
  ["Entry filters", {
    RSI_OVERBOUGHT: { ...RSI, label: "RSI overbought" },
    RSI_OVERSOLD: { ...RSI, label: "RSI oversold" },
    USE_EMA_FILTER: { kind: "bool", label: "Use the EMA trend filter" },
    USE_VOLUME_CONFIRMATION: { kind: "bool", label: "Require volume confirmation" },
  }],
];
const META = Object.assign({}, ...GROUPS.map(([, fields]) => fields));

/** A field's problem on its own (cross-field rules are the server's), or "" when fine. */
export function checkField(name, text) {
  const meta = META[name];
  if (!meta || meta.kind === "bool") return "";
  const value = String(text).trim();
  if (value === "") return "Required.";
  if (meta.kind === "period") {
    if (!/^\d+$/.test(value)) return "Enter a whole number of candles.";
    return Number(value) >= 2 ? "" : "Must be at least 2.";
  }
  if (!/^\d*\.?\d+$/.test(value)) return "Enter a number such as 0.02.";
  const number = Number(value);
  if (meta.kind === "ratio") {
    const ok = number > 0 && (meta.inclusiveMax ? number <= 1 : number < 1);
    return ok ? "" : meta.inclusiveMax ? "Must be above 0 and at most 1." : "Must be between 0 and 1, e.g. 0.02 for 2 %.";
  }
  return number > 0 && number < 100 ? "" : "Must be between 0 and 100.";
}

export class ParametersForm {
  constructor(answers, readOnly = false) {
    this.answers = answers;
    this.readOnly = readOnly; // a viewer sees the values, with nothing to edit or apply
    this.form = $("#parameters");
    this.current = null;
    this.version = 0;
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
  }

  async load() {
    try {
      const data = await api("/api/parameters");
      this.current = data.parameters;
      this.version = data.version;
      this.descriptions = Object.fromEntries(data.fields.map((f) => [f.name, f.description]));
      // The server's labels are the ones its error messages use.
      for (const f of data.fields) if (META[f.name] && f.label) META[f.name].label = f.label;
      $("#params-version").textContent = data.version
        ? `version ${data.version} · ${fmtTime(data.changed_at_ms)} (wall clock) · ${data.changed_by}`
        : "version 0 · start-up values";
      this.render();
    } catch (error) {
      this.say(`Parameters unavailable: ${error.message}`, true);
    }
    this.loadHistory();
  }

  render() {
    if (!this.current) return;
    const groups = GROUPS.map(([title, fields]) =>
      el("fieldset", {}, el("legend", {}, title), Object.entries(fields).map(([name, meta]) => this.field(name, meta))),
    );
    replace($("#params-fields"), groups);
    if (this.readOnly) for (const input of this.form.querySelectorAll("input")) input.disabled = true;
    this.dirty = false;
    this.showDangers([]);
  }

  field(name, meta) {
    const id = `p-${name}`;
    const value = this.current[name];
    const hint = el("p", { id: `h-${name}`, className: "hint" }, this.descriptions?.[name] ?? "");
    const error = el("p", { id: `e-${name}`, className: "field-error", dataset: { testid: `error-${name}` } });
    if (meta.kind === "bool") {
      const box = el("input", { id, name, type: "checkbox", checked: Boolean(value), "aria-describedby": `h-${name} e-${name}` });
      return el("div", { className: "field checkbox" }, el("div", { className: "input-row" }, box, el("label", { for: id }, meta.label)), hint, error);
    }
    const input = el("input", {
      id, name, type: "text", value: String(value), autocomplete: "off", spellcheck: false,
      inputMode: meta.kind === "period" ? "numeric" : "decimal", "aria-describedby": `h-${name} e-${name}`,
    });
    const unit = el("span", { className: "unit", id: `u-${name}` }, this.unitText(meta, value));
    return el("div", { className: "field" }, el("label", { for: id }, meta.label), el("div", { className: "input-row" }, input, unit), hint, error);
  }

  unitText(meta, value) {
    if (meta.kind !== "ratio") return meta.unit;
    const number = Number(value);
    return Number.isFinite(number) ? `= ${+(number * 100).toFixed(4)} %` : meta.unit;
  }

  onInput(input) {
    if (!input.name || !META[input.name]) return;
    this.showDangers([]);
    this.dirty = true;
    if (input.type !== "checkbox") {
      $(`#u-${input.name}`).textContent = this.unitText(META[input.name], input.value);
      this.showError(input.name, checkField(input.name, input.value));
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
    for (const [name, meta] of Object.entries(META)) {
      const input = this.form.elements[name];
      if (!input) continue;
      if (meta.kind === "bool") {
        if (input.checked !== Boolean(this.current[name])) values[name] = input.checked;
        continue;
      }
      const text = input.value.trim();
      if (text === String(this.current[name])) continue;
      values[name] = meta.kind === "ratio" ? text : meta.kind === "period" ? Number(text) : Number(text);
    }
    return values;
  }

  async submit() {
    let firstInvalid = null;
    for (const name of Object.keys(META)) {
      const input = this.form.elements[name];
      if (!input || input.type === "checkbox") continue;
      const problem = checkField(name, input.value);
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
      const path = confirmed ? "/api/parameters?confirm_dangerous=true" : "/api/parameters";
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
    if (data.version === this.version) return;
    if (this.dirty) this.say(`Parameters were changed elsewhere (version ${data.version}); discard to see them.`, true);
    else this.load();
  }

  async loadHistory() {
    try {
      const items = await api("/api/parameters/history?limit=20");
      replace($("#params-history"), items.length ? items.map((item) =>
        el("li", {},
          el("strong", {}, `v${item.version}`), ` · ${fmtTime(item.changed_at_ms)} · ${item.changed_by}: `,
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
