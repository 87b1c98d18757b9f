"""`make seed`: the demo data set in the monolith, and, for a stage whose
data lives elsewhere (STAGE=2..4, with `STAGE=N make up` running), in that
stage's stores too, through the same data migrations a real move uses.

    python scripts/seed.py [--stage N] [seed arguments...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
COMMENTS_URL = f"http://127.0.0.1:{os.environ.get('COMMENTS_PORT', '8002')}"


def step(title: str, command: list[str], cwd: Path = ROOT, **env: str) -> None:
    print(f"\n==> {title}", flush=True)
    result = subprocess.run(command, cwd=cwd, env={**os.environ, **env}, check=False)
    if result.returncode != 0:
        sys.exit(f"seed: '{title}' failed (exit {result.returncode})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", type=int, default=0)
    args, seed_args = parser.parse_known_args(argv)
    step("Demo data in the monolith", [PY, "manage.py", "seed", *seed_args])
    if args.stage >= 2:
        step("Comments into MongoDB (migrate-stage 2)", [PY, "scripts/migrate_stage.py", "2"])
    if args.stage == 3:
        step(
            "The monolith's comment counters (stage 3)",
            [PY, "manage.py", "comment_counts_rebuild"],
            COMMENTS_BACKEND="service",
            COMMENTS_URL=COMMENTS_URL,
        )
    if args.stage == 4:
        step(
            "Posts into the posts service (migrate-stage 4)", [PY, "scripts/migrate_stage.py", "4"]
        )
        if (os.environ.get("COMMENT_COUNTS") or os.environ.get("MODE") or "async") == "async":
            step(
                "The posts service's comment counters (async mode)",
                [PY, "manage.py", "comment_counts_rebuild"],
                cwd=ROOT / "services" / "posts",
                COMMENTS_URL=COMMENTS_URL,
                DJANGO_SETTINGS_MODULE="posts_service.settings.local",
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
