"""The app factory: the only place that turns a ``Config`` into concrete parts (DESIGN.md §1).

What "holds a store" means: the metadata database has the davdrive schema (its Alembic version
table) **and** a master key is at hand (the key file exists, or ``$DAVDRIVE_MASTER_KEY`` is set).
With SQLite both live in the data directory; with a PostgreSQL ``database_url`` the data
directory may hold only the key file. Only ``davdrive init`` and ``davdrive serve`` (on a first
start) create a store: ``build_app(config, create=True)`` or ``init_store``. Every other caller
opens an existing one and gets ``StoreNotFound`` otherwise, so a mistyped ``--data`` never
silently makes a new, empty store with a new master key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, inspect, select
from sqlalchemy.engine import make_url

from davdrive.blockstore.keys import ENV_MASTER_KEY, KeyRing
from davdrive.blockstore.store import BlockStore
from davdrive.config import Config
from davdrive.metadata.db import Database
from davdrive.metadata.replication_queue import SqlRepairQueue
from davdrive.metadata.schema import User
from davdrive.notify.base import Bus
from davdrive.notify.registry import open_bus
from davdrive.service.auth import Accounts
from davdrive.service.drive import Drive
from davdrive.service.login_flow import LoginFlows
from davdrive.storage.base import BlockBackend
from davdrive.storage.registry import S3Credentials, open_backend

SCHEMA_MARKER = "alembic_version"  # the table every migrated davdrive database has


class StoreError(Exception):
    """The configured data directory / database is not a usable davdrive store."""


class StoreNotFound(StoreError):
    """No davdrive store where the config points (a missing or mistyped ``--data``)."""

    def __init__(self, config: Config) -> None:
        data = config.data_dir
        super().__init__(
            f"no davdrive store in {data}; run `davdrive init --data {data}` "
            "or check --data/--config"
        )


class MasterKeyMissing(StoreError):
    """The database holds accounts, but their master key is not where the config says."""

    def __init__(self, config: Config) -> None:
        super().__init__(
            f"the metadata database {safe_url(config.database_url)} holds a davdrive store, "
            f"but the master key file {config.master_key_file} is missing: restore it from a "
            f"backup, copy it from another server, point master_key_file at it, or set "
            f"${ENV_MASTER_KEY}"
        )


@dataclass(frozen=True)
class StoreState:
    """What of a store exists where a resolved config points."""

    schema: bool  # the metadata database has the davdrive schema
    accounts: bool  # ... and at least one account (whose data key the master key wraps)
    key: bool  # a master key is at hand (file or $DAVDRIVE_MASTER_KEY)

    @property
    def exists(self) -> bool:
        """A complete store: schema and master key."""
        return self.schema and self.key


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
    login_flows: LoginFlows  # Nextcloud Login Flow v2 (state in SQL)

    def close(self) -> None:
        """Release threads, connections and the bus (idempotent enough to call twice)."""
        self.store.close()
        self.bus.close()
        self.db.dispose()


def safe_url(url: str) -> str:
    """A database URL fit for a message or a log (password hidden)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - never fail a message over a URL
        return "<database_url>"


def _sqlite_file(url: str) -> str | None:
    """The file of a file-backed SQLite URL, else None."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return u.database


def _schema_state(db: Database) -> tuple[bool, bool]:
    """(schema present, accounts present) of an open database."""
    with db.engine.connect() as conn:
        if not inspect(conn).has_table(SCHEMA_MARKER):
            return False, False
        has_users = inspect(conn).has_table(User.__tablename__)
        if not has_users:
            return True, False
        return True, bool(conn.execute(select(func.count()).select_from(User)).scalar())


def store_state(config: Config) -> StoreState:
    """Look at what exists for ``config`` without creating anything (not even a SQLite file)."""
    c = config.resolved()
    key = bool(os.environ.get(ENV_MASTER_KEY)) or Path(c.master_key_file).exists()
    sqlite_file = _sqlite_file(c.database_url)
    if sqlite_file is not None and not Path(sqlite_file).exists():
        return StoreState(schema=False, accounts=False, key=key)
    db = Database(c.database_url)
    try:
        schema, accounts = _schema_state(db)
    finally:
        db.dispose()
    return StoreState(schema=schema, accounts=accounts, key=key)


def open_blocks(config: Config, db: Database) -> BlockBackend:
    """The block backend ``config.blocks_url`` names; several stores replicate, their owed
    copies queued durably in ``db`` (its ``replication_queue`` table)."""
    return open_backend(
        config.blocks_url,
        s3=S3Credentials.from_config(config.s3),
        repair_queue=SqlRepairQueue(db),
        min_copies=config.min_copies or None,
        archive=config.archive,
    )


def build_app(config: Config, *, create: bool = True) -> App:
    """Open (``create``: create if needed) the store, migrate the database, wire the services.

    With ``create=False`` a config that points at no store raises ``StoreNotFound`` and nothing
    is created. Either way a database that holds accounts but whose master key file is missing
    raises ``MasterKeyMissing`` instead of minting a new key that cannot unwrap them.
    """
    c = config.resolved()
    state = store_state(c)
    if not state.key and state.accounts:
        raise MasterKeyMissing(c)
    if not create and not state.exists:
        raise StoreNotFound(c)
    if create:
        os.makedirs(c.data_dir, mode=0o700, exist_ok=True)
    db = Database(c.database_url)  # connects at first use: creates nothing yet
    backend: BlockBackend | None = None
    try:
        # The block store first: one that is down (or refuses the keys) stops here, before
        # the schema or a master key exist, so a failed `init` leaves no half-made store.
        backend = open_blocks(c, db)
        db.upgrade()
        keyring = KeyRing.load_or_create(c.master_key_file)
        bus = open_bus(c.bus_url, c.database_url)
    except BaseException:
        if backend is not None:
            backend.close()
        db.dispose()
        raise
    store = BlockStore(
        backend, zstd_level=c.zstd_level, threads=c.pipeline_threads, inline_max=c.inline_max
    )
    drive = Drive(
        db,
        store,
        keyring,
        default_quota=c.default_quota,
        max_file_size=c.max_file_size,
        bus=bus,
    )
    accounts = Accounts(drive)
    return App(c, db, keyring, store, bus, drive, accounts, LoginFlows(accounts))


def init_store(config: Config) -> bool:
    """Create the store ``config`` points at; False (and no change at all) if it exists."""
    if store_state(config).exists:
        return False
    build_app(config, create=True).close()
    return True


__all__ = [
    "App",
    "MasterKeyMissing",
    "StoreError",
    "StoreNotFound",
    "StoreState",
    "build_app",
    "init_store",
    "open_blocks",
    "safe_url",
    "store_state",
]
