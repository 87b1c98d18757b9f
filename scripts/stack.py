"""`make up`: the monolith on :8000 and, behind the gateway on :8080, the
stack of the selected stage, as one Procfile run by honcho (Ctrl-C stops all).

    python scripts/stack.py --stage 1            # write .data/Procfile, print URLs, run it
    python scripts/stack.py --stage 1 --print    # only print the Procfile
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
MONOLITH_PORT = int(os.environ.get("MONOLITH_PORT", "8000"))
GATEWAY_PORT = int(os.environ.get("GATEWAY_PORT", "8080"))

POSTS_PORT = int(os.environ.get("POSTS_PORT", "8001"))
COMMENTS_PORT = int(os.environ.get("COMMENTS_PORT", "8002"))
MONGO_PORT = int(os.environ.get("MONGO_PORT", "27017"))

# The stages whose processes exist in this checkout. Stage 3 joins when its
# pieces land (see the README's stage table).
RUNNABLE = {0, 1, 2, 4}


def mongodb(data: Path) -> str:
    return (
        f"mongodb: {PY} -m secantus --host 127.0.0.1 --port {MONGO_PORT} "
        f"--storage-path {data / 'comments-mongo'}"
    )


def comments_service(posts_owner_url: str) -> str:
    env = f"MONGO_URL=mongodb://127.0.0.1:{MONGO_PORT} POSTS_URL={posts_owner_url} POST_LOOKUP=sync"
    return (
        f"comments: cd services/comments && "
        f"exec env {env} {PY} manage.py runserver 127.0.0.1:{COMMENTS_PORT}"
    )


def microservices(data: Path) -> list[str]:
    """Stage 4 on the embedded profile: posts on SQLite, comments on the
    MongoDB-wire server, both under .data/; sync mode."""
    posts_env = f"COMMENTS_URL=http://127.0.0.1:{COMMENTS_PORT} COMMENT_COUNTS=sync"
    return [
        mongodb(data),
        f"posts: cd services/posts && {PY} manage.py migrate --noinput -v0 && "
        f"exec env {posts_env} {PY} manage.py runserver 127.0.0.1:{POSTS_PORT}",
        comments_service(f"http://127.0.0.1:{POSTS_PORT}"),
    ]


def procfile(stage: int, data: Path) -> str:
    monolith_env = ""
    if stage in (2, 3):
        # Branch by abstraction: the monolith's comments now live in the service.
        monolith_env = (
            f"env COMMENTS_BACKEND=service COMMENTS_URL=http://127.0.0.1:{COMMENTS_PORT} "
        )
    lines = [f"monolith: {monolith_env}{PY} manage.py runserver 127.0.0.1:{MONOLITH_PORT}"]
    if stage in (2, 3):
        lines += [mongodb(data), comments_service(f"http://127.0.0.1:{MONOLITH_PORT}")]
    if stage == 4:
        lines += microservices(data)
    if stage >= 1:
        lines.append(
            f"gateway: env POSTS_URL=http://127.0.0.1:{POSTS_PORT} "
            f"COMMENTS_URL=http://127.0.0.1:{COMMENTS_PORT} "
            f"MONOLITH_URL=http://127.0.0.1:{MONOLITH_PORT} "
            f"{PY} -m gateway.devrouter --stage {stage} --listen 127.0.0.1:{GATEWAY_PORT}"
        )
    return "\n".join(lines) + "\n"


def banner(stage: int) -> str:
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
            (f"Stage {stage} behind the gateway", f"http://127.0.0.1:{GATEWAY_PORT}/"),
            ("  API", f"http://127.0.0.1:{GATEWAY_PORT}/api/posts/"),
            ("  gateway probes", f"http://127.0.0.1:{GATEWAY_PORT}/healthz  /readyz"),
        ]
    width = max(len(label) for label, _ in rows) + 3
    text = "\n".join(f"  {label:<{width}}{url}" for label, url in rows)
    return f"\n{text}\n  Demo data: 'make seed' in another terminal.  Stop everything: Ctrl-C.\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", type=int, default=1)
    parser.add_argument("--print", action="store_true", help="print the Procfile and exit")
    args = parser.parse_args(argv)
    if args.stage not in RUNNABLE:
        print(
            f"stack: stage {args.stage} is not runnable in this checkout yet "
            f"(runnable: {sorted(RUNNABLE)}; see the README's stage table)",
            file=sys.stderr,
        )
        return 2
    data = Path(os.environ.get("DATA_DIR", ROOT / ".data"))
    text = procfile(args.stage, data)
    if args.print:
        print(text, end="")
        return 0
    data.mkdir(parents=True, exist_ok=True)
    path = data / "Procfile"
    path.write_text(text)
    print(banner(args.stage), flush=True)
    honcho = Path(PY).with_name("honcho")
    os.chdir(ROOT)
    # honcho takes over this process: its Ctrl-C handling stops every child.
    os.execv(str(honcho), [str(honcho), "-f", str(path), "-d", str(ROOT), "start"])  # noqa: S606


if __name__ == "__main__":
    sys.exit(main())
