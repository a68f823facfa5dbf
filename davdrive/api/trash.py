"""``/trash``: list, restore (by id or original path), purge."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from davdrive import errors
from davdrive.api.util import drive, int_arg, json_body, node_json, principal, rfc3339
from davdrive.service.paths import join, split_path

bp = Blueprint("trash", __name__)


def _item_json(t: Any) -> dict[str, Any]:
    return {
        "id": str(t.id),
        "name": t.name,
        "path": t.path,
        "is_dir": t.is_dir,
        "size": t.size,
        "deleted": rfc3339(t.trashed_at),
        "deleted_by": t.deleted_by,
    }


@bp.get("/trash")
def list_trash() -> Any:
    return jsonify({"items": [_item_json(t) for t in drive().list_trash(principal())]})


def _find(body: dict[str, Any]) -> int:
    if "id" in body:
        return int_arg(body["id"], "id", lo=1)
    path = body.get("path")
    if not isinstance(path, str) or not path:
        raise errors.BadRequest("give 'id' or 'path'")
    path = join(split_path(path))  # the stored form (NFC, no trailing slash)
    for item in drive().list_trash(principal()):  # newest first
        if item.path == path:
            return item.id
    raise errors.NotFound(f"{path} is not in the trash")


@bp.post("/trash/restore")
def restore() -> Any:
    info = drive().restore_trash(principal(), _find(json_body()))
    return jsonify(node_json(info))


@bp.delete("/trash")
def purge() -> Any:
    item = request.args.get("id")
    if item is None and request.args.get("path"):
        item_id = _find({"path": request.args["path"]})
    else:
        item_id = int_arg(item, "id", lo=1) if item is not None else None
    return jsonify({"purged": drive().purge_trash(principal(), item_id)})
