// The sign-in screen.

import { api, ApiError } from "./api.js";
import { $ } from "./dom.js";

/** Show the login form; resolves with the session (account and role) once signed in. */
export function showLogin() {
  $("#app").hidden = true;
  $("#login").hidden = false;
  const form = $("#login-form");
  const input = $("#login-password");
  const account = $("#login-account");
  const error = $("#login-error");
  input.value = "";
  input.focus();
  return new Promise((resolve) => {
    form.onsubmit = async (event) => {
      event.preventDefault();
      error.textContent = "";
      if (!input.value) {
        error.textContent = "Enter the dashboard password.";
        return;
      }
      const button = form.querySelector("button");
      button.disabled = true;
      try {
        const session = await api("/api/login", { method: "POST", body: { password: input.value, account: account.value.trim() } });
        input.value = "";
        $("#login").hidden = true;
        $("#app").hidden = false;
        form.onsubmit = null;
        resolve(session);
      } catch (e) {
        if (e instanceof ApiError && e.status === 429) {
          error.textContent = `Too many failed attempts. Try again in ${e.retryAfter || "a few"} s.`;
        } else if (e instanceof ApiError && e.status === 401) {
          error.textContent = e.retryAfter ? `Wrong account or password. Wait ${e.retryAfter} s before the next try.` : "Wrong account or password.";
        } else {
          error.textContent = e.message;
        }
        input.select();
      } finally {
        button.disabled = false;
      }
    };
  });
}

/** Show who is signed in; a viewer gets no control that would act (commands, parameters, backtest). */
export function applyRole(session) {
  const role = session?.role ?? "viewer";
  document.body.dataset.role = role;
  $("#signed-in").textContent = session?.account ? `${session.account} · ${role}` : "";
  const readOnly = role === "viewer";
  for (const node of document.querySelectorAll("[data-acting]")) {
    if (readOnly) node.hidden = true;
  }
  $("#read-only").hidden = !readOnly;
  return readOnly;
}

export async function logout() {
  try {
    await api("/api/logout", { method: "POST" });
  } finally {
    window.location.reload();
  }
}
