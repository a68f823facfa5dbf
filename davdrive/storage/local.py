"""Local-directory backend: sharded folders, write to temp, fsync, rename, fsync the folder."""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from davdrive.errors import InsufficientStorage, NotFound
from davdrive.storage.base import BlockBackend, ObjectInfo, check_key


class LocalBackend(BlockBackend):
    """Objects live at ``root/ab/cd/<key>``; a crash leaves at worst a ``.tmp`` file."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        # The 256 top-level shard folders exist (durably) before any put, so a put never changes
        # the root: a new second-level folder needs only its parent fsynced.
        made = False
        for i in range(256):
            top = self.root / f"{i:02x}"
            if not top.is_dir():
                top.mkdir(mode=0o700, exist_ok=True)
                made = True
        if made:
            _fsync_dir(self.root)

    def _path(self, key: str) -> Path:
        check_key(key)
        return self.root / key[:2] / key[2:4] / key

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        folder = path.parent
        created = not folder.exists()
        top_new = created and not folder.parent.exists()  # only for keys shorter than 4
        if created:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = folder / f".{key}.{uuid.uuid4().hex}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            _fsync_dir(folder)
            if created:  # its entry lives in the top-level folder (made durable at start)
                _fsync_dir(folder.parent)
                if top_new:
                    _fsync_dir(folder.parent.parent)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise InsufficientStorage("block storage is full") from exc
            raise

    def get(self, key: str) -> bytes:
        try:
            with open(self._path(key), "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            raise NotFound(f"object {key} not found") from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def _entries(self) -> Iterator[tuple[str, os.DirEntry[str]]]:
        """Every file in the shard folders, with its folder ("ab/cd")."""
        for top in sorted(self.root.iterdir()):
            if not top.is_dir():
                continue
            for mid in sorted(top.iterdir()):
                if mid.is_dir():
                    for entry in os.scandir(mid):
                        if entry.is_file():
                            yield f"{top.name}/{mid.name}", entry

    def list(self) -> Iterator[ObjectInfo]:
        for _folder, entry in self._entries():
            if not entry.name.startswith("."):
                st = entry.stat()
                yield ObjectInfo(entry.name, st.st_size, st.st_mtime)

    def leftovers(self) -> Iterator[ObjectInfo]:
        """``.tmp`` files a crash left beside the objects (a put in progress has one too: the
        caller only removes those older than its grace period)."""
        for folder, entry in self._entries():
            if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                st = entry.stat()
                yield ObjectInfo(f"{folder}/{entry.name}", st.st_size, st.st_mtime)

    def remove_leftover(self, key: str) -> None:
        """Delete one of ``leftovers`` (``ab/cd/.<key>.<uuid>.tmp``)."""
        parts = key.split("/")
        if len(parts) != 3 or not parts[2].endswith(".tmp") or ".." in parts:
            raise ValueError(f"not a leftover: {key!r}")
        (self.root / key).unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
