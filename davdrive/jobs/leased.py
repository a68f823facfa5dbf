"""One scheduled job under a database lease (``service.leases``): the scheduler calls ``tick``
often; a tick runs the job only when this process takes the lease, that is when nobody else
holds it and the job's period has passed since the last run started in any process.

While the job runs, a thread renews the lease every third of its TTL; a process that crashes
stops renewing, and its lease expires. A run that fails still counts for its period (the next
period retries): a job that always fails must not run in a loop. Each run is logged
(``job <name> started at <time>``) and counted in ``davdrive.metrics``
(``davdrive_job_runs_total{job,outcome}``, ``davdrive_job_duration_seconds{job}``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from davdrive import metrics
from davdrive.service.leases import Leases

log = logging.getLogger("davdrive.jobs")


class LeasedJob:
    """``run()`` under the lease ``name``, at most once per ``period`` across processes."""

    def __init__(
        self,
        name: str,
        run: Callable[[], Any],
        *,
        leases: Leases,
        holder: str,
        period: float,
        ttl: float,
    ) -> None:
        self.name = name
        self._run = run
        self._leases = leases
        self.holder = holder
        self.period = period
        self.ttl = ttl

    @property
    def tick_interval(self) -> float:
        """How often to try: a quarter of the period (so a run starts at most that late),
        between half a second and a minute."""
        return max(0.5, min(self.period / 4, 60.0))

    def tick(self) -> bool:
        """Run the job if this process takes the lease; whether it ran."""
        now = time.time()
        try:
            if not self._leases.acquire(
                self.name, self.holder, ttl=self.ttl, period=self.period, now=now
            ):
                return False
        except Exception:  # noqa: BLE001 - the database may be away; the next tick retries
            log.exception("job %s: could not take its lease", self.name)
            return False
        log.info("job %s started at %.3f by %s", self.name, now, self.holder)
        stop = threading.Event()
        renewer = threading.Thread(
            target=self._renew, args=(stop,), name=f"lease-{self.name}", daemon=True
        )
        renewer.start()
        started = time.perf_counter()
        outcome = "ok"
        try:
            result = self._run()
            log.info("job %s finished: %s", self.name, _summary(result))
        except Exception:  # noqa: BLE001 - a failed run must not stop the schedule
            outcome = "failed"
            log.exception("job %s failed; the next period retries", self.name)
        finally:
            stop.set()
            renewer.join()
            metrics.JOB_DURATION.labels(self.name).observe(time.perf_counter() - started)
            metrics.JOB_RUNS.labels(self.name, outcome).inc()
            try:
                self._leases.release(self.name, self.holder)
            except Exception:  # noqa: BLE001 - it expires anyway
                log.warning("job %s: could not release its lease; it expires", self.name)
        return True

    def _renew(self, stop: threading.Event) -> None:
        while not stop.wait(self.ttl / 3):
            try:
                if not self._leases.renew(self.name, self.holder, ttl=self.ttl):
                    log.warning("job %s: its lease was taken over (it ran past it)", self.name)
                    return
            except Exception:  # noqa: BLE001 - try again at the next renewal
                log.warning("job %s: could not renew its lease", self.name, exc_info=True)


def _summary(result: Any) -> str:
    summary = getattr(result, "summary", None)
    return summary() if callable(summary) else str(result)


__all__ = ["LeasedJob"]
