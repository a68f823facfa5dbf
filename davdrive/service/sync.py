"""Collection sync (RFC 6578 ``sync-collection``) over the change journal.

A sync token is the account's journal cursor. Given a collection and a token, the members that
changed since (created, updated, moved in or out, deleted) are reported once each with their
current state, or as gone. An empty token means "everything, and a token for next time".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from davdrive.errors import CursorExpired, NotFound
from davdrive.service.changes import Changes
from davdrive.service.paths import join, split_path

if TYPE_CHECKING:
    from davdrive.service.drive import Drive
    from davdrive.service.types import NodeInfo, Principal

PAGE = 2000


@dataclass(frozen=True)
class SyncMember:
    path: str  # account-relative
    node: NodeInfo | None  # None: removed since the token


def _within(path: str, root: str, infinite: bool) -> bool:
    """Is ``path`` a member of collection ``root`` (direct child, or any descendant)?"""
    prefix = root.rstrip("/") + "/"
    if not path.startswith(prefix) or path == prefix:
        return False
    return infinite or "/" not in path[len(prefix) :]


def sync_collection(
    drive: Drive, p: Principal, collection: str, token: str | None, *, infinite: bool
) -> tuple[list[SyncMember], str]:
    """Members of ``collection`` changed since ``token`` (all members when ``token`` is empty)
    and the new token. ``CursorExpired`` for a token the journal no longer covers."""
    root = join(split_path(collection))
    feed = Changes(drive)
    if not token:
        latest = feed.latest(p)
        members: list[SyncMember] = []
        stack = [root]
        while stack:
            folder = stack.pop()
            for info in drive.list_dir(p, folder):
                members.append(SyncMember(info.path, info))
                if infinite and info.is_dir:
                    stack.append(info.path)
        return members, latest
    touched: dict[str, None] = {}
    arrived_dirs: list[str] = []
    cursor = token
    while True:
        changes, cursor, more = feed.since(p, cursor, limit=PAGE)
        for c in changes:
            for path in (c.from_path, c.path):
                if path and _within(path, root, infinite):
                    touched[path] = None
            if infinite and c.is_dir and c.kind in ("moved", "restored", "copied"):
                arrived_dirs.append(c.path)  # its whole subtree has new hrefs
        if not more:
            break
    if drive.try_stat(p, root) is None:
        raise NotFound(f"{root} not found")
    # A journal path in another spelling than the stored one (NFD, from before names were
    # normalised) names no member any more: report it removed, not as the NFC file.
    out = [
        SyncMember(path, drive.try_stat(p, path) if join(split_path(path)) == path else None)
        for path in touched
    ]
    # A folder removed or moved away is reported once (clients drop its subtree); one that
    # arrived brings its current members.
    seen = set(touched)
    for folder in arrived_dirs:
        if not _within(folder, root, True) or drive.try_stat(p, folder) is None:
            continue
        stack = [folder]
        while stack:
            for info in drive.list_dir(p, stack.pop()):
                if info.path not in seen:
                    seen.add(info.path)
                    out.append(SyncMember(info.path, info))
                if info.is_dir:
                    stack.append(info.path)
    return out, cursor


def check_token(token: str) -> str:
    """Tokens look like ``davdrive:sync:<cursor>``; anything else is invalid (403)."""
    prefix = "davdrive:sync:"
    if not token.startswith(prefix) or not token[len(prefix) :].isdigit():
        raise CursorExpired("not a sync token of this server")
    return token[len(prefix) :]
