"""Replicated backend: one object, a copy in each of N named stores (restic style: a decorator
over backends, which know nothing of it).

- **put** writes every reachable store at once; it succeeds when ``min_copies`` stores (default:
  all) hold the object. Stores that failed or are known to be down are recorded in the
  ``RepairQueue`` (durable: the ``replication_queue`` table) before ``put`` returns, and
  ``drain`` writes them when the store is back. Fewer than ``min_copies`` copies: the put
  raises ``StoreUnavailable`` (HTTP 503); the copies it did write are harmless (content
  addressed) and, when nothing comes to reference them, collected by the orphan sweep.
- **get** reads the first store that answers with the object; **copies** goes on to the next
  store when the reader rejects a copy (a damaged one fails its AES-GCM/BLAKE3 check above).
  A store that answers ``NotFound`` or fails is skipped.
- **exists** is true when a reachable store holds the object (a missing copy elsewhere is
  queued or found by scrub). **list** is the union of the stores.
- **delete** removes every copy it can reach. A store that is down keeps its stale copy; with
  no object row referring to it, it is an orphan that the next orphan sweep (``fsck --repair``,
  GC) removes after the store returns. Nothing is queued for a delete (deletes run inside
  metadata transactions, where a queue write of its own could wait on the same database).

A store that fails is considered down for ``retry_after`` seconds: meanwhile requests skip it
instead of waiting for its timeout each time (a put owes it a copy at once). ``drain`` and
``retry_down_stores`` try it again earlier. A store that cannot be opened at start (an S3 probe
that fails) is opened later, when it answers; fewer than ``min_copies`` openable stores stop the
start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from davdrive.errors import DriveError, InsufficientStorage, NotFound, StoreUnavailable
from davdrive.storage.base import BlockBackend, ObjectInfo, check_key
from davdrive.storage.repair_queue import MemoryRepairQueue, RepairQueue

log = logging.getLogger("davdrive.storage.replicated")

RETRY_AFTER = 30.0  # seconds a failed store is skipped before it is tried again
MAX_NAME = 64  # replication_queue.store
_FAILURES = (StoreUnavailable, OSError)
T = TypeVar("T")
Opener = Callable[[], BlockBackend]


class Member(BlockBackend):
    """One named store of a replicated backend: opened lazily, and skipped for
    ``retry_after`` seconds after a failure (``StoreUnavailable`` without trying)."""

    def __init__(
        self,
        name: str,
        store: BlockBackend | Opener,
        *,
        retry_after: float = RETRY_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not name or len(name) > MAX_NAME:
            raise ValueError(f"a store name must have 1 to {MAX_NAME} characters: {name!r}")
        self.name = name
        self._inner = store if isinstance(store, BlockBackend) else None
        self._opener = None if isinstance(store, BlockBackend) else store
        self.retry_after = retry_after
        self._clock = clock
        self._down_until = 0.0
        self.last_error: str | None = None
        self._lock = threading.Lock()  # opening
        self._state = threading.Lock()  # health

    # -- health --------------------------------------------------------------------------------
    @property
    def down(self) -> bool:
        """Whether the store failed less than ``retry_after`` seconds ago (or is being
        tried again right now)."""
        return self.last_error is not None and self._clock() < self._down_until

    def retry_now(self) -> None:
        """Forget the last failure: the next call tries the store."""
        self._down_until = 0.0

    def _failed(self, op: str, exc: BaseException) -> StoreUnavailable:
        reason = exc.message if isinstance(exc, StoreUnavailable) else f"{exc}"
        with self._state:
            if self.last_error is None:
                log.warning("store %s is unavailable (%s failed: %s)", self.name, op, reason)
            self._down_until = self._clock() + self.retry_after
            self.last_error = reason
        return StoreUnavailable(
            f"store {self.name}: {op} failed: {reason}", retry_after=int(self.retry_after)
        )

    def _recovered(self) -> None:
        if self.last_error is not None:
            with self._state:
                if self.last_error is not None:
                    log.warning("store %s answers again", self.name)
                    self.last_error = None
                    self._down_until = 0.0

    def _check(self) -> None:
        """Refuse at once while the store is known to be down. When that time is over, one
        caller tries it (the others keep skipping it until that call has answered)."""
        if self.last_error is None:
            return
        with self._state:
            now = self._clock()
            if self.last_error is not None and now < self._down_until:
                raise StoreUnavailable(
                    f"store {self.name} is unavailable ({self.last_error}); retrying it shortly",
                    retry_after=int(self.retry_after),
                )
            if self.last_error is not None:  # this caller probes
                self._down_until = now + self.retry_after

    def _backend(self) -> BlockBackend:
        backend = self._inner
        if backend is None:
            with self._lock:
                if self._inner is None:
                    assert self._opener is not None
                    self._inner = self._opener()
                backend = self._inner
        return backend

    def _run(self, op: str, call: Callable[[BlockBackend], T]) -> T:
        self._check()
        try:
            result = call(self._backend())
        except _FAILURES as exc:
            raise self._failed(op, exc) from exc
        except DriveError:  # an answer (not found, disk full): the store is up
            self._recovered()
            raise
        self._recovered()
        return result

    def _stream(self, op: str, call: Callable[[BlockBackend], Iterator[T]]) -> Iterator[T]:
        self._check()
        try:
            yield from call(self._backend())
        except _FAILURES as exc:
            raise self._failed(op, exc) from exc
        self._recovered()

    def open(self) -> bool:
        """Open the store now if it is not (True when it is open)."""
        try:
            self._run("open", lambda b: None)
        except StoreUnavailable:
            return False
        return True

    # -- the interface -------------------------------------------------------------------------
    def put(self, key: str, data: bytes) -> None:
        self._run(f"put {key[:16]}", lambda b: b.put(key, data))

    def get(self, key: str) -> bytes:
        return self._run(f"get {key[:16]}", lambda b: b.get(key))

    def delete(self, key: str) -> None:
        self._run(f"delete {key[:16]}", lambda b: b.delete(key))

    def exists(self, key: str) -> bool:
        return self._run(f"head {key[:16]}", lambda b: b.exists(key))

    def list(self) -> Iterator[ObjectInfo]:
        return self._stream("list", lambda b: b.list())

    def leftovers(self) -> Iterator[ObjectInfo]:
        return self._stream("leftovers", lambda b: b.leftovers())

    def remove_leftover(self, key: str) -> None:
        self._run("remove leftover", lambda b: b.remove_leftover(key))

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()


@dataclass
class DrainReport:
    """What one ``drain`` did with the owed copies."""

    copied: int = 0  # written to the store that lacked them
    dropped: int = 0  # the object is gone (deleted meanwhile), or the store left the config
    failed: int = 0  # still owed (target or source down, or only damaged sources)
    remaining: int = 0  # owed copies left in the queue afterwards
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"replication queue: {self.copied} copies written, {self.dropped} dropped "
            f"(object gone), {self.failed} failed, {self.remaining} still owed"
        )


class ReplicatedBackend(BlockBackend):
    """Copies of every object in several named stores; see the module docstring."""

    def __init__(
        self,
        stores: Sequence[tuple[str, BlockBackend | Opener]],
        *,
        min_copies: int | None = None,
        queue: RepairQueue | None = None,
        retry_after: float = RETRY_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``stores``: (name, backend or a function that opens it), in read order. Raises
        ``StoreUnavailable`` when fewer than ``min_copies`` stores can be opened."""
        if len(stores) < 2:
            raise ValueError("a replicated store needs at least two stores")
        names = [name for name, _ in stores]
        if len(set(names)) != len(names):
            raise ValueError(f"replicated stores need distinct names: {names}")
        n = len(stores)
        self.min_copies = n if min_copies is None else int(min_copies)
        if not 1 <= self.min_copies <= n:
            raise ValueError(f"min_copies must be between 1 and {n} (the number of stores)")
        if queue is None:
            if self.min_copies < n:
                raise ValueError(
                    "min_copies below the number of stores needs a durable repair queue"
                )
            queue = MemoryRepairQueue()
        self.queue = queue
        self.members = [
            Member(name, store, retry_after=retry_after, clock=clock) for name, store in stores
        ]
        self._pool = ThreadPoolExecutor(4 * (n - 1), thread_name_prefix="replicated")
        opened = [m for m in self.members if m.open()]
        if len(opened) < self.min_copies:
            down = "; ".join(f"{m.name}: {m.last_error}" for m in self.members if m.last_error)
            self.close()
            raise StoreUnavailable(
                f"replicated store: {len(opened)} of {n} stores can be opened, "
                f"{self.min_copies} needed ({down})",
                retry_after=int(retry_after),
            )

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.members]

    def replicas(self) -> list[tuple[str, BlockBackend]]:
        return [(m.name, m) for m in self.members]

    def retry_down_stores(self) -> None:
        """Try every store again at the next request (e.g. after an admin brought one back)."""
        for m in self.members:
            m.retry_now()

    # -- writes --------------------------------------------------------------------------------
    def put(self, key: str, data: bytes) -> None:
        check_key(key)
        failed: dict[str, str] = {}
        full: list[InsufficientStorage] = []
        futures: list[tuple[Member, Future[None]]] = []
        first, *others = self.members
        for m in others:
            if m.down:
                failed[m.name] = f"down: {m.last_error}"
            else:
                futures.append((m, self._pool.submit(m.put, key, data)))
        written = 0
        for m, call in [(first, None), *futures]:
            try:
                if call is None:
                    m.put(key, data)
                else:
                    call.result()
                written += 1
            except StoreUnavailable as exc:
                failed[m.name] = exc.message
            except InsufficientStorage as exc:  # one disk full: like a store that is down
                failed[m.name] = exc.message
                full.append(exc)
        if written < self.min_copies:
            reasons = "; ".join(f"{name}: {why}" for name, why in failed.items())
            if len(full) == len(failed):
                raise InsufficientStorage(f"replicated store: {reasons}")
            raise StoreUnavailable(
                f"replicated store: put {key[:16]} reached {written} of the {self.min_copies} "
                f"copies required ({reasons})",
                retry_after=int(self.members[0].retry_after),
            )
        for name, why in failed.items():  # durable before the put counts as done
            self.queue.add(name, key, why[:1000])

    def delete(self, key: str) -> None:
        check_key(key)
        done, errors = 0, []
        for m in self.members:
            try:
                m.delete(key)
                done += 1
            except StoreUnavailable as exc:
                errors.append(exc.message)
        if errors:
            if not done:
                raise StoreUnavailable(f"replicated store: delete {key[:16]}: {'; '.join(errors)}")
            log.warning(
                "object %s deleted from %d of %d stores; the orphan sweep removes the rest "
                "when they return (%s)",
                key[:16],
                done,
                len(self.members),
                "; ".join(errors),
            )

    # -- reads ---------------------------------------------------------------------------------
    def get(self, key: str) -> bytes:
        return next(self.copies(key))

    def _held(
        self, key: str, problems: list[str], skip: Member | None = None
    ) -> Iterator[tuple[Member, bytes]]:
        """Each store's copy of ``key`` in order; stores without one are passed over, stores
        that are down are noted in ``problems``."""
        for m in self.members:
            if m is skip:
                continue
            try:
                data = m.get(key)
            except NotFound:
                continue
            except StoreUnavailable as exc:
                problems.append(exc.message)
                continue
            yield m, data

    def copies(self, key: str) -> Iterator[bytes]:
        check_key(key)
        errors: list[str] = []
        found = False
        for m, data in self._held(key, errors):
            found = True
            yield data
            # asked for more: the reader rejected that copy
            log.warning("object %s: the copy in store %s is damaged", key[:16], m.name)
        if found:
            return
        if errors:
            raise StoreUnavailable(
                f"replicated store: object {key[:16]} is in no reachable store "
                f"({'; '.join(errors)})",
                retry_after=int(self.members[0].retry_after),
            )
        raise NotFound(f"object {key} not found")

    def exists(self, key: str) -> bool:
        check_key(key)
        errors = []
        for m in self.members:
            try:
                if m.exists(key):
                    return True
            except StoreUnavailable as exc:
                errors.append(exc.message)
        if len(errors) == len(self.members):
            raise StoreUnavailable(f"replicated store: no store answers ({'; '.join(errors)})")
        return False

    def list(self) -> Iterator[ObjectInfo]:
        """The objects of every reachable store (each key once)."""
        seen: set[str] = set()
        errors = []
        for m in self.members:
            try:
                for obj in m.list():
                    if obj.key not in seen:
                        seen.add(obj.key)
                        yield obj
            except StoreUnavailable as exc:
                errors.append(exc.message)
        if len(errors) == len(self.members):
            raise StoreUnavailable(f"replicated store: no store answers ({'; '.join(errors)})")

    def leftovers(self) -> Iterator[ObjectInfo]:
        """Each store's leftovers, named ``<store index>:<key>``."""
        for i, m in enumerate(self.members):
            try:
                for obj in m.leftovers():
                    yield ObjectInfo(f"{i}:{obj.key}", obj.size, obj.mtime)
            except StoreUnavailable:
                continue

    def remove_leftover(self, key: str) -> None:
        index, sep, inner = key.partition(":")
        if not sep or not index.isdigit() or int(index) >= len(self.members):
            raise ValueError(f"not a leftover: {key!r}")
        self.members[int(index)].remove_leftover(inner)

    # -- repair --------------------------------------------------------------------------------
    def drain(
        self, *, verify: Callable[[str, bytes], bool] | None = None, limit: int = 10000
    ) -> DrainReport:
        """Write the owed copies (at most ``limit``), each read from another store that holds
        it; ``verify(key, data)`` rejects a damaged source copy (the next store is tried). An
        object no store holds any more (deleted meanwhile), or a copy owed to a store no longer
        configured, is owed no longer (scrub checks every configured store's copies)."""
        self.retry_down_stores()
        report = DrainReport()
        by_name = {m.name: m for m in self.members}
        for owed in self.queue.pending(limit):
            target = by_name.get(owed.store)
            if target is None:  # removed or renamed in the config: scrub checks the new ones
                log.warning(
                    "replication queue: dropped a copy owed to %s, a store no longer "
                    "in blocks_url (%s)",
                    owed.store,
                    owed.key[:16],
                )
                self.queue.done(owed.store, owed.key)
                report.dropped += 1
                continue
            if target.down:  # failed earlier in this drain: leave its copies for next time
                report.failed += 1
                continue
            error = self._copy_to(target, owed.key, verify)
            if error is None:
                self.queue.done(owed.store, owed.key)
                report.copied += 1
            elif error == "gone":
                self.queue.done(owed.store, owed.key)
                report.dropped += 1
            else:
                self.queue.failed(owed.store, owed.key, error[:1000])
                report.failed += 1
                report.errors.append(f"{owed.store} {owed.key[:16]}: {error}")
        report.remaining = self.queue.count()
        if report.copied or report.failed:
            log.info("%s", report.summary())
        return report

    def _copy_to(
        self, target: Member, key: str, verify: Callable[[str, bytes], bool] | None
    ) -> str | None:
        """Copy ``key`` from a good source to ``target``: None when done, "gone" when no
        store holds it, else why not."""
        problems: list[str] = []
        for source, data in self._held(key, problems, skip=target):
            if verify is not None and not verify(key, data):
                problems.append(f"the copy in {source.name} is damaged")
                continue
            try:
                target.put(key, data)
            except (StoreUnavailable, InsufficientStorage) as exc:
                return exc.message
            return None
        return "; ".join(problems) if problems else "gone"

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        for m in self.members:
            m.close()


__all__ = ["DrainReport", "Member", "ReplicatedBackend"]
