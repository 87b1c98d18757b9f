"""`make parity`: the contract suite and the browser test, unchanged, against
every stage and mode of the stage table (stages/table.py), on the real
profile (PostgreSQL and the real servers) and, where the table asks for it,
on the embedded one (SQLite files and what `make up` runs); prints a table of
passed/failed and exits non-zero if any run failed.

    python scripts/parity.py                 # every combination
    python scripts/parity.py --stage 1       # one stage, every mode
    python scripts/parity.py --profile embedded   # only the embedded profile's rows
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stages import table  # noqa: E402 - the repository's root is on the path now

SUITES = ["tests/contract", "tests/e2e"]


def combinations() -> list[tuple[int, str, str, str]]:
    """(stage, gateway in front, communication mode, runtime profile): every
    mode of every stage in the stage table on the real profile, behind each
    gateway, and on the embedded profile (what `make up` runs: the dev router,
    SQLite, the folder broker) where the stage table asks for it."""
    rows = []
    for number, stage in sorted(table.STAGES.items()):
        for mode, topology in sorted(stage.topologies.items(), key=lambda m: m[0] != "sync"):
            gateways = ("nginx", "dev") if topology.has_gateway else ("-",)
            rows += [(number, gateway, mode, "real") for gateway in gateways]
            if "embedded" in stage.parity_profiles:
                rows.append((number, gateways[-1], mode, "embedded"))
    return rows


@dataclass
class Outcome:
    stage: int
    gateway: str
    mode: str
    profile: str
    passed: int
    failed: int
    seconds: float
    returncode: int


def run(stage: int, gateway: str, mode: str, profile: str, extra: list[str]) -> Outcome:
    env = {
        **os.environ,
        "CONTRACT_STAGE": str(stage),
        "E2E_STAGE": str(stage),
        "CONTRACT_PROFILE": profile,
        "E2E_PROFILE": profile,
    }
    for external in ("CONTRACT_BASE_URL", "E2E_BASE_URL", "CONTRACT_SERVED_BY"):
        env.pop(external, None)
    if gateway != "-":
        env["CONTRACT_GATEWAY"] = env["E2E_GATEWAY"] = gateway
    if mode != "-":
        env["CONTRACT_MODE"] = env["E2E_MODE"] = mode
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", *SUITES, "-q", "-p", "no:cacheprovider", *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    summary = completed.stdout.strip().splitlines()[-1] if completed.stdout.strip() else ""
    passed = int(m[1]) if (m := re.search(r"(\d+) passed", summary)) else 0
    failed = sum(int(n) for n in re.findall(r"(\d+) (?:failed|error)", summary))
    if completed.returncode != 0:
        print(completed.stdout[-4000:], completed.stderr[-2000:], sep="\n", file=sys.stderr)
    return Outcome(
        stage,
        gateway,
        mode,
        profile,
        passed,
        failed,
        time.monotonic() - started,
        completed.returncode,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", type=int, help="only this stage")
    parser.add_argument("--profile", choices=["real", "embedded"], help="only this profile")
    args, extra = parser.parse_known_args(argv)
    chosen = [
        c
        for c in combinations()
        if (args.stage is None or c[0] == args.stage)
        and (args.profile is None or c[3] == args.profile)
    ]
    if not chosen:
        print(f"parity: no runnable combination for stage {args.stage}", file=sys.stderr)
        return 2
    outcomes = []
    for number, (stage, gateway, mode, profile) in enumerate(chosen, 1):
        print(
            f"[{number}/{len(chosen)}] stage {stage}, gateway {gateway}, mode {mode}, "
            f"profile {profile} ...",
            flush=True,
        )
        outcomes.append(run(stage, gateway, mode, profile, extra))
        last = outcomes[-1]
        print(
            f"        {last.passed} passed, {last.failed} failed in {last.seconds:.1f} s",
            flush=True,
        )
    print("\nstage  gateway  mode                profile   passed  failed  result")
    for o in outcomes:
        ok = o.returncode == 0 and o.failed == 0 and o.passed > 0
        print(
            f"{o.stage:>5}  {o.gateway:<7}  {o.mode:<18} {o.profile:<8} {o.passed:>7} "
            f"{o.failed:>7}  {'PASS' if ok else 'FAIL'}"
        )
    bad = [o for o in outcomes if o.returncode != 0 or o.failed or not o.passed]
    total_passed = sum(o.passed for o in outcomes)
    total_failed = sum(o.failed for o in outcomes)
    print(f"\nparity: {total_passed} passed, {total_failed} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
