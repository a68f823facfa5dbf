"""Engine and sessions: SQLite (WAL, busy timeout, foreign keys, one writer) or PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from davdrive.errors import InsufficientStorage
from davdrive.metadata.fast_reads import FastReads, remember

MIGRATIONS = Path(__file__).with_name("migrations")
_IMMEDIATE = {"sqlite_begin": "IMMEDIATE"}  # a write transaction takes SQLite's lock first
SQLITE_FULL = 13  # SQLite's result code for "database or disk is full"
PG_DISK_FULL = "53100"


def disk_full(exc: OperationalError) -> bool:
    """Whether a database error means the disk (or the quota) is full, on SQLite or PG."""
    orig = exc.orig
    if getattr(orig, "sqlite_errorcode", None) == SQLITE_FULL:
        return True
    if getattr(orig, "sqlstate", None) == PG_DISK_FULL:
        return True
    return "database or disk is full" in str(orig)


class Database:
    """One Engine per process; ``read()`` and ``write()`` open one short transaction each.

    On SQLite a write transaction starts with ``BEGIN IMMEDIATE`` so concurrent writers queue on
    the busy timeout instead of failing with "database is locked" at commit time, and the
    writers of this process queue on a lock first: SQLite's busy handler waits by sleeping
    (1, 2, 5 ... 100 ms), which made four concurrent small PUTs ~4x slower than one.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        kwargs: dict[str, object] = {"echo": echo, "future": True}
        if self.is_sqlite:
            if self.url.database and self.url.database != ":memory:":
                Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            kwargs["pool_size"] = 16
            kwargs["max_overflow"] = 64
        else:
            kwargs["pool_size"] = 16
            kwargs["max_overflow"] = 64
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.is_sqlite:
            _install_sqlite_hooks(self.engine)
        # One-statement reads of a file database skip SQLAlchemy's per-statement work.
        self._fast: FastReads | None = None
        if self.is_sqlite and self.url.database and self.url.database != ":memory:":
            self._fast = FastReads(
                self.engine, self.url.database, lambda: self._plain_read(snapshot=False)
            )
            self._fast_open = contextmanager(self._fast.open)
        # One engine: the BEGIN mode travels as a connection's execution option, not as an
        # OptionEngine (whose joined event dispatch costs on every statement).
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self.engine, expire_on_commit=False)
        # One writer at a time in this process (SQLite only; PostgreSQL has row locks).
        self._write_lock: AbstractContextManager[object] = (
            threading.RLock() if self.is_sqlite else nullcontext()
        )

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only snapshot (one transaction, rolled back at the end)."""
        with self._read() as session, session.begin():
            yield session

    @contextmanager
    def read_conn(self, *, snapshot: bool = True) -> Iterator[Connection]:
        """A read on a plain connection (no ORM session): for the hot paths. ``snapshot``:
        several statements see one state. Without it (one statement, which SQLite runs
        atomically on its own), SQLite skips BEGIN and COMMIT."""
        if not snapshot and self._fast is not None:
            with self._fast_open() as fast:
                yield fast  # type: ignore[misc]  # a Connection for what callers use
            return
        with self._plain_read(snapshot=snapshot) as conn:
            yield conn

    @contextmanager
    def _plain_read(self, *, snapshot: bool) -> Iterator[Connection]:
        """``read_conn`` through SQLAlchemy (also the fast path's way for other statements)."""
        with self.engine.connect() as conn:
            if not snapshot and self.is_sqlite:
                conn.execution_options(sqlite_begin="NONE")
            with conn.begin():
                yield conn

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: committed when the block ends, rolled back on an exception.
        A database out of disk space raises ``InsufficientStorage`` (507), not a 500."""
        try:
            with self._write_lock, self._write() as session, session.begin():
                if self.is_sqlite:
                    conn = session.connection(execution_options=_IMMEDIATE)
                    if self._fast is not None:
                        remember(session, self._fast.wrap(conn))
                yield session
        except OperationalError as exc:
            if disk_full(exc):
                raise InsufficientStorage("the metadata database is out of disk space") from exc
            raise

    def upgrade(self) -> None:
        """Bring the schema to the newest Alembic revision (creates it on an empty database)."""
        from alembic import command
        from alembic.config import Config as AlembicConfig

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection_engine"] = self.engine
        command.upgrade(cfg, "head")

    def dispose(self) -> None:
        if self._fast is not None:
            self._fast.dispose()
        self.engine.dispose()


def _install_sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives a process crash; an OS crash may lose the last
        # transactions but never corrupts the database (blocks are fsynced before commit).
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode != "NONE":  # NONE: one statement, atomic by itself (autocommit)
            conn.exec_driver_sql(f"BEGIN {mode}")
