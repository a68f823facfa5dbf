"""The commit of delta sync: a new revision of a file from blocks the account already holds.

The client names the blocks in order, the file's size and the SHA-256 of the whole content
(``content_hash``, as revisions report it) and the revision it started from (``base_rev``;
``None``: the file must not exist yet). The first writer wins: a ``base_rev`` that is no longer
current is a ``Conflict`` whose details carry the current revision, decided atomically inside
the commit's transaction (compare-and-swap on the file's ETag).

The server reads the blocks back once, streamed (4 MiB at a time), to check ``content_hash``
before anything is committed: each block is authenticated and its BLAKE3 checked on the way, so
a wrong block list or a client bug never becomes a revision whose ``content_hash`` lies. That
costs one decrypting read of the file per commit (about the cost of a download from the
server's own store, without the network), and no extra storage.

A commit into another account's tree (a share) streams the same read-back through an ordinary
upload there, so the blocks are sealed again with the owner's keys, as chunked uploads do;
the caller's staged copies are then dropped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from davdrive.blockstore.store import BlockRef, IngestResult, ManifestEntry
from davdrive.errors import (
    BadRequest,
    Conflict,
    FileTooLarge,
    PermissionDenied,
    PreconditionFailed,
)
from davdrive.metadata.schema import Block, StagedBlock
from davdrive.service.access import Perm, Target
from davdrive.service.block_api import BlockApi, batches, block_id, own_account
from davdrive.service.checksums import ChecksumMismatch
from davdrive.service.core import LOST
from davdrive.service.paths import join, parent_and_name, split_path

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from davdrive.service.core import AccountWrite
    from davdrive.service.drive import Drive
    from davdrive.service.types import NodeInfo, Principal

MAX_COMMIT_BLOCKS = 100_000  # ids per commit (10 GB in blocks of 100 KiB)
READ_PIECE = 4 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class _Resolved:
    """The blocks of a commit as the account holds them, with their place in the file."""

    refs: list[BlockRef]
    manifest: list[ManifestEntry]
    staged: list[str]  # ids taken from staged_block (their rows go when the commit lands)
    size: int


class DeltaCommit:
    """``commit``: make a list of held blocks the new content of a file."""

    def __init__(self, drive: Drive, blocks: BlockApi) -> None:
        self.drive = drive
        self.blocks = blocks

    def commit(
        self,
        p: Principal,
        path: str,
        blocks: Sequence[object],
        *,
        size: int,
        content_hash: str,
        base_rev: int | None,
        mtime: float | None = None,
        if_match: str | None = None,
    ) -> tuple[NodeInfo, bool]:
        """Commit ``blocks`` (ids, in order) as the content of ``path`` (of ``p``'s view);
        returns (the file, whether it was created).

        ``BadRequest``: a malformed argument, blocks the account does not hold (details
        ``missing``: their ids), ``size`` not the sum of the blocks' sizes, or ``content_hash``
        not the SHA-256 of their concatenation (``ChecksumMismatch``). ``Conflict`` (details
        ``current_rev``): ``base_rev`` is not the current revision, or ``None`` and a file
        exists. ``PreconditionFailed``: ``if_match`` is not the file's current ETag. And what
        every write raises (``PermissionDenied``, ``Locked``, ``QuotaExceeded``, ...)."""
        owner = own_account(p)
        if len(blocks) > MAX_COMMIT_BLOCKS:
            raise BadRequest(f"at most {MAX_COMMIT_BLOCKS} blocks per commit")
        ids = [block_id(b) for b in blocks]
        if not isinstance(content_hash, str) or not _SHA256.fullmatch(content_hash.lower()):
            raise BadRequest("'content_hash' is the SHA-256 of the content, 64 hex digits")
        content_hash = content_hash.lower()
        core = self.drive.core
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise BadRequest("'size' is the file's length in bytes")
        if size > core.max_file_size:
            raise FileTooLarge(f"file is larger than {core.max_file_size} bytes")
        path = join(split_path(path))
        parent_and_name(path)  # BadRequest for the root
        t = core.target(p, path, Perm.NONE)
        if not t.perms & (Perm.WRITE | Perm.CREATE):
            raise PermissionDenied("not allowed: write")
        expected_etag = self._precondition(p, t, path, base_rev, if_match)
        resolved = self._resolve(owner, ids)
        if resolved.size != size:
            raise BadRequest(f"the blocks add up to {resolved.size} bytes, not {size}")
        create_only = base_rev is None
        try:
            # rights, parent folder, locks, quota: refused before the read-back
            self.drive.content.check_upload(
                p,
                path,
                expected_etag=expected_etag,
                create_only=create_only,
                declared_size=size,
                target=t,
            )
            if t.owner_id == owner and t.perms & (Perm.READ | Perm.WRITE):
                return self._commit_here(
                    p, t, owner, resolved, content_hash, mtime, expected_etag, create_only
                )
            return self._reseal(
                p, path, owner, resolved, content_hash, mtime, expected_etag, create_only
            )
        except PreconditionFailed:
            # the file moved on between the check above and the commit: first writer won
            self._precondition(p, t, path, base_rev, if_match)
            raise

    # -- preconditions --------------------------------------------------------------------------
    def _precondition(
        self, p: Principal, t: Target, path: str, base_rev: int | None, if_match: str | None
    ) -> str | None:
        """The ETag the commit must replace (``None``: the file must not exist); ``Conflict``
        when ``base_rev`` is stale, ``PreconditionFailed`` when ``if_match`` is."""
        if not t.perms & Perm.READ:  # a drop: never overwrites, never tells what exists
            return None
        current = self.drive.try_stat(p, path)
        rev = current.version_id if current is not None and not current.is_dir else None
        if current is not None and current.is_dir:
            raise Conflict(f"{path} is a folder", current_rev=None)
        if if_match is not None and (current is None or if_match not in ("*", current.etag)):
            raise PreconditionFailed("If-Match does not match the file's current ETag")
        if base_rev is None:
            if current is not None:
                raise Conflict(
                    f"{path} exists (revision {rev}); commit with it as base_rev",
                    current_rev=_rev(rev),
                )
            return None
        if current is None or rev != base_rev:
            raise Conflict(
                f"{path} is at revision {_rev(rev)}, not {base_rev}: it changed meanwhile",
                current_rev=_rev(rev),
            )
        return current.etag

    # -- blocks ---------------------------------------------------------------------------------
    def _resolve(self, owner: int, ids: list[str]) -> _Resolved:
        """Where each block lives in the account (a staged upload first, else a block row);
        ``BadRequest`` with ``missing`` when some are not held."""
        wanted = sorted(set(ids))
        rows: dict[str, Any] = {}
        staged: dict[str, Any] = {}
        with self.drive.db.read_conn(snapshot=False) as conn:
            for batch in batches(wanted):
                for row in conn.execute(
                    select(
                        Block.hash,
                        Block.object_key,
                        Block.raw_size,
                        Block.stored_size,
                        Block.inline_data,
                    ).where(Block.user_id == owner, Block.hash.in_(batch), Block.tier != LOST)
                ):
                    rows[row.hash] = row
                for row in conn.execute(
                    select(
                        StagedBlock.hash,
                        StagedBlock.object_key,
                        StagedBlock.size,
                        StagedBlock.stored_size,
                    ).where(StagedBlock.user_id == owner, StagedBlock.hash.in_(batch))
                ):
                    staged[row.hash] = row
        missing = [h for h in wanted if h not in rows and h not in staged]
        if missing:
            raise BadRequest(
                f"{len(missing)} of the blocks are not held; upload them first", missing=missing
            )
        refs: list[BlockRef] = []
        manifest: list[ManifestEntry] = []
        offset = 0
        for h in ids:
            if h in staged:
                s = staged[h]
                refs.append(BlockRef(h, s.object_key, offset, s.size, s.stored_size, True))
                manifest.append((h, s.object_key, offset, s.size, None))
                n = s.size
            else:
                r = rows[h]
                refs.append(BlockRef(h, r.object_key, offset, r.raw_size, r.stored_size, False))
                manifest.append((h, r.object_key, offset, r.raw_size, r.inline_data))
                n = r.raw_size
            offset += n
        return _Resolved(refs, manifest, sorted(staged), offset)

    def _read_back(self, owner: int, resolved: _Resolved) -> Iterator[bytes]:
        """The content, in pieces of at most 4 MiB (bounded memory)."""
        reader = self.drive.store.open_reader(
            self.drive.core.account_keys(owner), resolved.manifest, resolved.size
        )
        try:
            while piece := reader.read(READ_PIECE):
                yield piece
        finally:
            reader.close()

    # -- commits --------------------------------------------------------------------------------
    def _commit_here(
        self,
        p: Principal,
        t: Target,
        owner: int,
        resolved: _Resolved,
        content_hash: str,
        mtime: float | None,
        expected_etag: str | None,
        create_only: bool,
    ) -> tuple[NodeInfo, bool]:
        """The blocks are the owner's already: verify, then one commit that adopts them."""
        sha = hashlib.sha256()
        for piece in self._read_back(owner, resolved):
            sha.update(piece)
        _verify(sha.hexdigest(), content_hash)

        def adopt(s: Session, _acct: AccountWrite, _info: NodeInfo) -> None:
            # the version's block rows keep the objects from now on
            BlockApi.unstage_in(s, owner, resolved.staged, [])

        return self.drive.content.commit_version(
            p,
            t,
            IngestResult(resolved.size, content_hash, resolved.refs),
            mtime=mtime,
            expected_etag=expected_etag,
            create_only=create_only,
            on_commit=adopt,
        )

    def _reseal(
        self,
        p: Principal,
        path: str,
        owner: int,
        resolved: _Resolved,
        content_hash: str,
        mtime: float | None,
        expected_etag: str | None,
        create_only: bool,
    ) -> tuple[NodeInfo, bool]:
        """Into another account's tree (or a drop): stream the blocks through an ordinary
        upload there (sealed with that account's keys), then drop the caller's staged copies."""
        upload = self.drive.content.begin_upload(
            p,
            path,
            expected_etag=expected_etag,
            create_only=create_only,
            declared_size=resolved.size,
        )
        sha = hashlib.sha256()
        try:
            for piece in self._read_back(owner, resolved):
                sha.update(piece)
                upload.write(piece)
            _verify(sha.hexdigest(), content_hash)
        except BaseException:
            upload.abort()
            raise
        info = upload.commit(mtime=mtime, expected_size=resolved.size)
        self.blocks.unstage(owner, resolved.staged, reclaim=True)
        return info, upload.created


def _verify(actual: str, expected: str) -> None:
    if actual != expected:
        raise ChecksumMismatch(
            f"SHA256 checksum mismatch: expected {expected}, got {actual}",
            expected=expected,
            actual=actual,
            type="SHA256",
        )


def _rev(version_id: int | None) -> str | None:
    return str(version_id) if version_id is not None else None


__all__ = ["MAX_COMMIT_BLOCKS", "DeltaCommit"]
