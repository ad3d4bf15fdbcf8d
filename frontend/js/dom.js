// Small DOM and formatting helpers. Text is always set with textContent, never parsed as HTML.

/** Create an element: el("td", {className: "num", title: "x"}, "text", childNode). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("aria-") || key === "role" || key === "for") node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replace every child of `node` with `children`. */
export function replace(node, ...children) {
  node.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined));
}

export const $ = (selector) => document.querySelector(selector);

/** A price as text with a sensible number of decimals (input: decimal text). */
export function fmtPrice(text) {
  if (text === null || text === undefined || text === "") return "—";
  const value = Number(text);
  if (!Number.isFinite(value)) return String(text);
  const digits = value >= 1000 ? 2 : value >= 1 ? 4 : 8;
  return value.toLocaleString("en-US", { minimumFractionDigits: Math.min(2, digits), maximumFractionDigits: digits });
}

/** An amount of an asset (decimal text), trailing zeros trimmed. */
export function fmtAmount(text) {
  if (text === null || text === undefined || text === "") return "—";
  const value = Number(text);
  if (!Number.isFinite(value)) return String(text);
  return value.toLocaleString("en-US", { maximumFractionDigits: 8 });
}

/** A percentage with sign, e.g. "+2.35 %". */
export function fmtPct(value) {
  if (value === null || value === undefined || value === "") return "—";
  const number = Number(value);
  if (!Number.isFinite(number)) return String(value);
  return `${number > 0 ? "+" : ""}${number.toFixed(2)} %`;
}

/** How long ago, from a duration in ms: "3 s", "4 min", "2 h". */
export function fmtAge(ms) {
  if (ms === null || ms === undefined) return "never";
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 90) return `${seconds} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 3600)} h`;
}

/** Epoch ms as local date and time, "2025-05-20 14:03:07". */
export function fmtTime(ms) {
  if (!ms) return "—";
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Call `fn` at most once per `ms`, after the last call (coalesces bursts of events). */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** Ask for confirmation in the page's modal dialog; resolves true when confirmed. */
export function confirmAction(text, confirmLabel = "Confirm") {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = text;
  $("#confirm-ok").textContent = confirmLabel;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}
