"""Compare the two sides of an nginx parallel run from its logs.

nginx's ``mirror`` discards the shadow's answer, so the rendered config logs
it: ``shadow.log`` holds the shadow upstream's status per request id,
``access.log`` the status the client got from the primary. This joins the two
on the request id and counts status matches and mismatches (bodies can only be
compared by the dev router, ``python -m gateway.devrouter --shadow``).

    python -m gateway.shadowlog NGINX_PREFIX_DIR     # prints one JSON object
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

_PRIMARY = re.compile(r'"(?P<request>[^"]*)" (?P<status>\d{3}) .* rid=(?P<rid>\S+)$')
_SHADOW = re.compile(r'^shadow rid=(?P<rid>\S+) "(?P<request>[^"]*)" .*up_status=(?P<status>\S+)')


def _read(path: Path, pattern: re.Pattern[str]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            m = pattern.search(line)
            if m:
                found[m["rid"]] = {"request": m["request"], "status": m["status"]}
    return found


def compare(prefix: Path) -> dict[str, Any]:
    primary = _read(prefix / "access.log", _PRIMARY)
    shadow = _read(prefix / "shadow.log", _SHADOW)
    mismatches = []
    matches = 0
    for rid, copy in shadow.items():
        answer = primary.get(rid)
        if answer is None:
            continue
        if answer["status"] == copy["status"]:
            matches += 1
        else:
            mismatches.append(
                {
                    "request_id": rid,
                    "request": answer["request"],
                    "primary_status": answer["status"],
                    "shadow_status": copy["status"],
                }
            )
    return {
        "compared": matches + len(mismatches),
        "matches": matches,
        "mismatches": len(mismatches),
        "mismatched": mismatches[-20:],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("prefix", type=Path, help="the nginx -p folder (access.log, shadow.log)")
    args = parser.parse_args(argv)
    result = compare(args.prefix)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 1 if result["mismatches"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
