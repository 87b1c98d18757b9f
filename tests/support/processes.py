"""Start a group of real processes for a black-box test (services, stores,
a gateway), wait until each answers, and stop them all afterwards."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

from .live_server import tail


class StartFailed(RuntimeError):
    pass


@dataclass
class Process:
    name: str
    command: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    ready: Callable[[], bool] = lambda: True
    deadline_s: float = 30.0


def http_ready(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return requests.get(url, timeout=1, allow_redirects=False).status_code == 200
        except requests.RequestException:
            return False

    return check


def tcp_ready(port: int, host: str = "127.0.0.1") -> Callable[[], bool]:
    def check() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False

    return check


def _spawn(spec: Process, log_path: Path, mode: str = "wb") -> subprocess.Popen:
    with log_path.open(mode) as log:
        return subprocess.Popen(
            spec.command,
            cwd=spec.cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **spec.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@contextmanager
def running(processes: list[Process], log_dir: Path) -> Iterator[dict[str, subprocess.Popen]]:
    """Starts ``processes`` in order, each after the previous one is ready.
    The dict yielded is the one stopped at exit: `restart` replaces entries in it."""
    started: dict[str, subprocess.Popen] = {}
    try:
        for spec in processes:
            log_path = log_dir / f"{spec.name}.log"
            started[spec.name] = _spawn(spec, log_path)
            _wait(spec, started[spec.name], log_path)
        yield started
    finally:
        for name in reversed(list(started)):
            _stop(started[name])


def restart(spec: Process, started: dict[str, subprocess.Popen], log_dir: Path) -> None:
    """Starts ``spec`` again (its log appended) after its process ended or was
    stopped here, in the same dict, so that `running` still stops it at exit."""
    old = started.get(spec.name)
    if old is not None:
        _stop(old)
    log_path = log_dir / f"{spec.name}.log"
    started[spec.name] = _spawn(spec, log_path, mode="ab")
    _wait(spec, started[spec.name], log_path)


def _wait(spec: Process, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + spec.deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StartFailed(f"{spec.name} exited with {process.returncode}:\n{tail(log_path)}")
        if spec.ready():
            return
        time.sleep(0.1)
    raise StartFailed(f"{spec.name} not ready within {spec.deadline_s:g} s:\n{tail(log_path)}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
