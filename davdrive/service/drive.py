"""The drive service: the one entry point every adapter (WebDAV, JSON API, jobs, CLI) calls.

``Drive`` composes the parts, each a module of its own: ``core`` (transactions, resolution,
journal, quota, the lock rule), ``accounts`` (account rows and keys), ``tree`` (the namespace),
``content`` (uploads and reads), ``versions`` (history, also across saves by rename),
``trash`` and ``properties``. Its public methods are theirs, bound once here, so adapters keep
one object and each rule lives in one module. Every call takes the acting ``Principal``, and
the access rule (``service.access``) decides what it reaches.
"""

from __future__ import annotations

from davdrive.blockstore.keys import KeyRing
from davdrive.blockstore.store import BlockStore
from davdrive.config import DEFAULT_QUOTA, MAX_FILE_SIZE
from davdrive.metadata.db import Database
from davdrive.notify.base import Bus
from davdrive.service.accounts_store import AccountStore
from davdrive.service.content import Content, Upload
from davdrive.service.core import DriveCore, Expect
from davdrive.service.fsck import FsckReport
from davdrive.service.fsck import fsck as run_fsck
from davdrive.service.links import Links
from davdrive.service.properties import Properties
from davdrive.service.reading import Reading
from davdrive.service.shares import Shares
from davdrive.service.trash import Trash
from davdrive.service.tree import Tree
from davdrive.service.versions import Versions


class Drive:
    """The drive: accounts, tree, content, versions, trash and properties over one core."""

    def __init__(
        self,
        db: Database,
        store: BlockStore,
        keyring: KeyRing,
        *,
        default_quota: int = DEFAULT_QUOTA,
        max_file_size: int = MAX_FILE_SIZE,
        bus: Bus | None = None,
    ) -> None:
        self.core = core = DriveCore(
            db,
            store,
            keyring,
            default_quota=default_quota,
            max_file_size=max_file_size,
            bus=bus,
        )
        self.accounts = AccountStore(core)
        self.versions = Versions(core)
        self.trash = Trash(core)
        self.content = Content(core, self.versions)
        self.reading = Reading(core)
        self.shares = Shares(core)
        self.links = Links(core)
        self.tree = Tree(core, self.versions, self.trash, self.shares)
        self.properties = Properties(core)
        # accounts and keys
        self.create_account = self.accounts.create_account
        self.delete_account = self.accounts.delete_account
        self.principal = self.accounts.principal
        self.rewrap_keys = self.accounts.rewrap_keys
        self.usage = self.accounts.usage
        self.account_overview = self.accounts.account_overview
        self.account_keys = core.account_keys
        self.lock_views = core.lock_views
        # the namespace
        self.stat = self.tree.stat
        self.rights = self.tree.rights
        self.try_stat = self.tree.try_stat
        self.stat_pair = self.tree.stat_pair
        self.list_dir = self.tree.list_dir
        self.list_page = self.tree.list_page
        self.list_tree = self.tree.list_tree
        self.mkdir = self.tree.mkdir
        self.move = self.tree.move
        self.copy = self.tree.copy
        self.delete = self.tree.delete
        self.set_mtime = self.tree.set_mtime
        # content
        self.begin_upload = self.content.begin_upload
        self.check_upload = self.content.check_upload
        self.write_file = self.content.write_file
        self.open_reader = self.reading.open_reader
        self.open_version = self.reading.open_version
        self.read_bytes = self.reading.read_bytes
        # versions
        self.list_versions = self.versions.list_versions
        self.restore_version = self.versions.restore_version
        self.pin_version = self.versions.pin_version
        self.block_list = self.versions.block_list
        # trash
        self.list_trash = self.trash.list_trash
        self.restore_trash = self.trash.restore_trash
        self.purge_trash = self.trash.purge_trash
        # dead properties
        self.get_dead_props = self.properties.get_dead_props
        self.set_dead_prop = self.properties.set_dead_prop

    @property
    def db(self) -> Database:
        return self.core.db

    @property
    def store(self) -> BlockStore:
        return self.core.store

    @property
    def keyring(self) -> KeyRing:
        return self.core.keyring

    @property
    def bus(self) -> Bus:
        """The notification bus (settable: a test or a process may swap it in)."""
        return self.core.bus

    @bus.setter
    def bus(self, value: Bus) -> None:
        self.core.bus = value

    @property
    def max_file_size(self) -> int:
        """The largest file accepted, in bytes (settable: the parts read it from the core)."""
        return self.core.max_file_size

    @max_file_size.setter
    def max_file_size(self, value: int) -> None:
        self.core.max_file_size = value

    @property
    def default_quota(self) -> int:
        """The quota of new accounts, in bytes."""
        return self.core.default_quota

    @default_quota.setter
    def default_quota(self, value: int) -> None:
        self.core.default_quota = value

    def fsck(self, *, repair: bool = False, verify: bool = True) -> FsckReport:
        """Check metadata against stored blocks; see ``davdrive.service.fsck``."""
        return run_fsck(self, repair=repair, verify=verify)


__all__ = ["Drive", "Expect", "Upload"]
