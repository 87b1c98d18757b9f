"""Local development: the embedded profile (SQLite under .data/) unless
DATABASE_URL says otherwise."""

from blogweb.settings import env_bool, env_list

from .base import *  # noqa: F403

DEBUG = env_bool("DJANGO_DEBUG", True)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
