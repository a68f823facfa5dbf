"""PROPFIND fast path: the 207 body of a file or a folder's listing built as text in one pass.

WsgiDAV answers a PROPFIND by building an lxml tree: for every member, every property goes
through ``get_property_value`` (several getter calls, a ref-URL, a DAVError per missing
property), then ``add_property_response`` and one big ``tostring``. For 5,000 members that is
~400 ms of Python. Here the common request (Depth 0 or 1; an empty body, ``<allprop/>``,
WsgiDAV's ``<name/>`` or a ``<prop>`` list; no conditional headers) is answered from the
folder's one listing query (RFC 4918 ``<propname/>``, which WsgiDAV 4.4 ignores, is left to it):

* per resource kind (file, folder) the request compiles once into a format string with the
  same elements, namespaces, propstat grouping and status lines WsgiDAV would write;
* every member without dead properties and without a lock rooted at it is one ``str.format``;
* a member with dead properties or a lock is rendered by WsgiDAV's own code
  (``get_properties`` + ``util.add_property_response``), serialised alone and spliced in;
* the ownCloud/Nextcloud properties (providers/oc_props.py) are per-node slots or constants of
  the template; the home root when ``oc:data-fingerprint`` is asked, and a member whose owner
  cannot be named, go to WsgiDAV's code too.

Anything unusual (a body that is not a plain propfind, a conditional header, the DAV root, a
missing resource, a property name that needs escaping) goes to WsgiDAV unchanged. The answer is
the bytes WsgiDAV would send (tests/dav/test_propfind_fast.py compares both).
"""

from __future__ import annotations

import datetime
import io
import mimetypes
import posixpath
import re
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from lxml import etree
from wsgidav import util, xml_tools

from providers import oc_props
from providers.resources import (
    LOCKS_KEY,
    PROPS_KEY,
    FileResource,
    FolderResource,
    content_type,
    dav_errors,
)

if TYPE_CHECKING:
    from davdrive.service.types import NodeInfo
    from providers.provider import DriveProvider

# Request headers that make WsgiDAV evaluate conditions before answering: left to it.
CONDITIONAL = (
    "HTTP_IF",
    "HTTP_IF_MATCH",
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_UNMODIFIED_SINCE",
)
HREF_SAFE = "/!*'(),$-_|."  # what ``DAVResource.get_href`` leaves unquoted
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9_.\-~!*'(),$|]*")  # quote() leaves these alone
_XML_TEXT_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SIMPLE_NS = re.compile(r"[A-Za-z0-9:/._~%#?=+;@,!$*()'\[\]-]*")
_TAG = re.compile(r"(?:\{([^{}]*)\})?([A-Za-z_][\w.\-]*)")

HEAD = "<?xml version='1.0' encoding='UTF-8'?>\n<D:multistatus xmlns:D=\"DAV:\">"
TAIL = "</D:multistatus>"
OK = "200 OK"
NOT_FOUND = "404 Not Found"
SUPPORTED_LOCK = (
    "<D:supportedlock>"
    "<D:lockentry><D:lockscope><D:exclusive/></D:lockscope>"
    "<D:locktype><D:write/></D:locktype></D:lockentry>"
    "<D:lockentry><D:lockscope><D:shared/></D:lockscope>"
    "<D:locktype><D:write/></D:locktype></D:lockentry>"
    "</D:supportedlock>"
)

# The slots of a compiled response template (positional ``str.format`` fields).
HREF, CREATED, LENGTH, CTYPE, MODIFIED, NAME, ETAG, USED, AVAILABLE = range(9)
OC_ID, FILEID, OC_PERMS, OWNER, TREE_SIZE, SHARE_TYPES, CHECKSUM = range(9, 16)  # oc_props

# allprop / propname of a plain resource: ``get_property_names`` (resources.py + WsgiDAV)
# when no getter answers None, a lock manager is present and there are no dead properties.
FILE_NAMES = (
    "{DAV:}resourcetype",
    "{DAV:}creationdate",
    "{DAV:}getcontentlength",
    "{DAV:}getcontenttype",
    "{DAV:}getlastmodified",
    "{DAV:}displayname",
    "{DAV:}getetag",
    "{DAV:}lockdiscovery",
    "{DAV:}supportedlock",
)
FOLDER_NAMES = (
    "{DAV:}resourcetype",
    "{DAV:}creationdate",
    "{DAV:}quota-used-bytes",
    "{DAV:}quota-available-bytes",
    "{DAV:}getlastmodified",
    "{DAV:}displayname",
    "{DAV:}getetag",
    "{DAV:}lockdiscovery",
    "{DAV:}supportedlock",
)

# name -> (200 element for a file, for a folder); None: 404 for that kind. A string with a
# slot is filled per resource; the others are constant.
_LIVE: dict[str, tuple[str | None, str | None]] = {
    "{DAV:}resourcetype": (
        "<D:resourcetype></D:resourcetype>",
        "<D:resourcetype><D:collection/></D:resourcetype>",
    ),
    "{DAV:}creationdate": ("<D:creationdate>{1}</D:creationdate>",) * 2,
    # A folder's only when named (not in its allprop): "0" (resources.py, for Android).
    "{DAV:}getcontentlength": (
        "<D:getcontentlength>{2}</D:getcontentlength>",
        "<D:getcontentlength>0</D:getcontentlength>",
    ),
    "{DAV:}getcontenttype": ("<D:getcontenttype>{3}</D:getcontenttype>", None),
    # A file has no quota: WsgiDAV then returns None, written as an empty 200 element.
    "{DAV:}quota-used-bytes": (
        "<D:quota-used-bytes/>",
        "<D:quota-used-bytes>{7}</D:quota-used-bytes>",
    ),
    "{DAV:}quota-available-bytes": (
        "<D:quota-available-bytes/>",
        "<D:quota-available-bytes>{8}</D:quota-available-bytes>",
    ),
    "{DAV:}getlastmodified": ("<D:getlastmodified>{4}</D:getlastmodified>",) * 2,
    "{DAV:}displayname": ("<D:displayname>{5}</D:displayname>",) * 2,
    "{DAV:}getetag": ('<D:getetag>"{6}"</D:getetag>',) * 2,  # quoted (resources.py)
    "{DAV:}lockdiscovery": ("<D:lockdiscovery/>",) * 2,
    "{DAV:}supportedlock": (SUPPORTED_LOCK,) * 2,
}


def handle_propfind(
    provider: DriveProvider,
    environ: dict[str, Any],
    start_response: Callable,
    default_handler: Callable,
) -> Iterable[bytes]:
    """Answer a PROPFIND from the fast path, or hand it to WsgiDAV's ``do_PROPFIND``."""
    request = _parse_request(environ)
    if request is None:
        return default_handler(environ, start_response)
    res = provider.get_resource_inst(environ["PATH_INFO"], environ)
    if not isinstance(res, FileResource | FolderResource) or res.node is None:
        return default_handler(environ, start_response)
    mode, names = request
    body = _Renderer(provider, res, mode, names).render(environ.get("HTTP_DEPTH") == "1")
    data = body.encode("utf-8")
    start_response(
        "207 Multi-Status",
        [
            ("Content-Type", "application/xml; charset=utf-8"),
            ("Date", util.get_rfc1123_time()),
            ("Content-Length", str(len(data))),
        ],
    )
    return [data]


def _parse_request(environ: dict[str, Any]) -> tuple[str, list[str] | None] | None:
    """``(mode, names)`` of a plain PROPFIND (mode ``allprop``, ``name`` or ``named``), or
    None to leave the request to WsgiDAV. The buffered body stays unread."""
    if environ.get("HTTP_DEPTH") not in ("0", "1"):
        return None
    if any(environ.get(h) is not None for h in CONDITIONAL):
        return None
    stream = environ.get("wsgi.input")
    if not isinstance(stream, io.BytesIO):
        return None
    body = stream.getvalue()
    if not body:
        return "allprop", None
    try:
        root = etree.XML(body, parser=etree.XMLParser(resolve_entities=False))
    except etree.XMLSyntaxError:
        return None
    if root.tag != "{DAV:}propfind":
        return None
    mode: str | None = None
    names: list[str] = []
    for child in root:
        if child.tag == "{DAV:}allprop" and mode is None:
            mode = "allprop"
        elif child.tag == "{DAV:}name" and mode is None:
            mode = "name"  # sic: WsgiDAV 4.4 takes <name/>, and ignores RFC 4918 <propname/>
        elif child.tag == "{DAV:}prop" and mode in (None, "named"):
            mode = "named"
            for prop in child:
                if not isinstance(prop.tag, str) or not _TAG.fullmatch(prop.tag):
                    return None
                ns = prop.tag[1:].split("}", 1)[0] if prop.tag.startswith("{") else ""
                if not _SIMPLE_NS.fullmatch(ns):
                    return None
                names.append(prop.tag)
        elif isinstance(child.tag, str):
            return None  # <include>, a second mode, a stray element: WsgiDAV's rules
    if mode == "named" or mode is None:
        return "named", names
    return mode, None


class _Renderer:
    """One PROPFIND's templates and per-request caches."""

    def __init__(
        self, provider: DriveProvider, res: FileResource | FolderResource, mode: str, names: Any
    ) -> None:
        self.provider = provider
        self.res = res
        self.mode = mode
        self.names = names
        self.environ = res.environ
        self.templates: dict[bool, str] = {}
        self.created_cache: dict[float, str] = {}  # by whole second
        self.modified_cache: dict[int, str] = {}
        self.type_cache: dict[str, str] = {}
        self.oc_slots = False  # a template has a per-node ownCloud slot
        self.owner_slot = False
        self.size_slot = False  # a folder's oc:size (computed when asked)
        self.share_prefix: str | None = None  # oc:share-types asked: its namespace prefix
        self._oc: oc_props.OcView | None = None

    @property
    def oc(self) -> oc_props.OcView:
        if self._oc is None:
            self._oc = oc_props.OcView.of(self.environ, self.provider.drive, self.res.principal)
        return self._oc

    # -- templates ---------------------------------------------------------------------------
    def template(self, is_dir: bool) -> str:
        tmpl = self.templates.get(is_dir)
        if tmpl is None:
            tmpl = self.templates[is_dir] = self._compile(is_dir)
        return tmpl

    def _compile(self, is_dir: bool) -> str:
        """The ``<D:response>`` of a plain resource of one kind, as a format string: what
        ``get_properties`` + ``util.add_property_response`` produce for it."""
        names = self.names if self.mode == "named" else FOLDER_NAMES if is_dir else FILE_NAMES
        groups: dict[str, list[str]] = {}
        nsmap: dict[str, str] = {}  # namespace -> prefix, in order of first use
        for name in names:
            ns, local = util.split_namespace(name)
            if ns not in ("DAV:", "") and ns not in nsmap:
                nsmap[ns] = f"NS{len(nsmap) + 1}"
            live = _LIVE.get(name)
            element = live[is_dir] if live is not None else None
            if name in oc_props.LIVE and self.mode != "name":
                element = self._oc_element(name, is_dir, ns, local, nsmap)
            if self.mode == "name":
                groups.setdefault(OK, []).append(_empty(ns, local, nsmap))
            elif element is None:  # unknown live property; no dead ones on a plain resource
                groups.setdefault(NOT_FOUND, []).append(_empty(ns, local, nsmap))
            else:
                groups.setdefault(OK, []).append(element)
        decl = "".join(f' xmlns:{prefix}="{ns}"' for ns, prefix in nsmap.items())
        out = ["<D:response", decl.replace("{", "{{").replace("}", "}}"), "><D:href>{0}</D:href>"]
        for status, elements in groups.items():
            out.append("<D:propstat><D:prop>")
            out.extend(elements)
            out.append(f"</D:prop><D:status>HTTP/1.1 {status}</D:status></D:propstat>")
        out.append("</D:response>")
        return "".join(out)

    def _oc_element(
        self, name: str, is_dir: bool, ns: str, local: str, nsmap: dict[str, str]
    ) -> str | None:
        """The 200 element of an ownCloud/Nextcloud property (``oc_props``) for one kind of
        member (never the home root: rendered by WsgiDAV's code), or None for 404."""
        if name in oc_props.CONSTANT:
            value = oc_props.CONSTANT[name]
            return None if value is None else _text_element(ns, local, nsmap, value)
        slot = {oc_props.OC_ID: OC_ID, oc_props.FILEID: FILEID, oc_props.PERMISSIONS: OC_PERMS}
        if name in slot:
            self.oc_slots = True
            return _text_element(ns, local, nsmap, f"{{{slot[name]}}}")
        if name == oc_props.SIZE:
            if is_dir:
                self.size_slot = True
                return _text_element(ns, local, nsmap, f"{{{TREE_SIZE}}}")
            return _text_element(ns, local, nsmap, f"{{{LENGTH}}}")
        if name == oc_props.SHARE_TYPES:
            self.share_prefix = nsmap[ns]
            return _text_element(ns, local, nsmap, f"{{{SHARE_TYPES}}}")
        if name == oc_props.CHECKSUMS:
            if is_dir:
                return None
            inner = _text_element(ns, "checksum", nsmap, f"{{{CHECKSUM}}}")
            return _text_element(ns, local, nsmap, inner)
        if name in (oc_props.OWNER_ID, oc_props.OWNER_NAME):
            if self.oc.is_link:
                return None
            self.oc_slots = self.owner_slot = True
            return _text_element(ns, local, nsmap, f"{{{OWNER}}}")
        return None  # data-fingerprint (the home root only)

    # -- rendering ---------------------------------------------------------------------------
    def render(self, depth_one: bool) -> str:
        res = self.res
        with dav_errors():
            if depth_one and isinstance(res, FolderResource):
                members = res._list()  # also prefetches the locks and dead properties
            else:
                members = []
                res._dead_props()
            usage = res._usage() if isinstance(res, FolderResource) else None
        props = self.environ.get(PROPS_KEY, {})
        lock_roots, prefix = self._lock_roots(res, depth_one)
        parts = [HEAD]
        append = parts.append
        node = res.node
        assert node is not None
        display = res.get_display_name()
        fingerprint = (
            self.mode == "named" and oc_props.DATA_FINGERPRINT in self.names and res.dpath == "/"
        )
        text = None
        if not (
            props.get(node.id)
            or prefix in lock_roots
            or _XML_TEXT_UNSAFE.search(display)
            or fingerprint
        ):
            text = self._plain(node, res.get_href(), display, usage)
        append(self._slow(res) if text is None else text)
        base = res.get_href()  # a folder's, ending in "/"
        for node in members:
            name = node.name
            text = None
            if not (
                props.get(node.id)
                or _XML_TEXT_UNSAFE.search(name)
                or (lock_roots and f"{prefix}/{quote(name)}" in lock_roots)
            ):
                seg = name if _PLAIN_SEGMENT.fullmatch(name) else quote(name, safe=HREF_SAFE)
                href = base + seg + "/" if node.is_dir else base + seg
                text = self._plain(node, href, name, usage)
            append(self._slow_member(node) if text is None else text)
        append(TAIL)
        return "".join(parts)

    def _plain(self, node: NodeInfo, href: str, name: str, usage: Any) -> str | None:
        """The response of a resource without dead properties or locks (None: render it
        with WsgiDAV's code)."""
        template = self.template(node.is_dir)
        oc_id = fileid = oc_perms = owner = tree_size = share_types = None
        if self.share_prefix is not None:
            share_types = self.oc.share_types_inner(node, self.share_prefix)
        if self.oc_slots:
            oc_id, fileid = oc_props.oc_id(node.id), node.id
            oc_perms = self.oc.permissions(node)
            if self.owner_slot:
                owner = self.oc.owner(node)
                if owner is None:
                    return None  # a 404 for this member only
                if "&" in owner or "<" in owner or ">" in owner or "\r" in owner:
                    owner = _escape(owner)
        created = node.created
        key = int(created) if created >= 0 else created  # gmtime() floors: same second
        cdate = self.created_cache.get(key)
        if cdate is None:
            cdate = self.created_cache[key] = _rfc3339(created)
        mtime = node.mtime
        whole = int(mtime)
        if mtime - whole < 0.999:  # the second is the integer part (datetime rounds to µs)
            modified = self.modified_cache.get(whole)
            if modified is None:
                modified = self.modified_cache[whole] = _rfc1123(whole)
        else:
            modified = _rfc1123(mtime)
        if "&" in name or "<" in name or ">" in name or "\r" in name:
            name = _escape(name)
        if node.is_dir:
            if self.size_slot:
                tree_size = self.oc.folder_size(node)
            return template.format(
                href,
                cdate,
                None,
                None,
                modified,
                name,
                node.etag,
                usage.used,
                usage.available,
                oc_id,
                fileid,
                oc_perms,
                owner,
                tree_size,
                share_types,
            )
        raw = node.name
        dot = raw.rfind(".")
        if dot > 0 and raw[0] == "." and not raw[:dot].strip("."):
            dot = -1  # only leading dots: no extension (``splitext``)
        ext = raw[dot:] if dot > 0 else ""
        ctype = self.type_cache.get(ext)
        if ctype is None:
            ctype = content_type("/" + raw)
            if _type_by_extension(raw, ext):
                self.type_cache[ext] = ctype
        return template.format(
            href,
            cdate,
            node.size,
            ctype,
            modified,
            name,
            node.etag,
            None,
            None,
            oc_id,
            fileid,
            oc_perms,
            owner,
            None,
            share_types,
            oc_props.checksum_text(node),
        )

    def _lock_roots(self, res: Any, listed: bool) -> tuple[set[str], str]:
        """The resource's ref-URL (as lock roots are kept) and the lock roots that matter:
        those at or below a listed folder (prefetched by ``_list``), else its own."""
        prefix = "/" + res.get_ref_url().strip("/")
        scope = self.environ.get(LOCKS_KEY)
        if listed and scope is not None and scope[0] == prefix:
            return scope[1], prefix
        lm = self.provider.lock_manager
        if lm is None:
            return set(), prefix
        return {lock["root"] for lock in lm.get_url_lock_list(prefix)}, prefix

    def _slow_member(self, node: NodeInfo) -> str:
        res = self.res
        base = res.path.rstrip("/")
        dbase = res.dpath.rstrip("/")
        member = self.provider.make_resource(
            f"{base}/{node.name}", f"{dbase}/{node.name}", node, self.environ
        )
        return self._slow(member)

    def _slow(self, res: Any) -> str:
        """One ``<D:response>`` exactly as WsgiDAV builds it (dead properties, locks)."""
        if self.mode == "named":
            props = res.get_properties("named", name_list=self.names)
        else:
            props = res.get_properties(self.mode)
        multistatus = xml_tools.make_multistatus_el()
        util.add_property_response(multistatus, res.get_href(), props)
        text = etree.tostring(multistatus, encoding="unicode")
        start = '<D:multistatus xmlns:D="DAV:">'
        if text.startswith(start) and text.endswith(TAIL):
            return text[len(start) : -len(TAIL)]
        return etree.tostring(multistatus[0], encoding="unicode")  # pragma: no cover


def _empty(ns: str, local: str, nsmap: dict[str, str]) -> str:
    """An empty element as lxml writes it under ``<D:response>``."""
    if ns == "DAV:":
        return f"<D:{local}/>"
    if ns == "":
        return f"<{local}/>"
    return f"<{nsmap[ns]}:{local}/>"


def _text_element(ns: str, local: str, nsmap: dict[str, str], text: str) -> str:
    """An element with (already escaped) text as lxml writes it under ``<D:response>``; an
    empty text is written as a start and an end tag (lxml's form for ``text = ""``)."""
    tag = f"D:{local}" if ns == "DAV:" else local if ns == "" else f"{nsmap[ns]}:{local}"
    return f"<{tag}>{text}</{tag}>"


def _type_by_extension(name: str, ext: str) -> bool:
    """Whether ``content_type`` of ``name`` depends on ``ext`` alone (so it can be cached by
    it): not a compression or suffix alias, and ``ext`` is what ``splitext`` takes."""
    if ext.lower() in mimetypes.suffix_map or ext in mimetypes.encodings_map:
        return False
    return posixpath.splitext(name)[1] == ext


def _escape(text: str) -> str:
    """Element text as lxml escapes it."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\r", "&#13;")


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_UTC = datetime.UTC


def _rfc3339(secs: float) -> str:
    """``util.get_rfc3339_time`` (creationdate)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(secs))


def _rfc1123(secs: float) -> str:
    """``util.get_rfc1123_time`` (``email.utils.formatdate(usegmt=True)``), without its
    layers: the same datetime rounding, the same format."""
    t = datetime.datetime.fromtimestamp(secs, _UTC)
    return (
        f"{_DAYS[t.weekday()]}, {t.day:02d} {_MONTHS[t.month - 1]} {t.year:04d} "
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d} GMT"
    )


__all__ = ["handle_propfind"]
