"""Browser tests of the web app: Playwright driving Debian's Chromium against a live server.

Fixtures (pytest-playwright's, configured here): ``browser`` (one headless
``/usr/bin/chromium --no-sandbox`` per xdist worker), ``context`` and ``page`` (new for every
test, so cookies never leak between tests); ``ui_server``: a live ``davdrive serve`` with
alice/alice-pw and bob/bob-pw (``tests.live``). ``login(page, srv, "alice")`` signs the page's
context in through ``POST /api/v1/session`` (the cookie lands in the context) and returns the
session's JSON (``csrf`` etc.); the form on the sign-in page is the web app's own test.

No browser is ever downloaded (no ``playwright install``): without Chromium or Playwright
the tests skip with the reason, and fail under ``CI=true`` (``tests.conftest.unavailable``).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import unavailable
from tests.live import LiveServer

CHROMIUM = "/usr/bin/chromium"

try:
    import playwright.sync_api  # noqa: F401 - only: is it installed?
except ImportError:  # the plugin's fixtures are missing too: say why instead

    @pytest.fixture
    def browser() -> None:
        unavailable("playwright is not installed (pip install -e '.[test]')")

    @pytest.fixture
    def page() -> None:
        unavailable("playwright is not installed (pip install -e '.[test]')")

else:

    @pytest.fixture(scope="session")
    def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
        """pytest-playwright's launch options plus Debian's Chromium, headless, no sandbox
        (tests run as root in containers, where Chromium's sandbox cannot start)."""
        if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
            unavailable("Chromium is not installed (apt-get install chromium)")
        path = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
        return {
            **browser_type_launch_args,
            "executable_path": path,
            "args": ["--no-sandbox"],
            "headless": True,
        }


@pytest.fixture
def ui_server(live_server: LiveServer) -> LiveServer:
    """A started server with alice/alice-pw and bob/bob-pw; the app is at ``url + "/ui/"``."""
    return live_server


def login(page: Any, srv: LiveServer, login: str = "alice", password: str | None = None) -> dict:
    """Sign ``page``'s browser context in as ``login`` (through the API, not the form); the
    session's JSON: ``login``, ``csrf``, ``device_id``, ``idle_timeout``."""
    r = page.request.post(
        f"{srv.url}/api/v1/session",
        data={"login": login, "password": password or srv.users[login]},
    )
    assert r.status == 200, f"sign-in failed: {r.status} {r.text()}"
    return r.json()
