"""CSRF against the API in a real browser (Debian's Chromium) where alice is signed in.

A second, tiny HTTP server plays the attacker: it serves pages that auto-submit a form (and a
``no-cors`` fetch) to ``POST /api/v1/files/create_folder`` of the app. The app runs at
``http://127.0.0.1:<port>``; the attacker's pages are loaded either as ``http://localhost:<p2>``
(another *site*: the ``SameSite=Strict`` cookie stays home) or as ``http://127.0.0.1:<p2>``
(the same site, another *origin*: the browser sends the cookie, and the server's ``Origin``
check and CSRF token must refuse). The forms use the ``enctype="text/plain"`` trick, whose
body is valid JSON; a control from the app's own origin shows that this very body creates the
folder when the CSRF token is sent, and is refused (403) without it, so every refusal below is
the protection at work and not a malformed request. Results are checked with alice's Basic auth.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, Response

from tests.ui.conftest import login

pytestmark = pytest.mark.timeout(120)
ENDPOINT = "/api/v1/files/create_folder"

FORM_PAGE = """<!doctype html><html><body>
<form id="f" method="POST" action="{action}" enctype="text/plain">
<input type="hidden" name='{{"path": "{path}", "pad": "' value='"}}'>
</form>
<script>document.getElementById('f').submit();</script>
</body></html>"""

FETCH_PAGE = """<!doctype html><html><body><p id="out">sending</p>
<script>
fetch({action}, {{method: 'POST', mode: 'no-cors', credentials: 'include',
  headers: {{'Content-Type': 'text/plain'}}, body: {body}}})
  .then(function (r) {{ document.getElementById('out').textContent = 'sent ' + r.type; }})
  .catch(function (e) {{ document.getElementById('out').textContent = 'failed ' + e; }});
</script></body></html>"""


class Attacker:
    """A local HTTP server of HTML pages (``pages[path] = html``) on a port of its own."""

    def __init__(self) -> None:
        pages: dict[str, str] = {}
        self.pages = pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                body = pages.get(self.path.split("?")[0])
                if body is None:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def attacker() -> Iterator[Attacker]:
    a = Attacker()
    try:
        yield a
    finally:
        a.close()


def exists(srv: Any, path: str) -> bool:
    r = requests.get(
        f"{srv.url}/api/v1/files/metadata",
        params={"path": path},
        auth=srv.auth("alice"),
        timeout=30,
    )
    assert r.status_code in (200, 404), r.text
    return r.status_code == 200


def form_page(srv: Any, path: str) -> str:
    return FORM_PAGE.format(action=srv.url + ENDPOINT, path=path)


def fetch_page(srv: Any, path: str) -> str:
    return FETCH_PAGE.format(
        action=json.dumps(srv.url + ENDPOINT), body=json.dumps(json.dumps({"path": path}))
    )


def sent_cookie(resp: Response) -> bool:
    """Whether the browser sent alice's session cookie with the request of ``resp``."""
    return "davdrive_session=" in resp.request.all_headers().get("cookie", "")


def is_attack(r: Response) -> bool:
    return r.url.startswith("http://127.0.0.1") and r.url.endswith(ENDPOINT)


# -- the control: the same body from the app's own origin ------------------------------------------
CONTROL = """async ([url, body, headers]) => {
  const r = await fetch(url, {method: 'POST', headers: {'Content-Type': 'text/plain', ...headers},
    body: body});
  return [r.status, await r.text()];
}"""


def test_same_origin_form_without_token_is_refused_and_with_token_works(ui_server, page: Page):
    session = login(page, ui_server, "alice")
    page.goto(f"{ui_server.url}/s/no-such-link")  # any page of the app's origin
    # a plain form post of the app's own origin: cookie and a matching Origin, but no token
    with page.expect_response(is_attack) as answer:
        page.evaluate(
            """([action, name]) => {
              const f = document.createElement('form');
              f.method = 'POST'; f.action = action; f.enctype = 'text/plain';
              const i = document.createElement('input');
              i.type = 'hidden'; i.name = name; i.value = '"}';
              f.appendChild(i); document.body.appendChild(f); f.submit();
            }""",
            [ui_server.url + ENDPOINT, '{"path": "/no-token-form", "pad": "'],
        )
    assert sent_cookie(answer.value)
    assert answer.value.status == 403
    assert answer.value.json()["error"]["code"] == "csrf"
    assert not exists(ui_server, "/no-token-form")

    # the same text/plain body by fetch: refused without the token, created with it
    page.goto(f"{ui_server.url}/s/no-such-link")
    body = '{"path": "/with-token", "pad": "="}\r\n'  # what the form above sent
    status, text = page.evaluate(CONTROL, [ENDPOINT, body, {}])
    assert status == 403 and json.loads(text)["error"]["code"] == "csrf"
    assert not exists(ui_server, "/with-token")
    status, text = page.evaluate(CONTROL, [ENDPOINT, body, {"X-CSRF-Token": session["csrf"]}])
    assert status == 201, text
    assert json.loads(text)["path"] == "/with-token"
    assert exists(ui_server, "/with-token")


# -- another site ----------------------------------------------------------------------------------
def test_another_sites_form_and_fetch_change_nothing(ui_server, page: Page, attacker):
    login(page, ui_server, "alice")
    # the layer that stops another site first (were the cookie sent, the Origin check and the
    # token would refuse, as test_same_site_other_origin_form_is_refused shows)
    cookie = next(c for c in page.context.cookies() if c["name"] == "davdrive_session")
    assert cookie["sameSite"] == "Strict" and cookie["httpOnly"]
    attacker.pages["/form.html"] = form_page(ui_server, "/evil-form")
    attacker.pages["/fetch.html"] = fetch_page(ui_server, "/evil-fetch")
    evil = f"http://localhost:{attacker.port}"

    # the form posts as the top-level page: the browser leaves the SameSite=Strict cookie home
    with page.expect_response(is_attack) as answer:
        page.goto(f"{evil}/form.html")
    assert answer.value.request.method == "POST"
    assert answer.value.request.headers.get("origin") == evil
    assert not sent_cookie(answer.value)
    assert answer.value.status == 401  # no cookie, no credentials: nobody
    assert not exists(ui_server, "/evil-form")

    # a no-cors fetch: the page cannot read the answer, and the server refused it anyway
    with page.expect_response(is_attack) as answer:
        page.goto(f"{evil}/fetch.html")
    assert answer.value.status == 401  # the cookie stayed home here too
    assert page.locator("#out").text_content() in ("sent opaque", "sending")
    assert not exists(ui_server, "/evil-fetch")

    # alice's session is intact: her own browser still works with the token
    assert page.request.get(f"{ui_server.url}/api/v1/session").status == 200


def test_same_site_other_origin_form_is_refused(ui_server, page: Page, attacker):
    """127.0.0.1 on another port is the same site: the cookie goes along, so the server's
    Origin check and the missing CSRF token are what refuse it."""
    login(page, ui_server, "alice")
    attacker.pages["/form.html"] = form_page(ui_server, "/sibling-form")
    attacker.pages["/fetch.html"] = fetch_page(ui_server, "/sibling-fetch")
    sibling = f"http://127.0.0.1:{attacker.port}"

    with page.expect_response(is_attack) as answer:
        page.goto(f"{sibling}/form.html")
    assert answer.value.request.headers.get("origin") == sibling
    assert sent_cookie(answer.value)  # SameSite does not help here
    assert answer.value.status == 403
    assert answer.value.json()["error"]["code"] == "csrf"
    assert not exists(ui_server, "/sibling-form")

    with page.expect_response(is_attack) as answer:
        page.goto(f"{sibling}/fetch.html")
    # 403, not 401: the cookie reached the server (the fetch's own headers are not reported)
    assert answer.value.status == 403
    assert not exists(ui_server, "/sibling-fetch")
