// File operations with their dialogs: new folder, rename, move, copy, delete, downloads.
// Each returns true when something changed (the caller then reloads its listing).

import { files } from "./api.js";
import { chooseDialog, confirmDialog, pickFolder, promptDialog, toast } from "./dialogs.js";
import { badName, joinPath, numberedName, parentPath } from "./util.js";

function fail(err) {
  toast(err.userText || String(err), "error");
}

export async function newFolder(dir) {
  const name = await promptDialog("New folder", "Folder name", "", { okText: "Create", validate: badName });
  if (name === null) return false;
  try {
    await files.createFolder(joinPath(dir, name.trim()));
    toast(`Created ${name.trim()}`);
    return true;
  } catch (err) {
    fail(err);
    return false;
  }
}

export async function rename(entry) {
  const name = await promptDialog(`Rename ${entry.is_dir ? "folder" : "file"}`, "New name", entry.name, {
    okText: "Rename",
    validate: badName,
  });
  if (name === null || name === entry.name) return false;
  try {
    await files.move(entry.path, joinPath(parentPath(entry.path), name.trim()));
    return true;
  } catch (err) {
    fail(err);
    return false;
  }
}

/**
 * Move or copy `entries` into a folder chosen in the picker. A name clash asks: replace, keep
 * both (a numbered name) or skip, with "apply to all".
 */
export async function transfer(entries, fromDir, { copy = false } = {}) {
  if (!entries.length) return false;
  const what = entries.length === 1 ? `"${entries[0].name}"` : `${entries.length} items`;
  const dest = await pickFolder(`${copy ? "Copy" : "Move"} ${what} to…`, fromDir, {
    okText: copy ? "Copy here" : "Move here",
    exclude: copy ? [] : entries.filter((e) => e.is_dir).map((e) => e.path),
  });
  if (dest === null) return false;
  return transferTo(entries, dest, { copy });
}

/** Move or copy `entries` into `dest` (also used by drag and drop onto a folder row). */
export async function transferTo(entries, dest, { copy = false } = {}) {
  let changed = 0;
  let always = null; // "replace" | "both" | "skip" once "apply to all" was ticked
  for (const e of entries) {
    const src = e.path;
    let target = joinPath(dest, e.name);
    if (!copy && target === src) continue;
    try {
      await (copy ? files.copy(src, target) : files.move(src, target));
      changed += 1;
      continue;
    } catch (err) {
      if (err.status !== 409 && err.status !== 412) {
        fail(err);
        continue;
      }
      if (!(await files.stat(target))) {
        fail(err); // a conflict of another kind (e.g. into itself)
        continue;
      }
    }
    let choice = always;
    if (!choice) {
      const r = await chooseDialog("Name already in use", `"${e.name}" already exists in ${dest === "/" ? "My files" : dest}.`, [
        { label: "Skip", value: "skip" },
        { label: "Keep both", value: "both" },
        { label: "Replace", value: "replace", primary: true },
      ], { applyAll: entries.length > 1 });
      choice = r.value || "skip";
      if (r.all) always = choice;
      if (r.value === null) break;
    }
    if (choice === "skip") continue;
    try {
      if (choice === "both") target = await freeName(dest, e.name);
      await (copy ? files.copy(src, target, choice === "replace") : files.move(src, target, choice === "replace"));
      changed += 1;
    } catch (err) {
      fail(err);
    }
  }
  if (changed) {
    const what = changed === 1 && entries.length === 1 ? `"${entries[0].name}"` : `${changed} item${changed === 1 ? "" : "s"}`;
    toast(`${copy ? "Copied" : "Moved"} ${what} to ${dest === "/" ? "My files" : dest}`);
  }
  return changed > 0;
}

/** The first "name (n)" free in `dir`. */
export async function freeName(dir, name) {
  for (let n = 2; n < 1000; n += 1) {
    const candidate = joinPath(dir, numberedName(name, n));
    if (!(await files.stat(candidate))) return candidate;
  }
  throw new Error(`no free name for ${name}`);
}

export async function remove(entries) {
  if (!entries.length) return false;
  const what = entries.length === 1 ? `"${entries[0].name}"` : `${entries.length} items`;
  const ok = await confirmDialog("Move to trash", `Move ${what} to the trash? You can restore from the trash later.`, {
    okText: "Move to trash",
    danger: true,
  });
  if (!ok) return false;
  let done = 0;
  for (const e of entries) {
    try {
      await files.delete(e.path);
      done += 1;
    } catch (err) {
      fail(err);
    }
  }
  if (done) toast(done === 1 ? `Moved "${entries[0].name}" to the trash` : `Moved ${done} items to the trash`);
  return done > 0;
}

/** Start a browser download of `url` (the cookie goes along; the answer is an attachment). */
export function downloadUrl(url, name = "") {
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.rel = "noopener";
  document.body.append(a);
  a.click();
  a.remove();
}

/** One file as itself; a folder or several items as a zip. */
export function download(entries) {
  if (!entries.length) return;
  if (entries.length === 1 && !entries[0].is_dir) {
    downloadUrl(files.downloadUrl(entries[0].path), entries[0].name);
    return;
  }
  const name = entries.length === 1 ? `${entries[0].name}.zip` : "download.zip";
  downloadUrl(files.zipUrl(entries.map((e) => e.path)), name);
}
