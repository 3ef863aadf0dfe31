"""Browser tests: Courrier's pages served over real HTTP on loopback, clicked in Chromium.

One Chromium for all of them and a new context (cookies, storage) per test.
Each test gets its own server on its own database, listening on a socket
bound first, so ``settings.base_url`` (and every link in a mail) points at
it. The API fixtures (tenants with keys, the manual clock) and the scenario
club and dispatcher are the ones the other tests use.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from sqlalchemy.engine import Engine

from courrier.api.app import create_app
from courrier.clock import ManualClock
from courrier.settings import Settings
from tests.api.conftest import alice, bob, caller_for, client  # noqa: F401
from tests.scenarios.flow import club, dispatcher  # noqa: F401
from tests.support.browser import (
    CHROMIUM_HOW,
    PLAYWRIGHT_HOW,
    LiveServer,
    chromium_path,
    listening_socket,
)
from tests.support.services import missing

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless: started once, and closed when the browser tests are done."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("Playwright", PLAYWRIGHT_HOW)
    executable = chromium_path()
    if executable is None:
        missing("Chromium", CHROMIUM_HOW)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh context: no cookies or storage from another test."""
    context = browser.new_context()
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def _live_socket() -> Iterator[socket.socket]:
    sock = listening_socket()
    yield sock
    sock.close()


@pytest.fixture
def settings(settings: Settings, _live_socket: socket.socket) -> Settings:
    """The test settings, with links pointing at the live server."""
    host, port = _live_socket.getsockname()[:2]
    return settings.model_copy(update={"base_url": f"http://{host}:{port}"})


@pytest.fixture
def live(
    settings: Settings,
    engine: Engine,
    clock: ManualClock,
    _live_socket: socket.socket,
) -> Iterator[str]:
    """The app on the test database, served over HTTP; its base URL (``settings.base_url``)."""
    app = create_app(settings, engine=engine, clock=clock)
    with LiveServer(app, _live_socket) as server:
        assert server.url == settings.base_url
        yield server.url
