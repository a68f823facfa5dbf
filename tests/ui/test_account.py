"""The account page of the web app (#/account) in a real browser: the quota bar against
``GET /api/v1/account``, app passwords made through the page (confirmed with the account
password, shown once, working over WebDAV, then revoked) and the QR code for the Nextcloud
phone apps, rebuilt module by module with segno.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.ui.conftest import login
from tests.ui.test_webapp import dav, page_guard, put, shot  # noqa: F401

pytestmark = pytest.mark.timeout(60)


def format_size(n: int) -> str:
    """util.js's formatSize (binary multiples, one decimal under 10)."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    unit = "B"
    for u in ("KB", "MB", "GB", "TB", "PB"):
        value /= 1024
        unit = u
        if value < 1024:
            break
    # JS: toFixed(1) below 10, else Math.round (half up)
    text = f"{value:.1f}" if value < 10 else str(int(value + 0.5))
    return f"{text} {unit}"


def api(srv, method: str, path: str, auth=None, **kw) -> requests.Response:
    return requests.request(method, f"{srv.url}/api/v1{path}", auth=auth or srv.auth("alice"), **kw)


def propfind(srv, password: str) -> int:
    r = requests.request(
        "PROPFIND", srv.dav("alice"), auth=("alice", password), headers={"Depth": "0"}
    )
    return r.status_code


def open_account(page: Page, srv) -> None:
    login(page, srv, "alice")
    page.goto(f"{srv.url}/ui/#/account")
    expect(page.get_by_role("heading", name="Account", exact=True)).to_be_visible()
    expect(page.locator(".device.current")).to_have_count(1)


def create_app_password(page: Page, srv, name: str) -> str:
    """Create an app password through the page (right password at once); its value."""
    page.get_by_label("Device name").fill(name)
    page.get_by_role("button", name="Create app password").click()
    dialog = page.get_by_role("dialog", name="Authentication required")
    dialog.get_by_label("Your account password").fill(srv.users["alice"])
    dialog.get_by_role("button", name="Create").click()
    expect(dialog).to_have_count(0)
    field = page.get_by_role("textbox", name="App password", exact=True)
    expect(field).to_be_visible()
    return field.input_value()


# -- storage ------------------------------------------------------------------------------------
def test_quota_bar_shows_current_history_and_trash(ui_server, page: Page):
    ui_server.cli("user", "quota", "alice", "10MB")
    s = dav(ui_server)
    put(s, "/report.bin", b"a" * 200_000)
    put(s, "/report.bin", b"b" * 150_000)  # the first one becomes an older version
    put(s, "/old.bin", b"c" * 50_000)
    assert s.delete(s.base + "old.bin").status_code == 204  # into the trash
    acct = api(ui_server, "GET", "/account").json()
    usage = acct["usage"]
    assert acct["quota"] == 10_000_000
    assert usage == {"current": 150_000, "history": 200_000, "trash": 50_000}, usage

    open_account(page, ui_server)
    legend = page.locator(".quota-legend")
    expect(legend.locator("li")).to_have_count(4)
    for part in ("current", "history", "trash"):
        item = legend.locator(f'li[data-part="{part}"]')
        expect(item).to_have_attribute("data-bytes", str(usage[part]))
        expect(item.locator(".legend-size")).to_have_text(format_size(usage[part]))
    free = legend.locator('li[data-part="free"]')
    expect(free).to_have_attribute("data-bytes", str(acct["available"]))
    expect(free).to_contain_text(format_size(acct["available"]))
    expect(legend).to_contain_text("Current files")
    expect(legend).to_contain_text("Older versions")
    expect(legend).to_contain_text("Trash")

    summary = page.locator(".quota-summary")
    expect(summary).to_contain_text(
        f"{format_size(acct['used'])} of {format_size(acct['quota'])} used"
    )
    expect(summary).to_contain_text(f"{format_size(acct['available'])} free")

    # the bar: three parts side by side, each as wide as its share of the quota
    bar = page.locator("svg.quota-bar")
    expect(bar).to_be_visible()
    x = 0.0
    for part in ("current", "history", "trash"):
        rect = bar.locator(f'rect[data-part="{part}"]')
        assert float(rect.get_attribute("x")) == pytest.approx(x, abs=1e-6)
        width = float(rect.get_attribute("width"))
        assert width == pytest.approx(usage[part] / acct["quota"] * 100, rel=1e-6)
        x += width
        box = rect.bounding_box()
        assert box and box["width"] > 0, part
    bar_box = bar.bounding_box()
    cur_box = bar.locator('rect[data-part="current"]').bounding_box()
    assert cur_box["width"] == pytest.approx(bar_box["width"] * 0.015, abs=1.5)
    shot(page, "account")

    # unlimited (no useful limit): no "free" part, and the page says so
    ui_server.cli("user", "quota", "alice", str(2**60))
    page.reload()
    expect(page.locator(".quota-summary")).to_contain_text("no storage limit")
    expect(page.locator('.quota-legend li[data-part="free"]')).to_have_count(0)
    expect(page.locator('.quota-legend li[data-part="history"]')).to_have_attribute(
        "data-bytes", "200000"
    )


# -- app passwords ------------------------------------------------------------------------------
def test_app_password_created_shown_once_works_and_is_revoked(ui_server, page: Page):
    open_account(page, ui_server)
    expect(page.locator(".device.current")).to_contain_text("This browser")
    expect(page.locator(".device.current")).to_have_attribute("data-kind", "browser")

    # a wrong password first: an error in the dialog, nothing created
    page.get_by_label("Device name").fill("laptop")
    page.get_by_role("button", name="Create app password").click()
    dialog = page.get_by_role("dialog", name="Authentication required")
    dialog.get_by_label("Your account password").fill("not-the-password")
    dialog.get_by_role("button", name="Create").click()
    expect(dialog.get_by_role("alert")).to_contain_text("Wrong password")
    expect(dialog.get_by_label("Your account password")).to_have_value("")
    names = [d["name"] for d in api(ui_server, "GET", "/devices").json()["devices"]]
    assert "laptop" not in names
    expect(page.locator(".new-secret")).to_have_count(0)

    # then the right one: the app password is shown, with the addresses
    dialog.get_by_label("Your account password").fill(ui_server.users["alice"])
    dialog.get_by_role("button", name="Create").click()
    expect(dialog).to_have_count(0)
    field = page.get_by_role("textbox", name="App password", exact=True)
    expect(field).to_be_visible()
    password = field.input_value()
    assert len(password) >= 16 and password != ui_server.users["alice"]
    expect(page.get_by_role("textbox", name="Login", exact=True)).to_have_value("alice")
    expect(page.get_by_role("textbox", name="WebDAV address")).to_have_value(
        f"{ui_server.url}/dav/alice/"
    )
    expect(page.get_by_role("textbox", name="Server address")).to_have_value(ui_server.url)
    card = page.locator(".new-secret")
    host = urlsplit(ui_server.url).netloc
    for text in (
        "Map network drive",
        "HTTPS",
        "Connect to Server",
        "mount -t davfs",
        f"dav://{host}/dav/alice/",
        f"webdav://{host}/dav/alice/",
        "Nextcloud",
    ):
        expect(card).to_contain_text(text)
    shot(page, "account-app-password")

    # it works over WebDAV, and the device is listed
    assert propfind(ui_server, password) == 207
    device = page.locator('.device[data-name="laptop"]')
    expect(device).to_be_visible()
    expect(device).to_have_attribute("data-kind", "app")
    names = [d["name"] for d in api(ui_server, "GET", "/devices").json()["devices"]]
    assert names.count("laptop") == 1

    # no password was kept by the page
    stored = page.evaluate(
        "() => JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage})"
    )
    assert ui_server.users["alice"] not in stored and password not in stored

    # shown once: a reload shows the device but not its password
    page.reload()
    expect(page.locator('.device[data-name="laptop"]')).to_be_visible()
    expect(page.locator(".new-secret")).to_have_count(0)
    assert password not in page.content()

    # revoke it (confirmed with the account password): the app password stops working
    page.get_by_role("button", name="Revoke laptop").click()
    dialog = page.get_by_role("dialog", name="Revoke device")
    dialog.get_by_label("Your account password").fill(ui_server.users["alice"])
    dialog.get_by_role("button", name="Revoke").click()
    expect(dialog).to_have_count(0)
    expect(page.locator('.device[data-name="laptop"]')).to_have_count(0)
    assert propfind(ui_server, password) == 401
    names = [d["name"] for d in api(ui_server, "GET", "/devices").json()["devices"]]
    assert "laptop" not in names
    # the browser session itself is still signed in
    expect(page.locator(".device.current")).to_have_count(1)


def test_signing_out_this_browser_from_the_device_list(ui_server, page: Page):
    open_account(page, ui_server)
    page.get_by_role("button", name="Sign out this browser").click()
    page.get_by_role("dialog").get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert page.request.get(f"{ui_server.url}/api/v1/session").status == 401
    devices = api(ui_server, "GET", "/devices").json()["devices"]
    assert not [d for d in devices if d["kind"] == "browser"]


# -- the QR code --------------------------------------------------------------------------------
def iso_segno():
    """segno, with its byte-mode padding made to follow ISO/IEC 18004 7.4.10.

    segno 1.6 appends a whole zero byte after the terminator when the bit stream already ends
    on a codeword boundary (always so in byte mode); the standard (and qrcodegen) pads only to
    the boundary. Both decode alike, but their modules differ, so the reference is segno with
    that one function following the standard."""
    segno = pytest.importorskip("segno")
    from segno import consts, encoder

    def write_padding_bits(buff, version, length):
        if version not in (consts.VERSION_M1, consts.VERSION_M3) and length % 8:
            buff.extend([0] * (8 - length % 8))

    return segno, encoder, write_padding_bits


def svg_matrix(page: Page) -> tuple[dict, list[list[bool]]]:
    qr = page.locator("svg.qr")
    expect(qr).to_be_visible()
    attrs = qr.evaluate("e => ({...e.dataset, viewBox: e.getAttribute('viewBox')})")
    d = qr.locator("path.qr-dark").get_attribute("d")
    size, border = int(attrs["size"]), int(attrs["border"])
    n = size + 2 * border
    assert attrs["viewBox"] == f"0 0 {n} {n}"
    grid = [[False] * n for _ in range(n)]
    runs = re.findall(r"M(\d+) (\d+)h(\d+)v1h-(\d+)z", d)
    assert "".join(f"M{x} {y}h{w}v1h-{w2}z" for x, y, w, w2 in runs) == d
    for x, y, w, w2 in runs:
        assert w == w2
        for i in range(int(w)):
            assert not grid[int(y)][int(x) + i]
            grid[int(y)][int(x) + i] = True
    return attrs, grid


def test_qr_code_holds_the_nextcloud_login_url(ui_server, page: Page, monkeypatch):
    segno, encoder, iso_padding = iso_segno()
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    open_account(page, ui_server)
    # the encoder is not part of the page's first load
    assert not [u for u in requested if "qrcodegen" in u]
    password = create_app_password(page, ui_server, "phone")
    assert [u for u in requested if u.endswith("/ui/js/vendor/qrcodegen.js")]

    attrs, grid = svg_matrix(page)
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(ui_server.url))
    text = f"nc://login/user:alice&password:{password}&server:{origin}"
    monkeypatch.setattr(encoder, "write_padding_bits", iso_padding)
    ref = segno.make(
        text,
        version=int(attrs["version"]),
        error=attrs["ecc"],
        mask=int(attrs["mask"]),
        boost_error=False,
        micro=False,
    )
    assert ref.mode == "byte"
    expected = [
        [bool(c) for c in row] for row in ref.matrix_iter(scale=1, border=int(attrs["border"]))
    ]
    assert grid == expected
    assert attrs["ecc"] in ("M", "Q", "H")  # at least medium, boosted when it fits
    assert propfind(ui_server, password) == 207

    # dark on light in both themes (scanners need it), and the page fits a phone
    page.emulate_media(color_scheme="dark")
    fills = page.evaluate(
        "() => [getComputedStyle(document.querySelector('.qr-dark')).fill,"
        " getComputedStyle(document.querySelector('.qr-light')).fill]"
    )
    assert fills == ["rgb(0, 0, 0)", "rgb(255, 255, 255)"]
    page.set_viewport_size({"width": 390, "height": 844})
    page.locator("svg.qr").scroll_into_view_if_needed()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    assert page.evaluate("() => document.querySelector('.account').scrollWidth") <= 390
    box = page.locator("svg.qr").bounding_box()
    assert box and 150 <= box["width"] <= 390
    shot(page, "account-phone-dark")
