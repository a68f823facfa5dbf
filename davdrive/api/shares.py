"""``/shares``: user-to-user shares of a file or folder (issue 10).

The owner creates, changes and revokes a share; its recipient sees it in ``?shared_with_me=true``
and may decline it (``DELETE``). Anyone else gets 404, as for a share that does not exist.
Rights are Nextcloud's bitmask (read 1, write 2, create 4, delete 8) or a list of their names;
quota is always charged to the owner. The rules live in ``service.shares``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for

from davdrive import errors
from davdrive.api.util import drive, json_body, principal, rfc3339
from davdrive.service.access import Perm, permission_names

bp = Blueprint("shares", __name__)

#: The rights a share may name (re-sharing is not offered; ``service.shares`` says so).
NAMES = {"read": Perm.READ, "write": Perm.WRITE, "create": Perm.CREATE, "delete": Perm.DELETE}
MAX_ID = (1 << 63) - 1  # ids live in a signed 64-bit column
_USAGE = "use an integer bitmask (read 1, write 2, create 4, delete 8) or a list of names"


def share_json(s: Any) -> dict[str, Any]:
    """A share as the API shows it; ``path`` is where the caller sees the node (the owner: in
    the owner's tree; the recipient: its mount point), ``mount_path`` the recipient's."""
    return {
        "id": s.id,
        "owner": s.owner,
        "user": s.recipient,
        "path": s.path,
        "name": s.name,
        "type": "folder" if s.is_dir else "file",
        "permissions": int(s.permissions),
        "permission_names": permission_names(Perm(s.permissions)),
        "mount_path": s.mount_path,
        "created": rfc3339(s.created),
    }


def perms_arg(value: Any, *, default: int | None = None) -> int:
    """``permissions`` from a request: an integer, or a list of names (``["read", "write"]``).
    The service checks which combinations are allowed (read is required)."""
    if value is None:
        if default is None:
            raise errors.BadRequest("'permissions' is required")
        return default
    if isinstance(value, bool):
        raise errors.BadRequest(f"'permissions' must not be a boolean: {_USAGE}")
    if isinstance(value, int):
        return value
    if isinstance(value, list):
        bits = Perm.NONE
        for name in value:
            if not isinstance(name, str) or name.lower() not in NAMES:
                shown = repr(name[:40]) if isinstance(name, str) else type(name).__name__
                raise errors.BadRequest(
                    f"unknown permission {shown}: use read, write, create, delete"
                )
            bits |= NAMES[name.lower()]
        return int(bits)
    raise errors.BadRequest(f"'permissions' has the wrong type: {_USAGE}")


def _flag(value: str | None, name: str) -> bool:
    if value is None or value.lower() in ("", "false", "0"):
        return False
    if value.lower() in ("true", "1"):
        return True
    raise errors.BadRequest(f"'{name}' must be true or false")


def _path(value: Any, name: str = "path") -> str:
    if not isinstance(value, str) or not value:
        raise errors.BadRequest(f"'{name}' is required (a path in your files, like /Docs)")
    return value if value.startswith("/") else "/" + value


@bp.get("/shares")
def list_shares() -> Any:
    """The shares the caller gave (``?path=P``: of that node only), or with
    ``?shared_with_me=true`` those it received (``?path=P``: the one mounted there)."""
    p = principal()
    raw_path = request.args.get("path")
    path = _path(raw_path) if raw_path is not None else None
    if _flag(request.args.get("shared_with_me"), "shared_with_me"):
        shares = drive().shares.list_received(p)
        if path is not None:
            shares = [s for s in shares if s.mount_path == path.rstrip("/")]
    else:
        shares = drive().shares.list_given(p, path)
    return jsonify({"shares": [share_json(s) for s in shares]})


@bp.post("/shares")
def create_share() -> Any:
    """Share the caller's file or folder at ``path`` with ``user``."""
    body = json_body()
    path = _path(body.get("path"))
    user = body.get("user")
    if not isinstance(user, str) or not user.strip():
        raise errors.BadRequest("'user' is required (the login to share with)")
    perms = perms_arg(body.get("permissions"), default=int(Perm.READ))
    info = drive().shares.create(principal(), path, user.strip(), perms)
    resp = jsonify(share_json(info))
    resp.status_code = 201
    resp.headers["Location"] = url_for("shares.get_share", share_id=info.id)
    return resp


def _known(share_id: int) -> int:
    """A share id the database can hold; any other names no share (404, never a 500)."""
    if share_id > MAX_ID:
        raise errors.NotFound("no such share")
    return share_id


@bp.get("/shares/<int:share_id>")
def get_share(share_id: int) -> Any:
    return jsonify(share_json(drive().shares.get(principal(), _known(share_id))))


@bp.patch("/shares/<int:share_id>")
def update_share(share_id: int) -> Any:
    """Change a share's rights (its owner only)."""
    perms = perms_arg(json_body().get("permissions"))
    return jsonify(share_json(drive().shares.update(principal(), _known(share_id), perms)))


@bp.delete("/shares/<int:share_id>")
def delete_share(share_id: int) -> Any:
    """The owner revokes the share, or the recipient declines it."""
    drive().shares.delete(principal(), _known(share_id))
    return Response(status=204)
