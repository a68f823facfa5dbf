"""The change feed over the journal: cursor replay (offline queue) and long-poll waits."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select, update

from davdrive.errors import BadRequest, CursorExpired
from davdrive.metadata.schema import Change, Device, User

if TYPE_CHECKING:
    from davdrive.notify.base import Subscription
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

    def watch(
        self, p: Principal, cursor: str | int, on_change: Callable[[bool], None]
    ) -> Watch | None:
        """The non-blocking form of ``wait``: None when the journal already passed ``cursor``;
        else a ``Watch`` whose ``on_change(True)`` runs (once, on the thread that delivers the
        notification, which must not be kept long) when the bus announces a change past it,
        ``on_change(False)`` when the bus closes. Whether a wake-up stands is then for
        ``Watch.confirmed`` (or ``confirm_many`` for a batch) to say."""
        owner = self.drive.core.authorize(p)
        after = parse_cursor(cursor)
        if self._head(owner) > after:
            return None
        sub = self.drive.bus.subscribe(owner, after, on_change)
        if sub is None and self._head(owner) > after:
            return None  # announced between the query and the subscription
        # sub None otherwise: the bus is closing, no wake-up will come (``Watch.live``).
        return Watch(self, owner, after, sub)

    def confirm_many(self, watches: Sequence[Watch]) -> list[bool]:
        """For woken watches: whether the journal really passed each one's cursor (no query
        with an authoritative bus; else one query for all their accounts)."""
        if self.drive.bus.authoritative:
            return [True] * len(watches)
        heads = self.heads(sorted({w.account_id for w in watches}))
        return [heads.get(w.account_id, 0) > w.after for w in watches]

    def _head(self, owner: int) -> int:
        with self.drive.db.read() as s:
            return s.scalar(select(User.change_seq).where(User.id == owner)) or 0

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


class Watch:
    """A parked long-poll's subscription (``Changes.watch``)."""

    __slots__ = ("account_id", "after", "feed", "sub")

    def __init__(
        self, feed: Changes, account_id: int, after: int, sub: Subscription | None
    ) -> None:
        self.feed = feed
        self.account_id = account_id
        self.after = after
        self.sub = sub

    @property
    def live(self) -> bool:
        """False when no wake-up can come (the bus was closing): answer at once."""
        return self.sub is not None

    def cancel(self) -> None:
        """Stop listening (idempotent; harmless after a delivery)."""
        sub, self.sub = self.sub, None
        if sub is not None:
            self.feed.drive.bus.unsubscribe(sub)

    def confirmed(self) -> bool:
        """What the journal says now: has it passed the cursor? (Timeouts, closing, and
        wake-ups on a bus that is not authoritative ask this.)"""
        return self.feed._head(self.account_id) > self.after
