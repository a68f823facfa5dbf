"""In-memory backend for fast unit tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from davdrive.errors import NotFound
from davdrive.storage.base import BlockBackend, ObjectInfo, check_key


class MemoryBackend(BlockBackend):
    def __init__(self) -> None:
        self._objects: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()

    def put(self, key: str, data: bytes) -> None:
        check_key(key)
        with self._lock:
            self._objects[key] = (bytes(data), time.time())

    def get(self, key: str) -> bytes:
        check_key(key)
        with self._lock:
            try:
                return self._objects[key][0]
            except KeyError:
                raise NotFound(f"object {key} not found") from None

    def delete(self, key: str) -> None:
        check_key(key)
        with self._lock:
            self._objects.pop(key, None)

    def exists(self, key: str) -> bool:
        check_key(key)
        with self._lock:
            return key in self._objects

    def list(self) -> Iterator[ObjectInfo]:
        with self._lock:
            items = list(self._objects.items())
        for key, (data, mtime) in items:
            yield ObjectInfo(key, len(data), mtime)
