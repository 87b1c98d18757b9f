"""Production: everything from the environment, nothing insecure by default.

Required: DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS, MONGO_URL, POSTS_URL. See
blogweb.settings.production_settings.
"""

from blogweb.settings import production_settings

from .base import *  # noqa: F403

globals().update(production_settings(required=("MONGO_URL", "POSTS_URL")))
