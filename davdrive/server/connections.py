"""Slow clients must not stop the server (issue 16, item 4).

Stock cheroot 11 hands a new connection to a worker thread at once, and the worker then
blocks reading the request line and headers; ``timeout`` bounds each socket operation, not the
whole head. A client trickling header lines holds a worker indefinitely, and 1,150 of them held
every worker: ``/healthz`` stopped answering without anyone logging in.

``GuardedConnectionManager`` replaces cheroot's ``ConnectionManager`` (installed by
``davdrive.server.serve._Server.prepare``):

- **A worker only gets a connection whose request head is complete.** New connections, and
  kept-alive ones between requests, wait in the selector thread; each time one is readable it
  is read without blocking into a per-connection buffer, and only when that holds a complete
  head (a line feed followed by an empty line, which is where cheroot's parser stops too) or
  more than ``max_request_header_size`` bytes (cheroot answers 413/414) is it queued for a
  worker, the bytes handed over in its read buffer. A slow client costs a socket and a small
  buffer, never a thread; a request costs no syscall more than before (the selector's read
  replaces the worker's).
- **Total head deadline**: a request head must be complete ``head_timeout`` seconds after the
  connection was accepted, or after the first byte of a request on a kept-alive connection;
  else the connection gets a best-effort ``408`` and is closed (checked every 0.5 s).
- **Connections per client address** (IPv6: per /64): above ``per_client`` open connections a
  new one is answered ``503`` and closed at once, before any TLS handshake. Addresses in
  ``exempt`` (by default loopback: the reverse proxy of config/nginx-reverse-proxy.conf) have
  no cap. A WARNING names the refused address at most every ``REFUSAL_LOG_INTERVAL`` seconds.
- Only kept-alive connections count against cheroot's ``keep_alive_conn_limit``; connections
  still sending their first head do not (slow clients do not turn off keep-alive for others).

Limits of the approach: TLS handshakes still run in cheroot's selector thread (cheroot #748),
and request *bodies* are read by workers with the per-operation ``timeout``; on the internet,
run behind the reverse proxy, which buffers heads and bodies.
"""

from __future__ import annotations

import _pyio
import ipaddress
import logging
import os
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cheroot import connections as cheroot_connections

log = logging.getLogger("davdrive.server.http")

RECV_SIZE = 64 << 10
DEFAULT_HEAD_LIMIT = 64 << 10  # when the server sets no max_request_header_size
REFUSAL_LOG_INTERVAL = 10.0
DEFAULT_EXEMPT = ("127.0.0.1", "::1")

# What _pull found.
_WAIT, _READY, _CLOSED = 0, 1, 2

RESPONSE_408 = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain\r\nContent-Length: 30\r\n"
    b"Connection: close\r\n\r\nrequest head not sent in time\n"
)
RESPONSE_503 = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 36\r\n"
    b"Retry-After: 5\r\nConnection: close\r\n\r\ntoo many connections from your address"
)


@dataclass(frozen=True)
class ClientLimits:
    """The limits ``GuardedConnectionManager`` enforces (see the module docstring)."""

    head_timeout: float = 20.0
    per_client: int = 64  # 0: no cap
    exempt: tuple[str, ...] = DEFAULT_EXEMPT  # addresses or networks ("10.0.0.0/8")
    _nets: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        init=False, repr=False, compare=False, default=()
    )

    def __post_init__(self) -> None:
        nets = tuple(ipaddress.ip_network(e.strip(), strict=False) for e in self.exempt)
        object.__setattr__(self, "_nets", nets)

    def is_exempt(self, address: str) -> bool:
        """Whether connections from ``address`` are not capped."""
        if not self._nets:
            return False
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self._nets)


def client_key(address: str) -> str:
    """The unit a cap counts: the IPv4 address, or the /64 of an IPv6 one (one host's share)."""
    if ":" not in address:
        return address
    try:
        ip = ipaddress.IPv6Address(address.split("%", 1)[0])
    except ValueError:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return ip.exploded[:19] + "::/64"


def head_complete(buf: bytes | bytearray, start: int = 0) -> bool:
    """Whether ``buf`` holds the end of a request head: cheroot's parser stops (finished or
    refusing) at the first line feed followed by an empty line."""
    return buf.find(b"\n\r\n", start) >= 0 or buf.find(b"\n\n", start) >= 0


def _send_nowait(sock: Any, data: bytes) -> None:
    """Best effort: write ``data`` if the socket takes it now (plain sockets only)."""
    if isinstance(sock, ssl.SSLSocket):
        return
    try:
        if sock.gettimeout() is None:
            sock.send(data, socket.MSG_DONTWAIT)
        else:  # timeout mode: the descriptor is non-blocking, and os.write skips the poll
            os.write(sock.fileno(), data)
    except (OSError, ValueError):
        pass


class _Listener:
    """The server socket as ``ConnectionManager._from_server_socket`` sees it: ``accept``
    refuses a client over its cap before cheroot wraps the socket (TLS) or builds a
    connection."""

    def __init__(self, sock: socket.socket, manager: GuardedConnectionManager) -> None:
        self._sock = sock
        self._manager = manager

    def accept(self) -> tuple[socket.socket, Any]:
        """Accept the next connection; a refused one raises ``TimeoutError``
        (``socket.timeout``), which cheroot treats as "nothing accepted"."""
        sock, addr = self._sock.accept()
        if self._manager.refuse(sock, addr):
            raise TimeoutError("connection refused: too many from this address")
        return sock, addr


class GuardedConnectionManager(cheroot_connections.ConnectionManager):
    """cheroot's ``ConnectionManager`` with head buffering, a head deadline and a per-client
    connection cap (see the module docstring)."""

    def __init__(self, server: Any, limits: ClientLimits | None = None) -> None:
        super().__init__(server)
        self.limits = limits or ClientLimits()
        self._head_limit = int(server.max_request_header_size or DEFAULT_HEAD_LIMIT)
        self._listener = _Listener(server.socket, self)
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._fresh: set[Any] = set()  # registered, still sending their first head
        self._refused = 0
        self._last_refusal_log = 0.0

    # -- per-client cap ----------------------------------------------------------------------
    def refuse(self, sock: socket.socket, addr: Any) -> bool:
        """Whether to refuse a just-accepted connection; if so, answer 503 and close it."""
        limit = self.limits.per_client
        if not limit or not isinstance(addr, tuple):
            return False
        key = client_key(addr[0])
        with self._lock:
            over = self._counts.get(key, 0) >= limit
        if not over or self.limits.is_exempt(addr[0]):
            return False
        try:
            sock.send(RESPONSE_503, socket.MSG_DONTWAIT)
        except OSError:
            pass
        finally:
            sock.close()
        self._refused += 1
        now = time.monotonic()
        if now - self._last_refusal_log >= REFUSAL_LOG_INTERVAL:
            log.warning(
                "refused %d connection(s) over max_connections_per_client=%d (latest from %s)",
                self._refused, limit, addr[0],
            )  # fmt: skip
            self._refused = 0
            self._last_refusal_log = now
        return True

    def _count(self, conn: Any) -> None:
        """Count ``conn`` against its client's cap until it closes."""
        addr = conn.remote_addr
        if not self.limits.per_client or not addr or self.limits.is_exempt(addr):
            return
        key = client_key(addr)
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1
        conn.release_client_slot = lambda: self._release(key)

    def _release(self, key: str) -> None:
        with self._lock:
            left = self._counts.get(key, 0) - 1
            if left > 0:
                self._counts[key] = left
            else:
                self._counts.pop(key, None)

    def connections_from(self, address: str) -> int:
        """Open connections counted for ``address``'s key (for tests and diagnostics)."""
        with self._lock:
            return self._counts.get(client_key(address), 0)

    # -- head buffering ----------------------------------------------------------------------
    @staticmethod
    def _bufferable(conn: Any) -> bool:
        """Whether this connection's reads can be done here (plain or stdlib TLS socket, and
        cheroot's ``_pyio`` read buffer to hand the bytes over in)."""
        sock = conn.socket
        return (
            isinstance(conn.rfile, _pyio.BufferedReader)
            and hasattr(conn.rfile, "_read_buf")
            and (type(sock) is socket.socket or isinstance(sock, ssl.SSLSocket))
        )

    def _recv(self, sock: Any) -> bytes:
        """One non-blocking read (``BlockingIOError``/``SSLWantReadError`` when empty)."""
        if isinstance(sock, ssl.SSLSocket):
            timeout = sock.gettimeout()
            sock.settimeout(0.0)
            try:
                return sock.recv(RECV_SIZE)
            finally:
                sock.settimeout(timeout)
        return os.read(sock.fileno(), RECV_SIZE)

    def _pull(self, conn: Any) -> int:
        """Read what the client sent so far into ``conn.head_buffer``; say whether its head
        is complete, still coming, or the connection is over."""
        buf: bytearray = conn.head_buffer
        while True:
            start = max(0, len(buf) - 2)
            try:
                data = self._recv(conn.socket)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return _WAIT
            except (OSError, ValueError):
                return _CLOSED
            if not data:
                return _CLOSED
            if not buf and conn.head_deadline is None:  # kept-alive: the clock starts now
                conn.head_deadline = time.monotonic() + self.limits.head_timeout
            buf += data
            if head_complete(buf, start) or len(buf) > self._head_limit:
                return _READY
            if not isinstance(conn.socket, ssl.SSLSocket):
                # One read per readiness event: the selector reports what is left (and a
                # second read could block if someone made the descriptor blocking).
                return _WAIT

    def _hand_over(self, conn: Any) -> None:
        """Queue ``conn`` for a worker with its buffered bytes in its read buffer."""
        self._fresh.discard(conn)
        conn.head_deadline = None
        rfile = conn.rfile
        data = bytes(conn.head_buffer)
        conn.head_buffer.clear()
        if rfile._read_pos < len(rfile._read_buf):
            data = rfile._read_buf[rfile._read_pos :] + data
        rfile._read_buf = data
        rfile._read_pos = 0
        self.server.process_conn(conn)

    def _admit(self, conn: Any) -> None:
        """A new connection: count it, then wait for its head (or hand it over as cheroot
        does when its socket cannot be read here)."""
        self._count(conn)
        conn.last_used = time.time()
        if not self._bufferable(conn):
            self.server.process_conn(conn)
            return
        conn.head_buffer = bytearray()
        conn.head_deadline = time.monotonic() + self.limits.head_timeout
        if isinstance(conn.socket, ssl.SSLSocket):
            # The handshake may have read the request into the TLS layer already, where
            # the selector cannot see it.
            state = self._pull(conn)
            if state == _READY:
                self._hand_over(conn)
                return
            if state == _CLOSED:
                conn.close()
                return
        self._fresh.add(conn)
        self._register(conn)

    def _register(self, conn: Any) -> None:
        try:
            self._selector.register(conn.socket.fileno(), selectors.EVENT_READ, data=conn)
        except (OSError, ValueError, KeyError):
            self._fresh.discard(conn)
            conn.close()

    def _readable(self, sock_fd: int, conn: Any) -> None:
        """A registered connection has bytes (or EOF)."""
        if getattr(conn, "head_buffer", None) is None:  # not bufferable: cheroot's way
            self._selector.unregister(sock_fd)
            self.server.process_conn(conn)
            return
        state = self._pull(conn)
        if state == _WAIT:
            return
        self._selector.unregister(sock_fd)
        if state == _READY:
            self._hand_over(conn)
        else:
            self._fresh.discard(conn)
            conn.close()

    def put(self, conn: Any) -> None:
        """A kept-alive connection is back from its worker: wait for its next head here."""
        conn.last_used = time.time()
        if getattr(conn, "head_buffer", None) is None:
            super().put(conn)
            return
        conn.head_deadline = None
        rfile = conn.rfile
        if rfile.has_data():  # pipelined bytes
            rest = rfile._read_buf[rfile._read_pos :]
            if head_complete(rest) or len(rest) > self._head_limit:
                self.server.process_conn(conn)
                return
            rfile._read_buf, rfile._read_pos = b"", 0
            conn.head_buffer[:] = rest
            conn.head_deadline = time.monotonic() + self.limits.head_timeout
        self._register(conn)

    # -- cheroot's loop, with the steps above ------------------------------------------------
    def _run(self, expiration_interval: float) -> None:
        """cheroot's selector loop: accept through the cap, read heads, expire."""
        last_expiration_check = time.time()
        while not self._stop_requested:
            try:
                active_list = self._selector.select(timeout=expiration_interval)
            except OSError:
                self._remove_invalid_sockets()
                continue
            for sock_fd, conn in active_list:
                if conn is self.server:
                    new_conn = self._from_server_socket(self._listener)
                    if new_conn is not None:
                        self._admit(new_conn)
                else:
                    self._readable(sock_fd, conn)
            now = time.time()
            if (now - last_expiration_check) > expiration_interval:
                self._expire(threshold=now - self.server.timeout)
                last_expiration_check = now

    def _expire(self, threshold: float) -> None:
        """Close idle kept-alive connections (cheroot's rule) and heads past their deadline."""
        now = time.monotonic()
        late, idle = [], []
        for sock_fd, conn in self._selector.connections:
            if conn is self.server:
                continue
            deadline = getattr(conn, "head_deadline", None)
            if deadline is not None and deadline < now:
                late.append((sock_fd, conn))
            elif conn.last_used < threshold:
                idle.append((sock_fd, conn))
        self._drop(late, RESPONSE_408)
        self._drop(idle, None)

    def _drop(self, conns: Iterable[tuple[int, Any]], answer: bytes | None) -> None:
        for sock_fd, conn in conns:
            self._selector.unregister(sock_fd)
            self._fresh.discard(conn)
            if answer is not None:
                _send_nowait(conn.socket, answer)
            conn.close()

    def _remove_invalid_sockets(self) -> None:
        """cheroot's cleanup after a failed ``select``; forget the connections it closed."""
        super()._remove_invalid_sockets()
        for conn in list(self._fresh):
            if conn.socket.fileno() == -1:
                self._fresh.discard(conn)

    @property
    def _num_connections(self) -> int:
        """Kept-alive connections (what ``keep_alive_conn_limit`` caps).

        Asked by every response (keep-alive or close). cheroot counts under the selector's
        lock, which its holders keep across ``epoll_ctl`` (a call that lets the GIL go): under
        load, responses queued on that lock behind a thread waiting for the GIL (a py-spy
        profile of 4 KiB GETs showed 15% of the GIL-held samples there). The length of the
        selector's map is read atomically without it; a count one off for an instant only
        moves the soft keep-alive limit by one.
        """
        mapping = self._selector._selector.get_map()
        return (len(mapping) if mapping is not None else 1) - 1 - len(self._fresh)


__all__ = ["ClientLimits", "GuardedConnectionManager", "client_key", "head_complete"]
