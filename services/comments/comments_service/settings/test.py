"""Tests: the session fixture in tests/conftest.py starts a SecantusDB server
and a fake posts server and points MONGO_URL / POSTS_URL at them."""

from .base import *  # noqa: F403

DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
MONGO_DB = "comments_test"
# WhiteNoise serves Swagger UI's files from the finders; nothing is collected.
STATIC_ROOT = None
