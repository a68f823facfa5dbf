"""The asyncio long-poll process: wakes on a write from another process, on SQLite and
PostgreSQL (PostgreSQL through LISTEN/NOTIFY, SQLite through the journal poll)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import SimpleNamespace

import pytest
import requests
from aiohttp import web

from davdrive import errors
from davdrive.notify.postgres import PostgresBus
from davdrive.server.notify_app import make_notify_app
from tests.service.conftest import make_drive


class Accounts:
    def __init__(self, principals):
        self.principals = principals

    def authenticate(self, login, password, client=None):
        p = self.principals.get(login)
        if p is None or password != f"{login}-pw":
            raise errors.NotAuthenticated("bad credentials")
        return p

    def authenticate_token(self, token):
        raise errors.NotAuthenticated("no tokens here")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def notify(db_url, tmp_path):
    """The notify app in its own event loop thread, and a separate Drive writing (as another
    server process would: its own engine and bus)."""
    writer = make_drive(db_url, str(tmp_path / "master.key"))
    if db_url.startswith("postgresql"):
        writer.bus = PostgresBus(db_url)
    alice = writer.create_account("alice", "x")
    bob = writer.create_account("bob", "x")
    reader = make_drive(db_url, str(tmp_path / "master.key"))
    services = SimpleNamespace(
        db=reader.db,
        drive=reader,
        accounts=Accounts({"alice": alice, "bob": bob}),
        config=SimpleNamespace(database_url=db_url),
    )
    port = free_port()
    loop = asyncio.new_event_loop()
    # a slow poll proves PostgreSQL wake-ups come from NOTIFY, not from the poll
    poll = 30.0 if db_url.startswith("postgresql") else 0.2
    app = make_notify_app(services, poll_interval=poll)
    runner = web.AppRunner(app)
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        started.set()
        loop.run_forever()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert started.wait(10)
    time.sleep(0.3)  # LISTEN connection
    stopped: list[bool] = []

    def stop() -> None:
        if not stopped:
            stopped.append(True)
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(20)

    yield SimpleNamespace(
        url=f"http://127.0.0.1:{port}", writer=writer, alice=alice, bob=bob, stop=stop
    )
    stop()
    loop.call_soon_threadsafe(loop.stop)
    t.join(5)
    writer.bus.close()
    for d in (writer, reader):
        d.store.close()
        d.db.dispose()


def poll(url: str, login: str, cursor: int, timeout: int, out: dict) -> None:
    t0 = time.time()
    r = requests.get(
        f"{url}/api/v1/longpoll",
        params={"cursor": cursor, "timeout": timeout},
        auth=(login, f"{login}-pw"),
        timeout=timeout + 10,
    )
    out["status"], out["body"], out["took"] = r.status_code, r.json(), time.time() - t0


def test_wakes_on_own_write_not_on_others(notify):
    out: dict = {}
    t = threading.Thread(target=poll, args=(notify.url, "alice", 0, 20, out))
    t.start()
    time.sleep(0.5)
    notify.writer.write_file(notify.bob, "/b", b"bob")
    t.join(1.0)
    assert t.is_alive(), "bob's write woke alice"
    t0 = time.time()
    notify.writer.write_file(notify.alice, "/a", b"alice")
    t.join(10)
    assert out["status"] == 200 and out["body"] == {"changes": True}
    assert time.time() - t0 < 2.0


def test_already_passed_cursor_returns_at_once_and_timeout_false(notify):
    notify.writer.write_file(notify.alice, "/a", b"1")
    out: dict = {}
    poll(notify.url, "alice", 0, 30, out)
    assert out["body"] == {"changes": True} and out["took"] < 2
    poll(notify.url, "alice", 1, 1, out)
    assert out["body"] == {"changes": False} and 0.9 < out["took"] < 5


def test_errors(notify):
    r = requests.get(f"{notify.url}/api/v1/longpoll", params={"cursor": 0})
    assert r.status_code == 401
    r = requests.get(
        f"{notify.url}/api/v1/longpoll", params={"cursor": "x"}, auth=("alice", "alice-pw")
    )
    assert r.status_code == 400
    r = requests.get(
        f"{notify.url}/api/v1/longpoll",
        params={"cursor": 0, "timeout": 999},
        auth=("alice", "alice-pw"),
    )
    assert r.status_code == 400


def test_one_write_wakes_every_poll_of_the_account(notify):
    outs: list[dict] = [{} for _ in range(50)]
    threads = [threading.Thread(target=poll, args=(notify.url, "alice", 0, 30, o)) for o in outs]
    for t in threads:
        t.start()
    time.sleep(1.0)
    notify.writer.write_file(notify.alice, "/a", b"alice")
    for t in threads:
        t.join(10)
    assert [o.get("body") for o in outs] == [{"changes": True}] * 50


def test_shutdown_answers_parked_polls(notify):
    out: dict = {}
    t = threading.Thread(target=poll, args=(notify.url, "alice", 0, 60, out))
    t.start()
    time.sleep(0.5)
    t0 = time.time()
    notify.stop()
    t.join(10)
    assert out["status"] == 200 and out["body"] == {"changes": False}
    assert time.time() - t0 < 6
