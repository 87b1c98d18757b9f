"""Fixtures for the browser tests.

The tests are black-box: they never import project code. Without
``E2E_BASE_URL`` the stage ``E2E_STAGE`` (default: this checkout's last) is started
here as real processes (tests/support/harness.py) and torn down afterwards,
on the ``E2E_PROFILE`` runtime profile (``real``, the default, or ``embedded``).
With ``E2E_BASE_URL`` the tests run against whatever answers at that URL and
nothing is started.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.harness import DEFAULT_STAGE, Stack, stage_stack

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
KNOWN_COMPONENTS = ("monolith", "posts", "comments", "gateway")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """``E2E_BASE_URL`` if set (nothing is started, any component may serve),
    else stage ``E2E_STAGE`` (default: the checkout's last) started here (``E2E_MODE``,
    ``E2E_PROFILE`` and, once there is a gateway, ``E2E_GATEWAY``)."""
    external = os.environ.get("E2E_BASE_URL", "").strip()
    if external:
        yield Stack(url=external.rstrip("/"), served_by=frozenset(KNOWN_COMPONENTS))
        return
    stage = int(os.environ.get("E2E_STAGE", DEFAULT_STAGE))
    options = {
        "mode": os.environ.get("E2E_MODE") or None,  # None: the stage's own
        "profile": os.environ.get("E2E_PROFILE", "real"),
        "gateway": os.environ.get("E2E_GATEWAY", "nginx"),  # [stage 1]
    }
    with stage_stack(stage, log_dir=tmp_path_factory.mktemp("e2e"), **options) as started:
        yield started


@pytest.fixture(scope="session")
def base_url(stack: Stack) -> str:
    return stack.url


@pytest.fixture(scope="session")
def expected_components(stack: Stack) -> tuple[str, ...]:
    """Which X-Served-By values a badge may show on this stack."""
    return tuple(sorted(stack.served_by))


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        # A missing browser is a broken environment, not a reason to pass.
        pytest.fail(f"{CHROMIUM} is not installed (apt-get install chromium; .ci/run does)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def context(browser, base_url: str):
    ctx = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 800})
    ctx.set_default_timeout(10_000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context):
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    assert not errors, f"uncaught JavaScript errors: {errors}"


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """Where screenshots go: $E2E_SCREENSHOT_DIR if set (to keep them), else a temp dir."""
    configured = os.environ.get("E2E_SCREENSHOT_DIR")
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return Path(tempfile.mkdtemp(prefix="e2e-screens-"))
