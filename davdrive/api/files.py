"""``/files/*``: revisions, download by revision, restore, pin, metadata, simple upload."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, jsonify, request

from davdrive import errors
from davdrive.api.util import (
    arg_path,
    drive,
    int_arg,
    json_body,
    node_json,
    principal,
    rev_arg,
    rfc3339,
)
from davdrive.service.timestamps import parse_mtime

bp = Blueprint("files", __name__)
log = logging.getLogger(__name__)
READ_BLOCK = 1 << 20


def _revision_json(v: Any) -> dict[str, Any]:
    return {
        "rev": str(v.id),
        "size": v.size,
        "modified": rfc3339(v.mtime),
        "created": rfc3339(v.created),
        "content_hash": v.content_hash,
        "author": {"user": v.author_login, "device": v.author_device},
        "pinned": v.pinned,
        "current": v.is_current,
    }


def _revisions_cursor(version_id: int) -> str:
    return base64.urlsafe_b64encode(f"rev:{version_id}".encode()).decode().rstrip("=")


def _revisions_before(cursor: str | None) -> int | None:
    """The version id a ``list_revisions`` cursor continues below (``BadRequest`` if bad)."""
    if cursor is None or cursor == "":
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, number = text.partition(":")
        if kind != "rev" or not number.isdigit():
            raise ValueError(text)
        return int(number)
    except (ValueError, binascii.Error):
        raise errors.BadRequest(
            "invalid 'cursor' (pass the one the previous page returned)"
        ) from None


@bp.get("/files/list_revisions")
def list_revisions() -> Any:
    """Newest first, ``limit`` per page; ``cursor`` (from the previous page) continues."""
    path = arg_path()
    limit = int_arg(request.args.get("limit"), "limit", default=20, lo=1, hi=1000)
    before = _revisions_before(request.args.get("cursor"))
    versions = drive().list_versions(principal(), path, limit=limit + 1, before=before)
    has_more = len(versions) > limit
    versions = versions[:limit]
    cursor = _revisions_cursor(versions[-1].id) if has_more else None
    return jsonify(
        {
            "path": path,
            "revisions": [_revision_json(v) for v in versions],
            "has_more": has_more,
            "cursor": cursor,
        }
    )


def _stream(reader: Any, first: bytes, length: int, what: str) -> Iterator[bytes]:
    """``first`` (already read and verified), then the rest of ``length`` bytes. A block that
    fails its check mid-stream is logged and raised: the server then drops the connection, so
    the client sees a short body, never a clean end."""
    try:
        left = length - len(first)
        if first:
            yield first
        while left > 0:
            try:
                data = reader.read(min(READ_BLOCK, left))
            except errors.IntegrityError:
                log.error("download of %s broke off with %d bytes left", what, left, exc_info=True)
                raise
            if not data:
                break
            left -= len(data)
            yield data
    finally:
        reader.close()


@bp.get("/files/download")
def download() -> Any:
    """The content of a file's current (or ``rev``) version; Range requests answer 206.

    The first block to be sent is read (decrypted and authenticated) before the headers: a
    damaged one answers 500 ``integrity_error`` instead of a 200 with a cut-off body."""
    path = arg_path()
    rev = request.args.get("rev")
    version_id = rev_arg(rev) if rev is not None else None
    reader = drive().open_reader(principal(), path, version_id=version_id)
    size = reader.size
    start, length, status = 0, size, 200
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Type": "application/octet-stream",
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(path.rsplit('/', 1)[-1])}",
    }
    if request.range is not None:
        bounds = request.range.range_for_length(size)
        if bounds is None:
            reader.close()
            resp = Response(status=416)
            resp.headers["Content-Range"] = f"bytes */{size}"
            return resp
        start, stop = bounds
        length, status = stop - start, 206
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    what = f"{path} (rev {version_id})" if version_id is not None else path
    try:
        reader.seek(start)
        first = reader.read(min(READ_BLOCK, length)) if length else b""
    except errors.IntegrityError:
        reader.close()
        log.error("download of %s refused: a block failed its check", what, exc_info=True)
        raise
    except BaseException:
        reader.close()
        raise
    headers["Content-Length"] = str(length)
    return Response(_stream(reader, first, length, what), status=status, headers=headers)


@bp.post("/files/restore")
def restore() -> Any:
    body = json_body()
    path = body.get("path")
    if not isinstance(path, str) or not path:
        raise errors.BadRequest("'path' is required")
    info = drive().restore_version(principal(), path, rev_arg(body.get("rev")))
    return jsonify(node_json(info))


@bp.post("/files/pin")
def pin() -> Any:
    body = json_body()
    path = body.get("path")
    if not isinstance(path, str) or not path:
        raise errors.BadRequest("'path' is required")
    pinned = body.get("pinned", True)
    if not isinstance(pinned, bool):
        raise errors.BadRequest("'pinned' must be true or false")
    drive().pin_version(principal(), path, rev_arg(body.get("rev")), pinned)
    return jsonify({"path": path, "rev": body.get("rev"), "pinned": pinned})


@bp.post("/files/archive")
def archive() -> Any:
    """Archive now: move the blocks of every version of a file to the cold tier (not those a
    current or pinned version of another file uses); 409 when the server has none."""
    from davdrive.service.archive import archive_file

    body = json_body()
    path = body.get("path")
    if not isinstance(path, str) or not path:
        raise errors.BadRequest("'path' is required")
    report = archive_file(drive(), principal(), path)
    return jsonify(
        {
            "path": path,
            "tier": report.tier,
            "blocks": report.moved + report.resumed,
            "bytes": report.bytes_moved,
            "kept": report.kept,
            "failed": report.failed,
        }
    )


@bp.get("/files/metadata")
def metadata() -> Any:
    path = arg_path()
    d, p = drive(), principal()
    from davdrive.api.uploads import _uploads

    pending = _uploads().pending(p, path)
    info = d.try_stat(p, path)
    if info is None:
        if pending is None:
            raise errors.NotFound(f"{path} not found")
        # Not a file yet for readers; the API shows the upload in progress.
        return jsonify(
            {
                "path": pending.path,
                "name": pending.path.rsplit("/", 1)[-1],
                "is_dir": False,
                "rev": None,
                "size": pending.length,
                "content_hash": None,
                "modified": rfc3339(pending.created),
                "etag": "",
                "status": "pending",
                "uploaded": pending.offset,
            }
        )
    out = node_json(info)
    if pending is not None:
        out["status"] = "pending"
        out["uploaded"] = pending.offset
    if not info.is_dir and info.version_id is not None:
        out["blocks"] = [{"id": h, "size": n} for h, n in d.block_list(p, path)]
    return jsonify(out)


def _mtime_arg(value: str | None) -> float | None:
    """``mtime=`` through the one timestamp rule (``service.timestamps``)."""
    if value is None or value == "":
        return None
    return parse_mtime(value)


@bp.post("/files/upload")
def upload() -> Any:
    path = arg_path()
    kind = request.args.get("uploadType", "media")
    if kind == "resumable":
        from davdrive.api.uploads import create_session

        return create_session(path)
    if kind != "media":
        raise errors.BadRequest("uploadType must be 'media' or 'resumable'")
    length = request.content_length
    _mtime_arg(request.args.get("mtime"))  # 400 before the body streams
    d, p = drive(), principal()
    if_match = request.headers.get("If-Match")
    upload = d.begin_upload(
        p,
        path,
        expected_etag=if_match.strip('"') if if_match else None,
        create_only=request.headers.get("If-None-Match") == "*",
        declared_size=length,
    )
    stream = request.environ["wsgi.input"]
    try:
        while True:
            chunk = stream.read(READ_BLOCK if length is None else min(READ_BLOCK, length))
            if not chunk:
                break
            upload.write(chunk)
            if length is not None and upload.received >= length:
                break
    except BaseException:
        upload.abort()
        raise
    mtime = _mtime_arg(request.args.get("mtime"))
    info = upload.commit(
        mtime=mtime,
        expected_size=length,
    )
    resp = jsonify(node_json(info))
    resp.status_code = 201 if upload.created else 200  # as the commit found it
    return resp
