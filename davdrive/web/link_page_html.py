"""The HTML of the share-link pages at ``/s/<token>`` (the routes are ``link_pages``).

The pages wear the web app's look: they load its stylesheet (``/ui/css/app.css``, served by
``davdrive.web.ui``) and use its parts — the top bar with the davdrive brand, ``.btn``
buttons, the crumbs, the table and the upload list of the app, the light and dark colours of
the system setting and the phone breakpoint. What only these pages need is one small inline
style (``_CSS``) and one inline script (``_UPLOAD_JS``, the upload form with progress), both
allowed by their hashes in ``PAGE_CSP``: no other inline script or style runs.

Every function returns a whole page (``str``); ``root`` is the WSGI script root (``""`` when
davdrive is served at ``/``). Everything printed is escaped; the pages print only what the
routes hand them (names and paths below the shared node), never the owner.
"""

from __future__ import annotations

import base64
import hashlib
import html
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import quote

from davdrive.service.paths import join, split_path

if TYPE_CHECKING:
    from davdrive.service.links import OpenLink
    from davdrive.service.types import NodeInfo


# -- formatting ----------------------------------------------------------------------------------
def human_size(n: int) -> str:
    """1536 -> "1.5 KiB"; bytes below 1 KiB as they are."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024
        if value < 1024 or unit == "PiB":
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    raise AssertionError("unreachable")


def when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def query(path: str) -> str:
    """``?path=...`` for a path below the link's node ("" for the node itself)."""
    return "" if path == "/" else "?path=" + quote(path, safe="/")


# -- icons (the web app's, davdrive/web/static/ui/js/icons.js) -------------------------------------
_PATHS = {
    "folder": "M3 6.5A2.5 2.5 0 0 1 5.5 4h3.6l2 2h7.4A2.5 2.5 0 0 1 21 8.5v9a2.5 2.5 0 0 1-2.5 "
    "2.5h-13A2.5 2.5 0 0 1 3 17.5z",
    "file": "M6 2h8l6 6v12a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2zm7 1.5V9h5.5z",
    "image": "M5 3h14a2 2 0 0 1 2 2v14a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm0 13.5V19h14"
    "v-3l-4-4-5 5-2-2zM8.5 10a1.5 1.5 0 1 0 0-3 1.5 1.5 0 0 0 0 3z",
    "text": "M6 2h8l6 6v12a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2zm2 10v1.5h8V12zm0 3.5V17"
    "h8v-1.5zm0-7V10h4V8.5z",
    "pdf": "M6 2h8l6 6v12a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2zm1 11v5h1.3v-1.6H9a1.7 1.7 "
    "0 0 0 0-3.4zm1.3 1.1H9a.6.6 0 0 1 0 1.2h-.7zM11 13v5h1.6a2.5 2.5 0 0 0 0-5zm1.3 1.1h.3a1.4 "
    "1.4 0 0 1 0 2.8h-.3zM15 13v5h1.3v-2h1.6v-1.1h-1.6v-.8H18V13z",
    "audio": "M6 2h8l6 6v12a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2zm6 8v5.3a2.2 2.2 0 1 0 "
    "1.5 2V12.5H16V10z",
    "video": "M4 5h11a2 2 0 0 1 2 2v2.5l4-2.5v10l-4-2.5V17a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V7a2 2 0 0 "
    "1 2-2z",
    "archive": "M6 2h12a2 2 0 0 1 2 2v16a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2zm4 1.5V5h2v"
    "1.5h-2V8h2v1.5h-2V11h2v1.5h-2V14h-.5a1.5 1.5 0 0 0-1.5 1.5V18a1.5 1.5 0 0 0 1.5 1.5h3A1.5 "
    "1.5 0 0 0 14 18v-2.5a1.5 1.5 0 0 0-1.5-1.5H12v-1.5h2V11h-2V9.5h2V8h-2V6.5h2V5h-2V3.5zm0 13h3"
    "V18h-3z",
    "upload": "M11 16V7.8L7.7 11 6.3 9.6 12 4l5.7 5.6-1.4 1.4L13 7.8V16zm-7 2h16v2H4z",
    "download": "M11 4h2v8.2l3.3-3.3 1.4 1.4L12 16l-5.7-5.7 1.4-1.4 3.3 3.3zM4 18h16v2H4z",
    "drive": "M4 4h16a2 2 0 0 1 2 2v3H2V6a2 2 0 0 1 2-2zm-2 7h20v7a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2z"
    "m15 3.5a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z",
    "info": "M12 2a10 10 0 1 1 0 20 10 10 0 0 1 0-20zm-1 8v7h2v-7zm0-3v2h2V7z",
}
_KINDS = {
    "image": "png jpg jpeg gif webp svg bmp ico heic heif avif tif tiff",
    "text": "txt md markdown csv tsv log json xml yaml yml toml ini cfg conf py js mjs ts css html "
    "htm c h cpp hpp rs go java kt rb php sh bash zsh sql tex rst srt vtt env gitignore "
    "dockerfile makefile",
    "pdf": "pdf",
    "audio": "mp3 wav flac ogg oga opus m4a aac wma aiff",
    "video": "mp4 m4v mkv webm mov avi wmv mpg mpeg 3gp",
    "archive": "zip tar gz tgz bz2 xz zst 7z rar iso dmg deb rpm jar",
}
_BY_EXT = {ext: kind for kind, exts in _KINDS.items() for ext in exts.split()}


def icon(name: str, cls: str = "icon") -> str:
    return (
        f'<svg viewBox="0 0 24 24" class="{cls}" aria-hidden="true" focusable="false">'
        f'<path d="{_PATHS.get(name, _PATHS["file"])}" fill-rule="evenodd"/></svg>'
    )


def kind_of(name: str, is_dir: bool) -> str:
    """As the web app's ``kindOf``: "folder", "image", "text", ... or "file"."""
    if is_dir:
        return "folder"
    lowered = name.lower()
    return _BY_EXT.get(lowered.rsplit(".", 1)[-1], "file")


def kind_icon(name: str, is_dir: bool, extra: str = "") -> str:
    kind = kind_of(name, is_dir)
    return icon(kind, f"icon kind kind-{kind}{' ' + extra if extra else ''}")


# -- the page's own style and script --------------------------------------------------------------
# What app.css has no rule for: the page's column, the cards, the file input, the drop zone.
_CSS = """
body.link-page{height:auto;min-height:100%}
.link-page .topbar{position:sticky;top:0;z-index:5;min-height:3rem}
.link-page .topbar .brand{flex:none}
.link-kind{margin-left:auto;font-size:.8rem;padding:.15rem .6rem}
.link-main{max-width:64rem;margin:0 auto;padding:1.25rem 1rem 2.5rem;display:flex;
flex-direction:column;gap:1rem}
.link-head{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1rem}
.link-head .crumbs{flex-basis:100%;font-size:.95rem}
.link-title{display:flex;align-items:center;gap:.5rem;font-size:1.35rem;flex:1 1 14rem;
min-width:0;overflow-wrap:anywhere}
.link-title .icon{width:28px;height:28px}
.link-card{background:var(--surface);border:1px solid var(--border);border-radius:var(--radius);
padding:1.25rem}
.link-card h2{font-size:1.05rem;margin-bottom:.5rem}
.link-narrow{width:100%;max-width:28rem;margin:2rem auto 0;box-shadow:var(--shadow)}
.link-narrow h1{font-size:1.3rem;margin-bottom:.5rem;overflow-wrap:anywhere}
.link-narrow p{margin:.5rem 0}
.link-big{display:flex;justify-content:center;margin-bottom:.75rem}
.link-big .icon{width:64px;height:64px}
.link-center{text-align:center}
.link-center .btn{margin-top:.5rem}
.link-form-actions{display:flex;justify-content:flex-end;margin-top:1rem}
.link-table .icon-cell{width:2.75rem}
.link-table td.name a{color:var(--text)}
.link-table td.name a:hover{color:var(--accent)}
.link-table tbody tr:last-child td{border-bottom:0}
.link-table tbody tr:hover{background:var(--surface-2)}
.link-empty{padding:2rem 1rem;text-align:center}
.link-upload form{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem}
.link-upload.dragging{outline:2px dashed var(--accent);outline-offset:-2px;
background:var(--accent-soft)}
.link-upload .up-list{margin-top:.75rem}
.link-upload .up-item progress{display:block}
.link-summary{margin:.75rem 0 0;font-weight:500}
.link-summary:empty{display:none}
.link-summary.ok{color:var(--ok)}
input[type=file]{flex:1 1 14rem;min-width:0;max-width:100%;font:inherit;color:var(--text)}
input[type=file]::file-selector-button{font:inherit;color:var(--text);background:var(--surface-2);
border:1px solid var(--border);border-radius:6px;padding:.35rem .8rem;margin-right:.6rem;
cursor:pointer}
@media (max-width:700px){.link-main{padding:.75rem .5rem 1.5rem}
.link-table .modified{display:none}.link-narrow{margin-top:1rem}}
"""

_UPLOAD_JS = """
(function () {
  var form = document.getElementById('upload-form');
  if (!form) return;
  var input = document.getElementById('upload-files');
  var list = document.getElementById('upload-list');
  var summary = document.getElementById('upload-summary');
  var zone = document.getElementById('upload-zone') || form;
  var url = form.getAttribute('data-url');
  var dir = form.getAttribute('data-dir');
  var sent = 0, failed = 0, pending = 0;
  function size(n) {
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'], i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + ' ' + units[i];
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function row(file) {
    var li = el('li', 'up-item');
    li.setAttribute('data-state', 'waiting');
    var line = el('div', 'up-line');
    line.appendChild(el('span', 'up-name', file.name));
    line.appendChild(el('span', 'up-size muted', size(file.size)));
    var bar = document.createElement('progress');
    bar.max = 100; bar.value = 0;
    var state = el('span', 'up-status', 'Waiting');
    li.appendChild(line); li.appendChild(bar); li.appendChild(state);
    list.appendChild(li);
    return {li: li, bar: bar, state: state};
  }
  function tell() {
    if (pending) {
      summary.className = 'link-summary muted';
      summary.textContent = 'Uploading… ' + sent + ' done, ' + pending + ' to go.';
    } else if (failed) {
      summary.className = 'link-summary error';
      summary.textContent = sent + ' uploaded, ' + failed + ' failed.';
    } else {
      summary.className = 'link-summary ok';
      summary.textContent = sent === 1 ? '1 file uploaded.' : sent + ' files uploaded.';
    }
  }
  function finish(ui, ok, text) {
    ui.li.setAttribute('data-state', ok ? 'done' : 'error');
    ui.state.textContent = text;
    if (ok) { ui.bar.value = 100; sent++; } else { failed++; }
    pending--;
    tell();
  }
  var queue = [], busy = false;
  function next() {
    if (!queue.length) { busy = false; return; }
    busy = true;
    var item = queue.shift(), file = item.file, ui = item.ui;
    var xhr = new XMLHttpRequest();
    var path = (dir === '/' ? '' : dir) + '/' + file.name;
    xhr.open('PUT', url + '?path=' + encodeURIComponent(path));
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) {
        var pct = Math.floor(100 * e.loaded / e.total);
        ui.bar.value = pct;
        ui.state.textContent = pct + ' %';
      }
    };
    xhr.onload = function () {
      if (xhr.status === 200 || xhr.status === 201) {
        finish(ui, true, 'Uploaded');
      } else {
        var msg = 'Failed (' + xhr.status + ')';
        try { msg = JSON.parse(xhr.responseText).error.message; } catch (err) {}
        finish(ui, false, msg);
      }
      next();
    };
    xhr.onerror = function () { finish(ui, false, 'Network error'); next(); };
    ui.li.setAttribute('data-state', 'uploading');
    ui.state.textContent = 'Uploading';
    xhr.send(file);
  }
  function start(files) {
    if (!files.length) return;
    for (var i = 0; i < files.length; i++) queue.push({file: files[i], ui: row(files[i])});
    pending += files.length;
    tell();
    if (!busy) next();
  }
  form.addEventListener('submit', function (e) {
    e.preventDefault();
    var files = Array.prototype.slice.call(input.files);
    input.value = '';
    start(files);
  });
  zone.addEventListener('dragover', function (e) {
    if (e.dataTransfer && Array.prototype.indexOf.call(e.dataTransfer.types, 'Files') >= 0) {
      e.preventDefault();
      zone.classList.add('dragging');
    }
  });
  zone.addEventListener('dragleave', function () { zone.classList.remove('dragging'); });
  zone.addEventListener('drop', function (e) {
    zone.classList.remove('dragging');
    if (!e.dataTransfer || !e.dataTransfer.files.length) return;
    e.preventDefault();
    start(Array.prototype.slice.call(e.dataTransfer.files));
  });
})();
"""


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


# The app's stylesheet comes from this origin ('self'); the pages' one inline style and one
# inline script are allowed by their hashes, nothing else inline (no style attributes either),
# and the same page twice is the same bytes: a gone link's 404 never differs.
PAGE_CSP = (
    f"default-src 'self'; script-src {_csp_hash(_UPLOAD_JS)}; "
    f"style-src 'self' {_csp_hash(_CSS)}; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)

KIND_LABELS = {
    "view": "View only",
    "edit": "You can edit",
    "upload": "You can add files",
    "drop": "Drop box",
}


# -- pages ----------------------------------------------------------------------------------------
def layout(root: str, title: str, body: str, *, kind: str = "", script: bool = False) -> str:
    """A whole page: the app's stylesheet, the top bar (brand; the link's kind when given),
    ``body`` in the page's column, and the upload script when ``script``."""
    js = f"<script>{_UPLOAD_JS}</script>" if script else ""
    badge = (
        f'<span class="badge link-kind">{esc(KIND_LABELS[kind])}</span>'
        if kind in KIND_LABELS
        else ""
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="robots" content="noindex, nofollow">'
        f"<title>{esc(title)} · davdrive</title>"
        f'<link rel="icon" href="{esc(root)}/ui/favicon.svg" type="image/svg+xml">'
        f'<link rel="stylesheet" href="{esc(root)}/ui/css/app.css">'
        f"<style>{_CSS}</style></head>"
        '<body class="link-page"><header class="topbar">'
        f'<span class="brand">{icon("drive", "icon brand-icon")}<span>davdrive</span></span>'
        f"{badge}</header>"
        f'<main class="link-main" id="main">{body}</main>{js}</body></html>\n'
    )


def message_page(root: str, title: str, text: str) -> str:
    body = (
        '<section class="link-card link-narrow link-center">'
        f'<div class="link-big">{icon("info", "icon muted")}</div>'
        f'<h1>{esc(title)}</h1><p class="muted">{esc(text)}</p></section>'
    )
    return layout(root, title, body)


def password_page(root: str, action: str, *, wrong: bool = False) -> str:
    """The password form; not even the item's name or the link's kind before the password."""
    note = '<p class="error" role="alert">That password is not right.</p>' if wrong else ""
    body = (
        '<section class="link-card link-narrow"><h1>Protected link</h1>'
        '<p class="muted">This link is protected by a password.</p>'
        f'{note}<form method="post" action="{esc(action)}">'
        '<label for="link-password">Password</label>'
        '<input id="link-password" type="password" name="password" autofocus required '
        'autocomplete="current-password">'
        '<div class="link-form-actions"><button class="btn primary" type="submit">Open</button>'
        "</div></form></section>"
    )
    return layout(root, "Protected link", body)


def _upload_controls(base_url: str, path: str) -> str:
    return (
        f'<form id="upload-form" data-url="{esc(base_url + "/upload")}" data-dir="{esc(path)}">'
        '<label class="visually-hidden" for="upload-files">Files to upload</label>'
        '<input id="upload-files" type="file" multiple required>'
        f'<button class="btn primary" type="submit">{icon("upload")}Upload</button></form>'
        '<p id="upload-summary" class="link-summary" role="status" aria-live="polite"></p>'
        '<ul id="upload-list" class="up-list"></ul>'
    )


def upload_section(base_url: str, link: OpenLink, path: str = "/") -> str:
    """The upload form of a folder page (``upload``, ``edit``); "" when the link has none."""
    if link.kind not in ("upload", "drop", "edit") or not link.is_dir:
        return ""
    return (
        '<section id="upload-zone" class="link-card link-upload" aria-labelledby="upload-h">'
        '<h2 id="upload-h">Upload files</h2>'
        '<p class="muted">Choose files, or drop them here.</p>'
        f"{_upload_controls(base_url, path)}</section>"
    )


def drop_page(root: str, link: OpenLink, base_url: str) -> str:
    """A drop link's page: the form alone (its holders see nothing of the folder)."""
    body = (
        '<section id="upload-zone" class="link-card link-narrow link-upload">'
        f'<div class="link-big">{icon("upload", "icon kind-folder")}</div>'
        f"<h1>{esc(link.name)}</h1>"
        '<p class="muted">Files you upload here are delivered to the owner of this link. '
        "You cannot see what is already there.</p>"
        f"{_upload_controls(base_url, '/')}</section>"
    )
    return layout(root, link.name, body, kind="drop", script=True)


def breadcrumbs(link: OpenLink, path: str, url_of: Callable[[str], str]) -> str:
    """The way up inside the link (the node's name first); "" at the node itself."""
    parts = split_path(path)
    if not link.is_dir or not parts:
        return ""
    out = [f'<a class="crumb" href="{esc(url_of("/"))}">{esc(link.name)}</a>']
    for i, part in enumerate(parts[:-1]):
        out.append(f'<a class="crumb" href="{esc(url_of(join(parts[: i + 1])))}">{esc(part)}</a>')
    out.append(f'<span class="crumb current" aria-current="page">{esc(parts[-1])}</span>')
    sep = '<span class="sep" aria-hidden="true">/</span>'
    return '<nav class="crumbs" aria-label="Location">' + sep.join(out) + "</nav>"


def file_page(root: str, link: OpenLink, info: NodeInfo, crumbs: str, download: str) -> str:
    name = link.name if info.path == "/" else info.name
    head = f'<div class="link-head">{crumbs}</div>' if crumbs else ""
    body = (
        f"{head}"
        '<section class="link-card link-narrow link-center">'
        f'<div class="link-big">{kind_icon(name, False)}</div>'
        f"<h1>{esc(name)}</h1>"
        f'<p class="muted">{esc(human_size(info.size))} · modified {esc(when(info.mtime))}</p>'
        f'<a class="btn primary" href="{esc(download)}" download>{icon("download")}Download</a>'
        "</section>"
    )
    return layout(root, name, body, kind=link.kind)


def _row(m: NodeInfo, child: str, base_url: str, url_of: Callable[[str], str]) -> str:
    if m.is_dir:
        zip_url = base_url + "/zip" + query(child)
        return (
            f'<tr class="dir"><td class="icon-cell">{kind_icon(m.name, True)}</td>'
            f'<td class="name"><a href="{esc(url_of(child))}">{esc(m.name)}</a></td>'
            '<td class="size muted">—</td>'
            f'<td class="modified">{esc(when(m.mtime))}</td>'
            f'<td class="actions"><a class="btn small" href="{esc(zip_url)}" '
            f'title="Download {esc(m.name)} as zip">{icon("download")}'
            '<span class="label">zip</span></a></td></tr>'
        )
    dl = base_url + "/download" + query(child)
    return (
        f'<tr class="file"><td class="icon-cell">{kind_icon(m.name, False)}</td>'
        f'<td class="name"><a href="{esc(dl)}" download>{esc(m.name)}</a></td>'
        f'<td class="size">{esc(human_size(m.size))}</td>'
        f'<td class="modified">{esc(when(m.mtime))}</td>'
        f'<td class="actions"><a class="btn small" href="{esc(dl)}" download '
        f'title="Download {esc(m.name)}">{icon("download")}'
        '<span class="label">download</span></a></td></tr>'
    )


def folder_page(
    root: str,
    link: OpenLink,
    path: str,
    members: list[NodeInfo],
    crumbs: str,
    base_url: str,
    url_of: Callable[[str], str],
    form: str,
) -> str:
    """A folder of the link: crumbs, its name, *Download as zip*, the members (folders first,
    by name) and the upload form when the link takes uploads."""
    parts = split_path(path)
    title = parts[-1] if parts else link.name
    members = sorted(members, key=lambda m: (not m.is_dir, m.name.casefold(), m.name))
    rows = "".join(_row(m, join([*parts, m.name]), base_url, url_of) for m in members)
    if rows:
        listing = (
            '<div class="table-wrap"><table class="data-table link-table"><thead><tr>'
            '<th class="icon-cell"><span class="visually-hidden">Kind</span></th>'
            '<th>Name</th><th class="size">Size</th><th class="modified">Modified</th>'
            '<th class="actions"><span class="visually-hidden">Download</span></th>'
            f"</tr></thead><tbody>{rows}</tbody></table></div>"
        )
    else:
        listing = '<div class="link-card link-empty muted">This folder is empty.</div>'
    count = len(members)
    zip_url = base_url + "/zip" + query(path)
    body = (
        f'<div class="link-head">{crumbs}'
        f'<h1 class="link-title">{kind_icon(title, True)}<span>{esc(title)}</span></h1>'
        f'<span class="muted">{count} item{"" if count == 1 else "s"}</span>'
        f'<div class="toolbar"><a class="btn primary" href="{esc(zip_url)}" '
        f'title="Download as zip">{icon("download")}<span class="label">Download as zip</span>'
        f"</a></div></div>{listing}{form}"
    )
    return layout(root, title, body, kind=link.kind, script=bool(form))


__all__ = [
    "PAGE_CSP",
    "breadcrumbs",
    "drop_page",
    "esc",
    "file_page",
    "folder_page",
    "human_size",
    "layout",
    "message_page",
    "password_page",
    "query",
    "upload_section",
    "when",
]
