"""Two real ``davdrive serve`` processes on one PostgreSQL database with short job periods:
each job runs once per period (never twice, never skipped), and when the process running a
job is killed (-9) mid-run, the other takes the job over once the dead one's lease expires —
not before, while the live holder was renewing it."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import psycopg

from tests.live import LiveServer, run_cli

PERIOD = 2.0  # seconds between runs of every job
TTL = 2.0  # job_lease_ttl
STARTED = re.compile(r"job (\w+) started at ([\d.]+) by (\S+)")


def starts(servers: list[LiveServer]) -> list[tuple[float, str, str]]:
    """(time, job, holder) of every run either process logged, in time order."""
    found = [(float(m[2]), m[1], m[3]) for srv in servers for m in STARTED.finditer(srv.stderr())]
    return sorted(found)


def holder_pid(holder: str) -> int:
    return int(holder.split(":")[-2])


def wait_for(predicate, timeout: float, what: str):  # noqa: ANN001, ANN201 - a test helper
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_servers_run_each_job_once_per_period_and_take_over_from_a_dead_one(
    live_server_factory, pg_url: str, tmp_path: Path
):
    cfg = tmp_path / "jobs.yaml"
    cfg.write_text(
        f'database_url: "{pg_url}"\n'
        f"jobs: {{upkeep: {PERIOD}, gc: {PERIOD}, prune: {PERIOD}, scrub: 0}}\n"
        f"job_lease_ttl: {TTL}\n"
    )
    data = tmp_path / "shared" / "data"
    run_cli(data, "--config", str(cfg), "init")
    servers = [
        live_server_factory(create_users=False, data_dir=data, extra_args=("--config", str(cfg)))
        for _ in range(2)
    ]
    time.sleep(4 * PERIOD)

    # -- steady state: per job, one run per period across both processes --------------------
    seen = starts(servers)
    pids = {srv.pid for srv in servers}
    for job in ("upkeep", "gc", "prune"):
        times = [t for t, name, _h in seen if name == job]
        assert len(times) >= 3, f"{job}: {len(times)} runs"
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert min(gaps) >= PERIOD, f"{job} ran twice in one period: {gaps}"
        assert max(gaps) < 2 * PERIOD, f"{job} skipped a period: {gaps}"
        assert {holder_pid(h) for _t, name, h in seen if name == job} <= pids

    # -- a holder killed mid-run ---------------------------------------------------------------
    base = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(base) as blocker:
        # Hold gc's first statement back: the next gc run blocks inside the job, lease held.
        blocker.execute("LOCK TABLE block IN ACCESS EXCLUSIVE MODE")
        t_lock = time.time()
        started_at, _job, holder = wait_for(
            lambda: next((s for s in starts(servers) if s[1] == "gc" and s[0] >= t_lock), None),
            4 * PERIOD,
            "a gc run after the lock",
        )
        time.sleep(1.5 * TTL)  # past the lease's first expiry: the live holder renews it
        assert [s for s in starts(servers) if s[1] == "gc" and s[0] > started_at] == []
        victim = next(srv for srv in servers if srv.pid == holder_pid(holder))
        survivor = next(srv for srv in servers if srv is not victim)
        os.kill(victim.pid, signal.SIGKILL)
        victim.proc.wait(10)
        with psycopg.connect(base) as conn:
            expires_at = conn.execute(
                "SELECT expires_at FROM job_lease WHERE name = 'gc'"
            ).fetchone()[0]
        blocker.rollback()
    taken = wait_for(
        lambda: next((s for s in starts([survivor]) if s[1] == "gc" and s[0] > started_at), None),
        TTL + 4 * PERIOD,
        "the survivor to take gc over",
    )
    assert taken[0] >= expires_at, "taken over before the dead holder's lease expired"
    assert holder_pid(taken[2]) == survivor.pid
