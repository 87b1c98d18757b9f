"""A RabbitMQ virtual host of the test's own on the shared broker: its
exchanges and queues cannot meet anyone else's, and it is deleted afterwards.
(The shared broker itself is never stopped; fault tests that stop a broker
start their own node.)"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

BROKER_HOST = os.environ.get("TEST_BROKER_HOST", "127.0.0.1:5672")


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


@contextmanager
def own_vhost(prefix: str = "stack") -> Iterator[str]:
    """Yields the AMQP URL of a fresh vhost (guest may do everything in it)."""
    vhost = f"{prefix}-{secrets.token_hex(6)}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@{BROKER_HOST}/{vhost}"
    finally:
        _rabbitmqctl("delete_vhost", vhost)
