"""The in-process bus: publish wakes this process's waiters directly (embedded default)."""

from __future__ import annotations

from davdrive.notify.base import Bus


class MemoryBus(Bus):
    """Everything in one process: publish wakes local waiters directly."""


__all__ = ["MemoryBus"]
