// Uploads: files and whole folders from drag and drop or the pickers, a queue with per-file
// and total progress, cancel, name clashes (replace / keep both / skip, "apply to all"),
// small files in one POST (media upload), large ones through tus (resumable across reloads).

import { apiUrl, files, xhrSend } from "./api.js";
import { freeName } from "./actions.js";
import { chooseDialog, toast } from "./dialogs.js";
import { icon } from "./icons.js";
import * as tus from "./tus.js";
import { formatSize, h, joinPath, mount, parentPath } from "./util.js";

export const TUS_THRESHOLD = 8 * 1024 * 1024;
const PARALLEL = 3;

/** Read every entry of a directory (readEntries returns them in batches). */
function readAll(reader) {
  return new Promise((resolve, reject) => {
    const out = [];
    const next = () => reader.readEntries((batch) => {
      if (!batch.length) resolve(out);
      else {
        out.push(...batch);
        next();
      }
    }, reject);
    next();
  });
}

const fileOf = (entry) => new Promise((resolve, reject) => entry.file(resolve, reject));

/** A FileSystemEntry tree → [{file, rel}] (rel: the folder path below the drop, "" at top) and folders. */
async function walk(entry, rel, out) {
  if (entry.isFile) {
    out.files.push({ file: await fileOf(entry), rel });
  } else if (entry.isDirectory) {
    const sub = rel ? `${rel}/${entry.name}` : entry.name;
    out.dirs.push(sub);
    for (const child of await readAll(entry.createReader())) await walk(child, sub, out);
  }
}

export class Uploader {
  constructor() {
    this.jobs = [];
    this.active = 0;
    this.listeners = new Set();
    this.askChain = Promise.resolve();
    this.build();
    this.renderResumable();
  }

  // -- the panel --------------------------------------------------------------------------------

  build() {
    this.fileInput = h("input", { type: "file", multiple: true, hidden: true, class: "picker-files", "aria-label": "Choose files to upload" });
    this.dirInput = h("input", { type: "file", multiple: true, hidden: true, webkitdirectory: true, class: "picker-folder", "aria-label": "Choose a folder to upload" });
    this.resumeInput = h("input", { type: "file", hidden: true, class: "picker-resume", "aria-label": "Choose the file to resume" });
    this.fileInput.addEventListener("change", () => this.fromInput(this.fileInput));
    this.dirInput.addEventListener("change", () => this.fromInput(this.dirInput));
    this.resumeInput.addEventListener("change", () => this.onResumePicked());

    this.totalBar = h("progress", { class: "total-bar", max: 1, value: 0, "aria-label": "Total upload progress" });
    this.summary = h("span", { class: "up-summary", "aria-live": "polite" });
    this.list = h("ul", { class: "up-list" });
    this.resumeBox = h("div", { class: "resume-box", hidden: true });
    this.cancelAllBtn = h("button", { type: "button", class: "btn small", onclick: () => this.cancelAll() }, "Cancel all");
    this.closeBtn = h("button", { type: "button", class: "icon-btn", "aria-label": "Close uploads", onclick: () => this.clearDone() }, icon("close"));
    this.toggleBtn = h("button", { type: "button", class: "icon-btn", "aria-label": "Collapse", "aria-expanded": "true", onclick: () => this.toggle() }, icon("back", "icon rot"));
    this.panel = h("section", { class: "uploads", hidden: true, "aria-label": "Uploads" },
      h("header", { class: "up-head" }, h("h2", {}, "Uploads"), this.summary, this.cancelAllBtn, this.toggleBtn, this.closeBtn),
      this.totalBar,
      h("div", { class: "up-body" }, this.resumeBox, this.list));
    document.body.append(this.panel, this.fileInput, this.dirInput, this.resumeInput);
  }

  toggle() {
    const collapsed = this.panel.classList.toggle("collapsed");
    this.toggleBtn.setAttribute("aria-expanded", collapsed ? "false" : "true");
    this.toggleBtn.setAttribute("aria-label", collapsed ? "Expand" : "Collapse");
  }

  /** Subscribe to "a file landed in folder X"; returns the unsubscribe function. */
  onFinished(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  notify(dir) {
    for (const fn of this.listeners) fn(dir);
  }

  busy() {
    return this.jobs.some((j) => ["queued", "checking", "uploading"].includes(j.state));
  }

  // -- sources ----------------------------------------------------------------------------------

  pickFiles(dir) {
    this.pickTarget = dir;
    this.fileInput.value = "";
    this.fileInput.click();
  }

  pickFolder(dir) {
    this.pickTarget = dir;
    this.dirInput.value = "";
    this.dirInput.click();
  }

  /** The pickers: folder picks carry webkitRelativePath ("top/sub/file"). */
  fromInput(input) {
    const items = [];
    const dirs = new Set();
    for (const file of input.files) {
      const rel = (file.webkitRelativePath || "").split("/").slice(0, -1).join("/");
      items.push({ file, rel });
      if (rel) rel.split("/").forEach((_, i, a) => dirs.add(a.slice(0, i + 1).join("/")));
    }
    input.value = "";
    if (items.length) this.addBatch(this.pickTarget || "/", items, [...dirs]);
  }

  /** A drop: files and folders (read through webkitGetAsEntry, recursively). */
  async fromDataTransfer(dt, dir) {
    // the entries must be taken during the drop event, before any await
    const entries = [];
    const loose = [];
    for (const item of dt.items || []) {
      if (item.kind !== "file") continue;
      const entry = item.webkitGetAsEntry ? item.webkitGetAsEntry() : null;
      if (entry) entries.push(entry);
      else if (item.getAsFile()) loose.push(item.getAsFile());
    }
    if (!entries.length && !loose.length) for (const f of dt.files || []) loose.push(f);
    const out = { files: loose.map((file) => ({ file, rel: "" })), dirs: [] };
    for (const e of entries) await walk(e, "", out);
    if (out.files.length || out.dirs.length) await this.addBatch(dir, out.files, out.dirs);
  }

  // -- the queue --------------------------------------------------------------------------------

  /** Create the folders (parents first), then queue the files. */
  async addBatch(dir, items, dirs) {
    const batch = { always: null, fresh: new Set() }; // fresh: folders this batch created
    this.panel.hidden = false;
    this.panel.classList.remove("collapsed");
    for (const rel of [...new Set(dirs)].sort((a, b) => a.split("/").length - b.split("/").length)) {
      const path = joinPath(dir, rel);
      try {
        await files.createFolder(path);
        batch.fresh.add(path);
      } catch (err) {
        if (err.status !== 409 && err.status !== 412) {
          toast(`Could not create folder ${rel}: ${err.userText || err}`, "error");
        }
        // 409: it exists; its files merge into it (each clash is asked about)
      }
    }
    if (dirs.length) this.notify(dir);
    for (const { file, rel } of items) {
      const folder = rel ? joinPath(dir, rel) : dir;
      this.jobs.push(this.makeJob(file, folder, batch));
    }
    this.renderSummary();
    this.pump();
  }

  makeJob(file, dir, batch) {
    const job = { file, dir, path: joinPath(dir, file.name), batch, size: file.size, sent: 0, state: "queued", resumedFrom: 0 };
    job.bar = h("progress", { max: Math.max(1, file.size), value: 0, "aria-label": `Progress of ${file.name}` });
    job.status = h("span", { class: "up-status" }, "waiting");
    job.cancelBtn = h("button", { type: "button", class: "icon-btn small", "aria-label": `Cancel ${file.name}`, onclick: () => this.cancel(job) }, icon("close"));
    job.el = h("li", { class: "up-item", "data-state": "queued", "data-name": file.name },
      h("div", { class: "up-line" },
        h("span", { class: "up-name", title: job.path }, file.name),
        h("span", { class: "up-size muted" }, formatSize(file.size)),
        job.cancelBtn),
      job.bar, job.status);
    this.list.append(job.el);
    return job;
  }

  setState(job, state, text) {
    job.state = state;
    job.el.dataset.state = state;
    job.status.textContent = text;
    if (["done", "error", "skipped", "cancelled"].includes(state)) job.cancelBtn.hidden = true;
    this.renderSummary();
  }

  pump() {
    while (this.active < PARALLEL) {
      const job = this.jobs.find((j) => j.state === "queued");
      if (!job) break;
      this.active += 1;
      job.state = "checking";
      this.run(job).finally(() => {
        this.active -= 1;
        this.pump();
        this.renderSummary();
      });
    }
  }

  async run(job) {
    try {
      const go = await this.resolveClash(job);
      if (!go) {
        this.setState(job, "skipped", "skipped (a file of this name exists)");
        return;
      }
      this.setState(job, "uploading", "uploading…");
      if (job.size >= TUS_THRESHOLD) await this.sendTus(job);
      else await this.sendMedia(job);
      job.sent = job.size;
      job.bar.value = job.bar.max;
      this.setState(job, "done", job.resumedFrom ? `done (resumed at ${formatSize(job.resumedFrom)})` : "done");
      this.notify(job.dir);
    } catch (err) {
      if (job.state === "cancelled") return;
      if (err.code === "skipped") {
        this.setState(job, "skipped", "skipped (a file of this name exists)");
        return;
      }
      if (err.code === "aborted") {
        this.setState(job, "cancelled", "cancelled");
        return;
      }
      const text = err.status === 507
        ? "Not enough space: your storage quota is full."
        : err.status === 413
          ? "Too large: the file is over the server's size limit."
          : err.userText || String(err);
      this.setState(job, "error", text);
      job.status.setAttribute("role", "alert");
    }
  }

  /**
   * Whether to upload, and where: a clash with an existing file asks (once per batch when
   * "apply to all" is ticked). A remembered tus session for this file and path is no clash.
   */
  async resolveClash(job, known = false) {
    if (!known && (job.batch.fresh.has(job.dir) || (job.size >= TUS_THRESHOLD && tus.lookup(job.file, job.path)))) {
      job.createOnly = true;
      return true;
    }
    const existing = known ? true : await files.stat(job.path);
    if (!existing || (existing.rev === null && existing.status === "pending")) {
      job.createOnly = true;
      return true;
    }
    job.createOnly = false;
    let choice = job.batch.always;
    if (!choice) {
      // one question at a time, even with parallel jobs
      const ask = this.askChain.then(async () => {
        if (job.batch.always) return { value: job.batch.always, all: true };
        const remaining = this.jobs.filter((j) => j.batch === job.batch && ["queued", "checking"].includes(j.state)).length;
        return chooseDialog("File already exists",
          `"${job.file.name}" already exists in ${job.dir === "/" ? "My files" : job.dir}.`, [
            { label: "Skip", value: "skip" },
            { label: "Keep both", value: "both" },
            { label: "Replace", value: "replace", primary: true },
          ], { applyAll: remaining > 1 });
      });
      this.askChain = ask.catch(() => {});
      const r = await ask;
      choice = r.value || "skip";
      if (r.all) job.batch.always = choice;
    }
    if (choice === "skip") return false;
    if (choice === "both") {
      job.path = await freeName(job.dir, job.file.name);
      job.el.querySelector(".up-name").textContent = job.path.slice(job.dir.length + (job.dir === "/" ? 0 : 1));
      job.createOnly = true;
    }
    return true;
  }

  progress(job, sent) {
    job.sent = sent;
    job.bar.value = sent;
    const pct = job.size ? Math.floor((100 * sent) / job.size) : 100;
    job.status.textContent = `${pct}% · ${formatSize(sent)} of ${formatSize(job.size)}${job.resumedFrom ? ` (resumed at ${formatSize(job.resumedFrom)})` : ""}`;
    this.renderTotal();
  }

  async sendMedia(job) {
    for (;;) {
      const url = apiUrl("/files/upload", { path: job.path, uploadType: "media", mtime: job.file.lastModified / 1000 });
      const headers = { "Content-Type": "application/octet-stream" };
      if (job.createOnly) headers["If-None-Match"] = "*";
      job.xhr = xhrSend("POST", url, job.file, { headers, onProgress: (loaded) => this.progress(job, Math.min(loaded, job.size)) });
      try {
        await job.xhr.promise;
        return;
      } catch (err) {
        // created meanwhile by someone else: ask as for any clash
        if (job.createOnly && (err.status === 412 || err.status === 409)) {
          if (!(await this.resolveClash(job, true))) throw Object.assign(new Error("skipped"), { code: "skipped" });
          continue;
        }
        throw err;
      } finally {
        job.xhr = null;
      }
    }
  }

  async sendTus(job) {
    // resumedFrom is known once the session is open (before the first progress report)
    job.tus = new tus.TusUpload(job.file, job.path, {
      onProgress: (sent) => {
        job.resumedFrom = job.tus.resumedFrom;
        job.el.dataset.resumedFrom = String(job.resumedFrom);
        this.progress(job, sent);
      },
    });
    const rev = await job.tus.start();
    this.renderResumable();
    return rev;
  }

  cancel(job) {
    if (["done", "error", "skipped", "cancelled"].includes(job.state)) return;
    const was = job.state;
    this.setState(job, "cancelled", "cancelled");
    job.xhr?.abort();
    job.tus?.abort(true);
    if (was === "queued") this.renderSummary();
    this.renderResumable();
  }

  cancelAll() {
    for (const job of this.jobs) this.cancel(job);
  }

  /** Remove finished rows; hide the panel when nothing is left. */
  clearDone() {
    this.jobs = this.jobs.filter((j) => {
      const keep = ["queued", "checking", "uploading"].includes(j.state);
      if (!keep) j.el.remove();
      return keep;
    });
    this.renderSummary();
    if (!this.jobs.length && this.resumeBox.hidden) this.panel.hidden = true;
  }

  renderSummary() {
    const live = this.jobs.filter((j) => j.state !== "cancelled" && j.state !== "skipped");
    const done = live.filter((j) => j.state === "done").length;
    const failed = live.filter((j) => j.state === "error").length;
    const running = this.busy();
    this.summary.textContent = running
      ? `${done} of ${live.length} done`
      : `${done} uploaded${failed ? `, ${failed} failed` : ""}`;
    this.cancelAllBtn.hidden = !running;
    this.panel.classList.toggle("finished", !running);
    this.renderTotal();
  }

  renderTotal() {
    const live = this.jobs.filter((j) => j.state !== "cancelled" && j.state !== "skipped");
    const total = live.reduce((n, j) => n + j.size, 0);
    const sent = live.reduce((n, j) => n + (j.state === "done" ? j.size : j.sent), 0);
    this.totalBar.max = Math.max(1, total);
    this.totalBar.value = total ? sent : live.length ? 1 : 0;
    this.totalBar.dataset.percent = String(total ? Math.floor((100 * sent) / total) : 100);
  }

  // -- unfinished uploads after a reload ----------------------------------------------------------

  /** The tus sessions this browser remembers and nothing here is sending: offer to resume. */
  renderResumable() {
    const running = new Set(this.jobs.filter((j) => j.tus && !["done", "error", "cancelled"].includes(j.state)).map((j) => j.tus.key));
    const list = tus.pending().filter((p) => !running.has(p.key));
    this.resumeBox.hidden = !list.length;
    if (list.length) this.panel.hidden = false;
    mount(this.resumeBox,
      h("h3", {}, "Unfinished uploads"),
      h("p", { class: "muted" }, "Choose the same file again (or drop it on its folder) to continue where it stopped."),
      h("ul", { class: "resume-list" }, list.map((p) => h("li", { class: "resume-item", "data-name": p.name },
        h("span", { class: "up-name", title: p.path }, p.name),
        h("span", { class: "muted" }, ` ${formatSize(p.size)} → ${parentPath(p.path)}`),
        h("button", { type: "button", class: "btn small", onclick: () => this.askResume(p) }, "Resume…"),
        h("button", { type: "button", class: "btn small", onclick: async () => { await tus.discard(p.key); this.renderResumable(); } }, "Discard")))));
  }

  askResume(p) {
    this.resumeWanted = p;
    this.resumeInput.value = "";
    this.resumeInput.click();
  }

  onResumePicked() {
    const p = this.resumeWanted;
    const file = this.resumeInput.files[0];
    this.resumeInput.value = "";
    if (!p || !file) return;
    if (file.name !== p.name || file.size !== p.size || file.lastModified !== p.lastModified) {
      toast(`That is not the same file as "${p.name}" (${formatSize(p.size)}).`, "error");
      return;
    }
    const batch = { always: null, fresh: new Set() };
    this.panel.hidden = false;
    this.jobs.push(this.makeJob(file, parentPath(p.path), batch));
    this.renderSummary();
    this.renderResumable();
    this.pump();
  }
}
