"""Block storage backends: one small interface (DESIGN.md §2); local, memory, S3, replicated."""

from davdrive.storage.base import BlockBackend, ObjectInfo
from davdrive.storage.registry import open_backend

__all__ = ["BlockBackend", "ObjectInfo", "open_backend"]
