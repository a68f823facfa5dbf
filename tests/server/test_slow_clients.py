"""Slow clients against the real server (issue 16, item 4): connections trickling their request
head hold no worker, a head has a total deadline, one address has a connection cap, and nothing
is left behind when they go.

Slow clients connect from other loopback addresses (127.0.0.2...; all of 127/8 is local on
Linux), because 127.0.0.1 is exempt from the per-address cap (that is where the reverse proxy
connects from).
"""

from __future__ import annotations

import os
import resource
import select
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

SLOW_CLIENTS = 1200
PER_ADDRESS = 50  # below the default max_connections_per_client (64)
ROUNDS = 3
FAST = 2.0  # seconds /healthz and an authenticated GET may take while the slow clients wait


def _config(tmp_path: Path, **values: object) -> tuple[str, ...]:
    cfg = tmp_path / "slow.yaml"
    cfg.write_text("".join(f"{k}: {v}\n" for k, v in values.items()))
    return ("--config", str(cfg))


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def _wait_for(predicate, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _connect(port: int, source: str) -> socket.socket:
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


def _readable(socks: list[socket.socket], wait: float) -> list[socket.socket]:
    """The sockets of ``socks`` with bytes or EOF waiting (``poll``: descriptors > 1023)."""
    poller = select.poll()
    by_fd = {s.fileno(): s for s in socks}
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    return [by_fd[fd] for fd, _ in poller.poll(wait * 1000)]


def _refused_or_closed(s: socket.socket, wait: float) -> bytes | None:
    """What the server sent before closing ``s`` within ``wait`` seconds; None: still open."""
    data = b""
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        if not _readable([s], left):
            return None
        try:
            piece = s.recv(4096)
        except ConnectionResetError:
            return data
        if not piece:
            return data
        data += piece
    return None


def _raw_get(port: int, source: str, path: str = "/healthz") -> int | None:
    """Status of ``GET path`` on a new connection from ``source``; None if closed unanswered."""
    with _connect(port, source) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        try:
            while piece := s.recv(4096):
                data += piece
        except ConnectionResetError:
            pass
    if not data.startswith(b"HTTP/1.1 "):
        return None
    return int(data[9:12])


@pytest.fixture
def many_fds() -> Iterator[None]:
    """Raise this process's soft RLIMIT_NOFILE (the server subprocess inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * SLOW_CLIENTS + 1024
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {need}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_1200_slow_clients_do_not_stop_the_server(live_server_factory, many_fds, tmp_path):
    # A head deadline well past the test's length: the slow clients must stay connected while
    # a loaded machine opens all of them (the deadline itself has its own test).
    srv = live_server_factory(extra_args=_config(tmp_path, request_head_timeout=300))
    auth = srv.auth("alice")
    assert requests.put(srv.dav("alice") + "a.txt", data=b"hello", auth=auth, timeout=10).ok
    assert requests.get(srv.dav("alice") + "a.txt", auth=auth, timeout=10).content == b"hello"
    time.sleep(0.5)
    fds0, threads0 = _fds(srv.pid), _threads(srv.pid)

    slow: list[socket.socket] = []
    try:
        for i in range(SLOW_CLIENTS):  # bounded; each sends half a request head
            s = _connect(srv.port, f"127.0.0.{2 + i // PER_ADDRESS}")
            s.sendall(b"GET /healthz HTTP/1.1\r\n")
            slow.append(s)
        # A few sockets of the warm-up requests may still be closing when fds0 is read; a
        # loaded CI machine accepts 1,200 connections slower than a laptop.
        _wait_for(
            lambda: _fds(srv.pid) >= fds0 + SLOW_CLIENTS - 16,
            timeout=45.0,
            what="the server to accept them all",
        )
        for _ in range(ROUNDS):
            for s in slow:  # one more header line each: the head never completes
                s.send(b"X-Slow: 1\r\n")
            started = time.monotonic()
            r = requests.get(f"{srv.url}/healthz", timeout=FAST + 3)
            healthz = time.monotonic() - started
            started = time.monotonic()
            g = requests.get(srv.dav("alice") + "a.txt", auth=auth, timeout=FAST + 3)
            get = time.monotonic() - started
            assert r.status_code == 200 and healthz < FAST, (r.status_code, healthz)
            assert g.status_code == 200 and g.content == b"hello" and get < FAST, (
                g.status_code,
                get,
            )
            time.sleep(0.3)
        # none was dropped (they are under the per-address cap and the head deadline)...
        readable = _readable(slow, 0)
        assert not readable, f"{len(readable)} slow connections were answered or closed"
        # ...and none holds a thread
        assert _threads(srv.pid) <= threads0 + 2
    finally:
        for s in slow:
            s.close()
    # nothing left behind
    _wait_for(lambda: _fds(srv.pid) <= fds0 + 2, what="the server's descriptors to be closed")
    assert _threads(srv.pid) <= threads0 + 2
    assert requests.get(f"{srv.url}/healthz", timeout=FAST).status_code == 200


def test_a_request_head_has_a_total_deadline(live_server_factory, tmp_path):
    srv = live_server_factory(extra_args=_config(tmp_path, request_head_timeout=2))

    # a header line every 0.4 s: each read is quick, the head never ends
    trickler = _connect(srv.port, "127.0.0.2")
    started = time.monotonic()
    trickler.sendall(b"GET /healthz HTTP/1.1\r\n")
    answer = None
    while answer is None and time.monotonic() - started < 10:
        answer = _refused_or_closed(trickler, 0.4)
        if answer is None:
            try:
                trickler.send(b"X-Slow: 1\r\n")
            except OSError:
                answer = b""
    closed_after = time.monotonic() - started
    trickler.close()
    assert answer is not None, "the trickling client was never cut off"
    assert 1.5 <= closed_after <= 4.5, closed_after
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408 "), answer

    # a client that connects and sends nothing
    silent = _connect(srv.port, "127.0.0.2")
    started = time.monotonic()
    assert _refused_or_closed(silent, 6) is not None
    assert 1.5 <= time.monotonic() - started <= 4.5
    silent.close()

    # an idle kept-alive connection is not a slow head: the clock starts at its next request
    with requests.Session() as session:
        assert session.get(f"{srv.url}/healthz", timeout=5).status_code == 200
        time.sleep(2.6)
        assert session.get(f"{srv.url}/healthz", timeout=5).status_code == 200

    # a head arriving in pieces within the deadline is served
    with _connect(srv.port, "127.0.0.2") as s:
        for piece in (b"GET /healthz HT", b"TP/1.1\r\nHost: x\r\n", b"Connection: close\r\n\r\n"):
            s.sendall(piece)
            time.sleep(0.3)
        assert s.recv(4096).startswith(b"HTTP/1.1 200 ")


def test_connections_per_client_address_are_capped(live_server_factory):
    srv = live_server_factory()  # default cap: 64 per address, loopback 127.0.0.1 exempt
    cap, extra = 64, 6
    crowd = [_connect(srv.port, "127.0.0.40") for _ in range(cap + extra)]
    try:
        assert not _readable(crowd[:cap], 0.3), "a connection under the cap was closed"
        refused = [_refused_or_closed(s, 3) for s in crowd[cap:]]
        assert all(a is not None and a.startswith(b"HTTP/1.1 503 ") for a in refused), refused
        # that address gets nothing more while at its cap; others are served
        assert _raw_get(srv.port, "127.0.0.40") in (None, 503)
        assert _raw_get(srv.port, "127.0.0.41") == 200
        assert requests.get(f"{srv.url}/healthz", timeout=FAST).status_code == 200
        # closing connections gives their slots back
        for s in crowd[:10]:
            s.close()
        _wait_for(lambda: _raw_get(srv.port, "127.0.0.40") == 200, 5, "a slot to be released")
    finally:
        for s in crowd:
            s.close()

    # loopback (the reverse proxy's address) has no cap
    local = [_connect(srv.port, "127.0.0.1") for _ in range(cap + extra)]
    try:
        assert not _readable(local, 0.3)
        assert requests.get(f"{srv.url}/healthz", timeout=FAST).status_code == 200
    finally:
        for s in local:
            s.close()
    assert "refused" in srv.stderr() and "max_connections_per_client=64" in srv.stderr()


def test_slow_clients_over_tls(live_server_factory, tmp_path):
    """The same guard behind TLS: the head is read from the TLS layer without blocking."""
    from tests.server.test_server import _self_signed

    cert, key = _self_signed(tmp_path)
    srv = live_server_factory(tls=(cert, key), extra_args=_config(tmp_path, request_head_timeout=3))
    ctx = ssl.create_default_context(cafile=cert)
    slow = []
    try:
        for i in range(100):
            raw = _connect(srv.port, f"127.0.0.{2 + i // PER_ADDRESS}")
            s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
            s.sendall(b"GET /healthz HTTP/1.1\r\nX-Slow: 1\r\n")
            slow.append(s)
        started = time.monotonic()
        r = requests.get(f"{srv.url}/healthz", verify=cert, timeout=FAST + 3)
        assert r.status_code == 200 and time.monotonic() - started < FAST
        g = requests.request(
            "PROPFIND",
            srv.dav("alice"),
            headers={"Depth": "0"},
            auth=srv.auth("alice"),
            verify=cert,
            timeout=FAST + 3,
        )
        assert g.status_code == 207 and time.monotonic() - started < 2 * FAST
        # past the deadline they are all cut off
        _wait_for(lambda: len(_readable(slow, 0)) == len(slow), 8, "the TLS heads to time out")
    finally:
        for s in slow:
            s.close()
    # keep-alive over TLS still works (the next head is read from the TLS layer too)
    with requests.Session() as session:
        for _ in range(3):
            assert session.get(f"{srv.url}/healthz", verify=cert, timeout=5).status_code == 200


def test_the_limits_are_settings(tmp_path):
    from davdrive.config import Config, load_config

    sample = load_config(Path(__file__).parents[2] / "config" / "davdrive.yaml")
    assert sample.request_head_timeout == Config().request_head_timeout == 20.0
    assert sample.max_connections_per_client == Config().max_connections_per_client == 64
    assert sample.connection_limit_exempt == ["127.0.0.1", "::1"]
    one = load_config(connection_limit_exempt="10.0.0.0/8", max_connections_per_client=0)
    assert one.connection_limit_exempt == ["10.0.0.0/8"] and one.max_connections_per_client == 0
    for bad in (
        {"request_head_timeout": 0},
        {"request_head_timeout": "soon"},
        {"max_connections_per_client": -1},
        {"max_connections_per_client": True},
        {"connection_limit_exempt": ["proxy.example.com"]},
    ):
        with pytest.raises(ValueError):
            load_config(**bad)
