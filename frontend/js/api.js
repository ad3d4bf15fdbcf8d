// Calls to the dashboard API. A 401 anywhere means the session ended: the app shows the login.

export class ApiError extends Error {
  constructor(status, body) {
    super(typeof body?.detail === "string" ? body.detail : `request failed (${status})`);
    this.status = status;
    this.body = body;
  }
}

/** JSON request to `path`; throws ApiError on a non-2xx answer, dispatches "unauthorized" on 401. */
export async function api(path, { method = "GET", body, signal } = {}) {
  const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin", signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error?.name === "AbortError") throw error;
    window.dispatchEvent(new CustomEvent("server-unreachable"));
    throw new ApiError(0, { detail: "the dashboard server cannot be reached" });
  }
  // Any answer means the server is back: notices about it clear themselves.
  window.dispatchEvent(new CustomEvent("server-reachable"));
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text };
  }
  if (response.status === 401 && path !== "/api/login") {
    window.dispatchEvent(new CustomEvent("unauthorized"));
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    error.retryAfter = Number(response.headers.get("Retry-After") || 0);
    throw error;
  }
  return data;
}
