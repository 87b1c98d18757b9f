"""Tests run on real PostgreSQL, in a database of the run's own that
pytest-django creates and drops (test_blog_monolith_<run id>)."""

from blogweb.settings import database_from_env, test_database_name

from .base import *  # noqa: F403

DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
DATABASES = {"default": database_from_env("postgresql://postgres@127.0.0.1:5432/blog_monolith")}
# Test connections are per-test; persistent ones only hold locks between tests.
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
DATABASES["default"]["TEST"] = {"NAME": test_database_name("blog_monolith")}
WHITENOISE_AUTOREFRESH = True
