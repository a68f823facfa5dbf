"""Retention, restic style: for each account, load its history, **plan** what the rule drops
(``service.retention_plan``), **report** it, and (unless a dry run) **execute** it.

Executing drops version rows and their block lists, and purges expired trash entries; the
blocks nothing uses any more are left to GC (their rows and objects stay until it runs). The
quota is untouched: ``used_bytes`` counts only the current versions of live files, and
neither history nor the trash is in it (``AccountStore.account_overview`` shows them apart).
Each account is executed in one transaction under its row lock (the lock every writer of the
account takes), and every drop is checked again there: a version pinned or made current
since the plan, or a trash entry restored, stays. A live file that lost versions gets a
``versions_pruned`` journal row, so revision lists and clients refresh it.

``prune(app_or_drive, now, dry_run)`` is what the scheduler and ``davdrive prune`` run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from davdrive.config import Config, Retention, check_retention
from davdrive.errors import NotFound
from davdrive.metadata.schema import (
    Block,
    DeadProperty,
    FileVersion,
    Node,
    User,
    VersionBlock,
)
from davdrive.service.core import IN_BATCH, DriveCore
from davdrive.service.drive import Drive
from davdrive.service.paths import join
from davdrive.service.retention_plan import (
    DAY,
    HISTORY_SHARE,
    MAX_VERSIONS,
    THINNED,
    History,
    Plan,
    TrashEntry,
    Version,
    plan,
)
from davdrive.service.types import Principal

log = logging.getLogger("davdrive.retention")

PRUNED = "versions_pruned"  # the journal kind of a file that lost versions to retention


class AppLike(Protocol):
    """What ``prune`` needs of an app: the drive and the config (for ``retention``)."""

    drive: Drive
    config: Config


@dataclass(frozen=True)
class DroppedVersion:
    """One version the plan drops, for the report."""

    version_id: int
    path: str  # where its file is (" (in trash)" appended for a trashed file)
    created_at: float
    reason: str  # thinned, max_versions, history_share


@dataclass
class AccountPrune:
    """The plan (and, after execution, the outcome) for one account."""

    login: str
    settings: Retention
    plan: Plan = field(default_factory=Plan)
    versions: list[DroppedVersion] = field(default_factory=list)
    versions_dropped: int = 0  # executed: how many really went (a pin or restore may save one)
    trash_purged: int = 0
    error: str | None = None

    @property
    def history_released(self) -> int:
        """Bytes held only by history before minus after (what the history cap counts)."""
        return max(0, self.plan.history_before - self.plan.history_after)


@dataclass
class PruneReport:
    """What ``prune`` planned and (unless ``dry_run``) did, per account."""

    now: float
    dry_run: bool
    accounts: list[AccountPrune] = field(default_factory=list)

    @property
    def versions_dropped(self) -> int:
        return sum(a.versions_dropped for a in self.accounts)

    @property
    def trash_purged(self) -> int:
        return sum(a.trash_purged for a in self.accounts)

    @property
    def released(self) -> int:
        return sum(a.plan.released for a in self.accounts if a.error is None)

    @property
    def errors(self) -> list[AccountPrune]:
        return [a for a in self.accounts if a.error is not None]

    def summary(self) -> str:
        """One line for a log: totals over every account."""
        return (
            f"{'dry run: ' if self.dry_run else ''}{len(self.accounts)} accounts, "
            f"{self.versions_dropped} versions dropped, {self.trash_purged} trash entries "
            f"purged, {self.released} bytes released for gc, {len(self.errors)} failed"
        )


def effective_settings(base: Retention, overrides: Mapping[str, Any] | None) -> Retention:
    """The global settings with an account's overrides applied."""
    return base.overridden(overrides)


def account_retention(
    drive: Drive, login: str, base: Retention
) -> tuple[dict[str, Any], Retention]:
    """An account's overrides and the settings in force for it (``NotFound``)."""
    with drive.db.read() as s:
        row = s.execute(select(User.retention).where(User.login == login.lower())).first()
    if row is None:
        raise NotFound(f"no user {login!r}")
    overrides = dict(row.retention or {})
    return overrides, effective_settings(base, overrides)


def set_account_retention(
    drive: Drive,
    login: str,
    changes: Mapping[str, Any],
    base: Retention,
    *,
    reset: bool = False,
) -> tuple[dict[str, Any], Retention]:
    """Override retention settings for one account (``reset`` first drops its overrides);
    ``ValueError`` for a bad value, ``NotFound`` for no such account. Returns the overrides
    and the settings now in force."""
    changes = check_retention(changes)
    with drive.db.write() as s:
        user = s.scalars(select(User).where(User.login == login.lower())).first()
        if user is None:
            raise NotFound(f"no user {login!r}")
        overrides = {} if reset else dict(user.retention or {})
        overrides.update(changes)
        settings = effective_settings(base, overrides)
        user.retention = overrides or None
    return overrides, settings


def prune(
    target: Drive | AppLike,
    now: float | None = None,
    dry_run: bool = False,
    *,
    settings: Retention | None = None,
    on_account: Callable[[AccountPrune], None] | None = None,
) -> PruneReport:
    """Apply retention to every account at time ``now`` (default: the clock): plan, and unless
    ``dry_run`` execute. ``settings``: the global settings (default: the app's
    ``config.retention``, or the defaults for a bare ``Drive``), each account's overrides
    applied on top. ``on_account`` hears of each account when it is done (a progress bar).
    An account that fails is reported (``AccountPrune.error``) and the others go on."""
    drive = target if isinstance(target, Drive) else target.drive
    if settings is None:
        settings = target.config.retention if not isinstance(target, Drive) else Retention()
    now = time.time() if now is None else now
    report = PruneReport(now=now, dry_run=dry_run)
    with drive.db.read() as s:
        accounts = s.execute(select(User.id, User.login, User.retention).order_by(User.login)).all()
    for account in accounts:
        result = AccountPrune(login=account.login, settings=settings)
        try:
            result.settings = effective_settings(settings, account.retention)
            _prune_account(drive.core, account.id, result, now, dry_run)
        except Exception as exc:  # noqa: BLE001 - one account's failure must not stop the rest
            log.exception("retention of %s failed", account.login)
            result.error = f"{type(exc).__name__}: {exc}"
        report.accounts.append(result)
        if on_account is not None:
            on_account(result)
    if not dry_run and (report.versions_dropped or report.trash_purged):
        log.info("retention: %s", report.summary())
    return report


def _prune_account(
    core: DriveCore, user_id: int, result: AccountPrune, now: float, dry_run: bool
) -> None:
    with core.db.read() as s:
        history, paths = _load(s, user_id)
    result.plan = p = plan(history, result.settings, now)
    created = {v.id: v for v in history.versions}
    result.versions = sorted(
        (
            DroppedVersion(vid, paths.get(created[vid].node_id, "?"), created[vid].created_at, why)
            for vid, why in p.drops.items()
        ),
        key=lambda d: (d.path, d.created_at, d.version_id),
    )
    if dry_run or not (p.drops or p.purged):  # nothing to do: no write transaction
        result.versions_dropped, result.trash_purged = len(p.drops), len(p.purged)
        return
    cutoff = now - result.settings.trash_days * DAY
    result.versions_dropped, result.trash_purged = _execute(core, user_id, p, cutoff)


def _load(s: Session, user_id: int) -> tuple[History, dict[int, str]]:
    """One account's history as the planner wants it, and the path of each node."""
    quota = s.scalar(select(User.quota_bytes).where(User.id == user_id)) or 0
    nodes = s.execute(
        select(
            Node.id,
            Node.parent_id,
            Node.name,
            Node.current_version_id,
            Node.trashed_at,
            Node.trashed_path,
        ).where(Node.user_id == user_id)
    ).all()
    paths = _paths(nodes)
    children: dict[int, list[int]] = {}
    for n in nodes:
        if n.parent_id is not None:
            children.setdefault(n.parent_id, []).append(n.id)

    def subtree(nid: int) -> frozenset[int]:
        out, stack = {nid}, [nid]
        while stack:
            for child in children.get(stack.pop(), ()):
                out.add(child)
                stack.append(child)
        return frozenset(out)

    trash = [
        TrashEntry(n.id, n.trashed_at, subtree(n.id), paths[n.id])
        for n in nodes
        if n.trashed_at is not None
    ]
    current = {n.current_version_id for n in nodes if n.current_version_id is not None}
    blocks: dict[int, set[int]] = {}
    pairs = (
        select(VersionBlock.version_id, VersionBlock.block_id)
        .join(FileVersion, FileVersion.id == VersionBlock.version_id)
        .where(FileVersion.user_id == user_id)
        .distinct()
    )
    for vid, bid in s.execute(pairs):
        blocks.setdefault(vid, set()).add(bid)
    versions = [
        Version(
            v.id,
            v.node_id,
            v.created_at,
            bool(v.pinned),
            v.id in current,
            frozenset(blocks.get(v.id, ())),
        )  # fmt: skip
        for v in s.execute(
            select(
                FileVersion.id, FileVersion.node_id, FileVersion.created_at, FileVersion.pinned
            ).where(FileVersion.user_id == user_id)
        )
    ]
    sizes_query = select(Block.id, Block.raw_size).where(Block.user_id == user_id)
    sizes = {r.id: r.raw_size for r in s.execute(sizes_query)}
    return History(versions, sizes, quota, trash), paths


def _paths(nodes: list[Any]) -> dict[int, str]:
    """Where each node is, for the report: its path, or where it was, marked " (in trash)"
    for anything in the trash (rows: id, parent_id, name, trashed_at, trashed_path)."""
    by_id = {n.id: n for n in nodes}
    paths: dict[int, tuple[str, bool]] = {}
    for start in nodes:
        chain, nid = [], start.id
        while nid is not None and nid not in paths and nid in by_id:
            n = by_id[nid]
            if n.trashed_at is not None:
                paths[nid] = (n.trashed_path or f"/{n.name}", True)
                break
            if n.parent_id is None:
                paths[nid] = ("/", False)
                break
            chain.append(nid)
            nid = n.parent_id
        base, trashed = paths.get(nid, ("/", False)) if nid is not None else ("/", False)
        for cid in reversed(chain):
            base = base.rstrip("/") + "/" + by_id[cid].name
            paths[cid] = (base, trashed)
    return {
        nid: path + (" (in trash)" if trashed else "") for nid, (path, trashed) in paths.items()
    }


def _batches(ids: Iterable[int]) -> Iterable[list[int]]:
    ordered = sorted(ids)
    for i in range(0, len(ordered), IN_BATCH):
        yield ordered[i : i + IN_BATCH]


def _execute(core: DriveCore, user_id: int, p: Plan, cutoff: float) -> tuple[int, int]:
    """Drop what ``p`` says in one transaction under the account lock, checking each drop
    again; returns (versions dropped, trash entries purged)."""
    with core.mutation() as s:
        user = core.lock_account(s, user_id)
        purged = 0
        for entry in p.purged:
            node = s.get(Node, entry.node_id)
            if node is None or node.user_id != user_id:
                continue
            if node.trashed_at is None or node.trashed_at > cutoff:
                continue  # restored (or trashed again) since the plan
            _purge_subtree(s, node.id)
            purged += 1
        touched: set[int] = set()
        dropped = 0
        for batch in _batches(p.drops):
            current = select(Node.current_version_id).where(Node.current_version_id.in_(batch))
            rows = s.execute(
                select(FileVersion.id, FileVersion.node_id).where(
                    FileVersion.id.in_(batch),
                    FileVersion.user_id == user_id,
                    FileVersion.pinned.is_(False),
                    FileVersion.id.not_in(current),
                )
            ).all()
            ids = [r.id for r in rows]
            if ids:
                s.execute(delete(VersionBlock).where(VersionBlock.version_id.in_(ids)))
                s.execute(delete(FileVersion).where(FileVersion.id.in_(ids)))
            dropped += len(ids)
            touched.update(r.node_id for r in rows)
        system = Principal(user_id, user.login)
        for node_id in sorted(touched):
            node = s.get(Node, node_id)
            parts = core.live_path(s, node) if node is not None else None
            if node is not None and parts is not None:
                core.journal(s, user, system, PRUNED, node, join(parts))
    return dropped, purged


def _purge_subtree(s: Session, node_id: int) -> None:
    """Delete a trashed node and everything below it, versions and properties included (its
    blocks stay for GC)."""
    tree = select(Node.id).where(Node.id == node_id).cte("expired", recursive=True)
    tree = tree.union_all(select(Node.id).where(Node.parent_id == tree.c.id))
    ids = select(tree.c.id)
    versions = select(FileVersion.id).where(FileVersion.node_id.in_(ids))
    s.execute(delete(VersionBlock).where(VersionBlock.version_id.in_(versions)))
    s.execute(delete(FileVersion).where(FileVersion.node_id.in_(ids)))
    s.execute(delete(DeadProperty).where(DeadProperty.node_id.in_(ids)))
    s.execute(delete(Node).where(Node.id == node_id))  # the children cascade


__all__ = [
    "HISTORY_SHARE",
    "MAX_VERSIONS",
    "PRUNED",
    "THINNED",
    "AccountPrune",
    "DroppedVersion",
    "PruneReport",
    "account_retention",
    "prune",
    "set_account_retention",
]
