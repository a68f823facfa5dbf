"""Fixtures for drive-service tests: a real database (SQLite and PostgreSQL), memory blocks."""

from __future__ import annotations

import pytest

from davdrive.blockstore.keys import KeyRing
from davdrive.blockstore.store import BlockStore
from davdrive.metadata.db import Database
from davdrive.service.drive import Drive
from davdrive.storage.memory import MemoryBackend


def make_drive(db_url: str, key_file: str, **kwargs: object) -> Drive:
    db = Database(db_url)
    db.upgrade()
    store = BlockStore(MemoryBackend(), zstd_level=1, threads=2)
    return Drive(db, store, KeyRing.load_or_create(key_file), **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def drive(db_url: str, tmp_path) -> Drive:
    d = make_drive(db_url, str(tmp_path / "master.key"))
    yield d
    d.store.close()
    d.db.dispose()


@pytest.fixture
def alice(drive: Drive):
    return drive.create_account("alice", "x")


@pytest.fixture
def bob(drive: Drive):
    return drive.create_account("bob", "x")
