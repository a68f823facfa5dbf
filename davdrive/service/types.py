"""Value objects the drive service hands to adapters (immutable snapshots, no DB session)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LinkGrant:
    """What a share link gives its holder: the link's node and kind (view, edit, upload,
    drop); the access rule turns the kind into rights."""

    id: int
    node_id: int
    kind: str


@dataclass(frozen=True)
class Principal:
    """Who acts: an account, optionally through one of its devices.

    ``lock_tokens``: the WebDAV lock tokens this request submitted (``If:`` / ``Lock-Token``);
    every door fills them in, and every write of the drive checks them against the locks.
    """

    user_id: int
    login: str
    device_id: int | None = None
    is_admin: bool = False
    lock_tokens: frozenset[str] = frozenset()
    # A share link's holder: acts in the owner's tree (``user_id``) below the link's node only,
    # never as the owner; ``login`` is "link-<id>", never the owner's.
    link: LinkGrant | None = None
    # False when the account is known (this request) to have received no share: the access
    # rule then skips looking for mount points. True: unknown, look.
    has_mounts: bool = True


@dataclass(frozen=True)
class NodeInfo:
    """A file or folder as of one read. ``path`` is account-relative: "/" or "/a/b.txt"."""

    id: int
    owner_id: int
    parent_id: int | None
    name: str
    path: str
    is_dir: bool
    size: int
    content_hash: str | None  # SHA-256 hex of the current version (files)
    version_id: int | None  # current version (files)
    etag: str  # strong, unquoted; changes with every new version
    mtime: float  # seconds since the epoch
    created: float
    status: str  # "ok" or "pending" (resumable upload in progress)
    perms: int = 31  # what the reader may do here: davdrive.service.access.Perm bits


@dataclass(frozen=True)
class VersionInfo:
    id: int
    node_id: int
    size: int
    content_hash: str
    mtime: float
    created: float
    author_user_id: int | None
    author_device_id: int | None
    pinned: bool
    label: str | None
    is_current: bool
    author_login: str | None = None
    author_device: str | None = None


@dataclass(frozen=True)
class Usage:
    used: int
    quota: int

    @property
    def available(self) -> int:
        return max(0, self.quota - self.used)


@dataclass(frozen=True)
class AccountOverview:
    """What ``GET /api/v1/account`` shows. Sizes are logical bytes: ``used`` is the current
    files (what the quota counts), ``history`` older revisions, ``trash`` the trashed files;
    ``stored`` is what the account's blocks take in the store."""

    login: str
    quota: int
    used: int
    history: int
    trash: int
    stored: int
    devices: int


@dataclass(frozen=True)
class TrashItem:
    id: int  # node id of the trashed top node
    name: str
    path: str  # where it was
    is_dir: bool
    size: int  # logical size of the subtree
    trashed_at: float
    deleted_by: str | None = None  # the login that deleted it (a recipient of a share too)
