"""The service's settings and schema, checked the way a deploy uses them: in a
fresh process, from the service folder."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

SERVICE_DIR = Path(__file__).resolve().parents[2]
FORBIDDEN_ENV = (
    "DATABASE_URL",
    "DJANGO_SETTINGS_MODULE",
    "COMMENT_COUNTS",
    "COMMENTS_TIMEOUT_S",
    "COMMENTS_TIMEOUT",
)


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in FORBIDDEN_ENV}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=SERVICE_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_settings_pass_check_deploy():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SETTINGS_MODULE="posts_service.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="posts.example.org",
        DATABASE_URL="postgresql://posts@db.example.org:5432/posts",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_its_secrets():
    result = manage("check", DJANGO_SETTINGS_MODULE="posts_service.settings.production")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set in production" in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("COMMENT_COUNTS", "eventually"),
        ("COMMENTS_TIMEOUT_S", "5"),
        ("COMMENTS_TIMEOUT_S", "soon"),
        ("COMMENTS_TIMEOUT", "soon"),  # the deprecated name, checked the same way
    ],
)
def test_unsupported_comment_settings_are_refused_at_start(name, value, tmp_path):
    result = manage("check", DATA_DIR=str(tmp_path), **{name: value})
    assert result.returncode != 0
    assert name in result.stderr


def comment_settings(tmp_path, **env: str) -> subprocess.CompletedProcess:
    code = "from django.conf import settings as s; print(s.COMMENT_COUNTS, s.COMMENTS_TIMEOUT_S)"
    return manage("shell", "-v0", "-c", code, DATA_DIR=str(tmp_path), **env)


def test_started_alone_the_service_runs_as_make_up_runs_it(tmp_path):
    """Async comment counts, as `make up` and the deployments run stage 4."""
    result = comment_settings(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["async", "0.5"]


def test_the_timeout_has_its_unit_in_its_name_and_the_old_name_still_works(tmp_path):
    result = comment_settings(tmp_path, COMMENTS_TIMEOUT_S="0.25")
    assert result.stdout.split() == ["async", "0.25"]
    assert "deprecated" not in result.stderr
    # The old name alone: read, with a warning at start.
    result = comment_settings(tmp_path, COMMENTS_TIMEOUT="0.75")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["async", "0.75"]
    assert "COMMENTS_TIMEOUT is deprecated" in result.stderr
    assert "set COMMENTS_TIMEOUT_S instead" in result.stderr
    # Both: the new name wins.
    result = comment_settings(tmp_path, COMMENTS_TIMEOUT_S="0.25", COMMENTS_TIMEOUT="0.75")
    assert result.stdout.split() == ["async", "0.25"]
    assert "COMMENTS_TIMEOUT is ignored" in result.stderr


def test_the_models_match_the_migrations(tmp_path):
    result = manage("makemigrations", "--check", "--dry-run", DATA_DIR=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_embedded_profile_migrates_sqlite_under_data_dir_and_keeps_the_total(tmp_path):
    migrated = manage("migrate", "--noinput", "-v0", DATA_DIR=str(tmp_path))
    assert migrated.returncode == 0, migrated.stderr
    assert (tmp_path / "posts.sqlite3").is_file()
    script = (
        "from posts.models import Post; from posts import selectors\n"
        "Post.objects.bulk_create([Post(title='t', body='b') for _ in range(3)])\n"
        "Post.objects.filter(pk=Post.objects.first().pk).delete()\n"
        "print(selectors.post_total(), Post.objects.count())\n"
    )
    counted = manage("shell", "-v0", "-c", script, DATA_DIR=str(tmp_path))
    assert counted.returncode == 0, counted.stderr
    assert counted.stdout.split() == ["2", "2"]
