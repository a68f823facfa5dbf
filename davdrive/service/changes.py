"""The change feed over the journal: cursor replay (offline queue) and long-poll waits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from davdrive.errors import BadRequest
from davdrive.metadata.schema import Change, User

if TYPE_CHECKING:
    from davdrive.service.drive import Drive
    from davdrive.service.types import Principal

MAX_LIMIT = 2000


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
        owner = self.drive._authorize(p)
        with self.drive.db.read() as s:
            return str(s.scalar(select(User.change_seq).where(User.id == owner)) or 0)

    def since(
        self, p: Principal, cursor: str | int, *, limit: int = 500
    ) -> tuple[list[ChangeInfo], str, bool]:
        """Every change after ``cursor`` in commit order: (changes, next cursor, has_more)."""
        owner = self.drive._authorize(p)
        after = parse_cursor(cursor)
        limit = max(1, min(int(limit), MAX_LIMIT))
        with self.drive.db.read() as s:
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
                id=r.seq, kind=r.kind, path=r.path, from_path=r.from_path,
                rev=str(r.version_id) if r.version_id is not None else None,
                is_dir=r.is_dir, at=r.at, device=r.device_id,
            )
            for r in rows
        ]
        return changes, str(rows[-1].seq if rows else after), more

    def wait(self, p: Principal, cursor: str | int, timeout: float) -> bool:
        """True as soon as the journal passes ``cursor`` (checked in SQL first, then on the
        bus); False at the timeout."""
        owner = self.drive._authorize(p)
        after = parse_cursor(cursor)
        with self.drive.db.read() as s:
            if (s.scalar(select(User.change_seq).where(User.id == owner)) or 0) > after:
                return True
        if self.drive.bus.wait(owner, after, timeout):
            return True
        # A notification from another process may have been missed: the journal decides.
        with self.drive.db.read() as s:
            return (s.scalar(select(User.change_seq).where(User.id == owner)) or 0) > after
