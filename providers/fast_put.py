"""A plain PUT (no conditions) straight to the drive: the hot path of every file copy.

WsgiDAV's PUT resolves the target and its folder, asks the lock manager about every parent URL
and only then streams the body; for a PUT without conditional headers every one of those checks
is repeated, atomically, by the commit (``Content.commit_new``: folder, folder-or-file, locks,
quota). This path streams the body into the drive and lets the commit decide, answering what
WsgiDAV answers: 201 or 204 with the ETag, 409 without a folder, 405 on a folder, 423 with the
conflicting lock, 507 over quota, 400 when the body does not match its ``OC-Checksum``.
Anything conditional (``If``, ``If-Match``, ...) or unusual goes through WsgiDAV.
"""

from __future__ import annotations

from typing import Any

from wsgidav import util
from wsgidav.dav_error import HTTP_CREATED, HTTP_NO_CONTENT

from davdrive.service.drive import Drive
from davdrive.service.types import Principal
from providers.oc_props import written_headers
from providers.resources import (
    MTIME_APPLIED_KEY,
    MTIME_KEY,
    _expected_size,
    dav_errors,
    forget_nodes,
    oc_checksum,
)

READ = 1 << 20  # body pieces handed to the block pipeline

# Headers that make a request conditional (the fast lane's GET uses them too).
CONDITIONAL = (
    "HTTP_IF",
    "HTTP_IF_MATCH",
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_UNMODIFIED_SINCE",
    "HTTP_IF_RANGE",
)
# Headers that make a PUT conditional or special: WsgiDAV handles those requests.
_NOT_PLAIN = (*CONDITIONAL, "HTTP_CONTENT_RANGE", "HTTP_CONTENT_ENCODING")


def is_plain_put(environ: dict[str, Any]) -> bool:
    """A PUT this path may serve: no precondition, no range, no content coding."""
    return not any(environ.get(key) for key in _NOT_PLAIN)


def plain_put(
    drive: Drive, p: Principal, dpath: str, environ: dict[str, Any], start_response: Any
) -> list[bytes]:
    """Store the body at ``dpath`` (account-relative) and answer as WsgiDAV's PUT does."""
    checksum = oc_checksum(environ)
    with dav_errors():
        upload = drive.begin_upload(
            p, dpath, declared_size=_expected_size(environ), checksum=checksum
        )
    try:
        body = environ["wsgi.input"]
        while piece := body.read(READ):
            environ["wsgidav.some_input_read"] = 1
            with dav_errors():
                upload.write(piece)
        environ["wsgidav.all_input_read"] = 1
    except BaseException:
        upload.abort()
        raise
    mtime = environ.get(MTIME_KEY)
    with dav_errors():
        node = upload.commit(mtime=mtime, expected_size=_expected_size(environ))
    forget_nodes(environ)
    headers = [("ETag", f'"{node.etag}"'), *written_headers(node)]
    if mtime is not None:
        environ[MTIME_APPLIED_KEY] = True
        headers.append(("X-OC-Mtime", "accepted"))
    status = HTTP_CREATED if upload.created else HTTP_NO_CONTENT
    return util.send_status_response(environ, start_response, status, add_headers=headers)
