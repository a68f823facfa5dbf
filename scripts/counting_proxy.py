"""A counting (and optionally throttling) TCP proxy: bytes on the wire, measured at the socket.

Shared measuring tool of ``scripts/bench_sync.py`` (imported as the sibling module
``counting_proxy``, as the other bench scripts import ``bench_webdav``) and of the sync tests
(``from scripts.counting_proxy import CountingProxy``). It counts TCP payload each way: HTTP
headers, JSON and bodies, as a client's network link carries them (not the TCP/IP headers).

It also tracks requests in flight: a connection is *busy* from the first byte the client sends
after an answer (or at the start) until the first byte of the server's answer; ``max_busy`` is
the most connections busy at once since the last ``reset`` (HTTP/1.1 without pipelining: one
request per busy connection), which shows whether a client sends requests in parallel.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType


class CountingProxy:
    """Forwards ``127.0.0.1:<port>`` to ``127.0.0.1:<target_port>``; counts bytes each way."""

    def __init__(self, target_port: int, rate: float | None = None) -> None:
        self.target = ("127.0.0.1", target_port)
        self.rate = rate  # bytes/second each way, None: as fast as it goes
        self.up = 0  # client -> server
        self.down = 0  # server -> client
        self.busy = 0  # connections with a request sent and no answer begun
        self.max_busy = 0  # the most of them at once since the last reset
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        """Start counting from zero."""
        with self.lock:
            self.up = self.down = 0
            self.max_busy = self.busy

    def counts(self) -> tuple[int, int]:
        """``(up, down)`` bytes since the last ``reset``."""
        with self.lock:
            return self.up, self.down

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()  # the target is down: the client sees a closed connection
                continue
            conn = {"busy": False}  # this connection's request/answer state
            for args in ((client, server, "up", conn), (server, client, "down", conn)):
                threading.Thread(target=self._pipe, args=args, daemon=True).start()

    def _mark(self, conn: dict[str, bool], busy: bool) -> None:
        """A connection starts (``busy``) or stops waiting for an answer (under ``lock``)."""
        if conn["busy"] != busy:
            conn["busy"] = busy
            self.busy += 1 if busy else -1
            self.max_busy = max(self.max_busy, self.busy)

    def _pipe(
        self,
        src: socket.socket,
        dst: socket.socket,
        way: str,
        conn: dict[str, bool] | None = None,
    ) -> None:
        try:
            while data := src.recv(65536):
                with self.lock:
                    setattr(self, way, getattr(self, way) + len(data))
                    if conn is not None:
                        self._mark(conn, way == "up")
                if self.rate:
                    time.sleep(len(data) / self.rate)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            if conn is not None:
                with self.lock:
                    self._mark(conn, False)
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        """Stop accepting connections (open ones end with their peers)."""
        self.sock.close()

    def __enter__(self) -> CountingProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
