"""The client refuses a server whose block protocol differs from its own, with a clear message,
and takes the server's limit on hashes per blocks/check call."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from davdrive.protocol import CHUNK_PARAMS
from davdrive_sync.remote import Remote, RemoteError


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
