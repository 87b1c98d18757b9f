"""Minimal settings for blogweb's own tests (``pytest libs/blogweb/tests
--ds=blogweb.tests.settings``): the contract's REST framework setup and
limits, no app and no database. How the monolith runs the whole layer is
tested in monolith/config/tests/."""

from blogweb.settings import contract_rest_framework

SECRET_KEY = "blogweb-tests-only"  # noqa: S105 - test settings, never deployed
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["rest_framework"]
DATABASES: dict = {}
REST_FRAMEWORK = contract_rest_framework()
REQUEST_BODY_MAX_BYTES = 1024 * 1024
