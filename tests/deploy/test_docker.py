"""docker/: the Dockerfiles and the compose file, checked without a Docker engine.

No image is built here (there is no engine on the development machine), so
these tests check what the images and the compose file would run against the
real code: hadolint on every Dockerfile, the compose spec's JSON Schema, each
stage's services against the processes of the stage table (stages/table.py), every
management command and settings module under the compose environment, and the
images' CMD and HEALTHCHECK against a live gunicorn.
# >>> stage 1: the gateway image
Also the gateway's build stage rendered for every stage, accepted by `nginx -t`
and run with the image's ENTRYPOINT, as its uid, with only the `-p` prefix
writable.
# <<< stage 1
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil  # [stage 1]
import signal
import socket
import subprocess
import sys
import tempfile  # [stage 1]
import time
import urllib.error  # [stage 1]
import urllib.request  # [stage 1]
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from stages import table

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
BIN = Path(sys.executable).parent
PY = sys.executable
NGINX = os.environ.get("NGINX_BIN") or shutil.which("nginx") or "/usr/sbin/nginx"  # [stage 1]

APPS = tuple(table.APPS)
DOCKERFILES = {name: DOCKER / f"{name}.Dockerfile" for name in APPS}
DOCKERFILES["gateway"] = DOCKER / "gateway.Dockerfile"  # [stage 1]
# stage env file -> (stage, mode) of the stage table: stageN.env runs the
# stage's default mode, stageN-MODE.env another mode.
STAGE_FILES = {
    (f"stage{n}" if mode == stage.default_mode else f"stage{n}-{mode}"): (n, mode)
    for n, stage in table.STAGES.items()
    for mode in stage.modes
}
# One-shot jobs run by hand, and the stage whose env file they run with.
JOB_PROFILES: dict[str, str] = {}
JOB_PROFILES["migrate-stage2"] = "stage2"  # [stage 2]
JOB_PROFILES["migrate-stage4"] = "stage4"  # [stage 4]
# Variables the images or their servers read, not the Django settings.
RUNTIME_VARS = {"DJANGO_SETTINGS_MODULE", "PORT", "PATH", "PYTHONDONTWRITEBYTECODE"}
# The stage table's settings of the processes: the ones that make the stage
# (literal values), and the ones that give a process the address of an app.
STAGE_ENV = {
    (key, value)
    for stage in table.STAGES.values()
    for topology in stage.topologies.values()
    for process in topology.processes
    for key, value in process.env
}
SETTINGS_KEYS = tuple(sorted({key for key, value in STAGE_ENV if "{" not in value}))
URL_KEYS = tuple(sorted({key for key, value in STAGE_ENV if value.strip("{}") in table.APPS}))


# --- parsing helpers ---------------------------------------------------------------


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


def final_stage(path: Path) -> list[tuple[str, str]]:
    items = instructions(path)
    last_from = max(i for i, (k, _) in enumerate(items) if k == "FROM")
    return items[last_from:]


def image_env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in final_stage(path):
        if keyword == "ENV":
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def last(path: Path, keyword: str) -> str:
    values = [args for k, args in final_stage(path) if k == keyword]
    assert values, f"{path.name}: no {keyword} in the final stage"
    return values[-1]


def exec_form(args: str) -> list[str]:
    """The JSON array of an exec-form CMD / ENTRYPOINT / HEALTHCHECK CMD."""
    args = re.sub(r"^(--\S+\s+)*CMD\s+", "", args)
    value = json.loads(args)
    assert isinstance(value, list), args
    return value


def app_dir(dockerfile: Path) -> Path:
    """The final WORKDIR (/app is the repository's root in the images)."""
    workdir = last(dockerfile, "WORKDIR")
    assert workdir == "/app" or workdir.startswith("/app/"), workdir
    return ROOT / workdir.removeprefix("/app").lstrip("/")


VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: object, env: dict[str, str]) -> object:
    """Compose's interpolation, the forms the compose file uses."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.groups()
        current = env.get(name)
        if op == ":-":
            return current or arg
        if op == "-":
            return arg if current is None else current
        if op in (":?", "?") and not current:
            raise AssertionError(f"${{{name}}} is required: {arg}")
        return current or ""

    result = VAR.sub(sub, value)
    assert "${" not in result, f"unresolved interpolation in {value!r}"
    return result


def env_file(name: str) -> dict[str, str]:
    env = {}
    for line in (DOCKER / f"{name}.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


@cache
def compose_raw() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def compose(stage_file: str, extra_profiles: tuple[str, ...] = ()) -> dict[str, dict]:
    """The services active with a stage's env file (and explicitly run jobs)."""
    env = env_file(stage_file)
    profiles = {p for p in env.get("COMPOSE_PROFILES", "").split(",") if p} | set(extra_profiles)
    services = interpolate(compose_raw()["services"], env)
    return {
        name: svc
        for name, svc in services.items()
        if not svc.get("profiles") or profiles & set(svc["profiles"])
    }


def dockerfile_of(service: dict) -> Path | None:
    build = service.get("build")
    if not build:
        return None
    return (DOCKER / build.get("context", ".") / build["dockerfile"]).resolve()


def app_of(service: dict) -> str | None:
    path = dockerfile_of(service)
    name = path.name.removesuffix(".Dockerfile") if path else None
    return name if name in APPS else None


def is_one_shot(service: dict) -> bool:
    return service.get("restart") == "no"


def has_healthcheck(service: dict) -> bool:
    check = service.get("healthcheck")
    if check is not None:
        return not check.get("disable", False)
    path = dockerfile_of(service)
    return bool(path and any(k == "HEALTHCHECK" for k, _ in final_stage(path)))


def port_of(service: dict) -> int:
    return int(image_env(dockerfile_of(service))["PORT"])


def table_env(stage: int, mode: str | None) -> dict[str, dict[str, str]]:
    """The stage table's processes of ``stage`` in ``mode``: name -> stage
    settings, addresses written as compose's host names."""
    addresses = {name: f"http://{name}:{app.port}" for name, app in table.APPS.items()}
    addresses["mongodb"] = "mongodb://mongo:27017"  # [stage 2]
    addresses["broker"] = "amqp://rabbitmq:5672//"  # [stage 3]
    topology = table.topology(stage, mode)
    return {p.name: p.environment(addresses) for p in table.side_by_side(topology)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the Dockerfiles -----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_hadolint_passes(name):
    config = DOCKER / ".hadolint.yaml"
    args = [str(BIN / "hadolint"), *(["--config", str(config)] if config.exists() else [])]
    result = subprocess.run(
        [*args, str(DOCKERFILES[name])], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not result.stdout.strip(), result.stdout


def test_hadolint_does_flag_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install django\nCMD python app.py\n")
    result = subprocess.run(
        [str(BIN / "hadolint"), str(bad)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert {"DL3006", "DL3013", "DL3025"} <= set(re.findall(r"DL\d{4}", result.stdout))


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfile_is_multistage_pinned_and_non_root(name):
    path = DOCKERFILES[name]
    items = instructions(path)
    bases = [args.split()[0] for k, args in items if k == "FROM"]
    assert len(bases) >= 2, "multi-stage"
    for base in bases:
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", base), f"{base}: pin a tag"
        assert not base.endswith(":latest")
    user = last(path, "USER")
    uid = user.split(":")[0]
    assert uid.isdigit(), f"USER {user}: a fixed uid"
    assert int(uid) != 0, f"USER {user}: not root"
    assert last(path, "EXPOSE").split()
    assert exec_form(last(path, "HEALTHCHECK"))
    runs = [k for k, _ in final_stage(path) if k in ("CMD", "ENTRYPOINT")]
    assert runs, "a CMD or ENTRYPOINT"
    for keyword in runs:
        assert isinstance(exec_form(last(path, keyword)), list), f"{keyword}: exec form"
    for keyword, args in items:
        if keyword == "RUN" and "pip install" in args:
            assert "--no-cache-dir" in args
    if name in APPS:
        env = image_env(path)
        assert env["PYTHONDONTWRITEBYTECODE"] == "1"
        assert env["DJANGO_SETTINGS_MODULE"].endswith(".settings.production")


@pytest.mark.parametrize("name", APPS)
def test_settings_module_and_wsgi_of_the_image_exist(name):
    path = DOCKERFILES[name]
    here = app_dir(path)
    module = image_env(path)["DJANGO_SETTINGS_MODULE"]
    assert (here / (module.replace(".", "/") + ".py")).is_file(), module
    wsgi = exec_form(last(path, "CMD"))[1]
    assert (here / (wsgi.replace(".", "/") + ".py")).is_file(), wsgi
    assert (here / "manage.py").is_file()


@pytest.mark.parametrize("name", APPS)
def test_runtime_requirements_filter(name):
    """The RUN that installs the requirements drops the editable libs and the
    test tools, and keeps what the app runs with."""
    path = DOCKERFILES[name]
    run = next(args for k, args in instructions(path) if k == "RUN" and "pip install" in args)
    match = re.match(r"sed (.+?) (\S+\.txt) > (\S+)", run)
    assert match, run
    sed_args, requirements = shlex.split(match.group(1)), match.group(2)
    copied = [a.split()[0] for k, a in instructions(path) if k == "COPY" and "--from" not in a]
    assert requirements in copied
    assert re.search(r"pip install --no-cache-dir -r \S+ \./libs$", run)
    result = subprocess.run(
        ["sed", *sed_args, str(ROOT / requirements)], capture_output=True, text=True, check=True
    )
    names = {
        re.split(r"[=<>\[ ]", line.strip())[0].lower()
        for line in result.stdout.splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert not any(n.startswith("-") for n in names), names
    assert {"django", "gunicorn", "whitenoise", "djangorestframework"} <= names
    test_tools = {"pytest", "pytest-django", "factory-boy", "faker"}
    test_tools.add("secantusdb")  # [stage 2]
    assert not names & test_tools
    driver = "psycopg"
    if not table.APPS[name].sql:  # [stage 2]
        driver = "pymongo"  # [stage 2]
    assert driver in names


def ignore_patterns() -> list[tuple[bool, re.Pattern]]:
    patterns = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        glob = line.lstrip("!").strip("/")
        rx = re.escape(glob).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        patterns.append((negate, re.compile(rx + "$")))
    return patterns


def ignored(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; a folder's exclusion covers its files."""
    parts = path.strip("/").split("/")
    result = False
    for negate, rx in ignore_patterns():
        for i in range(1, len(parts) + 1):
            if rx.match("/".join(parts[:i])):
                result = not negate
                break
    return result


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_every_copied_source_is_in_the_build_context(name):
    for keyword, args in instructions(DOCKERFILES[name]):
        if keyword != "COPY" or "--from" in args:
            continue
        *sources, _dest = [a for a in args.split() if not a.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), source
            assert not ignored(source), f"{source} is excluded by .dockerignore"
            if (ROOT / source).is_dir():
                files = [p for p in (ROOT / source).rglob("*") if p.is_file()]
                kept = [p for p in files if not ignored(str(p.relative_to(ROOT)))]
                assert kept, f"{source}: nothing of it is left in the context"


def test_dockerignore_keeps_local_state_out():
    left_out = [".git/HEAD", ".venv/bin/python", ".data/x", "tests/contract/x.py",
                "monolith/posts/tests/test_api.py", "libs/blogweb/__pycache__/x.pyc",
                "docker/compose.yaml"]  # fmt: skip
    left_out.append("services/posts/staticfiles/x.css")  # [stage 4]
    for path in left_out:
        assert ignored(path), path
    kept = ["manage.py", "monolith/posts/models.py", "web/app.js", "docker/healthcheck.py"]
    kept.append("libs/blogbus/schemas/post.created.json")  # [stage 3]
    kept.append("services/posts/posts/migrations/0001_initial.py")  # [stage 4]
    for path in kept:
        assert not ignored(path), path


# --- the compose file ------------------------------------------------------------------


def test_compose_file_validates_against_the_compose_spec():
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
         str(DOCKER / "compose.yaml")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("stage_file", sorted(STAGE_FILES))
def test_each_stage_runs_the_processes_of_the_stage_table(stage_file):
    """The same processes as the stage table (which `STAGE=N make up` and the
    tests run; like `make up`, the monolith beside a stage without it), with the same
    stage settings: which comments backend, sync or async on each side, who
    calls whom."""
    stage, mode = STAGE_FILES[stage_file]
    expected = table_env(stage, mode)
    services = compose(stage_file)
    running = {
        ("gateway" if n.startswith("gateway-") else n): s
        for n, s in services.items()
        if "build" in s and not is_one_shot(s)
    }
    stores = {p.name for p in table.topology(stage, mode).of_role("store")}
    assert set(running) == set(expected) - stores
    assert ("mongo" in services) == ("mongodb" in expected)  # [stage 2]
    gateways = [n for n in services if n.startswith("gateway-")]
    assert gateways == ([f"gateway-stage{stage}"] if stage else [])
    for name, stage_env in expected.items():
        if name not in running or name == "gateway":
            continue
        env = running[name]["environment"]
        for key in SETTINGS_KEYS:
            # Unset, a setting has the app's default; a setting the app does
            # not read (None) leaves the app the one behaviour it has.
            default = setting_default(app_of(running[name]), key)
            if key in stage_env and (key in env or default is not None):
                assert str(env.get(key, default)) == stage_env[key], (name, key)
            elif key in env:
                assert env[key] == default, (name, key)
        for key in URL_KEYS:
            if key in stage_env:
                assert urlsplit(env[key]).hostname == urlsplit(stage_env[key]).hostname, (name, key)


def setting_default(app: str, key: str) -> str | None:
    """The default a settings module gives a variable (os.environ.get /
    env_bool); None if the settings do not read it."""
    base = settings_dir(app) / "base.py"
    text = base.read_text()
    if f'"{key}"' not in text:
        return None
    match = re.search(rf'os\.environ\.get\("{key}", "([^"]*)"\)', text)
    if match:
        return match.group(1)
    match = re.search(rf'env_bool\("{key}", (True|False)\)', text)
    assert match, f"{key} has no default in {base}"
    return "1" if match.group(1) == "True" else "0"


def settings_dir(app: str) -> Path:
    module = image_env(DOCKERFILES[app])["DJANGO_SETTINGS_MODULE"].rsplit(".", 1)[0]
    return app_dir(DOCKERFILES[app]) / module.replace(".", "/")


def stages_and_jobs():
    for stage_file in STAGE_FILES:
        yield stage_file, ()
    for profile, stage_file in JOB_PROFILES.items():
        yield stage_file, (profile,)


@pytest.mark.parametrize(("stage_file", "extra"), list(stages_and_jobs()))
def test_start_up_is_gated_by_healthchecks_and_one_shot_jobs(stage_file, extra):
    services = compose(stage_file, extra)
    for name, svc in services.items():
        depends = svc.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on with conditions"
        for dep, spec in depends.items():
            assert dep in services, f"{stage_file}: {name} depends on inactive {dep}"
            target = services[dep]
            if is_one_shot(target):
                want = "service_completed_successfully"
            else:
                assert has_healthcheck(target), f"{dep} has no healthcheck"
                want = "service_healthy"
            assert spec.get("condition") == want, (name, dep)
        # Whatever it connects to at start-up, it waits for.
        env = svc.get("environment", {})
        command = " ".join(svc.get("command", []))
        needs = set()
        stores = ["DATABASE_URL"]
        stores += ["MONGO_URL", "MONOLITH_DATABASE_URL"]  # [stage 2]
        # >>> stage 3: the relays, consumers and declare jobs use the broker
        if re.search(r"outbox_relay|bus_consume|bus_declare", command):
            needs.add(urlsplit(env["BROKER_URL"]).hostname)
        if "bus_declare" in command:  # it talks to the broker only
            stores = ["MONOLITH_DATABASE_URL"]
        # <<< stage 3
        for key in stores:
            if key in env:
                needs.add(urlsplit(env[key]).hostname)
        if "DATABASE_URL" in stores and "DATABASE_URL" in env and "migrate" not in command:
            database = env["DATABASE_URL"]
            needs.add(next(n for n, s in services.items()
                           if "migrate" in s.get("command", [])
                           and s["environment"]["DATABASE_URL"] == database))  # fmt: skip
        assert needs <= set(depends), f"{name} does not wait for {needs - set(depends)}"


# >>> stage 1: the gateway
@pytest.mark.parametrize("stage_file", [s for s, (n, _) in STAGE_FILES.items() if n])
def test_gateway_waits_for_the_upstreams_of_its_stage(stage_file):
    from gateway import routes

    stage = STAGE_FILES[stage_file][0]
    services = compose(stage_file)
    gateway = services[f"gateway-stage{stage}"]
    assert gateway["build"]["args"]["STAGE"] == str(stage)
    assert set(gateway["depends_on"]) == set(routes.table(stage).upstreams())


# <<< stage 1
# >>> stage 3: events
@pytest.mark.parametrize("stage_file", sorted(STAGE_FILES))
def test_event_queues_are_declared_before_the_relays_publish(stage_file):
    """Each relay waits for a declare job that binds the queue of every consumer
    of its events at this stage (an event published before is not routed),
    with the routing keys of the stage table."""
    services = compose(stage_file)
    consumers = {}
    for svc in services.values():
        command = svc.get("command", [])
        if "bus_consume" in command:
            service = command[command.index("--service") + 1]
            consumers[service] = set(table.consumer_of(service).keys)
    declared = {}
    for name, svc in services.items():
        command = svc.get("command", [])
        if "bus_declare" in command:
            service = command[command.index("--service") + 1]
            keys = {command[i + 1] for i, a in enumerate(command) if a == "--key"}
            assert consumers.get(service) == keys, (name, service, keys)
            declared[name] = keys
    for name, svc in services.items():
        command = svc.get("command", [])
        if any("outbox_relay" in a for a in command):
            published = {"post.created", "post.deleted"}
            if app_of(svc) == "comments":
                published = {"comment.created", "comment.deleted"}
            waits = {k for d in svc["depends_on"] if d in declared for k in declared[d]}
            assert published <= waits, f"{name} publishes {published} before they are bound"


# <<< stage 3
def manage(app: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "BROKER_"))}
    image = {k: v for k, v in image_env(DOCKERFILES[app]).items() if k != "PATH"}
    if not env:  # settings only: the placeholders the images' collectstatic uses
        env = placeholder_env(app)
    return subprocess.run(
        [PY, "manage.py", *args],
        cwd=app_dir(DOCKERFILES[app]),
        env={**base, **image, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def placeholder_env(app: str) -> dict[str, str]:
    run = next(
        args for k, args in final_stage(DOCKERFILES[app]) if k == "RUN" and "collectstatic" in args
    )
    return dict(re.findall(r"\b([A-Z_]+)=(\S+)", run))


def app_commands():
    seen = {}
    for stage_file, extra in stages_and_jobs():
        for name, svc in compose(stage_file, extra).items():
            app = app_of(svc)
            if not app:
                continue
            command = svc.get("command") or ["python", "manage.py", "check", "--deploy"]
            env = {k: str(v) for k, v in svc["environment"].items()}
            key = (app, tuple(command), tuple(sorted(env.items())))
            seen.setdefault(key, f"{stage_file}-{name}")
    return [pytest.param(app, list(cmd), dict(env), id=i) for (app, cmd, env), i in seen.items()]


@pytest.mark.parametrize(("app", "command", "env"), app_commands())
def test_every_command_runs_in_its_project_with_the_compose_environment(app, command, env):
    """`manage.py help <command>` in the image's project, with the service's
    environment over the image's: the production settings load (every
    required variable is set and valid) and the command exists there. Web
    services run `check --deploy` instead (DJANGO_SECURE_SSL_REDIRECT=0 in
    compose is the one deliberate warning)."""
    assert command[:2] == ["python", "manage.py"], command
    if command[2] == "check":
        result = manage(app, command[2:], env)
        assert result.returncode == 0, result.stderr
        warnings = set(re.findall(r"security\.W\d+", result.stdout + result.stderr))
        assert warnings <= {"security.W008"}, result.stdout + result.stderr
    else:
        result = manage(app, ["help", command[2]], env)
        assert result.returncode == 0, result.stderr
        assert "usage:" in result.stdout


def app_sources(app: str) -> str:
    here = app_dir(DOCKERFILES[app])
    files = [p for p in here.rglob("*.py") if "tests" not in p.parts and p.name != "conftest.py"]
    if app == "monolith":
        files = [p for p in files if p.parts[len(ROOT.parts)] in ("monolith", "manage.py")]
    files += list((ROOT / "libs" / "blogweb").rglob("*.py"))
    files += list((ROOT / "libs" / "blogbus").rglob("*.py"))  # [stage 3]
    return "\n".join(p.read_text() for p in files)


@pytest.mark.parametrize("app", APPS)
def test_compose_sets_only_variables_the_app_reads_and_every_required_one(app):
    sources = app_sources(app)
    production = (settings_dir(app) / "production.py").read_text()
    required = {"DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS"}
    required |= set(re.findall(r'"([A-Z_]+)"', re.search(r"required=\(([^)]*)\)", production)[1]))
    for stage_file, extra in stages_and_jobs():
        for name, svc in compose(stage_file, extra).items():
            if app_of(svc) != app:
                continue
            env = svc["environment"]
            for key in env:
                assert key in RUNTIME_VARS or f'"{key}"' in sources, (
                    f"{name} sets {key}, which {app} never reads"
                )
            missing = {k for k in required if not str(env.get(k, "")).strip()}
            assert not missing, f"{stage_file}: {name} lacks {missing}"


def in_the_path() -> dict[str, dict]:
    """Each app's compose service at the newest stage (default mode) that has
    it in the request path."""
    found = {}
    for stage_file, (n, mode) in STAGE_FILES.items():
        if mode == table.STAGES[n].default_mode:
            services = compose(stage_file)
            found |= {app: services[app] for app in table.topology(n).apps}
    return found


def test_ports_match_across_images_compose_and_the_local_runner():
    services = in_the_path()
    expected = {name: app.port for name, app in table.APPS.items()}
    for app, port in expected.items():
        assert port_of(services[app]) == port
        assert last(DOCKERFILES[app], "EXPOSE") == str(port)
        assert services[app]["ports"] == [f"127.0.0.1:{port}:{port}"]
    # Every URL a component is given names a compose service on its port.
    for stage_file in STAGE_FILES:
        for svc in compose(stage_file).values():
            urls = [v for k, v in svc.get("environment", {}).items() if k in URL_KEYS]
            for url in urls:
                host, port = urlsplit(url).hostname, urlsplit(url).port
                assert port == expected[host], url
    # >>> stage 1: the gateway
    gateway_run = next(a for k, a in instructions(DOCKERFILES["gateway"]) if "gateway.render" in a)
    listen = re.search(r"--listen (\S+)", gateway_run)[1]
    assert listen == "0.0.0.0:" + last(DOCKERFILES["gateway"], "EXPOSE")
    assert "8080" in " ".join(exec_form(last(DOCKERFILES["gateway"], "HEALTHCHECK")))
    for n in table.STAGES:
        if table.topology(n).has_gateway:
            stage = compose(f"stage{n}")
            assert stage[f"gateway-stage{n}"]["ports"] == ["127.0.0.1:8080:8080"]
    args = dict(
        a.split(" ", 1)[0].split("=", 1)
        for k, a in instructions(DOCKERFILES["gateway"])
        if k == "ARG" and "URL" in a
    )
    for url in args.values():
        assert urlsplit(url).port == expected[urlsplit(url).hostname], url
    # <<< stage 1


# --- the images at run time: CMD and HEALTHCHECK against the real code ---------------------


@pytest.mark.parametrize("app", APPS)
def test_cmd_serves_and_the_healthcheck_tells_up_from_down(app, tmp_path):
    """The image's CMD (gunicorn, PORT from the environment) serving the real
    app with its compose environment and production settings; the image's
    HEALTHCHECK passes while it runs, also when DJANGO_ALLOWED_HOSTS does not
    list 127.0.0.1, and fails once it is gone."""
    path = DOCKERFILES[app]
    services = in_the_path()
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "BROKER_"))},
        **{k: v for k, v in image_env(path).items() if k != "PATH"},
        **{k: str(v) for k, v in services[app]["environment"].items()},
        "PORT": str(port),
        # Not 127.0.0.1: the probe must name an allowed host itself.
        "DJANGO_ALLOWED_HOSTS": ".blog.example.com,other.example.com",
    }
    if "DATABASE_URL" in env:
        env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    command = exec_form(last(path, "CMD"))
    assert command[0] == "gunicorn"
    command = [str(BIN / "gunicorn"), *command[1:]]
    check = exec_form(last(path, "HEALTHCHECK"))
    assert check[:2] == ["python", "/opt/blog/healthcheck.py"]
    copied = [a.split() for k, a in instructions(path) if k == "COPY" and check[1] in a]
    assert copied, f"{check[1]} is not copied into the image"
    probe = [PY, str(ROOT / copied[0][0])]

    def healthy(**over: str) -> bool:
        probe_env = {**env, **over}
        return subprocess.run(probe, env=probe_env, capture_output=True, timeout=10).returncode == 0

    assert not healthy(), "healthy before the server started"
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        command, cwd=app_dir(path), env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 45
        while not healthy():
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.3)
        # The Host matters: Django refuses one it does not allow.
        assert not healthy(DJANGO_ALLOWED_HOSTS="127.0.0.1")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
    assert not healthy(), "healthy after the server stopped"


# >>> stage 1: the gateway image
# --- the gateway image: its build stage rendered, its ENTRYPOINT run ---------------------------

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
        server.send_signal(signal.SIGTERM)  # what Kubernetes sends
        server.wait(timeout=15)
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
    # <<< stage 1
