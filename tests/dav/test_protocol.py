"""WebDAV behaviour clients rely on, over raw HTTP against a real server on loopback."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from base64 import b64encode
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import urlparse

import pytest
import requests
from lxml import etree

MiB = 1 << 20
DAV = "{DAV:}"


@pytest.fixture
def s(dav_server):
    session = requests.Session()
    session.auth = dav_server.auth("alice")
    session.base = dav_server.dav("alice")  # type: ignore[attr-defined]
    return session


def u(s, path: str) -> str:
    return s.base + path.lstrip("/")


def propfind(s, path: str, body: str | None = None, depth: str = "0") -> etree._Element:
    r = s.request("PROPFIND", u(s, path), data=body, headers={"Depth": depth})
    assert r.status_code == 207, r.text
    return etree.fromstring(r.content)


def prop(tree: etree._Element, name: str) -> str | None:
    el = tree.find(f".//{DAV}response/{DAV}propstat/{DAV}prop/{name}")
    return None if el is None else (el.text or "")


def raw_request(
    server_url: str, head: str, body: bytes, *, close_after: int | None = None
) -> bytes:
    """Send a hand-made request; optionally only ``close_after`` body bytes, then close."""
    parsed = urlparse(server_url)
    with socket.create_connection((parsed.hostname, parsed.port), timeout=10) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n")
        sock.sendall(body if close_after is None else body[:close_after])
        if close_after is not None:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
        return b"".join(chunks)


def basic(login: str, pw: str) -> str:
    return "Basic " + b64encode(f"{login}:{pw}".encode()).decode()


# -- PUT integrity ------------------------------------------------------------------------------
def test_cut_off_put_keeps_previous_version(s, dav_server):
    assert s.put(u(s, "doc.bin"), data=b"old contents").status_code == 201
    body = os.urandom(1000)
    head = (
        "PUT /dav/alice/doc.bin HTTP/1.1\r\n"
        f"Host: {urlparse(dav_server.url).netloc}\r\n"
        f"Authorization: {basic('alice', 'alice-pw')}\r\n"
        f"Content-Length: {len(body)}\r\n"
    )
    raw_request(dav_server.url, head, body, close_after=500)
    time.sleep(0.3)
    assert s.get(u(s, "doc.bin")).content == b"old contents"
    # A cut-off PUT to a new path leaves nothing behind (no 0-byte file).
    raw_request(dav_server.url, head.replace("doc.bin", "new.bin"), body, close_after=500)
    time.sleep(0.3)
    assert s.head(u(s, "new.bin")).status_code == 404


def test_put_new_201_replace_204_with_strong_etag(s):
    r = s.put(u(s, "a.txt"), data=b"one")
    assert r.status_code == 201
    etag1 = r.headers["ETag"]
    assert etag1.startswith('"') and not etag1.startswith("W/")
    r = s.put(u(s, "a.txt"), data=b"two")
    assert r.status_code == 204 and r.headers["ETag"] != etag1
    g = s.get(u(s, "a.txt"))
    assert g.content == b"two" and g.headers["ETag"] == r.headers["ETag"]
    assert prop(propfind(s, "a.txt"), f"{DAV}getetag") == r.headers["ETag"]


def test_if_match_stale_412_and_current_succeeds(s):
    etag = s.put(u(s, "c.txt"), data=b"v1").headers["ETag"]
    s.put(u(s, "c.txt"), data=b"v2")
    r = s.put(u(s, "c.txt"), data=b"v3", headers={"If-Match": etag})
    assert r.status_code == 412
    assert s.get(u(s, "c.txt")).content == b"v2"
    current = s.head(u(s, "c.txt")).headers["ETag"]
    assert s.put(u(s, "c.txt"), data=b"v3", headers={"If-Match": current}).status_code == 204
    assert s.get(u(s, "c.txt")).content == b"v3"


def test_if_match_star_on_missing_file_412(s):
    r = s.put(u(s, "missing.txt"), data=b"x", headers={"If-Match": "*"})
    assert r.status_code == 412
    assert s.head(u(s, "missing.txt")).status_code == 404
    assert s.delete(u(s, "missing.txt"), headers={"If-Match": "*"}).status_code == 412


def test_if_none_match_star_on_existing_412(s):
    s.put(u(s, "once.txt"), data=b"first")
    r = s.put(u(s, "once.txt"), data=b"second", headers={"If-None-Match": "*"})
    assert r.status_code == 412
    assert s.get(u(s, "once.txt")).content == b"first"
    assert s.put(u(s, "fresh.txt"), data=b"x", headers={"If-None-Match": "*"}).status_code == 201


def test_put_under_missing_parent_409_and_on_folder_405(s):
    assert s.put(u(s, "nope/a.txt"), data=b"x").status_code == 409
    s.request("MKCOL", u(s, "dir"))
    assert s.put(u(s, "dir"), data=b"x").status_code == 405


def test_mkcol_existing_405_missing_parent_409(s):
    assert s.request("MKCOL", u(s, "m")).status_code == 201
    assert s.request("MKCOL", u(s, "m")).status_code == 405
    assert s.request("MKCOL", u(s, "x/y")).status_code == 409


def test_chunked_put_streams(s):
    parts = [os.urandom(100_000) for _ in range(30)]
    r = s.put(
        u(s, "chunked.bin"),
        data=iter(parts),
        headers={"X-Expected-Entity-Length": str(sum(map(len, parts)))},
    )
    assert r.status_code == 201
    assert hashlib.sha256(s.get(u(s, "chunked.bin")).content).digest() == (
        hashlib.sha256(b"".join(parts)).digest()
    )


def test_x_oc_mtime_honoured_and_acknowledged(s):
    r = s.put(u(s, "m.txt"), data=b"x", headers={"X-OC-Mtime": "1500000000"})
    assert r.status_code == 201 and r.headers.get("X-OC-Mtime") == "accepted"
    modified = s.head(u(s, "m.txt")).headers["Last-Modified"]
    assert parsedate_to_datetime(modified).timestamp() == 1500000000
    assert s.put(u(s, "m.txt"), data=b"y", headers={"X-OC-Mtime": "soon"}).status_code == 400
    assert s.get(u(s, "m.txt")).content == b"x"


def test_win32_lastmodified_proppatch_sets_mtime(s):
    s.put(u(s, "w.txt"), data=b"x")
    when = datetime(2020, 5, 17, 10, 30, tzinfo=UTC)
    body = (
        '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" '
        'xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>'
        f"<Z:Win32LastModifiedTime>{format_datetime(when, usegmt=True)}</Z:Win32LastModifiedTime>"
        "<Z:Win32FileAttributes>00000020</Z:Win32FileAttributes>"
        "</D:prop></D:set></D:propertyupdate>"
    )
    r = s.request(
        "PROPPATCH",
        u(s, "w.txt"),
        data=body,
        headers={"User-Agent": "Microsoft-WebDAV-MiniRedir/10.0.19045", "Depth": "1"},
    )
    assert r.status_code == 207 and b"200 OK" in r.content and b"403" not in r.content
    modified = prop(propfind(s, "w.txt"), f"{DAV}getlastmodified")
    assert parsedate_to_datetime(modified) == when


def test_get_range_206(s):
    data = os.urandom(3 * MiB + 17)
    s.put(u(s, "r.bin"), data=data)
    r = s.get(u(s, "r.bin"), headers={"Range": "bytes=1048570-2097160"})
    assert r.status_code == 206 and r.content == data[1048570:2097161]
    assert r.headers["Content-Range"] == f"bytes 1048570-2097160/{len(data)}"
    assert s.get(u(s, "r.bin"), headers={"Range": "bytes=-10"}).content == data[-10:]
    full = s.get(u(s, "r.bin"))
    assert hashlib.sha256(full.content).digest() == hashlib.sha256(data).digest()


# -- locks --------------------------------------------------------------------------------------
LOCKINFO = (
    '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype><D:owner>tests</D:owner></D:lockinfo>"
)


def test_lock_missing_resource_creates_empty_file_and_put_needs_token(s, dav_server):
    r = s.request("LOCK", u(s, "locked.docx"), data=LOCKINFO, headers={"Timeout": "Second-600"})
    assert r.status_code == 201
    token = r.headers["Lock-Token"].strip("<>")
    g = s.get(u(s, "locked.docx"))
    assert g.status_code == 200 and g.content == b""
    # Without the token: 423 (even for the same user); with it: the write lands.
    assert s.put(u(s, "locked.docx"), data=b"no").status_code == 423
    r = s.put(u(s, "locked.docx"), data=b"yes", headers={"If": f"(<{token}>)"})
    assert r.status_code == 204
    assert s.delete(u(s, "locked.docx")).status_code == 423
    assert s.request("UNLOCK", u(s, "locked.docx"), headers={"Lock-Token": f"<{token}>"}).ok
    assert s.get(u(s, "locked.docx")).content == b"yes"
    assert s.delete(u(s, "locked.docx")).status_code == 204


def test_lock_timeout_is_capped(s):
    s.put(u(s, "t.txt"), data=b"x")
    r = s.request("LOCK", u(s, "t.txt"), data=LOCKINFO, headers={"Timeout": "Infinite"})
    assert r.status_code == 200
    timeout = etree.fromstring(r.content).find(f".//{DAV}timeout").text
    assert timeout.startswith("Second-") and int(timeout.split("-")[1]) <= 86400


def test_options_advertises_class_2(s):
    r = s.options(u(s, ""))
    assert r.status_code == 200
    assert "2" in [x.strip() for x in r.headers["DAV"].split(",")]


# -- MOVE / COPY --------------------------------------------------------------------------------
def test_move_201_new_204_existing_412_without_overwrite(s):
    s.put(u(s, "a"), data=b"A")
    s.put(u(s, "b"), data=b"B")
    r = s.request("MOVE", u(s, "a"), headers={"Destination": u(s, "c")})
    assert r.status_code == 201
    r = s.request("MOVE", u(s, "c"), headers={"Destination": u(s, "b"), "Overwrite": "F"})
    assert r.status_code == 412
    assert s.get(u(s, "b")).content == b"B"
    r = s.request("MOVE", u(s, "c"), headers={"Destination": u(s, "b")})
    assert r.status_code == 204
    assert s.get(u(s, "b")).content == b"A" and s.head(u(s, "c")).status_code == 404


def test_copy_201_204_and_shares_blocks(s, dav_server):
    data = os.urandom(2 * MiB)
    s.put(u(s, "big.bin"), data=data)
    used = dav_server.drive.usage(dav_server.principal("alice")).used
    blocks_dir = dav_server.data_dir / "blocks"
    before = sum(f.stat().st_size for f in blocks_dir.rglob("*") if f.is_file())
    assert (
        s.request("COPY", u(s, "big.bin"), headers={"Destination": u(s, "twin.bin")}).status_code
        == 201
    )
    assert (
        s.request("COPY", u(s, "big.bin"), headers={"Destination": u(s, "twin.bin")}).status_code
        == 204
    )
    after = sum(f.stat().st_size for f in blocks_dir.rglob("*") if f.is_file())
    assert after == before  # no block written: the copy shares them
    assert s.get(u(s, "twin.bin")).content == data
    alice = dav_server.principal("alice")
    assert dav_server.drive.block_list(alice, "/twin.bin") == dav_server.drive.block_list(
        alice, "/big.bin"
    )
    assert dav_server.drive.usage(alice).used == 2 * used  # logical size counts per copy


def test_copy_folder_depth_0_copies_folder_only(s):
    s.request("MKCOL", u(s, "src"))
    s.put(u(s, "src/f"), data=b"x")
    r = s.request("COPY", u(s, "src/"), headers={"Destination": u(s, "dst/"), "Depth": "0"})
    assert r.status_code == 201
    tree = propfind(s, "dst/", depth="1")
    assert len(tree.findall(f"{DAV}response")) == 1


def test_move_folder_with_10000_descendants_is_fast_and_intact(s, dav_server):
    drive, alice = dav_server.drive, dav_server.principal("alice")
    drive.mkdir(alice, "/huge")
    for i in range(10):
        drive.mkdir(alice, f"/huge/d{i}")
    # 10 folders x 999 files + 10 folders = 10,000 descendants, created via the API directly.
    from sqlalchemy import insert, select

    from davdrive.metadata.schema import Node

    with drive.db.write() as sess:
        for i in range(10):
            parent = sess.scalar(select(Node.id).where(Node.name == f"d{i}"))
            now = time.time()
            sess.execute(
                insert(Node),
                [
                    {
                        "user_id": alice.user_id,
                        "parent_id": parent,
                        "name": f"f{j}",
                        "is_dir": False,
                        "mtime": now,
                        "created_at": now,
                    }
                    for j in range(999)
                ],
            )
    drive.write_file(alice, "/huge/d3/real.txt", b"payload")
    t0 = time.monotonic()
    r = s.request("MOVE", u(s, "huge/"), headers={"Destination": u(s, "moved/")})
    elapsed = time.monotonic() - t0
    assert r.status_code == 201
    assert elapsed < 1.0, elapsed
    assert s.head(u(s, "huge/")).status_code == 404
    assert len(drive.list_dir(alice, "/moved")) == 10
    assert sum(len(drive.list_dir(alice, f"/moved/d{i}")) for i in range(10)) == 9991
    assert s.get(u(s, "moved/d3/real.txt")).content == b"payload"


# -- properties ---------------------------------------------------------------------------------
def test_quota_properties_are_true_values(s, dav_server):
    s.put(u(s, "q.bin"), data=os.urandom(12345))
    body = (
        '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop>'
        "<D:quota-available-bytes/><D:quota-used-bytes/></D:prop></D:propfind>"
    )
    tree = propfind(s, "", body)
    usage = dav_server.drive.usage(dav_server.principal("alice"))
    assert int(prop(tree, f"{DAV}quota-used-bytes")) == usage.used == 12345
    assert int(prop(tree, f"{DAV}quota-available-bytes")) == usage.available


def test_dead_properties_round_trip_and_follow_move(s):
    s.put(u(s, "p.txt"), data=b"x")
    body = (
        '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x-test:">'
        "<D:set><D:prop><Z:color>blue \u00e9</Z:color></D:prop></D:set></D:propertyupdate>"
    )
    assert s.request("PROPPATCH", u(s, "p.txt"), data=body.encode()).status_code == 207
    s.request("MOVE", u(s, "p.txt"), headers={"Destination": u(s, "q.txt")})
    tree = propfind(
        s,
        "q.txt",
        '<D:propfind xmlns:D="DAV:" xmlns:Z="urn:x-test:"><D:prop><Z:color/></D:prop></D:propfind>',
    )
    assert prop(tree, "{urn:x-test:}color") == "blue \u00e9"


def test_getlastmodified_is_node_mtime(s, dav_server):
    s.put(u(s, "lm.txt"), data=b"x")
    dav_server.drive.set_mtime(dav_server.principal("alice"), "/lm.txt", 1234567890)
    value = prop(propfind(s, "lm.txt"), f"{DAV}getlastmodified")
    assert parsedate_to_datetime(value).timestamp() == 1234567890


def test_propfind_depth_infinity_refused(s):
    r = s.request("PROPFIND", u(s, ""), headers={"Depth": "infinity"})
    assert r.status_code == 403 and b"propfind-finite-depth" in r.content


def test_malformed_xml_400_and_billion_laughs_400(s):
    assert (
        s.request("PROPFIND", u(s, ""), data=b"<D:propfind", headers={"Depth": "0"}).status_code
        == 400
    )
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        b'<D:propfind xmlns:D="DAV:"><D:prop><D:x>&lol3;</D:x></D:prop></D:propfind>'
    )
    assert s.request("PROPFIND", u(s, ""), data=bomb, headers={"Depth": "0"}).status_code == 400
    s.put(u(s, "x.txt"), data=b"x")
    assert s.request("PROPPATCH", u(s, "x.txt"), data=bomb).status_code == 400
    assert s.request("LOCK", u(s, "x.txt"), data=b"<not xml").status_code == 400


def test_xml_body_over_1_mib_413(s):
    big = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:">' + b" " * (2 * MiB) + b"</D:propfind>"
    r = s.request("PROPFIND", u(s, ""), data=big, headers={"Depth": "0"})
    assert r.status_code == 413
    r = s.request("PROPFIND", u(s, ""), data=iter([big]), headers={"Depth": "0"})
    assert r.status_code == 413


def test_finder_metadata_files_are_ordinary_files(s):
    for name in ("._report.pdf", ".DS_Store"):
        assert s.put(u(s, name), data=b"\x00\x05\x16\x07").status_code == 201
        assert s.get(u(s, name)).content == b"\x00\x05\x16\x07"


def test_concurrent_puts_with_same_if_match_one_wins(s, dav_server):
    etag = s.put(u(s, "race.txt"), data=b"base").headers["ETag"]
    body = b"A" * 4000
    parsed = urlparse(dav_server.url)
    head = (
        "PUT /dav/alice/race.txt HTTP/1.1\r\n"
        f"Host: {parsed.netloc}\r\n"
        f"Authorization: {basic('alice', 'alice-pw')}\r\n"
        f"If-Match: {etag}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((parsed.hostname, parsed.port), timeout=10) as slow:
        slow.sendall(head.encode() + body[:2000])  # passes the If-Match check, then stalls
        time.sleep(0.3)
        assert s.put(u(s, "race.txt"), data=b"B", headers={"If-Match": etag}).status_code == 204
        slow.sendall(body[2000:])
        reply = b""
        while chunk := slow.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 412"), reply[:200]
    assert s.get(u(s, "race.txt")).content == b"B"


def test_quota_and_size_limits(s, dav_server):
    dav_server.drive.create_account("carol", "x", quota=1000)
    dav_server.app.accounts.passwords["carol"] = "carol-pw"
    carol = requests.Session()
    carol.auth = ("carol", "carol-pw")
    base = dav_server.dav("carol")
    assert carol.put(base + "fits.bin", data=b"x" * 600).status_code == 201
    assert carol.put(base + "big.bin", data=b"x" * 600).status_code == 507  # declared size
    r = carol.put(base + "big2.bin", data=iter([b"x" * 300, b"x" * 300]))  # chunked
    assert r.status_code == 507
    assert [n.name for n in dav_server.drive.list_dir(dav_server.principal("carol"), "/")] == [
        "fits.bin"
    ]
    tree = etree.fromstring(carol.request("PROPFIND", base, headers={"Depth": "0"}).content)
    assert prop(tree, f"{DAV}quota-used-bytes") == "600"
    assert prop(tree, f"{DAV}quota-available-bytes") == "400"


def test_propfind_depth_1_on_a_big_folder_is_bounded(s, dav_server):
    drive, alice = dav_server.drive, dav_server.principal("alice")
    drive.mkdir(alice, "/many")
    for i in range(1000):
        drive.write_file(alice, f"/many/f{i:04d}.txt", b"x")
    s.request("LOCK", u(s, "many/f0007.txt"), data=LOCKINFO)
    t0 = time.monotonic()
    r = s.request("PROPFIND", u(s, "many/"), headers={"Depth": "1"})  # allprop
    elapsed = time.monotonic() - t0
    assert r.status_code == 207
    responses = etree.fromstring(r.content).findall(f"{DAV}response")
    assert len(responses) == 1001
    locked = [x for x in responses if x.find(f".//{DAV}activelock") is not None]
    assert [x.findtext(f"{DAV}href") for x in locked] == ["/dav/alice/many/f0007.txt"]
    assert elapsed < 2.0, elapsed  # ~0.15 s here: one list, one props query, one lock scan


def test_windows_explorer_copy_sequence(s):
    """Explorer's copy: PUT 0 bytes, LOCK, PUT the content with the token, PROPPATCH the Win32
    times, UNLOCK; the file ends with the content and the mtime, and is writable again."""
    ua = {"User-Agent": "Microsoft-WebDAV-MiniRedir/10.0.19045"}
    assert s.put(u(s, "report.docx"), data=b"", headers=ua).status_code == 201
    r = s.request("LOCK", u(s, "report.docx"), data=LOCKINFO,
                  headers={**ua, "Timeout": "Second-3600"})  # fmt: skip
    assert r.status_code == 200
    token = r.headers["Lock-Token"].strip("<>")
    body = os.urandom(300_000)
    r = s.put(u(s, "report.docx"), data=body, headers={**ua, "If": f"(<{token}>)"})
    assert r.status_code == 204
    when = datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)
    patch = (
        '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" '
        'xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>'
        f"<Z:Win32CreationTime>{format_datetime(when, usegmt=True)}</Z:Win32CreationTime>"
        f"<Z:Win32LastAccessTime>{format_datetime(when, usegmt=True)}</Z:Win32LastAccessTime>"
        f"<Z:Win32LastModifiedTime>{format_datetime(when, usegmt=True)}</Z:Win32LastModifiedTime>"
        "<Z:Win32FileAttributes>00000020</Z:Win32FileAttributes>"
        "</D:prop></D:set></D:propertyupdate>"
    )
    r = s.request("PROPPATCH", u(s, "report.docx"), data=patch,
                  headers={**ua, "If": f"(<{token}>)"})  # fmt: skip
    assert r.status_code == 207 and r.content.count(b"200 OK") >= 1 and b"403" not in r.content
    r = s.request("UNLOCK", u(s, "report.docx"), headers={**ua, "Lock-Token": f"<{token}>"})
    assert r.status_code == 204
    assert s.get(u(s, "report.docx")).content == body
    modified = prop(propfind(s, "report.docx"), f"{DAV}getlastmodified")
    assert parsedate_to_datetime(modified) == when
    assert s.put(u(s, "report.docx"), data=b"after unlock").status_code == 204


def test_cut_off_chunked_put_keeps_previous_version(s, dav_server):
    assert s.put(u(s, "c.bin"), data=b"old").status_code == 201
    user, pw = dav_server.auth("alice")
    path = urlparse(u(s, "c.bin")).path
    head = (
        f"PUT {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {basic(user, pw)}\r\n"
        "Transfer-Encoding: chunked\r\nX-Expected-Entity-Length: 400000\r\n"
    )
    chunk = os.urandom(100_000)
    body = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"  # one chunk, then the line drops
    raw_request(dav_server.url, head, body * 2, close_after=len(body) * 2 - 10)
    time.sleep(0.3)
    assert s.get(u(s, "c.bin")).content == b"old"
    # a chunked body that ends cleanly but short of X-Expected-Entity-Length saves nothing
    short = s.put(u(s, "c.bin"), data=iter([chunk]), headers={"X-Expected-Entity-Length": "400000"})
    assert short.status_code == 400
    assert s.get(u(s, "c.bin")).content == b"old"


def test_external_entity_is_refused(s):
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<D:propfind xmlns:D="DAV:"><D:prop><D:x>&x;</D:x></D:prop></D:propfind>'
    )
    r = s.request("PROPFIND", u(s, ""), data=xxe, headers={"Depth": "0"})
    assert r.status_code == 400 and b"root:" not in r.content
