"""A counting (and optionally throttling) TCP proxy: bytes on the wire, measured at the socket.

Shared measuring tool of ``scripts/bench_sync.py`` (imported as the sibling module
``counting_proxy``, as the other bench scripts import ``bench_webdav``) and of the sync tests
(``from scripts.counting_proxy import CountingProxy``). It counts TCP payload each way: HTTP
headers, JSON and bodies, as a client's network link carries them (not the TCP/IP headers).
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
            threading.Thread(target=self._pipe, args=(client, server, "up"), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, "down"), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, way: str) -> None:
        try:
            while data := src.recv(65536):
                with self.lock:
                    setattr(self, way, getattr(self, way) + len(data))
                if self.rate:
                    time.sleep(len(data) / self.rate)
                dst.sendall(data)
        except OSError:
            pass
        finally:
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
