"""The rendered nginx.conf: nginx accepts it, and it avoids the known traps."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gateway import render

from .conftest import need
from .fakes import NGINX


@pytest.mark.parametrize("shadow", [False, True])
@pytest.mark.parametrize("stage", [1, 2, 3, 4])
def test_nginx_accepts_the_rendered_config(tmp_path, stage, shadow):
    need("nginx")
    conf = tmp_path / "nginx.conf"
    conf.write_text(render.render(stage, listen="127.0.0.1:18080", shadow=shadow))
    result = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_std_logs_write_nothing_under_the_prefix_but_pid_and_temp_folders(tmp_path):
    """The container form: a read-only image, only an empty writable prefix (/tmp)."""
    need("nginx")
    conf_dir, prefix = tmp_path / "etc", tmp_path / "prefix"
    conf_dir.mkdir()
    prefix.mkdir()
    conf = conf_dir / "nginx.conf"
    text = render.render(4, listen="127.0.0.1:18080", shadow=True, std_logs=True)
    assert "error_log stderr warn;" in text
    assert "access_log /dev/stdout gw_main;" in text
    assert ".log" not in text
    conf.write_text(text)
    result = subprocess.run(
        [NGINX, "-t", "-e", "stderr", "-p", f"{prefix}/", "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert not list(prefix.rglob("*.log"))
    assert sorted(p.name for p in conf_dir.iterdir()) == ["nginx.conf"]


@pytest.mark.parametrize("stage", [1, 2, 3, 4])
def test_rendered_config_handles_the_nginx_traps(stage):
    text = render.render(stage)
    for line in (
        "proxy_set_header Host $http_host;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_set_header X-Request-ID $gw_request_id;",
        "client_max_body_size 1m;",
        "error_page 413 = @gw_413;",
        "error_page 404 = @gw_404;",
        "error_page 500 502 503 = @gw_503;",
        "error_page 504 = @gw_504;",
        "proxy_connect_timeout 1000ms;",
        "proxy_read_timeout 10000ms;",
        "add_header X-Served-By gateway always;",
        "daemon off;",
    ):
        assert line in text, line
    assert "proxy_intercept_errors on" not in text  # upstream JSON errors pass through
    assert "/var/" not in text
    assert "/etc/nginx" not in text


def test_stage_4_has_no_monolith_and_serves_the_ui():
    text = render.render(4, env={"UI_DIR": "/srv/web"})
    assert "gw_monolith" not in text
    assert 'root "/srv/web";' in text
    assert "location / {\n            return 404;" in text


def test_shadow_mode_mirrors_only_reads():
    text = render.render(2, shadow=True)
    assert "mirror /_gw_mirror/comments;" in text
    assert "if ($request_method !~ '^(GET|HEAD)$') { return 204; }" in text
    assert "mirror" not in render.render(2)


def test_cli_writes_the_file(tmp_path):
    out = tmp_path / "gw.conf"
    subprocess.run(
        [sys.executable, "-m", "gateway.render", "--stage", "2", "--out", str(out)],
        check=True,
        timeout=30,
        cwd=render.rt.REPO_ROOT,
    )
    assert "Stage 2 (comments-extracted)" in out.read_text()


def test_cli_refuses_stage_0():
    result = subprocess.run(
        [sys.executable, "-m", "gateway.render", "--stage", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=render.rt.REPO_ROOT,
        check=False,
    )
    assert result.returncode == 2
    assert "no gateway" in result.stderr
