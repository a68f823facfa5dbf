"""The access rule: what a principal may do, and in whose tree. Every door asks it.

One place decides, so a new way of being allowed is one more branch here and nowhere else. A
principal acts in its own home with every right, and in the shares it received: a share mounts
a node of another owner at a path of the recipient's tree (``share.mount_path``), with the
share's rights (read, write, create, delete: Nextcloud's bitmask 1/2/4/8) on that node and
everything below it. ``target`` maps a path of the principal's view onto the tree it lands in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import IntFlag

from davdrive.errors import NotFound, PermissionDenied
from davdrive.metadata.shares import NodePlace, ShareRow
from davdrive.service.paths import join
from davdrive.service.types import NodeInfo, Principal


class Perm(IntFlag):
    """Rights on a node; the values are Nextcloud's share permission bits."""

    NONE = 0
    READ = 1
    WRITE = 2  # change existing content and properties
    CREATE = 4  # add members to a folder
    DELETE = 8  # delete, move away
    SHARE = 16


OWNER = Perm.READ | Perm.WRITE | Perm.CREATE | Perm.DELETE | Perm.SHARE


@dataclass(frozen=True)
class Grant:
    """The answer of the rule: whose tree the principal acts in, and with which rights."""

    owner_id: int
    perms: Perm

    def require(self, need: Perm) -> None:
        """``PermissionDenied`` unless every bit of ``need`` is granted."""
        if need & ~self.perms:
            missing = ", ".join(p.name.lower() for p in Perm if p and p & need & ~self.perms)
            raise PermissionDenied(f"not allowed: {missing}")


# What a recipient may be given: no re-sharing (Perm.SHARE) in this version.
SHAREABLE = Perm.READ | Perm.WRITE | Perm.CREATE | Perm.DELETE
FILE_SHAREABLE = Perm.READ | Perm.WRITE  # a file has no members to create or delete


# What each kind of share link gives (``view`` reads; ``upload`` adds and lists; ``drop`` only
# adds: its holders see nothing, and a name clash is renamed, never overwritten).
LINK_PERMS = {
    "view": Perm.READ,
    "edit": Perm.READ | Perm.WRITE | Perm.CREATE | Perm.DELETE,
    "upload": Perm.READ | Perm.CREATE,
    "drop": Perm.CREATE,
}


@dataclass(frozen=True)
class Target:
    """Where a path of the principal's view lands: the owner's tree, the path there, and the
    rights the principal has. Through a share or a link, ``base`` is the owner's path of the
    shared node and ``view`` the principal's path of the same node (the share's mount point,
    "/" for a link); in the principal's own home ``view`` is None."""

    owner_id: int
    path: str
    perms: Perm
    share: ShareRow | None = None
    base: str = "/"
    mounts: tuple[ShareRow, ...] = ()  # every share the principal received
    view: str | None = None
    node_id: int | None = None  # the shared node's id (through a share or a link)

    @property
    def at_mount(self) -> bool:
        """Whether the path is the shared node itself (a mount point, a link's root)."""
        return self.view is not None and self.path == self.base

    def shown(self, owner_path: str) -> str:
        """An owner path below ``base`` as the principal sees it."""
        if self.view is None:
            return owner_path
        rest = owner_path[len(self.base) :] if self.base != "/" else owner_path
        rest = "" if rest == "/" else rest
        return (self.view.rstrip("/") + rest) or "/"

    def require(self, need: Perm) -> None:
        """``PermissionDenied`` unless every bit of ``need`` is granted."""
        Grant(self.owner_id, self.perms).require(need)

    def show(self, info: NodeInfo) -> NodeInfo:
        """A node of the owner's tree as the principal sees it: its path in the principal's
        view, the mount's name for the shared node itself, the principal's rights."""
        if self.view is None:
            return info
        shown = self.shown(info.path)
        name = info.name
        if info.path == self.base and self.share is not None:
            name = shown.rsplit("/", 1)[-1]
        return replace(info, path=shown, name=name, perms=int(self.perms))


def mount_at(parts: Sequence[str], mounts: Sequence[ShareRow]) -> tuple[ShareRow, int] | None:
    """The mount a path goes through (the deepest whose path is a prefix) and the number of
    components it takes, or None."""
    best: tuple[ShareRow, int] | None = None
    for m in mounts:
        mparts = [x for x in m.mount_path.split("/") if x]
        n = len(mparts)
        if n and list(parts[:n]) == mparts and (best is None or n > best[1]):
            best = (m, n)
    return best


def target(
    p: Principal,
    parts: Sequence[str],
    mounts: Sequence[ShareRow],
    place_of: Callable[[int], NodePlace | None],
) -> Target:
    """The target of ``parts`` for ``p``: inside a live share, the owner's node and the share's
    rights; anywhere else, the principal's own home with every right. A share whose node is
    gone or in the trash mounts nothing (the path is the principal's own again)."""
    if p.link is not None:  # a link's holder: below the link's node, never anywhere else
        place = place_of(p.link.node_id)
        if place is None or not place.live or place.owner_id != p.user_id:
            raise NotFound("no such link")
        path = (place.path.rstrip("/") + "".join("/" + r for r in parts)) or "/"
        perms = LINK_PERMS[p.link.kind]
        return Target(p.user_id, path, perms, None, place.path, (), "/", p.link.node_id)
    found = mount_at(parts, mounts)
    if found is not None:
        share, n = found
        place = place_of(share.node_id)
        if place is not None and place.live and place.owner_id == share.owner_id:
            path = (place.path.rstrip("/") + "".join("/" + r for r in parts[n:])) or "/"
            return Target(
                share.owner_id,
                path,
                Perm(share.perms),
                share,
                place.path,
                tuple(mounts),
                share.mount_path,
                share.node_id,
            )
    return Target(p.user_id, join(list(parts)), OWNER, mounts=tuple(mounts))


def grant(p: Principal, need: Perm = Perm.READ) -> Grant:
    """The grant of ``p`` in its own home (the only tree it reaches until shares land);
    ``PermissionDenied`` when ``need`` is not covered."""
    result = Grant(p.user_id, OWNER)
    result.require(need)
    return result


def permission_names(perms: Perm) -> list[str]:
    """``Perm.READ | Perm.WRITE`` -> ``["read", "write"]`` (how the JSON API shows rights)."""
    return [p.name.lower() for p in Perm if p and p & perms and p.name]


__all__ = [
    "FILE_SHAREABLE",
    "LINK_PERMS",
    "OWNER",
    "SHAREABLE",
    "Grant",
    "Perm",
    "Target",
    "grant",
    "mount_at",
    "permission_names",
    "target",
]
