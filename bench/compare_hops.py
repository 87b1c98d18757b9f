"""Network hops per request, counted from the components' logs: a few
requests per endpoint, each with an X-Request-ID of our own, then the log
lines that carry it, component by component.

Where the ids are logged (the harness writes each process's output to
``<log_dir>/<process>.log``): nginx's access log (``gateway/access.log``
under its prefix, ``rid=<id>``), and each app's JSON log, where
blogweb's AccessLogMiddleware writes one line per request with the
``request_id`` (blogweb.logging); the id travels to the next service in the
X-Request-ID of every call (blogweb.http). An event carries it too (the
envelope's ``requestid``), but relays and consumers do not log it: the
asynchronous part of a write is not counted here.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import requests
from common import fail
from compare_figures import hop_counts


def log_files(stack) -> dict[str, list[Path]]:
    """Component -> its log files: every process's output, nginx's access log."""
    files = {name: [stack.log_dir / f"{name}.log"] for name in stack.processes}
    if "gateway" in files:
        files["gateway"].append(stack.log_dir / "gateway" / "access.log")
    return files


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _lines_since(path: Path, offset: int) -> list[str]:
    try:
        with path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace").splitlines()
    except OSError:
        return []


def measure_hops(stack, paths: dict[str, tuple[str, str | None]], label: str, per_endpoint: int):
    """Endpoint -> hop_counts, for ``per_endpoint`` requests each (``paths``:
    endpoint -> (path, JSON body of a POST or None))."""
    files = log_files(stack)
    offsets = {path: _size(path) for group in files.values() for path in group}
    token = secrets.token_hex(3)
    ids: dict[str, list[str]] = {}
    for endpoint, (path, body) in paths.items():
        slug = endpoint.replace(" ", "-")
        ids[endpoint] = []
        for n in range(per_endpoint):
            request_id = f"hops-{label}-{slug}-{n}-{token}"
            response = requests.request(
                "POST" if body else "GET",
                stack.url + path,
                data=body,
                headers={"X-Request-ID": request_id, "Content-Type": "application/json"},
                timeout=10,
            )
            if response.status_code >= 300:
                fail(f"{label} {endpoint}: {response.status_code} while counting hops")
            ids[endpoint].append(request_id)
    time.sleep(0.5)  # nginx logs a request once it is done; give the last one its line
    lines = {
        component: [line for path in group for line in _lines_since(path, offsets[path])]
        for component, group in files.items()
    }
    return {endpoint: hop_counts(lines, endpoint_ids) for endpoint, endpoint_ids in ids.items()}
