"""Accounts in the drive: creation with a wrapped data key and a root folder, deletion,
lookup by login, key rewrapping, usage.
"""

from __future__ import annotations

import time

from sqlalchemy import delete, func, select

from davdrive.blockstore.keys import new_data_key
from davdrive.errors import (
    AlreadyExists,
    NotFound,
)
from davdrive.metadata.schema import (
    Block,
    Device,
    FileVersion,
    Node,
    User,
    VersionBlock,
)
from davdrive.service.core import DriveCore, key_context
from davdrive.service.types import (
    AccountOverview,
    Principal,
    Usage,
)


class AccountStore:
    """Account rows and their keys."""

    def __init__(self, core: DriveCore) -> None:
        self.core = core

    def create_account(
        self, login: str, password_hash: str, *, quota: int | None = None, is_admin: bool = False
    ) -> Principal:
        """Create a user with a wrapped data key and an empty root folder. ``AlreadyExists``.
        The login is stored in its canonical (lowercase) form."""
        login = login.lower()
        now = time.time()
        with self.core.db.write() as s:
            if s.scalar(select(User.id).where(User.login == login)) is not None:
                raise AlreadyExists(f"user {login!r} exists")
            user = User(
                login=login,
                password_hash=password_hash,
                is_admin=is_admin,
                quota_bytes=self.core.default_quota if quota is None else quota,
                used_bytes=0,
                wrapped_key=b"",
                wrap_key_id="",
                data_key_id=1,
                change_seq=0,
                created_at=now,
            )
            s.add(user)
            s.flush()
            key_id, wrapped = self.core.keyring.wrap(new_data_key(), key_context(user.id))
            user.wrap_key_id, user.wrapped_key = key_id, wrapped
            root = Node(
                user_id=user.id, parent_id=None, name="", is_dir=True, mtime=now, created_at=now
            )
            s.add(root)
            s.flush()
            user.root_id = root.id
            return Principal(user.id, login, None, is_admin)

    def delete_account(self, user_id: int) -> None:
        """Remove a user and all its metadata (its blocks become orphans for GC)."""
        with self.core.db.write() as s:
            versions = select(FileVersion.id).where(FileVersion.user_id == user_id)
            s.execute(delete(VersionBlock).where(VersionBlock.version_id.in_(versions)))
            s.execute(delete(User).where(User.id == user_id))
        with self.core.cache_lock:
            self.core.keys_cache.pop(user_id, None)
            self.core.roots_cache.pop(user_id, None)
            self.core.logins_cache.pop(user_id, None)

    def principal(self, login: str, device_id: int | None = None) -> Principal:
        """The principal for a login, matched in its canonical (lowercase) form (``NotFound``)."""
        login = login.lower()
        with self.core.db.read() as s:
            row = s.execute(select(User.id, User.is_admin).where(User.login == login)).first()
        if row is None:
            raise NotFound(f"no user {login!r}")
        return Principal(row.id, login, device_id, row.is_admin)

    def rewrap_keys(self) -> int:
        """Rewrap every account's data key under the keyring's current master key."""
        count = 0
        with self.core.db.write() as s:
            for user in s.scalars(select(User)):
                if user.wrap_key_id == self.core.keyring.current_id:
                    continue
                data_key = self.core.keyring.unwrap(
                    user.wrap_key_id, user.wrapped_key, key_context(user.id)
                )
                user.wrap_key_id, user.wrapped_key = self.core.keyring.wrap(
                    data_key, key_context(user.id)
                )
                count += 1
        return count

    def usage(self, p: Principal) -> Usage:
        owner = self.core.authorize(p)
        with self.core.db.read() as s:
            row = s.execute(
                select(User.used_bytes, User.quota_bytes).where(User.id == owner)
            ).first()
        if row is None:
            raise NotFound("no such account")
        if p.link is not None:  # a link's holder learns the room left, not the owner's use
            return Usage(used=0, quota=max(0, row.quota_bytes - row.used_bytes))
        return Usage(used=row.used_bytes, quota=row.quota_bytes)

    def account_overview(self, p: Principal) -> AccountOverview:
        """Login, quota and what the account's bytes are spent on (logical sizes), plus the
        bytes its blocks take in the store (after dedup, compression and encryption)."""
        owner = self.core.authorize(p)
        with self.core.db.read() as s:
            user = s.get(User, owner)
            if user is None:
                raise NotFound("no such account")
            tops = select(Node.id).where(Node.user_id == owner, Node.trashed_at.is_not(None))
            tree = tops.cte("trashed", recursive=True)
            tree = tree.union_all(select(Node.id).where(Node.parent_id == tree.c.id))
            trash = s.scalar(
                select(func.coalesce(func.sum(FileVersion.size), 0))
                .join(Node, Node.current_version_id == FileVersion.id)
                .where(Node.id.in_(select(tree.c.id)))
            )
            history = s.scalar(
                select(func.coalesce(func.sum(FileVersion.size), 0))
                .outerjoin(Node, Node.current_version_id == FileVersion.id)
                .where(FileVersion.user_id == owner, Node.id.is_(None))
            )
            stored = s.scalar(
                select(func.coalesce(func.sum(Block.stored_size), 0)).where(Block.user_id == owner)
            )
            devices = s.scalar(select(func.count()).where(Device.user_id == owner))
            return AccountOverview(
                login=user.login,
                quota=user.quota_bytes,
                used=user.used_bytes,
                history=int(history or 0),
                trash=int(trash or 0),
                stored=int(stored or 0),
                devices=int(devices or 0),
            )
