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


@contextmanager
def running(processes: list[Process], log_dir: Path) -> Iterator[dict[str, subprocess.Popen]]:
    """Starts ``processes`` in order, each after the previous one is ready."""
    started: dict[str, subprocess.Popen] = {}
    logs: dict[str, Path] = {}
    try:
        for spec in processes:
            log_path = log_dir / f"{spec.name}.log"
            logs[spec.name] = log_path
            with log_path.open("wb") as log:
                started[spec.name] = subprocess.Popen(
                    spec.command,
                    cwd=spec.cwd,
                    env={**os.environ, "PYTHONUNBUFFERED": "1", **spec.env},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            _wait(spec, started[spec.name], log_path)
        yield started
    finally:
        for name in reversed(list(started)):
            _stop(started[name])


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
