"""The drive service: the one entry point every adapter (WebDAV, JSON API, jobs, CLI) calls.

Paths are account-relative strings ("/", "/docs/a.txt"), already URL-decoded. Every call takes
the acting ``Principal`` and checks permission in ``_authorize`` (owners only today; shares slot
in there). Every mutation is one short transaction that bumps the account's journal sequence
(a row lock that also serialises the account's writers) and appends its ``change`` row.
"""

from __future__ import annotations

# Implementation in progress: the signatures and docstrings below are the contract.
from collections.abc import Iterable, Sequence
from typing import BinaryIO

from davdrive.blockstore.keys import KeyRing
from davdrive.blockstore.store import BlockStore
from davdrive.config import DEFAULT_QUOTA, MAX_FILE_SIZE
from davdrive.metadata.db import Database
from davdrive.service.types import NodeInfo, Principal, TrashItem, Usage, VersionInfo


class Upload:
    """A file body being received. Nothing is visible to readers until ``commit``.

    ``write`` streams into the block pipeline (bounded memory); it raises ``FileTooLarge`` or
    ``QuotaExceeded`` as soon as the bytes received pass the limits known at ``begin_upload``.
    """

    received: int

    def write(self, data: bytes | bytearray | memoryview) -> None: ...

    def commit(self, *, mtime: float | None = None, expected_size: int | None = None) -> NodeInfo:
        """Make the new version current in one transaction.

        Raises ``IncompleteUpload`` when ``expected_size`` differs from the bytes received,
        ``PreconditionFailed`` when the head moved away from ``expected_etag`` (compare-and-swap
        inside the transaction), ``ParentNotFound`` if the folder vanished meanwhile,
        ``QuotaExceeded`` (atomic check), ``Conflict`` if a folder now stands at the path.
        Blocks written by an upload that does not commit stay as orphans for GC.
        """
        raise NotImplementedError

    def abort(self) -> None:
        """Discard the upload; idempotent."""


class Drive:
    """Tree operations, versions, quota, trash, dead properties, journal, fsck."""

    def __init__(
        self,
        db: Database,
        store: BlockStore,
        keyring: KeyRing,
        *,
        default_quota: int = DEFAULT_QUOTA,
        max_file_size: int = MAX_FILE_SIZE,
    ) -> None:
        raise NotImplementedError

    # -- accounts (password hashing lives in service/auth.py, which calls these) --------------
    def create_account(
        self, login: str, password_hash: str, *, quota: int | None = None, is_admin: bool = False
    ) -> Principal:
        """Create a user with a wrapped data key and an empty root folder. ``AlreadyExists``."""
        raise NotImplementedError

    def delete_account(self, user_id: int) -> None:
        """Remove a user and all its metadata (its blocks become orphans for GC)."""
        raise NotImplementedError

    def principal(self, login: str, device_id: int | None = None) -> Principal:
        """The principal for a login (``NotFound``)."""
        raise NotImplementedError

    # -- namespace -------------------------------------------------------------------------------
    def stat(self, p: Principal, path: str) -> NodeInfo:
        """``NotFound`` if nothing lives at path (``BadRequest`` for hostile paths)."""
        raise NotImplementedError

    def try_stat(self, p: Principal, path: str) -> NodeInfo | None:
        raise NotImplementedError

    def list_dir(self, p: Principal, path: str) -> list[NodeInfo]:
        """Members of a folder in one query, sorted by name. ``NotFound``; ``Conflict`` if a file."""
        raise NotImplementedError

    def mkdir(self, p: Principal, path: str) -> NodeInfo:
        """``AlreadyExists`` if anything lives there; ``ParentNotFound`` if the parent is missing."""
        raise NotImplementedError

    def begin_upload(
        self,
        p: Principal,
        path: str,
        *,
        expected_etag: str | None = None,
        create_only: bool = False,
        declared_size: int | None = None,
    ) -> Upload:
        """Check the parent, permission, size and quota up front (before the body), then stream.

        ``expected_etag``: the write must replace exactly that version (If-Match / base_rev);
        ``"*"`` means "must exist". ``create_only``: fail if the path exists (If-None-Match: *).
        """
        raise NotImplementedError

    def write_file(
        self,
        p: Principal,
        path: str,
        data: bytes | Iterable[bytes] | BinaryIO,
        *,
        mtime: float | None = None,
        expected_etag: str | None = None,
        create_only: bool = False,
    ) -> NodeInfo:
        """Convenience: ``begin_upload`` + write everything + ``commit``."""
        raise NotImplementedError

    def open_reader(self, p: Principal, path: str, *, version_id: int | None = None) -> BinaryIO:
        """A seekable reader over the current (or given) version; it has ``.size``; holds no DB
        session. Reading a damaged block raises ``IntegrityError``."""
        raise NotImplementedError

    def read_bytes(self, p: Principal, path: str, *, version_id: int | None = None) -> bytes:
        raise NotImplementedError

    def move(
        self, p: Principal, src: str, dst: str, *, overwrite: bool = True
    ) -> bool:
        """Rename/move a file or a whole folder in one transaction (no data copied).

        Returns True when an existing destination was replaced (it goes to the trash).
        ``PreconditionFailed`` if dst exists and not overwrite; ``ParentNotFound`` if dst's
        parent is missing; ``Conflict`` when moving a folder into itself.
        """
        raise NotImplementedError

    def copy(self, p: Principal, src: str, dst: str, *, overwrite: bool = True) -> bool:
        """Copy a file or folder tree; copies share blocks (no data copied), keep mtimes and
        dead properties. Same return value and errors as ``move``; counts against quota."""
        raise NotImplementedError

    def delete(self, p: Principal, path: str) -> None:
        """Move to the trash (restorable). The root cannot be deleted (``PermissionDenied``)."""
        raise NotImplementedError

    def set_mtime(self, p: Principal, path: str, mtime: float) -> NodeInfo:
        raise NotImplementedError

    # -- versions ---------------------------------------------------------------------------------
    def list_versions(self, p: Principal, path: str, *, limit: int | None = None) -> list[VersionInfo]:
        """Newest first."""
        raise NotImplementedError

    def restore_version(self, p: Principal, path: str, version_id: int) -> NodeInfo:
        """Make an old version current as a new version (history is never rewritten)."""
        raise NotImplementedError

    # -- quota and trash --------------------------------------------------------------------------
    def usage(self, p: Principal) -> Usage:
        raise NotImplementedError

    def list_trash(self, p: Principal) -> list[TrashItem]:
        raise NotImplementedError

    def restore_trash(self, p: Principal, item_id: int) -> NodeInfo:
        """Restore a trashed file or folder (with its contents) to where it was; a name taken
        meanwhile gets a " (restored)" suffix; a vanished parent restores to the root."""
        raise NotImplementedError

    def purge_trash(self, p: Principal, item_id: int | None = None) -> int:
        """Delete one trashed item (or all); returns how many top items were purged."""
        raise NotImplementedError

    # -- dead properties (WebDAV), keyed by node id -----------------------------------------------
    def get_dead_props(self, p: Principal, node_ids: Sequence[int]) -> dict[int, dict[str, bytes]]:
        """Property name (Clark notation) -> raw XML value, for many nodes in one query."""
        raise NotImplementedError

    def set_dead_prop(self, p: Principal, node_id: int, name: str, value: bytes | None) -> None:
        """Set (or remove, with None) one dead property."""
        raise NotImplementedError
