// The sign-in screen.

import { api, ApiError } from "./api.js";
import { $ } from "./dom.js";

/** Show the login form; resolves once signed in. */
export function showLogin() {
  $("#app").hidden = true;
  $("#login").hidden = false;
  const form = $("#login-form");
  const input = $("#login-password");
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
        await api("/api/login", { method: "POST", body: { password: input.value } });
        input.value = "";
        $("#login").hidden = true;
        $("#app").hidden = false;
        form.onsubmit = null;
        resolve();
      } catch (e) {
        if (e instanceof ApiError && e.status === 429) {
          error.textContent = `Too many failed attempts. Try again in ${e.retryAfter || "a few"} s.`;
        } else if (e instanceof ApiError && e.status === 401) {
          error.textContent = e.retryAfter ? `Wrong password. Wait ${e.retryAfter} s before the next try.` : "Wrong password.";
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

export async function logout() {
  try {
    await api("/api/logout", { method: "POST" });
  } finally {
    window.location.reload();
  }
}
