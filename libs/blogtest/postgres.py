"""Throw-away PostgreSQL databases, made for one test or stack and dropped
afterwards. ``TEST_PG_ADMIN_URL`` names the server and a database to connect
to while creating them; unset, the server of ``DATABASE_URL`` when that is a
PostgreSQL URL (what CI sets for every suite), else the local one (trust
auth)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

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
