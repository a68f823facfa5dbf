"""Reading file content: a version's block list in one statement, a seekable reader over it."""

from __future__ import annotations

from typing import Any, BinaryIO

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Row

from davdrive.errors import Conflict, NotFound
from davdrive.metadata.fast_reads import prepared
from davdrive.metadata.schema import Block, FileVersion, VersionBlock
from davdrive.service.access import Perm
from davdrive.service.archive import check_cold
from davdrive.service.core import DriveCore
from davdrive.service.lookup import MAX_CHAIN, find
from davdrive.service.paths import join, split_path
from davdrive.service.types import Principal

_VERSION_MANIFEST = prepared(
    select(
        FileVersion.node_id,
        FileVersion.user_id,
        FileVersion.size,
        Block.hash,
        Block.object_key,
        VersionBlock.offset,
        VersionBlock.size.label("block_size"),
        Block.inline_data,
        Block.id.label("block_id"),
        Block.tier,
    )
    .select_from(FileVersion)
    .outerjoin(VersionBlock, VersionBlock.version_id == FileVersion.id)
    .outerjoin(Block, Block.id == VersionBlock.block_id)
    .where(FileVersion.id == bindparam("vid"))
    .order_by(VersionBlock.seq)
)


class Reading:
    """Readers over file versions (they hold no database session)."""

    def __init__(self, core: DriveCore) -> None:
        self.core = core

    def open_reader(self, p: Principal, path: str, *, version_id: int | None = None) -> BinaryIO:
        """A seekable reader over the current (or given) version; it has ``.size``; holds no DB
        session. Reading a damaged block raises ``IntegrityError``."""
        t = self.core.target(p, path, Perm.READ)
        owner, shown = t.owner_id, join(split_path(path))
        parts = split_path(t.path)
        with self.core.db.read_conn() as conn:
            if len(parts) <= MAX_CHAIN:
                row = find(conn, self.core.root_id(conn, owner), parts)
                node_id, is_dir = (row.n_id, row.n_is_dir) if row is not None else (None, False)
                current = row.n_current_version_id if row is not None else None
            else:
                with self.core.db.read() as s:
                    node = self.core.resolve(s, owner, parts)
                    node_id, is_dir = (node.id, node.is_dir) if node is not None else (None, False)
                    current = node.current_version_id if node is not None else None
            if node_id is None:
                raise NotFound(f"{shown} not found")
            if is_dir:
                raise Conflict(f"{shown} is a folder")
            vid = version_id if version_id is not None else current
            rows = conn.execute(_VERSION_MANIFEST, {"vid": vid}).all() if vid is not None else []
        if not rows or rows[0].node_id != node_id:
            raise NotFound("no such version")
        return self._reader(owner, rows)

    def open_version(self, p: Principal, version_id: int) -> BinaryIO:
        """A reader over exactly one version, wherever its file is now: a response whose
        headers (length, ETag) came from that version sends that version's bytes, even when a
        write replaced it meanwhile. ``NotFound`` if the principal cannot read it."""
        with self.core.db.read_conn(snapshot=False) as conn:
            rows = conn.execute(_VERSION_MANIFEST, {"vid": version_id}).all()
            if not rows or not (
                self.core.node_perms(conn, p, rows[0].user_id, rows[0].node_id) & Perm.READ
            ):
                raise NotFound("no such version")
        return self._reader(rows[0].user_id, rows)

    def _reader(self, owner: int, rows: list[Row[Any]]) -> BinaryIO:
        """A reader from the rows of ``_VERSION_MANIFEST`` (one per block; one with no block
        for an empty version). ``Archived`` (before any byte is read) when some block is in a
        cold tier that must restore it first: the restore is requested."""
        if rows[0].hash is None:
            manifest = []
        else:
            manifest = [(r.hash, r.object_key, r.offset, r.block_size, r.inline_data) for r in rows]
            check_cold(self.core, owner, rows)
        keys = self.core.account_keys(owner)
        return self.core.store.open_reader(keys, manifest, rows[0].size)

    def read_bytes(self, p: Principal, path: str, *, version_id: int | None = None) -> bytes:
        reader = self.open_reader(p, path, version_id=version_id)
        try:
            return reader.read()
        finally:
            reader.close()
