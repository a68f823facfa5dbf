// The share dialog of a file or folder: share with an account (read or read-write), create
// links (view / edit / upload / drop) with an optional password, expiry and maximum uses, copy
// and revoke them. Also the pieces the "Shared" view reuses (link cards, copy, labels).
//
// API: /shares (user shares; docs/SHARING.md) and /links. Errors show inside the dialog (a
// toast would sit under the modal's backdrop) with ApiError.userText.

import { del, get, post, request } from "./api.js";
import { confirmDialog, modal, toast } from "./dialogs.js";
import { icon, kindIcon } from "./icons.js";
import { h, mount, uid } from "./util.js";

// -- labels ---------------------------------------------------------------------------------------

/** The rights a share gets for "Can view" and "Can edit" (a file has nothing to add or delete). */
export function editNames(isDir) {
  return isDir ? ["read", "write", "create", "delete"] : ["read", "write"];
}
const FULL_DIR = 15;
const FULL_FILE = 3;

/** "view" (read only), "edit" (everything the node allows) or "custom" (other bits). */
export function accessOf(perms, isDir) {
  if (perms === 1) return "view";
  if (perms === (isDir ? FULL_DIR : FULL_FILE)) return "edit";
  return "custom";
}

/** A share's access for people: "Can view", "Can edit" or the rights' names. */
export function accessText(share) {
  const isDir = share.type === "folder";
  const a = accessOf(share.permissions, isDir);
  if (a === "view") return "Can view";
  if (a === "edit") return "Can edit";
  return `Custom: ${(share.permission_names || []).join(", ")}`;
}

/** The link types, what each gives, and whether a file may have it. */
export const LINK_KINDS = {
  view: { label: "View", file: true, text: "Anyone with the link can view and download." },
  edit: { label: "Edit", file: true, text: "Anyone with the link can view, download, change, add and delete." },
  upload: { label: "Upload", file: false, text: "Anyone with the link can see the contents and add files (nothing is overwritten)." },
  drop: { label: "File drop", file: false, text: "Anyone with the link can only add files; they see nothing inside." },
};

/** Whether the signed-in account may share `entry` (its own files; not what it received). */
export function canShare(entry) {
  if (!entry || entry.path === "/") return false;
  return !Array.isArray(entry.permissions) || entry.permissions.includes("share");
}

const dayFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });

/** "YYYY-MM-DD" (an <input type=date>) → the end of that day, local time, as RFC 3339. */
export function endOfDay(value) {
  const [y, m, d] = value.split("-").map(Number);
  return new Date(y, m - 1, d, 23, 59, 59).toISOString();
}

function todayValue(offsetDays = 0) {
  const t = new Date();
  t.setDate(t.getDate() + offsetDays);
  const pad = (n) => String(n).padStart(2, "0");
  return `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())}`;
}

/** A link's settings in words: "Password · Expires Mar 4, 2031 · 2 / 10 uses". */
export function linkFacts(link) {
  const out = [];
  if (link.label) out.push(link.label);
  if (link.has_password) out.push("Password");
  if (link.expires) out.push(`Expires ${dayFmt.format(new Date(link.expires))}`);
  out.push(link.max_uses ? `${link.uses} / ${link.max_uses} uses` : `${link.uses} use${link.uses === 1 ? "" : "s"}`);
  return out.join(" · ");
}

// -- copying ----------------------------------------------------------------------------------

/**
 * Copy `text`: the async clipboard where the page may use it (HTTPS or localhost), else the
 * old execCommand on the selected field. Resolves true when copied; when not, the text stays
 * selected in `input` for the user to copy.
 */
export async function copyText(text, input) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      /* denied: fall back */
    }
  }
  if (input) {
    input.focus();
    input.select();
    try {
      return document.execCommand("copy");
    } catch {
      return false;
    }
  }
  return false;
}

/** A readonly field with a link's URL (selects all on focus) and a "Copy link" button. */
export function urlField(url, name) {
  const input = h("input", {
    type: "text",
    class: "link-url",
    value: url,
    readonly: true,
    spellcheck: "false",
    "aria-label": name ? `Link URL of ${name}` : "Link URL",
    dataset: { selected: "1" }, // not dialogs.js's "select the stem" on focus
    onfocus: () => input.select(),
  });
  const label = h("span", { class: "label" }, "Copy link");
  const btn = h("button", {
    type: "button",
    class: "btn small",
    title: "Copy link",
    onclick: async () => {
      const ok = await copyText(url, input);
      label.textContent = ok ? "Copied" : "Press Ctrl+C";
      btn.classList.toggle("copied", ok);
      setTimeout(() => {
        label.textContent = "Copy link";
        btn.classList.remove("copied");
      }, ok ? 2000 : 4000);
    },
  }, icon("copy"), label);
  return h("div", { class: "link-copy" }, input, btn);
}

/**
 * A link as a card: type, settings, URL with "Copy link", "Revoke". `onRevoke()` after a
 * revoke; `showName` adds the item's name (the "Shared" view); `onError(err)` reports.
 */
export function linkCard(link, { onRevoke, onError, showName = false, extra = null } = {}) {
  const kind = LINK_KINDS[link.type]?.label || link.type;
  const revoke = h("button", {
    type: "button",
    class: "btn small danger",
    "aria-label": `Revoke ${kind.toLowerCase()} link${showName ? ` to ${link.name}` : ""}`,
    onclick: async () => {
      const ok = await confirmDialog("Revoke link", `Revoke this ${kind.toLowerCase()} link to "${link.name}"? Whoever has it can no longer use it. This cannot be undone.`, {
        okText: "Revoke",
        danger: true,
      });
      if (!ok) return;
      revoke.disabled = true;
      try {
        await del(`/links/${link.id}`);
        onRevoke?.(link);
      } catch (err) {
        revoke.disabled = false;
        onError?.(err);
      }
    },
  }, icon("close"), h("span", { class: "label" }, "Revoke"));
  return h("li", { class: "share-item link-item", "data-id": String(link.id), "data-type": link.type },
    h("div", { class: "share-line" },
      icon("link", "icon share-kind"),
      h("div", { class: "share-who" },
        showName ? h("span", { class: "share-name" }, link.name) : null,
        h("span", { class: ["kind-badge", `kind-${link.type}`] }, kind),
        h("span", { class: "muted share-facts" }, linkFacts(link))),
      extra,
      revoke),
    urlField(link.url, showName ? link.name : null));
}

// -- the dialog ----------------------------------------------------------------------------------

/**
 * The share dialog of `entry` ({path, name, is_dir}). Resolves when it is closed (true when
 * something was shared, changed or revoked).
 */
export async function openShareDialog(entry) {
  let changed = false;
  const isDir = !!entry.is_dir;
  const error = h("p", { class: "error share-error", role: "alert" });
  const fail = (err) => {
    error.textContent = err.userText || String(err);
  };
  const ok = () => {
    error.textContent = "";
    changed = true;
  };
  const stopEnter = (fn) => (e) => {
    // Enter in a field would submit the dialog's form (and close it): act instead
    if (e.key === "Enter") {
      e.preventDefault();
      e.stopPropagation();
      fn();
    }
  };

  // people
  const loginId = uid("share-login");
  const accessId = uid("share-access");
  const login = h("input", {
    id: loginId, type: "text", autocomplete: "off", spellcheck: "false", autocapitalize: "none",
    placeholder: "Their login", autofocus: true, dataset: { selected: "1" },
  });
  const access = h("select", { id: accessId },
    h("option", { value: "view" }, "Can view"),
    h("option", { value: "edit" }, "Can edit"));
  const shareBtn = h("button", { type: "button", class: "btn" }, icon("user"), h("span", {}, "Share"));
  const people = h("ul", { class: "share-items", "aria-label": "People with access" });
  const peopleNote = h("p", { class: "muted share-note" }, "Loading…");

  async function addShare() {
    const who = login.value.trim();
    if (!who) {
      error.textContent = "Type the login of the person to share with.";
      login.focus();
      return;
    }
    shareBtn.disabled = true;
    try {
      await post("/shares", { path: entry.path, user: who, permissions: access.value === "edit" ? editNames(isDir) : ["read"] });
      ok();
      login.value = "";
      await loadPeople();
    } catch (err) {
      fail(err);
    } finally {
      shareBtn.disabled = false;
    }
  }
  shareBtn.addEventListener("click", addShare);
  login.addEventListener("keydown", stopEnter(addShare));

  function personItem(s) {
    const a = accessOf(s.permissions, isDir);
    const sel = h("select", { "aria-label": `Access of ${s.user}` },
      h("option", { value: "view", selected: a === "view" }, "Can view"),
      h("option", { value: "edit", selected: a === "edit" }, "Can edit"),
      a === "custom" ? h("option", { value: "custom", selected: true, disabled: true }, accessText(s)) : null);
    sel.addEventListener("change", async () => {
      sel.disabled = true;
      try {
        await request(`/shares/${s.id}`, { method: "PATCH", json: { permissions: sel.value === "edit" ? editNames(isDir) : ["read"] } });
        ok();
      } catch (err) {
        fail(err);
      }
      await loadPeople();
    });
    const remove = h("button", {
      type: "button", class: "btn small danger", "aria-label": `Stop sharing with ${s.user}`,
      onclick: async () => {
        remove.disabled = true;
        try {
          await del(`/shares/${s.id}`);
          ok();
        } catch (err) {
          fail(err);
        }
        await loadPeople();
      },
    }, icon("close"), h("span", { class: "label" }, "Remove"));
    return h("li", { class: "share-item", "data-user": s.user },
      h("div", { class: "share-line" },
        icon("user", "icon share-kind"),
        h("div", { class: "share-who" }, h("span", { class: "share-name" }, s.user)),
        sel, remove));
  }

  async function loadPeople() {
    try {
      const { shares } = await get("/shares", { path: entry.path });
      mount(people, shares.map(personItem));
      peopleNote.textContent = shares.length ? "" : "Not shared with anyone yet.";
    } catch (err) {
      peopleNote.textContent = "";
      fail(err);
    }
  }

  // links
  const kinds = Object.entries(LINK_KINDS).filter(([, k]) => isDir || k.file);
  const kindId = uid("link-kind");
  const pwId = uid("link-pw");
  const expId = uid("link-exp");
  const maxId = uid("link-max");
  const kind = h("select", { id: kindId }, kinds.map(([value, k]) => h("option", { value }, k.label)));
  const kindText = h("p", { class: "muted share-note", id: uid("kind-text") }, LINK_KINDS.view.text);
  kind.setAttribute("aria-describedby", kindText.id);
  kind.addEventListener("change", () => {
    kindText.textContent = LINK_KINDS[kind.value].text;
  });
  const password = h("input", { id: pwId, type: "password", autocomplete: "new-password", placeholder: "Optional" });
  const expires = h("input", { id: expId, type: "date", min: todayValue() });
  const maxUses = h("input", { id: maxId, type: "number", min: "1", step: "1", inputmode: "numeric", placeholder: "No limit" });
  const createBtn = h("button", { type: "button", class: "btn" }, icon("link"), h("span", {}, "Create link"));
  const links = h("ul", { class: "share-items", "aria-label": "Links" });
  const linksNote = h("p", { class: "muted share-note" }, "Loading…");

  async function addLink() {
    const body = { path: entry.path, type: kind.value };
    if (password.value) body.password = password.value;
    if (expires.value) {
      const when = endOfDay(expires.value);
      if (new Date(when) <= new Date()) {
        error.textContent = "The expiry date must be today or later.";
        expires.focus();
        return;
      }
      body.expires = when;
    }
    if (maxUses.value.trim()) {
      const n = Number(maxUses.value);
      if (!Number.isInteger(n) || n < 1) {
        error.textContent = "Maximum uses must be a whole number of 1 or more.";
        maxUses.focus();
        return;
      }
      body.max_uses = n;
    }
    createBtn.disabled = true;
    try {
      await post("/links", body);
      ok();
      password.value = "";
      expires.value = "";
      maxUses.value = "";
      await loadLinks();
    } catch (err) {
      fail(err);
    } finally {
      createBtn.disabled = false;
    }
  }
  createBtn.addEventListener("click", addLink);
  for (const f of [password, expires, maxUses]) f.addEventListener("keydown", stopEnter(addLink));

  async function loadLinks() {
    try {
      const all = (await get("/links", { path: entry.path })).links.filter((l) => l.active);
      mount(links, all.map((l) => linkCard(l, { onRevoke: () => { ok(); loadLinks(); }, onError: fail })));
      linksNote.textContent = all.length ? "" : "No links yet.";
    } catch (err) {
      linksNote.textContent = "";
      fail(err);
    }
  }

  const field = (id, label, input, cls) => h("div", { class: ["share-field", cls] }, h("label", { for: id }, label), input);
  const peopleHead = uid("people-h");
  const linksHead = uid("links-h");
  const body = h("div", { class: "share" },
    h("p", { class: "share-target" }, kindIcon(entry), h("span", { class: "break" }, entry.path)),
    h("section", { class: "share-sec", "aria-labelledby": peopleHead },
      h("h3", { id: peopleHead }, icon("user"), "People"),
      h("div", { class: "share-form" },
        field(loginId, "Share with", login, "grow"),
        field(accessId, "Access", access),
        h("div", { class: "share-field" }, shareBtn)),
      people, peopleNote),
    h("section", { class: "share-sec", "aria-labelledby": linksHead },
      h("h3", { id: linksHead }, icon("link"), "Links"),
      field(kindId, "Link type", kind),
      kindText,
      h("div", { class: "share-form" },
        field(pwId, "Password", password, "grow"),
        field(expId, "Expires", expires),
        field(maxId, "Max uses", maxUses, "narrow"),
        h("div", { class: "share-field" }, createBtn)),
      links, linksNote),
    error);

  loadPeople();
  loadLinks();
  await modal({
    title: `Share "${entry.name}"`,
    className: "share-dialog",
    body,
    actions: [{ label: "Done", value: "done", primary: true }],
  });
  if (changed && !document.querySelector("dialog[open]")) toast(`Sharing of "${entry.name}" updated`);
  return changed;
}
