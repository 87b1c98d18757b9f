"""Settings shared by every environment of the monolith.

Every external address comes from the environment with a safe local default
(12-factor). ``local``, ``test`` and ``production`` refine this module.
"""

from __future__ import annotations

import os
from pathlib import Path

from blogweb.internal import internal_settings  # [stage 2]
from blogweb.settings import (
    CONTRACT_MIDDLEWARE,
    contract_rest_framework,
    database_from_env,
    env_bool,
    env_list,
    env_seconds,  # [stage 2]
    logging_config,
    spectacular_settings,
)

BASE_DIR = Path(__file__).resolve().parents[3]
DATA_DIR = Path(os.environ.get("DATA_DIR", BASE_DIR / ".data"))


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
    "monolith.posts",
    "monolith.comments",
    "monolith.idempotency",
    "monolith.demo",
    # >>> stage 3: the event plumbing (libs/blogbus): outbox, inbox, bus commands
    "blogbus.outbox",
    "blogbus.inbox",
    "blogbus.bus",
    # <<< stage 3
]

# The monolith's middleware layer, outermost first: what a monolith does for
# every request of every app in one process. The contract's part lives in
# libs/blogweb, so that every service of the split runs the very same code.
MIDDLEWARE = [
    # blogweb (libs/): request id, JSON access log, JSON errors under /api/,
    # the 1 MB body limit, /api/posts answered like /api/posts/.
    *CONTRACT_MIDDLEWARE,
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
# limit is enforced by blogweb's RequestBodyLimitMiddleware and JSON parser.
REQUEST_BODY_MAX_BYTES = 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_BODY_MAX_BYTES

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# The browser UI (web/) is served at the site root by WhiteNoise: / is
# web/index.html, /app.js is web/app.js. No build step.
WHITENOISE_ROOT = BASE_DIR / "web"
WHITENOISE_INDEX_FILE = True
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = contract_rest_framework()

SPECTACULAR_SETTINGS = spectacular_settings(
    "Blog API",
    "The public HTTP contract of the blog, identical in every refactoring "
    "stage (monolith, facade, comments extracted, events, microservices).",
)

LOGGING = logging_config()

# >>> stage 2: where comments live (branch by abstraction behind monolith/comments/api.py)
# "local", this database, or "service", the comments service, whose routes
# the gateway then sends there.
COMMENTS_BACKEND = os.environ.get("COMMENTS_BACKEND", "local").strip().lower()
if COMMENTS_BACKEND not in {"local", "service"}:
    raise ValueError(f"COMMENTS_BACKEND must be local or service, not {COMMENTS_BACKEND!r}")
COMMENTS_URL = os.environ.get("COMMENTS_URL", "http://127.0.0.1:8002").rstrip("/")
# Per attempt of a call to the comments service (one retry): seconds.
COMMENTS_TIMEOUT_S = env_seconds("COMMENTS_TIMEOUT_S", 0.5, old="COMMENTS_TIMEOUT")
# The /internal/ routes: this component's token for its calls, and the callers
# it accepts (blogweb.internal; INTERNAL_TOKEN, INTERNAL_CALLERS).
globals().update(internal_settings())
# <<< stage 2

# >>> stage 3: events
# PUBLISH_EVENTS: post.created / post.deleted go out through the outbox (the
# comments service keeps its replica of posts from them). COMMENT_COUNTS=async
# (with COMMENTS_BACKEND=service): comment_count comes from a local counter
# fed by comment events instead of a call per page.
PUBLISH_EVENTS = env_bool("PUBLISH_EVENTS", False)
COMMENT_COUNTS = os.environ.get("COMMENT_COUNTS", "sync").strip().lower()
if COMMENT_COUNTS not in {"sync", "async"}:
    raise ValueError(f"COMMENT_COUNTS must be sync or async, not {COMMENT_COUNTS!r}")
BLOGBUS_BROKER_URL = os.environ.get("BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
BLOGBUS_CONSUMERS = {
    "monolith": {
        "comment.created": "monolith.comments.events.comment_created",
        "comment.deleted": "monolith.comments.events.comment_deleted",
    }
}
# <<< stage 3
