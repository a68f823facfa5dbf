"""Upkeep: stale uploads expire (staged blocks reclaimed), expired locks are purged, the
journal is pruned past its retention — as one pass, and on the APScheduler schedule."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from sqlalchemy import update

from davdrive.app import build_app
from davdrive.config import load_config
from davdrive.errors import CursorExpired, NotAuthenticated, NotFound
from davdrive.jobs.maintenance import UpkeepReport, run_upkeep, start_scheduler
from davdrive.metadata.schema import UploadSession
from davdrive.service.changes import Changes
from davdrive.service.locks import LockRepo
from davdrive.service.sessions import DEFAULT_IDLE, Sessions
from davdrive.service.uploads import ResumableUploads

MiB = 1 << 20
DAY = 24 * 3600


@pytest.fixture
def app(tmp_path: Path, db_url: str):
    a = build_app(
        load_config(data_dir=tmp_path / "data", database_url=db_url, journal_retention_days=1)
    )
    yield a
    a.close()


def stored_objects(app) -> set[str]:
    return {o.key for o in app.store.backend.list()}


def new_lock(timeout: float) -> dict:
    return {"type": "write", "scope": "exclusive", "depth": "0", "owner": b"", "timeout": timeout,
            "principal": "alice"}  # fmt: skip


def test_one_pass_expires_purges_and_prunes(app):
    alice = app.accounts.add_user("alice", "alice-pw")
    before = stored_objects(app)
    uploads = ResumableUploads(app.drive)
    sid = uploads.create(alice, "/paused.bin", 8 * MiB).id
    body = iter([os.urandom(5 * MiB), b""])
    uploads.append(alice, sid, 0, lambda _n: next(body), 5 * MiB)
    staged = stored_objects(app) - before
    assert staged, "the paused upload staged blocks"
    locks = LockRepo(app.db)
    minute = locks.create("/dav/alice/a", new_lock(timeout=60))["token"]
    hour = locks.create("/dav/alice/b", new_lock(timeout=3600))["token"]
    feed = Changes(app.drive)
    old_cursor = feed.latest(alice)
    for i in range(3):
        app.drive.write_file(alice, f"/f{i}", b"x" * i)

    assert run_upkeep(app) == UpkeepReport(0, 0, 0)  # nothing is stale yet
    assert locks.get(minute) is not None and locks.get(hour) is not None
    later = time.time() + 2 * DAY  # the session's 24 h and the journal's 1 day have passed
    report = run_upkeep(app, now=later)
    assert report.uploads_expired == 1
    assert report.changes_pruned >= 3  # upload_pending + three writes, newest row kept
    assert report.locks_purged == 2
    assert stored_objects(app) & staged == set(), "staged blocks were reclaimed"
    with pytest.raises(NotFound):
        uploads.get(alice, sid)
    with pytest.raises(CursorExpired):
        feed.since(alice, old_cursor)
    assert app.drive.read_bytes(alice, "/f2") == b"xx"  # files are untouched
    assert locks.get(minute) is None and locks.get(hour) is None
    assert run_upkeep(app, now=later) == UpkeepReport(0, 0, 0)  # idempotent


def test_the_schedule_runs_upkeep_in_the_background(tmp_path: Path):
    app = build_app(load_config(data_dir=tmp_path / "data", upkeep_interval=1))
    try:
        alice = app.accounts.add_user("alice", "alice-pw")
        sid = ResumableUploads(app.drive).create(alice, "/gone.bin", 10).id
        with app.db.write() as s:  # abandoned long ago
            s.execute(update(UploadSession).values(expires_at=1.0))
        scheduler = start_scheduler(app)
        try:
            deadline = time.monotonic() + 10
            while not session_gone(app, sid):
                assert time.monotonic() < deadline, "scheduled upkeep did not expire the session"
                time.sleep(0.1)
        finally:
            scheduler.shutdown(wait=True)
    finally:
        app.close()


def session_gone(app, sid: str) -> bool:
    with app.db.read() as s:
        return s.get(UploadSession, sid) is None


def test_upkeep_ends_idle_web_sessions(app):
    app.accounts.add_user("alice", "alice-pw")
    session = Sessions(app.accounts).login("alice", "alice-pw", user_agent="Mozilla/5.0 Firefox")
    assert run_upkeep(app).sessions_ended == 0
    later = time.time() + DEFAULT_IDLE + 60
    assert run_upkeep(app, now=later).sessions_ended == 1
    assert [d for d in app.accounts.list_devices("alice") if d.kind == "browser"] == []
    with pytest.raises(NotAuthenticated):  # its cookie no longer opens anything
        Sessions(app.accounts).resolve(session.token)
