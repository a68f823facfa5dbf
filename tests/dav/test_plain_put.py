"""A PUT without conditions takes the fast path (providers/fast_put.py); a conditional one goes
through WsgiDAV. Both must answer the same in every case a client meets."""

from __future__ import annotations

import os

import pytest
import requests
from lxml import etree

from davdrive.service.auth import Accounts

LOCKINFO = (
    '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype><D:owner>tests</D:owner></D:lockinfo>"
)
# A precondition that always holds: the request then goes through WsgiDAV's own PUT.
VIA_WSGIDAV = {"If-None-Match": '"no-such-etag"'}


@pytest.fixture
def s(dav_server):
    session = requests.Session()
    session.auth = dav_server.auth("alice")
    session.base = dav_server.dav("alice")  # type: ignore[attr-defined]
    return session


def u(s, path: str) -> str:
    return s.base + path.lstrip("/")


def getetag(s, path: str) -> str:
    r = s.request("PROPFIND", u(s, path), headers={"Depth": "0"})
    assert r.status_code == 207
    return etree.fromstring(r.content).findtext(".//{DAV:}getetag")


@pytest.mark.parametrize("route", ["fast", "wsgidav"])
def test_create_overwrite_and_etags(s, route):
    extra = VIA_WSGIDAV if route == "wsgidav" else {}
    r = s.put(u(s, "a.bin"), data=b"one", headers=extra)
    assert r.status_code == 201
    assert r.headers["ETag"] == getetag(s, "a.bin")
    r2 = s.put(u(s, "a.bin"), data=b"two!", headers=extra)
    assert r2.status_code == 204
    assert r2.headers["ETag"] == getetag(s, "a.bin") != r.headers["ETag"]
    assert s.get(u(s, "a.bin")).content == b"two!"
    empty = s.put(u(s, "empty"), data=b"", headers=extra)
    assert empty.status_code == 201 and s.get(u(s, "empty")).content == b""


@pytest.mark.parametrize("route", ["fast", "wsgidav"])
def test_errors_match_wsgidav(s, route):
    extra = VIA_WSGIDAV if route == "wsgidav" else {}
    assert s.request("MKCOL", u(s, "dir")).status_code == 201
    assert s.put(u(s, "dir"), data=b"x", headers=extra).status_code == 405  # a collection
    assert s.put(u(s, "dir/"), data=b"x", headers=extra).status_code == 405
    assert s.put(u(s, "missing/f"), data=b"x", headers=extra).status_code == 409
    s.put(u(s, "file"), data=b"x")
    assert s.put(u(s, "file/child"), data=b"x", headers=extra).status_code == 409
    assert s.get(u(s, "file")).content == b"x"


@pytest.mark.parametrize("route", ["fast", "wsgidav"])
def test_locks_answer_423_with_the_conflicting_lock(s, route):
    extra = VIA_WSGIDAV if route == "wsgidav" else {}
    s.put(u(s, "locked.txt"), data=b"v1")
    r = s.request("LOCK", u(s, "locked.txt"), data=LOCKINFO, headers={"Timeout": "Second-60"})
    assert r.status_code == 200
    token = r.headers["Lock-Token"].strip("<>")
    denied = s.put(u(s, "locked.txt"), data=b"v2", headers=extra)
    assert denied.status_code == 423
    assert b"no-conflicting-lock" in denied.content and b"locked.txt" in denied.content
    # a depth-infinity lock on a folder protects new members too
    s.request("MKCOL", u(s, "box"))
    r = s.request("LOCK", u(s, "box"), data=LOCKINFO, headers={"Depth": "infinity"})
    assert r.status_code == 200
    assert s.put(u(s, "box/new.txt"), data=b"x", headers=extra).status_code == 423
    assert s.get(u(s, "box/new.txt")).status_code == 404
    ok = s.put(u(s, "locked.txt"), data=b"v3", headers={"If": f"(<{token}>)"})
    assert ok.status_code == 204 and s.get(u(s, "locked.txt")).content == b"v3"


@pytest.mark.parametrize("route", ["fast", "wsgidav"])
def test_over_quota_is_507_and_keeps_the_old_version(s, dav_server, route):
    extra = VIA_WSGIDAV if route == "wsgidav" else {}
    Accounts(dav_server.drive).set_quota("alice", 10_000)
    assert s.put(u(s, "q.bin"), data=b"a" * 6000, headers=extra).status_code == 201
    assert s.put(u(s, "q2.bin"), data=os.urandom(6000), headers=extra).status_code == 507
    assert s.get(u(s, "q2.bin")).status_code == 404
    assert s.put(u(s, "q.bin"), data=os.urandom(12_000), headers=extra).status_code == 507
    assert s.get(u(s, "q.bin")).content == b"a" * 6000


def test_x_oc_mtime_is_applied_and_acknowledged(s):
    r = s.put(u(s, "m.txt"), data=b"x", headers={"X-OC-Mtime": "1700000000"})
    assert r.status_code == 201 and r.headers.get("X-OC-Mtime") == "accepted"
    r = s.request("PROPFIND", u(s, "m.txt"), headers={"Depth": "0"})
    modified = etree.fromstring(r.content).findtext(".//{DAV:}getlastmodified")
    assert "2023" in modified and "14 Nov" in modified


def test_other_homes_and_hostile_paths_are_refused(dav_server):
    bob = requests.Session()
    bob.auth = dav_server.auth("bob")
    assert bob.put(dav_server.dav("alice") + "x", data=b"x").status_code in (403, 404)
    assert bob.put(dav_server.dav("bob") + "a/../../alice/x", data=b"x").status_code in (
        400,
        403,
        404,
    )
    alice = requests.Session()
    alice.auth = dav_server.auth("alice")
    assert alice.get(dav_server.dav("alice") + "x").status_code == 404
