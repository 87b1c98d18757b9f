"""For tests of anything that talks to RabbitMQ: a virtual host of the test
session's own on a shared broker, so that its exchanges, queues and messages
meet nobody else's; deleted afterwards. Needs `rabbitmqctl` on the broker's
machine (the project's test machines have it; `.ci/run` starts the broker).
A broker of a test's own, for tests that stop it, is another matter."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, urlsplit, urlunsplit


def _rabbitmqctl(*args: str) -> None:
    # A fixed tool with arguments of our own making.
    subprocess.run(  # noqa: S603
        ["rabbitmqctl", *args],  # noqa: S607
        check=True,
        capture_output=True,
        timeout=60,
    )


@contextmanager
def temporary_vhost(broker_url: str, prefix: str) -> Iterator[str]:
    """Yields ``broker_url`` pointed at a new vhost ``<prefix>-<hex>``."""
    if shutil.which("rabbitmqctl") is None:
        # A test that cannot isolate itself must not pass by doing less.
        raise RuntimeError("rabbitmqctl is needed to make a vhost for the tests")
    base = urlsplit(broker_url)
    vhost = f"{prefix}-{uuid.uuid4().hex[:12]}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, base.username or "guest", ".*", ".*", ".*")
        yield urlunsplit((base.scheme, base.netloc, "/" + quote(vhost, safe=""), "", ""))
    finally:
        _rabbitmqctl("delete_vhost", vhost)
