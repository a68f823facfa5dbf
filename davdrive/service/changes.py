"""The change feed over the journal: cursor replay (offline queue) and long-poll waits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select, update

from davdrive.errors import BadRequest, CursorExpired
from davdrive.metadata.schema import Change, Device, User

if TYPE_CHECKING:
    from davdrive.service.drive import Drive
    from davdrive.service.types import Principal

MAX_LIMIT = 2000
RETENTION = 90 * 24 * 3600.0  # default journal retention (seconds)


@dataclass(frozen=True)
class ChangeInfo:
    id: int
    kind: str
    path: str
    from_path: str | None
    rev: str | None
    is_dir: bool
    at: float
    device: int | None


def parse_cursor(cursor: str | int) -> int:
    """Cursors are opaque to clients; today they are the account's journal sequence."""
    try:
        value = int(cursor)
    except (TypeError, ValueError):
        raise BadRequest("invalid cursor") from None
    if value < 0:
        raise BadRequest("invalid cursor")
    return value


class Changes:
    """Read side of the journal for one drive."""

    def __init__(self, drive: Drive) -> None:
        self.drive = drive

    def latest(self, p: Principal) -> str:
        """The cursor that stands for "now" (no change after it yet)."""
        owner = self.drive.core.authorize(p)
        with self.drive.db.read() as s:
            return str(s.scalar(select(User.change_seq).where(User.id == owner)) or 0)

    def heads(self, account_ids: Sequence[int]) -> dict[int, int]:
        """The journal head (latest seq) of each account that exists (the notify process asks
        this for the accounts whose polls it holds; no principal: it serves them all)."""
        with self.drive.db.read() as s:
            rows = s.execute(
                select(User.id, User.change_seq).where(User.id.in_(list(account_ids)))
            ).all()
        return {r.id: r.change_seq for r in rows}

    def since(
        self, p: Principal, cursor: str | int, *, limit: int = 500
    ) -> tuple[list[ChangeInfo], str, bool]:
        """Every change after ``cursor`` in commit order: (changes, next cursor, has_more)."""
        owner = self.drive.core.authorize(p)
        after = parse_cursor(cursor)
        limit = max(1, min(int(limit), MAX_LIMIT))
        with self.drive.db.read() as s:
            self._check_cursor(s, owner, after)
            rows = s.scalars(
                select(Change)
                .where(Change.user_id == owner, Change.seq > after)
                .order_by(Change.seq)
                .limit(limit + 1)
            ).all()
        more = len(rows) > limit
        rows = rows[:limit]
        changes = [
            ChangeInfo(
                id=r.seq,
                kind=r.kind,
                path=r.path,
                from_path=r.from_path,
                rev=str(r.version_id) if r.version_id is not None else None,
                is_dir=r.is_dir,
                at=r.at,
                device=r.device_id,
            )
            for r in rows
        ]
        return changes, str(rows[-1].seq if rows else after), more

    def wait(self, p: Principal, cursor: str | int, timeout: float) -> bool:
        """True as soon as the journal passes ``cursor`` (checked in SQL first, then on the
        bus); False at the timeout."""
        owner = self.drive.core.authorize(p)
        after = parse_cursor(cursor)
        with self.drive.db.read() as s:
            if (s.scalar(select(User.change_seq).where(User.id == owner)) or 0) > after:
                return True
        bus = self.drive.bus
        if bus.wait(owner, after, timeout) and bus.authoritative:
            return True
        # Otherwise the journal decides: a notification from another process may have been
        # missed (timeout) or may not be ours (a stray NOTIFY on the channel).
        with self.drive.db.read() as s:
            return (s.scalar(select(User.change_seq).where(User.id == owner)) or 0) > after

    def remember(self, p: Principal, cursor: str) -> None:
        """Keep a device's last cursor (the offline queue resumes from it)."""
        if p.device_id is None:
            return
        with self.drive.db.write() as s:
            s.execute(
                update(Device)
                .where(Device.id == p.device_id, Device.user_id == p.user_id)
                .values(last_cursor=parse_cursor(cursor))
            )

    @staticmethod
    def _check_cursor(s, owner: int, after: int) -> None:  # noqa: ANN001
        """``CursorExpired`` when changes after ``after`` were pruned or never existed here."""
        seq = s.scalar(select(User.change_seq).where(User.id == owner)) or 0
        first = s.scalar(select(func.min(Change.seq)).where(Change.user_id == owner))
        floor = (first - 1) if first is not None else seq
        if after < floor or after > seq:
            raise CursorExpired(
                "the cursor is older than the journal's retention or unknown here; list the "
                "folder again and continue from /changes/latest",
                reset=True,
            )

    def prune(self, older_than: float = RETENTION, now: float | None = None) -> int:
        """Delete journal rows older than ``older_than`` seconds; returns how many.

        The newest row of each account is kept, so the retention floor stays known.
        """
        import time

        cutoff = (time.time() if now is None else now) - older_than
        with self.drive.db.write() as s:
            newest = (
                select(Change.user_id, func.max(Change.seq).label("top"))
                .group_by(Change.user_id)
                .subquery()
            )
            keep = select(newest.c.top).where(newest.c.user_id == Change.user_id)
            return s.execute(
                delete(Change).where(Change.at < cutoff, Change.seq < keep.scalar_subquery())
            ).rowcount
