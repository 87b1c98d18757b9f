"""The MongoDB-wire server the tests and the embedded profile run for the
comments (SecantusDB: ``python -m secantus``), started on a free port with a
storage folder of its own, and stopped afterwards."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .ports import free_port
from .processes import Process, running, tcp_ready


def mongo_wire_process(port: int, folder: Path, name: str = "mongodb") -> Process:
    """The server as a Process spec (for `processes.running` with others)."""
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(port),
        "--storage-path", str(folder),
    ]  # fmt: skip
    return Process(name=name, command=command, cwd=folder, ready=tcp_ready(port))


@contextmanager
def mongo_wire_server(folder: Path, port: int | None = None) -> Iterator[str]:
    """A running server storing in ``folder``; yields its ``mongodb://`` URL."""
    port = port or free_port()
    spec = mongo_wire_process(port, folder / "data")
    with running([spec], folder):
        yield f"mongodb://127.0.0.1:{port}"
