"""Nextcloud chunked upload v2 at ``/remote.php/dav/uploads/<login>/``: the WebDAV face of
``service.chunked_uploads`` (Flask routes; the dispatcher sends the whole path here).

- ``MKCOL <folder>`` opens an upload (``Destination`` and ``OC-Total-Length`` optional, checked
  now when given); 201, or 405 if the folder exists.
- ``PUT <folder>/<part>``: a part whose name starts with a number; 201 (204 when replaced).
- ``PROPFIND`` (Depth 0/1) on the uploads root, a folder or a part: resourcetype,
  getcontentlength, getlastmodified, getetag (a resuming client lists what it already sent).
- ``MOVE <folder>/.file`` with ``Destination`` (a bare path or an absolute URL under
  ``/remote.php/dav/files/<login>/`` or ``/remote.php/webdav/``): assembles the parts in order
  of their leading number; ``OC-Total-Length`` must match, ``OC-Checksum`` must match,
  ``X-OC-Mtime`` is applied (``X-OC-MTime: accepted``), ``If: <dest> (["etag"])``/``If-Match``
  must name the destination's current ETag, ``If-None-Match: *`` must find none; lock tokens in
  ``If`` count. Answers 201 (new) or 204 with ``ETag``, ``OC-ETag`` and ``OC-FileId``.
- An assembly that takes longer than ``assembly_wait`` seconds (config) for a client that
  polls (the Nextcloud desktop client, ``mirall/... (Nextcloud...)``: ownCloud 2.11 refuses
  polling as "a removed legacy feature", rclone and the apps do not poll) goes on in the
  background: the MOVE answers 202 with ``OC-JobStatus-Location:
  /remote.php/dav/job-status/<login>/<job>``, whose ``GET`` answers JSON ``{"status":
  "started"}``, then ``{"status": "finished", "fileId", "ETag"}`` or ``{"status": "error",
  "errorCode", "errorMessage"}`` (the clients' PollJob) — no proxy timeout ends an upload.
- ``DELETE <folder>`` cancels (404 if absent: rclone probes with it), ``DELETE <part>`` drops one.
- ``PATCH`` of a file under ``/remote.php/dav/files/<login>/`` (or ``/remote.php/webdav/``)
  with ``X-Recalculate-Hash: sha1|md5|adler32`` (Nextcloud's checksum update, which rclone
  sends after an upload when ``oc:checksums`` is empty): the file is read back and hashed,
  answered as ``OC-Checksum: SHA1:<hex>`` with 204. WsgiDAV does not know PATCH, so the
  dispatcher sends every ``/remote.php`` PATCH here.

Errors use the WebDAV door's table (``providers.errors``) with Sabre's XML error body, whose
``s:message`` the clients show.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from email.utils import formatdate
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit
from xml.etree import ElementTree as ET

import defusedxml.ElementTree as SafeET
from flask import Flask, Response, request

from davdrive import errors
from davdrive.service.auth import principal_from_header
from davdrive.service.checksums import ContentChecksum, parse_oc_checksum
from davdrive.service.chunked_uploads import ChunkedInfo, ChunkedUploads, PartInfo
from davdrive.service.paths import join, normalize_name
from davdrive.service.timestamps import parse_mtime
from davdrive.service.types import NodeInfo, Principal
from providers.errors import status_of
from providers.oc_props import oc_id, written_headers
from providers.provider import _hostile, _is_home

if TYPE_CHECKING:
    from davdrive.app import App

log = logging.getLogger(__name__)

ROOT = "/remote.php/dav/uploads"
JOBS = "/remote.php/dav/job-status"
FINAL = ".file"
REALM = 'Basic realm="davdrive", charset="UTF-8"'
ALLOW = "OPTIONS, PROPFIND, MKCOL, PUT, MOVE, DELETE"
MAX_PROPFIND_BODY = 1 << 20
_SLASHES = re.compile(r"/{2,}")
_IF_ETAG = re.compile(r'\[\s*(?:W/)?"([^"]*)"\s*\]')
_IF_LIST = re.compile(r"\(([^)]*)\)")
_IF_TOKEN = re.compile(r"<([^>]+)>")
_FILE_HOMES = (
    re.compile(r"^/remote\.php/dav/files/([^/]+)(/.*)?$"),
    re.compile(r"^/remote\.php/webdav()(/.*)?$"),
)
DAV = "DAV:"
KNOWN_PROPS = ("resourcetype", "getcontentlength", "getlastmodified", "getetag", "displayname")


class _SqueezeSlashes:
    """``//remote.php//dav`` is ``/remote.php/dav`` (``/`` is ASCII: the WSGI-native
    ``PATH_INFO`` can be edited as it is)."""

    def __init__(self, inner: Callable[..., Iterable[bytes]]) -> None:
        self.inner = inner

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO") or "/"
        if "//" in path:
            environ["PATH_INFO"] = _SLASHES.sub("/", path)
        return self.inner(environ, start_response)


def sabre_error(status: int, message: str, exception: str = "Sabre\\DAV\\Exception") -> Response:
    """An error as Nextcloud (SabreDAV) writes it; the clients show ``s:message``."""
    root = ET.Element("{DAV:}error")
    ET.SubElement(root, "{http://sabredav.org/ns}exception").text = exception
    ET.SubElement(root, "{http://sabredav.org/ns}message").text = message
    ET.register_namespace("d", DAV)
    ET.register_namespace("s", "http://sabredav.org/ns")
    body = b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root)
    return Response(body, status=status, content_type="application/xml; charset=utf-8")


def destination_path(value: str, p: Principal) -> str:
    """The drive path (``p``'s view) a ``Destination`` names: a bare path or an absolute URL
    under the caller's ``/remote.php/dav/files/<login>/`` or ``/remote.php/webdav/``."""
    if not value:
        raise errors.BadRequest("Destination header missing")
    path = _SLASHES.sub("/", unquote(urlsplit(value).path, errors="strict"))
    for home in _FILE_HOMES:
        m = home.match(path)
        if m is None:
            continue
        if m.group(1) and not _is_home(m.group(1), p):
            raise errors.PermissionDenied("the destination is in another account's files")
        parts = [x for x in (m.group(2) or "").split("/") if x]
        if not parts or _hostile(parts):
            raise errors.BadRequest("bad Destination")
        return join([normalize_name(x) for x in parts])
    raise errors.BadRequest("the Destination must be under /remote.php/dav/files/<login>/")


def if_header(value: str) -> tuple[str | None, frozenset[str]]:
    """The first ETag and every lock token of an ``If`` header."""
    etag = None
    tokens: set[str] = set()
    for group in _IF_LIST.findall(value or ""):
        tokens.update(_IF_TOKEN.findall(group))
        m = _IF_ETAG.search(group)
        if m is not None and etag is None:
            etag = m.group(1)
    return etag, frozenset(tokens)


def polls(user_agent: str) -> bool:
    """Whether the client follows ``OC-JobStatus-Location`` (the Nextcloud desktop client)."""
    return "mirall/" in user_agent and "nextcloud" in user_agent.lower()


def _read_body(environ: dict[str, Any]) -> tuple[Callable[[int], bytes], int | None]:
    """A reader of the request body and its declared length (None: chunked, read to EOF)."""
    stream = environ["wsgi.input"]
    raw = environ.get("CONTENT_LENGTH") or ""
    if raw.strip():
        try:
            length = int(raw)
        except ValueError:
            raise errors.BadRequest("bad Content-Length") from None
        if length < 0:
            raise errors.BadRequest("bad Content-Length")
        return stream.read, length
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return stream.read, None
    return (lambda n: b""), 0


def _requested_props(body: bytes) -> list[str] | None:
    """The DAV: property names a PROPFIND asks for; None for allprop (or no body)."""
    if not body.strip():
        return None
    try:
        root = SafeET.fromstring(body)
    except Exception:  # noqa: BLE001 - defusedxml raises several kinds
        raise errors.BadRequest("malformed PROPFIND body") from None
    prop = root.find("{DAV:}prop")
    if prop is None:
        return None
    return [child.tag for child in prop]


class _Assembly:
    """One assembly run on its own thread; the MOVE waits for it a while, then hands it to a
    job row the client polls."""

    def __init__(self, uploads: ChunkedUploads, p: Principal, work: Callable[[], Any]) -> None:
        self.uploads = uploads
        self.p = p
        self.work = work
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self.job: str | None = None

    def run(self) -> None:
        try:
            value, error = self.work(), None
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting request or the job
            value, error = None, exc
        with self.lock:
            self.value, self.error = value, error
            self.done.set()
            if self.job is not None:
                self._record()

    def _record(self) -> None:
        assert self.job is not None
        if self.error is None:
            self.uploads.finish_job(self.job, node=self.value[0])
            return
        if isinstance(self.error, errors.DriveError):
            status, message = status_of(self.error), self.error.message
        else:
            log.error("chunked assembly failed", exc_info=self.error)
            status, message = 500, "internal error"
        self.uploads.finish_job(self.job, error_status=status, error=message)

    def wait(self, seconds: float | None) -> str | None:
        """None once finished (``value``/``error`` set), else the job id it continues as
        (``seconds`` None: wait until it finishes; 0: always a job)."""
        if seconds is None:
            self.run()
            return None
        if seconds <= 0:  # always a job (deterministic, whatever the assembly's speed)
            self.job = self.uploads.start_job(self.p)
            threading.Thread(target=self.run, name="chunked-assembly", daemon=True).start()
            return self.job
        threading.Thread(target=self.run, name="chunked-assembly", daemon=True).start()
        if self.done.wait(seconds):
            return None
        with self.lock:
            if self.done.is_set():
                return None
            self.job = self.uploads.start_job(self.p)
            return self.job


def make_nextcloud_uploads_app(app: App) -> Callable[..., Iterable[bytes]]:
    """The WSGI app of ``/remote.php/dav/uploads/...`` (the full path is passed)."""
    uploads = ChunkedUploads(app.drive)
    wait = float(getattr(app.config, "assembly_wait", 20.0))
    web = Flask("davdrive.nextcloud_uploads", static_folder=None)
    web.url_map.strict_slashes = False
    web.url_map.merge_slashes = False

    def principal(login: str) -> Principal:
        header = request.headers.get("Authorization", "")
        p = principal_from_header(app.accounts, header, client=request.remote_addr)
        request.environ["davdrive.principal"] = p  # the access log's login
        if not _is_home(login, p):
            raise errors.PermissionDenied("these are another account's uploads")
        return p

    @web.errorhandler(errors.DriveError)
    def on_drive_error(exc: errors.DriveError) -> Response:
        status = status_of(exc)
        resp = sabre_error(status, exc.message if status != 500 else "internal error")
        if status == 401:
            resp.headers["WWW-Authenticate"] = REALM
        elif status == 429 or (exc.details or {}).get("retry_after") is not None:
            # rate limits; an archived file being restored (409); a store that is down (503)
            retry = (exc.details or {}).get("retry_after") or 60
            resp.headers["Retry-After"] = str(max(1, int(float(str(retry)) + 0.999)))
        return resp

    @web.errorhandler(404)
    def on_404(_exc: Exception) -> Response:
        return sabre_error(404, "not found", "Sabre\\DAV\\Exception\\NotFound")

    @web.errorhandler(405)
    def on_405(_exc: Exception) -> Response:
        resp = sabre_error(405, f"{request.method} is not allowed here")
        resp.headers["Allow"] = ALLOW
        return resp

    def href(*segments: str, folder: bool = False) -> str:
        path = "/".join([ROOT, *(quote(s, safe="") for s in segments)])
        return path + "/" if folder else path

    def response_xml(
        entries: list[tuple[str, dict[str, Any]]], wanted: list[str] | None
    ) -> Response:
        ET.register_namespace("d", DAV)
        root = ET.Element("{DAV:}multistatus")
        for url, props in entries:
            resp = ET.SubElement(root, "{DAV:}response")
            ET.SubElement(resp, "{DAV:}href").text = url
            names = wanted if wanted is not None else [f"{{DAV:}}{n}" for n in props]
            found = [n for n in names if n.startswith("{DAV:}") and n[6:] in props]
            missing = [n for n in names if n not in found]
            for group, status in ((found, "200 OK"), (missing, "404 Not Found")):
                if not group:
                    continue
                stat = ET.SubElement(resp, "{DAV:}propstat")
                prop = ET.SubElement(stat, "{DAV:}prop")
                for name in group:
                    el = ET.SubElement(prop, name)
                    value = props.get(name[6:]) if group is found else None
                    if name == "{DAV:}resourcetype":
                        if value:
                            ET.SubElement(el, "{DAV:}collection")
                    elif value is not None:
                        el.text = str(value)
                ET.SubElement(stat, "{DAV:}status").text = f"HTTP/1.1 {status}"
        body = b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root)
        return Response(body, status=207, content_type="application/xml; charset=utf-8")

    def folder_props(info: ChunkedInfo) -> dict[str, Any]:
        return {
            "resourcetype": True,
            "getlastmodified": formatdate(info.created, usegmt=True),
            "displayname": info.name,
        }

    def part_props(part: PartInfo) -> dict[str, Any]:
        return {
            "resourcetype": False,
            "getcontentlength": part.size,
            "getlastmodified": formatdate(part.created, usegmt=True),
            "getetag": f'"{part.size:x}-{int(part.created * 1000):x}"',
        }

    def depth() -> int:
        return 0 if request.headers.get("Depth", "1").strip() == "0" else 1

    def propfind_body() -> list[str] | None:
        read, length = _read_body(request.environ)
        if length is not None and length > MAX_PROPFIND_BODY:
            raise errors.BadRequest("PROPFIND body too large")
        return _requested_props(read(length if length is not None else MAX_PROPFIND_BODY))

    # -- the uploads root -------------------------------------------------------------------------
    @web.route(f"{ROOT}/<login>", methods=["PROPFIND", "OPTIONS"])
    def root(login: str) -> Response:
        if request.method == "OPTIONS":
            return Response(b"", headers={"Allow": ALLOW, "DAV": "1"})
        p = principal(login)
        wanted = propfind_body()
        entries: list[tuple[str, dict[str, Any]]] = [
            (href(login, folder=True), {"resourcetype": True})
        ]
        if depth():
            entries += [
                (href(login, i.name, folder=True), folder_props(i)) for i in uploads.list(p)
            ]
        return response_xml(entries, wanted)

    # -- one upload folder ------------------------------------------------------------------------
    @web.route(f"{ROOT}/<login>/<folder>", methods=["MKCOL", "PROPFIND", "DELETE", "OPTIONS"])
    def folder(login: str, folder: str) -> Response:
        if request.method == "OPTIONS":
            return Response(b"", headers={"Allow": ALLOW, "DAV": "1"})
        p = principal(login)
        if request.method == "MKCOL":
            read, length = _read_body(request.environ)
            if length or read(1):
                return sabre_error(415, "MKCOL takes no body")
            dest = request.headers.get("Destination")
            uploads.open(
                p,
                folder,
                total_length=_int_header("OC-Total-Length"),
                destination=destination_path(dest, p) if dest else None,
            )
            return Response(b"", status=201)
        if request.method == "DELETE":
            uploads.cancel(p, folder)
            return Response(b"", status=204)
        wanted = propfind_body()
        info = uploads.get(p, folder)
        entries = [(href(login, folder, folder=True), folder_props(info))]
        if depth():
            entries += [(href(login, folder, x.name), part_props(x)) for x in info.parts]
        return response_xml(entries, wanted)

    # -- a part, or the assembled file ------------------------------------------------------------
    @web.route(f"{ROOT}/<login>/<folder>/<part>", methods=["PUT", "MOVE", "DELETE", "PROPFIND"])
    def part(login: str, folder: str, part: str) -> Response:
        p = principal(login)
        if request.method == "MOVE":
            if part != FINAL:
                raise errors.BadRequest(f"only {FINAL} can be moved: it assembles the parts")
            return assemble(p, folder)
        if part == FINAL:
            raise errors.NotFound(f"{FINAL} is assembled by MOVE")
        if request.method == "PUT":
            read, length = _read_body(request.environ)
            _, created = uploads.put_part(p, folder, part, read, length)
            return Response(b"", status=201 if created else 204)
        if request.method == "DELETE":
            uploads.delete_part(p, folder, part)
            return Response(b"", status=204)
        wanted = propfind_body()
        match = [x for x in uploads.get(p, folder).parts if x.name == part]
        if not match:
            raise errors.NotFound(f"no part {part!r}")
        return response_xml([(href(login, folder, part), part_props(match[0]))], wanted)

    def assemble(p: Principal, folder: str) -> Response:
        path = destination_path(request.headers.get("Destination", ""), p)
        etag, tokens = if_header(request.headers.get("If", ""))
        if tokens:
            p = replace(p, lock_tokens=tokens)
        if_match = request.headers.get("If-Match", "").strip()
        if etag is None and if_match:
            etag = if_match if if_match == "*" else if_match.removeprefix("W/").strip('"')
        create_only = request.headers.get("If-None-Match", "").strip() == "*"
        raw_mtime = request.headers.get("X-OC-Mtime")
        mtime = parse_mtime(raw_mtime, "X-OC-Mtime") if raw_mtime else None
        total = _int_header("OC-Total-Length")
        checksum = parse_oc_checksum(request.headers.get("OC-Checksum"))
        assembly = _Assembly(
            uploads,
            p,
            lambda: uploads.assemble(
                p,
                folder,
                path,
                total_length=total,
                mtime=mtime,
                expected_etag=etag,
                create_only=create_only,
                checksum=checksum,
            ),
        )
        job = assembly.wait(wait if polls(request.headers.get("User-Agent", "")) else None)
        if job is not None:
            location = f"{JOBS}/{quote(p.login, safe='')}/{job}"
            return Response(b"", status=202, headers={"OC-JobStatus-Location": location})
        if assembly.error is not None:
            raise assembly.error
        node, created = assembly.value
        return written(node, created, mtime is not None)

    @web.get(f"{JOBS}/<login>/<job>")
    def job_status(login: str, job: str) -> Response:
        info = uploads.job(principal(login), job)
        doc: dict[str, Any] = {"status": info.status}
        if info.status == "finished" and info.node_id is not None:
            doc.update(fileId=oc_id(info.node_id), ETag=f'"{info.etag}"')
        elif info.status == "error":
            doc.update(errorCode=info.error_status, errorMessage=info.error)
        body = json.dumps(doc).encode()
        return Response(
            body, content_type="application/json", headers={"Cache-Control": "no-store"}
        )

    def written(node: NodeInfo, created: bool, mtime: bool) -> Response:
        resp = Response(b"", status=201 if created else 204)
        resp.headers["ETag"] = f'"{node.etag}"'
        for name, value in written_headers(node):
            resp.headers[name] = value
        if mtime:
            resp.headers["X-OC-MTime"] = "accepted"
        return resp

    def _int_header(name: str) -> int | None:
        raw = request.headers.get(name)
        if raw is None or not raw.strip():
            return None
        if not raw.strip().isdigit():
            raise errors.BadRequest(f"{name} must be a number of bytes")
        return int(raw)

    # -- Nextcloud's checksum update ---------------------------------------------------------------
    @web.route("/remote.php/dav/files/<login>/<path:rest>", methods=["PATCH"])
    @web.route("/remote.php/webdav/<path:rest>", methods=["PATCH"], defaults={"login": ""})
    def recalculate_hash(login: str, rest: str) -> Response:
        header = request.headers.get("Authorization", "")
        p = principal_from_header(app.accounts, header, client=request.remote_addr)
        request.environ["davdrive.principal"] = p
        path = destination_path(request.path, p)
        kind = request.headers.get("X-Recalculate-Hash", "").strip()
        if not kind:
            raise errors.BadRequest("PATCH needs X-Recalculate-Hash (sha1, md5 or adler32)")
        check = ContentChecksum(kind)
        reader = app.drive.open_reader(p, path)
        try:
            while piece := reader.read(4 << 20):
                check.update(piece)
        finally:
            reader.close()
        headers = {"OC-Checksum": f"{check.kind}:{check.hexdigest()}", "Content-Length": "0"}
        return Response(b"", status=204, headers=headers)

    return _SqueezeSlashes(web.wsgi_app)


__all__ = ["destination_path", "if_header", "make_nextcloud_uploads_app", "polls"]
