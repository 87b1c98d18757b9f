"""The rendered nginx.conf: nginx accepts it, and it avoids the known traps."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway import render
from gateway import routes as rt

from .conftest import GATEWAY_STAGES, need
from .fakes import NGINX

NEWEST = max(rt.STAGES)


def nginx_accepts(folder: Path, text: str) -> None:
    need("nginx")
    conf = folder / "nginx.conf"
    conf.write_text(text)
    result = subprocess.run(
        [NGINX, "-t", "-p", str(folder), "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@pytest.mark.parametrize("stage", GATEWAY_STAGES)
def test_nginx_accepts_the_rendered_config(tmp_path, stage):
    nginx_accepts(tmp_path, render.render(stage, listen="127.0.0.1:18080"))


# >>> stage 2: the parallel run (nginx mirror)
@pytest.mark.parametrize("stage", GATEWAY_STAGES)
def test_nginx_accepts_the_rendered_parallel_run(tmp_path, stage):
    nginx_accepts(tmp_path, render.render(stage, listen="127.0.0.1:18080", shadow=True))
    # <<< stage 2


def test_std_logs_write_nothing_under_the_prefix_but_pid_and_temp_folders(tmp_path):
    """The container form: a read-only image, only an empty writable prefix (/tmp)."""
    need("nginx")
    conf_dir, prefix = tmp_path / "etc", tmp_path / "prefix"
    conf_dir.mkdir()
    prefix.mkdir()
    conf = conf_dir / "nginx.conf"
    options: dict[str, Any] = {"std_logs": True}
    options["shadow"] = True  # [stage 2]
    text = render.render(NEWEST, listen="127.0.0.1:18080", **options)
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


@pytest.mark.parametrize("stage", GATEWAY_STAGES)
def test_rendered_config_handles_the_nginx_traps(stage):
    text = render.render(stage)
    for line in (
        "proxy_set_header Host $http_host;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        # the edge's X-Forwarded-Proto when http or https, else nginx's own $scheme
        "proxy_set_header X-Forwarded-Proto $gw_forwarded_proto;",
        "proxy_set_header X-Request-ID $gw_request_id;",
        "client_max_body_size 1m;",
        "error_page 413 = @gw_413;",
        "error_page 404 = @gw_404;",
        "error_page 500 502 503 = @gw_503;",
        "error_page 504 = @gw_504;",
        "proxy_connect_timeout 1000ms;",
        "proxy_read_timeout 2000ms;",  # reads
        "proxy_read_timeout 5000ms;",  # writes, in @gw_write
        "error_page 418 = @gw_write;",
        "recursive_error_pages on;",
        "add_header X-Served-By gateway always;",
        "daemon off;",
    ):
        assert line in text, line
    assert "proxy_intercept_errors on" not in text  # upstream JSON errors pass through
    assert "/var/" not in text
    assert "/etc/nginx" not in text


def test_stage_1_sends_everything_but_its_own_answers_to_the_monolith():
    text = render.render(1, env={"MONOLITH_URL": "http://monolith.internal:9000"})
    assert "server monolith.internal:9000 max_fails=0;" in text
    assert "location / {\n            set $gw_upstream monolith;" in text


# >>> stage 4: the posts service and the UI files; the monolith is out of the path
def test_stage_4_has_no_monolith_and_serves_the_ui():
    text = render.render(4, env={"UI_DIR": "/srv/web"})
    assert "gw_monolith" not in text
    assert 'root "/srv/web";' in text
    assert "location / {\n            return 404;" in text
    # <<< stage 4


# >>> stage 2: the parallel run (nginx mirror)
def test_shadow_mode_mirrors_only_reads():
    text = render.render(2, shadow=True)
    assert "mirror /_gw_mirror/comments;" in text
    assert "if ($request_method !~ '^(GET|HEAD)$') { return 204; }" in text
    assert "mirror" not in render.render(2)
    # <<< stage 2


def test_fill_is_strict_and_fills_whole_lines():
    template = "a {\n    @{rules}\n    b @{x};\n    @{none}\n}\n"
    filled = render.fill(template, rules="r1;\nr2 {\n    r3;\n}\n", x="$y", none="")
    assert filled == "a {\n    r1;\n    r2 {\n        r3;\n    }\n    b $y;\n}\n"
    with pytest.raises(KeyError, match="none"):
        render.fill(template, rules="", x="")
    with pytest.raises(ValueError, match="extra"):
        render.fill(template, rules="", x="", none="", extra="")


@pytest.mark.parametrize("stage", GATEWAY_STAGES)
def test_templates_leave_no_placeholder_comment_or_marker_in_the_config(stage):
    texts = [render.render(stage), render.render(stage, std_logs=True)]
    texts.append(render.render(stage, shadow=True))  # [stage 2]
    for text in texts:
        assert "@{" not in text
        assert not re.search(r"^\s*##|>>>|<<<|\[stage", text, re.MULTILINE)


def test_cli_writes_the_file(tmp_path):
    out = tmp_path / "gw.conf"
    subprocess.run(
        [sys.executable, "-m", "gateway.render", "--stage", str(NEWEST), "--out", str(out)],
        check=True,
        timeout=30,
        cwd=rt.REPO_ROOT,
    )
    assert f"Stage {NEWEST} ({rt.stage(NEWEST).name})" in out.read_text()


def test_cli_refuses_stage_0():
    result = subprocess.run(
        [sys.executable, "-m", "gateway.render", "--stage", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=rt.REPO_ROOT,
        check=False,
    )
    assert result.returncode == 2
    assert "no gateway" in result.stderr


@pytest.mark.parametrize("stage", GATEWAY_STAGES)
def test_every_proxied_location_hands_its_writes_to_the_write_location(stage):
    text = render.render(stage, read_timeout=1.5, write_timeout=4.25)
    proxied = text.count("proxy_pass http://gw_$gw_upstream;")
    hand_over = "if ($request_method !~ '^(GET|HEAD|OPTIONS)$') { return 418; }"
    assert proxied >= 2
    assert text.count(hand_over) == proxied - 1  # every one but @gw_write itself
    write_location = text.split("location @gw_write {", 1)[1].split("}", 1)[0]
    assert "proxy_read_timeout 4250ms;" in write_location
    assert "proxy_pass http://gw_$gw_upstream;" in write_location
    assert text.count("proxy_read_timeout 1500ms;") == proxied - 1
