"""davdrive.service.checksums: the ``OC-Checksum`` header and the streaming digests."""

from __future__ import annotations

import hashlib
import zlib

import pytest
from sqlalchemy import func, select

from davdrive.errors import BadRequest
from davdrive.metadata.schema import Change
from davdrive.service.checksums import (
    SUPPORTED,
    ChecksumMismatch,
    ContentChecksum,
    parse_oc_checksum,
)

DATA = b"The quick brown fox jumps over the lazy dog" * 1000
SHA1 = hashlib.sha1(DATA).hexdigest()
MD5 = hashlib.md5(DATA).hexdigest()
ADLER = f"{zlib.adler32(DATA):08x}"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"SHA1:{SHA1}", ("SHA1", SHA1)),
        (f"sha1:{SHA1.upper()}", ("SHA1", SHA1)),
        (f"MD5:{MD5}", ("MD5", MD5)),
        (f"Adler32:{ADLER}", ("ADLER32", ADLER)),
        (f"ADLER32:{ADLER.upper()}", ("ADLER32", ADLER)),
        (f"  SHA1:{SHA1}  ", ("SHA1", SHA1)),
        (f"SHA256:{'0' * 64} MD5:{MD5}", ("MD5", MD5)),  # the first supported one
        ("SHA256:" + "0" * 64, None),  # not a type davdrive verifies: not checked
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_parse(header: str | None, expected: tuple[str, str] | None) -> None:
    assert parse_oc_checksum(header) == expected


@pytest.mark.parametrize(
    "header",
    ["SHA1:", "SHA1", "SHA1:xyz", f"SHA1:{SHA1[:-1]}", f"MD5:{MD5}00", "Adler32:1234567", "MD5:-"],
)
def test_parse_refuses_a_malformed_value(header: str) -> None:
    with pytest.raises(BadRequest):
        parse_oc_checksum(header)


@pytest.mark.parametrize(
    ("kind", "digest"), [("SHA1", SHA1), ("md5", MD5), ("Adler32", ADLER), ("ADLER32", ADLER)]
)
def test_streaming_digest(kind: str, digest: str) -> None:
    whole = ContentChecksum(kind)
    whole.update(DATA)
    pieces = ContentChecksum(kind)
    view = memoryview(DATA)
    for i in range(0, len(DATA), 4097):
        pieces.update(view[i : i + 4097])
    assert whole.hexdigest() == pieces.hexdigest() == digest
    pieces.verify(digest.upper())
    with pytest.raises(ChecksumMismatch) as info:
        pieces.verify("0" * len(digest))
    assert info.value.code == "checksum_mismatch"
    assert isinstance(info.value, BadRequest)


def test_adler32_is_zero_padded() -> None:
    empty = ContentChecksum("ADLER32")
    assert empty.hexdigest() == "00000001"  # adler32 of nothing, 8 digits as ownCloud writes
    small = ContentChecksum("ADLER32")
    small.update(b"a")
    assert small.hexdigest() == f"{zlib.adler32(b'a'):08x}" and len(small.hexdigest()) == 8


def test_supported_names() -> None:
    assert SUPPORTED == ContentChecksum.SUPPORTED == ("SHA1", "MD5", "ADLER32")
    with pytest.raises(BadRequest):
        ContentChecksum("SHA256")


# -- the upload path: Upload verifies, and refuses to commit on a mismatch -----------------


def _objects(drive) -> int:
    return sum(1 for _ in drive.store.backend.list())


def _changes(drive) -> int:
    with drive.db.read() as s:
        return s.scalar(select(func.count()).select_from(Change)) or 0


BIG = bytes(range(256)) * 4096 + b"unique body for the checksum test"  # ~1 MiB: stored blocks


@pytest.mark.parametrize(("kind", "algo"), [("SHA1", "sha1"), ("MD5", "md5")])
def test_upload_with_the_right_checksum_commits(drive, alice, kind: str, algo: str) -> None:
    digest = hashlib.new(algo, BIG).hexdigest()
    up = drive.begin_upload(alice, "/f.bin", declared_size=len(BIG), checksum=(kind, digest))
    up.write(BIG[:1000])
    up.write(BIG[1000:])
    info = up.commit(expected_size=len(BIG))
    assert info.size == len(BIG) and drive.read_bytes(alice, "/f.bin") == BIG


def test_upload_with_a_wrong_checksum_commits_nothing(drive, alice) -> None:
    drive.write_file(alice, "/f.bin", b"old content")
    before = (_objects(drive), _changes(drive), len(drive.list_versions(alice, "/f.bin")))
    for path in ("/f.bin", "/new.bin"):
        up = drive.begin_upload(alice, path, checksum=("ADLER32", "00000001"))
        up.write(BIG)
        with pytest.raises(ChecksumMismatch):
            up.commit()
        up.abort()  # idempotent
        with pytest.raises(BadRequest):
            up.commit()  # finished
    assert drive.read_bytes(alice, "/f.bin") == b"old content"
    assert drive.try_stat(alice, "/new.bin") is None
    after = (_objects(drive), _changes(drive), len(drive.list_versions(alice, "/f.bin")))
    assert after == before  # no block kept, no journal row, no version


def test_begin_upload_refuses_an_unknown_type(drive, alice) -> None:
    with pytest.raises(BadRequest):
        drive.begin_upload(alice, "/f.bin", checksum=("SHA256", "0" * 64))
