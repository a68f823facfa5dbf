"""Garbage collection: unused block rows and orphan objects go after the grace period, online,
and nothing a version references is ever swept — also when a writer deduplicates against a
block while the sweep runs (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import threading
import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, update

from davdrive.errors import Conflict
from davdrive.metadata.schema import Block, FileVersion, VersionBlock
from davdrive.service.access import Perm
from davdrive.service.gc import execute_gc, plan_gc, run_gc
from davdrive.service.uploads import ResumableUploads

KiB = 1 << 10
DAY = 24 * 3600.0
LATER = 2 * DAY  # past the default grace


_BODIES: dict[int, bytes] = {}


def body(seed: int) -> bytes:
    """Content larger than inline_max (one block with an object), the same for a seed."""
    if seed not in _BODIES:
        _BODIES[seed] = os.urandom(80 * KiB)
    return _BODIES[seed]


def objects(drive) -> set[str]:
    return {o.key for o in drive.store.backend.list()}


def block_of(drive, user_id: int, content_hash_of: bytes) -> Block | None:
    """The block row holding ``content_hash_of`` (a single-block body) for the account."""
    from davdrive.blockstore.blockformat import block_hash

    with drive.db.read() as s:
        return s.scalar(
            select(Block).where(Block.user_id == user_id, Block.hash == block_hash(content_hash_of))
        )


def drop_old_versions(drive, p, path: str) -> None:
    """What retention does: delete every version of ``path`` but the current one."""
    old = [v.id for v in drive.list_versions(p, path) if not v.is_current]
    with drive.db.write() as s:
        s.execute(delete(FileVersion).where(FileVersion.id.in_(old)))


def age_blocks(drive) -> None:
    """Make every block row look untouched for long (as after the grace period)."""
    with drive.db.write() as s:
        s.execute(update(Block).values(last_access=1.0))


def test_unused_rows_and_orphans_go_only_after_the_grace_period(drive, alice):
    x, y = body(1), body(2)
    drive.write_file(alice, "/a.bin", x)
    drive.write_file(alice, "/a.bin", y)
    drop_old_versions(drive, alice, "/a.bin")
    x_row = block_of(drive, alice.user_id, x)
    assert x_row is not None
    drive.store.backend.put("ab" * 32, b"left by a crashed upload")

    assert run_gc(drive).summary().startswith("gc removed: 0 unused block rows, 0 objects")
    assert {x_row.object_key, "ab" * 32} <= objects(drive)  # both younger than a day

    dry = run_gc(drive, dry_run=True, now=time.time() + LATER)
    assert (dry.rows_removed, dry.objects_removed, dry.orphans_removed) == (1, 2, 1)
    assert {x_row.object_key, "ab" * 32} <= objects(drive), "a dry run deletes nothing"

    report = run_gc(drive, now=time.time() + LATER)
    assert (report.rows_removed, report.objects_removed, report.orphans_removed) == (1, 2, 1)
    assert report.bytes_freed == x_row.stored_size + len(b"left by a crashed upload")
    assert x_row.object_key not in objects(drive) and "ab" * 32 not in objects(drive)
    assert block_of(drive, alice.user_id, x) is None
    assert drive.read_bytes(alice, "/a.bin") == y
    assert run_gc(drive, now=time.time() + LATER).rows_removed == 0  # idempotent
    assert drive.fsck().ok


def test_inline_rows_go_too(drive, alice):
    drive.write_file(alice, "/s.txt", b"small one")
    drive.write_file(alice, "/s.txt", b"small two")
    drop_old_versions(drive, alice, "/s.txt")
    report = run_gc(drive, now=time.time() + LATER)
    assert (report.rows_removed, report.objects_removed) == (1, 0)
    assert block_of(drive, alice.user_id, b"small one") is None
    assert drive.read_bytes(alice, "/s.txt") == b"small two"


def test_an_inline_dedup_hit_touches_the_row(drive, alice):
    drive.write_file(alice, "/s.txt", b"small one")
    drive.write_file(alice, "/s.txt", b"small two")
    drop_old_versions(drive, alice, "/s.txt")
    age_blocks(drive)
    before = time.time()
    drive.write_file(alice, "/t.txt", b"small one")  # adopts the unused inline row
    row = block_of(drive, alice.user_id, b"small one")
    assert row is not None and row.last_access >= before
    report = run_gc(drive, grace=0)
    assert report.rows_removed == 0 and drive.read_bytes(alice, "/t.txt") == b"small one"


def test_trash_and_unfinished_uploads_keep_their_blocks(drive, alice):
    x, y = body(3), body(4)
    drive.write_file(alice, "/trashed.bin", x)
    drive.delete(alice, "/trashed.bin")
    drive.write_file(alice, "/paused-src.bin", y)
    drive.write_file(alice, "/paused-src.bin", b"other")
    drop_old_versions(drive, alice, "/paused-src.bin")  # y's row is unused by versions ...
    uploads = ResumableUploads(drive)
    sid = uploads.create(alice, "/paused.bin", len(y) + 10).id
    chunks = iter([y, b""])
    uploads.append(alice, sid, 0, lambda _n: next(chunks), len(y))  # ... but an upload holds it
    age_blocks(drive)

    report = run_gc(drive, now=time.time() + LATER)
    assert report.rows_removed == 0
    assert block_of(drive, alice.user_id, x) is not None
    assert block_of(drive, alice.user_id, y) is not None
    drive.restore_trash(alice, drive.list_trash(alice)[0].id)
    assert drive.read_bytes(alice, "/trashed.bin") == x


def test_a_dedup_hit_between_mark_and_sweep_keeps_the_block(drive, alice):
    x, z = body(5), body(15)
    drive.write_file(alice, "/a.bin", z)
    drive.write_file(alice, "/a.bin", x)
    drive.write_file(alice, "/a.bin", b"newer")
    drop_old_versions(drive, alice, "/a.bin")
    age_blocks(drive)
    plan = plan_gc(drive, grace=0)
    z_key = block_of(drive, alice.user_id, z).object_key
    assert {b.object_key for b in plan.blocks} == {
        block_of(drive, alice.user_id, x).object_key,
        z_key,
    }

    drive.write_file(alice, "/b.bin", x)  # deduplicated: commits a reference to the row

    report = execute_gc(drive, plan)
    # the row the writer reused stays; the other unused one goes (in the same batch)
    assert (report.rows_removed, report.rows_kept, report.objects_removed) == (1, 1, 1)
    assert z_key not in objects(drive)
    assert drive.read_bytes(alice, "/b.bin") == x
    row = block_of(drive, alice.user_id, x)
    assert row is not None and row.object_key in objects(drive)
    assert row.last_access > plan.cutoff, "the commit touched the row it reused"


def test_a_sweep_during_a_dedup_commit_never_takes_the_block(drive, alice):
    """The writer's commit transaction holds the reused row while the sweep runs: on
    PostgreSQL the sweep skips the locked row, on SQLite it waits for the commit; either way
    the block stays."""
    x, z = body(6), body(16)
    drive.write_file(alice, "/a.bin", z)
    drive.write_file(alice, "/a.bin", x)
    drive.write_file(alice, "/a.bin", b"newer")
    drop_old_versions(drive, alice, "/a.bin")
    age_blocks(drive)
    plan = plan_gc(drive, grace=0)
    assert len(plan.blocks) == 2
    in_commit, release = threading.Event(), threading.Event()
    sweeping = threading.Event()
    results: dict[str, object] = {}

    def hold(s, _acct, _info) -> None:  # inside the commit, after the rows are written
        if not drive.db.is_sqlite:
            results["pid"] = s.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()
        in_commit.set()
        assert release.wait(20)

    def writer() -> None:
        ingest = drive.store.ingest(
            drive.account_keys(alice.user_id),
            known=lambda h: drive.core.has_block(alice.user_id, h),
        )
        ingest.write(x)
        result = ingest.finish()
        assert not result.blocks[0].new  # a dedup hit
        t = drive.core.target(alice, "/b.bin", Perm.NONE)
        results["info"] = drive.content.commit_version(
            alice, t, result, mtime=None, expected_etag=None, create_only=False, on_commit=hold
        )

    original_write = drive.db.write

    def watched_write():
        if threading.current_thread().name == "gc":
            sweeping.set()
        return original_write()

    drive.db.write = watched_write
    w = threading.Thread(target=writer, name="writer")
    w.start()
    assert in_commit.wait(20)
    g = threading.Thread(
        target=lambda: results.setdefault("gc", execute_gc(drive, plan)), name="gc"
    )
    g.start()
    assert sweeping.wait(20)
    if drive.db.is_sqlite:
        g.join(0.3)
        assert g.is_alive(), "SQLite: the sweep waits for the commit's transaction"
    else:
        # The row sweep skips the row the commit holds and commits; then the objects' reclaim
        # waits for the account row the commit holds.
        wait_until_blocked_by(drive, results["pid"])
    release.set()
    w.join(20)
    g.join(20)
    assert "info" in results, "the commit went through"
    assert (results["gc"].rows_removed, results["gc"].rows_kept) == (1, 1)
    assert block_of(drive, alice.user_id, z) is None
    assert drive.read_bytes(alice, "/b.bin") == x
    assert block_of(drive, alice.user_id, x).object_key in objects(drive)
    assert drive.fsck().ok


def wait_until_blocked_by(drive, pid: int) -> None:
    """Until some PostgreSQL backend waits for a lock ``pid`` holds."""
    deadline = time.monotonic() + 20
    with drive.db.engine.connect() as conn:
        while not conn.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE %(pid)s = ANY(pg_blocking_pids(pid))",
            {"pid": pid},
        ).scalar():
            assert time.monotonic() < deadline, "the sweep never waited for the commit"
            time.sleep(0.02)
            conn.rollback()


def test_a_writer_that_deduplicated_before_the_sweep_is_told_to_retry(drive, alice):
    """The writer found the block before the sweep and commits after it: the commit refuses
    (409, nothing written) rather than reference a swept block; sending again works."""
    x = body(7)
    drive.write_file(alice, "/a.bin", x)
    drive.write_file(alice, "/a.bin", b"newer")
    drop_old_versions(drive, alice, "/a.bin")
    age_blocks(drive)
    ingest = drive.store.ingest(
        drive.account_keys(alice.user_id), known=lambda h: drive.core.has_block(alice.user_id, h)
    )
    ingest.write(x)
    result = ingest.finish()
    assert not result.blocks[0].new  # deduplicated: nothing stored by this writer

    report = run_gc(drive, grace=0)
    assert (report.rows_removed, report.objects_removed) == (1, 1)
    t = drive.core.target(alice, "/b.bin", Perm.NONE)
    with pytest.raises(Conflict):
        drive.content.commit_version(
            alice, t, result, mtime=None, expected_etag=None, create_only=False
        )
    assert drive.try_stat(alice, "/b.bin") is None
    drive.write_file(alice, "/b.bin", x)  # the client's retry stores the block again
    assert drive.read_bytes(alice, "/b.bin") == x
    assert drive.fsck().ok


def test_an_orphan_reused_after_the_listing_is_kept(drive, alice):
    """An upload crashed and left its block; the same content is uploaded again between the
    sweep's listing and its delete: the object now has a row and stays."""
    x = body(8)
    keys = drive.account_keys(alice.user_id)
    ref = drive.store.put_block(keys, x)  # the crashed upload's object: no row
    plan = plan_gc(drive, now=time.time() + LATER)
    assert [o.key for o in plan.orphans] == [ref.object_key]

    drive.write_file(alice, "/again.bin", x)  # stores the block (again) and commits its row

    report = execute_gc(drive, plan)
    assert report.orphans_removed == 0
    assert ref.object_key in objects(drive)
    assert drive.read_bytes(alice, "/again.bin") == x


def test_a_crash_between_the_rows_and_their_objects_leaves_an_orphan_for_the_next_run(
    drive, alice, monkeypatch
):
    x = body(10)
    drive.write_file(alice, "/a.bin", x)
    drive.write_file(alice, "/a.bin", b"newer")
    drop_old_versions(drive, alice, "/a.bin")
    key = block_of(drive, alice.user_id, x).object_key

    def crash(*_args: object) -> int:
        raise SystemExit("killed after the rows' transaction committed")

    monkeypatch.setattr(drive.core, "reclaim", crash)
    with pytest.raises(SystemExit):
        run_gc(drive, now=time.time() + LATER)
    monkeypatch.undo()
    assert block_of(drive, alice.user_id, x) is None and key in objects(drive)
    assert drive.fsck().orphans == [key]

    report = run_gc(drive, now=time.time() + LATER)  # the object is an orphan now
    assert (report.rows_removed, report.orphans_removed) == (0, 1)
    assert key not in objects(drive)
    assert drive.read_bytes(alice, "/a.bin") == b"newer"


def test_fsck_repair_and_gc_share_the_orphan_sweep(drive, alice):
    drive.write_file(alice, "/keep.bin", body(9))
    drive.store.backend.put("cd" * 32, b"orphan")
    report = drive.fsck(repair=True)
    assert report.orphans == ["cd" * 32] and report.repaired == 0  # younger than a day
    assert "cd" * 32 in objects(drive)


# -- any interleaving ------------------------------------------------------------------------
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.integers(0, 2), st.integers(0, 4)),
        st.tuples(st.just("drop"), st.integers(0, 2), st.just(0)),
        st.tuples(st.just("gc"), st.sampled_from([0, 1]), st.just(0)),
        st.tuples(st.just("dedup_across_gc"), st.integers(0, 2), st.integers(0, 4)),
        st.tuples(st.just("plan_write_sweep"), st.integers(0, 2), st.integers(0, 4)),
        st.tuples(st.just("crash"), st.integers(0, 4), st.just(0)),
        st.tuples(st.just("restore"), st.integers(0, 2), st.just(0)),
        st.tuples(st.just("upload_part"), st.integers(0, 1), st.integers(0, 4)),
        st.tuples(st.just("upload_finish"), st.integers(0, 1), st.just(0)),
    ),
    min_size=1,
    max_size=14,
)
CONTENTS = [body(100 + i) for i in range(4)] + [b"tiny inline content"]
_accounts = iter(range(10**6))


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=OPS)
# the races named in service/gc.py, always among the examples
@example(ops=[("crash", 0, 0), ("plan_write_sweep", 0, 0)])  # an orphan reused after listing
@example(ops=[("write", 0, 1), ("write", 0, 2), ("drop", 0, 0), ("dedup_across_gc", 1, 1)])
@example(ops=[("write", 0, 1), ("write", 0, 2), ("drop", 0, 0), ("plan_write_sweep", 1, 1)])
@example(ops=[("write", 0, 1), ("write", 0, 2), ("upload_part", 0, 1), ("drop", 0, 0),
              ("gc", 1, 0), ("upload_finish", 0, 0)])  # fmt: skip
def test_gc_never_takes_a_referenced_object(drive, ops):
    """Writes, dedup hits, version drops, restores, paused resumable uploads, crashed uploads
    and sweeps in any order (also a writer that deduplicates before a sweep and commits after
    it, and a commit between a sweep's mark and its sweep): every row keeps its object or
    inline bytes, every file reads back what was last written to it, every version kept reads
    back, and a paused upload still completes."""
    p = drive.create_account(f"u{next(_accounts)}", "x")
    model: dict[str, bytes] = {}
    history: dict[str, list[bytes]] = {}  # contents of the versions kept, oldest first
    uploads = ResumableUploads(drive)
    paused: dict[str, tuple[str, bytes]] = {}  # path -> (session id, the whole body)
    for op, a, b in ops:
        path = f"/f{a}.bin"
        if op == "write":
            drive.write_file(p, path, CONTENTS[b])
            model[path] = CONTENTS[b]
            history.setdefault(path, []).append(CONTENTS[b])
        elif op == "drop" and path in model:
            drop_old_versions(drive, p, path)
            history[path] = [model[path]]
        elif op == "restore" and path in model:
            oldest = drive.list_versions(p, path)[-1]
            drive.restore_version(p, path, oldest.id)
            model[path] = history[path][0]
            history[path].append(model[path])
        elif op == "upload_part" and f"/up{a}" not in paused:
            data = CONTENTS[b] + b"-the rest"
            sid = uploads.create(p, f"/up{a}", len(data)).id
            part = iter([CONTENTS[b], b""])
            uploads.append(p, sid, 0, lambda _n, part=part: next(part), len(CONTENTS[b]))
            paused[f"/up{a}"] = (sid, data)
        elif op == "upload_finish" and f"/up{a}" in paused:
            sid, data = paused.pop(f"/up{a}")
            rest = iter([b"-the rest", b""])
            offset = len(data) - len(b"-the rest")
            _end, info = uploads.append(p, sid, offset, lambda _n, r=rest: next(r), 9)
            assert info is not None
            model[f"/up{a}"] = data
            history.setdefault(f"/up{a}", []).append(data)
        elif op == "gc":
            if a:
                age_blocks(drive)
            run_gc(drive, grace=0)
        elif op == "dedup_across_gc":
            ingest = drive.store.ingest(
                drive.account_keys(p.user_id), known=lambda h: drive.core.has_block(p.user_id, h)
            )
            ingest.write(CONTENTS[b])
            result = ingest.finish()
            age_blocks(drive)
            run_gc(drive, grace=0)
            t = drive.core.target(p, path, Perm.NONE)
            try:
                drive.content.commit_version(
                    p, t, result, mtime=None, expected_etag=None, create_only=False
                )
                model[path] = CONTENTS[b]
                history.setdefault(path, []).append(CONTENTS[b])
            except Conflict:
                drive.core.reclaim(
                    p.user_id, [r.object_key for r in result.blocks if r.new and not r.inline]
                )
        elif op == "plan_write_sweep":
            age_blocks(drive)
            plan = plan_gc(drive, grace=0)
            drive.write_file(p, path, CONTENTS[b])
            model[path] = CONTENTS[b]
            history.setdefault(path, []).append(CONTENTS[b])
            execute_gc(drive, plan)
        elif op == "crash":
            drive.store.put_block(drive.account_keys(p.user_id), CONTENTS[a])  # no row
        check(drive, p, model, history)


def check(drive, p, model: dict[str, bytes], history: dict[str, list[bytes]]) -> None:
    stored = objects(drive)
    with drive.db.read() as s:
        rows = s.execute(select(Block.object_key, Block.inline_data.is_not(None))).all()
        used = set(s.scalars(select(VersionBlock.block_id)))
        assert used <= set(s.scalars(select(Block.id)))
    for key, inline in rows:
        assert inline or key in stored, "a block row lost its object"
    for path, data in model.items():
        assert drive.read_bytes(p, path) == data
        kept = drive.list_versions(p, path)[::-1]  # oldest first
        assert len(kept) == len(history[path])
        for version, content in zip(kept, history[path], strict=True):
            with drive.open_version(p, version.id) as fh:
                assert fh.read() == content
