"""The public pages of share links at ``/s/<token>`` (Flask; ``make_link_pages``).

A link's holder has no account: ``links.open(token)`` gives the principal to act as, and every
read or write goes through the drive service with it, so the access rule decides (a drop link
cannot list or read; paths are relative to the link's node, "/" being the shared folder or
file). Routes:

- ``GET /s/<token>[?path=/sub]``: the password form of a protected link (until a cookie shows
  the password was given), a folder listing (view, edit, upload), a file's page, or the upload
  form alone (drop). ``POST /s/<token>`` takes the password (``password`` field): right sets
  ``dd_link_<id>`` to ``links.proof`` and redirects (303), wrong answers the form with 403,
  too many wrong ones 429.
- ``GET /s/<token>/download?path=P``: one file, streamed (one use of the link).
- ``GET /s/<token>/zip?path=P``: a folder as a zip stream (one use; not for drop links).
- ``PUT /s/<token>/upload?path=/sub/name``: the raw body becomes that file (one use per file);
  answers JSON. The page's upload form sends each file so, with a progress bar.

The answer for a link that is unknown, revoked, expired or used up is one and the same 404 page.
Pages never show the owner's login or anything above the shared node: they print only what the
service returns for the link's principal (names and paths below the node). Every answer carries
``Cache-Control: no-store``, ``Referrer-Policy: no-referrer`` (the token is in the URL), a
Content-Security-Policy allowing the web app's stylesheet from this origin and otherwise only
the pages' own script and style (by their hashes), and ``X-Content-Type-Options: nosniff``;
downloads are ``application/octet-stream`` attachments. The HTML (in the web app's look) is
``davdrive.web.link_page_html``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from flask import Flask, Response, request

from davdrive import errors
from davdrive.httpcommon.zipstream import PIECE, ZipStream, add_tree
from davdrive.service.content import PRECHECK_MIN
from davdrive.service.links import OpenLink
from davdrive.service.paths import join, split_path
from davdrive.service.types import NodeInfo
from davdrive.web.link_page_html import (
    PAGE_CSP,
    breadcrumbs,
    drop_page,
    file_page,
    folder_page,
    human_size,
    message_page,
    password_page,
    query,
    upload_section,
)

if TYPE_CHECKING:
    from davdrive.app import App

log = logging.getLogger(__name__)

COOKIE_PREFIX = "dd_link_"
FORM_MAX = 64 << 10  # bytes of a password form
GONE_TEXT = "This link does not exist or is no longer available."
# (error class, status, what the page says); the first match wins
STATUS: list[tuple[type[errors.DriveError], int, str]] = [
    (errors.NotFound, 404, GONE_TEXT),
    (errors.PermissionDenied, 403, "This link does not allow that."),
    (errors.BadRequest, 400, "The request is not valid."),
    (errors.IncompleteUpload, 400, "The upload was incomplete; nothing was saved."),
    (errors.AlreadyExists, 409, "An item of that name already exists."),
    (errors.Archived, 409, "This file is archived; a restore was requested. Try again later."),
    (errors.Conflict, 409, "That conflicts with what is there now."),
    (errors.PreconditionFailed, 409, "That item changed meanwhile."),
    (errors.Locked, 423, "That item is locked."),
    (errors.FileTooLarge, 413, "The file is too large."),
    (errors.QuotaExceeded, 507, "There is no space left for this upload."),
    (errors.InsufficientStorage, 507, "There is no space left for this upload."),
    (errors.TooManyRequests, 429, "Too many attempts; try again later."),
]
REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    411: "Length Required",
    413: "Content Too Large",
    423: "Locked",
    429: "Too Many Requests",
    500: "Internal Server Error",
    507: "Insufficient Storage",
}


def _status_of(exc: errors.DriveError) -> tuple[int, str]:
    for cls, status, text in STATUS:
        if isinstance(exc, cls):
            return status, text
    return 500, "Something went wrong."


# -- formatting ----------------------------------------------------------------------------------
def content_disposition(name: str) -> str:
    """RFC 6266: an ASCII fallback and the exact UTF-8 name."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\%' else "_" for c in name)
    exact = quote(name, safe="")
    return f"attachment; filename=\"{fallback or 'download'}\"; filename*=UTF-8''{exact}"


def _norm(path: str | None) -> str:
    """A path inside the link, normalized ("/" for none); ``BadRequest`` for hostile ones."""
    return join(split_path(path or "/"))


# -- the app -------------------------------------------------------------------------------------
def make_link_pages(app: App) -> Flask:
    """The WSGI app of ``/s/<token>`` (the dispatcher sends every ``/s/`` path but the link's
    WebDAV here) over ``app`` (a ``davdrive.app.App``)."""
    links = app.drive.links
    drive = app.drive
    pages = Flask("davdrive.web.link_pages", static_folder=None)
    pages.url_map.strict_slashes = False

    # -- plumbing ----------------------------------------------------------------------------
    def base(token: str) -> str:
        return f"{request.script_root}/s/{quote(token, safe='')}"

    def page_url(token: str, path: str = "/") -> str:
        return base(token) + ("" if path == "/" else "?path=" + quote(path, safe="/"))

    def open_link(token: str) -> OpenLink:
        link = links.open(token)
        request.environ["davdrive.principal"] = link.principal  # the access log's login
        return link

    def unlocked(link: OpenLink) -> bool:
        if not link.protected:
            return True
        assert link.principal.link is not None
        value = request.cookies.get(f"{COOKIE_PREFIX}{link.principal.link.id}", "")
        return bool(value) and links.check_proof(link, value)

    def require_unlocked(link: OpenLink) -> None:
        if not unlocked(link):
            raise errors.PermissionDenied("this link needs its password")

    def html_response(body: str, status: int = 200) -> Response:
        resp = Response(body, status=status, mimetype="text/html")
        resp.headers["Content-Security-Policy"] = PAGE_CSP
        return resp

    def json_response(doc: dict[str, Any], status: int = 200) -> Response:
        return Response(json.dumps(doc), status=status, mimetype="application/json")

    @pages.after_request
    def common_headers(resp: Response) -> Response:
        resp.headers.setdefault(
            "Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"
        )
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["X-Frame-Options"] = "DENY"
        return resp

    @pages.errorhandler(errors.DriveError)
    def on_drive_error(exc: errors.DriveError) -> Response:
        status, text = _status_of(exc)
        if status == 500:
            log.error("link page: %s", exc)
        if request.endpoint == "upload":  # the form's script reads JSON
            resp = json_response({"error": {"code": exc.code, "message": text}}, status)
        else:
            resp = html_response(
                message_page(request.script_root, REASONS.get(status, "Error"), text), status
            )
        if status == 429 or isinstance(exc, errors.Archived):
            retry = (exc.details or {}).get("retry_after") or 60
            resp.headers["Retry-After"] = str(int(retry))
        return resp

    @pages.errorhandler(404)
    def on_404(_exc: Exception) -> Response:
        return html_response(message_page(request.script_root, "Not Found", GONE_TEXT), 404)

    @pages.errorhandler(405)
    def on_405(_exc: Exception) -> Response:
        return html_response(
            message_page(request.script_root, "Not Allowed", "Not allowed here."), 405
        )

    # -- the page ----------------------------------------------------------------------------
    @pages.route("/s/<token>", methods=["GET", "POST"])
    def page(token: str) -> Response:
        link = open_link(token)
        root = request.script_root
        if request.method == "POST":
            return password_post(token, link)
        if not unlocked(link):
            return html_response(password_page(root, page_url(token, _current())))
        if link.kind == "drop":  # its holders see nothing: the form alone
            return html_response(drop_page(root, link, base(token)))
        path = _current()
        info = drive.stat(link.principal, path)
        crumbs = breadcrumbs(link, path, lambda p: page_url(token, p))
        if not info.is_dir:
            download = base(token) + "/download" + query(path)
            return html_response(file_page(root, link, info, crumbs, download))
        members = drive.list_dir(link.principal, path)
        return html_response(
            folder_page(
                root,
                link,
                path,
                members,
                crumbs,
                base(token),
                lambda p: page_url(token, p),
                upload_section(base(token), link, path),
            )
        )

    def _current() -> str:
        return _norm(request.args.get("path"))

    def password_post(token: str, link: OpenLink) -> Response:
        target = page_url(token, _current())
        if not link.protected:
            return Response(status=303, headers={"Location": target})
        if (request.content_length or 0) > FORM_MAX:
            raise errors.BadRequest("the form is too large")
        password = request.form.get("password", "")
        if not links.unlock(link, password, request.remote_addr):
            page = password_page(request.script_root, target, wrong=True)
            return html_response(page, 403)
        resp = Response(status=303, headers={"Location": target})
        assert link.principal.link is not None
        resp.set_cookie(
            f"{COOKIE_PREFIX}{link.principal.link.id}",
            links.proof(link),
            path=base(token),
            secure=request.is_secure,
            httponly=True,
            samesite="Strict",
        )
        return resp

    # -- downloads ---------------------------------------------------------------------------
    @pages.route("/s/<token>/download", methods=["GET", "HEAD"])
    def download(token: str) -> Response:
        link = open_link(token)
        require_unlocked(link)
        p = link.principal
        info = drive.stat(p, _current())
        if info.is_dir:
            raise errors.BadRequest("a folder downloads as a zip")
        headers = {
            "Content-Disposition": content_disposition(
                link.name if info.path == "/" else info.name
            ),
            "Content-Length": str(info.size),
            "ETag": f'"{info.etag}"',
            "Last-Modified": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(info.mtime)),
        }
        if request.method == "HEAD":  # no body, no use
            return Response(mimetype="application/octet-stream", headers=headers)
        if info.version_id is None:  # an upload still in progress
            raise errors.NotFound("no content yet")
        reader = drive.open_version(p, info.version_id)  # the bytes of exactly that ETag
        try:
            links.use(link)
        except BaseException:
            reader.close()
            raise
        resp = Response(_copy(reader), mimetype="application/octet-stream", headers=headers)
        resp.call_on_close(reader.close)
        return resp

    @pages.route("/s/<token>/zip", methods=["GET", "HEAD"])
    def zip_folder(token: str) -> Response:
        link = open_link(token)
        require_unlocked(link)
        if link.kind == "drop":
            raise errors.PermissionDenied("a drop link cannot be read")
        p, path = link.principal, _current()
        info = drive.stat(p, path)
        if not info.is_dir:
            raise errors.BadRequest("only a folder downloads as a zip")
        name = (link.name if path == "/" else info.name) + ".zip"
        headers = {"Content-Disposition": content_disposition(name)}
        if request.method == "HEAD":
            return Response(mimetype="application/zip", headers=headers)
        first = drive.list_tree(p, path)  # errors show before the answer starts
        links.use(link)
        return Response(_zip_chunks(drive, p, path, first), mimetype="application/zip",
                        headers=headers)  # fmt: skip

    # -- uploads -----------------------------------------------------------------------------
    @pages.route("/s/<token>/upload", methods=["PUT", "POST"])
    def upload(token: str) -> Response:
        link = open_link(token)
        require_unlocked(link)
        path = _norm(request.args.get("path"))
        if path == "/":
            raise errors.BadRequest("path names the file to create: ?path=/name")
        length = request.content_length
        if length is None and not request.environ.get("wsgi.input_terminated"):
            return json_response(
                {"error": {"code": "length_required", "message": "send Content-Length"}}, 411
            )
        # A use is counted before the body is read, so every check must come before it: the
        # service skips its pre-checks for a small declared body (the commit makes them), and
        # an undeclared size makes it check anyway.
        declared = length if length is not None and length > PRECHECK_MIN else None
        up = drive.begin_upload(link.principal, path, declared_size=declared)
        try:
            links.use(link)
            stream = request.stream
            while True:
                piece = stream.read(PIECE)
                if not piece:
                    break
                up.write(piece)
            info = up.commit(expected_size=length)
        except BaseException:
            up.abort()
            raise
        doc: dict[str, Any] = {"size": info.size}
        if link.kind != "drop":  # a drop never tells what it renamed to (that would tell)
            doc["name"] = info.name
        return json_response(doc, 201 if up.created else 200)

    return pages


def _copy(reader: Any) -> Iterator[bytes]:
    while True:
        piece = reader.read(PIECE)
        if not piece:
            return
        yield piece


def _zip_chunks(
    drive: Any, p: Any, path: str, first: tuple[list[NodeInfo], bool, int]
) -> Iterator[bytes]:
    """The archive of the folder ``path``: its members, parents first."""
    z = ZipStream()
    yield from add_tree(z, drive, p, path, "", first)
    yield from z.finish()


__all__ = ["content_disposition", "human_size", "make_link_pages"]
