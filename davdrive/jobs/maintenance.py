"""Background jobs run by APScheduler inside ``davdrive serve``: upkeep, gc, prune, scrub,
replicate and archive, each on its own schedule (``jobs`` in the config, seconds between runs;
0 turns a job off) and each under a lease in the database (``jobs.leased``), so that with
several server processes each period's run happens once. APScheduler runs them on its own
threads, never on a request worker.

- ``upkeep``: expired uploads, locks, sessions, journal rows (``jobs.upkeep``);
- ``gc``: unused block rows and orphan objects older than ``gc_grace`` (``service.gc``);
- ``prune``: version retention and trash expiry (``service.retention.prune``);
- ``scrub``: verify (and, replicated, repair) every stored block (``service.scrub``); off by
  default (it reads everything; set ``scrub.rate`` to bound it);
- ``replicate``: write the copies a replicated block store owes a store that was down
  (``service.scrub.drain_replication``; nothing to do when the blocks are not replicated);
- ``archive``: move blocks only old versions use to the cold tier (``service.archive``;
  nothing to do, and not scheduled, when the config's ``archive`` section is off).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.background import BackgroundScheduler

from davdrive.config import DEFAULT_JOBS
from davdrive.jobs.leased import LeasedJob
from davdrive.jobs.upkeep import UpkeepReport, run_upkeep
from davdrive.service.gc import run_gc
from davdrive.service.leases import Leases, holder_id

if TYPE_CHECKING:
    from davdrive.app import App

log = logging.getLogger("davdrive.jobs")


def run_prune(app: App) -> Any:
    """The ``prune`` job: retention now (``service.retention.prune``)."""
    from davdrive.service.retention import prune

    return prune(app)


def run_scrub(app: App) -> Any:
    """The ``scrub`` job: verify every block at the configured rate (``service.scrub``)."""
    from davdrive.service.scrub import scrub

    return scrub(app.drive, rate=app.config.scrub.get("rate"))


def run_replicate(app: App) -> Any:
    """The ``replicate`` job: drain the replication queue (``service.scrub``)."""
    from davdrive.service.scrub import drain_replication

    return drain_replication(app.drive)


def run_archive(app: App) -> Any:
    """The ``archive`` job: the cold tier's rule now (``service.archive``); a no-op when the
    config's ``archive`` section is off."""
    from davdrive.service.archive import run_archive as archive

    return archive(app.drive, after_days=app.config.archive.after_days)


RUNNERS: dict[str, Callable[[App], Any]] = {
    "upkeep": run_upkeep,
    "gc": lambda app: run_gc(app.drive, grace=app.config.gc_grace),
    "prune": run_prune,
    "scrub": run_scrub,
    "replicate": run_replicate,
    "archive": run_archive,
}


def periods(app: App) -> dict[str, float]:
    """Seconds between runs of each job (0: off): the config's ``jobs`` over the defaults."""
    merged = {"upkeep": float(app.config.upkeep_interval), **DEFAULT_JOBS}
    merged.update(app.config.jobs)
    if isinstance(app.config.blocks_url, str):  # one store: no copies are ever owed
        merged["replicate"] = 0.0
    if not app.config.archive.enabled:  # no cold tier: nothing to move
        merged["archive"] = 0.0
    return merged


def leased_jobs(app: App, holder: str | None = None) -> list[LeasedJob]:
    """The jobs that are on, each under its lease, for this process (``holder``)."""
    leases = Leases(app.db)
    holder = holder or holder_id()
    return [
        LeasedJob(
            name,
            lambda run=RUNNERS[name]: run(app),
            leases=leases,
            holder=holder,
            period=period,
            ttl=app.config.job_lease_ttl,
        )
        for name, period in periods(app).items()
        if period > 0
    ]


def start_scheduler(app: App) -> BackgroundScheduler:
    """Start every job's schedule (a first try right away); ``shutdown()`` it on exit."""
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # not a line per tick
    scheduler = BackgroundScheduler(daemon=True, timezone="UTC")
    jobs = leased_jobs(app)
    for job in jobs:
        scheduler.add_job(
            job.tick,
            "interval",
            seconds=job.tick_interval,
            next_run_time=datetime.now(UTC),
            id=job.name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
    scheduler.start()
    if jobs:
        log.info(
            "jobs scheduled (holder %s): %s",
            jobs[0].holder,
            ", ".join(f"{j.name} every {j.period:g}s" for j in jobs),
        )
    return scheduler


__all__ = ["RUNNERS", "UpkeepReport", "leased_jobs", "periods", "run_upkeep", "start_scheduler"]
