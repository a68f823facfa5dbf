"""The public pages of share links at ``/s/<token>``, against a real ``davdrive serve``.

Links and files are made through the service on the server's data directory (another process,
as an admin script would); the holder's side goes over HTTP only.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from davdrive.app import App, build_app
from davdrive.config import load_config

OWNER = "alice"
SECRET_PARENT = "Private Parent Folder"


@pytest.fixture
def srv(live_server_factory: Any) -> Any:
    return live_server_factory()


@pytest.fixture
def app(srv: Any) -> Iterator[App]:
    a = build_app(load_config(data_dir=srv.data_dir))
    try:
        yield a
    finally:
        a.close()


@pytest.fixture
def alice(app: App) -> Any:
    return app.drive.principal(OWNER)


@pytest.fixture
def shared(app: App, alice: Any) -> str:
    """``/<SECRET_PARENT>/Pub`` with two files and a sub folder; returns its path."""
    d = app.drive
    d.mkdir(alice, f"/{SECRET_PARENT}")
    d.mkdir(alice, f"/{SECRET_PARENT}/Pub")
    d.mkdir(alice, f"/{SECRET_PARENT}/Pub/sub")
    d.write_file(alice, f"/{SECRET_PARENT}/Pub/a.txt", b"alpha " * 100)
    d.write_file(alice, f"/{SECRET_PARENT}/Pub/sub/b <&>.bin", bytes(range(256)) * 8)
    d.write_file(alice, f"/{SECRET_PARENT}/secret.txt", b"not yours")
    return f"/{SECRET_PARENT}/Pub"


def page(srv: Any, token: str, suffix: str = "", **kw: Any) -> requests.Response:
    return requests.get(f"{srv.url}/s/{token}{suffix}", timeout=30, **kw)


def csp_allows_inline(r: requests.Response) -> None:
    """Every inline script and style of the page is allowed by its hash in the CSP."""
    csp = r.headers["Content-Security-Policy"]
    for tag in ("script", "style"):
        for text in re.findall(rf"<{tag}>(.*?)</{tag}>", r.text, flags=re.S):
            digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in csp, tag


def check_headers(r: requests.Response) -> None:
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    csp = r.headers["Content-Security-Policy"]
    assert "default-src" in csp and "unsafe-inline" not in csp


def test_view_page_lists_files_and_hides_the_owner(srv, app, alice, shared) -> None:
    link = app.drive.links.create(alice, shared, "view")
    r = page(srv, link.token)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    check_headers(r)
    csp_allows_inline(r)
    assert "a.txt" in r.text and ">sub</a>" in r.text and "600 B" in r.text
    assert r.text.index(">sub</a>") < r.text.index("a.txt")  # folders first
    # the web app's look: its stylesheet (allowed from this origin only), top bar, buttons
    assert '<link rel="stylesheet" href="/ui/css/app.css">' in r.text
    assert 'class="topbar"' in r.text and 'class="btn primary"' in r.text
    style_src = re.search(r"style-src ([^;]*)", r.headers["Content-Security-Policy"])
    assert style_src is not None and style_src.group(1).split()[0] == "'self'"
    assert "style=" not in r.text  # no style attributes (the CSP would block them)
    assert "Download as zip" in r.text and f"/s/{link.token}/zip" in r.text
    for hidden in (OWNER, SECRET_PARENT, "secret.txt"):
        assert hidden not in r.text
    r = page(srv, link.token, params={"path": "/sub"})
    assert r.status_code == 200
    assert "b &lt;&amp;&gt;.bin" in r.text and "b <&>.bin" not in r.text  # escaped
    assert "2.0 KiB" in r.text and OWNER not in r.text and SECRET_PARENT not in r.text
    # no way up and out of the node
    for path in ("/..", "/../secret.txt", f"/{SECRET_PARENT}"):
        r = page(srv, link.token, params={"path": path})
        assert r.status_code in (400, 404)
        assert "not yours" not in r.text
    # no upload form on a view link, and no upload through it
    assert "upload-form" not in page(srv, link.token).text
    r = requests.put(
        f"{srv.url}/s/{link.token}/upload", params={"path": "/x.txt"}, data=b"x", timeout=30
    )
    assert r.status_code == 403
    assert app.drive.try_stat(alice, f"{shared}/x.txt") is None


def test_file_link_page_and_download_counts_uses(srv, app, alice, shared) -> None:
    link = app.drive.links.create(alice, f"{shared}/a.txt", "view", max_uses=2)
    r = page(srv, link.token)
    assert r.status_code == 200 and "a.txt" in r.text and "600 B" in r.text
    assert f"/s/{link.token}/download" in r.text and SECRET_PARENT not in r.text
    head = requests.head(f"{srv.url}/s/{link.token}/download", timeout=30)
    assert head.status_code == 200 and head.headers["Content-Length"] == "600"
    for _ in range(2):
        r = page(srv, link.token, "/download")
        assert r.status_code == 200 and r.content == b"alpha " * 100
        check_headers(r)
        assert r.headers["Content-Type"] == "application/octet-stream"
        assert r.headers["Content-Length"] == "600"
        assert r.headers["Content-Disposition"].startswith("attachment;")
        assert "filename*=UTF-8''a.txt" in r.headers["Content-Disposition"]
        etag = app.drive.stat(alice, f"{shared}/a.txt").etag
        assert r.headers["ETag"] == f'"{etag}"'
    assert app.drive.links.get(alice, link.id).uses == 2  # HEAD counted nothing
    gone = page(srv, link.token, "/download")
    assert gone.status_code == 404
    assert page(srv, link.token).status_code == 404


def test_download_names_are_rfc6266(srv, app, alice, shared) -> None:
    app.drive.write_file(alice, f'{shared}/Résumé "q".txt', b"r")
    link = app.drive.links.create(alice, shared, "view")
    r = page(srv, link.token, "/download", params={"path": '/Résumé "q".txt'})
    assert r.status_code == 200 and r.content == b"r"
    cd = r.headers["Content-Disposition"]
    assert "filename*=UTF-8''R%C3%A9sum%C3%A9%20%22q%22.txt" in cd
    assert 'filename="R_sum_ _q_.txt"' in cd


def test_zip_of_a_folder_has_the_same_bytes(srv, app, alice, shared) -> None:
    big = os.urandom(1 << 20) * 30  # 30 MiB, streamed through the archive
    app.drive.write_file(alice, f"{shared}/sub/big.bin", big)
    app.drive.mkdir(alice, f"{shared}/empty")
    link = app.drive.links.create(alice, shared, "view", max_uses=2)
    with requests.get(f"{srv.url}/s/{link.token}/zip", stream=True, timeout=60) as r:
        assert r.status_code == 200 and r.headers["Content-Type"] == "application/zip"
        assert "filename*=UTF-8''Pub.zip" in r.headers["Content-Disposition"]
        assert "Content-Length" not in r.headers  # a stream, not a built archive
        check_headers(r)
        body = b"".join(r.iter_content(1 << 20))
    with zipfile.ZipFile(io.BytesIO(body)) as z:
        assert z.testzip() is None
        names = set(z.namelist())
        assert {"a.txt", "sub/", "sub/b <&>.bin", "sub/big.bin", "empty/"} <= names
        assert z.read("a.txt") == b"alpha " * 100
        assert z.read("sub/b <&>.bin") == bytes(range(256)) * 8
        assert z.read("sub/big.bin") == big
        assert not any(SECRET_PARENT in n or "secret" in n for n in names)
    assert app.drive.links.get(alice, link.id).uses == 1
    r = page(srv, link.token, "/zip", params={"path": "/sub"})
    assert r.status_code == 200
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        assert sorted(z.namelist()) == ["b <&>.bin", "big.bin"]
    assert page(srv, link.token, "/zip").status_code == 404  # used up


def test_password_form_cookie_and_rate_limit(srv, app, alice, shared) -> None:
    link = app.drive.links.create(alice, shared, "view", password="open sesame")
    r = page(srv, link.token)
    assert r.status_code == 200 and 'type="password"' in r.text and "a.txt" not in r.text
    assert ">Pub<" not in r.text and "<title>Pub" not in r.text  # not even its name
    check_headers(r)
    assert page(srv, link.token, "/download", params={"path": "/a.txt"}).status_code == 403
    assert page(srv, link.token, "/zip").status_code == 403
    url = f"{srv.url}/s/{link.token}"
    wrong = requests.post(url, data={"password": "nope"}, timeout=30, allow_redirects=False)
    assert wrong.status_code == 403 and "not right" in wrong.text and "a.txt" not in wrong.text
    s = requests.Session()
    right = s.post(url, data={"password": "open sesame"}, timeout=30, allow_redirects=False)
    assert right.status_code == 303 and right.headers["Location"].endswith(f"/s/{link.token}")
    cookie = right.headers["Set-Cookie"]
    assert cookie.startswith(f"dd_link_{link.id}=")
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=strict" in lowered
    assert f"Path=/s/{link.token};" in cookie + ";" and "secure" not in lowered  # plain HTTP
    listing = s.get(url, timeout=30)
    assert listing.status_code == 200 and "a.txt" in listing.text
    dl = s.get(f"{url}/download", params={"path": "/a.txt"}, timeout=30)
    assert dl.status_code == 200 and dl.content == b"alpha " * 100
    forged = requests.get(url, cookies={f"dd_link_{link.id}": "0" * 64}, timeout=30)
    assert "a.txt" not in forged.text
    # brute force: the sixth wrong password in a row answers 429 with Retry-After
    statuses = []
    for _ in range(6):
        r = requests.post(url, data={"password": "guess"}, timeout=30, allow_redirects=False)
        statuses.append(r.status_code)
    assert statuses[-1] == 429 and 403 in statuses
    assert int(r.headers["Retry-After"]) > 0
    # even the right password waits now
    r = requests.post(url, data={"password": "open sesame"}, timeout=30, allow_redirects=False)
    assert r.status_code == 429


def test_upload_page_puts_files_into_the_owners_folder(srv, app, alice, shared) -> None:
    link = app.drive.links.create(alice, shared, "upload", max_uses=3)
    r = page(srv, link.token)
    assert r.status_code == 200 and 'id="upload-form"' in r.text and "a.txt" in r.text
    assert "upload.onprogress" in r.text and "multiple" in r.text
    assert "<script>" in r.text
    csp_allows_inline(r)
    body = os.urandom(3 << 20)
    put = requests.put(
        f"{srv.url}/s/{link.token}/upload", params={"path": "/sub/new.bin"}, data=body, timeout=60
    )
    assert put.status_code == 201, put.text
    assert put.json() == {"name": "new.bin", "size": len(body)}
    assert app.drive.read_bytes(alice, f"{shared}/sub/new.bin") == body
    # an upload link adds, it never overwrites
    clash = requests.put(
        f"{srv.url}/s/{link.token}/upload", params={"path": "/a.txt"}, data=b"evil", timeout=30
    )
    assert clash.status_code == 403 and "error" in clash.json()
    assert app.drive.read_bytes(alice, f"{shared}/a.txt") == b"alpha " * 100
    assert app.drive.links.get(alice, link.id).uses == 1
    listing = page(srv, link.token, params={"path": "/sub"})
    assert "new.bin" in listing.text


def test_drop_shows_nothing_and_renames_a_clash(srv, app, alice, shared) -> None:
    link = app.drive.links.create(alice, shared, "drop")
    r = page(srv, link.token)
    assert r.status_code == 200 and 'id="upload-form"' in r.text
    check_headers(r)
    for name in ("a.txt", "sub/", "<table", "/zip", "/download"):
        assert name not in r.text
    assert page(srv, link.token, params={"path": "/sub"}).text.count("<table") == 0
    assert page(srv, link.token, "/download", params={"path": "/a.txt"}).status_code == 403
    assert page(srv, link.token, "/zip").status_code == 403
    url = f"{srv.url}/s/{link.token}/upload"
    r = requests.put(url, params={"path": "/a.txt"}, data=b"dropped", timeout=30)
    assert r.status_code == 201 and r.json() == {"size": 7}  # the new name is not told
    assert app.drive.read_bytes(alice, f"{shared}/a.txt") == b"alpha " * 100
    assert app.drive.read_bytes(alice, f"{shared}/a (2).txt") == b"dropped"


def test_gone_links_answer_one_404(srv, app, alice, shared) -> None:
    unknown = page(srv, "x" * 32)
    assert unknown.status_code == 404
    check_headers(unknown)
    revoked = app.drive.links.create(alice, shared, "view")
    app.drive.links.revoke(alice, revoked.id)
    expiring = app.drive.links.create(alice, shared, "view", expires=time.time() + 1.0)
    assert page(srv, expiring.token).status_code == 200
    time.sleep(1.2)
    for token in (revoked.token, expiring.token):
        for suffix in ("", "/download", "/zip"):
            r = page(srv, token, suffix)
            assert r.status_code == 404 and r.text == unknown.text
        assert page(srv, token, "/download").text == page(srv, "y" * 40, "/zip").text
    short = page(srv, "abc")
    assert short.status_code == 404 and short.text == unknown.text


def test_link_dav_is_routed_to_the_webdav_app(srv, app, alice, shared) -> None:
    link = app.drive.links.create(alice, shared, "view")
    for suffix in ("/dav", "/dav/"):
        r = requests.request(
            "PROPFIND", f"{srv.url}/s/{link.token}{suffix}", headers={"Depth": "1"}, timeout=30
        )
        assert r.status_code == 207, r.text
        assert "a.txt" in r.text and OWNER not in r.text
    r = page(srv, link.token, "/dav/a.txt")
    assert r.status_code == 200 and r.content == b"alpha " * 100
    # a name that merely starts with "dav" is the pages' business
    assert page(srv, link.token, "/davx").status_code == 404


def test_zip_stream_yields_as_it_reads() -> None:
    """The archive leaves in pieces while the file is still being read: never built whole."""
    from davdrive.httpcommon.zipstream import PIECE, ZipStream

    size = 30 << 20
    reader = io.BytesIO(os.urandom(size))
    z = ZipStream()
    chunks = []
    before_end = 0
    for chunk in z.add_file("big.bin", time.time(), size, reader):
        assert len(chunk) <= PIECE + 1024
        if reader.tell() < size:
            before_end += 1
        chunks.append(chunk)
    chunks.extend(z.finish())
    assert before_end >= 25  # most pieces left before the reader was done
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as archive:
        assert archive.read("big.bin") == reader.getvalue()


def test_password_cookie_is_secure_over_https(live_server_factory, tmp_path) -> None:
    from tests.server.test_server import _self_signed

    cert, key = _self_signed(tmp_path)
    srv = live_server_factory(tls=(cert, key))
    a = build_app(load_config(data_dir=srv.data_dir))
    try:
        alice = a.drive.principal(OWNER)
        a.drive.mkdir(alice, "/Pub")
        link = a.drive.links.create(alice, "/Pub", "view", password="pw")
    finally:
        a.close()
    r = requests.post(
        f"{srv.url}/s/{link.token}",
        data={"password": "pw"},
        verify=cert,
        timeout=30,
        allow_redirects=False,
    )
    assert r.status_code == 303
    assert "; secure" in r.headers["Set-Cookie"].lower()


def test_doors_of_link_paths() -> None:
    from davdrive.server.wsgi import door_of

    assert door_of("/s/abcdefghijklmnop") == "ui"
    assert door_of("/s/abcdefghijklmnop/download") == "ui"
    assert door_of("/s/abcdefghijklmnop/dav") == "dav"
    assert door_of("/s/abcdefghijklmnop/dav/a/b") == "dav"
    assert door_of("/s/abcdefghijklmnop/davx") == "ui"
