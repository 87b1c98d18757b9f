"""The RabbitMQ users of the blog, as definitions files the broker loads at boot.

One user per component that touches the broker, each limited by regular
expressions to its own names (RabbitMQ's configure / write / read
permissions, and topic permissions on ``blog.events`` for the event types it
may publish and bind), so that no component can read, feed or rebind another
one's queue through its own credential:

- a component's consumer declares its own queue ``<c>.blog-events`` and its
  dead-letter queue (and the two exchanges), binds it by the event types it
  consumes, consumes it and re-queues a retry through the default exchange;
  Celery, which runs the consumer, has its own exchanges and queues, all
  named after the component (``libs/blogbus/bus/worker.py``);
- its outbox relay publishes the event types it owns to ``blog.events``.

``topology`` is the credential of compose's ``bus_declare`` one-shots, which
declare the *consumers'* queues before a relay publishes: it may declare and
bind the blog's event queues, and neither publish nor take other names.
``admin`` (the ``administrator`` tag, everything on ``/``) is for a person
at the management UI; no component gets it.

Each user is written to ``<out>/<user>.json`` with its vhost, permissions
and a salted SHA-256 hash of its password (RabbitMQ's
``rabbit_password_hashing_sha256``): no password is written in clear. Point
RabbitMQ's ``load_definitions`` at the folder: it imports every file at each
boot, and then seeds no default user.

    MONOLITH_BROKER_PASSWORD=... COMMENTS_BROKER_PASSWORD=... \\
        python scripts/broker_users.py --out DIR monolith comments

Standard library only: compose runs it in a plain Python image.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

VHOST = "/"
EXCHANGE = "blog.events"  # topic: routing key = event type
DEAD_LETTER_EXCHANGE = "blog.events.dlx"
DEFAULT_EXCHANGE = "amq.default"  # a consumer's retries go back to its own queue this way
HASHING = "rabbit_password_hashing_sha256"


@dataclass(frozen=True)
class Component:
    """A component with events: what its relay publishes, what its consumer binds."""

    name: str
    publishes: tuple[str, ...]
    consumes: tuple[str, ...]


POST_EVENTS = ("post.created", "post.deleted")
COMMENT_EVENTS = ("comment.created", "comment.deleted")
COMPONENTS: dict[str, Component] = {
    "monolith": Component("monolith", publishes=POST_EVENTS, consumes=COMMENT_EVENTS),
    "comments": Component("comments", publishes=COMMENT_EVENTS, consumes=POST_EVENTS),
    "posts": Component("posts", publishes=POST_EVENTS, consumes=COMMENT_EVENTS),  # [stage 4]
}
TOPOLOGY = "topology"
ADMIN = "admin"
# Where each user's password (and the admin's name) comes from.
PASSWORD_ENV = {
    "monolith": ("MONOLITH_BROKER_PASSWORD",),
    "comments": ("COMMENTS_BROKER_PASSWORD",),
    "posts": ("POSTS_BROKER_PASSWORD",),  # [stage 4]
    TOPOLOGY: ("TOPOLOGY_BROKER_PASSWORD",),
    ADMIN: ("RABBITMQ_PASSWORD",),
}
ADMIN_NAME_ENV = ("RABBITMQ_USER", ADMIN)


def queue(component: str) -> str:
    return f"{component}.blog-events"


def dead_letter_queue(component: str) -> str:
    return f"{component}.blog-events.dlq"


def one_of(names: Iterable[str], *patterns: str) -> str:
    """A regex matching exactly ``names`` (escaped) and ``patterns`` (as they are)."""
    alternatives = [re.escape(n) for n in dict.fromkeys(names)] + list(patterns)
    return "^(" + "|".join(alternatives) + ")$" if alternatives else "^$"


def celery_names(component: str) -> tuple[tuple[str, ...], str]:
    """The exchanges and queues the component's Celery worker declares
    (``make_consumer_app``), and the pattern of its remote-control queue
    ``<component>@<host>.blogbus.<component>.pidbox``."""
    names = (
        f"{component}.celery",  # its task queue and exchange
        f"blogbus.{component}.ev",  # its event exchange
        f"blogbus.{component}.pidbox",  # its remote-control exchange
        f"reply.blogbus.{component}.pidbox",  # where it answers remote control
    )
    pidbox = rf"{re.escape(component)}@[^/]+\.blogbus\.{re.escape(component)}\.pidbox"
    return names, pidbox


def component_permissions(component: Component) -> tuple[dict, dict]:
    """(permissions, topic permissions) of a component's user on VHOST."""
    own = (queue(component.name), dead_letter_queue(component.name))
    celery, pidbox = celery_names(component.name)
    exchanges = (EXCHANGE, DEAD_LETTER_EXCHANGE)
    permissions = {
        # Declaring: the two exchanges (idempotent), its queues, Celery's names.
        "configure": one_of([*exchanges, *own, *celery], pidbox),
        # Publishing to blog.events (its own event types, below), a retry to its
        # own queue through the default exchange; binding its queues (write on
        # the queue); declaring its queue with the dead-letter exchange as an
        # argument (write on that exchange).
        "write": one_of([*exchanges, DEFAULT_EXCHANGE, *own, *celery], pidbox),
        # Consuming its queues; binding them (read on the source exchange).
        "read": one_of([*exchanges, *own, *celery], pidbox),
    }
    topic = {
        "exchange": EXCHANGE,
        "write": one_of(component.publishes),
        "read": one_of(component.consumes),
    }
    return permissions, topic


def topology_permissions(components: Iterable[Component]) -> tuple[dict, dict]:
    """(permissions, topic permissions) of the user that declares every
    consumer's queue and bindings, and publishes nothing."""
    components = list(components)
    queues = [name for c in components for name in (queue(c.name), dead_letter_queue(c.name))]
    keys = [key for c in components for key in c.consumes]
    permissions = {
        "configure": one_of([EXCHANGE, DEAD_LETTER_EXCHANGE, *queues]),
        "write": one_of([DEAD_LETTER_EXCHANGE, *queues]),
        "read": one_of([EXCHANGE, DEAD_LETTER_EXCHANGE, *queues]),
    }
    return permissions, {"exchange": EXCHANGE, "write": "^$", "read": one_of(keys)}


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + SHA-256(salt + password))."""
    salt = secrets.token_bytes(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def hash_matches(hashed: str, password: str) -> bool:
    """Whether ``hashed`` (as ``password_hash`` makes it) is the hash of ``password``."""
    raw = base64.b64decode(hashed)
    return hmac.compare_digest(password_hash(password, raw[:4]), hashed)


def definitions(user: str, password: str, *, name: str | None = None) -> dict:
    """The definitions of one user (``name``: its login, the admin's may differ)."""
    login = name or user
    tags: list[str] = []
    if user == ADMIN:
        tags = ["administrator"]
        permissions, topic = {"configure": ".*", "write": ".*", "read": ".*"}, None
    elif user == TOPOLOGY:
        permissions, topic = topology_permissions(COMPONENTS.values())
    elif user in COMPONENTS:
        permissions, topic = component_permissions(COMPONENTS[user])
    else:
        raise ValueError(f"unknown broker user {user!r}: one of {', '.join(PASSWORD_ENV)}")
    found = {
        "vhosts": [{"name": VHOST}],
        "users": [
            {
                "name": login,
                "password_hash": password_hash(password),
                "hashing_algorithm": HASHING,
                "tags": tags,
            }
        ],
        "permissions": [{"user": login, "vhost": VHOST, **permissions}],
    }
    if topic is not None:
        found["topic_permissions"] = [{"user": login, "vhost": VHOST, **topic}]
    return found


def passwords(users: Sequence[str], env: Mapping[str, str]) -> dict[str, str]:
    """Each user's password from ``env`` (PASSWORD_ENV); an unset or empty one is an error."""
    found = {}
    for user in users:
        if user not in PASSWORD_ENV:
            raise ValueError(f"unknown broker user {user!r}: one of {', '.join(PASSWORD_ENV)}")
        variable = PASSWORD_ENV[user][0]
        if not env.get(variable):
            raise ValueError(f"{variable} must be set (the password of broker user {user!r})")
        found[user] = env[variable]
    return found


def write(out: Path, users: Sequence[str], env: Mapping[str, str], owner: str | None) -> None:
    """``<out>/<user>.json`` for each user, readable by its owner (and group) only."""
    secret = passwords(users, env)
    out.mkdir(parents=True, exist_ok=True)
    admin_name = env.get(ADMIN_NAME_ENV[0]) or ADMIN_NAME_ENV[1]
    for user in users:
        name = admin_name if user == ADMIN else user
        path = out / f"{user}.json"
        temporary = path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        with os.fdopen(descriptor, "w") as file:
            json.dump(definitions(user, secret[user], name=name), file, indent=2)
            file.write("\n")
        if owner:
            uid, _, gid = owner.partition(":")
            os.chown(temporary, int(uid), int(gid or uid))
        temporary.replace(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("users", nargs="+", choices=list(PASSWORD_ENV), metavar="USER")
    parser.add_argument("--out", type=Path, required=True, help="folder of the definitions")
    parser.add_argument("--owner", help="UID:GID of the files (the broker's user)")
    args = parser.parse_args(argv)
    try:
        write(args.out, args.users, os.environ, args.owner)
    except ValueError as exc:
        print(f"broker_users: {exc}", file=sys.stderr)
        return 2
    print(f"broker_users: wrote {', '.join(args.users)} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
