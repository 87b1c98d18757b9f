"""Production: everything from the environment, nothing insecure by default.

Required: DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS, DATABASE_URL. See
blogweb.settings.production_settings.
"""

from blogweb.settings import env_bool, production_settings

from .base import *  # noqa: F403

globals().update(production_settings(required=("DATABASE_URL",)))
WHITENOISE_USE_FINDERS = env_bool("WHITENOISE_USE_FINDERS", True)
