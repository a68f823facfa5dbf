"""RFC 6578 sync-collection REPORT on /dav collections."""

from __future__ import annotations

import requests
from defusedxml.ElementTree import fromstring

D = "{DAV:}"


def report(server, login: str, path: str, token: str = "", level: str = "1") -> requests.Response:
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<D:sync-collection xmlns:D="DAV:">'
        f"<D:sync-token>{token}</D:sync-token><D:sync-level>{level}</D:sync-level>"
        "<D:prop><D:getetag/><D:getcontentlength/></D:prop></D:sync-collection>"
    )
    return requests.request(
        "REPORT",
        server.dav(login) + path,
        data=body.encode(),
        auth=server.auth(login),
        headers={"Content-Type": "application/xml", "Depth": "0"},
    )


def parse(resp):
    root = fromstring(resp.content)
    out = {}
    for r in root.findall(f"{D}response"):
        href = r.find(f"{D}href").text
        status = r.find(f"{D}status")
        out[href] = "gone" if status is not None and "404" in status.text else "present"
    return out, root.find(f"{D}sync-token").text


def test_initial_and_incremental_sync(dav_server):
    s = requests.Session()
    s.auth = dav_server.auth("alice")
    dav = dav_server.dav("alice")
    assert s.request("MKCOL", dav + "c").status_code == 201
    s.put(dav + "c/a.txt", data=b"a")
    s.put(dav + "c/b.txt", data=b"b")
    r = report(dav_server, "alice", "c/")
    assert r.status_code == 207, r.text
    members, token = parse(r)
    assert members == {"/dav/alice/c/a.txt": "present", "/dav/alice/c/b.txt": "present"}
    s.put(dav + "c/a.txt", data=b"changed")
    s.delete(dav + "c/b.txt")
    s.put(dav + "c/new%20file.txt", data=b"n")
    r = report(dav_server, "alice", "c/", token)
    members, token2 = parse(r)
    assert members == {
        "/dav/alice/c/a.txt": "present",
        "/dav/alice/c/b.txt": "gone",
        "/dav/alice/c/new%20file.txt": "present",
    }
    assert token2 != token
    assert parse(report(dav_server, "alice", "c/", token2))[0] == {}


def test_invalid_token_and_isolation(dav_server):
    s = requests.Session()
    s.auth = dav_server.auth("alice")
    s.request("MKCOL", dav_server.dav("alice") + "c")
    r = report(dav_server, "alice", "c/", "davdrive:sync:999999")
    assert r.status_code == 403 and b"valid-sync-token" in r.content
    r = report(dav_server, "alice", "c/", "http://example.com/other")
    assert r.status_code == 403
    r = requests.request(
        "REPORT",
        dav_server.dav("alice") + "c/",
        auth=dav_server.auth("bob"),
        data=b'<D:sync-collection xmlns:D="DAV:"><D:sync-token/></D:sync-collection>',
    )
    assert r.status_code == 404
    r = requests.request(
        "REPORT", dav_server.dav("alice") + "c/", auth=dav_server.auth("alice"), data=b"<not xml"
    )
    assert r.status_code == 400
