"""The block API of delta sync in the service, on SQLite and PostgreSQL: check reports what an
account lacks, put verifies and deduplicates, staged blocks live out their grace period and are
then collected, commit makes a revision from held blocks (first writer wins on ``base_rev``),
and reading a block needs a file the caller may read that uses it."""

from __future__ import annotations

import hashlib
import os
import random
import time
from dataclasses import replace
from types import SimpleNamespace

import pytest

from davdrive import errors
from davdrive.blockstore.blockformat import block_hash
from davdrive.blockstore.chunker import Chunker
from davdrive.jobs.maintenance import run_upkeep
from davdrive.protocol import MAX_SIZE
from davdrive.service.access import Perm
from davdrive.service.auth import Accounts
from davdrive.service.block_api import MAX_CHECK, BlockApi
from davdrive.service.changes import Changes
from davdrive.service.checksums import ChecksumMismatch
from davdrive.service.delta_commit import DeltaCommit
from davdrive.service.locks import LockRepo, lock_url

MiB = 1 << 20
GRACE = 3600.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def api(drive, clock):
    return BlockApi(drive, grace=GRACE, clock=clock)


@pytest.fixture
def delta(drive, api):
    return DeltaCommit(drive, api)


def _chunks(data: bytes) -> list[bytes]:
    chunker = Chunker()
    return [*chunker.feed(data), *chunker.finish()]


def _upload(api: BlockApi, p, data: bytes) -> tuple[list[str], int]:
    """Chunk, check, put the missing blocks: (ids, bytes sent)."""
    blocks = _chunks(data)
    ids = [block_hash(b) for b in blocks]
    missing = set(api.check(p, ids))
    sent = 0
    for b, h in zip(blocks, ids, strict=True):
        if h in missing:
            api.put(p, h, b)
            missing.discard(h)
            sent += len(b)
    return ids, sent


def _commit(delta: DeltaCommit, p, path: str, data: bytes, ids, base_rev=None, **kw):
    return delta.commit(
        p,
        path,
        ids,
        size=kw.pop("size", len(data)),
        content_hash=kw.pop("content_hash", hashlib.sha256(data).hexdigest()),
        base_rev=base_rev,
        **kw,
    )


def _objects(drive) -> set[str]:
    return {o.key for o in drive.store.backend.list()}


def test_check_reports_what_the_account_lacks(drive, alice, bob, api):
    data = os.urandom(3 * MiB)
    drive.write_file(alice, "/f.bin", data)
    ids = [h for h, _ in drive.block_list(alice, "/f.bin")]
    small = drive.write_file(alice, "/small.txt", b"kept inline")
    small_id = drive.block_list(alice, "/small.txt")[0][0]
    assert small.size == 11
    other = block_hash(b"nobody has this")
    assert api.check(alice, [*ids, small_id, other, other]) == [other]  # inline counts; once
    assert api.check(bob, ids) == ids  # per account
    with pytest.raises(errors.BadRequest):
        api.check(alice, ["ABC"])
    with pytest.raises(errors.BadRequest):
        api.check(alice, [other.upper()])
    with pytest.raises(errors.BadRequest):
        api.check(alice, [other] * (MAX_CHECK + 1))
    assert api.check(alice, [other] * MAX_CHECK) == [other]


def test_put_verifies_the_id_and_the_size_and_deduplicates(drive, alice, api):
    block = os.urandom(300_000)
    h = block_hash(block)
    with pytest.raises(ChecksumMismatch):
        api.put(alice, block_hash(b"other"), block)
    with pytest.raises(errors.BadRequest):
        api.put(alice, "not-an-id", block)
    with pytest.raises(errors.BadRequest):
        api.put(alice, block_hash(b""), b"")
    big = b"\0" * (MAX_SIZE + 1)
    with pytest.raises(errors.FileTooLarge):
        api.put(alice, block_hash(big), big)
    before = _objects(drive)
    assert api.put(alice, h, block) is True
    written = _objects(drive) - before
    assert written == {drive.account_keys(alice.user_id).object_key(h)}
    assert api.check(alice, [h]) == []
    assert api.put(alice, h, block) is False  # dedup: no new write
    assert _objects(drive) - before == written
    # a block of a committed file is held too: nothing written
    drive.write_file(alice, "/f", os.urandom(2 * MiB))
    held = drive.block_list(alice, "/f")[0]
    again = drive.read_bytes(alice, "/f")[: held[1]]
    assert api.put(alice, held[0], again) is False


def test_staged_blocks_outlive_gc_in_their_grace_period_then_go(drive, alice, api, clock):
    block = os.urandom(200_000)
    h = block_hash(block)
    api.put(alice, h, block)
    key = drive.account_keys(alice.user_id).object_key(h)
    report = drive.fsck(repair=True)
    assert key not in report.orphans and key in _objects(drive)  # referenced while staged
    assert api.expire(clock.now + GRACE / 2) == 0
    clock.now += GRACE / 2
    api.put(alice, h, block)  # uploading again restarts its grace period
    assert api.expire(clock.now + GRACE - 1) == 0
    assert key in _objects(drive)
    assert api.expire(clock.now + GRACE + 1) == 1
    assert key not in _objects(drive)
    assert api.check(alice, [h]) == [h]


def test_expired_rows_leave_orphans_gc_collects(drive, alice, api, clock, monkeypatch):
    """Upkeep drops the row; an object it could not reclaim then is an orphan for GC."""
    block = os.urandom(100_000)
    h = block_hash(block)
    api.put(alice, h, block)
    key = drive.account_keys(alice.user_id).object_key(h)
    monkeypatch.setattr(drive.core, "reclaim", lambda owner, keys: 0)  # as if it crashed
    api.expire(clock.now + GRACE + 1)
    monkeypatch.undo()
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 2 * 86400)  # past the orphan grace
    report = drive.fsck(repair=True)
    assert key in report.orphans and key not in _objects(drive)


def test_a_commit_adopts_staged_blocks(drive, alice, api, delta, clock):
    data = os.urandom(5 * MiB + 777)
    feed = Changes(drive)
    cursor = feed.latest(alice)
    ids, sent = _upload(api, alice, data)
    assert sent == len(data)
    node, created = _commit(delta, alice, "/a.bin", data, ids, mtime=1.7e9)
    assert created and node.size == len(data) and node.version_id is not None
    assert node.content_hash == hashlib.sha256(data).hexdigest()
    assert drive.read_bytes(alice, "/a.bin") == data
    assert drive.stat(alice, "/a.bin").mtime == 1.7e9
    assert [h for h, _ in drive.block_list(alice, "/a.bin")] == ids
    changes, _, _ = feed.since(alice, cursor)
    assert [(c.kind, c.path) for c in changes] == [("created", "/a.bin")]
    # adopted: no longer staged, and the grace period's end takes nothing away
    api.expire(clock.now + 10 * GRACE)
    assert drive.read_bytes(alice, "/a.bin") == data
    assert drive.fsck(repair=True).ok


def test_a_commit_updates_with_base_rev_first_writer_wins(drive, alice, api, delta):
    rng = random.Random(7)  # the same cuts every run
    v1 = rng.randbytes(8 * MiB)
    ids, _ = _upload(api, alice, v1)
    node, _ = _commit(delta, alice, "/f", v1, ids)
    v2 = bytearray(v1)
    v2[4 * MiB + 5 : 4 * MiB + 105] = rng.randbytes(100)
    v2 = bytes(v2)
    ids2, sent = _upload(api, alice, v2)
    assert 0 < sent < len(v2) / 3  # only the changed block(s)
    node2, created = _commit(delta, alice, "/f", v2, ids2, base_rev=node.version_id)
    assert not created and node2.version_id != node.version_id
    assert drive.read_bytes(alice, "/f") == v2
    # a second writer from the same base loses, and learns the current revision
    with pytest.raises(errors.Conflict) as stale:
        _commit(delta, alice, "/f", v1, ids, base_rev=node.version_id)
    assert stale.value.details["current_rev"] == str(node2.version_id)
    # create over an existing file
    with pytest.raises(errors.Conflict) as exists:
        _commit(delta, alice, "/f", v1, ids, base_rev=None)
    assert exists.value.details["current_rev"] == str(node2.version_id)
    assert drive.read_bytes(alice, "/f") == v2
    # If-Match is honoured too
    with pytest.raises(errors.PreconditionFailed):
        _commit(delta, alice, "/f", v1, ids, base_rev=node2.version_id, if_match="nope")
    # a block the account keeps inline (a small file's) serves a commit too
    drive.write_file(alice, "/small.txt", b"small and inline")
    small_id = drive.block_list(alice, "/small.txt")[0][0]
    assert api.check(alice, [small_id]) == []
    _commit(delta, alice, "/copy.txt", b"small and inline" * 2, [small_id, small_id])
    assert drive.read_bytes(alice, "/copy.txt") == b"small and inline" * 2
    # the empty file
    empty, created = _commit(delta, alice, "/empty", b"", [])
    assert created and empty.size == 0 and drive.read_bytes(alice, "/empty") == b""


def test_a_commit_refuses_missing_blocks_wrong_size_and_wrong_hash(drive, alice, api, delta):
    data = os.urandom(2 * MiB)
    ids, _ = _upload(api, alice, data)
    ghost = block_hash(b"never uploaded")
    with pytest.raises(errors.BadRequest) as missing:
        _commit(delta, alice, "/f", data, [*ids, ghost])
    assert missing.value.details["missing"] == [ghost]
    with pytest.raises(errors.BadRequest):
        _commit(delta, alice, "/f", data, ids, size=len(data) + 1)
    with pytest.raises(ChecksumMismatch):
        _commit(delta, alice, "/f", data, ids, content_hash=hashlib.sha256(b"x").hexdigest())
    with pytest.raises(errors.BadRequest):
        _commit(delta, alice, "/f", data, ids, content_hash="xyz")
    with pytest.raises(errors.NotFound):
        drive.stat(alice, "/f")
    assert api.check(alice, ids) == []  # a refused commit keeps the staged blocks
    with pytest.raises(errors.ParentNotFound):
        _commit(delta, alice, "/no/such/f", data, ids)


def test_quota_counts_staged_blocks(drive, api, delta):
    small = drive.create_account("small", "x", quota=MiB)
    a, b = os.urandom(600_000), os.urandom(600_000)
    api.put(small, block_hash(a), a)
    with pytest.raises(errors.QuotaExceeded):
        api.put(small, block_hash(b), b)
    assert api.check(small, [block_hash(b)]) == [block_hash(b)]
    # a commit turns staged bytes into used bytes: still no room for b
    _commit(delta, small, "/a", a, [block_hash(a)])
    with pytest.raises(errors.QuotaExceeded):
        api.put(small, block_hash(b), b)


def test_commit_over_quota_and_into_a_lock(drive, alice, api, delta):
    data = os.urandom(MiB)
    ids, _ = _upload(api, alice, data)
    node, _ = _commit(delta, alice, "/f", data, ids)
    token = LockRepo(drive.db).create(
        lock_url(alice.login, "/f"),
        {
            "type": "write",
            "scope": "exclusive",
            "depth": "0",
            "owner": b"",
            "timeout": 600,
            "principal": alice.login,
        },
    )["token"]
    v2 = os.urandom(MiB)
    ids2, _ = _upload(api, alice, v2)
    with pytest.raises(errors.Locked):
        _commit(delta, alice, "/f", v2, ids2, base_rev=node.version_id)
    holder = replace(alice, lock_tokens=frozenset({token}))
    _commit(delta, holder, "/f", v2, ids2, base_rev=node.version_id)
    tight = drive.create_account("tight", "x", quota=3 * MiB)
    big = os.urandom(2 * MiB)
    ids3, _ = _upload(api, tight, big)
    _commit(delta, tight, "/one", big, ids3)
    copy = os.urandom(2 * MiB - 1000)
    with pytest.raises(errors.QuotaExceeded):
        _upload(api, tight, copy)  # staging itself is over quota


def test_a_commit_into_a_share_of_another_account(drive, alice, bob, api, delta):
    drive.mkdir(alice, "/team")
    drive.shares.create(alice, "/team", "bob", int(Perm.READ | Perm.WRITE | Perm.CREATE))
    data = os.urandom(3 * MiB)
    ids, _ = _upload(api, bob, data)
    node, created = _commit(delta, bob, "/team/a.bin", data, ids)
    assert created and node.size == len(data)
    assert drive.read_bytes(alice, "/team/a.bin") == data
    assert drive.read_bytes(bob, "/team/a.bin") == data
    # sealed for alice: her account holds the blocks now, bob's staged copies are gone
    assert api.check(alice, ids) == []
    assert api.check(bob, ids) == ids
    assert drive.fsck(repair=True).ok
    # an update through the share with base_rev, from blocks bob uploads again
    v2 = data[:MiB] + os.urandom(100) + data[MiB + 100 :]
    ids2, _ = _upload(api, bob, v2)
    node2, created = _commit(delta, bob, "/team/a.bin", v2, ids2, base_rev=node.version_id)
    assert not created and drive.read_bytes(alice, "/team/a.bin") == v2
    with pytest.raises(errors.Conflict):
        _commit(delta, bob, "/team/a.bin", v2, ids2, base_rev=node.version_id)
    # a read-only share refuses
    drive.mkdir(alice, "/ro")
    drive.shares.create(alice, "/ro", "bob", int(Perm.READ))
    ids3, _ = _upload(api, bob, b"read only")
    with pytest.raises(errors.PermissionDenied):
        _commit(delta, bob, "/ro/x", b"read only", ids3)


def test_get_serves_only_blocks_of_readable_files(drive, alice, bob, api, delta):
    secret = os.urandom(2 * MiB)
    drive.write_file(alice, "/private.bin", secret)
    shared = os.urandom(2 * MiB)
    drive.mkdir(alice, "/team")
    drive.write_file(alice, "/team/s.bin", shared)
    private_id, private_size = drive.block_list(alice, "/private.bin")[0]
    shared_id, shared_size = drive.block_list(alice, "/team/s.bin")[0]
    assert api.get(alice, private_id) == secret[:private_size]
    unknown = block_hash(b"unknown")
    for p, h in ((bob, private_id), (bob, shared_id), (alice, unknown)):
        with pytest.raises(errors.NotFound):
            api.get(p, h)
    # a staged block no file uses is not served, not even to its uploader
    staged = os.urandom(1000)
    api.put(bob, block_hash(staged), staged)
    with pytest.raises(errors.NotFound):
        api.get(bob, block_hash(staged))
    drive.shares.create(alice, "/team", "bob", int(Perm.READ))
    assert api.get(bob, shared_id) == shared[:shared_size]
    with pytest.raises(errors.NotFound):  # the share does not open the rest of alice's tree
        api.get(bob, private_id)
    # a kept revision of a readable file still serves its blocks
    drive.write_file(alice, "/team/s.bin", b"replaced")
    assert api.get(bob, shared_id) == shared[:shared_size]
    # a file in alice's trash is hers to read, not bob's
    drive.delete(alice, "/team/s.bin")
    with pytest.raises(errors.NotFound):
        api.get(bob, shared_id)
    assert api.get(alice, shared_id) == shared[:shared_size]


def test_upkeep_expires_staged_blocks(drive, alice, api, clock):
    block = os.urandom(70_000)
    api.put(alice, block_hash(block), block)
    app = SimpleNamespace(
        drive=drive,
        db=drive.db,
        accounts=Accounts(drive),
        config=SimpleNamespace(
            journal_retention_days=90.0, session_idle_minutes=480.0, staged_block_grace=GRACE
        ),
    )
    assert run_upkeep(app, now=clock.now + GRACE - 1).blocks_expired == 0
    assert run_upkeep(app, now=clock.now + GRACE + 1).blocks_expired == 1
    assert api.check(alice, [block_hash(block)]) == [block_hash(block)]
