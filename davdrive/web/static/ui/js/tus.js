// A tus 1.0 client (core + creation + termination) for large files, resumable across page
// reloads: the upload URL of each file is remembered in localStorage under a fingerprint
// (target path, name, size, lastModified). Picking or dropping the same file for the same
// place again asks the server for its offset (HEAD) and goes on from there.

import { ApiError, API, baseHeaders, xhrSend } from "./api.js";

const STORE = "davdrive.tus";
const TUS = { "Tus-Resumable": "1.0.0" };
export const CHUNK = 4 * 1024 * 1024; // one PATCH; the offset the server keeps moves by these

function load() {
  try {
    return JSON.parse(localStorage.getItem(STORE)) || {};
  } catch {
    return {};
  }
}

function save(all) {
  localStorage.setItem(STORE, JSON.stringify(all));
}

export function fingerprint(file, path) {
  return JSON.stringify([path, file.name, file.size, file.lastModified]);
}

/** The unfinished uploads this browser remembers: [{key, url, path, name, size, lastModified}]. */
export function pending() {
  return Object.entries(load()).map(([key, v]) => ({ key, ...v }));
}

export function forget(key) {
  const all = load();
  delete all[key];
  save(all);
}

function remember(key, record) {
  const all = load();
  all[key] = record;
  save(all);
}

/** The remembered entry for this file at this path, if any. */
export function lookup(file, path) {
  return load()[fingerprint(file, path)] || null;
}

function b64(text) {
  const bytes = new TextEncoder().encode(text);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

async function tusFetch(method, url, headers = {}) {
  let resp;
  try {
    resp = await fetch(url, { method, headers: baseHeaders(method, { ...TUS, ...headers }), credentials: "same-origin", cache: "no-store" });
  } catch {
    throw new ApiError(0, "network", "The server could not be reached.");
  }
  if (!resp.ok) {
    let body = null;
    try {
      body = await resp.json();
    } catch {
      /* HEAD has no body */
    }
    const retry = parseInt(resp.headers.get("Retry-After") || "", 10);
    throw new ApiError(resp.status, body?.error?.code, body?.error?.message, Number.isFinite(retry) ? retry : null);
  }
  return resp;
}

/** Ask the server to drop a remembered session (the "discard" of the resume list). */
export async function discard(key) {
  const rec = load()[key];
  forget(key);
  if (!rec) return;
  try {
    await tusFetch("DELETE", rec.url);
  } catch {
    /* already gone */
  }
}

/**
 * One resumable upload of `file` to `path`. `onProgress(sent, total)` as bytes go out.
 * After start() resolves: `resumedFrom` is the offset the server had (0 for a new session).
 */
export class TusUpload {
  constructor(file, path, { onProgress } = {}) {
    this.file = file;
    this.path = path;
    this.key = fingerprint(file, path);
    this.onProgress = onProgress || (() => {});
    this.current = null; // the running PATCH
    this.cancelled = false;
    this.resumedFrom = 0;
  }

  /** The session URL and its offset: the remembered one if the server still has it. */
  async open() {
    const rec = load()[this.key];
    if (rec) {
      try {
        const r = await tusFetch("HEAD", rec.url);
        const length = Number(r.headers.get("Upload-Length"));
        const offset = Number(r.headers.get("Upload-Offset"));
        if (length === this.file.size && Number.isFinite(offset)) return { url: rec.url, offset };
      } catch (err) {
        if (err.status === 401) throw err;
        // 404/410: expired or finished elsewhere; start over
      }
      forget(this.key);
    }
    const meta = [
      `path ${b64(this.path)}`,
      `filename ${b64(this.file.name)}`,
      `mtime ${b64(String(this.file.lastModified / 1000))}`,
    ].join(",");
    const r = await tusFetch("POST", `${API}/uploads`, {
      "Upload-Length": String(this.file.size),
      "Upload-Metadata": meta,
    });
    const url = new URL(r.headers.get("Location"), location.href).pathname;
    remember(this.key, {
      url,
      path: this.path,
      name: this.file.name,
      size: this.file.size,
      lastModified: this.file.lastModified,
      created: Date.now(),
    });
    return { url, offset: 0 };
  }

  /** Upload everything from the server's offset; resolves with the new revision (or null). */
  async start() {
    let { url, offset } = await this.open();
    this.resumedFrom = offset;
    this.onProgress(offset, this.file.size);
    let retries = 0;
    let rev = null;
    while (offset < this.file.size || (this.file.size === 0 && rev === null)) {
      if (this.cancelled) throw new ApiError(0, "aborted", "Cancelled.");
      const end = Math.min(this.file.size, offset + CHUNK);
      const base = offset;
      this.current = xhrSend("PATCH", url, this.file.slice(offset, end), {
        headers: { ...TUS, "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" },
        onProgress: (loaded) => this.onProgress(base + loaded, this.file.size),
      });
      try {
        const r = await this.current.promise;
        offset = Number(r.header("Upload-Offset"));
        rev = r.header("X-Davdrive-Rev") || rev;
        retries = 0;
        if (this.file.size === 0) break;
      } catch (err) {
        if (err.code === "aborted" || this.cancelled) throw new ApiError(0, "aborted", "Cancelled.");
        if (err.status === 404 || err.status === 410) forget(this.key);
        // a broken connection or an offset conflict: ask where the server is, then go on
        if ((err.status === 0 || err.status === 409) && retries < 5) {
          retries += 1;
          await new Promise((res) => setTimeout(res, 500 * retries));
          const h = await tusFetch("HEAD", url);
          offset = Number(h.headers.get("Upload-Offset"));
          continue;
        }
        throw err;
      } finally {
        this.current = null;
      }
      this.onProgress(offset, this.file.size);
    }
    forget(this.key);
    return rev;
  }

  /** Stop sending; the session stays on the server (to resume later) unless `terminate`. */
  abort(terminate = false) {
    this.cancelled = true;
    this.current?.abort();
    if (terminate) discard(this.key);
  }
}
