"""Broker URLs and connections for every part of blogbus.

Two kinds of `BROKER_URL`:

- `amqp://user:password@host:port/vhost`: RabbitMQ (tests, compose,
  Kubernetes, the real profile). Connections ask for publisher confirms.
- `filesystem:///absolute/folder`: the embedded profile's broker, kombu's
  filesystem transport made durable and crash-safe by `blogbus.fsbroker`
  (a publish returns once fsynced, unacked messages survive their consumer,
  queues dead-letter, mandatory publishes are returned). The folder must be
  absolute: every process of the stack shares it.

Everything in blogbus opens its connections through `connection()`, so a
URL works the same for the relays, the consumers, `bus_declare` and
`bus_replay_dead`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import kombu

from blogbus import fsbroker

FILESYSTEM_SCHEME = "filesystem"


def is_filesystem(url: str) -> bool:
    return urlsplit(url).scheme in (FILESYSTEM_SCHEME, fsbroker.ALIAS)


def kombu_url(url: str) -> str:
    """The URL kombu (and Celery) is given: `filesystem://` names blogbus's transport."""
    parts = urlsplit(url)
    if parts.scheme != FILESYSTEM_SCHEME:
        return url
    if parts.netloc or not parts.path.startswith("/") or parts.path == "/":
        raise ValueError(
            f"invalid broker URL {url!r}: a filesystem broker names an absolute folder, "
            "as in filesystem:///home/me/blog/.data/bus"
        )
    return f"{fsbroker.ALIAS}://{parts.path}"


def filesystem_url(folder) -> str:
    """`filesystem:///abs/folder` for a folder (made absolute)."""
    from pathlib import Path

    return f"{FILESYSTEM_SCHEME}://{Path(folder).resolve()}"


def connection(
    url: str, *, connect_timeout: float = 5.0, confirms: bool = True
) -> kombu.Connection:
    """A kombu connection to `url`, with publisher confirms on RabbitMQ."""
    options = {"confirm_publish": True} if confirms and not is_filesystem(url) else {}
    return kombu.Connection(
        kombu_url(url), connect_timeout=connect_timeout, transport_options=options
    )
