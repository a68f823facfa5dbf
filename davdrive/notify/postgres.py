"""PostgreSQL LISTEN/NOTIFY bus: several server processes sharing one database wake each
other's long-pollers. One listener connection per process fans out to local waiters."""

from __future__ import annotations

import hashlib
import logging
import threading
import time

import psycopg

from davdrive.notify.base import Bus

CHANNEL = "davdrive_changes"


def channel_name(conn: psycopg.Connection) -> str:
    """The NOTIFY channel of the deployment ``conn`` belongs to: one per database and schema,
    since channels are database-wide and several deployments may share a database in separate
    schemas (the tests do; so may staging beside production)."""
    db, schema = conn.execute("SELECT current_database(), current_schema()").fetchone()
    return channel_for(db, schema)


def channel_for(database: str, schema: str | None) -> str:
    digest = hashlib.sha256(f"{database}\0{schema}".encode()).hexdigest()[:16]
    return f"{CHANNEL}_{digest}"


log = logging.getLogger(__name__)


def _dsn(url: str) -> str:
    """Accept SQLAlchemy-style URLs (postgresql+psycopg://) as well as plain libpq ones."""
    return url.replace("postgresql+psycopg://", "postgresql://").replace(
        "postgresql+psycopg2://", "postgresql://"
    )


class PostgresBus(Bus):
    authoritative = False  # anyone with access to the database can NOTIFY the channel

    def __init__(self, url: str) -> None:
        super().__init__()
        self._dsn = _dsn(url)
        self._publish_lock = threading.Lock()
        self._pub: psycopg.Connection | None = None
        self._ready = threading.Event()
        with psycopg.connect(self._dsn, autocommit=True) as conn:
            self.channel = channel_name(conn)
        self._thread = threading.Thread(target=self._listen, name="davdrive-bus", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def publish(self, account_id: int, seq: int) -> None:
        self._deliver(account_id, seq)  # local waiters need no round trip
        with self._publish_lock:
            try:
                if self._pub is None or self._pub.closed:
                    self._pub = psycopg.connect(self._dsn, autocommit=True)
                self._pub.execute("SELECT pg_notify(%s, %s)", (self.channel, f"{account_id}:{seq}"))
            except psycopg.Error:
                log.exception("could not publish a change notification")
                self._pub = None

    def _listen(self) -> None:
        while not self._closed:
            try:
                with psycopg.connect(self._dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {self.channel}")
                    self._ready.set()
                    while not self._closed:
                        for note in conn.notifies(timeout=1.0):
                            account, _, seq = note.payload.partition(":")
                            self._deliver(int(account), int(seq))
            except (psycopg.Error, ValueError):
                if self._closed:
                    return
                log.exception("change listener lost its connection; retrying")
                # Waiters time out and re-read the journal meanwhile: nothing is lost.
                time.sleep(1.0)

    def close(self) -> None:
        super().close()
        self._thread.join(timeout=3)
        with self._publish_lock:
            if self._pub is not None:
                self._pub.close()
