// Small DOM helpers. Text is always set with textContent, never parsed as HTML.

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

// Numbers and times have one home each (format.js, clock.js); re-exported for the panels.
export { fmtAge, fmtPct, fmtPrice, fmtQty as fmtAmount } from "./format.js";
export { fmtTime } from "./clock.js";

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
