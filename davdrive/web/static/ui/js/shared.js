// The "Shared" view (#/shared): what other accounts shared with me (open it where it is mounted
// in my files, or remove it), and what I share: my user shares and my links (copy, revoke,
// manage in the share dialog).

import { del, get, request } from "./api.js";
import { confirmDialog, toast } from "./dialogs.js";
import { icon, kindIcon } from "./icons.js";
import { filesHash } from "./router.js";
import { accessOf, accessText, editNames, linkCard, openShareDialog } from "./sharing.js";
import { formatDate, formatDateFull, h, mount, parentPath, uid } from "./util.js";

const SHARE_KINDS = new Set(["shared", "unshared", "permissions_changed"]);

/** Where to open a node in the browse view: a folder itself, a file in its folder. */
function openHash(path, isDir) {
  return filesHash(isDir ? path : parentPath(path));
}

/** A node as {path, name, is_dir} for the icon and the share dialog. */
function asEntry(x) {
  return { path: x.path, name: x.name, is_dir: x.type === "folder" || x.item_type === "folder" };
}

export class SharedView {
  constructor(container) {
    this.container = container;
    this.seq = 0;
    const section = (title, ...children) => {
      const id = uid("sec");
      return h("section", { class: "shared-sec", "aria-labelledby": id }, h("h2", { id }, title), ...children);
    };
    this.withMeStatus = h("p", { class: "muted share-note", "aria-live": "polite" });
    this.withMe = h("ul", { class: "share-items", "aria-label": "Shared with me" });
    this.byMeStatus = h("p", { class: "muted share-note", "aria-live": "polite" });
    this.people = h("ul", { class: "share-items", "aria-label": "My shares with people" });
    this.peopleNote = h("p", { class: "muted share-note" });
    this.links = h("ul", { class: "share-items", "aria-label": "My links" });
    this.linksNote = h("p", { class: "muted share-note" });
    this.onLive = (e) => {
      if (e.type === "davdrive:reset" || e.detail.some((c) => SHARE_KINDS.has(c.kind))) this.load();
    };
    window.addEventListener("davdrive:changes", this.onLive);
    window.addEventListener("davdrive:reset", this.onLive);
    mount(container, h("div", { class: "shared" },
      h("div", { class: "browse-head" }, h("h1", { class: "view-title" }, "Shared")),
      h("p", { class: "muted hint" }, "Share a file or folder from My files: select it and choose Share."),
      section("Shared with me", this.withMeStatus, this.withMe),
      section("Shared by me", this.byMeStatus,
        h("h3", { class: "shared-sub" }, icon("user"), "People"), this.people, this.peopleNote,
        h("h3", { class: "shared-sub" }, icon("link"), "Links"), this.links, this.linksNote)));
  }

  show() {
    document.title = "Shared – davdrive";
    this.load();
  }

  unmount() {
    window.removeEventListener("davdrive:changes", this.onLive);
    window.removeEventListener("davdrive:reset", this.onLive);
    this.seq += 1;
    this.container.replaceChildren();
  }

  async load() {
    const seq = ++this.seq;
    if (!this.loaded) {
      this.withMeStatus.textContent = "Loading…";
      this.byMeStatus.textContent = "Loading…";
    }
    const [received, given, links] = await Promise.allSettled([
      get("/shares", { shared_with_me: "true" }),
      get("/shares"),
      get("/links"),
    ]);
    if (seq !== this.seq) return;
    this.loaded = true;
    const why = (r) => (r.reason?.status === 401 ? "" : r.reason?.userText || String(r.reason));
    if (received.status === "fulfilled") this.renderReceived(received.value.shares);
    else this.withMeStatus.textContent = why(received);
    if (given.status === "fulfilled" && links.status === "fulfilled") {
      this.byMeStatus.textContent = "";
      this.renderGiven(given.value.shares);
      this.renderLinks(links.value.links.filter((l) => l.active));
    } else {
      this.byMeStatus.textContent = why(given.status === "rejected" ? given : links);
    }
  }

  renderReceived(shares) {
    this.withMeStatus.textContent = shares.length ? "" : "Nobody has shared anything with you yet.";
    mount(this.withMe, shares.map((s) => {
      const isDir = s.type === "folder";
      const where = s.mount_path || s.path;
      const remove = h("button", {
        type: "button", class: "btn small danger", "aria-label": `Remove ${s.name} from my files`,
        onclick: () => this.decline(s),
      }, icon("close"), h("span", { class: "label" }, "Remove"));
      return h("li", { class: "share-item", "data-id": String(s.id), "data-name": s.name },
        h("div", { class: "share-line" },
          kindIcon({ name: s.name, is_dir: isDir }),
          h("div", { class: "share-who" },
            h("a", { class: "share-name", href: openHash(where, isDir), title: `Open ${where}` }, s.name),
            h("span", { class: "muted share-facts" },
              `From ${s.owner} · ${accessText(s)}`,
              where !== `/${s.name}` ? ` · in ${where}` : "",
              h("span", { class: "hide-narrow", title: formatDateFull(s.created) }, ` · ${formatDate(s.created)}`))),
          h("a", { class: "btn small", href: openHash(where, isDir) }, icon(isDir ? "folder" : "info"), h("span", { class: "label" }, "Open")),
          remove));
    }));
  }

  renderGiven(shares) {
    this.peopleNote.textContent = shares.length ? "" : "You have not shared anything with other people.";
    mount(this.people, shares.map((s) => {
      const isDir = s.type === "folder";
      const a = accessOf(s.permissions, isDir);
      const sel = h("select", { "aria-label": `Access of ${s.user} to ${s.name}` },
        h("option", { value: "view", selected: a === "view" }, "Can view"),
        h("option", { value: "edit", selected: a === "edit" }, "Can edit"),
        a === "custom" ? h("option", { value: "custom", selected: true, disabled: true }, accessText(s)) : null);
      sel.addEventListener("change", async () => {
        sel.disabled = true;
        try {
          await request(`/shares/${s.id}`, { method: "PATCH", json: { permissions: sel.value === "edit" ? editNames(isDir) : ["read"] } });
          toast(`${s.user} ${sel.value === "edit" ? "can now edit" : "can now only view"} "${s.name}"`);
        } catch (err) {
          toast(err.userText || String(err), "error");
        }
        this.load();
      });
      const revoke = h("button", {
        type: "button", class: "btn small danger", "aria-label": `Stop sharing ${s.name} with ${s.user}`,
        onclick: () => this.revokeShare(s),
      }, icon("close"), h("span", { class: "label" }, "Revoke"));
      return h("li", { class: "share-item", "data-id": String(s.id), "data-name": s.name, "data-user": s.user },
        h("div", { class: "share-line" },
          kindIcon({ name: s.name, is_dir: isDir }),
          h("div", { class: "share-who" },
            h("a", { class: "share-name", href: openHash(s.path, isDir), title: s.path }, s.name),
            h("span", { class: "muted share-facts" }, `With ${s.user}`,
              h("span", { class: "hide-narrow" }, ` · ${s.path}`))),
          sel, this.manageButton(asEntry(s)), revoke));
    }));
  }

  /** "Manage": the share dialog of that item; the lists are read again when it closes. */
  manageButton(entry) {
    return h("button", {
      type: "button", class: "btn small", "aria-label": `Manage sharing of ${entry.name}`,
      onclick: async () => {
        await openShareDialog(entry);
        this.load();
      },
    }, icon("share"), h("span", { class: "label" }, "Manage"));
  }

  renderLinks(links) {
    this.linksNote.textContent = links.length ? "" : "You have no active links.";
    mount(this.links, links.map((l) => linkCard(l, {
      showName: true,
      onRevoke: () => {
        toast(`Revoked the link to "${l.name}"`);
        this.load();
      },
      onError: (err) => toast(err.userText || String(err), "error"),
      extra: this.manageButton(asEntry(l)),
    })));
  }

  async revokeShare(s) {
    const ok = await confirmDialog("Stop sharing", `Stop sharing "${s.name}" with ${s.user}? It disappears from their files.`, {
      okText: "Stop sharing",
      danger: true,
    });
    if (!ok) return;
    try {
      await del(`/shares/${s.id}`);
      toast(`"${s.name}" is no longer shared with ${s.user}`);
    } catch (err) {
      toast(err.userText || String(err), "error");
    }
    this.load();
  }

  async decline(s) {
    const ok = await confirmDialog("Remove shared item", `Remove "${s.name}" (shared by ${s.owner}) from your files? Their files stay; only ${s.owner} can share it again.`, {
      okText: "Remove",
      danger: true,
    });
    if (!ok) return;
    try {
      await del(`/shares/${s.id}`);
      toast(`Removed "${s.name}"`);
    } catch (err) {
      toast(err.userText || String(err), "error");
    }
    this.load();
  }
}
