"""Fixtures for the black-box HTTP contract suite.

``CONTRACT_BASE_URL`` set: the suite talks to that server and starts nothing.
Unset: stage ``CONTRACT_STAGE`` (default: this checkout's last, as
``make test`` runs it) is started for the session as
real processes (tests/support/harness.py): ``CONTRACT_MODE`` chooses the
stage's mode where it has several, ``CONTRACT_PROFILE`` the runtime profile
(``real``, the default, on PostgreSQL; or ``embedded``, on SQLite files) and,
once there is a gateway, ``CONTRACT_GATEWAY`` which one (``nginx``, the
default, or ``dev``).

``CONTRACT_SERVED_BY``: comma-separated values allowed in ``X-Served-By``
(default: the components of the started stage).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from blogtest.processes import StartFailed
from tests.support.harness import DEFAULT_STAGE, Stack, stage_stack
from tests.support.live_server import ServerFailed

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
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """What the suite talks to: ``CONTRACT_BASE_URL`` if set (nothing is
    started), else stage ``CONTRACT_STAGE`` (default: the checkout's last) started here."""
    external = os.environ.get("CONTRACT_BASE_URL", "").strip()
    if external:
        yield Stack(url=external.rstrip("/"), served_by=frozenset())
        return
    stage = int(os.environ.get("CONTRACT_STAGE", DEFAULT_STAGE))
    options = {
        "mode": os.environ.get("CONTRACT_MODE") or None,  # None: the stage's own
        "profile": os.environ.get("CONTRACT_PROFILE", "real"),
        "gateway": os.environ.get("CONTRACT_GATEWAY", "nginx"),  # [stage 1]
    }
    log_dir = tmp_path_factory.mktemp(f"contract-stage{stage}")
    try:
        with stage_stack(stage, log_dir=log_dir, **options) as started:
            # The log of the app behind the post routes.
            _server_log["path"] = log_dir / "monolith.log"
            if "monolith" not in started.served_by:  # [stage 4]
                _server_log["path"] = log_dir / "posts.log"  # [stage 4]
            yield started
    except (ServerFailed, StartFailed) as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def base_url(stack: Stack) -> str:
    return stack.url


@pytest.fixture(scope="session")
def served_by(stack: Stack) -> set[str]:
    """The X-Served-By values allowed: ``CONTRACT_SERVED_BY`` (comma-separated)
    if set, else the components of the stage that was started."""
    raw = os.environ.get("CONTRACT_SERVED_BY", "")
    values = {v.strip() for v in raw.split(",") if v.strip()} or set(stack.served_by)
    assert values, "CONTRACT_SERVED_BY must name the components behind CONTRACT_BASE_URL"
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
