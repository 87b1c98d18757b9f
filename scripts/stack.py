"""`make up`: the monolith on :8000 and, behind the gateway on :8080, the
stack of the selected stage, as one Procfile run by honcho (Ctrl-C stops all).

    python scripts/stack.py --stage 1            # write .data/Procfile, print URLs, run it
    python scripts/stack.py --stage 1 --print    # only print the Procfile

Events (stage 3, stage 4 async) go through `BROKER_URL`; unset, the embedded
profile's broker: `filesystem://<repo>/.data/bus` (blogbus.fsbroker), so
nothing but Python is needed. An `amqp://` URL needs that RabbitMQ running.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
MONOLITH_PORT = int(os.environ.get("MONOLITH_PORT", "8000"))
GATEWAY_PORT = int(os.environ.get("GATEWAY_PORT", "8080"))

POSTS_PORT = int(os.environ.get("POSTS_PORT", "8001"))
COMMENTS_PORT = int(os.environ.get("COMMENTS_PORT", "8002"))
MONGO_PORT = int(os.environ.get("MONGO_PORT", "27017"))

DATA = Path(os.environ.get("DATA_DIR") or ROOT / ".data").resolve()
# The embedded profile's broker, shared by every process through one absolute
# folder (what blogbus.broker.filesystem_url builds; not imported, so that
# `--print` runs without the virtualenv).
BROKER_URL = os.environ.get("BROKER_URL") or f"filesystem://{DATA / 'bus'}"

RUNNABLE = {0, 1, 2, 3, 4}


def consume(service: str) -> str:
    """The consumer's command after `env ...` (BROKER_URL is in that env)."""
    return f"{PY} manage.py bus_consume --service {service}"


def broker_is_amqp() -> bool:
    return BROKER_URL.split(":", 1)[0] in ("amqp", "amqps", "pyamqp")


def broker_is_filesystem() -> bool:
    return BROKER_URL.startswith("filesystem:")


# Who consumes which events (the services' BLOGBUS_CONSUMERS): (folder, service, keys).
MONOLITH_CONSUMER = (".", "monolith", ("comment.created", "comment.deleted"))
COMMENTS_CONSUMER = ("services/comments", "comments", ("post.created", "post.deleted"))
POSTS_CONSUMER = ("services/posts", "posts", ("comment.created", "comment.deleted"))


def consumers(stage: int, mode: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """The consumer lines of the Procfile, whose queues must exist before a relay publishes."""
    if stage == 3:
        return [MONOLITH_CONSUMER, *([COMMENTS_CONSUMER] if events_on(mode) else [])]
    if stage == 4 and events_on(mode):
        return [POSTS_CONSUMER, COMMENTS_CONSUMER]
    return []


def declare_commands(stage: int, mode: str) -> list[tuple[str, list[str]]]:
    """`bus_declare` for each consumer's queue and bindings, run before honcho
    starts: a relay's first events then find their queues (an unroutable event
    stays pending in its outbox, but waits for the relay's back-off)."""
    commands = []
    for folder, service, keys in consumers(stage, mode):
        args = [PY, "manage.py", "bus_declare", "--service", service, "--broker-url", BROKER_URL]
        for key in keys:
            args += ["--key", key]
        commands.append((folder, args))
    return commands


def mongodb(data: Path) -> str:
    return (
        f"mongodb: {PY} -m secantus --host 127.0.0.1 --port {MONGO_PORT} "
        f"--storage-path {data / 'comments-mongo'}"
    )


def post_lookup(mode: str) -> str:
    return os.environ.get("POST_LOOKUP") or mode


def comment_counts(mode: str) -> str:
    return os.environ.get("COMMENT_COUNTS") or mode


def events_on(mode: str) -> bool:
    """Relays, consumers and a broker, when either side is fed by events."""
    return "async" in (post_lookup(mode), comment_counts(mode))


def comments_service(posts_owner_url: str, mode: str) -> list[str]:
    env = (
        f"MONGO_URL=mongodb://127.0.0.1:{MONGO_PORT} POSTS_URL={posts_owner_url} "
        f"POST_LOOKUP={post_lookup(mode)} BROKER_URL={BROKER_URL}"
    )
    here = f"cd services/comments && exec env {env}"
    lines = [f"comments: {here} {PY} manage.py runserver 127.0.0.1:{COMMENTS_PORT}"]
    if events_on(mode):
        lines += [
            f"comments-relay: {here} {PY} manage.py comments_outbox_relay",
            f"comments-consumer: {here} {consume('comments')}",
        ]
    return lines


def microservices(data: Path, mode: str) -> list[str]:
    """Stage 4 on the embedded profile: posts on SQLite, comments on the
    MongoDB-wire server, both under .data/."""
    env = (
        f"COMMENTS_URL=http://127.0.0.1:{COMMENTS_PORT} COMMENT_COUNTS={comment_counts(mode)} "
        f"BROKER_URL={BROKER_URL}"
    )
    lines = [
        mongodb(data),
        f"posts: cd services/posts && {PY} manage.py migrate --noinput -v0 && "
        f"exec env {env} {PY} manage.py runserver 127.0.0.1:{POSTS_PORT}",
        *comments_service(f"http://127.0.0.1:{POSTS_PORT}", mode),
    ]
    if events_on(mode):
        # The relay and the consumer wait until the web line has migrated.
        wait = f"until {PY} manage.py migrate --check >/dev/null 2>&1; do sleep 0.5; done"
        lines += [
            f"posts-relay: cd services/posts && {wait} && exec env {env} {PY} manage.py "
            "outbox_relay",
            f"posts-consumer: cd services/posts && {wait} && exec env {env} {consume('posts')}",
        ]

    return lines


def procfile(stage: int, data: Path, mode: str) -> str:
    monolith_env = ""
    if stage == 2:
        # Branch by abstraction: the monolith's comments now live in the service.
        monolith_env = (
            f"env COMMENTS_BACKEND=service COMMENTS_URL=http://127.0.0.1:{COMMENTS_PORT} "
        )
    if stage == 3:
        monolith_env = (
            f"env COMMENTS_BACKEND=service COMMENTS_URL=http://127.0.0.1:{COMMENTS_PORT} "
            f"COMMENT_COUNTS={comment_counts('async')} PUBLISH_EVENTS=1 BROKER_URL={BROKER_URL} "
        )
    lines = [f"monolith: {monolith_env}{PY} manage.py runserver 127.0.0.1:{MONOLITH_PORT}"]
    if stage == 3:
        lines += [
            f"monolith-relay: {monolith_env}{PY} manage.py outbox_relay",
            f"monolith-consumer: {monolith_env}{consume('monolith')}",
        ]
    if stage in (2, 3):
        lines += [mongodb(data), *comments_service(f"http://127.0.0.1:{MONOLITH_PORT}", mode)]
    if stage == 4:
        lines += microservices(data, mode)
    if stage >= 1:
        lines.append(
            f"gateway: env POSTS_URL=http://127.0.0.1:{POSTS_PORT} "
            f"COMMENTS_URL=http://127.0.0.1:{COMMENTS_PORT} "
            f"MONOLITH_URL=http://127.0.0.1:{MONOLITH_PORT} "
            f"{PY} -m gateway.devrouter --stage {stage} --listen 127.0.0.1:{GATEWAY_PORT}"
        )
    return "\n".join(lines) + "\n"


def stage_mode(stage: int, requested: str | None) -> str:
    """Stage 3 is events by definition; stage 4 takes MODE (default async, as
    in ARCHITECTURE); stage 2 is sync calls."""
    if stage == 3:
        return "async"
    if stage == 4:
        return requested or "async"
    return "sync"


def broker_reachable() -> bool:
    """An amqp broker answers on its port (a filesystem broker needs nothing running)."""
    import socket

    if not broker_is_amqp():
        return True
    parts = urlsplit(BROKER_URL)
    try:
        with socket.create_connection((parts.hostname, parts.port or 5672), timeout=1):
            return True
    except OSError:
        return False


def banner(stage: int, mode: str) -> str:
    rows = [
        ("Monolith (stage 0)", f"http://127.0.0.1:{MONOLITH_PORT}/"),
        ("  API docs", f"http://127.0.0.1:{MONOLITH_PORT}/api/docs/"),
    ]
    if stage == 4:
        rows.append(("  posts service", f"http://127.0.0.1:{POSTS_PORT}/api/posts/"))
    if stage >= 2:
        rows.append(("  comments service", f"http://127.0.0.1:{COMMENTS_PORT}/healthz"))
    if stage >= 1:
        rows += [
            (f"Stage {stage} ({mode}) behind the gateway", f"http://127.0.0.1:{GATEWAY_PORT}/"),
            ("  API", f"http://127.0.0.1:{GATEWAY_PORT}/api/posts/"),
            ("  gateway probes", f"http://127.0.0.1:{GATEWAY_PORT}/healthz  /readyz"),
        ]
    if consumers(stage, mode):
        if broker_is_filesystem():
            where = f"{BROKER_URL}  (queues/, claimed/ = unacked, *.dlq = dead letters)"
        else:
            parts = urlsplit(BROKER_URL)  # no credentials on the screen
            where = f"{parts.scheme}://{parts.hostname}:{parts.port or 5672}{parts.path}"
        rows.append(("  event broker", where))
    width = max(len(label) for label, _ in rows) + 3
    text = "\n".join(f"  {label:<{width}}{url}" for label, url in rows)
    return f"\n{text}\n  Demo data: 'make seed' in another terminal.  Stop everything: Ctrl-C.\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", type=int, default=1)
    parser.add_argument(
        "--mode",
        choices=["sync", "async"],
        default=os.environ.get("MODE") or None,
        help="stage 4: sync calls or events (default async; env MODE); POST_LOOKUP and "
        "COMMENT_COUNTS override each side",
    )
    parser.add_argument("--print", action="store_true", help="print the Procfile and exit")
    args = parser.parse_args(argv)
    if args.stage not in RUNNABLE:
        print(
            f"stack: stage {args.stage} is not runnable in this checkout yet "
            f"(runnable: {sorted(RUNNABLE)}; see the README's stage table)",
            file=sys.stderr,
        )
        return 2
    data = DATA
    mode = stage_mode(args.stage, args.mode)
    text = procfile(args.stage, data, mode)
    if args.print:
        print(text, end="")
        return 0
    if consumers(args.stage, mode) and not broker_reachable():
        print(
            f"stack: stage {args.stage} in async mode needs RabbitMQ at {BROKER_URL} "
            "(start it, unset BROKER_URL for the embedded filesystem broker, "
            "or run stage 4 with MODE=sync)",
            file=sys.stderr,
        )
        return 2
    data.mkdir(parents=True, exist_ok=True)
    for folder, command in declare_commands(args.stage, mode):
        declared = subprocess.run(
            command, cwd=ROOT / folder, capture_output=True, text=True, check=False
        )
        if declared.returncode != 0:
            print(
                f"stack: declaring the event topology failed ({' '.join(command[1:])}):\n"
                f"{declared.stdout}{declared.stderr}",
                file=sys.stderr,
            )
            return 2
        print(f"stack: {declared.stdout.strip()}", flush=True)
    path = data / "Procfile"
    path.write_text(text)
    print(banner(args.stage, mode), flush=True)
    honcho = Path(PY).with_name("honcho")
    os.chdir(ROOT)
    # honcho takes over this process: its Ctrl-C handling stops every child.
    os.execv(str(honcho), [str(honcho), "-f", str(path), "-d", str(ROOT), "start"])  # noqa: S606


if __name__ == "__main__":
    sys.exit(main())
