"""Reading the images' sources without a Docker engine: a Dockerfile's
instructions (continuation lines joined), its final stage, the image's
environment, exec-form commands, Docker's .dockerignore rule, and the
requirements files the images install. Shared by the deploy tests."""

from __future__ import annotations

import json
import re
import shlex
from functools import cache
from pathlib import Path

from stages import table

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"

APPS = tuple(table.APPS)
DOCKERFILES = {name: DOCKER / f"{name}.Dockerfile" for name in APPS}
DOCKERFILES["gateway"] = DOCKER / "gateway.Dockerfile"  # [stage 1]


# --- Dockerfiles ---------------------------------------------------------------------


@cache
def instructions(path: Path) -> tuple[tuple[str, str], ...]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
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
    return tuple(out)


def final_stage(path: Path) -> tuple[tuple[str, str], ...]:
    """The instructions from the last FROM on: what the image is."""
    items = instructions(path)
    last_from = max(i for i, (k, _) in enumerate(items) if k == "FROM")
    return items[last_from:]


def image_env(path: Path) -> dict[str, str]:
    """The ENV of the final stage."""
    env: dict[str, str] = {}
    for keyword, args in final_stage(path):
        if keyword == "ENV":
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def last(path: Path, keyword: str) -> str:
    """The arguments of the final stage's last ``keyword`` instruction (which wins)."""
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


def copied_sources(path: Path) -> list[str]:
    """The build-context paths the Dockerfile's COPY instructions copy (not --from)."""
    sources = []
    for keyword, args in instructions(path):
        if keyword != "COPY" or "--from" in args:
            continue
        sources += [a for a in args.split() if not a.startswith("--")][:-1]
    return sources


# --- .dockerignore -----------------------------------------------------------------------


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


# --- requirements files ----------------------------------------------------------------


def requirement_lines(path: Path) -> list[str]:
    """The lines of a requirements file that pip reads, comments and blank
    lines left out, the files it includes (``-r``) read in their place."""
    lines = []
    for raw in path.read_text().splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line:
            continue
        if line.startswith("-r "):
            lines += requirement_lines(path.parent / line.removeprefix("-r ").strip())
        else:
            lines.append(line)
    return lines


def package_names(lines: list[str]) -> set[str]:
    """The normalised project names of requirement lines (options left out)."""
    return {
        re.split(r"[=<>~!\[ ;]", line)[0].lower().replace("_", "-")
        for line in lines
        if not line.startswith("-")
    }


def runtime_requirements(dockerfile: Path) -> str:
    """The requirements file the build stage's `pip install` installs, as
    written in the Dockerfile (a build-context path)."""
    run = next(a for k, a in instructions(dockerfile) if k == "RUN" and "pip install" in a)
    match = re.fullmatch(r"pip install --no-cache-dir -r (\S+\.txt) \./libs", run)
    assert match, f"{dockerfile.name}: installs something else than a requirements file: {run}"
    return match.group(1)
