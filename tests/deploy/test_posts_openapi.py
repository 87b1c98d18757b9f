"""The posts service serves the whole API's OpenAPI document with the comment
routes taken from a copy of the comments service's document in its package
(services/posts/posts/comments_openapi.json), so that generating it calls
nobody. The copy must be what the comments service's code generates today."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COPY = ROOT / "services" / "posts" / "posts" / "comments_openapi.json"
REGENERATE = (
    "cd services/comments && ../../.venv/bin/python manage.py spectacular "
    "--format openapi-json --file ../posts/posts/comments_openapi.json"
)


def test_the_posts_services_copy_of_the_comment_routes_is_current(tmp_path):
    out = tmp_path / "comments.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn",
         "--format", "openapi-json", "--file", str(out)],
        cwd=ROOT / "services" / "comments",
        env={**env, "DJANGO_SETTINGS_MODULE": "comments_service.settings.local"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    fresh = json.loads(out.read_text(encoding="utf-8"))
    assert "/api/posts/{post_id}/comments/" in fresh["paths"]
    assert json.loads(COPY.read_text(encoding="utf-8")) == fresh, (
        f"{COPY.relative_to(ROOT)} is out of date: {REGENERATE}"
    )
