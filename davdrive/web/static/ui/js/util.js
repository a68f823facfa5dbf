// Small helpers: DOM building, formatting, path arithmetic. No dependencies.

/**
 * Build an element: h("button", {class: "x", onclick: fn, "aria-label": "Close"}, "text", child).
 * Attributes starting with "on" become listeners; `class` may be an array; null/false skip.
 * Never sets a `style` attribute (the CSP forbids inline styles).
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key in el && typeof value !== "string") {
      el[key] = value; // properties such as checked, disabled, value, max
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** Replace all children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const UNITS = ["KB", "MB", "GB", "TB", "PB"];

/** 1536 → "1.5 KB" (binary multiples, as file managers show them). */
export function formatSize(n) {
  if (n === null || n === undefined) return "";
  if (n < 1024) return `${n} B`;
  let value = n;
  let unit = "B";
  for (const u of UNITS) {
    value /= 1024;
    unit = u;
    if (value < 1024) break;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${unit}`;
}

const sameYear = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
const otherYear = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric" });
const full = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

/** An ISO date → "Mar 4, 14:05" (this year) or "Mar 4, 2021"; "just now" within a minute. */
export function formatDate(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const age = Date.now() - d.getTime();
  if (age >= 0 && age < 60_000) return "just now";
  return (d.getFullYear() === new Date().getFullYear() ? sameYear : otherYear).format(d);
}

/** The full date and time (for tooltips). */
export function formatDateFull(iso) {
  return iso ? full.format(new Date(iso)) : "";
}

// -- paths (always absolute, "/" is the root, no trailing slash) --------------------------------

export function joinPath(dir, name) {
  return dir === "/" ? `/${name}` : `${dir}/${name}`;
}

export function parentPath(path) {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

export function baseName(path) {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** "report.pdf" → ["report", ".pdf"]; dot files keep their name whole. */
export function splitExt(name) {
  const i = name.lastIndexOf(".");
  return i > 0 ? [name.slice(0, i), name.slice(i)] : [name, ""];
}

/** "a.txt", 2 → "a (2).txt" */
export function numberedName(name, n) {
  const [stem, ext] = splitExt(name);
  return `${stem} (${n})${ext}`;
}

/** Characters the server refuses in a name (and what makes a path ambiguous). */
export function badName(name) {
  if (!name || !name.trim()) return "The name is empty.";
  if (name === "." || name === "..") return "That name is reserved.";
  if (/[\/\\\0]/.test(name)) return "A name cannot contain / or \\.";
  return null;
}

export const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

/** Call `fn` at most once per animation frame. */
export function throttleFrame(fn) {
  let queued = false;
  return (...args) => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      fn(...args);
    });
  };
}

let idCounter = 0;
/** A unique DOM id. */
export function uid(prefix = "id") {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}
