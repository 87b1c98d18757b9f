"""The WSGI entry point of the posts service: what gunicorn serves.

Production settings unless DJANGO_SETTINGS_MODULE says otherwise: a server
started without it must refuse to run without its secrets rather than come
up with DEBUG on and the local key. ``manage.py`` (runserver, `make up`)
keeps the local settings as its default.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "posts_service.settings.production")

application = get_wsgi_application()
