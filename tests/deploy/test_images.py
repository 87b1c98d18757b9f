"""The app images at run time, without a Docker engine: each image's CMD
(gunicorn, PORT from the environment) serving the real app with its compose
environment and production settings, and its HEALTHCHECK telling up from
down."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from blogtest.ports import free_port
from blogtest.processes import stop
from tests.deploy.compose import in_the_path
from tests.deploy.dockerfiles import (
    APPS,
    DOCKERFILES,
    ROOT,
    app_dir,
    exec_form,
    image_env,
    instructions,
    last,
)

BIN = Path(sys.executable).parent
PY = sys.executable


@pytest.mark.parametrize("app", APPS)
def test_cmd_serves_and_the_healthcheck_tells_up_from_down(app, tmp_path):
    """The image's CMD (gunicorn, PORT from the environment) serving the real
    app with its compose environment and production settings; the image's
    HEALTHCHECK passes while it runs, also when DJANGO_ALLOWED_HOSTS does not
    list 127.0.0.1, and fails once it is gone."""
    path = DOCKERFILES[app]
    services = in_the_path()
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "BROKER_"))},
        **{k: v for k, v in image_env(path).items() if k != "PATH"},
        **{k: str(v) for k, v in services[app]["environment"].items()},
        "PORT": str(port),
        # Not 127.0.0.1: the probe must name an allowed host itself.
        "DJANGO_ALLOWED_HOSTS": ".blog.example.com,other.example.com",
    }
    if "DATABASE_URL" in env:
        env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    command = exec_form(last(path, "CMD"))
    assert command[0] == "gunicorn"
    command = [str(BIN / "gunicorn"), *command[1:]]
    check = exec_form(last(path, "HEALTHCHECK"))
    assert check[:2] == ["python", "/opt/blog/healthcheck.py"]
    copied = [a.split() for k, a in instructions(path) if k == "COPY" and check[1] in a]
    assert copied, f"{check[1]} is not copied into the image"
    probe = [PY, str(ROOT / copied[0][0])]

    def healthy(**over: str) -> bool:
        probe_env = {**env, **over}
        return subprocess.run(probe, env=probe_env, capture_output=True, timeout=10).returncode == 0

    assert not healthy(), "healthy before the server started"
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        command, cwd=app_dir(path), env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 45
        while not healthy():
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.3)
        # The Host matters: Django refuses one it does not allow.
        assert not healthy(DJANGO_ALLOWED_HOSTS="127.0.0.1")
    finally:
        stop(server, timeout_s=30)
        log.close()
    assert not healthy(), "healthy after the server stopped"
