"""One exception tree for the whole core; each adapter maps it to HTTP once."""

from __future__ import annotations


class DriveError(Exception):
    """Base of every error the core raises on purpose."""

    code = "internal"

    def __init__(self, message: str = "", **details: object) -> None:
        super().__init__(message or self.code)
        self.message = message or self.code
        self.details = details


class BadRequest(DriveError):
    """The input is malformed (bad path, bad name, bad parameter)."""

    code = "bad_request"


class NotAuthenticated(DriveError):
    code = "not_authenticated"


class PermissionDenied(DriveError):
    code = "permission_denied"


class NotFound(DriveError):
    code = "not_found"


class ParentNotFound(NotFound):
    """The parent folder of a path to create does not exist (WebDAV 409)."""

    code = "parent_not_found"


class AlreadyExists(DriveError):
    code = "already_exists"


class Conflict(DriveError):
    """The request conflicts with the current state (e.g. move into itself, file in the way)."""

    code = "conflict"


class OtherTree(Conflict):
    """A move or copy between two owners' trees (a share and one's own files): not done
    server-side; a client copies the content instead (WebDAV: 502, RFC 4918 §9.9.4)."""

    code = "other_tree"


class PreconditionFailed(DriveError):
    """An expected version (ETag / base revision) is not the current one."""

    code = "precondition_failed"


class IsAFolder(Conflict):
    """File content was sent to a path where a folder lives (WebDAV: 405 on PUT)."""

    code = "is_a_folder"


class Locked(DriveError):
    code = "locked"


class FileTooLarge(DriveError):
    code = "file_too_large"


class QuotaExceeded(DriveError):
    code = "quota_exceeded"


class InsufficientStorage(DriveError):
    """The storage backend is out of space (disk full)."""

    code = "insufficient_storage"


class IntegrityError(DriveError):
    """A stored block failed authentication or its id check: wrong bytes are never returned."""

    code = "integrity_error"


class IncompleteUpload(DriveError):
    """Fewer (or more) bytes arrived than the client announced."""

    code = "incomplete_upload"


class TooManyRequests(DriveError):
    """Rate limited (e.g. repeated failed logins); ``retry_after`` seconds in details."""

    code = "too_many_requests"


class CursorExpired(DriveError):
    """A change cursor older than the journal's retention (or from another database): the
    client must reset, i.e. list everything again and start from the latest cursor."""

    code = "cursor_expired"


class StoreUnavailable(DriveError):
    """The block store cannot be reached or refuses us (an S3 endpoint down, timing out, or
    rejecting the credentials): the message names the endpoint; HTTP 503."""

    code = "store_unavailable"


class Archived(Conflict):
    """The content is in a cold tier that needs a restore (S3 GLACIER, DEEP_ARCHIVE): the
    restore was requested; ``retry_after`` seconds in details (HTTP 409 + Retry-After)."""

    code = "archived"
