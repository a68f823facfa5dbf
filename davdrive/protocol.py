"""What a delta-sync client and the server must agree on, importable by both (the sync client
may import nothing else of davdrive): the chunking parameters, published at
``GET /api/v1/capabilities``, the chunker itself and the block id.

FastCDC (2020, gear hash) as implemented by ``pyfastcdc`` with min 256 KiB, average 1 MiB,
max 4 MiB, normalized chunking level 3, seed 0; a block's id is the BLAKE3-256 hex digest of
its plaintext. Level 3 (not pyfastcdc's default 1) keeps most blocks near the average size: a
small edit re-sends the block it lands in, and a random offset is likely to land in a big
block when sizes spread widely (docs/SYNC.md, "Why normalized chunking 3").
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import BinaryIO, NamedTuple

from blake3 import blake3

KiB = 1024
MiB = 1024 * KiB

MIN_SIZE = 256 * KiB
AVG_SIZE = 1 * MiB
MAX_SIZE = 4 * MiB
NORMALIZED_CHUNKING = 3

CHUNK_PARAMS: dict[str, object] = {
    "algorithm": "fastcdc-2020",
    "implementation": "pyfastcdc 0.3",
    "min_size": MIN_SIZE,
    "avg_size": AVG_SIZE,
    "max_size": MAX_SIZE,
    "normalized_chunking": NORMALIZED_CHUNKING,
    "seed": 0,
    "block_id": "blake3-256 hex of the plaintext block",
}


def _fastcdc_class() -> type:
    """The compiled FastCDC class; refuse the pure-Python fallback (~10 MB/s, 200x slower)."""
    try:
        from pyfastcdc.cy import FastCDC
    except ImportError as exc:  # pragma: no cover - depends on the installed wheel
        raise RuntimeError(
            "pyfastcdc's compiled module did not load; its pure-Python fallback is far too slow "
            f"for a file server or a sync client ({exc}). Reinstall pyfastcdc from a wheel for "
            "this platform."
        ) from exc
    return FastCDC


_FastCDC = _fastcdc_class()


def make_chunker() -> object:
    """A FastCDC instance with the published parameters."""
    return _FastCDC(
        AVG_SIZE,
        min_size=MIN_SIZE,
        max_size=MAX_SIZE,
        normalized_chunking=NORMALIZED_CHUNKING,
        seed=0,
    )


def block_id(data: bytes | bytearray | memoryview) -> str:
    """A block's id: BLAKE3-256 hex of its plaintext."""
    return blake3(data).hexdigest()


class Chunker:
    """Push-style chunker: feed bytes, take complete blocks; bounded to ~2 x max block size.

    Cut points depend only on the content, never on how the stream was split into writes.
    """

    def __init__(self) -> None:
        self._cdc = make_chunker()
        self._buf = bytearray()

    def feed(self, data: bytes | bytearray | memoryview) -> Iterator[bytes]:
        """Append ``data``; yield every block whose end is now certain."""
        self._buf += data
        while len(self._buf) >= MAX_SIZE:
            # With >= max_size bytes buffered the first cut is final whatever follows.
            first = next(iter(self._cdc.cut_buf(memoryview(self._buf)[:MAX_SIZE])))
            n = first.length
            del first
            block = bytes(memoryview(self._buf)[:n])
            del self._buf[:n]
            yield block

    def pending(self) -> bytes:
        """The bytes after the last certain cut (what a resumed stream must feed first)."""
        return bytes(self._buf)

    def finish(self) -> Iterator[bytes]:
        """Yield the remaining blocks at end of stream."""
        view = memoryview(self._buf)
        try:
            for chunk in self._cdc.cut_buf(view):
                yield bytes(chunk.data)
                del chunk
        finally:
            view.release()
            self._buf = bytearray()


def chunk_bytes(data: bytes) -> list[bytes]:
    """Cut a whole buffer (tests and small writes)."""
    return [bytes(c.data) for c in make_chunker().cut_buf(data)]


class Block(NamedTuple):
    """One block of a file: where it starts, how long it is, its id."""

    offset: int
    size: int
    id: str


def iter_blocks(
    f: BinaryIO,
    *,
    read_size: int = MiB,
    on_data: Callable[[bytes], None] | None = None,
) -> Iterator[Block]:
    """Cut an open binary file (from its current position) into blocks, streaming: memory
    stays bounded by ~2 x ``MAX_SIZE`` + ``read_size`` whatever the file's size.

    ``on_data`` sees every byte read, in order (e.g. a SHA-256 of the whole content).
    """
    chunker = Chunker()
    offset = 0
    while True:
        data = f.read(read_size)
        if not data:
            break
        if on_data is not None:
            on_data(data)
        for b in chunker.feed(data):
            yield Block(offset, len(b), block_id(b))
            offset += len(b)
    for b in chunker.finish():
        yield Block(offset, len(b), block_id(b))
        offset += len(b)


def file_blocks(path: str, *, read_size: int = MiB) -> tuple[list[Block], str, int]:
    """A file's blocks, its SHA-256 hex (the ``content_hash`` revisions report) and size, in
    one streaming read."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        blocks = list(iter_blocks(f, read_size=read_size, on_data=sha.update))
    return blocks, sha.hexdigest(), sum(b.size for b in blocks)


__all__ = [
    "AVG_SIZE",
    "CHUNK_PARAMS",
    "MAX_SIZE",
    "MIN_SIZE",
    "NORMALIZED_CHUNKING",
    "Block",
    "Chunker",
    "block_id",
    "chunk_bytes",
    "file_blocks",
    "iter_blocks",
    "make_chunker",
]
