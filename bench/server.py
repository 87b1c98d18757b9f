"""The monolith under measurement: a throwaway PostgreSQL database, Django's
environment with the production settings, ``manage.py``, and gunicorn
serving it (sync workers, as in production)."""

from __future__ import annotations

import os
import secrets
import string
import subprocess
import time
from pathlib import Path

import psycopg
import requests
from common import PYTHON, ROOT, fail
from psycopg import sql

from blogtest import processes

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SETTINGS = "monolith.config.settings.production"


# ---------------------------------------------------------------- database


def database_url(server_url: str, name: str) -> str:
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{name}"


def create_database(server_url: str, name: str) -> str:
    """Creates ``name`` afresh (dropped first if left over); returns the server's version."""
    try:
        with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return conn.execute("SHOW server_version").fetchone()[0]
    except psycopg.OperationalError as exc:
        fail(f"cannot reach PostgreSQL at {server_url} ({exc}); start it or pass --server-url")


def vacuum_analyze(db_url: str) -> None:
    """What autovacuum would do within a minute of the load anyway: fresh
    statistics and a visibility map (index-only scans). Done up front so that
    it does not happen in the middle of a measurement."""
    with psycopg.connect(db_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute("VACUUM (ANALYZE)")


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


# ---------------------------------------------------------------- Django and gunicorn


def django_env(db_url: str) -> dict[str, str]:
    env = dict(os.environ)
    for inherited in (
        "DJANGO_DEBUG",
        "DJANGO_SECURE_SSL_REDIRECT",
        "WEB_CONCURRENCY",
        "GUNICORN_CMD_ARGS",
    ):
        env.pop(inherited, None)
    alphabet = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"
    env.update(
        DJANGO_SETTINGS_MODULE=SETTINGS,
        DATABASE_URL=db_url,
        DJANGO_SECRET_KEY="".join(secrets.choice(alphabet) for _ in range(50)),
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        # Plain HTTP on loopback: no redirect to https.
        DJANGO_SECURE_SSL_REDIRECT="0",
        # The monolith's own access log (one JSON line per request) is off, as
        # is gunicorn's: the figures measure serving, not logging.
        ACCESS_LOG="0",
        PYTHONUNBUFFERED="1",
    )
    return env


def manage(env: dict[str, str], *args: str, show_output: bool = False) -> None:
    completed = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=False,
        **({} if show_output else {"capture_output": True, "text": True}),
    )
    if completed.returncode != 0:
        details = "" if show_output else f":\n{completed.stdout}{completed.stderr}"
        fail(f"manage.py {' '.join(args)} exited with {completed.returncode}{details}")


class Gunicorn:
    def __init__(self, *, env: dict[str, str], port: int, workers: int, workdir: Path) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = workdir / "gunicorn.log"
        # An empty config file, so a gunicorn.conf.py in the checkout (meant
        # for containers) cannot change what is measured.
        config = workdir / "gunicorn.conf.py"
        config.write_text("")
        self.command = [
            PYTHON, "-m", "gunicorn", "monolith.config.wsgi",
            "--config", str(config),
            "--workers", str(workers),
            "--worker-class", "sync",
            "--bind", f"127.0.0.1:{port}",
            "--no-control-socket",
            "--limit-request-line", "8190",  # as every launcher of the apps
            # No --access-logfile: gunicorn's access log stays off.
            "--error-logfile", "-",
            "--log-level", "warning",
        ]  # fmt: skip
        self.env = env
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self._log = self.log_path.open("wb")
        # Its own session: Ctrl-C reaches only us, and we stop it in order.
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def wait_healthy(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                fail(f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        fail(f"gunicorn did not answer /healthz within {timeout_s:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Its whole process group: terminated, then killed if it lingers."""
        if self.process is None:
            return
        try:
            processes.stop(self.process)
        finally:
            self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
