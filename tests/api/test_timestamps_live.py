"""Timestamps from every door against the real server: milliseconds are understood, nonsense is
a 400, and a bad stored value does not break GET, metadata, revisions or the REPORT."""

from __future__ import annotations

import base64

import requests
from sqlalchemy import create_engine, text

REPORT = (
    b'<?xml version="1.0"?><d:sync-collection xmlns:d="DAV:"><d:sync-token/>'
    b"<d:sync-level>1</d:sync-level><d:prop><d:getlastmodified/></d:prop></d:sync-collection>"
)


def _tus(server, path: str, mtime: str) -> requests.Response:
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    meta = f"path {b64(path)},mtime {b64(mtime)}"
    return requests.post(
        f"{server.url}/api/v1/uploads",
        headers={"Tus-Resumable": "1.0.0", "Upload-Length": "2", "Upload-Metadata": meta},
        auth=server.auth("alice"),
    )


def test_timestamps_through_every_door(live_server):
    auth = live_server.auth("alice")
    api = f"{live_server.url}/api/v1"
    r = _tus(live_server, "/js.txt", "1700000000123")  # tus-js-client sends milliseconds
    assert r.status_code == 201, r.text
    done = requests.patch(
        live_server.url + r.headers["Location"]
        if r.headers["Location"].startswith("/")
        else r.headers["Location"],
        data=b"hi",
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
        auth=auth,
    )
    assert done.status_code == 204, done.text
    meta = requests.get(f"{api}/files/metadata", params={"path": "/js.txt"}, auth=auth).json()
    assert meta["modified"].startswith("2023-11-14T22:13:20")
    for bad in ("²", "56893000000000000", "nan"):
        r = _tus(live_server, "/bad.txt", bad)
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request", bad
    r = requests.put(
        live_server.dav("alice") + "oc.txt", data=b"x", headers={"X-OC-Mtime": "1e400"}, auth=auth
    )
    assert r.status_code == 400
    r = requests.post(
        f"{api}/files/upload",
        params={"path": "/m.txt", "uploadType": "media", "mtime": "1e400"},
        data=b"x",
        auth=auth,
    )
    assert r.status_code == 400


def test_a_bad_stored_time_does_not_break_reads(live_server):
    auth = live_server.auth("alice")
    api = f"{live_server.url}/api/v1"
    requests.post(
        f"{api}/files/upload",
        params={"path": "/old.txt", "uploadType": "media"},
        data=b"x",
        auth=auth,
    ).raise_for_status()
    engine = create_engine(f"sqlite:///{live_server.data_dir / 'davdrive.db'}")
    with engine.begin() as c:  # as a store written before validation may hold it
        c.execute(text("UPDATE node SET mtime = 1.7e15 WHERE name = 'old.txt'"))
        c.execute(text("UPDATE file_version SET mtime = 1.7e15"))
    engine.dispose()
    assert requests.get(live_server.dav("alice") + "old.txt", auth=auth).status_code == 200
    assert requests.get(f"{api}/files/metadata", params={"path": "/old.txt"}, auth=auth).ok
    revs = requests.get(f"{api}/files/list_revisions", params={"path": "/old.txt"}, auth=auth)
    assert revs.ok and revs.json()["revisions"][0]["modified"].startswith("9999-12-31")
    report = requests.request(
        "REPORT", live_server.dav("alice"), data=REPORT, headers={"Depth": "1"}, auth=auth
    )
    assert report.status_code == 207
    listing = requests.request(
        "PROPFIND", live_server.dav("alice"), headers={"Depth": "1"}, auth=auth
    )
    assert listing.status_code == 207


def test_every_door_reads_milliseconds_the_same(live_server):
    auth = live_server.auth("alice")
    api = f"{live_server.url}/api/v1"
    put = requests.put(
        live_server.dav("alice") + "oc.txt",
        data=b"x",
        headers={"X-OC-Mtime": "1700000000123"},
        auth=auth,
    )
    assert put.status_code == 201
    media = requests.post(
        f"{api}/files/upload",
        params={"path": "/m.txt", "uploadType": "media", "mtime": "1700000000123"},
        data=b"x",
        auth=auth,
    )
    assert media.status_code == 201
    for name in ("/oc.txt", "/m.txt"):
        meta = requests.get(f"{api}/files/metadata", params={"path": name}, auth=auth).json()
        assert meta["modified"].startswith("2023-11-14T22:13:20"), (name, meta["modified"])
