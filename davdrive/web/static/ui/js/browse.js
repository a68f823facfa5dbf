// The folder view: breadcrumbs, toolbar, a virtualised sortable list with multi-select and
// keyboard navigation, drag and drop (upload; rows onto folders to move), the details panel.
//
// Only the rows in view (plus a buffer) exist in the DOM, so a folder of 5,000 entries costs
// about as much as one of 50. The list is a role="grid"; the focused row is announced through
// aria-activedescendant while the DOM focus stays on the grid.

import { files } from "./api.js";
import * as actions from "./actions.js";
import { DetailsPanel } from "./details.js";
import { toast } from "./dialogs.js";
import { icon, kindIcon } from "./icons.js";
import { closeMenu, showMenu } from "./menu.js";
import { filesHash } from "./router.js";
import { canShare, openShareDialog } from "./sharing.js";
import { collator, formatDate, formatDateFull, formatSize, h, mount, parentPath, throttleFrame, uid } from "./util.js";

const BUFFER = 10; // rows rendered above and below the visible ones
const DRAG_TYPE = "application/x-davdrive-paths";
const SORT_KEY = "davdrive.sort";

const COMPARE = {
  name: (a, b) => collator.compare(a.name, b.name),
  size: (a, b) => a.size - b.size || collator.compare(a.name, b.name),
  modified: (a, b) => (a.modified || "").localeCompare(b.modified || "") || collator.compare(a.name, b.name),
};

export class BrowseView {
  constructor(container, { uploader, navigate }) {
    this.container = container;
    this.uploader = uploader;
    this.navigate = navigate;
    this.path = null;
    this.entries = []; // sorted
    this.selected = new Set(); // paths
    this.focusIndex = -1;
    this.anchor = -1;
    this.loading = false;
    this.loadSeq = 0;
    this.rows = new Map(); // index → row element (the rendered window)
    try {
      this.sort = JSON.parse(localStorage.getItem(SORT_KEY)) || { key: "name", dir: 1 };
    } catch {
      this.sort = { key: "name", dir: 1 };
    }
    if (!COMPARE[this.sort.key]) this.sort = { key: "name", dir: 1 };
    this.gridId = uid("grid");
    this.build();
    this.unsubscribe = uploader.onFinished((dir) => {
      if (dir === this.path) this.reload();
    });
    // live updates (live.js): list again when a change touches the folder on screen
    this.liveTimer = null;
    this.onLive = (e) => {
      if (e.type === "davdrive:reset" || e.detail.some((c) => this.touches(c.path) || this.touches(c.from_path))) this.liveReload();
    };
    window.addEventListener("davdrive:changes", this.onLive);
    window.addEventListener("davdrive:reset", this.onLive);
  }

  /** Whether a change at `path` shows in this folder: a member, the folder or an ancestor. */
  touches(path) {
    const here = this.path;
    if (!path || here === null) return false;
    return parentPath(path) === here || here === path || here.startsWith(`${path}/`);
  }

  /** List the folder again ~300 ms from now (changes in a burst share one listing). */
  liveReload() {
    if (this.liveTimer) return;
    this.liveTimer = setTimeout(() => {
      this.liveTimer = null;
      if (this.loading) this.liveReload(); // after the listing under way
      else this.reload();
    }, 300);
  }

  // -- layout -----------------------------------------------------------------------------------

  build() {
    this.crumbs = h("nav", { class: "crumbs", "aria-label": "Folder path" });
    this.selInfo = h("span", { class: "sel-info", "aria-live": "polite" });
    this.selActions = h("div", { class: "sel-actions", role: "group", "aria-label": "Selection actions" });
    const newFolder = h("button", { type: "button", class: "btn", onclick: () => this.act(() => actions.newFolder(this.path)) },
      icon("folderPlus"), h("span", { class: "label" }, "New folder"));
    const upFiles = h("button", { type: "button", class: "btn primary", onclick: () => this.uploader.pickFiles(this.path) },
      icon("upload"), h("span", { class: "label" }, "Upload files"));
    const upFolder = h("button", { type: "button", class: "btn", onclick: () => this.uploader.pickFolder(this.path) },
      icon("folderUpload"), h("span", { class: "label" }, "Upload folder"));
    this.toolbar = h("div", { class: "toolbar", role: "toolbar", "aria-label": "Folder actions" },
      newFolder, upFiles, upFolder, this.selInfo, this.selActions);

    this.headCells = {};
    const headCell = (key, label, cls) => {
      const b = h("button", { type: "button", class: "sort", onclick: () => this.setSort(key) }, label, h("span", { class: "sort-mark", "aria-hidden": "true" }));
      const cell = h("div", { role: "columnheader", class: ["cell", cls] }, b);
      this.headCells[key] = cell;
      return cell;
    };
    this.selectAll = h("input", { type: "checkbox", "aria-label": "Select all", onchange: () => this.toggleAll() });
    this.head = h("div", { role: "row", class: "row head", "aria-rowindex": "1" },
      h("div", { role: "columnheader", class: "cell check" }, this.selectAll),
      h("div", { role: "columnheader", class: "cell icon-cell", "aria-label": "Type" }),
      headCell("name", "Name", "name"),
      headCell("size", "Size", "size"),
      headCell("modified", "Modified", "modified"),
      h("div", { role: "columnheader", class: "cell more", "aria-label": "Actions" }));
    this.spacer = h("div", { class: "spacer", role: "presentation" });
    this.viewport = h("div", { class: "viewport", role: "rowgroup" }, this.spacer);
    this.empty = h("div", { class: "empty", hidden: true });
    this.grid = h("div", {
      id: this.gridId,
      class: "grid",
      role: "grid",
      tabindex: "0",
      "aria-multiselectable": "true",
      "aria-label": "Files",
    }, h("div", { role: "rowgroup", class: "head-group" }, this.head), this.viewport);
    this.details = h("aside", { class: "details", hidden: true, "aria-label": "Details" });
    this.panel = new DetailsPanel(this.details, {
      onRestored: () => this.reload(),
      onClose: () => this.grid.focus(),
    });
    this.dropHint = h("div", { class: "drop-hint", "aria-hidden": "true" }, icon("upload"), h("span", {}, "Drop to upload"));
    this.root = h("div", { class: "browse" },
      h("div", { class: "browse-head" }, this.crumbs, this.toolbar),
      h("div", { class: "browse-body" }, h("div", { class: "list-wrap" }, this.grid, this.empty, this.dropHint), this.details));
    mount(this.container, this.root);

    this.viewport.addEventListener("scroll", throttleFrame(() => this.renderRows()));
    this.resizeObserver = new ResizeObserver(throttleFrame(() => {
      this.measure();
      this.renderRows(true);
    }));
    this.resizeObserver.observe(this.viewport);
    this.grid.addEventListener("keydown", (e) => this.onKey(e));
    this.viewport.addEventListener("click", (e) => this.onRowClick(e));
    this.viewport.addEventListener("dblclick", (e) => this.onRowDblClick(e));
    this.viewport.addEventListener("contextmenu", (e) => this.onContextMenu(e));
    this.bindDrag();
    this.updateSortMarks();
  }

  unmount() {
    window.removeEventListener("davdrive:changes", this.onLive);
    window.removeEventListener("davdrive:reset", this.onLive);
    clearTimeout(this.liveTimer);
    this.resizeObserver.disconnect();
    this.unsubscribe();
    this.panel.release();
    closeMenu();
    this.container.replaceChildren();
  }

  /** Row height from the CSS (it differs on narrow screens). */
  measure() {
    const v = parseFloat(getComputedStyle(this.viewport).getPropertyValue("--row-h"));
    this.rowH = Number.isFinite(v) && v > 0 ? v : 44;
  }

  // -- data -------------------------------------------------------------------------------------

  show(route) {
    if (route.path !== this.path) this.load(route.path);
  }

  async load(path) {
    const changedFolder = path !== this.path;
    this.path = path;
    this.renderCrumbs();
    if (changedFolder) {
      this.entries = [];
      this.selected.clear();
      this.focusIndex = -1;
      this.anchor = -1;
      if (this.panel.isOpen) this.panel.close();
      this.viewport.scrollTop = 0;
      this.renderAll();
      this.showEmpty("Loading…");
    }
    const seq = ++this.loadSeq;
    this.loading = true;
    const got = [];
    try {
      await files.listAll(path, (page) => {
        if (seq !== this.loadSeq) return;
        got.push(...page);
        if (changedFolder) this.setEntries(got.slice()); // show the first page at once
      });
      if (seq !== this.loadSeq) return;
      this.setEntries(got);
    } catch (err) {
      if (seq !== this.loadSeq) return;
      if (err.status === 404 || err.status === 409) {
        this.setEntries([]);
        this.showEmpty("This folder does not exist (it may have been moved or deleted).", true);
      } else if (err.status !== 401) {
        this.showEmpty(err.userText || String(err), true);
      }
    } finally {
      if (seq === this.loadSeq) this.loading = false;
    }
  }

  /** Reload the current folder, keeping selection, focus and scroll. */
  reload() {
    return this.load(this.path);
  }

  setEntries(list) {
    const focused = this.entries[this.focusIndex]?.path;
    this.entries = list;
    this.sortEntries();
    const present = new Set(list.map((e) => e.path));
    for (const p of [...this.selected]) if (!present.has(p)) this.selected.delete(p);
    this.focusIndex = focused ? this.entries.findIndex((e) => e.path === focused) : -1;
    if (this.focusIndex < 0 && this.entries.length && document.activeElement === this.grid) this.focusIndex = 0;
    this.renderAll();
    if (!list.length) this.showEmpty("This folder is empty. Drop files here, or use Upload.");
    else this.empty.hidden = true;
  }

  sortEntries() {
    const { key, dir } = this.sort;
    const cmp = COMPARE[key];
    this.entries.sort((a, b) => (b.is_dir - a.is_dir) || dir * cmp(a, b));
  }

  setSort(key) {
    this.sort = this.sort.key === key ? { key, dir: -this.sort.dir } : { key, dir: 1 };
    localStorage.setItem(SORT_KEY, JSON.stringify(this.sort));
    const focused = this.entries[this.focusIndex]?.path;
    this.sortEntries();
    this.focusIndex = focused ? this.entries.findIndex((e) => e.path === focused) : -1;
    this.updateSortMarks();
    this.renderAll();
  }

  updateSortMarks() {
    for (const [key, cell] of Object.entries(this.headCells)) {
      const on = key === this.sort.key;
      cell.setAttribute("aria-sort", on ? (this.sort.dir > 0 ? "ascending" : "descending") : "none");
      cell.querySelector(".sort-mark").textContent = on ? (this.sort.dir > 0 ? "▲" : "▼") : "";
    }
  }

  showEmpty(text, isError = false) {
    this.empty.hidden = false;
    mount(this.empty, h("p", { class: isError ? "error" : "muted" }, text),
      isError ? h("p", {}, h("a", { href: "#/files/" }, "Go to My files")) : null);
  }

  // -- rendering ------------------------------------------------------------------------------

  renderCrumbs() {
    const parts = this.path.split("/").filter(Boolean);
    const items = [h("a", { href: "#/files/", class: "crumb", "data-path": "/" }, "My files")];
    parts.forEach((name, i) => {
      const p = `/${parts.slice(0, i + 1).join("/")}`;
      items.push(h("span", { class: "sep", "aria-hidden": "true" }, "/"));
      items.push(i === parts.length - 1
        ? h("span", { class: "crumb current", "aria-current": "page", "data-path": p }, name)
        : h("a", { href: filesHash(p), class: "crumb", "data-path": p }, name));
    });
    mount(this.crumbs, items);
    document.title = `${parts.length ? parts[parts.length - 1] : "My files"} – davdrive`;
  }

  /** Re-render everything: spacer height, all rows in the window, the toolbar. */
  renderAll() {
    this.grid.setAttribute("aria-rowcount", String(this.entries.length + 1));
    for (const row of this.rows.values()) row.remove();
    this.rows.clear();
    this.renderRows(true);
    this.renderSelection();
  }

  renderRows(force = false) {
    if (!this.rowH) this.measure();
    const n = this.entries.length;
    this.spacer.style.height = `${n * this.rowH}px`;
    const top = this.viewport.scrollTop;
    const height = this.viewport.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / this.rowH) - BUFFER);
    const last = Math.min(n - 1, Math.ceil((top + height) / this.rowH) + BUFFER);
    for (const [i, row] of this.rows) {
      if (i < first || i > last || force) {
        row.remove();
        this.rows.delete(i);
      }
    }
    for (let i = first; i <= last; i += 1) {
      if (this.rows.has(i)) continue;
      const row = this.renderRow(this.entries[i], i);
      this.rows.set(i, row);
      this.viewport.append(row);
    }
    this.updateActiveDescendant();
  }

  renderRow(e, i) {
    const selected = this.selected.has(e.path);
    const name = e.is_dir
      ? h("a", { href: filesHash(e.path), class: "name-link", tabindex: "-1", draggable: "false" }, e.name)
      : h("button", { type: "button", class: "name-link", tabindex: "-1", "data-open": "1" }, e.name);
    const row = h("div", {
      role: "row",
      id: `${this.gridId}-r${i}`,
      class: ["row", selected && "selected", i === this.focusIndex && "focused", e.is_dir && "dir"],
      "aria-rowindex": String(i + 2),
      "aria-selected": selected ? "true" : "false",
      "data-index": String(i),
      draggable: "true",
    },
    h("div", { role: "gridcell", class: "cell check" },
      h("input", { type: "checkbox", tabindex: "-1", checked: selected, "aria-label": `Select ${e.name}`, "data-check": "1" })),
    h("div", { role: "gridcell", class: "cell icon-cell" }, kindIcon(e)),
    h("div", { role: "gridcell", class: "cell name", title: e.name }, name,
      e.status === "pending" ? h("span", { class: "badge" }, "uploading") : null),
    h("div", { role: "gridcell", class: "cell size" }, e.is_dir ? "" : formatSize(e.size)),
    h("div", { role: "gridcell", class: "cell modified", title: formatDateFull(e.modified) }, formatDate(e.modified)),
    h("div", { role: "gridcell", class: "cell more" },
      h("button", { type: "button", class: "icon-btn", tabindex: "-1", "aria-label": `Actions for ${e.name}`, "aria-haspopup": "menu", "data-menu": "1" }, icon("more"))));
    row.style.transform = `translateY(${i * this.rowH}px)`;
    return row;
  }

  /** Selection state on the rendered rows, the header box and the toolbar. */
  renderSelection() {
    for (const [i, row] of this.rows) {
      const on = this.selected.has(this.entries[i].path);
      row.classList.toggle("selected", on);
      row.classList.toggle("focused", i === this.focusIndex);
      row.setAttribute("aria-selected", on ? "true" : "false");
      row.querySelector("input[data-check]").checked = on;
    }
    const n = this.selected.size;
    this.selectAll.checked = n > 0 && n === this.entries.length;
    this.selectAll.indeterminate = n > 0 && n < this.entries.length;
    this.selInfo.textContent = n ? `${n} selected` : "";
    this.renderSelActions();
    this.updateActiveDescendant();
  }

  updateActiveDescendant() {
    const row = this.rows.get(this.focusIndex);
    if (row) this.grid.setAttribute("aria-activedescendant", row.id);
    else this.grid.removeAttribute("aria-activedescendant");
  }

  renderSelActions() {
    const sel = this.selectedEntries();
    if (!sel.length) {
      mount(this.selActions);
      return;
    }
    const b = (label, ic, fn, extra = {}) =>
      h("button", { type: "button", class: ["btn", extra.danger && "danger"], onclick: fn, title: label },
        icon(ic), h("span", { class: "label" }, label));
    const one = sel.length === 1 ? sel[0] : null;
    mount(this.selActions,
      b(one && !one.is_dir ? "Download" : "Download zip", "download", () => actions.download(sel)),
      one ? b("Rename", "rename", () => this.act(() => actions.rename(one))) : null,
      b("Move", "move", () => this.act(() => actions.transfer(sel, this.path))),
      b("Copy", "copy", () => this.act(() => actions.transfer(sel, this.path, { copy: true }))),
      one && !one.is_dir ? b("Revisions", "history", () => this.panel.open(one, "revisions")) : null,
      one && canShare(one) ? b("Share", "share", () => this.share(one)) : null,
      b("Delete", "trash", () => this.act(() => actions.remove(sel)), { danger: true }));
  }

  selectedEntries() {
    return this.entries.filter((e) => this.selected.has(e.path));
  }

  /** The share dialog of `entry` (sharing.js); the focus comes back to the list. */
  async share(entry) {
    await openShareDialog(entry);
    this.grid.focus();
  }

  /** Run an action; reload the folder if it changed something. */
  async act(fn) {
    const changed = await fn();
    if (changed) await this.reload();
    this.grid.focus();
  }

  // -- selection and focus ----------------------------------------------------------------------

  setFocus(i, { scroll = true } = {}) {
    if (!this.entries.length) return;
    this.focusIndex = Math.max(0, Math.min(this.entries.length - 1, i));
    if (scroll) this.scrollToIndex(this.focusIndex);
    this.renderSelection();
  }

  scrollToIndex(i) {
    const top = i * this.rowH;
    const vp = this.viewport;
    if (top < vp.scrollTop) vp.scrollTop = top;
    else if (top + this.rowH > vp.scrollTop + vp.clientHeight) vp.scrollTop = top + this.rowH - vp.clientHeight;
    this.renderRows();
  }

  /** Click semantics of file managers: plain = only this, ctrl/meta = toggle, shift = range. */
  selectAt(i, { toggle = false, range = false } = {}) {
    const path = this.entries[i].path;
    if (range && this.anchor >= 0) {
      const [a, b] = this.anchor < i ? [this.anchor, i] : [i, this.anchor];
      if (!toggle) this.selected.clear();
      for (let k = a; k <= b; k += 1) this.selected.add(this.entries[k].path);
    } else if (toggle) {
      if (this.selected.has(path)) this.selected.delete(path);
      else this.selected.add(path);
      this.anchor = i;
    } else {
      this.selected.clear();
      this.selected.add(path);
      this.anchor = i;
    }
    this.setFocus(i, { scroll: false });
  }

  toggleAll() {
    if (this.selected.size === this.entries.length) this.selected.clear();
    else for (const e of this.entries) this.selected.add(e.path);
    this.renderSelection();
  }

  rowIndexOf(target) {
    const row = target.closest(".row[data-index]");
    return row ? Number(row.dataset.index) : -1;
  }

  onRowClick(e) {
    const i = this.rowIndexOf(e.target);
    if (i < 0) return;
    const entry = this.entries[i];
    if (e.target.closest("[data-menu]")) {
      if (!this.selected.has(entry.path)) this.selectAt(i);
      this.openMenu(e.target.closest("[data-menu]"), i);
      return;
    }
    if (e.target.closest("[data-check]")) {
      this.selectAt(i, { toggle: true, range: e.shiftKey });
      this.grid.focus({ preventScroll: true });
      return;
    }
    if (e.target.closest(".name-link") && !e.ctrlKey && !e.metaKey && !e.shiftKey) {
      if (!entry.is_dir) {
        e.preventDefault();
        this.selectAt(i);
        this.open(entry);
      }
      return; // a folder's link navigates by its href
    }
    if (e.target.closest("a")) e.preventDefault();
    this.selectAt(i, { toggle: e.ctrlKey || e.metaKey, range: e.shiftKey });
    this.grid.focus({ preventScroll: true });
  }

  onRowDblClick(e) {
    const i = this.rowIndexOf(e.target);
    if (i >= 0 && !e.target.closest("[data-check],[data-menu]")) this.open(this.entries[i]);
  }

  onContextMenu(e) {
    const i = this.rowIndexOf(e.target);
    if (i < 0) return;
    e.preventDefault();
    if (!this.selected.has(this.entries[i].path)) this.selectAt(i);
    this.openMenu({ x: e.clientX, y: e.clientY }, i);
  }

  /** Open: a folder navigates, a file shows its details and preview. */
  open(entry) {
    if (entry.is_dir) this.navigate(entry.path);
    else this.panel.open(entry, "preview");
  }

  openMenu(anchor, i) {
    const e = this.entries[i];
    const sel = this.selected.size > 1 && this.selected.has(e.path) ? this.selectedEntries() : [e];
    const one = sel.length === 1;
    showMenu(anchor, [
      one ? { label: e.is_dir ? "Open" : "Preview", icon: e.is_dir ? "folder" : "info", action: () => this.open(e) } : null,
      { label: one && !e.is_dir ? "Download" : "Download as zip", icon: "download", action: () => actions.download(sel) },
      null,
      one ? { label: "Rename", icon: "rename", action: () => this.act(() => actions.rename(e)) } : null,
      { label: "Move to…", icon: "move", action: () => this.act(() => actions.transfer(sel, this.path)) },
      { label: "Copy to…", icon: "copy", action: () => this.act(() => actions.transfer(sel, this.path, { copy: true })) },
      one && !e.is_dir ? { label: "Revisions", icon: "history", action: () => this.panel.open(e, "revisions") } : null,
      one && canShare(e) ? { label: "Share…", icon: "share", action: () => this.share(e) } : null,
      null,
      { label: "Move to trash", icon: "trash", danger: true, action: () => this.act(() => actions.remove(sel)) },
    ].filter((x, k, arr) => x !== null || (arr[k - 1] !== null && k > 0)), { label: `Actions for ${one ? e.name : `${sel.length} items`}` });
  }

  onKey(e) {
    if (e.target !== this.grid) return; // the header checkbox and buttons keep their keys
    const n = this.entries.length;
    const page = Math.max(1, Math.floor(this.viewport.clientHeight / this.rowH) - 1);
    const i = this.focusIndex;
    const move = (to) => {
      const target = Math.max(0, Math.min(n - 1, to));
      if (e.shiftKey) {
        if (this.anchor < 0) this.anchor = Math.max(0, i);
        this.selectAt(target, { range: true });
      } else if (e.ctrlKey || e.metaKey) {
        this.setFocus(target);
      } else {
        this.selectAt(target);
      }
      this.scrollToIndex(target);
    };
    switch (e.key) {
      case "ArrowDown": if (n) move(i < 0 ? 0 : i + 1); break;
      case "ArrowUp": if (n) move(i < 0 ? 0 : i - 1); break;
      case "PageDown": if (n) move(i + page); break;
      case "PageUp": if (n) move(i - page); break;
      case "Home": if (n) move(0); break;
      case "End": if (n) move(n - 1); break;
      case " ":
        if (i >= 0) this.selectAt(i, { toggle: true });
        break;
      case "Enter":
        if (i >= 0) this.open(this.entries[i]);
        break;
      case "Backspace":
        if (this.path !== "/") this.navigate(parentPath(this.path));
        break;
      case "Delete": {
        const sel = this.selected.size ? this.selectedEntries() : i >= 0 ? [this.entries[i]] : [];
        if (sel.length) this.act(() => actions.remove(sel));
        break;
      }
      case "F2":
        if (i >= 0) this.act(() => actions.rename(this.entries[i]));
        break;
      case "Escape":
        if (this.panel.isOpen) this.panel.close();
        else {
          this.selected.clear();
          this.renderSelection();
        }
        break;
      case "ContextMenu":
        if (i >= 0) {
          const row = this.rows.get(i);
          this.openMenu(row ? row.querySelector("[data-menu]") : { x: 40, y: 120 }, i);
        }
        break;
      default:
        if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "a") {
          for (const x of this.entries) this.selected.add(x.path);
          this.renderSelection();
          break;
        }
        return;
    }
    e.preventDefault();
  }

  // -- drag and drop ----------------------------------------------------------------------------

  bindDrag() {
    const wrap = this.root.querySelector(".list-wrap");
    let depth = 0;
    const isFiles = (dt) => dt && [...dt.types].includes("Files");
    const isRows = (dt) => dt && [...dt.types].includes(DRAG_TYPE);
    const folderRow = (target) => {
      const i = this.rowIndexOf(target);
      return i >= 0 && this.entries[i].is_dir ? i : -1;
    };
    let hover = null;
    const setHover = (row) => {
      if (hover === row) return;
      hover?.classList.remove("drop-target");
      hover = row;
      hover?.classList.add("drop-target");
    };

    this.viewport.addEventListener("dragstart", (e) => {
      const i = this.rowIndexOf(e.target);
      if (i < 0) return;
      if (!this.selected.has(this.entries[i].path)) this.selectAt(i);
      const paths = this.selectedEntries().map((x) => x.path);
      e.dataTransfer.setData(DRAG_TYPE, JSON.stringify(paths));
      e.dataTransfer.effectAllowed = "copyMove";
    });
    this.root.addEventListener("dragenter", (e) => {
      if (!isFiles(e.dataTransfer) && !isRows(e.dataTransfer)) return;
      depth += 1;
      if (isFiles(e.dataTransfer)) wrap.classList.add("dragging");
    });
    this.root.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (!depth) {
        wrap.classList.remove("dragging");
        setHover(null);
      }
    });
    this.root.addEventListener("dragover", (e) => {
      const dt = e.dataTransfer;
      if (!isFiles(dt) && !isRows(dt)) return;
      const i = folderRow(e.target);
      if (isRows(dt)) {
        // rows can only be dropped onto a folder row (not onto themselves)
        if (i < 0 || this.selected.has(this.entries[i].path)) {
          setHover(null);
          return;
        }
        dt.dropEffect = e.ctrlKey || e.altKey ? "copy" : "move";
      } else {
        dt.dropEffect = "copy";
      }
      e.preventDefault();
      setHover(i >= 0 ? this.rows.get(i) : null);
    });
    this.root.addEventListener("drop", async (e) => {
      const dt = e.dataTransfer;
      depth = 0;
      wrap.classList.remove("dragging");
      setHover(null);
      if (!isFiles(dt) && !isRows(dt)) return;
      e.preventDefault();
      const i = folderRow(e.target);
      const target = i >= 0 ? this.entries[i].path : this.path;
      if (isRows(dt)) {
        if (i < 0) return;
        let paths;
        try {
          paths = JSON.parse(dt.getData(DRAG_TYPE));
        } catch {
          return;
        }
        const moving = this.entries.filter((x) => paths.includes(x.path) && x.path !== target);
        const copy = e.ctrlKey || e.altKey;
        this.act(() => actions.transferTo(moving, target, { copy }));
        return;
      }
      try {
        await this.uploader.fromDataTransfer(dt, target);
      } catch (err) {
        toast(err.userText || String(err), "error");
      }
    });
  }
}
