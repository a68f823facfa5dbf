// The details panel beside the list (a sheet over it on a phone): a preview (images as a
// blob URL, text as its first 256 KB, audio/video streamed) and the revisions of a file.

import { files, request } from "./api.js";
import { downloadUrl } from "./actions.js";
import { icon, kindIcon, kindOf } from "./icons.js";
import { renderRevisions } from "./revisions.js";
import { canShare, openShareDialog } from "./sharing.js";
import { formatDateFull, formatSize, h, mount } from "./util.js";

const TEXT_PREVIEW = 256 * 1024;
const IMAGE_PREVIEW_MAX = 50 * 1024 * 1024;

export class DetailsPanel {
  /** `el`: an <aside> to fill; `onRestored()`: reload the listing after a revision restore. */
  constructor(el, { onRestored, onClose }) {
    this.el = el;
    this.onRestored = onRestored;
    this.onClose = onClose;
    this.entry = null;
    this.blobUrl = null;
    this.abort = null;
    el.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.stopPropagation();
        this.close();
      }
    });
  }

  get isOpen() {
    return !this.el.hidden;
  }

  /** Show `entry`; `tab` is "preview" or "revisions". */
  open(entry, tab = "preview") {
    this.release();
    this.entry = entry;
    this.el.hidden = false;
    const tabs = entry.is_dir ? ["preview"] : ["preview", "revisions"];
    const body = h("div", { class: "details-body", role: "tabpanel" });
    const buttons = tabs.map((t) => h("button", {
      type: "button",
      role: "tab",
      class: "tab",
      "aria-selected": t === tab ? "true" : "false",
      onclick: () => this.open(entry, t),
    }, t === "preview" ? "Details" : "Revisions"));
    mount(this.el,
      h("header", { class: "details-head" },
        kindIcon(entry),
        h("h2", { title: entry.name }, entry.name),
        h("button", { type: "button", class: "icon-btn", "aria-label": "Close details", onclick: () => this.close() }, icon("close"))),
      h("div", { class: "tabs", role: "tablist" }, buttons),
      body);
    if (tab === "revisions") renderRevisions(body, entry, { onRestored: this.onRestored });
    else this.preview(body, entry);
    buttons.find((b) => b.getAttribute("aria-selected") === "true")?.focus();
  }

  close() {
    this.release();
    this.el.hidden = true;
    this.entry = null;
    mount(this.el);
    this.onClose?.();
  }

  release() {
    this.abort?.abort();
    this.abort = null;
    if (this.blobUrl) URL.revokeObjectURL(this.blobUrl);
    this.blobUrl = null;
  }

  preview(body, entry) {
    const kind = kindOf(entry);
    const facts = h("dl", { class: "facts" },
      h("dt", {}, "Type"), h("dd", {}, entry.is_dir ? "Folder" : kind === "file" ? "File" : kind[0].toUpperCase() + kind.slice(1)),
      entry.is_dir ? null : [h("dt", {}, "Size"), h("dd", {}, `${formatSize(entry.size)} (${entry.size.toLocaleString()} bytes)`)],
      h("dt", {}, "Modified"), h("dd", {}, formatDateFull(entry.modified)),
      h("dt", {}, "Location"), h("dd", { class: "break" }, entry.path));
    const view = h("div", { class: "preview" });
    const actions = h("p", { class: "details-actions" },
      entry.is_dir ? null : h("button", { type: "button", class: "btn", onclick: () => downloadUrl(files.downloadUrl(entry.path), entry.name) },
        icon("download"), "Download"),
      canShare(entry) ? h("button", { type: "button", class: "btn", onclick: () => openShareDialog(entry) },
        icon("share"), "Share") : null);
    mount(body, view, actions, facts);
    if (entry.is_dir) return;
    if (entry.size === 0) {
      mount(view, h("p", { class: "muted" }, "This file is empty."));
      return;
    }
    this.abort = new AbortController();
    const signal = this.abort.signal;
    if (kind === "image" && entry.size <= IMAGE_PREVIEW_MAX) {
      view.append(h("p", { class: "muted" }, "Loading preview…"));
      request("/files/download", { params: { path: entry.path }, raw: true, signal })
        .then((r) => r.blob())
        .then((blob) => {
          this.blobUrl = URL.createObjectURL(blob);
          mount(view, h("img", { src: this.blobUrl, alt: `Preview of ${entry.name}` }));
        })
        .catch((err) => err.name !== "AbortError" && mount(view, h("p", { class: "muted" }, "No preview.")));
    } else if (kind === "text" || (kind === "file" && entry.size <= TEXT_PREVIEW && entry.size > 0)) {
      view.append(h("p", { class: "muted" }, "Loading preview…"));
      request("/files/download", {
        params: { path: entry.path },
        headers: { Range: `bytes=0-${TEXT_PREVIEW - 1}` },
        raw: true,
        signal,
      })
        .then((r) => r.arrayBuffer())
        .then((buf) => {
          const bytes = new Uint8Array(buf);
          if (kind === "file" && bytes.subarray(0, 4096).includes(0)) {
            mount(view, h("p", { class: "muted" }, "No preview for this kind of file."));
            return;
          }
          const text = new TextDecoder("utf-8").decode(bytes);
          mount(view,
            h("pre", { class: "text-preview", tabindex: "0", "aria-label": `Text of ${entry.name}` }, text),
            entry.size > TEXT_PREVIEW ? h("p", { class: "muted" }, `Showing the first ${formatSize(TEXT_PREVIEW)}.`) : null);
        })
        .catch((err) => err.name !== "AbortError" && mount(view, h("p", { class: "muted" }, "No preview.")));
    } else if (kind === "audio" || kind === "video") {
      mount(view, h(kind, { controls: true, preload: "metadata", src: files.downloadUrl(entry.path) }));
    } else {
      mount(view, h("div", { class: "preview-icon" }, kindIcon(entry)));
    }
  }
}
