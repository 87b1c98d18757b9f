"""Reading docker/compose.yaml as compose would run it: the env file of
each stage, compose's interpolation, the services active with a stage's
profiles, and what the stage table (stages/table.py) says the same stage
runs. Shared by the deploy tests."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import yaml

from stages import table
from tests.deploy.dockerfiles import APPS, DOCKER, final_stage, image_env

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
    """docker/<name>.env as compose reads it."""
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


def stages_and_jobs():
    """(env file, extra profiles): every stage, and every job run by hand."""
    for stage_file in STAGE_FILES:
        yield stage_file, ()
    for profile, stage_file in JOB_PROFILES.items():
        yield stage_file, (profile,)


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


def in_the_path() -> dict[str, dict]:
    """Each app's compose service at the newest stage (default mode) that has
    it in the request path."""
    found = {}
    for stage_file, (n, mode) in STAGE_FILES.items():
        if mode == table.STAGES[n].default_mode:
            services = compose(stage_file)
            found |= {app: services[app] for app in table.topology(n).apps}
    return found


# >>> stage 2: the credentials of the /internal/ routes
def dev_tokens() -> dict[str, str]:
    """Each app's token as compose gives it by default (``${<APP>_INTERNAL_TOKEN...}``)."""
    text = (DOCKER / "compose.yaml").read_text()
    found = {}
    for app in table.APPS:
        match = re.search(rf"\$\{{{app.upper()}_INTERNAL_TOKEN:?-([^}}]+)\}}", text)
        if match:
            found[app] = match.group(1)
    return found
    # <<< stage 2


def table_env(stage: int, mode: str | None) -> dict[str, dict[str, str]]:
    """The stage table's processes of ``stage`` in ``mode``: name -> stage
    settings, addresses written as compose's host names."""
    addresses: dict[str, object]
    addresses = {name: f"http://{name}:{app.port}" for name, app in table.APPS.items()}
    addresses["mongodb"] = "mongodb://mongo:27017"  # [stage 2]
    addresses["broker"] = "amqp://rabbitmq:5672//"  # [stage 3]
    addresses |= table.credentials(dev_tokens())  # compose's dev defaults  # [stage 2]
    topology = table.topology(stage, mode)
    return {p.name: p.environment(addresses) for p in table.side_by_side(topology)}
