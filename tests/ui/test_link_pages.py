"""The public share-link pages at /s/<token> in a real browser (Debian's Chromium).

alice makes files and links through the JSON API (Basic auth); the page is then opened in the
test's fresh, anonymous browser context (nobody signs in), as a link's holder would. Each page
must load the web app's stylesheet, ask nothing of another origin, and raise no
Content-Security-Policy violation or script error. Outcomes are checked over the API/WebDAV.
Screenshots go to ``$DAVDRIVE_SCREENSHOTS`` when it is set (``link-page*.png``).
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import Page, expect

SHOTS = os.environ.get("DAVDRIVE_SCREENSHOTS")
pytestmark = pytest.mark.timeout(120)


# -- helpers ------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def page_guard(request):
    """Fail the test on a CSP violation or an uncaught script error of its page."""
    if "page" not in request.fixturenames:
        yield None
        return
    page: Page = request.getfixturevalue("page")
    problems: list[str] = []

    def on_console(msg: Any) -> None:
        if "Content Security Policy" in msg.text or "Content-Security-Policy" in msg.text:
            problems.append(f"CSP: {msg.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    yield problems
    assert not problems, "\n".join(problems)


def shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def api(srv: Any, login: str = "alice") -> requests.Session:
    s = requests.Session()
    s.auth = srv.auth(login)
    return s


def mkdir(srv: Any, path: str) -> None:
    r = api(srv).post(f"{srv.url}/api/v1/files/create_folder", json={"path": path}, timeout=30)
    assert r.status_code == 201, r.text


def upload(srv: Any, path: str, data: bytes) -> None:
    r = api(srv).post(
        f"{srv.url}/api/v1/files/upload",
        params={"path": path, "uploadType": "media"},
        data=data,
        timeout=30,
    )
    assert r.status_code in (200, 201), r.text


def make_link(srv: Any, path: str, kind: str, **extra: Any) -> dict:
    r = api(srv).post(
        f"{srv.url}/api/v1/links", json={"path": path, "type": kind, **extra}, timeout=30
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["url"] == f"{srv.url}/s/{body['token']}"
    return body


def dav_get(srv: Any, path: str) -> requests.Response:
    return api(srv).get(srv.dav("alice") + path.lstrip("/"), timeout=30)


def origin_of(url: str) -> str:
    return "{0.scheme}://{0.netloc}".format(urlsplit(url))


def record_requests(page: Page) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url))
    return seen


def assert_app_look(page: Page, srv: Any) -> None:
    """The page wears the web app's stylesheet: the top bar with the brand, the app's colours."""
    expect(page.locator("header.topbar .brand")).to_contain_text("davdrive")
    loaded = page.evaluate("() => [...document.styleSheets].map(s => s.href).filter(Boolean)")
    assert f"{srv.url}/ui/css/app.css" in loaded
    # app.css's variables reached the page (none of them is defined anywhere else)
    accent = page.evaluate(
        "() => getComputedStyle(document.documentElement).getPropertyValue('--accent').trim()"
    )
    assert accent.startswith("#"), accent
    bar = page.evaluate("() => getComputedStyle(document.querySelector('.topbar')).display")
    assert bar == "flex"


# -- a view link of a folder -----------------------------------------------------------------------
def test_view_link_lists_downloads_and_zips(ui_server, page: Page):
    notes = b"first line\nsecond line\n"
    photo = os.urandom(70_000)
    inner = b"inside the sub folder"
    mkdir(ui_server, "/Trip")
    mkdir(ui_server, "/Trip/day1")
    upload(ui_server, "/Trip/notes.txt", notes)
    upload(ui_server, "/Trip/photo.jpg", photo)
    upload(ui_server, "/Trip/day1/inner.txt", inner)
    upload(ui_server, "/not-shared.txt", b"private")
    link = make_link(ui_server, "/Trip", "view")

    origin = origin_of(ui_server.url)
    requested = record_requests(page)
    css = []
    page.on(
        "response",
        lambda r: r.url.endswith("/ui/css/app.css") and css.append((r.status, r.url)),
    )
    page.goto(link["url"])
    assert page.context.cookies() == []  # anonymous: nobody signed in
    expect(page.get_by_role("heading", name="Trip")).to_be_visible()
    assert_app_look(page, ui_server)
    assert css == [(200, f"{origin}/ui/css/app.css")]
    expect(page.locator(".link-kind")).to_have_text("View only")

    table = page.locator("table.link-table")
    expect(table.locator("tbody tr")).to_have_count(3)
    expect(table.locator("tbody tr").first).to_contain_text("day1")  # folders first
    expect(table.get_by_role("link", name="notes.txt", exact=True)).to_be_visible()
    expect(table.get_by_role("link", name="photo.jpg", exact=True)).to_be_visible()
    content = page.content()
    assert "not-shared.txt" not in content and "alice" not in content
    assert page.locator("#upload-form").count() == 0  # a view link takes no uploads
    shot(page, "link-page")
    page.emulate_media(color_scheme="dark")
    dark_bg = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    shot(page, "link-page-dark")
    page.emulate_media(color_scheme="light")
    light_bg = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert dark_bg != light_bg  # the app's dark colours follow the system setting

    # clicking a file's name downloads exactly its bytes; so does the row's button
    with page.expect_download() as dl:
        table.get_by_role("link", name="notes.txt", exact=True).click()
    assert dl.value.suggested_filename == "notes.txt"
    assert Path(dl.value.path()).read_bytes() == notes
    with page.expect_download() as dl:
        table.locator("tr", has_text="photo.jpg").locator("td.actions a").click()
    assert Path(dl.value.path()).read_bytes() == photo

    # the whole folder as a zip
    with page.expect_download() as dl:
        page.get_by_role("link", name="Download as zip").click()
    assert dl.value.suggested_filename == "Trip.zip"
    with zipfile.ZipFile(io.BytesIO(Path(dl.value.path()).read_bytes())) as z:
        assert z.testzip() is None
        assert z.read("notes.txt") == notes
        assert z.read("photo.jpg") == photo
        assert z.read("day1/inner.txt") == inner
        assert not any("not-shared" in n for n in z.namelist())

    # into the sub folder and back up by the crumbs
    table.get_by_role("link", name="day1", exact=True).click()
    expect(page.get_by_role("heading", name="day1")).to_be_visible()
    with page.expect_download() as dl:
        page.get_by_role("link", name="inner.txt", exact=True).click()
    assert Path(dl.value.path()).read_bytes() == inner
    page.locator("nav.crumbs").get_by_role("link", name="Trip").click()
    expect(page.get_by_role("link", name="notes.txt", exact=True)).to_be_visible()

    foreign = [u for u in requested if not u.startswith(origin + "/")]
    assert not foreign, foreign
    assert any(u == f"{origin}/ui/css/app.css" for u in requested)


def test_link_page_on_a_phone(ui_server, browser):
    mkdir(ui_server, "/Phone")
    upload(ui_server, "/Phone/a-rather-long-file-name-for-a-small-screen.txt", b"x" * 3000)
    link = make_link(ui_server, "/Phone", "upload")
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: "Content Security Policy" in m.text and problems.append(m.text))
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        page.goto(link["url"])
        row = page.locator("table.link-table tbody tr").first
        expect(row).to_contain_text("a-rather-long-file-name")
        expect(row.locator("td.modified")).to_be_hidden()  # the date column gives way
        expect(row.locator("td.size")).to_be_visible()
        expect(page.locator("#upload-form")).to_be_visible()
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
        shot(page, "link-page-phone")
        assert not problems, problems
    finally:
        context.close()


# -- a drop link -----------------------------------------------------------------------------------
def test_drop_link_takes_uploads_and_shows_nothing(ui_server, page: Page, tmp_path):
    mkdir(ui_server, "/Inbox")
    upload(ui_server, "/Inbox/already-there-secret.txt", b"earlier")
    link = make_link(ui_server, "/Inbox", "drop")
    origin = origin_of(ui_server.url)
    requested = record_requests(page)

    page.goto(link["url"])
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    assert_app_look(page, ui_server)
    expect(page.locator(".link-kind")).to_have_text("Drop box")
    assert "already-there-secret" not in page.content()
    assert page.locator("table").count() == 0

    report = os.urandom(200_000)
    (tmp_path / "report.bin").write_bytes(report)
    (tmp_path / "already-there-secret.txt").write_bytes(b"from the holder")
    page.set_input_files(
        "#upload-files",
        [str(tmp_path / "report.bin"), str(tmp_path / "already-there-secret.txt")],
    )
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator('.up-item[data-state="done"]')).to_have_count(2, timeout=20_000)
    expect(page.locator("#upload-summary")).to_have_text("2 files uploaded.")
    expect(page.locator('.up-item[data-state="error"]')).to_have_count(0)
    shot(page, "link-page-drop")
    content = page.content()
    assert "earlier" not in content and "(2)" not in content  # the new name is never told

    assert dav_get(ui_server, "/Inbox/report.bin").content == report
    assert dav_get(ui_server, "/Inbox/already-there-secret.txt").content == b"earlier"
    clash = dav_get(ui_server, "/Inbox/already-there-secret (2).txt")
    assert clash.status_code == 200 and clash.content == b"from the holder"
    # the page asked nothing of the folder and nothing of another origin
    assert not [u for u in requested if not u.startswith(origin + "/")]
    assert not [u for u in requested if "/download" in u or "/zip" in u]


# -- a password-protected link ---------------------------------------------------------------------
def test_password_link_refuses_wrong_and_opens_with_right(ui_server, page: Page):
    mkdir(ui_server, "/Vault")
    upload(ui_server, "/Vault/plan.txt", b"the plan")
    link = make_link(ui_server, "/Vault", "view", password="open sesame")

    page.goto(link["url"])
    expect(page.get_by_role("heading", name="Protected link")).to_be_visible()
    assert_app_look(page, ui_server)
    assert "plan.txt" not in page.content() and "Vault" not in page.content()
    shot(page, "link-page-password")

    page.get_by_label("Password").fill("not it")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Open").click()
    assert answer.value.status == 403
    expect(page.get_by_role("alert")).to_contain_text("not right")
    assert "plan.txt" not in page.content()
    assert not [c for c in page.context.cookies() if c["name"].startswith("dd_link_")]

    page.get_by_label("Password").fill("open sesame")
    page.get_by_role("button", name="Open").click()
    expect(page.get_by_role("heading", name="Vault")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"].startswith("dd_link_"))
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    with page.expect_download() as dl:
        page.get_by_role("link", name="plan.txt", exact=True).click()
    assert Path(dl.value.path()).read_bytes() == b"the plan"


# -- a file link, and a link that is gone ----------------------------------------------------------
def test_file_link_and_gone_link_pages(ui_server, page: Page):
    upload(ui_server, "/song.mp3", b"ID3" + b"0" * 5000)
    link = make_link(ui_server, "/song.mp3", "view", max_uses=1)
    page.goto(link["url"])
    expect(page.get_by_role("heading", name="song.mp3")).to_be_visible()
    assert_app_look(page, ui_server)
    expect(page.locator(".link-card")).to_contain_text("4.9 KiB")
    shot(page, "link-page-file")
    with page.expect_download() as dl:
        page.get_by_role("link", name="Download").click()
    assert Path(dl.value.path()).read_bytes() == b"ID3" + b"0" * 5000
    # used up: the page is the one 404 of every gone link, in the same look
    answer = page.goto(link["url"])
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", name="Not Found")).to_be_visible()
    assert_app_look(page, ui_server)
    assert "song" not in page.content()
    shot(page, "link-page-gone")
