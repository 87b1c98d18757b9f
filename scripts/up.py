"""`make up`: the selected stage (the monolith on :8000, and what the stage
adds), as one Procfile run by honcho (Ctrl-C stops all). What runs at each
stage comes from the stage table (``stages/table.py``); this script runs it
on the embedded profile.

    python scripts/up.py                      # the newest stage of this tree
    python scripts/up.py --stage 0            # write .data/Procfile, print URLs, run it
    python scripts/up.py --stage 0 --print    # only print the Procfile
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit  # [stage 3]

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stages import table  # noqa: E402 - the repository's root is on the path now

PY = sys.executable
DATA = Path(os.environ.get("DATA_DIR") or ROOT / ".data").resolve()
GATEWAY_PORT = int(os.environ.get("GATEWAY_PORT", "8080"))  # [stage 1]
# >>> stage 2: the comments' MongoDB-wire server
MONGO_PORT = int(os.environ.get("MONGO_PORT", "27017"))
# <<< stage 2
# >>> stage 3: events through the embedded profile's folder broker
# Unset, the broker is a folder shared by every process (blogbus.fsbroker;
# the URL is what blogbus.broker.filesystem_url builds, not imported so that
# `--print` runs without the virtualenv); an amqp:// URL needs that RabbitMQ.
BROKER_URL = os.environ.get("BROKER_URL") or f"filesystem://{DATA / 'bus'}"
# <<< stage 3
# >>> stage 2: the credentials of the /internal/ routes
# One token per app, made on the first run and kept (owner-only) so that every
# process of a run, and `make seed`, agree; delete the file for new ones.
TOKENS = DATA / table.TOKENS_FILE
# <<< stage 2


def port(app: str) -> int:
    spec = table.APPS[app]
    return int(os.environ.get(spec.port_env, str(spec.port)))


def addresses() -> dict[str, object]:
    """What the table's placeholders stand for on this machine."""
    found: dict[str, object] = {app: f"http://127.0.0.1:{port(app)}" for app in table.APPS}
    found["mongodb"] = f"mongodb://127.0.0.1:{MONGO_PORT}"  # [stage 2]
    found["broker"] = BROKER_URL  # [stage 3]
    return found


def command(process: table.Process, stage: int) -> str:
    """The command line of one table process on the embedded profile."""
    # >>> stage 1: the gateway, served by the dev router
    if process.role == "gateway":
        return f"{PY} -m gateway.devrouter --stage {stage} --listen 127.0.0.1:{GATEWAY_PORT}"
    # <<< stage 1
    # >>> stage 2: the comments' store
    if process.role == "store":
        return (
            f"{PY} -m secantus --host 127.0.0.1 --port {MONGO_PORT} "
            f"--storage-path {DATA / 'comments-mongo'}"
        )
    # <<< stage 2
    app = table.APPS[process.app]
    # >>> stage 3: outbox relays and consumers
    if process.role == "relay":
        return f"{PY} manage.py {app.relay_command}"
    if process.role == "consumer":
        return f"{PY} manage.py bus_consume --service {app.name}"
    # <<< stage 3
    return f"{PY} manage.py runserver 127.0.0.1:{port(app.name)}"


def procfile(topology: table.Topology, where: Mapping[str, object]) -> str:
    lines = []
    for process in table.side_by_side(topology):
        env = " ".join(f"{k}={v}" for k, v in process.environment(where).items())
        line = command(process, topology.stage)
        if env:
            line = f"exec env {env} {line}"
        folder = table.APPS[process.app].folder if process.app in table.APPS else "."
        if folder != ".":
            line = f"cd {folder} && {line}"
        lines.append(f"{process.name}: {line}")
    return "\n".join(lines) + "\n"


def prepare(
    topology: table.Topology, where: Mapping[str, object]
) -> list[tuple[str, list[str], dict[str, str]]]:
    """What runs before honcho starts: the migrations of each SQL app but the
    monolith (whose are `make migrate`'s)."""
    envs = {
        p.app: p.environment(where) for p in table.side_by_side(topology) if p.app in table.APPS
    }
    steps = []
    for app in envs:
        if table.APPS[app].sql and app != "monolith":
            steps.append((app, [PY, "manage.py", "migrate", "--noinput", "-v0"], envs[app]))
    # >>> stage 3: each consumer's queue and bindings, before a relay's first event
    for consumer in topology.consumers:
        keys = [arg for key in consumer.keys for arg in ("--key", key)]
        args = [PY, "manage.py", "bus_declare", "--service", consumer.service, *keys]
        steps.append((consumer.service, args, envs[consumer.service]))
    # <<< stage 3
    return steps


def banner(topology: table.Topology) -> str:
    rows = [
        ("Monolith (stage 0)", f"http://127.0.0.1:{port('monolith')}/"),
        ("  API docs", f"http://127.0.0.1:{port('monolith')}/api/docs/"),
    ]
    for app in topology.apps:
        if app != "monolith":
            rows.append((f"  {app} service", f"http://127.0.0.1:{port(app)}/healthz"))
    # >>> stage 1: the stage behind the gateway on :8080
    if topology.has_gateway:
        mode = "" if topology.mode == "-" else f", {topology.mode}"
        rows += [
            (
                f"Stage {topology.stage}{mode} behind the gateway",
                f"http://127.0.0.1:{GATEWAY_PORT}/",
            ),
            ("  API", f"http://127.0.0.1:{GATEWAY_PORT}/api/posts/"),
            ("  gateway probes", f"http://127.0.0.1:{GATEWAY_PORT}/healthz  /readyz"),
        ]
    # <<< stage 1
    # >>> stage 3: where the events go
    if topology.has_events:
        if BROKER_URL.startswith("filesystem:"):
            where = f"{BROKER_URL}  (queues/, claimed/ = unacked, *.dlq = dead letters)"
        else:
            parts = urlsplit(BROKER_URL)  # no credentials on the screen
            where = f"{parts.scheme}://{parts.hostname}:{parts.port or 5672}{parts.path}"
        rows.append(("  event broker", where))
    # <<< stage 3
    width = max(len(label) for label, _ in rows) + 3
    text = "\n".join(f"  {label:<{width}}{url}" for label, url in rows)
    return f"\n{text}\n  Demo data: 'make seed' in another terminal.  Stop everything: Ctrl-C.\n"


# >>> stage 3: an amqp:// broker must be up (a folder broker needs nothing running)
def broker_reachable() -> bool:
    import socket

    if BROKER_URL.split(":", 1)[0] not in ("amqp", "amqps", "pyamqp"):
        return True
    parts = urlsplit(BROKER_URL)
    try:
        with socket.create_connection((parts.hostname, parts.port or 5672), timeout=1):
            return True
    except OSError:
        return False
    # <<< stage 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--stage", type=int, default=table.NEWEST, help=f"default: {table.NEWEST}, the newest"
    )
    parser.add_argument(
        "--mode",
        default=os.environ.get("MODE") or None,
        help="how the parts talk, where a stage offers a choice (env MODE; "
        "POST_LOOKUP and COMMENT_COUNTS set one side apart from stage 3 on)",
    )
    parser.add_argument("--print", action="store_true", help="print the Procfile and exit")
    args = parser.parse_args(argv)
    try:
        topology = table.topology(
            args.stage,
            args.mode,
            post_lookup=os.environ.get("POST_LOOKUP") or None,  # [stage 3]
            comment_counts=os.environ.get("COMMENT_COUNTS") or None,  # [stage 3]
        )
    except ValueError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 2
    where = addresses()
    if args.print:
        # >>> stage 2: the credentials are only named on the screen
        where["token"] = {app: f"<{app} token in {TOKENS}>" for app in table.APPS}
        where["caller"] = {app: f"{app}:<sha256 of that token>" for app in table.APPS}
        # <<< stage 2
        print(procfile(topology, where), end="")
        return 0
    # >>> stage 3: events need their broker
    if topology.has_events and not broker_reachable():
        print(
            f"stack: stage {args.stage} runs events and needs the broker at {BROKER_URL} "
            "(start it, or unset BROKER_URL for the embedded folder broker)",
            file=sys.stderr,
        )
        return 2
    # <<< stage 3
    DATA.mkdir(parents=True, exist_ok=True)
    where |= table.credentials(table.kept_tokens(DATA))  # [stage 2]
    for app, step, env in prepare(topology, where):
        done = subprocess.run(
            step,
            cwd=ROOT / table.APPS[app].folder,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            print(
                f"stack: {app}: {' '.join(step[1:])} failed:\n{done.stdout}{done.stderr}",
                file=sys.stderr,
            )
            return 2
        if done.stdout.strip():
            print(f"stack: {done.stdout.strip()}", flush=True)
    path = DATA / "Procfile"
    # >>> stage 2: owner-only, since it holds the credentials
    path.touch(mode=0o600)
    path.chmod(0o600)
    # <<< stage 2
    path.write_text(procfile(topology, where))
    print(banner(topology), flush=True)
    honcho = Path(PY).with_name("honcho")
    os.chdir(ROOT)
    # honcho takes over this process: its Ctrl-C handling stops every child.
    os.execv(str(honcho), [str(honcho), "-f", str(path), "-d", str(ROOT), "start"])  # noqa: S606


if __name__ == "__main__":
    sys.exit(main())
