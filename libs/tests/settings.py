"""Minimal Django settings for the blogbus tests: PostgreSQL `blogbus_test`.

pytest-django creates and drops `test_blogbus_test_<run id>`, the run's own.
Addresses come from the environment with local defaults, like every settings
module of the repo.
"""

import os

from blogweb.settings import test_database_name

SECRET_KEY = "blogbus-tests-only"  # noqa: S105 - test settings, never deployed
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "blogbus.outbox",
    "blogbus.inbox",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("BLOGBUS_TEST_DB_NAME", "blogbus_test"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        "TEST": {
            "NAME": test_database_name(os.environ.get("BLOGBUS_TEST_DB_NAME", "blogbus_test"))
        },
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
BLOGBUS_BROKER_URL = os.environ.get("BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"blogbus": {"handlers": ["console"], "level": "INFO"}},
}
