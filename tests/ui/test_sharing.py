"""Sharing in the web app (share dialog, "Shared" view) in a real browser.

Alice works the UI (users alice/bob of ``ui_server``); what the UI made is checked through the
API with Basic auth, a second browser context signed in as bob, or an anonymous context that
opens a link. Every page fails its test on a CSP violation or an uncaught script error.
Screenshots go to ``$DAVDRIVE_SCREENSHOTS`` when set, else to a temporary folder.
"""

from __future__ import annotations

import os
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.ui.conftest import login

SHOTS = Path(
    os.environ.get("DAVDRIVE_SCREENSHOTS") or Path(tempfile.gettempdir()) / "davdrive-screenshots"
)
pytestmark = pytest.mark.timeout(120)


# -- helpers ------------------------------------------------------------------------------------
def guard(page: Page, problems: list[str]) -> Page:
    def on_console(msg):
        if "Content Security Policy" in msg.text or "Content-Security-Policy" in msg.text:
            problems.append(f"CSP: {msg.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    return page


@pytest.fixture
def problems(page: Page):
    found: list[str] = []
    guard(page, found)
    yield found
    assert not found, "\n".join(found)


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def api(srv, login_: str = "alice") -> requests.Session:
    s = requests.Session()
    s.auth = srv.auth(login_)
    return s


def put(srv, path: str, data: bytes, login_: str = "alice") -> None:
    r = requests.put(srv.dav(login_) + path.lstrip("/"), data=data, auth=srv.auth(login_))
    assert r.status_code in (200, 201, 204), r.text


def mkcol(srv, path: str, login_: str = "alice") -> None:
    r = requests.request("MKCOL", srv.dav(login_) + path.lstrip("/"), auth=srv.auth(login_))
    assert r.status_code == 201, r.text


def row(page: Page, name: str):
    return page.locator(".viewport .row").filter(has=page.locator(f'.name-link:text-is("{name}")'))


def open_app(page: Page, srv, login_: str, hash_: str = "#/files/") -> None:
    login(page, srv, login_)
    page.goto(f"{srv.url}/ui/{hash_}")
    if hash_.startswith("#/files"):
        expect(page.get_by_role("grid", name="Files")).to_be_visible()


def share_dialog(page: Page, name: str):
    dialog = page.get_by_role("dialog", name=f'Share "{name}"')
    expect(dialog).to_be_visible()
    return dialog


def select_and_share(page: Page, name: str):
    """Select the row of `name` and press the toolbar's Share button."""
    row(page, name).locator("input[data-check]").check()
    page.get_by_role("toolbar", name="Folder actions").get_by_role(
        "button", name="Share", exact=True
    ).click()
    return share_dialog(page, name)


def new_page(browser: Browser, problems: list[str], **kw) -> tuple[BrowserContext, Page]:
    ctx = browser.new_context(**kw)
    return ctx, guard(ctx.new_page(), problems)


# -- (a) a user share: alice → bob, read only; bob sees and opens it; alice revokes ---------------
def test_share_folder_with_user_read_only_then_revoke(ui_server, page: Page, browser, problems):
    srv = ui_server
    mkcol(srv, "/projects")
    put(srv, "/projects/plan.txt", b"the plan\n")
    open_app(page, srv, "alice")
    dialog = select_and_share(page, "projects")

    # an unknown login: the API's error shows in the dialog, nothing is shared
    dialog.get_by_label("Share with").fill("nobody-here")
    dialog.get_by_role("button", name="Share", exact=True).click()
    expect(dialog.get_by_role("alert")).to_contain_text("nobody-here")
    assert api(srv).get(f"{srv.url}/api/v1/shares").json()["shares"] == []

    dialog.get_by_label("Share with").fill("bob")
    dialog.get_by_label("Access", exact=True).select_option("view")
    dialog.get_by_label("Share with").press("Enter")  # Enter shares (and keeps the dialog open)
    people = dialog.get_by_role("list", name="People with access")
    expect(people.locator("li[data-user=bob]")).to_be_visible()
    expect(dialog.get_by_label("Access of bob")).to_have_value("view")
    expect(dialog.get_by_role("alert")).to_have_count(0)  # the error is gone
    shot(page, "share-dialog")
    shares = api(srv).get(f"{srv.url}/api/v1/shares").json()["shares"]
    assert [(s["user"], s["path"], s["permissions"]) for s in shares] == [("bob", "/projects", 1)]
    dialog.get_by_role("button", name="Done").click()
    expect(dialog).to_be_hidden()

    # bob, in his own browser: Shared → Shared with me → open it → the file is there
    bob_problems: list[str] = []
    ctx, bob = new_page(browser, bob_problems)
    try:
        open_app(bob, srv, "bob", "#/shared")
        mine = bob.get_by_role("list", name="Shared with me")
        item = mine.locator("li[data-name=projects]")
        expect(item).to_contain_text("From alice")
        expect(item).to_contain_text("Can view")
        shot(bob, "shared-with-me")
        item.get_by_role("link", name="projects").click()
        expect(bob).to_have_url(f"{srv.url}/ui/#/files/projects")
        expect(row(bob, "plan.txt")).to_be_visible()
        # what bob received he cannot share on (no re-sharing): no Share in its menu
        row(bob, "plan.txt").get_by_role("button", name="Actions for plan.txt").click()
        expect(bob.get_by_role("menuitem", name="Download")).to_be_visible()
        expect(bob.get_by_role("menuitem", name="Share…")).to_have_count(0)
        bob.keyboard.press("Escape")
        # read only: bob cannot write into it
        r = requests.put(srv.dav("bob") + "projects/new.txt", data=b"x", auth=srv.auth("bob"))
        assert r.status_code == 403

        # alice revokes in "Shared by me"
        page.goto(f"{srv.url}/ui/#/shared")
        given = page.get_by_role("list", name="My shares with people")
        mine_out = given.locator("li[data-user=bob]")
        expect(mine_out).to_contain_text("projects")
        # the access changes in place: "Can edit" lets bob write
        mine_out.get_by_label("Access of bob to projects").select_option("edit")
        expect(page.get_by_text('bob can now edit "projects"')).to_be_visible()
        (s,) = api(srv).get(f"{srv.url}/api/v1/shares").json()["shares"]
        assert s["permission_names"] == ["read", "write", "create", "delete"]
        r = requests.put(srv.dav("bob") + "projects/new.txt", data=b"x", auth=srv.auth("bob"))
        assert r.status_code == 201
        mine_out.get_by_role("button", name="Stop sharing projects with bob").click()
        page.get_by_role("dialog", name="Stop sharing").get_by_role(
            "button", name="Stop sharing"
        ).click()
        expect(given.locator("li")).to_have_count(0)
        assert api(srv).get(f"{srv.url}/api/v1/shares").json()["shares"] == []

        # bob no longer has it: the API and his Shared view say so
        r = bob.request.get(f"{srv.url}/api/v1/shares?shared_with_me=true")
        assert r.status == 200 and r.json()["shares"] == []
        assert bob.request.get(f"{srv.url}/api/v1/files/list?path=/projects").status == 404
        bob.goto(f"{srv.url}/ui/#/shared")
        expect(bob.get_by_text("Nobody has shared anything with you yet.")).to_be_visible()
        expect(mine.locator("li")).to_have_count(0)
    finally:
        ctx.close()
    assert not bob_problems, bob_problems


# -- (b) a view link with a password, opened anonymously; revoked → 404 ---------------------------
def test_view_link_with_password_download_and_revoke(ui_server, page: Page, browser, problems):
    srv = ui_server
    content = os.urandom(20_000)
    put(srv, "/report.bin", content)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=srv.url)
    open_app(page, srv, "alice")

    # through the row's "more" menu
    row(page, "report.bin").get_by_role("button", name="Actions for report.bin").click()
    page.get_by_role("menuitem", name="Share…").click()
    dialog = share_dialog(page, "report.bin")
    kind = dialog.get_by_label("Link type")
    # a file offers only view and edit links (upload and drop need a folder)
    assert kind.locator("option").evaluate_all("os => os.map(o => o.value)") == ["view", "edit"]
    kind.select_option("view")
    dialog.get_by_label("Password", exact=True).fill("open sesame")
    dialog.get_by_role("button", name="Create link").click()
    card = dialog.get_by_role("list", name="Links").locator("li[data-type=view]")
    expect(card).to_contain_text("Password")
    expect(card).to_contain_text("0 uses")
    url = card.get_by_label("Link URL").input_value()
    assert url.startswith(f"{srv.url}/s/")
    card.get_by_role("button", name="Copy link").click()
    expect(card.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == url
    (link,) = api(srv).get(f"{srv.url}/api/v1/links").json()["links"]
    assert (link["type"], link["path"], link["has_password"], link["url"]) == (
        "view",
        "/report.bin",
        True,
        url,
    )
    dialog.get_by_role("button", name="Done").click()

    # anyone with the URL: the password, then the file
    anon_problems: list[str] = []
    ctx, anon = new_page(browser, anon_problems, accept_downloads=True)
    try:
        anon.goto(url)
        pw = anon.locator("input[type=password]")
        expect(pw).to_be_visible()
        pw.fill("open sesame")
        pw.press("Enter")
        with anon.expect_download() as dl:
            anon.locator('a[href*="/download"]').first.click()
        assert Path(dl.value.path()).read_bytes() == content
    finally:
        ctx.close()
    assert not anon_problems, anon_problems

    # the details panel has Share too; the dialog lists the existing link (one use now)
    page.get_by_role("button", name="report.bin", exact=True).click()
    page.locator(".details").get_by_role("button", name="Share").click()
    dialog = share_dialog(page, "report.bin")
    card = dialog.get_by_role("list", name="Links").locator("li[data-type=view]")
    expect(card.get_by_label("Link URL")).to_have_value(url)
    expect(card).to_contain_text("1 use")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()

    # revoked in "Shared by me": the link answers 404
    page.goto(f"{srv.url}/ui/#/shared")
    links = page.get_by_role("list", name="My links")
    card = links.locator(f"li[data-id='{link['id']}']")
    expect(card).to_contain_text("report.bin")
    expect(card).to_contain_text("1 use")
    expect(card.get_by_label("Link URL of report.bin")).to_have_value(url)
    shot(page, "shared-by-me")
    card.get_by_role("button", name="Revoke view link to report.bin").click()
    page.get_by_role("dialog", name="Revoke link").get_by_role("button", name="Revoke").click()
    expect(links.locator("li")).to_have_count(0)
    expect(page.get_by_text("You have no active links.")).to_be_visible()
    assert requests.get(url).status_code == 404


# -- (c) a drop link of a folder with max uses and an expiry --------------------------------------
def test_drop_link_for_folder_with_limits(ui_server, page: Page, problems):
    srv = ui_server
    mkcol(srv, "/inbox")
    open_app(page, srv, "alice")
    dialog = select_and_share(page, "inbox")
    kind = dialog.get_by_label("Link type")
    assert kind.locator("option").evaluate_all("os => os.map(o => o.value)") == [
        "view",
        "edit",
        "upload",
        "drop",
    ]
    kind.select_option("drop")
    expect(dialog).to_contain_text("only add files")
    day = (date.today() + timedelta(days=30)).isoformat()
    dialog.get_by_label("Expires").fill(day)
    dialog.get_by_label("Max uses").fill("5")
    dialog.get_by_role("button", name="Create link").click()
    card = dialog.get_by_role("list", name="Links").locator("li[data-type=drop]")
    expect(card).to_contain_text("File drop")
    expect(card).to_contain_text("0 / 5 uses")
    expect(card).to_contain_text("Expires")
    # the form is cleared for the next link
    expect(dialog.get_by_label("Max uses")).to_have_value("")

    (link,) = api(srv).get(f"{srv.url}/api/v1/links").json()["links"]
    assert (link["type"], link["path"], link["item_type"]) == ("drop", "/inbox", "folder")
    assert (link["max_uses"], link["uses"], link["has_password"], link["active"]) == (
        5,
        0,
        False,
        True,
    )
    # the link works through the end of that day in the browser's time zone
    want = page.evaluate(
        "d => { const [y, m, n] = d.split('-').map(Number);"
        " return new Date(y, m - 1, n, 23, 59, 59).getTime() / 1000; }",
        day,
    )
    got = datetime.fromisoformat(link["expires"].replace("Z", "+00:00")).timestamp()
    assert abs(got - want) < 1, (link["expires"], want)

    # a bad value is refused in the dialog, without a request
    dialog.get_by_label("Max uses").fill("0")
    dialog.get_by_role("button", name="Create link").click()
    expect(dialog.get_by_role("alert")).to_contain_text("Maximum uses")
    assert len(api(srv).get(f"{srv.url}/api/v1/links").json()["links"]) == 1


# -- phone-sized screen: the dialog and the view fit --------------------------------------------
def test_sharing_on_a_phone(ui_server, browser):
    srv = ui_server
    mkcol(srv, "/Photos")
    found: list[str] = []
    ctx, page = new_page(
        browser,
        found,
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    try:
        open_app(page, srv, "alice")
        dialog = select_and_share(page, "Photos")
        dialog.get_by_label("Link type").select_option("upload")
        dialog.get_by_role("button", name="Create link").click()
        expect(dialog.get_by_role("list", name="Links").locator("li")).to_have_count(1)
        box = dialog.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390
        shot(page, "phone-share-dialog")
        page.emulate_media(color_scheme="dark")
        shot(page, "phone-share-dialog-dark")
        page.emulate_media(color_scheme="light")
        dialog.get_by_role("button", name="Done").click()
        page.goto(f"{srv.url}/ui/#/shared")
        expect(page.get_by_role("list", name="My links").locator("li")).to_have_count(1)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
        shot(page, "phone-shared")
    finally:
        ctx.close()
    assert not found, found
