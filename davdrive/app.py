"""The app factory: the only place that turns a ``Config`` into concrete parts (DESIGN.md §1)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from davdrive.blockstore.keys import KeyRing
from davdrive.blockstore.store import BlockStore
from davdrive.config import Config
from davdrive.metadata.db import Database
from davdrive.notify.base import Bus, open_bus
from davdrive.service.auth import Accounts
from davdrive.service.drive import Drive
from davdrive.storage.base import open_backend


@dataclass
class App:
    """Everything one server or CLI process uses, built once from the config."""

    config: Config
    db: Database
    keyring: KeyRing
    store: BlockStore
    bus: Bus
    drive: Drive
    accounts: Accounts

    def close(self) -> None:
        """Release threads, connections and the bus (idempotent enough to call twice)."""
        self.store.close()
        self.bus.close()
        self.db.dispose()


def build_app(config: Config) -> App:
    """Create the data directory, migrate the database and wire the services."""
    c = config.resolved()
    os.makedirs(c.data_dir, mode=0o700, exist_ok=True)
    db = Database(c.database_url)
    try:
        db.upgrade()
        keyring = KeyRing.load_or_create(c.master_key_file)
        backend = open_backend(c.blocks_url)
        bus = open_bus(c.bus_url, c.database_url)
    except BaseException:
        db.dispose()
        raise
    store = BlockStore(backend, zstd_level=c.zstd_level, threads=c.pipeline_threads)
    drive = Drive(
        db,
        store,
        keyring,
        default_quota=c.default_quota,
        max_file_size=c.max_file_size,
        bus=bus,
    )
    return App(c, db, keyring, store, bus, drive, Accounts(drive))


__all__ = ["App", "build_app"]
