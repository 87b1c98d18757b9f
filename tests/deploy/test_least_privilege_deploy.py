"""Least privilege in the deployment artefacts: no component holds another
component's database or broker credential, nor a data store's administrator.

For every stage and mode, in compose (each env file, and the jobs run by
hand) and in the rendered Kubernetes overlays (each secretKeyRef resolved
against the dev Secrets):

1. every credential a component's containers get (a URL naming a user, a
   password) names that component's own role or user, and opens its own
   database; in Kubernetes it comes from the component's own Secret;
2. no two components share a credential (secret or user name);
3. no component gets a superuser, root or administrator credential: those
   stay with the stores.

And what the stores' init scripts grant, run for real: compose's and the dev
overlay's PostgreSQL init SQL, as the postgres image runs it, on a
throw-away server of the test's own with password authentication; then each
app's role runs its own migrations and opens no other database, and a role
the scripts did not make opens nothing.
# >>> stage 2: the data migrations' reader, and MongoDB
The data migrations' reader SELECTs the monolith's tables and cannot write.
MongoDB: test_least_privilege_mongo.py.
# <<< stage 2
RabbitMQ: test_least_privilege_broker.py.  # [stage 3]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from stages import table
from tests.deploy import compose as compose_file
from tests.deploy import test_k8s as k8s
from tests.deploy.credentials import (
    ADMIN_NAMES,
    READER,  # [stage 2]
    SecretValue,
    compose_component,
    compose_services,
    credentials_in,
    dev_secrets,
    expected_database,
    k8s_component_containers,
    k8s_data,
    owner,
    plain,
    private_postgres,
    store_admins,
    store_pods,
    swap_host,
)
from tests.deploy.dockerfiles import DOCKER, ROOT

# The dev overlay's Secrets that hold a data store's administrator.
STORE_ADMIN_SECRETS = {"postgres-credentials"}
STORE_ADMIN_SECRETS |= {"mongo-credentials"}  # [stage 2]
STORE_ADMIN_SECRETS |= {"rabbitmq-definitions"}  # [stage 3]


def secret_name(who: str) -> str:
    """The Secret that holds ``who``'s credentials: ``<component>-secrets``."""
    return f"{who.replace('_', '-')}-secrets"


# --------------------------------------------------------------------- compose


@pytest.mark.parametrize(("stage_file", "extra"), list(compose_file.stages_and_jobs()))
def test_each_compose_service_holds_only_its_own_components_credentials(stage_file, extra):
    services = compose_file.compose(stage_file, extra)
    admins = store_admins(services)
    assert admins, "the stores' administrator passwords were not found"
    for name, service in services.items():
        component = compose_component(service)
        env = service.get("environment", {})
        found = credentials_in(env)
        if component is None:
            # A store (or the one-shot that writes the broker's users): it may
            # hold the passwords it makes roles from, never a client's URL.
            assert not [c.variable for c in found if c.url], f"{stage_file}: {name}"
            continue
        for credential in found:
            where = f"{stage_file}: {name} {credential.variable}"
            assert credential.url, f"{where}: a bare password (components get URLs)"
            who = owner(component, credential.variable)
            assert credential.user == who, f"{where} names {credential.user}, not {who}"
            assert credential.database == expected_database(credential, who), where
            assert credential.user not in ADMIN_NAMES, f"{where}: an administrator"
            assert credential.secret not in admins, f"{where}: a store's administrator"
        for value in env.values():
            assert not [a for a in admins if a in str(value)], f"{stage_file}: {name}"


def test_no_two_compose_components_share_a_credential():
    """Over every stage, mode and job: each secret and each user name has one owner."""
    secrets: dict[str, set[str]] = {}
    users: dict[str, set[str]] = {}
    admins: set[str] = set()
    for _stage_file, name, service in compose_services():
        admins |= store_admins({name: service})
        component = compose_component(service)
        if component is None:
            continue
        for credential in credentials_in(service.get("environment", {})):
            who = owner(component, credential.variable)
            secrets.setdefault(credential.secret, set()).add(who)
            users.setdefault(credential.user or "", set()).add(who)
    assert users.keys() >= set(table.APPS) - {"gateway"}
    assert {s: o for s, o in secrets.items() if len(o) > 1} == {}
    assert {u: o for u, o in users.items() if len(o) > 1} == {}
    assert not admins & set(secrets), "a component holds a store's administrator password"


# --------------------------------------------------------------------- Kubernetes


def test_each_k8s_container_reads_its_own_components_credentials_from_its_own_secret():
    checked = set()
    for overlay, name, container, env in k8s_component_containers():
        component = k8s.component_of(container)
        for variable, value in env.items():
            where = f"{overlay} {name} {variable}"
            if not isinstance(value, SecretValue):
                assert not credentials_in({variable: value}), f"{where}: a literal credential"
                continue
            assert value.secret not in STORE_ADMIN_SECRETS, f"{where}: {value.secret}"
            for credential in credentials_in({variable: value.value}):
                who = owner(component, variable)
                assert credential.user == who, f"{where} names {credential.user}, not {who}"
                assert value.secret == secret_name(who), f"{where} from {value.secret}"
                assert credential.database == expected_database(credential, who), where
                assert credential.user not in ADMIN_NAMES, where
                checked.add((who, variable))
    assert {who for who, _ in checked} >= {a for a in table.APPS if a != "gateway"}


def test_no_two_k8s_secrets_share_a_credential_and_each_names_its_owner():
    """Each dev Secret's URLs name its own component (or role), its password
    keys are the passwords of its URLs, and no secret or user is in two Secrets."""
    secrets: dict[str, set[str]] = {}
    users: dict[str, set[str]] = {}
    for name, data in dev_secrets().items():
        urls = {k: c for k, v in data.items() for c in credentials_in({k: v}) if c.url}
        for key, value in data.items():
            for credential in credentials_in({key: value}):
                secrets.setdefault(credential.secret, set()).add(name)
                if credential.user:
                    users.setdefault(credential.user, set()).add(name)
                    assert secret_name(credential.user) == name, f"{name}.{key}"
                elif key.endswith("-password"):
                    url = urls[key.removesuffix("-password") + "-url"]
                    assert url.secret == value, f"{name}.{key} is not the password of its URL"
    assert {s: o for s, o in secrets.items() if len(o) > 1} == {}
    assert {u: o for u, o in users.items() if len(o) > 1} == {}


def test_k8s_stores_keep_their_administrators_and_read_only_the_passwords_they_make_roles_from():
    for store, (_container, env) in store_pods().items():
        for value in env.values():
            if isinstance(value, SecretValue) and value.secret not in STORE_ADMIN_SECRETS:
                assert value.key.endswith("-password"), f"{store} reads {value.secret}.{value.key}"
    used = {
        value.secret
        for _overlay, _name, _container, env in k8s_component_containers()
        for value in env.values()
        if isinstance(value, SecretValue)
    }
    assert not used & STORE_ADMIN_SECRETS


# --------------------------------------------------------------------- PostgreSQL, for real


@dataclass(frozen=True)
class SqlServer:
    """A PostgreSQL server as the postgres image makes it: POSTGRES_DB, then
    its init scripts in name order, with the container's environment."""

    name: str
    database: str
    init: tuple[tuple[str, str], ...]  # (file name, SQL)
    env: dict[str, str]


def compose_sql() -> tuple[list[SqlServer], dict[str, str]]:
    """compose's PostgreSQL servers, and each client's URL (by owner)."""
    servers: dict[str, SqlServer] = {}
    clients: dict[str, str] = {}
    for _stage_file, name, service in compose_services():
        env = {k: str(v) for k, v in service.get("environment", {}).items()}
        if str(service.get("image", "")).startswith("postgres:"):
            mounts = [v.split(":") for v in service["volumes"]]
            init = sorted(
                (target.rsplit("/", 1)[1], (DOCKER / source).read_text())
                for source, target, *_ in mounts
                if target.startswith("/docker-entrypoint-initdb.d/")
            )
            servers[name] = SqlServer(name, env["POSTGRES_DB"], tuple(init), env)
        component = compose_component(service)
        for credential in credentials_in(env) if component else ():
            if credential.scheme == "postgresql":
                clients[owner(component, credential.variable)] = credential.url or ""
    return list(servers.values()), clients


def k8s_sql() -> tuple[list[SqlServer], dict[str, str]]:
    """The dev overlay's PostgreSQL (its init ConfigMap as rendered), and the
    URL of each client, as its containers read it."""
    _container, env = store_pods()["postgres"]
    init = tuple(sorted(k8s_data("ConfigMap", "postgres-init").items()))
    server = SqlServer("postgres", plain(env)["POSTGRES_DB"], init, plain(env))
    clients = {}
    for _overlay, _name, container, resolved in k8s_component_containers():
        for credential in credentials_in(plain(resolved)):
            if credential.scheme == "postgresql":
                who = owner(k8s.component_of(container), credential.variable)
                clients[who] = credential.url or ""
    return [server], clients


SQL_SETUPS = {"compose": compose_sql, "k8s": k8s_sql}


def connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, connect_timeout=5, autocommit=True)


def refused(url: str) -> str:
    """Why a connection to ``url`` is refused ("" when it is not)."""
    try:
        connect(url).close()
    except psycopg.OperationalError as exc:
        return str(exc)
    return ""


def with_password(url: str, password: str, user: str | None = None) -> str:
    parts = urlsplit(url)
    netloc = f"{user or parts.username}:{password}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def migrate(app: str, url: str) -> subprocess.CompletedProcess:
    """The app's own schema migrations, as its migrate job runs them, with ``url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env |= {"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": f"{table.APPS[app].settings}.local"}
    return subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT / table.APPS[app].folder, env=env,
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def run_init(pg, servers: list[SqlServer]) -> None:
    with connect(pg.admin_url()) as admin:
        for server in servers:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(server.database)))
    with tempfile.TemporaryDirectory() as folder:
        for server in servers:
            for file_name, text in server.init:
                path = Path(folder) / file_name
                path.write_text(text)
                result = pg.psql(server.database, "-f", str(path), env=server.env)
                assert result.returncode == 0, f"{server.name} {file_name}: {result.stderr}"


@pytest.mark.parametrize("setup", SQL_SETUPS)
def test_the_init_sql_gives_each_role_its_own_database_only(setup):
    servers, clients = SQL_SETUPS[setup]()
    apps = [app for app, spec in table.APPS.items() if spec.sql]
    assert set(apps) <= set(clients), f"{setup}: no URL for {set(apps) - set(clients)}"
    with private_postgres() as pg:
        run_init(pg, servers)
        urls = {who: swap_host(url, "127.0.0.1", pg.port) for who, url in clients.items()}
        with connect(pg.admin_url()) as admin:
            databases = {
                name
                for (name,) in admin.execute(
                    "SELECT datname FROM pg_database "
                    "WHERE NOT datistemplate AND datname <> 'postgres'"
                )
            }
            admin.execute("CREATE ROLE stranger LOGIN PASSWORD 'stranger-password'")
        for app in apps:
            url = urls[app]
            own = url.rsplit("/", 1)[1]
            assert refused(with_password(url, "not-the-password")), f"{setup}: {app}"
            result = migrate(app, url)
            assert result.returncode == 0, (
                f"{setup}: {app} migrates its own database\n{result.stderr}"
            )
            with connect(url) as conn:
                row = conn.execute(
                    "SELECT current_user, rolsuper, rolcreatedb, rolcreaterole, rolbypassrls "
                    "FROM pg_roles WHERE rolname = current_user"
                ).fetchone()
            assert row == (app, False, False, False, False), f"{setup}: {row}"
            for other in databases - {own}:
                why = refused(with_database(url, other))
                assert "permission denied" in why, f"{setup}: {app} opens {other}: {why!r}"
        stranger = with_password(urls[apps[0]], "stranger-password", user="stranger")
        for database in databases:
            why = refused(with_database(stranger, database))
            assert "permission denied" in why, f"{setup}: a stranger opens {database}: {why!r}"
        # >>> stage 2: the data migrations read the monolith's database, and nothing more
        assert READER in urls, f"{setup}: the data migrations have no URL of their own"
        check_reader(setup, urls[READER], databases)
        # <<< stage 2


# >>> stage 2: the data migrations' reader
def check_reader(setup: str, url: str, databases: set[str]) -> None:
    own = url.rsplit("/", 1)[1]
    assert own == "blog_monolith", url
    with connect(url) as conn:
        # The tables the data migrations copy (the monolith's migrations made them).
        for source in ("comments_comment", "posts_post"):
            conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(source)))
        # Read-only sessions; and a read-write one still may not write.
        for statement in (
            "INSERT INTO posts_post (id, title, body, created_at) "
            "VALUES (gen_random_uuid(), 't', 'b', now())",
            "UPDATE posts_post SET title = 'x'",
            "DELETE FROM comments_comment",
            "CREATE TABLE intruder (id int)",
        ):
            for characteristics in ("READ ONLY", "READ WRITE"):
                conn.execute(f"SET SESSION CHARACTERISTICS AS TRANSACTION {characteristics}")
                with pytest.raises(psycopg.errors.Error) as caught:
                    conn.execute(statement)
                assert isinstance(
                    caught.value,
                    psycopg.errors.InsufficientPrivilege | psycopg.errors.ReadOnlySqlTransaction,
                ), f"{setup}: {statement}: {caught.value}"
    for other in databases - {own}:
        why = refused(with_database(url, other))
        assert "permission denied" in why, f"{setup}: the reader opens {other}: {why!r}"


# <<< stage 2
