"""Nextcloud chunked uploads (v2) in the service, on SQLite and PostgreSQL: parts assemble in
the order of their leading number whatever order they arrive in, the whole content's checksum
is checked, nothing is visible before the MOVE, and every refused, cancelled or expired upload
gives its space back."""

from __future__ import annotations

import hashlib
import io
import os
import time

import pytest

from davdrive import errors
from davdrive.service.access import Perm
from davdrive.service.checksums import ChecksumMismatch
from davdrive.service.chunked_uploads import ChunkedUploads, part_key

MiB = 1 << 20


def _objects(drive) -> set[str]:
    return {o.key for o in drive.store.backend.list()}


def _put(up: ChunkedUploads, p, folder: str, name: str, data: bytes):
    return up.put_part(p, folder, name, io.BytesIO(data).read, len(data))


def _used(drive, p, path: str, owner=None) -> set[str]:
    """The object keys of the blocks of the file at ``path``."""
    keys = drive.account_keys((owner or p).user_id)
    return {keys.object_key(h) for h, _ in drive.block_list(p, path)}


def _read(drive, p, path: str) -> bytes:
    return drive.read_bytes(p, path)


@pytest.fixture
def up(drive):
    return ChunkedUploads(drive)


def test_parts_in_order_assemble_into_one_version(drive, alice, up):
    data = os.urandom(5 * MiB + 12345)
    parts = [data[i : i + 2 * MiB] for i in range(0, len(data), 2 * MiB)]
    up.open(alice, "t1", total_length=len(data))
    for i, piece in enumerate(parts):
        info, created = _put(up, alice, "t1", f"{i:016d}", piece)
        assert created and info.size == len(piece)
    assert [x.size for x in up.get(alice, "t1").parts] == [len(x) for x in parts]
    with pytest.raises(errors.NotFound):  # nothing is visible before the MOVE
        drive.stat(alice, "/big.bin")
    node, created = up.assemble(alice, "t1", "/big.bin", total_length=len(data), mtime=1.7e9)
    assert created and node.size == len(data)
    assert node.content_hash == hashlib.sha256(data).hexdigest()
    assert _read(drive, alice, "/big.bin") == data
    assert drive.stat(alice, "/big.bin").mtime == 1.7e9
    with pytest.raises(errors.NotFound):  # the folder is gone once assembled
        up.get(alice, "t1")
    with pytest.raises(errors.NotFound):  # and a second MOVE finds nothing
        up.assemble(alice, "t1", "/big.bin")


@pytest.mark.parametrize(
    "names",
    [
        ["00003", "00001", "00002"],  # newer desktops: 5 digits from 1, sent out of order
        ["2097152", "0", "4194304"],  # ownCloud 2.11: byte offsets
        [
            "000000002097152-000000004194303",
            "000000000000000-000000002097151",
            "000000004194304-000000005000000",
        ],  # rclone: byte ranges  # fmt: skip
    ],
)
def test_parts_assemble_by_their_leading_number(drive, alice, up, names):
    pieces = [os.urandom(2 * MiB), os.urandom(2 * MiB), os.urandom(MiB // 3)]
    order = sorted(range(3), key=lambda i: part_key(names[i]))
    up.open(alice, "t")
    for i in range(3):
        _put(up, alice, "t", names[i], pieces[order.index(i)])
    expected = b"".join(pieces)
    sha1 = hashlib.sha1(expected).hexdigest()
    node, _ = up.assemble(alice, "t", "/f", checksum=("SHA1", sha1))
    assert _read(drive, alice, "/f") == expected
    assert node.content_hash == hashlib.sha256(expected).hexdigest()


def test_a_part_sent_again_replaces_the_first_and_frees_its_blocks(drive, alice, up):
    up.open(alice, "t")
    before = _objects(drive)
    _put(up, alice, "t", "0", os.urandom(MiB))
    good = os.urandom(MiB)
    _, created = _put(up, alice, "t", "0", good)
    assert not created
    _put(up, alice, "t", "1", b"tail")
    up.assemble(alice, "t", "/f")
    assert _read(drive, alice, "/f") == good + b"tail"
    # only the blocks of the version remain (the first part's were reclaimed)
    assert _objects(drive) - before == _used(drive, alice, "/f")


def test_checksums_are_verified_and_a_mismatch_discards_the_upload(drive, alice, up):
    data = os.urandom(3 * MiB)
    before = _objects(drive)
    up.open(alice, "t")
    _put(up, alice, "t", "0", data)
    with pytest.raises(ChecksumMismatch):
        up.assemble(alice, "t", "/f", checksum=("SHA1", "0" * 40))
    with pytest.raises(errors.NotFound):
        drive.stat(alice, "/f")
    with pytest.raises(errors.NotFound):
        up.get(alice, "t")
    assert _objects(drive) == before
    # MD5 and Adler-32 are checked by reading the parts back
    up.open(alice, "t")
    _put(up, alice, "t", "0", data)
    up.assemble(alice, "t", "/f", checksum=("MD5", hashlib.md5(data).hexdigest()))
    assert _read(drive, alice, "/f") == data


def test_out_of_order_parts_read_back_for_the_hash(drive, alice, up):
    a, b = os.urandom(MiB + 7), os.urandom(MiB + 9)
    up.open(alice, "t")
    _put(up, alice, "t", "1", b)
    _put(up, alice, "t", "0", a)
    node, _ = up.assemble(alice, "t", "/f", checksum=("SHA1", hashlib.sha1(a + b).hexdigest()))
    assert node.content_hash == hashlib.sha256(a + b).hexdigest()


def test_a_wrong_total_length_commits_nothing_and_keeps_the_parts(drive, alice, up):
    up.open(alice, "t")
    _put(up, alice, "t", "0", b"x" * 100)
    with pytest.raises(errors.BadRequest):
        up.assemble(alice, "t", "/f", total_length=101)
    with pytest.raises(errors.NotFound):
        drive.stat(alice, "/f")
    assert up.get(alice, "t").size == 100
    up.open(alice, "u", total_length=10)
    with pytest.raises(errors.BadRequest):  # more than MKCOL announced
        _put(up, alice, "u", "0", b"y" * 11)


def test_a_part_cut_short_is_not_kept(drive, alice, up):
    up.open(alice, "t")
    before = _objects(drive)
    data = os.urandom(2 * MiB)
    with pytest.raises(errors.IncompleteUpload):
        up.put_part(alice, "t", "0", io.BytesIO(data).read, len(data) + 10)
    assert up.get(alice, "t").parts == ()
    assert _objects(drive) == before


def test_cancel_and_expiry_give_the_space_back(drive, alice, up):
    before = _objects(drive)
    up.open(alice, "t")
    _put(up, alice, "t", "0", os.urandom(2 * MiB))
    up.cancel(alice, "t")
    assert _objects(drive) == before
    with pytest.raises(errors.NotFound):
        up.cancel(alice, "t")  # rclone's probe: DELETE of a folder that is not there
    up.open(alice, "t")
    _put(up, alice, "t", "0", os.urandom(2 * MiB))
    assert up.expire(now=1e12) == 1
    assert _objects(drive) == before
    with pytest.raises(errors.NotFound):
        up.get(alice, "t")
    up.open(alice, "t")  # the name is free again


def test_names_quota_and_duplicates(drive, up):
    small = drive.create_account("small", "x", quota=MiB)
    for bad in ("", ".", "..", "a/b", "x" * 256):
        with pytest.raises(errors.BadRequest):
            up.open(small, bad)
    with pytest.raises(errors.QuotaExceeded):
        up.open(small, "t", total_length=2 * MiB)
    up.open(small, "t")
    with pytest.raises(errors.AlreadyExists):
        up.open(small, "t")
    for bad in ("abc", ".file", "-1"):
        with pytest.raises(errors.BadRequest):
            _put(up, small, "t", bad, b"x")
    _put(up, small, "t", "0", os.urandom(MiB // 2))
    with pytest.raises(errors.QuotaExceeded):  # parts in flight count against free space
        _put(up, small, "t", "1", os.urandom(MiB // 2 + 1))


def test_stale_etag_overwrite_and_history(drive, alice, up):
    old = drive.write_file(alice, "/f", b"v1")
    up.open(alice, "t")
    _put(up, alice, "t", "0", b"v2")
    with pytest.raises(errors.PreconditionFailed):
        up.assemble(alice, "t", "/f", expected_etag="stale")
    node, created = up.assemble(alice, "t", "/f", expected_etag=old.etag)
    assert not created and node.id == old.id
    assert _read(drive, alice, "/f") == b"v2"
    assert len(drive.list_versions(alice, "/f")) == 2
    up.open(alice, "u")
    with pytest.raises(errors.PreconditionFailed):
        up.assemble(alice, "u", "/f", create_only=True)


def test_into_a_share_with_and_without_a_destination(drive, alice, bob, up):
    drive.mkdir(alice, "/team")
    drive.shares.create(alice, "/team", "bob", int(Perm.READ | Perm.WRITE | Perm.CREATE))
    bob_before = _objects(drive)
    data = os.urandom(3 * MiB)
    # without Destination the parts are sealed for bob and resealed for alice at the MOVE
    up.open(bob, "t1")
    _put(up, bob, "t1", "0", data)
    node, created = up.assemble(bob, "t1", "/team/a.bin")
    assert created
    assert _read(drive, alice, "/team/a.bin") == data
    assert _read(drive, bob, "/team/a.bin") == data
    # bob's sealed copies are gone
    assert _objects(drive) - bob_before == _used(drive, alice, "/team/a.bin")
    # with Destination they are sealed for alice from the start
    up.open(bob, "t2", destination="/team/b.bin", total_length=len(data))
    _put(up, bob, "t2", "0", data)
    up.assemble(bob, "t2", "/team/b.bin")
    assert _read(drive, alice, "/team/b.bin") == data


def test_a_read_only_share_refuses(drive, alice, bob, up):
    drive.mkdir(alice, "/ro")
    drive.shares.create(alice, "/ro", "bob", int(Perm.READ))
    with pytest.raises(errors.PermissionDenied):
        up.open(bob, "t", destination="/ro/x")
    up.open(bob, "t")
    _put(up, bob, "t", "0", b"data")
    with pytest.raises(errors.PermissionDenied):
        up.assemble(bob, "t", "/ro/x")
    with pytest.raises(errors.NotFound):
        drive.stat(alice, "/ro/x")


def test_another_account_cannot_touch_an_upload(drive, alice, bob, up):
    up.open(alice, "t")
    with pytest.raises(errors.NotFound):
        _put(up, bob, "t", "0", b"x")
    with pytest.raises(errors.NotFound):
        up.cancel(bob, "t")
    up.open(bob, "t")  # each account has its own names


def test_parts_in_order_are_not_read_back(drive, alice, up, monkeypatch):
    """The MOVE of parts that arrived in order here is a commit: the running hashes serve."""
    data = os.urandom(3 * MiB)
    up.open(alice, "t")
    _put(up, alice, "t", "0", data[: 2 * MiB])
    _put(up, alice, "t", "1", data[2 * MiB :])

    def no_read_back(*_a, **_k):
        raise AssertionError("the parts were read back")

    monkeypatch.setattr(drive.store, "open_reader", no_read_back)
    node, _ = up.assemble(alice, "t", "/f", checksum=("SHA1", hashlib.sha1(data).hexdigest()))
    assert node.content_hash == hashlib.sha256(data).hexdigest()


def test_jobs_report_their_outcome_to_their_owner_only(drive, alice, bob, up, monkeypatch):
    job = up.start_job(alice)
    assert up.job(alice, job).status == "started"
    with pytest.raises(errors.NotFound):
        up.job(bob, job)
    node = drive.write_file(alice, "/f", b"x")
    up.finish_job(job, node=node)
    done = up.job(alice, job)
    assert (done.status, done.node_id, done.etag) == ("finished", node.id, node.etag)
    failed = up.start_job(alice)
    up.finish_job(failed, error_status=412, error="stale")
    assert up.job(alice, failed).error_status == 412
    # a job its process left "started" an hour ago reports an error; expiry removes jobs
    stuck = up.start_job(alice)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3601)
    assert up.job(alice, stuck).status == "error"
    monkeypatch.setattr(time, "time", real)
    up.expire(now=real() + 2 * 86400)
    with pytest.raises(errors.NotFound):
        up.job(alice, job)
