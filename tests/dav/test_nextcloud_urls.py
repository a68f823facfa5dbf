"""The Nextcloud/ownCloud WebDAV URLs (``/remote.php/dav/files/<login>/``, ``/remote.php/webdav/``)
reach the same tree as ``/dav/<login>/``, and a lock taken through any of them binds the others
(against a real server)."""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote

import pytest
import requests
from cheroot import wsgi

from providers.dav_app import make_dav_app
from providers.nextcloud_dav import make_nextcloud_dav_app
from tests.conftest import require_tool
from tests.dav.conftest import USERS, PlainAccounts
from tests.dav.test_litmus import SUITES

LOCK = (
    b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
    b"</D:lockscope><D:locktype><D:write/></D:locktype><D:owner>t</D:owner></D:lockinfo>"
)


@pytest.fixture
def both(dav_server) -> Iterator[Any]:
    """The dav_server's drive served at /dav and /remote.php on one port."""
    app = SimpleNamespace(
        drive=dav_server.drive,
        db=dav_server.drive.db,
        accounts=PlainAccounts(dav_server.drive, dict(USERS)),
    )
    dav, nc = make_dav_app(app), make_nextcloud_dav_app(app)

    def dispatch(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        return (nc if path.startswith("/remote.php") else dav)(environ, start_response)

    server = wsgi.Server(("127.0.0.1", 0), dispatch, numthreads=8, timeout=10)
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    host, port = server.bind_addr[:2]
    yield SimpleNamespace(url=f"http://{host}:{port}", drive=dav_server.drive)
    server.stop()
    thread.join(timeout=5)


def _req(srv, method: str, path: str, login: str = "alice", **kw: Any) -> requests.Response:
    return requests.request(method, srv.url + path, auth=(login, USERS[login]), timeout=30, **kw)


def _names(resp: requests.Response) -> list[str]:
    hrefs = re.findall(r"<(?:\w+:)?href>([^<]*)</(?:\w+:)?href>", resp.text)
    return sorted(unquote(h.rstrip("/").rsplit("/", 1)[-1]) for h in hrefs[1:])


@pytest.mark.parametrize("home", ["/remote.php/dav/files/alice/", "/remote.php/webdav/"])
def test_the_same_tree_through_every_url(both, home: str) -> None:
    assert _req(both, "PUT", "/dav/alice/a.txt", data=b"via dav").status_code == 201
    assert _req(both, "MKCOL", home + "folder").status_code == 201
    assert _req(both, "PUT", home + "folder/b.txt", data=b"via nc").status_code == 201
    assert _req(both, "GET", "/dav/alice/folder/b.txt").content == b"via nc"
    assert _req(both, "GET", home + "a.txt").content == b"via dav"
    listing = _req(both, "PROPFIND", home, headers={"Depth": "1"})
    assert listing.status_code == 207
    assert _names(listing) == ["a.txt", "folder"]
    assert home in listing.text and "/dav/alice/" not in listing.text.replace(home, "")
    # a missing trailing slash and doubled slashes reach the same nodes
    assert _req(both, "PROPFIND", home.rstrip("/"), headers={"Depth": "0"}).status_code == 207
    assert _req(both, "GET", home + "folder//b.txt").content == b"via nc"
    moved = _req(
        both, "MOVE", home + "folder/b.txt", headers={"Destination": both.url + home + "c.txt"}
    )
    assert moved.status_code == 201
    assert _req(both, "GET", "/dav/alice/c.txt").content == b"via nc"
    # another login's home does not exist for alice, and bob sees only his own
    assert (
        _req(both, "PROPFIND", "/remote.php/dav/files/bob/", headers={"Depth": "0"}).status_code
        == 404
    )
    assert _req(both, "GET", home + "a.txt", login="bob").status_code == 404


def test_a_lock_through_one_url_binds_the_others(both) -> None:
    nc = "/remote.php/dav/files/alice/doc.txt"
    assert _req(both, "PUT", "/dav/alice/doc.txt", data=b"v1").status_code == 201
    got = _req(both, "LOCK", nc, data=LOCK, headers={"Timeout": "Second-300"})
    assert got.status_code == 200, got.text
    token = got.headers["Lock-Token"].strip("<>")
    assert nc in got.text  # the root as this URL names it
    assert _req(both, "PUT", "/dav/alice/doc.txt", data=b"no token").status_code == 423
    assert _req(both, "PUT", "/remote.php/webdav/doc.txt", data=b"no token").status_code == 423
    seen = _req(both, "PROPFIND", "/dav/alice/doc.txt", headers={"Depth": "0"})
    assert token in seen.text and "/dav/alice/doc.txt" in seen.text
    ok = _req(both, "PUT", "/dav/alice/doc.txt", data=b"v2", headers={"If": f"(<{token}>)"})
    assert ok.status_code == 204
    assert _req(both, "LOCK", "/dav/alice/doc.txt", data=LOCK).status_code == 423
    gone = _req(both, "UNLOCK", "/remote.php/webdav/doc.txt", headers={"Lock-Token": f"<{token}>"})
    assert gone.status_code == 204
    assert _req(both, "PUT", "/dav/alice/doc.txt", data=b"v3").status_code == 204


@pytest.mark.parametrize("home", ["/remote.php/dav/files/alice/", "/remote.php/webdav/"])
def test_litmus_through_the_nextcloud_urls(both, home: str, tmp_path) -> None:
    litmus = require_tool("litmus")
    out = subprocess.run(
        [litmus, both.url + home, "alice", USERS["alice"]],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    ).stdout
    summaries = re.findall(
        r"summary for `(\w+)': of (\d+) tests run: (\d+) passed, (\d+) failed", out
    )
    assert {s[0] for s in summaries} == set(SUITES), out[-3000:]
    for suite, run, passed, failed in summaries:
        assert failed == "0" and run == passed == str(SUITES[suite]), (suite, out[-3000:])
    assert "WARNING" not in out, out


OC_ID = (
    '<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
    "<d:prop><oc:id/><d:getetag/></d:prop></d:propfind>"
)


@pytest.mark.parametrize("conditional", [False, True])
def test_a_put_names_the_file_it_stored(both, conditional: bool) -> None:
    """PUT answers OC-FileId (the oc:id PROPFIND gives) and OC-ETag (= ETag), on the fast path
    and on WsgiDAV's (a conditional PUT)."""
    path = "/remote.php/dav/files/alice/named.txt"
    assert _req(both, "PUT", path, data=b"v1").status_code == 201
    headers = {"If-Match": _req(both, "HEAD", path).headers["ETag"]} if conditional else {}
    put = _req(both, "PUT", path, data=b"v2", headers=headers)
    assert put.status_code == 204
    assert put.headers["OC-ETag"] == put.headers["ETag"]
    found = _req(both, "PROPFIND", path, headers={"Depth": "0"}, data=OC_ID)
    oc_id = re.search(r"id>([^<]+)</", found.text)
    assert oc_id and put.headers["OC-FileId"] == oc_id.group(1)
    assert put.headers["ETag"] in found.text
