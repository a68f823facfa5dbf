"""``/links``: share links to a file or folder of the caller's (issue 10).

A link is a token: whoever holds ``<server>/s/<token>`` reaches the node with the rights of the
link's type (``view``, ``edit``, ``upload``, ``drop``) until it is revoked, expires or is used
up. Only the owner lists, changes and revokes its links; anyone else gets 404, as for a link
that does not exist. The password and its hash are never shown. The rules live in
``service.links``.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for

from davdrive import errors
from davdrive.api.util import drive, json_body, principal, rfc3339

bp = Blueprint("links", __name__)

MAX_ID = (1 << 63) - 1  # ids live in a signed 64-bit column
MAX_USES = (1 << 31) - 1  # max_uses lives in a 32-bit integer column
MAX_TIME = 253402300799.0  # 9999-12-31T23:59:59Z: the last instant an RFC 3339 time can name
SETTINGS = ("password", "expires", "max_uses", "label")  # what PATCH may change


def link_json(info: Any) -> dict[str, Any]:
    """A link as its owner sees it (never the password or its hash)."""
    base = request.host_url
    return {
        "id": info.id,
        "type": info.kind,
        "url": f"{base}s/{info.token}",
        "dav_url": f"{base}s/{info.token}/dav/",
        "token": info.token,
        "path": info.path,
        "name": info.name,
        "item_type": "folder" if info.is_dir else "file",
        "has_password": info.has_password,
        "expires": rfc3339(info.expires),
        "max_uses": info.max_uses,
        "uses": info.uses,
        "label": info.label,
        "created": rfc3339(info.created),
        "revoked": rfc3339(info.revoked),
        "active": info.active,
    }


def _path(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise errors.BadRequest("'path' is required (a path in your files, like /Docs)")
    return value if value.startswith("/") else "/" + value


def expires_arg(value: Any) -> float | None:
    """``expires`` from a request: an RFC 3339 time (``2030-01-31T12:00:00Z``), seconds since
    the epoch, or null (none). The service refuses a time that is not in the future."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise errors.BadRequest("'expires' must be an RFC 3339 time or seconds since the epoch")
    if isinstance(value, int | float):
        try:
            ts = float(value)
        except OverflowError:
            ts = math.inf
    elif isinstance(value, str):
        try:
            # RFC 3339 allows a lower-case "t" and "z"; fromisoformat wants them upper-case
            when = datetime.fromisoformat(value.strip().upper())
        except ValueError:
            raise errors.BadRequest(
                "'expires' is not an RFC 3339 time (like 2030-01-31T12:00:00Z)"
            ) from None
        if when.tzinfo is None or when.utcoffset() is None:
            raise errors.BadRequest("'expires' needs a time zone offset (like Z or +02:00)")
        try:
            ts = when.timestamp()
        except (OverflowError, ValueError, OSError):
            ts = math.inf
    else:
        raise errors.BadRequest("'expires' must be an RFC 3339 time or seconds since the epoch")
    if not math.isfinite(ts) or ts > MAX_TIME:
        raise errors.BadRequest("'expires' is too far in the future (after the year 9999)")
    return ts


def max_uses_arg(value: Any) -> int | None:
    """``max_uses`` from a request: a positive integer the database can hold, or null."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_USES:
        raise errors.BadRequest(f"'max_uses' must be an integer from 1 to {MAX_USES}")
    return value


def _known(link_id: int) -> int:
    """A link id the database can hold; any other names no link (404, never a 500)."""
    if link_id > MAX_ID:
        raise errors.NotFound("no such link")
    return link_id


@bp.get("/links")
def list_links() -> Any:
    """The caller's links, oldest first (``?path=P``: those of that node only)."""
    raw_path = request.args.get("path")
    path = _path(raw_path) if raw_path is not None else None
    links = drive().links.list(principal(), path)
    return jsonify({"links": [link_json(info) for info in links]})


@bp.post("/links")
def create_link() -> Any:
    """A new link to the caller's file or folder at ``path``."""
    body = json_body()
    path = _path(body.get("path"))
    kind = body.get("type")
    if not isinstance(kind, str) or not kind:
        raise errors.BadRequest("'type' is required: view, edit, upload or drop")
    info = drive().links.create(
        principal(),
        path,
        kind,
        password=body.get("password"),
        expires=expires_arg(body.get("expires")),
        max_uses=max_uses_arg(body.get("max_uses")),
        label=body.get("label"),
    )
    resp = jsonify(link_json(info))
    resp.status_code = 201
    resp.headers["Location"] = url_for("links.get_link", link_id=info.id)
    return resp


@bp.get("/links/<int:link_id>")
def get_link(link_id: int) -> Any:
    return jsonify(link_json(drive().links.get(principal(), _known(link_id))))


@bp.patch("/links/<int:link_id>")
def update_link(link_id: int) -> Any:
    """Change a link's password, expiry, maximum uses or label (the keys given; null clears)."""
    body = json_body()
    changes: dict[str, Any] = {key: body[key] for key in SETTINGS if key in body}
    if "expires" in changes:
        changes["expires"] = expires_arg(changes["expires"])
    if "max_uses" in changes:
        changes["max_uses"] = max_uses_arg(changes["max_uses"])
    info = drive().links.update(principal(), _known(link_id), **changes)
    return jsonify(link_json(info))


@bp.delete("/links/<int:link_id>")
def revoke_link(link_id: int) -> Any:
    """Revoke a link: its token stops working at once (revoking twice is harmless)."""
    drive().links.revoke(principal(), _known(link_id))
    return Response(status=204)
