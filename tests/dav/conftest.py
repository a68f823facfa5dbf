"""DAV servers on loopback ports, both with alice/alice-pw and bob/bob-pw.

- ``dav_server``: cheroot + ``make_dav_app`` over an in-process drive, for tests that also
  inspect or seed the drive directly (blocks shared, 10,000-node trees, quotas).
- ``any_server``: parametrized over that server and the real ``davdrive serve`` subprocess
  (``live_server`` from tests/live.py); client suites (litmus, rclone, ...) run on both.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cheroot import wsgi

from davdrive import errors
from davdrive.blockstore.keys import KeyRing
from davdrive.blockstore.store import BlockStore
from davdrive.metadata.db import Database
from davdrive.service.drive import Drive
from davdrive.storage.local import LocalBackend
from providers.dav_app import make_dav_app

USERS = {"alice": "alice-pw", "bob": "bob-pw"}


class PlainAccounts:
    """Stand-in for ``davdrive.service.auth.Accounts`` (plain passwords, tests only)."""

    def __init__(self, drive: Drive, passwords: dict[str, str]) -> None:
        self.drive = drive
        self.passwords = passwords

    def authenticate(self, login: str, password: str, client: str | None = None) -> Any:
        if self.passwords.get(login) != password:
            raise errors.NotAuthenticated("bad credentials")
        return self.drive.principal(login)


@dataclass
class DavServer:
    url: str
    drive: Drive
    app: Any
    data_dir: Path
    server: Any = field(repr=False, default=None)

    def dav(self, login: str) -> str:
        return f"{self.url}/dav/{login}/"

    def auth(self, login: str) -> tuple[str, str]:
        return (login, USERS[login])

    def principal(self, login: str) -> Any:
        return self.drive.principal(login)


@pytest.fixture
def dav_server(tmp_path: Path):
    db = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    db.upgrade()
    store = BlockStore(LocalBackend(tmp_path / "blocks"), zstd_level=1, threads=2)
    drive = Drive(db, store, KeyRing.load_or_create(str(tmp_path / "master.key")))
    for login in USERS:
        drive.create_account(login, "x")
    app = SimpleNamespace(drive=drive, db=db, accounts=PlainAccounts(drive, dict(USERS)))
    server = wsgi.Server(("127.0.0.1", 0), make_dav_app(app), numthreads=16, timeout=10)
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    host, port = server.bind_addr[:2]
    srv = DavServer(f"http://{host}:{port}", drive, app, tmp_path, server)
    yield srv
    server.stop()
    thread.join(timeout=5)
    time.sleep(0.05)
    store.close()
    db.dispose()


@dataclass
class HttpOnly:
    """What client tests need from either server: URLs and credentials, nothing in-process."""

    url: str
    users: dict[str, str]

    def dav(self, login: str) -> str:
        return f"{self.url}/dav/{login}/"

    def auth(self, login: str) -> tuple[str, str]:
        return (login, self.users[login])


@pytest.fixture(params=["inprocess", "serve"])
def any_server(request):
    """The in-process server, then the real ``davdrive serve`` subprocess (tests/live.py)."""
    if request.param == "inprocess":
        srv = request.getfixturevalue("dav_server")
        return HttpOnly(srv.url, USERS)
    live = request.getfixturevalue("live_server")
    return HttpOnly(live.url, dict(live.users))
