"""Fixtures for the black-box HTTP contract suite.

``CONTRACT_BASE_URL`` set: the suite talks to that server and starts nothing
(stages 1-4: the gateway). Unset: a throw-away PostgreSQL database is created,
migrated, and the monolith is served by gunicorn on a free port for the session.

``CONTRACT_SERVED_BY``: comma-separated values allowed in ``X-Served-By``
(default ``monolith``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.live_server import ServerFailed, fresh_database, gunicorn_monolith

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # also works under --import-mode=importlib
    sys.path.insert(0, str(HERE))

from contract_support import ApiClient  # noqa: E402
from contract_support import poll_until as _poll_until  # noqa: E402

_server_log: dict[str, Path] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "contract: black-box HTTP contract tests (CONTRACT_BASE_URL or a local monolith)"
    )


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    log = _server_log.get("path")
    if not log or not (terminalreporter.stats.get("failed") or terminalreporter.stats.get("error")):
        return
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError as exc:
        lines = [f"(cannot read {log}: {exc})"]
    errors = [
        line for line in lines if "ERROR" in line or "Traceback" in line or "CRITICAL" in line
    ]
    terminalreporter.section(f"contract: server errors ({log})")
    for line in errors[-40:] or ["(no error lines)"]:
        terminalreporter.write_line(line)
    terminalreporter.section("contract: server log, last 30 lines")
    for line in lines[-30:]:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("CONTRACT_BASE_URL", "").strip()
    if external:
        yield external.rstrip("/")
        return
    log_dir = tmp_path_factory.mktemp("contract-server")
    try:
        with (
            fresh_database("contract") as database,
            gunicorn_monolith(database=database, log_dir=log_dir) as server,
        ):
            _server_log["path"] = server.log_path
            yield server.url
    except ServerFailed as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def served_by() -> set[str]:
    raw = os.environ.get("CONTRACT_SERVED_BY", "monolith")
    values = {v.strip() for v in raw.split(",") if v.strip()}
    assert values, "CONTRACT_SERVED_BY is empty"
    return values


@pytest.fixture(scope="session")
def api(base_url: str) -> Iterator[ApiClient]:
    client = ApiClient(base_url)
    yield client
    if os.environ.get("CONTRACT_BASE_URL", "").strip():
        client.cleanup()  # shared server: remove what we created (best effort)
    client.close()


@pytest.fixture(scope="session")
def poll_until():
    """``poll_until(fn, until=bool, timeout=5)``: eventual-consistency helper."""
    return _poll_until


@pytest.fixture
def post(api: ApiClient) -> dict:
    """A fresh post owned by the test."""
    return api.create_post()
