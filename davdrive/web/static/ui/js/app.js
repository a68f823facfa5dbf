// Entry point: session check, the app shell (header + navigation) and the hash router.
//   #/files/<path>   browse a folder (the default)
//   #/trash          the trash
//   #/shared         shared with me, my shares and links
//   #/account        quota, devices and app passwords

import { AccountView } from "./account.js";
import { setUnauthorizedHandler } from "./api.js";
import { BrowseView } from "./browse.js";
import { toast } from "./dialogs.js";
import { icon } from "./icons.js";
import * as live from "./live.js";
import * as session from "./session.js";
import { filesHash, parseRoute } from "./router.js";
import { SharedView } from "./shared.js";
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
  const navShared = h("a", { href: "#/shared", class: "nav-link" }, icon("share"), h("span", {}, "Shared"));
  const navTrash = h("a", { href: "#/trash", class: "nav-link" }, icon("trash"), h("span", {}, "Trash"));
  const navAccount = h("a", { href: "#/account", class: "nav-link login-name", title: "Your account" },
    icon("user"), h("span", { class: "hide-narrow" }, user.login));
  const logoutBtn = h("button", { type: "button", class: "btn ghost", onclick: onLogout, title: "Sign out" },
    icon("logout"), h("span", { class: "hide-narrow" }, "Sign out"));
  mount(root,
    h("a", { href: "#main", class: "skip" }, "Skip to content"),
    h("header", { class: "topbar" },
      h("a", { href: "#/files/", class: "brand" }, icon("drive", "icon brand-icon"), h("span", {}, "davdrive")),
      h("nav", { class: "nav", "aria-label": "Sections" }, navFiles, navShared, navTrash),
      h("div", { class: "user" }, live.bell(), navAccount, logoutBtn)),
    main);
  uploader = new Uploader();
  return { main, nav: { files: navFiles, shared: navShared, trash: navTrash, account: navAccount } };
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

const VIEWS = { files: BrowseView, trash: TrashView, shared: SharedView, account: AccountView };

/** Mount (or reuse) the view of the current hash. */
function route() {
  if (!shell) return;
  const r = parseRoute();
  for (const [name, link] of Object.entries(shell.nav)) link.toggleAttribute("aria-current", r.name === name);
  if (r.name === "files" && !location.hash.startsWith("#/files")) {
    history.replaceState(null, "", filesHash(r.path));
  }
  const want = VIEWS[r.name] || BrowseView;
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
