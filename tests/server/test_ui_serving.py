"""The web app's files at /ui/: redirects, content types, caching, the CSP, the SPA fallback,
and no way out of the static folder (``..``, encoded dots, backslashes, dot files, links)."""

from __future__ import annotations

import http.client
import io
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from werkzeug.test import Client

from davdrive.web.ui import CSP, make_ui_app

INDEX = b"<!doctype html><title>davdrive</title><script type=module src=app.js></script>"
FILES = {
    "index.html": INDEX,
    "app.js": b"export const x = 1;\n",
    "css/app.css": b"body{}\n",
    "icon.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>",
    "logo.png": b"\x89PNG\r\n\x1a\n",
    "manifest.webmanifest": b"{}",
    "js/views/files.js": b"export default 1;\n",
    ".hidden.js": b"secret",
}


@pytest.fixture
def static(tmp_path: Path) -> Path:
    root = tmp_path / "ui"
    for name, data in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (tmp_path / "secret.txt").write_text("outside")
    os.symlink(tmp_path / "secret.txt", root / "link.txt")
    return root


@pytest.fixture
def client(static: Path) -> Client:
    return Client(make_ui_app(static_dir=static))


def raw_get(app, path: str) -> tuple[str, dict[str, str], bytes]:
    """Call the WSGI app with ``PATH_INFO`` exactly as given (no client normalizes it)."""
    out: dict[str, object] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info=None):
        out["status"], out["headers"] = status, dict(headers)

    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "wsgi.input": io.BytesIO(),
        "wsgi.url_scheme": "http",
    }
    body = b"".join(app(environ, start_response))
    return out["status"], out["headers"], body  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("path", "status", "location"),
    [
        ("/", 302, "/ui/"),
        ("/login", 302, "/ui/#/login"),
        ("/ui", 301, "/ui/"),
    ],
)
def test_redirects(client, path, status, location):
    r = client.get(path)
    assert r.status_code == status and r.headers["Location"] == location


@pytest.mark.parametrize(
    ("path", "kind", "data"),
    [
        ("/ui/", "text/html; charset=utf-8", INDEX),
        ("/ui/index.html", "text/html; charset=utf-8", INDEX),
        ("/ui/app.js", "text/javascript; charset=utf-8", FILES["app.js"]),
        ("/ui/js/views/files.js", "text/javascript; charset=utf-8", FILES["js/views/files.js"]),
        ("/ui/css/app.css", "text/css; charset=utf-8", FILES["css/app.css"]),
        ("/ui/icon.svg", "image/svg+xml", FILES["icon.svg"]),
        ("/ui/logo.png", "image/png", FILES["logo.png"]),
        ("/ui/manifest.webmanifest", "application/manifest+json", b"{}"),
    ],
)
def test_files_with_their_types_and_headers(client, path, kind, data):
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == kind and r.data == data
    assert r.headers["Content-Length"] == str(len(data))
    assert r.headers["Cache-Control"] == "no-cache"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["Content-Security-Policy"] == CSP


def test_html_gets_the_strict_csp(client):
    csp = client.get("/ui/").headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split("; ")}
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"] and directives["style-src"] == ["'self'"]
    assert directives["connect-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"] and directives["base-uri"] == ["'none'"]
    assert directives["img-src"] == ["'self'", "blob:", "data:"]
    assert directives["form-action"] == ["'self'"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp


@pytest.mark.parametrize("path", ["/ui/files", "/ui/files/docs/2024", "/ui/trash/", "/ui/js"])
def test_deep_links_get_the_app(client, path):
    r = client.get(path)
    assert r.status_code == 200 and r.data == INDEX
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"


def test_etag_and_304(client, static):
    first = client.get("/ui/app.js")
    etag = first.headers["ETag"]
    again = client.get("/ui/app.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
    (static / "app.js").write_bytes(b"export const x = 2;\n")  # a new release
    changed = client.get("/ui/app.js", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.data == b"export const x = 2;\n"
    assert changed.headers["ETag"] != etag


def test_head_and_methods(client):
    r = client.head("/ui/app.js")
    assert r.status_code == 200 and r.data == b""
    assert r.headers["Content-Length"] == str(len(FILES["app.js"]))
    r = client.post("/ui/app.js")
    assert r.status_code == 405 and "GET" in r.headers["Allow"]


@pytest.mark.parametrize("path", ["/ui/missing.js", "/ui/js/nope.css", "/ui/favicon.ico"])
def test_a_missing_asset_is_404(client, path):
    r = client.get(path)
    assert r.status_code == 404 and INDEX not in r.data


@pytest.mark.parametrize(
    "path",
    [
        "/ui/../secret.txt",
        "/ui/js/../../secret.txt",
        "/ui/..",
        "/ui/%2e%2e/secret.txt",  # as a client sent it, decoded by the server: "/ui/../..."
        "/ui/..\\secret.txt",
        "/ui/js\\..\\..\\secret.txt",
        "/ui/.hidden.js",
        "/ui/link.txt",  # a symbolic link out of the folder
        "/ui/\x00.js",
    ],
)
def test_nothing_outside_the_folder(static, path):
    app = make_ui_app(static_dir=static)
    decoded = path.replace("%2e", ".")
    status, _headers, body = raw_get(app, decoded)
    assert status.startswith("404"), (path, status)
    assert b"outside" not in body and b"secret" not in body


def test_without_an_index_the_app_is_404(tmp_path):
    client = Client(make_ui_app(static_dir=tmp_path))
    assert client.get("/ui/").status_code == 404


# -- through the real server ---------------------------------------------------------------------
def raw_http(url: str, method: str, path: str) -> http.client.HTTPResponse:
    """A request whose path goes out byte for byte (requests would normalize the dots)."""
    conn = http.client.HTTPConnection(urlsplit(url).netloc, timeout=30)
    conn.request(method, path)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


def test_the_server_routes_the_app(live_server):
    url = live_server.url
    for path, status, location in [("/", 302, "/ui/"), ("/login", 302, "/ui/#/login"),
                                   ("/ui", 301, "/ui/")]:  # fmt: skip
        r = requests.get(url + path, allow_redirects=False, timeout=30)
        assert r.status_code == status and r.headers["Location"] == location, path
    r = requests.get(f"{url}/ui/", timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Content-Security-Policy"] == CSP
    deep = requests.get(f"{url}/ui/files/docs", timeout=30)
    assert deep.status_code == 200 and deep.content == r.content
    assert requests.get(f"{url}/ui/no-such-file.js", timeout=30).status_code == 404
    # OPTIONS keeps answering the WebDAV probe; other methods on / stay as they were
    r = requests.options(f"{url}/", timeout=30)
    assert r.status_code == 200 and r.headers["DAV"] == "1, 2"
    assert requests.request("PROPFIND", f"{url}/", timeout=30).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/ui/../../../../etc/passwd",
        "/ui/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/ui/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "/ui/..%5c..%5cetc%5cpasswd",
        "/ui/../../davdrive/config.py",
    ],
)
def test_the_server_refuses_traversal(live_server, path):
    resp = raw_http(live_server.url, "GET", path)
    assert resp.status in (400, 404), (path, resp.status)
