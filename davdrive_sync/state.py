"""What the client keeps in ``LOCAL_DIR/.davdrive-sync/``.

- ``config.json``: server URL, login, remote folder, device name (no secret);
- ``credential`` (mode 0600): the device app password or token;
- ``state.db`` (SQLite, WAL): the synced tree (what both sides agreed on at the last sync, keyed
  by the server's file id, with the local inode/size/mtime seen then and the block list), the
  server's tree as last seen (``remote``, kept current from the change journal) and the cursor;
- ``tmp/``: downloads in progress (emptied at the start of every pass and on SIGTERM/Ctrl-C);
- ``lock``: held by the running ``once``/``run`` (one client per folder).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from davdrive_sync.remote import Node

META_DIR = ".davdrive-sync"


class NotInitialized(Exception):
    """The folder has no ``.davdrive-sync/config.json``."""


@dataclass
class Config:
    """How to reach the server (the secret lives in ``credential``)."""

    url: str
    user: str
    remote_path: str = "/"
    device: str = "device"
    auth: str = "password"  # or "token"
    guard_ratio: float = 0.5
    guard_max: int = 1000
    guard_min: int = 5


def meta_dir(local: Path) -> Path:
    return local / META_DIR


def save_config(local: Path, cfg: Config, secret: str) -> None:
    d = meta_dir(local)
    d.mkdir(parents=True, exist_ok=True)
    (d / "tmp").mkdir(exist_ok=True)
    cred = d / "credential"
    fd = os.open(cred, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret)
    os.chmod(cred, 0o600)
    tmp = d / "config.json.tmp"
    tmp.write_text(json.dumps(cfg.__dict__, indent=2) + "\n")
    os.replace(tmp, d / "config.json")


def load_config(local: Path) -> tuple[Config, str]:
    d = meta_dir(local)
    try:
        raw = json.loads((d / "config.json").read_text())
        secret = (d / "credential").read_text()
    except FileNotFoundError as exc:
        raise NotInitialized(
            f"{local} is not a davdrive-sync folder (run `davdrive-sync init {local} URL "
            "--user LOGIN` first)"
        ) from exc
    known = set(Config.__dataclass_fields__)
    return Config(**{k: v for k, v in raw.items() if k in known}), secret


@dataclass
class Synced:
    """One node as both sides last agreed on it."""

    id: str
    rel: str
    is_dir: bool
    rev: str | None = None
    content_hash: str | None = None
    size: int = 0
    mtime: float | None = None
    ino: int = 0
    lsize: int = 0
    lmtime_ns: int = 0
    blocks: list[tuple[str, int]] = field(default_factory=list)


SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS synced (
    id TEXT PRIMARY KEY, rel TEXT NOT NULL, is_dir INTEGER NOT NULL, rev TEXT,
    content_hash TEXT, size INTEGER, mtime REAL, ino INTEGER, lsize INTEGER,
    lmtime_ns INTEGER, blocks TEXT);
CREATE INDEX IF NOT EXISTS synced_rel ON synced(rel);
CREATE TABLE IF NOT EXISTS remote (
    id TEXT PRIMARY KEY, path TEXT NOT NULL, is_dir INTEGER NOT NULL, rev TEXT,
    size INTEGER, content_hash TEXT, mtime REAL);
"""


class State:
    """The state database (one connection, one thread)."""

    def __init__(self, local: Path) -> None:
        self.local = local
        d = meta_dir(local)
        d.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(d / "state.db", isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    # -- meta -----------------------------------------------------------------------------------
    def get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    def set(self, key: str, value: str | None) -> None:
        if value is None:
            self.db.execute("DELETE FROM meta WHERE key=?", (key,))
        else:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # -- synced tree ------------------------------------------------------------------------------
    def synced(self) -> dict[str, Synced]:
        out: dict[str, Synced] = {}
        for row in self.db.execute("SELECT * FROM synced"):
            s = Synced(
                id=row[0],
                rel=row[1],
                is_dir=bool(row[2]),
                rev=row[3],
                content_hash=row[4],
                size=row[5] or 0,
                mtime=row[6],
                ino=row[7] or 0,
                lsize=row[8] or 0,
                lmtime_ns=row[9] or 0,
                blocks=[tuple(b) for b in json.loads(row[10] or "[]")],
            )
            out[s.id] = s
        return out

    def put_synced(self, s: Synced) -> None:
        with self.tx():
            # one record per local path: whatever was recorded there before is gone
            self.db.execute("DELETE FROM synced WHERE rel=? AND id<>?", (s.rel, s.id))
            self.db.execute(
                "INSERT OR REPLACE INTO synced VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    s.id,
                    s.rel,
                    int(s.is_dir),
                    s.rev,
                    s.content_hash,
                    s.size,
                    s.mtime,
                    s.ino,
                    s.lsize,
                    s.lmtime_ns,
                    json.dumps(s.blocks),
                ),
            )

    def forget(self, node_id: str) -> None:
        self.db.execute("DELETE FROM synced WHERE id=?", (node_id,))

    def rename_synced(self, old: str, new: str) -> None:
        """Move a record and everything recorded below it to a new local path."""
        with self.tx():
            rows = self.db.execute(
                "SELECT id, rel FROM synced WHERE rel=? OR substr(rel, 1, ?)=?",
                (old, len(old) + 1, old + "/"),
            ).fetchall()
            for node_id, rel in rows:
                self.db.execute(
                    "UPDATE synced SET rel=? WHERE id=?", (new + rel[len(old) :], node_id)
                )

    # -- remote tree ------------------------------------------------------------------------------
    def remote(self) -> dict[str, Node]:
        return {
            row[0]: Node(row[0], row[1], bool(row[2]), row[3], row[4] or 0, row[5], row[6])
            for row in self.db.execute("SELECT * FROM remote")
        }

    def save_remote(self, nodes: Iterable[Node], cursor: str) -> None:
        """Replace the remote tree and the cursor at once."""
        with self.tx():
            self.db.execute("DELETE FROM remote")
            self.db.executemany(
                "INSERT INTO remote VALUES (?,?,?,?,?,?,?)",
                [
                    (n.id, n.path, int(n.is_dir), n.rev, n.size, n.content_hash, n.mtime)
                    for n in nodes
                ],
            )
            self.set("cursor", cursor)

    # -- transactions ---------------------------------------------------------------------------
    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db
            self.outer = False

        def __enter__(self) -> None:
            self.outer = not self.db.in_transaction
            if self.outer:
                self.db.execute("BEGIN IMMEDIATE")

        def __exit__(self, exc_type: object, *_: object) -> None:
            if self.outer:
                self.db.execute("ROLLBACK" if exc_type else "COMMIT")

    def tx(self) -> State._Tx:
        return State._Tx(self.db)

    def counts(self) -> tuple[int, int]:
        files, dirs = self.db.execute("SELECT SUM(1-is_dir), SUM(is_dir) FROM synced").fetchone()
        return files or 0, dirs or 0

    def note_pass(self, summary: str) -> None:
        self.set("last_pass", f"{time.time():.0f} {summary}")


def iter_rel_parents(rel: str) -> Iterator[str]:
    """``a/b/c`` → ``a``, ``a/b`` (the ancestors, outermost first)."""
    parts = rel.split("/")
    for i in range(1, len(parts)):
        yield "/".join(parts[:i])
