"""The client refuses a server whose block protocol differs from its own, with a clear message,
and takes the server's limit on hashes per blocks/check call."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from davdrive.protocol import CHUNK_PARAMS, block_id
from davdrive_sync.remote import Remote, RemoteError
from tests.sync.conftest import app_password


def serve_capabilities(caps: dict) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = json.dumps(caps).encode()
            self.send_response(200 if self.path == "/api/v1/capabilities" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def other_server() -> Iterator[str]:
    caps = {"chunking": {**CHUNK_PARAMS, "max_size": 8 << 20}, "blocks": {}}
    yield from serve_capabilities(caps)


@pytest.fixture
def same_server() -> Iterator[str]:
    caps = {"chunking": {**CHUNK_PARAMS, "implementation": "x"}, "blocks": {"max_check_hashes": 7}}
    yield from serve_capabilities(caps)


def test_a_different_chunking_is_refused_by_name(other_server):
    remote = Remote(other_server, "alice", password="pw", retries=0)
    with pytest.raises(RemoteError, match="max_size: server 8388608, client 4194304"):
        remote.check_protocol()


def test_the_same_protocol_passes_and_the_check_limit_is_taken(same_server):
    remote = Remote(same_server, "alice", password="pw", retries=0)
    remote.check_protocol()
    assert remote.check_batch == 7


def test_block_checks_are_batched_by_the_limit_against_a_real_server(live_server):
    """Batching above the server's limit, cheaply: with a batch of 3 the client asks a real
    server in slices, and the answer is the same set as one call would give."""
    remote = Remote(
        live_server.url, "alice", password=app_password(live_server, "alice", "batch"), retries=0
    )
    remote.check_protocol()
    blocks = [f"block {i}".encode() * 1000 for i in range(10)]
    ids = [block_id(b) for b in blocks]
    for b, i in zip(blocks[:4], ids[:4], strict=True):
        remote.put_block(i, b)
    calls: list[int] = []
    real = remote._json

    def counting(method: str, path: str, **kw: object) -> object:
        if path == "/blocks/check":
            calls.append(len(kw["json"]["hashes"]))  # type: ignore[index]
        return real(method, path, **kw)

    remote._json = counting  # type: ignore[method-assign]
    assert remote.blocks_missing(ids + ids[:2], batch=3) == set(ids[4:])
    assert calls == [3, 3, 3, 1]  # duplicates asked once
    assert remote.blocks_missing(ids) == set(ids[4:])  # the published limit: one call
    assert calls[4:] == [10]
