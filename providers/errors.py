"""The one mapping from the core's ``DriveError`` tree to WebDAV statuses."""

from __future__ import annotations

from wsgidav.dav_error import (
    HTTP_BAD_GATEWAY,
    HTTP_BAD_REQUEST,
    HTTP_CONFLICT,
    HTTP_FORBIDDEN,
    HTTP_INSUFFICIENT_STORAGE,
    HTTP_INTERNAL_ERROR,
    HTTP_LOCKED,
    HTTP_METHOD_NOT_ALLOWED,
    HTTP_NOT_FOUND,
    HTTP_PRECONDITION_FAILED,
    HTTP_REQUEST_ENTITY_TOO_LARGE,
    HTTP_SERVICE_UNAVAILABLE,
    HTTP_UNAUTHORIZED,
    DAVError,
    DAVErrorCondition,
    PRECONDITION_CODE_LockConflict,
)

from davdrive import errors

HTTP_TOO_MANY_REQUESTS = 429

# Most specific first: ParentNotFound is a NotFound.
STATUS: list[tuple[type[errors.DriveError], int]] = [
    (errors.ParentNotFound, HTTP_CONFLICT),
    (errors.NotFound, HTTP_NOT_FOUND),
    (errors.AlreadyExists, HTTP_METHOD_NOT_ALLOWED),  # MKCOL on an existing path
    (errors.IsAFolder, HTTP_METHOD_NOT_ALLOWED),  # PUT to a collection
    (errors.PreconditionFailed, HTTP_PRECONDITION_FAILED),
    (errors.Locked, HTTP_LOCKED),
    (errors.FileTooLarge, HTTP_REQUEST_ENTITY_TOO_LARGE),
    (errors.QuotaExceeded, HTTP_INSUFFICIENT_STORAGE),
    (errors.InsufficientStorage, HTTP_INSUFFICIENT_STORAGE),
    (errors.BadRequest, HTTP_BAD_REQUEST),
    (errors.IncompleteUpload, HTTP_BAD_REQUEST),
    (errors.PermissionDenied, HTTP_FORBIDDEN),
    (errors.OtherTree, HTTP_BAD_GATEWAY),  # MOVE/COPY across owners: the client copies
    (errors.Archived, HTTP_CONFLICT),  # in a cold tier: restore requested (+ Retry-After)
    (errors.Conflict, HTTP_CONFLICT),
    (errors.NotAuthenticated, HTTP_UNAUTHORIZED),
    (errors.TooManyRequests, HTTP_TOO_MANY_REQUESTS),
    (errors.IntegrityError, HTTP_INTERNAL_ERROR),
    (errors.StoreUnavailable, HTTP_SERVICE_UNAVAILABLE),
]


def status_of(exc: errors.DriveError) -> int:
    """The HTTP status for a core error (500 for anything unmapped)."""
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return HTTP_INTERNAL_ERROR


def to_dav_error(exc: BaseException) -> DAVError:
    """A ``DAVError`` for any exception; core errors keep their meaning, others become 500."""
    if isinstance(exc, DAVError):
        return exc
    if isinstance(exc, errors.DriveError):
        retry = exc.details.get("retry_after") if exc.details else None
        headers = [("Retry-After", str(int(float(retry))))] if retry is not None else None
        condition = None
        if isinstance(exc, errors.Locked) and exc.details.get("root"):
            # as WsgiDAV's lock manager answers: the conflicting lock's root, RFC 4918 §16
            condition = DAVErrorCondition(PRECONDITION_CODE_LockConflict)
            condition.add_href(str(exc.details["root"]))
        return DAVError(
            status_of(exc),
            context_info=exc.message,
            src_exception=exc,
            err_condition=condition,
            add_headers=headers,
        )
    return DAVError(HTTP_INTERNAL_ERROR, src_exception=exc)
