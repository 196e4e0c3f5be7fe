"""Browser fixtures: the real shop from `shoeshop up` (the system tests' fixture) and Chromium."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import stack as stacks
from tests.system.conftest import running_shop

__all__ = ["browser", "page", "running_shop", "screenshots", "stack"]

CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
# Everything Chromium would fetch or start on its own is off: the tests see only the shop.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def chromium_path() -> str | None:
    configured = os.environ.get("SHOESHOP_CHROMIUM")
    candidates = [configured] if configured else [*CHROMIUM_PATHS, shutil.which("chromium")]
    return next((path for path in candidates if path and Path(path).is_file()), None)


def _unavailable(reason: str) -> None:
    if stacks.services_required():
        pytest.fail(f"SHOESHOP_REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[stacks.Stack]:
    """The embedded broker only: the browser walks the pages, the brokers have their own suites."""
    tmp_path = tmp_path_factory.mktemp("browser")
    # `shoeshop up` starts the embedded Redis itself, as on a fresh machine.
    stack = stacks.Stack("embedded", {"SHOESHOP_DATA_DIR": str(tmp_path / "var")})
    yield stack
    stack.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        _unavailable("Chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
