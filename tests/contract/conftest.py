"""Fixtures for the black-box HTTP contract suite.

``CONTRACT_BASE_URL`` set: the suite talks to that server and starts nothing
(stages 1-4: the gateway). Unset: a throw-away PostgreSQL database is created,
migrated, and the monolith is served by gunicorn on a free port for the session.

``CONTRACT_SERVED_BY``: comma-separated values allowed in ``X-Served-By``
(default ``monolith``).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # also works under --import-mode=importlib
    sys.path.insert(0, str(HERE))

from contract_support import ApiClient  # noqa: E402
from contract_support import poll_until as _poll_until  # noqa: E402

REPO_ROOT = HERE.parents[1]
PG_ADMIN_URL = os.environ.get(
    "CONTRACT_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
STARTUP_DEADLINE = 30.0

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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _db_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def _admin_execute(statement) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(statement)


def _tail(path: Path, lines: int = 200) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(cannot read {path}: {exc})"


@pytest.fixture(scope="session")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("CONTRACT_BASE_URL", "").strip()
    if external:
        yield external.rstrip("/")
        return

    from psycopg import sql

    db_name = f"contract_{secrets.token_hex(6)}"
    _admin_execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db_name)))
    try:
        env = {
            **os.environ,
            "DATABASE_URL": _db_url(db_name),
            "DJANGO_SETTINGS_MODULE": "monolith.config.settings.local",
            "DJANGO_DEBUG": "0",
            "PYTHONUNBUFFERED": "1",
        }
        log_path = tmp_path_factory.mktemp("contract-server") / "server.log"
        migrate = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if migrate.returncode != 0:
            pytest.fail(
                f"migrate failed ({migrate.returncode}):\n{migrate.stdout}\n{migrate.stderr}",
                pytrace=False,
            )

        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [
            sys.executable, "-m", "gunicorn", "monolith.config.wsgi",
            "-b", f"127.0.0.1:{port}", "-w", "2", "--no-control-socket", "--access-logfile", "-",
        ]  # fmt: skip
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
            try:
                deadline = time.monotonic() + STARTUP_DEADLINE
                while True:
                    if proc.poll() is not None:
                        pytest.fail(
                            f"gunicorn exited with {proc.returncode}:\n{_tail(log_path)}",
                            pytrace=False,
                        )
                    try:
                        if (
                            requests.get(
                                url + "/healthz", timeout=2, allow_redirects=False
                            ).status_code
                            == 200
                        ):
                            break
                    except requests.RequestException:
                        pass
                    if time.monotonic() > deadline:
                        pytest.fail(
                            f"/healthz not 200 within {STARTUP_DEADLINE:g}s:\n{_tail(log_path)}",
                            pytrace=False,
                        )
                    time.sleep(0.2)
                _server_log["path"] = log_path
                yield url
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
    finally:
        _admin_execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db_name))
        )


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
