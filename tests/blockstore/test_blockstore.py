"""Block store: round trips, content-defined cuts, dedup, tamper detection, bounded memory."""

from __future__ import annotations

import hashlib
import os
import random
import threading

import pytest

from davdrive.blockstore import blockformat
from davdrive.blockstore.chunker import MAX_SIZE, MIN_SIZE, Chunker, chunk_bytes
from davdrive.blockstore.keys import AccountKeys, new_data_key
from davdrive.blockstore.store import BlockStore
from davdrive.errors import InsufficientStorage, IntegrityError
from davdrive.storage.local import LocalBackend
from davdrive.storage.memory import MemoryBackend

MiB = 1 << 20


def text_like(n: int, seed: int = 1) -> bytes:
    rnd = random.Random(seed)
    words = [f"word{i}" for i in range(2000)] + ["the", "and", "file", "drive", "block"] * 50
    out = bytearray()
    while len(out) < n:
        out += (" ".join(rnd.choices(words, k=12)) + f" {rnd.randrange(10**6)}\n").encode()
    return bytes(out[:n])


@pytest.fixture
def keys() -> AccountKeys:
    return AccountKeys.from_data_key(new_data_key(), 1)


@pytest.fixture
def store():
    s = BlockStore(MemoryBackend(), zstd_level=1, threads=2)
    yield s
    s.close()


def ingest(store, keys, data: bytes, piece: int = 64 * 1024, known=None):
    seen = known if known is not None else set()
    ing = store.ingest(keys, known=lambda h: h in seen)
    for i in range(0, len(data), piece):
        ing.write(data[i : i + piece])
    return ing.finish()


def manifest(result):
    return [(b.hash, b.object_key, b.offset, b.size, b.inline) for b in result.blocks]


def read_all(store, keys, result) -> bytes:
    reader = store.open_reader(keys, manifest(result), result.size)
    try:
        return reader.read()
    finally:
        reader.close()


@pytest.mark.parametrize("size", [0, 1, MIN_SIZE - 1, MIN_SIZE + 1, 9 * MiB + 7])
def test_roundtrip_sizes(store, keys, size):
    data = os.urandom(size)
    result = ingest(store, keys, data)
    assert result.size == size
    assert read_all(store, keys, result) == data
    import hashlib

    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert sum(b.size for b in result.blocks) == size


def test_block_sizes_respect_published_bounds(store, keys):
    result = ingest(store, keys, os.urandom(24 * MiB))
    sizes = [b.size for b in result.blocks]
    assert all(MIN_SIZE <= s <= MAX_SIZE for s in sizes[:-1])
    assert 0.4 * MiB < sum(sizes) / len(sizes) < 2.5 * MiB


def test_cuts_do_not_depend_on_write_sizes(store, keys):
    data = os.urandom(12 * MiB)
    reference = [blockformat.block_hash(c) for c in chunk_bytes(data)]
    for piece in (1000, 65536, 5 * MiB):
        result = ingest(store, keys, data, piece=piece)
        assert [b.hash for b in result.blocks] == reference


def test_chunker_buffer_is_bounded():
    c = Chunker()
    for _ in range(40):
        list(c.feed(os.urandom(MiB)))
        assert len(c._buf) < MAX_SIZE + MiB


def test_seek_and_ranged_reads(store, keys):
    data = os.urandom(10 * MiB)
    result = ingest(store, keys, data)
    reader = store.open_reader(keys, manifest(result), result.size)
    rnd = random.Random(3)
    for _ in range(30):
        start = rnd.randrange(len(data))
        n = rnd.randrange(1, 3 * MiB)
        reader.seek(start)
        assert reader.read_exactly(n) == data[start : start + n]
        reader.seek(start)
        assert data[start:].startswith(reader.read(n))  # raw reads may be short
    reader.seek(len(data))
    assert reader.read(10) == b""
    reader.close()


def test_compressible_blocks_are_compressed_and_random_ones_stored_raw(store, keys):
    text = ingest(store, keys, text_like(4 * MiB))
    assert sum(b.stored_size for b in text.blocks) < 0.6 * text.size
    rnd = ingest(store, keys, os.urandom(4 * MiB))
    assert all(b.stored_size == b.size + blockformat.OVERHEAD for b in rnd.blocks)


def test_same_content_twice_adds_under_one_percent(keys, tmp_path):
    store = BlockStore(LocalBackend(tmp_path / "blocks"))
    data = os.urandom(32 * MiB)
    known: set[str] = set()
    first = ingest(store, keys, data, known=known)
    known.update(b.hash for b in first.blocks)
    stored_before = sum(o.size for o in store.backend.list())
    second = ingest(store, keys, data, known=known)
    stored_after = sum(o.size for o in store.backend.list())
    assert not any(b.new for b in second.blocks)
    assert stored_after - stored_before < 0.01 * len(data)
    store.close()


def test_one_byte_insertion_changes_at_most_three_blocks(store, keys):
    data = os.urandom(32 * MiB)
    first = ingest(store, keys, data)
    known = {b.hash for b in first.blocks}
    middle = len(data) // 2
    edited = data[:middle] + b"!" + data[middle:]
    second = ingest(store, keys, edited, known=known)
    new_blocks = [b for b in second.blocks if b.new]
    print(f"one-byte insertion in 32 MiB: {len(new_blocks)} new of {len(second.blocks)} blocks")
    assert 1 <= len(new_blocks) <= 3


def test_small_edits_re_send_at_most_two_and_a_half_mib():
    """Issue 11's byte goal rests on the published chunking: over 16 random contents a 1-byte
    insert mid-file cuts at most 2.5 MiB of new blocks, and so does a 1 MiB append but for
    rare contents (the former last block is re-sent: over 1 GiB of random data the share of
    offsets where that exceeds 1.5 MiB is ~0.2 % with normalized chunking 3, ~9 % with 1;
    docs/SYNC.md). With normalized chunking 1 this test fails on both counts."""
    inserts, appends = [], []
    for seed in range(16):
        rnd = random.Random(seed)
        data = rnd.randbytes(24 * MiB)
        old = set(chunk_bytes(data))
        middle = len(data) // 2
        edited = data[:middle] + b"!" + data[middle:]
        inserts.append(sum(len(b) for b in chunk_bytes(edited) if b not in old))
        appended = data + rnd.randbytes(MiB)
        appends.append(sum(len(b) for b in chunk_bytes(appended) if b not in old))
    print("insert MiB:", [round(x / MiB, 2) for x in inserts])
    print("append MiB:", [round(x / MiB, 2) for x in appends])
    assert all(0 < x <= 2.5 * MiB for x in inserts)
    assert all(x >= MiB for x in appends)
    assert sum(x > 2.5 * MiB for x in appends) <= 1


def test_duplicate_blocks_inside_one_stream_are_stored_once(store, keys):
    piece = os.urandom(8 * MiB)
    result = ingest(store, keys, piece * 3)
    hashes = [b.hash for b in result.blocks]
    assert len(set(hashes)) < len(hashes)  # CDC resynchronises: the copies share blocks
    assert sum(1 for b in result.blocks if b.new) == len(set(hashes))
    assert read_all(store, keys, result) == piece * 3


def test_flipped_byte_is_an_integrity_error(store, keys):
    data = os.urandom(3 * MiB)
    result = ingest(store, keys, data)
    okey = result.blocks[0].object_key
    blob = bytearray(store.backend.get(okey))
    blob[len(blob) // 2] ^= 0x01
    store.backend.put(okey, bytes(blob))
    with pytest.raises(IntegrityError):
        read_all(store, keys, result)


def test_swapped_block_is_an_integrity_error(store, keys):
    a = ingest(store, keys, os.urandom(MIN_SIZE))
    b = ingest(store, keys, os.urandom(MIN_SIZE))
    store.backend.put(a.blocks[0].object_key, store.backend.get(b.blocks[0].object_key))
    with pytest.raises(IntegrityError):
        read_all(store, keys, a)


def test_missing_block_is_an_integrity_error(store, keys):
    result = ingest(store, keys, os.urandom(MIN_SIZE))
    store.backend.delete(result.blocks[0].object_key)
    with pytest.raises(IntegrityError):
        read_all(store, keys, result)


def test_other_account_keys_cannot_read_or_link(store, keys):
    other = AccountKeys.from_data_key(new_data_key(), 1)
    data = os.urandom(MIN_SIZE)
    mine = ingest(store, keys, data)
    theirs = ingest(store, other, data)
    assert mine.blocks[0].hash == theirs.blocks[0].hash
    assert mine.blocks[0].object_key != theirs.blocks[0].object_key
    with pytest.raises(IntegrityError):
        store.read_block(other, mine.blocks[0].hash, mine.blocks[0].object_key)


def test_marker_is_not_visible_at_rest(keys, tmp_path):
    marker = b"SECRET-MARKER-0123456789"
    store = BlockStore(LocalBackend(tmp_path / "blocks"), zstd_level=1)
    ingest(store, keys, marker * (3 * MiB // len(marker)))
    ingest(store, keys, marker)
    store.close()
    for path in (tmp_path / "blocks").rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            assert marker not in blob and marker[:8] not in blob


def test_backend_failure_surfaces_and_nothing_is_returned(keys):
    class Full(MemoryBackend):
        def put(self, key, data):
            raise InsufficientStorage("disk full")

    store = BlockStore(Full())
    ing = store.ingest(keys, known=lambda h: False)
    with pytest.raises(InsufficientStorage):
        for _ in range(20):
            ing.write(os.urandom(MiB))
        ing.finish()
    ing.abort()
    store.close()


def test_writer_waits_for_slow_workers(keys):
    """Back-pressure: a slow backend bounds how many blocks are in flight."""
    in_flight = 0
    peak = 0
    lock = threading.Lock()
    gate = threading.Event()

    class Slow(MemoryBackend):
        def put(self, key, data):
            nonlocal in_flight, peak
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)
            gate.wait(0.05)
            super().put(key, data)
            with lock:
                in_flight -= 1

    store = BlockStore(Slow(), threads=2)
    result = ingest(store, keys, os.urandom(40 * MiB), piece=MiB)
    assert len(result.blocks) > 10
    assert peak <= 2 * 2 + 1  # 2 x threads + 1 blocks in flight at most
    store.close()


def test_sha256_is_right_whatever_the_pieces(store, keys):
    """The stream hash runs on its own thread for large pieces: order is kept across small and
    large pieces, and a caller that reuses its buffer after write() cannot change it."""
    data = os.urandom(9 * MiB + 12345)
    sizes = [10, 3 * MiB, 7, 64 * 1024, 2 * MiB + 1, 100, 1 * MiB]
    ing = store.ingest(keys, known=lambda h: False)
    pos, i = 0, 0
    buf = bytearray(4 * MiB)
    while pos < len(data):
        n = min(sizes[i % len(sizes)], len(data) - pos)
        buf[:n] = data[pos : pos + n]
        ing.write(memoryview(buf)[:n])  # a reused, writable buffer
        buf[:n] = b"\0" * n  # scribbled over as soon as write() returns
        pos, i = pos + n, i + 1
    result = ing.finish()
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert read_all(store, keys, result) == data
