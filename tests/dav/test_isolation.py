"""Accounts are isolated over WebDAV, and hostile paths never escape a home."""

from __future__ import annotations

import base64
import socket
from urllib.parse import urlparse

import pytest
import requests
from lxml import etree

LOCKINFO = (
    '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype></D:lockinfo>"
)


@pytest.fixture
def homes(any_server):
    alice = requests.Session()
    alice.auth = any_server.auth("alice")
    bob = requests.Session()
    bob.auth = any_server.auth("bob")
    a, b = any_server.dav("alice"), any_server.dav("bob")
    assert alice.request("MKCOL", a + "private").status_code == 201
    assert alice.put(a + "private/secret.txt", data=b"alice only").status_code == 201
    assert bob.put(b + "mine.txt", data=b"bob's").status_code == 201
    return alice, bob, a, b


def tree(server, login: str) -> list[tuple[str, str, str]]:
    """(href, size, etag) of everything in a home, two levels deep, as its owner sees it."""
    s = requests.Session()
    s.auth = server.auth(login)
    out = []
    todo = [server.dav(login)]
    for _ in range(2):
        nxt = []
        for url in todo:
            r = s.request("PROPFIND", url, headers={"Depth": "1"})
            assert r.status_code == 207
            for resp in etree.fromstring(r.content).findall("{DAV:}response"):
                href = resp.findtext("{DAV:}href")
                size = resp.findtext(".//{DAV:}getcontentlength") or "-"
                etag = resp.findtext(".//{DAV:}getetag") or ""
                out.append((href, size, etag if size != "-" else ""))
                if href.endswith("/") and urlparse(url).path != href:
                    nxt.append(server.url + href)
        todo = nxt
    return sorted(set(out))


def test_root_lists_only_the_callers_home(any_server, homes):
    _alice, bob, _a, _b = homes
    r = bob.request("PROPFIND", f"{any_server.url}/dav/", headers={"Depth": "1"})
    assert r.status_code == 207
    assert b"/dav/bob/" in r.content and b"alice" not in r.content


def test_bob_cannot_touch_alices_home(any_server, homes):
    alice, bob, a, b = homes
    before = tree(any_server, "alice")
    secret = a + "private/secret.txt"
    assert bob.get(secret).status_code == 404
    assert bob.head(secret).status_code == 404
    assert bob.request("PROPFIND", a, headers={"Depth": "1"}).status_code == 404
    assert bob.request("PROPFIND", a + "private/", headers={"Depth": "0"}).status_code == 404
    assert bob.put(a + "planted.txt", data=b"x").status_code == 404
    assert bob.put(secret, data=b"overwritten").status_code == 404
    assert bob.request("MKCOL", a + "newdir").status_code == 404
    assert bob.delete(secret).status_code == 404
    assert bob.request("LOCK", secret, data=LOCKINFO).status_code == 404
    assert bob.request("LOCK", a + "unmapped.txt", data=LOCKINFO).status_code == 404
    body = (
        '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
        '<Z:x xmlns:Z="urn:z">1</Z:x></D:prop></D:set></D:propertyupdate>'
    )
    assert bob.request("PROPPATCH", secret, data=body).status_code == 404
    # Moving or copying out of alice's home: the source does not exist for bob.
    for method in ("MOVE", "COPY"):
        r = bob.request(method, secret, headers={"Destination": b + "stolen.txt"})
        assert r.status_code == 404
    # Copying or moving into alice's home, with every Destination trick.
    host = urlparse(any_server.url).netloc
    destinations = [
        a + "planted.txt",
        "/dav/alice/planted.txt",
        f"http://{host}/dav/bob/../alice/planted.txt",
        f"http://{host}/dav/bob/%2e%2e/alice/planted.txt",
        f"http://{host}/dav/bob/..%2falice/planted.txt",
        f"http://{host}/DAV/alice/planted.txt",
        f"http://{host}//dav/alice/planted.txt",
        f"http://{host}/dav/alice",
        f"http://{host}/dav/",
    ]
    for dest in destinations:
        for method in ("COPY", "MOVE"):
            r = bob.request(method, b + "mine.txt", headers={"Destination": dest})
            assert r.status_code in (400, 403, 404), (method, dest, r.status_code)
    assert bob.get(b + "mine.txt").content == b"bob's"
    assert tree(any_server, "alice") == before
    assert alice.get(secret).content == b"alice only"


def test_locks_are_per_user_namespace(homes):
    alice, bob, a, b = homes
    r = alice.request("LOCK", a + "private/secret.txt", data=LOCKINFO)
    token = r.headers["Lock-Token"]
    # Bob cannot use alice's token against alice's resource or unlock it.
    r = bob.request("UNLOCK", a + "private/secret.txt", headers={"Lock-Token": token})
    assert r.status_code == 404
    assert alice.put(a + "private/secret.txt", data=b"x").status_code == 423


HOSTILE = [
    "/dav/alice/../bob/mine.txt",
    "/dav/alice/%2e%2e/bob/mine.txt",
    "/dav/alice/%2E%2E/%2E%2E/etc/passwd",
    "/dav/alice/..%2fbob/mine.txt",
    "/dav/alice/a%2fb",
    "/dav/alice/a%00b",
    "/dav/alice/a%5cb",
    "/dav/%2e%2e/alice/",
    "/dav/bob%2f..%2falice/private/secret.txt",
    "/dav/./bob/mine.txt",
]


def raw_status(server, method: str, path: str, body: bytes) -> tuple[int, bytes]:
    parsed = urlparse(server.url)
    cred = base64.b64encode(b"alice:alice-pw").decode()
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {parsed.netloc}\r\nAuthorization: Basic {cred}\r\n"
        f"Content-Length: {len(body)}\r\nDepth: 1\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((parsed.hostname, parsed.port), timeout=10) as sock:
        sock.sendall(head.encode() + body)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return int(reply.split(b" ", 2)[1]), reply[:300]


def test_hostile_paths_never_escape(any_server, homes):
    before_alice, before_bob = tree(any_server, "alice"), tree(any_server, "bob")
    for path in HOSTILE:
        for method in ("GET", "PUT", "PROPFIND", "DELETE", "MKCOL", "MOVE"):
            body = b"evil" if method == "PUT" else b""
            status, reply = raw_status(any_server, method, path, body)
            if path.startswith("/dav/./bob/"):  # normalized to bob's home: still not alice's
                assert status in (400, 403, 404, 405, 409), (method, path, reply)
            else:
                assert status in (400, 403, 404), (method, path, reply)
    assert tree(any_server, "alice") == before_alice
    assert tree(any_server, "bob") == before_bob


def test_malformed_credentials_get_401(any_server):
    url = any_server.dav("alice")
    assert requests.get(url).status_code == 401
    assert requests.get(url, auth=("alice", "wrong")).status_code == 401
    for header in ("Basic !!!", "Basic Zm9v", "Basic //79"):
        assert requests.get(url, headers={"Authorization": header}).status_code == 401


def test_head_errors_carry_no_body_on_keep_alive(any_server, homes):
    """A HEAD answered 404/401 must not leak an error page into the next response."""
    import http.client

    parsed = urlparse(any_server.url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    bob = "Basic " + base64.b64encode(b"bob:bob-pw").decode()
    for headers in ({"Authorization": bob}, {}, {"Authorization": "Basic !!!"}):
        conn.request("HEAD", "/dav/alice/private/secret.txt", headers=headers)
        r = conn.getresponse()
        assert r.status in (401, 404) and r.read() == b""
        conn.request("GET", "/dav/bob/mine.txt", headers={"Authorization": bob})
        r = conn.getresponse()
        assert r.status == 200 and r.read() == b"bob's"
    conn.close()
