"""Settings of the worker processes the bus tests start: the test settings + `blogbus.bus`.

The tests point `BLOGBUS_TEST_DB_NAME` at pytest-django's test database.
"""

from .settings import *  # noqa: F403
from .settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "blogbus.bus"]
