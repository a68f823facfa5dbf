"""Consistency check of metadata against the block backend (``davdrive fsck``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update

from davdrive.errors import IntegrityError
from davdrive.metadata.schema import (
    Block,
    FileVersion,
    Node,
    User,
    VersionBlock,
)
from davdrive.service.core import LOST
from davdrive.service.gc import DEFAULT_GRACE, sweep_orphans, unreferenced_objects
from davdrive.service.references import unused_block

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from davdrive.service.drive import Drive
    from davdrive.storage.base import ObjectInfo

# An object younger than this may belong to a PUT still streaming (its block rows are written
# in the commit), so repair leaves it alone: a single upload must finish within a day.
# Resumable uploads are safe at any age: their blocks are listed in upload_block.
ORPHAN_GRACE = DEFAULT_GRACE
# A .tmp file this old is no put in progress (a put writes one block of <= 4 MiB and renames).
LEFTOVER_GRACE = 3600.0


@dataclass(frozen=True)
class AffectedFile:
    """A file version that uses a missing or damaged block."""

    login: str
    path: str  # where it is, or where it was when trashed
    version_id: int
    current: bool  # the version is the file's current one
    trashed: bool  # the file (or a folder above it) is in the trash

    def describe(self) -> str:
        """``alice /docs/a.pdf (current version 7)``, ``... (version 3, not current; in trash)``."""
        state = (
            f"current version {self.version_id}"
            if self.current
            else (f"version {self.version_id}, not current")
        )
        if self.trashed:
            state += "; in trash"
        return f"{self.login} {self.path} ({state})"


@dataclass
class FsckReport:
    """What ``fsck`` found; ``affected`` names the files behind each bad object key."""

    blocks_checked: int = 0
    missing: list[str] = field(default_factory=list)  # object keys referenced but absent
    damaged: list[str] = field(default_factory=list)  # present but failing GCM/id checks
    orphans: list[str] = field(default_factory=list)  # stored but referenced by no block row
    leftovers: list[str] = field(default_factory=list)  # partial writes a crash left behind
    unreferenced_blocks: int = 0  # block rows no version uses (GC candidates)
    versions_affected: int = 0  # versions that use a missing or damaged block
    cold_unreachable: int = 0  # archived blocks, while the config has no cold tier (archive)
    repaired: int = 0
    marked_lost: int = 0  # bad blocks marked so the next upload of their content stores them
    block_ids: dict[str, str] = field(default_factory=dict)  # bad object key -> block id
    affected: dict[str, list[AffectedFile]] = field(default_factory=dict)  # bad key -> files

    @property
    def ok(self) -> bool:
        return not (self.missing or self.damaged)

    def summary(self) -> str:
        return (
            f"blocks checked: {self.blocks_checked}; missing: {len(self.missing)}; "
            f"damaged: {len(self.damaged)}; orphan objects: {len(self.orphans)}; "
            f"crash leftovers: {len(self.leftovers)}; "
            f"unreferenced blocks: {self.unreferenced_blocks}; "
            f"versions affected: {self.versions_affected}; repaired: {self.repaired}"
            + (
                f"; marked lost: {self.marked_lost} (uploading the affected files again "
                "restores them)"
                if self.marked_lost
                else ""
            )
            + (
                f"; archived blocks not checked: {self.cold_unreachable} (the config's archive "
                "section names no cold tier: restore it)"
                if self.cold_unreachable
                else ""
            )
        )


def fsck(drive: Drive, *, repair: bool = False, verify: bool = True) -> FsckReport:
    """Walk every block row (reading and authenticating it when ``verify``) and every stored
    object. ``repair`` deletes orphan objects (referenced by no block row and no unfinished
    resumable upload) older than the grace period, and marks missing or damaged blocks lost so
    that the next upload containing them stores them again; it never deletes referenced data."""
    report = FsckReport()
    backend = drive.store.backend
    bad_ids: list[int] = []
    with drive.db.read() as s:
        rows = s.execute(
            select(
                Block.id,
                Block.user_id,
                Block.hash,
                Block.object_key,
                Block.inline_data.is_not(None).label("inline"),
                Block.tier,
            ).order_by(Block.user_id)
        ).all()
        report.unreferenced_blocks = int(
            s.scalar(select(func.count()).select_from(Block).where(unused_block())) or 0
        )
    bad_keys: dict[int, str] = {}
    restore_first = drive.store.cold is not None and drive.store.cold.needs_restore
    for row in rows:
        report.blocks_checked += 1
        if row.inline:
            if verify and not _inline_ok(drive, row):
                report.damaged.append(row.object_key)
                bad_ids.append(row.id)
                bad_keys[row.id] = row.object_key
                report.block_ids[row.object_key] = row.hash
            continue
        # A cold block's object is in the cold tier (a tiered backend's ``exists`` looks in
        # both); one that must be restored before a read is not read here.
        cold = row.tier in ("archiving", "cold")
        if cold and drive.store.cold is None:
            # archived while the config had a cold tier: never marked lost for that
            report.cold_unreachable += 1
            continue
        if not backend.exists(row.object_key):
            report.missing.append(row.object_key)
            bad_ids.append(row.id)
            bad_keys[row.id] = row.object_key
            report.block_ids[row.object_key] = row.hash
            continue
        if verify and not (cold and restore_first):
            try:
                drive.store.read_block(drive.account_keys(row.user_id), row.hash, row.object_key)
            except IntegrityError:
                report.damaged.append(row.object_key)
                bad_ids.append(row.id)
                bad_keys[row.id] = row.object_key
                report.block_ids[row.object_key] = row.hash
    if bad_ids:
        with drive.db.read() as s:
            report.versions_affected = int(
                s.scalar(
                    select(func.count(func.distinct(VersionBlock.version_id))).where(
                        VersionBlock.block_id.in_(bad_ids)
                    )
                )
                or 0
            )
            report.affected = _affected_files(s, bad_keys)
    if repair and bad_ids:
        with drive.db.write() as s:
            for i in range(0, len(bad_ids), 500):
                s.execute(
                    update(Block)
                    .where(Block.id.in_(bad_ids[i : i + 500]))
                    .values(tier=LOST, inline_data=None)
                )
        report.marked_lost = len(bad_ids)
    cutoff = time.time() - ORPHAN_GRACE
    for left in backend.leftovers():
        report.leftovers.append(left.key)
        if repair and left.mtime < time.time() - LEFTOVER_GRACE:
            backend.remove_leftover(left.key)
            report.repaired += 1
    old: list[ObjectInfo] = []
    for obj in unreferenced_objects(drive):
        report.orphans.append(obj.key)
        if obj.mtime < cutoff:
            old.append(obj)
    if repair:
        # GC's sweep: re-checked under a lock that holds every commit back (``service.gc``)
        report.repaired += len(sweep_orphans(drive, old))
    return report


def _inline_ok(drive: Drive, row: Any) -> bool:
    """Whether a block kept inline in the database decodes to its id."""
    with drive.db.read() as s:
        data = s.scalar(select(Block.inline_data).where(Block.id == row.id))
    if data is None:
        return True  # collected meanwhile
    try:
        drive.store.read_block(drive.account_keys(row.user_id), row.hash, row.object_key, data)
    except IntegrityError:
        return False
    return True


def _affected_files(s: Session, bad_keys: dict[int, str]) -> dict[str, list[AffectedFile]]:
    """For each bad block (id -> object key), the file versions that use it."""
    rows = s.execute(
        select(
            VersionBlock.block_id,
            FileVersion.id,
            Node.id.label("node_id"),
            Node.current_version_id,
            User.login,
        )
        .distinct()
        .join(FileVersion, FileVersion.id == VersionBlock.version_id)
        .join(Node, Node.id == FileVersion.node_id)
        .join(User, User.id == Node.user_id)
        .where(VersionBlock.block_id.in_(list(bad_keys)))
        .order_by(User.login, Node.id, FileVersion.id.desc())
    ).all()
    paths: dict[int, tuple[str, bool]] = {}
    out: dict[str, list[AffectedFile]] = {key: [] for key in bad_keys.values()}
    for row in rows:
        if row.node_id not in paths:
            paths[row.node_id] = _path_of(s, row.node_id)
        path, trashed = paths[row.node_id]
        out[bad_keys[row.block_id]].append(
            AffectedFile(
                login=row.login,
                path=path,
                version_id=row.id,
                current=row.current_version_id == row.id,
                trashed=trashed,
            )
        )
    return out


def _path_of(s: Session, node_id: int) -> tuple[str, bool]:
    """(path, in trash) of a node: the live path, or the path it had when it (or the folder
    above it that was trashed) went to the trash."""
    parts: list[str] = []
    node = s.get(Node, node_id)
    while node is not None and node.parent_id is not None:
        if node.trashed_at is not None:
            base = (node.trashed_path or f"/{node.name}").rstrip("/")
            rest = "/".join(reversed(parts))
            return (f"{base}/{rest}" if rest else base or "/"), True
        parts.append(node.name)
        node = s.get(Node, node.parent_id)
    return "/" + "/".join(reversed(parts)), False
