"""The block store: "save a stream / load a block" over a storage backend (restic's repository).

Write path (``ingest``): the caller's thread feeds the body, cuts content-defined blocks and
updates the whole-file SHA-256; worker threads hash each block (BLAKE3), skip blocks the account
already has, compress, encrypt and store it durably. Every step releases the GIL, so the two
overlap on two cores. Memory is bounded: at most ``threads + 1`` blocks (<= 4 MiB each) are in
flight per ingest plus the chunker's buffer (< 8 MiB); a caller that writes faster than the
workers store is made to wait.

Read path (``open_reader``): a seekable reader over a version's block list that opens one block
at a time and opens the next one on a worker while the current one is consumed.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from davdrive.blockstore import blockformat
from davdrive.blockstore.chunker import Chunker
from davdrive.blockstore.keys import AccountKeys
from davdrive.blockstore.memory import tune_allocator
from davdrive.errors import BadRequest, IntegrityError, NotFound
from davdrive.storage.base import BlockBackend
from davdrive.storage.tiered import TieredBackend


@dataclass(frozen=True)
class BlockRef:
    """One block of a stream: its id, where it lives, and where it sits in the stream."""

    hash: str
    object_key: str
    offset: int
    size: int  # plaintext bytes
    stored_size: int  # bytes in the backend (0 when the block was already stored)
    new: bool  # stored by this ingest (else deduplicated)
    # A small stream's only block, sealed but not written: the caller keeps these bytes (in
    # its database) instead of a backend object, and settles dedup when it records them.
    inline: bytes | None = None


@dataclass(frozen=True)
class IngestResult:
    size: int
    sha256: str
    blocks: list[BlockRef]


# (hash, object_key, offset, size) or, for a block kept inline, (..., sealed bytes)
ManifestEntry = tuple[str, str, int, int] | tuple[str, str, int, int, bytes | None]

INLINE_MAX = 64 << 10  # a stream this small becomes one inline block (see BlockRef.inline)


class BlockStore:
    """Chunk → BLAKE3 → dedup → zstd → AES-GCM → backend, and back."""

    def __init__(
        self,
        backend: BlockBackend,
        *,
        zstd_level: int = 1,
        threads: int = 2,
        min_saving: float = 0.03,
        inline_max: int = INLINE_MAX,
    ) -> None:
        tune_allocator()
        self.backend = backend
        self.inline_max = inline_max
        self.zstd_level = zstd_level
        self.threads = max(1, threads)
        self.min_saving = min_saving
        self._pool = ThreadPoolExecutor(self.threads * 2, thread_name_prefix="blockstore")
        # The whole-stream SHA-256 runs here, beside the caller's chunking (one thread keeps
        # each stream's pieces in order; hashlib releases the GIL).
        self._hasher = ThreadPoolExecutor(1, thread_name_prefix="blockstore-sha")

    # -- single blocks -------------------------------------------------------------------------
    def put_block(
        self,
        keys: AccountKeys,
        data: bytes,
        *,
        known: bool = False,
        offset: int = 0,
        block_hash: str | None = None,
    ) -> BlockRef:
        """Store one block (a resumable upload's, a delta-sync client's); ``known`` skips the
        write; ``offset`` is the block's place in its stream; ``block_hash`` if computed."""
        h = block_hash if block_hash is not None else blockformat.block_hash(data)
        return self._store(keys, h, data, offset, known)

    def _store(self, keys: AccountKeys, h: str, data: bytes, offset: int, known: bool) -> BlockRef:
        okey = keys.object_key(h)
        if known:
            return BlockRef(h, okey, offset, len(data), 0, False)
        blob = blockformat.encode(keys, h, data, level=self.zstd_level, min_saving=self.min_saving)
        self.backend.put(okey, blob)
        return BlockRef(h, okey, offset, len(data), len(blob), True)

    def delete_object(self, object_key: str) -> None:
        """Remove a stored object (the caller made sure nothing refers to it)."""
        self.backend.delete(object_key)

    def has_object(self, object_key: str) -> bool:
        """Whether the backend holds the object (dedup checks this before skipping a write)."""
        return self.backend.exists(object_key)

    def seal(self, keys: AccountKeys, data: bytes, offset: int = 0) -> BlockRef:
        """Seal one block without storing it: a ``BlockRef`` whose ``inline`` bytes the caller
        keeps (the caller's thread does the work: a small block costs less than a hand-off)."""
        h = blockformat.block_hash(data)
        blob = blockformat.encode(keys, h, data, level=self.zstd_level, min_saving=self.min_saving)
        return BlockRef(h, keys.object_key(h), offset, len(data), len(blob), True, blob)

    def read_block(
        self, keys: AccountKeys, block_hash: str, object_key: str, inline: bytes | None = None
    ) -> bytes:
        """Fetch (or take the ``inline`` sealed bytes), authenticate, decompress and verify one
        block (``IntegrityError``). A damaged copy makes a replicated backend offer the next."""
        if inline is not None:
            return blockformat.decode(keys, block_hash, inline)
        damaged: IntegrityError | None = None
        try:
            for blob in self.backend.copies(object_key):
                try:
                    return blockformat.decode(keys, block_hash, blob)
                except IntegrityError as exc:
                    damaged = exc
        except NotFound:
            raise IntegrityError(f"block {block_hash[:16]} is missing from storage") from None
        raise damaged or IntegrityError(f"block {block_hash[:16]} is missing from storage")

    # -- the cold tier -----------------------------------------------------------------------------
    @property
    def cold(self) -> TieredBackend | None:
        """The cold tier, when the config's ``archive`` section turns it on."""
        return self.backend if isinstance(self.backend, TieredBackend) else None

    def archive_block(self, keys: AccountKeys, block_hash: str, object_key: str) -> None:
        """Move one block's object to the cold tier (idempotent; a half-done move is
        finished). A copy to a cold store takes a hot copy that authenticates and matches its
        id (a damaged replica is skipped); ``IntegrityError`` when none does."""
        cold = self.cold
        if cold is None:
            raise RuntimeError("no cold tier is configured (the config's archive section)")
        if not cold.wants_bytes:
            cold.archive(object_key)
            return
        blob: bytes | None = None
        damaged = False
        try:
            for copy in cold.hot.copies(object_key):
                try:
                    blockformat.decode(keys, block_hash, copy)
                except IntegrityError:
                    damaged = True
                    continue
                blob = copy
                break
        except NotFound:
            pass
        if blob is None and damaged:
            raise IntegrityError(f"block {block_hash[:16]}: no hot copy is intact; not archived")
        cold.archive(object_key, blob)

    def thaw_block(self, object_key: str) -> bool:
        """Bring an archived block's object back to the hot tier; False while it must be
        restored first (the restore is requested)."""
        cold = self.cold
        if cold is None:
            raise RuntimeError("no cold tier is configured (the config's archive section)")
        return cold.thaw(object_key)

    def restore_states(self, object_keys: Sequence[str]) -> dict[str, str]:
        """For cold objects: ``ready`` to read, else ``requested`` (a restore was asked just
        now) or ``pending`` (one is under way); the checks run on the worker threads."""
        cold = self.cold
        if cold is None or not cold.needs_restore or not object_keys:
            return dict.fromkeys(object_keys, "ready")
        keys = list(dict.fromkeys(object_keys))
        return dict(zip(keys, self._pool.map(cold.restore_state, keys), strict=True))

    # -- streams ---------------------------------------------------------------------------------
    def ingest(self, keys: AccountKeys, known: Callable[[str], bool]) -> Ingest:
        """Start storing a stream; ``known(hash)`` says whether the account has a block."""
        return Ingest(self, keys, known)

    def open_reader(
        self, keys: AccountKeys, manifest: Sequence[ManifestEntry], size: int
    ) -> BlockReader:
        """A seekable reader over blocks ``(hash, object_key, offset, size)`` in order."""
        return BlockReader(self, keys, list(manifest), size)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._hasher.shutdown(wait=True, cancel_futures=True)
        self.backend.close()


class Ingest:
    """One stream being stored. ``write`` pieces, then ``finish`` (or ``abort``)."""

    def __init__(self, store: BlockStore, keys: AccountKeys, known: Callable[[str], bool]):
        self._store = store
        self._keys = keys
        self._known = known
        self._chunker = Chunker()
        self._sha = hashlib.sha256()
        self._sha_pending: deque[Future[None]] = deque()
        self._offset = 0
        self._futures: list[Future[BlockRef]] = []
        # Workers spend much of their time in fsync; keep enough blocks in flight that the CPU
        # is busy meanwhile (bounded: at most ~2 x threads + 1 blocks of <= 4 MiB).
        self._slots = threading.BoundedSemaphore(2 * store.threads + 1)
        self._seen: set[str] = set()
        self._seen_lock = threading.Lock()
        self._closed = False
        self._error: BaseException | None = None
        self.bytes_received = 0

    def _work(self, block: bytes, offset: int) -> BlockRef:
        try:
            h = blockformat.block_hash(block)
            with self._seen_lock:
                dup = h in self._seen
                self._seen.add(h)
            return self._store._store(self._keys, h, block, offset, dup or self._known(h))
        except BaseException as exc:
            self._error = exc
            raise
        finally:
            self._slots.release()

    def _submit(self, block: bytes) -> None:
        self._slots.acquire()
        if self._error is not None:
            self._slots.release()
            raise self._error
        try:
            fut = self._store._pool.submit(self._work, block, self._offset)
        except BaseException:
            self._slots.release()
            raise
        self._futures.append(fut)
        self._offset += len(block)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Feed the next piece of the stream (blocks while the workers are behind)."""
        if self._closed:
            raise BadRequest("ingest already finished")
        self.bytes_received += len(data)
        self._hash(data)
        for block in self._chunker.feed(data):
            self._submit(block)

    def _hash(self, data: bytes | bytearray | memoryview) -> None:
        """Update the SHA-256: small pieces inline, large ones on the hasher thread (at most
        ``SHA_QUEUE`` pieces queued; the caller waits beyond that)."""
        pending = self._sha_pending
        if len(data) < SHA_OFFLOAD_MIN and not pending:
            self._sha.update(data)
            return
        if not _immutable(data):
            data = bytes(data)  # the caller may reuse its buffer once write() returns
        while len(pending) >= SHA_QUEUE:
            pending.popleft().result()
        pending.append(self._store._hasher.submit(self._sha.update, data))

    def _sha_hexdigest(self) -> str:
        while self._sha_pending:
            self._sha_pending.popleft().result()
        return self._sha.hexdigest()

    def finish(self) -> IngestResult:
        """Flush the last blocks and wait until every block is durable. A stream of at most
        ``inline_max`` bytes comes back as one sealed inline block (nothing written)."""
        if self._closed:
            raise BadRequest("ingest already finished")
        tail = list(self._chunker.finish())
        if not self._futures and len(tail) == 1 and len(tail[0]) <= self._store.inline_max:
            self._closed = True
            ref = self._store.seal(self._keys, tail[0], self._offset)
            return IngestResult(self.bytes_received, self._sha_hexdigest(), [ref])
        for block in tail:
            self._submit(block)
        self._closed = True
        refs = [fut.result() for fut in self._futures]
        return IngestResult(self.bytes_received, self._sha_hexdigest(), refs)

    def abort(self) -> list[str]:
        """Stop; return the object keys this stream newly wrote (nothing refers to them: the
        caller reclaims them, see ``service.references``)."""
        self._closed = True
        for sha in self._sha_pending:
            sha.cancel()
        for fut in self._futures:
            fut.cancel()
        written = []
        for fut in self._futures:
            if not fut.cancelled():
                try:
                    ref = fut.result()
                except Exception:  # noqa: BLE001 - aborting anyway
                    continue
                if ref.new:
                    written.append(ref.object_key)
        return written


READ_AHEAD_AFTER = 2  # decode ahead once this many blocks were read one after the other
SHA_OFFLOAD_MIN = 64 << 10  # smaller pieces cost less to hash than to hand over
SHA_QUEUE = 8  # pieces (~1 MiB each from HTTP bodies) queued for the hasher per stream


def _immutable(data: bytes | bytearray | memoryview) -> bool:
    if isinstance(data, bytes):
        return True
    return isinstance(data, memoryview) and data.readonly and isinstance(data.obj, bytes)


class BlockReader(io.RawIOBase):
    """Seekable reader over a version; holds at most the current and the next block."""

    def __init__(
        self, store: BlockStore, keys: AccountKeys, manifest: list[ManifestEntry], size: int
    ):
        super().__init__()
        self._store = store
        self._keys = keys
        self._manifest = manifest
        self._starts = [m[2] for m in manifest]
        self.size = size
        self._pos = 0
        self._index = -1
        self._block = b""
        self._ahead: deque[tuple[int, Future[bytes]]] = deque()
        self._depth = store.threads
        self._run = 0  # blocks loaded in sequence so far

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self.size + offset
        else:
            raise ValueError(f"bad whence {whence}")
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    def _fetch(self, index: int) -> bytes:
        entry = self._manifest[index]
        h, okey, _offset, size = entry[:4]
        inline = entry[4] if len(entry) > 4 else None
        data = self._store.read_block(self._keys, h, okey, inline)
        if len(data) != size:
            raise IntegrityError(f"block {h[:16]}: size {len(data)} instead of {size}")
        return data

    def _load(self, index: int) -> None:
        ahead = self._ahead
        while ahead and ahead[0][0] < index:
            ahead.popleft()[1].cancel()
        if ahead and ahead[0][0] == index:
            data = ahead.popleft()[1].result()
        else:
            for _i, fut in ahead:
                fut.cancel()
            ahead.clear()
            data = self._fetch(index)
        sequential = index == self._index + 1
        self._run = self._run + 1 if sequential else 0
        self._index, self._block = index, data
        if self._run < READ_AHEAD_AFTER:
            # A first read, a seek, or a range that may end in this block (a Range request
            # spans one or two blocks): decode nothing it may not need.
            return
        # Reading on: decode the next blocks on the worker threads while this one is consumed.
        nxt = ahead[-1][0] + 1 if ahead else index + 1
        while len(ahead) < self._depth and nxt < len(self._manifest):
            ahead.append((nxt, self._store._pool.submit(self._fetch, nxt)))
            nxt += 1

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes; a read never crosses a block boundary (it may be short, as
        raw reads may), except ``read()``/``read(-1)``, which returns everything left."""
        if self.closed:
            raise ValueError("read from a closed reader")
        if size is None or size < 0:
            parts = []
            while chunk := self.read(1 << 30):
                parts.append(chunk)
            return b"".join(parts)
        if size == 0 or self._pos >= self.size:
            return b""
        index = bisect.bisect_right(self._starts, self._pos) - 1
        if index != self._index:
            self._load(index)
        start = self._pos - self._starts[index]
        block = self._block
        # the whole block is returned without a copy
        piece = block if start == 0 and size >= len(block) else block[start : start + size]
        if not piece:  # pragma: no cover - manifest inconsistent with size
            raise IntegrityError("version is shorter than its recorded size")
        self._pos += len(piece)
        return piece

    def read_exactly(self, size: int) -> bytes:
        """``size`` bytes (fewer only at the end)."""
        parts, want = [], size
        while want > 0 and (chunk := self.read(want)):
            parts.append(chunk)
            want -= len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        for _i, fut in self._ahead:
            fut.cancel()
        self._ahead.clear()
        self._block = b""
        super().close()
