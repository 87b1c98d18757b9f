"""Which settings each component runs when nothing says: its ``wsgi.py`` (what
gunicorn serves) loads production settings, its ``manage.py`` (runserver,
`make up`) local ones. A server started without DJANGO_SETTINGS_MODULE must
refuse to run without its secrets, never come up with DEBUG on."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from stages import table

ROOT = Path(__file__).resolve().parents[2]
APPS = sorted(table.APPS)
# What the production settings of every component require between them (none
# is reached: importing the application connects to nothing).
PRODUCTION_ENV = {
    "DJANGO_ALLOWED_HOSTS": "blog.example.com",
    "DATABASE_URL": "postgresql://blog@db.invalid:5432/blog",
    # >>> stage 2: the comments service's store and owner of posts
    "MONGO_URL": "mongodb://mongo.invalid:27017",
    "POSTS_URL": "http://posts.invalid:8001",
    # <<< stage 2
}
PRINT_SETTINGS = (
    "from django.conf import settings; "
    "print(settings.SETTINGS_MODULE, settings.DEBUG, settings.SECURE_SSL_REDIRECT)"
)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any Django setting (the test run
    has the monolith's test settings in it)."""
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_", "MONGO_", "POSTS_", "COMMENTS_"))
    }
    return {**keep, "PYTHONDONTWRITEBYTECODE": "1", **extra}


def run_python(app: str, code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT / table.APPS[app].folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("app", APPS)
def test_wsgi_defaults_to_production_settings(app):
    spec = table.APPS[app]
    env = clean_env(**PRODUCTION_ENV, DJANGO_SECRET_KEY=secrets.token_urlsafe(50))
    result = run_python(app, f"import {spec.wsgi}; {PRINT_SETTINGS}", env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [f"{spec.settings}.production", "False", "True"]


@pytest.mark.parametrize("app", APPS)
def test_wsgi_without_its_secrets_refuses_to_start(app):
    """The default is production's, guard included: no secret key, no server."""
    result = run_python(app, f"import {table.APPS[app].wsgi}", clean_env(**PRODUCTION_ENV))
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set in production" in result.stderr


@pytest.mark.parametrize("app", APPS)
def test_manage_py_defaults_to_local_settings(app, tmp_path):
    spec = table.APPS[app]
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", PRINT_SETTINGS],
        cwd=ROOT / spec.folder,
        env=clean_env(DATA_DIR=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == [f"{spec.settings}.local", "True"]
