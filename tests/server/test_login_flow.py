"""How Nextcloud clients log in, against a real ``davdrive serve``: Login Flow v2 (start, page,
poll), v1 (the ``nc://`` redirect), the forms' CSRF and rate limits, and the OCS app password
calls ``core/getapppassword`` and ``DELETE core/apppassword``."""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

import requests

from davdrive.nextcloud.login_flow import php_urlencode
from tests.live import LiveServer

DESKTOP_UA = "Mozilla/5.0 (Linux) mirall/3.13.0 (Nextcloud, debian ClientArchitecture: x86_64)"
ANDROID_UA = "Mozilla/5.0 (Android) Nextcloud-android/3.29.0"
OCS = {"OCS-APIREQUEST": "true"}


def start_v2(srv: LiveServer) -> dict:
    r = requests.post(
        f"{srv.url}/index.php/login/v2", headers={"User-Agent": DESKTOP_UA}, timeout=30
    )
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    return r.json()


def poll(flow: dict) -> requests.Response:
    return requests.post(
        flow["poll"]["endpoint"], data={"token": flow["poll"]["token"]}, timeout=30
    )


def csrf_of(page: requests.Response) -> str:
    m = re.search(r'name="requesttoken" value="([^"]+)"', page.text)
    assert m, page.text
    return m.group(1)


def submit(
    browser: requests.Session, url: str, page: requests.Response, user: str, password: str
) -> requests.Response:
    form = {"requesttoken": csrf_of(page), "user": user, "password": password}
    return browser.post(url, data=form, allow_redirects=False, timeout=30)


def propfind(srv: LiveServer, login: str, password: str) -> int:
    r = requests.request(
        "PROPFIND",
        f"{srv.url}/remote.php/dav/files/{login}/",
        headers={"Depth": "0"},
        auth=(login, password),
        timeout=30,
    )
    return r.status_code


def check_page_headers(r: requests.Response) -> None:
    assert r.headers["Content-Type"].startswith("text/html")
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Cache-Control"] == "no-store"
    assert not re.search(r"<(script|link|img|iframe)\b", r.text)  # loads nothing


def test_login_flow_v2(live_server):
    srv = live_server
    flow = start_v2(srv)
    token = flow["poll"]["token"]
    assert len(token) >= 64
    assert flow["poll"]["endpoint"] == f"{srv.url}/index.php/login/v2/poll"
    assert flow["login"].startswith(f"{srv.url}/index.php/login/v2/flow/")
    assert token not in flow["login"]
    r = poll(flow)
    assert r.status_code == 404 and r.json() == []

    browser = requests.Session()
    page = browser.get(flow["login"], timeout=30)
    assert page.status_code == 200
    check_page_headers(page)
    assert "mirall/3.13.0" in page.text  # the client is named
    wrong = submit(browser, flow["login"], page, "alice", "not-her-password")
    assert wrong.status_code == 403
    assert "Wrong login or password" in wrong.text
    assert poll(flow).status_code == 404
    ok = submit(browser, flow["login"], wrong, "Alice", "alice-pw")
    assert ok.status_code == 200, ok.text
    assert "close this window" in ok.text

    r = poll(flow)
    assert r.status_code == 200, r.text
    grant = r.json()
    assert set(grant) == {"server", "loginName", "appPassword"}
    assert grant["server"] == srv.url and grant["loginName"] == "alice"
    assert grant["appPassword"] != "alice-pw"
    assert propfind(srv, "alice", grant["appPassword"]) == 207
    again = poll(flow)
    assert again.status_code == 404 and again.json() == []
    assert browser.get(flow["login"], timeout=30).status_code == 404  # used
    assert DESKTOP_UA in srv.cli("device", "list", "alice").stdout


def test_unknown_flow_tokens_are_404(live_server):
    srv = live_server
    r = requests.get(f"{srv.url}/index.php/login/v2/flow/{'x' * 86}", timeout=30)
    assert r.status_code == 404
    check_page_headers(r)
    assert "expired" in r.text
    r = requests.post(f"{srv.url}/index.php/login/v2/poll", data={"token": "nope"}, timeout=30)
    assert r.status_code == 404 and r.json() == []


def test_flow_form_rejects_cross_site_posts(live_server):
    srv = live_server
    flow, other = start_v2(srv), start_v2(srv)
    browser = requests.Session()
    page = browser.get(flow["login"], timeout=30)
    token = csrf_of(page)
    form = {"requesttoken": token, "user": "alice", "password": "alice-pw"}
    # a post from elsewhere carries no cookie; a field that does not match the cookie fails too
    assert requests.post(flow["login"], data=form, timeout=30).status_code == 403
    forged = {**form, "requesttoken": "x" + token[1:]}
    assert browser.post(flow["login"], data=forged, timeout=30).status_code == 403
    # the pair of one flow's page does not approve another flow
    r = browser.post(other["login"], data=form, timeout=30)
    assert r.status_code == 403
    assert poll(flow).status_code == 404 and poll(other).status_code == 404
    page = browser.get(flow["login"], timeout=30)
    assert submit(browser, flow["login"], page, "alice", "alice-pw").status_code == 200
    assert poll(flow).status_code == 200


def test_flow_form_is_rate_limited(live_server):
    srv = live_server
    flow = start_v2(srv)
    browser = requests.Session()
    page = browser.get(flow["login"], timeout=30)
    statuses = []
    for i in range(12):
        page = submit(browser, flow["login"], page, "bob", f"guess-{i}")
        statuses.append(page.status_code)
        if page.status_code == 429:
            break
    assert statuses[0] == 403 and statuses[-1] == 429, statuses
    assert int(page.headers["Retry-After"]) >= 1
    check_page_headers(page)
    page = browser.get(flow["login"], timeout=30)
    assert submit(browser, flow["login"], page, "bob", "bob-pw").status_code == 429
    assert poll(flow).status_code == 404


def test_php_urlencode():
    assert php_urlencode("jo.doe_x-1") == "jo.doe_x-1"
    assert php_urlencode("a b&c:d/é~+") == "a+b%26c%3Ad%2F%C3%A9%7E%2B"


def test_login_flow_v1_redirects_to_nc_url(live_server):
    srv = live_server
    srv.cli("user", "add", "Jo.Doe_x-1", "--password-stdin", input="pw: with & spaces\n")
    url = f"{srv.url}/index.php/login/flow"
    assert requests.get(url, headers={"User-Agent": ANDROID_UA}, timeout=30).status_code == 403
    webview = requests.Session()
    webview.headers["User-Agent"] = ANDROID_UA
    page = webview.get(url, headers=OCS, timeout=30)
    assert page.status_code == 200
    check_page_headers(page)
    assert "form-action 'self' nc:" in page.headers["Content-Security-Policy"]
    assert "Nextcloud-android/3.29.0" in page.text
    wrong = submit(webview, url, page, "Jo.Doe_x-1", "pw")
    assert wrong.status_code == 403 and "Location" not in wrong.headers
    r = submit(webview, url, wrong, "Jo.Doe_x-1", "pw: with & spaces")
    assert r.status_code == 302, r.text
    m = re.fullmatch(r"nc://login/server:(.+)&user:(.+)&password:(.+)", r.headers["Location"])
    assert m, r.headers["Location"]
    assert m.group(1) == srv.url
    assert m.group(2) == "jo.doe_x-1"  # the canonical login, as PHP's urlencode leaves it
    password = unquote_plus(m.group(3))
    assert propfind(srv, "jo.doe_x-1", password) == 207
    assert ANDROID_UA in srv.cli("device", "list", "jo.doe_x-1").stdout
    # no CSRF pair: no redirect
    forged = {"requesttoken": "x", "user": "jo.doe_x-1", "password": "pw: with & spaces"}
    r = requests.post(url, data=forged, allow_redirects=False, timeout=30)
    assert r.status_code == 403 and "Location" not in r.headers


def ocs(srv: LiveServer, method: str, what: str, auth, v: int = 2, **kw) -> requests.Response:
    url = f"{srv.url}/ocs/v{v}.php/core/{what}"
    kw.setdefault("headers", OCS)
    return requests.request(method, url, params={"format": "json"}, auth=auth, timeout=30, **kw)


def test_get_and_delete_app_password(live_server):
    srv = live_server
    main = srv.auth("alice")
    r = ocs(srv, "GET", "getapppassword", main, headers={**OCS, "User-Agent": DESKTOP_UA})
    assert r.status_code == 200, r.text
    doc = r.json()["ocs"]
    assert doc["meta"]["statuscode"] == 200
    app_password = doc["data"]["apppassword"]
    app_auth = ("alice", app_password)
    assert propfind(srv, "alice", app_password) == 207
    assert DESKTOP_UA in srv.cli("device", "list", "alice").stdout
    # no new app password from an app password, nor without the OCS header
    r = ocs(srv, "GET", "getapppassword", app_auth)
    assert r.status_code == 403 and r.json()["ocs"]["meta"]["status"] == "failure"
    assert ocs(srv, "GET", "getapppassword", main, headers={}).status_code == 412
    # the account password cannot be deleted
    r = ocs(srv, "DELETE", "apppassword", main)
    assert r.status_code == 403
    assert r.json()["ocs"]["meta"]["statuscode"] == 403
    assert propfind(srv, "alice", "alice-pw") == 207
    # the app password can, and stops working at once (it was just verified and cached)
    r = ocs(srv, "DELETE", "apppassword", app_auth)
    assert r.status_code == 200, r.text
    assert r.json()["ocs"]["meta"] == {"status": "ok", "statuscode": 200, "message": "OK"}
    assert propfind(srv, "alice", app_password) == 401
    assert ocs(srv, "DELETE", "apppassword", app_auth).status_code == 401
    assert DESKTOP_UA not in srv.cli("device", "list", "alice").stdout
    # v1 too
    v1_password = ocs(srv, "GET", "getapppassword", main, v=1).json()["ocs"]["data"]["apppassword"]
    r = ocs(srv, "DELETE", "apppassword", ("alice", v1_password), v=1)
    assert r.status_code == 200 and r.json()["ocs"]["meta"]["statuscode"] == 100
    assert propfind(srv, "alice", v1_password) == 401
