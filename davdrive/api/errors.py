"""Drive errors as JSON: ``{"error": {"code", "message"}}`` with one status table."""

from __future__ import annotations

import math

from flask import Response, jsonify

from davdrive import errors

STATUS: list[tuple[type[errors.DriveError], int]] = [
    (errors.ParentNotFound, 409),
    (errors.NotFound, 404),
    (errors.BadRequest, 400),
    (errors.NotAuthenticated, 401),
    (errors.PermissionDenied, 403),
    (errors.AlreadyExists, 409),
    (errors.Archived, 409),  # in a cold tier: restore requested (Retry-After)
    (errors.Conflict, 409),
    (errors.PreconditionFailed, 412),
    (errors.Locked, 423),
    (errors.FileTooLarge, 413),
    (errors.QuotaExceeded, 507),
    (errors.InsufficientStorage, 507),
    (errors.IntegrityError, 500),
    (errors.StoreUnavailable, 503),
    (errors.IncompleteUpload, 400),
    (errors.TooManyRequests, 429),
    (errors.CursorExpired, 410),
]


def status_of(exc: errors.DriveError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_response(status: int, code: str, message: str, **extra: object) -> Response:
    body: dict[str, object] = {"code": code, "message": message}
    body.update(extra)
    resp = jsonify({"error": body})
    resp.status_code = status
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Basic realm="davdrive", charset="UTF-8"'
    if status == 429:
        resp.headers["Retry-After"] = "30"
    return resp


def drive_error_response(exc: errors.DriveError) -> Response:
    """The JSON answer for a core error; ``Retry-After`` when the error says when to retry
    (rate limits, an archived file being restored, a store that is down)."""
    extra = {"reset": True} if isinstance(exc, errors.CursorExpired) else {}
    resp = error_response(status_of(exc), exc.code, str(exc.message), **extra)
    retry = retry_after(exc)
    if retry is not None:
        resp.headers["Retry-After"] = retry
    return resp


def retry_after(exc: errors.DriveError) -> str | None:
    """The ``Retry-After`` value (whole seconds, at least 1) an error carries, if any."""
    retry = (exc.details or {}).get("retry_after")
    if retry is None:
        return None
    try:
        return str(max(1, math.ceil(float(str(retry)))))
    except ValueError:
        return None
