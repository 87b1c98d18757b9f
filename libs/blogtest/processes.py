"""Real processes for a black-box test (servers, stores, workers): start a
group in order, each once it is ready, and stop them all afterwards, a
process group at a time (terminate, then kill)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from .timing import scaled


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
    """Ready once ``url`` answers 200."""

    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - a test's own URL
                return response.status == 200
        except (OSError, urllib.error.URLError):
            return False

    return check


def tcp_ready(port: int, host: str = "127.0.0.1") -> Callable[[], bool]:
    """Ready once something accepts connections on ``port``."""

    def check() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False

    return check


def tail(path: Path, lines: int = 200) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(cannot read {path}: {exc})"


def spawn(spec: Process, log_path: Path, mode: str = "wb") -> subprocess.Popen:
    """Starts ``spec`` in a session (process group) of its own, output to ``log_path``."""
    with log_path.open(mode) as log:
        return subprocess.Popen(
            spec.command,
            cwd=spec.cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **spec.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(spec: Process, process: subprocess.Popen, log_path: Path) -> None:
    limit = scaled(spec.deadline_s)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StartFailed(f"{spec.name} exited with {process.returncode}:\n{tail(log_path)}")
        if spec.ready():
            return
        time.sleep(0.1)
    raise StartFailed(f"{spec.name} not ready within {limit:g} s:\n{tail(log_path)}")


def stop(process: subprocess.Popen, timeout_s: float = 10) -> None:
    """Terminates ``process`` (its whole group, when it leads one), then kills
    what is left after ``timeout_s``."""
    if process.poll() is not None:
        return
    group = _own_group(process)
    _signal(process, group, signal.SIGTERM)
    try:
        process.wait(timeout=scaled(timeout_s))
    except subprocess.TimeoutExpired:
        _signal(process, group, signal.SIGKILL)
        process.wait(timeout=scaled(timeout_s))


def _own_group(process: subprocess.Popen) -> bool:
    try:
        return os.getpgid(process.pid) == process.pid
    except ProcessLookupError:
        return False


def _signal(process: subprocess.Popen, group: bool, signum: int) -> None:
    with suppress(ProcessLookupError):
        if group:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)


@contextmanager
def running(processes: list[Process], log_dir: Path) -> Iterator[dict[str, subprocess.Popen]]:
    """Starts ``processes`` in order, each after the previous one is ready.
    The dict yielded is the one stopped at exit: `restart` replaces entries in it."""
    started: dict[str, subprocess.Popen] = {}
    try:
        for spec in processes:
            log_path = log_dir / f"{spec.name}.log"
            started[spec.name] = spawn(spec, log_path)
            wait_ready(spec, started[spec.name], log_path)
        yield started
    finally:
        for name in reversed(list(started)):
            stop(started[name])


def restart(spec: Process, started: dict[str, subprocess.Popen], log_dir: Path) -> None:
    """Starts ``spec`` again (its log appended) after its process ended or was
    stopped here, in the same dict, so that `running` still stops it at exit."""
    old = started.get(spec.name)
    if old is not None:
        stop(old)
    log_path = log_dir / f"{spec.name}.log"
    started[spec.name] = spawn(spec, log_path, mode="ab")
    wait_ready(spec, started[spec.name], log_path)
