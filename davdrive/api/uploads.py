"""tus 1.0 resumable uploads at ``/api/v1/uploads`` (core + creation, termination, checksum,
expiration). ``POST /files/upload?uploadType=resumable`` opens the same kind of session."""

from __future__ import annotations

import base64
import binascii
from email.utils import formatdate
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from davdrive import errors
from davdrive.api.errors import error_response
from davdrive.api.util import drive, int_arg, principal
from davdrive.service.timestamps import parse_mtime
from davdrive.service.uploads import ChecksumMismatch, ResumableUploads, SessionInfo

bp = Blueprint("uploads", __name__)
TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,termination,checksum,expiration"


def _uploads() -> ResumableUploads:
    ru = current_app.config.get("resumable")
    if ru is None:
        ru = current_app.config["resumable"] = ResumableUploads(drive())
    return ru


def _tus_headers(resp: Response) -> Response:
    resp.headers["Tus-Resumable"] = TUS_VERSION
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _check_version() -> Response | None:
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        resp = error_response(412, "precondition_failed", "Tus-Resumable: 1.0.0 is required")
        resp.headers["Tus-Version"] = TUS_VERSION
        return resp
    return None


def _metadata(raw: str) -> dict[str, str]:
    out = {}
    for pair in filter(None, (x.strip() for x in raw.split(","))):
        key, _, value = pair.partition(" ")
        try:
            out[key] = base64.b64decode(value, validate=True).decode("utf-8") if value else ""
        except (binascii.Error, UnicodeDecodeError):
            raise errors.BadRequest(f"Upload-Metadata value of {key!r} is not base64") from None
    return out


def _location(info: SessionInfo) -> str:
    return f"/api/v1/uploads/{info.id}"


def _expires(info: SessionInfo) -> str:
    return formatdate(info.expires, usegmt=True)


def create_session(path: str | None) -> Any:
    """Open a session for ``path`` (or the ``path`` in Upload-Metadata)."""
    bad = _check_version()
    if bad is not None:
        return bad
    if request.headers.get("Upload-Defer-Length"):
        raise errors.BadRequest("Upload-Defer-Length is not supported; send Upload-Length")
    length = int_arg(request.headers.get("Upload-Length"), "Upload-Length", lo=0)
    if length > drive().max_file_size:
        raise errors.FileTooLarge(f"Upload-Length is over the {drive().max_file_size}-byte limit")
    raw = request.headers.get("Upload-Metadata", "")
    meta = _metadata(raw)
    path = path or meta.get("path")
    if not path:
        raise errors.BadRequest("give ?path= or Upload-Metadata 'path'")
    mtime = parse_mtime(meta["mtime"], "Upload-Metadata mtime") if "mtime" in meta else None
    info = _uploads().create(
        principal(),
        path if path.startswith("/") else "/" + path,
        length,
        metadata_raw=raw,
        mtime=mtime,
    )
    resp = Response(status=201)
    resp.headers["Location"] = _location(info)
    resp.headers["Upload-Expires"] = _expires(info)
    resp.headers["Upload-Offset"] = "0"
    return _tus_headers(resp)


@bp.route("/uploads", methods=["OPTIONS"])
def options() -> Any:
    resp = Response(status=204)
    resp.headers["Tus-Version"] = TUS_VERSION
    resp.headers["Tus-Extension"] = EXTENSIONS
    resp.headers["Tus-Max-Size"] = str(drive().max_file_size)
    resp.headers["Tus-Checksum-Algorithm"] = ",".join(ResumableUploads.CHECKSUMS)
    return _tus_headers(resp)


@bp.post("/uploads")
def create() -> Any:
    return create_session(request.args.get("path"))


@bp.route("/uploads/<sid>", methods=["HEAD"])
def head(sid: str) -> Any:
    bad = _check_version()
    if bad is not None:
        return bad
    info = _uploads().get(principal(), sid)
    resp = Response(status=200)
    resp.headers["Upload-Offset"] = str(info.offset)
    resp.headers["Upload-Length"] = str(info.length)
    resp.headers["Upload-Expires"] = _expires(info)
    if info.metadata_raw:
        resp.headers["Upload-Metadata"] = info.metadata_raw
    return _tus_headers(resp)


@bp.get("/uploads/<sid>")
def status(sid: str) -> Any:
    info = _uploads().get(principal(), sid)
    return jsonify(
        {
            "id": info.id,
            "path": info.path,
            "length": info.length,
            "offset": info.offset,
            "status": "pending",
        }
    )


@bp.patch("/uploads/<sid>")
def patch(sid: str) -> Any:
    bad = _check_version()
    if bad is not None:
        return bad
    if request.mimetype != "application/offset+octet-stream":
        return error_response(
            415, "unsupported_media_type", "Content-Type must be application/offset+octet-stream"
        )
    offset = int_arg(request.headers.get("Upload-Offset"), "Upload-Offset", lo=0)
    checksum = None
    if request.headers.get("Upload-Checksum"):
        algo, _, value = request.headers["Upload-Checksum"].partition(" ")
        if algo not in ResumableUploads.CHECKSUMS:
            raise errors.BadRequest(f"checksum algorithm {algo!r} is not supported")
        try:
            checksum = (algo, base64.b64decode(value, validate=True))
        except binascii.Error:
            raise errors.BadRequest("Upload-Checksum is not base64") from None
    stream = request.environ["wsgi.input"]
    try:
        new_offset, info = _uploads().append(
            principal(), sid, offset, stream.read, request.content_length, checksum
        )
    except ChecksumMismatch as exc:
        return _tus_headers(error_response(460, exc.code, str(exc.message)))
    resp = Response(status=204)
    resp.headers["Upload-Offset"] = str(new_offset)
    if info is not None:
        resp.headers["X-Davdrive-Rev"] = str(info.version_id)
    return _tus_headers(resp)


@bp.delete("/uploads/<sid>")
def terminate(sid: str) -> Any:
    bad = _check_version()
    if bad is not None:
        return bad
    _uploads().cancel(principal(), sid)
    return _tus_headers(Response(status=204))
