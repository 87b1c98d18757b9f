"""docker/*.Dockerfile, checked without a Docker engine: hadolint on every
Dockerfile, what each image is (multi-stage, pinned, non-root, exec form), the
requirements each installs, and the build context its COPY instructions read
(.dockerignore)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from stages import table
from tests.deploy.dockerfiles import (
    APPS,
    DOCKER,
    DOCKERFILES,
    ROOT,
    app_dir,
    copied_sources,
    exec_form,
    final_stage,
    ignored,
    image_env,
    instructions,
    last,
    package_names,
    requirement_lines,
    runtime_requirements,
)

BIN = Path(sys.executable).parent
TEST_TOOLS = {"pytest", "pytest-django", "pytest-timeout", "factory-boy", "faker", "playwright"}
TEST_TOOLS.add("secantusdb")  # [stage 2]
# Each app's development file: its runtime file (-r), the editable libs and the
# test tools, installed from the app's folder.
DEV_REQUIREMENTS = {"monolith": "requirements/dev.txt"}
DEV_REQUIREMENTS["posts"] = "services/posts/requirements.txt"  # [stage 4]
DEV_REQUIREMENTS["comments"] = "services/comments/requirements.txt"  # [stage 2]


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
def test_the_image_installs_its_runtime_requirements_file_as_it_is(name):
    """The build stage installs one requirements file, unfiltered, and libs as
    a package: that file holds what the app runs with, and no test tool,
    editable install or include."""
    path = DOCKERFILES[name]
    requirements = runtime_requirements(path)
    assert requirements in copied_sources(path)
    runs = [args for k, args in instructions(path) if k == "RUN"]
    assert not any(re.search(r"\bsed\b", run) for run in runs), "no filtering in the image"
    lines = requirement_lines(ROOT / requirements)
    options = [line for line in lines if line.startswith("-")]
    assert not options, f"{requirements}: {options}"
    names = package_names(lines)
    assert {"django", "gunicorn", "whitenoise", "djangorestframework"} <= names
    assert not names & TEST_TOOLS
    assert all("==" in line for line in lines), "pinned"
    driver = "psycopg"
    if not table.APPS[name].sql:  # [stage 2]
        driver = "pymongo"  # [stage 2]
    assert driver in names


@pytest.mark.parametrize("name", APPS)
def test_the_dev_requirements_add_the_test_tools_and_editable_libs(name):
    """The app's development file includes the image's runtime file (-r), and
    adds the test tools and the shared libs, editable, resolved from the
    app's folder (where the file says to install it from)."""
    dev = ROOT / DEV_REQUIREMENTS[name]
    runtime = ROOT / runtime_requirements(DOCKERFILES[name])
    lines = requirement_lines(dev)
    assert set(requirement_lines(runtime)) <= set(lines)
    assert {"pytest", "pytest-django"} <= package_names(lines)
    editable = [line.split(None, 1)[1] for line in lines if line.startswith("-e ")]
    folder = ROOT / table.APPS[name].folder
    assert [(folder / e).resolve() for e in editable] == [ROOT / "libs"], editable


def test_make_ups_layer_runs_every_app_without_the_test_tools():
    """requirements/runtime.txt (the Makefile's first layer: `make up`,
    `make migrate`, `make seed`) holds every app's image requirements, the
    editable libs, honcho and the demo data's packages, and no test tool; the
    dev layer includes it."""
    lines = requirement_lines(ROOT / "requirements" / "runtime.txt")
    for name in APPS:
        assert set(requirement_lines(ROOT / runtime_requirements(DOCKERFILES[name]))) <= set(lines)
    assert "-e ./libs" in lines
    names = package_names(lines)
    assert {"honcho", "tqdm"} <= names
    allowed = {"faker"}  # the demo data of `make seed`
    allowed.add("secantusdb")  # [stage 2]
    assert not names & (TEST_TOOLS - allowed)
    assert set(lines) <= set(requirement_lines(ROOT / "requirements" / "dev.txt"))


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_every_copied_source_is_in_the_build_context(name):
    for source in copied_sources(DOCKERFILES[name]):
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
