// The session: who is signed in (GET /session), the login screen, logout.

import { session as api, setCsrf } from "./api.js";
import { icon } from "./icons.js";
import { h, mount, uid } from "./util.js";

/** The current session ({login, csrf, device_id, idle_timeout}) or null. */
let current = null;

export function user() {
  return current;
}

/** Ask the server whether the cookie still holds a session; keeps the CSRF token. */
export async function restore() {
  try {
    current = await api.current();
  } catch (err) {
    if (err.status !== 401) throw err;
    current = null;
  }
  setCsrf(current?.csrf);
  return current;
}

export async function logout() {
  try {
    await api.logout();
  } finally {
    current = null;
    setCsrf(null);
  }
}

/**
 * Draw the login screen into `root`; resolves with the session once the user signed in.
 * `notice` is shown above the form (e.g. "your session ended").
 */
export function loginScreen(root, notice) {
  return new Promise((resolve) => {
    const loginId = uid("login");
    const passId = uid("password");
    const login = h("input", { id: loginId, name: "username", autocomplete: "username", required: true, autocapitalize: "none", spellcheck: "false" });
    const password = h("input", { id: passId, name: "password", type: "password", autocomplete: "current-password", required: true });
    const error = h("p", { class: "error", role: "alert", id: uid("login-error") });
    const submit = h("button", { type: "submit", class: "btn primary wide" }, "Sign in");
    let waitTimer = null;

    const form = h("form", { class: "login-form", "aria-describedby": error.id, onsubmit: onSubmit },
      h("label", { for: loginId }, "Account"), login,
      h("label", { for: passId }, "Password"), password,
      error, submit);

    async function onSubmit(e) {
      e.preventDefault();
      error.textContent = "";
      submit.disabled = true;
      try {
        current = await api.login(login.value.trim(), password.value);
        setCsrf(current.csrf);
        resolve(current);
      } catch (err) {
        password.value = "";
        if (err.status === 401 || err.status === 403) {
          error.textContent = "Wrong account or password.";
          password.focus();
        } else if (err.status === 429) {
          countdown(err.retryAfter || 30);
          return;
        } else {
          error.textContent = err.userText || String(err);
        }
        submit.disabled = false;
      }
    }

    // 429: say how long to wait, and keep the button off until then
    function countdown(seconds) {
      clearInterval(waitTimer);
      let left = seconds;
      const tick = () => {
        if (left <= 0) {
          clearInterval(waitTimer);
          error.textContent = "You can try again now.";
          submit.disabled = false;
          return;
        }
        error.textContent = `Too many attempts, wait ${left} s.`;
        left -= 1;
      };
      tick();
      waitTimer = setInterval(tick, 1000);
    }

    mount(root,
      h("main", { class: "login" },
        h("div", { class: "login-card" },
          h("h1", { class: "brand" }, icon("drive", "icon brand-icon"), "davdrive"),
          notice ? h("p", { class: "notice" }, notice) : null,
          form)));
    login.focus();
  });
}
