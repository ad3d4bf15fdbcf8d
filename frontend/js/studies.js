// The optimiser's studies: verdict, overfitting figures, best parameters, report link; a form
// starting a study (operators), its progress, and "Apply" of a study's best to a chosen symbol.

import { api, ApiError } from "./api.js";
import { $, confirmAction, el, fmtPct, replace } from "./dom.js";
import { fieldsOf } from "./param-schema.js";

const POLL_MS = 1000;

const num = (v, digits = 2) => (v === null || v === undefined ? "—" : Number(v).toFixed(digits));
const VERDICT_CLASS = { "likely overfit": "neg", promising: "pos", inconclusive: "muted" };

function params(values) {
  if (!values) return "no feasible trial";
  return Object.entries(values)
    .map(([k, v]) => `${k}=${typeof v === "number" && !Number.isInteger(v) ? Number(v.toPrecision(4)) : v}`)
    .join(" ");
}

const problemText = (error) => (error instanceof ApiError && Array.isArray(error.body?.detail)
  ? error.body.detail.map((p) => `${p.label ?? p.field}: ${p.message}`).join("; ")
  : error.message);

export class StudiesPanel {
  constructor(answers = null) {
    this.box = $("#studies");
    this.answers = answers;
    this.catalogue = { strategies: [], symbols: [] };
    this.form = $("#study-form");
    this.timer = null;
    if (this.form) {
      this.form.addEventListener("submit", (event) => { event.preventDefault(); this.start(); });
      $("#study-strategy").addEventListener("change", () => this.renderSpace());
    }
  }

  readOnly() {
    return document.body.dataset.role === "viewer";
  }

  /** The strategies' schemas and the traded symbols, for the start form and the apply choice. */
  async loadCatalogue() {
    try {
      this.catalogue = await api("/api/strategies");
    } catch {
      return; // the list still shows; the form stays empty
    }
    if (!this.form || this.readOnly()) return;
    this.form.hidden = false;
    replace($("#study-strategy"), this.catalogue.strategies.map((s) => el("option", { value: s.name }, s.name)));
    replace($("#study-symbols"), this.catalogue.symbols.map((s) =>
      el("label", { className: "inline" },
        el("input", { type: "checkbox", name: "symbol", value: s.symbol, dataset: { testid: `study-symbol-${s.symbol}` } }),
        ` ${s.symbol}`)));
    this.renderSpace();
  }

  renderSpace() {
    const chosen = this.catalogue.strategies.find((s) => s.name === $("#study-strategy").value);
    const fields = fieldsOf(chosen?.parameters).filter((f) => f.kind !== "choice");
    replace($("#study-space"), fields.map((f) => {
      const row = el("div", { className: "space-row", dataset: { testid: `study-space-${f.name}`, name: f.name } },
        el("label", { className: "inline" },
          el("input", { type: "checkbox", name: `search-${f.name}`, dataset: { testid: `study-search-${f.name}` } }),
          ` ${f.label} (${f.name})`));
      if (f.kind !== "bool") {
        const low = f.exclusiveMin ?? f.min;
        const high = f.exclusiveMax ?? f.max;
        row.append(
          el("input", { type: "text", inputMode: "decimal", name: `low-${f.name}`, placeholder: low ?? "lowest",
            "aria-label": `${f.label}: lowest`, dataset: { testid: `study-low-${f.name}` } }),
          el("input", { type: "text", inputMode: "decimal", name: `high-${f.name}`, placeholder: high ?? "highest",
            "aria-label": `${f.label}: highest`, dataset: { testid: `study-high-${f.name}` } }));
      }
      row.append(el("span", { className: "field-error small", dataset: { testid: `study-error-space.${f.name}` } }));
      return row;
    }));
  }

  showErrors(problems) {
    for (const node of this.form.querySelectorAll(".field-error")) node.textContent = "";
    const general = [];
    for (const p of problems) {
      const field = p.field ?? String(p.loc?.at(-1) ?? "");
      const node = this.form.querySelector(`[data-testid="study-error-${CSS.escape(field)}"]`);
      if (node) node.textContent = p.message;
      else general.push(`${p.label ?? field}: ${p.message}`);
    }
    return general;
  }

  async start() {
    const message = $("#study-form-message");
    const space = {};
    for (const row of this.form.querySelectorAll(".space-row")) {
      const name = row.dataset.name;
      if (!this.form.elements[`search-${name}`].checked) continue;
      const low = this.form.elements[`low-${name}`]?.value.trim() ?? "";
      const high = this.form.elements[`high-${name}`]?.value.trim() ?? "";
      space[name] = {};
      if (low !== "") space[name].low = Number(low);
      if (high !== "") space[name].high = Number(high);
    }
    const body = {
      strategy: $("#study-strategy").value,
      symbols: [...this.form.querySelectorAll("input[name=symbol]:checked")].map((i) => i.value),
      space,
      trials: Number($("#study-trials").value),
      walk_forward: Number($("#study-folds").value),
    };
    this.showErrors([]);
    message.textContent = "Starting…";
    try {
      const run = await api("/api/studies", { method: "POST", body });
      message.textContent = `Study ${run.study} started.`;
      this.follow();
    } catch (error) {
      if (error instanceof ApiError && error.status === 422 && Array.isArray(error.body?.detail)) {
        const general = this.showErrors(error.body.detail);
        message.textContent = general.length ? `Not started: ${general.join("; ")}` : "Not started: see the fields.";
      } else {
        message.textContent = `Not started: ${error.message}`;
      }
    }
  }

  /** Poll the running study until it ends; its row appears in the list then. */
  async follow() {
    clearTimeout(this.timer);
    const node = $("#study-progress");
    let run;
    try {
      run = await api("/api/studies/run");
    } catch (error) {
      node.textContent = `Progress unavailable: ${error.message}`;
      this.timer = setTimeout(() => this.follow(), POLL_MS * 5);
      return;
    }
    node.dataset.state = run.state;
    if (run.state === "running") {
      const best = run.best === null || run.best === undefined ? "" : `, best ${num(run.best, 3)}`;
      node.textContent = `${run.study}: ${run.done ?? 0} of ${run.total} trials${best}`;
      this.timer = setTimeout(() => this.follow(), POLL_MS);
    } else if (run.state === "finished") {
      node.textContent = `${run.study}: finished (${run.total} trials).`;
      await this.load();
    } else if (run.state === "failed") {
      node.textContent = `${run.study}: failed: ${run.error}`;
    }
  }

  async load() {
    if (!this.catalogue.strategies.length) await this.loadCatalogue();
    let studies;
    try {
      studies = await api("/api/studies");
    } catch (error) {
      replace(this.box, el("p", { className: "muted" }, `Studies unavailable: ${error.message}`));
      return;
    }
    if (!studies.length) {
      replace(this.box, el("p", { className: "muted", dataset: { testid: "studies-empty" } },
        "No study yet: run make optimize."));
      return;
    }
    const head = ["Study", "Verdict", "PBO", "Deflated Sharpe", "Walk-forward", "Best Sharpe", "Best parameters", "", ""];
    const rows = studies.map((s) => el("tr", { dataset: { testid: "study-row", study: s.key } },
      el("td", {}, `${s.name} (${s.symbols.join(", ")} ${s.interval ?? ""}, ${s.trials} trials)`),
      el("td", { className: VERDICT_CLASS[s.verdict] ?? "", dataset: { testid: "study-verdict" }, title: s.reasons.join("; ") },
        s.verdict ?? "—"),
      el("td", { dataset: { testid: "study-pbo" } }, num(s.pbo)),
      el("td", { dataset: { testid: "study-dsr" } }, num(s.deflated_sharpe)),
      el("td", {}, s.walk_forward_return_pct === null ? "—" : fmtPct(s.walk_forward_return_pct)),
      el("td", {}, num(s.best_metrics?.sharpe)),
      el("td", { className: "small", dataset: { testid: "study-params" } }, params(s.best_params)),
      el("td", {}, s.report_url
        ? el("a", { href: s.report_url, target: "_blank", rel: "noopener", dataset: { testid: "study-report" } }, "Report")
        : ""),
      el("td", {}, this.applyControls(s)),
    ));
    replace(this.box, el("table", { className: "data" },
      el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))), el("tbody", {}, ...rows)),
      el("p", { className: "small", dataset: { testid: "study-message" }, "aria-live": "polite" }),
      el("p", { className: "answer small", dataset: { testid: "study-answer" }, "aria-live": "polite" }));
  }

  // A viewer never sees them; the api refuses a viewer anyway.
  applyControls(study) {
    if (this.readOnly() || !study.best_params) return "";
    const symbols = this.catalogue.symbols.filter((s) => s.strategy === study.strategy || !study.strategy);
    const select = el("select", { "aria-label": "Apply to symbol", dataset: { testid: "study-apply-symbol" } },
      ...symbols.map((s) => el("option", { value: s.symbol, selected: study.symbols.includes(s.symbol) || undefined }, s.symbol)));
    const button = el("button", { type: "button", dataset: { testid: "study-apply" } }, "Apply");
    button.addEventListener("click", () => this.apply(study, select.value));
    return el("span", { className: "inline" }, select, " ", button);
  }

  async apply(study, symbol) {
    const overfit = study.verdict === "likely overfit";
    const target = symbol || "the shared set";
    const text = overfit
      ? `This study is likely overfit (${study.reasons.join("; ")}). Apply its parameters to ${target} anyway?`
      : `Apply ${params(study.best_params)} to ${target}?`;
    if (!(await confirmAction(text, overfit ? "Apply anyway" : "Apply"))) return;
    await this.send(study, symbol, overfit, false);
  }

  async send(study, symbol, overfit, dangerous) {
    const message = this.box.querySelector("[data-testid=study-message]");
    const query = new URLSearchParams();
    if (symbol) query.set("symbol", symbol);
    if (overfit) query.set("confirm_overfit", "true");
    if (dangerous) query.set("confirm_dangerous", "true");
    try {
      const path = `/api/studies/${encodeURIComponent(study.key)}/apply?${query}`;
      const done = await api(path, { method: "POST" });
      const where = done.symbol ? `${done.symbol}'s` : "the shared";
      message.textContent = done.command_id
        ? `Applied ${study.name} as ${where} parameter version ${done.version}.`
        : `${study.name}'s parameters are already ${where} set (version ${done.version}).`;
      const answer = this.box.querySelector("[data-testid=study-answer]");
      if (done.command_id && this.answers && answer) this.answers.track(done.command_id, answer);
    } catch (error) {
      if (error instanceof ApiError && error.status === 409 && Array.isArray(error.body?.dangers)) {
        const list = error.body.dangers.map((d) => `${d.labels.map((l, i) => `${l} (${d.fields[i]})`).join(", ")}: ${d.message}`);
        message.textContent = `Dangerous settings: ${list.join("; ")}.`;
        if (await confirmAction(`These settings are dangerous: ${list.join("; ")}. Apply them to ${symbol || "the shared set"}?`, "Apply dangerous settings")) {
          await this.send(study, symbol, overfit, true);
        } else {
          message.textContent = "Not applied: the dangerous settings were not confirmed.";
        }
      } else {
        message.textContent = `Not applied: ${problemText(error)}`;
      }
    }
  }
}
