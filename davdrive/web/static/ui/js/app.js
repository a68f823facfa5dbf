// Entry point: session check, the app shell (header + navigation) and the hash router.
//   #/files/<path>   browse a folder (the default)
//   #/trash          the trash
// Later views (sharing, account) register here the same way: a route → a mount function.

import { setUnauthorizedHandler } from "./api.js";
import { BrowseView } from "./browse.js";
import { toast } from "./dialogs.js";
import { icon } from "./icons.js";
import * as live from "./live.js";
import * as session from "./session.js";
import { filesHash, parseRoute } from "./router.js";
import { TrashView } from "./trash.js";
import { Uploader } from "./upload.js";
import { h, mount } from "./util.js";

const root = document.getElementById("app");
let view = null; // the mounted view: {show(route), unmount()}
let shell = null; // {main, nav links}
let uploader = null;
let signingIn = false;

function buildShell(user) {
  const main = h("main", { id: "main", class: "main", tabindex: "-1" });
  const navFiles = h("a", { href: "#/files/", class: "nav-link" }, icon("folder"), h("span", {}, "My files"));
  const navTrash = h("a", { href: "#/trash", class: "nav-link" }, icon("trash"), h("span", {}, "Trash"));
  const logoutBtn = h("button", { type: "button", class: "btn ghost", onclick: onLogout, title: "Sign out" },
    icon("logout"), h("span", { class: "hide-narrow" }, "Sign out"));
  mount(root,
    h("a", { href: "#main", class: "skip" }, "Skip to content"),
    h("header", { class: "topbar" },
      h("a", { href: "#/files/", class: "brand" }, icon("drive", "icon brand-icon"), h("span", {}, "davdrive")),
      h("nav", { class: "nav", "aria-label": "Sections" }, navFiles, navTrash),
      h("div", { class: "user" }, live.bell(), h("span", { class: "login-name hide-narrow", title: "Signed in as" }, user.login), logoutBtn)),
    main);
  uploader = new Uploader();
  return { main, navFiles, navTrash };
}

async function onLogout() {
  if (uploader?.busy() && !window.confirm("Uploads are running. Sign out anyway?")) return;
  uploader?.cancelAll();
  live.stop();
  try {
    await session.logout();
  } catch (err) {
    toast(err.userText || String(err), "error");
  }
  view?.unmount();
  view = null;
  shell = null;
  signIn(null);
}

async function signIn(notice) {
  if (signingIn) return;
  signingIn = true;
  live.stop();
  view?.unmount();
  view = null;
  shell = null;
  const user = await session.loginScreen(root, notice);
  signingIn = false;
  start(user);
}

function start(user) {
  live.start(user); // before the shell: it resets the bell the shell then shows
  shell = buildShell(user);
  route();
}

/** Mount (or reuse) the view of the current hash. */
function route() {
  if (!shell) return;
  const r = parseRoute();
  shell.navFiles.toggleAttribute("aria-current", r.name === "files");
  shell.navTrash.toggleAttribute("aria-current", r.name === "trash");
  if (r.name === "files" && !location.hash.startsWith("#/files")) {
    history.replaceState(null, "", filesHash(r.path));
  }
  const want = r.name === "trash" ? TrashView : BrowseView;
  if (!(view instanceof want)) {
    view?.unmount();
    view = new want(shell.main, { uploader, navigate: (path) => { location.hash = filesHash(path); } });
  }
  view.show(r);
}

window.addEventListener("hashchange", route);

setUnauthorizedHandler(() => {
  if (shell) signIn("Your session has ended. Please sign in again.");
});

(async function boot() {
  try {
    const user = await session.restore();
    if (user) start(user);
    else signIn(null);
  } catch (err) {
    mount(root, h("p", { class: "boot error" }, `davdrive could not start: ${err.userText || err}`));
  }
})();
