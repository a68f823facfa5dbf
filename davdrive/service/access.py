"""The access rule: what a principal may do in an account's tree. Every door asks it.

One place decides, so a new way of being allowed (a user share, a share link) is one more branch
here and nowhere else. Today a principal acts in its own account only, with every right; user
shares (read, write, create, delete: Nextcloud's bitmask 1/2/4/8) and links come next and will
map a path prefix of another owner here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag

from davdrive.errors import PermissionDenied
from davdrive.service.types import Principal


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


def grant(p: Principal, need: Perm = Perm.READ) -> Grant:
    """The grant of ``p`` in its own home (the only tree it reaches until shares land);
    ``PermissionDenied`` when ``need`` is not covered."""
    result = Grant(p.user_id, OWNER)
    result.require(need)
    return result


def permission_names(perms: Perm) -> list[str]:
    """``Perm.READ | Perm.WRITE`` -> ``["read", "write"]`` (how the JSON API shows rights)."""
    return [p.name.lower() for p in Perm if p and p & perms and p.name]


__all__ = ["OWNER", "Grant", "Perm", "grant", "permission_names"]
