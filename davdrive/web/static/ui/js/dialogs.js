// Modal dialogs (<dialog> + showModal: focus trap and Escape for free), toasts, and the
// folder picker used by move and copy.

import { files } from "./api.js";
import { icon } from "./icons.js";
import { collator, h, joinPath, mount, uid } from "./util.js";

/**
 * Open a modal. `body` is a node (or array); `actions` a list of {label, value, primary, danger}.
 * Resolves with the value of the action pressed, or null (Escape / close). `onSubmit(value)` may
 * return false to keep the dialog open (e.g. a validation error).
 */
export function modal({ title, body, actions, onSubmit, className }) {
  return new Promise((resolve) => {
    const titleId = uid("dlg-title");
    const form = h("form", { method: "dialog", class: "dialog-form" });
    const dlg = h("dialog", { class: ["dialog", className], "aria-labelledby": titleId },
      form);
    let result = null;
    const buttons = (actions || []).map((a) =>
      h("button", {
        type: a.primary ? "submit" : "button",
        class: ["btn", a.primary && "primary", a.danger && "danger"],
        value: String(a.value),
        "data-value": String(a.value),
        onclick: a.primary ? null : () => finish(a.value),
      }, a.label),
    );
    mount(form,
      h("header", { class: "dialog-head" },
        h("h2", { id: titleId }, title),
        h("button", { type: "button", class: "icon-btn", "aria-label": "Close", onclick: () => finish(null) }, icon("close"))),
      h("div", { class: "dialog-body" }, body),
      buttons.length ? h("footer", { class: "dialog-actions" }, buttons) : null,
    );
    const primary = (actions || []).find((a) => a.primary);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      finish(primary ? primary.value : null);
    });

    async function finish(value) {
      if (value !== null && onSubmit) {
        const ok = await onSubmit(value);
        if (ok === false) return;
      }
      result = value;
      dlg.close();
    }
    dlg.addEventListener("close", () => {
      dlg.remove();
      resolve(result);
    });
    document.body.append(dlg);
    dlg.showModal();
    const auto = dlg.querySelector("[autofocus]") || form.querySelector("button.primary") || buttons[0];
    if (auto) auto.focus();
  });
}

/** Yes/no. Resolves true when confirmed. */
export async function confirmDialog(title, message, { okText = "OK", danger = false } = {}) {
  const v = await modal({
    title,
    body: h("p", {}, message),
    actions: [{ label: "Cancel", value: "cancel" }, { label: okText, value: "ok", primary: true, danger }],
  });
  return v === "ok";
}

/** Ask for a text (a name). `validate(text)` returns an error message or null. */
export async function promptDialog(title, label, value = "", { okText = "OK", validate } = {}) {
  const inputId = uid("prompt");
  const input = h("input", { id: inputId, type: "text", value, autofocus: true, autocomplete: "off", spellcheck: "false" });
  const error = h("p", { class: "error", role: "alert" });
  const v = await modal({
    title,
    body: [h("label", { for: inputId }, label), input, error],
    actions: [{ label: "Cancel", value: "cancel" }, { label: okText, value: "ok", primary: true }],
    onSubmit: (val) => {
      if (val !== "ok") return true;
      const msg = validate ? validate(input.value) : null;
      error.textContent = msg || "";
      return !msg;
    },
  });
  return v === "ok" ? input.value : null;
}

// A text field in a dialog starts with the name's stem selected (without the extension), as
// file managers do; done on first focus, once the field is in the document.
document.addEventListener("focusin", (e) => {
  const t = e.target;
  if (t instanceof HTMLInputElement && t.closest("dialog") && t.type === "text" && !t.dataset.selected) {
    t.dataset.selected = "1";
    const dot = t.value.lastIndexOf(".");
    t.setSelectionRange(0, dot > 0 ? dot : t.value.length);
  }
});

/**
 * A choice among `choices` ([{label, value, primary}]) with an optional "apply to all" box.
 * Resolves {value, all} (value null when dismissed).
 */
export async function chooseDialog(title, message, choices, { applyAll = false } = {}) {
  const boxId = uid("all");
  const box = h("input", { type: "checkbox", id: boxId });
  const body = [h("p", {}, message)];
  if (applyAll) body.push(h("p", { class: "check" }, box, h("label", { for: boxId }, "Apply to all remaining conflicts")));
  const value = await modal({ title, body, actions: choices });
  return { value, all: applyAll && box.checked };
}

/**
 * Pick a destination folder, starting at `start`. Folders in `exclude` (the items being moved)
 * cannot be entered. Resolves the chosen path or null.
 */
export async function pickFolder(title, start, { okText = "Move here", exclude = [] } = {}) {
  let current = start;
  const crumbs = h("nav", { class: "crumbs", "aria-label": "Folder path" });
  const list = h("ul", { class: "picker-list", role: "listbox", "aria-label": "Folders" });
  const status = h("p", { class: "muted picker-status" });
  const blocked = (p) => exclude.some((x) => p === x || p.startsWith(`${x}/`));

  async function show(path) {
    current = path;
    const parts = path.split("/").filter(Boolean);
    mount(crumbs, h("button", { type: "button", class: "link", onclick: () => show("/") }, "My files"),
      parts.map((name, i) => {
        const p = `/${parts.slice(0, i + 1).join("/")}`;
        return [h("span", { class: "sep", "aria-hidden": "true" }, "/"),
          h("button", { type: "button", class: "link", onclick: () => show(p) }, name)];
      }));
    mount(list);
    status.textContent = "Loading…";
    try {
      const entries = (await files.listAll(path)).filter((e) => e.is_dir);
      entries.sort((a, b) => collator.compare(a.name, b.name));
      status.textContent = entries.length ? "" : "No folders here.";
      mount(list, entries.map((e) => {
        const p = joinPath(path, e.name);
        const no = blocked(p);
        return h("li", { role: "option", "aria-selected": "false" },
          h("button", { type: "button", class: "picker-item", disabled: no, onclick: () => show(p) },
            icon("folder", "icon kind kind-folder"), e.name));
      }));
    } catch (err) {
      status.textContent = err.userText || String(err);
    }
  }
  show(start);
  const v = await modal({
    title,
    className: "picker",
    body: [crumbs, list, status],
    actions: [{ label: "Cancel", value: "cancel" }, { label: okText, value: "ok", primary: true }],
    onSubmit: (val) => {
      if (val === "ok" && blocked(current)) {
        status.textContent = "A folder cannot go inside itself.";
        return false;
      }
      return true;
    },
  });
  return v === "ok" ? current : null;
}

/** A short message at the bottom of the screen; kind "error" stays longer. */
export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  const el = h("div", { class: ["toast", kind], role: kind === "error" ? "alert" : null }, message,
    h("button", { type: "button", class: "icon-btn", "aria-label": "Dismiss", onclick: () => el.remove() }, icon("close")));
  box.append(el);
  setTimeout(() => el.remove(), kind === "error" ? 10000 : 4000);
}
