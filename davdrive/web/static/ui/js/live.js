// Live updates: follow the account's change feed through the long-poll and tell the app.
//   window "davdrive:changes"  detail = the new journal entries (every device, ours too)
//   window "davdrive:reset"    the cursor expired (410): the open folder should list again
// and keep the notification bell: the last 50 changes made by *other* devices, and shares.
//
// One loop per signed-in session (a generation number ends an old one), at most one request
// in flight; errors back off 1 s, 2 s, 4 s … 30 s; a 401 ends the loop (the app shows the
// sign-in page); while the tab is hidden the loop waits, and catches up from its cursor after.

import { get } from "./api.js";
import { icon } from "./icons.js";
import { filesHash } from "./router.js";
import { baseName, formatDate, formatDateFull, h, mount, parentPath, uid } from "./util.js";

const POLL_SECONDS = 30;
const MAX_BACKOFF = 30_000;
const KEEP = 50;
const GROUP = 3; // this many like changes in one folder from one device become one line
const BELL = "M12 22a2.2 2.2 0 0 0 2.2-2h-4.4a2.2 2.2 0 0 0 2.2 2zm6.5-6V11c0-3.2-1.8-5.8-4.9-6.5V3.8a1.6 1.6 0 0 0-3.2 0v.7C7.3 5.2 5.5 7.8 5.5 11v5L3.5 18v1h17v-1z";
const SHARE_KINDS = new Set(["shared", "unshared", "permissions_changed"]);
const VERBS = { created: "added", updated: "updated", deleted: "deleted", restored: "restored", upload_completed: "uploaded" };

let gen = 0; // bumped by start() and stop(): a loop of an older generation ends
let inflight = null; // the AbortController of the request in flight
let me = null; // this browser's device id (its own changes do not notify)
let events = []; // newest first
let unread = 0;
let ui = null; // the bell's elements while a shell shows it
let devices = null; // device id → name (GET /devices, the account's own devices)
let devicesAt = 0;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const emit = (type, detail) => window.dispatchEvent(new CustomEvent(type, { detail }));

/** Follow the feed for `session` ({device_id, ...}); ends a loop already running. */
export function start(session) {
  stop();
  me = session?.device_id ?? null;
  run(gen);
}

/** Stop following (sign-out, expired session), forget the notifications and the bell. */
export function stop() {
  gen += 1;
  inflight?.abort();
  inflight = null;
  events = [];
  unread = 0;
  devices = null;
  devicesAt = 0;
  if (ui) {
    document.removeEventListener("pointerdown", outside, true);
    clearInterval(ui.timer);
    ui = null;
  }
}

/** A GET of the loop (the one request in flight, aborted by stop()). */
async function call(g, path, params) {
  const ctrl = new AbortController();
  inflight = ctrl;
  let result;
  try {
    result = await get(path, params, { signal: ctrl.signal });
  } finally {
    if (inflight === ctrl) inflight = null;
  }
  if (g !== gen) throw new DOMException("stopped", "AbortError");
  return result;
}

function whenVisible() {
  return new Promise((resolve) => {
    const check = () => {
      if (document.hidden) return;
      document.removeEventListener("visibilitychange", check);
      resolve();
    };
    document.addEventListener("visibilitychange", check);
    check();
  });
}

async function run(g) {
  const at = { cursor: null }; // drain() moves it page by page (an error keeps what was read)
  let failures = 0;
  while (g === gen) {
    try {
      if (document.hidden) {
        await whenVisible();
        if (g !== gen) return;
      }
      if (at.cursor === null) {
        at.cursor = (await call(g, "/changes/latest")).cursor;
      }
      const r = await call(g, "/longpoll", { cursor: at.cursor, timeout: POLL_SECONDS });
      if (r?.changes) await drain(g, at);
      failures = 0;
      if (r?.backoff) await sleep(r.backoff * 1000); // every long-poll slot was busy
    } catch (err) {
      if (g !== gen || err.name === "AbortError") return;
      if (err.status === 401) {
        gen += 1; // the api module already sent the app to the sign-in page
        return;
      }
      failures += 1;
      if (err.status === 410) {
        at.cursor = null; // pruned or unknown: start from now, and list the folder again
        emit("davdrive:reset");
        if (failures === 1) continue;
      }
      const wait = err.retryAfter ? err.retryAfter * 1000 : 1000 * 2 ** (failures - 1);
      await sleep(Math.min(MAX_BACKOFF, wait));
    }
  }
}

/** Read every entry after `at.cursor` (page by page), announce them, advance the cursor. */
async function drain(g, at) {
  let more = true;
  while (more) {
    const page = await call(g, "/changes", { cursor: at.cursor, limit: 500 });
    at.cursor = page.cursor;
    more = page.has_more && page.changes.length > 0;
    if (page.changes.length) {
      emit("davdrive:changes", page.changes);
      note(g, page.changes).catch(() => {}); // names are looked up meanwhile
    }
  }
}

// -- notifications ------------------------------------------------------------------------------

async function deviceName(id) {
  if (id === null || id === undefined) return "Another device"; // the account password itself
  if (!devices?.has(id) && Date.now() - devicesAt > 60_000) {
    devicesAt = Date.now();
    try {
      const r = await get("/devices", null, { quiet401: true });
      devices = new Map(r.devices.map((d) => [d.id, d.name]));
    } catch {
      /* keep what we know */
    }
  }
  return devices?.get(id) || "Someone"; // a device of another account (a shared folder)
}

async function sharer(path) {
  try {
    const r = await get("/shares", { shared_with_me: true, path }, { quiet401: true });
    return r.shares[0]?.owner || "Someone";
  } catch {
    return "Someone";
  }
}

/** Turn the entries of other devices (and share events) into lines of the bell's list. */
async function note(g, entries) {
  const mine = (c) => me !== null && c.device === me && !SHARE_KINDS.has(c.kind);
  const groups = new Map();
  for (const c of entries) {
    if (mine(c) || !(c.kind in VERBS || c.kind === "moved" || SHARE_KINDS.has(c.kind))) continue;
    const key = c.kind === "moved" || SHARE_KINDS.has(c.kind) ? `#${c.id}` : `${c.device}|${c.kind}|${parentPath(c.path)}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(c);
  }
  if (!groups.size) return;
  const fresh = [];
  for (const list of groups.values()) {
    if (list.length >= GROUP) fresh.push(await line(list[list.length - 1], list.length));
    else for (const c of list) fresh.push(await line(c));
  }
  if (g !== gen) return; // signed out meanwhile
  events = fresh.concat(events).sort((a, b) => b.id - a.id).slice(0, KEEP);
  if (ui && !ui.panel.hidden) ui.seen += fresh.length; // in view already: marked, not counted
  else unread = Math.min(KEEP, unread + fresh.length);
  render();
}

async function line(c, count = 1) {
  const at = c.at;
  const base = { id: c.id, at };
  if (c.kind === "shared") return { ...base, text: `${await sharer(c.path)} shared ${c.path} with you`, href: filesHash(c.path) };
  if (c.kind === "unshared") return { ...base, text: `${c.path} is no longer shared with you`, href: filesHash(parentPath(c.path)) };
  if (c.kind === "permissions_changed") return { ...base, text: `Your access to ${c.path} changed`, href: filesHash(c.path) };
  const who = await deviceName(c.device);
  const folder = parentPath(c.path);
  const open = c.is_dir && c.kind !== "deleted" ? c.path : folder;
  if (count > 1) return { ...base, text: `${who} ${VERBS[c.kind]} ${count} items in ${folder}`, href: filesHash(folder) };
  if (c.kind === "moved") {
    const renamed = c.from_path && parentPath(c.from_path) === folder;
    const text = renamed ? `${who} renamed ${c.from_path} to ${baseName(c.path)}` : `${who} moved ${c.from_path || "an item"} to ${c.path}`;
    return { ...base, text, href: filesHash(open) };
  }
  return { ...base, text: `${who} ${VERBS[c.kind]} ${c.path}`, href: filesHash(open) };
}

/** "just now", "5 min ago", "3 h ago", then the date. */
function ago(iso) {
  const s = (Date.now() - new Date(iso).getTime()) / 1000;
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return formatDate(iso);
}

/** The bell button and its panel, for the app's header. */
export function bell() {
  const panelId = uid("notifications");
  const count = h("span", { class: "live-count", "aria-hidden": "true", hidden: true });
  const button = h("button", {
    type: "button", class: "icon-btn live-bell", "aria-label": "Notifications", "aria-expanded": "false",
    "aria-controls": panelId, title: "Notifications", onclick: () => toggle(),
  }, icon("file"), count);
  button.firstChild.firstChild.setAttribute("d", BELL);
  const list = h("ul", { class: "live-list", "aria-label": "Recent changes by other devices" });
  const clear = h("button", { type: "button", class: "btn small ghost", onclick: () => { events = []; unread = 0; render(); } }, "Clear");
  const panel = h("section", { id: panelId, class: "live-panel", hidden: true, "aria-label": "Notifications" },
    h("div", { class: "live-head" }, h("h2", {}, "Recent changes"), clear), list);
  const root = h("div", { class: "live", onkeydown: (e) => { if (e.key === "Escape" && !panel.hidden) { e.stopPropagation(); toggle(false); } } },
    button, panel);
  ui = { root, button, count, list, panel, clear, timer: null, seen: 0 };
  render();
  return root;
}

function outside(e) {
  if (ui && !ui.root.contains(e.target)) toggle(false, false);
}

function toggle(open = ui?.panel.hidden, refocus = true) {
  if (!ui) return;
  ui.panel.hidden = !open;
  ui.button.setAttribute("aria-expanded", String(open));
  clearInterval(ui.timer);
  if (open) {
    ui.seen = unread; // these stay marked while the panel is open
    unread = 0;
    document.addEventListener("pointerdown", outside, true);
    ui.timer = setInterval(render, 30_000); // the relative times move on
  } else {
    ui.seen = 0;
    document.removeEventListener("pointerdown", outside, true);
    if (refocus) ui.button.focus();
  }
  render();
}

function render() {
  if (!ui) return;
  ui.count.hidden = unread === 0;
  ui.count.textContent = unread > 9 ? "9+" : String(unread);
  ui.button.setAttribute("aria-label", unread ? `Notifications, ${unread} unread` : "Notifications");
  ui.clear.hidden = events.length === 0;
  if (ui.panel.hidden) return;
  mount(ui.list, events.length
    ? events.map((ev, i) => h("li", { class: ["live-item", i < ui.seen && "unread"] },
      h("a", { href: ev.href, onclick: () => toggle(false, false) }, ev.text),
      h("time", { datetime: ev.at, title: formatDateFull(ev.at) }, ago(ev.at))))
    : h("li", { class: "live-empty muted" }, "Nothing new from your other devices."));
}
