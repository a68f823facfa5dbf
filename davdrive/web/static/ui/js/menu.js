// A popup menu (role="menu") anchored to a button or to the pointer; arrow keys move, Escape
// closes and gives the focus back. Positioned through the CSSOM (allowed by the CSP).

import { icon } from "./icons.js";
import { h } from "./util.js";

let open = null;

export function closeMenu() {
  if (!open) return;
  const { el, restore } = open;
  open = null;
  el.remove();
  document.removeEventListener("pointerdown", onOutside, true);
  if (restore && document.contains(restore)) restore.focus();
}

function onOutside(e) {
  if (open && !open.el.contains(e.target)) closeMenu();
}

/**
 * Show `items` ([{label, icon, action, danger}] or null for a separator) at `anchor` (an
 * element) or at {x, y}. The first item takes the focus.
 */
export function showMenu(anchor, items, { label = "Actions" } = {}) {
  closeMenu();
  const buttons = [];
  const el = h("div", { class: "menu", role: "menu", "aria-label": label },
    items.map((it) => {
      if (!it) return h("div", { class: "menu-sep", role: "separator" });
      const b = h("button", {
        type: "button",
        role: "menuitem",
        class: ["menu-item", it.danger && "danger"],
        tabindex: "-1",
        onclick: () => {
          closeMenu();
          it.action();
        },
      }, it.icon ? icon(it.icon) : null, h("span", {}, it.label));
      buttons.push(b);
      return b;
    }));
  el.addEventListener("keydown", (e) => {
    const i = buttons.indexOf(document.activeElement);
    if (e.key === "ArrowDown") buttons[(i + 1) % buttons.length].focus();
    else if (e.key === "ArrowUp") buttons[(i - 1 + buttons.length) % buttons.length].focus();
    else if (e.key === "Home") buttons[0].focus();
    else if (e.key === "End") buttons[buttons.length - 1].focus();
    else if (e.key === "Escape" || e.key === "Tab") closeMenu();
    else return;
    e.preventDefault();
    e.stopPropagation();
  });
  document.body.append(el);
  // place it below the anchor (or at the pointer), kept inside the window
  const r = anchor instanceof Element ? anchor.getBoundingClientRect() : { left: anchor.x, right: anchor.x, bottom: anchor.y, top: anchor.y };
  const w = el.offsetWidth;
  const ht = el.offsetHeight;
  let left = anchor instanceof Element ? r.right - w : r.left;
  let top = r.bottom + 2;
  if (top + ht > window.innerHeight - 4) top = Math.max(4, r.top - ht - 2);
  left = Math.min(Math.max(4, left), window.innerWidth - w - 4);
  el.style.left = `${left}px`;
  el.style.top = `${top}px`;
  open = { el, restore: anchor instanceof Element ? anchor : document.activeElement };
  document.addEventListener("pointerdown", onOutside, true);
  buttons[0]?.focus();
}
