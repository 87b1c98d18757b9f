"""Settings shared by every environment of the comments service.

Every external address comes from the environment with a safe local default
(12-factor). ``local``, ``test`` and ``production`` refine this module. The
service's data lives in MongoDB behind comments.repository; Django's ORM holds
nothing, so there is no database here.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured  # [stage 3]

from blogweb.internal import internal_settings
from blogweb.settings import (
    CONTRACT_MIDDLEWARE,
    contract_rest_framework,
    env_bool,
    env_list,
    env_seconds,
    logging_config,
    spectacular_settings,
)

BASE_DIR = Path(__file__).resolve().parents[2]

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-local-only-key-never-use-in-production")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

# The component name every response carries in X-Served-By.
SERVED_BY = "comments"

INSTALLED_APPS = [
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # >>> stage 3: events: the bus's management commands
    # bus_declare / bus_consume / bus_replay_dead (no blogbus.inbox: no SQL database)
    "blogbus.bus",
    # <<< stage 3
    "comments",
]

MIDDLEWARE = [
    *CONTRACT_MIDDLEWARE,
    "django.middleware.security.SecurityMiddleware",
    # Serves Swagger UI's files (drf-spectacular-sidecar) without a CDN.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "comments_service.urls"
WSGI_APPLICATION = "comments_service.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

# No ORM data: comments live in MongoDB (MONGO_URL), reached only through
# comments/repository.py.
DATABASES: dict = {}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# POST /api/posts/<id>/comments without its slash is answered like the path
# with it by ApiTrailingSlashMiddleware; APPEND_SLASH would redirect and drop
# the body.
APPEND_SLASH = False

REQUEST_BODY_MAX_BYTES = 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_BODY_MAX_BYTES

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = contract_rest_framework()
SPECTACULAR_SETTINGS = spectacular_settings(
    "Blog API: comments service",
    "The comment routes of the blog's public HTTP contract, served by the comments "
    "service (MongoDB). The same contract as every other stage.",
)
LOGGING = logging_config()

# MongoDB. Short timeouts: a dead server must give a fast 503, never a hang.
MONGO_URL = os.environ.get("MONGO_URL", "mongodb://127.0.0.1:27017")
MONGO_DB = os.environ.get("MONGO_DB", "comments")
MONGO_TIMEOUT_MS = int(os.environ.get("MONGO_TIMEOUT_MS", "1000"))
# pymongo rechecks an unreachable server at most every 500 ms, so a selection
# timeout of T fails after up to T + 0.5 s: 500 ms keeps a dead MongoDB's 503
# within about a second.
MONGO_SERVER_SELECTION_TIMEOUT_MS = int(os.environ.get("MONGO_SERVER_SELECTION_TIMEOUT_MS", "500"))

# The owner of posts, asked over HTTP whether a post exists (comments/posts_client.py).
POSTS_URL = os.environ.get("POSTS_URL", "http://127.0.0.1:8001").rstrip("/")
# Per attempt; with the one retry an owner of posts that hangs costs about 1 s.
POSTS_TIMEOUT_S = env_seconds("POSTS_TIMEOUT_S", 0.5)
# The /internal/ routes: this service's token for its calls to the owner of
# posts, and the callers it accepts on its own (blogweb.internal;
# INTERNAL_TOKEN, INTERNAL_CALLERS).
globals().update(internal_settings())
# >>> stage 3: events: the replica of posts as a second way of knowing them
# How the service learns whether a post exists: "async" (the default: the
# mode `make up` and the deployments run with events; where a stage calls
# instead, they say "sync") reads a local replica fed by post events
# (comments.events), reading through to the owner of posts on a miss; "sync"
# asks the owner of posts over HTTP every time.
POST_LOOKUP = os.environ.get("POST_LOOKUP", "async").strip().lower()
if POST_LOOKUP not in {"sync", "async"}:
    raise ImproperlyConfigured(f"POST_LOOKUP must be sync or async, not {POST_LOOKUP!r}")
# <<< stage 3

READINESS_CHECKS = {"mongodb": "comments_service.readiness.check_mongodb"}

# >>> stage 3: events: producer and consumer
# Events (blogbus). Producer: comment.created, stored in the comment document
# and published by `manage.py comments_outbox_relay`. Consumer: `manage.py
# bus_consume --service comments` applies the post events to the replica.
BLOGBUS_BROKER_URL = os.environ.get("BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
BLOGBUS_EXCHANGE = os.environ.get("BLOGBUS_EXCHANGE", "blog.events")
EVENT_SOURCE = "/services/comments"
# No SQL database, so no blogbus inbox: the handlers are idempotent by
# construction in MongoDB (upserts keyed by id, tombstones, delete_many).
BLOGBUS_INBOX = False
BLOGBUS_CONSUMERS = {
    "comments": {
        "post.created": "comments.events.on_post_created",
        "post.deleted": "comments.events.on_post_deleted",
    },
}
# <<< stage 3
