"""The replicated backend: min_copies, the durable repair queue, reads that fall back to another
copy, and scrub's repair. The store that goes down is a real SeaweedFS process of the test's own
(stopped with SIGSTOP, or killed and restarted on the same directory and ports); the unit tests
at the top use memory stores, one of which can be switched off."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import select

from davdrive.app import App, build_app
from davdrive.config import Config
from davdrive.errors import InsufficientStorage, NotFound, StoreUnavailable
from davdrive.jobs.maintenance import RUNNERS
from davdrive.metadata.db import Database
from davdrive.metadata.replication_queue import SqlRepairQueue
from davdrive.metadata.schema import Block
from davdrive.service.scrub import scrub
from davdrive.storage.memory import MemoryBackend
from davdrive.storage.registry import S3Credentials, open_backend, store_specs
from davdrive.storage.repair_queue import MemoryRepairQueue
from davdrive.storage.replicated import ReplicatedBackend
from tests.storage.conftest import Seaweed, pause, resume

KEY_A = "ab" * 32
KEY_B = "cd" * 32
KiB = 1 << 10


class Switchable(MemoryBackend):
    """A memory store that can be down (``StoreUnavailable``, as S3 raises) or full."""

    def __init__(self) -> None:
        super().__init__()
        self.failure: Exception | None = None
        self.calls = 0

    def _check(self) -> None:
        self.calls += 1
        if self.failure is not None:
            raise self.failure

    def put(self, key: str, data: bytes) -> None:
        self._check()
        super().put(key, data)

    def get(self, key: str) -> bytes:
        self._check()
        return super().get(key)

    def delete(self, key: str) -> None:
        self._check()
        super().delete(key)

    def exists(self, key: str) -> bool:
        self._check()
        return super().exists(key)


def down() -> StoreUnavailable:
    return StoreUnavailable("store down")


def pair(min_copies: int | None = None, **kw) -> tuple[ReplicatedBackend, Switchable, Switchable]:
    one, two = Switchable(), Switchable()
    queue = MemoryRepairQueue()
    backend = ReplicatedBackend(
        [("one", one), ("two", two)], min_copies=min_copies, queue=queue, **kw
    )
    return backend, one, two


# -- memory stores ---------------------------------------------------------------------------------
def test_a_store_down_fails_the_write_when_every_copy_is_required():
    backend, one, two = pair()
    two.failure = down()
    with pytest.raises(StoreUnavailable, match="1 of the 2 copies"):
        backend.put(KEY_A, b"x")
    assert backend.queue.count() == 0


def test_min_copies_one_queues_the_missing_copy_and_drain_writes_it():
    backend, one, two = pair(min_copies=1)
    two.failure = OSError("connection refused")
    backend.put(KEY_A, b"data")
    assert one.get(KEY_A) == b"data"
    assert [(q.store, q.key) for q in backend.queue.pending()] == [("two", KEY_A)]
    assert "connection refused" in (backend.queue.pending()[0].last_error or "")
    # while two stays down: skipped at once (no wait per request), still owed
    backend.put(KEY_B, b"more")
    assert backend.queue.count() == 2
    report = backend.drain()
    assert (report.copied, report.failed, report.remaining) == (0, 2, 2)
    assert backend.queue.pending()[0].attempts == 1

    two.failure = None
    report = backend.drain()
    assert (report.copied, report.remaining) == (2, 0)
    assert two.get(KEY_A) == b"data" and two.get(KEY_B) == b"more"


def test_a_failed_store_is_skipped_for_retry_after_seconds_then_tried_again():
    now = [100.0]
    backend, one, two = pair(min_copies=1, retry_after=30, clock=lambda: now[0])
    two.failure = down()
    backend.put(KEY_A, b"a")
    assert two.calls == 1
    backend.put(KEY_B, b"b")  # skipped: no wait for a store known to be down
    assert two.calls == 1 and backend.queue.count() == 2
    now[0] += 31
    two.failure = None
    key_c = "ef" * 32
    backend.put(key_c, b"c")  # tried again, and it answers
    assert two.calls == 2 and two.get(key_c) == b"c"
    assert {q.key for q in backend.queue.pending()} == {KEY_A, KEY_B}
    with pytest.raises(NotFound):  # "not found" is an answer: the store stays up
        two.get(KEY_A)
    assert backend.get(KEY_A) == b"a"


def test_drain_drops_a_copy_of_an_object_deleted_meanwhile():
    backend, one, two = pair(min_copies=1)
    two.failure = down()
    backend.put(KEY_A, b"data")
    backend.delete(KEY_A)  # two is down: its (absent) copy is not touched
    two.failure = None
    report = backend.drain()
    assert (report.copied, report.dropped, report.remaining) == (0, 1, 0)
    assert not two.exists(KEY_A)


def test_drain_forgets_copies_owed_to_a_store_no_longer_configured():
    backend, one, two = pair(min_copies=1)
    backend.queue.add("gone-store", KEY_A, "down")
    report = backend.drain()
    assert (report.dropped, report.remaining) == (1, 0)


def test_drain_skips_a_source_copy_the_verifier_rejects():
    one, two, three = Switchable(), Switchable(), Switchable()
    backend = ReplicatedBackend(
        [("one", one), ("two", two), ("three", three)], min_copies=2, queue=MemoryRepairQueue()
    )
    three.failure = down()
    backend.put(KEY_A, b"good")
    one.put(KEY_A, b"rot!")  # damaged meanwhile
    three.failure = None
    backend.drain(verify=lambda key, data: data == b"good")
    assert three.get(KEY_A) == b"good"


def test_reads_fall_back_on_missing_copies_and_stores_that_are_down():
    backend, one, two = pair()
    backend.put(KEY_A, b"data")
    one.delete(KEY_A)
    assert backend.get(KEY_A) == b"data"
    one.put(KEY_A, b"data")
    one.failure = down()
    assert backend.get(KEY_A) == b"data"
    assert backend.exists(KEY_A)
    two.failure = down()  # nowhere to read: 503, not "missing"
    backend.retry_down_stores()
    with pytest.raises(StoreUnavailable):
        backend.get(KEY_A)
    one.failure = two.failure = None
    backend.retry_down_stores()
    with pytest.raises(NotFound):
        backend.get(KEY_B)


def test_copies_offers_the_next_copy_when_one_is_rejected():
    backend, one, two = pair()
    backend.put(KEY_A, b"good")
    one.put(KEY_A, b"bad!")
    copies = backend.copies(KEY_A)
    assert next(copies) == b"bad!"
    assert next(copies) == b"good"
    assert list(copies) == []


def test_delete_with_a_store_down_removes_the_reachable_copies():
    backend, one, two = pair()
    backend.put(KEY_A, b"x")
    two.failure = down()
    backend.delete(KEY_A)  # no error: two's stale copy is an orphan for the sweep
    assert not one.exists(KEY_A)
    one.failure = down()
    backend.retry_down_stores()
    with pytest.raises(StoreUnavailable):
        backend.delete(KEY_A)


def test_full_disks_everywhere_are_insufficient_storage():
    backend, one, two = pair(min_copies=1)
    one.failure = InsufficientStorage("full")
    two.failure = InsufficientStorage("full")
    with pytest.raises(InsufficientStorage):
        backend.put(KEY_A, b"x")


def test_list_is_the_union_and_leftovers_name_their_store(tmp_path):
    backend = open_backend([f"file://{tmp_path}/a", f"file://{tmp_path}/b"])
    a, b = (store for _, store in backend.replicas())
    a.put(KEY_A, b"1")
    b.put(KEY_B, b"22")
    assert {o.key: o.size for o in backend.list()} == {KEY_A: 1, KEY_B: 2}
    leftover = tmp_path / "b" / "ab" / "cd" / ".x.tmp"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"partial")
    (found,) = list(backend.leftovers())
    assert found.key == "1:ab/cd/.x.tmp"
    backend.remove_leftover(found.key)
    assert not leftover.exists()
    with pytest.raises(ValueError):
        backend.remove_leftover("7:ab/cd/.x.tmp")


def test_config_lists_of_stores(tmp_path):
    specs = store_specs(
        [
            "file:///srv/a",
            {"url": "s3://b/p?endpoint=http://h:1&timeout=3", "name": "eu", "s3": None},
        ]
    )
    assert [s.name for s in specs] == ["file:/srv/a", "eu"]
    long = store_specs([f"file:///{'x' * 100}", "memory://"])[0].name
    assert len(long) == 64 and long.startswith("file:/xxx")
    assert store_specs(["s3://b/p?endpoint=http://h:1", "s3://b/p?endpoint=http://g:1"])[
        1
    ].name == ("s3:b/p@g:1")
    for bad in (
        [f"file://{tmp_path}/a"],  # one store is not a list
        [f"file://{tmp_path}/a", f"file://{tmp_path}/a"],  # the same name twice
        [f"file://{tmp_path}/a", 3],
        [f"file://{tmp_path}/a", {"url": "memory://", "colour": "blue"}],
    ):
        with pytest.raises(ValueError):
            store_specs(bad)
    with pytest.raises(ValueError, match="durable repair queue"):
        open_backend(["memory://", f"file://{tmp_path}/b"], min_copies=1)
    with pytest.raises(ValueError):
        open_backend(["memory://", "ftp://x"])
    with pytest.raises(ValueError):
        S3Credentials.from_config({"access_key_id": "only half"})
    assert "hunter2" not in repr(S3Credentials("k", "hunter2"))


def test_sql_repair_queue_is_durable(db_url):
    db = Database(db_url)
    db.upgrade()
    try:
        q = SqlRepairQueue(db)
        q.add("s3", KEY_A, "down")
        q.add("s3", KEY_A, "still down")  # once per (store, key)
        q.add("s3", KEY_B, "down")
        q.failed("s3", KEY_A, "timeout")
        again = SqlRepairQueue(Database(db_url))  # another process sees the same rows
        owed = again.pending()
        assert [(o.store, o.key, o.attempts, o.last_error) for o in owed] == [
            ("s3", KEY_A, 1, "timeout"),
            ("s3", KEY_B, 0, "down"),
        ]
        again.done("s3", KEY_A)
        assert q.count() == 1 and [o.key for o in q.pending(limit=5)] == [KEY_B]
        again.db.dispose()
    finally:
        db.dispose()


# -- a real SeaweedFS that goes down ---------------------------------------------------------------
def make_app(tmp_path: Path, db_url: str, srv: Seaweed, *, min_copies: int, s3_first: bool) -> App:
    """An app whose blocks are replicated to a local directory and the S3 store; the keys come
    from the config's s3 section (none in the environment)."""
    s3 = {"url": srv.url("blocks", timeout="2"), "name": "s3"}
    local = {"url": f"file://{tmp_path / 'local-blocks'}", "name": "local"}
    config = Config(
        data_dir=tmp_path / "data",
        database_url=db_url,
        blocks_url=[s3, local] if s3_first else [local, s3],
        min_copies=min_copies,
        s3={"access_key_id": srv.access_key, "secret_access_key": srv.secret_key},
        inline_max=0,
    )
    return build_app(config, create=True)


@pytest.fixture
def no_aws_env(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def local_objects(tmp_path: Path) -> dict[str, Path]:
    return {p.name: p for p in (tmp_path / "local-blocks").rglob("*") if p.is_file()}


def object_keys(app: App) -> set[str]:
    with app.db.read() as s:
        return set(s.scalars(select(Block.object_key)))


def in_s3(srv: Seaweed, keys: set[str]) -> set[str]:
    """Those of ``keys`` the store holds (HEAD each: a listing may lag a store just resumed)."""
    from botocore.exceptions import ClientError

    client, found = srv.client(), set()
    for key in keys:
        try:
            client.head_object(Bucket=srv.bucket, Key=f"blocks/{key}")
        except ClientError:
            continue
        found.add(key)
    return found


def queued(app: App) -> list[tuple[str, str]]:
    return [(q.store, q.key) for q in SqlRepairQueue(app.db).pending()]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_store_stopped_with_every_copy_required(weed, tmp_path, db_url, no_aws_env):
    app = make_app(tmp_path, db_url, weed, min_copies=0, s3_first=True)
    try:
        p = app.drive.create_account("alice", "x")
        first = os.urandom(300 * KiB)
        app.drive.write_file(p, "/first.bin", first)
        keys = object_keys(app)
        assert set(weed.keys("blocks")) == keys == set(local_objects(tmp_path))

        pause(weed)
        # S3 is the first copy: its read times out, the local copy serves
        assert app.drive.read_bytes(p, "/first.bin") == first
        with pytest.raises(StoreUnavailable) as info:  # 503 over HTTP
            app.drive.write_file(p, "/second.bin", os.urandom(300 * KiB))
        assert info.value.code == "store_unavailable" and "s3" in info.value.message
        assert app.drive.try_stat(p, "/second.bin") is None
        assert queued(app) == []
        resume(weed)

        app.store.backend.retry_down_stores()
        second = os.urandom(300 * KiB)
        app.drive.write_file(p, "/second.bin", second)
        assert app.drive.read_bytes(p, "/second.bin") == second
        keys = object_keys(app)
        # the refused write's local copy stays, unreferenced: an orphan for the sweep (a
        # failed put never deletes: the same block may be referenced by another upload)
        assert in_s3(weed, keys) == keys and len(set(local_objects(tmp_path)) - keys) == 1
        assert scrub(app.drive).ok
    finally:
        app.close()


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_store_stopped_with_one_copy_required_queues_and_drains(weed, tmp_path, db_url, no_aws_env):
    app = make_app(tmp_path, db_url, weed, min_copies=1, s3_first=True)
    try:
        p = app.drive.create_account("alice", "x")
        pause(weed)
        data = os.urandom(2 << 20)  # a few blocks
        app.drive.write_file(p, "/f.bin", data)
        keys = object_keys(app)
        assert sorted(queued(app)) == sorted(("s3", k) for k in keys)
        assert app.drive.read_bytes(p, "/f.bin") == data
        resume(weed)

        report = RUNNERS["replicate"](app)  # the scheduled job: drain_replication
        assert report is not None and (report.copied, report.remaining) == (len(keys), 0)
        assert in_s3(weed, keys) == keys == set(local_objects(tmp_path))
        assert queued(app) == []
        assert scrub(app.drive).ok
    finally:
        app.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_store_killed_the_queue_survives_a_restart_and_scrub_restores_the_copies(
    weed, tmp_path, db_url, no_aws_env
):
    app = make_app(tmp_path, db_url, weed, min_copies=1, s3_first=False)
    p = app.drive.create_account("alice", "x")
    before = os.urandom(600 * KiB)
    app.drive.write_file(p, "/before.bin", before)
    weed.stop()  # killed
    after = os.urandom(600 * KiB)
    try:
        app.drive.write_file(p, "/after.bin", after)
        owed = queued(app)
        assert owed and {store for store, _ in owed} == {"s3"}
    finally:
        app.close()

    # the server restarts while the store is still down: it opens (min_copies allows it)
    app = make_app(tmp_path, db_url, weed, min_copies=1, s3_first=False)
    try:
        assert queued(app) == owed
        assert app.drive.read_bytes(p, "/after.bin") == after
        weed.start()  # the same data directory and ports
        report = scrub(app.drive)
        assert report.drained is not None and report.drained.copied == len(owed)
        assert report.ok and report.bad == [] and report.stores == ["local", "s3"]
        keys = object_keys(app)
        assert in_s3(weed, keys) == keys == set(local_objects(tmp_path))
        assert app.drive.read_bytes(p, "/before.bin") == before
    finally:
        app.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_damaged_copy_is_read_from_the_other_and_repaired_by_scrub(
    weed, tmp_path, db_url, no_aws_env
):
    app = make_app(tmp_path, db_url, weed, min_copies=0, s3_first=False)
    try:
        p = app.drive.create_account("alice", "x")
        data = os.urandom(700 * KiB)
        app.drive.write_file(p, "/f.bin", data)
        (key,) = object_keys(app)
        victim = local_objects(tmp_path)[key]
        good = victim.read_bytes()
        bad = bytearray(good)
        bad[200] ^= 0x01
        victim.write_bytes(bytes(bad))

        assert app.drive.read_bytes(p, "/f.bin") == data  # the local copy fails, S3's serves

        dry = scrub(app.drive, dry_run=True)
        assert [(b.store, b.problem, b.repaired) for b in dry.bad] == [("local", "damaged", False)]
        assert victim.read_bytes() == bytes(bad) and not dry.ok

        report = scrub(app.drive)
        assert [(b.store, b.object_key, b.repaired) for b in report.bad] == [("local", key, True)]
        assert victim.read_bytes() == good
        assert scrub(app.drive).bad == []

        # a copy missing from S3 is written back too
        weed.client().delete_object(Bucket=weed.bucket, Key=f"blocks/{key}")
        report = scrub(app.drive)
        assert [(b.store, b.problem, b.repaired) for b in report.bad] == [("s3", "missing", True)]
        assert set(weed.keys("blocks")) == {key}

        # a damaged S3 copy is replaced, though S3 puts keep an existing object
        weed.client().put_object(Bucket=weed.bucket, Key=f"blocks/{key}", Body=bytes(bad))
        report = scrub(app.drive)
        assert [(b.store, b.problem, b.repaired) for b in report.bad] == [("s3", "damaged", True)]
        body = weed.client().get_object(Bucket=weed.bucket, Key=f"blocks/{key}")["Body"].read()
        assert body == good
    finally:
        app.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_scrub_reads_at_the_configured_rate(tmp_path, db_url):
    """The throttle asks for the sleeps that keep reading at ``rate`` (a fake clock: no timing
    in the assertion)."""
    config = Config(
        data_dir=tmp_path / "data",
        database_url=db_url,
        blocks_url=[f"file://{tmp_path}/a", f"file://{tmp_path}/b"],
        inline_max=0,
    )
    app = build_app(config)
    try:
        p = app.drive.create_account("alice", "x")
        app.drive.write_file(p, "/f.bin", os.urandom(3 << 20))
        now = [0.0]
        slept: list[float] = []

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            now[0] += seconds

        report = scrub(app.drive, rate=1 << 20, clock=lambda: now[0], sleep=sleep)
        assert report.ok and report.copies_checked == 2 * report.blocks
        # two copies of ~3 MiB at 1 MiB/s: ~6 s of reading, paced
        assert sum(slept) == pytest.approx(report.bytes_read / (1 << 20))
        assert 6 * 0.99 < sum(slept) < 6 * 1.01
    finally:
        app.close()


def test_a_store_down_at_init_leaves_no_half_made_store(tmp_path):
    from tests.live import free_port

    config = Config(
        data_dir=tmp_path / "data",
        blocks_url=f"s3://b/p?endpoint=http://127.0.0.1:{free_port()}&timeout=1",
        s3={"access_key_id": "k", "secret_access_key": "s"},
    )
    with pytest.raises(StoreUnavailable):
        build_app(config)
    data = tmp_path / "data"
    assert not (data / "master.key").exists() and not (data / "davdrive.db").exists()
