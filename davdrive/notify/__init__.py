"""Notification bus: wakes long-pollers when an account's journal moves (DESIGN.md §3, §5)."""

from davdrive.notify.base import Bus
from davdrive.notify.registry import open_bus

__all__ = ["Bus", "open_bus"]
