"""The fast lane of plain GET/HEAD (providers/fast_lane.py) answers what WsgiDAV answers: the
same status, the same headers in the same order (``Date`` aside, which is the clock), the same
body, through every door (``/dav``, ``/remote.php/webdav``, ``/remote.php/dav/files``) and every
kind of credentials (account password, device app password, bearer token).

Every request goes to two WSGI apps over one drive: as served (lane on) and with the lane off
(WsgiDAV answers everything). Requests the lane must leave to WsgiDAV (conditions, ranges,
folders, errors) are checked to reach it, and to get the same answer either way.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from argon2 import PasswordHasher
from werkzeug.test import Client
from wsgidav.request_server import RequestServer
from wsgidav.wsgidav_app import WsgiDAVApp

from davdrive.blockstore.keys import KeyRing
from davdrive.blockstore.store import BlockStore
from davdrive.metadata.db import Database
from davdrive.service.access import Perm
from davdrive.service.auth import Accounts
from davdrive.service.drive import Drive
from davdrive.storage.local import LocalBackend
from providers.dav_app import dav_config, make_dav_app, wrap_dav
from providers.nextcloud_dav import SHARE as NC_SHARE
from providers.nextcloud_dav import NextcloudProvider, make_nextcloud_dav_app

FILES = {
    "plain.txt": os.urandom(4096),
    "Résumé 2026.pdf": b"%PDF-1.7 not really",
    "日本語.md": "# 見出し\n".encode(),
    "a&b <c> 'q'.txt": b"xml-special",
    "pct%41;semi#hash+plus=.txt": b"quoted",
    "archive.tar.gz": b"\x1f\x8b fake",
    "noext": b"no extension",
    ".hidden": b"dot file",
    "empty.bin": b"",
    "sub/big.bin": os.urandom((5 << 20) // 2),  # 2.5 MiB: three pieces of block_size
}


# WsgiDAV's error pages end with the time they were made.
_PAGE_TIME = re.compile(rb"</a> - \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+\n</body>")


def _untimed(body: bytes) -> bytes:
    return _PAGE_TIME.sub(b"</a> - <time>\n</body>", body)


def _basic(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


@pytest.fixture
def env(tmp_path: Path) -> Any:
    db = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    db.upgrade()
    store = BlockStore(LocalBackend(tmp_path / "blocks"), zstd_level=1, threads=2)
    drive = Drive(db, store, KeyRing.load_or_create(str(tmp_path / "master.key")))
    accounts = Accounts(drive, hasher=PasswordHasher(time_cost=1, memory_cost=256, parallelism=1))
    app = SimpleNamespace(drive=drive, db=db, accounts=accounts)
    accounts.add_user("alice", "alice-pw")
    accounts.add_user("bob", "bob-pw")
    alice = drive.principal("alice")
    drive.mkdir(alice, "/sub")
    drive.mkdir(alice, "/Team")
    for name, data in FILES.items():
        drive.write_file(alice, "/" + name, data)
    drive.write_file(alice, "/Team/shared.txt", b"shared with bob")
    drive.shares.create(alice, "/Team", "bob", Perm.READ)
    _, app_password, token = accounts.add_device(alice, "phone")
    _, _, bob_token = accounts.add_device(drive.principal("bob"), "tablet")
    nc_config = dav_config(app)
    nc_config["provider_mapping"] = {NC_SHARE: NextcloudProvider(drive)}
    doors = {
        "dav": (make_dav_app(app), wrap_dav(WsgiDAVApp(dav_config(app)), fast=False)),
        "nextcloud": (make_nextcloud_dav_app(app), wrap_dav(WsgiDAVApp(nc_config), fast=False)),
    }
    yield SimpleNamespace(
        app=app,
        drive=drive,
        doors=doors,
        auth={
            "password": _basic("alice", "alice-pw"),
            "app password": _basic("alice", app_password),
            "token": f"Bearer {token}",
            "bob": _basic("bob", "bob-pw"),
            "bob token": f"Bearer {bob_token}",
        },
    )
    store.close()
    db.dispose()


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths WsgiDAV's own GET/HEAD handler served (the lane's never show up here)."""
    seen: list[str] = []
    original = RequestServer._send_resource

    def spy(self: Any, environ: dict[str, Any], start_response: Any, **kw: Any) -> Any:
        seen.append(environ["PATH_INFO"])
        return original(self, environ, start_response, **kw)

    monkeypatch.setattr(RequestServer, "_send_resource", spy)
    return seen


def _call(wsgi: Any, method: str, url: str, headers: dict[str, str], body: bytes = b"") -> Any:
    r = Client(wsgi).open(url, method=method, headers=headers, data=body or None)
    data = _untimed(r.get_data())
    headers_out = [(k, "<date>" if k == "Date" else v) for k, v in r.headers.items()]
    return r.status, headers_out, data


def _both(env: Any, door: str, method: str, url: str, headers: dict[str, str], body=b""):
    lane, stock = env.doors[door]
    return _call(lane, method, url, headers, body), _call(stock, method, url, headers, body)


def _url(door: str, name: str, login: str = "alice") -> str:
    from urllib.parse import quote

    prefix = {
        "dav": f"/dav/{login}/",
        "webdav": "/remote.php/webdav/",
        "files": f"/remote.php/dav/files/{login}/",
    }[door]
    return prefix + quote(name)


DOORS = [("dav", "dav"), ("nextcloud", "webdav"), ("nextcloud", "files")]


@pytest.mark.parametrize(("app_door", "url_door"), DOORS)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("credentials", ["password", "app password", "token"])
def test_the_lane_answers_byte_for_byte_what_wsgidav_answers(
    env, served, app_door, url_door, method, credentials
) -> None:
    headers = {"Authorization": env.auth[credentials]}
    for name, data in FILES.items():
        url = _url(url_door, name)
        fast, stock = _both(env, app_door, method, url, headers)
        assert fast == stock, name
        assert fast[0] == "200 OK"
        assert fast[2] == (data if method == "GET" else b"")
        assert dict(fast[1])["Content-Length"] == str(len(data))
    assert len(served) == len(FILES), "the lane served none of them, or WsgiDAV served twice"


def test_a_share_a_login_in_another_case_and_dot_segments(env, served) -> None:
    bob = {"Authorization": env.auth["bob"]}
    alice = {"Authorization": env.auth["password"]}
    bob_token = {"Authorization": env.auth["bob token"]}  # a token carries the mounts too
    for url, headers in (
        ("/dav/bob/Team/shared.txt", bob),
        ("/dav/bob/Team/shared.txt", bob_token),
        ("/dav/Alice/plain.txt", alice),
        ("/dav/alice/sub/../plain.txt", alice),
        ("/dav/alice//plain.txt", alice),
    ):
        fast, stock = _both(env, "dav", "GET", url, headers)
        assert fast == stock and fast[0] == "200 OK", url
    assert len(served) == 5


# Requests WsgiDAV answers: each reaches it with the lane on, and gets the same answer.
FALL_THROUGH = [
    ("GET", "plain.txt", {"Range": "bytes=0-9"}, "206 Partial Content"),
    ("GET", "plain.txt", {"Range": "bytes=99999-"}, "416 Range Not Satisfiable"),
    ("GET", "plain.txt", {"If-None-Match": "*"}, "304 Not Modified"),
    ("GET", "plain.txt", {"If-Modified-Since": "Sat, 01 Jan 2050 00:00:00 GMT"}, "304"),
    ("GET", "plain.txt", {"If-Match": '"nope"'}, "412 Precondition Failed"),
    ("HEAD", "plain.txt", {"If-Unmodified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"}, "412"),
    ("GET", "plain.txt", {"If-Range": '"nope"', "Range": "bytes=0-9"}, "200 OK"),
    ("GET", "plain.txt", {"Depth": "1"}, "400 Bad Request"),
    ("GET", "plain.txt", {"If": "(<urn:x>)"}, "412 Precondition Failed"),
]


@pytest.mark.parametrize(("method", "name", "extra", "status"), FALL_THROUGH)
def test_conditional_and_partial_requests_go_through_wsgidav(
    env, served, method, name, extra, status
) -> None:
    headers = {"Authorization": env.auth["password"], **extra}
    fast, stock = _both(env, "dav", method, _url("dav", name), headers)
    assert fast == stock
    assert fast[0].startswith(status)
    assert len(served) == 2  # once per app


@pytest.mark.parametrize(
    ("method", "url", "auth", "status"),
    [
        ("GET", "/dav/alice/missing.txt", "password", "404"),
        ("GET", "/dav/alice/sub", "password", "200"),  # a folder: the HTML page
        ("HEAD", "/dav/alice/sub", "password", "200"),
        ("GET", "/dav/alice/plain.txt/", "password", "200"),  # the file (WsgiDAV's way)
        ("GET", "/dav/alice/plain.txt", "bob", "404"),  # another home
        ("GET", "/dav/bob/Team/../../alice/plain.txt", "bob", "404"),
        ("GET", "/dav/alice/plain.txt", None, "401"),
        ("HEAD", "/dav/alice/plain.txt", None, "401"),
        ("GET", "/dav/alice/plain.txt?logout", "password", "401"),
        ("GET", "/dav/alice/a%5Cb", "password", "400"),
        ("GET", "/dav/", "password", "200"),  # the root's page
        ("GET", "/remote.php/dav/files/bob/plain.txt", "password", "404"),
    ],
)
def test_errors_and_folders_get_wsgidavs_answer(env, method, url, auth, status) -> None:
    door = "nextcloud" if url.startswith("/remote.php") else "dav"
    headers = {"Authorization": env.auth[auth]} if auth else {}
    fast, stock = _both(env, door, method, url, headers)
    assert fast == stock
    assert fast[0].startswith(status)


def test_wrong_credentials_are_checked_and_counted_once(env) -> None:
    """Ten failures per address and login are allowed, the eleventh is refused: a lane that
    verified again behind WsgiDAV would count two per request."""
    lane, _ = env.doors["dav"]
    bad = {"Authorization": _basic("alice", "wrong")}
    for _ in range(10):
        assert _call(lane, "GET", "/dav/alice/plain.txt", bad)[0].startswith("401")
    assert _call(lane, "GET", "/dav/alice/plain.txt", bad)[0].startswith("429")
    token = {"Authorization": "Bearer not-a-token"}
    assert _call(lane, "GET", "/dav/alice/plain.txt", token)[0].startswith("401")


def test_a_revoked_device_stops_at_once(env) -> None:
    lane, _ = env.doors["dav"]
    for credentials in ("app password", "token"):
        headers = {"Authorization": env.auth[credentials]}
        assert _call(lane, "GET", "/dav/alice/plain.txt", headers)[0] == "200 OK"
    env.app.accounts.revoke_device("alice", "phone")
    for credentials in ("app password", "token"):
        headers = {"Authorization": env.auth[credentials]}
        assert _call(lane, "GET", "/dav/alice/plain.txt", headers)[0].startswith("401")
    headers = {"Authorization": env.auth["password"]}
    assert _call(lane, "GET", "/dav/alice/plain.txt", headers)[0] == "200 OK"
    env.app.accounts.set_password("alice", "new-pw")
    assert _call(lane, "GET", "/dav/alice/plain.txt", headers)[0].startswith("401")


def test_the_lane_is_off_for_share_links(env) -> None:
    from providers.link_provider import make_link_dav_app

    assert make_link_dav_app(env.app).fast_lane is None
    assert env.doors["dav"][0].fast_lane is not None


# -- PUT --------------------------------------------------------------------------------------
MASKED = ("Date", "ETag", "OC-ETag", "OC-FileId")
LOCKINFO = (
    '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype><D:owner>tests</D:owner></D:lockinfo>"
)


def _put(wsgi: Any, url: str, headers: dict[str, str], body: bytes) -> Any:
    r = Client(wsgi).open(url, method="PUT", headers=headers, data=body)
    shown = [(k, "<v>" if k in MASKED else v) for k, v in r.headers.items()]
    return r.status, shown, _untimed(r.get_data()), dict(r.headers)


@pytest.fixture
def handled(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The methods ``DriveProvider.custom_request_handler`` saw (the lane skips it)."""
    from providers.provider import DriveProvider

    seen: list[str] = []
    original = DriveProvider.custom_request_handler

    def spy(self: Any, environ: dict[str, Any], *args: Any) -> Any:
        seen.append(environ["REQUEST_METHOD"])
        return original(self, environ, *args)

    monkeypatch.setattr(DriveProvider, "custom_request_handler", spy)
    return seen


@pytest.mark.parametrize(("app_door", "url_door"), DOORS)
@pytest.mark.parametrize("credentials", ["password", "token"])
def test_a_plain_put_answers_what_wsgidav_answers(
    env, handled, app_door, url_door, credentials
) -> None:
    lane, stock = env.doors[app_door]
    alice = env.drive.principal("alice")
    auth = {"Authorization": env.auth[credentials]}
    for label in ("fast", "slow"):
        env.drive.mkdir(alice, f"/{label}")
        env.drive.mkdir(alice, f"/{label}/sub")
    cases = [  # (name, extra headers, body): each sent to both apps, in order
        ("new.txt", {}, b"first"),
        ("new.txt", {}, b"second, longer"),
        ("mtime.txt", {"X-OC-Mtime": "1700000000"}, b"m"),
        ("sum.txt", {"OC-Checksum": "SHA1:" + "0" * 40}, b"wrong sum"),
        ("missing/f.txt", {}, b"x"),
        ("sub", {}, b"a folder"),
        ("empty", {}, b""),
    ]
    for name, extra, body in cases:
        answers = {}
        for label, wsgi in (("fast", lane), ("slow", stock)):
            url = _url(url_door, f"{label}/{name}")
            answers[label] = _put(wsgi, url, {**auth, **extra}, body)
        fast, slow = answers["fast"], answers["slow"]
        assert fast[:2] == slow[:2], name  # labels of one length: same Content-Length
        assert fast[2].replace(b"fast", b"slow") == slow[2], name
        if fast[0][:3] in ("201", "204"):
            node = env.drive.stat(alice, f"/fast/{name}")
            assert fast[3]["ETag"] == f'"{node.etag}"'
            assert env.drive.read_bytes(alice, f"/fast/{name}") == body
    assert handled.count("PUT") == len(cases), "the lane took none, or WsgiDAV some twice"


def test_put_errors_of_the_commit_match(env, handled) -> None:
    """423 with the conflicting lock, 507 over quota: what the lane answers and WsgiDAV too."""
    lane, stock = env.doors["dav"]
    auth = {"Authorization": env.auth["password"]}
    alice = env.drive.principal("alice")
    for label in ("fast", "slow"):
        env.drive.write_file(alice, f"/{label}-locked.txt", b"v1")
        r = Client(stock).open(
            f"/dav/alice/{label}-locked.txt",
            method="LOCK",
            headers={**auth, "Timeout": "Second-60"},
            data=LOCKINFO,
        )
        assert r.status_code == 200
    fast = _put(lane, "/dav/alice/fast-locked.txt", auth, b"v2")
    slow = _put(stock, "/dav/alice/slow-locked.txt", auth, b"v2")
    assert fast[0].startswith("423")
    assert fast[:2] == slow[:2]
    assert fast[2].replace(b"fast-", b"slow-") == slow[2]
    env.app.accounts.set_quota("alice", 20_000)
    fast = _put(lane, "/dav/alice/big-fast.bin", auth, os.urandom(30_000))
    slow = _put(stock, "/dav/alice/big-slow.bin", auth, os.urandom(30_000))
    assert fast[0].startswith("507") and fast[:2] == slow[:2]
    assert fast[2].replace(b"fast", b"slow") == slow[2]
    assert handled.count("PUT") == 2


@pytest.mark.parametrize(
    ("url", "extra", "status"),
    [
        ("/dav/bob/x.txt", {}, "404"),  # another home
        ("/dav/alice", {}, "405"),  # the home itself
        ("/dav/alice/new.txt", {"If-None-Match": "*"}, "201"),  # conditional: WsgiDAV's PUT
        ("/dav/alice/bad-mtime.txt", {"X-OC-Mtime": "soon"}, "400"),
        ("/dav/alice/a%5Cb", {}, "400"),
        ("/dav/alice/x.txt?logout", {}, "401"),
    ],
)
def test_other_puts_go_through_wsgidav(env, handled, url, extra, status) -> None:
    lane, stock = env.doors["dav"]
    headers = {"Authorization": env.auth["password"], **extra}
    fast = _put(lane, url, headers, b"x")
    if fast[0].startswith("201"):
        env.drive.delete(env.drive.principal("alice"), "/new.txt")
    slow = _put(stock, url, headers, b"x")
    assert fast[:3] == slow[:3]
    assert fast[0].startswith(status)
