"""Settings shared by every environment of the posts service.

Every external address comes from the environment with a safe local default
(12-factor). ``local``, ``test`` and ``production`` refine this module. The
HTTP contract's plumbing (middleware, DRF setup, logging, OpenAPI) comes from
``blogweb``, shared with the other services, so no service drifts from it.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from blogweb.internal import internal_settings
from blogweb.settings import (
    CONTRACT_MIDDLEWARE,
    contract_rest_framework,
    database_from_env,
    env_bool,
    env_list,
    env_seconds,
    logging_config,
    spectacular_settings,
)

SERVICE_DIR = Path(__file__).resolve().parents[2]
REPO_ROOT = SERVICE_DIR.parents[1]
# All state of the embedded profile lives under the repo's .data/.
DATA_DIR = Path(os.environ.get("DATA_DIR", REPO_ROOT / ".data"))

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-local-only-key-never-use-in-production")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

# The component name every response carries in X-Served-By.
SERVED_BY = "posts"
# What /readyz checks. Not the comments service: a posts pod taken out of
# rotation because comments is down would turn one outage into two, and
# POST, DELETE and the internal route keep working without it.
READINESS_CHECKS = {"database": "blogweb.health.check_database"}

INSTALLED_APPS = [
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # The event bus (libs/blogbus): the outbox of post events, the inbox of
    # comment events, and the bus_declare / bus_consume / bus_replay_dead commands.
    "blogbus.outbox",
    "blogbus.inbox",
    "blogbus.bus",
    "posts",
]

MIDDLEWARE = [
    *CONTRACT_MIDDLEWARE,
    "django.middleware.security.SecurityMiddleware",
    # Serves the Swagger UI assets (drf-spectacular-sidecar): /api/docs/ works offline.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "posts_service.urls"
WSGI_APPLICATION = "posts_service.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

# The service's own database, never the monolith's: SQLite under .data/ on
# the embedded profile, PostgreSQL (database "posts") through DATABASE_URL.
DATABASES = {"default": database_from_env(f"sqlite:///{DATA_DIR / 'posts.sqlite3'}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# /api/posts is answered like /api/posts/ by the contract middleware;
# APPEND_SLASH would redirect and drop a POST body.
APPEND_SLASH = False

REQUEST_BODY_MAX_BYTES = 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_BODY_MAX_BYTES

STATIC_URL = "/static/"
STATIC_ROOT = SERVICE_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = contract_rest_framework()
SPECTACULAR_SETTINGS = {
    **spectacular_settings(
        "Blog API",
        "The public HTTP contract of the blog, identical in every refactoring stage. At "
        "stage 4 the posts service serves this document; the comment routes in it come "
        "from the comments service.",
    ),
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "posts.openapi.add_comment_routes",
    ],
    # Operations tagged "posts" as in the monolith's document, although the
    # (undocumented) /internal/ routes make "/" the common prefix.
    "SCHEMA_PATH_PREFIX": r"/api",
}
LOGGING = logging_config()

# --- The comments service -------------------------------------------------
# Where comment_count comes from: "async" (the default, as `make up` and the
# deployments run it) reads the counter this service keeps from
# comment.created / comment.deleted events (posts/events.py, run by
# `manage.py bus_consume --service posts`), one query per page; "sync" asks
# the comments service, one batch call per page.
COMMENT_COUNTS = os.environ.get("COMMENT_COUNTS", "async").strip().lower()
if COMMENT_COUNTS not in ("sync", "async"):
    raise ImproperlyConfigured(f"COMMENT_COUNTS={COMMENT_COUNTS!r}: 'sync' or 'async'")
COMMENTS_URL = os.environ.get("COMMENTS_URL", "http://127.0.0.1:8002").rstrip("/")
# Per attempt, in seconds; with the one retry a dead or hung comments service
# costs at most about twice this before the JSON 503.
try:
    COMMENTS_TIMEOUT_S = env_seconds("COMMENTS_TIMEOUT_S", 0.5, old="COMMENTS_TIMEOUT")
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None
if not 0 < COMMENTS_TIMEOUT_S <= 1:
    raise ImproperlyConfigured("COMMENTS_TIMEOUT_S must be a number of seconds in (0, 1]")
# The /internal/ routes: this service's token for its calls to the comments
# service, and the callers it accepts on its own (blogweb.internal;
# INTERNAL_TOKEN, INTERNAL_CALLERS).
globals().update(internal_settings())

# --- The event bus (RabbitMQ topic exchange blog.events) -------------------
# Post events go out through the outbox in both modes (they are facts; the
# consumers decide what to do with them): `manage.py outbox_relay`.
BLOGBUS_BROKER_URL = os.environ.get("BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
# What `manage.py bus_consume --service posts` applies (each in the inbox
# transaction). Declare the queue first: `bus_declare --service posts
# --key comment.created --key comment.deleted`.
BLOGBUS_CONSUMERS = {
    "posts": {
        "comment.created": "posts.events.on_comment_created",
        "comment.deleted": "posts.events.on_comment_deleted",
    },
}
