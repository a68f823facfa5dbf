"""The backend interface every block store (local, memory, S3, replicated, ...) implements."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    mtime: float


class BlockBackend(abc.ABC):
    """Opaque objects addressed by a hex key. ``put`` is durable when it returns."""

    tier: str = "hot"

    @abc.abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` durably and atomically (no reader sees part of it).

        Keys are content-addressed, so storing a key again stores the same bytes: a backend may
        keep a recent existing object instead of rewriting it (S3 does, up to ``refresh_after``)."""

    @abc.abstractmethod
    def get(self, key: str) -> bytes:
        """Return the object; raise ``davdrive.errors.NotFound`` when it is missing."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; a missing key is not an error."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def list(self) -> Iterator[ObjectInfo]:
        """Every stored object (used by fsck and garbage collection)."""

    def copies(self, key: str) -> Iterator[bytes]:
        """Each stored copy of ``key``, best first; raises like ``get`` when there is none.

        A reader that finds a copy damaged (its authentication fails) asks for the next one, so
        the backend knows the previous copy was rejected. A plain backend has one copy."""
        yield self.get(key)

    def replicas(self) -> list[tuple[str, BlockBackend]]:
        """The named stores that each hold a copy of every object (scrub reads and repairs
        them one by one). A plain backend is its own single replica."""
        return [("blocks", self)]

    def leftovers(self) -> Iterator[ObjectInfo]:
        """Partial writes a crash left behind (not objects; ``key`` names them for
        ``remove_leftover``). None for a backend whose writes are atomic."""
        return iter(())

    def remove_leftover(self, key: str) -> None:  # noqa: B027 - optional hook
        """Delete one of ``leftovers``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""


def check_key(key: str) -> str:
    """Keys are lowercase hex (HMAC-SHA256 digests): anything else is a bug or an attack."""
    if not key or len(key) > 128 or any(c not in "0123456789abcdef" for c in key):
        raise ValueError(f"invalid object key {key!r}")
    return key
