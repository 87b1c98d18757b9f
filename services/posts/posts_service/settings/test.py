"""Tests run on real PostgreSQL, in the service's own database: pytest-django
creates and drops ``test_blog_posts_<run id>``, the run's own.

DATABASE_URL may point at the shared server (CI sets one for every suite);
only its server and credentials are used here, the database name is always
POSTS_TEST_DATABASE_NAME (default blog_posts), so these tests can never touch
the monolith's database.
"""

import os

from django.core.exceptions import ImproperlyConfigured

from blogweb.settings import database_from_env, test_database_name

from .base import *  # noqa: F403

DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
DATABASES = {"default": database_from_env("postgresql://postgres@127.0.0.1:5432/blog_posts")}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("the posts service's tests run on PostgreSQL")
DATABASES["default"]["NAME"] = os.environ.get("POSTS_TEST_DATABASE_NAME", "blog_posts")
# Test connections are per-test; persistent ones only hold locks between tests.
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
DATABASES["default"]["TEST"] = {"NAME": test_database_name(DATABASES["default"]["NAME"])}
# Tests point this at a fake comments server of their own.
COMMENTS_URL = "http://127.0.0.1:9"
WHITENOISE_AUTOREFRESH = True
