"""Picks a bus implementation by URL (the interface in ``base`` knows none of them)."""

from __future__ import annotations

from urllib.parse import urlparse

from davdrive.notify.base import Bus
from davdrive.notify.memory import MemoryBus


def open_bus(url: str, database_url: str | None = None) -> Bus:
    """``memory://`` or ``postgresql://...`` (LISTEN/NOTIFY; ``postgresql://`` alone reuses
    the metadata database)."""
    scheme = urlparse(url).scheme
    if scheme in ("", "memory"):
        return MemoryBus()
    if scheme.startswith("postgres"):
        from davdrive.notify.postgres import PostgresBus

        target = url if urlparse(url).netloc else (database_url or "")
        return PostgresBus(target)
    raise ValueError(f"unsupported bus_url {url!r} (use memory:// or postgresql://...)")


__all__ = ["open_bus"]
