"""The cold tier on moto (S3 storage class GLACIER): archive, a GET answers 409 + Retry-After
and requests a restore, and after the restore the GET returns the right bytes — through a real
``davdrive serve`` over WebDAV, the Nextcloud door and the JSON API, and at the service level on
SQLite and PostgreSQL."""

from __future__ import annotations

import os
import time

import pytest
import requests
from sqlalchemy import select

from davdrive.blockstore.keys import KeyRing
from davdrive.blockstore.store import BlockStore
from davdrive.config import Archive
from davdrive.errors import Archived
from davdrive.metadata.db import Database
from davdrive.metadata.schema import Block
from davdrive.service.archive import archive_file, request_restore, run_archive
from davdrive.service.drive import Drive
from davdrive.storage.registry import S3Credentials, open_backend
from davdrive.storage.tiered import StorageClassBackend
from tests.storage.glacier import ACCESS_KEY, SECRET_KEY, moto_s3  # noqa: F401 - a fixture

KiB = 1 << 10
RESTORE_SECONDS = 4.0  # moto's restore: one state step per this many seconds (glacier.py)
RETRY_AFTER = 120


def glacier_backend(moto, bucket):
    return open_backend(
        moto.url(bucket),
        s3=S3Credentials(ACCESS_KEY, SECRET_KEY),
        archive=Archive(storage_class="GLACIER", retry_after=RETRY_AFTER),
    )


def wait_for(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.3)


@pytest.fixture
def drive(db_url, tmp_path, moto_s3):  # noqa: F811
    bucket = moto_s3.bucket()
    db = Database(db_url)
    db.upgrade()
    backend = glacier_backend(moto_s3, bucket)
    assert isinstance(backend, StorageClassBackend)
    d = Drive(db, BlockStore(backend, threads=2), KeyRing.load_or_create(str(tmp_path / "k")))
    d.bucket = bucket  # type: ignore[attr-defined]
    yield d
    moto_s3.restore_at_once()
    d.store.close()
    db.dispose()


def test_a_glacier_read_is_refused_and_restored(drive, moto_s3):  # noqa: F811
    alice = drive.create_account("alice", "x")
    old, new = os.urandom(100 * KiB), os.urandom(120 * KiB)
    drive.write_file(alice, "/f.bin", old)
    drive.write_file(alice, "/f.bin", new)
    moto_s3.restore_takes(RESTORE_SECONDS)
    assert run_archive(drive, after_days=0).moved == 1  # the old version's block only
    assert drive.read_bytes(alice, "/f.bin") == new, "the current version stays hot"
    report = archive_file(drive, alice, "/f.bin")
    assert (report.moved, report.failed) == (1, 0)
    heads = moto_s3.objects(drive.bucket)
    assert {h.get("StorageClass") for h in heads.values()} == {"GLACIER"}
    assert archive_file(drive, alice, "/f.bin").moved == 0  # idempotent
    time.sleep(RESTORE_SECONDS + 0.5)  # see glacier.py: moto's restore clock starts at the copy

    with pytest.raises(Archived) as first:
        drive.read_bytes(alice, "/f.bin")
    assert first.value.message == f"archived; restore requested, retry after {RETRY_AFTER} s"
    assert first.value.details["retry_after"] == RETRY_AFTER
    with drive.db.read() as s:
        asked = s.scalars(select(Block.restore_requested_at).where(Block.tier == "cold")).all()
    assert sum(t is not None for t in asked) == 1, "the current version's block was requested"
    restores = [h.get("Restore", "") for h in moto_s3.objects(drive.bucket).values()]
    assert 'ongoing-request="true"' in " ".join(restores)
    with pytest.raises(Archived):  # still under way: refused again, nothing asked twice
        drive.read_bytes(alice, "/f.bin")
    assert request_restore(drive, alice, "/f.bin").pending == 1

    def readable() -> bytes | None:
        try:
            return drive.read_bytes(alice, "/f.bin")
        except Archived:
            return None

    assert wait_for(readable) == new

    # A new upload of the same content deduplicates against the archived block: the next
    # run brings it back to STANDARD (it is restored now, so the copy back is allowed).
    drive.write_file(alice, "/again.bin", new)
    report = run_archive(drive, after_days=0)
    assert (report.thawed, report.failed) == (1, 0), report.summary()
    classes = sorted(
        h.get("StorageClass") or "STANDARD" for h in moto_s3.objects(drive.bucket).values()
    )
    assert classes == ["GLACIER", "STANDARD"]  # the old version's block stays archived
    assert drive.read_bytes(alice, "/again.bin") == new


def write_config(path, moto, bucket) -> None:
    path.write_text(
        f"blocks_url: '{moto.url(bucket)}'\n"
        f"s3: {{access_key_id: {ACCESS_KEY}, secret_access_key: {SECRET_KEY}}}\n"
        "inline_max: 0\n"
        f"archive: {{storage_class: GLACIER, after_days: 0, retry_after: {RETRY_AFTER}}}\n"
        "jobs: {archive: 0}\n"
    )


def test_get_answers_409_with_retry_after_and_the_bytes_after_the_restore(
    moto_s3,  # noqa: F811
    tmp_path,
    monkeypatch,
    live_server_factory,
):
    bucket = moto_s3.bucket()
    config = tmp_path / "davdrive.yaml"
    write_config(config, moto_s3, bucket)
    monkeypatch.setenv("DAVDRIVE_CONFIG", str(config))
    srv = live_server_factory()
    auth = srv.auth("alice")
    old, new = os.urandom(300 * KiB), os.urandom(310 * KiB)
    for data in (old, new):
        r = requests.put(srv.dav("alice") + "f.bin", data=data, auth=auth, timeout=30)
        assert r.status_code in (201, 204), r.text

    dry = srv.cli("archive", "--dry-run")
    assert "dry run" in dry.stdout and "would move 1 blocks" in dry.stdout, dry.stdout
    assert not any(h.get("StorageClass") for h in moto_s3.objects(bucket).values())
    moto_s3.restore_takes(RESTORE_SECONDS)
    ran = srv.cli("archive")
    assert "moved 1 blocks" in ran.stdout and "GLACIER" in ran.stdout, ran.stdout
    r = requests.get(srv.dav("alice") + "f.bin", auth=auth, timeout=30)
    assert r.status_code == 200 and r.content == new, "the current version is never archived"

    now = srv.cli("archive", "--user", "alice", "--path", "/f.bin")
    assert "moved 1 blocks" in now.stdout, now.stdout
    assert {h.get("StorageClass") for h in moto_s3.objects(bucket).values()} == {"GLACIER"}
    time.sleep(RESTORE_SECONDS + 0.5)

    r = requests.get(srv.dav("alice") + "f.bin", auth=auth, timeout=30)
    assert r.status_code == 409, r.text
    assert r.headers["Retry-After"] == str(RETRY_AFTER)
    assert f"archived; restore requested, retry after {RETRY_AFTER} s" in r.text
    restores = [h.get("Restore", "") for h in moto_s3.objects(bucket).values()]
    assert 'ongoing-request="true"' in " ".join(restores), restores  # requested, under way

    r = requests.get(
        f"{srv.url}/api/v1/files/download", params={"path": "/f.bin"}, auth=auth, timeout=30
    )
    assert r.status_code == 409 and r.headers["Retry-After"] == str(RETRY_AFTER)
    assert r.json()["error"] == {
        "code": "archived",
        "message": f"archived; restore requested, retry after {RETRY_AFTER} s",
    }
    r = requests.get(
        f"{srv.url}/remote.php/dav/files/alice/f.bin", auth=auth, timeout=30
    )  # the Nextcloud door
    assert r.status_code == 409 and r.headers["Retry-After"] == str(RETRY_AFTER)

    def fetched() -> bytes | None:
        r = requests.get(srv.dav("alice") + "f.bin", auth=auth, timeout=30)
        return r.content if r.status_code == 200 else None

    assert wait_for(fetched) == new
    assert "restore requested" in srv.stderr() + srv.stdout()
