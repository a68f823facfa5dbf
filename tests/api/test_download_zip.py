"""``GET /api/v1/files/download_zip`` against the real server: members and contents checked
with zipfile, several paths, name clashes, 404 before streaming, and the session cookie."""

from __future__ import annotations

import io
import os
import zipfile

import pytest
import requests

ZIP = "/api/v1/files/download_zip"


@pytest.fixture
def alice(live_server) -> requests.Session:
    s = requests.Session()
    s.auth = live_server.auth("alice")
    base = f"{live_server.url}/api/v1"
    for folder in ("/docs", "/docs/sub", "/docs/empty", "/other"):
        r = s.post(f"{base}/files/create_folder", json={"path": folder}, timeout=30)
        assert r.status_code in (200, 201), r.text
    for path, data in FILES.items():
        r = s.post(
            f"{base}/files/upload",
            params={"path": path, "uploadType": "media"},
            data=data,
            timeout=60,
        )
        assert r.status_code == 201, r.text
    return s


BIG = os.urandom(3 * (1 << 20) + 123)  # several zipstream pieces
FILES = {
    "/docs/a.txt": b"alpha\n",
    "/docs/sub/b.txt": b"bravo\n",
    "/docs/big.bin": BIG,
    "/other/a.txt": b"another alpha\n",
    "/top.txt": b"top\n",
    "/docs/caf\u00e9.txt": "caf\u00e9".encode(),
}


def archive(r: requests.Response) -> zipfile.ZipFile:
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(r.content))
    assert z.testzip() is None  # every CRC right
    return z


def test_one_folder_under_its_name(live_server, alice):
    r = alice.get(f"{live_server.url}{ZIP}", params={"path": "/docs"}, timeout=60)
    z = archive(r)
    assert 'filename="docs.zip"' in r.headers["Content-Disposition"]
    assert sorted(z.namelist()) == [
        "docs/",
        "docs/a.txt",
        "docs/big.bin",
        "docs/caf\u00e9.txt",
        "docs/empty/",
        "docs/sub/",
        "docs/sub/b.txt",
    ]
    assert z.read("docs/a.txt") == b"alpha\n"
    assert z.read("docs/sub/b.txt") == b"bravo\n"
    assert z.read("docs/big.bin") == BIG
    assert z.read("docs/caf\u00e9.txt") == "caf\u00e9".encode()


def test_several_paths_and_name_clashes(live_server, alice):
    r = alice.get(
        f"{live_server.url}{ZIP}",
        params=[
            ("path", "/docs/a.txt"),
            ("path", "/other/a.txt"),
            ("path", "/top.txt"),
            ("path", "/docs/sub"),
            ("path", "/top.txt"),
        ],  # fmt: skip
        timeout=60,
    )
    z = archive(r)
    assert 'filename="download.zip"' in r.headers["Content-Disposition"]
    assert sorted(z.namelist()) == ["a (2).txt", "a.txt", "sub/", "sub/b.txt", "top.txt"]
    assert z.read("a.txt") == b"alpha\n" and z.read("a (2).txt") == b"another alpha\n"
    assert z.read("top.txt") == b"top\n"


def test_the_root_has_its_members_at_the_top(live_server, alice):
    z = archive(alice.get(f"{live_server.url}{ZIP}", params={"path": "/"}, timeout=60))
    names = set(z.namelist())
    assert {"docs/", "docs/sub/b.txt", "other/a.txt", "top.txt"} <= names
    assert all(not n.startswith("/") and ".." not in n for n in names)


def test_what_cannot_be_read_is_404_before_the_archive(live_server, alice):
    url = f"{live_server.url}{ZIP}"
    r = alice.get(url, params=[("path", "/docs"), ("path", "/missing")], timeout=30)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    bob = requests.get(url, params={"path": "/docs"}, auth=live_server.auth("bob"), timeout=30)
    assert bob.status_code == 404  # alice's folder is not bob's
    assert alice.get(url, timeout=30).status_code == 400  # no path at all
    assert requests.get(url, params={"path": "/docs"}, timeout=30).status_code == 401


def test_the_session_cookie_downloads_without_a_csrf_token(live_server, alice):
    s = requests.Session()
    r = s.post(
        f"{live_server.url}/api/v1/session",
        json={"login": "alice", "password": "alice-pw"},
        timeout=30,
    )
    assert r.status_code == 200
    z = archive(s.get(f"{live_server.url}{ZIP}", params={"path": "/top.txt"}, timeout=30))
    assert z.namelist() == ["top.txt"] and z.read("top.txt") == b"top\n"
