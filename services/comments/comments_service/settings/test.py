"""Tests: the session fixture in tests/conftest.py starts a SecantusDB server
and a fake posts server and points MONGO_URL / POSTS_URL at them."""

from blogweb.settings import test_database_name

from .base import *  # noqa: F403

DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
MONGO_DB = test_database_name("comments")  # the run's own
# WhiteNoise serves Swagger UI's files from the finders; nothing is collected.
STATIC_ROOT = None
