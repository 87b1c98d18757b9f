"""A RabbitMQ virtual host of the test's own on the shared broker: its
exchanges and queues cannot meet anyone else's, and it is deleted afterwards;
and in it, a user of its own for each app of a stack, allowed only what the
app's part of the bus needs. (The shared broker itself is never stopped;
fault tests that stop a broker start their own node.)"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from blogbus.testing import service_grant, temporary_users, temporary_vhost
from blogtest.ports import free_port
from blogtest.processes import stop, tcp_ready
from blogtest.timing import wait_until

BROKER_HOST = os.environ.get("TEST_BROKER_HOST", "127.0.0.1:5672")


@contextmanager
def own_vhost(prefix: str = "stack") -> Iterator[str]:
    """Yields the AMQP URL of a fresh vhost (guest may do everything in it)."""
    with temporary_vhost(f"amqp://guest:guest@{BROKER_HOST}//", prefix) as url:
        yield url


@contextmanager
def own_users(
    vhost_url: str, roles: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]], prefix: str
) -> Iterator[dict[str, str]]:
    """A user of its own in ``vhost_url``'s vhost for each app of ``roles``
    (app -> (the routing keys its consumer binds, the event types it
    publishes)), allowed only that (`blogbus.testing.service_grant`; an
    app's consumer is named after it, as `bus_consume --service <app>`).
    Yields app -> its AMQP URL; the users are deleted afterwards."""
    grants = {
        app: service_grant(app, consumes=consumes, publishes=publishes)
        for app, (consumes, publishes) in roles.items()
    }
    with temporary_users(vhost_url, grants, prefix) as urls:
        yield urls


class PrivateBroker:
    """A RabbitMQ node of the test's own (its own port, name and data folder),
    for the fault tests that stop a broker: the shared one is never touched.
    Durable queues and persistent messages survive a stop and a start."""

    def __init__(self, folder) -> None:
        self.folder = folder
        self.port, self.dist_port = free_port(), free_port()
        self.node = f"rtest{secrets.token_hex(4)}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        for sub in ("mnesia", "log"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        (folder / "enabled_plugins").write_text("[].\n")
        (folder / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\nloopback_users = none\n"
        )
        (folder / "env.conf").write_text("")
        # The Debian wrapper runs the node as the rabbitmq user.
        subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(folder)], check=True, timeout=30)
        self.process = None

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "RABBITMQ_CONF_ENV_FILE": str(self.folder / "env.conf"),
            "RABBITMQ_CONFIG_FILE": str(self.folder / "rabbitmq.conf"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.folder / "pid"),
        }

    def start(self, deadline_s: float = 60) -> None:
        log = (self.folder / "server.log").open("ab")
        self.process = subprocess.Popen(
            ["rabbitmq-server"], env=self.env(), stdout=log, stderr=subprocess.STDOUT
        )

        def listening() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"private RabbitMQ exited: see {self.folder}/server.log")
            return tcp_ready(self.port)()

        wait_until(
            listening, timeout_s=deadline_s, what="the private RabbitMQ node", interval_s=0.2
        )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        subprocess.run(
            ["rabbitmqctl", "-n", self.node, "stop"], capture_output=True, timeout=60, check=False
        )
        stop(self.process, timeout_s=30)


@contextmanager
def private_broker() -> Iterator[PrivateBroker]:
    """The node's folder is made under /tmp, not in pytest's private tmp dir:
    the node runs as the rabbitmq user, who must reach it."""
    import shutil
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp(prefix="blog-rabbitmq-"))
    broker = PrivateBroker(folder)
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(folder, ignore_errors=True)
