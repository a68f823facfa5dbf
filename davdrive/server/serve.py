"""``davdrive serve``: cheroot in front of the dispatcher (notes/wsgidav.md §5).

- A fixed pool of ``config.threads`` workers plus ``longpoll_slots`` that only long-polls hold,
  a listen backlog and idle keep-alive allowance of the same size, 30 s socket timeout, 64 KiB
  request headers.
- Slow clients (``davdrive.server.connections``): a worker only gets a connection once its
  request head is complete (the selector thread collects it without blocking), the head must
  arrive within ``request_head_timeout`` seconds in total, and one client address may hold at
  most ``max_connections_per_client`` connections (``connection_limit_exempt``: the proxy).
- Strict framing (``davdrive.server.framing``): duplicate or malformed ``Content-Length``,
  ``Transfer-Encoding`` other than ``chunked`` or beside a ``Content-Length``, obs-fold, and a
  malformed chunked body are a 400 and a closed connection.
- ``BoundedDrainRequest``: when the app answers before reading a ``Content-Length`` body (401
  before auth, 412, 413, 503...), stock cheroot drains the rest with one ``read(remaining)``
  that buffers the whole body in RAM. Here at most ``DRAIN_LIMIT`` bytes are drained in
  ``DRAIN_PIECE`` reads within ``DRAIN_SECONDS``; a larger or slower rest closes the connection.
  The connection then closes with a short lingering close (stop sending, discard what the
  client still sends for up to ``LINGER_SECONDS``), so the client reads the early answer instead
  of a TCP reset.
- TLS through ``BuiltinSSLAdapter`` when ``tls_cert`` and ``tls_key`` are set (the handshake runs
  in cheroot's selector thread; on the internet, terminate TLS at a reverse proxy).
- The scheduled jobs (upkeep: stale uploads, expired locks, journal retention; gc, prune, scrub,
  replicate, archive) run on an APScheduler thread at the periods of the ``jobs`` setting
  (upkeep's default: ``upkeep_interval``), each under a database lease (``davdrive.jobs``).
- SIGTERM/SIGINT stop gracefully: long-polls are released, workers finish, exit status 0.
- Every request passes the access-log middleware (``davdrive.server.access_log``); cheroot's own
  error messages go to the ``davdrive.server.http`` logger instead of bare stderr writes.
- Outside it, ``RequestMetrics`` counts every request for ``/metrics`` (``davdrive.metrics``).
- With SQLite metadata (the embedded setup) a running server holds ``<data>/serve.lock``
  (``flock``, released by the kernel when the process ends, however it ends): a second server
  on the same data directory exits with status 2. With PostgreSQL several servers may share
  the database (and a data directory on shared storage): that is the scale-out setup.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import secrets
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cheroot import server as cheroot_server
from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from davdrive import errors
from davdrive.app import App
from davdrive.config import Config
from davdrive.jobs.maintenance import start_scheduler
from davdrive.server.access_log import AccessLog, ResponseAborted, open_access_log
from davdrive.server.connections import ClientLimits, GuardedConnectionManager
from davdrive.server.framing import (
    FramingGuard,
    StrictChunkedRFile,
    StrictHeaderReader,
    refuse_http10_chunked,
)
from davdrive.server.wsgi import RequestMetrics, make_wsgi_app

log = logging.getLogger("davdrive.server")
http_log = logging.getLogger("davdrive.server.http")

DRAIN_PIECE = 64 << 10
DRAIN_LIMIT = 1 << 20
DRAIN_SECONDS = 10.0
LINGER_SECONDS = 2.0
COALESCE_LIMIT = 64 << 10  # a body piece up to this size goes out with the header block
INITIAL_PASSWORD_FILE = "initial-admin-password"
LOCK_FILE = "serve.lock"


class DataDirBusy(Exception):
    """Another ``davdrive serve`` holds this data directory."""


def lock_data_dir(data_dir: str | os.PathLike[str]) -> int:
    """Take the exclusive ``<data>/serve.lock`` (creating the directory 0700); return the open
    descriptor, to keep for the life of the process. ``DataDirBusy`` if another server has it."""
    data = Path(data_dir)
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = data / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise
        who = f" (pid {holder})" if holder.isdigit() else ""
        raise DataDirBusy(
            f"another davdrive serve{who} is running on {data}: it holds {path}. "
            "Stop it first, or give this server its own --data (SQLite metadata allows one "
            "server per data directory; use PostgreSQL for several)"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def lock_for(config: Config) -> int | None:
    """``lock_data_dir`` for embedded (SQLite) metadata; None (no lock) with PostgreSQL."""
    if not config.embedded_metadata:
        return None
    return lock_data_dir(config.data_dir)


class _Server(wsgi.Server):
    """cheroot's server with its error messages routed through ``logging`` and the slow-client
    guard as its connection manager."""

    client_limits = ClientLimits()

    def prepare(self) -> None:
        """Bind and start the workers as cheroot does, then swap in the guarded manager."""
        super().prepare()
        stock = self._connections
        self._connections = GuardedConnectionManager(self, self.client_limits)
        stock._selector.close()  # it only watched the listening socket

    def error_log(self, msg: str = "", level: int = 20, traceback: bool = False) -> None:
        """Log cheroot's message; an aborted response was already logged by the middleware."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ResponseAborted):
            http_log.debug("connection dropped: %s", exc)
            return
        http_log.log(level, "%s", msg, exc_info=traceback)


class BoundedDrainRequest(cheroot_server.HTTPRequest):
    """An ``HTTPRequest`` that never reads an unread request body into memory at once, nor
    waits long for it, and that refuses ambiguous framing (``davdrive.server.framing``)."""

    drain_limit = DRAIN_LIMIT
    drain_seconds = DRAIN_SECONDS
    header_reader = StrictHeaderReader()
    _held_head: bytes | None = None  # the response's header block, not sent yet

    def read_request_headers(self) -> bool:
        """cheroot's header parsing with the strict reader; a refusal closes the connection
        (after a lingering close, so the client can read the 400)."""
        if not super().read_request_headers():
            self._refused()
            return False
        problem = refuse_http10_chunked(self.request_protocol, self.inheaders)
        if problem is not None:
            self.simple_response("400 Bad Request", problem)
            self._refused()
            return False
        return True

    def _refused(self) -> None:
        self.close_connection = True
        self.conn.linger_discard = True

    def respond(self) -> None:
        """cheroot's ``respond``, with a chunked body read by ``StrictChunkedRFile``; a
        header block still held back (no body, HEAD) is sent at the end."""
        try:
            if not self.chunked_read:
                super().respond()
                return
            self.rfile = StrictChunkedRFile(self.conn.rfile, self.server.max_request_body_size)
            self.server.gateway(self).respond()
            if self.ready:
                self.ensure_headers_sent()
            if self.chunked_write:
                self.conn.wfile.write(b"0\r\n\r\n")
        finally:
            self._send_held_head()

    def send_headers(self) -> None:
        """Drain a small unread body in pieces, or close the connection, then send headers.

        With a ``Content-Length`` (not chunked) the header block is held back and goes out
        with the first piece of the body (``write``), or at the end of ``respond``: a small
        answer is one ``send`` instead of two (one GIL round trip and one TCP segment less).
        """
        if self.chunked_read:
            # Never drained: an unfinished (or malformed) chunked body closes the connection.
            if not getattr(self.rfile, "closed", True):
                self._refused()
        elif not self.close_connection:
            remaining = getattr(self.rfile, "remaining", 0) or 0
            if remaining > self.drain_limit:
                self._refused()
            elif remaining > 0:
                self._drain(remaining)
        wfile = self.conn.wfile
        capture = _HeldHead()
        self.conn.wfile = capture
        try:
            super().send_headers()
        finally:
            self.conn.wfile = wfile
        if self.chunked_write:
            wfile.write(capture.data)
        else:
            self._held_head = capture.data

    def write(self, chunk: bytes) -> None:
        """Write body bytes, after the held-back header block (in one ``send`` when small)."""
        held = self._held_head
        if held is None:
            super().write(chunk)
            return
        self._held_head = None
        if len(chunk) <= COALESCE_LIMIT:
            self.conn.wfile.write(held + chunk)
        else:
            self.conn.wfile.write(held)
            super().write(chunk)

    def _send_held_head(self) -> None:
        held, self._held_head = self._held_head, None
        if held is not None:
            self.conn.wfile.write(held)

    def _drain(self, remaining: int) -> None:
        """Read and drop ``remaining`` body bytes within ``drain_seconds`` (socket timeouts
        count down to that deadline), else close the connection."""
        sock = self.conn.socket
        timed = _buffered(self.conn.rfile) < remaining  # else no socket read is needed
        deadline = time.monotonic() + self.drain_seconds
        try:
            while remaining > 0:
                if timed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        self._refused()
                        return
                    sock.settimeout(min(left, self.server.timeout))
                piece = self.rfile.read(min(DRAIN_PIECE, remaining))
                if not piece:
                    self.close_connection = True
                    return
                remaining = getattr(self.rfile, "remaining", 0) or 0
        except (OSError, ValueError):
            self.close_connection = True
        finally:
            if timed:
                try:
                    sock.settimeout(self.server.timeout)
                except OSError:
                    self.close_connection = True


class _HeldHead:
    """Stands in for the connection's writer while cheroot renders the header block."""

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> int:
        self.data += data
        return len(data)


def _buffered(rfile: Any) -> int:
    """Bytes waiting in cheroot's (``_pyio``) socket read buffer."""
    try:
        return len(rfile._read_buf) - rfile._read_pos
    except (AttributeError, TypeError):
        return 0


class BoundedDrainConnection(cheroot_server.HTTPConnection):
    """A connection whose requests use ``BoundedDrainRequest``."""

    RequestHandlerClass = BoundedDrainRequest
    linger_discard = False
    # Set by GuardedConnectionManager: the request head read so far, its deadline, and the
    # callback that gives the client's connection slot back.
    head_buffer: bytearray | None = None
    head_deadline: float | None = None
    release_client_slot: Callable[[], None] | None = None

    def close(self) -> None:
        """Close; after an early answer to an unread body, linger so the client can read it."""
        try:
            if self.linger_discard:
                self.linger_discard = False
                self._discard_rest()
            super().close()
        finally:
            release, self.release_client_slot = self.release_client_slot, None
            if release is not None:
                release()

    def _discard_rest(self) -> None:
        """Send FIN, then read and drop the client's remaining bytes (bounded in time)."""
        try:
            self.wfile.flush()
            self.socket.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + LINGER_SECONDS
            buf = bytearray(DRAIN_PIECE)
            while (left := deadline - time.monotonic()) > 0:
                self.socket.settimeout(left)
                if self.socket.recv_into(buf) == 0:
                    break
        except (OSError, ValueError):
            pass


def make_server(app: App, wsgi_app: Any | None = None) -> wsgi.Server:
    """A configured (not yet started) cheroot server for ``app.config``."""
    c = app.config
    inner = wsgi_app if wsgi_app is not None else make_wsgi_app(app)
    srv = _Server(
        (c.host, c.port),
        RequestMetrics(AccessLog(FramingGuard(inner), open_access_log(c.access_log))),
        # Long-polls wait on their own extra workers (capped in the API), so WebDAV keeps
        # `threads` workers however many polls are held; a waiting thread costs ~16 KiB RSS.
        numthreads=c.threads + c.longpoll_slots,
        # A listen backlog and idle keep-alive allowance to match: when a thousand devices
        # re-poll at once, a short backlog drops SYNs and the kernel retries them after 1, 3,
        # 7... seconds (measured: multi-second wake-up tails with 128).
        request_queue_size=min(4096, max(128, c.threads + c.longpoll_slots)),
        timeout=30,
        server_name="davdrive",
    )
    srv.keep_alive_conn_limit = max(256, c.threads + c.longpoll_slots)
    srv.max_request_header_size = 64 << 10
    srv.ConnectionClass = BoundedDrainConnection
    srv.client_limits = ClientLimits(
        head_timeout=c.request_head_timeout,
        per_client=c.max_connections_per_client,
        exempt=tuple(c.connection_limit_exempt),
    )
    if c.tls_cert or c.tls_key:
        if not (c.tls_cert and c.tls_key):
            raise errors.BadRequest("TLS needs both tls_cert and tls_key")
        adapter = BuiltinSSLAdapter(c.tls_cert, c.tls_key)
        adapter.context.minimum_version = ssl.TLSVersion.TLSv1_2
        srv.ssl_adapter = adapter
    return srv


def ensure_admin(app: App) -> str | None:
    """On a first start with no users, create ``admin`` and return its random password.

    The password is also written to ``<data>/initial-admin-password`` (mode 0600).
    """
    if app.accounts.list_users():
        return None
    password = secrets.token_urlsafe(18)
    try:
        app.accounts.add_user("admin", password, admin=True)
    except errors.AlreadyExists:  # another process won the race
        return None
    path = Path(app.config.data_dir) / INITIAL_PASSWORD_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(password + "\n")
    return password


def serve(app: App) -> None:
    """Serve until SIGTERM or SIGINT; print the initial admin password once on a first start."""
    password = ensure_admin(app)
    if password is not None:
        print(f"created user admin with password: {password}", flush=True)
        print(
            f"(also stored in {Path(app.config.data_dir) / INITIAL_PASSWORD_FILE}; "
            "change it with `davdrive user passwd admin`)",
            flush=True,
        )
    srv = make_server(app)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    srv.prepare()
    host, port = srv.bind_addr[:2]
    scheme = "https" if srv.ssl_adapter is not None else "http"
    shown = f"[{host}]" if ":" in host else host
    log.info("listening on %s://%s:%s", scheme, shown, port)
    worker = threading.Thread(target=srv.serve, name="cheroot", daemon=True)
    worker.start()
    scheduler = start_scheduler(app)
    try:
        while not stop.wait(1.0):
            if not worker.is_alive():
                raise RuntimeError("the HTTP server stopped unexpectedly")
    finally:
        scheduler.shutdown(wait=True)
        app.bus.close()  # release long-polls so workers can finish
        srv.stop()
        worker.join(timeout=10)
        for s, handler in previous.items():
            signal.signal(s, handler)
        log.info("stopped")


__all__ = [
    "BoundedDrainConnection",
    "BoundedDrainRequest",
    "DataDirBusy",
    "ensure_admin",
    "lock_data_dir",
    "lock_for",
    "make_server",
    "serve",
]
