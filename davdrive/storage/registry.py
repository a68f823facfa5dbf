"""Picks a block backend by URL (the interface in ``base`` knows none of them)."""

from __future__ import annotations

from urllib.parse import urlparse

from davdrive.storage.base import BlockBackend


def open_backend(url: str) -> BlockBackend:
    """Build a backend from ``file:///path``, ``memory://`` or
    ``s3://bucket/prefix?endpoint=...&region=...`` (see ``davdrive.storage.s3``)."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        from davdrive.storage.local import LocalBackend

        return LocalBackend(parsed.path)
    if parsed.scheme == "memory":
        from davdrive.storage.memory import MemoryBackend

        return MemoryBackend()
    if parsed.scheme == "s3":
        try:
            from davdrive.storage.s3 import open_s3
        except ImportError as exc:
            raise RuntimeError(
                f"blocks_url {url!r} needs the S3 client libraries ({exc.name} is missing): "
                "pip install 'davdrive[s3]'"
            ) from exc
        return open_s3(url)
    raise ValueError(
        f"unsupported blocks_url {url!r} (use file:///path, memory:// or s3://bucket/prefix)"
    )


__all__ = ["open_backend"]
