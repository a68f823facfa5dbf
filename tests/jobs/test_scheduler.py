"""Leased jobs inside one process: the schedule comes from the config, a run happens only
with the lease (once per period across "processes": two apps over one database), a failed
run is counted and releases its lease, and a running holder keeps its lease by renewing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from davdrive import metrics
from davdrive.app import build_app
from davdrive.config import JOB_NAMES, load_config
from davdrive.jobs.leased import LeasedJob
from davdrive.jobs.maintenance import RUNNERS, leased_jobs, periods
from davdrive.service.leases import Leases


@pytest.fixture
def two_apps(tmp_path: Path, db_url: str):
    """Two apps (as two server processes would be) over one database and block store."""
    cfg = load_config(
        data_dir=tmp_path / "data",
        database_url=db_url,
        jobs={"gc": 3600, "prune": 0, "upkeep": 0},
        gc_grace=0,
    )
    a = build_app(cfg, create=True)
    b = build_app(cfg)
    yield a, b
    a.close()
    b.close()


def runs(job: str, outcome: str = "ok") -> float:
    return metrics.JOB_RUNS.labels(job, outcome)._value.get()


def test_the_config_picks_the_jobs_and_their_periods(tmp_path: Path):
    app = build_app(load_config(data_dir=tmp_path / "d", upkeep_interval=42, jobs={"prune": 0}))
    try:
        assert periods(app) == {
            "upkeep": 42.0,
            "gc": 86400.0,
            "prune": 0.0,
            "scrub": 0.0,
            "replicate": 0.0,  # one store: no copies are ever owed
            "archive": 0.0,  # no cold tier (the config's archive section is off)
        }
        assert [j.name for j in leased_jobs(app, "me")] == ["upkeep", "gc"]
    finally:
        app.close()
    stores = [f"file://{tmp_path / 'a'}", f"file://{tmp_path / 'b'}"]
    app = build_app(load_config(data_dir=tmp_path / "r", blocks_url=stores))
    try:
        assert periods(app)["replicate"] == 60.0
        assert "replicate" in [j.name for j in leased_jobs(app, "me")]
    finally:
        app.close()
    assert set(RUNNERS) == set(JOB_NAMES)  # every job the config accepts has a runner
    with pytest.raises(ValueError, match="unknown jobs"):
        load_config(jobs={"backup": 60})
    with pytest.raises(ValueError, match="jobs.gc"):
        load_config(jobs={"gc": -1})


def test_each_period_runs_once_across_processes(two_apps):
    a, b = two_apps
    alice = a.accounts.add_user("alice", "alice-pw")
    a.drive.store.backend.put("ee" * 32, b"an orphan")  # something for gc to collect
    (gc_a,) = leased_jobs(a, "process-a")
    (gc_b,) = leased_jobs(b, "process-b")
    before = runs("gc")
    assert gc_a.tick() is True
    assert "ee" * 32 not in {o.key for o in a.store.backend.list()}, "gc ran (grace 0)"
    assert gc_b.tick() is False and gc_a.tick() is False  # this period's run happened
    assert runs("gc") == before + 1
    state = Leases(a.db).state("gc")
    assert state.holder is None and state.last_run_at is not None  # released after the run
    assert a.drive.list_dir(alice, "/") == []


def test_a_failed_run_is_counted_and_releases_its_lease(two_apps):
    a, _b = two_apps
    leases = Leases(a.db)

    def broken() -> None:
        raise RuntimeError("boom")

    job = LeasedJob("gc", broken, leases=leases, holder="a", period=0, ttl=60)
    failed = runs("gc", "failed")
    assert job.tick() is True
    assert runs("gc", "failed") == failed + 1
    assert leases.state("gc").holder is None
    assert job.tick() is True  # period 0: the next tick may run again


def test_a_running_holder_renews_and_keeps_its_lease(two_apps):
    a, b = two_apps
    running, finish = threading.Event(), threading.Event()

    def slow() -> None:
        running.set()
        assert finish.wait(30)

    ttl = 0.6
    job_a = LeasedJob("gc", slow, leases=Leases(a.db), holder="a", period=0, ttl=ttl)
    job_b = LeasedJob("gc", lambda: None, leases=Leases(b.db), holder="b", period=0, ttl=ttl)
    t = threading.Thread(target=job_a.tick)
    t.start()
    assert running.wait(10)
    time.sleep(3 * ttl)  # well past the first expiry: the renewals kept it
    assert job_b.tick() is False
    assert Leases(a.db).state("gc").holder == "a"
    finish.set()
    t.join(10)
    assert job_b.tick() is True  # released when the run ended
