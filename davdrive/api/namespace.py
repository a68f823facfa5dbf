"""The tree over JSON: ``files/list`` (paged, or the whole tree with its journal cursor),
``create_folder``, ``delete`` (to the trash), ``move``, ``copy`` and ``GET /account``.

Cursors are opaque to clients: base64url of a small JSON object (the last name or path seen,
and for a recursive listing the journal position its first page was read at).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from flask import Blueprint, jsonify, request

from davdrive import errors
from davdrive.api.util import (
    arg_path,
    drive,
    int_arg,
    json_body,
    node_json,
    principal,
    rev_arg,
)
from davdrive.service.drive import Expect

bp = Blueprint("namespace", __name__)
MAX_LIMIT = 2000


def _encode(state: dict[str, Any]) -> str:
    raw = json.dumps(state, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        state = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise errors.BadRequest("invalid cursor") from None
    if not isinstance(state, dict) or not isinstance(state.get("a"), str):
        raise errors.BadRequest("invalid cursor")
    return state


def _flag(value: Any, name: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "1", "false", "0", ""):
        return value.lower() in ("true", "1")
    raise errors.BadRequest(f"'{name}' must be true or false")


def _path_field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise errors.BadRequest(f"'{name}' is required")
    return value if value.startswith("/") else "/" + value


def _expect(body: dict[str, Any]) -> Expect | None:
    """``if_rev`` in the body and/or an ``If-Match`` header (one ETag) → a precondition."""
    rev = body.get("if_rev")
    etag = request.headers.get("If-Match")
    if rev is None and not etag:
        return None
    if etag:
        etag = etag.strip()
        if etag != "*":
            etag = etag.removeprefix("W/").strip('"')
    return Expect(etag=etag or None, rev=rev_arg(rev) if rev is not None else None)


@bp.get("/files/list")
def list_folder() -> Any:
    """Members of a folder (paged by name), or with ``recursive=true`` every entry below it
    (paged by path, parents first) and, on the last page, the change cursor to go on from."""
    path = arg_path()
    limit = int_arg(request.args.get("limit"), "limit", default=1000, lo=1, hi=MAX_LIMIT)
    recursive = _flag(request.args.get("recursive"), "recursive")
    raw = request.args.get("cursor")
    state = _decode(raw) if raw else None
    if recursive:
        entries, more, seq = drive().list_tree(
            principal(), path, after=state["a"] if state else None, limit=limit
        )
        seq = int(state.get("s", seq)) if state else seq  # the first page's position holds
        last = entries[-1].path if entries else (state["a"] if state else None)
        body: dict[str, Any] = {
            "path": path,
            "entries": [node_json(e) for e in entries],
            "has_more": more,
            "cursor": _encode({"a": last, "s": seq}) if more else None,
            # Replaying the journal from here makes the listing current (it may repeat
            # changes already visible in later pages; applying them again is harmless).
            "changes_cursor": None if more else str(seq),
        }
        return jsonify(body)
    entries, more = drive().list_page(
        principal(), path, after=state["a"] if state else None, limit=limit
    )
    return jsonify(
        {
            "path": path,
            "entries": [node_json(e) for e in entries],
            "has_more": more,
            "cursor": _encode({"a": entries[-1].name}) if more and entries else None,
        }
    )


@bp.post("/files/create_folder")
def create_folder() -> Any:
    info = drive().mkdir(principal(), _path_field(json_body(), "path"))
    return jsonify(node_json(info)), 201


@bp.post("/files/delete")
def delete() -> Any:
    """Move a file or folder to the trash."""
    body = json_body()
    path = _path_field(body, "path")
    drive().delete(principal(), path, expect=_expect(body))
    return jsonify({"path": path, "trashed": True})


def _transfer(copy: bool) -> Any:
    body = json_body()
    src, dst = _path_field(body, "from"), _path_field(body, "to")
    overwrite = _flag(body.get("overwrite"), "overwrite")
    op = drive().copy if copy else drive().move
    replaced = op(principal(), src, dst, overwrite=overwrite, expect=_expect(body))
    info = drive().stat(principal(), dst)
    return jsonify({**node_json(info), "replaced": replaced}), 200 if replaced else 201


@bp.post("/files/move")
def move() -> Any:
    """Rename or move; a file moved over a file becomes its new revision (history kept)."""
    return _transfer(copy=False)


@bp.post("/files/copy")
def copy() -> Any:
    """Copy (blocks are shared, nothing is re-uploaded)."""
    return _transfer(copy=True)


QUOTA_RULE = (
    "files in folders shared with you count against the owner's quota; "
    "files you share count against yours"
)


@bp.get("/account")
def account() -> Any:
    """Login, quota and usage. Quota counts current files of the account, including files in
    folders it shares with others (the owner is always charged)."""
    a = drive().account_overview(principal())
    return jsonify(
        {
            "login": a.login,
            "quota": a.quota,
            "used": a.used,
            "available": max(0, a.quota - a.used),
            "usage": {"current": a.used, "history": a.history, "trash": a.trash},
            "stored": a.stored,
            "devices": a.devices,
            "quota_rule": QUOTA_RULE,
        }
    )
