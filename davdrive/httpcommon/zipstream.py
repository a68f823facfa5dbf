"""A zip archive written as a stream of byte chunks (bounded memory), for every door.

Python's ``zipfile`` writes to a stream it cannot seek: each member's sizes and CRC then follow
its data in a data descriptor, and the central directory comes last. ``ZipStream`` hands
``zipfile`` a sink that only collects what it wrote; the caller takes those bytes after each
piece and sends them on, so at most one piece (``PIECE`` bytes of file content) plus headers is
held at a time. Members are stored, not deflated: what people share is mostly compressed
already (photos, video, office files), and stored members cost no CPU.
"""

from __future__ import annotations

import time
import zipfile
from collections.abc import Iterator
from typing import Any, BinaryIO

PIECE = 1 << 20  # bytes of file content read and written at a time


class _Sink:
    """A write-only, unseekable file object collecting what ``zipfile`` writes."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if data:
            self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def _date_time(mtime: float) -> tuple[int, int, int, int, int, int]:
    """A zip member's timestamp (UTC; zip has no time zone) clamped to what zip can hold."""
    t = time.gmtime(max(mtime, 315532800.0))  # 1980-01-01, zip's epoch
    if t.tm_year > 2107:
        return (2107, 12, 31, 23, 59, 58)
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)


class ZipStream:
    """Add folders and files in order, yielding the archive's bytes as they are made.

    ``add_dir`` and ``add_file`` are generators of chunks; ``finish`` yields the central
    directory. A member name uses "/" between components (a folder's ends with "/").
    """

    def __init__(self) -> None:
        self._sink = _Sink()
        self._zip = zipfile.ZipFile(self._sink, "w", zipfile.ZIP_STORED, allowZip64=True)  # type: ignore[call-overload]

    def add_dir(self, name: str, mtime: float) -> Iterator[bytes]:
        info = zipfile.ZipInfo(name.rstrip("/") + "/", _date_time(mtime))
        info.external_attr = (0o40755 << 16) | 0x10  # a folder, for unix and DOS readers
        self._zip.writestr(info, b"")
        yield from self._drain()

    def add_file(self, name: str, mtime: float, size: int, reader: BinaryIO) -> Iterator[bytes]:
        """Copy ``reader`` (``size`` bytes) into the archive ``PIECE`` bytes at a time; the
        caller closes ``reader``."""
        info = zipfile.ZipInfo(name, _date_time(mtime))
        info.external_attr = 0o100644 << 16
        info.compress_type = zipfile.ZIP_STORED
        info.file_size = size  # lets zipfile pick zip64 headers up front for big members
        with self._zip.open(info, "w") as member:
            while True:
                piece = reader.read(PIECE)
                if not piece:
                    break
                member.write(piece)
                yield from self._drain()
        yield from self._drain()

    def finish(self) -> Iterator[bytes]:
        self._zip.close()
        yield from self._drain()

    def _drain(self) -> Iterator[bytes]:
        out = self._sink.take()
        if out:
            yield out


def add_node(z: ZipStream, drive: Any, p: Any, name: str, node: Any) -> Iterator[bytes]:
    """A file's current version under ``name`` (nothing while an upload is in progress)."""
    if node.version_id is None or node.status != "ok":
        return
    reader = drive.open_version(p, node.version_id)
    try:
        yield from z.add_file(name, node.mtime, node.size, reader)
    finally:
        reader.close()


def add_tree(
    z: ZipStream, drive: Any, p: Any, path: str, top: str, first: tuple[list[Any], bool, int]
) -> Iterator[bytes]:
    """Everything below the folder ``path`` (under ``top/``, or at the top level when ``top``
    is empty), parents first, paged through ``drive.list_tree`` from its ``first`` page."""
    prefix = path.rstrip("/") + "/"
    entries, more, _ = first
    while True:
        for e in entries:
            rel = e.path[len(prefix) :] if e.path.startswith(prefix) else e.name
            name = f"{top}/{rel}" if top else rel
            if e.is_dir:
                yield from z.add_dir(name, e.mtime)
            else:
                yield from add_node(z, drive, p, name, e)
        if not more or not entries:
            return
        entries, more, _ = drive.list_tree(p, path, after=entries[-1].path)


__all__ = ["PIECE", "ZipStream", "add_node", "add_tree"]
