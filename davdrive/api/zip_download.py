"""``GET /files/download_zip?path=P[&path=Q...]``: files and folders as one zip stream.

Every path is checked through the access rule (``stat``, and a folder's first page of
``list_tree``) before the answer starts, so one the caller cannot read is a 404 and never a
cut-off archive. Each path becomes a top-level member under its own name (a folder with
everything below it; names made unique with " (2)"); the root's members stand at the top.
``davdrive.httpcommon.zipstream`` writes the archive one piece at a time (bounded memory).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from flask import Blueprint, Response, request

from davdrive import errors
from davdrive.api.util import drive, principal
from davdrive.httpcommon.zipstream import ZipStream, add_node, add_tree
from davdrive.service.paths import join, split_path
from davdrive.service.types import NodeInfo, Principal

if TYPE_CHECKING:
    from davdrive.service.drive import Drive

bp = Blueprint("zip_download", __name__)
MAX_PATHS = 1000
TreePage = tuple[list[NodeInfo], bool, int]


def content_disposition(name: str) -> str:
    """RFC 6266: an ASCII fallback and the exact UTF-8 name."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\%;' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or "name (2)" (before the extension of a file-like name) if taken."""
    stem, dot, ext = name.rpartition(".") if "." in name.lstrip(".") else (name, "", "")
    candidate, n = name, 1
    while candidate.lower() in taken:
        n += 1
        candidate = f"{stem} ({n}){dot}{ext}"
    taken.add(candidate.lower())
    return candidate


def _paths() -> list[str]:
    raw = request.args.getlist("path")
    if not raw:
        raise errors.BadRequest("'path' is required (repeat it for several)")
    if len(raw) > MAX_PATHS:
        raise errors.BadRequest(f"at most {MAX_PATHS} paths")
    paths: list[str] = []
    for value in raw:
        path = join(split_path(value))  # BadRequest for hostile paths
        if path not in paths:
            paths.append(path)
    return paths


@bp.get("/files/download_zip")
def download_zip() -> Any:
    """The zip of the given files and folders (see the module docstring)."""
    d, p = drive(), principal()
    members: list[tuple[str, NodeInfo, TreePage | None]] = []
    taken: set[str] = set()
    for path in _paths():
        info = d.stat(p, path)
        first = d.list_tree(p, path) if info.is_dir else None
        top = "" if path == "/" else _unique(info.name, taken)
        members.append((top, info, first))
    single = len(members) == 1 and members[0][0]
    archive = members[0][0] + ".zip" if single else "download.zip"
    headers = {"Content-Disposition": content_disposition(archive), "Cache-Control": "no-store"}
    return Response(_chunks(d, p, members), mimetype="application/zip", headers=headers)


def _chunks(
    d: Drive, p: Principal, members: list[tuple[str, NodeInfo, TreePage | None]]
) -> Iterator[bytes]:
    z = ZipStream()
    for top, info, first in members:
        if first is None:
            yield from add_node(z, d, p, top, info)
            continue
        if top:
            yield from z.add_dir(top, info.mtime)
        yield from add_tree(z, d, p, info.path, top, first)
    yield from z.finish()
