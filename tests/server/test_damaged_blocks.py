"""A damaged block never looks like a good download (issue 9, item 11): the API checks the first
block before the headers (500 ``integrity_error``), and a later block that fails mid-stream drops
the connection before the announced length, so no client takes a short body for the file."""

from __future__ import annotations

import base64
import os
import socket
import sqlite3
import time
from pathlib import Path

import pytest
import requests

MiB = 1 << 20


def _block_file(srv, path: str, index: int) -> Path:
    """The stored object of block ``index`` of ``path`` (API block list → block table)."""
    meta = requests.get(f"{srv.url}/api/v1/files/metadata", params={"path": path},
                        auth=srv.auth("alice"), timeout=10).json()  # fmt: skip
    block_id = meta["blocks"][index]["id"]
    with sqlite3.connect(srv.data_dir / "davdrive.db") as db:
        (key,) = db.execute("SELECT object_key FROM block WHERE hash = ?", (block_id,)).fetchone()
    return srv.data_dir / "blocks" / key[:2] / key[2:4] / key


def _damage(f: Path) -> None:
    raw = bytearray(f.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    f.write_bytes(bytes(raw))


def _raw_get(port: int, target: str, auth_header: str) -> tuple[bytes, bytes, bool]:
    """GET over a raw socket: (head, body, closed by the server)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth_header}\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        closed = False
        while True:
            try:
                chunk = sock.recv(1 << 20)
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            body += chunk
    return head, body, closed


@pytest.fixture
def multi_block(live_server):
    """alice's /big.bin: several blocks of random bytes."""
    data = os.urandom(6 * MiB)
    url = live_server.dav("alice") + "big.bin"
    r = requests.put(url, data=data, auth=live_server.auth("alice"), timeout=60)
    assert r.status_code == 201
    return data


def test_a_damaged_first_block_answers_500_before_any_byte(live_server, multi_block):
    _damage(_block_file(live_server, "/big.bin", 0))
    alice = live_server.auth("alice")
    r = requests.get(f"{live_server.url}/api/v1/files/download", params={"path": "/big.bin"},
                     auth=alice, timeout=30)  # fmt: skip
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "integrity_error"
    # a range that starts in a good block is served
    tail = requests.get(f"{live_server.url}/api/v1/files/download", params={"path": "/big.bin"},
                        headers={"Range": "bytes=-100"}, auth=alice, timeout=30)  # fmt: skip
    assert tail.status_code == 206 and tail.content == multi_block[-100:]
    # WebDAV GET: WsgiDAV reads the first block before it sends the headers, too
    dav = requests.get(live_server.dav("alice") + "big.bin", auth=alice, timeout=30)
    assert dav.status_code == 500
    time.sleep(0.3)
    err = live_server.stderr()
    assert "download of /big.bin refused: a block failed its check" in err
    assert "IntegrityError" in err


@pytest.mark.parametrize("door", ["api", "dav"])
def test_a_damaged_later_block_cuts_the_connection_short(live_server, multi_block, door):
    _damage(_block_file(live_server, "/big.bin", 2))
    basic = base64.b64encode(b"alice:alice-pw").decode()
    target = "/api/v1/files/download?path=/big.bin" if door == "api" else "/dav/alice/big.bin"
    head, body, closed = _raw_get(live_server.port, target, f"Authorization: Basic {basic}\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    length = int(
        next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")).split(
            b":"
        )[1]
    )
    assert length == len(multi_block)
    assert closed and len(body) < length  # short, and the server closed the connection
    assert multi_block.startswith(body)  # what did arrive is right
    # a client library sees an error, not a complete file
    with pytest.raises(requests.exceptions.RequestException):
        url = f"{live_server.url}{target}"
        requests.get(url, auth=live_server.auth("alice"), timeout=30).content  # noqa: B018
    time.sleep(0.3)
    err = live_server.stderr()
    assert "IntegrityError" in err and "Traceback" in err
    assert "aborted after" in err
    # the server keeps serving
    assert requests.get(f"{live_server.url}/healthz", timeout=5).status_code == 200
