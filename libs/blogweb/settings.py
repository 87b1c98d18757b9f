"""Settings helpers shared by the monolith and the services (12-factor: every
external address from the environment with a safe local default)."""

from __future__ import annotations

import logging
import math
import os
import secrets
import warnings
from pathlib import Path

import dj_database_url

logger = logging.getLogger("blogweb.settings")

CONTRACT_MIDDLEWARE = [
    "blogweb.middleware.RequestIdMiddleware",
    "blogweb.middleware.AccessLogMiddleware",
    "blogweb.middleware.ApiJsonErrorsMiddleware",
    "blogweb.middleware.RequestBodyLimitMiddleware",
    "blogweb.middleware.ApiTrailingSlashMiddleware",
    "blogweb.internal.InternalCallerMiddleware",  # [stage 2]
]


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_seconds(name: str, default: float, *, old: str | None = None) -> float:
    """A duration in seconds from the variable ``name`` (whose name ends in
    ``_S``: the unit is in the name). ``old`` is the name the variable had
    before it said its unit: still read for one release, when ``name`` is
    unset, with a DeprecationWarning and a warning on the log; ``name`` wins
    when both are set. Unset or empty: ``default``. Not a number: ValueError
    naming the variable."""
    chosen, value = name, os.environ.get(name, "").strip()
    if old is not None and os.environ.get(old, "").strip():
        if value:
            message = f"{old} is ignored ({name} is set); unset {old}, a deprecated name"
        else:
            chosen, value = old, os.environ[old].strip()
            message = f"{old} is deprecated and read for one more release; set {name} instead"
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        logger.warning(message)
    if not value:
        return float(default)
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{chosen} must be a number of seconds, not {value!r}") from None


def database_from_env(default_url: str) -> dict:
    """DATABASE_URL selects the database; unset means ``default_url``."""
    url = os.environ.get("DATABASE_URL") or default_url
    config = dj_database_url.parse(
        url,
        conn_max_age=int(env_seconds("DB_CONN_MAX_AGE_S", 60, old="DB_CONN_MAX_AGE")),
        # Django's default: no ping before reusing a connection (a round trip
        # per request). After a database restart each worker answers one
        # request with a 503, drops the broken connection and reconnects.
        conn_health_checks=env_bool("DB_CONN_HEALTH_CHECKS", False),
    )
    if config["ENGINE"] == "django.db.backends.postgresql":
        options = config.setdefault("OPTIONS", {})
        # A dead database must give a fast 503, not a hang. libpq takes whole
        # seconds (0 would mean no limit): a fraction is rounded up.
        options["connect_timeout"] = math.ceil(
            env_seconds("DB_CONNECT_TIMEOUT_S", 2, old="DB_CONNECT_TIMEOUT")
        )
        # Parameters sent apart from the SQL text: psycopg then prepares the
        # statements a connection repeats, and PostgreSQL stops parsing and
        # planning them on every request.
        options["server_side_binding"] = env_bool("DB_SERVER_SIDE_BINDING", True)
    elif config["ENGINE"] == "django.db.backends.sqlite3":
        Path(config["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        config["CONN_MAX_AGE"] = 0
        # The embedded profile runs web, relay and consumer processes on one file. A
        # transaction that reads and then writes (the relay's claim) cannot wait for
        # the lock in SQLite's default mode ("database is locked" at once); IMMEDIATE
        # takes it at BEGIN and waits up to `timeout`. WAL lets readers run meanwhile.
        options = config.setdefault("OPTIONS", {})
        options.setdefault("transaction_mode", "IMMEDIATE")
        options.setdefault("timeout", 20)
        options.setdefault("init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
    return config


def test_database_name(name: str) -> str:
    """The name of this test run's database: ``test_<name>_<run>``, where the
    run id (``TEST_RUN_ID``, made once per run and inherited by every process
    the run starts) keeps two runs on one server from meeting."""
    run = os.environ.setdefault("TEST_RUN_ID", secrets.token_hex(4))
    return f"test_{name}_{run}"


def contract_rest_framework() -> dict:
    return {
        "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
        "DEFAULT_PARSER_CLASSES": ["blogweb.parsers.LimitedJSONParser"],
        "DEFAULT_AUTHENTICATION_CLASSES": [],
        "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
        "UNAUTHENTICATED_USER": None,
        "EXCEPTION_HANDLER": "blogweb.exceptions.api_exception_handler",
        "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
        "DEFAULT_PAGINATION_CLASS": "blogweb.pagination.ContractPagination",
        "PAGE_SIZE": 20,
    }


def spectacular_settings(title: str, description: str) -> dict:
    return {
        "TITLE": title,
        "DESCRIPTION": description,
        "VERSION": "1.0.0",
        "SERVE_INCLUDE_SCHEMA": False,
        "SWAGGER_UI_DIST": "SIDECAR",
        "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
        "REDOC_DIST": "SIDECAR",
    }


def logging_config() -> dict:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "blogweb.logging.RequestIdFilter"}},
        "formatters": {"json": {"()": "blogweb.logging.JsonFormatter"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "json",
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
        "loggers": {
            # Errors are logged once, by blogweb's exception handling, with the request id.
            "django.request": {"level": "CRITICAL"},
            "django.server": {"level": "WARNING"},
            "blog.access": {"level": "INFO" if env_bool("ACCESS_LOG", True) else "WARNING"},
        },
    }


def production_settings(*, required: tuple[str, ...] = ()) -> dict:
    """What every component runs with in production: secrets and hosts from
    the environment (refusing to start without them), and the security
    settings that `manage.py check --deploy` asks for (HTTPS only: the
    redirect, HSTS, secure cookies). Behind a TLS-terminating proxy that sets
    X-Forwarded-Proto; for plain-HTTP runs (compose, the benchmarks on
    loopback) set DJANGO_SECURE_SSL_REDIRECT=0."""
    from django.core.exceptions import ImproperlyConfigured

    for name in ("DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", *required):
        if not os.environ.get(name, "").strip():
            raise ImproperlyConfigured(f"{name} must be set in production")
    return {
        "DEBUG": False,
        "SECRET_KEY": os.environ["DJANGO_SECRET_KEY"],
        "ALLOWED_HOSTS": env_list("DJANGO_ALLOWED_HOSTS", []),
        # The scheme the client used, as the proxy in front says it. Safe to
        # trust because a component is reachable only through that proxy: the
        # Gateway API/Ingress listener, which terminates TLS and sets
        # X-Forwarded-Proto itself (nothing else is routed to the pods).
        # >>> stage 1: the nginx gateway (and the dev router) in between
        # The gateway behind it passes the edge's value on only when it is exactly
        # http or https, and its own scheme otherwise (gateway/render.py). Where
        # the gateway is the front (compose), a client can only claim https for
        # its own plain connection: it is then not redirected, nothing more.
        # <<< stage 1
        "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
        "SECURE_SSL_REDIRECT": env_bool("DJANGO_SECURE_SSL_REDIRECT", True),
        # Never redirected: the kubelet's probes and the internal calls between
        # components, which come over plain HTTP from inside the cluster.
        "SECURE_REDIRECT_EXEMPT": [r"^healthz$", r"^readyz$", r"^internal/"],
        "SECURE_HSTS_SECONDS": int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", "31536000")),
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": env_bool("DJANGO_SECURE_HSTS_PRELOAD", True),
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "CSRF_TRUSTED_ORIGINS": env_list("DJANGO_CSRF_TRUSTED_ORIGINS", []),
    }
