"""The browser session as a real browser holds it: the cookie set through ``login`` reaches
the API from the app's pages, and the CSRF rule applies to the page's own requests."""

from __future__ import annotations

from tests.ui.conftest import login

FETCH = """async ([url, headers]) => {
  const r = await fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json',
    ...headers}, body: JSON.stringify({path: '/made-in-browser'})});
  return [r.status, await r.json()];
}"""


def test_the_session_cookie_works_from_the_apps_pages(page, ui_server):
    session = login(page, ui_server, "alice")
    cookie = next(c for c in page.context.cookies() if c["name"] == "davdrive_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.goto(f"{ui_server.url}/ui/")
    got = page.evaluate("async () => (await fetch('/api/v1/session')).json()")
    assert got["login"] == "alice" and got["csrf"] == session["csrf"]
    assert page.evaluate("() => document.cookie") == ""  # HttpOnly: no script reads it
    url = "/api/v1/files/create_folder"
    status, body = page.evaluate(FETCH, [url, {}])
    assert status == 403 and body["error"]["code"] == "csrf"
    status, body = page.evaluate(FETCH, [url, {"X-CSRF-Token": session["csrf"]}])
    assert status in (200, 201) and body["path"] == "/made-in-browser"
