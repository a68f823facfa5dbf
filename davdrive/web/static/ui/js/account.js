// The account page (#/account): storage (a stacked quota bar: current files, older versions,
// trash), the devices signed in to the account, and app passwords: create one (shown once, with
// the addresses and how to mount the drive, and a QR code for the Nextcloud phone apps), revoke.
//
// Registering a device and revoking another one need the account password (the server refuses
// them with a device's credentials, and a browser session is a device): the page asks for it in
// a dialog and sends that one request with `Authorization: Basic` (the cookie is then ignored
// and no CSRF token is needed). The password lives only in the dialog's field until the
// request is answered; it is never stored.

import { API, ApiError, del, get } from "./api.js";
import { confirmDialog, modal, toast } from "./dialogs.js";
import { icon } from "./icons.js";
import * as session from "./session.js";
import { formatDate, formatDateFull, formatSize, h, mount, uid } from "./util.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const UNLIMITED = 2 ** 50; // a quota of 1 PiB or more (or none at all) is shown as "no limit"
const QUIET_ZONE = 4; // light modules around a QR code, as the standard asks
const PARTS = [
  { key: "current", label: "Current files" },
  { key: "history", label: "Older versions" },
  { key: "trash", label: "Trash" },
];

// The QR encoder is loaded only when an app password is about to be made.
let qrModule = null;
function loadQr() {
  qrModule ||= import("./vendor/qrcodegen.js").catch((err) => {
    qrModule = null;
    throw err;
  });
  return qrModule;
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  el.append(...children);
  return el;
}

/** "Basic base64(login:password)", UTF-8 as the server decodes it. */
function basicAuth(login, password) {
  let bin = "";
  for (const b of new TextEncoder().encode(`${login}:${password}`)) bin += String.fromCharCode(b);
  return `Basic ${btoa(bin)}`;
}

/**
 * One API request authenticated with the account password instead of the session. Sent without
 * cookies (`credentials: "omit"`): the server would ignore the cookie anyway, and a 401 of such a
 * request makes no browser show its own password prompt (the Fetch standard prompts only for
 * requests that include credentials).
 */
async function withPassword(method, path, login, password, json) {
  const headers = { "X-Requested-With": "XMLHttpRequest", Authorization: basicAuth(login, password) };
  if (json !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(`${API}${path}`, {
      method,
      headers,
      body: json === undefined ? undefined : JSON.stringify(json),
      credentials: "omit",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "network", "The server could not be reached.");
  }
  const text = await resp.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  if (!resp.ok) {
    const retry = parseInt(resp.headers.get("Retry-After") || "", 10);
    throw new ApiError(resp.status, body?.error?.code, body?.error?.message, Number.isFinite(retry) ? retry : null);
  }
  return body;
}

/**
 * "Authentication required": ask for the account password and run `action(password)`. A wrong
 * password (401) keeps the dialog open with an error. `action` may return {error} to close the
 * dialog and hand the error to the caller. Resolves {result} or {error}, or null when cancelled.
 */
async function passwordDialog({ title = "Authentication required", message, okText = "Confirm", danger = false, action }) {
  const id = uid("account-password");
  const input = h("input", { id, type: "password", name: "password", autocomplete: "current-password", autofocus: true, spellcheck: "false" });
  const error = h("p", { class: "error", role: "alert" });
  let outcome = null;
  let busy = false;
  const v = await modal({
    title,
    className: "auth-dialog",
    body: [h("p", {}, message), h("label", { for: id }, "Your account password"), input, error],
    actions: [{ label: "Cancel", value: "cancel" }, { label: okText, value: "ok", primary: true, danger }],
    onSubmit: async (val) => {
      if (val !== "ok") return true;
      if (busy) return false;
      if (!input.value) {
        error.textContent = "Enter your account password.";
        input.focus();
        return false;
      }
      busy = true;
      error.textContent = "Checking…";
      try {
        const r = await action(input.value);
        outcome = r && r.error ? { error: r.error } : { result: r };
        return true;
      } catch (err) {
        input.value = "";
        input.focus();
        if (err.status === 401) error.textContent = "Wrong password. Enter the password you sign in with.";
        else if (err.status === 403) error.textContent = "Enter your account password (an app password cannot do this).";
        else error.textContent = err.userText || String(err);
        return false;
      } finally {
        busy = false;
      }
    },
  });
  input.value = ""; // the dialog is gone; so is the password
  return v === "ok" ? outcome : null;
}

/** A read-only field with a Copy button. */
function copyField(label, value, { secret = false, name, what = label.toLowerCase() } = {}) {
  const id = uid("copy");
  const input = h("input", {
    id, type: "text", readonly: true, value, spellcheck: "false", autocomplete: "off",
    class: ["copy-value", secret && "secret"], "data-field": name || null,
  });
  input.addEventListener("focus", () => input.select());
  const btn = h("button", { type: "button", class: "btn small", "aria-label": `Copy ${what}`, onclick: () => copy(input, label) },
    icon("copy"), h("span", { class: "label" }, "Copy"));
  return h("div", { class: "copy-field" }, h("label", { for: id }, label), h("div", { class: "copy-row" }, input, btn));
}

async function copy(input, label) {
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    input.focus();
    input.select();
    // not a secure context (plain http on a LAN): the old way
    if (!document.execCommand || !document.execCommand("copy")) {
      toast("Copying failed: select the text and copy it yourself.", "error");
      return;
    }
  }
  toast(`${label} copied`);
}

/** The QR code of `text` as an inline SVG (one path of dark modules; colours from the CSS). */
function qrSvg(QrCode, text) {
  const qr = QrCode.encodeText(text, QrCode.Ecc.MEDIUM);
  const n = qr.size + QUIET_ZONE * 2;
  let d = "";
  for (let y = 0; y < qr.size; y++) {
    for (let x = 0; x < qr.size; x++) {
      if (!qr.getModule(x, y)) continue;
      let run = 1;
      while (x + run < qr.size && qr.getModule(x + run, y)) run++;
      d += `M${x + QUIET_ZONE} ${y + QUIET_ZONE}h${run}v1h-${run}z`;
      x += run - 1;
    }
  }
  const ecc = "LMQH"[qr.errorCorrectionLevel.ordinal];
  return svg("svg", {
    class: "qr", viewBox: `0 0 ${n} ${n}`, role: "img", "shape-rendering": "crispEdges",
    "aria-label": "QR code for the Nextcloud app", "data-version": qr.version, "data-mask": qr.mask,
    "data-ecc": ecc, "data-size": qr.size, "data-border": QUIET_ZONE,
  }, svg("rect", { class: "qr-light", width: n, height: n }), svg("path", { class: "qr-dark", d }));
}

/** Nextcloud's login QR format (its "app password" dialog makes the same one). */
export function nextcloudLoginUrl(login, password, server) {
  return `nc://login/user:${login}&password:${password}&server:${server}`;
}

export class AccountView {
  constructor(container) {
    this.container = container;
    this.account = null;
    this.devices = [];
    this.gen = 0;
    this.quotaBox = h("div", { class: "quota", "aria-live": "polite" }, h("p", { class: "muted" }, "Loading…"));
    this.devStatus = h("p", { class: "muted", "aria-live": "polite" });
    this.devList = h("ul", { class: "device-list", "aria-label": "Devices" });
    const nameId = uid("device-name");
    this.nameInput = h("input", { id: nameId, type: "text", name: "device-name", maxlength: "100", autocomplete: "off", placeholder: "e.g. Laptop, Phone", spellcheck: "false" });
    this.nameError = h("p", { class: "error", role: "alert" });
    this.createBtn = h("button", { type: "submit", class: "btn primary" }, icon("link"), h("span", {}, "Create app password"));
    this.secretBox = h("div", { class: "new-secret-box" });
    mount(container, h("div", { class: "account" }, h("div", { class: "account-inner" },
      h("div", { class: "browse-head" }, h("h1", { class: "view-title" }, "Account")),
      h("section", { class: "acct-section", "aria-labelledby": "acct-storage" },
        h("h2", { id: "acct-storage" }, "Storage"), this.quotaBox),
      h("section", { class: "acct-section", "aria-labelledby": "acct-devices" },
        h("h2", { id: "acct-devices" }, "Devices and app passwords"),
        h("p", { class: "muted hint" }, "Every program, computer or phone that reaches your files gets its own app password, so you can cut one off without changing your password. Browsers signed in to this web app are listed too."),
        this.devStatus, this.devList,
        h("form", { class: "new-device", onsubmit: (e) => this.create(e) },
          h("h3", {}, "New app password"),
          h("label", { for: nameId }, "Device name"),
          h("div", { class: "new-device-row" }, this.nameInput, this.createBtn),
          this.nameError),
        this.secretBox))));
  }

  show() {
    document.title = "Account – davdrive";
    this.load();
  }

  unmount() {
    this.gen += 1;
    this.clearSecret();
    this.container.replaceChildren();
  }

  get login() {
    return session.user()?.login || this.account?.login || "";
  }

  load() {
    this.loadAccount();
    this.loadDevices();
  }

  async loadAccount() {
    const gen = this.gen;
    try {
      const a = await get("/account");
      if (gen !== this.gen) return;
      this.account = a;
      this.renderQuota(a);
    } catch (err) {
      if (err.status !== 401 && gen === this.gen) mount(this.quotaBox, h("p", { class: "error" }, err.userText || String(err)));
    }
  }

  async loadDevices() {
    const gen = this.gen;
    if (!this.devices.length) this.devStatus.textContent = "Loading…";
    try {
      const { devices } = await get("/devices");
      if (gen !== this.gen) return;
      this.devices = devices;
      this.renderDevices(devices);
    } catch (err) {
      if (err.status !== 401 && gen === this.gen) this.devStatus.textContent = err.userText || String(err);
    }
  }

  // -- storage -------------------------------------------------------------------------------
  renderQuota(a) {
    const usage = a.usage || { current: a.used, history: 0, trash: 0 };
    const limited = Number.isFinite(a.quota) && a.quota > 0 && a.quota < UNLIMITED;
    const total = PARTS.reduce((sum, p) => sum + (usage[p.key] || 0), 0);
    const scale = Math.max(limited ? a.quota : 0, total, 1);
    const pct = (n) => (n / scale) * 100;
    const summary = limited
      ? [h("strong", {}, formatSize(a.used)), ` of ${formatSize(a.quota)} used`,
        h("span", { class: "muted" }, ` · ${formatSize(a.available)} free (${Math.min(100, Math.round(pct(a.used)))} % used)`)]
      : [h("strong", {}, formatSize(a.used)), " used", h("span", { class: "muted" }, " · no storage limit")];
    const label = PARTS.map((p) => `${p.label} ${formatSize(usage[p.key] || 0)}`).join(", ");
    const bar = svg("svg", {
      class: ["quota-bar", limited ? "limited" : "unlimited"].join(" "), viewBox: "0 0 100 10", preserveAspectRatio: "none",
      role: "img", "aria-label": `${label}${limited ? `; quota ${formatSize(a.quota)}` : "; no limit"}`,
      "data-scale": scale,
    });
    bar.append(svg("rect", { class: "quota-track", x: 0, y: 0, width: 100, height: 10 }));
    let x = 0;
    for (const p of PARTS) {
      const bytes = usage[p.key] || 0;
      const w = pct(bytes);
      bar.append(svg("rect", { class: `quota-part part-${p.key}`, "data-part": p.key, "data-bytes": bytes, x, y: 0, width: w, height: 10 },
        svg("title", {}, `${p.label}: ${formatSize(bytes)}`)));
      x += w;
    }
    const legend = h("ul", { class: "quota-legend" },
      PARTS.map((p) => {
        const bytes = usage[p.key] || 0;
        return h("li", { "data-part": p.key, "data-bytes": String(bytes), title: `${bytes.toLocaleString()} bytes` },
          h("span", { class: `swatch part-${p.key}`, "aria-hidden": "true" }),
          h("span", { class: "legend-label" }, p.label),
          h("span", { class: "legend-size" }, formatSize(bytes)));
      }),
      limited ? h("li", { "data-part": "free", "data-bytes": String(a.available), title: `${a.available.toLocaleString()} bytes` },
        h("span", { class: "swatch part-free", "aria-hidden": "true" }),
        h("span", { class: "legend-label" }, "Free"),
        h("span", { class: "legend-size" }, formatSize(a.available))) : null);
    const notes = [
      "Only current files count against the quota; older versions and the trash are shown for what they take.",
      a.quota_rule ? `Shared folders: ${a.quota_rule}.` : null,
      Number.isFinite(a.stored) ? `On the server's disk (after deduplication and compression) your files take ${formatSize(a.stored)}.` : null,
    ].filter(Boolean);
    mount(this.quotaBox,
      h("p", { class: "quota-summary", "data-used": String(a.used), "data-quota": limited ? String(a.quota) : "unlimited" }, summary),
      bar, legend, notes.map((t) => h("p", { class: "muted hint small" }, t)));
  }

  // -- devices -------------------------------------------------------------------------------
  renderDevices(devices) {
    const list = [...devices].sort((a, b) => (b.current - a.current) || String(b.last_seen || "").localeCompare(String(a.last_seen || "")));
    this.devStatus.textContent = list.length ? "" : "No devices yet.";
    mount(this.devList, list.map((d) => {
      const kind = d.kind === "browser" ? "Browser session" : "App password";
      const meta = [kind, `added ${formatDate(d.created)}`, d.last_seen ? `last used ${formatDate(d.last_seen)}` : "never used"];
      return h("li", { class: ["device", d.current && "current"], "data-id": String(d.id), "data-kind": d.kind, "data-name": d.name },
        h("span", { class: "device-icon", "aria-hidden": "true" }, icon(d.kind === "browser" ? "user" : "drive")),
        h("div", { class: "device-main" },
          h("div", { class: "device-title" }, h("span", { class: "device-name break" }, d.name),
            d.current ? h("span", { class: "badge this-browser" }, "This browser") : null),
          h("div", { class: "device-meta muted", title: `Added ${formatDateFull(d.created)}${d.last_seen ? `; last used ${formatDateFull(d.last_seen)}` : ""}` }, meta.join(" · "))),
        h("button", {
          type: "button", class: "btn small danger", onclick: () => this.revoke(d),
          "aria-label": d.current ? "Sign out this browser (revoke its session)" : `Revoke ${d.name}`,
        }, icon(d.current ? "logout" : "trash"), h("span", { class: "label" }, d.current ? "Sign out" : "Revoke")));
    }));
  }

  async revoke(d) {
    if (d.current) {
      const ok = await confirmDialog("Sign out this browser", "Revoke this browser's session? You will be signed out here.", { okText: "Sign out", danger: true });
      if (!ok) return;
      try {
        await del(`/devices/${d.id}`);
      } catch (err) {
        if (err.status !== 401) toast(err.userText || String(err), "error");
      }
      // the session is gone: the next request meets 401 and the app shows the sign-in page
      get("/account").catch(() => {});
      return;
    }
    const r = await passwordDialog({
      title: "Revoke device",
      message: `"${d.name}" loses access at once: its app password and token stop working. Confirm with your account password.`,
      okText: "Revoke",
      danger: true,
      action: async (password) => {
        try {
          return await withPassword("DELETE", `/devices/${d.id}`, this.login, password);
        } catch (err) {
          if (err.status === 404) return null; // already gone
          throw err;
        }
      },
    });
    if (!r) return;
    toast(`Revoked "${d.name}"`);
    this.loadDevices();
  }

  async create(e) {
    e.preventDefault();
    const name = this.nameInput.value.trim();
    this.nameError.textContent = "";
    if (!name) {
      this.nameError.textContent = "Give the device a name (e.g. Laptop or Phone) so you know what to revoke later.";
      this.nameInput.focus();
      return;
    }
    if (this.devices.some((d) => d.name === name)) {
      this.nameError.textContent = `A device named "${name}" exists already; choose another name.`;
      this.nameInput.focus();
      return;
    }
    loadQr().catch(() => {}); // fetch the QR encoder while the user types the password
    const login = this.login;
    const r = await passwordDialog({
      message: `To create an app password for "${name}", confirm with your account password.`,
      okText: "Create",
      action: async (password) => {
        try {
          return await withPassword("POST", "/devices", login, password, { name });
        } catch (err) {
          if (err.status === 400 || err.status === 409) return { error: err };
          throw err;
        }
      },
    });
    if (!r) return;
    if (r.error) {
      this.nameError.textContent = r.error.status === 409 ? `A device named "${name}" exists already; choose another name.` : r.error.userText;
      return;
    }
    this.nameInput.value = "";
    await this.showSecret(login, r.result);
    this.loadDevices();
    this.loadAccount();
  }

  // -- the new app password, shown once --------------------------------------------------------
  clearSecret() {
    this.secretBox.replaceChildren();
  }

  async showSecret(login, dev) {
    const origin = location.origin;
    const dav = `${origin}/dav/${encodeURIComponent(login)}/`;
    const https = location.protocol === "https:";
    const hostPath = `${location.host}/dav/${encodeURIComponent(login)}/`;
    const qrBox = h("figure", { class: "qr-box" });
    const titleId = uid("secret-title");
    const card = h("section", { class: "new-secret", "aria-labelledby": titleId, tabindex: "-1" },
      h("div", { class: "new-secret-head" },
        h("h3", { id: titleId }, `App password for "${dev.name}"`),
        h("button", { type: "button", class: "btn small", onclick: () => this.clearSecret() }, icon("check"), h("span", {}, "Done"))),
      h("p", { class: "notice" }, "Copy the app password now: it is shown only this once. Use it instead of your account password in the program or app below."),
      h("div", { class: "secret-grid" },
        h("div", { class: "secret-fields" },
          copyField("Login", login, { name: "login" }),
          copyField("App password", dev.app_password, { secret: true, name: "app-password" }),
          copyField("WebDAV address", dav, { name: "dav-url", what: "WebDAV address" }),
          copyField("Server address", origin, { name: "server" })),
        qrBox),
      h("div", { class: "howto" },
        h("h4", {}, "Connect a computer or phone"),
        h("details", { open: true },
          h("summary", {}, "Windows"),
          h("ol", {},
            h("li", {}, "In File Explorer, right-click ", h("em", {}, "This PC"), " and choose ", h("em", {}, "Map network drive…")),
            h("li", {}, "Folder: ", h("code", {}, dav), "; tick ", h("em", {}, "Connect using different credentials"), "."),
            h("li", {}, "Sign in with your login and the app password.")),
          h("p", { class: ["small", https ? "muted" : "warn"] }, https
            ? "Windows sends passwords only over HTTPS; this server uses HTTPS. Explorer downloads files up to about 50 MB unless FileSizeLimitInBytes is raised."
            : "This server is reached over plain HTTP: Windows refuses to send passwords (Basic authentication) without HTTPS unless its BasicAuthLevel setting is changed. Ask the administrator for an HTTPS address.")),
        h("details", {},
          h("summary", {}, "macOS"),
          h("ol", {},
            h("li", {}, "In the Finder choose ", h("em", {}, "Go → Connect to Server…"), " (⌘K)."),
            h("li", {}, "Server address: ", h("code", {}, dav), ", then ", h("em", {}, "Connect"), "."),
            h("li", {}, "Choose ", h("em", {}, "Registered User"), " and enter your login and the app password."))),
        h("details", {},
          h("summary", {}, "Linux"),
          h("ul", {},
            h("li", {}, "GNOME Files: ", h("em", {}, "Other Locations → Connect to Server"), ": ", h("code", {}, `${https ? "davs" : "dav"}://${hostPath}`), "."),
            h("li", {}, "KDE Dolphin: type ", h("code", {}, `${https ? "webdavs" : "webdav"}://${hostPath}`), " in the location bar."),
            h("li", {}, "davfs2: ", h("code", {}, `sudo mount -t davfs ${dav} /mnt/drive`), " (it asks for the login and the app password; or put them in /etc/davfs2/secrets)."))),
        h("details", {},
          h("summary", {}, "Nextcloud apps (desktop and phone)"),
          h("ul", {},
            h("li", {}, "Desktop client (Windows, macOS, Linux): server address ", h("code", {}, origin), ", then log in with your login and the app password."),
            h("li", {}, "Phone (Android, iOS): in the Nextcloud app choose to log in and scan the QR code; or enter the server address, login and app password by hand.")))));
    mount(this.secretBox, card);
    card.focus();
    const text = nextcloudLoginUrl(login, dev.app_password, origin);
    try {
      const { QrCode } = await loadQr();
      mount(qrBox, qrSvg(QrCode, text),
        h("figcaption", { class: "muted small" }, "Scan with the Nextcloud app on your phone to add this account. It holds the app password: keep it private."));
    } catch (err) {
      mount(qrBox, h("figcaption", { class: "error small" }, `The QR code could not be drawn: ${err.message || err}`));
    }
  }
}
