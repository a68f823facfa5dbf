"""Ambiguous HTTP framing against the real server (issue 16, item 8): every request-smuggling
shape is a 400 with the connection closed and nothing stored; well-formed chunked bodies (with
extensions and trailers, several on one connection) still work."""

from __future__ import annotations

import base64
import socket
import time

import pytest
import requests

AUTH = "Authorization: Basic " + base64.b64encode(b"alice:alice-pw").decode() + "\r\n"


def _exchange(port: int, raw: bytes, wait: float = 8.0) -> tuple[bytes, bool]:
    """Send ``raw``; return what came back and whether the server closed the connection
    (before ``wait`` seconds)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(raw)
        data = b""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                piece = s.recv(65536)
            except TimeoutError:
                return data, False
            except ConnectionResetError:
                return data, True
            if not piece:
                return data, True
            data += piece
        return data, False


def _put(name: str, headers: str, body: str = "", version: str = "HTTP/1.1") -> bytes:
    return f"PUT /dav/alice/{name} {version}\r\nHost: x\r\n{AUTH}{headers}\r\n{body}".encode()


def _chunked(name: str, body: str) -> bytes:
    return _put(name, "Transfer-Encoding: chunked\r\n", body)


# name -> raw request; every one must be refused
SHAPES = {
    "two-content-lengths": _put("a", "Content-Length: 3\r\nContent-Length: 5\r\n", "abcde"),
    "two-equal-content-lengths": _put("a", "Content-Length: 5\r\nContent-Length: 5\r\n", "abcde"),
    "content-length-list": _put("a", "Content-Length: 5, 5\r\n", "abcde"),
    "content-length-plus": _put("a", "Content-Length: +5\r\n", "abcde"),
    "content-length-minus": _put("a", "Content-Length: -1\r\n", "abcde"),
    "content-length-spaces": _put("a", "Content-Length:  5 5\r\n", "abcde"),
    "content-length-hex": _put("a", "Content-Length: 0x5\r\n", "abcde"),
    "content-length-underscore": _put("a", "Content-Length: 5_0\r\n", "abcde"),
    "content-length-empty": _put("a", "Content-Length: \r\n", "abcde"),
    "content-length-arabic-digit": _put("a", "Content-Length: \u0665\r\n", "abcde"),
    "content-length-huge": _put("a", "Content-Length: 99999999999999999999999\r\n", "abcde"),
    "te-and-cl": _put(
        "a", "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", "5\r\nabcde\r\n0\r\n\r\n"
    ),
    "cl-and-te": _put(
        "a", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "5\r\nabcde\r\n0\r\n\r\n"
    ),
    "te-gzip-chunked": _put("a", "Transfer-Encoding: gzip, chunked\r\n", "5\r\nabcde\r\n0\r\n\r\n"),
    "te-chunked-twice": _put(
        "a", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"
    ),
    "te-identity": _put("a", "Transfer-Encoding: identity\r\nContent-Length: 5\r\n", "abcde"),
    "te-xchunked": _put("a", "Transfer-Encoding: xchunked\r\n", "5\r\nabcde\r\n0\r\n\r\n"),
    "te-empty": _put("a", "Transfer-Encoding: \r\n", "5\r\nabcde\r\n0\r\n\r\n"),
    "te-space-before-colon": _put(
        "a", "Transfer-Encoding : chunked\r\n", "5\r\nabcde\r\n0\r\n\r\n"
    ),
    "te-folded": _put("a", "Transfer-Encoding:\r\n chunked\r\n", "5\r\nabcde\r\n0\r\n\r\n"),
    "te-on-http-1.0": _put(
        "a",
        "Transfer-Encoding: chunked\r\nConnection: Keep-Alive\r\n",
        "5\r\nabcde\r\n0\r\n\r\n",
        version="HTTP/1.0",
    ),
    "header-value-with-cr": _put("a", "X-A: b\rContent-Length: 5\r\n", "abcde"),
    "chunk-size-junk": _chunked("a", "zz\r\nabcde\r\n0\r\n\r\n"),
    "chunk-size-plus": _chunked("a", "+5\r\nabcde\r\n0\r\n\r\n"),
    "chunk-size-minus": _chunked("a", "-5\r\nabcde\r\n0\r\n\r\n"),
    "chunk-size-0x": _chunked("a", "0x5\r\nabcde\r\n0\r\n\r\n"),
    "chunk-size-leading-space": _chunked("a", " 5\r\nabcde\r\n0\r\n\r\n"),
    "chunk-size-two-numbers": _chunked("a", "5 5\r\nabcde\r\n0\r\n\r\n"),
    "chunk-size-too-long": _chunked("a", "00000000000000005\r\nabcde\r\n0\r\n\r\n"),
    "chunk-size-bare-lf": _chunked("a", "5\nabcde\r\n0\r\n\r\n"),
    "chunk-ext-junk": _chunked("a", "5;junk junk\r\nabcde\r\n0\r\n\r\n"),
    "chunk-ext-no-name": _chunked("a", "5;\r\nabcde\r\n0\r\n\r\n"),
    "chunk-ext-control": _chunked("a", "5;a=\x01\r\nabcde\r\n0\r\n\r\n"),
    "chunk-ext-open-quote": _chunked("a", '5;a="x\r\nabcde\r\n0\r\n\r\n'),
    "chunk-data-too-long": _chunked("a", "3\r\nabcde\r\n0\r\n\r\n"),
    "chunk-in-second-chunk": _chunked("a", "2\r\nab\r\n3;;\r\ncde\r\n0\r\n\r\n"),
    "chunk-bad-trailer": _chunked("a", "5\r\nabcde\r\n0\r\nnot a trailer\r\n\r\n"),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for the whole module (every shape runs on its own connection)."""
    from tests.live import LiveServer

    srv = LiveServer(tmp_path_factory.mktemp("framing") / "data")
    srv.create_users()
    srv.start()
    yield srv
    srv.stop()


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_ambiguous_framing_is_refused(server, shape):
    raw = SHAPES[shape].replace(b"/dav/alice/a ", f"/dav/alice/{shape}.txt ".encode())
    data, closed = _exchange(server.port, raw)
    assert data.startswith(b"HTTP/1.1 400 "), data[:300]
    assert closed, "the connection stayed open after a framing error"
    r = requests.get(server.dav("alice") + f"{shape}.txt", auth=server.auth("alice"), timeout=10)
    assert r.status_code == 404, f"{shape}: something was stored"


def test_bad_chunked_body_on_the_api_is_refused(server):
    raw = (
        "POST /api/v1/files/upload?path=/api-bad.txt&uploadType=media HTTP/1.1\r\nHost: x\r\n"
        f"{AUTH}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n0\r\n\r\n"
    ).encode()
    data, closed = _exchange(server.port, raw)
    assert data.startswith(b"HTTP/1.1 400 ") and closed, data[:300]
    r = requests.get(server.dav("alice") + "api-bad.txt", auth=server.auth("alice"), timeout=10)
    assert r.status_code == 404


def test_well_formed_chunked_bodies_still_work(server):
    # extensions, a trailer, and a second request on the same connection
    first = _chunked(
        "ok1.txt", '3;name=value;q="x y"\r\nabc\r\n2\r\nde\r\n0\r\nX-Checksum: 1\r\n\r\n'
    )
    second = _put(
        "ok2.txt", "Transfer-Encoding: chunked\r\nConnection: close\r\n", "3\r\nxyz\r\n0\r\n\r\n"
    )
    data, closed = _exchange(server.port, first + second)
    assert data.count(b"HTTP/1.1 201 ") == 2 and closed, data[:600]
    auth = server.auth("alice")
    assert requests.get(server.dav("alice") + "ok1.txt", auth=auth, timeout=10).content == b"abcde"
    assert requests.get(server.dav("alice") + "ok2.txt", auth=auth, timeout=10).content == b"xyz"
    # and the usual clients: a Content-Length body and a streamed (chunked) one
    assert requests.put(server.dav("alice") + "ok3.txt", data=b"12345", auth=auth, timeout=10).ok
    streamed = requests.put(
        server.dav("alice") + "ok4.txt", data=iter([b"ab", b"cd"]), auth=auth, timeout=10
    )
    assert streamed.ok
    assert requests.get(server.dav("alice") + "ok4.txt", auth=auth, timeout=10).content == b"abcd"


def test_a_framing_error_leaves_the_server_serving(server):
    data, closed = _exchange(server.port, SHAPES["chunk-size-junk"])
    assert data.startswith(b"HTTP/1.1 400 ") and closed
    assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200
