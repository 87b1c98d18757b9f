"""Fixtures for the browser tests.

The tests are black-box: they never import project code. Without
``E2E_BASE_URL`` a throwaway monolith is started here (fresh PostgreSQL
database, ``manage.py migrate``, gunicorn on a free port) and torn down
afterwards. With ``E2E_BASE_URL`` the tests run against whatever answers at
that URL (a gateway in later stages) and nothing is started.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
PG_ADMIN_URL = os.environ.get("E2E_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
STARTUP_DEADLINE_S = 30.0
KNOWN_COMPONENTS = ("monolith", "posts", "comments", "gateway")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _db_url(name: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


def _admin_execute(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)


def _wait_healthy(base_url: str, proc: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = log_path.read_text(errors="replace")
            raise RuntimeError(f"gunicorn exited with {proc.returncode} during start-up:\n{log}")
        try:
            res = requests.get(f"{base_url}/healthz", timeout=2)
            if res.status_code == 200:
                return
            last_error = f"HTTP {res.status_code}: {res.text[:200]}"
        except requests.RequestException as exc:
            last_error = str(exc)
        time.sleep(0.2)
    raise RuntimeError(
        f"{base_url}/healthz not 200 within {STARTUP_DEADLINE_S}s ({last_error}):\n"
        f"{log_path.read_text(errors='replace')}"
    )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def external_stack() -> bool:
    return bool(os.environ.get("E2E_BASE_URL"))


@pytest.fixture(scope="session")
def base_url(external_stack: bool, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if external_stack:
        yield os.environ["E2E_BASE_URL"].rstrip("/")
        return

    db_name = f"e2e_{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "DATABASE_URL": _db_url(db_name),
        "DJANGO_SETTINGS_MODULE": "monolith.config.settings.local",
        "DJANGO_DEBUG": "0",
        "PYTHONUNBUFFERED": "1",
    }
    log_dir = tmp_path_factory.mktemp("monolith")
    log_path = log_dir / "server.log"

    _admin_execute(f'CREATE DATABASE "{db_name}"')
    proc = None
    try:
        migrate = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{migrate.stdout}\n{migrate.stderr}")

        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "monolith.config.wsgi",
                    "-b",
                    f"127.0.0.1:{port}",
                    "-w",
                    "2",
                    "--no-control-socket",
                ],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait_healthy(url, proc, log_path)
        yield url
    finally:
        if proc is not None:
            _stop(proc)
        _admin_execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def expected_components(external_stack: bool) -> tuple[str, ...]:
    """Which X-Served-By values a badge may show on this stack."""
    return KNOWN_COMPONENTS if external_stack else ("monolith",)


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
