"""Local development: MongoDB and the owner of posts on their local defaults
unless MONGO_URL / POSTS_URL say otherwise."""

from .base import *  # noqa: F403
from .base import env_bool, env_list

DEBUG = env_bool("DJANGO_DEBUG", True)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
# WhiteNoise serves Swagger UI's files from the finders; collectstatic is for images.
STATIC_ROOT = None
