"""The block API of delta sync: ``POST /blocks/check``, ``PUT``/``GET /blocks/<id>`` and
``POST /files/commit`` (``service.block_api``, ``service.delta_commit``; docs/SYNC.md).

Errors are the API's usual JSON; this blueprint adds the error's ``details`` when it has any
(``missing`` block ids, the ``current_rev`` of a conflict), which a sync client acts on."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from davdrive import errors
from davdrive.api.errors import error_response, retry_after, status_of
from davdrive.api.util import drive, node_json, principal, rev_arg, services
from davdrive.protocol import MAX_SIZE
from davdrive.service.block_api import STAGED_GRACE, BlockApi
from davdrive.service.delta_commit import DeltaCommit
from davdrive.service.timestamps import parse_mtime

bp = Blueprint("blocks", __name__)
MAX_COMMIT_JSON = 8 << 20  # a commit of 100,000 block ids is ~6.7 MB of JSON
READ_PIECE = 1 << 20


def block_api() -> BlockApi:
    """The block service of this API (built on first use)."""
    api = current_app.config.get("block_api")
    if api is None:
        grace = getattr(services().config, "staged_block_grace", STAGED_GRACE)
        api = current_app.config["block_api"] = BlockApi(drive(), grace=grace)
    return api


@bp.errorhandler(errors.DriveError)
def on_drive_error(exc: errors.DriveError) -> Response:
    """The API's error answer, plus ``details`` (missing ids, the current revision)."""
    extra = {"details": exc.details} if exc.details else {}
    resp = error_response(status_of(exc), exc.code, str(exc.message), **extra)
    retry = retry_after(exc)
    if retry is not None:
        resp.headers["Retry-After"] = retry
    return resp


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_object(limit: int) -> dict[str, Any]:
    """The request's JSON object of at most ``limit`` bytes (``BadRequest`` otherwise)."""
    if request.content_length is not None and request.content_length > limit:
        raise errors.BadRequest(f"JSON body larger than {limit} bytes")
    raw = request.get_data(cache=True)
    if len(raw) > limit:
        raise errors.BadRequest(f"JSON body larger than {limit} bytes")
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise errors.BadRequest("expected a JSON object body") from None
    if not isinstance(body, dict):
        raise errors.BadRequest("expected a JSON object body")
    return body


def _id_list(body: dict[str, Any], name: str) -> list[Any]:
    value = body.get(name)
    if not isinstance(value, list):
        raise errors.BadRequest(f"'{name}' must be a list of block ids")
    return value


@bp.post("/blocks/check")
def check() -> Any:
    """``{"hashes": [...]}`` → ``{"missing": [...]}``: the ids the account does not hold."""
    hashes = _id_list(_json_object(MAX_COMMIT_JSON), "hashes")
    return jsonify({"missing": block_api().check(principal(), hashes)})


def _body() -> bytes:
    """The request body, at most ``MAX_SIZE`` bytes (413 past it, before reading it all)."""
    length = request.content_length
    if length is not None and length > MAX_SIZE:
        raise errors.FileTooLarge(f"a block is at most {MAX_SIZE} bytes")
    stream = request.environ["wsgi.input"]
    want = MAX_SIZE + 1 if length is None else length
    parts: list[bytes] = []
    received = 0
    while received < want:
        piece = stream.read(min(READ_PIECE, want - received))
        if not piece:
            break
        parts.append(piece)
        received += len(piece)
    if received > MAX_SIZE:
        raise errors.FileTooLarge(f"a block is at most {MAX_SIZE} bytes")
    if length is not None and received < length:
        raise errors.IncompleteUpload(f"received {received} of {length} bytes")
    return b"".join(parts)


@bp.put("/blocks/<block>")
def put(block: str) -> Any:
    """Store one block (its plaintext as the body): 201 stored now, 200 held already."""
    data = _body()
    new = block_api().put(principal(), block, data)
    resp = jsonify({"id": block, "size": len(data), "stored": new})
    resp.status_code = 201 if new else 200
    return resp


@bp.get("/blocks/<block>")
def get(block: str) -> Any:
    """A block's plaintext, when a file the caller may read uses it (else 404)."""
    data = block_api().get(principal(), block)
    return Response(
        data,
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Length": str(len(data)),
            "ETag": f'"{block}"',
            "Cache-Control": "private, max-age=31536000, immutable",
        },
    )


@bp.post("/files/commit")
def commit() -> Any:
    """A new revision of ``path`` from held blocks; 201 created, 200 updated."""
    body = _json_object(MAX_COMMIT_JSON)
    path = body.get("path")
    if not isinstance(path, str) or not path:
        raise errors.BadRequest("'path' is required")
    blocks = _id_list(body, "blocks")
    size = body.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise errors.BadRequest("'size' must be the file's length in bytes")
    if "base_rev" not in body:
        raise errors.BadRequest("'base_rev' is required (null creates a new file)")
    base = body["base_rev"]
    base_rev = rev_arg(base) if base is not None else None
    mtime = parse_mtime(body["mtime"]) if body.get("mtime") is not None else None
    content_hash = body.get("content_hash")
    if not isinstance(content_hash, str):
        raise errors.BadRequest("'content_hash' is required")
    if_match = request.headers.get("If-Match")
    info, created = DeltaCommit(drive(), block_api()).commit(
        principal(),
        path if path.startswith("/") else "/" + path,
        blocks,
        size=size,
        content_hash=content_hash,
        base_rev=base_rev,
        mtime=mtime,
        if_match=if_match.strip('"') if if_match else None,
    )
    resp = jsonify(node_json(info))
    resp.status_code = 201 if created else 200
    return resp
