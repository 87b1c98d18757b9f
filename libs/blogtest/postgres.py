"""Throw-away PostgreSQL databases, made for one test or stack and dropped
afterwards. ``TEST_PG_ADMIN_URL`` names the server and a database to connect
to while creating them (as a role that may create databases and roles);
unset, the server of ``DATABASE_URL`` when that is a PostgreSQL URL (what CI
sets for every suite), else the local one (trust auth).

``fresh_database`` is reached with the admin's login; ``owned_database``
with a login role of its own that can reach nothing else (what an app of a
test stack gets: least privilege, as in production)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql


def _admin_url() -> str:
    if os.environ.get("TEST_PG_ADMIN_URL"):
        return os.environ["TEST_PG_ADMIN_URL"]
    database = os.environ.get("DATABASE_URL", "")
    if database.startswith(("postgres://", "postgresql://")):
        return database.rsplit("/", 1)[0] + "/postgres"
    return "postgresql://postgres@127.0.0.1:5432/postgres"


PG_ADMIN_URL = _admin_url()


def database_url(name: str) -> str:
    """The URL of database ``name`` on the admin URL's server."""
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def _admin(statement: sql.Composable) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(statement)


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """A new, empty database ``<prefix>_<hex>``; dropped afterwards. Yields its URL."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    _admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield database_url(name)
    finally:
        _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def owned_database(prefix: str) -> Iterator[str]:
    """A new, empty database ``<prefix>_<hex>`` and a new LOGIN role of the
    same name with a random password, its owner (so that the app's
    migrations, run as that role, may create its tables); CONNECT and TEMP
    are revoked from PUBLIC, so no other role but a superuser can open it,
    and the role is neither superuser nor allowed to create databases or
    roles. Yields the URL that logs in as the role; drops both afterwards.

    (A server that trusts local connections, as the development one does,
    checks no password: the role still reaches only its own database.)"""
    name = f"{prefix}_{secrets.token_hex(6)}"
    password = secrets.token_urlsafe(24)
    role = sql.Identifier(name)
    _admin(
        sql.SQL(
            "CREATE ROLE {} LOGIN PASSWORD {} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION"
        ).format(role, sql.Literal(password))
    )
    try:
        _admin(sql.SQL("CREATE DATABASE {} OWNER {}").format(role, role))
        try:
            _admin(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(role))
            yield login_url(database_url(name), name, password)
        finally:
            _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(role))
    finally:
        _admin(sql.SQL("DROP ROLE IF EXISTS {}").format(role))


def login_url(url: str, user: str, password: str | None = None) -> str:
    """``url`` logging in as ``user`` (with ``password``)."""
    parts = urlsplit(url)
    login = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"{login}@{host}", parts.path, parts.query, ""))


def on_database(url: str, name: str) -> str:
    """``url``'s login and server, on database ``name`` instead (e.g. to show
    that one app's credentials do not open another's database)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(name, safe=""), parts.query, ""))


def another_session(django_connection, *, autocommit: bool = True) -> psycopg.Connection:
    """A second session on the database of a Django connection (the test
    database), e.g. to hold a lock the code under test must wait for. The
    caller closes it."""
    params = django_connection.get_connection_params()
    return psycopg.connect(
        dbname=params["dbname"],
        user=params.get("user"),
        host=params.get("host"),
        port=params.get("port"),
        password=params.get("password") or None,
        autocommit=autocommit,
    )
