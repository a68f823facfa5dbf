"""Browser sessions of the web app against the real server: sign in (cookie attributes, 401,
429), the CSRF rule, Basic unaffected, sign out, revocation through the devices API, and idle
expiry."""

from __future__ import annotations

import time
from pathlib import Path

import requests

COOKIE = "davdrive_session"


def sign_in(srv, login: str = "alice", password: str | None = None, **kw) -> requests.Response:
    return requests.post(
        f"{srv.url}/api/v1/session",
        json={"login": login, "password": password or srv.users[login]},
        timeout=30,
        **kw,
    )


def browser(srv, login: str = "alice") -> tuple[requests.Session, dict]:
    """A client holding a session cookie, and the session's JSON."""
    s = requests.Session()
    r = s.post(
        f"{srv.url}/api/v1/session",
        json={"login": login, "password": srv.users[login]},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert s.cookies.get(COOKIE)
    return s, r.json()


def cookie_attributes(resp: requests.Response) -> tuple[str, set[str]]:
    """The cookie's value and its attributes (lowercase, values dropped but SameSite's)."""
    raw = resp.headers["Set-Cookie"]
    first, *attrs = [a.strip() for a in raw.split(";")]
    name, _, value = first.partition("=")
    assert name == COOKIE
    out = set()
    for a in attrs:
        key, _, val = a.partition("=")
        out.add(
            f"{key.lower()}={val.lower()}" if key.lower() in ("samesite", "path") else key.lower()
        )
    return value, out


def mkdir(s: requests.Session, srv, path: str, **kw) -> requests.Response:
    return s.post(f"{srv.url}/api/v1/files/create_folder", json={"path": path}, timeout=30, **kw)


def test_sign_in_sets_the_cookie_and_answers_the_session(live_server):
    r = sign_in(live_server, "Alice", "alice-pw")  # logins are case-insensitive
    assert r.status_code == 200
    doc = r.json()
    assert set(doc) == {"login", "csrf", "device_id", "idle_timeout"}
    assert doc["login"] == "alice" and isinstance(doc["device_id"], int)
    assert doc["idle_timeout"] == 8 * 3600 and len(doc["csrf"]) >= 32
    assert r.headers["Cache-Control"] == "no-store"
    value, attrs = cookie_attributes(r)
    assert len(value) >= 43 and value not in r.text  # the token is only in the cookie
    assert {"httponly", "samesite=strict", "path=/"} <= attrs
    assert "secure" not in attrs  # plain HTTP
    cookies = {COOKIE: value}
    again = requests.get(f"{live_server.url}/api/v1/session", cookies=cookies, timeout=30)
    assert again.status_code == 200 and again.json() == doc  # a page reload reads the same
    account = requests.get(f"{live_server.url}/api/v1/account", cookies=cookies, timeout=30)
    assert account.status_code == 200 and account.json()["login"] == "alice"


def test_no_session_is_401_without_a_password_prompt(live_server):
    r = requests.get(f"{live_server.url}/api/v1/session", timeout=30)
    assert r.status_code == 401 and r.json()["error"]["code"] == "not_authenticated"
    assert "WWW-Authenticate" not in r.headers  # a browser would prompt for Basic
    r = requests.get(f"{live_server.url}/api/v1/session", cookies={COOKIE: "made-up"}, timeout=30)
    assert r.status_code == 401
    r = requests.get(f"{live_server.url}/api/v1/account", cookies={COOKIE: "x"}, timeout=30)
    assert r.status_code == 401 and "WWW-Authenticate" not in r.headers
    r = requests.get(f"{live_server.url}/api/v1/account", timeout=30)
    assert r.status_code == 401 and "Basic" in r.headers["WWW-Authenticate"]  # other clients


def test_wrong_password_is_401_without_a_cookie(live_server):
    r = sign_in(live_server, "alice", "wrong")
    assert r.status_code == 401 and r.json()["error"]["code"] == "not_authenticated"
    assert "Set-Cookie" not in r.headers and "WWW-Authenticate" not in r.headers
    r = requests.post(  # a form post (what another site could send) is no sign-in
        f"{live_server.url}/api/v1/session",
        data={"login": "alice", "password": "alice-pw"},
        timeout=30,
    )
    assert r.status_code == 400 and "Set-Cookie" not in r.headers


def test_an_app_password_does_not_sign_in(live_server):
    r = requests.post(
        f"{live_server.url}/api/v1/devices",
        json={"name": "laptop"},
        auth=live_server.auth("alice"),
        timeout=30,
    )
    assert r.status_code == 201
    assert sign_in(live_server, "alice", r.json()["app_password"]).status_code == 401


def test_repeated_failures_are_429_with_retry_after(live_server):
    for _ in range(10):
        assert sign_in(live_server, "alice", "wrong").status_code == 401
    r = sign_in(live_server, "alice")  # even the right password, for now
    assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_requests"
    assert int(r.headers["Retry-After"]) >= 1
    assert "Set-Cookie" not in r.headers


def test_the_cookie_is_secure_over_tls(live_server_factory, tmp_path):
    from tests.server.test_server import _self_signed

    cert, key = _self_signed(tmp_path)
    srv = live_server_factory(tls=(cert, key))
    r = sign_in(srv, verify=cert)
    assert r.status_code == 200
    _value, attrs = cookie_attributes(r)
    assert {"secure", "httponly", "samesite=strict", "path=/"} <= attrs


def test_cookie_writes_need_the_csrf_token(live_server):
    s, doc = browser(live_server)
    url = live_server.url
    assert s.get(f"{url}/api/v1/files/list", params={"path": "/"}, timeout=30).status_code == 200
    for headers in (
        {},
        {"X-CSRF-Token": "wrong"},
        {"X-CSRF-Token": doc["csrf"], "Origin": "https://evil.example"},
        {"X-CSRF-Token": doc["csrf"], "Origin": "null"},
    ):
        r = mkdir(s, live_server, "/nope", headers=headers)
        assert r.status_code == 403, headers
        assert r.json()["error"]["code"] == "csrf"
    listing = s.get(f"{url}/api/v1/files/list", params={"path": "/"}, timeout=30).json()
    assert listing["entries"] == []  # nothing was made
    r = mkdir(s, live_server, "/ok", headers={"X-CSRF-Token": doc["csrf"]})
    assert r.status_code in (200, 201), r.text
    r = mkdir(s, live_server, "/ok2", headers={"X-CSRF-Token": doc["csrf"], "Origin": url})
    assert r.status_code in (200, 201), r.text
    other, _ = browser(live_server)  # another session's token does not fit this one
    r = mkdir(other, live_server, "/x", headers={"X-CSRF-Token": doc["csrf"]})
    assert r.status_code == 403


def test_foreign_origin_cannot_sign_in(live_server):
    r = sign_in(live_server, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf"
    assert "Set-Cookie" not in r.headers


def test_basic_and_bearer_need_no_csrf_token(live_server):
    s, _doc = browser(live_server)  # the cookie is sent too, but Authorization decides
    r = mkdir(s, live_server, "/basic", auth=live_server.auth("bob"))
    assert r.status_code in (200, 201)
    assert r.json()["path"] == "/basic"
    listing = requests.get(
        f"{live_server.url}/api/v1/files/list",
        params={"path": "/"},
        auth=live_server.auth("bob"),
        timeout=30,
    ).json()
    assert [e["name"] for e in listing["entries"]] == ["basic"]  # bob's, not alice's


def test_sign_out_revokes_the_session(live_server):
    s, doc = browser(live_server)
    token = s.cookies.get(COOKIE)
    url = live_server.url
    r = s.delete(f"{url}/api/v1/session", timeout=30)
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf"
    r = s.delete(f"{url}/api/v1/session", headers={"X-CSRF-Token": doc["csrf"]}, timeout=30)
    assert r.status_code == 204
    _value, attrs = cookie_attributes(r)
    assert "max-age=0" in {a.replace(" ", "") for a in r.headers["Set-Cookie"].lower().split(";")}
    assert {"httponly", "path=/"} <= attrs
    cookies = {COOKIE: token}
    assert requests.get(f"{url}/api/v1/session", cookies=cookies, timeout=30).status_code == 401
    assert requests.get(f"{url}/api/v1/account", cookies=cookies, timeout=30).status_code == 401
    devices = requests.get(f"{url}/api/v1/devices", auth=live_server.auth("alice"), timeout=30)
    assert all(d["id"] != doc["device_id"] for d in devices.json()["devices"])
    # signing out again (or without a session) is harmless
    assert requests.delete(f"{url}/api/v1/session", timeout=30).status_code == 204


def test_the_browser_is_a_device_the_user_can_revoke(live_server):
    s, doc = browser(live_server)
    url, alice = live_server.url, live_server.auth("alice")
    devices = requests.get(f"{url}/api/v1/devices", auth=alice, timeout=30).json()["devices"]
    (mine,) = [d for d in devices if d["id"] == doc["device_id"]]
    assert mine["name"].startswith("Browser")
    seen = s.get(f"{url}/api/v1/devices", timeout=30).json()["devices"]
    assert [d["id"] for d in seen if d["current"]] == [doc["device_id"]]
    r = requests.delete(f"{url}/api/v1/devices/{doc['device_id']}", auth=alice, timeout=30)
    assert r.status_code == 204
    assert s.get(f"{url}/api/v1/session", timeout=30).status_code == 401
    assert s.get(f"{url}/api/v1/account", timeout=30).status_code == 401


def test_a_second_sign_in_replaces_the_browsers_session(live_server):
    s, first = browser(live_server)
    old = s.cookies.get(COOKIE)
    r = s.post(
        f"{live_server.url}/api/v1/session",
        json={"login": "alice", "password": "alice-pw"},
        timeout=30,
    )
    assert r.status_code == 200 and r.json()["device_id"] != first["device_id"]
    gone = requests.get(f"{live_server.url}/api/v1/session", cookies={COOKIE: old}, timeout=30)
    assert gone.status_code == 401


def test_an_idle_session_expires(live_server_factory, tmp_path: Path):
    cfg = tmp_path / "idle.yaml"
    cfg.write_text("session_idle_minutes: 0.05\n")  # 3 seconds
    srv = live_server_factory(extra_args=("--config", str(cfg)))
    s, doc = browser(srv)
    assert doc["idle_timeout"] == 3
    assert s.get(f"{srv.url}/api/v1/account", timeout=30).status_code == 200
    time.sleep(3.5)
    r = s.get(f"{srv.url}/api/v1/account", timeout=30)
    assert r.status_code == 401
    devices = requests.get(f"{srv.url}/api/v1/devices", auth=srv.auth("alice"), timeout=30)
    assert devices.json()["devices"] == []  # the expired session is gone from the list
