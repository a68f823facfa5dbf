"""``OC-Checksum`` on PUT (Nextcloud/ownCloud clients) and ``X-OC-Mtime``, through both PUT
paths (providers/fast_put.py and WsgiDAV's ``begin_write``/``end_write``) and both URL forms:
a body that does not match is refused with 400 and nothing is committed."""

from __future__ import annotations

import hashlib
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from cheroot import wsgi
from lxml import etree
from sqlalchemy import func, select

from davdrive.metadata.schema import Change
from davdrive.nextcloud import ocs
from davdrive.server import wsgi as server_wsgi
from providers.dav_app import make_dav_app
from providers.nextcloud_dav import VERIFIED_CHECKSUM_TYPES, make_nextcloud_dav_app
from tests.dav.conftest import USERS, PlainAccounts

# A precondition that always holds: the request then goes through WsgiDAV's own PUT.
VIA_WSGIDAV = {"If-None-Match": '"no-such-etag"'}
ROUTES = {"fast": {}, "wsgidav": VIA_WSGIDAV}
HOMES = ["/remote.php/dav/files/alice/", "/remote.php/webdav/", "/dav/alice/"]
BODY = bytes(range(256)) * 2048 + b"checksummed body"  # 512 KiB: stored as block objects


def _sums(data: bytes) -> dict[str, str]:
    return {
        "SHA1": hashlib.sha1(data).hexdigest(),
        "MD5": hashlib.md5(data).hexdigest(),
        "Adler32": f"{zlib.adler32(data):08x}",
    }


@pytest.fixture
def srv(dav_server) -> Iterator[Any]:
    """dav_server's drive at /dav and /remote.php on one port."""
    drive = dav_server.drive
    app = SimpleNamespace(drive=drive, db=drive.db, accounts=PlainAccounts(drive, dict(USERS)))
    dav, nc = make_dav_app(app), make_nextcloud_dav_app(app)

    def dispatch(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO", "").startswith("/remote.php"):
            return nc(environ, start_response)
        return dav(environ, start_response)

    server = wsgi.Server(("127.0.0.1", 0), dispatch, numthreads=4, timeout=10)
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    host, port = server.bind_addr[:2]
    session = requests.Session()
    session.auth = ("alice", USERS["alice"])
    yield SimpleNamespace(
        url=f"http://{host}:{port}",
        drive=drive,
        alice=drive.principal("alice"),
        s=session,
        blocks=dav_server.data_dir / "blocks",
    )
    server.stop()
    thread.join(timeout=5)


def _state(srv: Any) -> tuple[int, int, int]:
    """(stored block objects, journal rows, versions of /f.bin): what a refused PUT keeps."""
    objects = sum(1 for p in Path(srv.blocks).rglob("*") if p.is_file())
    with srv.drive.db.read() as s:
        changes = s.scalar(select(func.count()).select_from(Change)) or 0
    node = srv.drive.try_stat(srv.alice, "/f.bin")
    versions = len(srv.drive.list_versions(srv.alice, "/f.bin")) if node else 0
    return objects, changes, versions


@pytest.mark.parametrize("route", sorted(ROUTES))
@pytest.mark.parametrize("home", HOMES)
@pytest.mark.parametrize("kind", ["SHA1", "MD5", "Adler32"])
def test_the_right_checksum_is_accepted(srv, route: str, home: str, kind: str) -> None:
    url = srv.url + home + "f.bin"
    header = {"OC-Checksum": f"{kind}:{_sums(BODY)[kind]}", **ROUTES[route]}
    r = srv.s.put(url, data=BODY, headers=header)
    assert r.status_code == 201, r.text
    assert r.headers["OC-ETag"] == r.headers["ETag"] and r.headers["OC-FileId"]
    assert srv.s.get(url).content == BODY
    other = BODY[::-1]
    header = {"OC-Checksum": f"{kind.lower()}:{_sums(other)[kind].upper()}", **ROUTES[route]}
    assert srv.s.put(url, data=other, headers=header).status_code == 204
    assert srv.s.get(url).content == other


@pytest.mark.parametrize("route", sorted(ROUTES))
@pytest.mark.parametrize("home", HOMES[:2])
@pytest.mark.parametrize("kind", ["SHA1", "MD5", "Adler32"])
def test_a_wrong_checksum_commits_nothing(srv, route: str, home: str, kind: str) -> None:
    url = srv.url + home + "f.bin"
    wrong = {"OC-Checksum": f"{kind}:{_sums(b'other')[kind]}", **ROUTES[route]}
    r = srv.s.put(url, data=BODY, headers=wrong)  # a new file
    assert r.status_code == 400, r.text
    assert srv.s.get(url).status_code == 404
    assert _state(srv)[1:] == (0, 0)  # no journal row, no version
    srv.drive.write_file(srv.alice, "/f.bin", b"old content")
    before = _state(srv)
    r = srv.s.put(url, data=BODY, headers=wrong)  # an overwrite
    assert r.status_code == 400, r.text
    assert srv.s.get(url).content == b"old content"
    assert _state(srv) == before  # blocks reclaimed, no journal row, no new version


@pytest.mark.parametrize("route", sorted(ROUTES))
@pytest.mark.parametrize(
    "value", ["SHA1:", "SHA1:not-hex", "MD5:abc", "Adler32:123456789", "sha1:" + "0" * 41]
)
def test_a_malformed_checksum_is_400(srv, route: str, value: str) -> None:
    url = srv.url + "/remote.php/webdav/f.bin"
    r = srv.s.put(url, data=b"x", headers={"OC-Checksum": value, **ROUTES[route]})
    assert r.status_code == 400, r.text
    assert srv.s.get(url).status_code == 404


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_an_unsupported_type_is_not_checked(srv, route: str) -> None:
    """As Nextcloud: a type it does not know is stored unchecked (the capability says which)."""
    url = srv.url + "/remote.php/webdav/f.bin"
    header = {"OC-Checksum": "SHA256:" + "0" * 64, **ROUTES[route]}
    assert srv.s.put(url, data=b"x", headers=header).status_code == 201


@pytest.mark.parametrize("route", sorted(ROUTES))
@pytest.mark.parametrize("home", HOMES)
def test_x_oc_mtime_is_applied_and_accepted(srv, route: str, home: str) -> None:
    url = srv.url + home + "m.txt"
    headers = {"X-OC-Mtime": "1700000000", "OC-Checksum": f"SHA1:{_sums(b'hi')['SHA1']}"}
    r = srv.s.put(url, data=b"hi", headers={**headers, **ROUTES[route]})
    assert r.status_code == 201, r.text
    assert r.headers.get("X-OC-MTime") == "accepted"
    assert srv.drive.stat(srv.alice, "/m.txt").mtime == 1700000000
    r = srv.s.request("PROPFIND", url, headers={"Depth": "0"})
    modified = etree.fromstring(r.content).findtext(".//{DAV:}getlastmodified")
    assert modified == "Tue, 14 Nov 2023 22:13:20 GMT"
    plain = srv.s.put(url, data=b"again", headers=ROUTES[route])
    assert plain.status_code == 204 and "X-OC-MTime" not in plain.headers
    bad = srv.s.put(url, data=b"x", headers={"X-OC-Mtime": "soon", **ROUTES[route]})
    assert bad.status_code == 400
    assert srv.drive.read_bytes(srv.alice, "/m.txt") == b"again"


def test_the_capabilities_advertise_the_verified_types() -> None:
    types = server_wsgi._verified_checksum_types()
    assert types == VERIFIED_CHECKSUM_TYPES
    checksums = ocs.capabilities(types)["capabilities"]["checksums"]
    assert checksums["preferredUploadType"] == "SHA1"
    assert {t.upper() for t in checksums["supportedTypes"]} == {"SHA1", "MD5", "ADLER32"}
