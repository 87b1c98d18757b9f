"""Settings shared by every environment of the monolith.

Every external address comes from the environment with a safe local default
(12-factor). ``local``, ``test`` and ``production`` refine this module.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parents[3]
DATA_DIR = Path(os.environ.get("DATA_DIR", BASE_DIR / ".data"))


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


def database_from_env(default_url: str) -> dict:
    """DATABASE_URL selects the database; unset means ``default_url``."""
    url = os.environ.get("DATABASE_URL") or default_url
    config = dj_database_url.parse(
        url,
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        # Django's default: no ping before reusing a connection (a round trip
        # per request). After a database restart each worker answers one
        # request with a 503, drops the broken connection and reconnects.
        conn_health_checks=env_bool("DB_CONN_HEALTH_CHECKS", False),
    )
    if config["ENGINE"] == "django.db.backends.postgresql":
        options = config.setdefault("OPTIONS", {})
        # A dead database must give a fast 503, not a hang.
        options["connect_timeout"] = int(os.environ.get("DB_CONNECT_TIMEOUT", "2"))
        # Parameters sent apart from the SQL text: psycopg then prepares the
        # statements a connection repeats (the list's three queries), and
        # PostgreSQL stops parsing and planning them on every request.
        options["server_side_binding"] = env_bool("DB_SERVER_SIDE_BINDING", True)
    elif config["ENGINE"] == "django.db.backends.sqlite3":
        Path(config["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        config["CONN_MAX_AGE"] = 0
    return config


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-local-only-key-never-use-in-production")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

# The component name every response carries in X-Served-By.
SERVED_BY = "monolith"

INSTALLED_APPS = [
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "monolith.core",
    "monolith.posts",
    "monolith.comments",
    "monolith.demo",
]

# The monolith's middleware layer, outermost first. Each one is a small,
# readable piece of what a monolith does for every request in one process;
# in the microservices stack each service (and the gateway) repeats it.
MIDDLEWARE = [
    "monolith.core.middleware.RequestIdMiddleware",
    "monolith.core.middleware.AccessLogMiddleware",
    "monolith.core.middleware.ApiJsonErrorsMiddleware",
    "monolith.core.middleware.RequestBodyLimitMiddleware",
    "monolith.core.middleware.ApiTrailingSlashMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "monolith.config.urls"
WSGI_APPLICATION = "monolith.config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

DATABASES = {"default": database_from_env(f"sqlite:///{DATA_DIR / 'monolith.sqlite3'}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# A POST /api/posts without its slash is answered like /api/posts/ by
# ApiTrailingSlashMiddleware; APPEND_SLASH would redirect and drop the body.
APPEND_SLASH = False

# 1 MB for every request body. DRF's parser reads the stream itself, so the
# limit is also enforced by RequestBodyLimitMiddleware and the JSON parser.
REQUEST_BODY_MAX_BYTES = 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_BODY_MAX_BYTES

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# The browser UI (web/) is served at the site root by WhiteNoise: / is
# web/index.html, /app.js is web/app.js. No build step.
WHITENOISE_ROOT = BASE_DIR / "web"
WHITENOISE_INDEX_FILE = True
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["monolith.core.parsers.LimitedJSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "monolith.core.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "monolith.core.pagination.ContractPagination",
    "PAGE_SIZE": 20,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Blog API",
    "DESCRIPTION": (
        "The public HTTP contract of the blog, identical in every refactoring "
        "stage (monolith, facade, comments extracted, events, microservices)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "monolith.core.logging.RequestIdFilter"}},
    "formatters": {"json": {"()": "monolith.core.logging.JsonFormatter"}},
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
        # Errors are logged once, by our exception handling, with the request id.
        "django.request": {"level": "CRITICAL"},
        "django.server": {"level": "WARNING"},
        "monolith.access": {
            "level": "INFO" if env_bool("ACCESS_LOG", True) else "WARNING",
        },
    },
}
