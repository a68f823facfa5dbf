"""The JSON API against the real server: every endpoint, error statuses, tus, isolation."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import subprocess
import sys
import threading
from urllib.parse import urlparse

import jsonschema
import pytest
import requests

from davdrive.app import build_app
from davdrive.config import load_config
from davdrive.metadata.schema import Device
from davdrive.service.changes import Changes
from tests.live import run_cli

MiB = 1 << 20


@pytest.fixture
def api(live_server):
    s = requests.Session()
    s.auth = live_server.auth("alice")
    base = f"{live_server.url}/api/v1"
    s.base = base  # type: ignore[attr-defined]
    return s


def url(s, path: str) -> str:
    return f"{s.base}{path}"


def assert_conforms(s, resp: requests.Response, path: str, method: str = "get") -> None:
    """The response body matches what /api/v1/openapi.json publishes for that operation."""
    doc = s.get(url(s, "/openapi.json")).json()
    responses = doc["paths"][path][method]["responses"]
    schema = responses[str(resp.status_code)]["content"]["application/json"]["schema"]
    jsonschema.validate(resp.json(), {**schema, "components": doc["components"]})


def upload(s, path: str, data: bytes, **params) -> requests.Response:
    return s.post(
        url(s, "/files/upload"), params={"path": path, "uploadType": "media", **params}, data=data
    )


def test_unauthenticated_and_wrong_password_get_401(live_server):
    r = requests.get(f"{live_server.url}/api/v1/files/metadata", params={"path": "/x"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "not_authenticated"
    assert "Basic" in r.headers["WWW-Authenticate"]
    r = requests.get(f"{live_server.url}/api/v1/trash", auth=("alice", "nope"))
    assert r.status_code == 401


def test_upload_revisions_download_restore_pin(api):
    assert upload(api, "/doc.txt", b"one").status_code == 201
    r = upload(api, "/doc.txt", b"two two")
    assert r.status_code == 200 and r.json()["size"] == 7
    revs = api.get(url(api, "/files/list_revisions"), params={"path": "/doc.txt"}).json()
    assert revs["path"] == "/doc.txt"
    sizes = [r["size"] for r in revs["revisions"]]
    assert sizes == [7, 3]
    old = revs["revisions"][1]
    assert old["content_hash"] == hashlib.sha256(b"one").hexdigest()
    assert old["author"]["user"] == "alice" and old["pinned"] is False
    one = api.get(url(api, "/files/download"), params={"path": "/doc.txt", "rev": old["rev"]})
    assert one.content == b"one"
    limited = api.get(url(api, "/files/list_revisions"), params={"path": "/doc.txt", "limit": 1})
    assert len(limited.json()["revisions"]) == 1
    restored = api.post(url(api, "/files/restore"), json={"path": "/doc.txt", "rev": old["rev"]})
    assert restored.status_code == 200
    assert api.get(url(api, "/files/download"), params={"path": "/doc.txt"}).content == b"one"
    after = api.get(url(api, "/files/list_revisions"), params={"path": "/doc.txt"}).json()
    assert len(after["revisions"]) == 3  # history is never rewritten
    pin = api.post(url(api, "/files/pin"), json={"path": "/doc.txt", "rev": old["rev"]})
    assert pin.status_code == 200
    again = api.get(url(api, "/files/list_revisions"), params={"path": "/doc.txt"}).json()
    assert [r["pinned"] for r in again["revisions"]] == [False, False, True]


def test_download_ranges(api):
    data = os.urandom(3 * MiB)
    upload(api, "/r.bin", data)
    r = api.get(
        url(api, "/files/download"),
        params={"path": "/r.bin"},
        headers={"Range": "bytes=1000-2999999"},
    )
    assert r.status_code == 206 and r.content == data[1000:3000000]
    assert r.headers["Content-Range"] == f"bytes 1000-2999999/{len(data)}"
    r = api.get(
        url(api, "/files/download"), params={"path": "/r.bin"}, headers={"Range": "bytes=-10"}
    )
    assert r.content == data[-10:]
    r = api.get(
        url(api, "/files/download"), params={"path": "/r.bin"}, headers={"Range": "bytes=9999999-"}
    )
    assert r.status_code == 416
    full = api.get(url(api, "/files/download"), params={"path": "/r.bin"})
    assert hashlib.sha256(full.content).hexdigest() == hashlib.sha256(data).hexdigest()


def test_metadata_lists_blocks(api):
    data = os.urandom(5 * MiB)
    upload(api, "/m.bin", data)
    meta = api.get(url(api, "/files/metadata"), params={"path": "/m.bin"}).json()
    assert meta["status"] == "ok" and meta["size"] == len(data)
    assert meta["content_hash"] == hashlib.sha256(data).hexdigest()
    assert sum(b["size"] for b in meta["blocks"]) == len(data) and len(meta["blocks"]) >= 2


def test_error_statuses(api, live_server):
    r = api.get(url(api, "/files/metadata"), params={"path": "/missing"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = upload(api, "/no/such/folder/f", b"x")
    assert r.status_code == 409
    r = api.get(url(api, "/files/metadata"), params={"path": "/../etc/passwd"})
    assert r.status_code == 400
    r = api.get(url(api, "/files/metadata"))
    assert r.status_code == 400
    r = api.post(
        url(api, "/files/restore"), data="{not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400
    upload(api, "/c.txt", b"v1")
    for rev in ("\u00b2", "12a", "9" * 40, ""):  # '²' passes str.isdigit(), not int()
        r = api.post(url(api, "/files/pin"), json={"path": "/c.txt", "rev": rev, "pinned": True})
        assert r.status_code == 400, rev
        r = api.get(url(api, "/files/download"), params={"path": "/c.txt", "rev": rev})
        assert r.status_code in (400, 404), rev
    r = api.post(url(api, "/files/pin"), json={"path": "/c.txt", "rev": "999999", "pinned": True})
    assert r.status_code == 404
    etag = api.get(url(api, "/files/metadata"), params={"path": "/c.txt"}).json()["etag"]
    upload(api, "/c.txt", b"v2")
    r = api.post(
        url(api, "/files/upload"),
        params={"path": "/c.txt"},
        data=b"v3",
        headers={"If-Match": f'"{etag}"'},
    )
    assert r.status_code == 412
    r = api.post(
        url(api, "/files/upload"),
        params={"path": "/c.txt"},
        data=b"v3",
        headers={"If-None-Match": "*"},
    )
    assert r.status_code == 412
    r = api.post(
        url(api, "/uploads"),
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(11 * 10**9),
            "Upload-Metadata": _meta(path="/huge"),
        },
    )
    assert r.status_code == 413
    # over quota: bob gets a 1 MB quota through the CLI while the server runs
    subprocess.run(
        [
            sys.executable,
            "-m",
            "davdrive.cli",
            "--data",
            str(live_server.data_dir),
            "user",
            "quota",
            "bob",
            "1MB",
        ],
        check=True,
    )
    bob = requests.Session()
    bob.auth = live_server.auth("bob")
    r = bob.post(
        url(api, "/uploads"),
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(2 * MiB),
            "Upload-Metadata": _meta(path="/big"),
        },
    )
    assert r.status_code == 507 and r.json()["error"]["code"] == "quota_exceeded"
    r = bob.post(url(api, "/files/upload"), params={"path": "/big"}, data=os.urandom(2 * MiB))
    assert r.status_code == 507


def _meta(**kv: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in kv.items())


def test_trash_round_trip_of_a_folder(api, live_server):
    dav = live_server.dav("alice")
    s = requests.Session()
    s.auth = live_server.auth("alice")
    assert s.request("MKCOL", dav + "t").status_code == 201
    assert s.request("MKCOL", dav + "t/sub").status_code == 201
    upload(api, "/t/sub/f.txt", b"abc")
    assert s.delete(dav + "t").status_code == 204
    items = api.get(url(api, "/trash")).json()["items"]
    assert [i["path"] for i in items] == ["/t"] and items[0]["is_dir"] and items[0]["size"] == 3
    r = api.post(url(api, "/trash/restore"), json={"path": "/t"})
    assert r.status_code == 200 and r.json()["path"] == "/t"
    assert api.get(url(api, "/files/download"), params={"path": "/t/sub/f.txt"}).content == b"abc"
    s.delete(dav + "t")
    item = api.get(url(api, "/trash")).json()["items"][0]
    assert api.delete(url(api, "/trash"), params={"id": item["id"]}).json() == {"purged": 1}
    assert api.get(url(api, "/trash")).json()["items"] == []
    assert api.post(url(api, "/trash/restore"), json={"id": item["id"]}).status_code == 404


def test_webdav_puts_are_revisions(api, live_server):
    dav = live_server.dav("alice")
    s = requests.Session()
    s.auth = live_server.auth("alice")
    for body in (b"a", b"bb", b"ccc"):
        assert s.put(dav + "w.txt", data=body).status_code in (201, 204)
    revs = api.get(url(api, "/files/list_revisions"), params={"path": "/w.txt"}).json()
    assert [r["size"] for r in revs["revisions"]] == [3, 2, 1]


def test_other_user_gets_404_for_everything(api, live_server):
    upload(api, "/secret.txt", b"alice only")
    rev = api.get(url(api, "/files/list_revisions"), params={"path": "/secret.txt"}).json()
    bob = requests.Session()
    bob.auth = live_server.auth("bob")
    for r in (
        bob.get(url(api, "/files/metadata"), params={"path": "/secret.txt"}),
        bob.get(url(api, "/files/download"), params={"path": "/secret.txt"}),
        bob.get(url(api, "/files/list_revisions"), params={"path": "/secret.txt"}),
        bob.post(
            url(api, "/files/restore"),
            json={"path": "/secret.txt", "rev": rev["revisions"][0]["rev"]},
        ),
    ):
        assert r.status_code == 404, r.text
    # trash, pins and the change feed are per account too
    api.post(url(api, "/files/upload"), params={"path": "/gone.txt"}, data=b"bye")
    dav = requests.Session()
    dav.auth = live_server.auth("alice")
    assert dav.delete(live_server.dav("alice") + "gone.txt").status_code == 204
    item = api.get(url(api, "/trash")).json()["items"][0]
    assert item["path"] == "/gone.txt"
    assert bob.get(url(api, "/trash")).json()["items"] == []
    assert bob.post(url(api, "/trash/restore"), json={"id": item["id"]}).status_code == 404
    assert bob.delete(url(api, "/trash"), params={"id": item["id"]}).status_code == 404
    assert bob.delete(url(api, "/trash")).json()["purged"] == 0
    pin = {"path": "/secret.txt", "rev": rev["revisions"][0]["rev"], "pinned": True}
    assert bob.post(url(api, "/files/pin"), json=pin).status_code == 404
    assert [i["id"] for i in api.get(url(api, "/trash")).json()["items"]] == [item["id"]]
    feed = bob.get(url(api, "/changes"), params={"cursor": "0"}).json()
    assert feed["changes"] == []
    # bob's own file at the same path is his own
    assert (
        bob.post(url(api, "/files/upload"), params={"path": "/secret.txt"}, data=b"bob").status_code
        == 201
    )
    assert api.get(url(api, "/files/download"), params={"path": "/secret.txt"}).content == (
        b"alice only"
    )


# -- tus ---------------------------------------------------------------------------------------


def tus_create(api, path: str, length: int) -> str:
    r = api.post(
        url(api, "/files/upload"),
        params={"path": path, "uploadType": "resumable"},
        headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(length)},
    )
    assert r.status_code == 201, r.text
    assert r.headers["Location"].startswith("/api/v1/uploads/")
    return r.headers["Location"]


def tus_offset(api, live_server, loc: str) -> int:
    r = api.head(live_server.url + loc, headers={"Tus-Resumable": "1.0.0"})
    assert r.status_code == 200
    return int(r.headers["Upload-Offset"])


def raw_patch_cut(live_server, loc: str, offset: int, body: bytes, send: int) -> None:
    """Send a PATCH that announces ``len(body)`` bytes but drops the connection after ``send``."""
    u = urlparse(live_server.url)
    user, pw = live_server.auth("alice")
    token = base64.b64encode(f"{user}:{pw}".encode()).decode()
    head = (
        f"PATCH {loc} HTTP/1.1\r\nHost: {u.netloc}\r\nAuthorization: Basic {token}\r\n"
        f"Tus-Resumable: 1.0.0\r\nUpload-Offset: {offset}\r\n"
        f"Content-Type: application/offset+octet-stream\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection((u.hostname, u.port)) as sock:
        sock.sendall(head.encode() + body[:send])
        sock.shutdown(socket.SHUT_WR)


def wait_offset(api, live_server, loc: str, at_least: int) -> int:
    import time

    deadline = time.time() + 20
    while True:
        off = tus_offset(api, live_server, loc)
        if off >= at_least or time.time() > deadline:
            return off
        time.sleep(0.1)


def test_tus_cut_off_and_resumed(api, live_server):
    data = os.urandom(9 * MiB + 123)
    loc = tus_create(api, "/tus.bin", len(data))
    meta = api.get(url(api, "/files/metadata"), params={"path": "/tus.bin"}).json()
    assert meta["status"] == "pending"
    dav = requests.get(live_server.dav("alice") + "tus.bin", auth=live_server.auth("alice"))
    assert dav.status_code == 404  # not a file for readers until the last byte
    raw_patch_cut(live_server, loc, 0, data, 6 * MiB)
    offset = wait_offset(api, live_server, loc, 6 * MiB)
    assert 0 < offset <= 6 * MiB
    r = api.patch(
        live_server.url + loc,
        data=data[offset:],
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert r.status_code == 204 and int(r.headers["Upload-Offset"]) == len(data)
    got = api.get(url(api, "/files/download"), params={"path": "/tus.bin"}).content
    assert got == data
    kinds = [
        c["kind"] for c in api.get(url(api, "/changes"), params={"cursor": "0"}).json()["changes"]
    ]
    assert kinds.index("upload_pending") < kinds.index("upload_completed")


def test_tus_resumes_after_server_restart(api, live_server):
    data = os.urandom(6 * MiB)
    loc = tus_create(api, "/restart.bin", len(data))
    r = api.patch(
        live_server.url + loc,
        data=data[: 5 * MiB],
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert r.status_code == 204
    live_server.restart()
    assert tus_offset(api, live_server, loc) == 5 * MiB
    r = api.patch(
        live_server.url + loc,
        data=data[5 * MiB :],
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Offset": str(5 * MiB),
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert r.status_code == 204
    assert api.get(url(api, "/files/download"), params={"path": "/restart.bin"}).content == data


def test_tus_protocol_errors(api, live_server):
    loc = tus_create(api, "/p.bin", 10)
    h = {"Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream"}
    assert (
        api.patch(
            live_server.url + loc, data=b"abc", headers={**h, "Upload-Offset": "5"}
        ).status_code
        == 409
    )
    bad = {
        **h,
        "Upload-Offset": "0",
        "Upload-Checksum": "sha1 " + base64.b64encode(b"x" * 20).decode(),
    }
    assert api.patch(live_server.url + loc, data=b"abc", headers=bad).status_code == 460
    assert tus_offset(api, live_server, loc) == 0
    good = {
        **h,
        "Upload-Offset": "0",
        "Upload-Checksum": "sha1 " + base64.b64encode(hashlib.sha1(b"abc").digest()).decode(),
    }
    assert api.patch(live_server.url + loc, data=b"abc", headers=good).status_code == 204
    assert (
        api.patch(
            live_server.url + loc,
            data=b"abc",
            headers={**h, "Upload-Offset": "0", "Tus-Resumable": "0.2"},
        ).status_code
        == 412
    )
    opts = api.options(url(api, "/uploads"))
    assert "checksum" in opts.headers["Tus-Extension"]
    anonymous = requests.options(url(api, "/uploads"))  # discovery needs no credentials
    assert anonymous.status_code == 204, anonymous.text
    assert anonymous.headers["Tus-Max-Size"] == opts.headers["Tus-Max-Size"]
    assert api.delete(live_server.url + loc, headers={"Tus-Resumable": "1.0.0"}).status_code == 204
    assert api.head(live_server.url + loc, headers={"Tus-Resumable": "1.0.0"}).status_code == 404
    bob = requests.Session()
    bob.auth = live_server.auth("bob")
    other = tus_create(api, "/q.bin", 10)
    assert bob.head(live_server.url + other, headers={"Tus-Resumable": "1.0.0"}).status_code == 404


def test_tuspy_client(api, live_server, tmp_path):
    from tusclient import client

    data = os.urandom(3 * MiB + 5)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    user, pw = live_server.auth("alice")
    token = base64.b64encode(f"{user}:{pw}".encode()).decode()
    c = client.TusClient(
        f"{live_server.url}/api/v1/uploads", headers={"Authorization": f"Basic {token}"}
    )
    up = c.uploader(str(src), chunk_size=MiB, metadata={"path": "/from-tuspy.bin"})
    up.upload()
    assert api.get(url(api, "/files/download"), params={"path": "/from-tuspy.bin"}).content == data


def test_changes_and_longpoll(api, live_server):
    cursor = api.get(url(api, "/changes/latest")).json()["cursor"]
    result: dict[str, object] = {}

    def poll() -> None:
        result["r"] = api.get(url(api, "/longpoll"), params={"cursor": cursor, "timeout": 20})

    t = threading.Thread(target=poll)
    t.start()
    bob = requests.Session()
    bob.auth = live_server.auth("bob")
    bob.post(url(api, "/files/upload"), params={"path": "/b.txt"}, data=b"b")
    t.join(0.5)
    assert t.is_alive(), "another account's write woke alice's long-poll"
    upload(api, "/a.txt", b"a")
    t.join(10)
    assert result["r"].json() == {"changes": True}
    assert_conforms(api, result["r"], "/api/v1/longpoll")
    feed = api.get(url(api, "/changes"), params={"cursor": cursor}).json()
    assert [c["path"] for c in feed["changes"]] == ["/a.txt"]
    assert feed["has_more"] is False
    quiet = api.get(url(api, "/longpoll"), params={"cursor": feed["cursor"], "timeout": 1})
    assert quiet.json() == {"changes": False}
    assert_conforms(api, quiet, "/api/v1/longpoll")
    for bad in ({"cursor": "x"}, {"cursor": "0", "timeout": 500}, {"cursor": "0", "timeout": 0}):
        resp = api.get(url(api, "/longpoll"), params=bad)
        assert resp.status_code == 400, bad
        assert_conforms(api, resp, "/api/v1/longpoll")


def test_device_bearer_token_app_password_and_remembered_cursor(api, live_server):
    out = run_cli(live_server.data_dir, "device", "add", "alice", "phone").stdout
    fields = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    phone = requests.Session()
    phone.headers["Authorization"] = f"Bearer {fields['token']}"
    phone.base = api.base  # type: ignore[attr-defined]
    assert upload(phone, "/from-phone.txt", b"hi").status_code == 201
    revs = phone.get(url(api, "/files/list_revisions"), params={"path": "/from-phone.txt"})
    assert revs.json()["revisions"][0]["author"] == {"user": "alice", "device": "phone"}
    by_password = requests.get(
        url(api, "/files/metadata"),
        params={"path": "/from-phone.txt"},
        auth=("alice", fields["app password"]),
    )
    assert by_password.status_code == 200
    wrong = requests.get(url(api, "/changes/latest"), headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "not_authenticated"
    cursor = phone.get(url(api, "/changes"), params={"cursor": "0"}).json()["cursor"]
    app = build_app(load_config(data_dir=live_server.data_dir))
    try:
        with app.db.read() as s:
            remembered = s.query(Device.last_cursor).filter(Device.name == "phone").scalar()
    finally:
        app.close()
    assert str(remembered) == cursor  # the offline queue resumes from here


def test_pruned_cursor_answers_410_with_a_reset_hint(api, live_server):
    old = api.get(url(api, "/changes/latest")).json()["cursor"]
    for i in range(3):
        upload(api, f"/p{i}.txt", b"x")
    app = build_app(load_config(data_dir=live_server.data_dir))
    try:
        import time

        assert Changes(app.drive).prune(older_than=0, now=time.time() + 1) >= 2
    finally:
        app.close()
    r = api.get(url(api, "/changes"), params={"cursor": old})
    assert r.status_code == 410
    assert r.json()["error"]["code"] == "cursor_expired" and r.json()["error"]["reset"] is True
    latest = api.get(url(api, "/changes/latest")).json()["cursor"]
    assert api.get(url(api, "/changes"), params={"cursor": latest}).json()["changes"] == []
