// The trash: what was deleted (newest first), restore, delete forever, empty.

import { trash } from "./api.js";
import { confirmDialog, toast } from "./dialogs.js";
import { icon, kindIcon } from "./icons.js";
import { formatDate, formatDateFull, formatSize, h, mount, parentPath } from "./util.js";

export class TrashView {
  constructor(container) {
    this.container = container;
    this.status = h("p", { class: "muted", "aria-live": "polite" });
    this.emptyBtn = h("button", { type: "button", class: "btn danger", onclick: () => this.emptyAll() }, icon("trash"), h("span", { class: "label" }, "Empty trash"));
    this.body = h("tbody");
    this.table = h("table", { class: "data-table trash-table" },
      h("caption", { class: "visually-hidden" }, "Deleted items"),
      h("thead", {}, h("tr", {},
        h("th", { scope: "col", class: "icon-cell" }, h("span", { class: "visually-hidden" }, "Type")),
        h("th", { scope: "col" }, "Name"),
        h("th", { scope: "col", class: "hide-narrow" }, "Original location"),
        h("th", { scope: "col", class: "size hide-narrow" }, "Size"),
        h("th", { scope: "col", class: "modified" }, "Deleted"),
        h("th", { scope: "col", class: "actions" }, h("span", { class: "visually-hidden" }, "Actions")))),
      this.body);
    mount(container, h("div", { class: "trash" },
      h("div", { class: "browse-head" },
        h("h1", { class: "view-title" }, "Trash"),
        h("div", { class: "toolbar", role: "toolbar", "aria-label": "Trash actions" }, this.emptyBtn)),
      h("p", { class: "muted hint" }, "Deleted items stay here until you delete them forever or the server's retention time runs out."),
      this.status, h("div", { class: "table-wrap" }, this.table)));
  }

  show() {
    document.title = "Trash – davdrive";
    this.load();
  }

  unmount() {
    this.container.replaceChildren();
  }

  async load() {
    this.status.textContent = "Loading…";
    try {
      const { items } = await trash.list();
      this.render(items);
    } catch (err) {
      if (err.status !== 401) this.status.textContent = err.userText || String(err);
    }
  }

  render(items) {
    this.status.textContent = items.length ? `${items.length} item${items.length === 1 ? "" : "s"}` : "The trash is empty.";
    this.emptyBtn.disabled = !items.length;
    this.table.hidden = !items.length;
    mount(this.body, items.map((t) => h("tr", { "data-id": t.id, "data-name": t.name },
      h("td", { class: "icon-cell" }, kindIcon(t)),
      h("td", { class: "name", title: t.path }, t.name),
      h("td", { class: "hide-narrow muted break" }, parentPath(t.path)),
      h("td", { class: "size hide-narrow" }, t.is_dir ? "" : formatSize(t.size)),
      h("td", { class: "modified", title: formatDateFull(t.deleted) }, formatDate(t.deleted)),
      h("td", { class: "actions" },
        h("button", { type: "button", class: "btn small", onclick: () => this.restore(t), "aria-label": `Restore ${t.name}` }, icon("restore"), h("span", { class: "label" }, "Restore")),
        h("button", { type: "button", class: "btn small danger", onclick: () => this.purge(t), "aria-label": `Delete ${t.name} forever` }, icon("trash"), h("span", { class: "label" }, "Delete forever"))))));
  }

  async restore(t) {
    try {
      const node = await trash.restore(t.id);
      toast(`Restored "${t.name}" to ${parentPath(node?.path || t.path)}`);
    } catch (err) {
      toast(err.status === 409 ? `Cannot restore "${t.name}": an item of that name is in the way, or its folder is gone.` : err.userText || String(err), "error");
    }
    this.load();
  }

  async purge(t) {
    const ok = await confirmDialog("Delete forever", `Delete "${t.name}" forever? This cannot be undone.`, { okText: "Delete forever", danger: true });
    if (!ok) return;
    try {
      await trash.purge(t.id);
    } catch (err) {
      toast(err.userText || String(err), "error");
    }
    this.load();
  }

  async emptyAll() {
    const ok = await confirmDialog("Empty trash", "Delete everything in the trash forever? This cannot be undone.", { okText: "Empty trash", danger: true });
    if (!ok) return;
    try {
      const r = await trash.empty();
      toast(`Deleted ${r?.purged ?? "all"} item(s) forever`);
    } catch (err) {
      toast(err.userText || String(err), "error");
    }
    this.load();
  }
}
