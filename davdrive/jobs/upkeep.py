"""Routine upkeep: expire stale resumable and chunked uploads (reclaiming their staged blocks)
and blocks uploaded through the block API that no commit used within their grace period
(``staged_block_grace``), end idle web app sessions, purge expired WebDAV locks, and prune the
change journal past its retention.

Each task is idempotent (they delete rows by condition); the scheduler runs the pass under a
lease like every job (``davdrive.jobs.maintenance``), so with several processes it runs once
per period.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from davdrive.service.block_api import STAGED_GRACE, BlockApi
from davdrive.service.changes import Changes
from davdrive.service.chunked_uploads import ChunkedUploads
from davdrive.service.locks import LockRepo
from davdrive.service.sessions import DEFAULT_IDLE, Sessions
from davdrive.service.uploads import ResumableUploads

if TYPE_CHECKING:
    from davdrive.app import App

log = logging.getLogger("davdrive.jobs")
DAY = 24 * 3600.0


@dataclass(frozen=True)
class UpkeepReport:
    uploads_expired: int  # resumable (tus) and chunked (Nextcloud) uploads
    locks_purged: int
    changes_pruned: int
    sessions_ended: int = 0
    blocks_expired: int = 0  # staged blocks of delta sync no commit used in time


def run_upkeep(app: App, now: float | None = None) -> UpkeepReport:
    """One pass of every upkeep task; returns what each removed."""
    now = time.time() if now is None else now
    report = UpkeepReport(
        uploads_expired=ResumableUploads(app.drive).expire(now)
        + ChunkedUploads(app.drive).expire(now),
        locks_purged=LockRepo(app.db).cleanup(now),
        changes_pruned=Changes(app.drive).prune(
            older_than=app.config.journal_retention_days * DAY, now=now
        ),
        sessions_ended=Sessions(
            app.accounts,
            idle=getattr(app.config, "session_idle_minutes", DEFAULT_IDLE / 60) * 60,
            clock=lambda: now,
        ).purge_expired(),
        blocks_expired=BlockApi(
            app.drive, grace=getattr(app.config, "staged_block_grace", STAGED_GRACE)
        ).expire(now),
    )
    if any(
        (
            report.uploads_expired,
            report.locks_purged,
            report.changes_pruned,
            report.sessions_ended,
            report.blocks_expired,
        )
    ):
        log.info("upkeep: %s", report)
    return report


__all__ = ["UpkeepReport", "run_upkeep"]
