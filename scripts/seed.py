"""`make seed`: the demo data set in the monolith, and in the stores of the
stage `make up` runs (what a stage keeps elsewhere is filled the way a real
move fills it: the stage table's data migrations, then what the stage
derives from the data).

    python scripts/seed.py [--stage N] [seed arguments...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stages import table  # noqa: E402  # [stage 2]

PY = sys.executable


def step(title: str, command: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None):
    print(f"\n==> {title}", flush=True)
    result = subprocess.run(command, cwd=cwd, env={**os.environ, **(env or {})}, check=False)
    if result.returncode != 0:
        sys.exit(f"seed: '{title}' failed (exit {result.returncode})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", type=int, default=0, help="the stage `make up` runs")
    args, seed_args = parser.parse_known_args(argv)
    step(
        f"Demo data in the monolith (for stage {args.stage})", [PY, "manage.py", "seed", *seed_args]
    )
    # >>> stage 2: the data of a later stage lives elsewhere
    for number in range(1, args.stage + 1):
        moved = table.stage(number).data_migration
        if moved:
            app, _command = moved
            step(
                f"The {app} into the {app} service (make migrate-stage {number})",
                [PY, "scripts/migrate_stage.py", str(number)],
            )
    # <<< stage 2
    # >>> stage 3: counters kept from events start from what is there
    topology = table.topology(
        args.stage,
        os.environ.get("MODE") or None,
        post_lookup=os.environ.get("POST_LOOKUP") or None,
        comment_counts=os.environ.get("COMMENT_COUNTS") or None,
    )
    # Where `make up` runs each app (the counters are asked of the comments service).
    addresses = {"mongodb": "", "broker": ""} | {
        app: f"http://127.0.0.1:{os.environ.get(spec.port_env, spec.port)}"
        for app, spec in table.APPS.items()
    }
    # The credentials `make up` keeps: the counts are asked on an internal route.
    data = Path(os.environ.get("DATA_DIR") or ROOT / ".data").resolve()
    addresses |= table.credentials(table.kept_tokens(data))
    for process in topology.of_role("web"):
        env = {k: v for k, v in process.environment(addresses).items() if v}
        if env.get("COMMENT_COUNTS") == "async":
            app = table.APPS[process.app]
            step(
                f"The {app.name}'s comment counters, from the comments service",
                [PY, "manage.py", "comment_counts_rebuild"],
                cwd=ROOT / app.folder,
                env={**env, "DJANGO_SETTINGS_MODULE": f"{app.settings}.local"},
            )
    # <<< stage 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
