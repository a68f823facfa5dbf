"""Names in NFC against a real ``davdrive serve`` (issue 16, item 11): a name written in NFD
(macOS) and in NFC reaches one file over WebDAV and the JSON API, and listings show it once,
in NFC."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote, unquote

import requests

CAFE = "caf\u00e9.txt"
CAFE_NFD = unicodedata.normalize("NFD", CAFE)
LOCKINFO = (
    '<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:">'
    "<D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>"
    "</D:lockinfo>"
)


def hrefs(body: str) -> list[str]:
    """The decoded hrefs of a multistatus body."""
    out = []
    for part in body.split("href>")[1::2]:
        out.append(unquote(part.split("<", 1)[0]))
    return out


def test_webdav_nfd_and_nfc_are_one_file(live_server):
    srv, alice = live_server, live_server.auth("alice")
    home = srv.dav("alice")
    assert requests.put(home + quote(CAFE_NFD), data=b"one", auth=alice).status_code == 201
    r = requests.get(home + quote(CAFE), auth=alice)
    assert (r.status_code, r.content) == (200, b"one")
    assert requests.put(home + quote(CAFE), data=b"two", auth=alice).status_code == 204
    assert requests.get(home + quote(CAFE_NFD), auth=alice).content == b"two"
    # the reverse: created in NFC, read in NFD
    folder = "R\u00e9sum\u00e9s"
    assert requests.request("MKCOL", home + quote(folder), auth=alice).status_code == 201
    nfd_folder = unicodedata.normalize("NFD", folder)
    assert requests.request("MKCOL", home + quote(nfd_folder), auth=alice).status_code == 405
    target = f"{home}{quote(nfd_folder)}/{quote(CAFE_NFD)}"
    assert requests.put(target, data=b"three", auth=alice).status_code == 201
    assert requests.get(f"{home}{quote(folder)}/{quote(CAFE)}", auth=alice).content == b"three"

    r = requests.request("PROPFIND", home, headers={"Depth": "1"}, auth=alice)
    assert r.status_code == 207
    assert sorted(hrefs(r.text)) == sorted(
        ["/dav/alice/", f"/dav/alice/{CAFE}", f"/dav/alice/{folder}/"]
    )
    # MOVE to an NFD Destination stores the NFC name
    dest = "/dav/alice/" + quote(unicodedata.normalize("NFD", "na\u00efve.txt"))
    r = requests.request("MOVE", home + quote(CAFE_NFD), headers={"Destination": dest}, auth=alice)
    assert r.status_code == 201
    r = requests.request("PROPFIND", home, headers={"Depth": "1"}, auth=alice)
    assert "/dav/alice/na\u00efve.txt" in hrefs(r.text) and len(hrefs(r.text)) == 3


def test_api_nfd_and_nfc_are_one_file(live_server):
    srv, alice = live_server, live_server.auth("alice")
    api = srv.url + "/api/v1/files"
    r = requests.post(
        f"{api}/upload", params={"path": "/" + CAFE_NFD}, data=b"one", auth=alice, timeout=30
    )
    assert r.status_code == 201 and r.json()["name"] == CAFE and r.json()["path"] == "/" + CAFE
    r = requests.post(f"{api}/upload", params={"path": "/" + CAFE}, data=b"two", auth=alice)
    assert r.status_code == 200  # the same file: a new revision, not a second file
    meta = requests.get(f"{api}/metadata", params={"path": "/" + CAFE_NFD}, auth=alice).json()
    assert meta["name"] == CAFE and meta["size"] == 3
    r = requests.get(f"{api}/download", params={"path": "/" + CAFE_NFD}, auth=alice)
    assert r.content == b"two"
    listed = requests.get(f"{api}/list", params={"path": "/"}, auth=alice).json()["entries"]
    assert [e["name"] for e in listed] == [CAFE]
    revisions = requests.get(
        f"{api}/list_revisions", params={"path": "/" + CAFE}, auth=alice
    ).json()
    assert len(revisions["revisions"]) == 2
    # and WebDAV sees the same single file
    r = requests.get(srv.dav("alice") + quote(CAFE_NFD), auth=alice)
    assert r.content == b"two"


def test_a_lock_binds_both_spellings(live_server):
    srv, alice = live_server, live_server.auth("alice")
    home = srv.dav("alice")
    assert requests.put(home + quote(CAFE), data=b"x", auth=alice).status_code == 201
    r = requests.request("LOCK", home + quote(CAFE_NFD), data=LOCKINFO, auth=alice)
    assert r.status_code == 200
    assert requests.put(home + quote(CAFE_NFD), data=b"y", auth=alice).status_code == 423
    assert requests.put(home + quote(CAFE), data=b"y", auth=alice).status_code == 423
    api = requests.post(
        f"{srv.url}/api/v1/files/upload",
        params={"path": "/" + CAFE, "uploadType": "media"},
        data=b"y",
        auth=alice,
    )
    assert api.status_code == 423


def test_trash_finds_an_item_by_either_spelling(live_server):
    srv, alice = live_server, live_server.auth("alice")
    api = f"{srv.url}/api/v1"
    up = requests.post(
        f"{api}/files/upload",
        params={"path": "/" + CAFE, "uploadType": "media"},
        data=b"z",
        auth=alice,
    )
    assert up.status_code == 201
    assert requests.post(f"{api}/files/delete", json={"path": "/" + CAFE}, auth=alice).ok
    r = requests.post(f"{api}/trash/restore", json={"path": "/" + CAFE_NFD}, auth=alice)
    assert r.status_code == 200, r.text
    assert requests.get(srv.dav("alice") + quote(CAFE), auth=alice).content == b"z"
