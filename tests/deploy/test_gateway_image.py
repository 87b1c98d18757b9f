"""The gateway image, without a Docker engine: its build stage's render
command run for every stage (and refusing 0), each config accepted by
`nginx -t`, and the image's ENTRYPOINT run as its uid with the config
read-only and only the `-p` prefix writable."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from blogtest.ports import free_port
from blogtest.processes import stop
from stages import table
from tests.deploy.compose import URL_KEYS
from tests.deploy.dockerfiles import (
    DOCKERFILES,
    ROOT,
    exec_form,
    final_stage,
    instructions,
    last,
)

PY = sys.executable
NGINX = os.environ.get("NGINX_BIN") or shutil.which("nginx") or "/usr/sbin/nginx"


# What nginx writes under its -p prefix with the config the image renders: the pid
# file and the temp folders (it creates them). Nothing else: no logs.
NGINX_TEMP = {"tmp_client_body", "tmp_proxy", "tmp_fastcgi", "tmp_uwsgi", "tmp_scgi"}
NGINX_WRITES = {"nginx.pid", *NGINX_TEMP}


def gateway_build() -> tuple[dict[str, str], list[str], str]:
    """(ARG defaults, the render command's arguments, the RUN) of the build stage."""
    items = instructions(DOCKERFILES["gateway"])
    args = dict(a.split("=", 1) for k, a in items if k == "ARG" and "=" in a)
    run = next(a for k, a in items if k == "RUN" and "gateway.render" in a)
    render = re.search(r"(\w+=\S+ )*python -m gateway\.render ([^&]+)", run)
    return args, shlex.split(render.group(0)), run


def option(argv: list[str], name: str) -> str:
    assert name in argv, f"{name} not in {argv}"
    return argv[argv.index(name) + 1]


def render_like_the_dockerfile(
    stage: str, env_over: dict[str, str], out: Path, listen: str | None = None
):
    """The build stage's render command, writing to `out` (and listening on
    `listen`, if given); `env_over` over the ARGs and the command's own
    assignments."""
    args, command, _ = gateway_build()
    env = {**os.environ, **args, "STAGE": stage}
    assignments = [c for c in command if re.fullmatch(r"[A-Z_]+=.*", c)]
    for item in assignments:
        key, _, value = item.partition("=")
        env[key] = value
    env.update(env_over)
    argv = [c.replace("$STAGE", stage) for c in command[len(assignments) :]]
    argv[argv.index("--out") + 1] = str(out)
    if listen:
        argv[argv.index("--listen") + 1] = listen
    assert argv[:3] == ["python", "-m", "gateway.render"], argv
    return subprocess.run(
        [PY, *argv[1:]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def image_user() -> tuple[int, int]:
    uid, gid = last(DOCKERFILES["gateway"], "USER").split(":")
    return int(uid), int(gid)


def gateway_entrypoint(prefix: Path, conf: Path) -> list[str]:
    """The image's ENTRYPOINT (+ CMD), its prefix and config moved to here."""
    path = DOCKERFILES["gateway"]
    argv = [*exec_form(last(path, "ENTRYPOINT")), *exec_form(last(path, "CMD"))]
    assert argv[0] == "nginx", argv
    argv[0] = NGINX
    argv[argv.index("-p") + 1] = f"{prefix}/"
    argv[argv.index("-c") + 1] = str(conf)
    return argv


class ImageFS:
    """The image's file layout in a scratch folder: the config root-owned and
    read-only, the UI, an empty world-writable prefix (the container's /tmp,
    the emptyDir in Kubernetes) and files for nginx's stdout/stderr. Run as
    root, the tests run nginx as the image's uid, to which the stdio files
    belong (as runc hands a container's stdio to its user)."""

    def __init__(self, base: Path):
        self.base = base
        base.chmod(0o755)  # not tmp_path: root's is not traversable by another uid
        self.etc = base / "etc"
        self.etc.mkdir(mode=0o755)
        self.conf = self.etc / "nginx.conf"
        self.web = base / "web"
        shutil.copytree(ROOT / "web", self.web)
        self.prefix = base / "prefix"
        self.prefix.mkdir()
        self.prefix.chmod(0o1777)
        self.stdout, self.stderr = base / "stdout", base / "stderr"
        for stream in (self.stdout, self.stderr):
            stream.touch()
            if os.geteuid() == 0:
                os.chown(stream, *image_user())

    def seal(self):
        self.conf.chmod(0o444)

    def run_kwargs(self) -> dict:
        if os.geteuid() != 0:
            return {}
        uid, gid = image_user()
        return {"user": uid, "group": gid, "extra_groups": []}

    def written(self) -> dict[str, list[str]]:
        """What is under the prefix: name -> the names inside (folders)."""
        return {
            p.name: sorted(c.name for c in p.iterdir()) if p.is_dir() else []
            for p in self.prefix.iterdir()
        }


@pytest.fixture
def image_fs():
    base = Path(tempfile.mkdtemp(prefix="blog-gateway-"))
    try:
        yield ImageFS(base)
    finally:
        shutil.rmtree(base)


def loopback(ports: dict[str, int] | None = None) -> dict[str, str]:
    ports = ports or {f"{name.upper()}_URL": app.port for name, app in table.APPS.items()}
    return {key: f"http://127.0.0.1:{port}" for key, port in ports.items()}


@pytest.mark.parametrize("stage", [str(n) for n in table.STAGES])
def test_gateway_build_stage_renders_a_config_nginx_accepts(stage, tmp_path, image_fs):
    out = tmp_path / "nginx.conf"
    result = render_like_the_dockerfile(stage, {}, out)
    if stage == "0":
        assert result.returncode != 0
        assert "stage 0 has no gateway" in result.stderr
        return
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "listen 0.0.0.0:8080;" in text
    servers = set(re.findall(r"server (\S+) max_fails", text))
    assert servers <= {f"{name}:{app.port}" for name, app in table.APPS.items()}
    assert servers
    if stage == "4":  # [stage 4]
        assert 'root "/srv/gateway/web";' in text  # [stage 4]
    # The logs go to the container's stderr and stdout; what else the config
    # writes is relative to the -p prefix.
    assert set(re.findall(r"^\s*error_log (\S+)", text, re.MULTILINE)) == {"stderr"}
    assert set(re.findall(r"^\s*access_log (\S+)", text, re.MULTILINE)) == {"/dev/stdout"}
    written = dict(re.findall(r"^\s*(pid|\w+_temp_path) (\S+);", text, re.MULTILINE))
    assert set(written.values()) == NGINX_WRITES
    # nginx -t cannot resolve the compose service names here: the same render
    # with loopback upstreams (and a free port), which must differ only there.
    port = free_port()
    assert render_like_the_dockerfile(
        stage, loopback(), image_fs.conf, listen=f"127.0.0.1:{port}"
    ).returncode == 0  # fmt: skip
    local = image_fs.conf.read_text()
    strip = re.compile(r"^\s*(server \S+ max_fails=0|listen \S+);$", re.MULTILINE)
    assert strip.sub("", text) == strip.sub("", local)
    assert f"listen 127.0.0.1:{port};" in local
    image_fs.seal()
    argv = gateway_entrypoint(image_fs.prefix, image_fs.conf)
    with image_fs.stdout.open("ab") as stdout, image_fs.stderr.open("ab") as stderr:
        tested = subprocess.run(
            [argv[0], "-t", *argv[1:]], stdout=stdout, stderr=stderr, timeout=30, check=False,
            **image_fs.run_kwargs(),
        )  # fmt: skip
    log = image_fs.stderr.read_text()
    assert tested.returncode == 0, log
    assert "test is successful" in log
    # nginx -t creates what the config names (pid file, temp folders): nothing else.
    written = image_fs.written()
    assert set(written) <= NGINX_WRITES, written
    assert set(written) >= NGINX_TEMP, written
    assert os.listdir(image_fs.etc) == ["nginx.conf"]


def http_get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback)
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.mark.parametrize("stage", [str(n) for n in table.STAGES if table.topology(n).has_gateway])
def test_the_gateway_entrypoint_serves_with_only_its_prefix_writable(stage, image_fs):
    """The image's ENTRYPOINT, as the image's uid, with the config read-only and
    an empty prefix: nginx starts, the HEALTHCHECK passes while it runs and
    fails after, an unreachable upstream gets the JSON 503, a stage whose table
    has the UI serves it; the access log is on stdout, the error log on stderr, and the prefix
    holds nothing but the pid file and the (empty) temp folders."""
    port = free_port()
    upstreams = loopback({k: free_port() for k in URL_KEYS})  # nothing listens there
    rendered = render_like_the_dockerfile(
        stage, {**upstreams, "UI_DIR": str(image_fs.web)}, image_fs.conf,
        listen=f"127.0.0.1:{port}",
    )  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    image_fs.seal()
    check = exec_form(last(DOCKERFILES["gateway"], "HEALTHCHECK"))
    assert check[0] == "wget", check
    assert check[-1] == "http://127.0.0.1:8080/healthz", check
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        url = check[-1].replace("127.0.0.1:8080", f"127.0.0.1:{port}")
        if shutil.which(check[0]):
            probe = [*check[:-1], url]
            return subprocess.run(probe, capture_output=True, timeout=10).returncode == 0
        return http_get(url)[0] == 200

    assert not healthy(), "healthy before nginx started"
    argv = gateway_entrypoint(image_fs.prefix, image_fs.conf)
    with image_fs.stdout.open("ab") as stdout, image_fs.stderr.open("ab") as stderr:
        server = subprocess.Popen(argv, stdout=stdout, stderr=stderr, **image_fs.run_kwargs())
    try:
        deadline = time.monotonic() + 15
        while not healthy():
            assert server.poll() is None, image_fs.stderr.read_text()
            assert time.monotonic() < deadline, image_fs.stderr.read_text()
            time.sleep(0.2)
        status, headers, body = http_get(f"{base}/api/posts/")
        assert status == 503, body
        assert headers["X-Served-By"] == "gateway"
        assert json.loads(body)["detail"] == "Upstream unavailable."
        # >>> stage 4: the gateway serves the UI
        if stage == "4":
            status, _, body = http_get(f"{base}/")
            assert status == 200
            assert body == (ROOT / "web" / "index.html").read_bytes()
        # <<< stage 4
        written = image_fs.written()
        assert set(written) <= NGINX_WRITES, written
        assert "nginx.pid" in written
        assert all(not inside for inside in written.values()), written
    finally:
        stop(server, timeout_s=15)  # SIGTERM first, what Kubernetes sends
    assert not healthy(), "healthy after nginx stopped"
    assert set(image_fs.written()) <= NGINX_TEMP  # nginx removes its pid file
    access = image_fs.stdout.read_text()
    assert re.search(r'"GET /healthz HTTP/1\.\d" 200 ', access), access
    assert re.search(r'"GET /api/posts/ HTTP/1\.\d" 503 ', access), access
    assert "connect() failed" in image_fs.stderr.read_text()


def test_the_gateway_image_layout():
    """Config root-owned outside the prefix, the prefix in /tmp (the one
    writable path, in a plain container as in Kubernetes), no chown, the uid
    of every blog image, logs to the std streams (no files to link)."""
    path = DOCKERFILES["gateway"]
    entry = exec_form(last(path, "ENTRYPOINT"))
    assert entry[0] == "nginx"
    assert option(entry, "-e") == "stderr"  # not the compiled-in error log
    prefix, conf = Path(option(entry, "-p")), Path(option(entry, "-c"))
    assert prefix == Path("/tmp")
    assert Path("/tmp") not in conf.parents
    copies = [a.split() for k, a in final_stage(path) if k == "COPY"]
    assert not any(c[0].startswith("--chown") or c[0].startswith("--chmod") for c in copies)
    assert not any(k == "RUN" for k, _ in final_stage(path)), "nothing to chown or link"
    _, command, run = gateway_build()
    assert "--std-logs" in command
    assert "ln -s" not in run
    rendered = option(command, "--out")
    assert ["--from=render", rendered, str(conf)] in copies
    ui_dir = next(c.split("=", 1)[1] for c in command if c.startswith("UI_DIR="))
    assert ["web/", ui_dir + "/"] in copies
    assert prefix not in Path(ui_dir).parents
    users = {name: last(p, "USER") for name, p in DOCKERFILES.items()}
    assert set(users.values()) == {"10001:10001"}, users
