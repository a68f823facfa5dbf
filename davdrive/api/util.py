"""Small request helpers shared by the API routes."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from flask import current_app, g, request

from davdrive import errors
from davdrive.service.access import Perm, permission_names
from davdrive.service.types import Principal

if TYPE_CHECKING:
    from davdrive.app import App
    from davdrive.service.drive import Drive


def services() -> App:
    """The composition root this API was built over (``davdrive.app.App``)."""
    return current_app.config["services"]


def drive() -> Drive:
    """The drive service."""
    return services().drive


_TOKEN = re.compile(r"<([^<>\s]+)>")


def lock_tokens(if_header: str, lock_token_header: str) -> frozenset[str]:
    """The lock tokens a request submits: ``If: (<token>)`` as in WebDAV, or ``Lock-Token``."""
    found = _TOKEN.findall(if_header or "") + _TOKEN.findall(lock_token_header or "")
    bare = (lock_token_header or "").strip()
    if bare and not bare.startswith("<"):
        found.append(bare)
    return frozenset(t for t in found if t.startswith("opaquelocktoken:"))


def principal() -> Principal:
    """The authenticated caller, carrying the lock tokens the request submitted."""
    p: Principal = g.principal
    tokens = lock_tokens(request.headers.get("If", ""), request.headers.get("Lock-Token", ""))
    return replace(p, lock_tokens=tokens) if tokens else p


def arg_path(name: str = "path") -> str:
    value = request.args.get(name)
    if value is None and request.is_json:
        try:
            value = json_body().get(name)
        except errors.BadRequest:
            value = None
    if not isinstance(value, str) or not value:
        raise errors.BadRequest(f"'{name}' is required")
    return value if value.startswith("/") else "/" + value


MAX_JSON = 1 << 20


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text}")
    return value


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def json_body() -> dict[str, Any]:
    """The request's JSON object (≤ 1 MiB). Anything else — malformed, nested past Python's
    recursion limit, NaN/Infinity, numbers that overflow a float — is a 400, never a 500."""
    if request.content_length is not None and request.content_length > MAX_JSON:
        raise errors.BadRequest("JSON body larger than 1 MiB")
    raw = request.get_data(cache=True)
    if len(raw) > MAX_JSON:
        raise errors.BadRequest("JSON body larger than 1 MiB")
    try:
        body = json.loads(raw, parse_float=_finite, parse_constant=_no_constant)
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise errors.BadRequest("expected a JSON object body") from None
    if not isinstance(body, dict):
        raise errors.BadRequest("expected a JSON object body")
    return body


def int_arg(value: Any, name: str, *, default: int | None = None, lo: int = 0, hi: int = 1 << 62):
    if value is None or value == "":
        if default is None:
            raise errors.BadRequest(f"'{name}' is required")
        return default
    if isinstance(value, bool):
        raise errors.BadRequest(f"'{name}' must be an integer")
    try:
        n = int(value)
    except (TypeError, ValueError, OverflowError):
        raise errors.BadRequest(f"'{name}' must be an integer") from None
    if not lo <= n <= hi:
        raise errors.BadRequest(f"'{name}' must be between {lo} and {hi}")
    return n


def rev_arg(value: Any) -> int:
    """Revisions are opaque strings to clients; today they carry the version id."""
    # isdigit() alone admits '²' and other non-ASCII digits that int() refuses; 18 digits
    # keep the id inside a signed 64-bit column on every database.
    if not isinstance(value, str) or not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise errors.BadRequest("'rev' must be a revision string from list_revisions")
    return int(value)


def rfc3339(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


def node_json(info: Any) -> dict[str, Any]:
    """A file or folder as the API shows it; ``id`` is stable across rename and move."""
    return {
        "id": str(info.id),
        "path": info.path,
        "name": info.name,
        "is_dir": info.is_dir,
        "rev": str(info.version_id) if info.version_id is not None else None,
        "size": info.size,
        "content_hash": info.content_hash,
        "modified": rfc3339(info.mtime),
        "etag": info.etag,
        "status": info.status,
        "permissions": permission_names(Perm(info.perms)),
    }
