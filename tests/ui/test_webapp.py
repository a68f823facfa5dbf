"""The web app at /ui/ in a real browser (Debian's Chromium through pytest-playwright).

Each test signs in through the login screen of a live server (users alice/bob), works the UI,
and checks the outcome over WebDAV or the API with Basic auth. Every page fails its test on a
Content-Security-Policy violation or an uncaught script error. Screenshots of the main
screens are taken on every run, into ``$DAVDRIVE_SCREENSHOTS`` when it is set (the committed
ones: ``DAVDRIVE_SCREENSHOTS=docs/screenshots python -m pytest tests/ui``), else into a
temporary folder, so a test run leaves the checkout as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import Page, expect

SHOTS = Path(
    os.environ.get("DAVDRIVE_SCREENSHOTS") or Path(tempfile.gettempdir()) / "davdrive-screenshots"
)
MiB = 1024 * 1024
pytestmark = pytest.mark.timeout(300)


# -- helpers ------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def page_guard(request):
    """Collect console errors and page errors of the test's page; fail on a CSP violation or
    an uncaught exception."""
    if "page" not in request.fixturenames:
        yield None
        return
    page: Page = request.getfixturevalue("page")
    problems: list[str] = []

    def on_console(msg):
        text = msg.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            problems.append(f"CSP: {text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    yield problems
    assert not problems, "\n".join(problems)


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def sign_in(page: Page, srv, login: str = "alice") -> None:
    page.goto(f"{srv.url}/ui/")
    page.get_by_label("Account").fill(login)
    page.get_by_label("Password").fill(srv.users[login])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("grid", name="Files")).to_be_visible()


def dav(srv, login: str = "alice") -> requests.Session:
    s = requests.Session()
    s.auth = srv.auth(login)
    s.base = srv.dav(login)  # type: ignore[attr-defined]
    return s


def put(s: requests.Session, path: str, data: bytes) -> None:
    r = s.put(s.base + path.lstrip("/"), data=data)  # type: ignore[attr-defined]
    assert r.status_code in (200, 201, 204), r.text


def get(s: requests.Session, path: str) -> requests.Response:
    return s.get(s.base + path.lstrip("/"))  # type: ignore[attr-defined]


def mkcol(s: requests.Session, path: str) -> None:
    r = s.request("MKCOL", s.base + path.lstrip("/"))  # type: ignore[attr-defined]
    assert r.status_code == 201, r.text


def row(page: Page, name: str):
    return page.locator(".viewport .row", has=page.locator(".cell.name", has_text=name)).filter(
        has=page.locator(f'.name-link:text-is("{name}")')
    )


def open_folder(page: Page, srv, path: str) -> None:
    page.goto(f"{srv.url}/ui/#/files{path}")
    expect(page.locator(".crumbs .current, .crumbs .crumb").last).to_be_visible()


def wait_uploads_done(page: Page, count: int, timeout: float = 60_000) -> None:
    expect(page.locator('.up-item[data-state="done"]')).to_have_count(count, timeout=timeout)


# -- sign in ------------------------------------------------------------------------------------
def test_login_wrong_then_right_password_and_logout(ui_server, page: Page):
    page.goto(f"{ui_server.url}/ui/")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    shot(page, "login")
    page.get_by_label("Account").fill("alice")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong account or password")
    expect(page.get_by_role("grid")).to_have_count(0)

    page.get_by_label("Password").fill(ui_server.users["alice"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("grid", name="Files")).to_be_visible()
    expect(page.locator(".login-name")).to_have_text("alice")

    # a reload keeps the session (GET /session gives the CSRF token back): writes still work
    page.reload()
    expect(page.get_by_role("grid", name="Files")).to_be_visible()
    page.get_by_role("button", name="New folder").click()
    page.get_by_label("Folder name").fill("after-reload")
    page.get_by_role("button", name="Create").click()
    expect(row(page, "after-reload")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    r = page.request.get(f"{ui_server.url}/api/v1/session")
    assert r.status == 401
    page.reload()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


# -- uploads ------------------------------------------------------------------------------------
DROP_JS = """
([files, selector]) => {
  const dt = new DataTransfer();
  for (const [name, text] of files) dt.items.add(new File([text], name, {type: "text/plain"}));
  const target = document.querySelector(selector);
  for (const type of ["dragenter", "dragover", "drop"]) {
    target.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: dt}));
  }
}
"""


def test_drop_two_files_and_upload_a_folder(ui_server, page: Page, tmp_path):
    s = dav(ui_server)
    mkcol(s, "/inbox")
    sign_in(page, ui_server)

    # two files dropped on the page land in the current folder
    page.evaluate(DROP_JS, [[["one.txt", "first file\n"], ["two.md", "# second\n"]], ".list-wrap"])
    wait_uploads_done(page, 2)
    expect(page.locator(".uploads .total-bar")).to_have_attribute("data-percent", "100")
    expect(row(page, "one.txt")).to_be_visible()
    expect(row(page, "two.md")).to_be_visible()
    assert get(s, "/one.txt").content == b"first file\n"
    assert get(s, "/two.md").content == b"# second\n"

    # a file dropped on a folder row goes into that folder
    page.evaluate(DROP_JS, [[["three.txt", "third"]], ".viewport .row.dir"])
    wait_uploads_done(page, 3)
    assert get(s, "/inbox/three.txt").content == b"third"

    # a whole folder (with a subfolder) through the folder picker
    top = tmp_path / "album"
    (top / "sub").mkdir(parents=True)
    (top / "a.txt").write_bytes(b"alpha")
    (top / "sub" / "b.bin").write_bytes(os.urandom(300_000))
    with page.expect_file_chooser() as fc:
        page.get_by_role("button", name="Upload folder").click()
    fc.value.set_files(str(top))
    wait_uploads_done(page, 5)
    expect(row(page, "album")).to_be_visible()
    assert get(s, "/album/a.txt").content == b"alpha"
    assert get(s, "/album/sub/b.bin").content == (top / "sub" / "b.bin").read_bytes()

    # the same files again: the clash asks; "keep both" with "apply to all" numbers them
    page.evaluate(DROP_JS, [[["one.txt", "new one"], ["two.md", "new two"]], ".list-wrap"])
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("already exists")
    dialog.get_by_label("Apply to all remaining conflicts").check()
    dialog.get_by_role("button", name="Keep both").click()
    wait_uploads_done(page, 7)
    assert get(s, "/one (2).txt").content == b"new one"
    assert get(s, "/two (2).md").content == b"new two"
    assert get(s, "/one.txt").content == b"first file\n"
    # "replace" makes a new revision of the same file
    page.evaluate(DROP_JS, [[["one.txt", "replaced"]], ".list-wrap"])
    page.get_by_role("dialog").get_by_role("button", name="Replace").click()
    wait_uploads_done(page, 8)
    assert get(s, "/one.txt").content == b"replaced"


def test_over_quota_upload_is_reported_per_file(ui_server, page: Page):
    ui_server.cli("user", "quota", "alice", "20000")
    sign_in(page, ui_server)
    page.evaluate(DROP_JS, [[["small.txt", "fits"], ["huge.txt", "x" * 50_000]], ".list-wrap"])
    failed = page.locator(".up-item", has_text="huge.txt")
    expect(failed).to_have_attribute("data-state", "error")
    expect(failed.get_by_role("alert")).to_contain_text("quota")
    expect(page.locator(".up-item", has_text="small.txt")).to_have_attribute("data-state", "done")
    expect(page.locator(".up-summary")).to_contain_text("1 failed")
    assert get(dav(ui_server), "/huge.txt").status_code == 404


def test_large_upload_through_tus_resumes_after_reload(ui_server, page: Page, tmp_path):
    big = tmp_path / "big.bin"
    data = os.urandom(50 * MiB)
    big.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    patches: list[tuple[str, int]] = []

    def on_request(req):
        if req.method == "PATCH" and "/api/v1/uploads/" in req.url:
            patches.append((req.url, int(req.headers.get("upload-offset", "-1"))))

    page.on("request", on_request)
    sign_in(page, ui_server)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    # slow the upload down (8 MiB/s) so that the reload lands mid-way
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 8 * MiB},
    )
    with page.expect_file_chooser() as fc:
        page.get_by_role("button", name="Upload files").click()
    fc.value.set_files(str(big))
    item = page.locator(".up-item", has_text="big.bin")
    expect(item).to_have_attribute("data-state", "uploading")

    # wait until the server holds a part of it (its tus session's offset moved)
    auth = ui_server.auth("alice")
    deadline = time.monotonic() + 60
    offset = 0
    while time.monotonic() < deadline:
        stored = page.evaluate("() => localStorage.getItem('davdrive.tus')")
        if stored:
            url = next(iter(json.loads(stored).values()))["url"]
            h = requests.head(ui_server.url + url, auth=auth, headers={"Tus-Resumable": "1.0.0"})
            offset = int(h.headers.get("Upload-Offset", "0"))
            if offset >= 8 * MiB:
                break
        time.sleep(0.2)
    assert 0 < offset < len(data), offset
    shot(page, "upload-progress")
    first_run = len(patches)
    assert first_run >= 2 and patches[0][1] == 0

    page.reload()
    expect(page.get_by_role("grid", name="Files")).to_be_visible()
    # the app offers to resume what did not finish
    expect(page.locator(".resume-item", has_text="big.bin")).to_be_visible()
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    with page.expect_file_chooser() as fc:
        page.locator(".resume-item", has_text="big.bin").get_by_role(
            "button", name="Resume…"
        ).click()
    fc.value.set_files(str(big))
    item = page.locator(".up-item", has_text="big.bin")
    expect(item).to_have_attribute("data-state", "done", timeout=120_000)
    resumed = patches[first_run:]
    assert resumed, "no PATCH after the reload"
    assert resumed[0][1] > 0, f"the second attempt started at {resumed[0][1]}"
    assert resumed[0][1] >= 8 * MiB - 4 * MiB
    assert int(item.get_attribute("data-resumed-from")) > 0
    expect(item).to_contain_text("resumed at")
    r = get(dav(ui_server), "/big.bin")
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == digest
    assert page.evaluate("() => localStorage.getItem('davdrive.tus')") in (None, "{}")
    expect(row(page, "big.bin")).to_be_visible()


# -- manage ---------------------------------------------------------------------------------------
def test_rename_move_delete_and_restore_from_trash(ui_server, page: Page):
    s = dav(ui_server)
    mkcol(s, "/work")
    mkcol(s, "/archive")
    put(s, "/work/draft.txt", b"draft text")
    put(s, "/work/notes.txt", b"some notes")
    sign_in(page, ui_server)
    page.get_by_role("link", name="work").click()
    expect(row(page, "draft.txt")).to_be_visible()
    shot(page, "browse")

    # rename through the toolbar
    row(page, "draft.txt").locator(".cell.icon-cell").click()
    page.get_by_role("toolbar", name="Folder actions").get_by_role("button", name="Rename").click()
    page.get_by_label("New name").fill("final.txt")
    page.get_by_role("button", name="Rename", exact=True).last.click()
    expect(row(page, "final.txt")).to_be_visible()
    assert get(s, "/work/final.txt").content == b"draft text"
    assert get(s, "/work/draft.txt").status_code == 404

    # move with the folder picker
    row(page, "final.txt").locator(".cell.icon-cell").click()
    page.get_by_role("toolbar", name="Folder actions").get_by_role("button", name="Move").click()
    picker = page.get_by_role("dialog")
    picker.get_by_role("button", name="My files").click()
    picker.get_by_role("button", name="archive").click()
    picker.get_by_role("button", name="Move here").click()
    expect(page.locator(".toast", has_text="Moved")).to_be_visible()
    expect(row(page, "final.txt")).to_have_count(0)
    assert get(s, "/archive/final.txt").content == b"draft text"

    # copy (row menu) keeps the original
    row(page, "notes.txt").get_by_role("button", name="Actions for notes.txt").click()
    page.get_by_role("menuitem", name="Copy to…").click()
    picker = page.get_by_role("dialog")
    picker.get_by_role("button", name="My files").click()
    picker.get_by_role("button", name="Copy here").click()
    expect(page.locator(".toast", has_text="Copied")).to_be_visible()
    assert get(s, "/notes.txt").content == b"some notes"

    # delete with the keyboard: select, Delete, confirm
    row(page, "notes.txt").locator(".cell.icon-cell").click()
    page.keyboard.press("Delete")
    page.get_by_role("dialog").get_by_role("button", name="Move to trash").click()
    expect(row(page, "notes.txt")).to_have_count(0)
    assert get(s, "/work/notes.txt").status_code == 404

    # restore from the trash
    page.get_by_role("link", name="Trash").click()
    entry = page.locator(".trash-table tr", has_text="notes.txt")
    expect(entry).to_be_visible()
    shot(page, "trash")
    entry.get_by_role("button", name="Restore notes.txt").click()
    expect(entry).to_have_count(0)
    assert get(s, "/work/notes.txt").content == b"some notes"

    # delete forever and empty
    put(s, "/junk1.txt", b"1")
    put(s, "/junk2.txt", b"2")
    s.request("DELETE", s.base + "junk1.txt")  # type: ignore[attr-defined]
    s.request("DELETE", s.base + "junk2.txt")  # type: ignore[attr-defined]
    page.reload()
    page.get_by_role("button", name="Delete junk1.txt forever").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete forever").click()
    expect(page.locator(".trash-table tr", has_text="junk1.txt")).to_have_count(0)
    page.get_by_role("button", name="Empty trash").click()
    page.get_by_role("dialog").get_by_role("button", name="Empty trash").click()
    expect(page.get_by_text("The trash is empty.")).to_be_visible()


def test_keyboard_navigation_and_sorting(ui_server, page: Page):
    s = dav(ui_server)
    mkcol(s, "/zeta")
    put(s, "/b.txt", b"x" * 3000)
    put(s, "/a.txt", b"x" * 10)
    put(s, "/c.txt", b"x" * 200)
    sign_in(page, ui_server)
    names = page.locator(".viewport .row .name-link")
    expect(names).to_have_count(4)

    # folders first, then by name; rows are laid out by position, so read them in order
    def order():
        rows = page.locator(".viewport .row").all()
        rows.sort(key=lambda r: int(r.get_attribute("data-index")))
        return [r.locator(".name-link").inner_text() for r in rows]

    assert order() == ["zeta", "a.txt", "b.txt", "c.txt"]
    page.get_by_role("button", name="Size").click()
    assert order() == ["zeta", "a.txt", "c.txt", "b.txt"]
    page.get_by_role("button", name="Size").click()
    assert order() == ["zeta", "b.txt", "c.txt", "a.txt"]
    expect(page.locator(".viewport .row", has_text="b.txt")).to_contain_text("2.9 KB")
    page.get_by_role("button", name="Name").click()

    grid = page.get_by_role("grid", name="Files")
    grid.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Shift+ArrowDown")
    expect(page.locator(".viewport .row.selected")).to_have_count(2)
    expect(page.locator(".sel-info")).to_have_text("2 selected")
    page.keyboard.press("Home")
    page.keyboard.press("Enter")  # opens the folder
    expect(page.locator(".crumbs .current")).to_have_text("zeta")
    page.get_by_role("grid", name="Files").focus()
    page.keyboard.press("Backspace")
    expect(page.locator(".crumbs .current")).to_have_count(0)
    expect(names).to_have_count(4)
    # ctrl-click adds to the selection
    row(page, "a.txt").locator(".cell.icon-cell").click()
    row(page, "c.txt").locator(".cell.icon-cell").click(modifiers=["Control"])
    expect(page.locator(".viewport .row.selected")).to_have_count(2)


def test_preview_image_and_text(ui_server, page: Page):
    s = dav(ui_server)
    png = bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360f8cfc0000003010100c9fe92ef0000000049454e44ae426082"
    )
    put(s, "/pixel.png", png)
    put(s, "/readme.txt", b"hello preview\n" + b"y" * (300 * 1024))
    sign_in(page, ui_server)
    page.get_by_role("button", name="pixel.png", exact=True).click()
    img = page.locator(".details .preview img")
    expect(img).to_be_visible()
    assert img.get_attribute("src").startswith("blob:")
    page.get_by_role("button", name="Close details").click()
    page.get_by_role("button", name="readme.txt", exact=True).click()
    expect(page.locator(".text-preview")).to_contain_text("hello preview")
    expect(page.locator(".details")).to_contain_text("Showing the first 256 KB")
    length = page.evaluate("() => document.querySelector('.text-preview').textContent.length")
    assert length == 256 * 1024


def test_restore_an_old_revision(ui_server, page: Page):
    s = dav(ui_server)
    put(s, "/report.txt", b"version one")
    time.sleep(1.1)
    put(s, "/report.txt", b"version two, longer")
    sign_in(page, ui_server)
    row(page, "report.txt").get_by_role("button", name="Actions for report.txt").click()
    page.get_by_role("menuitem", name="Revisions").click()
    revs = page.locator(".revisions .revision")
    expect(revs).to_have_count(2)
    expect(revs.first).to_contain_text("current")
    # pin the old one, then restore it
    old = revs.nth(1)
    old.get_by_role("button", name="Pin").click()
    expect(revs.nth(1).get_by_role("button", name="Pinned")).to_have_attribute(
        "aria-pressed", "true"
    )
    shot(page, "revisions")
    revs.nth(1).get_by_role("button", name="Restore").click()
    page.get_by_role("dialog").get_by_role("button", name="Restore").click()
    expect(revs).to_have_count(3)
    assert get(s, "/report.txt").content == b"version one"
    api = requests.get(
        f"{ui_server.url}/api/v1/files/list_revisions",
        params={"path": "/report.txt"},
        auth=ui_server.auth("alice"),
    ).json()["revisions"]
    assert [r["pinned"] for r in api] == [False, False, True]
    # a download of an old revision is a plain link with the cookie
    with page.expect_download() as dl:
        revs.nth(1).get_by_role("button", name="Download").click()
    assert Path(dl.value.path()).read_bytes() == b"version two, longer"


def test_webdav_put_appears_after_refresh(ui_server, page: Page):
    s = dav(ui_server)
    mkcol(s, "/shared-in")
    sign_in(page, ui_server)
    page.get_by_role("link", name="shared-in").click()
    expect(page.get_by_text("This folder is empty")).to_be_visible()
    put(s, "/shared-in/from-webdav.txt", b"made elsewhere")
    page.reload()
    expect(row(page, "from-webdav.txt")).to_be_visible()
    # navigating away and back reads the folder again too
    put(s, "/shared-in/second.txt", b"again")
    page.get_by_role("link", name="My files").first.click()
    page.get_by_role("link", name="shared-in").click()
    expect(row(page, "second.txt")).to_be_visible()


def test_download_folder_and_selection_as_zip(ui_server, page: Page):
    s = dav(ui_server)
    mkcol(s, "/pics")
    put(s, "/pics/a.txt", b"a")
    put(s, "/b.txt", b"b")
    sign_in(page, ui_server)
    row(page, "pics").locator(".cell.icon-cell").click()
    row(page, "b.txt").locator(".cell.icon-cell").click(modifiers=["Control"])
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download zip").click()
    assert Path(dl.value.path()).read_bytes()[:2] == b"PK"


# -- scale, layout, weight ------------------------------------------------------------------------
def test_five_thousand_entries_render_and_scroll(ui_server, page: Page):
    base = ui_server.url
    http = requests.Session()
    http.auth = ui_server.auth("alice")
    assert (
        http.post(f"{base}/api/v1/files/create_folder", json={"path": "/many"}).status_code == 201
    )

    def make(i: int) -> None:
        r = http.post(
            f"{base}/api/v1/files/upload",
            params={"path": f"/many/file-{i:05d}.txt", "uploadType": "media"},
            data=b"",
        )
        assert r.status_code in (200, 201), r.text

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(make, range(5000)))
    sign_in(page, ui_server)
    started = time.monotonic()
    page.goto(f"{base}/ui/#/files/many")
    expect(row(page, "file-00000.txt")).to_be_visible()
    expect(page.get_by_role("grid", name="Files")).to_have_attribute("aria-rowcount", "5001")
    assert time.monotonic() - started < 10
    assert page.locator(".viewport .row").count() < 120  # only a window is in the DOM
    page.locator(".viewport").evaluate("el => { el.scrollTop = el.scrollHeight; }")
    expect(row(page, "file-04999.txt")).to_be_visible()
    assert page.locator(".viewport .row").count() < 120
    # keyboard: End then Home
    page.get_by_role("grid", name="Files").focus()
    page.keyboard.press("Home")
    expect(row(page, "file-00000.txt")).to_be_in_viewport()
    page.keyboard.press("End")
    expect(row(page, "file-04999.txt")).to_be_in_viewport()
    expect(page.locator(".viewport .row.selected")).to_have_text(
        __import__("re").compile("file-04999.txt")
    )


def test_phone_sized_screen(ui_server, browser, tmp_path):
    s = dav(ui_server)
    mkcol(s, "/Photos")
    put(s, "/shopping-list.txt", b"milk\n")
    put(s, "/holiday.jpg", b"\xff\xd8\xff" + b"0" * 2000)
    put(s, "/song.mp3", b"ID3" + b"0" * 5000)
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: "Content Security Policy" in m.text and problems.append(m.text))
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        page.goto(f"{ui_server.url}/ui/")
        shot(page, "phone-login")
        sign_in(page, ui_server)
        expect(row(page, "shopping-list.txt")).to_be_visible()
        # nothing wider than the screen
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390
        # the modified column gives way; name and size stay
        expect(row(page, "shopping-list.txt").locator(".cell.modified")).to_be_hidden()
        expect(row(page, "shopping-list.txt").locator(".cell.size")).to_be_visible()
        shot(page, "phone-browse")
        page.emulate_media(color_scheme="dark")
        shot(page, "phone-browse-dark")
        page.emulate_media(color_scheme="light")
        page.get_by_role("button", name="shopping-list.txt", exact=True).click()
        expect(page.locator(".text-preview")).to_contain_text("milk")
        shot(page, "phone-preview")
        assert not problems, problems
    finally:
        context.close()


def test_first_load_weight_and_same_origin(ui_server, page: Page):
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(ui_server.url))
    requested: list[str] = []
    sizes: dict[str, int] = {}
    page.on("request", lambda r: requested.append(r.url))

    def finished(req):
        if req.url.startswith(f"{origin}/ui/"):
            sizes[req.url] = req.sizes()["responseBodySize"]

    page.on("requestfinished", finished)
    sign_in(page, ui_server)  # the file list is on screen: every module has loaded
    page.wait_for_timeout(500)  # (not "networkidle": the live long-poll is always in flight)
    total = sum(sizes.values())
    print(f"first load: {len(sizes)} files, {total} bytes")
    assert len(sizes) >= 5
    assert total <= 300 * 1024, f"first load is {total} bytes"
    foreign = [
        u for u in requested if not u.startswith(origin) and not u.startswith(("data:", "blob:"))
    ]
    assert not foreign, foreign
