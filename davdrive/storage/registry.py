"""Picks a block backend by URL (the interface in ``base`` knows none of them)."""

from __future__ import annotations

from urllib.parse import urlparse

from davdrive.storage.base import BlockBackend


def open_backend(url: str) -> BlockBackend:
    """Build a backend from ``file:///path`` or ``memory://``."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        from davdrive.storage.local import LocalBackend

        return LocalBackend(parsed.path)
    if parsed.scheme == "memory":
        from davdrive.storage.memory import MemoryBackend

        return MemoryBackend()
    raise ValueError(f"unsupported blocks_url {url!r} (use file:///path or memory://)")


__all__ = ["open_backend"]
