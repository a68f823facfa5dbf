// The JSON API client: one fetch wrapper that adds the CSRF token, maps errors to ApiError,
// and tells the app when the session is gone (401). Uploads with progress use xhrSend().

export const API = "/api/v1";

let csrfToken = null;
let onUnauthorized = () => {};

/** Remember the CSRF token of the current session (null after logout). */
export function setCsrf(token) {
  csrfToken = token || null;
}

/** Called (once per 401) when a request finds the session expired. */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/** Human messages for the statuses a user meets; the server's message follows. */
const STATUS_TEXT = {
  400: "The request was not valid.",
  401: "Your session has ended; please sign in again.",
  403: "You are not allowed to do that.",
  404: "Not found (it may have been moved or deleted).",
  409: "An item with that name already exists, or it changed meanwhile.",
  410: "This is no longer available.",
  412: "The item changed meanwhile.",
  413: "The file is too large.",
  423: "The item is locked by another program.",
  429: "Too many attempts; wait a moment.",
  507: "Not enough space: the storage quota is exceeded.",
};

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message || STATUS_TEXT[status] || `Request failed (${status})`);
    this.status = status;
    this.code = code || "error";
    this.retryAfter = retryAfter;
  }

  /** A one-line text for the user: our wording for the status, then the server's detail. */
  get userText() {
    const ours = STATUS_TEXT[this.status];
    if (this.status === 429 && this.retryAfter) {
      return `Too many attempts; wait ${this.retryAfter} s and try again.`;
    }
    if (!ours || this.message === ours) return this.message;
    return [413, 507, 423, 403].includes(this.status) ? ours : `${ours} ${this.message}`;
  }
}

/** Build "/api/v1/x?path=a&path=b" from a params object (arrays repeat the key). */
export function apiUrl(path, params) {
  const qs = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value === undefined || value === null) continue;
    for (const v of Array.isArray(value) ? value : [value]) qs.append(key, String(v));
  }
  const q = qs.toString();
  return `${API}${path}${q ? `?${q}` : ""}`;
}

/** Headers every request sends; non-GET ones carry the CSRF token. */
export function baseHeaders(method, extra) {
  const headers = { "X-Requested-With": "XMLHttpRequest", ...(extra || {}) };
  if (method !== "GET" && method !== "HEAD" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  return headers;
}

async function errorFrom(resp) {
  let code = null;
  let message = null;
  try {
    const body = await resp.json();
    code = body?.error?.code;
    message = body?.error?.message;
  } catch {
    /* not JSON */
  }
  const retry = parseInt(resp.headers.get("Retry-After") || "", 10);
  return new ApiError(resp.status, code, message, Number.isFinite(retry) ? retry : null);
}

/**
 * fetch() against the API. Options: method, params, json (a body to send as JSON), body,
 * headers, raw (return the Response untouched on success), quiet401 (don't call the handler).
 * Returns the parsed JSON (or null for an empty answer).
 */
export async function request(path, opts = {}) {
  const method = opts.method || (opts.json !== undefined ? "POST" : "GET");
  const headers = baseHeaders(method, opts.headers);
  let body = opts.body;
  if (opts.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.json);
  }
  let resp;
  try {
    resp = await fetch(apiUrl(path, opts.params), {
      method,
      headers,
      body,
      credentials: "same-origin",
      cache: "no-store",
      signal: opts.signal,
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "network", "The server could not be reached.");
  }
  if (!resp.ok) {
    const err = await errorFrom(resp);
    if (resp.status === 401 && !opts.quiet401) onUnauthorized(err);
    throw err;
  }
  if (opts.raw) return resp;
  if (resp.status === 204) return null;
  const text = await resp.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path, params, opts) => request(path, { ...opts, params });
export const post = (path, json, opts) => request(path, { ...opts, method: "POST", json });
export const del = (path, params, opts) => request(path, { ...opts, method: "DELETE", params });

/**
 * Send a body with XMLHttpRequest (fetch has no upload progress). Returns {promise, abort}.
 * The promise resolves to {status, headers: fn(name), json} or rejects with an ApiError
 * (status 0 "aborted" when abort() was called).
 */
export function xhrSend(method, url, body, { headers, onProgress } = {}) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open(method, url);
    for (const [k, v] of Object.entries(baseHeaders(method, headers))) xhr.setRequestHeader(k, v);
    if (onProgress) xhr.upload.addEventListener("progress", (e) => onProgress(e.loaded, e.total));
    xhr.addEventListener("load", () => {
      let json = null;
      try {
        json = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        /* not JSON */
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve({ status: xhr.status, header: (n) => xhr.getResponseHeader(n), json });
        return;
      }
      const retry = parseInt(xhr.getResponseHeader("Retry-After") || "", 10);
      const err = new ApiError(xhr.status, json?.error?.code, json?.error?.message, Number.isFinite(retry) ? retry : null);
      if (xhr.status === 401) onUnauthorized(err);
      reject(err);
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "network", "The connection to the server broke.")));
    xhr.addEventListener("abort", () => reject(new ApiError(0, "aborted", "Cancelled.")));
    xhr.send(body);
  });
  return { promise, abort: () => xhr.abort() };
}

// -- the calls the app makes (thin names over the routes) ----------------------------------------

export const files = {
  /** Every entry of a folder: pages of `limit`, `onPage(entries)` as each arrives. */
  async listAll(path, onPage, { limit = 2000, signal } = {}) {
    const all = [];
    let cursor = null;
    do {
      const page = await get("/files/list", { path, limit, cursor }, { signal });
      all.push(...page.entries);
      if (onPage) onPage(page.entries, page.has_more);
      cursor = page.has_more ? page.cursor : null;
    } while (cursor);
    return all;
  },
  metadata: (path) => get("/files/metadata", { path }),
  /** The metadata, or null when nothing is at `path`. */
  async stat(path) {
    try {
      return await get("/files/metadata", { path });
    } catch (err) {
      if (err.status === 404) return null;
      throw err;
    }
  },
  createFolder: (path) => post("/files/create_folder", { path }),
  delete: (path) => post("/files/delete", { path }),
  move: (from, to, overwrite = false) => post("/files/move", { from, to, overwrite }),
  copy: (from, to, overwrite = false) => post("/files/copy", { from, to, overwrite }),
  revisions: (path, cursor, limit = 50) => get("/files/list_revisions", { path, limit, cursor }),
  restore: (path, rev) => post("/files/restore", { path, rev }),
  pin: (path, rev, pinned) => post("/files/pin", { path, rev, pinned }),
  downloadUrl: (path, rev) => apiUrl("/files/download", { path, rev }),
  zipUrl: (paths) => apiUrl("/files/download_zip", { path: paths }),
};

export const trash = {
  list: () => get("/trash"),
  restore: (id) => post("/trash/restore", { id }),
  purge: (id) => del("/trash", { id }),
  empty: () => del("/trash"),
};

export const session = {
  current: () => get("/session", null, { quiet401: true }),
  login: (login, password) => post("/session", { login, password }, { quiet401: true }),
  logout: () => del("/session", null, { quiet401: true }),
};
