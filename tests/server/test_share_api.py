"""The OCS share API (``/ocs/v{1,2}.php/apps/files_sharing/api/v1``) against a real server: user
shares and public links made the way the Nextcloud clients make them, seen through WebDAV,
the link pages and davdrive's own API; the sharee search; v1/v2 error conventions; JSON and
XML."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from davdrive import errors
from davdrive.nextcloud.share_api import (
    expiration,
    expiry_arg,
    link_kind,
    ocs_id,
    parse_id,
    user_bits,
)
from tests.live import LiveServer

HEADERS = {"OCS-APIRequest": "true"}
PROPFIND_FILEID = (
    b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
    b"<d:prop><oc:fileid/></d:prop></d:propfind>"
)


def ocs(
    srv: LiveServer,
    method: str,
    what: str,
    login: str | None = "alice",
    *,
    v: int = 2,
    fmt: str | None = "json",
    **kw: Any,
) -> requests.Response:
    url = f"{srv.url}/ocs/v{v}.php/apps/files_sharing/api/v1/{what}"
    params = dict(kw.pop("params", {}))
    if fmt:
        params["format"] = fmt
    auth = srv.auth(login) if login else None
    return requests.request(
        method, url, params=params, headers=HEADERS, auth=auth, timeout=30, **kw
    )


def data(r: requests.Response, code: int = 200) -> Any:
    assert r.status_code == 200, r.text
    doc = r.json()["ocs"]
    assert doc["meta"]["statuscode"] == code, doc["meta"]
    return doc["data"]


def nc_dav(srv: LiveServer, login: str, path: str = "") -> str:
    return f"{srv.url}/remote.php/dav/files/{login}/{path}"


def put(srv: LiveServer, login: str, path: str, body: bytes = b"x") -> int:
    return requests.put(nc_dav(srv, login, path), data=body, auth=srv.auth(login)).status_code


def mkcol(srv: LiveServer, login: str, path: str) -> None:
    r = requests.request("MKCOL", nc_dav(srv, login, path), auth=srv.auth(login), timeout=30)
    assert r.status_code == 201, r.text


def names_at(srv: LiveServer, login: str, path: str = "") -> set[str]:
    """The member names a Depth 1 PROPFIND of ``path`` lists (the folder itself left out)."""
    r = requests.request(
        "PROPFIND",
        nc_dav(srv, login, path),
        headers={"Depth": "1"},
        auth=srv.auth(login),
        timeout=30,
    )
    assert r.status_code == 207, r.text
    hrefs = re.findall(r"<(?:\w+:)?href>([^<]+)</", r.text)
    base = f"/remote.php/dav/files/{login}/{path}".rstrip("/") + "/"
    return {requests.utils.unquote(h)[len(base) :].strip("/") for h in hrefs} - {""}


def fileid(srv: LiveServer, login: str, path: str) -> int:
    r = requests.request(
        "PROPFIND",
        nc_dav(srv, login, path),
        data=PROPFIND_FILEID,
        headers={"Depth": "0"},
        auth=srv.auth(login),
        timeout=30,
    )
    assert r.status_code == 207, r.text
    return int(ET.fromstring(r.content).findtext(".//{http://owncloud.org/ns}fileid") or "0")


# -- the pure mappings ----------------------------------------------------------------------------
def test_ids_keep_user_shares_and_links_apart() -> None:
    assert ocs_id(0, 7) == "14" and ocs_id(3, 7) == "15"
    assert parse_id("14") == (0, 7) and parse_id("15") == (3, 7)
    for bad in ("0", "1", "-2", "u7", "", "99999999999999999999", "1e3"):
        with pytest.raises(errors.NotFound):
            parse_id(bad)


def test_permission_mapping() -> None:
    # user shares: Nextcloud's bits; re-share (16) dropped, read added on creation
    assert user_bits(31, create=True) == 15
    assert user_bits(0, create=True) == 1
    assert user_bits(None, create=True) == 15
    assert user_bits(2, create=False) == 2  # the service refuses it (no read)
    with pytest.raises(errors.BadRequest):
        user_bits(32, create=True)
    # links: kind <-> bits
    assert [link_kind(b, True) for b in (1, 4, 5, 15, 31, 17)] == [
        "view",
        "drop",
        "upload",
        "edit",
        "edit",
        "view",
    ]
    assert [link_kind(b, False) for b in (1, 3, 15, 19)] == ["view", "edit", "edit", "edit"]
    for bits, is_dir in ((7, True), (2, True), (4, False), (-1, True), (64, True)):
        with pytest.raises(errors.BadRequest):
            link_kind(bits, is_dir)


def test_expire_date_means_through_that_day() -> None:
    day = (datetime.now(UTC) + timedelta(days=3)).date()
    ts = expiry_arg(day.isoformat())
    assert ts == datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() + 86400
    assert expiration(ts) == f"{day.isoformat()} 00:00:00"
    assert expiry_arg("") is None and expiration(None) is None
    assert expiry_arg(datetime.now(UTC).date().isoformat()) is not None  # today is fine
    for bad in ("2001-01-01", "tomorrow", "2030-13-01"):
        with pytest.raises(errors.BadRequest):
            expiry_arg(bad)


# -- against a real server ------------------------------------------------------------------------
def test_user_share_lifecycle(live_server: LiveServer) -> None:
    srv = live_server
    mkcol(srv, "alice", "Team")
    assert put(srv, "alice", "Team/a.txt", b"hello") == 201
    form = {"path": "/Team", "shareType": "0", "shareWith": "bob", "permissions": "31"}
    share = data(ocs(srv, "POST", "shares", data=form))
    sid = share["id"]
    assert isinstance(sid, str) and int(sid) % 2 == 0
    assert share["share_type"] == 0
    assert share["permissions"] == 15  # no re-sharing
    assert share["uid_owner"] == "alice" and share["share_with"] == "bob"
    assert share["path"] == "/Team" and share["file_target"] == "/Team"
    assert share["item_type"] == "folder" and share["mimetype"] == "httpd/unix-directory"
    assert share["item_source"] == share["file_source"] == fileid(srv, "alice", "Team")
    assert share["expiration"] is None and share["token"] is None
    # bob sees it in the API and through WebDAV, and may write into it
    (got,) = data(ocs(srv, "GET", "shares", "bob", params={"shared_with_me": "true"}))
    assert got["id"] == sid and got["path"] == "/Team" and got["uid_owner"] == "alice"
    assert got["can_edit"] is False and got["can_delete"] is True
    assert "Team" in names_at(srv, "bob")
    assert put(srv, "bob", "Team/from-bob.txt") == 201
    # listed by path (and not for another node); GET by id is a list of one
    assert [s["id"] for s in data(ocs(srv, "GET", "shares", params={"path": "/Team"}))] == [sid]
    assert data(ocs(srv, "GET", "shares", params={"path": "/Team/a.txt"})) == []
    assert [s["id"] for s in data(ocs(srv, "GET", f"shares/{sid}"))] == [sid]
    # read-only: bob's writes are refused
    assert data(ocs(srv, "PUT", f"shares/{sid}", data={"permissions": "1"}))["permissions"] == 1
    assert put(srv, "bob", "Team/again.txt") == 403
    assert put(srv, "bob", "Team/a.txt", b"changed") == 403
    # the owner revokes it: gone for bob
    assert data(ocs(srv, "DELETE", f"shares/{sid}")) == []
    assert data(ocs(srv, "GET", "shares", "bob", params={"shared_with_me": "true"})) == []
    assert "Team" not in names_at(srv, "bob")
    assert ocs(srv, "GET", f"shares/{sid}").status_code == 404


def test_list_given_subfiles_and_a_recipient_declining(live_server: LiveServer) -> None:
    srv = live_server
    mkcol(srv, "alice", "Docs")
    put(srv, "alice", "Docs/plan.txt")
    put(srv, "alice", "top.txt")
    body = {"path": "Docs/plan.txt", "shareType": 0, "shareWith": "bob"}
    child = data(ocs(srv, "POST", "shares", json=body))
    assert child["permissions"] == 3  # a file carries read and update only
    assert child["mimetype"] == "text/plain"
    link = data(ocs(srv, "POST", "shares", json={"path": "/top.txt", "shareType": 3}))
    every = data(ocs(srv, "GET", "shares"))
    assert {s["id"] for s in every} == {child["id"], link["id"]}
    below = data(ocs(srv, "GET", "shares", params={"path": "/Docs", "subfiles": "true"}))
    assert [s["id"] for s in below] == [child["id"]]
    r = ocs(srv, "GET", "shares", params={"path": "/top.txt", "subfiles": "true"})
    assert r.status_code == 400
    # bob declines; alice no longer lists it
    assert data(ocs(srv, "DELETE", f"shares/{child['id']}", "bob")) == []
    assert [s["id"] for s in data(ocs(srv, "GET", "shares"))] == [link["id"]]


def test_public_link_with_password_and_expiry(live_server: LiveServer) -> None:
    srv = live_server
    mkcol(srv, "alice", "Pub")
    put(srv, "alice", "Pub/photo.jpg", b"jpeg")
    day = (datetime.now(UTC) + timedelta(days=7)).date().isoformat()
    form = {
        "path": "/Pub",
        "shareType": "3",
        "password": "open sesame",
        "expireDate": day,
        "publicUpload": "true",
        "label": "holiday",
    }
    r = ocs(srv, "POST", "shares", data=form)
    link = data(r)
    assert "open sesame" not in r.text and "argon2" not in r.text
    assert int(link["id"]) % 2 == 1 and link["share_type"] == 3
    assert link["permissions"] == 15 and link["label"] == "holiday"
    assert link["expiration"] == f"{day} 00:00:00"
    assert link["share_with"]  # the apps read "has a password" here
    assert link["url"] == f"{srv.url}/s/{link['token']}"
    page = requests.get(link["url"], timeout=30)
    assert page.status_code == 200 and 'type="password"' in page.text
    assert "photo.jpg" not in page.text
    # davdrive's own API sees the same link
    (own,) = requests.get(f"{srv.url}/api/v1/links", auth=srv.auth("alice")).json()["links"]
    assert own["token"] == link["token"] and own["type"] == "edit" and own["has_password"]
    # read-only, no password: the page lists the folder
    changed = data(ocs(srv, "PUT", f"shares/{link['id']}", data={"permissions": "1"}))
    assert changed["permissions"] == 1
    changed = data(ocs(srv, "PUT", f"shares/{link['id']}", data={"password": ""}))
    assert changed["share_with"] is None
    assert "photo.jpg" in requests.get(link["url"], timeout=30).text
    (own,) = requests.get(f"{srv.url}/api/v1/links", auth=srv.auth("alice")).json()["links"]
    assert own["type"] == "view" and not own["has_password"]
    # bob cannot see or touch alice's link; alice revokes it and the URL is gone
    assert ocs(srv, "GET", f"shares/{link['id']}", "bob").status_code == 404
    assert ocs(srv, "DELETE", f"shares/{link['id']}", "bob").status_code == 404
    assert data(ocs(srv, "DELETE", f"shares/{link['id']}")) == []
    assert requests.get(link["url"], timeout=30).status_code == 404
    assert ocs(srv, "GET", f"shares/{link['id']}").status_code == 404
    # a date in the past, upload on a file
    bad = {"path": "/Pub", "shareType": "3", "expireDate": "2001-01-01"}
    assert ocs(srv, "POST", "shares", data=bad).status_code == 400
    bad = {"path": "/Pub/photo.jpg", "shareType": "3", "publicUpload": "true"}
    assert ocs(srv, "POST", "shares", data=bad).status_code == 400


def test_sharees_match_an_exact_login_only(live_server: LiveServer) -> None:
    srv = live_server
    found = data(ocs(srv, "GET", "sharees", params={"search": "BOB", "itemType": "folder"}))
    (bob,) = found["exact"]["users"]
    assert bob["value"] == {"shareType": 0, "shareWith": "bob"} and bob["label"] == "bob"
    assert found["users"] == [] and found["groups"] == [] and found["remotes"] == []
    assert found["exact"]["groups"] == [] and found["exact"]["remotes"] == []
    for search in ("bo", "b", "alice", "nobody", ""):  # no prefixes, not oneself
        found = data(ocs(srv, "GET", "sharees", params={"search": search, "itemType": "file"}))
        assert found["exact"]["users"] == [] and found["users"] == [], search
    r = ocs(srv, "GET", "sharees", fmt=None, params={"search": "bob"})
    root = ET.fromstring(r.content)
    assert root.findtext("data/exact/users/element/value/shareWith") == "bob"


def test_v1_and_v2_error_conventions(live_server: LiveServer) -> None:
    srv = live_server
    mkcol(srv, "alice", "Mine")
    share = {"path": "/Mine", "shareType": "0", "shareWith": "bob", "permissions": "15"}
    data(ocs(srv, "POST", "shares", data=share))
    cases = [
        ("GET", "shares/998", {}, 404),  # no such share
        ("POST", "shares", {"path": "/Nope", "shareType": "3"}, 404),
        ("POST", "shares", {"path": "/Mine", "shareType": "0", "shareWith": "carol"}, 404),
        ("POST", "shares", {"path": "/Mine", "shareType": "1", "shareWith": "staff"}, 400),
        ("POST", "shares", {"path": "/Mine", "shareType": "0", "shareWith": "alice"}, 400),
        ("POST", "shares", {"shareType": "3"}, 400),
        ("POST", "shares", share, 403),  # shared with bob already
    ]
    for method, what, form, status in cases:
        for v in (1, 2):
            r = ocs(srv, method, what, v=v, data=form)
            assert r.status_code == (200 if v == 1 else status), (v, what, form, r.text)
            meta = r.json()["ocs"]["meta"]
            assert meta["statuscode"] == status and meta["status"] == "failure", (v, form)
    # re-sharing what bob received: 403; XML without ?format=
    reshare = {"path": "/Mine", "shareType": "3"}
    assert ocs(srv, "POST", "shares", "bob", data=reshare).status_code == 403
    r = ocs(srv, "POST", "shares", "bob", v=1, fmt=None, data=reshare)
    assert r.status_code == 200 and r.text.startswith('<?xml version="1.0"?>')
    assert ET.fromstring(r.content).findtext("meta/statuscode") == "403"
    # no credentials: 401 on both versions, as for every OCS call
    for v in (1, 2):
        r = ocs(srv, "GET", "shares", None, v=v)
        assert r.status_code == 401 and r.json()["ocs"]["meta"]["statuscode"] == 997


def test_xml_is_the_default_and_v1_succeeds_with_100(live_server: LiveServer) -> None:
    srv = live_server
    mkcol(srv, "alice", "X")
    data(ocs(srv, "POST", "shares", data={"path": "/X", "shareType": "0", "shareWith": "bob"}))
    r = ocs(srv, "GET", "shares", v=1, fmt=None)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/xml")
    root = ET.fromstring(r.content)
    assert root.findtext("meta/statuscode") == "100"
    assert root.findtext("data/element/share_with") == "bob"
    assert root.findtext("data/element/share_type") == "0"
    assert root.findtext("data/element/path") == "/X"
    assert data(ocs(srv, "GET", "shares", v=1), code=100)[0]["share_with"] == "bob"
