"""The file API a web app and a sync client need, against the real server: paged and recursive
listing, create_folder, delete, move, copy (with preconditions), account, and WebDAV locks
honoured by every API write."""

from __future__ import annotations

import pytest
import requests

LOCK_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:">'
    b"<D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>"
    b"<D:owner>test</D:owner></D:lockinfo>"
)


@pytest.fixture
def api(live_server):
    s = requests.Session()
    s.auth = live_server.auth("alice")
    s.base = f"{live_server.url}/api/v1"  # type: ignore[attr-defined]
    s.dav = live_server.dav("alice")  # type: ignore[attr-defined]
    return s


def call(s, method: str, path: str, **kw) -> requests.Response:
    return s.request(method, f"{s.base}{path}", **kw)


def put(s, path: str, data: bytes) -> requests.Response:
    r = call(s, "POST", "/files/upload", params={"path": path, "uploadType": "media"}, data=data)
    assert r.status_code in (200, 201), r.text
    return r


def lock(s, path: str, depth: str = "0") -> str:
    r = s.request(
        "LOCK",
        s.dav + path.lstrip("/"),
        data=LOCK_BODY,
        headers={"Depth": depth, "Timeout": "Second-600"},
    )
    assert r.status_code in (200, 201), r.text
    return r.headers["Lock-Token"].strip("<>")


def test_list_pages_and_recursive_tree_with_changes_cursor(api):
    for name in ("c", "a", "b", "d", "e"):
        put(api, f"/{name}.txt", name.encode())
    assert call(api, "POST", "/files/create_folder", json={"path": "/dir"}).status_code == 201
    put(api, "/dir/inner.txt", b"inner")
    names, cursor = [], None
    while True:
        params = {"path": "/", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = call(api, "GET", "/files/list", params=params).json()
        assert len(page["entries"]) <= 2
        names += [e["name"] for e in page["entries"]]
        if not page["has_more"]:
            break
        cursor = page["cursor"]
    assert names == ["a.txt", "b.txt", "c.txt", "d.txt", "dir", "e.txt"]
    entry = call(api, "GET", "/files/list", params={"path": "/"}).json()["entries"][0]
    assert set(entry) >= {"id", "name", "is_dir", "size", "rev", "modified", "content_hash"}
    assert entry["permissions"] == ["read", "write", "create", "delete", "share"]

    paths, cursor, final = [], None, None
    while True:
        params = {"path": "/", "recursive": "true", "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = call(api, "GET", "/files/list", params=params).json()
        paths += [e["path"] for e in page["entries"]]
        if not page["has_more"]:
            final = page["changes_cursor"]
            break
        assert page["changes_cursor"] is None
        cursor = page["cursor"]
        put(api, "/late.txt", b"written while listing")  # shows up in the changes after
    assert paths.index("/dir") < paths.index("/dir/inner.txt")
    assert set(paths) >= {"/a.txt", "/dir", "/dir/inner.txt", "/e.txt"}
    changes = call(api, "GET", "/changes", params={"cursor": final})
    assert "/late.txt" in [c["path"] for c in changes.json()["changes"]]
    bad = call(api, "GET", "/files/list", params={"path": "/", "cursor": "!!"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_request"
    assert call(api, "GET", "/files/list", params={"path": "/a.txt"}).status_code == 409


def test_create_delete_move_copy_keep_ids_and_check_preconditions(api):
    folder = call(api, "POST", "/files/create_folder", json={"path": "/docs"})
    assert folder.status_code == 201 and folder.json()["is_dir"]
    again = call(api, "POST", "/files/create_folder", json={"path": "/docs"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_exists"
    first = put(api, "/docs/a.txt", b"one").json()
    moved = call(api, "POST", "/files/move", json={"from": "/docs/a.txt", "to": "/b.txt"})
    assert moved.status_code == 201 and moved.json()["id"] == first["id"]
    meta = call(api, "GET", "/files/metadata", params={"path": "/b.txt"}).json()
    assert meta["id"] == first["id"]

    stale = call(
        api, "POST", "/files/move", json={"from": "/b.txt", "to": "/c.txt", "if_rev": "999999"}
    )
    assert stale.status_code == 412
    good = call(
        api, "POST", "/files/move", json={"from": "/b.txt", "to": "/c.txt", "if_rev": first["rev"]}
    )
    assert good.status_code == 201

    copied = call(api, "POST", "/files/copy", json={"from": "/c.txt", "to": "/docs/copy.txt"})
    assert copied.status_code == 201 and copied.json()["id"] != first["id"]
    taken = call(api, "POST", "/files/copy", json={"from": "/c.txt", "to": "/docs/copy.txt"})
    assert taken.status_code == 412  # overwrite defaults to false
    put(api, "/other.txt", b"other content")
    over = call(
        api, "POST", "/files/copy", json={"from": "/other.txt", "to": "/c.txt", "overwrite": True}
    )
    assert over.status_code == 200 and over.json()["replaced"] is True
    assert over.json()["id"] == first["id"]  # the destination keeps its id and history
    revs = call(api, "GET", "/files/list_revisions", params={"path": "/c.txt"}).json()
    assert len(revs["revisions"]) == 2

    etag = call(api, "GET", "/files/metadata", params={"path": "/docs"}).json()["etag"]
    wrong = call(api, "POST", "/files/delete", json={"path": "/docs"}, headers={"If-Match": '"x"'})
    assert wrong.status_code == 412
    gone = call(api, "POST", "/files/delete", json={"path": "/docs"}, headers={"If-Match": etag})
    assert gone.status_code == 200
    assert call(api, "GET", "/files/metadata", params={"path": "/docs"}).status_code == 404
    trash = call(api, "GET", "/trash").json()["items"]
    assert [t["path"] for t in trash] == ["/docs"]
    assert call(api, "POST", "/files/delete", json={"path": "/"}).status_code == 403
    assert call(api, "POST", "/files/move", json={"from": "/nope", "to": "/x"}).status_code == 404


def test_account_reports_usage_by_kind(api, live_server):
    put(api, "/f.txt", b"1" * 1000)
    put(api, "/f.txt", b"2" * 300)  # 1000 bytes go to history
    put(api, "/g.txt", b"3" * 50)
    call(api, "POST", "/files/delete", json={"path": "/g.txt"})
    a = call(api, "GET", "/account").json()
    assert a["login"] == "alice"
    assert a["used"] == 300 and a["usage"] == {"current": 300, "history": 1000, "trash": 50}
    assert a["quota"] >= a["used"] and a["available"] == a["quota"] - 300
    assert a["stored"] > 0 and a["devices"] == 0


def test_webdav_locks_stop_every_api_write(api, live_server):
    put(api, "/locked.txt", b"v1")
    token = lock(api, "/locked.txt")
    r = put_status(api, "/locked.txt", b"overwrite")
    assert r.status_code == 423 and r.json()["error"]["code"] == "locked"
    with_if = call(
        api,
        "POST",
        "/files/upload",
        params={"path": "/locked.txt", "uploadType": "media"},
        data=b"v2",
        headers={"If": f"(<{token}>)"},
    )
    assert with_if.status_code == 200
    with_lock_token = call(
        api,
        "POST",
        "/files/upload",
        params={"path": "/locked.txt", "uploadType": "media"},
        data=b"v3",
        headers={"Lock-Token": f"<{token}>"},
    )
    assert with_lock_token.status_code == 200
    rev = call(api, "GET", "/files/list_revisions", params={"path": "/locked.txt"}).json()
    oldest = rev["revisions"][-1]["rev"]
    denied = [
        call(api, "POST", "/files/restore", json={"path": "/locked.txt", "rev": oldest}),
        call(api, "POST", "/files/delete", json={"path": "/locked.txt"}),
        call(api, "POST", "/files/move", json={"from": "/locked.txt", "to": "/moved.txt"}),
        call(api, "POST", "/files/copy", json={"from": "/v.txt", "to": "/locked.txt"}),
        call(
            api,
            "POST",
            "/uploads",
            headers={
                "Tus-Resumable": "1.0.0",
                "Upload-Length": "3",
                "Upload-Metadata": "path L2xvY2tlZC50eHQ=",  # /locked.txt
            },
        ),
    ]
    assert [r.status_code for r in denied[:3]] == [423, 423, 423]
    assert denied[3].status_code in (404, 423)  # /v.txt does not exist: 404 comes first
    assert denied[4].status_code == 423
    assert call(api, "GET", "/files/download", params={"path": "/locked.txt"}).content == b"v3"

    # A depth-infinity lock on a folder protects new members too; bob's tree is not affected.
    call(api, "POST", "/files/create_folder", json={"path": "/box"})
    folder_token = lock(api, "/box", depth="infinity")
    assert put_status(api, "/box/new.txt", b"x").status_code == 423
    mkdir = call(api, "POST", "/files/create_folder", json={"path": "/box/sub"})
    assert mkdir.status_code == 423
    ok = call(
        api,
        "POST",
        "/files/create_folder",
        json={"path": "/box/sub"},
        headers={"If": f"(<{folder_token}>)"},
    )
    assert ok.status_code == 201
    bob = requests.post(
        f"{live_server.url}/api/v1/files/upload",
        params={"path": "/box/new.txt", "uploadType": "media"},
        data=b"bob",
        auth=live_server.auth("bob"),
    )
    assert bob.status_code in (404, 409)  # bob has no /box: the lock is alice's, not his
    # Moving the locked file with its token releases the lock with the old name.
    moved = call(
        api,
        "POST",
        "/files/move",
        json={"from": "/locked.txt", "to": "/moved.txt"},
        headers={"If": f"(<{token}>)"},
    )
    assert moved.status_code == 201
    assert put_status(api, "/moved.txt", b"free").status_code == 200


def put_status(s, path: str, data: bytes) -> requests.Response:
    return call(s, "POST", "/files/upload", params={"path": path, "uploadType": "media"}, data=data)
