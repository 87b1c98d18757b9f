"""docker/compose.yaml, checked without a Docker engine: the Compose spec's
JSON Schema, each stage's services against the processes of the stage table
(stages/table.py), start-up gated on healthchecks and one-shot jobs, every
command and settings module under the compose environment, the variables
compose sets, and the ports images, compose and the local runner agree on."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from stages import table
from tests.deploy.compose import (
    SETTINGS_KEYS,
    STAGE_FILES,
    URL_KEYS,
    app_of,
    compose,
    compose_raw,  # [stage 2]
    dev_tokens,  # [stage 2]
    has_healthcheck,
    in_the_path,
    is_one_shot,
    port_of,
    stages_and_jobs,
    table_env,
)
from tests.deploy.dockerfiles import (
    APPS,
    DOCKER,
    DOCKERFILES,
    ROOT,
    app_dir,
    exec_form,  # [stage 1]
    final_stage,
    image_env,
    instructions,  # [stage 1]
    last,
)

BIN = Path(sys.executable).parent
PY = sys.executable
# Variables the images or their servers read, not the Django settings.
RUNTIME_VARS = {"DJANGO_SETTINGS_MODULE", "PORT", "PATH", "PYTHONDONTWRITEBYTECODE"}


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


# >>> stage 2: the credentials of the /internal/ routes
CREDENTIALS = ("INTERNAL_TOKEN", "INTERNAL_CALLERS")


@pytest.mark.parametrize("stage_file", sorted(STAGE_FILES))
def test_each_web_service_has_the_credentials_of_the_stage_table(stage_file):
    """Its own token and exactly the callers the table says (hashes of the
    callers' dev tokens); relays, consumers and jobs have none."""
    stage, mode = STAGE_FILES[stage_file]
    expected = table_env(stage, mode)
    for name, svc in compose(stage_file).items():
        env = svc.get("environment", {})
        given = {key: env[key] for key in CREDENTIALS if env.get(key)}
        table_name = "gateway" if name.startswith("gateway-") else name
        want = {key: v for key in CREDENTIALS if (v := expected.get(table_name, {}).get(key))}
        assert given == want, f"{stage_file}: {name}"


def test_each_service_is_given_its_own_token_only():
    tokens = dev_tokens()
    assert set(tokens) == set(table.APPS)
    assert len(set(tokens.values())) == len(tokens)
    for name, svc in compose_raw()["services"].items():
        env = svc.get("environment")
        if not isinstance(env, dict) or "INTERNAL_TOKEN" not in env:
            continue
        app = app_of(svc)
        assert str(env["INTERNAL_TOKEN"]).startswith(f"${{{app.upper()}_INTERNAL_TOKEN"), name
        others = [t for a, t in tokens.items() if a != app]
        assert not [t for t in others if t in str(env)], f"{name} holds another app's token"
    # <<< stage 2
