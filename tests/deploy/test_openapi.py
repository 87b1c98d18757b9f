"""The OpenAPI document is valid and documents the contract's errors."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_schema_validates_without_warnings_and_lists_the_errors(tmp_path):
    out = tmp_path / "schema.json"
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn",
         "--format", "openapi-json", "--file", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    paths = json.loads(out.read_text())["paths"]
    assert set(paths["/api/posts/"]["post"]["responses"]) >= {"201", "400", "413", "415"}
    assert set(paths["/api/posts/"]["get"]["responses"]) >= {"200", "400", "404"}
    assert set(paths["/api/posts/{post_id}/"]["get"]["responses"]) == {"200", "404"}
    comments = paths["/api/posts/{post_id}/comments/"]
    assert set(comments["post"]["responses"]) >= {"201", "400", "404"}
    assert comments["get"]["tags"] == ["comments"]
