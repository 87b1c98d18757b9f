"""The monolith as a real process, for black-box tests (contract, browser,
system): a throw-away PostgreSQL database, `manage.py migrate`, gunicorn on a
free port. Imports no project code: later stages point the same tests at a
gateway instead (CONTRACT_BASE_URL, E2E_BASE_URL)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from blogtest.ports import free_port
from blogtest.processes import stop, tail
from blogtest.timing import scaled

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_DEADLINE_S = 30.0


class ServerFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class LiveServer:
    url: str
    log_path: Path
    process: subprocess.Popen

    def log_tail(self, lines: int = 200) -> str:
        return tail(self.log_path, lines)


def monolith_env(database: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database,
        "DJANGO_SETTINGS_MODULE": "monolith.config.settings.local",
        "DJANGO_DEBUG": "0",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def wait_until_healthy(server: LiveServer, deadline_s: float = STARTUP_DEADLINE_S) -> None:
    deadline_s = scaled(deadline_s)
    deadline = time.monotonic() + deadline_s
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerFailed(
                f"server exited with {server.process.returncode} during start-up:\n"
                f"{server.log_tail()}"
            )
        try:
            response = requests.get(f"{server.url}/healthz", timeout=2, allow_redirects=False)
            if response.status_code == 200:
                return
            last_error = f"HTTP {response.status_code}"
        except requests.RequestException as exc:
            last_error = str(exc)
        time.sleep(0.1)
    raise ServerFailed(
        f"{server.url}/healthz not 200 within {deadline_s:g} s ({last_error}):\n{server.log_tail()}"
    )


@contextmanager
def gunicorn_monolith(
    *, database: str, log_dir: Path, workers: int = 2, migrate: bool = True
) -> Iterator[LiveServer]:
    """The monolith under gunicorn (sync workers) on a free loopback port."""
    env = monolith_env(database)
    if migrate:
        result = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if result.returncode != 0:
            raise ServerFailed(f"migrate failed:\n{result.stdout}\n{result.stderr}")
    port = free_port()
    log_path = log_dir / "server.log"
    command = [
        sys.executable, "-m", "gunicorn", "monolith.config.wsgi",
        "-b", f"127.0.0.1:{port}", "-w", str(workers), "--no-control-socket",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    server = LiveServer(url=f"http://127.0.0.1:{port}", log_path=log_path, process=process)
    try:
        wait_until_healthy(server)
        yield server
    finally:
        stop(process)
