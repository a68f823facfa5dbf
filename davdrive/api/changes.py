"""``/changes`` (offline queue replay) and ``/longpoll`` (Dropbox-style wait for changes)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request

from davdrive.api.util import drive, int_arg, principal, rfc3339
from davdrive.service.changes import Changes

bp = Blueprint("changes", __name__)
MAX_TIMEOUT = 120
BACKOFF = 10


def _feed() -> Changes:
    return Changes(drive())


@bp.get("/changes/latest")
def latest() -> Any:
    return jsonify({"cursor": _feed().latest(principal())})


@bp.get("/changes")
def changes() -> Any:
    cursor = request.args.get("cursor", "0")
    limit = int_arg(request.args.get("limit"), "limit", default=500, lo=1, hi=2000)
    feed = _feed()
    items, nxt, more = feed.since(principal(), cursor, limit=limit)
    feed.remember(principal(), nxt)
    return jsonify(
        {
            "changes": [
                {
                    "id": c.id,
                    "kind": c.kind,
                    "path": c.path,
                    "from_path": c.from_path,
                    "rev": c.rev,
                    "is_dir": c.is_dir,
                    "at": rfc3339(c.at),
                    "device": c.device,
                }
                for c in items
            ],
            "cursor": nxt,
            "has_more": more,
        }
    )


@bp.get("/longpoll")
def longpoll() -> Any:
    cursor = request.args.get("cursor", "")
    timeout = int_arg(request.args.get("timeout"), "timeout", default=30, lo=1, hi=MAX_TIMEOUT)
    slots = current_app.config["longpoll_slots"]
    if not slots.acquire(blocking=False):
        # Every long-poll slot is busy: answer now so WebDAV keeps its worker threads.
        return jsonify({"changes": False, "backoff": BACKOFF})
    try:
        changed = _feed().wait(principal(), cursor, timeout)
    finally:
        slots.release()
    return jsonify({"changes": changed})
