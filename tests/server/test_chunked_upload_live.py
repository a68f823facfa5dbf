"""Nextcloud chunked upload v2 over HTTP against a real server: MKCOL, numbered parts, a
PROPFIND listing for a resuming client, the final MOVE with its headers and answers, and the
failures a client must be told about clearly."""

from __future__ import annotations

import hashlib
import os
import re
import time

import pytest
import requests

from tests.live import LiveServer

MiB = 1 << 20
NEXTCLOUD_UA = (
    "Mozilla/5.0 (Linux) mirall/3.7.3git (Nextcloud, debian-6.1.0 ClientArchitecture: x86_64)"
)
ROOT = "/remote.php/dav/uploads/alice"


PROPS = (
    '<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
    "<d:prop><oc:id/><d:getlastmodified/></d:prop></d:propfind>"
)


def call(srv: LiveServer, method: str, path: str, login: str = "alice", **kw) -> requests.Response:
    kw.setdefault("auth", srv.auth(login))
    return requests.request(method, f"{srv.url}{path}", timeout=60, **kw)


def file_url(srv: LiveServer, name: str) -> str:
    return f"{srv.url}/remote.php/dav/files/alice/{name}"


def message(resp: requests.Response) -> str:
    found = re.search(r"<s:message>(.*?)</s:message>", resp.text, re.S)
    assert found, resp.text
    return found.group(1)


def poll(srv: LiveServer, location: str) -> dict:
    """The job's status once it is no longer "started" (as the desktop client polls)."""
    for _ in range(100):
        status = call(srv, "GET", location).json()
        if status["status"] != "started":
            return status
        time.sleep(0.1)
    raise AssertionError(f"{location} still started")


def upload(srv: LiveServer, folder: str, parts: list[tuple[str, bytes]], **mkcol) -> None:
    assert call(srv, "MKCOL", f"{ROOT}/{folder}", **mkcol).status_code == 201
    for name, data in parts:
        assert call(srv, "PUT", f"{ROOT}/{folder}/{name}", data=data).status_code == 201


def test_desktop_client_sequence(live_server):
    srv = live_server
    data = os.urandom(5 * MiB + 3)
    pieces = [
        (f"{i:016d}", data[o : o + 2 * MiB]) for i, o in enumerate(range(0, len(data), 2 * MiB))
    ]
    upload(srv, "8841", pieces[:2], headers={"OC-Total-Length": str(len(data))})
    # a resuming client lists what it sent already
    listing = call(srv, "PROPFIND", f"{ROOT}/8841", headers={"Depth": "1"})
    assert listing.status_code == 207
    assert listing.headers["Content-Type"].startswith("application/xml")
    assert re.findall(r"<d:getcontentlength>(\d+)<", listing.text) == [str(2 * MiB)] * 2
    assert f"{ROOT}/8841/0000000000000001" in listing.text
    assert call(srv, "PUT", f"{ROOT}/8841/{pieces[2][0]}", data=pieces[2][1]).status_code == 201
    # the desktop client sends a bare path; its mtime and checksum ride on the MOVE
    final = call(
        srv,
        "MOVE",
        f"{ROOT}/8841/.file",
        headers={
            "Destination": "/remote.php/dav/files/alice/Ordner/gr%C3%B6%C3%9F.bin",
            "OC-Total-Length": str(len(data)),
            "X-OC-Mtime": "1700000000",
            "OC-Checksum": f"SHA1:{hashlib.sha1(data).hexdigest()}",
        },
    )
    assert final.status_code == 409  # the folder "Ordner" does not exist: 409, as for a PUT
    assert (
        requests.request(
            "MKCOL", file_url(srv, "Ordner"), auth=srv.auth("alice"), timeout=30
        ).status_code
        == 201
    )
    final = call(
        srv,
        "MOVE",
        f"{ROOT}/8841/.file",
        headers={
            "Destination": "/remote.php/dav/files/alice/Ordner/gr%C3%B6%C3%9F.bin",
            "OC-Total-Length": str(len(data)),
            "X-OC-Mtime": "1700000000",
            "OC-Checksum": f"SHA1:{hashlib.sha1(data).hexdigest()}",
        },
    )
    assert final.status_code == 201, final.text
    assert final.headers["X-OC-MTime"] == "accepted"
    assert final.headers["OC-FileId"] and final.headers["OC-ETag"] == final.headers["ETag"]
    got = requests.get(
        file_url(srv, "Ordner/gr%C3%B6%C3%9F.bin"), auth=srv.auth("alice"), timeout=60
    )
    assert got.content == data
    assert got.headers["ETag"] == final.headers["ETag"]
    props = requests.request(
        "PROPFIND",
        file_url(srv, "Ordner/gr%C3%B6%C3%9F.bin"),
        auth=srv.auth("alice"),
        headers={"Depth": "0"},
        data=PROPS,
        timeout=30,
    ).text
    assert re.search(rf">{final.headers['OC-FileId']}</\w+:id>", props), props
    assert "Tue, 14 Nov 2023 22:13:20 GMT</D:getlastmodified>" in props
    assert call(srv, "PROPFIND", f"{ROOT}/8841", headers={"Depth": "0"}).status_code == 404


def test_overwrite_with_if_and_a_stale_etag(live_server):
    srv = live_server
    first = requests.put(file_url(srv, "f.bin"), data=b"v1", auth=srv.auth("alice"), timeout=30)
    etag = first.headers["ETag"]
    upload(srv, "u", [("0", b"v2" * 1000)])
    dest = file_url(srv, "f.bin")  # rclone and newer desktops send an absolute URL
    stale = call(
        srv,
        "MOVE",
        f"{ROOT}/u/.file",
        headers={"Destination": dest, "If": f'<{dest}> (["not-{etag.strip(chr(34))}"])'},
    )
    assert stale.status_code == 412
    ok = call(
        srv, "MOVE", f"{ROOT}/u/.file", headers={"Destination": dest, "If": f"<{dest}> ([{etag}])"}
    )
    assert ok.status_code == 204, ok.text
    assert requests.get(dest, auth=srv.auth("alice"), timeout=30).content == b"v2" * 1000


def test_failures_are_clear_and_lose_nothing(live_server):
    srv = live_server
    # rclone probes with DELETE before MKCOL and expects a 404
    assert call(srv, "DELETE", f"{ROOT}/rclone-chunked-upload-abc").status_code == 404
    unauth = requests.request("MKCOL", f"{srv.url}{ROOT}/x", timeout=30)
    assert unauth.status_code == 401 and "WWW-Authenticate" in unauth.headers
    assert call(srv, "MKCOL", f"{ROOT}/x", login="bob").status_code == 403  # alice's uploads
    assert call(srv, "MKCOL", "/remote.php/dav/uploads/bob/x", login="bob").status_code == 201
    upload(srv, "c", [("0", b"hello")])
    assert call(srv, "MKCOL", f"{ROOT}/c").status_code == 405  # exists
    bad = call(srv, "PUT", f"{ROOT}/c/notanumber", data=b"x")
    assert bad.status_code == 400 and "number" in message(bad)
    wrong = call(
        srv,
        "MOVE",
        f"{ROOT}/c/.file",
        headers={"Destination": file_url(srv, "c.txt"), "OC-Total-Length": "6"},
    )
    assert wrong.status_code == 400 and "5 bytes" in message(wrong)
    mismatch = call(
        srv,
        "MOVE",
        f"{ROOT}/c/.file",
        headers={"Destination": file_url(srv, "c.txt"), "OC-Checksum": "SHA1:" + "0" * 40},
    )
    assert mismatch.status_code == 400 and "checksum" in message(mismatch).lower()
    assert (
        requests.get(file_url(srv, "c.txt"), auth=srv.auth("alice"), timeout=30).status_code == 404
    )
    elsewhere = call(
        srv,
        "MOVE",
        f"{ROOT}/x/.file",
        headers={"Destination": "/remote.php/dav/files/bob/stolen"},
    )
    assert elsewhere.status_code == 403
    # doubled slashes (a server URL entered with a trailing slash) are tolerated
    upload(srv, "d", [])
    assert call(srv, "PUT", "/remote.php//dav/uploads/alice//d/00001", data=b"x").status_code == 201
    assert call(srv, "DELETE", f"{ROOT}/d").status_code == 204
    assert call(srv, "PROPFIND", f"{ROOT}/d", headers={"Depth": "0"}).status_code == 404


@pytest.mark.parametrize("body", [b"<not xml", b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>"])
def test_a_hostile_propfind_body_is_refused(live_server, body):
    upload(live_server, "p", [])
    resp = call(live_server, "PROPFIND", f"{ROOT}/p", data=body, headers={"Depth": "1"})
    assert resp.status_code == 400


def test_checksum_update_reads_the_file_back(live_server):
    """Nextcloud's ``PATCH`` with ``X-Recalculate-Hash`` (rclone sends it after an upload)."""
    srv = live_server
    data = os.urandom(3 * MiB)
    assert requests.put(file_url(srv, "h.bin"), data=data, auth=srv.auth("alice"), timeout=30).ok
    for kind, expected in (("sha1", hashlib.sha1(data)), ("md5", hashlib.md5(data))):
        resp = requests.patch(
            file_url(srv, "h.bin"),
            headers={"X-Recalculate-Hash": kind},
            auth=srv.auth("alice"),
            timeout=60,
        )
        assert resp.status_code == 204
        assert resp.headers["OC-Checksum"] == f"{kind.upper()}:{expected.hexdigest()}"
    legacy = requests.patch(
        f"{srv.url}/remote.php/webdav/h.bin",
        headers={"X-Recalculate-Hash": "sha1"},
        auth=srv.auth("alice"),
        timeout=60,
    )
    assert legacy.headers["OC-Checksum"] == f"SHA1:{hashlib.sha1(data).hexdigest()}"
    missing = requests.patch(
        file_url(srv, "nope"),
        headers={"X-Recalculate-Hash": "sha1"},
        auth=srv.auth("alice"),
        timeout=30,
    )
    assert missing.status_code == 404
    unknown = requests.patch(
        file_url(srv, "h.bin"),
        headers={"X-Recalculate-Hash": "crc64"},
        auth=srv.auth("alice"),
        timeout=30,
    )
    assert unknown.status_code == 400
    stranger = requests.patch(
        file_url(srv, "h.bin"),
        headers={"X-Recalculate-Hash": "sha1"},
        auth=srv.auth("bob"),
        timeout=30,
    )
    assert stranger.status_code == 403


def test_a_slow_assembly_answers_202_and_the_client_polls(live_server_factory, tmp_path):
    cfg = tmp_path / "wait.yaml"
    cfg.write_text("assembly_wait: 0\n")  # every assembly outlives its MOVE
    srv = live_server_factory(extra_args=("--config", str(cfg)))
    data = os.urandom(3 * MiB)
    upload(srv, "slow", [("0", data)])
    # only the Nextcloud desktop client polls (ownCloud 2.11 refuses, rclone does not know)
    upload(srv, "other", [("0", data)])
    moved = call(
        srv, "MOVE", f"{ROOT}/other/.file", headers={"Destination": file_url(srv, "other.bin")}
    )
    assert moved.status_code == 201
    moved = call(
        srv,
        "MOVE",
        f"{ROOT}/slow/.file",
        headers={"Destination": file_url(srv, "slow.bin"), "User-Agent": NEXTCLOUD_UA},
    )
    assert moved.status_code == 202
    location = moved.headers["OC-JobStatus-Location"]
    assert location.startswith("/remote.php/dav/job-status/alice/")
    status = poll(srv, location)
    assert status["status"] == "finished", status
    got = requests.get(file_url(srv, "slow.bin"), auth=srv.auth("alice"), timeout=30)
    assert got.content == data
    assert status["ETag"] == got.headers["ETag"]
    assert status["fileId"]
    assert call(srv, "GET", location, login="bob").status_code == 403  # alice's job
    # a failure is reported through the job too
    upload(srv, "bad", [("0", data)])
    moved = call(
        srv,
        "MOVE",
        f"{ROOT}/bad/.file",
        headers={
            "Destination": file_url(srv, "bad.bin"),
            "OC-Checksum": "SHA1:" + "1" * 40,
            "User-Agent": NEXTCLOUD_UA,
        },
    )
    status = poll(srv, moved.headers["OC-JobStatus-Location"])
    assert status["status"] == "error" and status["errorCode"] == 400, status
    assert "checksum" in status["errorMessage"].lower()
