"""Live updates in the web app: the open folder follows changes made elsewhere (the changes
long-poll), and the notification bell lists what other devices did and new shares.

A WebDAV client with the account password (Basic auth, no device) plays "another device".
"""

from __future__ import annotations

import re
import time

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.ui.test_webapp import dav, mkcol, page_guard, put, row, shot, sign_in  # noqa: F401

pytestmark = pytest.mark.timeout(120)


def is_longpoll(req) -> bool:
    return "/api/v1/longpoll?" in req.url


def bell(page: Page, unread: int = 0):
    name = f"Notifications, {unread} unread" if unread else "Notifications"
    return page.get_by_role("button", name=name, exact=True)


def listings(page: Page, folder: str) -> list[str]:
    """Every ``files/list`` request of ``folder`` the page makes from now on."""
    seen: list[str] = []
    encoded = re.escape(folder.replace("/", "%2F"))
    wanted = re.compile(rf"/api/v1/files/list\?(.*&)?path={encoded}(&|$)")
    page.on("request", lambda r: wanted.search(r.url) and seen.append(r.url))
    return seen


def test_folder_follows_changes_of_other_devices(ui_server, page: Page):
    s = dav(ui_server)
    mkcol(s, "/work")
    mkcol(s, "/other")
    with page.expect_request(is_longpoll):
        sign_in(page, ui_server)
    page.get_by_role("link", name="work").click()
    expect(page.get_by_text("This folder is empty")).to_be_visible()
    expect(bell(page)).to_be_visible()
    work_lists = listings(page, "/work")

    # a PUT by another device shows up in the open folder within 2 s, without a reload
    started = time.monotonic()
    put(s, "/work/new.txt", b"made elsewhere")
    expect(row(page, "new.txt")).to_be_visible(timeout=2000)
    assert time.monotonic() - started < 2
    expect(bell(page, 1)).to_be_visible()
    expect(page.locator(".live-count")).to_have_text("1")

    # a DELETE makes it disappear again
    started = time.monotonic()
    assert s.delete(s.base + "work/new.txt").status_code == 204  # type: ignore[attr-defined]
    expect(row(page, "new.txt")).to_have_count(0, timeout=2000)
    assert time.monotonic() - started < 2
    expect(bell(page, 2)).to_be_visible()

    # a change in another folder notifies but does not list the open folder again
    before = len(work_lists)
    assert before >= 2  # (the two above did)
    put(s, "/other/elsewhere.txt", b"x")
    expect(bell(page, 3)).to_be_visible(timeout=2000)
    page.wait_for_timeout(800)  # longer than the listing's debounce
    assert len(work_lists) == before, work_lists

    # the panel lists the changes, newest first, with relative times; opening it reads them
    bell(page, 3).click()
    items = page.get_by_role("list", name="Recent changes by other devices").get_by_role("listitem")
    expect(items).to_have_count(3)
    expect(items.nth(0)).to_contain_text("Another device added /other/elsewhere.txt")
    expect(items.nth(1)).to_contain_text("Another device deleted /work/new.txt")
    expect(items.nth(2)).to_contain_text("Another device added /work/new.txt")
    expect(items.nth(0).locator("time")).to_have_text("just now")
    expect(bell(page)).to_have_attribute("aria-expanded", "true")
    expect(page.locator(".live-count")).to_be_hidden()
    shot(page, "live-notifications")
    # Escape closes it and gives the focus back to the bell
    page.keyboard.press("Escape")
    expect(page.get_by_role("region", name="Notifications")).to_be_hidden()
    expect(bell(page)).to_be_focused()
    expect(bell(page)).to_have_attribute("aria-expanded", "false")

    # a link of the panel opens the folder of the change
    bell(page).click()
    items.nth(0).get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"#/files/other$"))
    expect(row(page, "elsewhere.txt")).to_be_visible()

    # this browser's own changes list the folder but do not notify
    with page.expect_response(lambda r: "/api/v1/changes?" in r.url):
        page.get_by_role("button", name="New folder").click()
        page.get_by_label("Folder name").fill("mine")
        page.get_by_role("button", name="Create").click()
    expect(row(page, "mine")).to_be_visible()
    page.wait_for_timeout(300)
    expect(bell(page)).to_be_visible()
    expect(page.locator(".live-count")).to_be_hidden()


def test_a_new_share_notifies_and_appears(ui_server, page: Page):
    bob = dav(ui_server, "bob")
    mkcol(bob, "/Team")
    put(bob, "/Team/plan.txt", b"plan")
    with page.expect_request(is_longpoll):
        sign_in(page, ui_server)
    r = requests.post(
        f"{ui_server.url}/api/v1/shares",
        json={"path": "/Team", "user": "alice", "permissions": ["read", "write"]},
        auth=ui_server.auth("bob"),
    )
    assert r.status_code == 201, r.text
    expect(row(page, "Team")).to_be_visible(timeout=2000)
    expect(bell(page, 1)).to_be_visible()
    bell(page, 1).click()
    expect(page.locator(".live-item")).to_have_count(1)
    expect(page.locator(".live-item").first).to_contain_text("bob shared /Team with you")

    # signing out stops the long-poll and forgets the notifications
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    polls: list[str] = []
    page.on("request", lambda q: is_longpoll(q) and polls.append(q.url))
    put(bob, "/Team/later.txt", b"later")
    page.wait_for_timeout(500)
    assert polls == []
    with page.expect_request(is_longpoll):
        sign_in(page, ui_server)
    expect(bell(page)).to_be_visible()


def test_failed_long_polls_back_off_and_recover(ui_server, page: Page):
    s = dav(ui_server)
    failed: list[float] = []

    def fail_twice(route):
        if len(failed) < 2:
            failed.append(time.monotonic())
            route.fulfill(status=503, content_type="application/json", body='{"error": {}}')
        else:
            route.continue_()

    page.route(re.compile(r"/api/v1/longpoll\?"), fail_twice)
    with page.expect_request(is_longpoll):
        sign_in(page, ui_server)
    expect(page.get_by_role("grid", name="Files")).to_be_visible()
    put(s, "/during-outage.txt", b"x")  # made while the polls fail: caught up from the cursor
    expect(row(page, "during-outage.txt")).to_be_visible(timeout=10_000)
    assert len(failed) == 2
    assert failed[1] - failed[0] >= 0.9  # one second after the first failure
    expect(bell(page, 1)).to_be_visible()
